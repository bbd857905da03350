"""Seeding the recommendation workload through the public API: every user's train interactions, then one training.

1. The dataset is generated from the seed parameters (:mod:`.dataset`: a
   latent genre model, deterministic in ``dataset_seed``), so a benchmark
   can regenerate the very same dataset afterwards and score recall@k on its
   held-out parts.
2. Every user's ``train`` part goes to SignalService.RecordInteractions
   (``reco-signals``) in batches of ``batch_size`` (at most the contract's
   10,000, :data:`casemesh.services.reco.limits.MAX_RECORD_BATCH`): a VIEW
   per item and a LIKE for the liked ones, users in order, ``concurrency``
   calls in flight.
3. With ``train`` (the default), CandidateService.TrainModel
   (``reco-candidates``) fits the model once on all of it. Should the call
   outlive the run's request timeout (a slow machine), seeding polls
   GetModelStatus until the model version moves, up to ``train_timeout_s``.

Seeding never sends a ``held_out`` item, and the load never does either:
the journeys only ever view or like ``live`` items (each once, from a
per-user queue), so the held-out parts stay unseen by the system for the
whole run, the ground truth of recall@k.

The state the journeys share: the dataset, and a
:class:`~..population.Population` of viewers weighted by their history
length (heavy viewers open the app more), each with the queue of their live
items not yet used and the items they liked during the run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import grpc
from pydantic import Field, model_validator

from casemesh.reco.v1 import candidates_pb2, signals_pb2
from casemesh.services.reco.limits import MAX_FACTORS, MAX_ITERATIONS, MAX_RECORD_BATCH

from ...errors import HarnessError
from ..base import Caller, Params
from ..population import Population
from .dataset import LIKE, VIEW, Dataset, Spec, generate

SIGNALS = "reco-signals"
CANDIDATES = "reco-candidates"
RANKER = "reco-ranker"

#: The dataset's kinds → the contract's InteractionKind.
KIND = {VIEW: signals_pb2.INTERACTION_KIND_VIEW, LIKE: signals_pb2.INTERACTION_KIND_LIKE}


class SeedParams(Params):
    """The synthetic dataset (:mod:`.dataset` documents the model) and how it is seeded."""

    users: int = Field(default=2000, ge=1, le=1_000_000, description="users")
    items: int = Field(default=1000, ge=1, le=1_000_000, description="items in the catalogue")
    genres: int = Field(default=20, ge=1, le=10_000, description="item genres (balanced); each user prefers a few")
    min_interactions: int = Field(default=20, ge=1, le=10_000, description="fewest items in a user's history (uniform to max)")
    max_interactions: int = Field(default=60, ge=1, le=10_000, description="most items in a user's history")
    max_preferred_genres: int = Field(default=3, ge=1, le=100, description="a user prefers 1 to this many genres")
    preferred_share: float = Field(default=0.85, ge=0.0, le=1.0,
                                   description="probability that an interaction is from the user's preferred genres")
    zipf_exponent: float = Field(default=1.0, ge=0.0, le=3.0,
                                 description="item popularity: rank r weighted 1/r^s over the catalogue")
    like_share: float = Field(default=0.3, ge=0.0, le=1.0, description="share of interacted items also liked")
    held_out_share: float = Field(default=0.2, ge=0.0, lt=1.0,
                                  description="share of each history never sent (the recall@k ground truth)")
    live_share: float = Field(default=0.1, ge=0.0, lt=1.0,
                              description="share of each history viewed and liked during the load; train is the rest")
    dataset_seed: int = Field(default=19, ge=0, description="random seed of the dataset (same seed, same dataset)")
    batch_size: int = Field(default=5000, ge=1, le=MAX_RECORD_BATCH, description="interactions per RecordInteractions call")
    concurrency: int = Field(default=4, ge=1, le=256, description="RecordInteractions calls in flight while seeding")
    train: bool = Field(default=True, description="train the model once after seeding (false: the journeys meet "
                                                  "FAILED_PRECONDITION until something trains it)")
    factors: int = Field(default=0, ge=0, le=MAX_FACTORS, description="TrainModel factors (0: the service's setting)")
    iterations: int = Field(default=0, ge=0, le=MAX_ITERATIONS, description="TrainModel iterations (0: the service's setting)")
    train_timeout_s: float = Field(default=300.0, gt=0, le=3600, description="how long seeding waits for the training")

    @model_validator(mode="after")
    def _spec(self) -> SeedParams:
        self.spec()  # the dataset's own checks (genres <= items, max >= min, shares), as a validation error
        return self

    def spec(self) -> Spec:
        """The dataset these parameters describe."""
        return Spec(users=self.users, items=self.items, genres=self.genres, min_interactions=self.min_interactions,
                    max_interactions=self.max_interactions, max_preferred_genres=self.max_preferred_genres,
                    preferred_share=self.preferred_share, zipf_exponent=self.zipf_exponent, like_share=self.like_share,
                    held_out_share=self.held_out_share, live_share=self.live_share, seed=self.dataset_seed)


@dataclass
class Viewer:
    """One simulated user's own state during the run."""

    user_id: str
    #: Live items not yet viewed or liked, in the dataset's order; each is used once.
    live: deque[str] = field(default_factory=deque)
    #: Items liked during the run.
    liked: set[str] = field(default_factory=set)


@dataclass
class State:
    """What the journeys share."""

    dataset: Dataset
    viewers: Population[Viewer]
    #: TrainModel's answer (None when ``train`` was off).
    model_version: int | None = None


def batches(dataset: Dataset, size: int, item_of: Mapping[str, str] | None = None
            ) -> Iterator[signals_pb2.RecordInteractionsRequest]:
    """The train interactions of every user as RecordInteractions requests of at most ``size``.

    ``item_of`` renames the dataset's items (the "For you" workload: item → its tweet's ID); ``None`` keeps them.
    """
    request = signals_pb2.RecordInteractionsRequest()
    for user, item, kind in dataset.train_interactions():
        request.interactions.add(user_id=user, item_id=item if item_of is None else item_of[item], kind=KIND[kind])
        if len(request.interactions) == size:
            yield request
            request = signals_pb2.RecordInteractionsRequest()
    if request.interactions:
        yield request


async def record_train(call: Caller, dataset: Dataset, params: SeedParams, item_of: Mapping[str, str] | None = None) -> None:
    """Record every user's train part (:func:`batches`) with ``params.concurrency`` RecordInteractions in flight."""
    requests = batches(dataset, params.batch_size, item_of)

    async def recorder() -> None:
        for request in requests:
            await call(SIGNALS, "RecordInteractions", request)

    await asyncio.gather(*(recorder() for _ in range(params.concurrency)))


async def train_model(call: Caller, params: SeedParams) -> int:
    """TrainModel once; on DEADLINE_EXCEEDED, wait for GetModelStatus to show a newer model. Returns its version."""
    before = (await call(CANDIDATES, "GetModelStatus", candidates_pb2.GetModelStatusRequest())).model_version
    try:
        trained = await call(CANDIDATES, "TrainModel", candidates_pb2.TrainModelRequest(
            factors=params.factors, iterations=params.iterations))
        return trained.model_version
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise
    deadline = time.monotonic() + params.train_timeout_s
    while True:
        status = await call(CANDIDATES, "GetModelStatus", candidates_pb2.GetModelStatusRequest())
        if status.model_version > before:
            return status.model_version
        if time.monotonic() > deadline:
            raise HarnessError(f"reco-candidates had not trained a model {params.train_timeout_s:g} s after TrainModel "
                               f"timed out (model version still {status.model_version}; see its log)")
        await asyncio.sleep(0.5)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Record every user's train part, train the model once; the journeys' state."""
    dataset = await asyncio.to_thread(generate, params.spec())
    await record_train(call, dataset, params)
    version = await train_model(call, params) if params.train else None
    histories = dataset.by_id()
    viewers = Population([u.user_id for u in dataset.users], [u.size for u in dataset.users],
                         lambda user: Viewer(user, deque(histories[user].live)))
    return State(dataset=dataset, viewers=viewers, model_version=version)
