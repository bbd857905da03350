"""Hypothesis state machines: the follow graph and the timeline cache against plain models of what they must hold."""

from __future__ import annotations

import asyncio

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from casemesh.services.runtime.errors import ResourceExhausted
from casemesh.services.social.graph.store import FollowGraph
from casemesh.services.social.timeline.cache import TimelineCache

USERS = st.sampled_from([f"u{i}" for i in range(6)])
MAX_FOLLOWING = 3
CAPACITY = 4


class FollowGraphMachine(RuleBasedStateMachine):
    """Follow, FollowMany and Unfollow in any order: both directions, the counts and follow order match a list of edges."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.graph = FollowGraph(max_following=MAX_FOLLOWING)
        self.edges: list[tuple[str, str]] = []  # in follow order

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def following(self, user: str) -> list[str]:
        return [v for u, v in self.edges if u == user]

    @rule(follower=USERS, followee=USERS)
    def follow(self, follower: str, followee: str) -> None:
        if (follower, followee) not in self.edges and len(self.following(follower)) >= MAX_FOLLOWING:
            try:
                self.run(self.graph.follow(follower, followee))
            except ResourceExhausted:
                return
            raise AssertionError("a follow past the limit was accepted")
        count = self.run(self.graph.follow(follower, followee))
        if (follower, followee) not in self.edges:
            self.edges.append((follower, followee))
        assert count == sum(1 for _, v in self.edges if v == followee)

    @rule(follower=USERS, followees=st.lists(USERS, max_size=4))
    def follow_many(self, follower: str, followees: list[str]) -> None:
        new = [f for f in dict.fromkeys(followees) if (follower, f) not in self.edges]
        if len(self.following(follower)) + len(new) > MAX_FOLLOWING:
            try:
                self.run(self.graph.follow_many(follower, followees))
            except ResourceExhausted:
                return  # all or nothing: the invariant checks nothing changed
            raise AssertionError("a FollowMany past the limit was accepted")
        added, total = self.run(self.graph.follow_many(follower, followees))
        self.edges.extend((follower, f) for f in new)
        assert (added, total) == (len(new), len(self.following(follower)))

    @rule(follower=USERS, followee=USERS)
    def unfollow(self, follower: str, followee: str) -> None:
        self.run(self.graph.unfollow(follower, followee))
        if (follower, followee) in self.edges:
            self.edges.remove((follower, followee))

    @invariant()
    def matches_the_model(self) -> None:
        assert self.graph.edge_count == len(self.edges)
        for user in [f"u{i}" for i in range(6)]:
            followers, total = self.run(self.graph.followers(user, 0, 100))
            assert followers == [u for u, v in self.edges if v == user] and total == len(followers)
            following, total = self.run(self.graph.following(user, 0, 100))
            assert [f for f, _ in following] == self.following(user) and total == len(following)
            assert all(count == sum(1 for _, v in self.edges if v == f) for f, count in following)

    def teardown(self) -> None:
        self.loop.close()


class TimelineCacheMachine(RuleBasedStateMachine):
    """Pushes in any order, repeated or not: each timeline is the newest CAPACITY distinct IDs ever pushed to it."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = TimelineCache(capacity=CAPACITY)
        self.pushed: dict[str, set[int]] = {}

    @rule(tweet_id=st.integers(min_value=1, max_value=30), followers=st.lists(USERS, max_size=4, unique=True))
    def push(self, tweet_id: int, followers: list[str]) -> None:
        self.cache.push(tweet_id, followers)
        for user in followers:
            self.pushed.setdefault(user, set()).add(tweet_id)

    @invariant()
    def newest_distinct_ids_kept(self) -> None:
        for user, ids in self.pushed.items():
            kept = self.cache.newest(user, CAPACITY + 10)
            # An ID older than a full timeline is never added; one that was added and trimmed is not re-added
            # later by a repeat. Either way the timeline holds the newest CAPACITY IDs pushed to it, newest first.
            assert kept == sorted(ids, reverse=True)[:CAPACITY]
        assert self.cache.entries_held == sum(len(self.cache.newest(u, CAPACITY)) for u in self.pushed)


TestFollowGraph = FollowGraphMachine.TestCase
TestFollowGraph.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestTimelineCache = TimelineCacheMachine.TestCase
TestTimelineCache.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
