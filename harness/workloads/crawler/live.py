"""What the crawler journeys share in one load process: the web's home pages, the crawls the process has running (for
the ``status`` journey), and the tally of every crawl it finished, logged at the end of the run.

Seed 001 #28 "Web Crawler" (shared/seeds/001_58dfc580020147d2.txt line 34: "URL frontier, robots.txt, politeness,
deduplication (MD5/Simhash), BFS | 10B pages, Googlebot-scale"). The workload's ``connect`` makes a :class:`Crawls`
for the process (no call); a fresh one per connect, so each step of ``casemesh capacity`` tallies its own crawls.

Seeds are drawn uniformly among the web's home pages, distinct within a crawl (:meth:`Crawls.seeds`). Crawls that
overlap in time draw their seeds independently, so they meet on the same hosts, whose politeness clock the crawler
keeps for every crawl at once: that sharing is what the load is about.

The tally (:class:`Tally`) adds up, over the process's crawls that ended DONE (the warm-up's included), the pages
fetched and the seconds they took (StartCrawl's send to the first GetCrawl that showed DONE), what the crawler
skipped (robots.txt, exact and near duplicates), the near-copies and the fetches (robots.txt included) the referee
saw, and the pages indexed; ``disconnect`` logs it with the throughput per crawl and the process's pages per second
over the time its crawls spanned.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from casemesh.crawler.v1 import crawler_pb2, web_pb2

from .seeding import SeedParams, State

log = logging.getLogger("casemesh.workloads.crawler")

#: Finished crawls the ``status`` journey may still look at when none is running (a dashboard's recent crawls).
RECENT = 16


@dataclass
class Tally:
    """Sums over the crawls that ended DONE (module docstring); times in seconds."""

    crawls: int = 0
    pages: int = 0
    seconds: float = 0.0
    robots_blocked: int = 0
    exact_duplicates: int = 0
    near_duplicates: int = 0
    near_copies_fetched: int = 0
    fetches: int = 0
    pages_indexed: int = 0
    fetch_errors: int = 0
    first_sent: float | None = None
    last_done: float | None = None

    def add(self, crawl: crawler_pb2.Crawl, audit: web_pb2.AuditResponse | None, sent: float, done: float) -> None:
        """One DONE crawl: its counts, the seconds from ``sent`` to ``done`` (perf_counter s), the referee's
        near-copies and fetches (robots.txt included) when its Audit answered."""
        self.crawls += 1
        self.pages += crawl.pages_fetched
        self.seconds += done - sent
        self.robots_blocked += crawl.robots_blocked
        self.exact_duplicates += crawl.exact_duplicates
        self.near_duplicates += crawl.near_duplicates
        self.pages_indexed += crawl.pages_indexed
        self.fetch_errors += crawl.fetch_errors
        if audit is not None:
            self.near_copies_fetched += audit.near_copies_fetched
            self.fetches += audit.fetches
        self.first_sent = sent if self.first_sent is None else min(self.first_sent, sent)
        self.last_done = done if self.last_done is None else max(self.last_done, done)

    def summary(self) -> str:
        """One line for the log: pages per second per crawl and over the window the crawls spanned."""
        if not self.crawls:
            return "no crawl ended DONE"
        span = (self.last_done or 0.0) - (self.first_sent or 0.0)
        over = f"{self.pages / span:.1f} pages/s over the {span:.0f} s they spanned" if span > 0 else "no span"
        return (f"{self.crawls} crawls DONE, {self.pages} pages in {self.seconds:.1f} crawl-seconds "
                f"({self.pages / self.seconds if self.seconds else 0:.1f} pages/s a crawl on average; {over}); "
                f"{self.fetches} fetches audited, robots.txt included; "
                f"skipped: {self.robots_blocked} by robots.txt, {self.exact_duplicates} exact and "
                f"{self.near_duplicates} near duplicates (the referee saw {self.near_copies_fetched} near-copies "
                f"fetched); {self.fetch_errors} fetch errors; {self.pages_indexed} pages indexed")


class Crawls:
    """A load process's share of the workload (module docstring); ``clock`` and ``sleep`` are injectable for tests."""

    def __init__(self, state: State, params: SeedParams | None = None, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if not state.home_pages:
            raise ValueError("the crawler workload needs at least one home page")
        self.state = state
        self.params = params or SeedParams()
        self.clock = clock
        self.sleep = sleep
        self.tally = Tally()
        self._running: dict[str, None] = {}
        self._recent: deque[str] = deque(maxlen=RECENT)

    def seeds(self, rng: random.Random, count: int) -> list[str]:
        """``count`` distinct home pages drawn uniformly (every one when the web has fewer)."""
        pages = self.state.home_pages
        return rng.sample(pages, min(count, len(pages)))

    def new_crawl_id(self) -> str:
        """A fresh crawl ID (:meth:`.seeding.State.crawl_id`)."""
        return self.state.crawl_id()

    def started(self, crawl_id: str) -> None:
        """StartCrawl answered: ``status`` may look at the crawl."""
        self._running[crawl_id] = None

    def ended(self, crawl_id: str) -> None:
        """The journey is done with the crawl: it moves to the recent ones."""
        self._running.pop(crawl_id, None)
        self._recent.append(crawl_id)

    def running(self) -> list[str]:
        """The process's crawls StartCrawl answered and whose journey has not ended, oldest first."""
        return list(self._running)

    def to_look_at(self, rng: random.Random) -> str | None:
        """A running crawl drawn uniformly; else the last one that ended; ``None`` before the first StartCrawl."""
        if self._running:
            return rng.choice(list(self._running))
        return self._recent[-1] if self._recent else None
