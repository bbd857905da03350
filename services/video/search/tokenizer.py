"""The one tokenizer of video-search: documents and queries go through the same function.

A token is a maximal run of Unicode letters and digits (regular expression
``[^\\W_]+``: word characters other than the underscore), lowercased with
``str.lower``. Everything else (spaces, punctuation, ``-``, ``_``, ``'``,
emoji) separates tokens, and tokens longer than 40 characters are dropped (as
tantivy's default ``RemoveLongFilter``; such strings are ids or noise, not
words). There is no stemming and no stop-word list, so ``Cats`` matches
``cats`` but not ``cat``, and ``the`` is a term like any other (BM25's IDF
already makes common words count little).

Examples: ``"C++ & Go: 4K60 Streaming"`` → ``["c", "go", "4k60", "streaming"]``;
``"machine-learning"`` → ``["machine", "learning"]``; ``"Café_Été"`` → ``["café", "été"]``.

The index is given the tokens joined by single spaces and splits them on
whitespace only, so what the index holds is exactly what this function says.
"""

from __future__ import annotations

import re

#: Longest token kept, in characters.
MAX_TOKEN_CHARS = 40

_TOKEN_RE = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The tokens of ``text`` in order, lowercased, repeats kept (term frequency counts them)."""
    return [token for token in _TOKEN_RE.findall(text.lower()) if len(token) <= MAX_TOKEN_CHARS]


def query_terms(query: str) -> list[str]:
    """The distinct tokens of a query, in first-seen order (a repeated word adds no constraint)."""
    return list(dict.fromkeys(tokenize(query)))
