"""Request validation shared by the reco services, rule for rule as protos/casemesh/reco/v1 says.

Validated in Python rather than with protovalidate annotations (shared/NOTES.md).
Every failure raises ``InvalidArgument(field, reason)`` with the proto field
name (``user_id``, ``interactions[3].kind``, ``pool_size``), so the server
answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. The numbers are those of
:mod:`.limits`, the contract's shared limits.
"""

from __future__ import annotations

from collections.abc import Sequence

from casemesh.reco.v1 import signals_pb2

from ..runtime.errors import InvalidArgument
from .limits import (DEFAULT_EXPORT_BATCH, DEFAULT_LIMIT, ID_PATTERN, MAX_EXPORT_BATCH, MAX_LIMIT, MAX_POOL_SIZE,
                     MAX_RECENT, MAX_RECORD_BATCH)

__all__ = ["KINDS", "validate_id", "validate_ids", "validate_kind", "validate_interactions", "optional_count",
           "recent_limit", "export_batch_size", "recommendation_limit", "pool_size"]

#: The interaction kinds a request may name → their metric label (``INTERACTION_KIND_UNSPECIFIED`` is an error).
KINDS: dict[int, str] = {signals_pb2.INTERACTION_KIND_VIEW: "view", signals_pb2.INTERACTION_KIND_LIKE: "like"}


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_id(field: str, value: str) -> str:
    """``value`` when it is a user or item id (1 to 64 characters of [A-Za-z0-9_-]); else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not ID_PATTERN.fullmatch(value):
        raise InvalidArgument(field, f"must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-', not {_show(value)}")
    return value


def validate_ids(field: str, values: Sequence[str], most: int = MAX_RECENT) -> list[str]:
    """0 to ``most`` ids (GetCandidates' ``recent_item_ids``); ``InvalidArgument(field)`` or ``field[i]`` naming the bad one."""
    if len(values) > most:
        raise InvalidArgument(field, f"has {len(values):,} ids; at most {most:,}")
    for i, value in enumerate(values):
        validate_id(f"{field}[{i}]", value)
    return list(values)


def validate_kind(field: str, value: int) -> int:
    """``value`` when it is INTERACTION_KIND_VIEW or _LIKE; else ``InvalidArgument(field)`` (UNSPECIFIED included)."""
    if value not in KINDS:
        raise InvalidArgument(field, f"must be INTERACTION_KIND_VIEW (1) or INTERACTION_KIND_LIKE (2), not {value}")
    return value


def validate_interactions(interactions: Sequence[signals_pb2.Interaction]) -> list[tuple[str, str, int]]:
    """RecordInteractions' ``interactions`` as ``(user_id, item_id, kind)`` tuples, in request order.

    ``InvalidArgument("interactions")`` when there are none or more than
    10,000; else the first bad field, ``interactions[i].user_id``,
    ``.item_id`` or ``.kind``. ``time`` is ignored (the service sets it).
    """
    if not interactions:
        raise InvalidArgument("interactions", "is required (at least one interaction)")
    if len(interactions) > MAX_RECORD_BATCH:
        raise InvalidArgument("interactions", f"has {len(interactions):,} interactions; at most {MAX_RECORD_BATCH:,}")
    out = []
    for i, interaction in enumerate(interactions):
        out.append((validate_id(f"interactions[{i}].user_id", interaction.user_id),
                    validate_id(f"interactions[{i}].item_id", interaction.item_id),
                    validate_kind(f"interactions[{i}].kind", interaction.kind)))
    return out


def optional_count(field: str, value: int, *, default: int, most: int) -> int:
    """A count where 0 means ``default``: ``value`` or ``default``; ``InvalidArgument(field)`` outside 0..``most``."""
    if value < 0 or value > most:
        raise InvalidArgument(field, f"must be 0 (meaning {default:,}) to {most:,}, not {value:,}")
    return value or default


def recent_limit(value: int) -> int:
    """ListRecentInteractions' ``limit``: 1 to 1,000 (no default); else ``InvalidArgument("limit")``."""
    if not 1 <= value <= MAX_RECENT:
        raise InvalidArgument("limit", f"must be 1 to {MAX_RECENT:,}, not {value:,}")
    return value


def export_batch_size(value: int) -> int:
    """ExportInteractions' ``batch_size``: 0 means 5,000; at most 50,000."""
    return optional_count("batch_size", value, default=DEFAULT_EXPORT_BATCH, most=MAX_EXPORT_BATCH)


def recommendation_limit(value: int) -> int:
    """GetRecommendations' ``limit``: 0 means 20 (seed 003: ``limit = 20``); at most 100."""
    return optional_count("limit", value, default=DEFAULT_LIMIT, most=MAX_LIMIT)


def pool_size(value: int, *, default: int) -> int:
    """GetRecommendations' ``pool_size``: 0 means ``default`` (the ranker's setting); at most 5,000."""
    return optional_count("pool_size", value, default=default, most=MAX_POOL_SIZE)
