"""The adaptive-bitrate ladder every video service and the harness's player share.

Rungs from shared/seeds/004_718541f717f7b956.txt ("360p, 720p, 1080p") with
the bitrates of the Netflix encoder settings in
shared/seeds/003_1dfe16d8ccfde9ed.txt ("Video Encoding": 360p 500k, 720p
2500k, 1080p 5000k). Segments are 2 s long (seed 004: "a 2-second HLS
chunk"); a segment's size is bitrate x duration / 8 bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from casemesh.video.v1 import video_pb2 as pb

#: Target segment duration in milliseconds.
SEGMENT_DURATION_MS = 2000


@dataclass(frozen=True)
class Rung:
    """One rendition of the ladder: its enum value, name (``"720p"``), frame size and bit rate (bit/s)."""

    rendition: int
    name: str
    width_px: int
    height_px: int
    bandwidth_bps: int


#: The ladder, lowest bit rate first.
LADDER: tuple[Rung, ...] = (
    Rung(pb.RENDITION_360P, "360p", 640, 360, 500_000),
    Rung(pb.RENDITION_720P, "720p", 1280, 720, 2_500_000),
    Rung(pb.RENDITION_1080P, "1080p", 1920, 1080, 5_000_000),
)
BY_RENDITION: dict[int, Rung] = {r.rendition: r for r in LADDER}
BY_NAME: dict[str, Rung] = {r.name: r for r in LADDER}
#: Photo sizes (the photo-sharing case study, casemesh.photo.v1): stored and served by the same object store and
#: edge as one-segment renditions with real bytes, never played (services/photo/sizes.py holds their widths).
PHOTO_RENDITIONS: frozenset[int] = frozenset({pb.RENDITION_PHOTO_THUMBNAIL, pb.RENDITION_PHOTO_MEDIUM,
                                              pb.RENDITION_PHOTO_LARGE})
#: Every rendition the object store keeps and the edge serves: the ladder's rungs and the photo sizes.
STORABLE: frozenset[int] = frozenset(BY_RENDITION) | PHOTO_RENDITIONS


def segment_sizes(bandwidth_bps: int, duration_s: float, segment_ms: int = SEGMENT_DURATION_MS) -> list[int]:
    """Sizes in bytes of the segments of a ``duration_s`` video at ``bandwidth_bps``.

    ``ceil(duration / segment duration)`` segments of ``bandwidth x segment
    duration / 8`` bytes; the last one is proportionally shorter (at least
    1 byte). ``ValueError`` when ``duration_s`` or ``bandwidth_bps`` is not
    positive.
    """
    if duration_s <= 0 or bandwidth_bps <= 0:
        raise ValueError("duration_s and bandwidth_bps must be > 0")
    segment_s = segment_ms / 1000
    count = max(math.ceil(duration_s / segment_s - 1e-9), 1)
    full = bandwidth_bps * segment_ms // 8000
    last_s = duration_s - (count - 1) * segment_s
    last = max(int(bandwidth_bps * last_s / 8), 1)
    return [full] * (count - 1) + [min(last, full)]


def rendition_info(rung: Rung, duration_s: float) -> pb.RenditionInfo:
    """The ``RenditionInfo`` of ``rung`` for a video of ``duration_s`` seconds."""
    return pb.RenditionInfo(
        rendition=rung.rendition, bandwidth_bps=rung.bandwidth_bps, width_px=rung.width_px,
        height_px=rung.height_px, segment_duration_ms=SEGMENT_DURATION_MS,
        segment_size_bytes=segment_sizes(rung.bandwidth_bps, duration_s),
    )
