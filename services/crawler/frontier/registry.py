"""The crawls of the process: StartCrawl, GetCrawl and CancelCrawl as protos/casemesh/crawler/v1/crawler.proto
specifies them.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34, "Web Crawler"). Crawls live in memory (the proto's
"a restart forgets them"): at most ``max_crawls`` running, and the last :data:`KEPT_CRAWLS` ended ones, so that
GetCrawl still answers after a crawl ends. StartCrawl is idempotent by ``crawl_id``: the same request (the same
seeds after normalisation, ``max_pages``, ``max_depth`` with 0 read as 16, and ``index_pages``) returns the crawl as
it is now; another request with the ID is ALREADY_EXISTS. A crawl has no task of its own: its fetches are the
process's fetchers' (:mod:`.fetchers`), which run in a fresh ``contextvars.Context``, never in the StartCrawl
request's.

Errors: INVALID_ARGUMENT naming the field (:mod:`.validation`); ALREADY_EXISTS; RESOURCE_EXHAUSTED when
``max_crawls`` crawls run; NOT_FOUND for an unknown (or forgotten) crawl ID; FAILED_PRECONDITION
``no_indexer`` for a crawl with ``index_pages`` in a mesh without ``search-indexer``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from casemesh.crawler.v1 import crawler_pb2

from ...runtime.errors import AlreadyExists, FailedPrecondition, NotFound, ResourceExhausted
from . import metrics, validation
from .crawl import Crawl, unix_ms
from .fetchers import Fetchers
from .indexing import IndexFeed
from .settings import CrawlerSettings

#: Ended crawls GetCrawl still answers for; older ones are forgotten (NOT_FOUND).
KEPT_CRAWLS = 1_000


class CrawlRegistry:
    """Running and recently ended crawls; new crawls' fetches go to ``fetchers``, their pages to ``index`` (``None``
    when the mesh has no indexer)."""

    def __init__(self, settings: CrawlerSettings, fetchers: Fetchers, index: IndexFeed | None,
                 clock: Callable[[], float] = time.monotonic, wall_ms: Callable[[], int] = unix_ms) -> None:
        self._settings = settings
        self._fetchers = fetchers
        self._index = index
        self._clock, self._wall_ms = clock, wall_ms
        self._running: dict[str, Crawl] = {}
        self._ended: OrderedDict[str, Crawl] = OrderedDict()

    def start(self, request: crawler_pb2.StartCrawlRequest) -> crawler_pb2.Crawl:
        """StartCrawl: the crawl as started, or as it is when the same request started it before."""
        wanted = validation.start_crawl(request)
        existing = self._running.get(wanted.crawl_id) or self._ended.get(wanted.crawl_id)
        if existing is not None:
            if existing.request != wanted:
                raise AlreadyExists(f"crawl_id: {wanted.crawl_id} was started by another request")
            return existing.snapshot()
        if len(self._running) >= self._settings.max_crawls:
            raise ResourceExhausted(f"{len(self._running)} crawls are running (max_crawls "
                                    f"{self._settings.max_crawls}); retry when one ends")
        if wanted.index_pages and self._index is None:
            raise FailedPrecondition("no_indexer: this mesh has no search-indexer to send pages to")
        crawl = Crawl(wanted, self._settings, notify=self._fetchers.add_work, on_end=self._ended_crawl,
                      index=self._index, clock=self._clock, wall_ms=self._wall_ms)
        self._running[crawl.crawl_id] = crawl
        metrics.CRAWLS.labels("running").inc()
        metrics.RUNNING_CRAWLS.set(len(self._running))
        crawl.begin()
        return crawl.snapshot()

    def get(self, crawl_id: str) -> crawler_pb2.Crawl:
        """GetCrawl."""
        return self._crawl(crawl_id).snapshot()

    def cancel(self, crawl_id: str) -> crawler_pb2.Crawl:
        """CancelCrawl: the crawl CANCELLED, or as it ended."""
        crawl = self._crawl(crawl_id)
        crawl.cancel()
        return crawl.snapshot()

    def _crawl(self, crawl_id: str) -> Crawl:
        validation.crawl_id(crawl_id)
        crawl = self._running.get(crawl_id) or self._ended.get(crawl_id)
        if crawl is None:
            raise NotFound(f"crawl_id: no crawl {crawl_id}")
        return crawl

    def _ended_crawl(self, crawl: Crawl) -> None:
        self._running.pop(crawl.crawl_id, None)
        self._ended[crawl.crawl_id] = crawl
        while len(self._ended) > KEPT_CRAWLS:
            self._ended.popitem(last=False)
        metrics.CRAWLS.labels("done" if crawl.state == crawler_pb2.CRAWL_STATE_DONE else "cancelled").inc()
        metrics.RUNNING_CRAWLS.set(len(self._running))

    def stop(self) -> None:
        """Cancel every running crawl (the service stops)."""
        for crawl in list(self._running.values()):
            crawl.cancel()
