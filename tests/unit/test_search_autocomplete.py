"""search-autocomplete's prefix index (:mod:`...autocomplete.prefix_index`) and input rules: every prefix of 1 to 32
characters maps to its 10 most counted completions by (-count, query); a trailing space completes only whole words;
suggestions change only at a rebuild, which happens only when the counts changed; the log is bounded; and the
validation of SuggestRequest and RecordQueriesRequest names each field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.search.v1 import query_pb2
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.search.autocomplete import validation
from casemesh.services.search.autocomplete.prefix_index import QueryLogIndex, build_prefix_index


def test_each_prefix_maps_to_its_most_counted_completions_ties_alphabetically():
    index = build_prefix_index({"new york": 5, "newton": 5, "news": 9, "nba": 1, "new york times": 2})
    assert index["n"] == [("news", 9), ("new york", 5), ("newton", 5), ("new york times", 2), ("nba", 1)]
    assert index["new"] == [("news", 9), ("new york", 5), ("newton", 5), ("new york times", 2)]
    assert index["new "] == [("new york", 5), ("new york times", 2)]  # a trailing space: whole words only
    assert index["new york"] == [("new york", 5), ("new york times", 2)]
    assert "x" not in index and "new yorkx" not in index


def test_at_most_ten_completions_and_32_characters_per_prefix():
    counts = {f"query {i:02d}": i for i in range(1, 21)}
    counts["q" * 40] = 100
    index = build_prefix_index(counts)
    assert index["query"] == [(f"query {i:02d}", i) for i in range(20, 10, -1)]
    assert index["q"][0] == ("q" * 40, 100) and len(index["q"]) == 10
    assert index["q" * 32] == [("q" * 40, 100)] and "q" * 33 not in index


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(alphabet="ab ", min_size=1, max_size=6), st.integers(1, 5), max_size=30))
def test_the_index_is_the_brute_force_answer(counts):
    index = build_prefix_index(counts, per_prefix=3, max_prefix_chars=4)
    prefixes = {q[:n] for q in counts for n in range(1, min(len(q), 4) + 1)}
    assert set(index) == prefixes
    for prefix in prefixes:
        ranked = sorted(((q, c) for q, c in counts.items() if q.startswith(prefix)), key=lambda e: (-e[1], e[0]))
        assert index[prefix] == ranked[:3]


async def test_suggestions_change_at_rebuilds_only_when_counts_changed():
    log = QueryLogIndex(max_queries=100)
    assert log.suggest("s", 5) == [] and log.index.built_at_unix_ms == 0
    assert not await log.rebuild()  # nothing counted: nothing to build
    log.record([("search engine", 2), ("search", 1)])
    assert log.suggest("s", 5) == []  # not before the rebuild
    assert await log.rebuild()
    built = log.index.built_at_unix_ms
    assert built > 0 and log.index.build_seconds >= 0
    assert log.suggest("sea", 5) == [("search engine", 2), ("search", 1)]
    assert log.suggest("sea", 1) == [("search engine", 2)]
    assert not await log.rebuild() and log.index.built_at_unix_ms == built  # unchanged counts: no rebuild
    log.record([("search", 3)])
    assert log.suggest("sea", 5) == [("search engine", 2), ("search", 1)]
    assert await log.rebuild()
    assert log.suggest("sea", 5) == [("search", 4), ("search engine", 2)]
    assert (log.count("search"), log.distinct_queries) == (4, 2)


def test_the_log_is_bounded():
    log = QueryLogIndex(max_queries=2)
    assert log.record([("a", 1), ("b", 2)]) == 0
    assert log.record([("c", 7), ("a", 3)]) == 7  # a new query when full is dropped; a counted one still counts
    assert (log.distinct_queries, log.count("a"), log.count("c"), log.dropped) == (2, 4, 0, 7)
    with pytest.raises(ValueError):
        QueryLogIndex(max_queries=0)


@pytest.mark.parametrize(("prefix", "limit", "expected"), [
    ("New", 0, ("new", 5)),
    ("  New   York ", 10, ("new york ", 10)),  # lower case, one space, no leading space; the trailing one kept
    ("x" * 32, 1, ("x" * 32, 1)),
    ("  " + "x" * 32, 1, ("x" * 32, 1)),
])
def test_suggest_requests(prefix, limit, expected):
    assert validation.suggest(query_pb2.SuggestRequest(prefix=prefix, limit=limit)) == expected


@pytest.mark.parametrize(("request_", "field"), [
    (query_pb2.SuggestRequest(), "prefix"),
    (query_pb2.SuggestRequest(prefix="   "), "prefix"),
    (query_pb2.SuggestRequest(prefix="x" * 33), "prefix"),
    (query_pb2.SuggestRequest(prefix="x", limit=11), "limit"),
    (query_pb2.SuggestRequest(prefix="x", limit=-1), "limit"),
])
def test_bad_suggest_requests(request_, field):
    with pytest.raises(InvalidArgument) as error:
        validation.suggest(request_)
    assert error.value.field == field


def _batch(*entries: tuple[str, int]) -> query_pb2.RecordQueriesRequest:
    return query_pb2.RecordQueriesRequest(queries=[query_pb2.QueryCount(query=q, count=c) for q, c in entries])


def test_record_queries_requests():
    assert validation.record_queries(_batch(("  Search  Engine ", 2), ("x" * 512, 1_000_000))) == [
        ("search engine", 2), ("x" * 512, 1_000_000)]
    assert len(validation.record_queries(_batch(*[("q", 1)] * 1_000))) == 1_000


@pytest.mark.parametrize(("request_", "field"), [
    (_batch(), "queries"),
    (_batch(*[("q", 1)] * 1_001), "queries"),
    (_batch(("ok", 1), ("", 1)), "queries[1].query"),
    (_batch(("ok", 1), ("  \t ", 1)), "queries[1].query"),
    (_batch(("x" * 513, 1)), "queries[0].query"),
    (_batch(("ok", 1), ("ok", 0)), "queries[1].count"),
    (_batch(("ok", 1_000_001)), "queries[0].count"),
])
def test_bad_record_queries_requests(request_, field):
    with pytest.raises(InvalidArgument) as error:
        validation.record_queries(request_)
    assert error.value.field == field
