"""The recommendation workload's journeys: the "For you" row, liking an item (the real-time signal), viewing one.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt, lines 522-559, Netflix's
``getRecommendations(userId, limit = 20)``) is the read every home page
makes; seed 001 (shared/seeds/001_58dfc580020147d2.txt, line 31, #19) names
"real-time signals": what a user just did shifts their next
recommendations, before the model is trained again. Journeys:

- ``for_you``: GetRecommendations for a user drawn by activity, ``limit`` 20.
- ``like_recommended``: GetRecommendations; the user likes one of their
  ``live`` items (one the list recommended when there is one: a hit, else
  the next in their queue) with RecordInteractions LIKE; GetRecommendations
  again. The second answer must show the like was used: its
  ``recent_signals`` is not 0 and the liked item, now an interaction of the
  user, is not recommended (the ranker removes what the user interacted with,
  seed 003's "Remove already watched"). Otherwise the journey fails with
  DATA_LOSS (the signal was lost), as the photo journeys do for bad bytes.
  Journey-defined measure ``signal_to_recommendation``: from the
  RecordInteractions OK to the answer of the GetRecommendations that used
  it (one read: the signal is read at request time, there is nothing to poll).
- ``view``: RecordInteractions VIEW of one of the user's live items.

Only ``live`` items are ever sent: the held-out parts of the dataset stay
unseen by the system (:mod:`.seeding`).
"""

from __future__ import annotations

import random
import time

import grpc
from pydantic import Field

from casemesh.reco.v1 import recommendations_pb2, signals_pb2
from casemesh.services.reco.limits import DEFAULT_LIMIT, MAX_LIMIT, MAX_POOL_SIZE

from ..base import Caller, Params
from .seeding import RANKER, SIGNALS, State

#: Journey-defined measure: RecordInteractions (LIKE) OK → the answer of the GetRecommendations that used it (seconds).
SIGNAL_TO_RECOMMENDATION = "signal_to_recommendation"
MEASURES = (SIGNAL_TO_RECOMMENDATION,)


class NoParams(Params):
    """A journey without parameters."""


class ForYouParams(Params):
    """One "For you" row."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description="recommendations asked for (seed 003: limit = 20)")
    pool_size: int = Field(default=0, ge=0, le=MAX_POOL_SIZE, description="candidates to rank (0: reco-ranker's pool_size setting)")


def _data_loss(message: str) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.DATA_LOSS, grpc.aio.Metadata(), grpc.aio.Metadata(), message)


async def recommend(call: Caller, user: str, params: ForYouParams) -> recommendations_pb2.GetRecommendationsResponse:
    """GetRecommendations for ``user``; DATA_LOSS when the answer has more than ``limit`` items or one twice."""
    response = await call(RANKER, "GetRecommendations", recommendations_pb2.GetRecommendationsRequest(
        user_id=user, limit=params.limit, pool_size=params.pool_size))
    items = [r.item_id for r in response.recommendations]
    if len(items) > params.limit or len(set(items)) != len(items):
        raise _data_loss(f"GetRecommendations({user}, limit {params.limit}) answered {len(items)} items, "
                         f"{len(items) - len(set(items))} repeated")
    return response


async def for_you(call: Caller, params: ForYouParams, state: State, rng: random.Random) -> None:
    """The "For you" row of a user drawn by activity."""
    await recommend(call, state.viewers.pick(rng), params)


async def like_recommended(call: Caller, params: ForYouParams, state: State, rng: random.Random) -> None:
    """Recommendations, a like of a live item (a recommended one when possible), recommendations again (with the like)."""
    user = state.viewers.pick_where(rng, lambda v: bool(v.live))
    if user is None:
        return  # every drawn user has used their live items: nothing left to like without touching held-out ones
    viewer = state.viewers.state[user]
    item = viewer.live.popleft()  # reserved now: a concurrent journey of the same user cannot take it
    first = await recommend(call, user, params)
    hit = next((r.item_id for r in first.recommendations if r.item_id in viewer.live), None)
    if hit is not None:
        viewer.live.remove(hit)
        viewer.live.appendleft(item)
        item = hit
    await call(SIGNALS, "RecordInteractions", signals_pb2.RecordInteractionsRequest(interactions=[
        signals_pb2.Interaction(user_id=user, item_id=item, kind=signals_pb2.INTERACTION_KIND_LIKE)]))
    recorded = time.perf_counter()
    viewer.liked.add(item)
    try:
        second = await recommend(call, user, params)
        if second.recent_signals < 1:
            raise _data_loss(f"{user} liked {item}, then GetRecommendations used no recent signals: the like was not used")
        if any(r.item_id == item for r in second.recommendations):
            raise _data_loss(f"{user} liked {item}, then GetRecommendations still recommended it: the like was not used "
                             f"({second.recent_signals} recent signals)")
    except grpc.aio.AioRpcError as error:
        call.observe(SIGNAL_TO_RECOMMENDATION, time.perf_counter() - recorded, error.code().name)
        raise
    call.observe(SIGNAL_TO_RECOMMENDATION, time.perf_counter() - recorded)


async def view(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    """A user views one of their live items (RecordInteractions VIEW)."""
    user = state.viewers.pick_where(rng, lambda v: bool(v.live))
    if user is None:
        return
    item = state.viewers.state[user].live.popleft()
    await call(SIGNALS, "RecordInteractions", signals_pb2.RecordInteractionsRequest(interactions=[
        signals_pb2.Interaction(user_id=user, item_id=item, kind=signals_pb2.INTERACTION_KIND_VIEW)]))
