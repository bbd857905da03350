"""``casemesh.crawler.v1.CrawlerService`` (topology name ``crawler``): the web crawler.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"); seed 000
(shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664, "Search Engine (like Google)": "Crawl and index web pages
continuously", "Crawling: Billions of pages, politeness policies (robots.txt)", "URL Frontier: Priority queue of URLs
to crawl", "Web Crawler: Distributed crawlers with politeness policies"). A thin servicer over
:class:`.registry.CrawlRegistry` (the crawls), :class:`.crawl.Crawl` (one crawl: :mod:`.frontier`, :mod:`.robots`,
:mod:`.dedup`, :mod:`.parse`), :class:`.fetchers.Fetchers` over the process-wide :class:`.politeness.HostClock`, and
:class:`.indexing.IndexFeed`. Calls out to ``crawler-web`` (``SyntheticWebService.Fetch``, :mod:`.fetch`, deadline
``fetch_timeout_ms``) and, for crawls with ``index_pages``, ``search-indexer`` (``IndexerService.IndexPage``,
deadline ``index_timeout_ms``; an optional dependency: a mesh without it runs crawls that do not index).

RPCs and status codes (protos/casemesh/crawler/v1/crawler.proto), all public:

- StartCrawl: INVALID_ARGUMENT naming ``crawl_id``, ``seed_urls``, ``seed_urls[i]``, ``max_pages`` or
  ``max_depth``; ALREADY_EXISTS (the ID was started by another request); RESOURCE_EXHAUSTED (``max_crawls`` crawls
  running); FAILED_PRECONDITION ``no_indexer`` (``index_pages`` in a mesh without ``search-indexer``).
- GetCrawl: INVALID_ARGUMENT naming ``crawl_id``; NOT_FOUND.
- CancelCrawl: INVALID_ARGUMENT naming ``crawl_id``; NOT_FOUND.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.CrawlerSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import time

import grpc
from casemesh.crawler.v1 import crawler_pb2, crawler_pb2_grpc, web_pb2_grpc
from casemesh.search.v1 import indexer_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import metrics
from .fetch import WebClient
from .fetchers import Fetchers
from .indexing import IndexFeed
from .politeness import HostClock
from .registry import CrawlRegistry
from .settings import CrawlerSettings

NAME = "crawler"
WEB = "crawler-web"
INDEXER = "search-indexer"
FULL_NAME = crawler_pb2.DESCRIPTOR.services_by_name["CrawlerService"].full_name
#: Every method: operators and the crawler workload start, watch and stop crawls.
PUBLIC_METHODS = frozenset({"StartCrawl", "GetCrawl", "CancelCrawl"})


class CrawlerServicer(crawler_pb2_grpc.CrawlerServiceServicer):
    """Calls :class:`.registry.CrawlRegistry` (which validates each request: :mod:`.validation`)."""

    def __init__(self, crawls: CrawlRegistry) -> None:
        self._crawls = crawls

    async def StartCrawl(self, request: crawler_pb2.StartCrawlRequest,
                         context: grpc.aio.ServicerContext) -> crawler_pb2.StartCrawlResponse:
        return crawler_pb2.StartCrawlResponse(crawl=self._crawls.start(request))

    async def GetCrawl(self, request: crawler_pb2.GetCrawlRequest,
                       context: grpc.aio.ServicerContext) -> crawler_pb2.GetCrawlResponse:
        return crawler_pb2.GetCrawlResponse(crawl=self._crawls.get(request.crawl_id))

    async def CancelCrawl(self, request: crawler_pb2.CancelCrawlRequest,
                          context: grpc.aio.ServicerContext) -> crawler_pb2.CancelCrawlResponse:
        return crawler_pb2.CancelCrawlResponse(crawl=self._crawls.cancel(request.crawl_id))


class CrawlerComponent:
    """The crawls, the process's fetchers over the host clock (every host first allowed ``restart_wait_s`` after
    this component is built: :mod:`.politeness`), and the indexer feed when the mesh has ``search-indexer``."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, CrawlerSettings)
        self.clock = HostClock(settings.interval_s, settings.restart_wait_s, time.monotonic())
        web = WebClient(web_pb2_grpc.SyntheticWebServiceStub(context.channel(WEB)), settings.fetch_timeout_ms / 1_000)
        self.fetchers = Fetchers(self.clock, web, settings.fetchers)
        self.index = (IndexFeed(indexer_pb2_grpc.IndexerServiceStub(context.channel(INDEXER)),
                                settings.index_timeout_ms / 1_000, settings.index_concurrency, settings.index_backlog)
                      if INDEXER in context.topology.services else None)
        self.crawls = CrawlRegistry(settings, self.fetchers, self.index)

    def register(self, server: grpc.aio.Server) -> None:
        crawler_pb2_grpc.add_CrawlerServiceServicer_to_server(CrawlerServicer(self.crawls), server)

    async def start(self) -> None:
        metrics.reset_gauges()
        self.fetchers.start()

    async def stop(self) -> None:
        self.crawls.stop()
        await self.fetchers.stop()
        if self.index is not None:
            await self.index.stop()


async def build(context: RuntimeContext) -> CrawlerComponent:
    return CrawlerComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(WEB, INDEXER), build=build, settings_model=CrawlerSettings,
    optional_dependencies=(INDEXER,), access=Access(public=PUBLIC_METHODS),
)
