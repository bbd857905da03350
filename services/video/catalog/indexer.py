"""Send published videos to the search index in batches, off the publish path.

Seed 004, "Search Freshness": "When a video is published, its metadata must
appear in search results within a few seconds. The metadata service publishes
a video.published event; a separate indexing worker consumes it and calls the
Elasticsearch bulk API". Here PublishVideo hands the video's document to
:meth:`SearchIndexer.add` (synchronous, O(1), never blocks the publish call),
and a background loop sends what is pending to SearchService.IndexVideos (the
bulk API) in batches of at most ``batch_size``, at most once every
``interval_s`` (default 200 ms): a burst of publishes becomes one call, and a
lone publish is sent at once when the last call is older than the interval.

Failures: a batch that fails with a retryable error (``retryable(exc)``; the
service passes UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED) goes
back to the front of the queue and is retried after a backoff that doubles
from ``interval_s`` up to ``max_backoff_s``; any other error drops the batch
(retrying would fail the same way) and logs it. Memory is bounded: at most
``max_pending`` documents wait; beyond that new ones are dropped and counted.
A document queued twice before it is sent is sent once, in its latest version.

:meth:`SearchIndexer.stop` flushes what is pending (bounded by a timeout), so
a clean shutdown loses nothing; the catalogue declares ``video-search`` as a
dependency, so the runtime stops it while search still serves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from casemesh.video.v1 import search_pb2

log = logging.getLogger("casemesh.video.catalog.indexer")

Document = search_pb2.VideoDocument


class SearchIndexer:
    """Queue of documents flushed to ``send(batch)`` by a background loop.

    Counters (ints): ``pending`` (queued plus in flight), ``sent`` (documents
    acknowledged by ``send``), ``dropped`` (refused when full, or in a batch
    that failed for good), ``send_failures`` (failed ``send`` calls). Single
    event loop; :meth:`add` is synchronous.
    """

    def __init__(
        self,
        send: Callable[[list[Document]], Awaitable[None]],
        interval_s: float = 0.2,
        batch_size: int = 500,
        max_pending: int = 100_000,
        max_backoff_s: float = 5.0,
        retryable: Callable[[BaseException], bool] = lambda exc: True,
        clock: Callable[[], float] = time.monotonic,
        on_sent: Callable[[int], None] | None = None,
        on_dropped: Callable[[int], None] | None = None,
    ):
        if interval_s <= 0 or max_backoff_s <= 0:
            raise ValueError("interval_s and max_backoff_s must be positive")
        if batch_size < 1 or max_pending < 1:
            raise ValueError("batch_size and max_pending must be at least 1")
        self._send = send
        self.interval_s = interval_s
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.max_backoff_s = max(max_backoff_s, interval_s)
        self._retryable = retryable
        self._clock = clock
        self._on_sent = on_sent or (lambda n: None)
        self._on_dropped = on_dropped or (lambda n: None)
        self._queue: dict[str, Document] = {}  # video id -> latest document, in arrival order
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_send = 0.0  # clock time before which no call starts
        self._backoff_s = interval_s
        self.sent = 0
        self.dropped = 0
        self.send_failures = 0

    @property
    def pending(self) -> int:
        """Documents queued or in flight."""
        return len(self._queue) + self._in_flight

    def add(self, document: Document) -> bool:
        """Queue ``document`` (replacing a queued one of the same video); False when full (dropped)."""
        if document.video_id not in self._queue and self.pending >= self.max_pending:
            self.dropped += 1
            self._on_dropped(1)
            return False
        self._queue[document.video_id] = document
        self._wake.set()
        return True

    async def send_batch(self) -> bool:
        """Send the oldest batch now; True when it was delivered (or nothing was pending), False after a failure."""
        if not self._queue:
            return True
        ids = list(self._queue)[: self.batch_size]
        batch = [self._queue.pop(video_id) for video_id in ids]
        self._in_flight = len(batch)
        try:
            await self._send(batch)
        except Exception as exc:  # noqa: BLE001 - classify, then retry or drop
            self.send_failures += 1
            if self._retryable(exc):
                log.warning("indexing %d documents failed, will retry: %r", len(batch), exc)
                self._requeue(batch)
            else:
                log.error("indexing %d documents failed for good, dropped: %r", len(batch), exc)
                self.dropped += len(batch)
                self._on_dropped(len(batch))
            return False
        except BaseException:  # cancelled mid-send: keep the batch, then re-raise
            self._requeue(batch)
            raise
        finally:
            self._in_flight = 0
        self.sent += len(batch)
        self._on_sent(len(batch))
        return True

    def _requeue(self, batch: list[Document]) -> None:
        """Put ``batch`` back at the front, unless a newer version of a document arrived meanwhile."""
        older = {doc.video_id: doc for doc in batch if doc.video_id not in self._queue}
        self._queue = {**older, **self._queue}

    async def start(self) -> None:
        """Start the send loop on the running event loop (call outside any request's context)."""
        if self._task is not None:
            raise RuntimeError("SearchIndexer already started")
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="search-indexer")

    async def _sleep(self, seconds: float) -> None:
        """Sleep up to ``seconds``, cut short by :meth:`stop`."""
        if seconds > 0:
            try:
                await asyncio.wait_for(self._stop.wait(), seconds)
            except TimeoutError:
                pass

    async def _run(self) -> None:
        while not self._stop.is_set():
            if not self._queue:
                self._wake.clear()
                waiter = asyncio.ensure_future(self._wake.wait())
                stopper = asyncio.ensure_future(self._stop.wait())
                try:
                    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()
                    stopper.cancel()
                continue
            await self._sleep(self._next_send - self._clock())
            if self._stop.is_set():
                break
            try:
                delivered = await self.send_batch()
            except Exception:  # noqa: BLE001 - never let the loop die
                log.exception("search indexer step failed")
                delivered = False
            if delivered:
                self._backoff_s = self.interval_s
                self._next_send = self._clock() + self.interval_s
            else:
                self._next_send = self._clock() + self._backoff_s
                self._backoff_s = min(self._backoff_s * 2, self.max_backoff_s)

    async def stop(self, timeout_s: float = 5.0) -> int:
        """Stop the loop, then send what is pending for at most ``timeout_s``; returns the documents left unsent."""
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        deadline = self._clock() + timeout_s
        backoff = self.interval_s
        while self._queue and self._clock() < deadline:
            try:
                delivered = await asyncio.wait_for(self.send_batch(), max(deadline - self._clock(), 0.001))
            except TimeoutError:
                break
            if not delivered:
                await asyncio.sleep(min(backoff, max(deadline - self._clock(), 0)))
                backoff = min(backoff * 2, self.max_backoff_s)
        left = self.pending
        if left:
            log.error("%d documents could not be sent to the search index at shutdown", left)
        return left
