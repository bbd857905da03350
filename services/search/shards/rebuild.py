"""The rebuild of the shards at the process's start, from the indexer's document store.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document Store: Raw
HTML storage", "Index Server: Sharded index"): the shards are in memory, the document store is durable, so a shard
rebuilds by streaming its pages back (protos/casemesh/search/v1/indexer.proto, ``IndexerService.ScanShard``, internal:
its caller is ``search-shards``).

:meth:`Rebuild.start` runs :meth:`Rebuild.run` in a task of its own with a fresh ``contextvars.Context`` (no
request's deadline leaks into its calls). It rebuilds the shards one after the other: it streams
``ScanShard(shard, shards)`` with a deadline of ``rebuild_timeout_s`` and hands every page to
:meth:`.shard_set.ShardSet.take_scanned`; when the stream ends, the shard serves (:meth:`.shard_set.ShardSet.finish_rebuild`).
A stream that fails (search-indexer not started yet, down, restarting, the deadline) is counted, logged and tried
again from the start after ``rebuild_retry_s``, doubling after each failure up to ``rebuild_retry_max_s``, with
jitter (half to all of the wait); the pages it delivered stay (a retry puts them again). The indexer is an optional
dependency: the shards wait for it as long as it takes. :meth:`Rebuild.stop` cancels the task (the stream with it).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
import time

import grpc
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc

from . import metrics
from .settings import ShardsSettings
from .shard_set import ShardSet

__all__ = ["Rebuild"]

log = logging.getLogger("casemesh.search.shards.rebuild")

#: Pages taken between two yields to the event loop, so that calls are served while a long stream is read.
_YIELD_EVERY = 64


class Rebuild:
    """Rebuilds every rebuilding shard of ``shards`` from ``indexer`` (see the module docstring)."""

    def __init__(self, shards: ShardSet, indexer: indexer_pb2_grpc.IndexerServiceStub, settings: ShardsSettings):
        self._shards = shards
        self._indexer = indexer
        self._settings = settings
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Rebuild each shard that is rebuilding, in order, each until its stream succeeds."""
        started = time.monotonic()
        for shard in range(self._shards.count):
            if self._shards.rebuilding(shard):
                await self._rebuild(shard)
                metrics.REBUILD_SECONDS.labels(str(shard)).set(time.monotonic() - started)
                metrics.REBUILDING.set(self._shards.rebuilding_count())

    async def _rebuild(self, shard: int) -> None:
        settings = self._settings
        wait_s = settings.rebuild_retry_s
        while True:
            try:
                pages = await self._scan(shard)
            except grpc.aio.AioRpcError as error:
                metrics.REBUILDS.labels("failed").inc()
                log.info("search-shards: rebuilding shard %d from search-indexer failed (%s: %s); retrying in about "
                         "%.1f s", shard, error.code().name, error.details(), wait_s)
            except Exception:  # a bug must not end the rebuild for good: logged, retried
                metrics.REBUILDS.labels("failed").inc()
                log.exception("search-shards: rebuilding shard %d failed; retrying in about %.1f s", shard, wait_s)
            else:
                self._shards.finish_rebuild(shard)
                metrics.REBUILDS.labels("completed").inc()
                log.info("search-shards: shard %d rebuilt (%d pages streamed)", shard, pages)
                return
            await asyncio.sleep(random.uniform(wait_s / 2, wait_s))
            wait_s = min(wait_s * 2, settings.rebuild_retry_max_s)

    async def _scan(self, shard: int) -> int:
        """One ScanShard stream of ``shard``, every page handed to the shard set; returns the pages streamed."""
        shards = self._shards
        call = self._indexer.ScanShard(indexer_pb2.ScanShardRequest(shard=shard, shard_count=shards.count),
                                       timeout=self._settings.rebuild_timeout_s)
        pages = 0
        try:
            async for item in call:
                outcome = shards.take_scanned(shard, item.page, item.pagerank, item.rank_version)
                metrics.REBUILD_PAGES.labels(outcome).inc()
                pages += 1
                if pages % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
        finally:
            call.cancel()  # a no-op once the stream ended; ends it when this scan failed or was cancelled
        return pages

    def start(self) -> None:
        """Run :meth:`run` in a task of its own, in a fresh context."""
        self._task = asyncio.create_task(self.run(), name="search-shards-rebuild", context=contextvars.Context())

    async def stop(self) -> None:
        """Cancel the rebuild if it still runs (the shards it had not finished stay rebuilding)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

