"""Settings of ``rides-location`` (topology ``settings.rides-location``); unknown keys are refused.

The A/B knob of the case study is ``index_resolution``
(``casemesh run PROFILE --set rides-location.index_resolution=7``): the H3 resolution of the drivers' cells. Coarser
cells (7: about 5 km²) hold more drivers each, so a search reads fewer cells but measures more drivers; finer cells
(9: about 0.1 km²) the other way round. Defaults:

- ``index_resolution`` 8 (about 0.74 km², edge about 0.5 km): seed 003's geohash precision 6, "~1km precision"
  (shared/seeds/003_1dfe16d8ccfde9ed.txt line 906);
- ``shard_resolution`` 5 (about 250 km²): a shard (one readers-writer lock) is a district of the city;
- ``expiry_s`` 30: seed 003 line 674, "if driver doesn't update in 30s, considered offline"; drivers report every
  3 to 5 s (line 636);
- ``sweep_interval_s`` 1: how often expired drivers are removed (a driver is gone at most this long after expiry);
- ``max_connections`` and ``max_watchers`` 10,000: ReportLocations and TrackDriver streams open at once, each
  bounded by its own admission slots (:data:`REPORT_STREAM_SLOTS`, :data:`TRACK_STREAM_SLOTS`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Admission slots of ReportLocations streams (a driver's connection lasts a shift): not the slots of unary work.
REPORT_STREAM_SLOTS = 10_000
#: Admission slots of TrackDriver streams (a rider watches a whole pickup).
TRACK_STREAM_SLOTS = 10_000


class LocationSettings(BaseModel):
    """rides-location's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index_resolution: int = Field(default=8, ge=4, le=12, description=(
        "H3 resolution of the drivers' index cells (4 to 12; 8 is about 0.74 km², 7 about 5 km², 9 about 0.1 km²): "
        "the case study's cell-resolution A/B knob."))
    shard_resolution: int = Field(default=5, ge=0, le=11, description=(
        "H3 resolution of the index's shards (each with its own readers-writer lock); below index_resolution."))
    expiry_s: float = Field(default=30.0, gt=0, le=3_600, description=(
        "A driver not heard from for this many seconds is removed (seed 003: offline after 30 s)."))
    sweep_interval_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Seconds between two sweeps removing expired drivers."))
    max_connections: int = Field(default=10_000, ge=1, le=REPORT_STREAM_SLOTS, description=(
        "Most ReportLocations streams open at once; one more ends RESOURCE_EXHAUSTED."))
    max_watchers: int = Field(default=10_000, ge=1, le=TRACK_STREAM_SLOTS, description=(
        "Most TrackDriver streams open at once; one more ends RESOURCE_EXHAUSTED."))

    @model_validator(mode="after")
    def _shards_coarser(self) -> LocationSettings:
        if self.shard_resolution >= self.index_resolution:
            raise ValueError(f"shard_resolution ({self.shard_resolution}) must be below index_resolution "
                             f"({self.index_resolution})")
        return self
