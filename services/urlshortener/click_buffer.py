"""Buffer click events off the redirect path and send them in batches.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt):
``redirect()`` calls ``increment_clicks_async(short_code)`` so that counting a
click never delays the redirect, and the requirements ask for "Analytics: click
counts, geographic data". Here Resolve calls :meth:`ClickBuffer.add` (O(1), no
await, never blocks), and a background loop sends batches to the analytics
service (casemesh.analytics.v1 RecordClicks). Stats are therefore eventually
consistent: a click is counted within about ``flush_interval_s``.

Memory is bounded: at most ``max_pending`` clicks are held (queued plus the
batch in flight); beyond that new clicks are dropped and counted. A batch
whose send fails is put back at the front of the queue and retried on the next
tick, so it is not lost (the in-flight batch already counts toward the bound).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ..runtime.flusher import IntervalFlusher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Click:
    """One successful redirect: the code, when (Unix seconds), and the visitor's country.

    ``country_code`` is ISO 3166-1 alpha-2 upper case, or empty for unknown.
    """

    code: str
    at_s: float
    country_code: str


class ClickBuffer(IntervalFlusher):
    """Queue of clicks flushed to ``send(batch)`` by a background loop.

    The loop sends everything pending, in batches of at most ``batch_size``
    clicks in arrival order, one batch at a time, every ``flush_interval_s``
    seconds, or at once when ``batch_size`` clicks are waiting. After a failed
    send it waits a full interval before retrying (no hammering of a failing
    service).

    Counters (ints): ``pending`` (held, not yet sent: queued plus in flight),
    ``sent`` (clicks delivered), ``dropped`` (clicks refused because the buffer
    was full), ``send_failures`` (failed ``send`` calls).

    Single event loop; :meth:`add` is synchronous and not thread-safe. Clicks
    added after :meth:`stop` stay queued until the next :meth:`flush` or start.
    """

    def __init__(
        self,
        send: Callable[[list[Click]], Awaitable[None]],
        max_pending: int = 100_000,
        batch_size: int = 500,
        flush_interval_s: float = 0.1,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1 (got {batch_size})")
        if max_pending < batch_size:
            raise ValueError(f"max_pending must be at least batch_size (got {max_pending})")
        super().__init__(flush_interval_s, "click-buffer")
        self._send = send
        self.max_pending = max_pending
        self.batch_size = batch_size
        self._queue: deque[Click] = deque()
        self._in_flight = 0
        self.sent = 0
        self.dropped = 0
        self.send_failures = 0

    @property
    def pending(self) -> int:
        """Clicks held and not yet delivered (queued plus the batch in flight)."""
        return len(self._queue) + self._in_flight

    def add(self, click: Click) -> bool:
        """Queue ``click`` for sending; False (and ``dropped`` += 1) when the buffer is full."""
        if len(self._queue) + self._in_flight >= self.max_pending:
            self.dropped += 1
            return False
        self._queue.append(click)
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
                log.warning("sending %d clicks failed, will retry: %r", len(batch), exc)
                self._queue.extendleft(reversed(batch))
                return False
            except BaseException:  # cancelled mid-send: keep the batch, then re-raise
                self._queue.extendleft(reversed(batch))
                raise
            finally:
                self._in_flight = 0
            self.sent += len(batch)
        return True
