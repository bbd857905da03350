"""Forwarding a batch to the geofence service: GeofenceService.EvaluatePositions with a deadline and bounded retries.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51): "geofencing, real-time location updates". Every batch a
gateway sends is checked against the fences (durably, by proximity-geofence) before the tracker applies and
acknowledges it (:mod:`.streams`). EvaluatePositions is idempotent (the geofence skips positions not newer than the
entity's last evaluated sequence, in the same transaction as the events), so a forward whose fate is unknown may be
sent again: :class:`GeofenceForwarder` retries UNAVAILABLE (the geofence down, restarting, draining, its circuit
open) with jittered exponential backoff for at most ``geofence_retry_budget_ms`` after the first attempt, each
attempt with the deadline ``geofence_timeout_ms`` (cut to what is left of the whole forward), so a forward takes at
most max(``geofence_timeout_ms``, ``geofence_retry_budget_ms``). The deadline is explicit: the runtime's channels give
a call without one the topology's short default (500 ms), and cut any deadline to the inbound call's (the stream's).

Other failures are not retried: DEADLINE_EXCEEDED (a slow geofence is not helped by more load), RESOURCE_EXHAUSTED
(it sheds load), anything else; they raise :class:`ForwardFailed`, and the stream ends UNAVAILABLE asking the gateway
to resend the batch. INVALID_ARGUMENT is the one answer passed through (as
:class:`~services.runtime.errors.InvalidArgument` naming the geofence's field): both sides check the same rules
(services/proximity/contract.py), so the batch itself is bad and a resend would fail alike.

:class:`Evaluate` is the interface :class:`~.streams.PositionStreams` takes, so it is tested with a fake.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

import grpc

from casemesh.proximity.v1 import geofence_pb2, proximity_pb2

from ...runtime.errors import dependency_error
from . import metrics

#: First backoff after an UNAVAILABLE, in seconds; doubled per retry up to :data:`MAX_BACKOFF_S`, then jittered
#: (a wait between half and all of it).
INITIAL_BACKOFF_S = 0.05
MAX_BACKOFF_S = 0.5
#: A retry starts only if at least this long is left of the budget for it, in seconds.
MIN_ATTEMPT_S = 0.05


class ForwardFailed(Exception):
    """The geofence service did not evaluate a batch (unreachable within the retry budget, too slow, overloaded, or
    any answer but OK and INVALID_ARGUMENT): the batch is not applied, and its stream ends UNAVAILABLE (resend)."""


class Evaluate(Protocol):
    """Evaluates a batch's positions against the geofences, durably, before returning. Raises :class:`ForwardFailed`
    when it could not (``InvalidArgument`` when the positions break the contract)."""

    async def __call__(self, positions: Sequence[proximity_pb2.EntityPosition]) -> object: ...


#: One EvaluatePositions call: (request, timeout in seconds) → response; raises ``grpc.aio.AioRpcError``.
Call = Callable[[geofence_pb2.EvaluatePositionsRequest, float], Awaitable[geofence_pb2.EvaluatePositionsResponse]]


class GeofenceForwarder:
    """:class:`Evaluate` over GeofenceService.EvaluatePositions (``call``), ``timeout_s`` per attempt, retrying
    UNAVAILABLE for at most ``budget_s`` seconds after the first attempt (0: never). ``clock``, ``sleep`` and
    ``jitter`` (a number in [0, 1)) are injectable for tests."""

    def __init__(self, call: Call, timeout_s: float, budget_s: float, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        if timeout_s <= 0 or budget_s < 0:
            raise ValueError(f"timeout_s must be above 0 and budget_s at least 0, not {timeout_s} and {budget_s}")
        self._call = call
        self.timeout_s = timeout_s
        self.budget_s = budget_s
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter

    async def __call__(self, positions: Sequence[proximity_pb2.EntityPosition]
                       ) -> geofence_pb2.EvaluatePositionsResponse:
        """The geofence's answer for ``positions`` (sent as they are). :class:`ForwardFailed` when it could not be
        had within the deadline and retry budget; ``InvalidArgument`` when the geofence refused the positions."""
        request = geofence_pb2.EvaluatePositionsRequest(positions=positions)
        started = self._clock()
        retry_until = started + self.budget_s
        deadline = max(started + self.timeout_s, retry_until)
        retries = 0
        while True:
            try:
                return await self._call(request, min(self.timeout_s, deadline - self._clock()))
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code == grpc.StatusCode.INVALID_ARGUMENT:
                    raise dependency_error(error) from None
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    raise ForwardFailed(f"the geofence service did not answer within "
                                        f"{self.timeout_s * 1000:,.0f} ms") from None
                if code != grpc.StatusCode.UNAVAILABLE:
                    raise ForwardFailed(f"the geofence service answered {code.name}: {error.details()}") from None
                backoff = min(MAX_BACKOFF_S, INITIAL_BACKOFF_S * 2 ** retries) * (0.5 + 0.5 * self._jitter())
                if self._clock() + backoff + MIN_ATTEMPT_S > retry_until:
                    raise ForwardFailed(f"the geofence service is unavailable ({error.details()}; "
                                        f"{retries + 1} attempts in {self._clock() - started:.1f} s)") from None
            await self._sleep(backoff)
            retries += 1
            metrics.GEOFENCE_RETRIES.inc()
