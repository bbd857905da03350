"""The review queue against a model (hypothesis state machine): whatever the order of enqueues, claims, completions,
lapsed leases, pulls and restarts from the file, reviewers are handed the open task due soonest, a task is leased to
one reviewer at a time, a verdict is taken only under the task's current lease, and no task or unacknowledged verdict
is lost or duplicated (seed 001 #26, shared/seeds/001_58dfc580020147d2.txt line 50: "human review";
services/moderation/review/queue.py).

The model is the test's own: per task its kind, due time, queueing order, lease (token, reviewer, expiry) or
completion; the verdicts with their seqs. A restart closes the queue and opens a new one on the same file: leases
still running are kept, leases that ran out are open again, verdicts not acknowledged are still there.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from casemesh.services.moderation.review.queue import APPEAL, FIRST, ReviewQueue
from casemesh.services.moderation.review.store import FILE_NAME, ReviewStore
from casemesh.services.runtime.errors import FailedPrecondition

FIRST_SLA_S, APPEAL_SLA_S = 30, 10
ITEMS = [f"item-{n}" for n in range(6)]
REVIEWERS = ("ann", "bob")


@dataclass
class ModelTask:
    task_id: str
    kind: str
    due_ms: int
    order: int
    token: str = ""
    reviewer: str = ""
    expires_ms: int = 0
    verdict: str = ""


class ReviewQueueMachine(RuleBasedStateMachine):
    """Drives one ReviewQueue (on a file of its own) and the model side by side; the clock is the test's."""

    @initialize()
    def open(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.dir = Path(tempfile.mkdtemp(prefix="casemesh-review-model-"))
        self.now_ms = 1_800_000_000_000
        self.tasks: dict[tuple[str, str], ModelTask] = {}
        self.by_id: dict[str, ModelTask] = {}
        self.verdicts: dict[int, str] = {}  # seq -> task_id, not acknowledged
        self.acked = 0
        self.order = 0
        self.queue = self._open_queue()

    def _open_queue(self) -> ReviewQueue:
        queue = ReviewQueue(ReviewStore(self.dir / FILE_NAME), FIRST_SLA_S, APPEAL_SLA_S, lambda: self.now_ms)
        self.loop.run_until_complete(queue.start())
        return queue

    def _run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        if hasattr(self, "queue"):
            self._run(self.queue.close())
            self.loop.close()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _open_tasks(self) -> list[ModelTask]:
        """The tasks a claim may hand out: not completed, not under a running lease."""
        return [t for t in self.tasks.values() if not t.verdict and (not t.token or t.expires_ms <= self.now_ms)]

    @rule(item=st.sampled_from(ITEMS), kind=st.sampled_from((FIRST, APPEAL)))
    def enqueue(self, item: str, kind: str) -> None:
        task_id, due_ms = self._run(self.queue.enqueue(item, f"text of {item}", 0.5, kind))
        known = self.tasks.get((item, kind))
        if known is not None:  # idempotent: the first task, completed or not
            assert (task_id, due_ms) == (known.task_id, known.due_ms)
            return
        assert task_id not in self.by_id
        assert due_ms == self.now_ms + (FIRST_SLA_S if kind == FIRST else APPEAL_SLA_S) * 1000
        self.order += 1
        self.tasks[(item, kind)] = self.by_id[task_id] = ModelTask(task_id, kind, due_ms, self.order)

    @rule(reviewer=st.sampled_from(REVIEWERS), lease_s=st.integers(1, 20))
    def claim(self, reviewer: str, lease_s: int) -> None:
        expected = min(self._open_tasks(), key=lambda t: (t.due_ms, t.order), default=None)
        task = self._run(self.queue.claim(reviewer, lease_s * 1000))
        if expected is None:
            assert task is None
            return
        assert task is not None and task.task_id == expected.task_id  # earliest due first, then first queued
        assert task.lease_token and task.lease_token != expected.token
        expected.token, expected.reviewer, expected.expires_ms = task.lease_token, reviewer, self.now_ms + lease_s * 1000

    @precondition(lambda self: any(t.token and not t.verdict for t in self.tasks.values()))
    @rule(data=st.data(), verdict=st.sampled_from(("approve", "remove")), stale=st.booleans())
    def complete(self, data, verdict: str, stale: bool) -> None:
        task = data.draw(st.sampled_from(sorted((t for t in self.tasks.values() if t.token and not t.verdict),
                                                key=lambda t: t.order)))
        token = "0" * 24 if stale else task.token
        holds = not stale and task.expires_ms > self.now_ms
        if not holds:
            with pytest.raises(FailedPrecondition, match="lease_lost"):
                self._run(self.queue.complete(task.task_id, token, task.reviewer, verdict))
            return
        seq = self._run(self.queue.complete(task.task_id, token, task.reviewer, verdict))
        assert seq > max([self.acked, *self.verdicts]) and seq not in self.verdicts
        task.verdict = verdict
        self.verdicts[seq] = task.task_id
        # Again under the same lease: the same answer.
        assert self._run(self.queue.complete(task.task_id, token, task.reviewer, verdict)) == seq

    @rule(seconds=st.integers(1, 25))
    def advance(self, seconds: int) -> None:
        self.now_ms += seconds * 1000

    @rule(data=st.data())
    def pull(self, data) -> None:
        after = data.draw(st.sampled_from(sorted({self.acked, *self.verdicts})))
        pulled = self._run(self.queue.pull(after, 1000, 0))
        for seq in [s for s in self.verdicts if s <= after]:
            del self.verdicts[seq]
        self.acked = max(self.acked, after)
        assert [(v.seq, v.task_id) for v in pulled] == sorted(self.verdicts.items())
        for v in pulled:
            assert v.verdict == self.by_id[v.task_id].verdict

    @rule()
    def restart(self) -> None:
        self._run(self.queue.close())
        self.queue = self._open_queue()

    @invariant()
    def queue_matches_the_model(self) -> None:
        stats = self.queue.stats()
        waiting = [t for t in self.tasks.values() if not t.verdict]
        by_kind = {k.kind: k for k in stats.kinds}
        for kind in (FIRST, APPEAL):
            of_kind = [t for t in waiting if t.kind == kind]
            # Every task not completed is open or leased, none lost, none twice: leased while its lease runs (a
            # restart keeps it), open again once it ran out (stats() returns the lapsed leases first).
            leased = sum(1 for t in of_kind if t.token and t.expires_ms > self.now_ms)
            assert (by_kind[kind].open, by_kind[kind].claimed) == (len(of_kind) - leased, leased)
            assert by_kind[kind].overdue == sum(1 for t in of_kind if t.due_ms <= self.now_ms)
        assert stats.verdicts_pending == len(self.verdicts)


ReviewQueueMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                                suppress_health_check=[HealthCheck.too_slow])
test_the_review_queue_follows_its_model = ReviewQueueMachine.TestCase
