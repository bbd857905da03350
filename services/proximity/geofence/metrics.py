"""proximity-geofence's own metrics (``casemesh_proximity_geofence_*``).

Counted once the change is on disk (a batch whose commit failed counts nothing; its retry counts once):

- ``casemesh_proximity_geofence_events_total{transition}``: fence events written, ``ENTER`` or ``EXIT``;
- ``casemesh_proximity_geofence_event_delay_seconds`` (histogram): from the position's ``sent_at_unix_ms`` (the
  device's clock) to the event's commit (this host's clock), per event whose position carries a send time (clamped
  at 0: clocks differ); the server-side twin of the workload's ``fence_notify``, without the watch stream's last hop;
- ``casemesh_proximity_geofence_positions_total{result}``: positions evaluated by EvaluatePositions, ``applied``
  (newer than the entity's last) or ``stale`` (skipped);
- ``casemesh_proximity_geofence_candidates`` (histogram): fences whose distance was measured for one applied
  position (the fences of the position's cells: the fence index's cost);
- ``casemesh_proximity_geofence_commit_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_proximity_geofence_commit_batches`` (histogram): EvaluatePositions batches and fence changes written
  by one group commit;
- ``casemesh_proximity_geofence_commit_failures_total``: group commits that failed (their calls answered
  UNAVAILABLE, nothing applied in memory);
- ``casemesh_proximity_geofence_fences`` (gauge): fences held;
- ``casemesh_proximity_geofence_index_cells`` (gauge): (cell, fence) entries of the fence index;
- ``casemesh_proximity_geofence_entities`` (gauge): entities with a state (every entity ever evaluated);
- ``casemesh_proximity_geofence_last_sequence`` (gauge): the sequence of the newest event written;
- ``casemesh_proximity_geofence_trimmed_events_total``: events deleted by retention (``event_retention``);
- ``casemesh_proximity_geofence_watchers`` (gauge): WatchFenceEvents streams open;
- ``casemesh_proximity_geofence_watchers_ended_total{reason}``: watchers ended by the service, ``overflow``
  (RESOURCE_EXHAUSTED: fell ``watcher_queue`` events behind), ``trimmed`` (OUT_OF_RANGE) or ``shutdown``
  (UNAVAILABLE).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

EVENTS = Counter("casemesh_proximity_geofence_events", "Fence events written, by transition (ENTER, EXIT).",
                 ["transition"])
EVENTS_BY_TRANSITION = {1: EVENTS.labels("ENTER"), 2: EVENTS.labels("EXIT")}
#: Seconds: the tracker's forward and the group commit take milliseconds; a device's batching interval adds seconds.
EVENT_DELAY_SECONDS = Histogram("casemesh_proximity_geofence_event_delay_seconds", "From a position's send time (its "
                                "device's clock) to the commit of the fence event it caused, in seconds.",
                                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0))
POSITIONS = Counter("casemesh_proximity_geofence_positions", "Positions evaluated, by result (applied, stale).",
                    ["result"])
APPLIED = POSITIONS.labels("applied")
STALE = POSITIONS.labels("stale")
CANDIDATES = Histogram("casemesh_proximity_geofence_candidates", "Fences measured against one applied position.",
                       buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 1_000))
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
COMMIT_SECONDS = Histogram("casemesh_proximity_geofence_commit_seconds", "One group commit of entity states, events "
                           "and fence changes to the SQLite file, fsync included, in seconds.",
                           buckets=(0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0))
COMMIT_BATCHES = Histogram("casemesh_proximity_geofence_commit_batches", "EvaluatePositions batches and fence "
                           "changes written by one group commit.", buckets=(1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144))
COMMIT_FAILURES = Counter("casemesh_proximity_geofence_commit_failures", "Group commits that failed (nothing "
                          "applied; their calls answered UNAVAILABLE).")
FENCES = Gauge("casemesh_proximity_geofence_fences", "Fences held.")
INDEX_CELLS = Gauge("casemesh_proximity_geofence_index_cells", "(cell, fence) entries of the fence index.")
ENTITIES = Gauge("casemesh_proximity_geofence_entities", "Entities with a state (last sequence, fences inside).")
LAST_SEQUENCE = Gauge("casemesh_proximity_geofence_last_sequence", "Sequence of the newest fence event written.")
TRIMMED = Counter("casemesh_proximity_geofence_trimmed_events", "Fence events deleted by retention.")
WATCHERS = Gauge("casemesh_proximity_geofence_watchers", "WatchFenceEvents streams open.")
WATCHERS_ENDED = Counter("casemesh_proximity_geofence_watchers_ended", "Watchers ended by the service, by reason "
                         "(overflow, trimmed, shutdown).", ["reason"])


def count_events(events: Iterable, now_unix_ms: int) -> None:
    """Count committed events (:class:`~.evaluator.FenceEvent`) by transition, and each one's delay since its
    position's send time (when it has one) up to ``now_unix_ms``."""
    for event in events:
        EVENTS_BY_TRANSITION[event.transition].inc()
        sent = event.position.sent_at_unix_ms
        if sent > 0:
            EVENT_DELAY_SECONDS.observe(max(0, now_unix_ms - sent) / 1000)
