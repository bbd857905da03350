"""Settings of ``video-edge`` (topology ``settings.video-edge``): the cache and the WAN model.

Defaults and why (docs/case-studies/video.md, "Playback and the CDN edge"):

- ``cache_bytes`` 256 MiB: ~200 1080p segments of 1.25 MB, the first
  segments of a few hundred popular videos; small enough that a large
  catalogue's long tail misses (seed 004: "Hit rates above 90 % are
  achievable for popular content. For the long tail ... cache misses are
  acceptable").
- ``client_rtt_ms`` 40: a viewer's round trip to a nearby CDN edge (last-mile
  broadband or 4G to a metro point of presence: tens of milliseconds).
- ``client_bandwidth_kbps`` 8,000: a typical home or 4G downlink, 1.6 x the
  top rung (1080p at 5,000 kbit/s, ladder.py), so the top rung streams
  faster than real time but a 2 s 1080p segment still takes 1.25 s.
- ``origin_rtt_ms`` 80: edge to a regional origin (S3 in another region,
  across a continent).
- ``origin_bandwidth_mbps`` 200: the edge's one link to the origin, the
  resource a cache saves. Scaled to this machine's load: 20 cold 1080p
  segments per second fill it, so a benchmark of hundreds of view starts per
  second exposes the hit ratio (docs/case-studies/video.md has the arithmetic).
- ``buffer_bytes`` 64 MiB: the byte budget of segment bytes held outside
  the cache (fills being read, uncached streams' ranges), so memory is
  ``cache_bytes + buffer_bytes`` plus a chunk per stream however many
  streams there are (node.py); at least 16 MiB, the largest segment.
- ``origin_chunk_bytes`` 256 KiB: the range one origin read asks for
  (``GetSegment`` with ``max_bytes``): five reads for a 1.25 MB 1080p segment,
  and what an uncached stream holds at a time.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..limits import MAX_SEGMENT_BYTES


class EdgeSettings(BaseModel):
    """``video-edge`` settings; every field optional (defaults above), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0, description=(
        "Capacity of the segment cache in bytes (LRU, sized by segment length); 0 turns the cache off: "
        "every segment is a MISS fetched from the origin, and concurrent misses are not coalesced."))
    chunk_bytes: int = Field(default=65_536, ge=1024, le=4 * 1024 * 1024, description=(
        "Largest StreamSegmentsResponse.data in bytes (64 KiB; at most 4 MiB, gRPC's default message limit)."))
    client_rtt_ms: float = Field(default=40.0, ge=0, le=10_000, description=(
        "Client-to-edge round trip in milliseconds: no byte of a stream reaches the client before it."))
    client_bandwidth_kbps: float = Field(default=8_000.0, ge=0, description=(
        "Each stream's bytes are paced to this rate in kbit/s (1,000 bit/s); 0 = unpaced."))
    origin_rtt_ms: float = Field(default=80.0, ge=0, le=10_000, description=(
        "Edge-to-origin round trip in milliseconds, added to every origin fetch."))
    origin_bandwidth_mbps: float = Field(default=200.0, ge=0, description=(
        "The one edge-to-origin link in Mbit/s (1,000,000 bit/s), shared FIFO by all origin fetches; 0 = unlimited."))
    origin_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of one ObjectStoreService.GetSegment call in milliseconds (the real call; the modelled "
        "round trip and link time come on top)."))
    buffer_bytes: int = Field(default=64 * 1024 * 1024, ge=MAX_SEGMENT_BYTES, le=16 * 1024 ** 3, description=(
        "Byte budget of segment bytes held outside the cache: fills being read from the origin and the ranges "
        "uncached streams hold; past it they wait their turn (at least 16 MiB, the largest segment)."))
    origin_chunk_bytes: int = Field(default=256 * 1024, ge=4096, le=4 * 1024 * 1024, description=(
        "Bytes one origin read (a GetSegment range) asks for (at least chunk_bytes when streaming); an uncached "
        "stream holds one such range at a time."))
