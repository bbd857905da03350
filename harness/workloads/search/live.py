"""What the search journeys share in one load process: the seeded state, who asks what, and the breaking-news pages
the process indexed (read back at the end of the run).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt line 599: "Return relevant results for
any query"; line 609: "Freshness: Breaking news indexed in minutes"). The workload's ``connect`` makes a
:class:`Searchers` for the process (a fresh one per connect, so each ``casemesh capacity`` step checks the pages it
indexed) and logs the index's size (GetIndexStats, unrecorded; a failure is only logged).

Queries are drawn by popularity (:meth:`Searchers.query`: Zipf over the query set's order, :mod:`.queries`). A
breaking-news page (:meth:`Searchers.news_page`) holds a term no other page holds, ``news`` and 32 hex digits of a
random UUID (unique across load processes and runs): its URL is ``http://news.r<run>.test/<term>``, its title
"Breaking" and three words, its body the term and then words drawn as the corpus's are, and it links to pages drawn
among the most linked ones (news links to what is popular).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from typing import Any

import grpc

from casemesh.search.v1 import indexer_pb2

from .corpus import TITLE_SKIP, Page, Vocabulary, vocabulary
from .queries import Query, draw_rank, zipf_cdf
from .seeding import INDEXER, SeedParams, State

log = logging.getLogger("casemesh.workloads.search")

#: Words of a breaking-news page's title after "Breaking".
NEWS_TITLE_WORDS = 3


class Searchers:
    """A load process's share of the workload (module docstring).

    ``streams`` is :class:`casemesh.harness.streams.Streams` (its unrecorded ``call``, ``observe`` and ``share``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if not state.queries:
            raise ValueError("the search workload needs at least one query (seed distinct_queries)")
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        self.sleep = sleep
        #: The breaking-news pages this process indexed (IndexPage answered), read back at the end.
        self.indexed: list[Page] = []
        self._cdfs: dict[float, list[float]] = {}

    @property
    def checker(self) -> bool:
        """True for the load process that checks the index's counts and the seeded sample (process 0)."""
        return self.streams.share[0] == 0

    @property
    def words(self) -> Vocabulary:
        return vocabulary(self.params.vocabulary_size)

    def query(self, rng: random.Random, exponent: float) -> Query:
        """A query drawn by popularity (Zipf with ``exponent`` over the set's order)."""
        cdf = self._cdfs.get(exponent)
        if cdf is None:
            cdf = self._cdfs[exponent] = zipf_cdf(len(self.state.queries), exponent)
        return self.state.queries[draw_rank(cdf, rng)]

    def news_page(self, rng: random.Random, body_words: int, outlinks: int) -> tuple[Page, str]:
        """A new breaking-news page and the term only it holds (module docstring)."""
        term = f"news{uuid.uuid4().hex}"
        title = " ".join(["Breaking", *(w.capitalize() for w in self.words.draw(rng, NEWS_TITLE_WORDS,
                                                                               skip=TITLE_SKIP))])
        words = (term, *self.words.draw(rng, max(body_words - 1, 0)))
        popular = self.state.popular
        links = tuple(rng.sample(popular, min(outlinks, len(popular))))
        return Page(f"http://news.r{self.state.run}.test/{term}", title, words, links), term

    async def log_index(self) -> None:
        """Log the index's size at connect (unrecorded; a failure is logged and ignored)."""
        try:
            stats = await self.streams.call(INDEXER, "GetIndexStats", indexer_pb2.GetIndexStatsRequest())
        except grpc.aio.AioRpcError as error:
            log.warning("search: GetIndexStats failed at connect: %s %s", error.code().name, error.details())
            return
        log.info("search: the index holds %d pages and %d links on %d shards (PageRank pass %d)", stats.page_count,
                 stats.link_count, stats.shard_count, stats.last_pass.rank_version)
