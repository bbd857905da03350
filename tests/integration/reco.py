"""Shared by the recommendation-engine integration tests: a client of the three reco services and a synthetic dataset.

The client holds a stub of each service (reco-signals, reco-candidates,
reco-ranker); given channels of an in-process mesh (``RunningMesh.channel``,
which carry the test identity) it may also call the internal methods
(ListRecentInteractions, ExportInteractions, GetCandidates).

The dataset is a catalogue of 80 items in 4 genres of 20 (``i00`` to ``i79``;
genre = number // 20) and 120 users (``u000`` to ``u119``; genre = number % 4),
each interacting with 10 items of their own genre and, one user in five, with
one item of another genre; 30% of the interactions are likes, the rest views.
Deterministic for a seed; every item is interacted with at least once, so a
model trained on it knows all 80.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from casemesh.reco.v1 import candidates_pb2, candidates_pb2_grpc, recommendations_pb2, recommendations_pb2_grpc
from casemesh.reco.v1 import signals_pb2, signals_pb2_grpc

SIGNALS, CANDIDATES, RANKER = "reco-signals", "reco-candidates", "reco-ranker"
SERVICES = [SIGNALS, CANDIDATES, RANKER]
VIEW, LIKE = signals_pb2.INTERACTION_KIND_VIEW, signals_pb2.INTERACTION_KIND_LIKE
#: Deadline of each call in these tests: generous, the machine is small and noisy.
TIMEOUT_S = 30.0
#: Channel options of the tests' clients: reconnect within a second of a restarted service coming back.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))

GENRES = 4
ITEMS_PER_GENRE = 20
USERS = 120
ITEMS_PER_USER = 10

T = TypeVar("T")

#: One interaction as the tests hold it: ``(user_id, item_id, kind)``.
Triple = tuple[str, str, int]


def item_id(genre: int, n: int) -> str:
    """The ``n``-th item (0 to 19) of ``genre`` (0 to 3)."""
    return f"i{genre * ITEMS_PER_GENRE + n:02d}"


def genre_of_item(item: str) -> int:
    return int(item[1:]) // ITEMS_PER_GENRE


def genre_items(genre: int) -> list[str]:
    return [item_id(genre, n) for n in range(ITEMS_PER_GENRE)]


CATALOGUE = [item_id(g, n) for g in range(GENRES) for n in range(ITEMS_PER_GENRE)]


@dataclass
class Dataset:
    """The interactions (in recording order), each user's genre and items."""

    interactions: list[Triple]
    genre: dict[str, int]
    items: dict[str, set[str]] = field(default_factory=dict)

    @property
    def users(self) -> list[str]:
        return sorted(self.genre)


def make_dataset(seed: int = 14, users: int = USERS, prefix: str = "u") -> Dataset:
    """``users`` users named ``{prefix}NNN`` of genre NNN % 4 (see the module docstring); deterministic for ``seed``."""
    rng = random.Random(seed)
    interactions: list[Triple] = []
    genre: dict[str, int] = {}
    items: dict[str, set[str]] = {}
    for u in range(users):
        user = f"{prefix}{u:03d}"
        g = u % GENRES
        genre[user] = g
        # A rotating start makes every item of the genre someone's, whatever the seed.
        start = (u // GENRES) * 3 % ITEMS_PER_GENRE
        chosen = {item_id(g, (start + k) % ITEMS_PER_GENRE) for k in range(3)}
        chosen.update(rng.sample(sorted(set(genre_items(g)) - chosen), ITEMS_PER_USER - len(chosen)))
        if rng.random() < 0.2:  # noise: one item of another genre
            other = rng.choice([x for x in range(GENRES) if x != g])
            chosen.add(item_id(other, rng.randrange(ITEMS_PER_GENRE)))
        items[user] = chosen
        interactions.extend((user, i, LIKE if rng.random() < 0.3 else VIEW) for i in sorted(chosen))
    return Dataset(interactions, genre, items)


def interaction(user: str, item: str, kind: int = VIEW) -> signals_pb2.Interaction:
    return signals_pb2.Interaction(user_id=user, item_id=item, kind=kind)


class Client:
    """Stubs of reco-signals, reco-candidates and reco-ranker; ``channel(name)`` opens a channel to one."""

    def __init__(self, channel: Callable[[str], grpc.aio.Channel], timeout_s: float = TIMEOUT_S) -> None:
        self.signals = signals_pb2_grpc.SignalServiceStub(channel(SIGNALS))
        self.candidates = candidates_pb2_grpc.CandidateServiceStub(channel(CANDIDATES))
        self.ranker = recommendations_pb2_grpc.RecommendationServiceStub(channel(RANKER))
        self.timeout_s = timeout_s

    # -- reco-signals ------------------------------------------------------------------------------------------------

    async def record(self, triples: Iterable[Triple]) -> signals_pb2.RecordInteractionsResponse:
        """One RecordInteractions of ``triples``."""
        return await self.signals.RecordInteractions(signals_pb2.RecordInteractionsRequest(
            interactions=[interaction(u, i, k) for u, i, k in triples]), timeout=self.timeout_s)

    async def recent(self, user: str, limit: int = 1000) -> list[signals_pb2.Interaction]:
        """ListRecentInteractions (internal: the test identity), newest first."""
        response = await self.signals.ListRecentInteractions(signals_pb2.ListRecentInteractionsRequest(
            user_id=user, limit=limit), timeout=self.timeout_s)
        return list(response.interactions)

    async def export(self, batch_size: int = 0) -> list[Triple]:
        """Every interaction ExportInteractions streams (internal: the test identity), in order."""
        out: list[Triple] = []
        async for batch in self.signals.ExportInteractions(signals_pb2.ExportInteractionsRequest(batch_size=batch_size),
                                                           timeout=self.timeout_s):
            out.extend((i.user_id, i.item_id, i.kind) for i in batch.interactions)
        return out

    # -- reco-candidates ---------------------------------------------------------------------------------------------

    async def train(self, factors: int = 0, iterations: int = 0) -> candidates_pb2.TrainModelResponse:
        return await self.candidates.TrainModel(candidates_pb2.TrainModelRequest(factors=factors, iterations=iterations),
                                                timeout=self.timeout_s)

    async def status(self) -> candidates_pb2.GetModelStatusResponse:
        return await self.candidates.GetModelStatus(candidates_pb2.GetModelStatusRequest(), timeout=self.timeout_s)

    async def pool(self, user: str, recent: Iterable[str] = (), pool_size: int = 100) -> candidates_pb2.GetCandidatesResponse:
        """GetCandidates (internal: the test identity)."""
        return await self.candidates.GetCandidates(candidates_pb2.GetCandidatesRequest(
            user_id=user, recent_item_ids=list(recent), pool_size=pool_size), timeout=self.timeout_s)

    # -- reco-ranker -------------------------------------------------------------------------------------------------

    async def recommend(self, user: str, limit: int = 0, pool_size: int = 0) -> recommendations_pb2.GetRecommendationsResponse:
        return await self.ranker.GetRecommendations(recommendations_pb2.GetRecommendationsRequest(
            user_id=user, limit=limit, pool_size=pool_size), timeout=self.timeout_s)


#: What a call may answer while a service, or the channel between two, is (re)starting: retry later.
RETRY_LATER = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


async def retrying(call: Callable[[], Awaitable[T]], within_s: float = 60.0, codes: frozenset = RETRY_LATER) -> T:
    """``await call()``, again every 0.1 s while it fails with one of ``codes``, for at most ``within_s``.

    For a multi-process mesh just started: a service's channel to a
    dependency that was not listening yet (reco-candidates' training at
    start) is in reconnect backoff for up to a second, and calls through it
    answer UNAVAILABLE meanwhile.
    """
    deadline = time.monotonic() + within_s
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() not in codes or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def record_all(client: Client, triples: list[Triple], batch: int = 500, concurrency: int = 4) -> int:
    """Record ``triples`` in batches of ``batch``, ``concurrency`` calls at a time; returns the last total held."""
    chunks = [triples[i:i + batch] for i in range(0, len(triples), batch)]
    totals: list[int] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(chunk: list[Triple]) -> None:
        async with gate:
            response = await client.record(chunk)
            assert response.recorded == len(chunk), response
            totals.append(response.total)

    await asyncio.gather(*(one(c) for c in chunks))
    return max(totals, default=0)


async def train(client: Client, factors: int = 0, iterations: int = 0) -> candidates_pb2.TrainModelResponse:
    """TrainModel, checked against GetModelStatus: the status reports the version just made (or a later one)."""
    trained = await client.train(factors, iterations)
    assert trained.model_version >= 1 and trained.interactions > 0, trained
    status = await client.status()
    assert status.model_version >= trained.model_version, (status, trained)
    return trained


def recommendation_problems(what: str, response: recommendations_pb2.GetRecommendationsResponse, limit: int,
                            known: set[str], seen: set[str]) -> list[str]:
    """What is wrong with one GetRecommendations answer: more than ``limit`` items, an item not in ``known``, an item
    in ``seen`` (the user's interactions), a repeat, scores increasing."""
    items = [r.item_id for r in response.recommendations]
    scores = [r.score for r in response.recommendations]
    wrong = []
    if len(items) > limit:
        wrong.append(f"{what}: {len(items)} items for limit {limit}")
    if len(items) != len(set(items)):
        wrong.append(f"{what}: an item twice: {items}")
    if unknown := set(items) - known:
        wrong.append(f"{what}: unknown items {sorted(unknown)}")
    if again := set(items) & seen:
        wrong.append(f"{what}: recommends items the user interacted with: {sorted(again)}")
    if any(b > a for a, b in zip(scores, scores[1:])):
        wrong.append(f"{what}: scores increase: {scores}")
    return wrong
