"""moderation-review's queue (services/moderation/review/queue.py) over its real SQLite file, with an injected clock:
earliest-due-first order across kinds, leases that run out and give the task back, ``lease_lost`` and
``already_completed``, idempotent Enqueue and CompleteTask (concurrent too), a failed write that leaves nothing
claimed, the verdicts' outbox (acknowledgement deletes, the long poll is woken by a completion), the queue stats, and
the rebuild from the file after a restart (tasks, leases, unacknowledged verdicts, seqs never reused)."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest

from casemesh.services.moderation.review.queue import APPEAL, FIRST, ReviewQueue
from casemesh.services.moderation.review.store import FILE_NAME, ReviewStore
from casemesh.services.runtime.errors import FailedPrecondition, NotFound, Unavailable

FIRST_SLA_S = 100
APPEAL_SLA_S = 200
LEASE_MS = 10_000


class Clock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


async def _queue(tmp_path, clock: Clock) -> ReviewQueue:
    queue = ReviewQueue(ReviewStore(tmp_path / FILE_NAME), FIRST_SLA_S, APPEAL_SLA_S, clock)
    await queue.start()
    return queue


def _rows(tmp_path, sql: str) -> list[tuple]:
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        return db.execute(sql).fetchall()


async def test_tasks_are_handed_out_earliest_due_first_across_kinds(tmp_path):
    clock = Clock()
    start = clock.now_ms
    queue = await _queue(tmp_path, clock)
    try:
        _, appeal_due = await queue.enqueue("a", "text a", 0.9, APPEAL, "it was a joke")  # due 200 s
        assert appeal_due == start + APPEAL_SLA_S * 1000
        clock.advance(10)
        _, first_due = await queue.enqueue("f1", "text f1", 0.5, FIRST)  # due 110 s
        assert first_due == start + 110_000
        clock.advance(10)
        await queue.enqueue("f2", "text f2", 0.4, FIRST)  # due 120 s
        clock.advance(130)
        await queue.enqueue("f3", "text f3", 0.6, FIRST)  # due 250 s: after the appeal
        order = []
        while (task := await queue.claim("r1", LEASE_MS)) is not None:
            order.append(task.item_id)
        assert order == ["f1", "f2", "a", "f3"]
        assert await queue.claim("r2", LEASE_MS) is None  # everything leased
        stats = {k.kind: k for k in queue.stats().kinds}
        assert (stats[FIRST].open, stats[FIRST].claimed, stats[APPEAL].claimed) == (0, 3, 1)
    finally:
        await queue.close()


async def test_a_claimed_task_carries_its_lease(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        task_id, due = await queue.enqueue("i1", "some text", 0.55, APPEAL, "please")
        clock.advance(3)
        task = await queue.claim("r1", LEASE_MS)
        assert (task.task_id, task.item_id, task.text, task.violation_probability, task.kind, task.appeal_reason) == (
            task_id, "i1", "some text", 0.55, APPEAL, "please")
        assert task.due_at_unix_ms == due and task.enqueued_at_unix_ms == due - APPEAL_SLA_S * 1000
        assert task.lease_expires_at_unix_ms == clock.now_ms + LEASE_MS and task.claims == 1 and task.lease_token
        assert _rows(tmp_path, "SELECT status, lease_token, reviewer_id, claims FROM tasks") == [
            ("claimed", task.lease_token, "r1", 1)]  # written before the answer
    finally:
        await queue.close()


async def test_an_expired_lease_returns_the_task_and_the_old_lease_is_lost(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        task_id, _ = await queue.enqueue("i1", "text", 0.5, FIRST)
        first = await queue.claim("r1", 2_000)
        assert await queue.claim("r2", LEASE_MS) is None
        clock.advance(1.999)
        assert queue.sweep() == 0 and await queue.claim("r2", LEASE_MS) is None
        clock.advance(0.001)  # the lease ran out: the task is open again
        assert queue.sweep() == 1
        assert {k.kind: k.open for k in queue.stats().kinds}[FIRST] == 1
        second = await queue.claim("r2", LEASE_MS)
        assert (second.task_id, second.claims) == (task_id, 2) and second.lease_token != first.lease_token
        with pytest.raises(FailedPrecondition, match="^lease_lost: "):
            await queue.complete(task_id, first.lease_token, "r1", "approve")
        with pytest.raises(FailedPrecondition, match="^lease_lost: "):
            await queue.complete(task_id, second.lease_token, "r1", "approve")  # not r1's lease
        # expired and not claimed again: found lazily by CompleteTask itself
        clock.advance(LEASE_MS / 1000)
        with pytest.raises(FailedPrecondition, match="^lease_lost: "):
            await queue.complete(task_id, second.lease_token, "r2", "approve")
        third = await queue.claim("r3", LEASE_MS)  # expired leases are checked at claim time too
        assert third.claims == 3
        seq = await queue.complete(task_id, third.lease_token, "r3", "remove")
        assert seq == 1 and len(queue) == 0
    finally:
        await queue.close()


async def test_enqueue_is_idempotent_by_item_and_kind(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        answers = await asyncio.gather(*(queue.enqueue("i1", "text", 0.5, FIRST) for _ in range(10)))
        assert len(set(answers)) == 1 and len(queue) == 1
        clock.advance(5)
        assert await queue.enqueue("i1", "other text", 0.7, FIRST) == answers[0]  # the first task
        appeal, _ = await queue.enqueue("i1", "text", 0.5, APPEAL)  # another kind: another task
        assert appeal != answers[0][0] and len(queue) == 2
        task = await queue.claim("r1", LEASE_MS)
        assert task.task_id == answers[0][0]
        await queue.complete(task.task_id, task.lease_token, "r1", "approve")
        # completed: a re-send (the pipeline lost the answer) still gets the first task, and queues nothing
        assert await queue.enqueue("i1", "text", 0.5, FIRST) == answers[0]
        assert len(queue) == 1 and _rows(tmp_path, "SELECT COUNT(*) FROM tasks") == [(2,)]
    finally:
        await queue.close()


async def test_complete_task_is_idempotent_and_refuses_another_verdict(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        task_id, _ = await queue.enqueue("i1", "text", 0.5, FIRST)
        task = await queue.claim("r1", LEASE_MS)
        seqs = await asyncio.gather(*(queue.complete(task_id, task.lease_token, "r1", "remove", "rude")
                                      for _ in range(5)))
        assert seqs == [1] * 5
        assert await queue.complete(task_id, task.lease_token, "r1", "remove") == 1
        with pytest.raises(FailedPrecondition, match="^already_completed: "):
            await queue.complete(task_id, task.lease_token, "r1", "approve")
        with pytest.raises(FailedPrecondition, match="^lease_lost: "):
            await queue.complete(task_id, "not-the-token", "r1", "remove")
        with pytest.raises(NotFound):
            await queue.complete("unknown", task.lease_token, "r1", "remove")
        assert _rows(tmp_path, "SELECT seq, task_id, item_id, kind, verdict, reviewer_id, note FROM verdicts") == [
            (1, task_id, "i1", FIRST, "remove", "r1", "rude")]
        assert _rows(tmp_path, "SELECT status, verdict, verdict_seq FROM tasks") == [("completed", "remove", 1)]
    finally:
        await queue.close()


async def test_concurrent_claims_never_share_a_task(tmp_path):
    queue = await _queue(tmp_path, Clock())
    try:
        for n in range(20):
            await queue.enqueue(f"i{n}", "text", 0.5, FIRST)
        claimed = await asyncio.gather(*(queue.claim(f"r{n}", LEASE_MS) for n in range(30)))
        ids = [task.task_id for task in claimed if task is not None]
        assert len(ids) == len(set(ids)) == 20
    finally:
        await queue.close()


async def test_a_failed_claim_write_leaves_the_task_open(tmp_path, monkeypatch):
    queue = await _queue(tmp_path, Clock())
    try:
        task_id, _ = await queue.enqueue("i1", "text", 0.5, FIRST)

        async def broken(*args, **kwargs):
            raise Unavailable("disk full")

        monkeypatch.setattr(queue._store, "claim", broken)
        with pytest.raises(Unavailable):
            await queue.claim("r1", LEASE_MS)
        monkeypatch.undo()
        stats = {k.kind: k for k in queue.stats().kinds}
        assert (stats[FIRST].open, stats[FIRST].claimed) == (1, 0)
        task = await queue.claim("r1", LEASE_MS)
        assert (task.task_id, task.claims) == (task_id, 1)
    finally:
        await queue.close()


async def test_the_outbox_acknowledges_and_long_polls(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        assert await queue.pull(0, 10, 0) == []
        for n in range(3):
            await queue.enqueue(f"i{n}", "text", 0.5, FIRST)
        for n in range(3):
            task = await queue.claim("r1", LEASE_MS)
            await queue.complete(task.task_id, task.lease_token, "r1", "approve" if n % 2 else "remove")
        assert [v.seq for v in await queue.pull(0, 10, 0)] == [1, 2, 3]
        assert [(v.seq, v.item_id, v.verdict) for v in await queue.pull(0, 2, 0)] == [(1, "i0", "remove"),
                                                                                      (2, "i1", "approve")]
        assert [v.seq for v in await queue.pull(2, 10, 0)] == [3]  # 1 and 2 acknowledged: deleted
        assert _rows(tmp_path, "SELECT seq FROM verdicts") == [(3,)]
        assert queue.stats().verdicts_pending == 1
        assert await queue.pull(3, 10, 0.05) == [] and queue.stats().verdicts_pending == 0

        # a waiting pull is woken by the next completion
        await queue.enqueue("i9", "text", 0.5, FIRST)
        waiting = asyncio.create_task(queue.pull(3, 10, 30))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        task = await queue.claim("r1", LEASE_MS)
        await queue.complete(task.task_id, task.lease_token, "r1", "approve")
        woken = await asyncio.wait_for(waiting, 10)
        assert [(v.seq, v.item_id) for v in woken] == [(4, "i9")]
    finally:
        await queue.close()


async def test_the_queue_stats(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    try:
        await queue.enqueue("f1", "text", 0.5, FIRST)
        clock.advance(50)
        await queue.enqueue("f2", "text", 0.5, FIRST)
        await queue.enqueue("a1", "text", 0.5, APPEAL)
        await queue.claim("r1", 3_600_000)  # f1, leased for an hour
        clock.advance(60)  # f1 is due (100 s after queueing): overdue even while claimed
        stats = {k.kind: k for k in queue.stats().kinds}
        assert stats[FIRST] == (FIRST, 1, 1, 110_000, 1)
        assert stats[APPEAL] == (APPEAL, 1, 0, 60_000, 0)
        clock.advance(40)
        assert {k.kind: k.overdue for k in queue.stats().kinds} == {FIRST: 2, APPEAL: 0}
    finally:
        await queue.close()


async def test_a_restart_keeps_tasks_leases_and_unacknowledged_verdicts(tmp_path):
    clock = Clock()
    queue = await _queue(tmp_path, clock)
    for name in ("done", "held", "lapsed", "open"):
        await queue.enqueue(name, f"text {name}", 0.5, FIRST)
        clock.advance(1)
    await queue.enqueue("appeal", "text", 0.5, APPEAL, "why")
    done = await queue.claim("r1", LEASE_MS)
    held = await queue.claim("r2", 60_000)
    lapsed = await queue.claim("r3", 1_000)
    seq = await queue.complete(done.task_id, done.lease_token, "r1", "remove")
    await queue.close()

    clock.advance(2)  # lapsed's lease ran out while the service was down
    queue = await _queue(tmp_path, clock)
    try:
        assert len(queue) == 4
        assert [(v.seq, v.item_id) for v in await queue.pull(0, 10, 0)] == [(seq, "done")]
        stats = {k.kind: k for k in queue.stats().kinds}
        assert (stats[FIRST].open, stats[FIRST].claimed, stats[APPEAL].open) == (2, 1, 1)
        # the held lease is still good after the restart; the lapsed one is lost
        assert await queue.complete(held.task_id, held.lease_token, "r2", "approve") == seq + 1
        with pytest.raises(FailedPrecondition, match="^lease_lost: "):
            await queue.complete(lapsed.task_id, lapsed.lease_token, "r3", "approve")
        # idempotency survives the restart: the completed task and its seq are in the file
        assert await queue.complete(done.task_id, done.lease_token, "r1", "remove") == seq
        assert await queue.enqueue("done", "text done", 0.5, FIRST) == (done.task_id, done.due_at_unix_ms)
        assert [t.item_id for t in [await queue.claim("r4", LEASE_MS) for _ in range(3)]] == [
            "lapsed", "open", "appeal"]
        await queue.pull(seq + 1, 10, 0)  # everything acknowledged
        assert _rows(tmp_path, "SELECT COUNT(*) FROM verdicts") == [(0,)]
    finally:
        await queue.close()

    queue = await _queue(tmp_path, clock)
    try:
        task = await queue.claim("r5", LEASE_MS)
        assert task is None  # all three leased above, leases still running
        clock.advance(LEASE_MS / 1000)
        task = await queue.claim("r5", LEASE_MS)
        # an emptied outbox never reuses a seq (AUTOINCREMENT): the pipeline's cursor stays valid
        assert await queue.complete(task.task_id, task.lease_token, "r5", "approve") == seq + 2
    finally:
        await queue.close()
