"""Bounded home-timeline caches: the newest tweet IDs pushed to each user, exactly once each.

Seed 003, "Redis for Timeline Cache": "Store only tweet IDs (not full data);
Keep 800 tweets per timeline"; seed 000's ``fan_out_tweet`` does ``ZADD`` into
a sorted set by time and trims it with ``ZREMRANGEBYRANK``. Here each user's
timeline is a ``sortedcontainers.SortedList`` of Snowflake IDs (sorted by ID
is sorted by time): adding an ID that is already there does nothing (a
replayed log entry is not shown twice), and beyond ``capacity`` the oldest ID
is dropped.

Plain, single event loop, no locks: every method runs without awaiting.
"""

from __future__ import annotations

from sortedcontainers import SortedList

from ..limits import TIMELINE_CAPACITY


class TimelineCache:
    """User ID → their newest ``capacity`` pushed tweet IDs."""

    def __init__(self, capacity: int = TIMELINE_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 (got {capacity})")
        self.capacity = capacity
        self._timelines: dict[str, SortedList] = {}
        #: IDs added so far (a repeat of an ID already cached is not counted).
        self.entries_pushed = 0
        #: IDs dropped because a timeline was full.
        self.entries_trimmed = 0
        #: IDs held now, over every timeline.
        self.entries_held = 0

    def push(self, tweet_id: int, followers: list[str]) -> int:
        """Add ``tweet_id`` to each follower's timeline; returns how many timelines it was new to."""
        added = 0
        for user in followers:
            timeline = self._timelines.get(user)
            if timeline is None:
                timeline = self._timelines[user] = SortedList()
            elif tweet_id in timeline:
                continue
            elif len(timeline) >= self.capacity and tweet_id < timeline[0]:
                self.entries_trimmed += 1  # older than everything kept: it would be trimmed at once
                continue
            timeline.add(tweet_id)
            added += 1
            if len(timeline) > self.capacity:
                del timeline[0]
                self.entries_trimmed += 1
            else:
                self.entries_held += 1
        self.entries_pushed += added
        return added

    def newest(self, user: str, limit: int) -> list[int]:
        """``user``'s newest ``limit`` cached IDs, newest first."""
        timeline = self._timelines.get(user)
        if not timeline or limit < 1:  # timeline[-0:] would be the whole timeline
            return []
        return list(reversed(timeline[-limit:]))

    def __len__(self) -> int:
        """Timelines held."""
        return len(self._timelines)
