"""Request validation of ObjectStoreService, rule for rule as storage.proto's comments say.

Every failure raises ``InvalidArgument(field, reason)`` with the proto field
path, so the servicer answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
Chunk rules (``offset_bytes``, ``data``) depend on the stored object and are
checked by :class:`~.raw_store.RawObjectStore`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.video.v1 import video_pb2

from ..ladder import BY_RENDITION, PHOTO_RENDITIONS, STORABLE
from ..limits import MAX_PHOTO_RENDITION_BYTES, MAX_SEGMENT_BYTES, MAX_SEGMENTS
from ..tokens import VIDEO_ID_RE

#: Longest ``upload_token`` accepted, in characters (a token is about 200; storage.proto).
MAX_UPLOAD_TOKEN_CHARS = 2048
#: Largest GetSegment range (``max_bytes``), in bytes (storage.proto: 4 MiB).
MAX_RANGE_BYTES = 4 << 20
_SEED_RE = re.compile(r"[0-9a-f]{64}")
_KEY_RE = re.compile(r"raw/([A-Za-z0-9_-]{1,32})")


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_video_id(video_id: str, field: str = "video_id") -> None:
    """A video id: required, 1 to 32 characters of [A-Za-z0-9_-]."""
    if not video_id:
        raise InvalidArgument(field, "is required")
    if not VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidArgument(field, f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(video_id)})")


def validate_upload_token_size(token: str) -> None:
    """``upload_token``: at most 2,048 characters (checked before the token is parsed)."""
    if len(token) > MAX_UPLOAD_TOKEN_CHARS:
        raise InvalidArgument("upload_token", f"must be at most {MAX_UPLOAD_TOKEN_CHARS} characters (got {len(token)})")


def video_id_of_key(key: str) -> str:
    """The video id of a raw object key ``raw/{video_id}``; ``InvalidArgument`` naming ``key`` otherwise."""
    if not key:
        raise InvalidArgument("key", "is required")
    match = _KEY_RE.fullmatch(key)
    if match is None:
        raise InvalidArgument("key", f"must be raw/{{video_id}} with a video id of 1 to 32 characters of [A-Za-z0-9_-] (got {_show(key)})")
    return match.group(1)


def validate_generation(generation: int) -> None:
    """A transcode generation: >= 1."""
    if generation < 1:
        raise InvalidArgument("generation", f"must be >= 1 (got {generation})")


def _rendition_name(rendition: int) -> str:
    return video_pb2.Rendition.Name(rendition) if rendition in video_pb2.Rendition.values() else str(rendition)


def validate_rendition(rendition: int, field: str = "rendition") -> None:
    """A stored rendition: a ladder rung or a photo size (``ladder.STORABLE``), not UNSPECIFIED."""
    if rendition not in STORABLE:
        names = ", ".join(_rendition_name(r) for r in sorted(STORABLE))
        raise InvalidArgument(field, f"must be one of {names} (got {_rendition_name(rendition)})")


def validate_put_rendition(video_id: str, generation: int, rendition: video_pb2.RenditionInfo, content_seed: str,
                           segment_data: Sequence[bytes] = ()) -> None:
    """PutRenditionRequest: video id, generation >= 1, a storable rendition with 1 to 100,000 segments of 1 B to
    16 MiB, and exactly one of a 64-hex ``content_seed`` (ladder rungs) or ``segment_data`` (photo sizes: one
    segment of 1 B to 2 MiB matching its listed size, width and height > 0)."""
    validate_video_id(video_id)
    validate_generation(generation)
    validate_rendition(rendition.rendition, "rendition.rendition")
    sizes = rendition.segment_size_bytes
    if not sizes:
        raise InvalidArgument("rendition.segment_size_bytes", "must list at least one segment")
    if len(sizes) > MAX_SEGMENTS:
        raise InvalidArgument("rendition.segment_size_bytes", f"must list at most {MAX_SEGMENTS} segments (got {len(sizes)})")
    for i, size in enumerate(sizes):
        if not 0 < size <= MAX_SEGMENT_BYTES:
            raise InvalidArgument(f"rendition.segment_size_bytes[{i}]", f"must be 1 to {MAX_SEGMENT_BYTES} bytes (got {size})")
    if rendition.rendition in BY_RENDITION:
        if segment_data:
            raise InvalidArgument("segment_data", f"must be empty for the ladder rung {_rendition_name(rendition.rendition)}: "
                                  "its segments come from content_seed")
        if not _SEED_RE.fullmatch(content_seed):
            raise InvalidArgument("content_seed", f"must be 64 lowercase hex characters (got {_show(content_seed)})")
        return
    if content_seed:
        raise InvalidArgument("content_seed", f"must be empty for the photo size {_rendition_name(rendition.rendition)}: "
                              "its bytes go in segment_data")
    if len(segment_data) != 1 or len(sizes) != 1:
        raise InvalidArgument("segment_data", f"a photo size is exactly one segment (got {len(segment_data)} in "
                              f"segment_data, {len(sizes)} in rendition.segment_size_bytes)")
    if not 0 < len(segment_data[0]) <= MAX_PHOTO_RENDITION_BYTES:
        raise InvalidArgument("segment_data[0]", f"must be 1 to {MAX_PHOTO_RENDITION_BYTES} bytes (got {len(segment_data[0])})")
    if len(segment_data[0]) != sizes[0]:
        raise InvalidArgument("segment_data[0]", f"is {len(segment_data[0])} bytes but rendition.segment_size_bytes[0] "
                              f"says {sizes[0]}")
    if rendition.width_px <= 0 or rendition.height_px <= 0:
        which = "width_px" if rendition.width_px <= 0 else "height_px"
        raise InvalidArgument(f"rendition.{which}", f"must be > 0 for a photo size (got {getattr(rendition, which)})")


def validate_rendition_ref(video_id: str, generation: int, rendition: int) -> None:
    """GetRenditionRequest / GetSegmentRequest's common fields."""
    validate_video_id(video_id)
    validate_generation(generation)
    validate_rendition(rendition)


def validate_segment_index(index: int) -> None:
    """A segment index: >= 0 (an index past the last segment is NOT_FOUND, not invalid)."""
    if index < 0:
        raise InvalidArgument("index", f"must be >= 0 (got {index})")


def validate_segment_range(offset_bytes: int, max_bytes: int) -> None:
    """GetSegmentRequest's range: ``offset_bytes`` >= 0 (its upper bound, the segment's size, is checked by the
    store); ``max_bytes`` 0 (to the end) or 1 to 4 MiB."""
    if offset_bytes < 0:
        raise InvalidArgument("offset_bytes", f"must be >= 0 (got {offset_bytes})")
    if not 0 <= max_bytes <= MAX_RANGE_BYTES:
        raise InvalidArgument("max_bytes", f"must be 0 (to the segment's end) or 1 to {MAX_RANGE_BYTES} bytes (got {max_bytes})")
