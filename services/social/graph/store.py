"""The follow graph, strongly consistent (seed 003, "Following Relationship (Graph)").

One in-process store behind an ``aiorwlock.RWLock``: Follow and Unfollow
change both directions (follower → followees, followee → followers) under the
writer lock in one step, so an edge is visible to the very next read of
either direction. Each direction keeps follow order (a dict used as an
ordered set), which is the order ListFollowers and ListFollowing page in.
In memory only: the graph is seeded through the API at the start of a run.
"""

from __future__ import annotations

import aiorwlock

from ...runtime.errors import ResourceExhausted
from ..limits import MAX_FOLLOWING


class FollowGraph:
    """Directed follow edges. Single event loop; memory grows with edges."""

    def __init__(self, max_following: int = MAX_FOLLOWING) -> None:
        self._lock = aiorwlock.RWLock()
        self._followers: dict[str, dict[str, None]] = {}
        self._following: dict[str, dict[str, None]] = {}
        self._max_following = max_following
        #: Edges in the graph now.
        self.edge_count = 0

    async def follow(self, follower: str, followee: str) -> int:
        """Add the edge (again is a no-op); returns ``followee``'s follower count.

        Raises ``ResourceExhausted`` when ``follower`` already follows ``max_following`` users.
        """
        async with self._lock.writer:
            following = self._following.setdefault(follower, {})
            if followee not in following:
                if len(following) >= self._max_following:
                    raise ResourceExhausted(f"{follower} already follows {len(following):,} users, the most allowed")
                following[followee] = None
                self._followers.setdefault(followee, {})[follower] = None
                self.edge_count += 1
            return len(self._followers[followee])

    async def follow_many(self, follower: str, followees: list[str]) -> tuple[int, int]:
        """Add every edge ``follower → f`` at once, all or nothing; returns (edges added, ``follower``'s following count).

        Raises ``ResourceExhausted`` (and changes nothing) when ``follower`` would follow more than ``max_following``.
        """
        async with self._lock.writer:
            following = self._following.setdefault(follower, {})
            new = [f for f in dict.fromkeys(followees) if f not in following]
            if len(following) + len(new) > self._max_following:
                if not following:
                    del self._following[follower]
                raise ResourceExhausted(f"{follower} follows {len(following):,} users; {len(new):,} more would pass "
                                        f"the most allowed ({self._max_following:,})")
            for followee in new:
                following[followee] = None
                self._followers.setdefault(followee, {})[follower] = None
            self.edge_count += len(new)
            return len(new), len(following)

    async def unfollow(self, follower: str, followee: str) -> int:
        """Remove the edge if any; returns ``followee``'s follower count."""
        async with self._lock.writer:
            following = self._following.get(follower)
            if following is not None and following.pop(followee, 0) is None:
                followers = self._followers[followee]
                del followers[follower]
                self.edge_count -= 1
                if not followers:
                    del self._followers[followee]
                if not following:
                    del self._following[follower]
            return len(self._followers.get(followee, ()))

    async def followers(self, user: str, offset: int, limit: int) -> tuple[list[str], int]:
        """Followers of ``user`` from position ``offset`` (follow order), at most ``limit``; and the total count."""
        async with self._lock.reader:
            everyone = self._followers.get(user, {})
            return _slice(everyone, offset, limit), len(everyone)

    async def following(self, user: str, offset: int, limit: int) -> tuple[list[tuple[str, int]], int]:
        """Users ``user`` follows from ``offset``, at most ``limit``, each with their follower count; and the total."""
        async with self._lock.reader:
            everyone = self._following.get(user, {})
            page = _slice(everyone, offset, limit)
            return [(f, len(self._followers.get(f, ()))) for f in page], len(everyone)

    async def counts(self, user: str) -> tuple[int, int]:
        """(followers, following) of ``user``."""
        async with self._lock.reader:
            return len(self._followers.get(user, ())), len(self._following.get(user, ()))


def _slice(ordered: dict[str, None], offset: int, limit: int) -> list[str]:
    if offset >= len(ordered):
        return []
    if offset == 0 and limit >= len(ordered):
        return list(ordered)
    out = []
    for i, key in enumerate(ordered):
        if i >= offset + limit:
            break
        if i >= offset:
            out.append(key)
    return out
