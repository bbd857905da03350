"""``casemesh.search.v1.AutocompleteService`` (topology name ``search-autocomplete``): suggestions from the query log.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Autocomplete and spell
correction") and seed 001 #10 (shared/seeds/001_58dfc580020147d2.txt line 27: "query processing, autocomplete"). A
thin servicer over :class:`.prefix_index.QueryLogIndex` (the counts, and the top-k-per-prefix index rebuilt every
``rebuild_interval_ms`` by a background task of this component when the counts changed); input rules in
:mod:`.validation`. Calls no other service; ``search-query`` sends it the query log.

RPCs and status codes (protos/casemesh/search/v1/query.proto):

- Suggest (public): INVALID_ARGUMENT naming ``prefix`` (1 to 32 characters after normalisation) or ``limit`` (0 to
  10). The most counted logged queries that start with the prefix, as of the last rebuild.
- RecordQueries (internal, caller ``search-query``): INVALID_ARGUMENT naming ``queries`` (1 to 1,000 entries),
  ``queries[i].query`` (1 to 512 characters, not only whitespace) or ``queries[i].count`` (1 to 1,000,000); nothing
  of a refused batch is counted.

The counts live in memory: a restart starts an empty log (suggestions come back as people search). A crash inside
one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.AutocompleteSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging

import grpc
from casemesh.search.v1 import query_pb2, query_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import metrics, validation
from .prefix_index import QueryLogIndex
from .settings import AutocompleteSettings

log = logging.getLogger("casemesh.search.autocomplete.service")

NAME = "search-autocomplete"
QUERY = "search-query"
FULL_NAME = query_pb2.DESCRIPTOR.services_by_name["AutocompleteService"].full_name
#: Methods anyone may call (the search box).
PUBLIC_METHODS = frozenset({"Suggest"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"RecordQueries": (QUERY,)}


class AutocompleteServicer(query_pb2_grpc.AutocompleteServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.prefix_index.QueryLogIndex`."""

    def __init__(self, log_index: QueryLogIndex) -> None:
        self._log = log_index

    async def Suggest(self, request: query_pb2.SuggestRequest,
                      context: grpc.aio.ServicerContext) -> query_pb2.SuggestResponse:
        prefix, limit = validation.suggest(request)
        index = self._log.index
        return query_pb2.SuggestResponse(
            suggestions=[query_pb2.Suggestion(query=q, count=c) for q, c in index.suggest(prefix, limit)],
            index_built_at_unix_ms=index.built_at_unix_ms)

    async def RecordQueries(self, request: query_pb2.RecordQueriesRequest,
                            context: grpc.aio.ServicerContext) -> query_pb2.RecordQueriesResponse:
        entries = validation.record_queries(request)
        dropped = self._log.record(entries)
        metrics.QUERIES.labels("counted").inc(sum(count for _, count in entries) - dropped)
        if dropped:
            metrics.QUERIES.labels("dropped").inc(dropped)
        metrics.DISTINCT_QUERIES.set(self._log.distinct_queries)
        return query_pb2.RecordQueriesResponse(distinct_queries=self._log.distinct_queries)


async def run_rebuilds(log_index: QueryLogIndex, interval_s: float) -> None:
    """Every ``interval_s`` seconds, rebuild the prefix index if the counts changed (until cancelled); a failed
    rebuild is logged and tried again at the next tick."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            if await log_index.rebuild():
                index = log_index.index
                metrics.REBUILD_SECONDS.observe(index.build_seconds)
                metrics.PREFIXES.set(len(index.completions))
        except Exception:  # a bad build must not end the loop: the old index keeps serving
            log.exception("%s: rebuilding the prefix index failed", NAME)


class AutocompleteComponent:
    """The servicer over the query log's counts, and the background rebuild of its prefix index."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, AutocompleteSettings)
        self.log_index = QueryLogIndex(self.settings.max_queries)
        self._rebuilds: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        query_pb2_grpc.add_AutocompleteServiceServicer_to_server(AutocompleteServicer(self.log_index), server)

    async def start(self) -> None:
        metrics.started(lambda: self.log_index.index.built_at_unix_ms)
        self._rebuilds = asyncio.create_task(run_rebuilds(self.log_index, self.settings.rebuild_interval_ms / 1000),
                                             name=f"{NAME}-rebuilds", context=contextvars.Context())

    async def stop(self) -> None:
        if self._rebuilds is not None:
            self._rebuilds.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._rebuilds


async def build(context: RuntimeContext) -> AutocompleteComponent:
    return AutocompleteComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=AutocompleteSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
