"""The content moderation invariant through real processes (moderation-classifier, moderation-review and
moderation-pipeline, each its own process as the harness runs them), with the pipeline SIGKILLed mid-run and
restarted, and later the review service: an item acknowledged by SubmitItem is never lost between stages.

CASE-STUDY.md point 5 for content moderation (seed 001 #26, shared/seeds/001_58dfc580020147d2.txt line 50: "Content
Moderation | AI classifiers (BERT/ResNet), confidence routing, human review"; pipeline.proto: "an item that was
acknowledged is never lost between stages"). 24 clients in flight submit 600 labelled items of the corpus's held-out
split (a review band of 0.1 to 0.8, so about a fifth of them go to human review), retrying UNAVAILABLE,
DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED with the same item ID until acknowledged; then wait for the decision
(AwaitDecision) and appeal half of the removals they see. Four reviewers claim tasks (2 s leases) and complete them (one
claim in twenty is abandoned: its lease expires and the task goes back to the queue). Once every client is done, the
reviewers drain the queue. Afterwards, through the public API and the pipeline's SQLite file:

- every acknowledged item is APPROVED or REMOVED, with the author and text submitted, and decided by whom its last
  audit entry says;
- its audit log replays to its state: SUBMITTED first, seqs increasing, each event following from the state before
  (the transition table here is the test's own, from moderation.proto), one appeal at most and ``appealed`` exactly
  when there was one, every acknowledged appeal in it;
- the review queue is empty (no task open or claimed, of either kind) and no verdict waits in the outbox;
- the pipeline's file holds exactly the acknowledged items, and one audit row per entry served.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from collections import Counter

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.moderation.v1 import moderation_pb2 as m
from casemesh.moderation.v1 import pipeline_pb2, pipeline_pb2_grpc, review_pb2, review_pb2_grpc
from casemesh.services.moderation import corpus

from .waiting import eventually

CLASSIFIER, REVIEW, PIPELINE = "moderation-classifier", "moderation-review", "moderation-pipeline"
SETTINGS = {
    CLASSIFIER: {"training_items": 2_000, "held_out_items": 500},
    PIPELINE: {"approve_below": 0.1, "remove_above": 0.8, "retry_backoff_ms": 20, "max_retry_backoff_ms": 500,
               "resend_interval_ms": 100, "verdict_wait_ms": 500},
    REVIEW: {"sweep_interval_s": 0.2},
}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
ITEMS, CLIENTS, REVIEWERS = 600, 24, 4
LEASE_MS = 2_000
#: The test's own reading of moderation.proto's AuditEvent comments: event → (state before, state after, decided by).
EXPECTED: dict[int, tuple[int | None, int, int | None]] = {
    m.AUDIT_EVENT_SUBMITTED: (None, m.ITEM_STATE_PENDING, None),
    m.AUDIT_EVENT_AUTO_APPROVED: (m.ITEM_STATE_PENDING, m.ITEM_STATE_APPROVED, m.DECIDED_BY_CLASSIFIER),
    m.AUDIT_EVENT_AUTO_REMOVED: (m.ITEM_STATE_PENDING, m.ITEM_STATE_REMOVED, m.DECIDED_BY_CLASSIFIER),
    m.AUDIT_EVENT_SENT_TO_REVIEW: (m.ITEM_STATE_PENDING, m.ITEM_STATE_IN_REVIEW, None),
    m.AUDIT_EVENT_REVIEW_APPROVED: (m.ITEM_STATE_IN_REVIEW, m.ITEM_STATE_APPROVED, m.DECIDED_BY_REVIEWER),
    m.AUDIT_EVENT_REVIEW_REMOVED: (m.ITEM_STATE_IN_REVIEW, m.ITEM_STATE_REMOVED, m.DECIDED_BY_REVIEWER),
    m.AUDIT_EVENT_APPEALED: (m.ITEM_STATE_REMOVED, m.ITEM_STATE_IN_APPEAL, None),
    m.AUDIT_EVENT_APPEAL_UPHELD: (m.ITEM_STATE_IN_APPEAL, m.ITEM_STATE_REMOVED, m.DECIDED_BY_APPEAL),
    m.AUDIT_EVENT_APPEAL_REVERSED: (m.ITEM_STATE_IN_APPEAL, m.ITEM_STATE_APPROVED, m.DECIDED_BY_APPEAL),
}
DECIDED = (m.ITEM_STATE_APPROVED, m.ITEM_STATE_REMOVED)


async def _retried(call, request, rng: random.Random, retried: Counter[str], timeout: float = 5.0):
    """``call(request)`` until it has a final answer (a retryable code retried with backoff, counted by name)."""
    for attempt in range(600):
        try:
            return await call(request, timeout=timeout)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            retried[error.code().name] += 1
            await asyncio.sleep(rng.uniform(0, min(0.3, 0.01 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


def _check_log(item: m.Item, entries, submitted: tuple[str, str]) -> str | None:
    """Why ``item``'s audit log does not replay to it (``None`` when it does)."""
    if (item.author_id, item.text) != submitted:
        return "not the author or text submitted"
    state, last_seq, decided_by, appeals = None, 0, None, 0
    for entry in entries:
        if entry.seq <= last_seq:
            return f"seq {entry.seq} after {last_seq}"
        last_seq = entry.seq
        before, after, by = EXPECTED[entry.event]
        if state != before or entry.state_after != after or entry.item_id != item.item_id:
            return f"{m.AuditEvent.Name(entry.event)} from {state} to {entry.state_after}"
        state, decided_by = after, by if by is not None else decided_by
        appeals += entry.event == m.AUDIT_EVENT_APPEALED
    if state != item.state:
        return f"replays to {state}, the item is {item.state}"
    if item.decided_by != decided_by or item.appealed != (appeals == 1) or appeals > 1:
        return f"decided by {item.decided_by} (log: {decided_by}), appealed {item.appealed} ({appeals} appeals)"
    return None


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_no_acknowledged_item_is_lost_across_pipeline_and_review_kills(tmp_path):
    texts = [item.text for item in corpus.split("held_out", ITEMS)]
    async with Mesh([CLASSIFIER, REVIEW, PIPELINE], tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = [grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in (PIPELINE, REVIEW)]
        api = pipeline_pb2_grpc.ModerationServiceStub(channels[0])
        review = review_pb2_grpc.ReviewServiceStub(channels[1])
        acknowledged: dict[str, tuple[str, str]] = {}
        appealed: set[str] = set()
        retried: Counter[str] = Counter()
        reviewer_retried: Counter[str] = Counter()
        completed: Counter[str] = Counter()
        drained = asyncio.Event()
        tasks: list[asyncio.Task] = []
        try:
            queue: asyncio.Queue[int] = asyncio.Queue()
            for n in range(ITEMS):
                queue.put_nowait(n)

            async def client(worker: int) -> None:
                rng = random.Random(worker)
                while not queue.empty():
                    n = queue.get_nowait()
                    item_id, author = f"item-{n}", f"author-{n % 50}"
                    await _retried(api.SubmitItem, pipeline_pb2.SubmitItemRequest(
                        item_id=item_id, author_id=author, text=texts[n]), rng, retried)
                    acknowledged[item_id] = (author, texts[n])
                    item = (await _retried(api.AwaitDecision, pipeline_pb2.AwaitDecisionRequest(
                        item_id=item_id, timeout_ms=2_000), rng, retried)).item
                    if item.state == m.ITEM_STATE_REMOVED and rng.random() < 0.5:
                        try:
                            await _retried(api.AppealDecision, pipeline_pb2.AppealDecisionRequest(
                                item_id=item_id, author_id=author, reason="context matters"), rng, retried)
                        except grpc.aio.AioRpcError as error:  # recorded, but its answer lost in the kill
                            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                            assert error.details().startswith("already_appealed:"), error.details()
                        appealed.add(item_id)

            async def reviewer(number: int) -> None:
                rng = random.Random(1_000 + number)
                reviewer_id = f"reviewer-{number}"
                while not drained.is_set():
                    task = (await _retried(review.ClaimTask, review_pb2.ClaimTaskRequest(
                        reviewer_id=reviewer_id, lease_ms=LEASE_MS), rng, reviewer_retried)).task
                    if not task.task_id:
                        await asyncio.sleep(0.05)
                        continue
                    if rng.random() < 0.05:  # walks away: the lease expires, the task goes back to the queue
                        completed["abandoned"] += 1
                        continue
                    verdict = m.VERDICT_REMOVE if task.violation_probability >= 0.5 else m.VERDICT_APPROVE
                    try:
                        await _retried(review.CompleteTask, review_pb2.CompleteTaskRequest(
                            task_id=task.task_id, lease_token=task.lease_token, reviewer_id=reviewer_id,
                            verdict=verdict, note=f"by {reviewer_id}"), rng, reviewer_retried)
                        completed[m.ReviewKind.Name(task.kind)] += 1
                    except grpc.aio.AioRpcError as error:  # the lease ran out while the review service was down
                        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                        assert error.details().startswith("lease_lost:"), error.details()
                        completed["lease_lost"] += 1

            clients = [asyncio.create_task(client(worker)) for worker in range(CLIENTS)]
            tasks = [*clients, *(asyncio.create_task(reviewer(n)) for n in range(REVIEWERS))]

            await eventually(lambda: len(acknowledged) >= ITEMS // 3, "a third of the items acknowledged")
            assert mesh.kill(PIPELINE, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services([PIPELINE])
            await eventually(lambda: len(acknowledged) >= 2 * ITEMS // 3, "two thirds of the items acknowledged",
                             timeout_s=90)
            assert mesh.kill(REVIEW, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services([REVIEW])
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            assert len(acknowledged) == ITEMS
            assert retried["UNAVAILABLE"] > 0 and reviewer_retried["UNAVAILABLE"] > 0, (retried, reviewer_retried)

            # drain: the reviewers go on until every item is decided and the queue and outbox are empty
            items: dict[str, m.Item] = {}

            calls = asyncio.Semaphore(32)  # within the server's admission limit (256 in flight)

            async def bounded(call, request):
                async with calls:
                    return await call(request, timeout=10)

            async def settled() -> bool:
                answers = await asyncio.gather(*(bounded(api.GetItem, pipeline_pb2.GetItemRequest(item_id=item_id))
                                                 for item_id in acknowledged))
                items.update((answer.item.item_id, answer.item) for answer in answers)
                if any(item.state not in DECIDED for item in items.values()):
                    return False
                stats = await review.GetQueueStats(review_pb2.GetQueueStatsRequest(), timeout=10)
                return stats.verdicts_pending == 0 and all(k.open == 0 and k.claimed == 0 for k in stats.kinds)

            loop = asyncio.get_running_loop()
            deadline = loop.time() + 90
            while not await settled():
                undecided = Counter(m.ItemState.Name(i.state) for i in items.values() if i.state not in DECIDED)
                assert loop.time() < deadline, f"not drained: {undecided}, reviews {completed}"
                await asyncio.sleep(0.5)
            drained.set()
            await asyncio.wait_for(asyncio.gather(*tasks[CLIENTS:]), 30)

            # every item decided, its log replaying to it
            logs = dict(zip(acknowledged, await asyncio.gather(*(
                bounded(api.ListAuditLog, pipeline_pb2.ListAuditLogRequest(item_id=item_id))
                for item_id in acknowledged)), strict=True))
            broken = {item_id: why for item_id in acknowledged
                      if (why := _check_log(items[item_id], logs[item_id].entries, acknowledged[item_id]))}
            assert not broken, list(broken.items())[:5]
            events = Counter(e.event for answer in logs.values() for e in answer.entries)
            appeals_logged = {i for i, answer in logs.items() if any(e.event == m.AUDIT_EVENT_APPEALED
                                                                     for e in answer.entries)}
            assert appealed <= appeals_logged, appealed - appeals_logged
            assert events[m.AUDIT_EVENT_SUBMITTED] == ITEMS
            assert events[m.AUDIT_EVENT_SENT_TO_REVIEW] > 20 and events[m.AUDIT_EVENT_APPEALED] > 5, events
            assert events[m.AUDIT_EVENT_SENT_TO_REVIEW] == (events[m.AUDIT_EVENT_REVIEW_APPROVED]
                                                           + events[m.AUDIT_EVENT_REVIEW_REMOVED])
            assert events[m.AUDIT_EVENT_APPEALED] == (events[m.AUDIT_EVENT_APPEAL_UPHELD]
                                                      + events[m.AUDIT_EVENT_APPEAL_REVERSED])
            stats = await review.GetQueueStats(review_pb2.GetQueueStatsRequest(), timeout=10)
            assert stats.verdicts_pending == 0 and all(k.open == k.claimed == 0 for k in stats.kinds), stats
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for channel in channels:
                await channel.close()
        mesh.stop()
    with sqlite3.connect(tmp_path / "data" / PIPELINE / "items.sqlite3") as db:
        stored = dict(db.execute("SELECT item_id, state FROM items").fetchall())
        audit_rows = db.execute("SELECT count(*) FROM audit").fetchone()[0]
    assert stored == {item_id: item.state for item_id, item in items.items()}
    assert audit_rows == sum(events.values())
