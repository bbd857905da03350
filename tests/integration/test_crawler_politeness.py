"""The crawler's invariant through real processes: "the crawler never violates robots.txt or per-host politeness, and
never fetches a URL twice in one crawl", also across a SIGKILL of the crawler.

CASE-STUDY.md point 5 for the web crawler (seed 001 #28, shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler
| URL frontier, robots.txt, politeness, deduplication (MD5/Simhash), BFS"). ``crawler-web`` (30 hosts of 20 pages,
with its closed, Crawl-delay 2 s, missing, failing, slow and flaky hosts, and its referee at the real 1 request per
second per host) and ``crawler`` (its defaults: Crawl-delays honoured up to 2 s) each run as a process of their
own (casemesh.harness.mesh.Mesh). Three crawls from overlapping seeds run at once; then a fourth runs while the
crawler is SIGKILLed and restarted, and two new crawls of the same hosts start the moment it serves again, while the
hosts still remember the dead process's last requests. The referee's Audit of every crawl, read through the public
API, finds no robots.txt violation, no politeness violation (between any two requests to a host, by any crawl or
process) and no URL fetched twice, and agrees with the crawls' own counts.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest
from casemesh.crawler.v1 import crawler_pb2, crawler_pb2_grpc, web_pb2, web_pb2_grpc
from casemesh.harness.mesh import Mesh

SERVICES = ["crawler-web", "crawler"]
SETTINGS = {
    "crawler-web": {"hosts": 30, "pages_per_host": 20},
    "crawler": {},  # the defaults: 1 s per host, Crawl-delays up to 2 s (the web's), so a new process waits 2 s first
}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RUNNING, DONE = crawler_pb2.CRAWL_STATE_RUNNING, crawler_pb2.CRAWL_STATE_DONE


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_no_robots_politeness_or_repeat_violation_across_concurrent_crawls_and_a_crawler_kill(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = [grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES]
        web, crawler = web_pb2_grpc.SyntheticWebServiceStub(channels[0]), crawler_pb2_grpc.CrawlerServiceStub(channels[1])
        latest: dict[str, crawler_pb2.Crawl] = {}

        async def start(crawl_id: str, seeds: list[str], max_pages: int) -> None:
            latest[crawl_id] = (await crawler.StartCrawl(crawler_pb2.StartCrawlRequest(
                crawl_id=crawl_id, seed_urls=seeds, max_pages=max_pages), timeout=10)).crawl

        async def poll(crawl_ids: list[str]) -> None:
            for crawl_id in crawl_ids:
                latest[crawl_id] = (await crawler.GetCrawl(crawler_pb2.GetCrawlRequest(crawl_id=crawl_id),
                                                           timeout=10)).crawl

        async def until(crawl_ids: list[str], check, what: str) -> None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 60
            while True:
                await poll(crawl_ids)
                if all(check(latest[crawl_id]) for crawl_id in crawl_ids):
                    return
                assert loop.time() < deadline, f"timed out waiting for {what}: {[latest[c] for c in crawl_ids]}"
                await asyncio.sleep(0.2)

        try:
            home = list((await web.GetWeb(web_pb2.GetWebRequest(), timeout=10)).home_pages)
            first = {"a": home[0:10], "b": home[5:15], "c": home[10:20]}
            await asyncio.gather(*(start(crawl_id, seeds, 40) for crawl_id, seeds in first.items()))
            await until(list(first), lambda crawl: crawl.state == DONE, "three concurrent crawls")
            for crawl_id in first:
                assert latest[crawl_id].pages_fetched == 40, latest[crawl_id]

            await start("doomed", home[0:15], 1_000)
            await until(["doomed"], lambda crawl: crawl.pages_fetched >= 15, "the crawl to be killed to be under way")
            assert mesh.kill("crawler", signal.SIGKILL) == -signal.SIGKILL
            await mesh.start_services(["crawler"])
            after = {"d": home[0:15], "e": home[5:20]}  # the hosts the dead process was fetching, at once
            await asyncio.gather(*(start(crawl_id, seeds, 20) for crawl_id, seeds in after.items()))
            with pytest.raises(grpc.aio.AioRpcError) as forgotten:
                await crawler.GetCrawl(crawler_pb2.GetCrawlRequest(crawl_id="doomed"), timeout=10)
            assert forgotten.value.code() == grpc.StatusCode.NOT_FOUND  # crawls live in memory
            await until(list(after), lambda crawl: crawl.state == DONE, "two crawls after the restart")

            for crawl_id in [*first, "doomed", *after]:
                audit = await web.Audit(web_pb2.AuditRequest(crawl_id=crawl_id), timeout=10)
                assert (audit.robots_violations, audit.politeness_violations, audit.duplicate_fetches) == (0, 0, 0), (
                    crawl_id, audit)
                assert audit.min_host_gap_ms >= 1_000, (crawl_id, audit)
                if crawl_id != "doomed":
                    assert audit.pages_ok == latest[crawl_id].pages_fetched, (crawl_id, audit, latest[crawl_id])
        finally:
            for channel in channels:
                await channel.close()
