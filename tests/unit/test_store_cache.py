"""Sharded URL store with expiry, and the bounded resolve cache."""

import asyncio

import pytest

from casemesh.services.runtime.errors import AlreadyExists
from casemesh.services.urlshortener.cache import ResolveCache
from casemesh.services.urlshortener.store import UrlRecord, UrlStore

NOW = 1_800_000_000.0


def rec(code="abc1234", url="https://example.com", created=NOW, ttl=None):
    return UrlRecord(code, url, created, None if ttl is None else created + ttl)


def test_record_expiry_boundary():
    r = rec(ttl=60)
    assert not r.expired(NOW + 59.999)
    assert r.expired(NOW + 60)
    assert not rec().expired(NOW + 1e12)


async def test_insert_get_delete():
    store = UrlStore()
    await store.insert(rec("abcd"), NOW)
    assert (await store.get("abcd", NOW)).long_url == "https://example.com"
    assert await store.get("nope", NOW) is None
    assert await store.delete("abcd", NOW) is True
    assert await store.get("abcd", NOW) is None
    assert await store.delete("abcd", NOW) is False


async def test_alias_conflict_but_expired_alias_is_reusable():
    store = UrlStore()
    await store.insert(rec("promo", "https://a.example", ttl=60), NOW)
    with pytest.raises(AlreadyExists):
        await store.insert(rec("promo", "https://b.example", created=NOW + 10), NOW + 10)
    # once expired, the alias can be taken again
    await store.insert(rec("promo", "https://b.example", created=NOW + 60), NOW + 60)
    assert (await store.get("promo", NOW + 61)).long_url == "https://b.example"


async def test_expired_records_do_not_resolve_and_are_removed_lazily():
    store = UrlStore()
    await store.insert(rec("short", ttl=10), NOW)
    await store.insert(rec("forever"), NOW)
    assert await store.get("short", NOW + 9) is not None
    assert len(store) == 2
    assert await store.get("short", NOW + 10) is None
    assert len(store) == 1  # removed by the read
    await store.insert(rec("short2", ttl=10), NOW)
    assert await store.delete("short2", NOW + 11) is False  # expired counts as absent


async def test_purge_expired():
    store = UrlStore(shards=4)
    for i in range(100):
        await store.insert(rec(f"code{i}", ttl=10 if i % 2 else None), NOW)
    assert await store.purge_expired(NOW + 5) == 0
    assert await store.purge_expired(NOW + 10) == 50
    assert len(store) == 50
    assert await store.get("code1", NOW) is None
    assert await store.get("code2", NOW + 1e9) is not None


async def test_sharding_spreads_codes_and_is_stable():
    a, b = UrlStore(shards=8), UrlStore(shards=8)
    codes = [f"c{i:05d}" for i in range(800)]
    for code in codes:
        await a.insert(rec(code), NOW)
    sizes = [len(s.records) for s in a._shards]
    assert min(sizes) > 50  # crc32 spreads evenly enough (expected 100 each)
    assert all(a._shard(c) is a._shards[b._shards.index(b._shard(c))] for c in codes[:50])
    with pytest.raises(ValueError):
        UrlStore(shards=0)


async def test_concurrent_inserts_of_one_alias_admit_exactly_one():
    store = UrlStore()
    results = await asyncio.gather(
        *(store.insert(rec("race", f"https://{i}.example"), NOW) for i in range(20)),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, AlreadyExists) for r in results) == 19


# --- cache -------------------------------------------------------------------


def test_cache_hits_misses_and_callback():
    seen = []
    cache = ResolveCache(max_entries=10, on_lookup=seen.append)
    assert cache.get("abcd", NOW) is None
    cache.put(rec("abcd"))
    assert cache.get("abcd", NOW).code == "abcd"
    assert (cache.hits, cache.misses) == (1, 1)
    assert seen == [False, True]


def test_cache_is_bounded_lru():
    cache = ResolveCache(max_entries=3)
    for code in ["c1", "c2", "c3"]:
        cache.put(rec(code))
    assert cache.get("c1", NOW) is not None  # c1 becomes most recently used
    cache.put(rec("c4"))  # evicts c2, the least recently used
    assert len(cache) == 3 == cache.max_entries
    assert cache.get("c2", NOW) is None
    assert all(cache.get(c, NOW) is not None for c in ["c1", "c3", "c4"])
    for i in range(100):
        cache.put(rec(f"x{i}"))
    assert len(cache) == 3


def test_cache_treats_expired_as_miss_and_evicts():
    cache = ResolveCache()
    cache.put(rec("soon", ttl=5))
    assert cache.get("soon", NOW + 4) is not None
    assert cache.get("soon", NOW + 5) is None
    assert len(cache) == 0
    assert (cache.hits, cache.misses) == (1, 1)


def test_cache_invalidate_and_fill_race_token():
    cache = ResolveCache()
    cache.put(rec("gone"))
    cache.invalidate("gone")
    cache.invalidate("never-cached")  # no error
    assert cache.get("gone", NOW) is None
    token = cache.token()  # a Resolve reads the store after taking the token...
    cache.invalidate("gone")  # ...a Delete lands meanwhile...
    assert cache.put(rec("gone"), token) is False  # ...so the stale fill is skipped
    assert cache.get("gone", NOW) is None
    assert cache.put(rec("gone"), cache.token()) is True
    with pytest.raises(ValueError):
        ResolveCache(max_entries=0)
