"""``casemesh.search.v1.IndexerService`` (topology name ``search-indexer``): the document store, routing to the index
shards, the link graph and PageRank.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document Store",
"Indexer: Build inverted index (word -> document IDs)", "Ranker: PageRank", damping 0.85) and seed 001 #10
(shared/seeds/001_58dfc580020147d2.txt line 27: "Search Engine | Inverted index, PageRank, query processing,
autocomplete"). A thin servicer over :class:`.indexer.Indexer` (the store :mod:`.store`, the link graph :mod:`.graph`,
PageRank :mod:`.pagerank` and its passes :mod:`.ranking`, the shards' client :mod:`.routing`); input rules in
:mod:`.validation`. Calls ``search-shards`` (GetShardInfo, PutPage, SetPageRanks: the last two internal to this
service's identity, which the runtime's channel carries); ``search-shards`` calls ScanShard when it rebuilds.

RPCs and status codes (protos/casemesh/search/v1/indexer.proto):

- IndexPage (public: the crawler, any client): INVALID_ARGUMENT naming ``page.url``, ``page.title``, ``page.body`` or
  ``page.outlinks[i]``; UNAVAILABLE when the store cannot be written (nothing stored) or when the page's shard did not
  take it (the page is stored; retry).
- GetPage (public): INVALID_ARGUMENT naming ``url``; NOT_FOUND; UNAVAILABLE when the store cannot be read (or the shard
  count was never learned and the shards do not answer).
- ComputePageRank (public): FAILED_PRECONDITION ``no_pages``; UNAVAILABLE when a shard did not take the ranks (the pass
  is kept and pushed again) or the pass could not be recorded.
- GetIndexStats (public): none (``shard_count`` 0 until the shards' count was first learned).
- ScanShard (internal, caller ``search-shards``; a server stream): INVALID_ARGUMENT naming ``shard_count`` or
  ``shard``; UNAVAILABLE when the store cannot be read.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.IndexerSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, shard_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .indexer import SHARD_COUNT_KEY, Indexer
from .ranking import PassRecord
from .routing import ShardRouter
from .settings import IndexerSettings
from .store import FILE_NAME, PageStore

NAME = "search-indexer"
SHARDS = "search-shards"
FULL_NAME = indexer_pb2.DESCRIPTOR.services_by_name["IndexerService"].full_name
#: Methods anyone may call (the crawler, operators, the harness).
PUBLIC_METHODS = frozenset({"IndexPage", "GetPage", "ComputePageRank", "GetIndexStats"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"ScanShard": (SHARDS,)}


def pass_message(record: PassRecord | None) -> indexer_pb2.PageRankPass:
    """The ``PageRankPass`` of ``record`` (all zero: no pass yet)."""
    if record is None:
        return indexer_pb2.PageRankPass()
    return indexer_pb2.PageRankPass(rank_version=record.rank_version, nodes=record.nodes, edges=record.edges,
                                    iterations=record.iterations, compute_ms=record.compute_ms,
                                    finished_at_unix_ms=record.finished_at_unix_ms)


class IndexerServicer(indexer_pb2_grpc.IndexerServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.indexer.Indexer`."""

    def __init__(self, indexer: Indexer) -> None:
        self._indexer = indexer

    async def IndexPage(self, request: indexer_pb2.IndexPageRequest,
                        context: grpc.aio.ServicerContext) -> indexer_pb2.IndexPageResponse:
        indexed = await self._indexer.index(validation.page(request))
        return indexer_pb2.IndexPageResponse(shard=indexed.shard, created=indexed.created,
                                             page_count=indexed.page_count)

    async def GetPage(self, request: indexer_pb2.GetPageRequest,
                      context: grpc.aio.ServicerContext) -> indexer_pb2.GetPageResponse:
        stored = await self._indexer.get(validation.url(request.url))
        return indexer_pb2.GetPageResponse(page=stored.page.to_proto(), pagerank=stored.pagerank, shard=stored.shard)

    async def ComputePageRank(self, request: indexer_pb2.ComputePageRankRequest,
                              context: grpc.aio.ServicerContext) -> indexer_pb2.ComputePageRankResponse:
        return indexer_pb2.ComputePageRankResponse(rank_pass=pass_message(await self._indexer.ranker.compute()))

    async def GetIndexStats(self, request: indexer_pb2.GetIndexStatsRequest,
                            context: grpc.aio.ServicerContext) -> indexer_pb2.GetIndexStatsResponse:
        stats = self._indexer.stats()
        return indexer_pb2.GetIndexStatsResponse(page_count=stats.page_count, link_count=stats.link_count,
                                                 shard_count=stats.shard_count, last_pass=pass_message(stats.last_pass))

    async def ScanShard(self, request: indexer_pb2.ScanShardRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[indexer_pb2.ScanShardResponse]:
        shard, shard_count = validation.scan_shard(request)
        async for stored in self._indexer.scan(shard, shard_count):
            yield indexer_pb2.ScanShardResponse(page=stored.page.to_proto(), pagerank=stored.pagerank,
                                                rank_version=stored.rank_version)


class IndexerComponent:
    """The servicer over the indexer, its store (``DATA_DIR/search-indexer/pages.sqlite3``) and the stub of the
    shards; the ranker's ticker runs between start and stop."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, IndexerSettings)
        store = PageStore(context.data_dir(NAME) / FILE_NAME, self.settings.max_commit_writes)
        router = ShardRouter(shard_pb2_grpc.IndexShardServiceStub(context.channel(SHARDS)),
                             self.settings.shard_timeout_ms / 1000, self.settings.rank_push_timeout_ms / 1000,
                             learned=lambda count: store.set_meta(SHARD_COUNT_KEY, str(count)))
        self.indexer = Indexer(store, router, self.settings)

    def register(self, server: grpc.aio.Server) -> None:
        indexer_pb2_grpc.add_IndexerServiceServicer_to_server(IndexerServicer(self.indexer), server)

    async def start(self) -> None:
        await self.indexer.start()

    async def stop(self) -> None:
        await self.indexer.close()


async def build(context: RuntimeContext) -> IndexerComponent:
    return IndexerComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(SHARDS,), build=build, settings_model=IndexerSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
