"""The search workload's parameters (the synthetic web, the query set, the end-of-run checks) and its seeding through
the public API (IndexerService.IndexPage, then IndexerService.ComputePageRank).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Crawl and index web
pages continuously", "Indexer: Build inverted index (word -> document IDs)", "Ranker: PageRank"); seed 001 #10
(shared/seeds/001_58dfc580020147d2.txt line 27: "Inverted index, PageRank, query processing, autocomplete | 10B
documents, Google-scale"). What is drawn from the run's generator, in order: the run prefix (8 hex digits, the first
draw: every URL is under ``r<run>.test``), the pages (:mod:`.corpus`: hosts, titles, bodies, then the links), then the
query set (:mod:`.queries`), then the sample of pages read back at the end. So the same ``--seed`` gives the same web
and the same queries.

Seeding first waits until the shards are ready (IndexShardService.GetShardInfo every :data:`READY_POLL_S` until no
shard is still rebuilding from the document store, which each does when its process starts; a ``HarnessError``,
exit 3, after ``ready_timeout_s``). It then indexes every page (IndexPage, ``index_concurrency`` calls in flight): a
call answered UNAVAILABLE (the store could not be written, or the page's shard did not take it: indexer.proto says to
retry) or DEADLINE_EXCEEDED is sent again, up to :data:`SEED_ATTEMPTS` times, 100 ms doubling between (indexing a
page again replaces it with itself); any other refusal fails the seeding with its status. Then one PageRank pass
(ComputePageRank, retried alike), so the first queries rank with the link graph; then GetIndexStats says how many
pages the index holds (a kept data directory may hold an earlier run's too). The seeding's wall time is logged.

The state the journeys share (:class:`State`, picklable: sent to ``--workers`` processes) keeps what they need, not
the pages: the query set, the most linked pages (a breaking-news page links to them), and a sample of seeded pages
that the end-of-run check reads back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from pydantic import Field, field_validator, model_validator

from casemesh.search.v1 import indexer_pb2, search_pb2, shard_pb2
from casemesh.services.search.contract import MAX_OUTLINKS

from ...errors import HarnessError
from ..base import Caller, Params
from .corpus import CorpusParams, Page, generate, in_degrees, vocabulary
from .queries import Query, query_set

log = logging.getLogger("casemesh.workloads.search")

SHARDS = "search-shards"
INDEXER = "search-indexer"
QUERY = "search-query"
AUTOCOMPLETE = "search-autocomplete"

#: Attempts of a seeding call answered with one of :data:`RETRIED`.
SEED_ATTEMPTS = 6
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Seconds between two GetShardInfo while waiting for the shards to be ready.
READY_POLL_S = 0.2
#: The most linked pages kept in the state (a breaking-news page links to some of them).
POPULAR_PAGES = 50

T = TypeVar("T")


class SeedParams(Params):
    """The web, the queries and the end-of-run checks (defaults: the ``search`` profile's)."""

    pages: int = Field(default=5_000, ge=1, le=1_000_000, description="pages indexed before the run")
    hosts: int = Field(default=100, ge=1, le=100_000, description="hosts the pages are spread over (uniformly)")
    vocabulary_size: int = Field(default=20_000, ge=1_000, le=100_000,
                                 description="wordfreq's most frequent English words the text is drawn from")
    title_words_min: int = Field(default=2, ge=1, le=40, description="fewest words of a title")
    title_words_max: int = Field(default=6, ge=1, le=40, description="most words of a title (uniform)")
    body_words: int = Field(default=250, ge=10, le=10_000, description="median words of a body (lognormal)")
    body_sigma: float = Field(default=0.5, ge=0, le=3, description="a body's length: lognormal sigma")
    links_per_page: int = Field(default=10, ge=0, le=MAX_OUTLINKS,
                                description="outlinks of a page (to earlier pages, by preferential attachment)")
    link_attractiveness: float = Field(default=1.0, gt=0, le=1_000,
                                       description="Price's model: a page is linked with weight inbound links + this")
    distinct_queries: int = Field(default=2_000, ge=1, le=100_000, description="distinct queries users ask")
    phrase_share: float = Field(default=0.1, ge=0, le=1, description="share of queries that are a quoted phrase")
    word_weights: tuple[float, ...] = Field(default=(0.25, 0.40, 0.35), min_length=1, max_length=3,
                                            description="relative weights of word queries of 1, 2, 3 words")
    query_min_rank: int = Field(default=100, ge=0, le=10_000,
                                description="query words are not among this many most common words")
    ready_timeout_s: float = Field(default=60.0, gt=0, le=3_600,
                                   description="how long seeding waits for the shards to finish rebuilding")
    index_concurrency: int = Field(default=32, ge=1, le=1_024, description="IndexPage calls in flight while seeding")
    compute_pagerank: bool = Field(default=True, description="run a PageRank pass after indexing")
    check_pages: int = Field(default=200, ge=0, le=100_000,
                             description="seeded pages read back at the end of the run (load process 0)")
    check_concurrency: int = Field(default=16, ge=1, le=256, description="GetPage calls in flight at the end")
    check_delay_s: float = Field(default=2.0, ge=0, le=600,
                                 description="with --workers, seconds process 0 waits after its drain before checking")

    @field_validator("word_weights")
    @classmethod
    def _weights(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(w < 0 for w in value) or not any(value):
            raise ValueError("weights must be >= 0 and not all 0")
        return value

    @model_validator(mode="after")
    def _title(self) -> SeedParams:
        if self.title_words_min > self.title_words_max:
            raise ValueError(f"title_words_min ({self.title_words_min}) must be at most title_words_max "
                             f"({self.title_words_max})")
        return self

    def corpus(self) -> CorpusParams:
        return CorpusParams(pages=self.pages, hosts=self.hosts, vocabulary_size=self.vocabulary_size,
                            title_words_min=self.title_words_min, title_words_max=self.title_words_max,
                            body_words=self.body_words, body_sigma=self.body_sigma,
                            links_per_page=self.links_per_page, link_attractiveness=self.link_attractiveness)


@dataclass
class State:
    """What the seeder made (picklable): the run's prefix, the query set in popularity order, the most linked pages'
    URLs, a sample of seeded pages to read back, and the index's page count after seeding."""

    run: str
    queries: list[Query]
    popular: list[str]
    sample: list[Page]
    indexed_pages: int = 0


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def plan(params: SeedParams, rng: random.Random) -> tuple[State, list[Page]]:
    """The state and the pages to index, drawn in the module docstring's order: no call."""
    run = run_prefix(rng)
    pages = generate(params.corpus(), run, rng)
    rank = vocabulary(params.vocabulary_size).rank()
    queries = query_set(rng, pages, rank, params.distinct_queries, params.phrase_share, params.word_weights,
                        params.query_min_rank)
    degrees = in_degrees(pages)
    popular = sorted(degrees, key=lambda url: (-degrees[url], url))[:POPULAR_PAGES]
    sample = rng.sample(pages, min(params.check_pages, len(pages)))
    return State(run=run, queries=queries, popular=popular, sample=sample), pages


def web_page(page: Page) -> search_pb2.WebPage:
    """The contract's WebPage of ``page``."""
    return search_pb2.WebPage(url=page.url, title=page.title, body=page.body, outlinks=page.outlinks)


async def resend(send: Callable[[], Awaitable[T]], sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> T:
    """``send()`` until answered; UNAVAILABLE or DEADLINE_EXCEEDED are sent again (module docstring)."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return await send()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def wait_ready(call: Caller, timeout_s: float, sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> None:
    """Poll GetShardInfo until no shard is rebuilding (UNAVAILABLE and DEADLINE_EXCEEDED are polled through);
    ``HarnessError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info = await call(SHARDS, "GetShardInfo", shard_pb2.GetShardInfoRequest())
            waiting = f"shards {[s.shard for s in info.shards if s.rebuilding]} still rebuilding"
            if info.shards and not any(s.rebuilding for s in info.shards):
                return
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED:
                raise
            waiting = f"GetShardInfo answering {error.code().name}"
        if time.monotonic() > deadline:
            raise HarnessError(f"the search index was not ready within {timeout_s:g} s of seeding: {waiting} (see "
                               "search-shards' log)")
        await sleep(READY_POLL_S)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Wait for the shards, index every page, rank them once, read the index's size (module docstring); returns the
    state."""
    started = time.perf_counter()
    state, pages = plan(params, rng)
    await wait_ready(call, params.ready_timeout_s)
    planned = time.perf_counter()
    limit = asyncio.Semaphore(params.index_concurrency)

    async def index(page: Page) -> None:
        request = indexer_pb2.IndexPageRequest(page=web_page(page))
        async with limit:
            await resend(lambda: call(INDEXER, "IndexPage", request))

    await asyncio.gather(*(index(p) for p in pages))
    indexed = time.perf_counter()
    if params.compute_pagerank:
        answer = await resend(lambda: call(INDEXER, "ComputePageRank", indexer_pb2.ComputePageRankRequest()))
        rank_pass = answer.rank_pass
        log.info("search: PageRank pass %d over %d pages and %d links in %.0f ms (%d iterations)",
                 rank_pass.rank_version, rank_pass.nodes, rank_pass.edges, rank_pass.compute_ms, rank_pass.iterations)
    stats = await resend(lambda: call(INDEXER, "GetIndexStats", indexer_pb2.GetIndexStatsRequest()))
    state.indexed_pages = stats.page_count
    log.info("search: seeded %d pages (%d links) and %d queries in %.1f s (drawing and waiting for the shards %.1f "
             "s, indexing %.1f s at %.0f pages/s); the index holds %d pages on %d shards", len(pages),
             sum(len(p.outlinks) for p in pages), len(state.queries), time.perf_counter() - started,
             planned - started, indexed - planned, len(pages) / max(indexed - planned, 1e-9), stats.page_count,
             stats.shard_count)
    return state
