"""The synthetic web: hosts, pages, their text and links, copies, robots.txt variants and failing hosts, all derived
from the settings' seed, so the same settings always give the same web.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale |"), scaled to one machine: 200 hosts of 50
pages by default.

What is decided at start (:class:`WebPlan`, one pass of ``random.Random(f"{seed}:plan")``, a byte per page): each
host's robots.txt variant (:mod:`.robots`), which hosts are slow and which flaky, which pages are private (under
``/private/``), and which pages are copies of which (each original has one copy, so a copy and its original form a
pair). Counts come from shares rounded to whole numbers, placed at random.

What is made on demand (:meth:`SyntheticWeb.page`), from ``random.Random(f"{seed}:{host}:{index}")``:

- the title: 3 to 8 words drawn from the vocabulary without its :data:`TITLE_SKIP` most frequent words;
- the text: ``words_per_page`` words drawn from the ``vocabulary`` most frequent English words of wordfreq (letters
  a-z only), each with probability proportional to ``10 ** zipf_frequency`` (its real frequency: Zipf's law), of
  which :data:`TOPIC_SHARE` are replaced by the title's words, so a page is about its title as a real one is;
- the links (``links_min`` to ``links_max`` drawn, a repeated target or the page itself dropped): the host's home page
  ``/`` first (but on the home page), then ``internal_link_share`` to pages of the same host (root-relative
  ``/p/12``, or absolute for :data:`ABSOLUTE_SHARE` of them), the rest to other hosts
  (absolute, half to their home page) picked by preferential attachment (Zipf over host numbers: a few popular hosts
  get most inbound links, which gives PageRank something to find), ``broken_link_share`` to pages that do not exist
  (404); links to private pages come with the rest (private pages are ``private_page_share`` of all). Each link's text
  is the target's title.

A copy serves its original's page (title, text and links, so the same HTML); a near copy with ``near_copy_edits``
words of the text replaced at random positions. Paths: ``/`` (index 0, the home page), ``/p/<index>`` and
``/private/<index>`` (index 1 to ``pages_per_host - 1``), ``/robots.txt``; anything else answers 404.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from urllib.parse import urlsplit

import wordfreq

from .. import contract
from .robots import PRIVATE_PREFIX, HostRules, RobotsVariant, robots_text
from .settings import WebSettings

__all__ = ["ABSOLUTE_SHARE", "TITLE_SKIP", "TOPIC_SHARE", "Link", "Location", "Page", "PageKind", "SyntheticWeb",
           "Vocabulary", "WebPlan", "load_vocabulary"]

#: Titles skip the vocabulary's most frequent words ("the", "of", ...), as real titles do.
TITLE_SKIP = 100
#: Share of a page's text replaced by its title's words.
TOPIC_SHARE = 0.1
#: Share of same-host links written as absolute URLs (the others are root-relative).
ABSOLUTE_SHARE = 0.3
#: Share of cross-host links to the other host's home page.
HOME_LINK_SHARE = 0.5
_PAGE_PATH = re.compile(r"/(p|private)/(0|[1-9][0-9]{0,6})")
ROBOTS_PATH = "/robots.txt"


class Vocabulary:
    """The ``size`` most frequent English words of wordfreq (letters a-z only) with Zipf weights.

    A word's weight is ``10 ** wordfreq.zipf_frequency(word, "en")`` (proportional to its frequency per billion
    words); the cumulative weights are computed once and sampling is ``random.choices(cum_weights=...)``.
    """

    def __init__(self, size: int):
        self.words = [w for w in wordfreq.top_n_list("en", size) if w.isascii() and w.isalpha()]
        self._cum = list(itertools.accumulate(10 ** wordfreq.zipf_frequency(w, "en") for w in self.words))
        self._title_words = self.words[TITLE_SKIP:]
        skipped = self._cum[TITLE_SKIP - 1] if len(self._cum) >= TITLE_SKIP else 0.0
        self._title_cum = [c - skipped for c in self._cum[TITLE_SKIP:]]

    def draw(self, rng: random.Random, k: int) -> list[str]:
        """``k`` words at their frequencies (with replacement)."""
        return rng.choices(self.words, cum_weights=self._cum, k=k)

    def draw_title(self, rng: random.Random, k: int) -> list[str]:
        """``k`` words at their frequencies, none among the :data:`TITLE_SKIP` most frequent."""
        return rng.choices(self._title_words, cum_weights=self._title_cum, k=k)


@functools.lru_cache(maxsize=4)
def load_vocabulary(size: int) -> Vocabulary:
    """The :class:`Vocabulary` of ``size`` words (loading one takes a few tenths of a second; cached)."""
    return Vocabulary(size)


class PageKind(IntEnum):
    """What a page is (one byte per page in :class:`WebPlan`)."""

    PAGE = 0
    PRIVATE = 1
    NEAR_COPY = 2
    EXACT_COPY = 3


def _count(share: float, total: int) -> int:
    return min(total, round(share * total))


class WebPlan:
    """What the web decides at start (see the module docstring): per host its robots.txt variant and whether it is
    slow or flaky, per page (key ``host * pages_per_host + index``) its :class:`PageKind`, and the copy pairs."""

    def __init__(self, settings: WebSettings):
        self.hosts = settings.hosts
        self.pages_per_host = settings.pages_per_host
        self.page_count = settings.hosts * settings.pages_per_host
        rng = random.Random(f"{settings.seed}:plan")
        order = list(range(self.hosts))
        rng.shuffle(order)
        self.variants = [RobotsVariant.STANDARD] * self.hosts
        start = 0
        for variant, share in ((RobotsVariant.CLOSED, settings.closed_host_share),
                               (RobotsVariant.CRAWL_DELAY, settings.crawl_delay_host_share),
                               (RobotsVariant.MISSING, settings.missing_robots_share),
                               (RobotsVariant.FAILING, settings.failing_robots_share)):
            end = min(self.hosts, start + _count(share, self.hosts))
            for host in order[start:end]:
                self.variants[host] = variant
            start = end
        self.slow_hosts = frozenset(rng.sample(range(self.hosts), _count(settings.slow_host_share, self.hosts)))
        self.flaky_hosts = frozenset(rng.sample(range(self.hosts), _count(settings.flaky_host_share, self.hosts)))

        self.kinds = bytearray(self.page_count)  # PageKind.PAGE
        inner = [k for k in range(self.page_count) if k % self.pages_per_host]  # every page but the home pages
        private = rng.sample(inner, min(len(inner), _count(settings.private_page_share, self.page_count)))
        for key in private:
            self.kinds[key] = PageKind.PRIVATE
        eligible = [k for k in inner if self.kinds[k] == PageKind.PAGE]
        near = _count(settings.near_copy_share, self.page_count)
        exact = _count(settings.exact_copy_share, self.page_count)
        pairs = min(near + exact, len(eligible) // 2)
        near = min(near, pairs)
        chosen = rng.sample(eligible, 2 * pairs)
        #: Copy key -> its original's key.
        self.original: dict[int, int] = {}
        #: Each page of a copy pair -> the other one.
        self.partner: dict[int, int] = {}
        for i, (copy, original) in enumerate(zip(chosen[:pairs], chosen[pairs:], strict=True)):
            self.kinds[copy] = PageKind.NEAR_COPY if i < near else PageKind.EXACT_COPY
            self.original[copy] = original
            self.partner[copy], self.partner[original] = original, copy
        self.near_copies = near
        self.exact_copies = pairs - near

    def key(self, host: int, index: int) -> int:
        return host * self.pages_per_host + index

    def path(self, index: int, kind: int) -> str:
        """The path of page ``index`` of a host: ``/``, ``/p/<index>`` or ``/private/<index>``."""
        if index == 0:
            return "/"
        return f"{PRIVATE_PREFIX}{index}" if kind == PageKind.PRIVATE else f"/p/{index}"


@dataclass(frozen=True, slots=True)
class Link:
    """One ``<a href>``: the href as written (absolute or root-relative) and its text."""

    href: str
    text: str


@dataclass(frozen=True, slots=True)
class Page:
    """A page's content: its title, its text's words and its links."""

    title: str
    words: Sequence[str]
    links: Sequence[Link]


@dataclass(frozen=True, slots=True)
class Location:
    """Where a URL of a known host leads: robots.txt, a page (``key``), or nothing (404)."""

    host: int
    path: str
    robots: bool = False
    key: int | None = None


class SyntheticWeb:
    """The web of ``settings`` (see the module docstring): its plan, its pages on demand, its URLs and robots.txt."""

    def __init__(self, settings: WebSettings, vocabulary: Vocabulary | None = None):
        self.settings = settings
        self.plan = WebPlan(settings)
        self.vocabulary = vocabulary or load_vocabulary(settings.vocabulary)
        self.host_names = [contract.host_name(h) for h in range(settings.hosts)]
        self._host_numbers = {name: h for h, name in enumerate(self.host_names)}
        self._host_cum = list(itertools.accumulate(1 / (h + 1) ** settings.host_popularity_exponent
                                                   for h in range(settings.hosts)))
        self.robots_texts = [robots_text(variant, name, settings.crawl_delay_s)
                             for variant, name in zip(self.plan.variants, self.host_names, strict=True)]
        self.rules = [HostRules(variant, text) for variant, text in
                      zip(self.plan.variants, self.robots_texts, strict=True)]
        self.disallowed_pages = sum(self._disallowed(host) for host in range(settings.hosts))

    def _disallowed(self, host: int) -> int:
        """Pages of ``host`` its robots.txt closes to ``casemesh-bot``. Its rules are path prefixes (``/``,
        ``/private/``), so one path of each shape (home, ``/p/``, ``/private/``) stands for every page of it."""
        rules, per_host = self.rules[host], self.plan.pages_per_host
        private = self.plan.kinds[host * per_host:(host + 1) * per_host].count(PageKind.PRIVATE)
        closed = [not rules.allowed(path, contract.USER_AGENT) for path in ("/", "/p/1", f"{PRIVATE_PREFIX}1")]
        return closed[0] + closed[1] * (per_host - 1 - private) + closed[2] * private

    # --- addresses -----------------------------------------------------------------------------------------------

    @property
    def page_count(self) -> int:
        return self.plan.page_count

    def host_of(self, key: int) -> int:
        return key // self.plan.pages_per_host

    def path_of(self, key: int) -> str:
        return self.plan.path(key % self.plan.pages_per_host, self.plan.kinds[key])

    def url_of(self, key: int) -> str:
        """Page ``key``'s URL, ``http://HOST/PATH``."""
        return f"http://{self.host_names[self.host_of(key)]}{self.path_of(key)}"

    def home_pages(self) -> list[str]:
        """Every host's home page URL, by host number."""
        return [f"http://{name}/" for name in self.host_names]

    def locate(self, url: str) -> Location | None:
        """Where ``url`` (an ``http://`` URL, :func:`..contract.is_web_url`) leads; ``None`` when its host is not one
        of the web's. The fragment is ignored, as an HTTP client never sends it; a query leads nowhere (404)."""
        parts = urlsplit(url)
        host = self._host_numbers.get(parts.hostname or "")
        if host is None or parts.port is not None:
            return None
        path = parts.path or "/"
        if parts.query:
            return Location(host, path)
        if path == ROBOTS_PATH:
            return Location(host, path, robots=True)
        if path == "/":
            return Location(host, path, key=self.plan.key(host, 0))
        match = _PAGE_PATH.fullmatch(path)
        if match is None:
            return Location(host, path)
        index = int(match[2])
        if not 1 <= index < self.plan.pages_per_host:
            return Location(host, path)
        key = self.plan.key(host, index)
        if (self.plan.kinds[key] == PageKind.PRIVATE) != (match[1] == "private"):
            return Location(host, path)
        return Location(host, path, key=key)

    # --- content ---------------------------------------------------------------------------------------------------

    def _rng(self, key: int, suffix: str = "") -> random.Random:
        return random.Random(f"{self.settings.seed}:{self.host_of(key)}:{key % self.plan.pages_per_host}{suffix}")

    def title(self, key: int) -> str:
        """Page ``key``'s title (a copy's is its original's)."""
        key = self.plan.original.get(key, key)
        rng = self._rng(key)
        return " ".join(self.vocabulary.draw_title(rng, rng.randint(3, 8)))

    def page(self, key: int) -> Page:
        """Page ``key``'s content (see the module docstring); a copy's is its original's, a near copy's with
        ``near_copy_edits`` words of the text replaced."""
        original = self.plan.original.get(key)
        if original is None:
            return self._generate(key)
        page = self._generate(original)
        if self.plan.kinds[key] == PageKind.EXACT_COPY:
            return page
        words = list(page.words)
        rng = self._rng(key, ":edits")
        for position in rng.sample(range(len(words)), min(self.settings.near_copy_edits, len(words))):
            replacement = words[position]
            while replacement == words[position]:
                replacement = self.vocabulary.draw(rng, 1)[0]
            words[position] = replacement
        return Page(page.title, words, page.links)

    def _generate(self, key: int) -> Page:
        settings, plan = self.settings, self.plan
        rng = self._rng(key)
        title = self.vocabulary.draw_title(rng, rng.randint(3, 8))
        words = self.vocabulary.draw(rng, settings.words_per_page)
        for position in rng.sample(range(len(words)), int(len(words) * TOPIC_SHARE)):
            words[position] = rng.choice(title)
        host, index = divmod(key, plan.pages_per_host)
        links: dict[str, str] = {}
        if index != 0:
            links["/"] = self.title(plan.key(host, 0))
        for _ in range(rng.randint(settings.links_min, settings.links_max) - len(links)):
            draw = rng.random()
            if draw < settings.broken_link_share:
                href = f"/p/{plan.pages_per_host + rng.randrange(1_000_000)}"
                links.setdefault(href, " ".join(self.vocabulary.draw_title(rng, 2)))
                continue
            target = host
            if rng.random() >= settings.internal_link_share and settings.hosts > 1:
                while target == host:
                    target = rng.choices(range(settings.hosts), cum_weights=self._host_cum)[0]
            if target == host:
                target_index = rng.randrange(plan.pages_per_host)
                absolute = rng.random() < ABSOLUTE_SHARE
            else:
                target_index = 0 if rng.random() < HOME_LINK_SHARE else rng.randrange(plan.pages_per_host)
                absolute = True
            target_key = plan.key(target, target_index)
            if target_key == key:
                continue
            href = self.url_of(target_key) if absolute else self.path_of(target_key)
            links.setdefault(href, self.title(target_key))
        return Page(" ".join(title), words, [Link(href, text) for href, text in links.items()])

    def robots(self, host: int) -> tuple[int, str | None]:
        """Host ``host``'s robots.txt answer: (200, the text), (404, None) or (503, None)."""
        variant = self.plan.variants[host]
        if variant is RobotsVariant.MISSING:
            return 404, None
        if variant is RobotsVariant.FAILING:
            return 503, None
        return 200, self.robots_texts[host]
