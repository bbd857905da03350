"""Settings of ``proximity-places`` (topology ``settings.proximity-places``); unknown keys are refused.

The A/B knob of the case study is ``index_resolution``
(``casemesh run PROFILE --set proximity-places.index_resolution=8``): the H3 resolution of the places' cells, in the
index over every place and in each category's index alike. A search reads the rings of cells around its centre
until no unread cell can hold a nearer place, and measures every place of every cell it reads:

- coarser cells (7: about 5 km², edge about 1.4 km) hold about seven times more places each: a search reads fewer
  cells (``casemesh_proximity_places_search_cells`` drops) but computes the distance of many more places it then
  throws away (beyond the radius, or beyond the page), so in a dense district a small-radius search costs more;
- finer cells (9: about 0.1 km², edge about 0.2 km) the other way round: a few places per cell, more cells and more
  ring steps per search (and, for a wide radius or a rare category, hundreds of cells, most of them empty).

Defaults:

- ``index_resolution`` 9 (about 0.1 km², edge about 0.2 km), one step finer than seed 003's geohash precision 6
  ("~1km precision", shared/seeds/003_1dfe16d8ccfde9ed.txt line 906; resolution 8, rides-location's): measured
  best for the proximity profile's dense downtown (benchmarks/proximity_ab.py, docs/benchmarks.md "Proximity
  service: the index resolution": SearchPlaces p99 5.3 ms at 9 against 12.8 ms at 8 and 51 ms at 6; 79 ms at 12,
  where a museum search reads thousands of cells);
- ``shard_resolution`` 5 (about 250 km²): a shard (one readers-writer lock) is a district of the city; below
  ``index_resolution``;
- ``max_places`` 1,000,000: places stored at most (seed 001 #29 says 100M places for the world, line 51; one city on
  one machine is a small share of it); a CreatePlaces that would go beyond answers RESOURCE_EXHAUSTED and stores
  nothing. Memory: about 1 KB per place (the record and its entries in two indexes).
- ``commit_batch`` 2,000: most places written by one group commit (one SQLite transaction, one fsync). Concurrent
  CreatePlaces and DeletePlace calls queued while a commit runs share the next one up to this many places; one
  request's places are never split (a request bigger than this commits alone), so a request is all or nothing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PlacesSettings(BaseModel):
    """proximity-places' knobs; every field optional (defaults above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index_resolution: int = Field(default=9, ge=4, le=12, description=(
        "H3 resolution of the places' index cells (4 to 12; 9 is about 0.1 km², 8 about 0.74 km², 10 about 0.015 km²): "
        "the case study's cell-resolution A/B knob."))
    shard_resolution: int = Field(default=5, ge=0, le=11, description=(
        "H3 resolution of the indexes' shards (each with its own readers-writer lock); below index_resolution."))
    max_places: int = Field(default=1_000_000, ge=1, le=100_000_000, description=(
        "Most places stored; a CreatePlaces that would store more answers RESOURCE_EXHAUSTED (nothing stored)."))
    commit_batch: int = Field(default=2_000, ge=1, le=100_000, description=(
        "Most places in one group commit (one transaction, one fsync) of queued writes; a single request of more "
        "places still commits alone, whole."))

    @model_validator(mode="after")
    def _shards_coarser(self) -> PlacesSettings:
        if self.shard_resolution >= self.index_resolution:
            raise ValueError(f"shard_resolution ({self.shard_resolution}) must be below index_resolution "
                             f"({self.index_resolution})")
        return self
