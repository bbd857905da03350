"""Couriers' assignment feeds: one ReceiveAssignments stream per courier, each with a small bounded queue.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery": dispatch pushes each assignment to the
courier's app. As the ride-sharing drivers' offer feeds (services/rides/dispatch/feeds.py):

- One feed per courier: a second ReceiveAssignments of the same courier takes over, the first ends ABORTED.
- At most ``max_feeds`` open: one more is RESOURCE_EXHAUSTED.
- A feed queues at most ``capacity`` assignments; a courier holds one batch at a time, so a full queue means the app
  stopped reading: :meth:`AssignmentFeeds.has` is False and dispatch gives that courier nothing new.
- On shutdown every feed ends UNAVAILABLE (the app reconnects, and gets its batch again).
"""

from __future__ import annotations

import asyncio
from collections import deque

import grpc

from casemesh.food.v1 import dispatch_pb2

from ...runtime.errors import ResourceExhausted
from . import metrics


class FeedEnded(Exception):
    """A ReceiveAssignments stream must end with ``code`` (ABORTED: taken over; UNAVAILABLE: shutdown)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class AssignmentFeed:
    """One courier's stream: assignments queued for it (at most ``capacity``), and how it must end, once it must."""

    def __init__(self, courier_id: str, capacity: int) -> None:
        self.courier_id = courier_id
        self._capacity = capacity
        self._events: deque[dispatch_pb2.ReceiveAssignmentsResponse] = deque()
        self._wake = asyncio.Event()
        self.ended: FeedEnded | None = None

    def push(self, event: dispatch_pb2.ReceiveAssignmentsResponse) -> bool:
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

    async def next(self) -> dispatch_pb2.ReceiveAssignmentsResponse:
        """The next assignment, waiting for one; raises :class:`FeedEnded` once the feed must end."""
        while True:
            if self.ended is not None:
                raise self.ended
            if self._events:
                return self._events.popleft()
            self._wake.clear()
            await self._wake.wait()


class AssignmentFeeds:
    """The open feeds by courier id: at most ``max_feeds``, each queueing at most ``capacity`` assignments."""

    def __init__(self, max_feeds: int, capacity: int) -> None:
        self._max_feeds = max_feeds
        self._capacity = capacity
        self._feeds: dict[str, AssignmentFeed] = {}

    def __len__(self) -> int:
        return len(self._feeds)

    def open(self, courier_id: str) -> AssignmentFeed:
        """A new feed for ``courier_id``; the courier's older feed ends ABORTED. :class:`ResourceExhausted` when
        ``max_feeds`` are open (a takeover does not count: it replaces one)."""
        older = self._feeds.get(courier_id)
        if older is None and len(self._feeds) >= self._max_feeds:
            raise ResourceExhausted(f"food-dispatch holds {self._max_feeds:,} assignment feeds already")
        if older is not None:
            older.end(grpc.StatusCode.ABORTED, f"another ReceiveAssignments of courier {courier_id} took over")
        feed = self._feeds[courier_id] = AssignmentFeed(courier_id, self._capacity)
        metrics.FEEDS.set(len(self._feeds))
        return feed

    def close(self, feed: AssignmentFeed) -> None:
        """Forget ``feed`` (its stream ended); a newer feed of the courier stays."""
        if self._feeds.get(feed.courier_id) is feed:
            del self._feeds[feed.courier_id]
            metrics.FEEDS.set(len(self._feeds))

    def has(self, courier_id: str) -> bool:
        """True when the courier has an open feed with room for an assignment."""
        feed = self._feeds.get(courier_id)
        return feed is not None and feed.has_room()

    def send(self, courier_id: str, event: dispatch_pb2.ReceiveAssignmentsResponse) -> bool:
        """Queue ``event`` on the courier's feed; False when it has none, or its queue is full."""
        feed = self._feeds.get(courier_id)
        return feed is not None and feed.push(event)

    def end_all(self, code: grpc.StatusCode, message: str) -> None:
        """End every feed with ``code`` (shutdown)."""
        for feed in self._feeds.values():
            feed.end(code, message)
