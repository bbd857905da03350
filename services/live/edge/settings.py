"""Settings of ``live-edge`` (topology ``settings.live-edge``): the cache, the shared subscriptions, the WAN model.

Defaults and why:

- ``client_rtt_ms`` 40 and ``client_bandwidth_kbps`` 8,000: the video edge's
  (services/video/edge/settings.py): a viewer's round trip to a nearby point
  of presence, and a home or 4G downlink. A live rendition of 3 to 6 Mbit/s
  streams faster than real time over it, so a part of 200 ms reaches the
  viewer in well under its own duration.
- ``cache_bytes`` 256 MiB: the video edge's. Published parts and segments
  never change, so they need no TTL; at 4 Mbit/s a minute of a stream is
  30 MB, so the cache holds the recent minutes of a handful of streams (the
  DVR tail of popular streams; ``0`` turns it off: the A/B switch that makes
  every GetPart and GetSegment an origin request).
- ``coalesce_requests`` true: concurrent identical origin requests (a
  blocking playlist reload or a part not yet published, which every viewer
  of the stream asks for at the same moment) share one call
  (runtime/coalescing.py). False: one origin call per viewer request, the
  thundering herd the mechanism prevents (the other A/B switch).
- ``ring_parts`` 128: recent parts kept per stream for StreamParts viewers
  (a joining viewer starts at the latest independent part in it; a viewer
  resuming with ``from`` backfills from it). At least 65: a viewer is
  dropped once more than ``EDGE_VIEWER_MAX_LAG_PARTS`` (64) parts behind, so
  the part a live viewer needs next is always still in the ring.
- ``subscription_grace_ms`` 2,000: a stream's origin subscription stays open
  this long after its last viewer here left (a viewer reconnecting, or the
  next one, reuses it and its ring).
- ``origin_timeout_ms`` 10,000: deadline of one origin call. A blocking
  request waits at the origin up to 3 part target durations past the part's
  due time (contract.BLOCK_PART_TARGETS), so this covers part targets up to
  about 3 s (LL-HLS uses 0.2 to 1 s); raise it for longer ones.
- ``resubscribe_attempts`` 3 and ``resubscribe_backoff_ms`` 100: a failed
  origin subscription is reopened from the last part received (viewers see
  no gap); after this many failures in a row without a new part the
  stream's viewers end UNAVAILABLE.
- ``watch_max_duration_s`` 86,400: deadline of one origin WatchParts stream
  (when it passes, the subscription is reopened like after a failure).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..contract import EDGE_VIEWER_MAX_LAG_PARTS

#: Admission slots of LiveEdgeService unless the topology's server.limits says otherwise: StreamParts streams and
#: blocked playlist/part requests are long-lived and hold almost nothing, and must not use up the slots that bound
#: unary work elsewhere (services/runtime/admission.py).
EDGE_SLOTS = 100_000


class LiveEdgeSettings(BaseModel):
    """``live-edge`` settings; every field optional (defaults above), unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_bytes: int = Field(default=256 * 1024 * 1024, ge=0, description=(
        "Capacity of the part and segment cache in bytes (LRU, sized by message size); 0 turns it off: every "
        "GetPart and GetSegment is an origin request."))
    coalesce_requests: bool = Field(default=True, description=(
        "Share one origin call among concurrent identical requests (playlist with the same block, same part, same "
        "segment); false sends one origin call per viewer request."))
    client_rtt_ms: float = Field(default=40.0, ge=0, le=10_000, description=(
        "Client-to-edge round trip in milliseconds: no reply reaches the client before it; a streamed part "
        "reaches it half of it after the part reached the edge."))
    client_bandwidth_kbps: float = Field(default=8_000.0, ge=0, description=(
        "Each reply's and each stream's bytes are paced to this rate in kbit/s (1,000 bit/s); 0 = unpaced."))
    origin_timeout_ms: float = Field(default=10_000.0, gt=0, le=120_000, description=(
        "Deadline of one origin call (FetchPlaylist, FetchPart, FetchSegment, DescribeStream) in milliseconds; "
        "blocking requests wait at the origin up to 3 part targets."))
    ring_parts: int = Field(default=128, ge=EDGE_VIEWER_MAX_LAG_PARTS + 1, le=100_000, description=(
        "Recent parts kept per stream for StreamParts viewers (more than the 64-part viewer lag limit)."))
    subscription_grace_ms: float = Field(default=2_000.0, ge=0, le=600_000, description=(
        "How long a stream's origin subscription stays open after its last viewer here left, in ms."))
    resubscribe_attempts: int = Field(default=3, ge=0, le=100, description=(
        "Failed origin subscriptions reopened in a row (from the last part received) before the stream's viewers "
        "end UNAVAILABLE."))
    resubscribe_backoff_ms: float = Field(default=100.0, ge=0, le=60_000, description=(
        "Wait before reopening a failed origin subscription, in ms (doubled at each failure in a row)."))
    watch_max_duration_s: float = Field(default=86_400.0, ge=1, le=30 * 86_400, description=(
        "Deadline of one origin WatchParts stream, in s; when it passes the subscription is reopened."))
