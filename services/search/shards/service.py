"""``casemesh.search.v1.IndexShardService`` (topology name ``search-shards``): the document-sharded inverted index.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Index Server: Sharded
index across thousands of machines", the "Inverted Index Example", "Query processing: Millions of QPS, sub-500ms
latency"); seed 001 #10 (shared/seeds/001_58dfc580020147d2.txt line 27: "| 10 | Search Engine | Inverted index,
PageRank, query processing, autocomplete | 10B documents, Google-scale |"). A thin servicer over
:class:`.shard_set.ShardSet` (``shards`` :class:`.index.ShardIndex` objects: postings with positions, BM25 from the
collection's statistics, the PageRank boost); input rules in :mod:`.validation`; the rebuild at start in
:mod:`.rebuild` (streams ``IndexerService.ScanShard`` from ``search-indexer``, an optional dependency).

RPCs and status codes (protos/casemesh/search/v1/shard.proto):

- PutPage (internal, caller ``search-indexer``): INVALID_ARGUMENT naming ``shard`` (also when it is not the page's,
  ``crc32(page.url) mod shards``), ``shard_count``, ``page.url`` or ``pagerank`` (finite, 0 to 1); UNAVAILABLE while the shard rebuilds (the page is taken all the same and wins over
  the rebuild's copy: :mod:`.shard_set`).
- SetPageRanks (internal, caller ``search-indexer``): INVALID_ARGUMENT naming ``shard``, ``shard_count``, ``ranks``
  (over 100,000 entries), ``ranks[i].url``, ``ranks[i].pagerank`` or ``rank_version`` (>= 1); UNAVAILABLE while the
  shard rebuilds. A pass older than the shard's ``rank_version`` is ignored (``updated`` 0).
- GetTermStatistics (internal, caller ``search-query``): INVALID_ARGUMENT naming ``shard``, ``shard_count`` or
  ``terms``; UNAVAILABLE while the shard rebuilds.
- SearchShard (internal, caller ``search-query``): INVALID_ARGUMENT naming ``shard``, ``shard_count``,
  ``query.terms``, ``query.phrases``, ``statistics``, ``top_k`` or ``pagerank_weight``; UNAVAILABLE while the shard
  rebuilds.
- GetShardInfo (public): none.

Every index operation is synchronous on the event loop (no ``await`` inside a mutation or a search), so calls never
interleave inside one and no locks are needed; a search of a 5,000-page shard takes well under a millisecond for
most queries and a few for the commonest words. A crash inside one request ends that request (UNKNOWN, logged by the
runtime's interceptor); the index is changed only after everything that can fail, and the server goes on.
Settings: :class:`.settings.ShardsSettings` (the A/B knob ``shards``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import grpc
from casemesh.search.v1 import indexer_pb2_grpc, search_pb2, shard_pb2, shard_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import metrics, validation
from .rebuild import Rebuild
from .settings import ShardsSettings
from .shard_set import ShardSet

NAME = "search-shards"
INDEXER = "search-indexer"
QUERY = "search-query"
FULL_NAME = shard_pb2.DESCRIPTOR.services_by_name["IndexShardService"].full_name
#: Methods anyone may call (operators, the harness, the indexer learning the shard count).
PUBLIC_METHODS = frozenset({"GetShardInfo"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"PutPage": (INDEXER,), "SetPageRanks": (INDEXER,), "GetTermStatistics": (QUERY,),
                    "SearchShard": (QUERY,)}


class IndexShardServicer(shard_pb2_grpc.IndexShardServiceServicer):
    """Validates each request (:mod:`.validation`) and calls the shards (:class:`.shard_set.ShardSet`)."""

    def __init__(self, shards: ShardSet) -> None:
        self._shards = shards

    async def PutPage(self, request: shard_pb2.PutPageRequest,
                      context: grpc.aio.ServicerContext) -> shard_pb2.PutPageResponse:
        shard, page, pagerank = validation.put_page(request, self._shards.count)
        created, doc_count = self._shards.put(shard, page, pagerank)
        return shard_pb2.PutPageResponse(created=created, doc_count=doc_count)

    async def SetPageRanks(self, request: shard_pb2.SetPageRanksRequest,
                           context: grpc.aio.ServicerContext) -> shard_pb2.SetPageRanksResponse:
        shard, entries, rank_version = validation.set_page_ranks(request, self._shards.count)
        return shard_pb2.SetPageRanksResponse(updated=self._shards.ready(shard).set_ranks(entries, rank_version))

    async def GetTermStatistics(self, request: shard_pb2.GetTermStatisticsRequest,
                                context: grpc.aio.ServicerContext) -> shard_pb2.GetTermStatisticsResponse:
        shard, terms = validation.term_statistics(request, self._shards.count)
        statistics = self._shards.ready(shard).term_statistics(terms)
        return shard_pb2.GetTermStatisticsResponse(statistics=search_pb2.CollectionStatistics(
            doc_count=statistics.doc_count, total_terms=statistics.total_terms,
            terms=[search_pb2.TermStatistics(term=t, doc_freq=n) for t, n in zip(terms, statistics.doc_freqs)]))

    async def SearchShard(self, request: shard_pb2.SearchShardRequest,
                          context: grpc.aio.ServicerContext) -> shard_pb2.SearchShardResponse:
        shard, query, statistics, top_k, weight = validation.search_shard(request, self._shards.count)
        result = self._shards.ready(shard).search(query, statistics, top_k, weight)
        metrics.POSTINGS_SCANNED.observe(result.scanned)
        metrics.MATCHED_PAGES.observe(result.matched)
        return shard_pb2.SearchShardResponse(matched=result.matched, hits=[
            search_pb2.SearchHit(url=hit.url, title=hit.title, snippet=hit.snippet, bm25=hit.bm25,
                                 pagerank=hit.pagerank, score=hit.score) for hit in result.hits])

    async def GetShardInfo(self, request: shard_pb2.GetShardInfoRequest,
                           context: grpc.aio.ServicerContext) -> shard_pb2.GetShardInfoResponse:
        return shard_pb2.GetShardInfoResponse(shard_count=self._shards.count, shards=[
            shard_pb2.ShardInfo(shard=info.shard, doc_count=info.doc_count, term_count=info.term_count,
                                rebuilding=info.rebuilding, rank_version=info.rank_version)
            for info in self._shards.info()])


class ShardsComponent:
    """The servicer over ``shards`` empty shards, rebuilt at start from ``search-indexer`` when the topology has one
    (without it, as in tests of this service alone, the shards start empty and serve at once)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, ShardsSettings)
        has_indexer = INDEXER in context.topology.services
        self.shards = ShardSet(self.settings.shards, rebuilding=has_indexer)
        self.rebuild = (Rebuild(self.shards, indexer_pb2_grpc.IndexerServiceStub(context.channel(INDEXER)),
                                self.settings) if has_indexer else None)

    def register(self, server: grpc.aio.Server) -> None:
        shard_pb2_grpc.add_IndexShardServiceServicer_to_server(IndexShardServicer(self.shards), server)

    async def start(self) -> None:
        metrics.started(self.shards.count, self.shards.rebuilding_count())
        if self.rebuild is not None:
            self.rebuild.start()

    async def stop(self) -> None:
        if self.rebuild is not None:
            await self.rebuild.stop()


async def build(context: RuntimeContext) -> ShardsComponent:
    return ShardsComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(INDEXER,), optional_dependencies=(INDEXER,), build=build,
    settings_model=ShardsSettings, access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
