"""``casemesh.crawler.v1.SyntheticWebService`` (topology name ``crawler-web``): the generated web the crawler crawls,
and the referee of every fetch.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"). A thin servicer over
:class:`.fetching.Fetcher` (the web :mod:`.generator` with its robots.txt :mod:`.robots` and HTML :mod:`.pages`, the
referee :mod:`.referee`); input rules in :mod:`.validation`. Calls no other service; every method is public (the
crawler fetches, the workload reads GetWeb and Audit).

RPCs and status codes (protos/casemesh/crawler/v1/web.proto):

- Fetch: INVALID_ARGUMENT naming ``url``, ``crawl_id`` or ``user_agent``; NOT_FOUND when the URL's host is not one of
  the web's (a DNS failure). HTTP outcomes (404, 503) are answers, not errors. A slow host answers after its delay.
- GetWeb: none.
- Audit: INVALID_ARGUMENT naming ``crawl_id``; NOT_FOUND when no remembered fetch named the crawl.

The web is built at start from the settings (:class:`.settings.WebSettings`; about a quarter of a second for the
default 10,000 pages, most of it loading the vocabulary), pages are rendered on demand. Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import grpc
from casemesh.crawler.v1 import web_pb2, web_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from . import metrics, validation
from .fetching import Fetcher
from .generator import SyntheticWeb
from .referee import Referee
from .settings import WebSettings

NAME = "crawler-web"
FULL_NAME = web_pb2.DESCRIPTOR.services_by_name["SyntheticWebService"].full_name
#: Every method is public: the crawler fetches, the workload asks GetWeb and Audit.
PUBLIC_METHODS = frozenset({"Fetch", "GetWeb", "Audit"})


class SyntheticWebServicer(web_pb2_grpc.SyntheticWebServiceServicer):
    """Validates each request (:mod:`.validation`) and calls the :class:`.fetching.Fetcher`."""

    def __init__(self, fetcher: Fetcher) -> None:
        self._fetcher = fetcher
        web = fetcher.web
        self._web = web_pb2.GetWebResponse(
            host_count=web.settings.hosts, page_count=web.page_count, home_pages=web.home_pages(),
            disallowed_pages=web.disallowed_pages, near_copy_pages=web.plan.near_copies + web.plan.exact_copies,
            seed=web.settings.seed, min_interval_ms=web.settings.min_interval_ms)

    async def Fetch(self, request: web_pb2.FetchRequest,
                    context: grpc.aio.ServicerContext) -> web_pb2.FetchResponse:
        query = validation.fetch(request)
        response = await self._fetcher.fetch(query.url, query.crawl_id, query.user_agent)
        return web_pb2.FetchResponse(http_status=response.status, content_type=response.content_type,
                                     body=response.body)

    async def GetWeb(self, request: web_pb2.GetWebRequest,
                     context: grpc.aio.ServicerContext) -> web_pb2.GetWebResponse:
        return self._web

    async def Audit(self, request: web_pb2.AuditRequest,
                    context: grpc.aio.ServicerContext) -> web_pb2.AuditResponse:
        report = self._fetcher.referee.audit(validation.audit(request))
        return web_pb2.AuditResponse(
            fetches=report.fetches, pages_ok=report.pages_ok, duplicate_fetches=report.duplicate_fetches,
            robots_violations=report.robots_violations, politeness_violations=report.politeness_violations,
            min_host_gap_ms=report.min_host_gap_ms, near_copies_fetched=report.near_copies_fetched,
            hosts=report.hosts)


def make_fetcher(settings: WebSettings) -> Fetcher:
    """The web of ``settings`` and its referee, with the process-global gauges set."""
    web = SyntheticWeb(settings)
    referee = Referee(web.page_count, settings.hosts, web.plan.partner, settings.max_audited_crawls)
    metrics.started(web.page_count, settings.hosts, web.disallowed_pages,
                    web.plan.near_copies + web.plan.exact_copies)
    return Fetcher(web, referee)


async def build(context: RuntimeContext) -> StatelessComponent:
    return StatelessComponent(SyntheticWebServicer(make_fetcher(context.settings(NAME, WebSettings))),
                              web_pb2_grpc.add_SyntheticWebServiceServicer_to_server)


DEFINITION = ServiceDefinition(name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build,
                               settings_model=WebSettings, access=Access(public=PUBLIC_METHODS))
