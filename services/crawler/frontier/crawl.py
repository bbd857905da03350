"""One crawl: its frontier, its deduplicator, its counts, and what each fetch's answer does to them.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "| 28 | Web Crawler | URL frontier, robots.txt,
politeness, deduplication (MD5/Simhash), BFS |"); seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt, "Search Engine":
"Crawl and index web pages continuously"). The process's fetchers (:mod:`.fetchers`) ask a crawl for the next fetch
of a host (:meth:`Crawl.take`) and hand it the answer (:meth:`Crawl.record`):

- robots.txt first, once per host (:mod:`.robots`): 4xx allows everything; 2xx gives the rules and the Crawl-delay
  (returned, for the process's host clock); 5xx or a failed fetch (a deadline) closes the host (its URLs count as
  ``robots_blocked``); an unknown host (the web's NOT_FOUND, a DNS failure) closes it too (its URLs count as
  ``fetch_errors``);
- a page answered 200 counts in ``pages_fetched``; its visible text (:mod:`.parse`) is checked against the crawl's
  pages (:mod:`.dedup`): a duplicate (``exact_duplicates``, ``near_duplicates``) is neither indexed nor followed;
  otherwise its links are queued one level deeper (unless the page is at ``max_depth``) and, with ``index_pages``,
  the page is returned for the indexer (:mod:`.indexing`);
- a 503 is queued again (behind its host's interval, like any fetch) up to ``max_retries`` times, then counts in
  ``fetch_errors`` like a 404 or a fetch that failed (a deadline);
- a fetch that never reached the web (UNAVAILABLE: the web down or restarting; :mod:`.fetch`) is queued again as it
  was, robots.txt included, with no attempt spent: a crawl waits out an outage of the web (at its hosts' intervals)
  instead of writing every host off.

A page fetch starts only while ``pages_fetched`` plus the page fetches in flight is below ``max_pages``, so the crawl
stops at exactly ``max_pages`` pages answered 200. It is DONE when that many were fetched, or its frontier ran dry,
with nothing in flight and every page it sent to the indexer answered; CANCELLED by :meth:`Crawl.cancel` (fetches in
flight finish, for their hosts' sake, but their answers are no longer counted, so the crawl CancelCrawl returns is the
crawl as it stays). An ended crawl keeps only its counts: its frontier, seen set and fingerprints are dropped.

Times: ``clock`` is the monotonic clock the fetchers use (``time.monotonic``, seconds), ``wall_ms`` the wall clock
in Unix milliseconds (for ``started_at_unix_ms`` and ``finished_at_unix_ms``); tests pass their own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from casemesh.crawler.v1 import crawler_pb2
from casemesh.search.v1 import search_pb2

from ..contract import robots_url
from . import metrics
from .dedup import Deduplicator, Duplicate
from .fetch import FetchFailed, WebResponse
from .frontier import Added, Frontier, QueuedUrl, host_of
from .indexing import IndexFeed, web_page
from .parse import parse_page
from .robots import UNREACHABLE, rules_from_response
from .settings import CrawlerSettings
from .validation import CrawlRequest

log = logging.getLogger("casemesh.crawler.crawl")

RUNNING, DONE, CANCELLED = (crawler_pb2.CRAWL_STATE_RUNNING, crawler_pb2.CRAWL_STATE_DONE,
                            crawler_pb2.CRAWL_STATE_CANCELLED)


def unix_ms() -> int:
    """Now, in Unix milliseconds."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Fetch:
    """One fetch a crawl asked for: ``url`` of ``host``; ``item`` the queued page, ``None`` for robots.txt."""

    host: str
    url: str
    item: QueuedUrl | None

    @property
    def robots(self) -> bool:
        return self.item is None


@dataclass(frozen=True)
class Recorded:
    """What the fetchers do after :meth:`Crawl.record`: obey ``crawl_delay_s`` (a robots.txt's, seconds) on the
    host, send ``page`` to the indexer."""

    crawl_delay_s: float | None = None
    page: search_pb2.WebPage | None = None


class Crawl:
    """A crawl of ``request`` under ``settings``.

    ``notify(crawl, host)`` is called whenever ``host`` has new work for the crawl (the fetchers queue the host);
    ``on_end(crawl)`` once, when the crawl ends; ``index`` sends pages to the indexer (``None``: a mesh without one,
    only for crawls without ``index_pages``).
    """

    def __init__(self, request: CrawlRequest, settings: CrawlerSettings, *, notify: Callable[[Crawl, str], None],
                 on_end: Callable[[Crawl], None], index: IndexFeed | None = None,
                 clock: Callable[[], float] = time.monotonic, wall_ms: Callable[[], int] = unix_ms) -> None:
        self.request = request
        self._settings = settings
        self._notify = notify
        self._on_end = on_end
        self._index = index
        self._clock, self._wall_ms = clock, wall_ms
        self.state = RUNNING
        self._started, self._started_ms = clock(), wall_ms()
        self._ended: float | None = None
        self._ended_ms = 0
        self._frontier = Frontier()
        self._dedup = Deduplicator(settings.near_duplicates, settings.simhash_distance)
        self._unknown_hosts: set[str] = set()
        self._budget_waiters: set[str] = set()  # hosts that had work when the page budget was in flight
        self._pages_in_flight = self._robots_in_flight = self._index_pending = 0
        self._index_tasks: set[asyncio.Task] = set()
        self.pages_fetched = self.pages_indexed = self.fetch_errors = self.robots_blocked = 0
        self.exact_duplicates = self.near_duplicates = self.depth_reached = 0
        self._frontier_size = self._hosts = 0  # kept when the crawl ends

    @property
    def crawl_id(self) -> str:
        return self.request.crawl_id

    # --- the fetchers' side ---------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Queue the seeds at depth 0."""
        self._discover(self.request.seed_urls, 0)
        metrics.FRONTIER_SIZE.inc(self._frontier.size)

    def has_work(self, host: str) -> bool:
        """True while the crawl runs and ``host`` has a robots.txt or URLs to fetch for it."""
        return self.state == RUNNING and self._frontier.has_work(host)

    def take(self, host: str) -> Fetch | None:
        """The crawl's next fetch of ``host`` (its robots.txt first, then its shallowest URL), counted in flight;
        ``None`` when there is none, or none allowed while the page fetches in flight could use up ``max_pages``."""
        if self.state != RUNNING:
            return None
        if self.pages_fetched + self._pages_in_flight >= self.request.max_pages:
            if self._frontier.has_work(host):
                self._budget_waiters.add(host)
            return None
        if self._frontier.start_robots(host):
            self._robots_in_flight += 1
            return Fetch(host, robots_url(f"http://{host}/"), None)
        item = self._frontier.pop(host)
        if item is None:
            return None
        metrics.FRONTIER_SIZE.dec()
        self._pages_in_flight += 1
        return Fetch(host, item.url, item)

    def record(self, fetch: Fetch, outcome: WebResponse | FetchFailed) -> Recorded:
        """The answer to ``fetch`` (an HTTP response, or the failure of a fetch that got none)."""
        if fetch.robots:
            self._robots_in_flight -= 1
        else:
            self._pages_in_flight -= 1
        if self.state != RUNNING:
            return Recorded()
        size = self._frontier.size
        if fetch.robots:
            recorded = self._robots(fetch.host, outcome)
        else:
            recorded = self._page(fetch.item, outcome)
        metrics.FRONTIER_SIZE.inc(self._frontier.size - size)
        if self._budget_waiters and self.pages_fetched + self._pages_in_flight < self.request.max_pages:
            waiters, self._budget_waiters = self._budget_waiters, set()
            for host in waiters:
                self._notify(self, host)
        self._end_if_finished()
        return recorded

    def _robots(self, host: str, outcome: WebResponse | FetchFailed) -> Recorded:
        if isinstance(outcome, FetchFailed) and outcome.unreached:
            self._frontier.robots_again(host)
            self._notify(self, host)
            return Recorded()
        if isinstance(outcome, FetchFailed) and outcome.unknown_host:
            self._unknown_hosts.add(host)
            self.fetch_errors += len(self._frontier.close(host))
            return Recorded()
        rules = UNREACHABLE if isinstance(outcome, FetchFailed) else rules_from_response(
            outcome.status, outcome.body, self._settings.max_crawl_delay_ms / 1_000)
        self._blocked(len(self._frontier.set_robots(host, rules)))
        if rules.closed:
            log.info("crawl %s: %s closed (%s)", self.crawl_id, host, rules.reason)
            return Recorded()
        return Recorded(crawl_delay_s=rules.crawl_delay_s)

    def _page(self, item: QueuedUrl, outcome: WebResponse | FetchFailed) -> Recorded:
        if isinstance(outcome, FetchFailed) and outcome.unreached:
            self._frontier.requeue(item, self._clock(), retry=False)
            self._notify(self, host_of(item.url))
            return Recorded()
        if isinstance(outcome, FetchFailed) or outcome.status not in (200, 503):
            self.fetch_errors += 1
            return Recorded()
        if outcome.status == 503:
            if item.attempt < self._settings.max_retries:
                self._frontier.requeue(item, self._clock())
                self._notify(self, host_of(item.url))
            else:
                self.fetch_errors += 1
            return Recorded()
        self.pages_fetched += 1
        self.depth_reached = max(self.depth_reached, item.depth)
        page = parse_page(item.url, outcome.body.decode("utf-8", errors="replace"))
        duplicate = self._dedup.check(page.text)
        if duplicate is Duplicate.EXACT:
            self.exact_duplicates += 1
        elif duplicate is Duplicate.NEAR:
            self.near_duplicates += 1
        if duplicate is not Duplicate.NONE:
            metrics.DUPLICATES.labels(duplicate.value).inc()
            return Recorded()
        if item.depth < self.request.max_depth:
            self._discover(page.links, item.depth + 1)
        if not self.request.index_pages or self._index is None:
            return Recorded()
        self._index_pending += 1  # from now: the crawl is not DONE before the indexer answered (:meth:`index`)
        return Recorded(page=web_page(item.url, page.title, page.text, page.links))

    def _discover(self, urls: tuple[str, ...], depth: int) -> None:
        hosts: dict[str, None] = {}
        now = self._clock()
        for url in urls:
            added = self._frontier.add(url, depth, now)
            if added is Added.QUEUED:
                hosts[host_of(url)] = None
            elif added is Added.BLOCKED:
                if host_of(url) in self._unknown_hosts:
                    self.fetch_errors += 1
                else:
                    self._blocked(1)
        for host in hosts:
            self._notify(self, host)

    def _blocked(self, count: int) -> None:
        self.robots_blocked += count
        metrics.ROBOTS_BLOCKED.inc(count)

    # --- indexing -------------------------------------------------------------------------------------------------

    async def index(self, page: search_pb2.WebPage) -> None:
        """Send ``page``, which :meth:`record` returned (and counted as pending), to the indexer, waiting for room in
        its backlog; the crawl is not DONE until the indexer answered."""
        if self.state != RUNNING:
            return
        task = await self._index.submit(page, self._indexed)
        if self.state != RUNNING:  # cancelled while it waited for room
            task.cancel()
            return
        self._index_tasks.add(task)
        task.add_done_callback(self._index_tasks.discard)

    def _indexed(self, indexed: bool) -> None:
        self._index_pending -= 1
        if self.state != RUNNING:
            return
        self.pages_indexed += indexed
        self._end_if_finished()

    # --- the end --------------------------------------------------------------------------------------------------

    def _end_if_finished(self) -> None:
        if self.state != RUNNING or self._pages_in_flight or self._robots_in_flight or self._index_pending:
            return
        if self.pages_fetched < self.request.max_pages and self._frontier.size:
            return
        self._end(DONE)

    def cancel(self) -> None:
        """Stop the crawl (a no-op once it ended): nothing more is fetched, counted or indexed."""
        if self.state == RUNNING:
            self._end(CANCELLED)

    def _end(self, state: int) -> None:
        self.state = state
        self._ended, self._ended_ms = self._clock(), self._wall_ms()
        self._frontier_size, self._hosts = self._frontier.size, self._frontier.host_count
        metrics.FRONTIER_SIZE.dec(self._frontier.size)
        self._frontier = Frontier()
        self._dedup = Deduplicator(False)
        self._budget_waiters.clear()
        for task in self._index_tasks:
            task.cancel()
        self._on_end(self)

    # --- the answer -----------------------------------------------------------------------------------------------

    def snapshot(self) -> crawler_pb2.Crawl:
        """The crawl's progress as the proto's ``Crawl``."""
        running = self.state == RUNNING
        elapsed = (self._clock() if running else self._ended) - self._started
        return crawler_pb2.Crawl(
            crawl_id=self.crawl_id, state=self.state, pages_fetched=self.pages_fetched,
            pages_indexed=self.pages_indexed, fetch_errors=self.fetch_errors, robots_blocked=self.robots_blocked,
            exact_duplicates=self.exact_duplicates, near_duplicates=self.near_duplicates,
            frontier_size=self._frontier.size if running else self._frontier_size,
            hosts=self._frontier.host_count if running else self._hosts, depth_reached=self.depth_reached,
            started_at_unix_ms=self._started_ms, finished_at_unix_ms=self._ended_ms,
            pages_per_second=self.pages_fetched / elapsed if elapsed > 0 else 0.0)
