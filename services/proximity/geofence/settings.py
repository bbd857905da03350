"""Settings of ``proximity-geofence`` (topology ``settings.proximity-geofence``); unknown keys are refused.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, ... geofencing,
real-time location updates". Defaults:

- ``fence_resolution`` 8 (H3 hexagons of about 0.74 km², edge about 0.5 km; seed 003's geohash precision 6, "~1km
  precision", shared/seeds/003_1dfe16d8ccfde9ed.txt line 906): the finest resolution a fence is indexed at;
- ``max_cells_per_fence`` 500: a fence whose cells at ``fence_resolution`` would be more is indexed at the finest
  coarser resolution where they are at most this many (a 50 km fence needs about 25,000 cells at 8, 127 at 5);
  at most 1,801 (24 rings, the depth out to which services/geo/index.py's ring bound was checked);
- ``max_fences`` 100,000: CreateFence beyond it is RESOURCE_EXHAUSTED;
- ``event_retention`` 1,000,000: events kept in the SQLite file (the oldest are trimmed every ``trim_interval_s``
  seconds, 5 by default); a watcher resuming before them gets OUT_OF_RANGE;
- ``recent_events`` 50,000: the newest events also kept in memory, so a watcher resuming a little behind reads
  them without touching the file (0: always read the file);
- ``backlog_page`` 1,000: events read from the file at once by a catching-up watcher;
- ``watcher_queue`` 10,000: events waiting for one live watcher; one more ends it RESOURCE_EXHAUSTED (it resumes
  with its last sequence);
- ``max_watchers`` 1,000: WatchFenceEvents streams open at once (each holds one of :data:`WATCH_STREAM_SLOTS`
  admission slots, not the unary ones);
- ``max_commit_positions`` 5,000: positions (over several EvaluatePositions calls) written by one group commit.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Admission slots of WatchFenceEvents streams (a watcher stays for hours): not the slots of unary work.
WATCH_STREAM_SLOTS = 10_000
#: The most cells a fence may be given: 24 rings around its centre cell (3 * 24 * 25 + 1).
MOST_CELLS_PER_FENCE = 1_801


class GeofenceSettings(BaseModel):
    """proximity-geofence's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fence_resolution: int = Field(default=8, ge=4, le=12, description=(
        "Finest H3 resolution of a fence's index cells (4 to 12; 8 is about 0.74 km², 9 about 0.1 km²)."))
    max_cells_per_fence: int = Field(default=500, ge=7, le=MOST_CELLS_PER_FENCE, description=(
        "Most index cells of one fence; a bigger fence is indexed at a coarser resolution (7 to 1,801)."))
    max_fences: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Most fences held; CreateFence beyond it is RESOURCE_EXHAUSTED."))
    event_retention: int = Field(default=1_000_000, ge=1, le=1_000_000_000, description=(
        "Newest fence events kept in the SQLite file; older ones are trimmed (a watcher resuming before them gets "
        "OUT_OF_RANGE)."))
    trim_interval_s: float = Field(default=5.0, gt=0, le=3_600, description=(
        "Seconds between two trims of the events beyond event_retention."))
    recent_events: int = Field(default=50_000, ge=0, le=10_000_000, description=(
        "Newest events also kept in memory for watchers catching up (0: they always read the file)."))
    backlog_page: int = Field(default=1_000, ge=1, le=100_000, description=(
        "Events read from the SQLite file at once by a watcher catching up."))
    watcher_queue: int = Field(default=10_000, ge=1, le=1_000_000, description=(
        "Events waiting to be sent to one live watcher; one more ends it RESOURCE_EXHAUSTED."))
    max_watchers: int = Field(default=1_000, ge=1, le=WATCH_STREAM_SLOTS, description=(
        "Most WatchFenceEvents streams open at once; one more ends RESOURCE_EXHAUSTED."))
    max_commit_positions: int = Field(default=5_000, ge=1, le=1_000_000, description=(
        "Most positions written by one group commit (one transaction, one fsync) of EvaluatePositions batches."))
