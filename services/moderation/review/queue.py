"""The human review queue: tasks due within their kind's SLA, handed out earliest due first under leases, and the
verdicts' outbox (seed 001 #26, shared/seeds/001_58dfc580020147d2.txt line 50: "confidence routing, human review").

:class:`ReviewQueue` keeps every task not yet completed in memory, over its durable file (:mod:`.store`, rebuilt by
:meth:`ReviewQueue.start`); times are Unix milliseconds of ``clock`` (injected in tests).

**Earliest deadline first.** A task is due ``enqueued_at + SLA`` of its kind (``first_review_sla_s``,
``appeal_sla_s``). The open tasks are one ``sortedcontainers.SortedList`` ordered by due time, then by order of
queueing: :meth:`ReviewQueue.claim` hands out the head, the task due soonest whatever its kind, so an appeal queued
earlier but due later waits behind a newer first review (for one reviewer, earliest due date first minimises the
largest lateness, J. R. Jackson's rule, 1955; for a pool of reviewers it is the usual dispatching rule).

**Leases.** A claim leases the task to its reviewer for ``lease_ms`` under a fresh random token and writes the lease
(claims count, token, reviewer, expiry) before answering; a failed write gives the task back to the queue (nothing
claimed: UNAVAILABLE). A lease that runs out returns the task to the open queue with its due time unchanged (so it is
usually next): checked when ClaimTask and CompleteTask run and by :meth:`ReviewQueue.sweep` (every second). The
expiry is not written: after a restart a claimed task whose lease has run out is open again. CompleteTask with a lease
that ran out, another token or another reviewer is ``lease_lost``; with the same token and verdict again it gets the
first answer (the same verdict seq), with another verdict ``already_completed``.

**Check and record in one step.** Each call decides and changes memory with no ``await`` in between (the event loop
runs one call to its change first: two claims never get one task, two completions never both pass), then writes in a
task of its own (a caller cancelled meanwhile does not stop it) and answers once the write committed. While a
task's claim or completion is being written it is not expired, and other completions of it wait for that write.

**Outbox.** Completing writes the verdict (outbox seq, ``AUTOINCREMENT``) and marks the task completed in one
transaction, then removes the task from memory and wakes the pipeline's long poll. :meth:`ReviewQueue.pull` first
deletes the verdicts at or before ``after_seq`` (the pipeline applied them: acknowledged), then returns those after
it, waiting up to ``wait_s`` for one. Enqueue is idempotent by ``(item_id, kind)``: the file's unique key answers a
repeat with the first task, even once it is completed (completed tasks stay in the file, not in memory).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

from sortedcontainers import SortedDict, SortedList

from ...runtime.errors import FailedPrecondition, NotFound, Unavailable
from ..contract import ALREADY_COMPLETED, LEASE_LOST
from . import metrics
from .store import ReviewStore, TaskRow, VerdictRow

log = logging.getLogger("casemesh.moderation.review.queue")

__all__ = ["APPEAL", "APPROVE", "FIRST", "KINDS", "REMOVE", "VERDICTS", "KindStats", "QueueStats", "ReviewQueue",
           "Task", "VerdictRow", "wall_clock_ms"]

FIRST = "first"
APPEAL = "appeal"
KINDS = (FIRST, APPEAL)
APPROVE = "approve"
REMOVE = "remove"
VERDICTS = (APPROVE, REMOVE)
_LAST = "\U0010ffff"  # sorts after every task ID

T = TypeVar("T")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(slots=True, eq=False)
class Task:
    """A task not yet completed (ReviewTask). ``claimed``: leased now (the lease fields are the last claim's);
    ``pending``: its claim or completion being written (``None`` otherwise); ``order``: its place among tasks due in
    the same millisecond (first queued, first handed out)."""

    task_id: str
    item_id: str
    kind: str
    text: str
    violation_probability: float
    appeal_reason: str
    enqueued_at_unix_ms: int
    due_at_unix_ms: int
    claims: int = 0
    lease_token: str = ""
    reviewer_id: str = ""
    lease_expires_at_unix_ms: int = 0
    claimed: bool = False
    pending: asyncio.Task[Any] | None = None
    order: int = 0


class KindStats(NamedTuple):
    """The queue of one kind now: open and claimed tasks, age of the oldest not completed (ms, 0 when none), tasks
    past their due time."""

    kind: str
    open: int
    claimed: int
    oldest_age_ms: int
    overdue: int


class QueueStats(NamedTuple):
    """Every kind's :class:`KindStats` (first, appeal), and the verdicts not yet acknowledged."""

    kinds: tuple[KindStats, ...]
    verdicts_pending: int


class ReviewQueue:
    """The review queue over ``store`` (see the module docstring); SLAs in seconds, ``clock`` in Unix milliseconds."""

    def __init__(self, store: ReviewStore, first_review_sla_s: int, appeal_sla_s: int,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self._store = store
        self._sla_ms = {FIRST: first_review_sla_s * 1000, APPEAL: appeal_sla_s * 1000}
        self._clock = clock
        self._tasks: dict[str, Task] = {}
        self._by_key: dict[tuple[str, str], Task] = {}
        self._inserting: dict[tuple[str, str], asyncio.Task[TaskRow]] = {}
        self._open: SortedList = SortedList()  # (due_at, order, task_id)
        self._order = itertools.count()
        self._leases: SortedList = SortedList()  # (lease_expires_at, task_id) of claimed tasks
        self._enqueued = {kind: SortedList() for kind in KINDS}  # (enqueued_at, task_id), not completed
        self._due = {kind: SortedList() for kind in KINDS}  # (due_at, task_id), not completed
        self._claimed = dict.fromkeys(KINDS, 0)
        self._verdicts: SortedDict = SortedDict()  # seq -> VerdictRow, not acknowledged
        self._verdict_added = asyncio.Event()
        self._writes: set[asyncio.Task[Any]] = set()
        self._closed = False

    # -- memory --------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Tasks not yet completed."""
        return len(self._tasks)

    def _add(self, task: Task) -> None:
        task.order = next(self._order)
        self._tasks[task.task_id] = task
        self._by_key[(task.item_id, task.kind)] = task
        self._enqueued[task.kind].add((task.enqueued_at_unix_ms, task.task_id))
        self._due[task.kind].add((task.due_at_unix_ms, task.task_id))
        if task.claimed:
            self._leases.add((task.lease_expires_at_unix_ms, task.task_id))
            self._claimed[task.kind] += 1
        else:
            self._open.add((task.due_at_unix_ms, task.order, task.task_id))

    def _drop(self, task: Task) -> None:
        if self._tasks.get(task.task_id) is not task:
            return
        del self._tasks[task.task_id]
        self._by_key.pop((task.item_id, task.kind), None)
        self._enqueued[task.kind].discard((task.enqueued_at_unix_ms, task.task_id))
        self._due[task.kind].discard((task.due_at_unix_ms, task.task_id))
        if task.claimed:
            self._leases.discard((task.lease_expires_at_unix_ms, task.task_id))
            self._claimed[task.kind] -= 1
        else:
            self._open.discard((task.due_at_unix_ms, task.order, task.task_id))

    def _lease(self, task: Task, token: str, reviewer_id: str, expires_at_ms: int) -> None:
        self._open.remove((task.due_at_unix_ms, task.order, task.task_id))
        task.claimed = True
        task.claims += 1
        task.lease_token, task.reviewer_id, task.lease_expires_at_unix_ms = token, reviewer_id, expires_at_ms
        self._leases.add((expires_at_ms, task.task_id))
        self._claimed[task.kind] += 1

    def _reopen(self, task: Task) -> None:
        self._leases.discard((task.lease_expires_at_unix_ms, task.task_id))
        task.claimed = False
        self._claimed[task.kind] -= 1
        self._open.add((task.due_at_unix_ms, task.order, task.task_id))

    def _expire(self, now_ms: int) -> int:
        """Return the tasks whose lease ran out (``expires_at <= now``) to the open queue; how many."""
        expired = 0
        for _, task_id in list(self._leases.irange(maximum=(now_ms, _LAST))):
            task = self._tasks[task_id]
            if task.pending is None:  # a claim or completion being written is decided already
                self._reopen(task)
                expired += 1
        if expired:
            metrics.TASKS.labels("lease_expired").inc(expired)
        return expired

    def _kind_stats(self, kind: str, now_ms: int) -> KindStats:
        enqueued, claimed = self._enqueued[kind], self._claimed[kind]
        oldest = now_ms - enqueued[0][0] if enqueued else 0
        overdue = self._due[kind].bisect_right((now_ms, _LAST))
        return KindStats(kind, len(enqueued) - claimed, claimed, max(0, oldest), overdue)

    def _gauges(self, now_ms: int | None = None) -> None:
        now = self._clock() if now_ms is None else now_ms
        for kind in KINDS:
            stats = self._kind_stats(kind, now)
            metrics.QUEUE_DEPTH.labels(kind, "open").set(stats.open)
            metrics.QUEUE_DEPTH.labels(kind, "claimed").set(stats.claimed)
            metrics.OLDEST_AGE_SECONDS.labels(kind).set(stats.oldest_age_ms / 1000)
            metrics.OVERDUE.labels(kind).set(stats.overdue)
        metrics.VERDICTS_PENDING.set(len(self._verdicts))

    def _spawn(self, coroutine: Coroutine[Any, Any, T], name: str) -> asyncio.Task[T]:
        """Run a write in a task of its own (a cancelled caller does not stop it), awaited by :meth:`close`."""
        write = asyncio.create_task(coroutine, name=name)
        self._writes.add(write)
        write.add_done_callback(self._written)
        return write

    def _written(self, write: asyncio.Task[Any]) -> None:
        self._writes.discard(write)
        if not write.cancelled():
            write.exception()  # retrieved: its caller may have gone

    # -- the RPCs ------------------------------------------------------------------------------------------------------

    async def start(self) -> tuple[int, int]:
        """Rebuild memory from the file; how many tasks not completed and verdicts not acknowledged it holds."""
        tasks, verdicts = await self._store.load()
        for row in tasks:
            self._add(Task(row.task_id, row.item_id, row.kind, row.text, row.violation_probability, row.appeal_reason,
                           row.enqueued_at_unix_ms, row.due_at_unix_ms, row.claims, row.lease_token, row.reviewer_id,
                           row.lease_expires_at_unix_ms, claimed=row.status == "claimed"))
        for verdict in verdicts:
            self._verdicts[verdict.seq] = verdict
        self._gauges()
        return len(tasks), len(verdicts)

    async def enqueue(self, item_id: str, text: str, violation_probability: float, kind: str,
                      appeal_reason: str = "") -> tuple[str, int]:
        """Queue a task for ``item_id`` of ``kind`` (``first`` or ``appeal``), due ``enqueued_at + SLA``; its task ID
        and due time (ms). The same item and kind again returns the first task, completed or not. Raises
        ``Unavailable`` (the file could not be written: nothing queued)."""
        key = (item_id, kind)
        task = self._by_key.get(key)
        if task is not None:
            return task.task_id, task.due_at_unix_ms
        write = self._inserting.get(key)
        if write is None:
            now = self._clock()
            row = TaskRow(secrets.token_hex(8), item_id, kind, text, violation_probability, appeal_reason, now,
                          now + self._sla_ms[kind])
            write = self._spawn(self._store.insert(row, lambda stored: self._inserted(stored, row.task_id)),
                                name=f"moderation-review-enqueue-{item_id}")
            self._inserting[key] = write
            write.add_done_callback(lambda done: self._inserting.pop(key) if self._inserting.get(key) is done else None)
        stored = await asyncio.shield(write)
        return stored.task_id, stored.due_at_unix_ms

    def _inserted(self, stored: TaskRow, new_task_id: str) -> None:
        """After the insert committed: a new task joins the open queue (an earlier one is answered as it is)."""
        if stored.status == "completed" or stored.task_id in self._tasks:
            return
        self._add(Task(stored.task_id, stored.item_id, stored.kind, stored.text, stored.violation_probability,
                       stored.appeal_reason, stored.enqueued_at_unix_ms, stored.due_at_unix_ms, stored.claims,
                       stored.lease_token, stored.reviewer_id, stored.lease_expires_at_unix_ms,
                       claimed=stored.status == "claimed"))
        if stored.task_id == new_task_id:
            metrics.TASKS.labels("enqueued").inc()
        self._gauges()

    async def claim(self, reviewer_id: str, lease_ms: int) -> Task | None:
        """Lease the open task due soonest to ``reviewer_id`` for ``lease_ms``; a copy of it (with its lease), or
        ``None`` when no task is open. Raises ``Unavailable`` (the lease could not be written: nothing claimed)."""
        now = self._clock()
        self._expire(now)
        if not self._open:
            return None
        task = self._tasks[self._open[0][2]]
        previous = (task.claims, task.lease_token, task.reviewer_id, task.lease_expires_at_unix_ms)
        self._lease(task, secrets.token_hex(12), reviewer_id, now + lease_ms)
        self._gauges(now)
        claimed = dataclasses.replace(task, pending=None)
        write = task.pending = self._spawn(self._persist_claim(task, previous, now),
                                           name=f"moderation-review-claim-{task.task_id}")
        await asyncio.shield(write)
        return claimed

    async def _persist_claim(self, task: Task, previous: tuple[int, str, str, int], now_ms: int) -> None:
        token, claims = task.lease_token, task.claims
        try:
            await self._store.claim(task.task_id, token, task.reviewer_id, task.lease_expires_at_unix_ms, claims)
        except BaseException as error:  # every failure (a cancellation too) gives the task back to the queue
            task.pending = None
            if self._tasks.get(task.task_id) is task and task.claimed and task.lease_token == token:
                self._reopen(task)
                task.claims, task.lease_token, task.reviewer_id, task.lease_expires_at_unix_ms = previous
                self._gauges()
            if isinstance(error, Exception) and not isinstance(error, Unavailable):
                log.error("moderation-review: writing the claim of task %s failed: %r", task.task_id, error)
                raise Unavailable(f"the review queue's file could not be written: {error!r}") from error
            raise
        task.pending = None
        metrics.TASKS.labels("claimed").inc()
        if claims == 1:
            metrics.QUEUE_WAIT_SECONDS.labels(task.kind).observe(max(0, now_ms - task.enqueued_at_unix_ms) / 1000)

    async def complete(self, task_id: str, lease_token: str, reviewer_id: str, verdict: str, note: str = "") -> int:
        """Record ``verdict`` (``approve`` or ``remove``) on a task leased under ``lease_token`` to ``reviewer_id``;
        its outbox seq. Again with the same token and verdict: the same seq. Raises ``NotFound``, ``FailedPrecondition``
        (``lease_lost: ...``: the lease ran out, or the token or reviewer is not the lease's; ``already_completed:
        ...``: completed under this lease with another verdict), ``Unavailable`` (the file could not be written:
        nothing recorded, the lease still held)."""
        while (task := self._tasks.get(task_id)) is not None:
            if task.pending is not None:
                with contextlib.suppress(Unavailable):
                    await asyncio.shield(task.pending)
                continue  # the claim or the completion in flight decided: look again
            now = self._clock()
            if task.claimed and task.lease_expires_at_unix_ms <= now:
                self._reopen(task)
                metrics.TASKS.labels("lease_expired").inc()
                self._gauges(now)
            if not task.claimed:
                raise FailedPrecondition(f"{LEASE_LOST}: task {task_id} is not leased (its lease ran out and it went "
                                         "back to the queue); claim a task again")
            if task.lease_token != lease_token:
                raise FailedPrecondition(f"{LEASE_LOST}: task {task_id} is leased under another token (the lease ran "
                                         "out and the task went to another reviewer, or the token is not this task's)")
            if task.reviewer_id != reviewer_id:
                raise FailedPrecondition(f"{LEASE_LOST}: task {task_id}'s lease is another reviewer's")
            write = task.pending = self._spawn(self._persist_complete(task, verdict, note, now),
                                               name=f"moderation-review-complete-{task_id}")
            return (await asyncio.shield(write)).seq
        found, completion = await self._store.completion(task_id)
        if not found:
            raise NotFound(f"no review task {task_id!r}")
        if completion is None:  # in the file but not in memory: only while its insert is being applied
            raise Unavailable(f"task {task_id} is being queued; retry")
        if completion.lease_token != lease_token or completion.reviewer_id != reviewer_id:
            raise FailedPrecondition(f"{LEASE_LOST}: task {task_id} was completed under another lease")
        if completion.verdict != verdict:
            raise FailedPrecondition(f"{ALREADY_COMPLETED}: task {task_id} was completed with verdict "
                                     f"{completion.verdict}")
        return completion.verdict_seq

    async def _persist_complete(self, task: Task, verdict: str, note: str, now_ms: int) -> VerdictRow:
        def committed(row: VerdictRow) -> None:
            self._drop(task)
            self._verdicts[row.seq] = row
            self._verdict_added.set()
            self._verdict_added = asyncio.Event()
            metrics.TASKS.labels("completed").inc()
            self._gauges(now_ms)

        try:
            return await self._store.complete(task.task_id, task.lease_token, task.reviewer_id, verdict, note, now_ms,
                                              committed)
        except Exception as error:
            if not isinstance(error, Unavailable):
                log.error("moderation-review: writing the verdict of task %s failed: %r", task.task_id, error)
                raise Unavailable(f"the review queue's file could not be written: {error!r}") from error
            raise
        finally:
            task.pending = None

    def stats(self) -> QueueStats:
        """The queue per kind now, after returning the leases that ran out."""
        now = self._clock()
        if self._expire(now):
            self._gauges(now)
        return QueueStats(tuple(self._kind_stats(kind, now) for kind in KINDS), len(self._verdicts))

    async def pull(self, after_seq: int, max_verdicts: int, wait_s: float) -> list[VerdictRow]:
        """Delete the verdicts at or before ``after_seq`` (acknowledged), then return up to ``max_verdicts`` after it,
        oldest first, waiting up to ``wait_s`` seconds for one when there is none (empty after the wait, or at
        once when the queue is closing). A failed delete is logged and tried again by the next pull (the verdicts
        stay, and are not returned: they are at or before ``after_seq``)."""
        if self._verdicts and self._verdicts.peekitem(0)[0] <= after_seq:
            def acknowledged(_: int) -> None:
                for seq in list(self._verdicts.irange(maximum=after_seq)):
                    del self._verdicts[seq]
                metrics.VERDICTS_PENDING.set(len(self._verdicts))
            try:
                await self._store.acknowledge(after_seq, acknowledged)
            except Unavailable as error:
                log.warning("moderation-review: acknowledging verdicts up to %d failed (%s); next pull retries",
                            after_seq, error)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            found = [self._verdicts[seq] for seq in itertools.islice(self._verdicts.irange(minimum=after_seq + 1),
                                                                      max_verdicts)]
            remaining = deadline - loop.time()
            if found or self._closed or remaining <= 0:
                return found
            added = self._verdict_added
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(added.wait(), remaining)

    def sweep(self) -> int:
        """Return the tasks whose lease ran out to the queue and refresh the gauges (ages, overdue); how many."""
        now = self._clock()
        expired = self._expire(now)
        self._gauges(now)
        return expired

    async def close(self) -> None:
        """Answer every waiting pull (empty), let the writes in flight finish, then close the file."""
        self._closed = True
        self._verdict_added.set()
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)
        await self._store.close()
