"""View starts counted locally and flushed to the catalogue in batches.

Seed 004, "View Count — Eventual Consistency Done Right": "Incrementing a SQL
counter on every view at 193 k/s would kill a relational database ... Each
app server buffers view events locally and flushes them in batches every 10
seconds"; the catalogue then applies them by a periodic snapshot (its part).
Here every GetMasterPlaylist is a view start: :meth:`ViewBuffer.add` bumps a
per-video count (O(1), no await, never blocks the playlist), and a
background loop sends the counts to ``CatalogService.RecordViews`` as
``ViewCount`` entries, at most ``batch_max`` videos per call.

Memory is bounded by the number of distinct videos held (queued or in
flight), ``max_videos``: a view of a video already held always counts; a
view of another video when the buffer is full is dropped and counted in
``dropped``. Nothing else is lost: a batch whose send fails goes back into
the buffer (merged with what arrived meanwhile) and is retried on the next
tick; a batch the catalogue rejects as invalid (:class:`RejectedBatch`) is
not retried and is counted in ``rejected``. Delivery is at least once: a
batch whose send timed out after the catalogue applied it is sent again
(view counts are eventually consistent and approximate by design).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from ...runtime.flusher import IntervalFlusher

log = logging.getLogger(__name__)

#: ``send(counts)``: deliver ``{video_id: views}`` (every count >= 1); raise to retry later.
Send = Callable[[dict[str, int]], Awaitable[None]]


class RejectedBatch(Exception):
    """Raised by ``send`` when the receiver refused the batch for good (retrying cannot help)."""


class ViewBuffer(IntervalFlusher):
    """Per-video view counts flushed by a background loop every ``flush_interval_s`` seconds.

    The loop also flushes early when ``batch_max`` distinct videos are
    waiting. A flush sends what was buffered when it began, in batches of at
    most ``batch_max`` videos, one call at a time; after a failed send it
    waits a whole interval before retrying.

    Counters (ints): ``buffered`` (views accepted), ``flushed`` (views
    delivered), ``dropped`` (views refused, buffer full), ``rejected`` (views
    in batches the receiver refused), ``send_failures`` (failed ``send``
    calls). ``pending`` is the views held now (queued plus in flight).
    ``on_event(stage, views)`` is called with ``"buffered"`` (1 view),
    ``"flushed"``, ``"dropped"`` or ``"rejected"`` as they happen.

    Single event loop; :meth:`add` is synchronous and not thread-safe.
    """

    def __init__(
        self,
        send: Send,
        max_videos: int = 100_000,
        batch_max: int = 1_000,
        flush_interval_s: float = 10.0,
        on_event: Callable[[str, int], None] | None = None,
    ) -> None:
        if batch_max < 1:
            raise ValueError(f"batch_max must be at least 1 (got {batch_max})")
        if max_videos < 1:
            raise ValueError(f"max_videos must be at least 1 (got {max_videos})")
        super().__init__(flush_interval_s, "view-buffer")
        self._send = send
        self.max_videos = max_videos
        self.batch_max = batch_max
        self.on_event = on_event
        self._counts: dict[str, int] = {}
        self._queued_views = 0
        self._in_flight: set[str] = set()  # videos of the flush in progress not yet delivered
        self._in_flight_views = 0
        self._held = 0  # distinct videos in _counts or _in_flight
        self.buffered = 0
        self.flushed = 0
        self.dropped = 0
        self.rejected = 0
        self.send_failures = 0

    @property
    def pending(self) -> int:
        """Views held and not yet delivered (queued plus in flight)."""
        return self._queued_views + self._in_flight_views

    @property
    def videos(self) -> int:
        """Distinct videos held (queued or in flight); at most ``max_videos``."""
        return self._held

    def _event(self, stage: str, views: int) -> None:
        if self.on_event is not None and views:
            self.on_event(stage, views)

    def add(self, video_id: str) -> bool:
        """Count one view start of ``video_id``; False (and ``dropped`` += 1) when the buffer is full."""
        count = self._counts.get(video_id)
        if count is None:
            if video_id not in self._in_flight:  # a video being sent is already held
                if self._held >= self.max_videos:
                    self.dropped += 1
                    self._event("dropped", 1)
                    return False
                self._held += 1
            self._counts[video_id] = 1
            if len(self._counts) >= self.batch_max:
                self._request_flush()
        else:
            self._counts[video_id] = count + 1
        self._queued_views += 1
        self.buffered += 1
        self._event("buffered", 1)
        return True

    def _requeue(self, counts: dict[str, int]) -> None:
        for video_id, count in counts.items():
            self._counts[video_id] = self._counts.get(video_id, 0) + count
            self._queued_views += count

    async def _flush_locked(self) -> bool:
        # Take what is buffered now; views that arrive during the sends wait for the next tick,
        # so steady traffic goes out once per interval rather than in back-to-back small batches.
        taken, self._counts = self._counts, {}
        items = list(taken.items())
        self._queued_views = 0
        self._in_flight = set(taken)
        self._in_flight_views = sum(taken.values())
        try:
            for start in range(0, len(items), self.batch_max):
                batch = dict(items[start:start + self.batch_max])
                views = sum(batch.values())
                try:
                    await self._send(batch)
                except RejectedBatch as exc:
                    self.rejected += views
                    self._event("rejected", views)
                    log.error("the catalogue rejected %d view counts of %d videos: %s", views, len(batch), exc)
                except Exception as exc:  # noqa: BLE001 - any other error: keep the counts, retry later
                    self.send_failures += 1
                    log.warning("sending %d view counts failed, will retry: %r", views, exc)
                    self._requeue(dict(items[start:]))
                    return False
                except BaseException:  # cancelled mid-send: keep the counts, then re-raise
                    self._requeue(dict(items[start:]))
                    raise
                else:
                    self.flushed += views
                    self._event("flushed", views)
                for video_id in batch:
                    self._in_flight.discard(video_id)
                    if video_id not in self._counts:
                        self._held -= 1
                self._in_flight_views -= views
            return True
        finally:
            self._in_flight = set()
            self._in_flight_views = 0
            self._held = len(self._counts)  # what is held now is what is queued (re-queued included)
