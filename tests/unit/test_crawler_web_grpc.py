"""The synthetic web through real gRPC, served by the runtime (DEFINITION and its settings) and called anonymously as
any crawler would: every status code of protos/casemesh/crawler/v1/web.proto (INVALID_ARGUMENT naming the field,
NOT_FOUND for an unknown host and an unknown crawl), GetWeb, robots.txt, pages, 404s, and the Audit of a crawl; a slow
host's delay does not hold up the other fetches.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.crawler.v1 import web_pb2, web_pb2_grpc
from casemesh.services.crawler import contract
from casemesh.services.crawler.web.service import DEFINITION, NAME

from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
SETTINGS = {"hosts": 20, "pages_per_host": 20, "slow_host_share": 0.1, "slow_delay_ms": 3_000,
            "min_interval_ms": 500}


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "crawler-web" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.crawler.v1.SyntheticWebService",)
    assert DEFINITION.access.public == {"Fetch", "GetWeb", "Audit"} and not DEFINITION.access.internal


async def test_the_web_through_the_runtime():
    topology = loopback_topology([NAME], settings={NAME: SETTINGS})
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        web = web_pb2_grpc.SyntheticWebServiceStub(running.anonymous_channel(NAME))
        shape = await web.GetWeb(web_pb2.GetWebRequest(), timeout=WAIT_S)
        assert (shape.host_count, shape.page_count, shape.seed, shape.min_interval_ms) == (20, 400, 42, 500)
        assert list(shape.home_pages) == [f"http://{contract.host_name(h)}/" for h in range(20)]
        assert shape.near_copy_pages == 52 and 0 < shape.disallowed_pages < 400
        assert REGISTRY.get_sample_value("casemesh_crawler_web_pages") == 400

        def fetch(url: str, crawl_id: str = "crawl-1", user_agent: str = contract.USER_AGENT):
            return web.Fetch(web_pb2.FetchRequest(url=url, crawl_id=crawl_id, user_agent=user_agent), timeout=WAIT_S)

        home = await fetch(shape.home_pages[0])
        assert (home.http_status, home.content_type) == (200, "text/html; charset=utf-8")
        assert home.body.startswith(b"<!DOCTYPE html>") and b"<title>" in home.body and b'<a href="' in home.body
        statuses = {(await fetch(f"http://host001.web.test{path}")).http_status
                    for path in ("/robots.txt", "/nowhere")}
        assert 404 in statuses
        anonymous = await fetch("http://host002.web.test/p/999", crawl_id="")
        assert (anonymous.http_status, anonymous.content_type, anonymous.body) == (404, "", b"")
        again = await fetch(shape.home_pages[0])
        assert again.body == home.body

        report = await web.Audit(web_pb2.AuditRequest(crawl_id="crawl-1"), timeout=WAIT_S)
        assert (report.fetches, report.pages_ok, report.duplicate_fetches, report.hosts) == (4, 1, 1, 2)
        assert report.politeness_violations >= 1 and report.min_host_gap_ms >= 0

        for request, field in ((web_pb2.FetchRequest(user_agent="b"), "url"),
                               (web_pb2.FetchRequest(url="https://host001.web.test/", user_agent="b"), "url"),
                               (web_pb2.FetchRequest(url="http://HOST001.web.test/", user_agent="b"), "url"),
                               (web_pb2.FetchRequest(url="http://host001.web.test/" + "a" * 2_048, user_agent="b"),
                                "url"),
                               (web_pb2.FetchRequest(url="http://host001.web.test/", crawl_id="no spaces",
                                                     user_agent="b"), "crawl_id"),
                               (web_pb2.FetchRequest(url="http://host001.web.test/", crawl_id="x" * 65,
                                                     user_agent="b"), "crawl_id"),
                               (web_pb2.FetchRequest(url="http://host001.web.test/"), "user_agent"),
                               (web_pb2.FetchRequest(url="http://host001.web.test/", user_agent="b" * 65),
                                "user_agent")):
            code, details = await _code(web.Fetch(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:"), details
        for crawl_id in ("", "bad/id", "x" * 65):
            code, details = await _code(web.Audit(web_pb2.AuditRequest(crawl_id=crawl_id), timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("crawl_id:"), details
        code, _ = await _code(fetch("http://host020.web.test/"))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await _code(fetch("http://example.test/robots.txt", crawl_id="dns-only"))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await _code(web.Audit(web_pb2.AuditRequest(crawl_id="dns-only"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_slow_host_does_not_hold_up_the_others():
    topology = loopback_topology([NAME], settings={NAME: SETTINGS})
    running, stop, task = await start_mesh([DEFINITION], topology)
    try:
        web = web_pb2_grpc.SyntheticWebServiceStub(running.anonymous_channel(NAME))
        statuses = []
        for host in range(20):  # which hosts are slow is the web's secret: fetch them all at once
            statuses.append(asyncio.ensure_future(web.Fetch(web_pb2.FetchRequest(
                url=f"http://{contract.host_name(host)}/robots.txt", crawl_id="c", user_agent="b"), timeout=WAIT_S)))
        _, pending = await asyncio.wait(statuses, return_when=asyncio.FIRST_COMPLETED)
        assert pending  # the two slow hosts answer 3 s late
        answers = await asyncio.gather(*statuses)
        assert {a.http_status for a in answers} <= {200, 404, 503}
        assert REGISTRY.get_sample_value("casemesh_crawler_web_delayed_fetches_total") >= 2
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
