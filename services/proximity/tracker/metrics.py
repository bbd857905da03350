"""proximity-tracker's own metrics (``casemesh_proximity_tracker_*``).

- ``casemesh_proximity_tracker_positions_total{result}``: positions of acknowledged batches, ``applied`` (newer than
  the entity's last, put in the index) or ``stale`` (skipped);
- ``casemesh_proximity_tracker_batch_positions`` (histogram): positions per valid StreamPositions batch;
- ``casemesh_proximity_tracker_index_update_seconds`` (histogram): the index's update cost, the A/B's measure: one
  observation per batch, the batch's index apply time (stale checks, upserts, lock waits) divided by its positions.
  Timing each position alone would cost about a sixth of an upsert (two clock reads and an observation, about
  0.75 µs against about 5 µs, on this machine); so ``_count`` counts batches, quantiles are of the per-batch mean,
  and ``rate(_sum) / rate(_count)`` is the mean per-position cost averaged over batches;
- ``casemesh_proximity_tracker_cell_changes_total``: updates that moved an entity into another index cell (finer
  cells: more of them), and ``casemesh_proximity_tracker_shard_changes_total``: those into another shard (two shard
  locks taken);
- ``casemesh_proximity_tracker_entities`` (gauge): entities in the index;
- ``casemesh_proximity_tracker_expired_total``: entities removed because they had not reported for ``expiry_s``;
- ``casemesh_proximity_tracker_geofence_seconds`` (histogram): time to forward one batch to
  GeofenceService.EvaluatePositions, retries included, whether it succeeded or not;
- ``casemesh_proximity_tracker_geofence_retries_total``: EvaluatePositions attempts after a batch's first (after an
  UNAVAILABLE); ``casemesh_proximity_tracker_geofence_failures_total``: batches whose forward failed (their stream
  ended UNAVAILABLE, to be resent);
- ``casemesh_proximity_tracker_search_seconds`` (histogram): index search time of one FindNearbyEntities;
  ``casemesh_proximity_tracker_search_cells`` (histogram): index cells it read (1, 7, 19, 37, ... for 0, 1, 2, 3
  full rings);
- ``casemesh_proximity_tracker_streams`` (gauge): StreamPositions streams open.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POSITIONS = Counter("casemesh_proximity_tracker_positions", "Positions of acknowledged batches, applied or stale.",
                    ["result"])
APPLIED = POSITIONS.labels("applied")
STALE = POSITIONS.labels("stale")
BATCH_POSITIONS = Histogram("casemesh_proximity_tracker_batch_positions", "Positions per valid StreamPositions batch.",
                            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000))
INDEX_UPDATE_SECONDS = Histogram(
    "casemesh_proximity_tracker_index_update_seconds",
    "Index apply time per position: a batch's apply time divided by its positions, observed once per batch.",
    buckets=(0.000_001, 0.000_002, 0.000_003, 0.000_004, 0.000_005, 0.000_006, 0.000_008, 0.000_01, 0.000_015,
             0.000_02, 0.000_03, 0.000_05, 0.000_1, 0.000_25, 0.001))
CELL_CHANGES = Counter("casemesh_proximity_tracker_cell_changes", "Updates that moved an entity into another index "
                       "cell.")
SHARD_CHANGES = Counter("casemesh_proximity_tracker_shard_changes", "Updates that moved an entity into another index "
                        "shard.")
ENTITIES = Gauge("casemesh_proximity_tracker_entities", "Entities in the index.")
EXPIRED = Counter("casemesh_proximity_tracker_expired", "Entities removed after expiry_s without a position.")
GEOFENCE_SECONDS = Histogram("casemesh_proximity_tracker_geofence_seconds", "Time to forward one batch to "
                             "GeofenceService.EvaluatePositions, retries included.",
                             buckets=(0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5))
GEOFENCE_RETRIES = Counter("casemesh_proximity_tracker_geofence_retries", "EvaluatePositions attempts after a batch's "
                           "first (after UNAVAILABLE).")
GEOFENCE_FAILURES = Counter("casemesh_proximity_tracker_geofence_failures", "Batches whose forward to the geofence "
                            "service failed (their stream ended UNAVAILABLE).")
#: Cells of k full rings: 3k(k+1)+1.
SEARCH_CELLS = Histogram("casemesh_proximity_tracker_search_cells", "Index cells read by one FindNearbyEntities.",
                         buckets=(1, 7, 19, 37, 61, 91, 127, 169, 217, 271, 397, 631, 1_027, 2_107, 4_681, 10_000))
SEARCH_SECONDS = Histogram("casemesh_proximity_tracker_search_seconds", "Index search time of one FindNearbyEntities.",
                           buckets=(0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01,
                                    0.025, 0.05, 0.1, 0.25))
STREAMS = Gauge("casemesh_proximity_tracker_streams", "StreamPositions streams open.")
