"""moderation-pipeline's input rules, as protos/casemesh/moderation/v1/pipeline.proto states them (the shared ones in
services/moderation/contract.py).

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field, the first bad one in the
proto's field order: ``item_id`` and ``author_id`` (1 to 64 characters of ``[A-Za-z0-9_-]``), ``text`` (1 to 5,000
characters), ``timeout_ms`` (1 to 10,000), ``reason`` (at most 500 characters).
"""

from __future__ import annotations

from casemesh.moderation.v1 import pipeline_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract

__all__ = ["appeal", "await_decision", "item_id", "submit"]


def item_id(value: str) -> str:
    """An item ID, naming ``item_id``."""
    return required_id("item_id", value)


def submit(request: pipeline_pb2.SubmitItemRequest) -> tuple[str, str, str]:
    """SubmitItemRequest: (item_id, author_id, text)."""
    item = item_id(request.item_id)
    author = required_id("author_id", request.author_id)
    if not contract.is_text(request.text):
        raise InvalidArgument("text", f"{len(request.text):,} characters; 1 to {contract.MAX_TEXT_CHARS:,}")
    return item, author, request.text


def await_decision(request: pipeline_pb2.AwaitDecisionRequest) -> tuple[str, int]:
    """AwaitDecisionRequest: (item_id, timeout_ms)."""
    item = item_id(request.item_id)
    if not 1 <= request.timeout_ms <= contract.MAX_AWAIT_MS:
        raise InvalidArgument("timeout_ms", f"{request.timeout_ms} is not 1 to {contract.MAX_AWAIT_MS:,}")
    return item, request.timeout_ms


def appeal(request: pipeline_pb2.AppealDecisionRequest) -> tuple[str, str, str]:
    """AppealDecisionRequest: (item_id, author_id, reason)."""
    item = item_id(request.item_id)
    author = required_id("author_id", request.author_id)
    if len(request.reason) > contract.MAX_NOTE_CHARS:
        raise InvalidArgument("reason", f"{len(request.reason):,} characters; at most {contract.MAX_NOTE_CHARS}")
    return item, author, request.reason
