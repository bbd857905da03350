"""Shared by the social-feed integration tests: a follow graph, concurrent posting, and the timeline invariant."""

from __future__ import annotations

import asyncio
import random
import time

import grpc

from casemesh.social.v1 import graph_pb2, graph_pb2_grpc, timeline_pb2, timeline_pb2_grpc, tweets_pb2, tweets_pb2_grpc

SERVICES = ["social-graph", "social-tweets", "social-timeline", "idgen"]
#: A user is a celebrity from this many followers on in these tests (user-000 and user-001 are).
THRESHOLD = 6


def users(n: int) -> list[str]:
    return [f"user-{i:03d}" for i in range(n)]


def edges(n: int, rng: random.Random) -> list[tuple[str, str]]:
    """user-000 and user-001 followed by almost everyone (celebrities), every other user follows 1-4 random others."""
    ids = users(n)
    out = {(u, ids[c]) for u in ids for c in (0, 1) if u != ids[c] and rng.random() < 0.8}
    for u in ids:
        for v in rng.sample(ids, rng.randint(1, 4)):
            if v != u:
                out.add((u, v))
    return sorted(out)


class Client:
    """Stubs of the three public services on one mesh."""

    def __init__(self, graph: grpc.aio.Channel, tweets: grpc.aio.Channel, timeline: grpc.aio.Channel) -> None:
        self.graph = graph_pb2_grpc.SocialGraphServiceStub(graph)
        self.tweets = tweets_pb2_grpc.TweetServiceStub(tweets)
        self.timeline = timeline_pb2_grpc.TimelineServiceStub(timeline)

    async def follow_all(self, pairs: list[tuple[str, str]], concurrency: int = 16) -> None:
        work = iter(pairs)

        async def worker() -> None:
            for u, v in work:
                await self.graph.Follow(graph_pb2.FollowRequest(follower_id=u, followee_id=v), timeout=10)

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    async def post_many(self, authors: list[str], n: int, rng: random.Random, posted: dict[int, str],
                        concurrency: int = 16, tolerate: frozenset = frozenset(), unanswered: set[str] | None = None) -> int:
        """Post ``n`` tweets (unique texts) by random ``authors`` from ``concurrency`` clients; acknowledged ones go into ``posted``.

        Codes in ``tolerate`` (a service being restarted) are counted, not
        raised, and the texts of those posts go into ``unanswered`` (stored
        or not: a crash after the commit and before the answer leaves a
        stored tweet its client never heard of). Returns how many failed so.
        """
        failed = 0
        todo = iter(range(n))

        async def worker() -> None:
            nonlocal failed
            for _ in todo:
                author = rng.choice(authors)
                text = f"tweet {rng.getrandbits(64):016x}"
                try:
                    response = await self.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id=author, text=text), timeout=10)
                except grpc.aio.AioRpcError as error:
                    if error.code() not in tolerate:
                        raise
                    failed += 1
                    if unanswered is not None:
                        unanswered.add(text)
                    await asyncio.sleep(0.05)
                    continue
                posted[response.tweet.tweet_id] = author

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return failed

    async def settle(self, timeout_s: float = 60) -> int:
        """Wait until the fan-out has applied every logged tweet (a probe post's sequence); returns that sequence."""
        probe = await self.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id="probe", text="settle"), timeout=10)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                status = await self.timeline.GetFanoutStatus(timeline_pb2.GetFanoutStatusRequest(), timeout=10)
                if status.applied_sequence >= probe.sequence:
                    return probe.sequence
            except grpc.aio.AioRpcError:
                pass  # restarting
            assert time.monotonic() < deadline, "the fan-out did not catch up"
            await asyncio.sleep(0.1)

    async def home(self, user: str, ranking: int = timeline_pb2.RANKING_CHRONOLOGICAL) -> list:
        """Every page of ``user``'s home timeline, in order."""
        tweets, token = [], ""
        while True:
            page = await self.timeline.GetHomeTimeline(timeline_pb2.GetHomeTimelineRequest(
                user_id=user, page_size=37, page_token=token, ranking=ranking), timeout=10)
            tweets.extend(page.tweets)
            token = page.next_page_token
            if not token:
                return tweets


async def assert_timelines_exact(client: Client, follows: list[tuple[str, str]], posted: dict[int, str], readers: list[str],
                                 unanswered: set[str] = frozenset()) -> None:
    """Each reader's home timeline holds every acknowledged post of everyone they follow, exactly once, newest first.

    A post whose PostTweet failed (its text in ``unanswered``) may be there too, if the store kept it; nothing else may.
    """
    following: dict[str, set[str]] = {}
    for u, v in follows:
        following.setdefault(u, set()).add(v)
    for reader in readers:
        tweets = await client.home(reader)
        got = [t.tweet_id for t in tweets]
        expected = {tid for tid, author in posted.items() if author in following.get(reader, set())}
        assert len(got) == len(set(got)), f"{reader}: a tweet shown twice"
        assert got == sorted(got, reverse=True), f"{reader}: not newest first"
        missing = expected - set(got)
        extra = [t.tweet_id for t in tweets if t.tweet_id not in expected
                 and not (t.text in unanswered and t.author_id in following.get(reader, set()))]
        assert not missing and not extra, f"{reader}: missing {sorted(missing)[:5]} ({len(missing)}), extra {extra[:5]} ({len(extra)})"
