"""moderation-review's input rules, as protos/casemesh/moderation/v1/review.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field, the first bad one in the proto's
field order: Enqueue ``item_id`` (an ID), ``text`` (1 to 5,000 characters), ``violation_probability`` (0 to 1),
``kind`` (FIRST or APPEAL), ``appeal_reason`` (at most 500 characters); ClaimTask ``reviewer_id``, ``lease_ms`` (1,000
to 3,600,000); CompleteTask ``task_id``, ``lease_token`` (IDs, as the service hands them out), ``reviewer_id``,
``verdict`` (APPROVE or REMOVE), ``note`` (at most 500 characters); PullVerdicts ``after_seq`` (0 or more),
``max_verdicts`` (1 to 1,000), ``wait_ms`` (0 to 30,000). IDs are 1 to 64 characters of ``[A-Za-z0-9_-]``
(:func:`services.moderation.contract.is_id`); the limits are :mod:`services.moderation.contract`'s.
"""

from __future__ import annotations

from casemesh.moderation.v1 import moderation_pb2, review_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract
from .queue import APPEAL, APPROVE, FIRST, REMOVE

__all__ = ["KIND_NAMES", "KIND_VALUES", "VERDICT_NAMES", "VERDICT_VALUES", "claim_task", "complete_task", "enqueue",
           "pull_verdicts"]

#: ReviewKind ↔ the queue's kind names.
KIND_NAMES = {moderation_pb2.REVIEW_KIND_FIRST: FIRST, moderation_pb2.REVIEW_KIND_APPEAL: APPEAL}
KIND_VALUES = {name: value for value, name in KIND_NAMES.items()}
#: Verdict ↔ the queue's verdict names.
VERDICT_NAMES = {moderation_pb2.VERDICT_APPROVE: APPROVE, moderation_pb2.VERDICT_REMOVE: REMOVE}
VERDICT_VALUES = {name: value for value, name in VERDICT_NAMES.items()}


def _note(field: str, value: str) -> str:
    if len(value) > contract.MAX_NOTE_CHARS:
        raise InvalidArgument(field, f"has {len(value):,} characters; at most {contract.MAX_NOTE_CHARS:,}")
    return value


def enqueue(request: review_pb2.EnqueueRequest) -> tuple[str, str, float, str, str]:
    """EnqueueRequest: (item_id, text, violation_probability, kind name, appeal_reason)."""
    item_id = required_id("item_id", request.item_id)
    if not contract.is_text(request.text):
        rule = f"1 to {contract.MAX_TEXT_CHARS:,} characters"
        raise InvalidArgument("text", f"has {len(request.text):,} characters; {rule}" if request.text
                              else f"is required ({rule})")
    if not 0.0 <= request.violation_probability <= 1.0:  # NaN too
        raise InvalidArgument("violation_probability", f"{request.violation_probability} is not 0 to 1")
    kind = KIND_NAMES.get(request.kind)
    if kind is None:
        raise InvalidArgument("kind", f"{request.kind} is not REVIEW_KIND_FIRST or REVIEW_KIND_APPEAL")
    return item_id, request.text, request.violation_probability, kind, _note("appeal_reason", request.appeal_reason)


def claim_task(request: review_pb2.ClaimTaskRequest) -> tuple[str, int]:
    """ClaimTaskRequest: (reviewer_id, lease_ms)."""
    reviewer_id = required_id("reviewer_id", request.reviewer_id)
    if not contract.MIN_LEASE_MS <= request.lease_ms <= contract.MAX_LEASE_MS:
        raise InvalidArgument("lease_ms", f"{request.lease_ms} is not {contract.MIN_LEASE_MS:,} to "
                                          f"{contract.MAX_LEASE_MS:,}")
    return reviewer_id, request.lease_ms


def complete_task(request: review_pb2.CompleteTaskRequest) -> tuple[str, str, str, str, str]:
    """CompleteTaskRequest: (task_id, lease_token, reviewer_id, verdict name, note)."""
    task_id = required_id("task_id", request.task_id)
    lease_token = required_id("lease_token", request.lease_token)
    reviewer_id = required_id("reviewer_id", request.reviewer_id)
    verdict = VERDICT_NAMES.get(request.verdict)
    if verdict is None:
        raise InvalidArgument("verdict", f"{request.verdict} is not VERDICT_APPROVE or VERDICT_REMOVE")
    return task_id, lease_token, reviewer_id, verdict, _note("note", request.note)


def pull_verdicts(request: review_pb2.PullVerdictsRequest) -> tuple[int, int, int]:
    """PullVerdictsRequest: (after_seq, max_verdicts, wait_ms)."""
    if request.after_seq < 0:
        raise InvalidArgument("after_seq", f"{request.after_seq} is negative; 0 or more")
    if not 1 <= request.max_verdicts <= contract.MAX_PULL_VERDICTS:
        raise InvalidArgument("max_verdicts", f"{request.max_verdicts} is not 1 to {contract.MAX_PULL_VERDICTS:,}")
    if not 0 <= request.wait_ms <= contract.MAX_PULL_WAIT_MS:
        raise InvalidArgument("wait_ms", f"{request.wait_ms} is not 0 to {contract.MAX_PULL_WAIT_MS:,}")
    return request.after_seq, request.max_verdicts, request.wait_ms
