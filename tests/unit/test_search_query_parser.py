"""search-query's parser: the query syntax of protos/casemesh/search/v1/query.proto (words, quoted phrases, an
unclosed quote running to the end), the analysis shared with pages, the limits, and the errors naming ``query``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.search.v1 import search_pb2
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.search.analysis import analyze
from casemesh.services.search.query.parser import ParsedQuery, parse_query


@pytest.mark.parametrize(("text", "terms", "phrases"), [
    ("Distributed Systems", ("distributed", "systems"), ()),
    ('"distributed systems" design', ("distributed", "systems", "design"), (("distributed", "systems"),)),
    ('design "Distributed   Systems"', ("design", "distributed", "systems"), (("distributed", "systems"),)),
    ('a "b c', ("a", "b", "c"), (("b", "c"),)),  # an unclosed quote runs to the end
    ('"a b" c "d e f', ("a", "b", "c", "d", "e", "f"), (("a", "b"), ("d", "e", "f"))),
    ('"one" two', ("one", "two"), ()),  # a one-term quoted part is just a term
    ('x "" y "!!"', ("x", "y"), ()),  # a quoted part without a word is nothing
    ("foo FOO foo bar", ("foo", "bar"), ()),  # distinct terms, first appearance first
    ('"new new york"', ("new", "york"), (("new", "new", "york"),)),  # a phrase keeps its repeats
    ('"a b" "A, b"', ("a", "b"), (("a", "b"),)),  # the same phrase twice counts once
    ("C++ & Go: 4K60", ("c", "go", "4k60"), ()),  # the pages' analysis: runs of letters and digits
    ("Café ÉTÉ", ("café", "été"), ()),
    ('"hello"', ("hello",), ()),
])
def test_the_query_syntax(text, terms, phrases):
    assert parse_query(text) == ParsedQuery(terms, phrases)


def test_a_token_over_40_bytes_is_dropped_as_in_pages():
    long_word = "a" * 41
    assert parse_query(f"{long_word} ok") == ParsedQuery(("ok",))
    assert parse_query(f'"x {long_word} y"') == ParsedQuery(("x", "y"), (("x", "y"),))  # positions as in pages
    assert analyze(f"x {long_word} y") == ["x", "y"]


def test_the_message_is_the_protos_parsed_query():
    message = parse_query('"big data" tools').message()
    assert message == search_pb2.ParsedQuery(terms=["big", "data", "tools"],
                                             phrases=[search_pb2.Phrase(terms=["big", "data"])])


def test_the_limits_that_hold():
    sixteen = " ".join(f"w{i}" for i in range(16))
    assert len(parse_query(sixteen).terms) == 16
    assert len(parse_query(f'"{sixteen}"').phrases[0]) == 16
    four = " ".join(f'"p{i} q{i}"' for i in range(4))
    assert len(parse_query(four).phrases) == 4
    longest = "ab " * 170 + "ab"
    assert len(longest) == 512 and parse_query(longest) == ParsedQuery(("ab",))


@pytest.mark.parametrize(("text", "reason"), [
    ("", "is required (1 to 512 characters)"),
    ("x" * 513, "has 513 characters; at most 512"),
    ("!!! ... ---", "has no term to search for"),
    ('""', "has no term to search for"),
    (" ".join(f"w{i}" for i in range(17)), "has 17 distinct terms; at most 16"),
    ('"' + " ".join(f"w{i}" for i in range(17)) + '"', 'the phrase "w0 w1'),
    ('"' + " ".join(["w"] * 17) + '"', "has 17 terms; a phrase has 2 to 16"),
    (" ".join(f'"p{i} q"' for i in range(5)), "has 5 quoted phrases; at most 4"),
])
def test_errors_name_the_query(text, reason):
    with pytest.raises(InvalidArgument) as error:
        parse_query(text)
    assert error.value.field == "query"
    assert reason in error.value.reason, error.value.reason


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from('ab cD"É1-'), max_size=60))
def test_any_query_parses_or_is_refused_naming_the_query(text):
    try:
        parsed = parse_query(text)
    except InvalidArgument as error:
        assert error.field == "query"
        return
    assert 1 <= len(parsed.terms) <= 16 and len(set(parsed.terms)) == len(parsed.terms)
    assert set(parsed.terms) == set(analyze(text.replace('"', " ")))  # every word, quoted or not, is a term
    assert len(parsed.phrases) <= 4 and all(2 <= len(p) <= 16 and set(p) <= set(parsed.terms) for p in parsed.phrases)
