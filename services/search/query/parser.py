"""The query syntax of protos/casemesh/search/v1/query.proto (SearchService.Search), parsed into a
:class:`ParsedQuery`.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query Processor: Parse
query, retrieve docs, rank results"). The syntax: words, and phrases in double quotes (``"distributed systems"``); an
unclosed quote runs to the end of the query; nothing else is an operator. Every part goes through the same analysis
as pages (:func:`services.search.analysis.analyze`: tantivy's simple tokenizer, long tokens dropped, lower case), so
a query term always compares equal to a page term.

- ``terms``: the distinct analysed terms of the whole query, words and phrases' terms alike, in order of first
  appearance: 1 to :data:`~services.search.contract.MAX_QUERY_TERMS`. A page matches when it holds every one (AND);
  BM25 scores them.
- ``phrases``: each quoted part of 2 to :data:`~services.search.contract.MAX_PHRASE_TERMS` terms, at most
  :data:`~services.search.contract.MAX_PHRASES` (a repeated phrase counts once). A quoted part of one term is just a
  term; a quoted part without a word (``""``) is nothing.

Every rule broken raises :class:`~services.runtime.errors.InvalidArgument` naming ``query``.
"""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.search.v1 import search_pb2

from ...runtime.errors import InvalidArgument
from ..analysis import analyze
from ..contract import MAX_PHRASE_TERMS, MAX_PHRASES, MAX_QUERY_CHARS, MAX_QUERY_TERMS

__all__ = ["ParsedQuery", "parse_query"]

_QUOTE = '"'


@dataclass(frozen=True)
class ParsedQuery:
    """A query after analysis: the distinct terms in the query's order, and the quoted phrases (each 2+ terms)."""

    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()

    def message(self) -> search_pb2.ParsedQuery:
        """The query as protos/casemesh/search/v1/search.proto's ParsedQuery."""
        return search_pb2.ParsedQuery(terms=self.terms, phrases=[search_pb2.Phrase(terms=p) for p in self.phrases])


def _quoted(part: str) -> str:
    shown = part if len(part) <= 40 else part[:37] + "..."
    return f'"{shown.strip()}"'


def parse_query(text: str) -> ParsedQuery:
    """Parse ``text`` (the Search request's ``query``) as the module docstring describes.

    Raises :class:`InvalidArgument` naming ``query`` when the query is empty or over
    :data:`~services.search.contract.MAX_QUERY_CHARS` characters, holds no word, has more than
    :data:`~services.search.contract.MAX_QUERY_TERMS` distinct terms, a phrase of more than
    :data:`~services.search.contract.MAX_PHRASE_TERMS` terms, or more than
    :data:`~services.search.contract.MAX_PHRASES` phrases.
    """
    if not text:
        raise InvalidArgument("query", f"is required (1 to {MAX_QUERY_CHARS} characters)")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidArgument("query", f"has {len(text):,} characters; at most {MAX_QUERY_CHARS}")
    terms: dict[str, None] = {}  # insertion-ordered set
    phrases: dict[tuple[str, ...], None] = {}
    # Splitting on quotes leaves the unquoted parts at even indices and the quoted ones at odd indices; the part after
    # an unclosed quote is the last, odd one, so it runs to the end of the query as the syntax says.
    for index, part in enumerate(text.split(_QUOTE)):
        analysed = analyze(part)
        terms.update(dict.fromkeys(analysed))
        if index % 2 == 1 and len(analysed) >= 2:
            if len(analysed) > MAX_PHRASE_TERMS:
                raise InvalidArgument("query", f"the phrase {_quoted(part)} has {len(analysed)} terms; a phrase has "
                                               f"2 to {MAX_PHRASE_TERMS}")
            phrases[tuple(analysed)] = None
    if not terms:
        raise InvalidArgument("query", "has no term to search for (a term is a run of letters or digits of at most "
                                       "40 bytes)")
    if len(terms) > MAX_QUERY_TERMS:
        raise InvalidArgument("query", f"has {len(terms)} distinct terms; at most {MAX_QUERY_TERMS}")
    if len(phrases) > MAX_PHRASES:
        raise InvalidArgument("query", f"has {len(phrases)} quoted phrases; at most {MAX_PHRASES}")
    return ParsedQuery(tuple(terms), tuple(phrases))
