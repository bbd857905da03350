"""``casemesh.search.v1.SearchService`` (topology name ``search-query``): the search engine's query processor.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query Processor: Parse
query, retrieve docs, rank results"; "Query processing: Millions of QPS, sub-500ms latency"; "Ranker: PageRank + ML
models for relevance scoring") and seed 001 #10 (shared/seeds/001_58dfc580020147d2.txt line 27: "Inverted index,
PageRank, query processing, autocomplete"). A thin servicer over :class:`.searcher.Searcher` (parsing
:mod:`.parser`, the two-phase scatter-gather with per-shard deadlines :mod:`.scatter`, the merge :mod:`.merge`, page
tokens and input rules :mod:`.validation`). Calls ``search-shards`` (IndexShardService: GetShardInfo, and
GetTermStatistics and SearchShard, internal to this service's identity) and ``search-autocomplete``
(AutocompleteService.RecordQueries, internal; an optional dependency: while it is down, queries are answered and the
query log waits, :mod:`.query_log`).

RPCs and status codes (protos/casemesh/search/v1/query.proto), public:

- Search: INVALID_ARGUMENT naming ``query`` (1 to 512 characters; 1 to 16 distinct terms after analysis; a phrase of
  2 to 16 terms; at most 4 phrases), ``page_size`` (0 to 50) or ``page_token`` (not this query's, or past the
  1,000th result); UNAVAILABLE when no shard answered in time (or search-shards did not answer GetShardInfo). A
  shard left out is not an error: the answer says ``partial``.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.QuerySettings` (A/B knob ``shard_deadline_ms``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from casemesh.search.v1 import query_pb2, query_pb2_grpc, shard_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import dependency_error
from . import metrics
from .query_log import QueryLog, RejectedBatch
from .scatter import ShardScatter
from .searcher import Searcher
from .settings import QuerySettings

log = logging.getLogger("casemesh.search.query.service")

NAME = "search-query"
SHARDS = "search-shards"
AUTOCOMPLETE = "search-autocomplete"
FULL_NAME = query_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
#: Every method: anyone searches.
PUBLIC_METHODS = frozenset({"Search"})
#: Seconds one RecordQueries call of the query log may take.
RECORD_TIMEOUT_S = 2.0
#: Seconds the final flush of the query log may take when the service stops.
STOP_FLUSH_TIMEOUT_S = 3.0


class SearchServicer(query_pb2_grpc.SearchServiceServicer):
    """Calls :class:`.searcher.Searcher` (which validates each request: :mod:`.validation`)."""

    def __init__(self, searcher: Searcher) -> None:
        self._searcher = searcher

    async def Search(self, request: query_pb2.SearchRequest,
                     context: grpc.aio.ServicerContext) -> query_pb2.SearchResponse:
        return await self._searcher.search(request)


def record_queries_sender(stub: query_pb2_grpc.AutocompleteServiceStub):
    """The query log's ``send``: one RecordQueries call with an explicit deadline (:data:`RECORD_TIMEOUT_S`);
    INVALID_ARGUMENT becomes :class:`.query_log.RejectedBatch` (not retried), any other failure is raised."""

    async def send(entries: list[tuple[str, int]]) -> None:
        request = query_pb2.RecordQueriesRequest(queries=[query_pb2.QueryCount(query=q, count=c) for q, c in entries])
        try:
            await stub.RecordQueries(request, timeout=RECORD_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise RejectedBatch(str(dependency_error(error))) from None
            raise

    return send


class QueryComponent:
    """The servicer over the shard scatter (``search-shards``) and the query log (to ``search-autocomplete``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, QuerySettings)
        scatter = ShardScatter(shard_pb2_grpc.IndexShardServiceStub(context.channel(SHARDS)),
                               self.settings.shard_deadline_ms, self.settings.pagerank_weight)
        self.query_log = QueryLog(record_queries_sender(query_pb2_grpc.AutocompleteServiceStub(
            context.channel(AUTOCOMPLETE))), self.settings.query_log_flush_ms / 1000)
        self.searcher = Searcher(scatter, self.query_log)

    def register(self, server: grpc.aio.Server) -> None:
        query_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(self.searcher), server)

    async def start(self) -> None:
        metrics.started()
        await self.query_log.start()

    async def stop(self) -> None:
        try:
            left = await asyncio.wait_for(self.query_log.stop(), STOP_FLUSH_TIMEOUT_S)
        except TimeoutError:
            left = self.query_log.pending
        if left:
            log.warning("%s: %d logged queries not delivered to %s at stop", NAME, left, AUTOCOMPLETE)


async def build(context: RuntimeContext) -> QueryComponent:
    return QueryComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(SHARDS, AUTOCOMPLETE), build=build,
    settings_model=QuerySettings, optional_dependencies=(AUTOCOMPLETE,), access=Access(public=PUBLIC_METHODS),
)
