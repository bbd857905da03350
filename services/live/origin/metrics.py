"""live-origin's own metrics (``casemesh_live_origin_*``), beyond the runtime's ``grpc_server_*``.

- ``casemesh_live_origin_parts_appended_total{duplicate}``: parts published
  (``no``) or answered as a retry of the last part (``yes``);
- ``casemesh_live_origin_part_bytes`` (histogram): size of each part published;
- ``casemesh_live_origin_blocked_requests{kind}`` (gauge): requests waiting
  for a part not yet published, ``playlist`` (blocking playlist reloads) or
  ``part`` (preload-hint part requests);
- ``casemesh_live_origin_block_wait_seconds{kind}`` (histogram): how long
  each blocked request waited (until its part, the stream's end, its limit
  or its caller gave up);
- ``casemesh_live_origin_watchers`` (gauge): WatchParts streams open;
  ``casemesh_live_origin_watchers_dropped_total``: watchers dropped for
  falling behind (RESOURCE_EXHAUSTED);
- ``casemesh_live_origin_dvr_bytes`` (gauge): media bytes held in the DVR
  windows of every stream;
- ``casemesh_live_origin_streams{state}`` (gauge): streams by state
  (``waiting``, ``live``, ``ended``);
- ``casemesh_live_origin_playlist_renders_total{cache}``: playlists asked
  for, rendered (``miss``) or served from the per-stream cache (``hit``).

Label sets are fixed and small (no stream IDs).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .store import StoreObserver, StreamState

PARTS = Counter("casemesh_live_origin_parts_appended", "Parts appended at the origin, by whether they were a retry "
                "of the last part (duplicate=yes, not stored again) or published (duplicate=no).", ["duplicate"])
PART_BYTES = Histogram("casemesh_live_origin_part_bytes", "Size of each part published at the origin, in bytes.",
                       buckets=(1024, 4096, 16_384, 32_768, 65_536, 131_072, 262_144, 524_288, 1_048_576,
                                4_194_304))
BLOCKED = Gauge("casemesh_live_origin_blocked_requests", "Requests waiting at the origin for a part not yet "
                "published: kind=playlist (blocking playlist reload) or part (preload hint).", ["kind"])
BLOCK_WAIT = Histogram("casemesh_live_origin_block_wait_seconds", "Seconds a blocked origin request waited for its "
                       "part (or the stream's end, its limit, or its caller giving up).", ["kind"],
                       buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0,
                                10.0))
WATCHERS = Gauge("casemesh_live_origin_watchers", "WatchParts streams open at the origin.")
WATCHERS_DROPPED = Counter("casemesh_live_origin_watchers_dropped", "WatchParts streams ended RESOURCE_EXHAUSTED for "
                           "falling too far behind.")
DVR_BYTES = Gauge("casemesh_live_origin_dvr_bytes", "Media bytes held in the DVR windows of every stream.")
STREAMS = Gauge("casemesh_live_origin_streams", "Streams held by the origin, by state.", ["state"])
RENDERS = Counter("casemesh_live_origin_playlist_renders", "Playlists asked for at the origin: rendered (cache=miss) "
                  "or served from the per-stream cache (cache=hit).", ["cache"])


class OriginMetrics(StoreObserver):
    """The store's reports as Prometheus series (children resolved once)."""

    def __init__(self) -> None:
        self._parts = {True: PARTS.labels("yes"), False: PARTS.labels("no")}
        self._blocked = {kind: BLOCKED.labels(kind) for kind in ("playlist", "part")}
        self._wait = {kind: BLOCK_WAIT.labels(kind) for kind in ("playlist", "part")}
        self._streams = {state: STREAMS.labels(state.name.lower()) for state in StreamState}
        self._renders = {True: RENDERS.labels("hit"), False: RENDERS.labels("miss")}

    def appended(self, size_bytes: int, duplicate: bool) -> None:
        self._parts[duplicate].inc()
        if not duplicate:
            PART_BYTES.observe(size_bytes)

    def blocked(self, kind: str, delta: int) -> None:
        self._blocked[kind].inc(delta)

    def block_waited(self, kind: str, seconds: float) -> None:
        self._wait[kind].observe(seconds)

    def watchers(self, delta: int) -> None:
        WATCHERS.inc(delta)

    def watcher_dropped(self) -> None:
        WATCHERS_DROPPED.inc()

    def dvr_bytes(self, delta: int) -> None:
        DVR_BYTES.inc(delta)

    def stream_state(self, old: StreamState | None, new: StreamState | None) -> None:
        if old is not None:
            self._streams[old].dec()
        if new is not None:
            self._streams[new].inc()

    def playlist(self, cache_hit: bool) -> None:
        self._renders[cache_hit].inc()
