"""A bounded queue of events sent to another service in batches, off the request path.

The asynchronous event path the case studies share: the URL shortener's
clicks to analytics (shared/seeds/000 "increment_clicks_async"), the social
feed's likes to the recommendation engine as real-time signals (shared/seeds/001
#19). The request handler calls :meth:`BatchBuffer.add` (O(1), no await,
never blocks) and answers; a background loop (:class:`~.flusher.IntervalFlusher`)
sends what is queued to ``send(batch)``. Delivery is eventually consistent:
an event is sent within about ``flush_interval_s`` while the receiver is up.

Memory is bounded: at most ``max_pending`` events are held (queued plus the
batch in flight); beyond that new events are dropped and counted. A batch
whose send fails is put back at the front of the queue and retried after a
whole interval, so it is not lost while the buffer has room.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from .flusher import IntervalFlusher

log = logging.getLogger(__name__)

T = TypeVar("T")


class BatchBuffer(IntervalFlusher, Generic[T]):
    """Queue of events flushed to ``send(batch)`` by a background loop.

    The loop sends everything pending, in batches of at most ``batch_size``
    events in arrival order, one batch at a time, every ``flush_interval_s``
    seconds, or at once when ``batch_size`` events are waiting. After a failed
    send it waits a full interval before retrying (no hammering of a failing
    service). ``name`` names the loop's task; ``noun`` the events in log lines
    ("clicks", "like signals").

    Counters (ints): ``pending`` (held, not yet sent: queued plus in flight),
    ``sent`` (events delivered), ``dropped`` (events refused because the buffer
    was full), ``send_failures`` (failed ``send`` calls).

    Single event loop; :meth:`add` is synchronous and not thread-safe. Events
    added after :meth:`stop` stay queued until the next :meth:`flush` or start.
    ``ValueError`` when ``batch_size`` < 1 or ``max_pending`` < ``batch_size``.
    """

    def __init__(self, send: Callable[[list[T]], Awaitable[None]], *, name: str, noun: str, max_pending: int = 100_000,
                 batch_size: int = 500, flush_interval_s: float = 0.1) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if max_pending < batch_size:
            raise ValueError(f"max_pending must be at least batch_size (got {max_pending})")
        super().__init__(flush_interval_s, name)
        self._send = send
        self._noun = noun
        self.max_pending = max_pending
        self.batch_size = batch_size
        self._queue: deque[T] = deque()
        self._in_flight = 0
        self.sent = 0
        self.dropped = 0
        self.send_failures = 0

    @property
    def pending(self) -> int:
        """Events held and not yet delivered (queued plus the batch in flight)."""
        return len(self._queue) + self._in_flight

    def add(self, event: T) -> bool:
        """Queue ``event`` for sending; False (and ``dropped`` += 1) when the buffer is full."""
        if len(self._queue) + self._in_flight >= self.max_pending:
            self.dropped += 1
            return False
        self._queue.append(event)
        if len(self._queue) >= self.batch_size:
            self._request_flush()
        return True

    async def _flush_locked(self) -> bool:
        # Send what is queued now, not what arrives during the sends: otherwise, under steady
        # traffic, the loop would keep sending tiny batches back to back instead of one per interval.
        owed = len(self._queue)
        while owed > 0 and self._queue:
            batch = [self._queue.popleft() for _ in range(min(self.batch_size, owed, len(self._queue)))]
            owed -= len(batch)
            self._in_flight = len(batch)
            try:
                await self._send(batch)
            except Exception as exc:  # noqa: BLE001 - any send error: keep the batch, retry later
                self.send_failures += 1
                log.warning("sending %d %s failed, will retry: %r", len(batch), self._noun, exc)
                self._queue.extendleft(reversed(batch))
                return False
            except BaseException:  # cancelled mid-send: keep the batch, then re-raise
                self._queue.extendleft(reversed(batch))
                raise
            finally:
                self._in_flight = 0
            self.sent += len(batch)
        return True
