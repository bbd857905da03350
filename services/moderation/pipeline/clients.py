"""moderation-pipeline's calls to ``moderation-classifier`` and ``moderation-review``, as the pipeline's stages see
them, and the backoff between two tries.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "AI classifiers (BERT/ResNet), confidence routing, human
review"). Every call is sent with an explicit ``timeout=`` (settings ``classify_timeout_ms``, ``review_timeout_ms``;
a PullVerdicts gets its long poll on top). Any failure (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, and an
INVALID_ARGUMENT, which would be a bug here) raises :class:`DependencyUnavailable`: the stage that called keeps the
item where it is (PENDING, or bound for review) and tries again after a :class:`Backoff`. Nothing is ever dropped
because a dependency failed.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import grpc
from casemesh.moderation.v1 import classifier_pb2, classifier_pb2_grpc, review_pb2, review_pb2_grpc

from ...runtime.errors import Unavailable

ResponseT = TypeVar("ResponseT")


class DependencyUnavailable(Unavailable):
    """A dependency did not answer, or answered an error or something unexpected: try again later."""

    def __init__(self, message: str, code: grpc.StatusCode | None = None) -> None:
        super().__init__(message)
        self.code = code


async def call(method: str, rpc: Callable[..., Awaitable[ResponseT]], request, timeout_s: float) -> ResponseT:
    """``rpc(request, timeout=timeout_s)``: the response, or :class:`DependencyUnavailable` naming ``method``."""
    try:
        return await rpc(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as error:
        raise DependencyUnavailable(f"{method}: {error.code().name}: {error.details()}", error.code()) from None


@dataclass(frozen=True, slots=True)
class Verdict:
    """A reviewer's verdict from the review service's outbox (proto ``ReviewVerdict``; ``kind`` and ``verdict`` its
    enum numbers)."""

    seq: int
    item_id: str
    kind: int
    verdict: int
    reviewer_id: str
    note: str


class Classifier(Protocol):
    async def classify(self, text: str, timeout_s: float) -> tuple[float, str]:
        """(violation probability 0 to 1, model version) of ``text``; :class:`DependencyUnavailable`."""
        ...


class Review(Protocol):
    async def enqueue(self, item_id: str, text: str, probability: float, kind: int, appeal_reason: str,
                      timeout_s: float) -> str:
        """Queue a review task (idempotent per item and kind); its task ID. :class:`DependencyUnavailable`."""
        ...

    async def pull(self, after_seq: int, max_verdicts: int, wait_ms: int, timeout_s: float) -> list[Verdict]:
        """Acknowledge the verdicts up to ``after_seq`` and return those after it (a long poll of ``wait_ms``).
        :class:`DependencyUnavailable`."""
        ...


class ClassifierClient:
    """:class:`Classifier` over ``ClassifierServiceStub`` (Classify)."""

    def __init__(self, stub: classifier_pb2_grpc.ClassifierServiceStub) -> None:
        self._stub = stub

    async def classify(self, text: str, timeout_s: float) -> tuple[float, str]:
        response = await call("Classify", self._stub.Classify, classifier_pb2.ClassifyRequest(text=text), timeout_s)
        probability = response.violation_probability
        if not (math.isfinite(probability) and 0.0 <= probability <= 1.0):
            raise DependencyUnavailable(f"Classify answered the probability {probability}, not 0 to 1")
        return probability, response.model_version


class ReviewClient:
    """:class:`Review` over ``ReviewServiceStub`` (Enqueue, PullVerdicts: internal methods, called as
    ``moderation-pipeline`` through the runtime's channel)."""

    def __init__(self, stub: review_pb2_grpc.ReviewServiceStub) -> None:
        self._stub = stub

    async def enqueue(self, item_id: str, text: str, probability: float, kind: int, appeal_reason: str,
                      timeout_s: float) -> str:
        response = await call("Enqueue", self._stub.Enqueue, review_pb2.EnqueueRequest(
            item_id=item_id, text=text, violation_probability=probability, kind=kind, appeal_reason=appeal_reason),
            timeout_s)
        return response.task_id

    async def pull(self, after_seq: int, max_verdicts: int, wait_ms: int, timeout_s: float) -> list[Verdict]:
        response = await call("PullVerdicts", self._stub.PullVerdicts, review_pb2.PullVerdictsRequest(
            after_seq=after_seq, max_verdicts=max_verdicts, wait_ms=wait_ms), timeout_s)
        return [Verdict(v.seq, v.item_id, v.kind, v.verdict, v.reviewer_id, v.note) for v in response.verdicts]


class Backoff:
    """Jittered exponential backoff: waits ``first_ms``, doubling up to ``max_ms``, each wait drawn from half to all
    of it (so that workers that failed together do not retry together); :meth:`reset` after a success."""

    def __init__(self, first_ms: int, max_ms: int, rng: random.Random | None = None) -> None:
        self._first_s = first_ms / 1_000
        self._max_s = max_ms / 1_000
        self._rng = rng or random.Random()
        self.failures = 0

    def delay_s(self) -> float:
        """The next wait, seconds (counts a failure)."""
        ceiling = min(self._max_s, self._first_s * 2 ** min(self.failures, 30))
        self.failures += 1
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def wait(self) -> None:
        await asyncio.sleep(self.delay_s())

    def reset(self) -> None:
        self.failures = 0
