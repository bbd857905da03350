"""The harness's video player: reads HLS playlists and picks a variant by adaptive bitrate (ABR).

ABR rule (issue 3, after shared/seeds/003_1dfe16d8ccfde9ed.txt, "Adaptive
Bitrate Switching"): play the highest variant whose BANDWIDTH is below
``safety`` (0.8) x the measured throughput; the lowest variant when none is.
Throughput is measured per viewer from the segment downloads (bytes x 8 /
download time) and smoothed with an exponentially weighted moving average, as
players such as hls.js do; a viewer with no measurement yet starts from an
initial estimate. Master playlists and URIs are read with the playback service's HLS reader.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from casemesh.services.video.ladder import BY_RENDITION
from casemesh.services.video.playback import hls

_GENERATION = re.compile(r"[?&]gen=(\d+)")


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry: BANDWIDTH (bit/s), rendition name (``720p``) and its enum value."""

    bandwidth_bps: int
    name: str
    rendition: int
    uri: str


def generation_of(url: str) -> int:
    """The ``gen`` query parameter of a versioned manifest URL (``/v/ID/master.m3u8?gen=3`` → 3); ``ValueError`` when absent."""
    match = _GENERATION.search(url)
    if match is None:
        raise ValueError(f"no ?gen= in {url!r}")
    return int(match.group(1))


def segment_index(uri: str) -> int:
    """The index in a segment URI (``seg-00007.ts?gen=2`` → 7), which EdgeService.StreamSegments takes; ``ValueError`` otherwise."""
    return hls.parse_segment_uri(uri)[0]


def master_variants(playlist: str) -> list[Variant]:
    """The variants of a master playlist, lowest bandwidth first; ``ValueError`` when it is not a master playlist.

    Parsed with the playback service's own HLS reader (``services/video/playback/hls.py``), so the
    player and the server agree on the playlist and URI grammar.
    """
    variants = []
    for entry in hls.parse_master(playlist).variants:
        rendition, _ = hls.parse_variant_uri(entry.uri)
        variants.append(Variant(entry.bandwidth_bps, BY_RENDITION[rendition].name, rendition, entry.uri))
    return sorted(variants, key=lambda v: v.bandwidth_bps)


def first_segment(playlist: str) -> tuple[str, int]:
    """The first segment's URI and the segment count of a media (variant) playlist.

    A player starting playback needs only the first segment, so this reads the
    playlist line by line instead of building every segment object (``m3u8``
    takes about 3.5 ms for a 9-minute video's 270 segments, which would block
    the driver's event loop at tens of view starts per second). ``ValueError``
    when it is not an HLS media playlist with at least one segment.
    """
    lines = playlist.splitlines()
    if not lines or lines[0].strip() != "#EXTM3U":
        raise ValueError("not an HLS playlist (no #EXTM3U first line)")
    count = playlist.count("#EXTINF:")
    for i, line in enumerate(lines):
        if line.startswith("#EXTINF:"):
            for uri in lines[i + 1:]:
                if uri.strip() and not uri.startswith("#"):
                    return uri.strip(), count
            break
    raise ValueError("media playlist has no segment")


def select_variant(variants: list[Variant], throughput_bps: float, safety: float = 0.8) -> Variant:
    """The highest variant with bandwidth below ``safety`` x ``throughput_bps``, else the lowest one."""
    budget = safety * throughput_bps
    chosen = variants[0]
    for variant in variants:
        if variant.bandwidth_bps < budget:
            chosen = variant
    return chosen


class ThroughputEstimates:
    """Per-viewer throughput estimates (bit/s): EWMA of segment download throughput.

    ``weight`` is the weight of a new sample (0 < weight <= 1); viewers
    without a sample read ``initial_bps``.
    """

    def __init__(self, viewers: int, initial_bps: float, weight: float):
        self._estimates = [float(initial_bps)] * viewers
        self._weight = weight

    def __len__(self) -> int:
        return len(self._estimates)

    def get(self, viewer: int) -> float:
        return self._estimates[viewer]

    def update(self, viewer: int, size_bytes: int, seconds: float) -> None:
        """Fold in a download of ``size_bytes`` that took ``seconds``."""
        if seconds <= 0 or size_bytes <= 0:
            return
        sample = size_bytes * 8 / seconds
        self._estimates[viewer] += self._weight * (sample - self._estimates[viewer])
