"""Request validation of PlaybackService (playback.proto), rule for rule as the contract says.

Every failure raises ``InvalidArgument(field, reason)`` with the proto field
name, so the server answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
The video-id, generation and rendition rules are shared with EdgeService
(edge/validation.py).
"""

from __future__ import annotations

from casemesh.video.v1 import video_pb2

from ...runtime.errors import InvalidArgument
from ..ladder import BY_RENDITION, PHOTO_RENDITIONS
from ..tokens import VIDEO_ID_RE  # the platform's video id rule (video.proto: URL-safe, at most 32 characters)


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_video_id(video_id: str) -> None:
    """``video_id``: required; 1 to 32 characters of [A-Za-z0-9_-]."""
    if not video_id:
        raise InvalidArgument("video_id", "is required")
    if not VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidArgument("video_id", f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(video_id)})")


def validate_generation(generation: int, *, allow_current: bool) -> None:
    """``generation``: >= 1, or 0 ("the current one") where ``allow_current``."""
    low = 0 if allow_current else 1
    if generation < low:
        raise InvalidArgument("generation", f"must be >= {low} (got {generation})")


def validate_rendition(rendition: int) -> None:
    """``rendition``: a rung of the ladder (360p, 720p, 1080p); not UNSPECIFIED, not an unknown value."""
    if rendition == video_pb2.RENDITION_UNSPECIFIED:
        raise InvalidArgument("rendition", "is required (RENDITION_360P, RENDITION_720P or RENDITION_1080P)")
    if rendition not in BY_RENDITION:
        what = "a photo size, not a ladder rung" if rendition in PHOTO_RENDITIONS else "unknown"
        raise InvalidArgument("rendition", f"must be a ladder rung (got {rendition}: {what})")


def validate_master_request(video_id: str, generation: int) -> None:
    """GetMasterPlaylistRequest: ``video_id`` as above; ``generation`` >= 0 (0 = current)."""
    validate_video_id(video_id)
    validate_generation(generation, allow_current=True)


def validate_variant_request(video_id: str, generation: int, rendition: int) -> None:
    """GetVariantPlaylistRequest: ``video_id``; ``generation`` >= 1; ``rendition`` on the ladder."""
    validate_video_id(video_id)
    validate_generation(generation, allow_current=False)
    validate_rendition(rendition)
