"""``casemesh.moderation.v1.ModerationService`` (topology name ``moderation-pipeline``): items in, confidence routing,
human review's verdicts and appeals, the audit log.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI classifiers (BERT/ResNet),
confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |"). A thin servicer over
:class:`.items.ItemBook` (items, states, audit log; the durable file :mod:`.store`,
``DATA_DIR/moderation-pipeline/items.sqlite3``) and three background stages: the classification workers
(:mod:`.router`: ClassifierService.Classify of ``moderation-classifier``, then confidence routing), the review outbox
(:mod:`.outbox`: ReviewService.Enqueue of ``moderation-review`` until accepted) and the verdict consumer
(:mod:`.verdicts`: ReviewService.PullVerdicts). Every outgoing call has an explicit timeout (:mod:`.clients`). Input
rules in :mod:`.validation`.

Both dependencies are optional to the service's health: SubmitItem, GetItem, AppealDecision and ListAuditLog are
answered while the classifier or the review service is down (items wait PENDING, or in the outbox), which is what the
stages are for. The invariant (CASE-STUDY.md point 5): an acknowledged item is never lost between stages; once reviews
are drained it is APPROVED or REMOVED, with an audit log that replays to its state, whichever process was killed
when (tests/integration/test_moderation_invariant.py).

RPCs and status codes (protos/casemesh/moderation/v1/pipeline.proto), all public:

- SubmitItem: INVALID_ARGUMENT naming ``item_id``, ``author_id`` or ``text``; ALREADY_EXISTS (the ID holds another
  author's or text's item); RESOURCE_EXHAUSTED (more than ``max_pending`` items would wait for classification: nothing
  stored); UNAVAILABLE (the file: nothing stored).
- GetItem, ListAuditLog: INVALID_ARGUMENT naming ``item_id``; NOT_FOUND.
- AwaitDecision: INVALID_ARGUMENT naming ``item_id`` or ``timeout_ms``; NOT_FOUND. A timeout is an answer (PENDING),
  given at ``timeout_ms`` or just before the caller's deadline, whichever comes first.
- AppealDecision: INVALID_ARGUMENT naming ``item_id``, ``author_id`` or ``reason``; NOT_FOUND; PERMISSION_DENIED
  ``not_author: ...``; FAILED_PRECONDITION ``not_removed: ...`` or ``already_appealed: ...``; UNAVAILABLE (the file:
  nothing recorded).

Settings: :class:`.settings.PipelineSettings` (A/B knobs ``approve_below``, ``remove_above``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.moderation.v1 import (
    classifier_pb2_grpc,
    moderation_pb2,
    pipeline_pb2,
    pipeline_pb2_grpc,
    review_pb2_grpc,
)

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .clients import ClassifierClient, ReviewClient
from .items import ItemBook
from .outbox import ReviewOutbox
from .router import ClassifyPool
from .settings import PipelineSettings
from .store import FILE_NAME, AuditEntry, Item, ItemStore
from .verdicts import VerdictConsumer

log = logging.getLogger("casemesh.moderation.pipeline.service")

NAME = "moderation-pipeline"
CLASSIFIER = "moderation-classifier"
REVIEW = "moderation-review"
FULL_NAME = pipeline_pb2.DESCRIPTOR.services_by_name["ModerationService"].full_name
#: Every method: authors, the product's apps and trust-and-safety tools call them.
PUBLIC_METHODS = frozenset({"SubmitItem", "GetItem", "AwaitDecision", "AppealDecision", "ListAuditLog"})
#: Time kept back from an AwaitDecision's deadline so that its answer (PENDING) arrives before the caller gives up, s.
DEADLINE_MARGIN_S = 0.05


def item_message(item: Item) -> moderation_pb2.Item:
    return moderation_pb2.Item(
        item_id=item.item_id, author_id=item.author_id, text=item.text, state=item.state, decided_by=item.decided_by,
        violation_probability=item.probability, model_version=item.model_version,
        submitted_at_unix_ms=item.submitted_at_unix_ms, routed_at_unix_ms=item.routed_at_unix_ms,
        decided_at_unix_ms=item.decided_at_unix_ms, appealed=item.appealed)


def entry_message(entry: AuditEntry) -> moderation_pb2.AuditEntry:
    return moderation_pb2.AuditEntry(
        seq=entry.seq, at_unix_ms=entry.at_unix_ms, item_id=entry.item_id, event=entry.event,
        state_after=entry.state_after, actor=entry.actor, violation_probability=entry.probability, note=entry.note)


class ModerationServicer(pipeline_pb2_grpc.ModerationServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.items.ItemBook`; an appeal goes to the review
    outbox once recorded."""

    def __init__(self, book: ItemBook, outbox: ReviewOutbox) -> None:
        self._book = book
        self._outbox = outbox

    async def SubmitItem(self, request: pipeline_pb2.SubmitItemRequest,
                         context: grpc.aio.ServicerContext) -> pipeline_pb2.SubmitItemResponse:
        item = await self._book.submit(*validation.submit(request))
        return pipeline_pb2.SubmitItemResponse(item=item_message(item))

    async def GetItem(self, request: pipeline_pb2.GetItemRequest,
                      context: grpc.aio.ServicerContext) -> pipeline_pb2.GetItemResponse:
        return pipeline_pb2.GetItemResponse(item=item_message(self._book.get(validation.item_id(request.item_id))))

    async def AwaitDecision(self, request: pipeline_pb2.AwaitDecisionRequest,
                            context: grpc.aio.ServicerContext) -> pipeline_pb2.AwaitDecisionResponse:
        item_id, timeout_ms = validation.await_decision(request)
        remaining_s = context.time_remaining()
        if remaining_s is not None:  # a long poll answers before the caller's deadline, PENDING if it must
            timeout_ms = min(timeout_ms, max(0, int((remaining_s - DEADLINE_MARGIN_S) * 1_000)))
        item = await self._book.await_decision(item_id, timeout_ms)
        return pipeline_pb2.AwaitDecisionResponse(item=item_message(item))

    async def AppealDecision(self, request: pipeline_pb2.AppealDecisionRequest,
                             context: grpc.aio.ServicerContext) -> pipeline_pb2.AppealDecisionResponse:
        item = await self._book.appeal(*validation.appeal(request))
        answer = pipeline_pb2.AppealDecisionResponse(item=item_message(item))
        self._outbox.send(item.item_id)
        return answer

    async def ListAuditLog(self, request: pipeline_pb2.ListAuditLogRequest,
                           context: grpc.aio.ServicerContext) -> pipeline_pb2.ListAuditLogResponse:
        entries = self._book.audit_log(validation.item_id(request.item_id))
        return pipeline_pb2.ListAuditLogResponse(entries=[entry_message(entry) for entry in entries])


class PipelineComponent:
    """The servicer over the book and its file, and the three stages' tasks (workers, re-sender, verdict consumer),
    started once the book is rebuilt from the file."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = settings = context.settings(NAME, PipelineSettings)
        self.book = ItemBook(ItemStore(context.data_dir(NAME) / FILE_NAME, settings.max_commit_writes), settings)
        review = ReviewClient(review_pb2_grpc.ReviewServiceStub(context.channel(REVIEW)))
        self.outbox = ReviewOutbox(self.book, review, settings)
        self.pool = ClassifyPool(self.book, ClassifierClient(classifier_pb2_grpc.ClassifierServiceStub(
            context.channel(CLASSIFIER))), self.outbox, settings)
        self.consumer = VerdictConsumer(self.book, review, settings)
        self._tasks: list[asyncio.Task[None]] = []

    def register(self, server: grpc.aio.Server) -> None:
        pipeline_pb2_grpc.add_ModerationServiceServicer_to_server(ModerationServicer(self.book, self.outbox), server)

    async def start(self) -> None:
        items = await self.book.start()
        log.info("%s: %d items rebuilt from the file (%d pending, %d bound for review), verdicts applied up to %d",
                 NAME, items, self.book.pending, len(self.book.unenqueued()), self.book.verdict_cursor)
        self.pool.start()
        # Not awaited here: in one process the review service starts serving only after every component started.
        for name, stage in (("resender", self.outbox.run()), ("verdicts", self.consumer.run())):
            self._tasks.append(asyncio.create_task(stage, name=f"{NAME}-{name}", context=contextvars.Context()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.pool.stop()
        await self.outbox.close()
        await self.book.close()


async def build(context: RuntimeContext) -> PipelineComponent:
    return PipelineComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(CLASSIFIER, REVIEW), build=build,
    settings_model=PipelineSettings, optional_dependencies=(CLASSIFIER, REVIEW), access=Access(public=PUBLIC_METHODS),
)
