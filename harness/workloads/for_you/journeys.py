"""The "For you" workload's journeys: reading the timeline, liking from it (the real-time signal), viewing.

Seed 001 (shared/seeds/001_58dfc580020147d2.txt, line 31, #19) names
candidate generation, ranking and "real-time signals"; seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt, line 39) gives the feed's budget,
"Feed loads < 500ms". The timeline is TimelineService.GetForYouTimeline
(``social-timeline``), which asks ``reco-ranker`` and hydrates the tweets.
Journeys:

- ``for_you``: GetForYouTimeline (20 tweets) for a reader drawn by activity.
  DATA_LOSS when the answer is longer than asked, repeats a tweet or holds
  one of the reader's own tweets (the contract leaves those out).
- ``like_from_for_you``: GetForYouTimeline; the reader likes its top tweet
  (TweetService.LikeTweet on ``social-tweets``, which sends the like to
  ``reco-signals`` in the background); then GetForYouTimeline again every
  ``poll_interval_ms`` until the liked tweet has left it (the engine never
  recommends what the reader interacted with). Journey-defined measure
  ``like_to_for_you``: from LikeTweet's OK to the first answer without the
  liked tweet, the freshness of the real-time signal through the whole
  path (social-tweets' batch, reco-signals, the ranker's read of recent
  signals). Past ``freshness_timeout_s`` the measure ends DEADLINE_EXCEEDED
  (the signal was lost or stuck) and so does the journey.
- ``view``: the reader views one of their live tweets: RecordInteractions
  VIEW on ``reco-signals`` (the app's impression log; views are not a
  social-feed RPC).
"""

from __future__ import annotations

import asyncio
import random
import time

import grpc
from pydantic import Field

from casemesh.reco.v1 import signals_pb2
from casemesh.social.v1 import timeline_pb2, tweets_pb2
from casemesh.services.social.limits import DEFAULT_FOR_YOU_PAGE_SIZE, MAX_FOR_YOU_PAGE_SIZE

from ..base import Caller, Params
from .seeding import SIGNALS, TIMELINE, TWEETS, State

#: Journey-defined measure: LikeTweet OK → the first "For you" answer without the liked tweet (seconds).
LIKE_TO_FOR_YOU = "like_to_for_you"
MEASURES = (LIKE_TO_FOR_YOU,)


class NoParams(Params):
    """A journey without parameters."""


class ForYouParams(Params):
    """One "For you" timeline."""

    page_size: int = Field(default=DEFAULT_FOR_YOU_PAGE_SIZE, ge=1, le=MAX_FOR_YOU_PAGE_SIZE,
                           description="tweets asked for (seed 003: limit = 20)")


class LikeParams(ForYouParams):
    """A like from the "For you" timeline, and how its effect is awaited."""

    poll_interval_ms: float = Field(default=50.0, gt=0, le=10_000,
                                    description="wait between re-reads of the timeline after the like, ms")
    freshness_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                       description="after this the like_to_for_you measure ends DEADLINE_EXCEEDED, s")


def _failure(code: grpc.StatusCode, message: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), message)


async def for_you_timeline(call: Caller, user: str, page_size: int) -> timeline_pb2.GetForYouTimelineResponse:
    """GetForYouTimeline; DATA_LOSS when it is longer than ``page_size``, repeats a tweet or holds the reader's own."""
    response = await call(TIMELINE, "GetForYouTimeline", timeline_pb2.GetForYouTimelineRequest(user_id=user, page_size=page_size))
    ids = [t.tweet.tweet_id for t in response.tweets]
    own = sum(t.tweet.author_id == user for t in response.tweets)
    if len(ids) > page_size or len(set(ids)) != len(ids) or own:
        raise _failure(grpc.StatusCode.DATA_LOSS,
                       f"GetForYouTimeline({user}, page_size {page_size}) answered {len(ids)} tweets, "
                       f"{len(ids) - len(set(ids))} repeated, {own} of the reader's own")
    return response


async def for_you(call: Caller, params: ForYouParams, state: State, rng: random.Random) -> None:
    """The "For you" timeline of a reader drawn by activity."""
    await for_you_timeline(call, state.readers.pick(rng), params.page_size)


async def like_from_for_you(call: Caller, params: LikeParams, state: State, rng: random.Random) -> None:
    """The top tweet of the reader's "For you" is liked; re-read until it has left (like_to_for_you)."""
    user = state.readers.pick(rng)
    first = await for_you_timeline(call, user, params.page_size)
    if not first.tweets:
        return  # nothing recommended (every tweet seen): nothing to like
    tweet_id = first.tweets[0].tweet.tweet_id
    await call(TWEETS, "LikeTweet", tweets_pb2.LikeTweetRequest(tweet_id=tweet_id, user_id=user))
    liked = time.perf_counter()
    state.readers.state[user].liked.add(str(tweet_id))
    deadline = liked + params.freshness_timeout_s
    try:
        while True:
            again = await for_you_timeline(call, user, params.page_size)
            if all(t.tweet.tweet_id != tweet_id for t in again.tweets):
                break
            if time.perf_counter() >= deadline:
                raise _failure(grpc.StatusCode.DEADLINE_EXCEEDED,
                               f"{user} liked tweet {tweet_id}; {params.freshness_timeout_s:g} s later their "
                               f"\"For you\" still recommends it ({again.recent_signals} recent signals)")
            await asyncio.sleep(params.poll_interval_ms / 1000)
    except grpc.aio.AioRpcError as error:
        call.observe(LIKE_TO_FOR_YOU, time.perf_counter() - liked, error.code().name)
        raise
    call.observe(LIKE_TO_FOR_YOU, time.perf_counter() - liked)


async def view(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    """A reader views one of their live tweets (RecordInteractions VIEW)."""
    user = state.readers.pick_where(rng, lambda r: bool(r.live))
    if user is None:
        return
    tweet = state.readers.state[user].live.popleft()
    await call(SIGNALS, "RecordInteractions", signals_pb2.RecordInteractionsRequest(interactions=[
        signals_pb2.Interaction(user_id=user, item_id=tweet, kind=signals_pb2.INTERACTION_KIND_VIEW)]))
