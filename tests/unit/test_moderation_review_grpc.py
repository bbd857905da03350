"""moderation-review through real gRPC, served by the runtime (DEFINITION, its settings and data folder) and called as
``moderation-pipeline`` (Enqueue, PullVerdicts) and as an anonymous reviewer tool (ClaimTask, CompleteTask,
GetQueueStats): every status code of protos/casemesh/moderation/v1/review.proto, the callers allowed, a PullVerdicts
long poll woken by CompleteTask, and the queue and outbox rebuilt by a restart."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from casemesh.moderation.v1 import moderation_pb2, review_pb2, review_pb2_grpc
from casemesh.services.moderation.review.service import DEFINITION, NAME
from casemesh.services.moderation.review.store import FILE_NAME
from casemesh.services.runtime.component import RuntimeContext

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
PIPELINE = "moderation-pipeline"
FIRST = moderation_pb2.REVIEW_KIND_FIRST
APPEAL = moderation_pb2.REVIEW_KIND_APPEAL


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def _enqueue(item_id: str = "i1", kind: int = FIRST, **fields) -> review_pb2.EnqueueRequest:
    request = {"item_id": item_id, "text": "you are wrong about this", "violation_probability": 0.5, "kind": kind}
    return review_pb2.EnqueueRequest(**{**request, **fields})


def _claim(reviewer_id: str = "r1", lease_ms: int = 60_000) -> review_pb2.ClaimTaskRequest:
    return review_pb2.ClaimTaskRequest(reviewer_id=reviewer_id, lease_ms=lease_ms)


def _complete(task: review_pb2.ReviewTask, reviewer_id: str = "r1", verdict: int = moderation_pb2.VERDICT_REMOVE,
              **fields) -> review_pb2.CompleteTaskRequest:
    request = {"task_id": task.task_id, "lease_token": task.lease_token, "reviewer_id": reviewer_id,
               "verdict": verdict}
    return review_pb2.CompleteTaskRequest(**{**request, **fields})


def test_the_definition():
    assert DEFINITION.name == NAME == "moderation-review" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.moderation.v1.ReviewService",)
    assert DEFINITION.access.public == {"ClaimTask", "CompleteTask", "GetQueueStats"}
    assert dict(DEFINITION.access.internal) == {"Enqueue": (PIPELINE,), "PullVerdicts": (PIPELINE,)}


async def test_the_review_service_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={
        NAME: {"first_review_sla_s": 15, "appeal_sla_s": 30, "sweep_interval_s": 0.1}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    pipeline_context = RuntimeContext(topology, secret=TEST_SECRET).for_service(PIPELINE)
    try:
        pipeline = review_pb2_grpc.ReviewServiceStub(pipeline_context.channel(NAME))
        reviewer = review_pb2_grpc.ReviewServiceStub(running.anonymous_channel(NAME))
        assert (tmp_path / NAME / FILE_NAME).exists()

        before = int(time.time() * 1000)
        first = await pipeline.Enqueue(_enqueue("i1"), timeout=WAIT_S)
        assert first.task_id and before + 15_000 <= first.due_at_unix_ms <= int(time.time() * 1000) + 15_000
        assert (await pipeline.Enqueue(_enqueue("i1"), timeout=WAIT_S)) == first  # idempotent
        appeal = await pipeline.Enqueue(_enqueue("i1", APPEAL, appeal_reason="satire"), timeout=WAIT_S)
        assert appeal.task_id != first.task_id and appeal.due_at_unix_ms > first.due_at_unix_ms

        # the reviewers' side: first review first (due sooner), then the appeal, then nothing
        claimed = (await reviewer.ClaimTask(_claim("r1"), timeout=WAIT_S)).task
        assert (claimed.task_id, claimed.kind, claimed.item_id, claimed.claims) == (first.task_id, FIRST, "i1", 1)
        assert claimed.due_at_unix_ms == first.due_at_unix_ms and claimed.lease_token
        claimed_appeal = (await reviewer.ClaimTask(_claim("r2"), timeout=WAIT_S)).task
        assert (claimed_appeal.kind, claimed_appeal.appeal_reason) == (APPEAL, "satire")
        assert not (await reviewer.ClaimTask(_claim("r3"), timeout=WAIT_S)).HasField("task")
        stats = await reviewer.GetQueueStats(review_pb2.GetQueueStatsRequest(), timeout=WAIT_S)
        assert [(k.kind, k.open, k.claimed, k.overdue) for k in stats.kinds] == [(FIRST, 0, 1, 0), (APPEAL, 0, 1, 0)]
        assert all(k.oldest_age_ms >= 0 for k in stats.kinds) and stats.verdicts_pending == 0

        # a long poll, woken by the verdict
        async def long_poll() -> review_pb2.PullVerdictsResponse:
            return await pipeline.PullVerdicts(review_pb2.PullVerdictsRequest(after_seq=0, max_verdicts=10,
                                                                              wait_ms=20_000), timeout=30)

        pull = asyncio.create_task(long_poll())
        await asyncio.sleep(0.2)
        assert not pull.done()
        started = time.monotonic()
        done = await reviewer.CompleteTask(_complete(claimed, note="insult"), timeout=WAIT_S)
        verdicts = (await asyncio.wait_for(pull, 30)).verdicts
        assert time.monotonic() - started < 15  # woken, not the end of its 20 s wait
        assert [(v.seq, v.task_id, v.item_id, v.kind, v.verdict, v.reviewer_id, v.note) for v in verdicts] == [
            (done.verdict_seq, first.task_id, "i1", FIRST, moderation_pb2.VERDICT_REMOVE, "r1", "insult")]
        assert (await reviewer.CompleteTask(_complete(claimed, note="insult"), timeout=WAIT_S)) == done
        code, details = await _code(reviewer.CompleteTask(_complete(claimed, verdict=moderation_pb2.VERDICT_APPROVE),
                                                          timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("already_completed:")
        code, details = await _code(reviewer.CompleteTask(_complete(claimed_appeal, reviewer_id="r1"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("lease_lost:")
        code, details = await _code(reviewer.CompleteTask(_complete(claimed, task_id="nope"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND

        # a lease that runs out: the sweeper gives the task back, the old lease is lost
        await pipeline.Enqueue(_enqueue("i2"), timeout=WAIT_S)
        short = (await reviewer.ClaimTask(_claim("r4", 1_000), timeout=WAIT_S)).task
        deadline = time.monotonic() + 30
        while not (again := (await reviewer.ClaimTask(_claim("r5"), timeout=WAIT_S)).task).task_id:
            assert time.monotonic() < deadline, "the lease never ran out"
            await asyncio.sleep(0.1)
        assert (again.task_id, again.claims) == (short.task_id, 2)
        code, details = await _code(reviewer.CompleteTask(_complete(short, reviewer_id="r4"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("lease_lost:")

        # bad input, field by field
        for request, field in ((_enqueue(""), "item_id"), (_enqueue("a b"), "item_id"), (_enqueue(text=""), "text"),
                               (_enqueue(text="x" * 5_001), "text"),
                               (_enqueue(violation_probability=1.5), "violation_probability"),
                               (_enqueue(violation_probability=float("nan")), "violation_probability"),
                               (_enqueue(kind=moderation_pb2.REVIEW_KIND_UNSPECIFIED), "kind"),
                               (_enqueue(appeal_reason="x" * 501), "appeal_reason")):
            code, details = await _code(pipeline.Enqueue(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for request, field in ((_claim(""), "reviewer_id"), (_claim(lease_ms=999), "lease_ms"),
                               (_claim(lease_ms=3_600_001), "lease_ms")):
            code, details = await _code(reviewer.ClaimTask(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for request, field in ((_complete(again, task_id=""), "task_id"), (_complete(again, lease_token="a.b"),
                                                                           "lease_token"),
                               (_complete(again, reviewer_id=""), "reviewer_id"),
                               (_complete(again, verdict=moderation_pb2.VERDICT_UNSPECIFIED), "verdict"),
                               (_complete(again, note="x" * 501), "note")):
            code, details = await _code(reviewer.CompleteTask(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for request, field in ((review_pb2.PullVerdictsRequest(after_seq=-1, max_verdicts=1), "after_seq"),
                               (review_pb2.PullVerdictsRequest(max_verdicts=0), "max_verdicts"),
                               (review_pb2.PullVerdictsRequest(max_verdicts=1_001), "max_verdicts"),
                               (review_pb2.PullVerdictsRequest(max_verdicts=1, wait_ms=30_001), "wait_ms")):
            code, details = await _code(pipeline.PullVerdicts(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details

        # Enqueue and PullVerdicts are the pipeline's
        for call in (reviewer.Enqueue(_enqueue("i3"), timeout=WAIT_S),
                     reviewer.PullVerdicts(review_pb2.PullVerdictsRequest(max_verdicts=1), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
        # a long poll answers (empty) before its caller's deadline
        empty = await pipeline.PullVerdicts(review_pb2.PullVerdictsRequest(
            after_seq=done.verdict_seq, max_verdicts=10, wait_ms=30_000), timeout=1.0)
        assert list(empty.verdicts) == []
        seq = done.verdict_seq
        held = again
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)

    # restart: the open and claimed tasks and the unacknowledged verdicts are back
    running, stop, task = await start_mesh([DEFINITION], topology)
    pipeline_context = RuntimeContext(topology, secret=TEST_SECRET).for_service(PIPELINE)
    try:
        pipeline = review_pb2_grpc.ReviewServiceStub(pipeline_context.channel(NAME))
        reviewer = review_pb2_grpc.ReviewServiceStub(running.anonymous_channel(NAME))
        stats = await reviewer.GetQueueStats(review_pb2.GetQueueStatsRequest(), timeout=WAIT_S)
        assert [(k.kind, k.open + k.claimed) for k in stats.kinds] == [(FIRST, 1), (APPEAL, 1)]
        assert stats.verdicts_pending == 0  # acknowledged by the last pull (after_seq = its seq)
        second = await reviewer.CompleteTask(_complete(held, reviewer_id="r5",
                                                       verdict=moderation_pb2.VERDICT_APPROVE), timeout=WAIT_S)
        assert second.verdict_seq == seq + 1
        pulled = await pipeline.PullVerdicts(review_pb2.PullVerdictsRequest(after_seq=seq, max_verdicts=10),
                                             timeout=WAIT_S)
        assert [(v.seq, v.item_id, v.verdict) for v in pulled.verdicts] == [
            (seq + 1, "i2", moderation_pb2.VERDICT_APPROVE)]
        assert (await pipeline.Enqueue(_enqueue("i1"), timeout=WAIT_S)) == first  # completed, still the first task
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
