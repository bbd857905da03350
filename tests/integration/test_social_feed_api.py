"""The social feed through real gRPC: the hybrid fan-out's invariant under concurrent clients, ranking, bad input."""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
import pytest_asyncio

from casemesh.services.catalog import definitions
from casemesh.social.v1 import graph_pb2, timeline_pb2, tweets_pb2

from .conftest import loopback_topology, start_mesh
from .social_feed import SERVICES, THRESHOLD, Client, assert_timelines_exact, edges, users

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    topology = loopback_topology(SERVICES, tmp_path_factory.mktemp("social-data"),
                                 settings={"social-timeline": {"celebrity_threshold": THRESHOLD}})
    running, stop, task = await start_mesh(definitions(SERVICES), topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture(scope="module")
def client(mesh) -> Client:
    return Client(mesh.channel("social-graph"), mesh.channel("social-tweets"), mesh.channel("social-timeline"))


async def test_every_follower_sees_every_post_exactly_once_in_order(client):
    rng = random.Random(7)
    ids = users(30)
    follows = edges(30, rng)
    await client.follow_all(follows)
    posted: dict[int, str] = {}
    readers = asyncio.create_task(_read_while_posting(client, ids, rng))  # reads race the fan-out; they must not break it
    await client.post_many(ids, 400, rng, posted, concurrency=24)
    await readers
    await client.settle()
    status = await client.timeline.GetFanoutStatus(timeline_pb2.GetFanoutStatusRequest())
    assert status.skipped_celebrity_tweets > 0 and status.pushed_entries > 0  # both paths of the hybrid ran
    await assert_timelines_exact(client, follows, posted, ids)

    # Unfollowing a celebrity and a regular user: their tweets leave the timeline at once, the rest stays exact.
    reader = next(u for u, v in follows if v == "user-000")
    regular = next(v for u, v in follows if u == reader and v not in ("user-000", "user-001"))
    for followee in ("user-000", regular):
        await client.graph.Unfollow(graph_pb2.UnfollowRequest(follower_id=reader, followee_id=followee))
    remaining = [(u, v) for u, v in follows if not (u == reader and v in ("user-000", regular))]
    await assert_timelines_exact(client, remaining, posted, [reader])


async def _read_while_posting(client: Client, ids: list[str], rng: random.Random) -> None:
    for _ in range(60):
        await client.timeline.GetHomeTimeline(timeline_pb2.GetHomeTimelineRequest(user_id=rng.choice(ids), page_size=20))


async def test_engagement_ranking_puts_the_most_liked_first(client):
    await client.graph.Follow(graph_pb2.FollowRequest(follower_id="ranker", followee_id="writer"))
    ids = [(await client.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id="writer", text=f"t{i}"))).tweet.tweet_id
           for i in range(3)]
    for i in range(5):
        await client.tweets.LikeTweet(tweets_pb2.LikeTweetRequest(tweet_id=ids[0], user_id=f"fan-{i}"))
    await client.tweets.LikeTweet(tweets_pb2.LikeTweetRequest(tweet_id=ids[0], user_id="fan-0"))  # twice counts once
    await client.settle()
    chronological = [t.tweet_id for t in await client.home("ranker")]
    ranked = await client.home("ranker", timeline_pb2.RANKING_ENGAGEMENT)
    assert chronological == ids[::-1]
    assert [t.tweet_id for t in ranked] == [ids[0], ids[2], ids[1]] and ranked[0].like_count == 5


@pytest.mark.parametrize("call, field", [
    (lambda c: c.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id="a", text="x" * 281)), "text"),
    (lambda c: c.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id="a", text="   ")), "text"),
    (lambda c: c.tweets.PostTweet(tweets_pb2.PostTweetRequest(author_id="bad id!", text="hi")), "author_id"),
    (lambda c: c.graph.Follow(graph_pb2.FollowRequest(follower_id="a", followee_id="a")), "followee_id"),
    (lambda c: c.graph.ListFollowers(graph_pb2.ListFollowersRequest(user_id="a", page_token="garbage")), "page_token"),
    (lambda c: c.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="a", followee_ids=["b", "a"])), "followee_ids[1]"),
    (lambda c: c.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="a")), "followee_ids"),
    (lambda c: c.timeline.GetHomeTimeline(timeline_pb2.GetHomeTimelineRequest(user_id="a", page_size=201)), "page_size"),
    (lambda c: c.timeline.GetHomeTimeline(timeline_pb2.GetHomeTimelineRequest(user_id="a", ranking=9)), "ranking"),
    (lambda c: c.tweets.GetTweets(tweets_pb2.GetTweetsRequest()), "tweet_ids"),
    (lambda c: c.tweets.ListRecentTweets(tweets_pb2.ListRecentTweetsRequest(author_ids=["a"], limit_per_author=0)), "limit_per_author"),
])
async def test_bad_input_is_invalid_argument_naming_the_field_and_loses_nothing(client, call, field):
    before = await client.tweets.ListUserTweets(tweets_pb2.ListUserTweetsRequest(author_id="a", page_size=800))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(client)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and refused.value.details().startswith(f"{field}:"), refused.value.details()
    after = await client.tweets.ListUserTweets(tweets_pb2.ListUserTweetsRequest(author_id="a", page_size=800))
    assert after == before


async def test_like_of_an_unknown_tweet_is_not_found(client):
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await client.tweets.LikeTweet(tweets_pb2.LikeTweetRequest(tweet_id=12345, user_id="a"))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_follow_many_is_all_or_nothing(client):
    done = await client.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="joiner", followee_ids=["x1", "x2", "x2", "x3"]))
    assert (done.added, done.following_count) == (3, 3)
    again = await client.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="joiner", followee_ids=["x3", "x4"]))
    assert (again.added, again.following_count) == (1, 4)
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # 4 + 4,997 new > 5,000: nothing changes
        await client.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id="joiner", followee_ids=[f"y{i}" for i in range(4997)]))
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    counts = await client.graph.GetFollowCounts(graph_pb2.GetFollowCountsRequest(user_id="joiner"))
    assert counts.following_count == 4
