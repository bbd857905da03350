"""Seeding the social workload: the follow graph and the first tweets, through the public API.

1. :func:`.graph.follow_graph` draws the graph; each user's followees go in
   one SocialGraphService.FollowMany call.
2. Every user posts ``tweets_per_user`` tweets (TweetService.PostTweet).
3. Seeding waits until the fan-out has applied the whole tweet log
   (TimelineService.GetFanoutStatus), so the load starts from settled timelines.

The state the journeys share is a :class:`~..population.Population` of
users: authors are drawn with weight sqrt(1 + followers) (users with more
followers post more, a modelling choice: the seeds give no figure), readers
uniformly among users who follow someone, each with the sets of whom they
follow and who follows them, kept up to date by the follow/unfollow journeys.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import Field

from casemesh.social.v1 import graph_pb2, timeline_pb2, tweets_pb2

from ...errors import HarnessError
from ..base import Caller, Params
from ..population import Population
from .graph import follow_graph
from .text import tweet_text

GRAPH = "social-graph"
TWEETS = "social-tweets"
TIMELINE = "social-timeline"
S = TypeVar("S")


class SeedParams(Params):
    """The users, their follow graph and their first tweets."""

    users: int = Field(default=2000, ge=2, le=200_000, description="users in the follow graph")
    follower_exponent: float = Field(default=2.276, gt=1.5, le=4.0,
                                     description="power-law exponent of follower counts (Kwak et al. 2010: 2.276 on Twitter)")
    follower_scale: float = Field(default=4.0, gt=0, le=1000, description="scale of follower counts (mean about 4.6 x this)")
    graph_seed: int = Field(default=42, ge=0, description="random seed of the graph (same seed, same graph)")
    tweets_per_user: int = Field(default=2, ge=0, le=100, description="tweets each user posts before load")
    concurrency: int = Field(default=64, ge=1, le=1024, description="seeding calls in flight")
    settle_timeout_s: float = Field(default=120.0, gt=0, le=3600, description="how long seeding waits for the fan-out to catch up")


@dataclass
class User:
    """One simulated user's own state."""

    user_id: str
    following: set[str] = field(default_factory=set)
    followers: set[str] = field(default_factory=set)
    #: Their newest tweet IDs (the like journey likes what it could have seen).
    tweets: deque = field(default_factory=lambda: deque(maxlen=20))


@dataclass
class State:
    """What the journeys share: the authors' and the readers' populations over the same users."""

    authors: Population[User]
    users: dict[str, User]
    readers: list[str]
    #: Newest tweets posted by anyone (ID, author), for likes.
    recent: deque = field(default_factory=lambda: deque(maxlen=2000))


def user_id(index: int) -> str:
    return f"user-{index:06d}"


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Follow every edge of the graph, post the first tweets, wait for the fan-out; ``HarnessError`` on timeout."""
    authors = await seed_follow_graph(call, users=params.users, follower_exponent=params.follower_exponent,
                                      follower_scale=params.follower_scale, graph_seed=params.graph_seed,
                                      concurrency=params.concurrency, make_state=User)
    users = authors.state
    ids = authors.ids

    posts = iter([(user, n) for n in range(params.tweets_per_user) for user in ids])
    recent: deque = deque(maxlen=2000)
    last_sequence = 0

    async def poster() -> None:
        nonlocal last_sequence
        for user, _ in posts:
            response = await call(TWEETS, "PostTweet", tweets_pb2.PostTweetRequest(author_id=user, text=tweet_text(rng)))
            users[user].tweets.append(response.tweet.tweet_id)
            recent.append((response.tweet.tweet_id, user))
            last_sequence = max(last_sequence, response.sequence)

    await asyncio.gather(*(poster() for _ in range(params.concurrency)))
    await wait_fanned_out(call, last_sequence, params.settle_timeout_s)
    readers = [u for u in ids if users[u].following]
    return State(authors=authors, users=users, readers=readers, recent=recent)


async def seed_follow_graph(call: Caller, *, users: int, follower_exponent: float, follower_scale: float,
                            graph_seed: int, concurrency: int, make_state: Callable[[str], S]) -> Population[S]:
    """Draw the follow graph (:func:`.graph.follow_graph`), send each user's followees in one
    SocialGraphService.FollowMany (``concurrency`` calls in flight), and return the users (``user-000000`` ...) as a
    population weighted by sqrt(1 + followers), each state from ``make_state(user_id)`` with its ``following`` and
    ``followers`` sets filled. Shared by every workload that seeds the social graph (social feed, photo sharing)."""
    graph = follow_graph(users, follower_exponent=follower_exponent, follower_scale=follower_scale, seed=graph_seed)
    ids = [user_id(i) for i in range(users)]
    population = Population(ids, [math.sqrt(1 + graph.in_degree(i)) for i in range(users)], make_state)
    states = population.state
    for u, v in graph.edges():
        states[ids[u]].following.add(ids[v])
        states[ids[v]].followers.add(ids[u])
    followers = iter(state for state in states.values() if state.following)

    async def follower() -> None:
        for state in followers:
            await call(GRAPH, "FollowMany", graph_pb2.FollowManyRequest(follower_id=state.user_id,
                                                                        followee_ids=sorted(state.following)))

    await asyncio.gather(*(follower() for _ in range(concurrency)))
    return population


async def wait_fanned_out(call: Caller, sequence: int, timeout_s: float) -> None:
    """Poll GetFanoutStatus until the fan-out has applied ``sequence``; ``HarnessError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await call(TIMELINE, "GetFanoutStatus", timeline_pb2.GetFanoutStatusRequest())
        if status.applied_sequence >= sequence:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"the fan-out applied tweet-log sequence {status.applied_sequence} of {sequence} "
                               f"within {timeout_s:g} s of seeding (see social-timeline's log)")
        await asyncio.sleep(0.1)
