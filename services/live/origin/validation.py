"""LiveOriginService's input rules, rule for rule as protos/casemesh/live/v1/origin.proto says.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming
the field as written in the .proto.
"""

from __future__ import annotations

from casemesh.live.v1 import live_pb2

from ...runtime.errors import InvalidArgument
from ..contract import (
    MAX_CHUNK_BYTES,
    MAX_PART_TARGET_MS,
    MAX_SEGMENT_TARGET_MS,
    MAX_TITLE_CHARS,
    MIN_PART_TARGET_MS,
    MIN_SEGMENT_TARGET_MS,
    is_id,
)
from .store import PartRecord, Ref

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def required_id(field: str, value: str) -> str:
    """``value`` when it is an ID (1 to 64 characters of [A-Za-z0-9_-]); else INVALID_ARGUMENT naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    return value


def title(value: str, field: str = "title") -> str:
    """Up to 140 characters."""
    if len(value) > MAX_TITLE_CHARS:
        raise InvalidArgument(field, f"is {len(value):,} characters; at most {MAX_TITLE_CHARS}")
    return value


def targets(part_target_ms: int, segment_target_ms: int) -> tuple[int, int]:
    """Part target 50 to 10,000 ms and at most the segment target; segment target 500 to 10,000 ms."""
    if not MIN_SEGMENT_TARGET_MS <= segment_target_ms <= MAX_SEGMENT_TARGET_MS:
        raise InvalidArgument("segment_target_ms", f"is {segment_target_ms}; must be {MIN_SEGMENT_TARGET_MS:,} to "
                                                   f"{MAX_SEGMENT_TARGET_MS:,}")
    if not MIN_PART_TARGET_MS <= part_target_ms <= MAX_PART_TARGET_MS:
        raise InvalidArgument("part_target_ms", f"is {part_target_ms}; must be {MIN_PART_TARGET_MS:,} to "
                                                f"{MAX_PART_TARGET_MS:,}")
    if part_target_ms > segment_target_ms:
        raise InvalidArgument("part_target_ms", f"is {part_target_ms}; at most segment_target_ms "
                                                f"({segment_target_ms})")
    return part_target_ms, segment_target_ms


def ref(field: str, value: live_pb2.PartRef) -> Ref:
    """``(media_sequence, part_index)``, both >= 0."""
    if value.media_sequence < 0 or value.part_index < 0:
        raise InvalidArgument(field, "media_sequence and part_index must be >= 0")
    return value.media_sequence, value.part_index


def optional_ref(field: str, message, name: str) -> Ref | None:
    """The PartRef field ``name`` of ``message``, or None when unset."""
    return ref(field, getattr(message, name)) if message.HasField(name) else None


def part(value: live_pb2.Part) -> PartRecord:
    """An AppendPart's part: ``part.stream_id``, ``part.ref``, ``part.duration_us`` (>= 1), ``part.chunk_count``
    (>= 1) and ``part.data`` (1 byte to chunk_count × 1 MiB)."""
    stream_id = required_id("part.stream_id", value.stream_id)
    if not value.HasField("ref"):
        raise InvalidArgument("part.ref", "is required")
    msn, index = ref("part.ref", value.ref)
    if value.duration_us < 1:
        raise InvalidArgument("part.duration_us", f"is {value.duration_us}; must be >= 1")
    if value.chunk_count < 1:
        raise InvalidArgument("part.chunk_count", f"is {value.chunk_count}; must be >= 1")
    if value.first_chunk_sequence < 0:
        raise InvalidArgument("part.first_chunk_sequence", "must be >= 0")
    size = len(value.data)
    if size < value.chunk_count or size > value.chunk_count * MAX_CHUNK_BYTES:
        raise InvalidArgument("part.data", f"is {size:,} bytes; its {value.chunk_count} chunks need 1 to "
                                           f"{MAX_CHUNK_BYTES:,} bytes each")
    return PartRecord(stream_id=stream_id, media_sequence=msn, part_index=index, duration_us=value.duration_us,
                      independent=value.independent, first_chunk_sequence=value.first_chunk_sequence,
                      chunk_count=value.chunk_count, data=value.data, ends_segment=value.ends_segment)
