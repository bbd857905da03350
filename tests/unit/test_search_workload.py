"""The search workload without a mesh: the synthetic web (determinism, sizes, words at their frequencies, links by
preferential attachment), the query set (phrases of consecutive words, words of the page, Zipf popularity, typing),
the checks of every answer, seeding through a fake engine, the journeys against it (complete, partial and wrong
pages, the next page, typing until suggested, breaking news found or not) and the end-of-run check (a clean index, a
page on no shard, a lost page, a failed read)."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from collections import Counter
from typing import Any

import grpc
import pytest

from casemesh.harness.workloads.search import connect, disconnect
from casemesh.harness.workloads.search.corpus import (
    MIN_BODY_WORDS,
    TITLE_SKIP,
    CorpusParams,
    Page,
    body_text,
    generate,
    in_degrees,
    link,
    vocabulary,
)
from casemesh.harness.workloads.search.end_checks import INDEX_CONSISTENT, count_problems
from casemesh.harness.workloads.search.journeys import (
    INDEX_FRESHNESS,
    NOT_SUGGESTED,
    SEARCH_COMPLETE,
    SEARCH_CORRECT,
    SUGGEST_FOUND,
    AutocompleteParams,
    FreshnessParams,
    SearchParams,
    autocomplete,
    breaking_news,
    search,
)
from casemesh.harness.workloads.search.live import Searchers
from casemesh.harness.workloads.search.queries import Query, draw_rank, prefixes, query_set, zipf_cdf
from casemesh.harness.workloads.search.results import (
    MISSED,
    OK,
    PARTIAL,
    WRONG,
    complete_code,
    correct_code,
    page_problems,
    suggested,
    suggestion_problems,
)
from casemesh.harness.workloads.search.seeding import SeedParams, State, plan, seed
from casemesh.search.v1 import indexer_pb2, query_pb2, search_pb2, shard_pb2
from casemesh.services.search.contract import MAX_RESULTS, is_page_url, normalize_query, shard_of

SHARDS = 4
TERM = re.compile(r"[a-z0-9]+")


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def terms_of(text: str) -> list[str]:
    """The contract's analysis for ASCII text: runs of letters and digits, lower-cased."""
    return TERM.findall(text.lower())


# the fake engine ------------------------------------------------------------------------------------------------------

class FakeEngine:
    """IndexerService, IndexShardService's GetShardInfo, SearchService and AutocompleteService in memory, as the protos
    say: pages by URL on shard crc32 mod 4; a page matches when it holds every term and every quoted phrase, scored by
    its count of query terms, best first, ties by URL; pages of 10 with offset tokens; first pages logged, and
    suggestions the logged queries by count. Knobs: ``fail`` holds codes raised by the next calls of a method;
    ``slow_shard`` leaves shard 3 out of every result (partial); ``reverse`` answers hits in the wrong order;
    ``hidden`` URLs are stored but never hits; ``lost`` URLs are stored but on no shard."""

    def __init__(self) -> None:
        self.pages: dict[str, search_pb2.WebPage] = {}
        self.terms: dict[str, list[str]] = {}
        self.log: Counter[str] = Counter()
        self.calls: list[tuple[str, Any]] = []
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.slow_shard = False
        self.reverse = False
        self.hidden: set[str] = set()
        self.lost: set[str] = set()
        self.passes = 0

    async def handle(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        await asyncio.sleep(0)
        return getattr(self, f"_{method.lower()}")(request)

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    def _indexpage(self, request: indexer_pb2.IndexPageRequest) -> indexer_pb2.IndexPageResponse:
        page = request.page
        assert is_page_url(page.url) and len(page.outlinks) <= 500 and all(is_page_url(u) for u in page.outlinks)
        created = page.url not in self.pages
        self.pages[page.url] = page
        self.terms[page.url] = terms_of(f"{page.title} {page.body}")
        return indexer_pb2.IndexPageResponse(shard=shard_of(page.url, SHARDS), created=created,
                                             page_count=len(self.pages))

    def _getpage(self, request: indexer_pb2.GetPageRequest) -> indexer_pb2.GetPageResponse:
        if request.url not in self.pages:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "page")
        return indexer_pb2.GetPageResponse(page=self.pages[request.url], pagerank=1 / len(self.pages),
                                           shard=shard_of(request.url, SHARDS))

    def _computepagerank(self, request: Any) -> indexer_pb2.ComputePageRankResponse:
        if not self.pages:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "no_pages")
        self.passes += 1
        return indexer_pb2.ComputePageRankResponse(rank_pass=indexer_pb2.PageRankPass(
            rank_version=self.passes, nodes=len(self.pages)))

    def _getindexstats(self, request: Any) -> indexer_pb2.GetIndexStatsResponse:
        return indexer_pb2.GetIndexStatsResponse(page_count=len(self.pages), shard_count=SHARDS)

    def _getshardinfo(self, request: Any) -> shard_pb2.GetShardInfoResponse:
        counts = Counter(shard_of(url, SHARDS) for url in self.pages if url not in self.lost)
        return shard_pb2.GetShardInfoResponse(shard_count=SHARDS, shards=[
            shard_pb2.ShardInfo(shard=i, doc_count=counts[i]) for i in range(SHARDS)])

    def _search(self, request: query_pb2.SearchRequest) -> query_pb2.SearchResponse:
        phrases = [terms_of(p) for p in re.findall(r'"([^"]*)"', request.query)]
        terms = list(dict.fromkeys(terms_of(request.query)))
        parsed = search_pb2.ParsedQuery(terms=terms, phrases=[search_pb2.Phrase(terms=p) for p in phrases])

        def matches(url: str) -> bool:
            held = self.terms[url]
            return all(t in held for t in terms) and all(
                any(held[i:i + len(p)] == p for i in range(len(held))) for p in phrases)

        answered = [u for u in self.pages if u not in self.hidden
                    and not (self.slow_shard and shard_of(u, SHARDS) == SHARDS - 1)]
        found = sorted(((float(sum(self.terms[u].count(t) for t in terms)), u) for u in answered if matches(u)),
                       key=lambda hit: (-hit[0], hit[1]))
        offset = int(request.page_token.rsplit("|", 1)[1]) if request.page_token else 0
        size = request.page_size or 10
        hits = [search_pb2.SearchHit(url=u, title=self.pages[u].title, score=s, bm25=s) for s, u in
                found[offset:offset + size]]
        if self.reverse:
            hits.reverse()
        if not request.page_token:
            self.log[normalize_query(request.query).strip()] += 1
        more = offset + len(hits) < min(len(found), MAX_RESULTS)
        return query_pb2.SearchResponse(
            hits=hits, total_matches=len(found), next_page_token=f"{request.query}|{offset + size}" if more else "",
            shards_total=SHARDS, shards_answered=SHARDS - 1 if self.slow_shard else SHARDS, partial=self.slow_shard,
            parsed_query=parsed)

    def _suggest(self, request: query_pb2.SuggestRequest) -> query_pb2.SuggestResponse:
        prefix = normalize_query(request.prefix)
        found = sorted(((-n, q) for q, n in self.log.items() if q.startswith(prefix)))[:request.limit or 5]
        return query_pb2.SuggestResponse(suggestions=[query_pb2.Suggestion(query=q, count=-n) for n, q in found],
                                         index_built_at_unix_ms=1 if self.log else 0)


class FakeCaller:
    """A journey's Caller over a :class:`FakeEngine`: calls and measures recorded."""

    def __init__(self, engine: FakeEngine) -> None:
        self.engine = engine
        self.observed: list[tuple[str, float, str]] = []
        self._intended = time.perf_counter()

    @property
    def intended_at(self) -> float:
        return self._intended

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return await self.engine.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]


class FakeStreams:
    """What ``connect`` gets: share, unrecorded calls to the fake engine, observed measures."""

    def __init__(self, engine: FakeEngine, share: tuple[int, int] = (0, 1)) -> None:
        self.engine = engine
        self.share = share
        self.observed: list[tuple[str, float, str]] = []

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        return await self.engine.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


SMALL = SeedParams(pages=300, hosts=10, distinct_queries=150, check_pages=20, body_words=80)
CORPUS = CorpusParams(pages=2_000, hosts=50, vocabulary_size=20_000, title_words_min=2, title_words_max=6,
                      body_words=250, body_sigma=0.5, links_per_page=10, link_attractiveness=1.0)


async def _searchers(engine: FakeEngine, params: SeedParams = SMALL, share: tuple[int, int] = (0, 1)) -> Searchers:
    """A :class:`Searchers` over ``engine``, seeded in it and connected."""
    state = await seed(lambda _s, m, r: engine.handle(m, r), params, random.Random(5))
    searchers = await connect(FakeStreams(engine, share), state, params, random.Random(0))
    searchers.sleep = no_wait
    engine.calls.clear()
    return searchers


# the synthetic web ----------------------------------------------------------------------------------------------------

def test_the_vocabulary_is_real_english_words_most_frequent_first():
    words = vocabulary(20_000)
    assert words.words[:3] == ("the", "to", "and") and 19_000 < len(words.words) <= 20_000
    assert all(w.isascii() and w.isalpha() and w.islower() for w in words.words)
    gaps = [b - a for a, b in zip((0.0, *words.cum_weights), words.cum_weights, strict=False)]
    assert all(g > 0 for g in gaps) and gaps[0] > 100 * gaps[5_000]  # "the" is far more frequent than rank 5,000
    rank = words.rank()
    drawn = Counter(words.draw(random.Random(1), 50_000))
    assert drawn.most_common(1)[0][0] == "the" and len(drawn) > 5_000
    assert all(rank[w] >= TITLE_SKIP for w in words.draw(random.Random(2), 2_000, skip=TITLE_SKIP))


def test_the_web_is_deterministic_from_its_seed_with_the_sizes_asked():
    pages = generate(CORPUS, "0badcafe", random.Random(7))
    assert pages == generate(CORPUS, "0badcafe", random.Random(7))
    assert pages != generate(CORPUS, "0badcafe", random.Random(8))
    assert len(pages) == 2_000 and len({p.url for p in pages}) == 2_000 and all(is_page_url(p.url) for p in pages)
    assert pages[3].url.endswith(".r0badcafe.test/page3") and len({p.url.split("/")[2] for p in pages}) == 50
    lengths = [len(p.words) for p in pages]
    assert 220 < statistics.median(lengths) < 280 and min(lengths) >= MIN_BODY_WORDS and max(lengths) > 500
    assert all(2 <= len(p.title.split()) <= 6 and p.title.istitle() for p in pages)
    rank = vocabulary(20_000).rank()
    assert all(rank[w.lower()] >= TITLE_SKIP for p in pages[:100] for w in p.title.split())
    # The body's analysed terms are its words in order, so consecutive words are a phrase the page holds.
    assert all(terms_of(p.body) == list(p.words) for p in pages[:200])
    assert body_text(("one", "two")) == "One two." and body_text(tuple("abcdefgh")) == "A b c d e f. G h."


def test_links_follow_preferential_attachment_to_earlier_pages():
    pages = generate(CORPUS, "0badcafe", random.Random(7))
    index = {p.url: i for i, p in enumerate(pages)}
    for i, page in enumerate(pages):
        targets = [index[u] for u in page.outlinks]
        assert len(targets) == min(10, i) and len(set(targets)) == len(targets) and all(t < i for t in targets)
    degrees = sorted(in_degrees(pages).values(), reverse=True)
    assert sum(degrees) == sum(len(p.outlinks) for p in pages)
    mean = sum(degrees) / len(degrees)
    # A heavy tail: a few pages collect a large share of the links, most get few or none.
    assert degrees[0] > 30 * mean and sum(degrees[:20]) > 0.2 * sum(degrees) and statistics.median(degrees) <= 2
    first = link(random.Random(1), 3, 10, 1.0)
    assert first[0] == [] and first[1] == [0] and sorted(first[2]) == [0, 1]


# the query set --------------------------------------------------------------------------------------------------------

def test_queries_are_words_and_phrases_of_their_own_pages():
    pages = generate(CORPUS, "0badcafe", random.Random(7))
    by_url = {p.url: p for p in pages}
    rank = vocabulary(20_000).rank()
    queries = query_set(random.Random(3), pages, rank, 1_000, 0.1, (0.25, 0.40, 0.35), 100)
    assert len(queries) == 1_000 and len({q.text for q in queries}) == 1_000
    assert queries == query_set(random.Random(3), pages, rank, 1_000, 0.1, (0.25, 0.40, 0.35), 100)
    phrases = [q for q in queries if q.phrase]
    assert 60 < len(phrases) < 140
    for query in phrases:
        page = by_url[query.page_url]
        first, second = query.phrase
        assert query.text == f'"{first} {second}"' and terms_of(query.text) == [first, second]
        assert any(page.words[i:i + 2] == query.phrase for i in range(len(page.words) - 1))
        assert max(rank[first], rank[second]) >= 100
    words = [q for q in queries if not q.phrase]
    sizes = Counter(len(q.terms) for q in words)
    assert set(sizes) == {1, 2, 3} and sizes[2] > sizes[3] > sizes[1]
    for query in words:
        assert query.text == " ".join(query.terms) and set(query.terms) <= by_url[query.page_url].terms
        assert all(rank[t] >= 100 for t in query.terms)


def test_a_tiny_web_gives_fewer_queries_rather_than_repeats():
    page = Page("http://a.test/1", "Alpha Beta", ("alpha", "beta", "gamma"))
    rank = {"alpha": 200, "beta": 300, "gamma": 400}
    queries = query_set(random.Random(1), [page], rank, 100, 0.5, (1.0, 1.0), 100)
    assert 3 < len(queries) < 100 and len({q.text for q in queries}) == len(queries)


def test_popularity_is_zipf_and_typing_is_one_keystroke_at_a_time():
    cdf = zipf_cdf(2_000, 0.8)
    rng = random.Random(4)
    drawn = Counter(draw_rank(cdf, rng) for _ in range(60_000))
    assert drawn.most_common(1)[0][0] == 0 and 0 <= min(drawn) and max(drawn) < 2_000
    assert 10 ** 0.8 * 0.8 < drawn[0] / drawn[9] < 10 ** 0.8 * 1.25  # rank 1 over rank 10: 10**0.8
    assert Counter(draw_rank(zipf_cdf(4, 0), rng) for _ in range(4_000)).keys() == {0, 1, 2, 3}
    assert prefixes("search engine", 2, 8) == ["se", "sea", "sear", "searc", "search", "search ", "search e"]
    assert prefixes("tea", 2, 8) == ["te", "tea"] and prefixes("a", 2, 8) == ["a"]


# the checks of every answer -------------------------------------------------------------------------------------------

QUERY = Query("alpha beta", ("alpha", "beta"), (), "http://h.test/0")


def _hit(url: str, score: float) -> search_pb2.SearchHit:
    return search_pb2.SearchHit(url=url, score=score, bm25=score, pagerank=0.01)


def _response(hits: list[search_pb2.SearchHit], total: int, *, token: str = "", answered: int = 4,
              partial: bool = False, query: Query = QUERY) -> query_pb2.SearchResponse:
    parsed = search_pb2.ParsedQuery(terms=query.terms)
    if query.phrase:
        parsed.phrases.add(terms=query.phrase)
    return query_pb2.SearchResponse(hits=hits, total_matches=total, next_page_token=token, shards_total=4,
                                    shards_answered=answered, partial=partial, parsed_query=parsed)


def test_a_well_formed_page_passes_and_each_broken_rule_is_named():
    good = _response([_hit("http://a.test/1", 3.0), _hit("http://a.test/2", 2.0), _hit("http://b.test/1", 2.0)], 3)
    assert page_problems(QUERY, 10, 0, good) == [] and correct_code([], 0, good) == OK == complete_code(good)
    full = _response([_hit(f"http://a.test/{i:02d}", 1.0) for i in range(10)], 25, token="t")
    assert page_problems(QUERY, 10, 0, full) == [] and page_problems(QUERY, 10, 10, full) == []
    cases = {
        "best score first": _response([_hit("http://a.test/1", 1.0), _hit("http://a.test/2", 2.0)], 2),
        "ties by URL": _response([_hit("http://b.test/1", 1.0), _hit("http://a.test/1", 1.0)], 2),
        "twice": _response([_hit("http://a.test/1", 2.0), _hit("http://a.test/1", 1.0)], 2),
        ">= 0": _response([_hit("http://a.test/1", -1.0)], 1),
        "not a page URL": _response([_hit("ftp://a.test/1", 1.0)], 1),
        "expected": _response([_hit("http://a.test/1", 1.0)], 5),
        "next_page_token": _response([_hit("http://a.test/1", 1.0)], 1, token="t"),
        "partial": _response([_hit("http://a.test/1", 1.0)], 1, answered=3),
        "contract's analysis": _response([_hit("http://a.test/1", 1.0)], 1, query=Query("alpha", ("alpha",))),
    }
    for needle, response in cases.items():
        problems = page_problems(QUERY, 10, 0, response)
        assert any(needle in p for p in problems), (needle, problems)
        assert correct_code(problems, 0, response) == WRONG
    partial = _response([], 0, answered=3, partial=True)
    assert page_problems(QUERY, 10, 0, partial) == [] and complete_code(partial) == PARTIAL
    assert correct_code([], 0, partial) == OK and correct_code([], 0, _response([], 0)) == MISSED
    last = _response([], 10)  # a page past the last result is empty; only a first page can miss
    assert page_problems(QUERY, 10, 10, last) == [] and correct_code([], 10, last) == OK
    many = _response([_hit(f"http://a.test/{i:02d}", 1.0) for i in range(10)], 5_000)
    assert page_problems(QUERY, 10, MAX_RESULTS - 10, many) == []  # the 1,000th result ends the pages


def test_suggestions_must_extend_the_prefix_by_popularity():
    query = Query("new york", ("new", "york"))
    good = query_pb2.SuggestResponse(index_built_at_unix_ms=1, suggestions=[
        query_pb2.Suggestion(query="new york", count=9), query_pb2.Suggestion(query="new jersey", count=3),
        query_pb2.Suggestion(query="new zealand", count=3)])
    assert suggestion_problems("New ", 5, good) == [] and suggested(query, good)
    assert not suggested(Query("new yorker", ("new", "yorker")), good)
    assert suggestion_problems("new ", 2, good) == ["3 suggestions, limit 2"]
    bad = query_pb2.SuggestResponse(suggestions=[query_pb2.Suggestion(query="newt", count=1),
                                                 query_pb2.Suggestion(query="new york", count=5),
                                                 query_pb2.Suggestion(query="new york", count=0)])
    problems = " | ".join(suggestion_problems("new ", 0, bad))
    for needle in ("ever built", "twice", "does not start with 'new '", "counted 0 times", "most popular first"):
        assert needle in problems, problems


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_seed_plan_is_deterministic_and_keeps_what_the_journeys_need():
    state, pages = plan(SMALL, random.Random(42))
    again, pages_again = plan(SMALL, random.Random(42))
    assert (state, pages) == (again, pages_again) and plan(SMALL, random.Random(43))[0].run != state.run
    assert re.fullmatch(r"[0-9a-f]{8}", state.run) and len(pages) == 300 and len(state.queries) == 150
    assert len(state.sample) == 20 and set(state.sample) <= set(pages)
    degrees = in_degrees(pages)
    assert state.popular[0] == max(degrees, key=lambda u: (degrees[u], u)) and len(state.popular) == 50
    assert degrees[state.popular[0]] >= degrees[state.popular[-1]]


async def test_seed_indexes_every_page_ranks_them_once_and_retries_an_unavailable_indexer():
    engine = FakeEngine()
    engine.fail["IndexPage"] = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED]
    engine.fail["ComputePageRank"] = [grpc.StatusCode.UNAVAILABLE]
    state = await seed(lambda _s, m, r: engine.handle(m, r), SMALL, random.Random(42))
    assert isinstance(state, State) and state.indexed_pages == 300 == len(engine.pages)
    expected, _ = plan(SMALL, random.Random(42))
    assert (state.run, state.queries, state.popular, state.sample) == (expected.run, expected.queries,
                                                                       expected.popular, expected.sample)
    assert engine.count("IndexPage") == 302 and engine.count("ComputePageRank") == 2 and engine.passes == 1
    methods = [m for m, _ in engine.calls]
    assert methods.index("ComputePageRank") > max(i for i, m in enumerate(methods) if m == "IndexPage")
    stored = engine.pages[state.sample[0].url]
    assert (stored.title, stored.body, tuple(stored.outlinks)) == (state.sample[0].title, state.sample[0].body,
                                                                   state.sample[0].outlinks)
    engine.fail["IndexPage"] = [grpc.StatusCode.INVALID_ARGUMENT]
    with pytest.raises(grpc.aio.AioRpcError):
        await seed(lambda _s, m, r: engine.handle(m, r), SMALL, random.Random(42))


# the journeys ---------------------------------------------------------------------------------------------------------

async def test_searches_are_complete_and_correct_and_some_read_the_next_page():
    engine = FakeEngine()
    searchers = await _searchers(engine)
    caller = FakeCaller(engine)
    rng = random.Random(1)
    for _ in range(60):
        await search(caller, SearchParams(next_page_share=0.5, page_size=5), searchers, rng)
    searches = [r for m, r in engine.calls if m == "Search"]
    assert 60 < len(searches) < 120 and all(r.page_size == 5 for r in searches)
    assert any(r.page_token for r in searches)
    assert set(caller.codes(SEARCH_CORRECT)) == {OK} and set(caller.codes(SEARCH_COMPLETE)) == {OK}
    assert len(caller.codes(SEARCH_CORRECT)) == len(searches) == len(caller.codes(SEARCH_COMPLETE))
    popular = Counter(r.query for r in searches if not r.page_token).most_common(1)[0]
    assert popular[0] == searchers.state.queries[0].text or popular[1] > 3  # Zipf: the head is asked again


async def test_partial_wrong_and_missing_results_are_counted():
    engine = FakeEngine()
    searchers = await _searchers(engine)
    caller = FakeCaller(engine)
    engine.slow_shard = True
    for seed_ in range(20):
        await search(caller, SearchParams(next_page_share=0), searchers, random.Random(seed_))
    assert set(caller.codes(SEARCH_COMPLETE)) == {PARTIAL} and set(caller.codes(SEARCH_CORRECT)) == {OK}
    engine.slow_shard, engine.reverse = False, True
    caller = FakeCaller(engine)
    for seed_ in range(20):
        await search(caller, SearchParams(next_page_share=0), searchers, random.Random(seed_))
    assert WRONG in caller.codes(SEARCH_CORRECT)  # a page of two hits or more answered in reverse
    engine.reverse = False
    engine.hidden = set(engine.pages)
    caller = FakeCaller(engine)
    await search(caller, SearchParams(), searchers, random.Random(0))
    assert caller.codes(SEARCH_CORRECT) == [MISSED]
    engine.fail["Search"] = [grpc.StatusCode.UNAVAILABLE]
    with pytest.raises(grpc.aio.AioRpcError):
        await search(caller, SearchParams(), searchers, random.Random(0))


async def test_typing_stops_once_the_query_is_suggested():
    engine = FakeEngine()
    searchers = await _searchers(engine)
    params = AutocompleteParams(zipf_exponent=5.0)  # the most popular query, nearly always
    caller = FakeCaller(engine)
    await autocomplete(caller, params, searchers, random.Random(1))
    typed = [r.prefix for m, r in engine.calls if m == "Suggest"]
    query = searchers.state.queries[0].text
    assert typed == prefixes(query, 2, 8) and caller.codes(SUGGEST_FOUND) == [NOT_SUGGESTED]  # nothing logged yet
    await search(FakeCaller(engine), SearchParams(zipf_exponent=5.0), searchers, random.Random(1))
    engine.calls.clear()
    caller = FakeCaller(engine)
    await autocomplete(caller, params, searchers, random.Random(1))
    assert [r.prefix for m, r in engine.calls if m == "Suggest"] == [query[:2]]
    assert all(r.limit == 5 for m, r in engine.calls if m == "Suggest") and caller.codes(SUGGEST_FOUND) == [OK]
    caller = FakeCaller(engine)
    await autocomplete(caller, params.model_copy(update={"stop_when_suggested": False}), searchers, random.Random(1))
    assert caller.codes(SUGGEST_FOUND) == [OK] and engine.count("Suggest") == 1 + len(prefixes(query, 2, 8))
    engine._suggest = lambda r: query_pb2.SuggestResponse(suggestions=[query_pb2.Suggestion(query="x", count=1)],
                                                          index_built_at_unix_ms=1)
    caller = FakeCaller(engine)
    await autocomplete(caller, params, searchers, random.Random(1))
    assert caller.codes(SUGGEST_FOUND) == [WRONG]  # "x" does not extend what was typed


async def test_breaking_news_is_indexed_then_found_and_read_back_at_the_end():
    engine = FakeEngine()
    searchers = await _searchers(engine)
    caller = FakeCaller(engine)
    engine.fail["IndexPage"] = [grpc.StatusCode.UNAVAILABLE]
    await breaking_news(caller, FreshnessParams(), searchers, random.Random(1))
    [page] = searchers.indexed
    assert page.url in engine.pages and engine.count("IndexPage") == 2
    term = page.words[0]
    assert re.fullmatch(r"news[0-9a-f]{32}", term) and page.url == f"http://news.r{searchers.state.run}.test/{term}"
    assert page.title.startswith("Breaking ") and len(page.words) == 100 and len(page.outlinks) == 5
    assert set(page.outlinks) <= set(searchers.state.popular)
    searches = [r for m, r in engine.calls if m == "Search"]
    assert [r.query for r in searches] == [term]
    [(name, latency, code)] = caller.observed
    assert (name, code) == (INDEX_FRESHNESS, OK) and latency >= 0
    assert caller.observed == [(INDEX_FRESHNESS, latency, OK)]


async def test_breaking_news_that_never_shows_ends_deadline_exceeded():
    engine = FakeEngine()
    searchers = await _searchers(engine)
    searchers.sleep = lambda s: asyncio.sleep(0.001)
    original = engine._indexpage

    def hide(request: indexer_pb2.IndexPageRequest) -> indexer_pb2.IndexPageResponse:
        engine.hidden.add(request.page.url)
        return original(request)

    engine._indexpage = hide
    caller = FakeCaller(engine)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await breaking_news(caller, FreshnessParams(freshness_timeout_s=0.05, poll_interval_ms=5), searchers,
                              random.Random(1))
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED and engine.count("Search") > 1
    assert caller.codes(INDEX_FRESHNESS) == ["DEADLINE_EXCEEDED"]
    engine.fail["IndexPage"] = [grpc.StatusCode.INVALID_ARGUMENT]
    caller = FakeCaller(engine)
    with pytest.raises(grpc.aio.AioRpcError):
        await breaking_news(caller, FreshnessParams(), searchers, random.Random(2))
    assert caller.codes(INDEX_FRESHNESS) == ["INVALID_ARGUMENT"] and len(searchers.indexed) == 1


# the end-of-run check -------------------------------------------------------------------------------------------------

async def _indexed_some(engine: FakeEngine, share: tuple[int, int] = (0, 1)) -> Searchers:
    searchers = await _searchers(engine, share=share)
    for i in range(3):
        await breaking_news(FakeCaller(engine), FreshnessParams(), searchers, random.Random(i))
    engine.calls.clear()
    return searchers


async def test_a_clean_index_passes_and_only_process_0_checks_counts_and_the_sample():
    engine = FakeEngine()
    searchers = await _indexed_some(engine)
    await disconnect(searchers)
    assert searchers.streams.codes(INDEX_CONSISTENT) == [OK]
    assert engine.count("GetShardInfo") == 1 and engine.count("GetPage") == 3 + 20
    other = await _indexed_some(engine, share=(1, 2))
    await disconnect(other)
    assert other.streams.codes(INDEX_CONSISTENT) == [OK]
    assert engine.count("GetShardInfo") == 0 and engine.count("GetPage") == 3


async def test_a_page_on_no_shard_or_lost_or_changed_is_data_loss():
    engine = FakeEngine()
    searchers = await _indexed_some(engine)
    engine.lost.add(searchers.indexed[0].url)
    await disconnect(searchers)
    assert searchers.streams.codes(INDEX_CONSISTENT) == ["DATA_LOSS"] and engine.count("GetShardInfo") == 3
    engine.lost.clear()
    searchers = await _indexed_some(engine)
    del engine.pages[searchers.indexed[1].url]
    engine.pages[searchers.state.sample[0].url] = search_pb2.WebPage(url=searchers.state.sample[0].url, title="x")
    await disconnect(searchers)
    assert searchers.streams.codes(INDEX_CONSISTENT) == ["DATA_LOSS"]


async def test_a_failed_read_gives_its_code_and_a_bug_gives_unknown():
    engine = FakeEngine()
    searchers = await _indexed_some(engine)
    engine.fail["GetPage"] = [grpc.StatusCode.UNAVAILABLE] * 1_000  # every read, each 3 times
    await disconnect(searchers)
    assert searchers.streams.codes(INDEX_CONSISTENT) == ["UNAVAILABLE"] and engine.count("GetPage") == 3 * 23
    engine.fail.clear()
    searchers = await _indexed_some(engine)
    searchers.indexed.append(None)  # type: ignore[arg-type]  # a bug in the check
    await disconnect(searchers)
    assert searchers.streams.codes(INDEX_CONSISTENT) == ["UNKNOWN"]


def test_count_problems_name_each_inconsistency():
    stats = indexer_pb2.GetIndexStatsResponse(page_count=10, shard_count=2)
    info = shard_pb2.GetShardInfoResponse(shard_count=2, shards=[shard_pb2.ShardInfo(shard=0, doc_count=4),
                                                                 shard_pb2.ShardInfo(shard=1, doc_count=6)])
    assert count_problems(stats, info, 10) == []
    info.shards[1].rebuilding = True
    info.shards[1].doc_count = 5
    problems = " | ".join(count_problems(stats, info, 11))
    for needle in ("rebuilding", "hold 9 pages", "11 after seeding"):
        assert needle in problems, problems
    assert "routes to 3" in " | ".join(count_problems(indexer_pb2.GetIndexStatsResponse(page_count=10, shard_count=3),
                                                      info, 0))
