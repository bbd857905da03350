"""One shard of the document-sharded inverted index: postings with positions, AND and phrase matching, BM25 from
collection-wide statistics, a PageRank boost.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664): the "Inverted Index
Example" (term -> [{doc_id, positions, tf}]), "Index Server: Sharded index", "Ranker: PageRank + ML models for
relevance scoring"; seed 001 #10 (shared/seeds/001_58dfc580020147d2.txt line 27: "Inverted index, PageRank, query
processing"). The structure is the seed's: ``postings[term][doc_slot] = positions`` (the term's positions in the page,
packed; their count is the term frequency ``tf``).

- **Documents**: a page is analysed with :func:`services.search.analysis.analyze` (the same as queries), title terms
  first (positions ``0 .. T-1``), then the body's (``T+1 .. T+B``): one position is left out between them, so no phrase
  spans the end of the title and the start of the body. The page's length is ``T + B`` terms. A page keeps its slot
  (a small integer) for life: indexing its URL again removes the old postings, then adds the new ones
  (replace-on-reindex), so a page is never found twice and the statistics never count it twice.
- **Matching** (:meth:`ShardIndex.search`): a page matches when it holds every term of the query (AND) and every phrase
  (the phrase's terms at consecutive positions). Postings are intersected smallest first (C-level set intersection of
  dictionary keys), phrases are checked on the survivors only, and only matching pages are scored.
- **Scoring**: Okapi BM25 (Robertson and Zaragoza, "The Probabilistic Relevance Framework: BM25 and Beyond", 2009),
  ``k1`` = :data:`K1`, ``b`` = :data:`B`, one field (title and body together)::

      idf(t)  = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))
      bm25(D) = sum over the query's terms, in the query's order, of idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |D| / avgdl))
      score   = bm25 * (1 + w * ln(1 + N * pagerank))

  with ``N``, ``n_t`` and ``avgdl = total_terms / N`` taken from the :class:`Statistics` the caller passes (summed over
  every shard: Elasticsearch's "DFS query then fetch"), never from this shard's own counts; ``|D|``, ``tf`` and the
  PageRank are the page's own. A page therefore gets bit-identical scores whichever shard holds it and however many
  shards there are (the same floating-point operations in the same order). ``w`` is the caller's PageRank weight
  (protos/casemesh/search/v1/search.proto, SearchHit.score).
- **Results**: the best ``top_k`` by ``(-score, url)`` (ties by URL, ascending; ``heapq.nsmallest``), each with a
  snippet (:func:`.snippets.snippet`), built for those pages only.

Why not tantivy's index (which the video search uses, and whose analyser this engine shares): a document-sharded
engine must score every shard's pages with the collection's statistics, or the same page scores differently on
different shards and the merged ranking depends on the shard count (the invariant tests/integration/
test_search_shard_invariance.py checks). tantivy computes BM25 from its own index's statistics, and tantivy-py 0.27
exposes no way to pass others to its scorer (only ``Searcher.doc_freq`` and ``num_docs`` to read them), so a shard
here is this small positional index, scored as above.

Everything is synchronous and in memory; the service runs every call on the event loop with no ``await`` inside a
mutation or a search, so no locks are needed. Memory: one dictionary entry per (term, page) pair (about 175 per
250-word page of real English word frequencies; about 200 MB for 20,000 such pages, texts included); the packed
single positions most entries hold are shared (:data:`_SINGLES`).
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..analysis import analyze
from .snippets import snippet, term_pattern

__all__ = ["K1", "B", "Hit", "PageLike", "Query", "SearchResult", "ShardIndex", "Statistics", "idf"]

#: BM25's term-frequency saturation (the Lucene and Elasticsearch default).
K1 = 1.2
#: BM25's length normalisation (the Lucene and Elasticsearch default).
B = 0.75
_K1_PLUS_1 = K1 + 1.0
_ONE_MINUS_B = 1.0 - B
#: A term's positions in a page are stored as packed unsigned 32-bit integers (``array`` type code "I", 4 bytes):
#: ``bytes`` hold no references, so the per-term dictionaries stay untracked by the garbage collector (measured with
#: 3.5 million entries, 20,000 pages: a full collection took 305 ms with tuples of ints, which every request then waits
#: out, and 1.6 ms with bytes), and the term frequency is ``len(positions) >> 2``.
_TYPECODE = "I"
_TF_SHIFT = array(_TYPECODE).itemsize.bit_length() - 1  # 4 bytes a position: tf = len >> 2
#: Shared one-position entries for positions below this (most terms of a page occur once).
_SINGLE_LIMIT = 4_096
_SINGLES: tuple[bytes, ...] = tuple(array(_TYPECODE, (p,)).tobytes() for p in range(_SINGLE_LIMIT))
#: Positions lists at least this long are turned into a set for a phrase check (a list scan is faster below).
_PHRASE_SET_MIN = 8


class PageLike(Protocol):
    """What :meth:`ShardIndex.put` reads of a page (a ``search_pb2.WebPage`` is one)."""

    url: str
    title: str
    body: str


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: distinct ``terms`` (1 or more, the BM25 order) and ``phrases`` (runs of 2 or more terms, each
    among ``terms``)."""

    terms: tuple[str, ...]
    phrases: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        if not self.terms or any(term not in self.terms for phrase in self.phrases for term in phrase):
            raise ValueError("a query needs terms, and a phrase's terms must be among them")


@dataclass(frozen=True, slots=True)
class Statistics:
    """What BM25 needs of the collection: pages ``doc_count``, terms ``total_terms``, and per term of the query (same
    order) the pages holding it, ``doc_freqs`` (each at most ``doc_count``)."""

    doc_count: int
    total_terms: int
    doc_freqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Hit:
    """One matching page: its URL, title, snippet, BM25 score, PageRank and final score (module docstring)."""

    url: str
    title: str
    snippet: str
    bm25: float
    pagerank: float
    score: float


class SearchResult(NamedTuple):
    """The best hits (best first), the number of matching pages, and the postings entries the intersection probed
    (the work done: the smallest postings list, then the survivors probed against each further term)."""

    hits: list[Hit]
    matched: int
    scanned: int


def idf(doc_count: int, doc_freq: int) -> float:
    """BM25's inverse document frequency, ``ln(1 + (N - n + 0.5) / (n + 0.5))``; > 0 when ``doc_freq <= doc_count``."""
    return math.log(1.0 + (doc_count - doc_freq + 0.5) / (doc_freq + 0.5))


def _positions(terms: Iterable[str], start: int, into: dict[str, list[int]]) -> None:
    for position, term in enumerate(terms, start):
        found = into.get(term)
        if found is None:
            into[term] = [position]
        else:
            found.append(position)


def _analysed(page: PageLike) -> tuple[int, dict[str, list[int]]]:
    """The page's length in terms and each term's positions (title first, one position left out, then the body)."""
    title, body = analyze(page.title), analyze(page.body)
    positions: dict[str, list[int]] = {}
    _positions(title, 0, positions)
    _positions(body, len(title) + 1, positions)
    return len(title) + len(body), positions


def _unpacked(positions: bytes) -> list[int]:
    return memoryview(positions).cast(_TYPECODE).tolist()


def _has_phrase(slot: int, phrase: Sequence[dict[int, bytes]]) -> bool:
    """True when the page in ``slot`` holds the phrase whose terms' postings are ``phrase``, at consecutive positions."""
    lists = [_unpacked(postings[slot]) for postings in phrase]
    anchor = min(range(len(lists)), key=lambda i: len(lists[i]))  # the rarest term's positions drive the check
    others = [(i - anchor, positions if len(positions) < _PHRASE_SET_MIN else frozenset(positions))
              for i, positions in enumerate(lists) if i != anchor]
    return any(all(p + offset in positions for offset, positions in others) for p in lists[anchor])


class ShardIndex:
    """One shard's pages and postings (see the module docstring). Not thread-safe: one caller at a time (the event
    loop)."""

    def __init__(self) -> None:
        self._postings: dict[str, dict[int, bytes]] = {}
        self._slot_of: dict[str, int] = {}
        # Per slot (parallel lists, the hot path's fastest lookups):
        self._urls: list[str] = []
        self._titles: list[str] = []
        self._bodies: list[str] = []
        self._lengths: list[int] = []
        self._ranks: list[float] = []
        self._total_terms = 0
        #: The last PageRank pass this shard took ranks from (0: none).
        self.rank_version = 0

    @property
    def doc_count(self) -> int:
        """Pages on the shard."""
        return len(self._urls)

    @property
    def term_count(self) -> int:
        """Distinct terms on the shard."""
        return len(self._postings)

    @property
    def total_terms(self) -> int:
        """Terms of every page on the shard (title and body)."""
        return self._total_terms

    def put(self, page: PageLike, pagerank: float) -> bool:
        """Index ``page`` with its PageRank (0: none yet), replacing the page of the same URL (its old postings go);
        ``True`` when the URL was new to the shard. The caller validates the URL and the rank."""
        length, positions = _analysed(page)  # everything that can fail happens before the index changes
        slot = self._slot_of.get(page.url)
        created = slot is None
        if slot is None:
            slot = self._slot_of[page.url] = len(self._urls)
            self._urls.append(page.url)
            self._titles.append(page.title)
            self._bodies.append(page.body)
            self._lengths.append(length)
            self._ranks.append(pagerank)
        else:
            self._remove_postings(slot)
            self._total_terms -= self._lengths[slot]
            self._titles[slot], self._bodies[slot] = page.title, page.body
            self._lengths[slot], self._ranks[slot] = length, pagerank
        self._total_terms += length
        postings = self._postings
        for term, found in positions.items():
            stored = (_SINGLES[found[0]] if len(found) == 1 and found[0] < _SINGLE_LIMIT
                      else array(_TYPECODE, found).tobytes())
            pages = postings.get(term)
            if pages is None:
                postings[term] = {slot: stored}
            else:
                pages[slot] = stored
        return created

    def _remove_postings(self, slot: int) -> None:
        """Remove the postings of the page in ``slot`` (its terms found again by analysing its stored text)."""
        postings = self._postings
        _, positions = _analysed(_StoredPage(self._urls[slot], self._titles[slot], self._bodies[slot]))
        for term in positions:
            pages = postings[term]
            del pages[slot]
            if not pages:
                del postings[term]

    def set_ranks(self, entries: Iterable[tuple[str, float]], rank_version: int) -> int:
        """Set the PageRank of the pages named by ``(url, pagerank)`` entries from pass ``rank_version``; pages the
        shard does not hold are ignored, pages not named keep their rank. A pass older than :attr:`rank_version` is
        ignored whole (a late retry must not undo a newer pass). Returns the entries whose page the shard holds (0 for
        an ignored pass)."""
        if rank_version < self.rank_version:
            return 0
        self.rank_version = rank_version
        slot_of, ranks, updated = self._slot_of, self._ranks, 0
        for url, pagerank in entries:
            slot = slot_of.get(url)
            if slot is not None:
                ranks[slot] = pagerank
                updated += 1
        return updated

    def term_statistics(self, terms: Iterable[str]) -> Statistics:
        """This shard's statistics for ``terms``: pages, terms, and each term's document frequency (in order)."""
        postings = self._postings
        return Statistics(self.doc_count, self._total_terms, tuple(len(postings.get(t, ())) for t in terms))

    def _matches(self, query: Query) -> tuple[Iterable[int], int, int]:
        """The slots of the pages holding every term and phrase of ``query``, how many, and the entries probed."""
        postings = self._postings
        lists = []
        for term in query.terms:
            pages = postings.get(term)
            if pages is None:
                return (), 0, 0
            lists.append(pages)
        ordered = sorted(lists, key=len)
        scanned = len(ordered[0])
        if len(ordered) == 1:
            matches: Iterable[int] = ordered[0].keys()
        else:
            matches = ordered[0].keys() & ordered[1].keys()  # iterates the smaller side, probes the larger (C)
            for pages in ordered[2:]:
                scanned += len(matches)
                matches = matches & pages.keys()
        for phrase in query.phrases:  # its terms are among the query's: every match holds them
            phrase_postings = [postings[t] for t in phrase]
            matches = [slot for slot in matches if _has_phrase(slot, phrase_postings)]
        return matches, len(matches), scanned

    def search(self, query: Query, statistics: Statistics, top_k: int, pagerank_weight: float) -> SearchResult:
        """The best ``top_k`` pages matching ``query``, scored with ``statistics`` (the collection's, aligned with
        ``query.terms``) and ``pagerank_weight`` (>= 0) as the module docstring says, best score first (ties by URL,
        ascending)."""
        matches, matched, scanned = self._matches(query)
        if not matched:
            return SearchResult([], 0, scanned)
        doc_count = statistics.doc_count
        # avgdl from the collection; statistics without terms (a race with the first puts) score every page as of
        # average length.
        avgdl = statistics.total_terms / doc_count if statistics.total_terms > 0 and doc_count > 0 else 0.0
        postings = self._postings
        weighted = [(idf(doc_count, n), postings[t]) for t, n in zip(query.terms, statistics.doc_freqs, strict=True)]
        lengths, ranks, urls = self._lengths, self._ranks, self._urls
        scored = []
        for slot in matches:
            norm = K1 * (_ONE_MINUS_B + B * lengths[slot] / avgdl) if avgdl else K1
            bm25 = 0.0
            for term_idf, pages in weighted:
                tf = len(pages[slot]) >> _TF_SHIFT
                bm25 += term_idf * (tf * _K1_PLUS_1) / (tf + norm)
            score = bm25 * (1.0 + pagerank_weight * math.log1p(doc_count * ranks[slot]))
            scored.append((-score, urls[slot], slot, bm25))
        best = heapq.nsmallest(top_k, scored)
        pattern = term_pattern(query.terms)
        hits = [Hit(url, self._titles[slot], snippet(self._bodies[slot], pattern), bm25, ranks[slot], -negative)
                for negative, url, slot, bm25 in best]
        return SearchResult(hits, matched, scanned)


@dataclass(frozen=True, slots=True)
class _StoredPage:
    url: str
    title: str
    body: str
