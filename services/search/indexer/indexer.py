"""The indexer's domain: IndexPage, GetPage, GetIndexStats and ScanShard over the store, the link graph, the ranker
and the router; what the servicer calls.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Crawl and index web
pages continuously", "Document Store", "Indexer: Build inverted index", "Index Server: Sharded index"). Indexing a page
(protos/casemesh/search/v1/indexer.proto, IndexPage):

1. the page is written to the store, fsynced, before anything else (:mod:`.store`; UNAVAILABLE, nothing stored, when
   the file cannot be written);
2. once committed, in commit order, the link graph takes its outlinks (:mod:`.graph`) and, when that changed the
   graph (a new page, other links), the ranker notes that a pass is due (:mod:`.ranking`);
3. the page is put on its shard, ``shard_of(url, shard_count)``, with its current rank (:mod:`.routing`); when the
   shard does not take it the answer is UNAVAILABLE, and the page stays stored: a retry puts it again, and the
   shard's next rebuild (ScanShard) holds it anyway.

Calls about one URL run one after the other (:class:`~services.runtime.keyed_locks.KeyedLocks`, at most
:data:`MAX_URLS_IN_FLIGHT` URLs at once, beyond which UNAVAILABLE), so the shard receives a URL's versions in the
store's order and holds the last one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ...runtime.errors import NotFound, Unavailable
from ...runtime.keyed_locks import KeyedLocks
from ..contract import shard_of
from . import metrics
from .graph import LinkGraph
from .ranking import META_KEY, PageRanker, PassRecord
from .records import Page
from .routing import ShardRouter
from .settings import IndexerSettings
from .store import PageStore

__all__ = ["MAX_URLS_IN_FLIGHT", "SHARD_COUNT_KEY", "Indexed", "Indexer", "Stats", "StoredPage"]

#: The store's ``meta`` key of the shard count last learned.
SHARD_COUNT_KEY = "shard_count"
#: Distinct URLs being indexed at once (their per-URL locks); beyond it IndexPage answers UNAVAILABLE.
MAX_URLS_IN_FLIGHT = 100_000


@dataclass(frozen=True, slots=True)
class Indexed:
    """IndexPage's answer: the page's shard, whether its URL was new to the store, the pages stored."""

    shard: int
    created: bool
    page_count: int


@dataclass(frozen=True, slots=True)
class StoredPage:
    """A stored page with its rank, the pass the rank comes from (0: not ranked yet) and, for GetPage, its shard."""

    page: Page
    pagerank: float
    rank_version: int
    shard: int = 0


@dataclass(frozen=True, slots=True)
class Stats:
    """GetIndexStats' answer: pages and links stored, the shard count (0: not known yet), the last pass."""

    page_count: int
    link_count: int
    shard_count: int
    last_pass: PassRecord | None


class Indexer:
    """The indexer (see the module docstring). :meth:`start` loads the store before serving."""

    def __init__(self, store: PageStore, router: ShardRouter, settings: IndexerSettings,
                 graph: LinkGraph | None = None) -> None:
        self._store = store
        self._router = router
        self._settings = settings
        self.graph = graph or LinkGraph()
        self.ranker = PageRanker(self.graph, store, router, settings)
        self._urls = KeyedLocks(MAX_URLS_IN_FLIGHT, lambda count: Unavailable(
            f"{count:,} URLs are being indexed at once; retry"))

    async def start(self) -> None:
        """Load the link graph from the store (in the reader thread), then start the ranker."""
        meta = await self._store.meta()
        await self._store.read_links(self.graph.load)
        last = PassRecord.from_json(meta[META_KEY]) if META_KEY in meta else None
        if SHARD_COUNT_KEY in meta:
            self._router.preset(int(meta[SHARD_COUNT_KEY]))
        metrics.started(self.graph.page_count, self.graph.link_count, last.rank_version if last else 0,
                        last.iterations if last else 0)
        await self.ranker.start(last)

    async def close(self) -> None:
        """Stop the ranker, then close the store."""
        await self.ranker.stop()
        await self._store.close()

    def _stored(self, page: Page, created: bool) -> None:
        """A write of ``page`` committed (on the loop, in commit order)."""
        if self.graph.set_links(page.url, page.outlinks):
            self.ranker.changed()
        metrics.PAGES.set(self.graph.page_count)
        metrics.LINKS.set(self.graph.link_count)
        metrics.PAGES_INDEXED.labels(created="true" if created else "false").inc()

    async def index(self, page: Page) -> Indexed:
        """Store ``page`` durably, then put it on its shard (see the module docstring). Raises
        :class:`~services.runtime.errors.Unavailable` (nothing stored when the store failed; stored when the shard
        did not take it)."""
        async with self._urls.hold(page.url):
            created = await self._store.put(page, lambda created: self._stored(page, created))
            page_count = self.graph.page_count
            pagerank, _ = self.ranker.rank_of(page.url)
            shard = await self._router.put(page, pagerank)
        return Indexed(shard, created, page_count)

    async def get(self, url: str) -> StoredPage:
        """The stored page of ``url`` with its rank and shard. Raises :class:`~services.runtime.errors.NotFound`;
        :class:`~services.runtime.errors.Unavailable` when the store cannot be read, or the shard count was never
        learned and the shards do not answer."""
        page = await self._store.get(url)
        if page is None:
            raise NotFound(f"no page is stored at {url[:200]}")
        shard_count = await self._router.shard_count()
        pagerank, version = self.ranker.rank_of(url)
        return StoredPage(page, pagerank, version, shard_of(url, shard_count))

    def stats(self) -> Stats:
        """Pages and links stored, the shard count known (0: none yet), the last pass."""
        return Stats(self.graph.page_count, self.graph.link_count, self._router.known or 0, self.ranker.last)

    async def scan(self, shard: int, shard_count: int) -> AsyncIterator[StoredPage]:
        """Every stored page of ``shard`` (of ``shard_count``) with its rank, read in bounded steps (:mod:`.store`).
        Raises :class:`~services.runtime.errors.Unavailable` when the store cannot be read."""
        async for pages in self._store.scan(shard, shard_count, self._settings.scan_chunk_pages):
            for page in pages:
                pagerank, version = self.ranker.rank_of(page.url)
                yield StoredPage(page, pagerank, version, shard)
            await asyncio.sleep(0)
