"""Settings of ``search-query`` (topology ``settings.search-query``); unknown keys are refused.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query processing:
Millions of QPS, sub-500ms latency", "Query Processor: Parse query, retrieve docs, rank results", "Ranker: PageRank +
ML models"). The A/B knob is ``shard_deadline_ms`` (``casemesh run PROFILE --set search-query.shard_deadline_ms=0``):

- ``shard_deadline_ms`` 250 (0 to 60,000): each shard call's own deadline, in milliseconds, in each of the two phases
  (statistics, then search), capped by what is left of the Search call's deadline. A shard that misses it is left
  out of the result (``partial``), so the slowest shard does not set every query's latency: the tail-at-scale
  trade of a partial answer for a bounded latency. 250 ms is about half the seed's 500 ms query budget. 0 turns the
  per-shard deadline off: every shard is waited for as long as the Search call's own deadline allows (complete
  results, the slowest shard's latency);
- ``pagerank_weight`` 1.0 (finite, >= 0): how much PageRank moves a page's score, ``bm25 * (1 + pagerank_weight *
  ln(1 + doc_count * pagerank))`` (protos/casemesh/search/v1/search.proto, SearchHit.score); 0 ranks by BM25 alone;
- ``query_log_flush_ms`` 1,000 (10 to 60,000): how often the counted first-page queries are sent to
  ``search-autocomplete`` (RecordQueries), in milliseconds: the query log's batching interval (:mod:`.query_log`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class QuerySettings(BaseModel):
    """search-query's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shard_deadline_ms: int = Field(default=250, ge=0, le=60_000, description=(
        "Milliseconds each shard call may take in each phase before the shard is left out (partial result); 0: no "
        "per-shard deadline, wait up to the Search call's own deadline."))
    pagerank_weight: float = Field(default=1.0, ge=0, allow_inf_nan=False, description=(
        "Weight of PageRank in the score: bm25 * (1 + weight * ln(1 + doc_count * pagerank)); 0: BM25 alone."))
    query_log_flush_ms: int = Field(default=1_000, ge=10, le=60_000, description=(
        "Milliseconds between two batches of the query log sent to search-autocomplete."))
