"""The social workload's journeys: reading the home timeline, posting (with fan-out freshness), likes, follows.

Mix and SLOs from seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt, "Twitter
Feed System"): "Read:Write ratio = 100:1", "Feed loads < 500ms", "Real-time
updates (tweets appear immediately)". The last one is the journey-defined
measure ``fanout_freshness``: after PostTweet answers OK, a sampled follower
of the author polls their home timeline until the tweet is in it; the measure
is the time from the OK to the answer of the first read that shows it, so it
includes one read's latency and is quantized by ``poll_interval_ms``.
"""

from __future__ import annotations

import asyncio
import random
import time

import grpc
from pydantic import Field

from casemesh.social.v1 import graph_pb2, timeline_pb2, tweets_pb2

from ..base import Caller, Params
from .seeding import GRAPH, TIMELINE, TWEETS, State
from .text import tweet_text

#: Journey-defined measure: PostTweet OK → visible in a sampled follower's home timeline (seconds).
FANOUT_FRESHNESS = "fanout_freshness"


class NoParams(Params):
    """A journey without parameters."""


class HomeParams(Params):
    """One home-timeline page."""

    page_size: int = Field(default=50, ge=1, le=200, description="tweets per page (seed 003: limit = 50)")
    ranked: bool = Field(default=False, description="RANKING_ENGAGEMENT instead of chronological")


class PostParams(Params):
    """A tweet, and how its fan-out freshness is measured."""

    words: int = Field(default=12, ge=1, le=60, description="words per tweet (clipped to 280 characters)")
    freshness_share: float = Field(default=1.0, ge=0.0, le=1.0, description="share of posts whose freshness is measured")
    poll_interval_ms: float = Field(default=50.0, ge=5, le=10_000, description="the follower's re-read interval while waiting")
    freshness_timeout_s: float = Field(default=10.0, gt=0, le=600, description="give up (DEADLINE_EXCEEDED) after this long")


async def home_timeline(call: Caller, params: HomeParams, state: State, rng: random.Random) -> None:
    ranking = timeline_pb2.RANKING_ENGAGEMENT if params.ranked else timeline_pb2.RANKING_CHRONOLOGICAL
    await call(TIMELINE, "GetHomeTimeline", timeline_pb2.GetHomeTimelineRequest(
        user_id=rng.choice(state.readers), page_size=params.page_size, ranking=ranking))


async def user_timeline(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    await call(TWEETS, "ListUserTweets", tweets_pb2.ListUserTweetsRequest(author_id=state.authors.pick(rng), page_size=20))


async def post_tweet(call: Caller, params: PostParams, state: State, rng: random.Random) -> None:
    """PostTweet by a weighted author; then, for a share of posts, ``fanout_freshness`` at a random follower."""
    author = state.authors.pick(rng)
    user = state.users[author]
    response = await call(TWEETS, "PostTweet", tweets_pb2.PostTweetRequest(author_id=author, text=tweet_text(rng, params.words)))
    posted = time.perf_counter()
    tweet_id = response.tweet.tweet_id
    user.tweets.append(tweet_id)
    state.recent.append((tweet_id, author))
    if not user.followers or rng.random() >= params.freshness_share:
        return
    reader = rng.choice(sorted(user.followers))
    request = timeline_pb2.GetHomeTimelineRequest(user_id=reader, page_size=50)
    deadline = posted + params.freshness_timeout_s
    while True:
        page = await call(TIMELINE, "GetHomeTimeline", request)
        if any(t.tweet_id == tweet_id for t in page.tweets):
            call.observe(FANOUT_FRESHNESS, time.perf_counter() - posted)
            return
        if time.perf_counter() >= deadline:
            call.observe(FANOUT_FRESHNESS, time.perf_counter() - posted, "DEADLINE_EXCEEDED")
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"tweet {tweet_id} of {author} not in {reader}'s home timeline within {params.freshness_timeout_s:g} s")
        await asyncio.sleep(params.poll_interval_ms / 1000)


async def like(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    """A reader likes a recent tweet."""
    if not state.recent:
        return
    tweet_id, _ = rng.choice(state.recent)
    await call(TWEETS, "LikeTweet", tweets_pb2.LikeTweetRequest(tweet_id=tweet_id, user_id=rng.choice(state.readers)))


async def follow(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    """A user follows someone new, picked like authors (popular users get more follows: preferential attachment)."""
    follower = rng.choice(state.authors.ids)
    mine = state.users[follower]
    followee = state.authors.pick_where(rng, lambda u: u.user_id != follower and u.user_id not in mine.following)
    if followee is None:
        return
    await call(GRAPH, "Follow", graph_pb2.FollowRequest(follower_id=follower, followee_id=followee))
    mine.following.add(followee)
    state.users[followee].followers.add(follower)


async def unfollow(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    """A reader stops following one of the users they follow."""
    follower = rng.choice(state.readers)
    mine = state.users[follower]
    if not mine.following:
        return
    followee = rng.choice(sorted(mine.following))
    await call(GRAPH, "Unfollow", graph_pb2.UnfollowRequest(follower_id=follower, followee_id=followee))
    mine.following.discard(followee)
    state.users[followee].followers.discard(follower)
