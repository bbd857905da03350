"""Settings of ``proximity-tracker`` (topology ``settings.proximity-tracker``); unknown keys are refused.

The A/B knob of the case study is ``index_resolution``
(``casemesh run proximity --set proximity-tracker.index_resolution=9``), the seed's "Geohash/H3" trade-off (seed 001
#29, shared/seeds/001_58dfc580020147d2.txt line 51): index resolution against search latency and update cost.

- Finer cells (9: about 0.1 km², edge about 0.17 km; 10: about 0.015 km²) are crossed more often: more updates move
  an entity from one cell to another (``casemesh_proximity_tracker_cell_changes_total``), and a search of a given
  radius reads more cells (``cells_searched`` grows about as (radius / edge)²), each with few entities. Measured
  (docs/benchmarks.md, "Proximity service: the index resolution"), a cell change costs this in-memory index next to
  nothing: every upsert unlinks and relinks its entry (to keep the expiry order), so the update time per position
  stays flat (about 9 µs) while the cell changes per update rise 85-fold from resolution 6 to 12. The churn is the
  cost in systems where a cell is a key or a node of its own (a per-cell Redis set, cells mapped to servers).
- Coarser cells (7: about 5 km², edge about 1.2 km) the reverse: fewer cell changes and fewer cells per search, but
  each cell holds more entities, so a search measures more distances of entities beyond its radius, and a k-nearest
  search stops later (its ring bound grows in steps of a whole, larger ring).
- Shard crossings (an update taking two shard locks) depend on ``shard_resolution``, not ``index_resolution``
  (``casemesh_proximity_tracker_shard_changes_total``).

The update cost is measured server-side as ``casemesh_proximity_tracker_index_update_seconds`` (index apply time per
position) and the cell changes; the search cost as ``casemesh_proximity_tracker_search_seconds`` and
``casemesh_proximity_tracker_search_cells`` (:mod:`.metrics`), and by the workload's FindNearbyEntities latency.

Defaults:

- ``index_resolution`` 8 (about 0.74 km², edge about 0.5 km): seed 003's geohash precision 6, "~1km precision"
  (shared/seeds/003_1dfe16d8ccfde9ed.txt line 906), as rides-location;
- ``shard_resolution`` 5 (about 250 km²): a shard (one readers-writer lock) is a district of the city;
- ``expiry_s`` 60: an entity not heard from for a minute leaves the index (tracker.proto); devices report every few
  seconds (seed 003 line 636: "Location updates every 3-5 seconds");
- ``sweep_interval_s`` 1: how often expired entities are removed (an entity is gone at most this long after expiry);
- ``geofence_timeout_ms`` 2,000: the deadline of each GeofenceService.EvaluatePositions call (a durable commit, with
  fsync, of up to 1,000 positions' states and events). Passed explicitly: the runtime's channels give calls without
  one a short default (``calls.timeout_ms``, 500 ms);
- ``geofence_retry_budget_ms`` 3,000: how long a batch's forward may go on retrying UNAVAILABLE (EvaluatePositions is
  idempotent); a batch's forward takes at most max(``geofence_timeout_ms``, ``geofence_retry_budget_ms``);
- ``max_streams`` 1,000 (tracker.proto): StreamPositions streams open at once (device gateways), bounded by their own
  admission slots (:data:`POSITION_STREAM_SLOTS`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Admission slots of StreamPositions streams (a gateway's connection lasts as long as the gateway runs): not the
#: slots of unary work. ``max_streams`` may not exceed it (raise both, with the topology's ``server.limits``).
POSITION_STREAM_SLOTS = 1_000


class TrackerSettings(BaseModel):
    """proximity-tracker's knobs; every field optional (defaults above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index_resolution: int = Field(default=8, ge=4, le=12, description=(
        "H3 resolution of the entities' index cells (4 to 12; 8 is about 0.74 km², 7 about 5 km², 9 about 0.1 km²): "
        "the case study's index-resolution A/B knob (search latency against update cost)."))
    shard_resolution: int = Field(default=5, ge=0, le=11, description=(
        "H3 resolution of the index's shards (each with its own readers-writer lock); below index_resolution."))
    expiry_s: float = Field(default=60.0, gt=0, le=3_600, description=(
        "An entity not heard from for this many seconds leaves the index (GetPosition: NOT_FOUND)."))
    sweep_interval_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Seconds between two sweeps removing expired entities."))
    geofence_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of each GeofenceService.EvaluatePositions call, in ms."))
    geofence_retry_budget_ms: float = Field(default=3_000.0, ge=0, le=60_000, description=(
        "How long, in ms from a batch's first forward, EvaluatePositions is retried on UNAVAILABLE (0: never); "
        "then the stream ends UNAVAILABLE and the gateway resends the batch."))
    max_streams: int = Field(default=1_000, ge=1, le=POSITION_STREAM_SLOTS, description=(
        "Most StreamPositions streams open at once; one more ends RESOURCE_EXHAUSTED."))

    @model_validator(mode="after")
    def _shards_coarser(self) -> TrackerSettings:
        if self.shard_resolution >= self.index_resolution:
            raise ValueError(f"shard_resolution ({self.shard_resolution}) must be below index_resolution "
                             f"({self.index_resolution})")
        return self
