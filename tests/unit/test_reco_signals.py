"""reco-signals' InteractionStore and servicer: record and update, recent order and bound, the export, concurrency."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.reco.v1 import signals_pb2 as pb
from casemesh.services.reco.signals import store as store_module
from casemesh.services.reco.signals.service import SignalServicer
from casemesh.services.reco.signals.store import RECENT_PER_USER, InteractionStore
from casemesh.services.runtime.errors import InvalidArgument

VIEW, LIKE = pb.INTERACTION_KIND_VIEW, pb.INTERACTION_KIND_LIKE


async def exported(store: InteractionStore, batch_size: int = 1_000) -> list[tuple[str, str, int, int]]:
    return [entry async for batch in store.export(batch_size) for entry in batch]


async def test_empty_store():
    store = InteractionStore()
    assert store.total == 0
    assert await store.recent("nobody", 10) == []
    assert [b async for b in store.export(10)] == []


async def test_record_returns_recorded_and_total():
    store = InteractionStore()
    assert await store.record([("u1", "a", VIEW), ("u1", "b", LIKE), ("u2", "a", VIEW)], now_ns=10) == (3, 3)
    assert store.total == 3
    assert await store.recent("u1", 10) == [("b", LIKE, 10), ("a", VIEW, 10)]  # later in the batch: newer
    assert await store.recent("u2", 10) == [("a", VIEW, 10)]


async def test_recording_again_updates_the_time_and_does_not_copy():
    store = InteractionStore()
    await store.record([("u", "a", VIEW)], now_ns=1)
    await store.record([("u", "b", VIEW)], now_ns=2)
    assert await store.record([("u", "a", VIEW)], now_ns=3) == (1, 2)  # updated, not added
    assert await store.recent("u", 10) == [("a", VIEW, 3), ("b", VIEW, 2)]
    assert await exported(store) == [("u", "b", VIEW, 2), ("u", "a", VIEW, 3)]  # oldest first, each once


async def test_view_and_like_of_one_item_are_two_interactions():
    store = InteractionStore()
    await store.record([("u", "a", VIEW)], now_ns=1)
    assert await store.record([("u", "a", LIKE)], now_ns=2) == (1, 2)
    assert await store.recent("u", 10) == [("a", LIKE, 2), ("a", VIEW, 1)]


async def test_recent_is_newest_first_and_cut_to_limit():
    store = InteractionStore()
    for t in range(10):
        await store.record([("u", f"i{t}", VIEW)], now_ns=t)
    assert [item for item, _, _ in await store.recent("u", 3)] == ["i9", "i8", "i7"]
    assert len(await store.recent("u", 100)) == 10
    assert await store.recent("u", 0) == []


async def test_recent_is_bounded_but_export_keeps_everything():
    store = InteractionStore(recent_cap=5)
    await store.record([("u", f"i{n}", VIEW) for n in range(12)], now_ns=7)
    assert [item for item, _, _ in await store.recent("u", 100)] == ["i11", "i10", "i9", "i8", "i7"]
    assert store.total == 12
    assert [item for _, item, _, _ in await exported(store)] == [f"i{n}" for n in range(12)]
    # An item that fell out of the recent list comes back to its front when recorded again.
    await store.record([("u", "i0", VIEW)], now_ns=8)
    assert (await store.recent("u", 1)) == [("i0", VIEW, 8)]
    assert len(await store.recent("u", 100)) == 5


def test_default_recent_cap_is_the_contract_limit():
    assert RECENT_PER_USER == 1_000
    with pytest.raises(ValueError):
        InteractionStore(recent_cap=0)


async def test_export_in_batches_in_record_order():
    store = InteractionStore()
    expected = []
    for n in range(23):
        await store.record([(f"u{n % 4}", f"i{n}", LIKE if n % 3 else VIEW)], now_ns=100 + n)
        expected.append((f"u{n % 4}", f"i{n}", LIKE if n % 3 else VIEW, 100 + n))
    batches = [b async for b in store.export(10)]
    assert [len(b) for b in batches] == [10, 10, 3]
    assert [e for b in batches for e in b] == expected
    with pytest.raises(ValueError):
        [b async for b in store.export(0)]


async def test_export_is_the_log_at_the_moment_of_the_call():
    store = InteractionStore()
    await store.record([("u", f"i{n}", VIEW) for n in range(5)], now_ns=1)
    stream = store.export(2)
    first = await anext(stream)
    await store.record([("u", "late", VIEW), ("u", "i4", VIEW)], now_ns=2)  # a new one and an update
    rest = [e for b in [b async for b in stream] for e in b]
    assert [item for _, item, _, _ in first + rest] == ["i0", "i1", "i2", "i3", "i4"]
    assert [item for _, item, _, _ in await exported(store)] == ["i0", "i1", "i2", "i3", "late", "i4"]


async def test_compaction_keeps_order_and_index(monkeypatch):
    monkeypatch.setattr(store_module, "_COMPACT_MIN", 4)
    store = InteractionStore()
    await store.record([("u", f"i{n}", VIEW) for n in range(4)], now_ns=0)
    for t in range(1, 30):  # update the same few interactions many times: the log compacts
        await store.record([("u", f"i{t % 3}", VIEW)], now_ns=t)
    assert len(await store.snapshot()) < 30
    assert store.total == 4
    assert await exported(store) == [("u", "i3", VIEW, 0), ("u", "i0", VIEW, 27), ("u", "i1", VIEW, 28), ("u", "i2", VIEW, 29)]
    assert await store.record([("u", "i3", VIEW)], now_ns=30) == (1, 4)  # the index still finds it after compaction
    assert [item for _, item, _, _ in await exported(store)] == ["i0", "i1", "i2", "i3"]


async def test_concurrent_records_lose_nothing():
    store = InteractionStore(recent_cap=50)
    users, per_user = 40, 100

    async def client(u: int) -> None:
        for n in range(0, per_user, 10):
            await store.record([(f"u{u}", f"i{n + k}", VIEW) for k in range(10)])
            await asyncio.sleep(0)

    await asyncio.gather(*(client(u) for u in range(users)),
                         *(store.record([(f"u{u}", "shared", LIKE)]) for u in range(users)))
    log = await exported(store, 333)
    assert store.total == len(log) == users * (per_user + 1)
    assert len(set((u, i, k) for u, i, k, _ in log)) == len(log)
    for u in range(users):
        mine = [i for user, i, _, _ in log if user == f"u{u}" and i != "shared"]
        assert mine == [f"i{n}" for n in range(per_user)]  # each client's records in its order
        assert len(await store.recent(f"u{u}", 1_000)) == 50
    times = [t for _, _, _, t in log]
    assert times == sorted(times)  # oldest first


async def test_servicer_records_lists_and_exports():
    servicer = SignalServicer(InteractionStore())
    request = pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id="u1", item_id="a", kind=VIEW), pb.Interaction(user_id="u1", item_id="b", kind=LIKE),
        pb.Interaction(user_id="u2", item_id="a", kind=LIKE)])
    assert await servicer.RecordInteractions(request, None) == pb.RecordInteractionsResponse(recorded=3, total=3)
    recent = await servicer.ListRecentInteractions(pb.ListRecentInteractionsRequest(user_id="u1", limit=1), None)
    assert [(i.user_id, i.item_id, i.kind) for i in recent.interactions] == [("u1", "b", LIKE)]
    assert recent.interactions[0].time.ToNanoseconds() > 0
    batches = [r async for r in servicer.ExportInteractions(pb.ExportInteractionsRequest(batch_size=2), None)]
    assert [[(i.user_id, i.item_id, i.kind) for i in b.interactions] for b in batches] == [
        [("u1", "a", VIEW), ("u1", "b", LIKE)], [("u2", "a", LIKE)]]


async def test_servicer_rejects_a_bad_batch_whole():
    store = InteractionStore()
    servicer = SignalServicer(store)
    request = pb.RecordInteractionsRequest(interactions=[
        pb.Interaction(user_id="u1", item_id="a", kind=VIEW), pb.Interaction(user_id="u1", item_id="b")])
    with pytest.raises(InvalidArgument) as caught:
        await servicer.RecordInteractions(request, None)
    assert caught.value.field == "interactions[1].kind"
    assert store.total == 0
    with pytest.raises(InvalidArgument) as caught:
        await servicer.ListRecentInteractions(pb.ListRecentInteractionsRequest(user_id="u1"), None)
    assert caught.value.field == "limit"
    with pytest.raises(InvalidArgument) as caught:
        [r async for r in servicer.ExportInteractions(pb.ExportInteractionsRequest(batch_size=50_001), None)]
    assert caught.value.field == "batch_size"
