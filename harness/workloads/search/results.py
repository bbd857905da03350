"""What every answer the search journeys get must be, as query.proto and search.proto state it (pure: no I/O).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt line 620: "Query Processor: Parse
query, retrieve docs, rank results"; line 619: "Index Server: Sharded index"; line 600: "Autocomplete").

**A results page** (:func:`page_problems`, a Search answer for a query of the set, at ``offset``: 0 for the first
page, ``page_size`` for the second):

- hits ordered by ``score``, highest first, ties by URL ascending; no URL twice; every URL a page URL; ``score`` and
  ``bm25`` finite and >= 0, ``pagerank`` in [0, 1];
- as many hits as the page holds: ``min(page_size, total_matches - offset)`` (none past the
  :data:`~casemesh.services.search.contract.MAX_RESULTS`-th result), and a ``next_page_token`` exactly when results
  are left after the page;
- ``shards_answered`` at most ``shards_total``, and ``partial`` exactly when fewer answered;
- the parsed query is the query's analysis: its distinct words in order, and its phrase when quoted (the workload's
  words are lower-case ASCII letters, one term each).

A page breaking any of these is ``WRONG``; a complete first page with no match at all is ``MISSED`` (the query was
drawn from an indexed page that holds it: :mod:`.queries`), else ``OK`` (:func:`correct_code`). Whether every shard
answered is the other measure, :func:`complete_code`: ``OK`` or ``PARTIAL`` (the per-shard deadline's trade of
completeness for latency, "The Tail at Scale", Dean and Barroso, CACM 2013).

**Suggestions** (:func:`suggestion_problems`, a Suggest answer for a prefix): at most ``limit`` (0: the default), each
a distinct query starting with the normalised prefix and counted at least once, most counted first, ties
alphabetically; none before the index's first rebuild (``index_built_at_unix_ms`` 0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from casemesh.search.v1 import query_pb2, search_pb2
from casemesh.services.search.contract import (
    DEFAULT_PAGE_SIZE,
    DEFAULT_SUGGESTIONS,
    MAX_RESULTS,
    is_page_url,
    normalize_query,
)

from .queries import Query

OK = "OK"
PARTIAL = "PARTIAL"
WRONG = "WRONG"
MISSED = "MISSED"


def order_problems(hits: Sequence[search_pb2.SearchHit]) -> list[str]:
    """Problems of the hits' order, uniqueness and values (module docstring, the first rule)."""
    problems: list[str] = []
    seen: set[str] = set()
    for i, hit in enumerate(hits):
        if hit.url in seen:
            problems.append(f"hit {i}: {hit.url} is a hit twice")
        seen.add(hit.url)
        if not is_page_url(hit.url):
            problems.append(f"hit {i}: {hit.url!r} is not a page URL")
        if not (math.isfinite(hit.score) and hit.score >= 0 and math.isfinite(hit.bm25) and hit.bm25 >= 0):
            problems.append(f"hit {i}: score {hit.score!r}, bm25 {hit.bm25!r}: each must be finite and >= 0")
        if not 0 <= hit.pagerank <= 1:
            problems.append(f"hit {i}: pagerank {hit.pagerank!r} is not in [0, 1]")
        if i and (-hits[i - 1].score, hits[i - 1].url) > (-hit.score, hit.url):
            problems.append(f"hits {i - 1} and {i}: ({hits[i - 1].score!r}, {hits[i - 1].url}) before "
                            f"({hit.score!r}, {hit.url}): best score first, ties by URL")
    return problems


def expected_query(query: Query) -> search_pb2.ParsedQuery:
    """The query's analysis as the contract parses it."""
    parsed = search_pb2.ParsedQuery(terms=query.terms)
    if query.phrase:
        parsed.phrases.add(terms=query.phrase)
    return parsed


def page_problems(query: Query, page_size: int, offset: int, response: query_pb2.SearchResponse) -> list[str]:
    """Problems of a results page of ``query`` at ``offset`` (module docstring)."""
    problems = order_problems(response.hits)
    size = page_size or DEFAULT_PAGE_SIZE
    available = min(response.total_matches, MAX_RESULTS)
    wanted = max(0, min(size, available - offset))
    if len(response.hits) != wanted:
        problems.append(f"{len(response.hits)} hits from result {offset + 1} of {response.total_matches} matches "
                        f"(pages of {size}): {wanted} expected")
    if bool(response.next_page_token) != (offset + len(response.hits) < available):
        problems.append(f"next_page_token {'set' if response.next_page_token else 'empty'} after result "
                        f"{offset + len(response.hits)} of {response.total_matches}")
    if not 0 <= response.shards_answered <= response.shards_total or response.shards_total < 1:
        problems.append(f"{response.shards_answered} of {response.shards_total} shards answered")
    if response.partial != (response.shards_answered < response.shards_total):
        problems.append(f"partial is {response.partial} with {response.shards_answered} of "
                        f"{response.shards_total} shards answered")
    expected = expected_query(query)
    if response.parsed_query != expected:
        problems.append(f"parsed as terms {list(response.parsed_query.terms)}, phrases "
                        f"{[list(p.terms) for p in response.parsed_query.phrases]}; the contract's analysis gives "
                        f"{list(expected.terms)}, {[list(p.terms) for p in expected.phrases]}")
    return problems


def correct_code(problems: Sequence[str], offset: int, response: query_pb2.SearchResponse) -> str:
    """``WRONG`` with problems, ``MISSED`` for a complete first page without a match, else ``OK``."""
    if problems:
        return WRONG
    if offset == 0 and not response.partial and response.total_matches == 0:
        return MISSED
    return OK


def complete_code(response: query_pb2.SearchResponse) -> str:
    """``PARTIAL`` when a shard's answer is missing from the page, else ``OK``."""
    return PARTIAL if response.partial else OK


def suggestion_problems(prefix: str, limit: int, response: query_pb2.SuggestResponse) -> list[str]:
    """Problems of a Suggest answer for ``prefix`` (module docstring)."""
    problems: list[str] = []
    suggestions = list(response.suggestions)
    wanted = normalize_query(prefix)
    if len(suggestions) > (limit or DEFAULT_SUGGESTIONS):
        problems.append(f"{len(suggestions)} suggestions, limit {limit or DEFAULT_SUGGESTIONS}")
    if suggestions and response.index_built_at_unix_ms <= 0:
        problems.append("suggestions before the prefix index was ever built")
    if len({s.query for s in suggestions}) != len(suggestions):
        problems.append(f"a query suggested twice: {[s.query for s in suggestions]}")
    for i, suggestion in enumerate(suggestions):
        if not suggestion.query.startswith(wanted):
            problems.append(f"suggestion {suggestion.query!r} does not start with {wanted!r}")
        if suggestion.count < 1:
            problems.append(f"suggestion {suggestion.query!r} counted {suggestion.count} times")
        if i and (-suggestions[i - 1].count, suggestions[i - 1].query) > (-suggestion.count, suggestion.query):
            problems.append(f"{suggestions[i - 1].query!r} ({suggestions[i - 1].count}) before {suggestion.query!r} "
                            f"({suggestion.count}): most popular first, ties alphabetically")
    return problems


def suggested(query: Query, response: query_pb2.SuggestResponse) -> bool:
    """True when ``query`` is among the suggestions, as the query log normalises it."""
    text = normalize_query(query.text).strip()
    return any(s.query == text for s in response.suggestions)
