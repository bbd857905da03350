"""LiveIngestService's input rules, rule for rule as protos/casemesh/live/v1/ingest.proto says.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming
the field as written in the .proto.
"""

from __future__ import annotations

from casemesh.live.v1 import ingest_pb2

from ...runtime.errors import InvalidArgument
from ..contract import MAX_CHUNK_BYTES, MAX_CHUNK_DURATION_US, MAX_ROOM_MEMBERS, MAX_TITLE_CHARS, is_id
from .packager import Chunk

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def required_id(field: str, value: str) -> str:
    """``value`` when it is an ID (1 to 64 characters of [A-Za-z0-9_-]); else INVALID_ARGUMENT naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    return value


def title(value: str) -> str:
    """Up to 140 characters; may be empty."""
    if len(value) > MAX_TITLE_CHARS:
        raise InvalidArgument("title", f"is {len(value):,} characters; at most {MAX_TITLE_CHARS}")
    return value


def chat_members(values, broadcaster_id: str) -> list[str]:
    """At most 499 distinct user ids, each an ID; duplicates (and the broadcaster) dropped, order kept."""
    members: dict[str, None] = {}
    for index, value in enumerate(values):
        required_id(f"chat_member_ids[{index}]", value)
        if value != broadcaster_id:
            members[value] = None
    if len(members) > MAX_ROOM_MEMBERS:
        raise InvalidArgument("chat_member_ids", f"has {len(members):,} distinct user ids; at most "
                                                 f"{MAX_ROOM_MEMBERS}")
    return list(members)


def chunk(value: ingest_pb2.MediaChunk) -> Chunk:
    """``chunk.sequence`` >= 0, ``chunk.duration_us`` 1 to 1,000,000, ``chunk.data`` 1 to 1,048,576 bytes."""
    if value.sequence < 0:
        raise InvalidArgument("chunk.sequence", f"is {value.sequence}; must be >= 0")
    if not 1 <= value.duration_us <= MAX_CHUNK_DURATION_US:
        raise InvalidArgument("chunk.duration_us", f"is {value.duration_us}; must be 1 to {MAX_CHUNK_DURATION_US:,}")
    size = len(value.data)
    if not 1 <= size <= MAX_CHUNK_BYTES:
        raise InvalidArgument("chunk.data", f"is {size:,} bytes; must be 1 to {MAX_CHUNK_BYTES:,}")
    return Chunk(value.sequence, value.duration_us, value.keyframe, value.data)
