"""The feed of crawled pages to the search engine: ``IndexerService.IndexPage`` on ``search-indexer``.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt, "Search Engine": "Crawl and index web pages continuously", "Web
Crawler" → "Document Store" → "Indexer") and seed 001 #28 (line 34, "Web Crawler"). A page that is not a duplicate
of a crawl with ``index_pages`` is sent as a ``WebPage`` (its URL, title, visible text and outlinks: the absolute
URLs it links to, as ``services.search.contract`` validates them, self-links dropped, at most ``MAX_OUTLINKS``; a
title or body over the contract's limits is cut to it, so the indexer never refuses a page for its size).

Indexing does not hold up fetching: a fetcher hands the page over (:meth:`IndexFeed.submit`) and moves on, the call
runs in a task of its own (a fresh ``contextvars.Context``, so no request's deadline leaks into it), at most
``index_concurrency`` at a time, each with the explicit deadline ``index_timeout_ms``. IndexPage is idempotent (the
URL is the page's identity), so UNAVAILABLE and DEADLINE_EXCEEDED are retried: :data:`ATTEMPTS` attempts in all, with
full-jitter exponential backoff ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015) from
:data:`BACKOFF_BASE_S`. Only an acknowledged page counts as indexed. At most ``index_backlog`` pages wait or are in
flight over the process; a fetcher with a page beyond that waits for room (after its host was released), so a slow
indexer slows the crawl rather than filling memory.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
from collections.abc import Callable

import grpc
from casemesh.search.v1 import indexer_pb2, indexer_pb2_grpc, search_pb2

from ...search.contract import MAX_BODY_CHARS, MAX_OUTLINKS, MAX_TITLE_CHARS, is_page_url
from . import metrics

log = logging.getLogger("casemesh.crawler.indexing")

#: IndexPage attempts per page (the first and two retries).
ATTEMPTS = 3
#: The first retry waits up to this (s); each next one up to twice as long.
BACKOFF_BASE_S = 0.25
_RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


def web_page(url: str, title: str, text: str, links: tuple[str, ...]) -> search_pb2.WebPage:
    """The ``WebPage`` of a crawled page within the search contract's limits: the title and body cut to
    ``MAX_TITLE_CHARS`` and ``MAX_BODY_CHARS``; outlinks valid under ``is_page_url``, without ``url`` itself or
    repeats, the first ``MAX_OUTLINKS``."""
    outlinks = [link for link in dict.fromkeys(links) if link != url and is_page_url(link)][:MAX_OUTLINKS]
    return search_pb2.WebPage(url=url, title=title[:MAX_TITLE_CHARS], body=text[:MAX_BODY_CHARS], outlinks=outlinks)


class IndexFeed:
    """Sends pages to ``search-indexer`` (``stub``), ``concurrency`` calls at a time, ``backlog`` pages at most."""

    def __init__(self, stub: indexer_pb2_grpc.IndexerServiceStub, timeout_s: float, concurrency: int,
                 backlog: int) -> None:
        self._stub = stub
        self._timeout_s = timeout_s
        self._calls = asyncio.Semaphore(concurrency)
        self._room = asyncio.Semaphore(backlog)
        self._tasks: set[asyncio.Task] = set()

    async def submit(self, page: search_pb2.WebPage, done: Callable[[bool], None]) -> asyncio.Task:
        """Index ``page`` in the background, once the backlog has room (waits for it); ``done(True)`` when the
        indexer acknowledged it, ``done(False)`` when it did not after every attempt. Cancelling the returned task
        drops the page (``done`` is not called)."""
        await self._room.acquire()
        task = asyncio.create_task(self._index(page, done), context=contextvars.Context())
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._room.release()  # here rather than in the task: a task cancelled before it ran still frees its room

    async def _index(self, page: search_pb2.WebPage, done: Callable[[bool], None]) -> None:
        async with self._calls:
            indexed = await self._send(page)
        (metrics.PAGES_INDEXED if indexed else metrics.INDEX_FAILURES).inc()
        done(indexed)

    async def _send(self, page: search_pb2.WebPage) -> bool:
        request = indexer_pb2.IndexPageRequest(page=page)
        for attempt in range(ATTEMPTS):
            if attempt:
                await asyncio.sleep(random.uniform(0, BACKOFF_BASE_S * 2 ** (attempt - 1)))
            try:
                await self._stub.IndexPage(request, timeout=self._timeout_s)
                return True
            except grpc.aio.AioRpcError as error:
                failure = error
                if error.code() not in _RETRYABLE:
                    break
        log.warning("IndexPage %s failed: %s %s", page.url, failure.code().name, failure.details())
        return False

    async def stop(self) -> None:
        """Cancel every page still being indexed."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
