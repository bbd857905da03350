"""WatchFenceEvents' feed: the stored events after a sequence, then the live ones, without a gap or a repeat.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | ... geofencing, real-time
location updates": whoever set a fence hears of every ENTER and EXIT. Events are numbered by one global sequence,
written to the event log before they are published here (:meth:`EventFeed.publish`, in sequence order, no
number skipped), so a watcher is a reader of the log that resumes after the last number it saw.

A watcher runs in two phases:

1. **Catching up**: while the newest published sequence (``last_sequence``) is beyond what the watcher has read,
   it reads the next events, ``backlog_page`` at a time, from the in-memory ring of the newest ``recent_events``
   events when the ring still holds them, else from the event log (the owner's ``read_page``, off the event loop),
   and sends those of its fences. Nothing is queued for it meanwhile: however far behind it starts, and however
   slowly its client reads, it costs one page of memory. A page that does not start right after what it read
   means retention trimmed the events meanwhile: :class:`EventsTrimmed` (OUT_OF_RANGE).
2. **Live**: once it has read up to ``last_sequence``, it joins the live watchers in the same step (no await in
   between: nothing published can fall between the two phases) and gets each new event of its fences through a
   queue of at most ``watcher_queue`` events. A client too slow for that overflows it: :class:`WatcherFellBehind`
   (RESOURCE_EXHAUSTED); it resumes with the last sequence it got, and catches up from the log.

Publishing costs one queue append per (event, watcher of its fence or of every fence): watchers are found by
fence id, not by scanning them all.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

from ...runtime.errors import ResourceExhausted
from . import metrics
from .evaluator import FenceEvent


class WatchStopped(Exception):
    """The service is shutting down: UNAVAILABLE (resume with the last sequence seen)."""


class EventsTrimmed(Exception):
    """Events after the watcher's sequence are no longer kept (retention): OUT_OF_RANGE."""


class WatcherFellBehind(ResourceExhausted):
    """The watcher's queue overflowed: RESOURCE_EXHAUSTED (resume with the last sequence seen)."""


#: Reads events ``after < sequence <= up_to`` from the log, at most ``limit``, in sequence order.
PageReader = Callable[[int, int, int], Awaitable[list[FenceEvent]]]


class _Live:
    """A live watcher: its fences (empty: all), queue and wake-up."""

    __slots__ = ("fence_ids", "queue", "overflowed", "stopped", "wake")

    def __init__(self, fence_ids: frozenset[str]) -> None:
        self.fence_ids = fence_ids
        self.queue: deque[FenceEvent] = deque()
        self.overflowed = False
        self.stopped = False
        self.wake = asyncio.Event()


class EventFeed:
    """The published events (the ring of the newest) and the watchers (module docstring).

    ``last_sequence``: the newest event published (0: none); ``oldest_kept``: the oldest event the log still holds
    (the owner raises it before trimming). ``read_page`` reads the log.
    """

    def __init__(self, read_page: PageReader, *, last_sequence: int = 0, oldest_kept: int = 1,
                 recent_events: int = 50_000, backlog_page: int = 1_000, watcher_queue: int = 10_000,
                 max_watchers: int = 1_000) -> None:
        self._read_page = read_page
        self.last_sequence = last_sequence
        self.oldest_kept = oldest_kept
        self.backlog_page = backlog_page
        self.watcher_queue = watcher_queue
        self.max_watchers = max_watchers
        self.watchers = 0
        self.stopping = False
        self._ring: list[FenceEvent | None] = [None] * recent_events
        self._ring_first = last_sequence + 1  # the oldest sequence in the ring (the ring is empty when > last)
        self._all: set[_Live] = set()  # live watchers of every fence
        self._by_fence: dict[str, set[_Live]] = {}

    # -- publishing -------------------------------------------------------------------------------------------------

    def publish(self, events: Iterable[FenceEvent]) -> None:
        """Events just written to the log, in sequence order, the first right after ``last_sequence``."""
        ring = self._ring
        size = len(ring)
        woken: set[_Live] = set()
        limit = self.watcher_queue
        for event in events:
            if event.sequence != self.last_sequence + 1:
                raise ValueError(f"event {event.sequence} published after {self.last_sequence}")
            self.last_sequence = event.sequence
            if size:
                ring[event.sequence % size] = event
                self._ring_first = max(self._ring_first, event.sequence - size + 1)
            for targets in (self._all, self._by_fence.get(event.fence_id, ())):
                for live in targets:
                    if live.overflowed:
                        continue
                    if len(live.queue) >= limit:
                        live.overflowed = True
                        live.queue.clear()
                    else:
                        live.queue.append(event)
                    woken.add(live)
        for live in woken:
            live.wake.set()
        metrics.LAST_SEQUENCE.set(self.last_sequence)

    def _from_ring(self, after: int, up_to: int) -> list[FenceEvent] | None:
        """Events ``after < sequence <= up_to`` from the ring, or ``None`` when it no longer holds ``after + 1``."""
        if after + 1 < self._ring_first or not self._ring:
            return None
        size = len(self._ring)
        return [self._ring[s % size] for s in range(after + 1, up_to + 1)]  # type: ignore[misc]

    # -- watching ---------------------------------------------------------------------------------------------------

    async def watch(self, fence_ids: frozenset[str], after_sequence: int = 0,
                    from_now: bool = False) -> AsyncIterator[FenceEvent]:
        """The events of ``fence_ids`` (empty: every fence) after ``after_sequence`` (0: from the oldest kept), or
        only those published from now on (``from_now``), in sequence order; never ends by itself.

        Raises (before the first event or at any point): :class:`WatchStopped` on shutdown, :class:`EventsTrimmed`
        when events after ``after_sequence`` are no longer kept, ``ResourceExhausted`` when ``max_watchers`` watch
        already, :class:`WatcherFellBehind` when this watcher's queue overflowed. A sequence beyond the newest
        waits for the events after it.
        """
        if self.stopping:
            raise WatchStopped("proximity-geofence is shutting down; watch again with the last sequence seen")
        if self.watchers >= self.max_watchers:
            raise ResourceExhausted(f"proximity-geofence holds {self.max_watchers:,} WatchFenceEvents streams already")
        if from_now:
            read = self.last_sequence
        elif after_sequence == 0:
            read = self.oldest_kept - 1
        elif after_sequence < self.oldest_kept - 1:
            metrics.WATCHERS_ENDED.labels("trimmed").inc()
            raise EventsTrimmed(f"events after {after_sequence} are no longer kept: the oldest kept is "
                                f"{self.oldest_kept} (watch from 0 for the oldest)")
        else:
            read = after_sequence
        self.watchers += 1
        metrics.WATCHERS.inc()
        try:
            # 1. Catching up: read (from the ring or the log) up to the newest published, nothing queued meanwhile.
            while read < self.last_sequence:
                up_to = min(self.last_sequence, read + self.backlog_page)
                page = self._from_ring(read, up_to)
                if page is None:
                    page = await self._read_page(read, up_to, self.backlog_page)
                    if not page or page[0].sequence != read + 1:
                        metrics.WATCHERS_ENDED.labels("trimmed").inc()
                        raise EventsTrimmed(f"events after {read} were trimmed while this watcher read them (the "
                                            f"oldest kept is {self.oldest_kept}); watch from 0 for the oldest")
                self._check_stopping()
                for event in page:
                    read = event.sequence
                    if not fence_ids or event.fence_id in fence_ids:
                        yield event
                        self._check_stopping()
            # 2. Live: joined in the same step as the check above read last_sequence (no await since).
            live = _Live(fence_ids)
            self._join(live)
            try:
                while True:
                    while live.queue:
                        event = live.queue.popleft()
                        if event.sequence > read:  # a sequence beyond the newest skips what comes before it
                            read = event.sequence
                            yield event
                    if live.stopped:
                        self._check_stopping()
                    if live.overflowed:
                        metrics.WATCHERS_ENDED.labels("overflow").inc()
                        raise WatcherFellBehind(f"this watcher fell {self.watcher_queue:,} events behind; watch again "
                                                f"after sequence {read}")
                    live.wake.clear()
                    await live.wake.wait()
            finally:
                self._leave(live)
        finally:
            self.watchers -= 1
            metrics.WATCHERS.dec()

    def _check_stopping(self) -> None:
        if self.stopping:
            metrics.WATCHERS_ENDED.labels("shutdown").inc()
            raise WatchStopped("proximity-geofence is shutting down; watch again with the last sequence seen")

    def _join(self, live: _Live) -> None:
        if not live.fence_ids:
            self._all.add(live)
        for fence_id in live.fence_ids:
            self._by_fence.setdefault(fence_id, set()).add(live)

    def _leave(self, live: _Live) -> None:
        self._all.discard(live)
        for fence_id in live.fence_ids:
            members = self._by_fence.get(fence_id)
            if members is not None:
                members.discard(live)
                if not members:
                    del self._by_fence[fence_id]

    def stop(self) -> None:
        """End every watcher with :class:`WatchStopped` (shutdown); later watches raise it at once."""
        self.stopping = True
        for live in {*self._all, *(live for members in self._by_fence.values() for live in members)}:
            live.stopped = True
            live.wake.set()
