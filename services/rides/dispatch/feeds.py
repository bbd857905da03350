"""Drivers' offer feeds: one ReceiveOffers stream per driver, each with a small bounded queue.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching",
Ride Matching Algorithm, ``sendOffers``: the seed pushes offers to drivers by
notification; here each online driver's app holds a ReceiveOffers server
stream, and dispatch offers rides only to drivers with one open (a driver
without a feed would never see the offer).

- One feed per driver: a second ReceiveOffers of the same driver takes over,
  the first ends ABORTED.
- At most ``max_feeds`` open: one more is RESOURCE_EXHAUSTED.
- A feed queues at most ``capacity`` events; offers are few per driver (one
  at a time, a withdrawal each), so a full queue means the app stopped reading:
  :meth:`OfferFeeds.send` refuses, and that driver gets no new offer.
- On shutdown every feed ends UNAVAILABLE (the app reconnects).
"""

from __future__ import annotations

import asyncio
from collections import deque

import grpc

from casemesh.rides.v1 import dispatch_pb2

from ...runtime.errors import ResourceExhausted
from . import metrics


class FeedEnded(Exception):
    """A ReceiveOffers stream must end with ``code`` (ABORTED: taken over; UNAVAILABLE: shutdown)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class OfferFeed:
    """One driver's stream: events queued for it (at most ``capacity``), and how it must end, once it must."""

    def __init__(self, driver_id: str, capacity: int) -> None:
        self.driver_id = driver_id
        self._capacity = capacity
        self._events: deque[dispatch_pb2.ReceiveOffersResponse] = deque()
        self._wake = asyncio.Event()
        self.ended: FeedEnded | None = None

    def push(self, event: dispatch_pb2.ReceiveOffersResponse) -> bool:
        """Queue ``event``; False when the feed has ended or its queue is full."""
        if not self.has_room():
            return False
        self._events.append(event)
        self._wake.set()
        return True

    def has_room(self) -> bool:
        """True when :meth:`push` would queue an event."""
        return self.ended is None and len(self._events) < self._capacity

    def end(self, code: grpc.StatusCode, message: str) -> None:
        """Make the stream end with ``code`` (the first reason wins); events still queued are dropped."""
        if self.ended is None:
            self.ended = FeedEnded(code, message)
            self._wake.set()

    async def next(self) -> dispatch_pb2.ReceiveOffersResponse:
        """The next event, waiting for one; raises :class:`FeedEnded` once the feed must end."""
        while True:
            if self.ended is not None:
                raise self.ended
            if self._events:
                return self._events.popleft()
            self._wake.clear()
            await self._wake.wait()


class OfferFeeds:
    """The open feeds by driver id: at most ``max_feeds``, each queueing at most ``capacity`` events."""

    def __init__(self, max_feeds: int, capacity: int) -> None:
        self._max_feeds = max_feeds
        self._capacity = capacity
        self._feeds: dict[str, OfferFeed] = {}

    def open(self, driver_id: str) -> OfferFeed:
        """A new feed for ``driver_id``; the driver's older feed ends ABORTED. :class:`ResourceExhausted` when
        ``max_feeds`` are open (a takeover does not count: it replaces one)."""
        older = self._feeds.get(driver_id)
        if older is None and len(self._feeds) >= self._max_feeds:
            raise ResourceExhausted(f"rides-dispatch holds {self._max_feeds:,} offer feeds already")
        if older is not None:
            older.end(grpc.StatusCode.ABORTED, f"another ReceiveOffers of driver {driver_id} took over")
        feed = self._feeds[driver_id] = OfferFeed(driver_id, self._capacity)
        metrics.FEEDS.set(len(self._feeds))
        return feed

    def close(self, feed: OfferFeed) -> None:
        """Forget ``feed`` (its stream ended); a newer feed of the driver stays."""
        if self._feeds.get(feed.driver_id) is feed:
            del self._feeds[feed.driver_id]
            metrics.FEEDS.set(len(self._feeds))

    def has(self, driver_id: str) -> bool:
        """True when the driver has an open feed with room for an event."""
        feed = self._feeds.get(driver_id)
        return feed is not None and feed.has_room()

    def send(self, driver_id: str, event: dispatch_pb2.ReceiveOffersResponse) -> bool:
        """Queue ``event`` on the driver's feed; False when it has none, or its queue is full."""
        feed = self._feeds.get(driver_id)
        return feed is not None and feed.push(event)

    def end_all(self, code: grpc.StatusCode, message: str) -> None:
        """End every feed with ``code`` (shutdown)."""
        for feed in self._feeds.values():
            feed.end(code, message)
