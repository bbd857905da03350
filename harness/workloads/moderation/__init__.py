"""The content moderation workload (seed 001 #26 "Content Moderation", shared/seeds/001_58dfc580020147d2.txt line 50:
"| 26 | Content Moderation | AI classifiers (BERT/ResNet), confidence routing, human review, CSAM detection | 100M
items/day, Meta/YouTube |").

Seeding (:mod:`.seeding`) makes no call: it names the run, its authors and its reviewers; the items posted are the
labelled corpus's held-out split (services/moderation/corpus.py, part of the contract), each process building it in
``connect``. Open-loop arrivals (:mod:`.journeys`): ``post`` (ModerationService.SubmitItem, AwaitDecision of the
classifier's routing, and an appeal of some removals), ``review`` (the human review team: ReviewService.ClaimTask of the
task due soonest, a think time, CompleteTask with a verdict that follows the label most of the time, or a reviewer who
walks away and lets the lease lapse) and ``audit_check`` (GetItem and ListAuditLog of an item this process posted).

Measures: ``time_to_decision`` (post to the classifier's routing, by route), ``auto_decision_correct`` (each
auto-decision against the item's label), ``review_claim`` (a task or an empty queue), ``review_wait`` and
``appeal_wait`` (a task's enqueue to its first claim, against its SLA) and ``item_accounted`` (the invariant: no
acknowledged item lost between stages, its audit log replaying to its state); the driver records every RPC.
``disconnect`` logs the process's tally. The workload speaks only the contracts (protos/casemesh/moderation/v1),
casemesh.services.moderation.contract and casemesh.services.moderation.corpus.
"""

from __future__ import annotations

import logging
import random

from casemesh.moderation.v1 import pipeline_pb2, pipeline_pb2_grpc, review_pb2, review_pb2_grpc

from ..base import Journey, Workload, entrypoints
from .journeys import (
    APPEAL_WAIT,
    AUTO_DECISION_CORRECT,
    ITEM_ACCOUNTED,
    REVIEW_CLAIM,
    REVIEW_WAIT,
    TIME_TO_DECISION,
    AuditCheckParams,
    PostParams,
    ReviewParams,
    audit_check,
    post,
    review,
)
from .live import Moderation
from .seeding import PIPELINE, REVIEW, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.moderation")

_ENTRYPOINTS = entrypoints({
    PIPELINE: (pipeline_pb2, "ModerationService", pipeline_pb2_grpc.ModerationServiceStub),
    REVIEW: (review_pb2, "ReviewService", review_pb2_grpc.ReviewServiceStub),
})

MEASURES = (TIME_TO_DECISION, AUTO_DECISION_CORRECT, REVIEW_CLAIM, REVIEW_WAIT, APPEAL_WAIT, ITEM_ACCOUNTED)


async def connect(streams: object, state: State, params: SeedParams, rng: random.Random) -> Moderation:
    """This process's :class:`~.live.Moderation`: the held-out split built, no call (``streams``, ``params`` and
    ``rng`` are not used: the state carries what the seeder planned)."""
    moderation = Moderation(state)
    log.info("moderation: run %s, %d held-out items (%.1f%% labelled violating), %d authors, %d reviewers", state.run,
             len(moderation.items), 100 * sum(i.violating for i in moderation.items) / len(moderation.items),
             len(state.authors), len(state.reviewers))
    return moderation


async def disconnect(moderation: Moderation) -> None:
    """Log the process's tally (:class:`~.live.Tally`), after its last journey."""
    log.info("moderation: %s", moderation.tally.summary())


WORKLOAD = Workload(
    name="moderation",
    description="Content moderation (shared/seeds/001 #26 'Content Moderation', Meta/YouTube): authors posting "
                "labelled items that a classifier approves, removes or sends to human review by its confidence, "
                "reviewers working the review queue against its SLA, appeals of removals, and an audit that every "
                "acknowledged item is accounted for",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("post", "An author posts an item (ModerationService.SubmitItem), waits for the classifier's "
                    "routing (AwaitDecision) and appeals some removals (AppealDecision)", PostParams, post),
            Journey("review", "A reviewer claims the task due soonest (ReviewService.ClaimTask), thinks and sends a "
                    "verdict (CompleteTask), or walks away and lets the lease lapse", ReviewParams, review),
            Journey("audit_check", "An audit of one of this process's items: its audit log replays to its state "
                    "(ListAuditLog, GetItem)", AuditCheckParams, audit_check),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
