"""The live edge's own metrics (``casemesh_live_edge_*``).

- ``casemesh_live_edge_origin_requests_total{kind}``: calls made to the
  origin, ``kind`` = ``playlist``, ``part``, ``segment``, ``describe`` or
  ``watch`` (one per WatchParts subscription opened, reopenings included).
  With coalescing and the shared subscriptions this grows with the number of
  parts and edges, not of viewers: the mechanism's evidence;
- ``casemesh_live_edge_coalesced_requests_total{kind}``: viewer requests
  that joined an origin call already in flight instead of making one;
- ``casemesh_live_edge_cache_lookups_total{result}``: part and segment cache
  lookups, ``hit`` or ``miss``;
- ``casemesh_live_edge_cache_bytes`` (gauge): bytes in the cache;
- ``casemesh_live_edge_viewers_open`` (gauge): StreamParts streams open;
- ``casemesh_live_edge_subscriptions_open`` (gauge): origin WatchParts
  subscriptions held (one per stream with viewers here, or lingering);
- ``casemesh_live_edge_resubscribes_total``: subscriptions reopened after a
  failure (from the last part received);
- ``casemesh_live_edge_fanout_viewers`` (histogram): live viewers a part
  received from the subscription was fanned out to (fan-out width);
- ``casemesh_live_edge_parts_sent_total``: parts written to StreamParts
  viewers;
- ``casemesh_live_edge_viewers_dropped_total{reason}``: StreamParts streams
  ended by the edge, ``reason`` = ``slow`` (more than 64 parts behind:
  RESOURCE_EXHAUSTED), ``origin_lost`` (the subscription could not be
  reopened: UNAVAILABLE), ``not_found`` (the origin refused the stream's
  subscription before its first part: an unknown stream; a viewer whose own
  ``from`` is outside the DVR window is refused NOT_FOUND at its request
  and not counted here) or ``shutdown`` (UNAVAILABLE);
- ``casemesh_live_edge_delay_seconds`` (histogram): for each part written
  to a StreamParts viewer, the time from ``Part.published_unix_ms`` (when
  the origin published it) to the write completing: the server-side twin of
  the glass-to-glass latency SLO (without ingest and the player's buffer;
  one machine's clock). It includes the WAN model's pacing (half the client
  round trip and the transfer time at the client bandwidth).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ORIGIN_REQUESTS = Counter("casemesh_live_edge_origin_requests", "Calls made to the live origin, by kind "
                          "(playlist, part, segment, describe, watch).", ["kind"])
COALESCED = Counter("casemesh_live_edge_coalesced_requests", "Viewer requests that joined an origin call already in "
                    "flight, by kind.", ["kind"])
CACHE_LOOKUPS = Counter("casemesh_live_edge_cache_lookups", "Part and segment cache lookups, by result (hit, miss).",
                        ["result"])
CACHE_BYTES = Gauge("casemesh_live_edge_cache_bytes", "Bytes held by the live edge's part and segment cache.")
VIEWERS_OPEN = Gauge("casemesh_live_edge_viewers_open", "StreamParts streams open on the live edge.")
SUBSCRIPTIONS_OPEN = Gauge("casemesh_live_edge_subscriptions_open", "Origin WatchParts subscriptions held (one per "
                           "stream with viewers here, or lingering).")
RESUBSCRIBES = Counter("casemesh_live_edge_resubscribes", "Origin subscriptions reopened after a failure.")
#: Viewers per part: 0 (lingering) up to many thousands on one edge.
FANOUT_BUCKETS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000)
FANOUT = Histogram("casemesh_live_edge_fanout_viewers", "Live StreamParts viewers one part was fanned out to.",
                   buckets=FANOUT_BUCKETS)
PARTS_SENT = Counter("casemesh_live_edge_parts_sent", "Parts written to StreamParts viewers.")
DROPPED = Counter("casemesh_live_edge_viewers_dropped", "StreamParts streams ended by the edge, by reason (slow, "
                  "origin_lost, not_found, shutdown).", ["reason"])
#: Seconds: the 0.05 and 2.0 of every casemesh latency histogram; LL-HLS aims at 2 to 5 s glass to glass.
DELAY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
DELAY = Histogram("casemesh_live_edge_delay_seconds", "Parts written to StreamParts viewers: seconds since the origin "
                  "published them.", buckets=DELAY_BUCKETS)


class EdgeMetrics:
    """The children resolved once, and the calls the node makes (no-op free: always the process's metrics)."""

    KINDS = ("playlist", "part", "segment", "describe", "watch")
    REASONS = ("slow", "origin_lost", "not_found", "shutdown")

    def __init__(self) -> None:
        self._origin = {kind: ORIGIN_REQUESTS.labels(kind) for kind in self.KINDS}
        self._coalesced = {kind: COALESCED.labels(kind) for kind in self.KINDS}
        self._lookups = {True: CACHE_LOOKUPS.labels("hit"), False: CACHE_LOOKUPS.labels("miss")}
        self._dropped = {reason: DROPPED.labels(reason) for reason in self.REASONS}

    def origin_request(self, kind: str) -> None:
        self._origin[kind].inc()

    def coalesced(self, kind: str) -> None:
        self._coalesced[kind].inc()

    def lookup(self, hit: bool) -> None:
        self._lookups[hit].inc()

    def dropped(self, reason: str) -> None:
        self._dropped[reason].inc()

    @staticmethod
    def fanout(width: int) -> None:
        FANOUT.observe(width)

    @staticmethod
    def resubscribed() -> None:
        RESUBSCRIBES.inc()

    @staticmethod
    def viewers(delta: int) -> None:
        VIEWERS_OPEN.inc(delta)

    @staticmethod
    def subscriptions(delta: int) -> None:
        SUBSCRIPTIONS_OPEN.inc(delta)

    @staticmethod
    def sent(delay_s: float | None) -> None:
        """A part was written to a viewer ``delay_s`` seconds after the origin published it (None: not stamped)."""
        PARTS_SENT.inc()
        if delay_s is not None:
            DELAY.observe(max(delay_s, 0.0))
