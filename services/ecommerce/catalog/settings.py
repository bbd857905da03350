"""Settings of ``ecommerce-catalog`` (topology ``settings.ecommerce-catalog``); unknown keys are refused.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 513 and 519: "Latency:
Sub-200ms for search", "Product Service: Catalog, search (Elasticsearch)"). SQLite FTS5 stands in for Elasticsearch
(:mod:`.store`), so the knobs are Elasticsearch's own:

- ``title_weight`` 2.0 and ``description_weight`` 1.0: the column weights of FTS5's ``bm25()`` (its per-column
  multipliers of the BM25 score, https://sqlite.org/fts5.html#the_bm25_function), as an Elasticsearch
  ``multi_match`` over ``["title^2", "description"]`` boosts the title: a word in a product's title says more about
  what it is than the same word in its description;
- ``max_search_results`` 10,000: how deep SearchProducts pages may go (offset plus page size), Elasticsearch's
  ``index.max_result_window`` default (from/size paging costs the whole window at every page); a page token past it
  ends the search;
- ``commit_batch`` 1,000: most products written by one group commit (one SQLite transaction, one fsync) of the
  CreateProduct calls queued while the previous commit ran (a catalogue seeded by many concurrent calls).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CatalogSettings(BaseModel):
    """ecommerce-catalog's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title_weight: float = Field(default=2.0, gt=0, le=100, description=(
        "bm25() weight of a product's title (a multiplier of the BM25 score of matches in it)."))
    description_weight: float = Field(default=1.0, gt=0, le=100, description=(
        "bm25() weight of a product's description."))
    max_search_results: int = Field(default=10_000, ge=1, le=1_000_000, description=(
        "Deepest result SearchProducts pages reach (Elasticsearch's index.max_result_window)."))
    commit_batch: int = Field(default=1_000, ge=1, le=100_000, description=(
        "Most products in one group commit (one transaction, one fsync)."))
