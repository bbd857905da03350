"""The moderation journeys: authors posting (and appealing removals), human reviewers working the review queue, and an
auditor checking that no acknowledged item was lost between stages (open-loop arrivals).

Seed 001 #26 "Content Moderation" (shared/seeds/001_58dfc580020147d2.txt line 50: "| 26 | Content Moderation | AI
classifiers (BERT/ResNet), confidence routing, human review, CSAM detection | 100M items/day, Meta/YouTube |").

- ``post`` (its weight is the posts a second): an author drawn by activity (Zipf, :mod:`.live`) posts a held-out item
  of the labelled corpus under a fresh item ID: ModerationService.SubmitItem, then AwaitDecision (``await_ms``, 5 s)
  until the classifier has routed it. An item the classifier removed is appealed (AppealDecision) by its author with
  ``appeal_p_if_wrong`` (0.6) when its label says it is benign (a wrongful removal, which authors contest) and with
  ``appeal_p_if_right`` (0.05) otherwise.
- ``review`` (its weight is the review team's capacity, claims a second): a reviewer drawn uniformly asks
  ReviewService.ClaimTask for the task due soonest (a lease of ``lease_ms``, 10 s), reads it (a lognormal think time,
  median ``think_ms`` 400 ms, sigma ``think_sigma``) and sends its verdict (CompleteTask): the item's label with
  ``reviewer_accuracy`` (0.97), the other verdict otherwise (for an appeal, REMOVE upholds the removal and APPROVE
  reverses it); a text that is not of the held-out split is judged by its probability (REMOVE at 0.5 or more).
  ``walk_away_p`` (1%) of reviewers walk away without a verdict: the lease lapses and the task goes back to the queue.
- ``audit_check``: ListAuditLog and GetItem of one of this process's acknowledged items (uniformly among those
  acknowledged at least ``min_age_s``, 2 s, ago).

Measures, besides the RPCs the driver records (latency 0 unless said):

- ``time_to_decision``: one per post, from the journey's intended start to AwaitDecision's answer (the time an author
  waits to see the post up or taken down). Code ``OK`` when the classifier decided it (APPROVED or REMOVED, decided
  by CLASSIFIER), ``IN_REVIEW`` when it was sent to human review (recorded with its latency all the same),
  ``DEADLINE_EXCEEDED`` when it was still PENDING when AwaitDecision's wait ran out (SLO files name gRPC status codes
  only, harness/slo.py, so the latency SLO's total can count an item the pipeline left undecided this way), the
  call's status code when SubmitItem or AwaitDecision failed, or ``UNEXPECTED_STATE`` for an answer that is none of
  these (decided, but by nobody);
- ``auto_decision_correct``: one per auto-decided post: ``OK``, ``FALSE_APPROVE`` (approved, labelled violating) or
  ``FALSE_REMOVE`` (removed, labelled benign);
- ``review_claim``: one per ClaimTask answered: ``OK`` with a task, ``EMPTY`` when the queue had none;
- ``review_wait``: one per review task, first reviews and appeals alike, at its first claim (``claims`` 1; a task
  claimed again after a lapsed lease is not counted twice): claim time (the answer's arrival, Unix ms) less the
  task's ``enqueued_at_unix_ms``; ``OK`` when claimed by its ``due_at_unix_ms`` (its kind's SLA), else ``OVERDUE``.
  ``appeal_wait``: the appeals' samples again, on their own;
- ``item_accounted`` (an invariant): one per audit check: ``OK`` when the item is found as it was submitted (author,
  text), its audit log replays (:func:`log_problem`: it starts with SUBMITTED, seqs increase, every entry is one of
  the pipeline's transitions from the state before it) to the item's state, its ``decided_by`` and ``appealed``;
  ``LOST`` when either call answers NOT_FOUND; ``INCONSISTENT`` otherwise; ``STUCK`` when it is consistent but still
  PENDING more than ``stuck_after_s`` (10 s) after SubmitItem answered. An item whose state changes between the two
  calls is read again (:func:`moved_problem`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from collections.abc import Sequence

import grpc
from pydantic import Field

from casemesh.moderation.v1 import moderation_pb2 as pb, pipeline_pb2, review_pb2
from casemesh.services.moderation.contract import MAX_AUDIT_ENTRIES, MAX_AWAIT_MS, MAX_LEASE_MS, MIN_LEASE_MS

from ..base import Caller, Params
from .live import OK, Moderation, Posted
from .seeding import PIPELINE, REVIEW

log = logging.getLogger("casemesh.workloads.moderation")

TIME_TO_DECISION = "time_to_decision"
AUTO_DECISION_CORRECT = "auto_decision_correct"
REVIEW_CLAIM = "review_claim"
REVIEW_WAIT = "review_wait"
APPEAL_WAIT = "appeal_wait"
ITEM_ACCOUNTED = "item_accounted"

IN_REVIEW = "IN_REVIEW"
#: ``time_to_decision``'s code for an item still PENDING when AwaitDecision's wait ran out.
STILL_PENDING = "DEADLINE_EXCEEDED"
UNEXPECTED_STATE = "UNEXPECTED_STATE"
FALSE_APPROVE = "FALSE_APPROVE"
FALSE_REMOVE = "FALSE_REMOVE"
EMPTY = "EMPTY"
OVERDUE = "OVERDUE"
LOST = "LOST"
INCONSISTENT = "INCONSISTENT"
STUCK = "STUCK"
#: What an author who appeals writes.
APPEAL_REASON = "my post breaks no rule"
#: Problems of item_accounted logged per load process (the rest are counted only).
MAX_LOGGED = 20

#: The pipeline's transitions (pipeline.proto, moderation.proto): event -> (the state before it, the state after it).
TRANSITIONS: dict[int, tuple[int | None, int]] = {
    pb.AUDIT_EVENT_SUBMITTED: (None, pb.ITEM_STATE_PENDING),
    pb.AUDIT_EVENT_AUTO_APPROVED: (pb.ITEM_STATE_PENDING, pb.ITEM_STATE_APPROVED),
    pb.AUDIT_EVENT_AUTO_REMOVED: (pb.ITEM_STATE_PENDING, pb.ITEM_STATE_REMOVED),
    pb.AUDIT_EVENT_SENT_TO_REVIEW: (pb.ITEM_STATE_PENDING, pb.ITEM_STATE_IN_REVIEW),
    pb.AUDIT_EVENT_REVIEW_APPROVED: (pb.ITEM_STATE_IN_REVIEW, pb.ITEM_STATE_APPROVED),
    pb.AUDIT_EVENT_REVIEW_REMOVED: (pb.ITEM_STATE_IN_REVIEW, pb.ITEM_STATE_REMOVED),
    pb.AUDIT_EVENT_APPEALED: (pb.ITEM_STATE_REMOVED, pb.ITEM_STATE_IN_APPEAL),
    pb.AUDIT_EVENT_APPEAL_UPHELD: (pb.ITEM_STATE_IN_APPEAL, pb.ITEM_STATE_REMOVED),
    pb.AUDIT_EVENT_APPEAL_REVERSED: (pb.ITEM_STATE_IN_APPEAL, pb.ITEM_STATE_APPROVED),
}
#: Who made the decision of each deciding event (APPEALED keeps the removal's decider).
DECIDER: dict[int, int] = {
    pb.AUDIT_EVENT_SUBMITTED: pb.DECIDED_BY_UNSPECIFIED,
    pb.AUDIT_EVENT_SENT_TO_REVIEW: pb.DECIDED_BY_UNSPECIFIED,
    pb.AUDIT_EVENT_AUTO_APPROVED: pb.DECIDED_BY_CLASSIFIER,
    pb.AUDIT_EVENT_AUTO_REMOVED: pb.DECIDED_BY_CLASSIFIER,
    pb.AUDIT_EVENT_REVIEW_APPROVED: pb.DECIDED_BY_REVIEWER,
    pb.AUDIT_EVENT_REVIEW_REMOVED: pb.DECIDED_BY_REVIEWER,
    pb.AUDIT_EVENT_APPEAL_UPHELD: pb.DECIDED_BY_APPEAL,
    pb.AUDIT_EVENT_APPEAL_REVERSED: pb.DECIDED_BY_APPEAL,
}


class PostParams(Params):
    """A post: how long the author waits for the decision, and how often a removal is appealed."""

    await_ms: int = Field(default=5_000, ge=1, le=MAX_AWAIT_MS,
                          description="AwaitDecision's wait, ms (keep the profile's request_timeout_ms above it)")
    appeal_p_if_wrong: float = Field(default=0.6, ge=0, le=1,
                                     description="share of removals of benign-labelled posts that are appealed")
    appeal_p_if_right: float = Field(default=0.05, ge=0, le=1,
                                     description="share of removals of violating-labelled posts that are appealed")


class ReviewParams(Params):
    """A reviewer's claim of the next task: the lease, the think time, accuracy, walking away."""

    lease_ms: int = Field(default=10_000, ge=MIN_LEASE_MS, le=MAX_LEASE_MS, description="the claim's lease, ms")
    think_ms: float = Field(default=400.0, ge=0, le=600_000, description="median think time before the verdict, ms")
    think_sigma: float = Field(default=0.5, ge=0, le=3, description="the think time's lognormal sigma")
    reviewer_accuracy: float = Field(default=0.97, ge=0, le=1, description="share of verdicts that follow the label")
    walk_away_p: float = Field(default=0.01, ge=0, le=1,
                               description="share of claims left without a verdict (the lease lapses)")


class AuditCheckParams(Params):
    """An audit of one of the process's items: which ones, and when a pending one is stuck."""

    min_age_s: float = Field(default=2.0, ge=0, le=3_600, description="audit items acknowledged at least this long ago")
    stuck_after_s: float = Field(default=10.0, gt=0, le=3_600,
                                 description="an item still PENDING this long after its acknowledgement is STUCK")


def route_code(item: pb.Item) -> str:
    """``time_to_decision``'s code for AwaitDecision's answer (module docstring)."""
    if item.state == pb.ITEM_STATE_PENDING:
        return STILL_PENDING
    if item.decided_by == pb.DECIDED_BY_CLASSIFIER and item.state in (pb.ITEM_STATE_APPROVED, pb.ITEM_STATE_REMOVED):
        return OK
    if item.state == pb.ITEM_STATE_IN_REVIEW and item.decided_by == pb.DECIDED_BY_UNSPECIFIED:
        return IN_REVIEW
    if item.decided_by in (pb.DECIDED_BY_REVIEWER, pb.DECIDED_BY_APPEAL):
        return IN_REVIEW  # routed to review and already reviewed by the time the answer was made
    return UNEXPECTED_STATE


def correctness_code(state: int, violating: bool) -> str:
    """``auto_decision_correct``'s code for an auto-decision ``state`` of an item labelled ``violating``."""
    if state == pb.ITEM_STATE_APPROVED and violating:
        return FALSE_APPROVE
    if state == pb.ITEM_STATE_REMOVED and not violating:
        return FALSE_REMOVE
    return OK


async def post(call: Caller, params: PostParams, mod: Moderation, rng: random.Random) -> None:
    """An author posts an item and waits for its routing; maybe appeals a removal (module docstring)."""
    author = mod.author(rng)
    labelled = mod.item(rng)
    item_id = mod.item_id()
    try:
        await call(PIPELINE, "SubmitItem", pipeline_pb2.SubmitItemRequest(item_id=item_id, author_id=author,
                                                                         text=labelled.text))
        mod.tally.posts += 1
        mod.remember(item_id, author, labelled.text)
        item = (await call(PIPELINE, "AwaitDecision", pipeline_pb2.AwaitDecisionRequest(
            item_id=item_id, timeout_ms=params.await_ms))).item
    except grpc.aio.AioRpcError as error:
        call.observe(TIME_TO_DECISION, mod.clock() - call.intended_at, error.code().name)
        raise
    code = route_code(item)
    call.observe(TIME_TO_DECISION, mod.clock() - call.intended_at, code)
    mod.tally.routes[code] += 1
    if code != OK:
        return
    correct = correctness_code(item.state, labelled.violating)
    call.observe(AUTO_DECISION_CORRECT, 0.0, correct)
    if correct != OK:
        mod.tally.wrong[correct] += 1
    if item.state != pb.ITEM_STATE_REMOVED:
        return
    if rng.random() < (params.appeal_p_if_right if labelled.violating else params.appeal_p_if_wrong):
        await call(PIPELINE, "AppealDecision", pipeline_pb2.AppealDecisionRequest(item_id=item_id, author_id=author,
                                                                                 reason=APPEAL_REASON))
        mod.tally.appeals += 1


def reviewer_verdict(mod: Moderation, task: review_pb2.ReviewTask, accuracy: float, rng: random.Random) -> int:
    """The reviewer's verdict on ``task`` (module docstring): the label's with ``accuracy``, else the other."""
    known = mod.labels.get(task.text)
    violating = known.violating if known is not None else task.violation_probability >= 0.5
    right = pb.VERDICT_REMOVE if violating else pb.VERDICT_APPROVE
    if rng.random() < accuracy:
        return right
    mod.tally.verdicts_wrong += 1
    return pb.VERDICT_APPROVE if right == pb.VERDICT_REMOVE else pb.VERDICT_REMOVE


def think_s(params: ReviewParams, rng: random.Random) -> float:
    """A reviewer's think time, seconds: lognormal around ``think_ms``."""
    return params.think_ms / 1_000 * math.exp(rng.gauss(0, params.think_sigma)) if params.think_ms else 0.0


async def review(call: Caller, params: ReviewParams, mod: Moderation, rng: random.Random) -> None:
    """A reviewer claims the task due soonest, thinks, and sends a verdict, or walks away (module docstring)."""
    reviewer = mod.reviewer(rng)
    answer = await call(REVIEW, "ClaimTask", review_pb2.ClaimTaskRequest(reviewer_id=reviewer,
                                                                         lease_ms=params.lease_ms))
    claimed_ms = mod.wall_ms()
    if not answer.HasField("task"):
        call.observe(REVIEW_CLAIM, 0.0, EMPTY)
        mod.tally.empty_claims += 1
        return
    task = answer.task
    call.observe(REVIEW_CLAIM, 0.0, OK)
    mod.tally.claims += 1
    if task.claims > 1:
        mod.tally.reclaims += 1
    elif task.kind in (pb.REVIEW_KIND_FIRST, pb.REVIEW_KIND_APPEAL):
        on_time = claimed_ms <= task.due_at_unix_ms
        mod.tally.overdue += not on_time
        waited_s = max(claimed_ms - task.enqueued_at_unix_ms, 0) / 1_000
        call.observe(REVIEW_WAIT, waited_s, OK if on_time else OVERDUE)
        if task.kind == pb.REVIEW_KIND_APPEAL:
            call.observe(APPEAL_WAIT, waited_s, OK if on_time else OVERDUE)
    if rng.random() < params.walk_away_p:
        mod.tally.walked_away += 1
        return
    await asyncio.sleep(think_s(params, rng))
    verdict = reviewer_verdict(mod, task, params.reviewer_accuracy, rng)
    await call(REVIEW, "CompleteTask", review_pb2.CompleteTaskRequest(
        task_id=task.task_id, lease_token=task.lease_token, reviewer_id=reviewer, verdict=verdict))
    mod.tally.verdicts += 1


def _name(enum: object, value: int | None) -> str:
    return "none" if value is None else enum.Name(value) if value in enum.values() else str(value)  # type: ignore[attr-defined]


def log_problem(item_id: str, entries: Sequence[pb.AuditEntry]) -> str | None:
    """What is wrong with an item's audit log, or ``None``: it must start with SUBMITTED, hold at most
    MAX_AUDIT_ENTRIES entries of this item with increasing seqs, each one of :data:`TRANSITIONS` from the state the
    entries before it left."""
    if not entries:
        return "the audit log is empty"
    if len(entries) > MAX_AUDIT_ENTRIES:
        return f"the audit log holds {len(entries)} entries (at most {MAX_AUDIT_ENTRIES})"
    state: int | None = None
    seq: int | None = None
    for i, entry in enumerate(entries):
        if entry.item_id != item_id:
            return f"entry {i} (seq {entry.seq}) is of item {entry.item_id!r}"
        if seq is not None and entry.seq <= seq:
            return f"entry {i}'s seq {entry.seq} does not follow {seq}"
        transition = TRANSITIONS.get(entry.event)
        if transition is None:
            return f"entry {i} (seq {entry.seq}) has event {_name(pb.AuditEvent, entry.event)}"
        if i == 0 and entry.event != pb.AUDIT_EVENT_SUBMITTED:
            return f"the log starts with {_name(pb.AuditEvent, entry.event)}, not SUBMITTED"
        if transition != (state, entry.state_after):
            return (f"entry {i} (seq {entry.seq}) {_name(pb.AuditEvent, entry.event)} goes from "
                    f"{_name(pb.ItemState, state)} to {_name(pb.ItemState, entry.state_after)}")
        state, seq = entry.state_after, entry.seq
    return None


def fields_problem(posted: Posted, item: pb.Item) -> str | None:
    """Whether GetItem answered the item as it was submitted (ID, author, text): ``None`` when so."""
    if (item.item_id, item.author_id, item.text) != (posted.item_id, posted.author_id, posted.text):
        return f"GetItem answered item {item.item_id!r} of {item.author_id!r} with another ID, author or text"
    return None


def item_problem(item: pb.Item, entries: Sequence[pb.AuditEntry]) -> str | None:
    """What is wrong with ``item`` against its (sound) audit log read just before it, or ``None``: the log's last
    state, decider and appeal must be the item's."""
    if entries[-1].state_after != item.state:
        return (f"the log ends in {_name(pb.ItemState, entries[-1].state_after)} but the item is "
                f"{_name(pb.ItemState, item.state)}")
    decider = [DECIDER[e.event] for e in entries if e.event in DECIDER]
    if item.decided_by != decider[-1]:
        return f"decided_by {_name(pb.DecidedBy, item.decided_by)}, the log says {_name(pb.DecidedBy, decider[-1])}"
    appealed = any(e.event == pb.AUDIT_EVENT_APPEALED for e in entries)
    if item.appealed != appealed:
        return f"appealed is {item.appealed} but the log {'has' if appealed else 'has no'} APPEALED"
    return None


def moved_problem(item: pb.Item, before: Sequence[pb.AuditEntry], after: Sequence[pb.AuditEntry]) -> str | None:
    """Whether the item's state, read between two reads of its log (``before``, then ``after``), is one the log
    passed through meanwhile: ``before`` a prefix of ``after``, the item's state one of ``after``'s from ``before``'s
    last entry on. ``None`` when so, else what is wrong."""
    if len(after) < len(before) or list(after[:len(before)]) != list(before):
        return "the audit log changed other than by appending"
    passed = {e.state_after for e in after[len(before) - 1:]}
    if item.state not in passed:
        return (f"the item is {_name(pb.ItemState, item.state)}, a state its log did not pass through while it was "
                f"read ({', '.join(sorted(_name(pb.ItemState, s) for s in passed))})")
    return None


async def audit_check(call: Caller, params: AuditCheckParams, mod: Moderation, rng: random.Random) -> None:
    """Check that one of this process's items is accounted for (module docstring)."""
    posted = mod.auditable(rng, params.min_age_s)
    if posted is None:
        mod.tally.audits["NONE_OLD_ENOUGH"] += 1
        return
    problem: str | None
    try:
        request = pipeline_pb2.ListAuditLogRequest(item_id=posted.item_id)
        entries = list((await call(PIPELINE, "ListAuditLog", request)).entries)
        item = (await call(PIPELINE, "GetItem", pipeline_pb2.GetItemRequest(item_id=posted.item_id))).item
        problem = fields_problem(posted, item) or log_problem(posted.item_id, entries)
        if problem is None and entries[-1].state_after != item.state:
            # The item moved on between the two reads (a verdict applied, an appeal): read its log again.
            later = list((await call(PIPELINE, "ListAuditLog", request)).entries)
            problem = log_problem(posted.item_id, later) or moved_problem(item, entries, later)
            if problem is None and later[-1].state_after == item.state:
                problem = item_problem(item, later)
        elif problem is None:
            problem = item_problem(item, entries)
        code = INCONSISTENT if problem else OK
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        code, problem = LOST, "NOT_FOUND"
    if code == OK and item.state == pb.ITEM_STATE_PENDING and mod.clock() - posted.at > params.stuck_after_s:
        code, problem = STUCK, f"still PENDING {mod.clock() - posted.at:.1f} s after SubmitItem answered"
    call.observe(ITEM_ACCOUNTED, 0.0, code)
    mod.tally.audits[code] += 1
    if code != OK and sum(v for k, v in mod.tally.audits.items() if k not in (OK, "NONE_OLD_ENOUGH")) <= MAX_LOGGED:
        log.warning("moderation: item %s of %s %s: %s", posted.item_id, posted.author_id, code, problem)
