"""The indexer's client of ``search-shards`` (IndexShardService): which shard a page goes to, and putting it there.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index across thousands of machines"). A page lives on shard ``contract.shard_of(url, shard_count)`` (CRC-32 mod
``shard_count``), where ``shard_count`` is the shards process's ``shards`` setting: the router learns it from
``GetShardInfo`` (one call for every caller waiting: :class:`~services.runtime.coalescing.SingleFlight`), caches it,
and asks again when a PutPage or SetPageRanks answers INVALID_ARGUMENT about ``shard_count`` or ``shard`` (the shards
restarted with another setting), once per call. The indexer keeps the last count learned in its store, so that it
knows it across its own restarts even while the shards are down.

Every call has an explicit deadline: ``shard_timeout_ms`` for GetShardInfo and PutPage, ``rank_push_timeout_ms`` for
SetPageRanks, and runs in a fresh context when shared (so one caller's deadline does not end another's call).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Sequence

import grpc
from casemesh.search.v1 import shard_pb2, shard_pb2_grpc

from ...runtime.coalescing import SingleFlight
from ...runtime.errors import Unavailable
from ..contract import MAX_SHARDS, shard_of
from . import metrics
from .records import Page

log = logging.getLogger("casemesh.search.indexer.routing")

__all__ = ["ShardRouter", "is_shard_count_refusal"]


def is_shard_count_refusal(error: grpc.aio.AioRpcError) -> bool:
    """Whether a shard's error says the caller routes by another shard count (INVALID_ARGUMENT naming
    ``shard_count`` or ``shard``)."""
    details = error.details() or ""
    return error.code() == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(("shard_count:", "shard:"))


class ShardRouter:
    """Routes pages to the shards of ``stub`` (an ``IndexShardServiceStub``). ``shard_count`` is the count known at
    start (``None``: ask first); ``learned(count)`` is awaited whenever GetShardInfo tells a new one (to keep it)."""

    def __init__(self, stub: shard_pb2_grpc.IndexShardServiceStub, shard_timeout_s: float, push_timeout_s: float,
                 shard_count: int | None = None, learned: Callable[[int], Awaitable[None]] | None = None) -> None:
        self._stub = stub
        self._timeout_s = shard_timeout_s
        self._push_timeout_s = push_timeout_s
        self._count = shard_count
        self._learned = learned
        self._asking: SingleFlight[str, int] = SingleFlight()

    @property
    def known(self) -> int | None:
        """The shard count last learned (``None``: never)."""
        return self._count

    def preset(self, shard_count: int) -> None:
        """Route by ``shard_count`` (the count kept from before a restart) until GetShardInfo tells another; ignored
        once a count was learned."""
        if self._count is None and 1 <= shard_count <= MAX_SHARDS:
            self._count = shard_count

    async def shard_count(self, refresh: bool = False) -> int:
        """The shards' ``shard_count``: the cached one, or (``refresh`` or none known) GetShardInfo's. Raises
        :class:`~services.runtime.errors.Unavailable` when the shards do not answer."""
        if self._count is not None and not refresh:
            return self._count
        count, _ = await self._asking.do("shard_count", lambda: asyncio.create_task(
            self._ask(), name="search-indexer-shard-info", context=contextvars.Context()))
        return count

    async def _ask(self) -> int:
        try:
            info = await self._stub.GetShardInfo(shard_pb2.GetShardInfoRequest(), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise Unavailable(f"search-shards did not tell its shard_count ({error.code().name}: "
                              f"{error.details()})") from error
        if not 1 <= info.shard_count <= MAX_SHARDS:
            raise Unavailable(f"search-shards told shard_count {info.shard_count}, not 1 to {MAX_SHARDS}")
        if info.shard_count != self._count:
            if self._count is not None:
                log.warning("search-shards now has %d shards (was %d): routing by the new count",
                            info.shard_count, self._count)
            self._count = info.shard_count
            if self._learned is not None:
                try:
                    await self._learned(info.shard_count)
                except Exception:  # only the restart's cache is lost
                    log.exception("keeping the shard count %d failed", info.shard_count)
        return info.shard_count

    async def put(self, page: Page, pagerank: float) -> int:
        """PutPage ``page`` (with its rank, 0 when not ranked yet) on its shard; returns the shard. Raises
        :class:`~services.runtime.errors.Unavailable` when the shard did not take it (or the shard count could not be
        learned)."""
        try:
            count = await self.shard_count()
        except Unavailable as error:
            metrics.SHARD_PUT_FAILURES.inc()
            raise Unavailable(f"the page is stored, but {error}; retry") from error
        message = page.to_proto()
        for attempt in range(2):
            shard = shard_of(page.url, count)
            try:
                await self._stub.PutPage(shard_pb2.PutPageRequest(shard=shard, shard_count=count, page=message,
                                                                  pagerank=pagerank), timeout=self._timeout_s)
                return shard
            except grpc.aio.AioRpcError as error:
                if attempt == 0 and is_shard_count_refusal(error):
                    try:
                        count = await self.shard_count(refresh=True)
                        continue
                    except Unavailable:
                        pass
                metrics.SHARD_PUT_FAILURES.inc()
                raise Unavailable(f"the page is stored, but shard {shard} of {count} did not take it "
                                  f"({error.code().name}: {error.details()}); retry") from error
        raise AssertionError("unreachable")  # pragma: no cover

    async def set_ranks(self, shard: int, shard_count: int, ranks: Sequence[shard_pb2.PageRankEntry],
                        rank_version: int) -> int:
        """SetPageRanks on ``shard`` (at most 100,000 ``ranks``, within the shard's request size); returns the entries
        the shard held. Raises ``grpc.aio.AioRpcError``."""
        response = await self._stub.SetPageRanks(shard_pb2.SetPageRanksRequest(
            shard=shard, shard_count=shard_count, ranks=ranks, rank_version=rank_version), timeout=self._push_timeout_s)
        return response.updated
