"""Seeding the "For you" workload through the public API: a tweet per item, the interaction log, one training.

The social feed's "For you" timeline is the recommendation engine's answer
served as a feed (docs/case-studies/social-feed.md, "For you"). Its items are
tweets, so the recommendation workload's synthetic latent-genre dataset
(:mod:`..reco.dataset`) is seeded as tweets:

1. The dataset is generated from the seed parameters (the recommendation
   profile's: 2,000 users, 1,000 items in 20 genres, deterministic in
   ``dataset_seed``).
2. Every item becomes one tweet (TweetService.PostTweet, ``social-tweets``)
   by an author drawn from the dataset's users, ``concurrency`` posts in
   flight. The item's ID in everything below is the tweet ID in decimal,
   the form social-timeline reads back (casemesh.social.v1 GetForYouTimeline).
3. Every user's ``train`` part, a VIEW per item and a LIKE for the liked ones,
   goes to SignalService.RecordInteractions (``reco-signals``) in batches:
   the interaction log as it stood before the run (its likes are not replayed
   through LikeTweet; likes during the run are, and reach reco-signals
   through social-tweets' ``record_signals``).
4. With ``train`` (the default), CandidateService.TrainModel (``reco-candidates``)
   fits the model once on all of it (:func:`..reco.seeding.train_model`).

The state the journeys share: a :class:`~..population.Population` of readers
weighted by their history length, each with the queue of their ``live``
tweets (viewed during the run) and the tweets they liked during the run.
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from dataclasses import dataclass, field

from pydantic import Field

from casemesh.social.v1 import tweets_pb2

from ..base import Caller
from ..population import Population
from ..reco.dataset import Dataset, generate
from ..reco.seeding import SIGNALS, record_train, train_model
from ..reco.seeding import SeedParams as RecoSeedParams
from ..social.seeding import TIMELINE, TWEETS
from ..social.text import tweet_text


class SeedParams(RecoSeedParams):
    """The recommendation workload's dataset and training (:class:`..reco.seeding.SeedParams`), plus the tweets."""

    post_concurrency: int = Field(default=8, ge=1, le=256, description="PostTweet calls in flight while seeding")


@dataclass
class Reader:
    """One simulated user's own state during the run."""

    user_id: str
    #: Live tweets (decimal IDs) not yet viewed, in the dataset's order; each is viewed once.
    live: deque[str] = field(default_factory=deque)
    #: Tweets (decimal IDs) liked during the run.
    liked: set[str] = field(default_factory=set)


@dataclass
class State:
    """What the journeys share."""

    dataset: Dataset
    #: Dataset item ID → its tweet's ID in decimal.
    tweet_of: dict[str, str]
    readers: Population[Reader]
    #: TrainModel's answer (None when ``train`` was off).
    model_version: int | None = None


async def post_items(call: Caller, dataset: Dataset, params: SeedParams) -> dict[str, str]:
    """One tweet per item, by an author drawn from the users (deterministic in ``dataset_seed``); item → tweet ID."""
    rng = random.Random(params.dataset_seed)
    plan = deque((item, rng.choice(dataset.users).user_id, tweet_text(rng)) for item in dataset.item_ids)
    tweet_of: dict[str, str] = {}

    async def poster() -> None:
        while plan:
            item, author, text = plan.popleft()
            posted = await call(TWEETS, "PostTweet", tweets_pb2.PostTweetRequest(author_id=author, text=text))
            tweet_of[item] = str(posted.tweet.tweet_id)

    await asyncio.gather(*(poster() for _ in range(params.post_concurrency)))
    return tweet_of


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Post the items as tweets, record every user's train part, train once; the journeys' state."""
    dataset = await asyncio.to_thread(generate, params.spec())
    tweet_of = await post_items(call, dataset, params)
    await record_train(call, dataset, params, tweet_of)
    version = await train_model(call, params) if params.train else None
    histories = dataset.by_id()
    readers = Population([u.user_id for u in dataset.users], [u.size for u in dataset.users],
                         lambda user: Reader(user, deque(tweet_of[i] for i in histories[user].live)))
    return State(dataset=dataset, tweet_of=tweet_of, readers=readers, model_version=version)
