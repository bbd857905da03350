"""Request validation of LiveEdgeService (edge.proto), rule for rule as the contract says.

Failures raise ``InvalidArgument(field, reason)`` naming the proto field
(``block.part_index`` for a field of ``block``), so the server answers
``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. The rules are the contract's
(services/live/contract.py): IDs of 1 to 64 characters of [A-Za-z0-9_-];
media sequence numbers and part indexes >= 0.
"""

from __future__ import annotations

from casemesh.live.v1 import live_pb2

from ...runtime.errors import InvalidArgument
from ..contract import MAX_SEGMENT_TARGET_MS, MIN_PART_TARGET_MS, is_id

#: Highest media sequence accepted: 2^53 - 1 (a JSON-safe integer; a 1 s segment per second for 285 million years).
MAX_MEDIA_SEQUENCE = 2 ** 53 - 1
#: Highest part index accepted: a segment holds at most its longest duration over the shortest part, with room for a
#: segment that runs past its target waiting for a keyframe (the origin rejects indexes its stream cannot have).
MAX_PART_INDEX = 4 * MAX_SEGMENT_TARGET_MS // MIN_PART_TARGET_MS

Ref = tuple[int, int]


def validate_stream_id(stream_id: str, field: str = "stream_id") -> str:
    """1 to 64 characters of [A-Za-z0-9_-]."""
    if not stream_id:
        raise InvalidArgument(field, "is required (1 to 64 characters of [A-Za-z0-9_-])")
    if not is_id(stream_id):
        raise InvalidArgument(field, "must be 1 to 64 characters of [A-Za-z0-9_-]")
    return stream_id


def validate_part_ref(field: str, ref: live_pb2.PartRef) -> Ref:
    """``(media_sequence, part_index)``: media_sequence 0 to 2^53 - 1, part_index 0 to :data:`MAX_PART_INDEX`."""
    if not 0 <= ref.media_sequence <= MAX_MEDIA_SEQUENCE:
        raise InvalidArgument(f"{field}.media_sequence", f"must be 0 to {MAX_MEDIA_SEQUENCE} (got {ref.media_sequence})")
    if not 0 <= ref.part_index <= MAX_PART_INDEX:
        raise InvalidArgument(f"{field}.part_index", f"must be 0 to {MAX_PART_INDEX} (got {ref.part_index})")
    return ref.media_sequence, ref.part_index


def validate_optional_ref(field: str, message, name: str) -> Ref | None:
    """``message.<name>`` as a :data:`Ref` when set, else None."""
    return validate_part_ref(field, getattr(message, name)) if message.HasField(name) else None


def validate_required_ref(field: str, message, name: str) -> Ref:
    """``message.<name>`` as a :data:`Ref`; ``InvalidArgument(field)`` when unset."""
    if not message.HasField(name):
        raise InvalidArgument(field, "is required (the part's media_sequence and part_index)")
    return validate_part_ref(field, getattr(message, name))


def validate_media_sequence(field: str, media_sequence: int) -> int:
    """0 to 2^53 - 1."""
    if not 0 <= media_sequence <= MAX_MEDIA_SEQUENCE:
        raise InvalidArgument(field, f"must be 0 to {MAX_MEDIA_SEQUENCE} (got {media_sequence})")
    return media_sequence
