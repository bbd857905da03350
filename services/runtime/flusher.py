"""A buffer flushed to another service by a background loop: every interval, or at once when asked.

The skeleton the case studies' asynchronous write paths share (the URL
shortener's click buffer, after shared/seeds/000 "increment_clicks_async";
the video playback's view buffer, after shared/seeds/004 "View Count": "flushes
them in batches every 10 seconds"). A subclass holds the data and implements
:meth:`IntervalFlusher._flush_locked` (send what is held now; ``False`` when a
send failed and the data was kept) and :attr:`IntervalFlusher.pending`; it
calls :meth:`IntervalFlusher._request_flush` when a full batch is waiting.

Loop: wait until ``flush_interval_s`` passes or a flush is requested, then
flush; after a failed flush wait a whole interval (only :meth:`stop` cuts it
short), so a failing receiver is not hammered. :meth:`stop` ends the loop
after one final flush. Flushes never overlap (one lock). Single event loop.
"""

from __future__ import annotations

import asyncio


class IntervalFlusher:
    """Base of buffers flushed by a background loop every ``flush_interval_s`` seconds (> 0)."""

    def __init__(self, flush_interval_s: float, name: str) -> None:
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be positive (got {flush_interval_s})")
        self.flush_interval_s = flush_interval_s
        self._name = name
        self._wake = asyncio.Event()  # a flush was requested (a full batch is waiting), or stop()
        self._stop = asyncio.Event()
        self._flush_lock = asyncio.Lock()  # one flush in flight at a time
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Items held and not yet delivered; the subclass counts them."""
        raise NotImplementedError

    async def _flush_locked(self) -> bool:
        """Send what is held now (the flush lock is held); ``False`` when a send failed and its data was kept."""
        raise NotImplementedError

    def _request_flush(self) -> None:
        """Wake the loop to flush now rather than at the end of the interval."""
        self._wake.set()

    async def start(self) -> None:
        """Start the flush loop on the running event loop; ``RuntimeError`` when it runs already."""
        if self._task is not None:
            raise RuntimeError(f"{self._name} already started")
        self._stopping = False
        self._stop.clear()
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self._name)

    async def stop(self) -> int:
        """Stop the loop after a final flush; returns what is left undelivered (0 unless a send failed).

        Bound the wait with ``asyncio.wait_for`` if a send might hang. Without a
        prior :meth:`start`, it just flushes.
        """
        self._stopping = True
        self._stop.set()
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            await task
        else:
            await self.flush()
        return self.pending

    async def flush(self) -> bool:
        """Send everything held now; ``False`` if a send failed (its data stays held)."""
        async with self._flush_lock:
            return await self._flush_locked()

    async def _run(self) -> None:
        backoff = False
        while not self._stopping:
            # After a failure wait a whole interval (only stop() cuts it short);
            # otherwise until the interval ends or a flush is requested.
            event = self._stop if backoff else self._wake
            try:
                await asyncio.wait_for(event.wait(), self.flush_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            if self._stopping:
                break
            backoff = not await self.flush()
        await self.flush()
