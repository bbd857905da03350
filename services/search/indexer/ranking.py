"""PageRank passes: when they run, one at a time, and how their ranks reach the shards.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Ranker: PageRank + ML
models for relevance scoring", "Freshness: Breaking news indexed in minutes"). A pass:

1. builds the link graph's sparse matrix in a worker thread while the graph is frozen (:meth:`.graph.LinkGraph.adjacency`)
   and runs the power iteration in a worker thread (:func:`.pagerank.rank`): the event loop keeps serving;
2. numbers itself (``rank_version``, one more than the last pass, kept across restarts in the store's ``meta`` under
   :data:`META_KEY`, so shards never see a version go back), keeps the ranks of the stored pages in memory (GetPage,
   ScanShard and PutPage read them; after a restart the pass run at start computes them again);
3. pushes them: GetShardInfo (the shard count may have changed), then SetPageRanks to every shard that has not taken
   this version yet, in batches of at most :data:`MAX_RANKS_PER_CALL` entries and :data:`MAX_CALL_BYTES` bytes, the
   shards side by side. A shard that fails keeps its older ranks; it is pushed again at the next tick (or pass), and a
   shard that restarts reads the current ranks with its pages (ScanShard).

When: at start if the store holds pages; every ``pagerank_interval_s`` if the link graph changed (a new page, a page
with other links) since the last pass began (else, if a shard has not taken the last pass's ranks, they are pushed again); and on ComputePageRank, which joins the
pass already running rather than start another (one pass at a time: the pass is a task of its own, in a fresh
context, that a caller giving up does not cancel). ComputePageRank answers FAILED_PRECONDITION ``no_pages`` when
nothing is stored and UNAVAILABLE when a shard did not take the ranks (the pass itself is kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import time
from dataclasses import asdict, dataclass

import grpc
from casemesh.search.v1 import shard_pb2

from ...runtime.errors import FailedPrecondition, Unavailable
from ..contract import shard_of
from . import metrics
from .graph import LinkGraph
from .pagerank import rank
from .routing import ShardRouter
from .settings import IndexerSettings
from .store import PageStore

log = logging.getLogger("casemesh.search.indexer.ranking")

__all__ = ["MAX_CALL_BYTES", "MAX_RANKS_PER_CALL", "META_KEY", "PageRanker", "PassRecord"]

#: The most entries of one SetPageRanksRequest (shard.proto).
MAX_RANKS_PER_CALL = 100_000
#: The most bytes of one SetPageRanksRequest's entries: within the shards server's 4 MiB request limit.
MAX_CALL_BYTES = 3 * 1024 * 1024
#: The store's ``meta`` key of the last pass.
META_KEY = "last_pass"
#: Bytes of one PageRankEntry besides its URL's (tags, lengths, the double).
_ENTRY_OVERHEAD_BYTES = 16


@dataclass(frozen=True, slots=True)
class PassRecord:
    """One pass, as ``PageRankPass`` describes it: its number (from 1), the graph's nodes and edges, the power
    iterations, the computation's wall time (ms) and when it finished (Unix ms)."""

    rank_version: int
    nodes: int
    edges: int
    iterations: int
    compute_ms: float
    finished_at_unix_ms: int

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PassRecord:
        return cls(**json.loads(text))


def _batches(ranks: dict[str, float], shard_count: int,
             shards: set[int]) -> dict[int, list[list[shard_pb2.PageRankEntry]]]:
    """The entries of ``shards``' pages, per shard, in batches within the request limits."""
    grouped: dict[int, list[list[shard_pb2.PageRankEntry]]] = {shard: [[]] for shard in shards}
    sizes = dict.fromkeys(shards, 0)
    for url, value in ranks.items():
        shard = shard_of(url, shard_count)
        if shard not in shards:
            continue
        size = len(url.encode()) + _ENTRY_OVERHEAD_BYTES
        batch = grouped[shard][-1]
        if len(batch) >= MAX_RANKS_PER_CALL or sizes[shard] + size > MAX_CALL_BYTES:
            batch = []
            grouped[shard].append(batch)
            sizes[shard] = 0
        batch.append(shard_pb2.PageRankEntry(url=url, pagerank=value))
        sizes[shard] += size
    return grouped


class PageRanker:
    """PageRank passes over ``graph`` (see the module docstring); the pass record kept in ``store``, ranks pushed
    through ``router``."""

    def __init__(self, graph: LinkGraph, store: PageStore, router: ShardRouter, settings: IndexerSettings) -> None:
        self._graph = graph
        self._store = store
        self._router = router
        self._settings = settings
        #: The last pass (``None``: none yet).
        self.last: PassRecord | None = None
        self._ranks: dict[str, float] = {}
        self._ranks_version = 0
        self._changes = 0
        self._ranked_changes = 0
        #: (shard_count, shard) -> the last rank version the shard took.
        self._pushed: dict[tuple[int, int], int] = {}
        self._lock = asyncio.Lock()
        self._running: asyncio.Task[tuple[PassRecord, str | None]] | None = None
        self._ticker: asyncio.Task[None] | None = None

    def rank_of(self, url: str) -> tuple[float, int]:
        """``(pagerank, rank_version)`` of ``url`` from the last pass (``(0.0, 0)``: not ranked yet)."""
        value = self._ranks.get(url)
        return (value, self._ranks_version) if value is not None else (0.0, 0)

    def changed(self) -> None:
        """The link graph changed (the next tick runs a pass)."""
        self._changes += 1

    async def start(self, last: PassRecord | None) -> None:
        """Continue after ``last`` (the stored record); start the ticker, and a pass if pages are stored."""
        self.last = last
        if self._graph.page_count:
            self._launch().add_done_callback(self._log_failure)
        if self._settings.pagerank_interval_s > 0:
            self._ticker = asyncio.create_task(self._tick(), name="search-indexer-pagerank-ticker",
                                               context=contextvars.Context())

    async def stop(self) -> None:
        """Stop the ticker and the pass in flight."""
        for task in (self._ticker, self._running):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def compute(self) -> PassRecord:
        """Run a pass now (or join the one running) and push its ranks. Raises
        :class:`~services.runtime.errors.FailedPrecondition` ``no_pages`` when nothing is stored,
        :class:`~services.runtime.errors.Unavailable` when a shard did not take the ranks (or the store failed)."""
        if self._graph.page_count == 0:
            raise FailedPrecondition("no_pages: no page is stored yet")
        record, failure = await asyncio.shield(self._launch())
        if failure is not None:
            raise Unavailable(f"PageRank pass {record.rank_version} is done, but {failure}; its ranks are pushed "
                              "again with the next pass")
        return record

    def _launch(self) -> asyncio.Task[tuple[PassRecord, str | None]]:
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._pass(), name="search-indexer-pagerank",
                                                context=contextvars.Context())
        return self._running

    @staticmethod
    def _log_failure(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("the PageRank pass failed: %s", task.exception())

    async def _pass(self) -> tuple[PassRecord, str | None]:
        settings = self._settings
        async with self._lock:
            changes = self._changes
            started = time.perf_counter()
            adjacency = await self._graph.adjacency()
            ranking = await asyncio.to_thread(rank, adjacency, settings.damping, settings.tolerance,
                                              settings.max_iterations)
            seconds = time.perf_counter() - started
            record = PassRecord((self.last.rank_version if self.last else 0) + 1, ranking.nodes, ranking.edges,
                                ranking.iterations, round(seconds * 1000, 3), time.time_ns() // 1_000_000)
            await self._store.set_meta(META_KEY, record.to_json())
            self.last, self._ranks, self._ranks_version = record, ranking.ranks, record.rank_version
            self._ranked_changes = changes
            metrics.PASS_SECONDS.observe(seconds)
            metrics.ITERATIONS.set(record.iterations)
            metrics.RANK_VERSION.set(record.rank_version)
            if not ranking.converged:
                log.warning("PageRank pass %d stopped after %d iterations without converging (tolerance %g)",
                            record.rank_version, record.iterations, settings.tolerance)
            return record, await self._push()

    def _unpushed(self) -> bool:
        count = self._router.known
        return self._ranks_version > 0 and (count is None or any(
            self._pushed.get((count, shard), 0) < self._ranks_version for shard in range(count)))

    async def _push(self) -> str | None:
        """Push the current ranks to every shard that has not taken them; ``None``, or what failed."""
        version, ranks = self._ranks_version, self._ranks
        try:
            count = await self._router.shard_count(refresh=True)
        except Unavailable as error:
            metrics.RANK_PUSH_FAILURES.inc()
            return str(error)
        behind = {shard for shard in range(count) if self._pushed.get((count, shard), 0) < version}
        if not behind:
            return None
        batches = await asyncio.to_thread(_batches, ranks, count, behind)
        failures = await asyncio.gather(*(self._push_shard(count, shard, batches[shard], version)
                                          for shard in sorted(behind)))
        return "; ".join(f for f in failures if f) or None

    async def _push_shard(self, count: int, shard: int, batches: list[list[shard_pb2.PageRankEntry]],
                          version: int) -> str | None:
        try:
            for batch in batches:
                await self._router.set_ranks(shard, count, batch, version)
        except grpc.aio.AioRpcError as error:
            metrics.RANK_PUSH_FAILURES.inc()
            return f"shard {shard} of {count} did not take its ranks ({error.code().name}: {error.details()})"
        self._pushed[(count, shard)] = version
        return None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self._settings.pagerank_interval_s)
            try:
                if self._graph.page_count and self._changes != self._ranked_changes:
                    _, failure = await asyncio.shield(self._launch())
                elif self._unpushed():
                    async with self._lock:
                        failure = await self._push()
                else:
                    continue
                if failure is not None:
                    log.info("PageRank ranks not pushed everywhere (pushed again at the next tick): %s", failure)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - the ticker goes on; the next tick tries again
                log.warning("the PageRank tick failed: %s", error)
