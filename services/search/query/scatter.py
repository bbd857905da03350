"""The scatter of the scatter-gather: one query to every index shard, in two phases, each call with its own deadline.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index across thousands of machines", "Query Processor: Parse query, retrieve docs, rank results", "Query processing:
Millions of QPS, sub-500ms latency"). The index is document-sharded (protos/casemesh/search/v1/shard.proto): every
shard holds some pages and may hold matches, so every query goes to every shard.

1. **Statistics** (GetTermStatistics to every shard in parallel): each shard's page count, term count and the query
   terms' document frequencies, summed over the shards that answered. This is Elasticsearch's "DFS query then
   fetch": BM25's IDF and average page length then come from the whole collection, not from one shard's share of
   it, so a page scores the same whichever shard holds it and however many shards there are (the invariant of
   tests/integration/test_search_shard_invariance.py).
2. **Search** (SearchShard to the shards that answered phase 1, in parallel): each shard's best ``top_k`` pages
   scored with the summed statistics, and how many of its pages match.

Each shard call's timeout is ``shard_deadline_ms`` (:class:`~.settings.QuerySettings`), capped by what is left of
the Search call's own deadline (``shard_deadline_ms`` 0: that remainder alone). A shard that fails or misses its
deadline in either phase is left out and the answer says so (:attr:`Gathered.partial`): a bounded latency rather
than waiting for the slowest shard, the tail-at-scale trade (Dean and Barroso, "The Tail at Scale", CACM 2013).
Only when no shard answered does the query fail (:class:`~services.runtime.errors.Unavailable`).

The shard count is asked once (GetShardInfo, cached) and asked again when a shard answers INVALID_ARGUMENT about
``shard_count`` (the shards process restarted with another ``shards`` setting): the query is then scattered again
once with the new count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from casemesh.search.v1 import search_pb2, shard_pb2, shard_pb2_grpc

from ...runtime import deadlines
from ...runtime.errors import Unavailable
from ..contract import MAX_SHARDS
from . import metrics
from .parser import ParsedQuery

log = logging.getLogger("casemesh.search.query.scatter")

__all__ = ["NO_DEADLINE_TIMEOUT_S", "SHARD_INFO_TIMEOUT_S", "Gathered", "ShardScatter"]

#: Seconds a shard call may take when neither ``shard_deadline_ms`` nor the Search call's deadline bounds it.
NO_DEADLINE_TIMEOUT_S = 30.0
#: Seconds GetShardInfo may take (capped by the Search call's deadline).
SHARD_INFO_TIMEOUT_S = 1.0


class _StaleShardCount(Exception):
    """A shard answered INVALID_ARGUMENT naming ``shard_count``: the cached count is not the process's any more."""


@dataclass(frozen=True)
class Gathered:
    """What the shards answered to one query: each answering shard's best pages (each list best first)."""

    hit_lists: list[Sequence[search_pb2.SearchHit]]
    #: Pages that match, summed over the shards in the result.
    total_matches: int
    #: The shards asked (the shards process's ``shards`` setting).
    shards_total: int
    #: The shards whose phase-2 answers are in the result.
    shards_answered: int

    @property
    def partial(self) -> bool:
        """True when a shard was left out (it failed or missed its deadline in either phase)."""
        return self.shards_answered < self.shards_total


def _statistics_match(terms: Sequence[str]) -> Callable[[shard_pb2.GetTermStatisticsResponse], bool]:
    def check(response: shard_pb2.GetTermStatisticsResponse) -> bool:
        return [t.term for t in response.statistics.terms] == list(terms)
    return check


def summed(parts: Sequence[search_pb2.CollectionStatistics], terms: Sequence[str]) -> search_pb2.CollectionStatistics:
    """The collection's statistics: ``parts`` (one per shard, each with one entry per term of ``terms``) summed."""
    return search_pb2.CollectionStatistics(
        doc_count=sum(p.doc_count for p in parts), total_terms=sum(p.total_terms for p in parts),
        terms=[search_pb2.TermStatistics(term=term, doc_freq=sum(p.terms[i].doc_freq for p in parts))
               for i, term in enumerate(terms)])


class ShardScatter:
    """Scatters parsed queries to the shards of ``search-shards`` through ``stub`` (as the module docstring says).

    ``shard_deadline_ms`` (>= 0; 0: none) bounds each shard call; ``pagerank_weight`` is passed to every
    SearchShard. Outcomes of shard calls go to ``casemesh_search_query_shard_calls_total``.
    """

    def __init__(self, stub: shard_pb2_grpc.IndexShardServiceStub, shard_deadline_ms: int,
                 pagerank_weight: float) -> None:
        self._stub = stub
        self._shard_deadline_s = shard_deadline_ms / 1000 if shard_deadline_ms > 0 else None
        self._pagerank_weight = pagerank_weight
        self._shard_count: int | None = None
        self._info_lock = asyncio.Lock()

    def _timeout_s(self) -> float:
        """One shard call's timeout: ``shard_deadline_ms`` capped by the Search call's remaining deadline."""
        left = deadlines.remaining_s()
        if left is not None:
            left = max(left, 0.001)
        if self._shard_deadline_s is None:
            return NO_DEADLINE_TIMEOUT_S if left is None else left
        return self._shard_deadline_s if left is None else min(self._shard_deadline_s, left)

    async def shard_count(self) -> int:
        """The shards process's ``shards`` setting (asked once, then cached); :class:`Unavailable` when it does not
        answer GetShardInfo."""
        if self._shard_count is not None:
            return self._shard_count
        async with self._info_lock:
            if self._shard_count is None:
                left = deadlines.remaining_s()
                timeout = SHARD_INFO_TIMEOUT_S if left is None else max(0.001, min(SHARD_INFO_TIMEOUT_S, left))
                try:
                    info = await self._stub.GetShardInfo(shard_pb2.GetShardInfoRequest(), timeout=timeout)
                except grpc.aio.AioRpcError as error:
                    raise Unavailable(f"search-shards did not answer GetShardInfo: {error.code().name} "
                                      f"{error.details()}") from None
                if not 1 <= info.shard_count <= MAX_SHARDS:
                    raise Unavailable(f"search-shards answered shard_count {info.shard_count}, not 1 to {MAX_SHARDS}")
                self._shard_count = info.shard_count
            return self._shard_count

    def _forget_shard_count(self, stale: int) -> None:
        if self._shard_count == stale:
            log.warning("search-shards refused shard_count %d; asking GetShardInfo again", stale)
            self._shard_count = None

    async def _call(self, phase: str, call: Callable[..., Awaitable[Any]], request: Any,
                    valid: Callable[[Any], bool] | None = None) -> Any | None:
        """One shard call: its answer, or ``None`` when it failed or missed its deadline (counted by outcome).

        Raises :class:`_StaleShardCount` when the shard refused the request's ``shard_count``.
        """
        try:
            response = await call(request, timeout=self._timeout_s())
        except grpc.aio.AioRpcError as error:
            code = error.code()
            if code == grpc.StatusCode.INVALID_ARGUMENT and (error.details() or "").startswith("shard_count"):
                metrics.SHARD_CALLS.labels(phase, "error").inc()
                raise _StaleShardCount(error.details()) from None
            missed = code == grpc.StatusCode.DEADLINE_EXCEEDED
            metrics.SHARD_CALLS.labels(phase, "deadline" if missed else "error").inc()
            if code not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE):
                log.warning("shard %d answered %s to %s: %s", request.shard, code.name, phase, error.details())
            return None
        if valid is not None and not valid(response):
            metrics.SHARD_CALLS.labels(phase, "error").inc()
            log.warning("shard %d answered %s with statistics of other terms; left out", request.shard, phase)
            return None
        metrics.SHARD_CALLS.labels(phase, "ok").inc()
        return response

    async def _phase(self, phase: str, call: Callable[..., Awaitable[Any]], requests: Sequence[Any],
                     valid: Callable[[Any], bool] | None = None) -> list[Any | None]:
        """``requests`` (one per shard) sent in parallel; the answers in the same order, ``None`` for shards left
        out. :class:`_StaleShardCount` when a shard refused the shard count (after every call ended)."""
        answers = await asyncio.gather(*(self._call(phase, call, r, valid) for r in requests), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return answers

    async def _scatter(self, shard_count: int, query: ParsedQuery, top_k: int) -> Gathered:
        statistics = await self._phase("statistics", self._stub.GetTermStatistics, [
            shard_pb2.GetTermStatisticsRequest(shard=shard, shard_count=shard_count, terms=query.terms)
            for shard in range(shard_count)], _statistics_match(query.terms))
        shards = [shard for shard, answer in enumerate(statistics) if answer is not None]
        if not shards:
            raise Unavailable(f"no index shard answered in time (0 of {shard_count}, term statistics)")
        collection = summed([statistics[shard].statistics for shard in shards], query.terms)
        parsed = query.message()
        answers = await self._phase("search", self._stub.SearchShard, [
            shard_pb2.SearchShardRequest(shard=shard, shard_count=shard_count, query=parsed, statistics=collection,
                                         top_k=top_k, pagerank_weight=self._pagerank_weight)
            for shard in shards])
        answered = [answer for answer in answers if answer is not None]
        if not answered:
            raise Unavailable(f"no index shard answered in time (0 of {shard_count}, search)")
        return Gathered(hit_lists=[answer.hits for answer in answered],
                        total_matches=sum(answer.matched for answer in answered), shards_total=shard_count,
                        shards_answered=len(answered))

    async def gather(self, query: ParsedQuery, top_k: int) -> Gathered:
        """Every answering shard's best ``top_k`` pages (1 to 1,000) for ``query``, scored with the statistics summed
        over the shards that answered phase 1.

        Raises :class:`Unavailable` when no shard answered (in either phase), or when search-shards does not answer
        GetShardInfo, or keeps refusing the shard count it just gave.
        """
        for _ in range(2):
            shard_count = await self.shard_count()
            try:
                return await self._scatter(shard_count, query, top_k)
            except _StaleShardCount:
                self._forget_shard_count(shard_count)
        raise Unavailable("search-shards refused the shard count it reports (it is restarting); retry")
