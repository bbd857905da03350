"""The search engine through real gRPC while its processes are SIGKILLed mid-run and restarted: no acknowledged page is
lost, and the shards rebuilt from the document store answer exactly as before.

CASE-STUDY.md point 5 for the search engine (seed 000 "Search Engine (like Google)",
shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document Store", "Indexer", "Index Server: Sharded index";
protos/casemesh/search/v1/indexer.proto: the store is "fsynced before the answer, so an index server rebuilds from
it"). Sixteen crawlers (clients) index pages concurrently through the public IndexPage, re-index some of them with a
new title, and retry every UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED with the same page:

1. ``search-indexer`` is SIGKILLed once 150 pages were acknowledged and restarted; when every crawler is done, every
   page holds the last version its crawler had acknowledged (GetPage), the indexer counts exactly the URLs
   acknowledged, and the shards (GetShardInfo) hold that many pages (a page whose shard missed it was retried);
2. after a PageRank pass (ComputePageRank), a set of queries is run through ``search-query`` (SearchService); then
   ``search-shards`` is SIGKILLed and restarted: once its shards are rebuilt (ScanShard from the indexer's store,
   ranks included) their page counts sum to the indexer's again, and the same queries return the same hits (URLs,
   order, BM25, PageRank, score) and the same match counts.
"""

from __future__ import annotations

import asyncio
import random
import signal

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.search.v1 import (indexer_pb2, indexer_pb2_grpc, query_pb2, query_pb2_grpc, search_pb2, shard_pb2,
                                shard_pb2_grpc)

from .waiting import eventually

INDEXER, SHARDS, QUERY, AUTOCOMPLETE = "search-indexer", "search-shards", "search-query", "search-autocomplete"
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
CRAWLERS, PAGES_EACH = 16, 30
WORDS = ("search", "engine", "index", "shard", "crawler", "page", "rank", "query", "term", "phrase", "document", "store",
         "graph", "link", "vector", "score", "distributed", "systems", "network", "latency", "cache", "replica",
         "leader", "follower", "queue", "stream", "batch")
QUERIES = ["search", "index shard", "distributed systems", "rank", "\"page rank\"", "latency cache", "graph link",
           "crawler", "query term phrase"]


def _url(crawler: int, n: int) -> str:
    return f"http://host{crawler:03d}.web.test/page/{n}"


def _page(crawler: int, n: int, version: int, rng: random.Random) -> search_pb2.WebPage:
    links = [_url(rng.randrange(CRAWLERS), rng.randrange(PAGES_EACH + 10)) for _ in range(rng.randint(0, 8))]
    return search_pb2.WebPage(url=_url(crawler, n), title=f"{' '.join(rng.choices(WORDS, k=3))} v{version}",
                              body=" ".join(rng.choices(WORDS, k=rng.randint(20, 120))), outlinks=links)


async def _retried(call, request, rng: random.Random, retried: list[grpc.StatusCode], timeout_s: float = 5):
    for attempt in range(300):
        try:
            return await call(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            retried.append(error.code())
            await asyncio.sleep(rng.uniform(0, min(0.5, 0.01 * 2 ** min(attempt, 6))))
    raise AssertionError(f"no final answer for {request}")


def _hits(response: query_pb2.SearchResponse) -> list[tuple]:
    return [(h.url, h.title, round(h.bm25, 9), round(h.pagerank, 12), round(h.score, 9)) for h in response.hits]


async def _search_all(search: query_pb2_grpc.SearchServiceStub) -> dict[str, tuple[int, list[tuple]]]:
    """Every query of QUERIES answered by every shard: query -> (total_matches, hits)."""
    results = {}
    for query in QUERIES:
        for _ in range(100):
            try:
                response = await search.Search(query_pb2.SearchRequest(query=query, page_size=20), timeout=10)
            except grpc.aio.AioRpcError as error:
                assert error.code() in RETRYABLE, error
            else:
                if not response.partial and response.shards_answered == response.shards_total:
                    results[query] = (response.total_matches, _hits(response))
                    break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError(f"{query!r} never had an answer of every shard")
    return results


async def _shard_pages(shards: shard_pb2_grpc.IndexShardServiceStub) -> tuple[int, bool]:
    info = await shards.GetShardInfo(shard_pb2.GetShardInfoRequest(), timeout=5)
    return sum(s.doc_count for s in info.shards), any(s.rebuilding for s in info.shards)


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_no_acknowledged_page_is_lost_and_rebuilt_shards_answer_the_same(tmp_path):
    settings = {INDEXER: {"pagerank_interval_s": 0.5}, SHARDS: {"shards": 4},
                QUERY: {"shard_deadline_ms": 5_000}}
    async with Mesh([SHARDS, INDEXER, AUTOCOMPLETE, QUERY], tmp_path, restart=None, settings=settings) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in (INDEXER, SHARDS, QUERY)}
        indexer = indexer_pb2_grpc.IndexerServiceStub(channels[INDEXER])
        shards = shard_pb2_grpc.IndexShardServiceStub(channels[SHARDS])
        search = query_pb2_grpc.SearchServiceStub(channels[QUERY])
        acknowledged: dict[str, search_pb2.WebPage] = {}
        retried: list[grpc.StatusCode] = []
        try:
            async def crawler(number: int) -> None:
                rng = random.Random(number)
                for step in range(PAGES_EACH):
                    n = step if step < 2 or rng.random() < 0.8 else rng.randrange(step)  # some pages again
                    page = _page(number, n, step, rng)
                    answer = await _retried(indexer.IndexPage, indexer_pb2.IndexPageRequest(page=page), rng, retried)
                    # (a new URL may answer created=false: its first try was stored, and its answer lost in the kill)
                    assert not (answer.created and page.url in acknowledged), answer
                    acknowledged[page.url] = page
                    await asyncio.sleep(rng.uniform(0, 0.02))

            crawlers = [asyncio.create_task(crawler(number)) for number in range(CRAWLERS)]
            await eventually(lambda: len(acknowledged) >= 150, "150 pages acknowledged before the kill", 60)
            assert mesh.kill(INDEXER, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.2)
            await mesh.start_services([INDEXER])
            await asyncio.wait_for(asyncio.gather(*crawlers), 120)
            assert retried, "no call was refused while the indexer was down"

            for url, page in acknowledged.items():
                stored = await indexer.GetPage(indexer_pb2.GetPageRequest(url=url), timeout=10)
                expected = search_pb2.WebPage(url=page.url, title=page.title, body=page.body,
                                              outlinks=list(dict.fromkeys(u for u in page.outlinks if u != url)))
                assert stored.page == expected, url
            stats = await indexer.GetIndexStats(indexer_pb2.GetIndexStatsRequest(), timeout=10)
            assert (stats.page_count, stats.shard_count) == (len(acknowledged), 4)
            assert await _shard_pages(shards) == (len(acknowledged), False)

            await _retried(indexer.ComputePageRank, indexer_pb2.ComputePageRankRequest(), random.Random(0), retried,
                           timeout_s=30)
            before = await _search_all(search)
            assert sum(matches for matches, _ in before.values()) > 0
            assert any(hit[3] > 0 for _, hits in before.values() for hit in hits)  # ranked pages

            assert mesh.kill(SHARDS, signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.2)
            await mesh.start_services([SHARDS])
            for _ in range(600):
                try:
                    if await _shard_pages(shards) == (len(acknowledged), False):
                        break
                except grpc.aio.AioRpcError as error:
                    assert error.code() in RETRYABLE, error
                await asyncio.sleep(0.1)
            else:
                pytest.fail("the shards were not rebuilt with every page within 60 s")
            after = await _search_all(search)
            assert after == before
        finally:
            for task in locals().get("crawlers", []):
                task.cancel()
            for channel in channels.values():
                await channel.close()
