"""search-query's query log (:class:`QueryLog`): counts per normalised query sent in batches of at most 1,000 entries,
counts over 1,000,000 split, a failed send kept for the next flush (merged with what arrived meanwhile), the pending
log bounded (new queries dropped when full, the least counted dropped when kept counts overflow), refused batches not
retried, the final flush at stop, and sends made from a fresh context (no request's deadline)."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import REGISTRY

from casemesh.services.runtime import deadlines
from casemesh.services.search.query.query_log import (BATCH_MAX, MAX_ENTRY_COUNT, QueryLog, RejectedBatch,
                                                      batch_entries)


class Receiver:
    """A ``send`` that records batches; ``fail`` makes the next calls raise (``RejectedBatch`` or another error)."""

    def __init__(self) -> None:
        self.log: QueryLog | None = None
        self.batches: list[list[tuple[str, int]]] = []
        self.fail: Exception | None = None
        self.fail_after = 0  # calls that succeed before ``fail`` applies
        self.deadlines: list[float | None] = []
        self.during: list[str] = []  # queries logged while the next call is in flight


    async def __call__(self, entries: list[tuple[str, int]]) -> None:
        self.deadlines.append(deadlines.INBOUND_DEADLINE.get())
        while self.during:
            self.log.add(self.during.pop(0))
        if self.fail is not None and self.fail_after <= 0:
            raise self.fail
        self.fail_after -= 1
        self.batches.append(list(entries))

    def totals(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for batch in self.batches:
            for query, count in batch:
                totals[query] = totals.get(query, 0) + count
        return totals


def _dropped() -> float:
    return REGISTRY.get_sample_value("casemesh_search_query_log_queries_total", {"outcome": "dropped"}) or 0.0


async def test_counts_are_sent_in_batches_of_at_most_a_thousand():
    receiver = Receiver()
    log = QueryLog(receiver, flush_interval_s=60)
    for i in range(2_500):
        assert log.add(f"query {i}")
    log.add("query 7")
    assert log.pending == 2_501 and log.queued == 2_500
    assert await log.flush()
    assert [len(b) for b in receiver.batches] == [BATCH_MAX, BATCH_MAX, 500]
    assert receiver.totals() == {f"query {i}": 2 if i == 7 else 1 for i in range(2_500)}
    assert (log.pending, log.sent, log.logged) == (0, 2_501, 2_501)
    assert await log.flush() and len(receiver.batches) == 3  # nothing more to send


def test_a_count_over_the_contracts_cap_is_split():
    assert batch_entries({"a": 2_500_000, "b": 1}) == [("a", MAX_ENTRY_COUNT), ("a", MAX_ENTRY_COUNT),
                                                       ("a", 500_000), ("b", 1)]


async def test_a_failed_send_keeps_the_counts_for_the_next_flush():
    receiver = Receiver()
    log = QueryLog(receiver, flush_interval_s=60)
    for i in range(1_500):
        log.add(f"q{i}")
    receiver.fail, receiver.fail_after = ConnectionError("autocomplete down"), 1  # the second batch fails
    assert not await log.flush()
    assert len(receiver.batches) == 1 and log.send_failures == 1
    log.add("q0")  # arrived meanwhile
    log.add("q1499")
    assert log.pending == 502
    receiver.fail = None
    assert await log.flush()
    assert receiver.totals() == {**{f"q{i}": 1 for i in range(1, 1_499)}, "q0": 2, "q1499": 2}


async def test_a_refused_batch_is_dropped_not_retried():
    receiver = Receiver()
    log = QueryLog(receiver, flush_interval_s=60)
    log.add("bad")
    receiver.fail = RejectedBatch("queries[0].query: ...")
    assert await log.flush()
    assert (log.rejected, log.pending) == (1, 0)


async def test_the_pending_log_is_bounded():
    receiver = Receiver()
    log = QueryLog(receiver, flush_interval_s=60, max_pending=3)
    before = _dropped()
    for query in ("a", "b", "b", "c", "c", "c"):
        assert log.add(query)
    assert not log.add("d") and log.add("a")  # a new query when full is dropped; a held one still counts
    assert log.dropped == 1 and _dropped() == before + 1
    receiver.log, receiver.during = log, ["x", "y", "y"]  # logged while the batch is in flight
    receiver.fail = ConnectionError("down")
    assert not await log.flush()  # {a: 2, b: 2, c: 3} kept with {x: 1, y: 2}: the two least counted go
    assert log.counts() == {"b": 2, "c": 3, "y": 2}
    assert log.dropped == 1 + 1 + 2 and _dropped() == before + 4


async def test_the_loop_flushes_every_interval_from_a_fresh_context_and_once_more_at_stop():
    receiver = Receiver()
    log = QueryLog(receiver, flush_interval_s=0.05)
    token = deadlines.INBOUND_DEADLINE.set(time.monotonic() + 0.01)  # as if started while serving a request
    try:
        await log.start()
    finally:
        deadlines.INBOUND_DEADLINE.reset(token)
    log.add("first")
    for _ in range(200):
        if receiver.batches:
            break
        await asyncio.sleep(0.01)
    assert receiver.batches == [[("first", 1)]]
    log.add("last")
    assert await asyncio.wait_for(log.stop(), 5) == 0
    assert receiver.totals() == {"first": 1, "last": 1}
    assert set(receiver.deadlines) == {None}


def test_bad_bounds():
    with pytest.raises(ValueError):
        QueryLog(Receiver(), flush_interval_s=1, max_pending=0)
