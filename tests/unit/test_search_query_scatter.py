"""search-query's two-phase scatter-gather, merge and paging (:class:`Searcher` over :class:`ShardScatter`) against a
fake IndexShardService served on loopback: statistics summed over the shards that answered, results identical
whatever the number of shards, a shard that sleeps past its deadline or fails in either phase left out (partial, the
others' pages present), no shard → UNAVAILABLE, ``shard_deadline_ms`` 0 waiting up to the request's own deadline, a
changed shard count asked again, page tokens, and the query log fed by first pages only.

:class:`FakeShards` (imported by test_search_query_grpc.py) scores with BM25 from the statistics it is sent, as the
real shards do (protos/casemesh/search/v1/shard.proto), so the sums matter.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.search.v1 import query_pb2, search_pb2, shard_pb2, shard_pb2_grpc
from casemesh.services.runtime import deadlines, page_tokens
from casemesh.services.runtime.errors import InvalidArgument, Unavailable
from casemesh.services.search.analysis import analyze
from casemesh.services.search.contract import shard_of
from casemesh.services.search.query.parser import parse_query
from casemesh.services.search.query.query_log import QueryLog
from casemesh.services.search.query.scatter import ShardScatter
from casemesh.services.search.query.searcher import Searcher

K1, B = 1.2, 0.75


@dataclass
class FakePage:
    url: str
    text: str
    pagerank: float = 0.0
    terms: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.terms = analyze(self.text)


def _holds_phrase(terms: list[str], phrase: list[str]) -> bool:
    n = len(phrase)
    return any(terms[i:i + n] == phrase for i in range(len(terms) - n + 1))


def _hit(page: FakePage, query: search_pb2.ParsedQuery, stats: search_pb2.CollectionStatistics,
         weight: float) -> search_pb2.SearchHit:
    average = stats.total_terms / stats.doc_count
    bm25 = 0.0
    for term, term_stats in zip(query.terms, stats.terms, strict=True):
        tf = page.terms.count(term)
        idf = math.log(1 + (stats.doc_count - term_stats.doc_freq + 0.5) / (term_stats.doc_freq + 0.5))
        bm25 += idf * tf * (K1 + 1) / (tf + K1 * (1 - B + B * len(page.terms) / average))
    score = bm25 * (1 + weight * math.log(1 + stats.doc_count * page.pagerank))
    return search_pb2.SearchHit(url=page.url, title=page.url, snippet=page.text[:200], bm25=bm25,
                                pagerank=page.pagerank, score=score)


class FakeShards(shard_pb2_grpc.IndexShardServiceServicer):
    """IndexShardService over ``pages`` split in ``shard_count`` shards by ``shard_of``; ``delays[(phase, shard)]``
    (seconds) and ``failures[(phase, shard)]`` (a status code) per phase ``"statistics"``/``"search"``; every shard
    request is appended to ``calls`` as (phase, shard, request)."""

    def __init__(self, pages: list[FakePage], shard_count: int) -> None:
        self.pages = pages
        self.delays: dict[tuple[str, int], float] = {}
        self.failures: dict[tuple[str, int], grpc.StatusCode] = {}
        self.calls: list[tuple[str, int, object]] = []
        self.info_calls = 0
        self.info_failure: grpc.StatusCode | None = None
        self.reshard(shard_count)

    def reshard(self, shard_count: int) -> None:
        self.shard_count = shard_count
        self.shards: list[list[FakePage]] = [[] for _ in range(shard_count)]
        for page in self.pages:
            self.shards[shard_of(page.url, shard_count)].append(page)

    async def _enter(self, phase: str, request, context: grpc.aio.ServicerContext) -> list[FakePage]:
        self.calls.append((phase, request.shard, request))
        if request.shard_count != self.shard_count:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                                f"shard_count: {request.shard_count} is not this process's {self.shard_count}")
        await asyncio.sleep(self.delays.get((phase, request.shard), 0))
        failure = self.failures.get((phase, request.shard))
        if failure is not None:
            await context.abort(failure, f"shard {request.shard} fails on purpose")
        return self.shards[request.shard]

    async def GetShardInfo(self, request, context):
        self.info_calls += 1
        if self.info_failure is not None:
            await context.abort(self.info_failure, "GetShardInfo fails on purpose")
        return shard_pb2.GetShardInfoResponse(shard_count=self.shard_count, shards=[
            shard_pb2.ShardInfo(shard=s, doc_count=len(pages)) for s, pages in enumerate(self.shards)])

    async def GetTermStatistics(self, request, context):
        pages = await self._enter("statistics", request, context)
        return shard_pb2.GetTermStatisticsResponse(statistics=search_pb2.CollectionStatistics(
            doc_count=len(pages), total_terms=sum(len(p.terms) for p in pages),
            terms=[search_pb2.TermStatistics(term=t, doc_freq=sum(t in p.terms for p in pages))
                   for t in request.terms]))

    async def SearchShard(self, request, context):
        pages = await self._enter("search", request, context)
        matching = [p for p in pages if all(t in p.terms for t in request.query.terms)
                    and all(_holds_phrase(p.terms, list(ph.terms)) for ph in request.query.phrases)]
        hits = sorted((_hit(p, request.query, request.statistics, request.pagerank_weight) for p in matching),
                      key=lambda h: (-h.score, h.url))
        return shard_pb2.SearchShardResponse(hits=hits[:request.top_k], matched=len(matching))


WORDS = ["search", "engine", "index", "shard", "rank", "page", "query", "web", "crawl", "link"]


def corpus(n: int = 60) -> list[FakePage]:
    """``n`` pages of a few of WORDS each (deterministic), some more linked (PageRank) than others."""
    pages = []
    for i in range(n):
        words = [WORDS[(i * 7 + j * 3) % len(WORDS)] for j in range(3 + i % 5)] + ["common"]
        pages.append(FakePage(f"https://host{i % 7}.test/p{i}", " ".join(words), pagerank=(1 + i % 4) / (4 * n)))
    return pages


@dataclass
class Served:
    fake: FakeShards
    stub: shard_pb2_grpc.IndexShardServiceStub

    def scatter(self, shard_deadline_ms: int = 0, pagerank_weight: float = 1.0) -> ShardScatter:
        """A scatter to the fake; no per-shard deadline unless one is given (a loaded machine is slow, not stuck)."""
        return ShardScatter(self.stub, shard_deadline_ms, pagerank_weight)


async def serve_fake(fake: FakeShards) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    shard_pb2_grpc.add_IndexShardServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def served(request) -> AsyncIterator[Served]:
    fake = FakeShards(corpus(), getattr(request, "param", 4))
    server, address = await serve_fake(fake)
    channel = grpc.aio.insecure_channel(address)
    try:
        yield Served(fake, shard_pb2_grpc.IndexShardServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)


def _calls(phase: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("casemesh_search_query_shard_calls_total",
                                     {"phase": phase, "outcome": outcome}) or 0.0


def _key(hits) -> list[tuple[str, float, float, float]]:
    return [(h.url, h.score, h.bm25, h.pagerank) for h in hits]


def _expected(pages: list[FakePage], text: str, weight: float = 1.0) -> list[search_pb2.SearchHit]:
    """The global answer, scored from the whole collection's statistics (one shard holding everything)."""
    parsed = parse_query(text).message()
    stats = search_pb2.CollectionStatistics(
        doc_count=len(pages), total_terms=sum(len(p.terms) for p in pages),
        terms=[search_pb2.TermStatistics(term=t, doc_freq=sum(t in p.terms for p in pages)) for t in parsed.terms])
    matching = [p for p in pages if all(t in p.terms for t in parsed.terms)
                and all(_holds_phrase(p.terms, list(ph.terms)) for ph in parsed.phrases)]
    return sorted((_hit(p, parsed, stats, weight) for p in matching), key=lambda h: (-h.score, h.url))


async def _all_pages(searcher: Searcher, text: str, page_size: int = 7) -> list[search_pb2.SearchHit]:
    hits, token = [], ""
    while True:
        answer = await searcher.search(query_pb2.SearchRequest(query=text, page_size=page_size, page_token=token))
        hits.extend(answer.hits)
        token = answer.next_page_token
        if not token:
            return hits


@pytest.mark.parametrize("served", [1, 3], indirect=True)
@pytest.mark.parametrize("text", ["common", "search engine", '"web crawl"', "rank common", "nothingmatches"])
async def test_results_are_the_collections_whatever_the_number_of_shards(served, text):
    searcher = Searcher(served.scatter())
    answer = await searcher.search(query_pb2.SearchRequest(query=text, page_size=50))
    expected = _expected(served.fake.pages, text)
    assert _key(answer.hits) == _key(expected[:50])
    assert answer.total_matches == len(expected)
    assert (answer.shards_total, answer.shards_answered, answer.partial) == (served.fake.shard_count,) * 2 + (False,)
    assert answer.parsed_query == parse_query(text).message()
    assert _key(await _all_pages(searcher, text)) == _key(expected)  # paging walks the same order
    stats = [r.statistics for phase, _, r in served.fake.calls if phase == "search"]
    assert stats and all(s.doc_count == len(served.fake.pages) for s in stats)  # summed over every shard


async def test_the_pagerank_weight_goes_to_every_shard(served):
    answer = await Searcher(served.scatter(pagerank_weight=0)).search(query_pb2.SearchRequest(query="common"))
    assert _key(answer.hits) == _key(_expected(served.fake.pages, "common", weight=0)[:10])
    assert all(h.score == h.bm25 for h in answer.hits)
    assert {r.pagerank_weight for phase, _, r in served.fake.calls if phase == "search"} == {0}


async def test_a_shard_past_its_deadline_in_the_search_phase_is_left_out(served):
    served.fake.delays[("search", 2)] = 30.0
    before = _calls("search", "deadline")
    answer = await Searcher(served.scatter(shard_deadline_ms=1_000)).search(
        query_pb2.SearchRequest(query="common", page_size=50))
    others = [p for p in served.fake.pages if shard_of(p.url, 4) != 2]
    assert (answer.partial, answer.shards_total, answer.shards_answered) == (True, 4, 3)
    # The others' pages, scored with the statistics of all four shards (all answered phase 1).
    everything = {h.url: h for h in _expected(served.fake.pages, "common")}
    assert _key(answer.hits) == _key(sorted((everything[p.url] for p in others), key=lambda h: (-h.score, h.url)))
    assert answer.total_matches == len(others)
    assert _calls("search", "deadline") == before + 1


async def test_a_shard_past_its_deadline_in_the_statistics_phase_is_not_asked_to_search(served):
    served.fake.delays[("statistics", 1)] = 30.0
    before = _calls("statistics", "deadline")
    answer = await Searcher(served.scatter(shard_deadline_ms=1_000)).search(query_pb2.SearchRequest(query="common"))
    assert (answer.partial, answer.shards_answered) == (True, 3)
    searched = [(shard, r) for phase, shard, r in served.fake.calls if phase == "search"]
    assert sorted(shard for shard, _ in searched) == [0, 2, 3]
    answered = [p for p in served.fake.pages if shard_of(p.url, 4) != 1]
    assert {r.statistics.doc_count for _, r in searched} == {len(answered)}  # summed over the shards that answered
    assert _calls("statistics", "deadline") == before + 1


@pytest.mark.parametrize("phase", ["statistics", "search"])
async def test_a_failing_shard_is_left_out(served, phase):
    served.fake.failures[(phase, 0)] = grpc.StatusCode.INTERNAL
    before = _calls(phase, "error")
    answer = await Searcher(served.scatter()).search(query_pb2.SearchRequest(query="common", page_size=50))
    assert (answer.partial, answer.shards_answered) == (True, 3)
    assert not {h.url for h in answer.hits} & {p.url for p in served.fake.shards[0]}
    assert len(answer.hits) == sum(len(pages) for pages in served.fake.shards[1:])
    assert _calls(phase, "error") == before + 1


@pytest.mark.parametrize("phase", ["statistics", "search"])
async def test_no_shard_answering_is_unavailable(served, phase):
    for shard in range(4):
        served.fake.delays[(phase, shard)] = 2.0
    with pytest.raises(Unavailable, match="no index shard answered in time"):
        await Searcher(served.scatter(shard_deadline_ms=50)).search(query_pb2.SearchRequest(query="common"))


async def test_without_a_shard_deadline_the_slow_shard_is_waited_for(served):
    served.fake.delays[("search", 3)] = 0.4
    answer = await Searcher(served.scatter(shard_deadline_ms=0)).search(query_pb2.SearchRequest(query="common"))
    assert (answer.partial, answer.shards_answered) == (False, 4)


async def test_the_requests_own_deadline_caps_every_shard_call(served):
    served.fake.delays[("search", 3)] = 30.0
    token = deadlines.INBOUND_DEADLINE.set(time.monotonic() + 1.0)
    try:
        answer = await Searcher(served.scatter(shard_deadline_ms=0)).search(query_pb2.SearchRequest(query="common"))
    finally:
        deadlines.INBOUND_DEADLINE.reset(token)
    assert (answer.partial, answer.shards_answered) == (True, 3)


async def test_a_changed_shard_count_is_asked_again(served):
    searcher = Searcher(served.scatter())
    assert (await searcher.search(query_pb2.SearchRequest(query="common"))).shards_total == 4
    assert served.fake.info_calls == 1
    await searcher.search(query_pb2.SearchRequest(query="search"))
    assert served.fake.info_calls == 1  # cached
    served.fake.reshard(5)  # the shards process restarted with shards=5
    answer = await searcher.search(query_pb2.SearchRequest(query="common", page_size=50))
    assert (answer.shards_total, answer.shards_answered, answer.partial) == (5, 5, False)
    assert served.fake.info_calls == 2
    assert _key(answer.hits) == _key(_expected(served.fake.pages, "common")[:50])


async def test_shards_that_do_not_answer_shard_info_are_unavailable(served):
    served.fake.info_failure = grpc.StatusCode.UNAVAILABLE
    with pytest.raises(Unavailable, match="GetShardInfo"):
        await Searcher(served.scatter()).search(query_pb2.SearchRequest(query="common"))


async def test_page_tokens(served):
    searcher = Searcher(served.scatter())
    first = await searcher.search(query_pb2.SearchRequest(query="Common", page_size=0))
    assert len(first.hits) == 10 and first.next_page_token  # page_size 0: 10
    second = await searcher.search(query_pb2.SearchRequest(query="  COMMON ", page_token=first.next_page_token))
    expected = _expected(served.fake.pages, "common")
    assert _key(second.hits) == _key(expected[10:20])  # the same normalised query: its token
    last = await searcher.search(query_pb2.SearchRequest(query="common", page_size=50, page_token=page_tokens.encode(
        "search", "common", {"o": 40})))
    assert _key(last.hits) == _key(expected[40:]) and not last.next_page_token
    for request in (query_pb2.SearchRequest(query="search", page_token=first.next_page_token),  # another query's
                    query_pb2.SearchRequest(query="common", page_token="not-a-token"),
                    query_pb2.SearchRequest(query="common", page_token=page_tokens.encode("search", "common",
                                                                                          {"o": 1000}))):
        with pytest.raises(InvalidArgument) as error:
            await searcher.search(request)
        assert error.value.field == "page_token"
    for size in (-1, 51):
        with pytest.raises(InvalidArgument) as error:
            await searcher.search(query_pb2.SearchRequest(query="common", page_size=size))
        assert error.value.field == "page_size"


async def test_results_stop_at_the_thousandth():
    pages = [FakePage(f"https://deep.test/{i:04d}", "same words here") for i in range(1_100)]
    fake = FakeShards(pages, 4)
    server, address = await serve_fake(fake)
    channel = grpc.aio.insecure_channel(address)
    try:
        searcher = Searcher(ShardScatter(shard_pb2_grpc.IndexShardServiceStub(channel), 0, 1.0))
        token = page_tokens.encode("search", "same", {"o": 980})
        answer = await searcher.search(query_pb2.SearchRequest(query="same", page_size=50, page_token=token))
        assert [h.url for h in answer.hits] == [f"https://deep.test/{i:04d}" for i in range(980, 1_000)]
        assert answer.total_matches == 1_100 and not answer.next_page_token
        assert {r.top_k for phase, _, r in fake.calls if phase == "search"} == {1_000}
    finally:
        await channel.close()
        await server.stop(None)


async def test_first_pages_feed_the_query_log(served):
    async def never(entries):
        raise AssertionError("not flushed in this test")

    query_log = QueryLog(never, flush_interval_s=60)
    searcher = Searcher(served.scatter(), query_log)
    first = await searcher.search(query_pb2.SearchRequest(query="  Search   ENGINE ", page_size=1))
    await searcher.search(query_pb2.SearchRequest(query="search engine"))
    await searcher.search(query_pb2.SearchRequest(query="search engine", page_size=1,
                                                  page_token=first.next_page_token))  # not a first page
    with pytest.raises(InvalidArgument):
        await searcher.search(query_pb2.SearchRequest(query="!!!"))
    served.fake.info_failure = grpc.StatusCode.UNAVAILABLE
    await searcher.search(query_pb2.SearchRequest(query='"web crawl"'))  # the shard count is cached
    assert query_log.counts() == {"search engine": 2, '"web crawl"': 1}
