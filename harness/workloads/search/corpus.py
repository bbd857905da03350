"""The synthetic web the search workload indexes: pages of real English words at their real frequencies, linked by
preferential attachment (pure: no I/O but reading wordfreq's bundled word list).

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: the inverted index
example, term -> [{doc_id, positions, tf}], and "PageRank scores pages based on incoming links"); seed 001 #10
(shared/seeds/001_58dfc580020147d2.txt line 27: "10B documents, Google-scale").

- **Words** (:class:`Vocabulary`): the ``size`` most frequent English words of wordfreq
  (``wordfreq.top_n_list("en", size)``), kept when they are lower-case ASCII letters only (no "don't", no digits: one
  analysed term each, so a query of them parses to exactly them), each weighing ``10 ** zipf_frequency(word, "en")``,
  its real frequency per billion words. Words are drawn by that weight: "the" about once in 17 words, a word of rank
  10,000 about once in 160,000, the 100 most common words half of all words, so common words have long postings and
  rare ones short, as on the web (Zipf's law).
- **Pages** (:func:`generate`): page ``i`` is ``http://site<h>.r<run>.test/page<i>`` on host ``h`` drawn uniformly
  among ``hosts``; its title is ``title_words_min`` to ``title_words_max`` words (uniform) drawn by weight among the
  words outside the :data:`TITLE_SKIP` most common (titles are content words), in title case; its body is sentences
  of :data:`SENTENCE_WORDS` words in turn, the first capitalised, each ending with a full stop, ``body_words`` words
  in all, lognormal around the median with ``body_sigma`` (a few long pages, many short ones), at least
  :data:`MIN_BODY_WORDS`. The body's words are its analysed terms in order (the contract's analysis lower-cases and
  drops the punctuation), so consecutive words of :attr:`Page.words` are a phrase the page holds.
- **Links** (:func:`link`): Price's model (D. de S. Price, "A general theory of bibliometric and other cumulative
  advantage processes", 1976), the directed form of preferential attachment. Pages arrive in order; page ``i`` links to
  ``links_per_page`` distinct earlier pages (all of them when fewer), each drawn with probability proportional to its
  inbound links plus ``link_attractiveness``. In-degrees then follow a power law of exponent
  ``2 + attractiveness / links_per_page`` (2.1 with the defaults, the exponent Broder et al. measured on the web's
  in-degrees, "Graph structure in the web", WWW 2000): a few early pages collect a large share of the links and
  of the PageRank (with the defaults over 5,000 pages, the top ones about 2,000 inbound links each), half the pages
  none.

Everything is drawn from the generator given, in a fixed order (per page: host, title, body; then every page's
links), so the same seed gives the same web.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import wordfreq

#: Words of a title are drawn outside this many most common words.
TITLE_SKIP = 200
#: A body has at least this many words.
MIN_BODY_WORDS = 10
#: Sentences have these many words, in turn (a body's last one fewer).
SENTENCE_WORDS = (6, 11, 16)


@dataclass(frozen=True)
class Vocabulary:
    """Words by frequency, most common first, with their cumulative weights (module docstring)."""

    words: tuple[str, ...]
    cum_weights: tuple[float, ...]

    def rank(self) -> dict[str, int]:
        """Each word's 0-based frequency rank."""
        return {word: i for i, word in enumerate(self.words)}

    def draw(self, rng: random.Random, count: int, skip: int = 0) -> list[str]:
        """``count`` words drawn by frequency (with repeats), among all but the ``skip`` most common (inverse transform
        sampling over the cumulative weights past them)."""
        weights, last = self.cum_weights, len(self.words) - 1
        low = weights[skip - 1] if skip else 0.0
        span = weights[-1] - low
        return [self.words[min(bisect_right(weights, low + rng.random() * span), last)] for _ in range(count)]


@functools.lru_cache(maxsize=4)
def vocabulary(size: int) -> Vocabulary:
    """The ``size`` most frequent English words of wordfreq that are one lower-case ASCII term, weighed by their real
    frequency (module docstring). Read once per process and size (about 0.3 s for 20,000 words)."""
    words = tuple(w for w in wordfreq.top_n_list("en", size) if w.isascii() and w.isalpha() and w.islower())
    weights = (10 ** wordfreq.zipf_frequency(w, "en") for w in words)
    return Vocabulary(words, tuple(itertools.accumulate(weights)))


@dataclass(frozen=True)
class Page:
    """A page as IndexPage takes it: its URL, title, body and outlinks; ``words`` are its body's terms in order."""

    url: str
    title: str
    words: tuple[str, ...]
    outlinks: tuple[str, ...] = ()

    @property
    def body(self) -> str:
        """The body's text: :attr:`words` as sentences (module docstring)."""
        return body_text(self.words)

    @property
    def terms(self) -> frozenset[str]:
        """Every term the page holds, title and body."""
        return frozenset(self.title.lower().split()) | frozenset(self.words)


@dataclass(frozen=True)
class CorpusParams:
    """What :func:`generate` draws (the seed parameters of the same names)."""

    pages: int
    hosts: int
    vocabulary_size: int
    title_words_min: int
    title_words_max: int
    body_words: int
    body_sigma: float
    links_per_page: int
    link_attractiveness: float


def body_text(words: Sequence[str]) -> str:
    """``words`` as sentences: split where :func:`sentence_breaks` says, the first word capitalised, a full stop at
    the end of each."""
    sentences = []
    start = 0
    for end in sentence_breaks(len(words)):
        sentence = " ".join(words[start:end])
        sentences.append(sentence[:1].upper() + sentence[1:] + ".")
        start = end
    return " ".join(sentences)


def sentence_breaks(count: int) -> list[int]:
    """Where the sentences of ``count`` words end: :data:`SENTENCE_WORDS` words each in turn (no generator: the body's
    text is a function of its words)."""
    ends, at = [], 0
    for size in itertools.cycle(SENTENCE_WORDS):
        at += size
        if at >= count:
            ends.append(count)
            return ends
        ends.append(at)
    raise AssertionError("unreachable")  # pragma: no cover


def page_url(run: str, host: int, index: int) -> str:
    """Page ``index``'s URL on host ``host`` of run ``run``."""
    return f"http://site{host:04d}.r{run}.test/page{index}"


def body_length(rng: random.Random, median: int, sigma: float) -> int:
    """A body's word count: lognormal around ``median`` (``sigma``), at least :data:`MIN_BODY_WORDS`, at most 20 times
    the median."""
    drawn = round(rng.lognormvariate(math.log(median), sigma)) if sigma > 0 else median
    return min(max(drawn, MIN_BODY_WORDS), 20 * median)


def link(rng: random.Random, pages: int, per_page: int, attractiveness: float) -> list[list[int]]:
    """Each page's outlinks (indexes of earlier pages) by Price's model (module docstring)."""
    ends: list[int] = []  # one entry per inbound link so far: drawing from it is drawing by in-degree
    links: list[list[int]] = []
    for i in range(pages):
        wanted = min(per_page, i)
        chosen: list[int] = []
        seen: set[int] = set()
        while len(chosen) < wanted:
            uniform = attractiveness * i
            if rng.random() * (uniform + len(ends)) < uniform:
                target = rng.randrange(i)
            else:
                target = ends[rng.randrange(len(ends))]
            if target not in seen:
                seen.add(target)
                chosen.append(target)
        ends += chosen
        links.append(chosen)
    return links


def generate(params: CorpusParams, run: str, rng: random.Random) -> list[Page]:
    """The run's pages, drawn from ``rng`` (module docstring)."""
    words = vocabulary(params.vocabulary_size)
    skip = min(TITLE_SKIP, len(words.words) - 1)
    drafts = []
    for i in range(params.pages):
        host = rng.randrange(params.hosts)
        size = rng.randint(params.title_words_min, params.title_words_max)
        title = " ".join(w.capitalize() for w in words.draw(rng, size, skip=skip))
        body = tuple(words.draw(rng, body_length(rng, params.body_words, params.body_sigma)))
        drafts.append((page_url(run, host, i), title, body))
    links = link(rng, params.pages, params.links_per_page, params.link_attractiveness)
    return [Page(url, title, body, tuple(drafts[j][0] for j in links[i]))
            for i, (url, title, body) in enumerate(drafts)]


def in_degrees(pages: Sequence[Page]) -> dict[str, int]:
    """Each page's inbound links from the others (pages without any included, at 0)."""
    counts = dict.fromkeys((p.url for p in pages), 0)
    for page in pages:
        for url in page.outlinks:
            counts[url] = counts.get(url, 0) + 1
    return counts
