"""Settings of ``search-shards`` (topology ``settings.search-shards``); unknown keys are refused.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index across thousands of machines"). The A/B knob is ``shards``, how many shards the process holds (``casemesh run
PROFILE --set search-shards.shards=1``): the query service scatters each query over every shard and merges, so more
shards mean more, smaller searches per query (each shard scores and sorts only its own matches) and more calls.

- ``shards`` 4 (1 to :data:`~services.search.contract.MAX_SHARDS`, 64): the shards of the process; a page lives on
  ``crc32(url) mod shards`` (:func:`~services.search.contract.shard_of`), which the indexer learns from
  GetShardInfo. Changing it needs every shard rebuilt, which a restart does (the rebuild streams each shard's pages
  from the indexer's document store, routed by the new count);
- ``rebuild_retry_s`` 0.5 (0.01 to 60): seconds to wait after a failed ScanShard stream (the indexer not started yet,
  down, or the stream broke) before the next try; the wait doubles after each failure, with jitter (half to all of
  it), up to ``rebuild_retry_max_s``;
- ``rebuild_retry_max_s`` 10 (0.01 to 600, at least ``rebuild_retry_s``): the longest of those waits, in seconds;
- ``rebuild_timeout_s`` 600 (1 to 86,400): the deadline of one ScanShard stream, in seconds (a whole shard's pages:
  20,000 pages of 2 KB stream in seconds; a stream cut by it is retried from the start).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_SHARDS


class ShardsSettings(BaseModel):
    """search-shards' knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shards: int = Field(default=4, ge=1, le=MAX_SHARDS, description=(
        "Shards the process holds; a page lives on crc32(url) mod shards."))
    rebuild_retry_s: float = Field(default=0.5, ge=0.01, le=60, description=(
        "Seconds before retrying a failed ScanShard stream; doubles after each failure (with jitter)."))
    rebuild_retry_max_s: float = Field(default=10.0, ge=0.01, le=600, description=(
        "Longest wait between two ScanShard tries, in seconds."))
    rebuild_timeout_s: float = Field(default=600.0, ge=1, le=86_400, description=(
        "Deadline of one ScanShard stream, in seconds."))

    @model_validator(mode="after")
    def _retry_bounds(self) -> ShardsSettings:
        if self.rebuild_retry_max_s < self.rebuild_retry_s:
            raise ValueError("rebuild_retry_max_s must be at least rebuild_retry_s")
        return self
