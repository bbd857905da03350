"""The search engine workload (Google; seed 000 "Search Engine (like Google)", shared/seeds/000_69ff90d97cf45f9b.txt
lines 592-664: "Query processing: Millions of QPS, sub-500ms latency", "Autocomplete and spell correction",
"Freshness: Breaking news indexed in minutes"; seed 001 #10, shared/seeds/001_58dfc580020147d2.txt line 27: "Inverted
index, PageRank, query processing, autocomplete | 10B documents, Google-scale").

Seeding (:mod:`.seeding`) indexes a synthetic web through IndexerService.IndexPage (:mod:`.corpus`: pages of real
English words at their real frequencies, linked by preferential attachment) and runs one PageRank pass
(ComputePageRank); the query set is drawn from the pages themselves (:mod:`.queries`). Open-loop arrivals are users'
journeys (:mod:`.journeys`): ``search`` (a results page, sometimes the next: the read path, the seed's query
processing), ``autocomplete`` (a query typed keystroke by keystroke into the search box: one Suggest per keystroke)
and ``breaking_news`` (a breaking-news page indexed, then searched for until it is a hit). Every answer is checked
against the contract (:mod:`.results`); at the end the shards must hold exactly the document store's pages and every
page indexed must read back (:mod:`.end_checks`).

Measures: ``index_freshness`` (page handed to the indexer → a hit), ``search_complete`` (results pages with every
shard's answer, or PARTIAL: the per-shard deadline's trade), ``search_correct`` (results pages that keep the
contract, or a complete page that MISSED a query's own page), ``suggest_found`` (typed queries that autocomplete
suggested) and the invariant ``index_consistent``; the driver records every RPC and each journey (the ``autocomplete``
journey's time is the whole query's typing). The workload speaks only the contracts (protos/casemesh/search/v1) and
casemesh.services.search.contract.
"""

from __future__ import annotations

import logging
import random

from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, query_pb2, query_pb2_grpc, shard_pb2, shard_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .end_checks import INDEX_CONSISTENT, check
from .journeys import (
    INDEX_FRESHNESS,
    SEARCH_COMPLETE,
    SEARCH_CORRECT,
    SUGGEST_FOUND,
    AutocompleteParams,
    FreshnessParams,
    SearchParams,
    autocomplete,
    breaking_news,
    search,
)
from .live import Searchers
from .seeding import AUTOCOMPLETE, INDEXER, QUERY, SHARDS, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.search")

_ENTRYPOINTS = entrypoints({
    QUERY: (query_pb2, "SearchService", query_pb2_grpc.SearchServiceStub),
    AUTOCOMPLETE: (query_pb2, "AutocompleteService", query_pb2_grpc.AutocompleteServiceStub),
    INDEXER: (indexer_pb2, "IndexerService", indexer_pb2_grpc.IndexerServiceStub),
    SHARDS: (shard_pb2, "IndexShardService", shard_pb2_grpc.IndexShardServiceStub),
})

MEASURES = (INDEX_FRESHNESS, SEARCH_COMPLETE, SEARCH_CORRECT, SUGGEST_FOUND, INDEX_CONSISTENT)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Searchers:
    """This process's :class:`~.live.Searchers`, after logging the index's size (unrecorded); ``rng`` is not used."""
    searchers = Searchers(streams, state, params)
    await searchers.log_index()
    return searchers


async def disconnect(searchers: Searchers) -> None:
    """The end-of-run check (``index_consistent``), after this process's last journey."""
    try:
        await check(searchers)
    except Exception:  # a bug here must not lose the run's other results
        log.exception("search: the end-of-run check failed")
        searchers.streams.observe(INDEX_CONSISTENT, 0.0, "UNKNOWN", sent_at=searchers.clock())


WORKLOAD = Workload(
    name="search",
    description="Search engine (shared/seeds/000 'Search Engine (like Google)', 001 #10): users searching a sharded "
                "BM25 + PageRank index of a synthetic web (real word frequencies, preferential-attachment links), "
                "typing queries into autocomplete, and breaking news indexed and searched for until it shows; the "
                "shards hold exactly the document store's pages at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("search", "A user searches a query (Zipf popularity): SearchService.Search, and for some the next "
                    "page through next_page_token", SearchParams, search),
            Journey("autocomplete", "A user types a query into the search box: AutocompleteService.Suggest after each "
                    "keystroke, until the query is suggested", AutocompleteParams, autocomplete),
            Journey("breaking_news", "A breaking-news page with a term of its own is indexed (IndexPage, retried), "
                    "then searched for until it is a hit (index_freshness)", FreshnessParams, breaking_news),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
