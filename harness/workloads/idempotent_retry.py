"""A client's retries of a call that is safe to repeat: the same request again, unchanged (its idempotency key or
client order id included), after exponential backoff with full jitter, bounded in attempts and (optionally) in time.

Every workload whose calls carry a retry key sends them through :func:`send`, relying on its contract to make a
repeated call harmless:

- payments (seed 000 "E-commerce Architecture", shared/seeds/000_69ff90d97cf45f9b.txt line 522: "Payment Service:
  Idempotent APIs, retry with exponential backoff"): gateway.proto's ``idempotency_key``, "a retry with the same key
  and the same request returns the first call's answer and never charges twice";
- banking (seed 001 #14 "Online Banking", shared/seeds/001_58dfc580020147d2.txt line 39): transfers.proto's
  ``idempotency_key``, from which the transfer's ID and its journal entry's ID are derived, "so a retry ... reaches
  the same entry and never moves money twice";
- trading (seed 001 #08 "Stock Trading", shared/seeds/001_58dfc580020147d2.txt line 22): orders.proto's
  ``client_order_id``, "a retry with the same (account_id, client_order_id) and the same order returns the order as
  it is now and no trades: it never trades twice" (a cancel or a read of an order is harmless to repeat anyway).

As Stripe's client libraries do, a call that ended without an answer that says what happened is sent again:

- **retried** (``retried`` of :func:`send`, by default :data:`RETRIED`): UNAVAILABLE (the server could not reach what
  it depends on and did nothing for good, or it was not reached at all), ABORTED (a call with the same key is in
  flight: a double click; a workload whose contract never answers it passes a set without it), DEADLINE_EXCEEDED (the
  outcome is unknown: the retry finds it) and RESOURCE_EXHAUSTED (admission control refused it before any work);
- **final**: an answer, or any other code (INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION, ...: retrying the same
  request cannot change it).

Backoff before attempt ``n + 1`` after ``n`` failures (:func:`backoff_s`): **full jitter**, a uniform draw from 0 to
``min(cap, base x 2^(n-1))`` (M. Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015: of the
jittered schedules it spreads a crowd of retrying clients the most for the least added time). Bounds
(:class:`RetryParams`): at most ``max_attempts`` sends, and no retry is started once ``retry_within_s`` have passed
since the first send (the pause is cut to end there: a customer does not wait on the pay button for ever); a
workload's subclass may set it to None (no time bound: its attempts and cap bound the wait). The defaults are a
merchant's integration's (payments, banking); trading's journeys override them.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from pydantic import Field, model_validator

from .base import Caller, Params

#: Codes after which the same request is sent again with the same key (the default of :func:`send`).
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED,
                     grpc.StatusCode.RESOURCE_EXHAUSTED})
#: Final refusals after which nothing was done (no money moved, nothing held, no order placed): the request itself is
#: refused.
NOTHING_DONE = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND,
                          grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED,
                          grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.OUT_OF_RANGE,
                          grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.UNIMPLEMENTED})


class RetryParams(Params):
    """How a client retries a call that is safe to repeat (module docstring); the defaults are a merchant's
    integration's. Every journey of payments and banking has these; trading's have them with its own defaults."""

    max_attempts: int = Field(default=4, ge=1, le=10,
                              description="sends of one request at most, the first included (Stripe's libraries: 1 + 2 "
                                          "retries by default; 4 rides out a gateway restart)")
    backoff_base_ms: float = Field(default=100.0, gt=0, le=60_000,
                                   description="the first retry's backoff ceiling, ms (full jitter: uniform 0 to it)")
    backoff_cap_ms: float = Field(default=2_000.0, gt=0, le=600_000,
                                  description="the largest backoff ceiling, ms (the ceiling doubles per failure up to it)")
    retry_within_s: float = Field(default=6.0, gt=0, le=600,
                                  description="no retry starts later than this after the first send, s")

    @model_validator(mode="after")
    def _cap(self) -> RetryParams:
        if self.backoff_base_ms > self.backoff_cap_ms:
            raise ValueError(f"backoff_base_ms ({self.backoff_base_ms:g}) must be at most backoff_cap_ms "
                             f"({self.backoff_cap_ms:g})")
        return self


def backoff_ceiling_s(failures: int, base_s: float, cap_s: float) -> float:
    """The backoff ceiling after ``failures`` (>= 1) failures in a row: ``min(cap, base x 2^(failures-1))`` seconds."""
    return min(cap_s, base_s * 2 ** min(max(failures, 1) - 1, 62))


def backoff_s(failures: int, base_s: float, cap_s: float, rng: random.Random) -> float:
    """The pause before the next attempt after ``failures`` failures: full jitter, uniform 0 to the ceiling, s."""
    return rng.uniform(0.0, backoff_ceiling_s(failures, base_s, cap_s))


@dataclass
class Outcome:
    """How one request ended after its retries: the ``response``, or the last ``error``; every attempt's code."""

    response: Any = None
    error: grpc.aio.AioRpcError | None = None
    codes: list[str] = field(default_factory=list)
    #: Seconds from the first send to the end of the last attempt.
    elapsed_s: float = 0.0

    @property
    def answered(self) -> bool:
        """True when the last attempt was answered."""
        return self.error is None

    @property
    def code(self) -> str:
        """``OK`` when answered, otherwise the last attempt's code name."""
        return "OK" if self.error is None else self.error.code().name

    @property
    def known(self) -> bool:
        """True when what happened is known: answered, or refused with a code after which nothing was done."""
        return self.error is None or self.error.code() in NOTHING_DONE

    @property
    def attempts(self) -> int:
        """Sends made."""
        return len(self.codes)


async def send(call: Caller, service: str, method: str, request: Any, params: RetryParams, rng: random.Random, *,
               retried: frozenset[grpc.StatusCode] = RETRIED, clock: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep) -> Outcome:
    """Send ``request`` (unchanged: same idempotency key) until answered, refused for good (a code not in
    ``retried``), or out of attempts or time (module docstring). Never raises an RPC error: the :class:`Outcome`
    holds it."""
    outcome = Outcome()
    started = clock()
    deadline = math.inf if params.retry_within_s is None else started + params.retry_within_s
    base_s, cap_s = params.backoff_base_ms / 1000, params.backoff_cap_ms / 1000
    for attempt in range(1, params.max_attempts + 1):
        try:
            outcome.response = await call(service, method, request)
            outcome.error = None
            outcome.codes.append("OK")
            break
        except grpc.aio.AioRpcError as error:
            outcome.error = error
            outcome.codes.append(error.code().name)
            if error.code() not in retried or attempt == params.max_attempts:
                break
        now = clock()
        if now >= deadline:
            break
        await sleep(min(backoff_s(attempt, base_s, cap_s, rng), deadline - now))
    outcome.elapsed_s = clock() - started
    return outcome
