"""Settings of ``search-indexer`` (topology ``settings.search-indexer``); unknown keys are refused.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664): "Freshness: Breaking
news indexed in minutes" and the "PageRank Algorithm" (``damping=0.85, iterations=100``). Times are seconds unless the
name says milliseconds (``_ms``).

PageRank (:mod:`.ranking`, :mod:`.pagerank`):

- ``pagerank_interval_s`` 10 (0 to 3,600): every this many seconds a pass runs if the link graph changed since the
  last one (a new page, a page stored again with other links; else the ranks a shard did not take are pushed again); 0: passes run only on ComputePageRank (and once at
  start). A pass also runs at start when the store holds pages;
- ``damping`` 0.85 (0.5 to 0.99): the damping factor, the seed's (networkx's ``alpha``);
- ``tolerance`` 1e-6 (1e-12 to 1e-2): the power iteration stops once the ranks moved less than ``tolerance`` per
  page, summed over the pages (L1 distance below ``nodes * tolerance``: networkx's rule and default);
- ``max_iterations`` 100 (1 to 10,000): the most power iterations of one pass, the seed's loop count; a pass that
  reaches it keeps the ranks it has (and reports that many iterations).

The shards (:mod:`.routing`):

- ``shard_timeout_ms`` 2,000 (10 to 60,000): deadline of a PutPage and of a GetShardInfo, in milliseconds;
- ``rank_push_timeout_ms`` 10,000 (100 to 600,000): deadline of one SetPageRanks call (up to 100,000 ranks), in
  milliseconds.

The store (:mod:`.store`):

- ``max_commit_writes`` 256 (1 to 100,000): most writes (pages, pass records) in one group commit (one transaction,
  one fsync);
- ``scan_chunk_pages`` 2,000 (10 to 100,000): ScanShard reads the store in steps of this many stored pages (of every
  shard; it keeps those of the shard asked for), so a scan's memory stays bounded whatever the store's size.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class IndexerSettings(BaseModel):
    """search-indexer's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pagerank_interval_s: float = Field(default=10.0, ge=0, le=3_600, description=(
        "Seconds between two PageRank passes (run only when the link graph changed); 0: only on ComputePageRank."))
    damping: float = Field(default=0.85, ge=0.5, le=0.99, description="PageRank's damping factor (the seed's 0.85).")
    tolerance: float = Field(default=1e-6, ge=1e-12, le=1e-2, description=(
        "Convergence: the ranks moved less than this per page, summed over the pages (networkx's rule)."))
    max_iterations: int = Field(default=100, ge=1, le=10_000, description=(
        "Most power iterations of one pass (the seed's loop count)."))
    shard_timeout_ms: int = Field(default=2_000, ge=10, le=60_000, description=(
        "Deadline of a PutPage or GetShardInfo call to search-shards, in milliseconds."))
    rank_push_timeout_ms: int = Field(default=10_000, ge=100, le=600_000, description=(
        "Deadline of one SetPageRanks call to search-shards, in milliseconds."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))
    scan_chunk_pages: int = Field(default=2_000, ge=10, le=100_000, description=(
        "Stored pages ScanShard reads per step (keeping those of its shard)."))
