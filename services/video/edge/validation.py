"""Request validation of EdgeService.StreamSegments (edge.proto), rule for rule as the contract says.

Failures raise ``InvalidArgument(field, reason)`` naming the proto field, so
the server answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. The
video-id and generation rules are PlaybackService's (playback/validation.py):
the URLs of its playlists carry the same values. The rendition rule is the
object store's: a ladder rung or a photo size (the photo-sharing case study
serves its sizes through this edge).
"""

from __future__ import annotations

from ...runtime.errors import InvalidArgument
from ..playback.validation import validate_generation, validate_video_id
from ..storage.validation import validate_rendition

#: Most segments one call may ask for (edge.proto: "Number of segments: 1 to 30").
MAX_SEGMENTS_PER_CALL = 30
#: Highest segment index accepted: a 12 h video (video.proto's longest) has 21,600 segments of 2 s.
MAX_SEGMENT_INDEX = 1_000_000


def validate_stream_request(video_id: str, generation: int, rendition: int, start_index: int, count: int) -> None:
    """StreamSegmentsRequest: ``video_id``; ``generation`` >= 1; ``rendition`` a ladder rung or a photo size;
    ``start_index`` 0 to 1,000,000; ``count`` 1 to 30."""
    validate_video_id(video_id)
    validate_generation(generation, allow_current=False)
    validate_rendition(rendition)
    if not 0 <= start_index <= MAX_SEGMENT_INDEX:
        raise InvalidArgument("start_index", f"must be 0 to {MAX_SEGMENT_INDEX:,} (got {start_index})")
    if not 1 <= count <= MAX_SEGMENTS_PER_CALL:
        raise InvalidArgument("count", f"must be 1 to {MAX_SEGMENTS_PER_CALL} (got {count})")
