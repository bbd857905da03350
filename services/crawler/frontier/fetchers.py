"""The process's fetchers: every crawl's fetches, one host at a time, each host at most once per interval.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness");
seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt, "Search Engine": "Web Crawler: Distributed crawlers with politeness
policies"). ``fetchers`` fetches run at once for the whole process, whatever the number of crawls. A dispatcher task
holds a free fetcher slot, takes from the :class:`.politeness.HostClock` the host whose next-allowed time is the
earliest among the hosts with work (sleeping until that time, or until new work or a freed host comes: it never
polls), asks the crawls with work on that host for their next fetch in turn (round robin, so concurrent crawls of the
same hosts share them), and runs the fetch in a task of its own. When the fetch ends, the host's next-allowed time is
set from that moment (:meth:`.politeness.HostClock.release`), after the crawl has read the answer (so a robots.txt's
Crawl-delay already counts for it), and the host is queued again if any crawl still has work on it. A page to index
is handed to the indexer after the host is released: the indexer never holds a host.

Every task runs in a fresh ``contextvars.Context`` (the dispatcher is started by the service, not by a request, so no
StartCrawl deadline reaches a fetch). Times are ``time.monotonic()`` read at each decision, not the event loop's
cached time, so the interval is measured on the same clock, to the nanosecond, that every process of the machine
shares.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import deque

from . import metrics
from .crawl import Crawl, Fetch, Recorded
from .fetch import FetchFailed, WebClient, WebResponse
from .politeness import HostClock

log = logging.getLogger("casemesh.crawler.fetchers")

_STATUS_OUTCOMES = {200: "200", 404: "404", 503: "503"}


class Fetchers:
    """Runs the fetches of every crawl through ``web``, ``concurrency`` at a time, as ``clock`` allows."""

    def __init__(self, clock: HostClock, web: WebClient, concurrency: int) -> None:
        self._clock = clock
        self._web = web
        self._slots = asyncio.Semaphore(concurrency)
        self._wake = asyncio.Event()
        self._crawls: dict[str, deque[Crawl]] = {}  # host → the crawls that had work on it, in turn order
        self._tasks: set[asyncio.Task] = set()
        self._dispatcher: asyncio.Task | None = None

    def start(self) -> None:
        """Start the dispatcher."""
        self._dispatcher = asyncio.create_task(self._dispatch(), name="crawler-dispatcher",
                                               context=contextvars.Context())

    async def stop(self) -> None:
        """Stop the dispatcher and cancel the fetches in flight."""
        tasks = [*self._tasks, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def add_work(self, crawl: Crawl, host: str) -> None:
        """``crawl`` has work on ``host``: queue the host on the clock (a crawl's ``notify``)."""
        crawls = self._crawls.setdefault(host, deque())
        if crawl not in crawls:
            crawls.append(crawl)
        self._want(host)

    def _want(self, host: str) -> None:
        if self._clock.want(host):
            metrics.HOSTS_WAITING.set(self._clock.queued)
            self._wake.set()

    async def _dispatch(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                host, crawl, fetch = await self._next()
            except BaseException:
                self._slots.release()
                raise
            task = asyncio.create_task(self._run(host, crawl, fetch), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _next(self) -> tuple[str, Crawl, Fetch]:
        """The next fetch: the earliest ready host's, from the next crawl with work on it (waits for one)."""
        while True:
            self._wake.clear()
            now = time.monotonic()
            host = self._clock.pop_ready(now)
            if host is not None:
                metrics.HOSTS_WAITING.set(self._clock.queued)
                picked = self._pick(host)
                if picked is not None:
                    return host, *picked
                self._clock.unused(host)
                continue
            try:
                await asyncio.wait_for(self._wake.wait(), self._clock.wait_s(now))
            except TimeoutError:
                pass

    def _pick(self, host: str) -> tuple[Crawl, Fetch] | None:
        crawls = self._crawls.get(host)
        if crawls is None:
            return None
        for crawl in list(crawls):
            if not crawl.has_work(host):
                crawls.remove(crawl)
                continue
            fetch = crawl.take(host)
            if fetch is not None:
                crawls.remove(crawl)
                crawls.append(crawl)  # its turn on this host is over
                return crawl, fetch
        if not crawls:
            del self._crawls[host]
        return None

    async def _run(self, host: str, crawl: Crawl, fetch: Fetch) -> None:
        try:
            recorded = await self._fetch(host, crawl, fetch)
            if recorded.page is not None:
                await crawl.index(recorded.page)
        finally:
            self._slots.release()

    async def _fetch(self, host: str, crawl: Crawl, fetch: Fetch) -> Recorded:
        """Fetch, let the crawl read the answer, then release the host (whatever happened)."""
        recorded = Recorded()
        try:
            started = time.monotonic()
            if fetch.item is not None:
                metrics.POLITENESS_WAIT.observe(max(0.0, started - fetch.item.queued_at))
            outcome: WebResponse | FetchFailed
            try:
                outcome = await self._web.fetch(fetch.url, crawl.crawl_id)
            except FetchFailed as failure:
                outcome = failure
            metrics.FETCHES.labels("robots_txt" if fetch.robots else "error" if isinstance(outcome, FetchFailed)
                                   else _STATUS_OUTCOMES.get(outcome.status, "error")).inc()
            try:
                recorded = crawl.record(fetch, outcome)
            except Exception:
                log.exception("crawl %s: recording %s failed", crawl.crawl_id, fetch.url)
        finally:
            self._clock.set_crawl_delay(host, recorded.crawl_delay_s)
            self._clock.release(host, time.monotonic())
            crawls = self._crawls.get(host)
            if crawls and any(other.has_work(host) for other in crawls):
                self._want(host)
            else:
                self._crawls.pop(host, None)
        return recorded
