"""TrackDriver's feeds: each tracked driver's latest position, shared by its watchers (latest-value, not a queue).

Seed 001 #02 (shared/seeds/001_58dfc580020147d2.txt line 11), "Ride-Sharing ... real-time tracking": the rider's app
follows the driver's car. A driver's positions arrive every 3 to 5 s (seed 003 line 636); a watcher only ever needs
the newest, so a :class:`PositionFeed` holds one position and a version number, and each watcher remembers the
version it sent last: a watcher slowed down by its network (gRPC flow control holds its ``yield``) skips the
positions that were overwritten meanwhile instead of queueing them. Memory is one feed per tracked driver,
whatever the number of watchers or how far behind they are.

A feed exists only while the driver has watchers (untracked drivers cost nothing here). It ends when the driver
goes OFFLINE (its watchers get that last position, then end OK), expires (they end OK), or the service stops
(:class:`TrackingStopped`: UNAVAILABLE).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from casemesh.rides.v1 import rides_pb2

from ...runtime.errors import ResourceExhausted
from . import metrics


class TrackingStopped(Exception):
    """The location service is shutting down: the watcher ends ``UNAVAILABLE`` (track again elsewhere or later)."""


class PositionFeed:
    """One driver's latest position (``version`` counts the positions published) and how its watchers end."""

    __slots__ = ("position", "version", "ended", "stopped", "watchers", "_wake")

    def __init__(self, position: rides_pb2.DriverPosition) -> None:
        self.position = position
        self.version = 1
        self.ended = False
        self.stopped = False
        self.watchers = 0
        self._wake = asyncio.Event()

    def publish(self, position: rides_pb2.DriverPosition) -> None:
        """Make ``position`` the latest and wake the watchers."""
        self.position = position
        self.version += 1
        self._wake_all()

    def end(self, *, stopped: bool = False) -> None:
        """No more positions: watchers end once they sent the latest (OK), or at once when ``stopped`` (shutdown)."""
        self.ended = True
        self.stopped = stopped
        self._wake_all()

    def _wake_all(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def follow(self) -> AsyncIterator[rides_pb2.DriverPosition]:
        """The latest position now, then each newer one as the watcher is ready for it (skipping overwritten ones);
        returns when the feed ended. :class:`TrackingStopped` on shutdown."""
        sent = 0
        while True:
            wake = self._wake
            if self.stopped:
                raise TrackingStopped("rides-location is shutting down; track the driver again")
            if self.version > sent:
                sent = self.version
                yield self.position
            elif self.ended:
                return
            else:
                await wake.wait()


class TrackerFeeds:
    """The feeds of the tracked drivers and the count of watchers (at most ``max_watchers``)."""

    def __init__(self, max_watchers: int) -> None:
        self.max_watchers = max_watchers
        self.watchers = 0
        self._feeds: dict[str, PositionFeed] = {}

    def __len__(self) -> int:
        """Drivers tracked now."""
        return len(self._feeds)

    def publish(self, driver_id: str, position: rides_pb2.DriverPosition) -> None:
        """A new position of ``driver_id``: its watchers, if any, get it (or a newer one)."""
        feed = self._feeds.get(driver_id)
        if feed is not None:
            feed.publish(position)

    def end(self, driver_id: str, final: rides_pb2.DriverPosition | None = None) -> None:
        """``driver_id`` is gone (OFFLINE with ``final``, its last position; or expired): its watchers end OK."""
        feed = self._feeds.pop(driver_id, None)
        if feed is not None:
            if final is not None:
                feed.publish(final)
            feed.end()

    def stop(self) -> None:
        """End every watcher with :class:`TrackingStopped` (shutdown)."""
        feeds, self._feeds = self._feeds, {}
        for feed in feeds.values():
            feed.end(stopped=True)

    async def track(self, driver_id: str, current: rides_pb2.DriverPosition) -> AsyncIterator[rides_pb2.DriverPosition]:
        """Watch ``driver_id``, whose latest position is ``current``: yields it, then newer ones (latest-value).
        Raises :class:`ResourceExhausted` (before the first position) when ``max_watchers`` watch already.

        The caller reads ``current`` from the index and calls this without an ``await`` in between, so no position
        published meanwhile can be missed.
        """
        if self.watchers >= self.max_watchers:
            raise ResourceExhausted(f"rides-location holds {self.max_watchers:,} TrackDriver streams already")
        feed = self._feeds.get(driver_id)
        if feed is None:
            feed = self._feeds[driver_id] = PositionFeed(current)
        feed.watchers += 1
        self.watchers += 1
        metrics.TRACKERS.inc()
        try:
            async with contextlib.aclosing(feed.follow()) as positions:
                async for position in positions:
                    yield position
        finally:
            feed.watchers -= 1
            self.watchers -= 1
            metrics.TRACKERS.dec()
            if feed.watchers == 0 and self._feeds.get(driver_id) is feed:
                del self._feeds[driver_id]
