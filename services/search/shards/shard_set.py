"""The process's shards and their rebuild state: which shards still rebuild, and which pages were put meanwhile.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index across thousands of machines"; "Document Store: Raw HTML storage", which the shards rebuild from). The shards
live in memory; at the process's start each one is *rebuilding* until its pages have been streamed from the
indexer's document store (:mod:`.rebuild`). Meanwhile (protos/casemesh/search/v1/shard.proto):

- GetTermStatistics, SearchShard and SetPageRanks raise :class:`~services.runtime.errors.Unavailable` (a partial
  shard would answer wrong statistics and miss pages; the indexer pushes a refused pass again with its next one);
- PutPage indexes the page, remembers its URL, and then raises ``Unavailable`` too (the contract's answer while the
  shard rebuilds: the indexer retries, which indexes it again, harmlessly). A page the scan delivers later for a
  remembered URL is skipped (:meth:`ShardSet.take_scanned`): the scan read it from the store before, or while, the
  put's newer copy was written, so the put's copy wins;
- GetShardInfo answers, with ``rebuilding`` true.

Everything here is synchronous; the service calls it on the event loop only, so no locks are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...runtime.errors import Unavailable
from ..contract import shard_of
from . import metrics
from .index import PageLike, ShardIndex

__all__ = ["ShardInfo", "ShardSet"]


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard as GetShardInfo describes it."""

    shard: int
    doc_count: int
    term_count: int
    rebuilding: bool
    rank_version: int


class ShardSet:
    """``count`` shards (:class:`.index.ShardIndex`), every one rebuilding from the start when ``rebuilding``."""

    def __init__(self, count: int, rebuilding: bool) -> None:
        self.indexes = [ShardIndex() for _ in range(count)]
        # Per shard: None once rebuilt, else the URLs PutPage indexed during the rebuild.
        self._put_while_rebuilding: list[set[str] | None] = [set() if rebuilding else None for _ in range(count)]

    @property
    def count(self) -> int:
        """The number of shards."""
        return len(self.indexes)

    def rebuilding(self, shard: int) -> bool:
        """True until :meth:`finish_rebuild` of ``shard``."""
        return self._put_while_rebuilding[shard] is not None

    def rebuilding_count(self) -> int:
        """Shards still rebuilding."""
        return sum(urls is not None for urls in self._put_while_rebuilding)

    def ready(self, shard: int) -> ShardIndex:
        """The index of ``shard``; ``Unavailable`` while it rebuilds."""
        if self._put_while_rebuilding[shard] is not None:
            raise Unavailable(f"shard {shard} is rebuilding from search-indexer's document store; retry")
        return self.indexes[shard]

    def _observe(self, shard: int) -> None:
        index = self.indexes[shard]
        metrics.PAGES.labels(str(shard)).set(index.doc_count)
        metrics.TERMS.labels(str(shard)).set(index.term_count)

    def put(self, shard: int, page: PageLike, pagerank: float) -> tuple[bool, int]:
        """Index ``page`` on ``shard``: whether its URL was new there, and the shard's pages. While the shard
        rebuilds, the page is indexed and remembered, then ``Unavailable`` is raised (module docstring)."""
        index = self.indexes[shard]
        created = index.put(page, pagerank)
        self._observe(shard)
        remembered = self._put_while_rebuilding[shard]
        if remembered is not None:
            remembered.add(page.url)
            raise Unavailable(f"shard {shard} is rebuilding from search-indexer's document store (the page was "
                              "taken; retry)")
        return created, index.doc_count

    def take_scanned(self, shard: int, page: PageLike, pagerank: float, rank_version: int) -> str:
        """Index a page the rebuild's scan of ``shard`` delivered, with its rank from pass ``rank_version``, unless a
        PutPage of its URL came during the rebuild or it is not this shard's. Returns what became of it:
        ``indexed``, ``superseded`` or ``misrouted`` (``casemesh_search_shard_rebuild_pages_total``'s outcomes)."""
        remembered = self._put_while_rebuilding[shard]
        if shard_of(page.url, self.count) != shard:
            return "misrouted"
        if remembered is not None and page.url in remembered:
            return "superseded"
        index = self.indexes[shard]
        index.put(page, pagerank)
        index.rank_version = max(index.rank_version, rank_version)
        self._observe(shard)
        return "indexed"

    def finish_rebuild(self, shard: int) -> None:
        """``shard`` is rebuilt: it serves every RPC from now on."""
        self._put_while_rebuilding[shard] = None

    def info(self) -> list[ShardInfo]:
        """Every shard, by shard."""
        return [ShardInfo(shard, index.doc_count, index.term_count, self.rebuilding(shard), index.rank_version)
                for shard, index in enumerate(self.indexes)]
