"""Settings of ``search-autocomplete`` (topology ``settings.search-autocomplete``); unknown keys are refused.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Autocomplete and spell
correction"). The prefix index (:mod:`.prefix_index`):

- ``rebuild_interval_ms`` 2,000 (50 to 600,000): how often the prefix index is rebuilt from the counts, when they
  changed, in milliseconds: how far suggestions may lag the query log (plus the query log's own
  ``search-query.query_log_flush_ms``). Shorter is fresher and costs a rebuild (a thread, O(queries * 32)) more often;
- ``max_queries`` 100,000 (1 to 10,000,000): distinct queries counted at most; a query new to a full log is not
  counted (``casemesh_search_autocomplete_queries_total{outcome="dropped"}``). It bounds the counts' and the index's
  memory and the rebuild's time (about 160 bytes per prefix, up to 32 prefixes per query: 100,000 queries of about
  18 characters take about 190 MB and 1.3 s to rebuild here, :mod:`.prefix_index`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AutocompleteSettings(BaseModel):
    """search-autocomplete's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rebuild_interval_ms: int = Field(default=2_000, ge=50, le=600_000, description=(
        "Milliseconds between two rebuilds of the prefix index (skipped when the counts did not change)."))
    max_queries: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Distinct queries counted at most; a query new to a full log is dropped."))
