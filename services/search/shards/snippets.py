"""The snippet of a search hit: up to :data:`SNIPPET_CHARS` characters of the page's body around the first query term
it holds, or its first :data:`SNIPPET_CHARS` (protos/casemesh/search/v1/search.proto, SearchHit.snippet).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Query Processor:
Parse query, retrieve docs, rank results"). The first query term the body holds is found by one regular-expression
scan of the body (:func:`term_pattern`: any of the terms as a whole word, case-insensitive, where a word is a run of
letters and digits as in the analysis' tokenizer); the window starts :data:`LEAD_CHARS` characters before it (less
near the start, earlier near the end so the window stays full), moved forward past a cut word.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["LEAD_CHARS", "SNIPPET_CHARS", "snippet", "term_pattern"]

#: Most characters in a snippet.
SNIPPET_CHARS = 200
#: Characters of context before the term, at most.
LEAD_CHARS = 60
_WORD = re.compile(r"[^\W_]+")


def term_pattern(terms: Iterable[str]) -> re.Pattern[str]:
    """A pattern finding any of ``terms`` (analysed terms: lower case) as a whole word of a text, in any case."""
    alternatives = "|".join(re.escape(term) for term in sorted(terms, key=lambda t: (-len(t), t)))
    return re.compile(rf"(?<![^\W_])(?:{alternatives})(?![^\W_])", re.IGNORECASE)


def snippet(body: str, pattern: re.Pattern[str]) -> str:
    """Up to :data:`SNIPPET_CHARS` characters of ``body`` around the first match of ``pattern`` (see the module
    docstring), or its first :data:`SNIPPET_CHARS` when nothing matches; surrounding whitespace stripped."""
    found = pattern.search(body)
    if found is None or found.start() <= LEAD_CHARS:
        return body[:SNIPPET_CHARS].strip()
    offset = found.start()
    start = max(0, min(offset - LEAD_CHARS, len(body) - SNIPPET_CHARS))
    if start and body[start - 1].isalnum():  # cut inside a word: start after it (it ends before the term)
        cut = _WORD.match(body, start)
        if cut is not None and cut.end() <= offset:
            start = cut.end()
    return body[start:start + SNIPPET_CHARS].strip()
