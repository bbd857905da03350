"""``casemesh.moderation.v1.ReviewService`` (topology name ``moderation-review``): the human review queue.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). A thin servicer over
:class:`.queue.ReviewQueue` (earliest-due-first order under each kind's SLA, leases, the verdicts' outbox), its
durable file :mod:`.store` (``DATA_DIR/moderation-review/review.sqlite3``, rebuilt at start) and the sweeper that
returns expired leases and refreshes the age and overdue gauges every ``sweep_interval_s``; input rules in
:mod:`.validation`. Calls no other service.

RPCs and status codes (protos/casemesh/moderation/v1/review.proto):

- Enqueue (internal, caller ``moderation-pipeline``): INVALID_ARGUMENT naming ``item_id``, ``text``,
  ``violation_probability``, ``kind`` or ``appeal_reason``; UNAVAILABLE when the file cannot be written (nothing
  queued: re-send). The same item and kind again answers the first task.
- ClaimTask (public, reviewers' tools): INVALID_ARGUMENT naming ``reviewer_id`` or ``lease_ms``; UNAVAILABLE when the
  file cannot be written (nothing claimed). No task in the answer when no task is open.
- CompleteTask (public): INVALID_ARGUMENT naming ``task_id``, ``lease_token``, ``reviewer_id``, ``verdict`` or
  ``note``; NOT_FOUND; FAILED_PRECONDITION ``lease_lost: ...`` or ``already_completed: ...``; UNAVAILABLE when the
  file cannot be written (nothing recorded: retry with the same token).
- GetQueueStats (public): none.
- PullVerdicts (internal, caller ``moderation-pipeline``): INVALID_ARGUMENT naming ``after_seq``, ``max_verdicts`` or
  ``wait_ms``. A long poll: it answers (empty) before the caller's deadline runs out when no verdict came, so the
  caller's timeout must exceed ``wait_ms`` by its own margin.

Settings: :class:`.settings.ReviewSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.moderation.v1 import review_pb2, review_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .queue import ReviewQueue, Task
from .settings import ReviewSettings
from .store import FILE_NAME, ReviewStore, VerdictRow

log = logging.getLogger("casemesh.moderation.review.service")

NAME = "moderation-review"
PIPELINE = "moderation-pipeline"
FULL_NAME = review_pb2.DESCRIPTOR.services_by_name["ReviewService"].full_name
#: Methods anyone may call (reviewers' tools, the harness's reviewers).
PUBLIC_METHODS = frozenset({"ClaimTask", "CompleteTask", "GetQueueStats"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"Enqueue": (PIPELINE,), "PullVerdicts": (PIPELINE,)}
#: Time kept back from a PullVerdicts deadline so the empty answer arrives before the caller gives up, in seconds.
DEADLINE_MARGIN_S = 0.05


def task_message(task: Task) -> review_pb2.ReviewTask:
    return review_pb2.ReviewTask(
        task_id=task.task_id, item_id=task.item_id, text=task.text, violation_probability=task.violation_probability,
        kind=validation.KIND_VALUES[task.kind], enqueued_at_unix_ms=task.enqueued_at_unix_ms,
        due_at_unix_ms=task.due_at_unix_ms, lease_token=task.lease_token,
        lease_expires_at_unix_ms=task.lease_expires_at_unix_ms, claims=task.claims, appeal_reason=task.appeal_reason)


def verdict_message(row: VerdictRow) -> review_pb2.ReviewVerdict:
    return review_pb2.ReviewVerdict(
        seq=row.seq, task_id=row.task_id, item_id=row.item_id, kind=validation.KIND_VALUES[row.kind],
        verdict=validation.VERDICT_VALUES[row.verdict], reviewer_id=row.reviewer_id, note=row.note,
        completed_at_unix_ms=row.completed_at_unix_ms)


class ReviewServicer(review_pb2_grpc.ReviewServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.queue.ReviewQueue`."""

    def __init__(self, queue: ReviewQueue) -> None:
        self._queue = queue

    async def Enqueue(self, request: review_pb2.EnqueueRequest,
                      context: grpc.aio.ServicerContext) -> review_pb2.EnqueueResponse:
        task_id, due_at = await self._queue.enqueue(*validation.enqueue(request))
        return review_pb2.EnqueueResponse(task_id=task_id, due_at_unix_ms=due_at)

    async def ClaimTask(self, request: review_pb2.ClaimTaskRequest,
                        context: grpc.aio.ServicerContext) -> review_pb2.ClaimTaskResponse:
        task = await self._queue.claim(*validation.claim_task(request))
        return review_pb2.ClaimTaskResponse(task=task_message(task)) if task else review_pb2.ClaimTaskResponse()

    async def CompleteTask(self, request: review_pb2.CompleteTaskRequest,
                           context: grpc.aio.ServicerContext) -> review_pb2.CompleteTaskResponse:
        seq = await self._queue.complete(*validation.complete_task(request))
        return review_pb2.CompleteTaskResponse(verdict_seq=seq)

    async def GetQueueStats(self, request: review_pb2.GetQueueStatsRequest,
                            context: grpc.aio.ServicerContext) -> review_pb2.GetQueueStatsResponse:
        stats = self._queue.stats()
        return review_pb2.GetQueueStatsResponse(
            kinds=[review_pb2.KindStats(kind=validation.KIND_VALUES[k.kind], open=k.open, claimed=k.claimed,
                                        oldest_age_ms=k.oldest_age_ms, overdue=k.overdue) for k in stats.kinds],
            verdicts_pending=stats.verdicts_pending)

    async def PullVerdicts(self, request: review_pb2.PullVerdictsRequest,
                           context: grpc.aio.ServicerContext) -> review_pb2.PullVerdictsResponse:
        after_seq, max_verdicts, wait_ms = validation.pull_verdicts(request)
        wait_s = wait_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:  # answer (empty) before the caller's deadline rather than time out
            wait_s = max(min(wait_s, remaining - DEADLINE_MARGIN_S), 0.0)
        verdicts = await self._queue.pull(after_seq, max_verdicts, wait_s)
        return review_pb2.PullVerdictsResponse(verdicts=[verdict_message(row) for row in verdicts])


async def run_sweeper(queue: ReviewQueue, interval_s: float) -> None:
    """:meth:`.queue.ReviewQueue.sweep` every ``interval_s`` until cancelled; a failed sweep is logged and the next one
    tries again."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            queue.sweep()
        except Exception as error:  # noqa: BLE001 - the sweeper must go on
            log.warning("%s: a sweep failed (%s: %s)", NAME, type(error).__name__, error)


class ReviewComponent:
    """The servicer over the queue and its file (``DATA_DIR/moderation-review/review.sqlite3``), and the sweeper."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, ReviewSettings)
        store = ReviewStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes)
        self.queue = ReviewQueue(store, self.settings.first_review_sla_s, self.settings.appeal_sla_s)
        self._sweeper: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        review_pb2_grpc.add_ReviewServiceServicer_to_server(ReviewServicer(self.queue), server)

    async def start(self) -> None:
        tasks, verdicts = await self.queue.start()
        log.info("%s: %d tasks and %d unacknowledged verdicts rebuilt from the file", NAME, tasks, verdicts)
        self._sweeper = asyncio.create_task(run_sweeper(self.queue, self.settings.sweep_interval_s),
                                            name=f"{NAME}-sweeper", context=contextvars.Context())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.queue.close()


async def build(context: RuntimeContext) -> ReviewComponent:
    return ReviewComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=ReviewSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
