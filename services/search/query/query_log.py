"""The query log: first-page queries counted in memory and sent to ``search-autocomplete`` in batches.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Autocomplete and spell
correction"; seed 001 #10, shared/seeds/001_58dfc580020147d2.txt line 27: "query processing, autocomplete").
Autocomplete suggests what people ask, so every successfully parsed first-page Search is one occurrence of its
normalised query (``contract.normalize_query(query).strip()``: lower case, single spaces). Counting them here and
sending ``{query: count}`` every ``query_log_flush_ms`` keeps the log off the request path (one dict increment per
Search, no await) and turns a million identical queries per second into one entry per flush: the batching that the
URL shortener's clicks and the video views use too (:class:`~services.runtime.flusher.IntervalFlusher`).

A flush sends what was counted when it began in RecordQueries calls of at most :data:`BATCH_MAX` entries (a count
over :data:`MAX_ENTRY_COUNT` is split over several entries, as the contract caps one entry's count), one call at a
time. A failed call keeps its counts and those not yet sent, merged with what arrived meanwhile, for the next flush
(one interval later: a down autocomplete is not hammered); a batch search-autocomplete refuses as invalid
(:class:`RejectedBatch`) is dropped, not retried. Delivery is at least once (a call that timed out after the
autocomplete counted it is sent again): popularity counts are approximate by design.

Memory is bounded: at most ``max_pending`` distinct queries are queued (and at most as many in the flush in flight).
A new query when the queue is full is dropped (its one occurrence is the least count there is); when the counts kept
after a failed send, merged with those queued meanwhile, overflow the bound, the least counted queries are dropped
(ties: the alphabetically first). Drops are counted in ``casemesh_search_query_log_queries_total{outcome="dropped"}``.
"""

from __future__ import annotations

import asyncio
import contextvars
import heapq
import logging
from collections.abc import Awaitable, Callable

from ...runtime.flusher import IntervalFlusher
from . import metrics

log = logging.getLogger("casemesh.search.query.query_log")

__all__ = ["BATCH_MAX", "MAX_ENTRY_COUNT", "MAX_PENDING_QUERIES", "QueryLog", "RejectedBatch", "Send", "batch_entries"]

#: Most entries per RecordQueries call (protos/casemesh/search/v1/query.proto: ``queries``, 1 to 1,000 entries).
BATCH_MAX = 1_000
#: Largest count of one entry (query.proto: ``queries[i].count``, 1 to 1,000,000).
MAX_ENTRY_COUNT = 1_000_000
#: Distinct queries held at most (queued or in flight).
MAX_PENDING_QUERIES = 100_000

#: ``send(entries)``: deliver ``[(query, count), ...]`` (at most :data:`BATCH_MAX`, each count 1 to
#: :data:`MAX_ENTRY_COUNT`); raise :class:`RejectedBatch` when the receiver refuses it for good, anything else to retry.
Send = Callable[[list[tuple[str, int]]], Awaitable[None]]


class RejectedBatch(Exception):
    """Raised by ``send`` when search-autocomplete refused the batch as invalid (retrying cannot help)."""


def batch_entries(counts: dict[str, int]) -> list[tuple[str, int]]:
    """``counts`` as RecordQueries entries: one per query, a count over :data:`MAX_ENTRY_COUNT` split in several."""
    entries: list[tuple[str, int]] = []
    for query, count in counts.items():
        while count > 0:
            entries.append((query, min(count, MAX_ENTRY_COUNT)))
            count -= MAX_ENTRY_COUNT
    return entries


class QueryLog(IntervalFlusher):
    """Counts of normalised queries flushed to ``send`` every ``flush_interval_s`` seconds (see the module docstring).

    :meth:`add` is synchronous and O(1); single event loop, not thread-safe. Counters (ints): ``logged``
    (occurrences accepted), ``sent``, ``dropped``, ``rejected``, ``send_failures``.
    """

    def __init__(self, send: Send, flush_interval_s: float, max_pending: int = MAX_PENDING_QUERIES) -> None:
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1 (got {max_pending})")
        super().__init__(flush_interval_s, "search-query-log")
        self._send = send
        self.max_pending = max_pending
        self._counts: dict[str, int] = {}
        self._in_flight: dict[str, int] = {}  # the flush in progress: what is not delivered yet
        self.logged = self.sent = self.dropped = self.rejected = self.send_failures = 0

    @property
    def pending(self) -> int:
        """Query occurrences held and not yet delivered (queued plus in flight)."""
        return sum(self._counts.values()) + sum(self._in_flight.values())

    @property
    def queued(self) -> int:
        """Distinct queries queued for the next flush (not those of a flush in progress); at most ``max_pending``."""
        return len(self._counts)

    def counts(self) -> dict[str, int]:
        """A copy of the queued counts (not those of a flush in progress)."""
        return dict(self._counts)

    def add(self, query: str) -> bool:
        """Count one occurrence of ``query`` (normalised, 1 to 512 characters); False when the log is full and the
        query is new (dropped and counted)."""
        count = self._counts.get(query)
        if count is None:
            if len(self._counts) >= self.max_pending:
                self.dropped += 1
                metrics.LOG_QUERIES.labels("dropped").inc()
                return False
            self._counts[query] = 1
            metrics.LOG_PENDING.set(len(self._counts))
        else:
            self._counts[query] = count + 1
        self.logged += 1
        return True

    async def start(self) -> None:
        """Start the flush loop in a fresh :class:`contextvars.Context`: its calls carry no request's deadline or
        trace, whatever context ``start`` is called from."""
        await asyncio.get_running_loop().create_task(super().start(), context=contextvars.Context())

    def _requeue(self, counts: dict[str, int]) -> None:
        """Put ``counts`` (not delivered) back, merged with what arrived meanwhile; beyond ``max_pending`` distinct
        queries, the least counted are dropped."""
        for query, count in counts.items():
            self._counts[query] = self._counts.get(query, 0) + count
        excess = len(self._counts) - self.max_pending
        if excess > 0:
            least = heapq.nsmallest(excess, self._counts.items(), key=lambda item: (item[1], item[0]))
            for query, count in least:
                del self._counts[query]
                self.dropped += count
            metrics.LOG_QUERIES.labels("dropped").inc(sum(count for _, count in least))
        metrics.LOG_PENDING.set(len(self._counts))

    async def _flush_locked(self) -> bool:
        # Take what is counted now; queries asked during the sends wait for the next flush, so steady traffic goes
        # out once per interval rather than in back-to-back small batches.
        taken, self._counts = self._counts, {}
        metrics.LOG_PENDING.set(0)
        entries = batch_entries(taken)
        self._in_flight = taken
        try:
            for start in range(0, len(entries), BATCH_MAX):
                batch = entries[start:start + BATCH_MAX]
                occurrences = sum(count for _, count in batch)
                try:
                    await self._send(batch)
                except RejectedBatch as error:
                    self.rejected += occurrences
                    metrics.LOG_QUERIES.labels("rejected").inc(occurrences)
                    log.error("search-autocomplete refused %d logged queries: %s", len(batch), error)
                except Exception as error:  # any other failure: keep the counts, retry at the next flush
                    self.send_failures += 1
                    metrics.LOG_SEND_FAILURES.inc()
                    log.warning("sending %d logged queries to search-autocomplete failed, will retry: %r",
                                len(batch), error)
                    self._requeue(_merged(entries[start:]))
                    return False
                except BaseException:  # cancelled mid-send: keep the counts, then re-raise
                    self._requeue(_merged(entries[start:]))
                    raise
                else:
                    self.sent += occurrences
                    metrics.LOG_QUERIES.labels("sent").inc(occurrences)
                for query, count in batch:
                    left = self._in_flight[query] - count
                    if left:
                        self._in_flight[query] = left
                    else:
                        del self._in_flight[query]
            return True
        finally:
            self._in_flight = {}


def _merged(entries: list[tuple[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for query, count in entries:
        merged[query] = merged.get(query, 0) + count
    return merged

