"""crawler through real gRPC: the service built by its DEFINITION (settings, the runtime's channels) crawling the real
``crawler-web`` (a small web: 12 hosts of 8 pages, its referee at a 50 ms interval, as the crawler's) and feeding a
fake IndexerService that fails the first call of one page in ten (UNAVAILABLE, retried) and refuses one page for
good.

Checked: every status code of protos/casemesh/crawler/v1/crawler.proto; crawls (two at once, from overlapping seeds)
run to DONE with the referee's Audit finding no robots.txt, politeness or duplicate-fetch violation and agreeing with
the crawl's counts; ``max_pages`` stops a crawl exactly; CancelCrawl; every page not a duplicate reaches the indexer
once acknowledged. Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier,
robots.txt, politeness, deduplication (MD5/Simhash), BFS").
"""

from __future__ import annotations

import asyncio
import zlib

import grpc
import pytest
from casemesh.crawler.v1 import crawler_pb2, crawler_pb2_grpc, web_pb2, web_pb2_grpc
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc
from casemesh.services.crawler.frontier import metrics, service
from casemesh.services.crawler.frontier.settings import CrawlerSettings
from casemesh.services.crawler.web import service as web_service
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import FailedPrecondition
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology
from prometheus_client import CollectorRegistry

WAIT_S = 60.0
INTERVAL_MS = 50
WEB_SETTINGS = {"hosts": 12, "pages_per_host": 8, "min_interval_ms": INTERVAL_MS, "crawl_delay_host_share": 0,
                "slow_delay_ms": 60}
CRAWLER_SETTINGS = {"politeness_interval_ms": INTERVAL_MS, "max_crawl_delay_ms": 0, "max_crawls": 3,
                    "fetchers": 4, "max_retries": 2}
RUNNING, DONE, CANCELLED = (crawler_pb2.CRAWL_STATE_RUNNING, crawler_pb2.CRAWL_STATE_DONE,
                            crawler_pb2.CRAWL_STATE_CANCELLED)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def _flaky(url: str) -> bool:
    """One URL in ten: the fake indexer answers its first call UNAVAILABLE (the runtime's retry budget allows 10 %)."""
    return zlib.crc32(url.encode()) % 10 == 0


class FakeIndexer(indexer_pb2_grpc.IndexerServiceServicer):
    """IndexPage that answers the first call of :func:`_flaky` URLs UNAVAILABLE and refuses ``refused`` for good."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.pages: dict[str, indexer_pb2.IndexPageRequest] = {}
        self.refused = "http://host001.web.test/"

    async def IndexPage(self, request, context):
        url = request.page.url
        self.calls[url] = self.calls.get(url, 0) + 1
        if url == self.refused:
            await context.abort(INVALID, "page.url: refused by the test")
        if self.calls[url] == 1 and _flaky(url):
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the store is busy")
        self.pages[url] = request
        return indexer_pb2.IndexPageResponse(page_count=len(self.pages))


def _server() -> grpc.aio.Server:
    return grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])


class Served:
    def __init__(self, crawler, web, indexer, component) -> None:
        self.crawler: crawler_pb2_grpc.CrawlerServiceStub = crawler
        self.web: web_pb2_grpc.SyntheticWebServiceStub = web
        self.indexer: FakeIndexer = indexer
        self.component = component

    async def finished(self, crawl_id: str) -> crawler_pb2.Crawl:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while True:
            crawl = (await self.crawler.GetCrawl(crawler_pb2.GetCrawlRequest(crawl_id=crawl_id), timeout=5)).crawl
            if crawl.state != RUNNING:
                return crawl
            assert loop.time() < deadline, f"crawl {crawl_id} still running: {crawl}"
            await asyncio.sleep(0.05)

    async def audit(self, crawl_id: str) -> web_pb2.AuditResponse:
        return await self.web.Audit(web_pb2.AuditRequest(crawl_id=crawl_id), timeout=5)


@pytest.fixture
async def served(tmp_path):
    """The real crawler-web and a fake search-indexer on one server; crawler built by its DEFINITION in front."""
    dependencies = _server()
    web_context = RuntimeContext(Topology(services={web_service.NAME: Endpoint(address="127.0.0.1:1")},
                                          data_dir=str(tmp_path), settings={web_service.NAME: WEB_SETTINGS}))
    web = await web_service.DEFINITION.build(web_context.for_service(web_service.NAME))
    web.register(dependencies)
    indexer = FakeIndexer()
    indexer_pb2_grpc.add_IndexerServiceServicer_to_server(indexer, dependencies)
    port = dependencies.add_insecure_port("127.0.0.1:0")
    await dependencies.start()
    topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                  service.WEB: Endpoint(address=f"127.0.0.1:{port}"),
                                  service.INDEXER: Endpoint(address=f"127.0.0.1:{port}")},
                        data_dir=str(tmp_path), settings={service.NAME: CRAWLER_SETTINGS})
    context = RuntimeContext(topology).for_service(service.NAME)
    component = await service.DEFINITION.build(context)
    server = _server()
    component.register(server)
    crawler_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await component.start()
    channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}") for p in (crawler_port, port)]
    try:
        yield Served(crawler_pb2_grpc.CrawlerServiceStub(channels[0]), web_pb2_grpc.SyntheticWebServiceStub(channels[1]),
                     indexer, component)
    finally:
        for channel in channels:
            await channel.close()
        await server.stop(None)
        await component.stop()
        await context.close()
        await dependencies.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def _start(crawl_id: str, seeds, max_pages: int = 1_000, **fields) -> crawler_pb2.StartCrawlRequest:
    return crawler_pb2.StartCrawlRequest(crawl_id=crawl_id, seed_urls=seeds, max_pages=max_pages, **fields)


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.optional_dependencies, d.grpc_services) == (
        "crawler", ("crawler-web", "search-indexer"), ("search-indexer",), ("casemesh.crawler.v1.CrawlerService",))
    assert d.access.public == {"StartCrawl", "GetCrawl", "CancelCrawl"} and not d.access.internal
    assert d.settings_model is CrawlerSettings
    assert CrawlerSettings().model_dump() == {
        "politeness_interval_ms": 1_000, "max_crawl_delay_ms": 2_000, "fetchers": 32, "fetch_timeout_ms": 5_000,
        "max_retries": 2, "near_duplicates": True, "simhash_distance": 3, "index_timeout_ms": 2_000,
        "index_concurrency": 8, "index_backlog": 1_000, "max_crawls": 8}
    assert metrics.FETCHES._name == "casemesh_crawler_fetches"
    assert metrics.DUPLICATES._name == "casemesh_crawler_duplicates"


async def test_status_codes(served):
    stub = served.crawler
    for request, field in ((_start("", ["http://host000.web.test/"]), "crawl_id"),
                           (_start("a/b", ["http://host000.web.test/"]), "crawl_id"),
                           (_start("c", []), "seed_urls"),
                           (_start("c", ["http://host000.web.test/", "host001.web.test"]), "seed_urls[1]"),
                           (_start("c", ["http://host000.web.test/"], max_pages=0), "max_pages"),
                           (_start("c", ["http://host000.web.test/"], max_depth=33), "max_depth")):
        code, details = await _code(stub.StartCrawl(request, timeout=5))
        assert code == INVALID and details.startswith(f"{field}: "), (field, details)
    for call, request in ((stub.GetCrawl, crawler_pb2.GetCrawlRequest),
                          (stub.CancelCrawl, crawler_pb2.CancelCrawlRequest)):
        code, details = await _code(call(request(crawl_id="?"), timeout=5))
        assert code == INVALID and details.startswith("crawl_id: ")
        code, _ = await _code(call(request(crawl_id="nope"), timeout=5))
        assert code == grpc.StatusCode.NOT_FOUND

    first = (await stub.StartCrawl(_start("one", ["http://host000.web.test/"]), timeout=5)).crawl
    assert (first.crawl_id, first.state, first.frontier_size, first.hosts) == ("one", RUNNING, 1, 1)
    again = (await stub.StartCrawl(_start("one", ["http://host000.web.test"]), timeout=5)).crawl  # the same seed
    assert again.crawl_id == "one" and again.started_at_unix_ms == first.started_at_unix_ms
    code, details = await _code(stub.StartCrawl(_start("one", ["http://host000.web.test/"], max_pages=5), timeout=5))
    assert code == grpc.StatusCode.ALREADY_EXISTS and details.startswith("crawl_id: ")
    for crawl_id in ("two", "three"):
        await stub.StartCrawl(_start(crawl_id, ["http://host000.web.test/"]), timeout=5)
    code, _ = await _code(stub.StartCrawl(_start("four", ["http://host000.web.test/"]), timeout=5))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED  # max_crawls 3
    cancelled = (await stub.CancelCrawl(crawler_pb2.CancelCrawlRequest(crawl_id="one"), timeout=5)).crawl
    assert cancelled.state == CANCELLED and cancelled.finished_at_unix_ms >= cancelled.started_at_unix_ms
    await asyncio.sleep(0.3)  # fetches in flight end: the cancelled crawl does not change
    assert (await stub.GetCrawl(crawler_pb2.GetCrawlRequest(crawl_id="one"), timeout=5)).crawl == cancelled
    assert (await stub.CancelCrawl(crawler_pb2.CancelCrawlRequest(crawl_id="one"), timeout=5)).crawl == cancelled
    assert (await stub.StartCrawl(_start("one", ["http://host000.web.test/"]), timeout=5)).crawl == cancelled
    four = (await stub.StartCrawl(_start("four", ["http://host000.web.test/"]), timeout=5)).crawl
    assert four.state == RUNNING  # a slot was freed


async def test_crawls_of_the_same_hosts_run_to_done_and_the_referee_finds_no_violation(served):
    home = (await served.web.GetWeb(web_pb2.GetWebRequest(), timeout=5)).home_pages
    indexed = (await served.crawler.StartCrawl(_start("indexed", home[:3], index_pages=True), timeout=5)).crawl
    plain = (await served.crawler.StartCrawl(_start("plain", home[1:4]), timeout=5)).crawl
    capped = (await served.crawler.StartCrawl(_start("capped", home[:2], max_pages=7), timeout=5)).crawl
    assert indexed.state == plain.state == capped.state == RUNNING

    results = {crawl_id: await served.finished(crawl_id) for crawl_id in ("indexed", "plain", "capped")}
    for crawl_id, crawl in results.items():
        audit = await served.audit(crawl_id)
        assert crawl.state == DONE, crawl
        assert (audit.robots_violations, audit.politeness_violations, audit.duplicate_fetches) == (0, 0, 0), audit
        assert audit.min_host_gap_ms >= INTERVAL_MS
        assert crawl.pages_fetched == audit.pages_ok and crawl.hosts >= audit.hosts
        assert crawl.finished_at_unix_ms >= crawl.started_at_unix_ms and crawl.pages_per_second > 0
    capped = results["capped"]
    assert capped.pages_fetched == 7 and capped.frontier_size > 0
    for crawl in (results["indexed"], results["plain"]):
        assert crawl.frontier_size == 0 and crawl.pages_fetched > 40 and crawl.robots_blocked > 0
        assert crawl.fetch_errors > 0 and crawl.exact_duplicates + crawl.near_duplicates > 0
        assert crawl.depth_reached >= 2
    assert results["plain"].pages_indexed == 0

    crawl = results["indexed"]
    unique = crawl.pages_fetched - crawl.exact_duplicates - crawl.near_duplicates
    assert crawl.pages_indexed == unique - 1 == len(served.indexer.pages)  # every page but the refused one
    assert served.indexer.calls[served.indexer.refused] == 1  # INVALID_ARGUMENT is not retried
    assert all(served.indexer.calls[url] == (2 if _flaky(url) else 1) for url in served.indexer.pages)
    assert any(_flaky(url) for url in served.indexer.pages)
    page = served.indexer.pages["http://host000.web.test/"].page
    assert page.title and len(page.body) > 500 and page.outlinks
    assert all(link.startswith("http://") and "#" not in link for link in page.outlinks)


async def test_a_mesh_without_an_indexer_refuses_crawls_that_index(tmp_path):
    topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                  service.WEB: Endpoint(address="127.0.0.1:2")}, data_dir=str(tmp_path))
    context = RuntimeContext(topology).for_service(service.NAME)
    component = await service.DEFINITION.build(context)
    try:
        with pytest.raises(FailedPrecondition, match="no_indexer"):
            component.crawls.start(_start("x", ["http://host000.web.test/"], index_pages=True))
        assert component.crawls.start(_start("y", ["http://host000.web.test/"])).state == RUNNING
    finally:
        await component.stop()
        await context.close()
