"""The search indexer's document store and its input rules without gRPC (services/search/indexer/store.py,
validation.py): a stored page survives closing and reopening the file; indexing a URL again replaces its page in place
(``created`` false, the new title, body and links); writes apply in commit order; concurrent writes share group
commits; ScanShard's steps return exactly the pages of a shard (``contract.shard_of``) in a bounded number of rows per
step; the ``meta`` records survive a reopen; a page is never deleted; a closed store answers StoreUnavailable; the
validation names the proto's field paths and normalises outlinks.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from prometheus_client import REGISTRY

from casemesh.search.v1 import indexer_pb2, search_pb2
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.search.contract import MAX_BODY_CHARS, MAX_OUTLINKS, MAX_TITLE_CHARS, shard_of
from casemesh.services.search.indexer import validation
from casemesh.services.search.indexer.records import Page
from casemesh.services.search.indexer.store import FILE_NAME, PageStore, StoreUnavailable


def _page(n: int, links: tuple[int, ...] = (), title: str = "") -> Page:
    return Page(f"http://host{n % 7:03d}.web.test/page/{n}", title or f"Page {n}", f"body of page {n}",
                tuple(f"http://host{m % 7:03d}.web.test/page/{m}" for m in links))


async def test_a_stored_page_survives_a_reopen_and_is_replaced_in_place(tmp_path):
    store = PageStore(tmp_path / FILE_NAME)
    applied: list[tuple[str, bool]] = []
    assert await store.put(_page(1, (2, 3)), lambda created: applied.append((_page(1).url, created)))
    assert not await store.put(_page(1, (4,), title="New title"), lambda created: applied.append(("again", created)))
    assert applied == [(_page(1).url, True), ("again", False)]
    await store.set_meta("shard_count", "4")
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get(_page(1).url)
    with pytest.raises(StoreUnavailable):
        await store.put(_page(2))

    reopened = PageStore(tmp_path / FILE_NAME)
    try:
        assert await reopened.get(_page(1).url) == _page(1, (4,), title="New title")
        assert await reopened.get(_page(2).url) is None
        assert await reopened.count() == 1
        assert await reopened.meta() == {"shard_count": "4"}
        assert await reopened.read_links(list) == [(_page(1).url, (_page(4).url,))]
        with pytest.raises(sqlite3.IntegrityError):  # the schema keeps every page
            sqlite3.connect(tmp_path / FILE_NAME).execute("DELETE FROM pages")
    finally:
        await reopened.close()


async def test_concurrent_writes_share_group_commits_and_apply_in_commit_order(tmp_path):
    store = PageStore(tmp_path / FILE_NAME, max_commit_writes=64)
    before = REGISTRY.get_sample_value("casemesh_search_indexer_writes_per_commit_count") or 0
    order: list[int] = []
    try:
        created = await asyncio.gather(*(store.put(_page(n % 150), lambda _, n=n: order.append(n))
                                         for n in range(200)))
        assert created == [True] * 150 + [False] * 50
        assert order == list(range(200))
        commits = (REGISTRY.get_sample_value("casemesh_search_indexer_writes_per_commit_count") or 0) - before
        assert 4 <= commits < 200  # at most 64 writes per commit, and far fewer commits than writes
        assert await store.count() == 150
    finally:
        await store.close()


@pytest.mark.parametrize("shard_count", [1, 3, 4])
async def test_a_scan_returns_exactly_the_pages_of_its_shard_in_bounded_steps(tmp_path, shard_count):
    store = PageStore(tmp_path / FILE_NAME)
    try:
        pages = [_page(n, (n + 1,)) for n in range(120)]
        await asyncio.gather(*(store.put(page) for page in pages))
        await store.put(_page(5, (9, 10), title="replaced"))  # replaced in place: scanned once, in its new version
        expected = {page.url: page for page in pages}
        expected[_page(5).url] = _page(5, (9, 10), title="replaced")
        seen: dict[str, Page] = {}
        for shard in range(shard_count):
            async for chunk in store.scan(shard, shard_count, step=10):
                assert 0 < len(chunk) <= 10
                for page in chunk:
                    assert shard_of(page.url, shard_count) == shard and page.url not in seen
                    seen[page.url] = page
        assert seen == expected
    finally:
        await store.close()


def _request(url: str = "http://a.web.test/x", title: str = "", body: str = "",
             outlinks: list[str] | None = None) -> indexer_pb2.IndexPageRequest:
    return indexer_pb2.IndexPageRequest(page=search_pb2.WebPage(url=url, title=title, body=body,
                                                                outlinks=outlinks or []))


def test_validation_names_the_field_and_normalises_outlinks():
    page = validation.page(_request(outlinks=["http://b.web.test/", "http://a.web.test/x", "http://b.web.test/",
                                              "https://c.web.test"]))
    assert page == Page("http://a.web.test/x", "", "", ("http://b.web.test/", "https://c.web.test"))
    assert validation.page(_request(title="t" * MAX_TITLE_CHARS, body="b" * MAX_BODY_CHARS)).title == "t" * 512
    cases = [
        (_request(url=""), "page.url"),
        (_request(url="ftp://a.web.test/"), "page.url"),
        (_request(url="http://a.web.test/" + "x" * 2_100), "page.url"),
        (_request(url="http://a.web.test/a b"), "page.url"),
        (_request(title="t" * (MAX_TITLE_CHARS + 1)), "page.title"),
        (_request(body="b" * (MAX_BODY_CHARS + 1)), "page.body"),
        (_request(outlinks=["http://b.web.test/", "mailto:x@y"]), "page.outlinks[1]"),
        (_request(outlinks=[f"http://b.web.test/{i}" for i in range(MAX_OUTLINKS + 1)]), "page.outlinks[500]"),
    ]
    for request, field in cases:
        with pytest.raises(InvalidArgument) as error:
            validation.page(request)
        assert error.value.field == field, (field, error.value)
    with pytest.raises(InvalidArgument) as error:
        validation.url("nope")
    assert error.value.field == "url"
    assert validation.scan_shard(indexer_pb2.ScanShardRequest(shard=3, shard_count=4)) == (3, 4)
    for shard, count, field in ((0, 0, "shard_count"), (0, 65, "shard_count"), (4, 4, "shard"), (-1, 4, "shard")):
        with pytest.raises(InvalidArgument) as error:
            validation.scan_shard(indexer_pb2.ScanShardRequest(shard=shard, shard_count=count))
        assert error.value.field == field
