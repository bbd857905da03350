"""The queries users ask: drawn from the corpus's own pages, so that almost every query matches, and asked with a
Zipf popularity (pure functions, no I/O).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt line 599: "Return relevant results for
any query"; line 600: "Autocomplete and spell correction"). The seed gives no query distribution; these are the
workload's:

- **the query set** (:func:`query_set`): ``distinct_queries`` queries, each from a page drawn uniformly. A share
  ``phrase_share`` are quoted phrases (:func:`phrase_query`): two consecutive words of the page's body, not both
  among the ``query_min_rank`` most common words (no ``"of the"``), written ``"w1 w2"``; the others
  (:func:`word_query`) are 1, 2 or 3 words (``word_weights``: web queries average between 2 and 3 words, Spink et
  al., "Searching the web: the public and their queries", JASIST 2001) drawn uniformly among the page's distinct
  terms (title and body) outside the ``query_min_rank`` most common words, in the page's order. A page holds every
  term of its query (and its phrase contiguously), so a complete answer to it is never empty. Queries are distinct
  (a repeat is drawn again); the set's order is its popularity ranking.
- **popularity** (:func:`zipf_cdf`, :func:`draw_rank`): the query of rank r weighs ``1 / r**zipf_exponent``: query
  logs follow a Zipf law, a few queries asked very often and a long tail asked once (Xie and O'Hallaron, "Locality in
  search engine queries and its implications for caching", INFOCOM 2002). The exponent is a journey parameter.
- **typing** (:func:`prefixes`): what autocomplete sees while a user types a query: its first ``min_chars`` to
  ``max_chars`` characters, one keystroke at a time.
"""

from __future__ import annotations

import itertools
import random
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .corpus import Page

#: Tries to find a distinct query before the set is cut short (a tiny corpus has few).
MAX_DRAWS_PER_QUERY = 20
#: Tries to find a phrase with a word outside the most common ones.
PHRASE_TRIES = 20


@dataclass(frozen=True)
class Query:
    """A query as typed (``text``), the terms and phrase it parses to, and the page it was drawn from."""

    text: str
    terms: tuple[str, ...]
    phrase: tuple[str, ...] = ()
    page_url: str = ""


def word_query(rng: random.Random, page: Page, count: int, rank: Mapping[str, int], min_rank: int) -> Query | None:
    """``count`` distinct terms of ``page`` outside the ``min_rank`` most common words, in the page's order (title
    first); ``None`` when the page has fewer."""
    order = [w for w in dict.fromkeys([*page.title.lower().split(), *page.words]) if rank.get(w, min_rank) >= min_rank]
    if len(order) < count:
        return None
    chosen = set(rng.sample(order, count))
    terms = tuple(w for w in order if w in chosen)
    return Query(" ".join(terms), terms, (), page.url)


def phrase_query(rng: random.Random, page: Page, rank: Mapping[str, int], min_rank: int) -> Query | None:
    """Two consecutive body words of ``page``, quoted, not both among the ``min_rank`` most common words; ``None``
    when none is found in :data:`PHRASE_TRIES` tries."""
    words = page.words
    if len(words) < 2:
        return None
    for _ in range(PHRASE_TRIES):
        at = rng.randrange(len(words) - 1)
        pair = words[at], words[at + 1]
        if max(rank.get(w, min_rank) for w in pair) >= min_rank:
            return Query(f'"{pair[0]} {pair[1]}"', tuple(dict.fromkeys(pair)), pair, page.url)
    return None


def query_set(rng: random.Random, pages: Sequence[Page], rank: Mapping[str, int], count: int, phrase_share: float,
              word_weights: Sequence[float], min_rank: int) -> list[Query]:
    """``count`` distinct queries drawn from ``pages`` (module docstring); fewer only when the pages cannot give that
    many (each query gets :data:`MAX_DRAWS_PER_QUERY` tries)."""
    found: dict[str, Query] = {}
    sizes = range(1, len(word_weights) + 1)
    for _ in range(count * MAX_DRAWS_PER_QUERY):
        if len(found) >= count:
            break
        page = pages[rng.randrange(len(pages))]
        if rng.random() < phrase_share:
            query = phrase_query(rng, page, rank, min_rank)
        else:
            query = word_query(rng, page, rng.choices(sizes, weights=word_weights)[0], rank, min_rank)
        if query is not None:
            found.setdefault(query.text, query)
    return list(found.values())


def zipf_cdf(count: int, exponent: float) -> list[float]:
    """The cumulative weights of ranks 1 .. ``count``, rank r weighing ``1 / r**exponent``."""
    return list(itertools.accumulate(1.0 / (r ** exponent) for r in range(1, count + 1)))


def draw_rank(cdf: Sequence[float], rng: random.Random) -> int:
    """A 0-based rank drawn from ``cdf`` (:func:`zipf_cdf`)."""
    return min(bisect_left(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def prefixes(text: str, min_chars: int, max_chars: int) -> list[str]:
    """What a user has typed after each keystroke from the ``min_chars``-th to the ``max_chars``-th (at most the whole
    query; a query shorter than ``min_chars`` is typed in one go)."""
    last = min(max_chars, len(text))
    return [text[:n] for n in range(min(min_chars, last), last + 1)]
