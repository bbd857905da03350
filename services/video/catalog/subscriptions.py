"""Channel subscriptions, strongly consistent (seed 004, "Clarify Requirements": "Subscriptions are
strongly consistent (you must never miss a sub notification)").

One in-process store behind an ``aiorwlock.RWLock``: Subscribe and
Unsubscribe change both directions (user → channels, channel → subscribers)
under the writer lock in one step, and every read takes the reader lock, so a
subscription is visible to the very next read, in any order of calls
(read-your-writes and monotonic reads hold for everyone, not just the writer).
Both calls are idempotent. Channels need not have published anything yet.
"""

from __future__ import annotations

import aiorwlock


class SubscriptionStore:
    """User ↔ channel subscriptions. Single event loop; memory grows with subscriptions."""

    def __init__(self) -> None:
        self._lock = aiorwlock.RWLock()
        self._channels_of: dict[str, set[str]] = {}
        self._subscribers: dict[str, set[str]] = {}

    async def subscribe(self, user_id: str, channel_id: str) -> int:
        """Subscribe ``user_id`` to ``channel_id`` (again is a no-op); returns the channel's subscriber count."""
        async with self._lock.writer:
            self._channels_of.setdefault(user_id, set()).add(channel_id)
            subscribers = self._subscribers.setdefault(channel_id, set())
            subscribers.add(user_id)
            return len(subscribers)

    async def unsubscribe(self, user_id: str, channel_id: str) -> int:
        """Remove the subscription if any; returns the channel's subscriber count."""
        async with self._lock.writer:
            channels = self._channels_of.get(user_id)
            if channels is not None:
                channels.discard(channel_id)
                if not channels:
                    del self._channels_of[user_id]
            subscribers = self._subscribers.get(channel_id)
            if subscribers is None:
                return 0
            subscribers.discard(user_id)
            if not subscribers:
                del self._subscribers[channel_id]
                return 0
            return len(subscribers)

    async def channels(self, user_id: str) -> list[str]:
        """The channels ``user_id`` subscribes to (a sorted copy)."""
        async with self._lock.reader:
            return sorted(self._channels_of.get(user_id, ()))

    async def subscriber_count(self, channel_id: str) -> int:
        """Subscribers of ``channel_id``."""
        async with self._lock.reader:
            return len(self._subscribers.get(channel_id, ()))
