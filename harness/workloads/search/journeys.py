"""The search journeys: users searching, typing into the search box, and breaking news becoming searchable
(open-loop arrivals).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt line 608: "Query processing: Millions
of QPS, sub-500ms latency"; line 600: "Autocomplete and spell correction"; line 609: "Freshness: Breaking news indexed
in minutes"). Queries are drawn by popularity (Zipf, ``zipf_exponent``, over the query set: :mod:`.queries`).

- ``search``: a results page: SearchService.Search of the query, ``page_size`` hits; for ``next_page_share`` of
  searches whose first page says more results are left, the next page too (the first page's ``next_page_token``).
  Not retried: the page shows the error and the user searches again.
- ``autocomplete``: a user typing a query into the search box: AutocompleteService.Suggest of what is typed after
  each keystroke, from the ``min_prefix_chars``-th character to the ``max_prefix_chars``-th (at most the whole query),
  ``limit`` suggestions each, one after the other (the user's pauses between keystrokes, about 100 to 300 ms, are left
  out: the first call is timed from the arrival's intended start, each later one from its send, and the journey's own
  time is what the user waited for suggestions across the query).
  With ``stop_when_suggested`` the user stops typing at the first answer that suggests the query (and picks it).
- ``breaking_news``: a breaking-news page (:meth:`.live.Searchers.news_page`: a term no other page holds) is handed
  to the index (IndexerService.IndexPage, retried on UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED or
  RESOURCE_EXHAUSTED as indexer.proto allows: indexing a page again is harmless; exponential backoff with full jitter:
  :mod:`casemesh.harness.workloads.idempotent_retry`), then a reader searches for the term every
  ``poll_interval_ms`` until the page is a hit.

Measures, besides the RPCs the driver records:

- ``index_freshness``: from the ``breaking_news`` journey's intended start (the page handed to the indexer) to the
  answer of the first Search that shows it: the indexing, one query and up to one poll interval. Code OK; else the
  code of the IndexPage or Search that failed for good, or DEADLINE_EXCEEDED when the page is not a hit within
  ``freshness_timeout_s`` (the journey then ends with that code);
- ``search_complete``: one sample per results page answered, ``OK`` when every shard's answer is in it, ``PARTIAL``
  when a shard missed its deadline or failed (the query service's per-shard deadline, ``shard_deadline_ms``, trades
  completeness for latency); latency 0;
- ``search_correct``: one sample per results page answered: ``OK``, ``WRONG`` when it breaks the contract's rules
  (:func:`.results.page_problems`: order, duplicates, scores, hit count, page token, shard counts, the parsed query;
  each logged) or ``MISSED`` when a complete first page has no match for a query drawn from an indexed page; latency 0;
- ``suggest_found``: one sample per typed query: ``OK`` when an answer suggested the query before the typing ended,
  ``NOT_SUGGESTED`` when none did (it was not logged often enough, or not yet: the prefix index is rebuilt every
  ``search-autocomplete.rebuild_interval_ms``), ``WRONG`` when an answer broke Suggest's rules
  (:func:`.results.suggestion_problems`, logged); latency 0.

A journey ends OK when every call was answered; with the code of the call that failed for good otherwise.
"""

from __future__ import annotations

import logging
import random

import grpc
from pydantic import Field, model_validator

from casemesh.search.v1 import indexer_pb2, query_pb2
from casemesh.services.search.contract import MAX_PAGE_SIZE, MAX_PREFIX_CHARS, MAX_SUGGESTIONS

from ..base import Caller, Params
from ..idempotent_retry import RetryParams, send
from .live import Searchers
from .queries import Query, prefixes
from .results import MISSED, WRONG, complete_code, correct_code, page_problems, suggested, suggestion_problems
from .seeding import AUTOCOMPLETE, INDEXER, QUERY, web_page

log = logging.getLogger("casemesh.workloads.search")

INDEX_FRESHNESS = "index_freshness"
SEARCH_COMPLETE = "search_complete"
SEARCH_CORRECT = "search_correct"
SUGGEST_FOUND = "suggest_found"
OK = "OK"
NOT_SUGGESTED = "NOT_SUGGESTED"


class QueryParams(Params):
    """Which query a user asks (the base of ``search`` and ``autocomplete``'s params)."""

    zipf_exponent: float = Field(default=0.8, ge=0, le=5,
                                 description="query popularity: rank r of the query set weighs 1 / r**exponent")


class SearchParams(QueryParams):
    """A results page, and sometimes the next."""

    page_size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE, description="hits per results page")
    next_page_share: float = Field(default=0.1, ge=0, le=1,
                                   description="share of searches with more results that read the next page")


class AutocompleteParams(QueryParams):
    """A query typed into the search box."""

    min_prefix_chars: int = Field(default=2, ge=1, le=MAX_PREFIX_CHARS,
                                  description="characters typed before the first Suggest")
    max_prefix_chars: int = Field(default=8, ge=1, le=MAX_PREFIX_CHARS,
                                  description="characters typed at most (then the user picks or searches)")
    limit: int = Field(default=5, ge=1, le=MAX_SUGGESTIONS, description="suggestions asked for per keystroke")
    stop_when_suggested: bool = Field(default=True, description="stop typing once the query is suggested")

    @model_validator(mode="after")
    def _prefixes(self) -> AutocompleteParams:
        if self.min_prefix_chars > self.max_prefix_chars:
            raise ValueError(f"min_prefix_chars ({self.min_prefix_chars}) must be at most max_prefix_chars "
                             f"({self.max_prefix_chars})")
        return self


class FreshnessParams(RetryParams):
    """A breaking-news page indexed and searched for; IndexPage's retries."""

    body_words: int = Field(default=100, ge=1, le=10_000, description="words of the page's body, its term included")
    outlinks: int = Field(default=5, ge=0, le=50, description="links to the most linked seeded pages")
    page_size: int = Field(default=10, ge=1, le=MAX_PAGE_SIZE, description="hits per poll")
    poll_interval_ms: float = Field(default=100.0, ge=5, le=10_000,
                                    description="pause between a reader's searches while the page is not a hit")
    freshness_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                       description="give up (DEADLINE_EXCEEDED) this long after the journey's start")


async def results_page(call: Caller, query: Query, page_size: int, offset: int,
                       token: str = "") -> query_pb2.SearchResponse:
    """One Search of ``query`` at ``offset`` (0, or the next page's with its ``token``); records ``search_correct``
    and ``search_complete``; raises the call's error."""
    response = await call(QUERY, "Search", query_pb2.SearchRequest(query=query.text, page_size=page_size,
                                                                   page_token=token))
    problems = page_problems(query, page_size, offset, response)
    code = correct_code(problems, offset, response)
    if code == WRONG:
        log.warning("search: the results of %r from %d break the contract: %s", query.text, offset + 1,
                    "; ".join(problems))
    elif code == MISSED:
        log.warning("search: no match for %r, drawn from %s, with every shard answering", query.text, query.page_url)
    call.observe(SEARCH_CORRECT, 0.0, code)
    call.observe(SEARCH_COMPLETE, 0.0, complete_code(response))
    return response


async def search(call: Caller, params: SearchParams, searchers: Searchers, rng: random.Random) -> None:
    """A results page, and for some the next (module docstring)."""
    query = searchers.query(rng, params.zipf_exponent)
    first = await results_page(call, query, params.page_size, 0)
    if first.next_page_token and rng.random() < params.next_page_share:
        await results_page(call, query, params.page_size, params.page_size, first.next_page_token)


async def autocomplete(call: Caller, params: AutocompleteParams, searchers: Searchers, rng: random.Random) -> None:
    """A query typed keystroke by keystroke (module docstring)."""
    query = searchers.query(rng, params.zipf_exponent)
    code = NOT_SUGGESTED
    for prefix in prefixes(query.text, params.min_prefix_chars, params.max_prefix_chars):
        response = await call(AUTOCOMPLETE, "Suggest", query_pb2.SuggestRequest(prefix=prefix, limit=params.limit))
        problems = suggestion_problems(prefix, params.limit, response)
        if problems:
            log.warning("search: the suggestions for %r break the contract: %s", prefix, "; ".join(problems))
            code = WRONG
        elif code != WRONG and suggested(query, response):
            code = OK
            if params.stop_when_suggested:
                break
    call.observe(SUGGEST_FOUND, 0.0, code)


async def breaking_news(call: Caller, params: FreshnessParams, searchers: Searchers, rng: random.Random) -> None:
    """A breaking-news page indexed, then searched for until it is a hit (module docstring)."""
    started = call.intended_at
    page, term = searchers.news_page(rng, params.body_words, params.outlinks)
    outcome = await send(call, INDEXER, "IndexPage", indexer_pb2.IndexPageRequest(page=web_page(page)), params, rng,
                         clock=searchers.clock, sleep=searchers.sleep)
    if outcome.error is not None:
        call.observe(INDEX_FRESHNESS, searchers.clock() - started, outcome.code)
        raise outcome.error
    searchers.indexed.append(page)
    request = query_pb2.SearchRequest(query=term, page_size=params.page_size)
    deadline = started + params.freshness_timeout_s
    while True:
        try:
            response = await call(QUERY, "Search", request)
        except grpc.aio.AioRpcError as error:
            call.observe(INDEX_FRESHNESS, searchers.clock() - started, error.code().name)
            raise
        if any(hit.url == page.url for hit in response.hits):
            call.observe(INDEX_FRESHNESS, searchers.clock() - started, OK)
            return
        if searchers.clock() >= deadline:
            call.observe(INDEX_FRESHNESS, searchers.clock() - started, grpc.StatusCode.DEADLINE_EXCEEDED.name)
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"{page.url} is not a hit for {term} {params.freshness_timeout_s:g} s after "
                                       "it was handed to the indexer")
        await searchers.sleep(params.poll_interval_ms / 1000)
