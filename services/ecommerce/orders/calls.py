"""How ecommerce-orders calls another service: an explicit deadline per attempt, bounded retries of UNAVAILABLE, and the
two kinds of failure the saga decides on.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions"). The cart, inventory and payment gateway clients (:mod:`.cart`,
:mod:`.inventory`, :mod:`.gateway`) send every call through :meth:`CallPolicy.call`:

- each attempt passes ``timeout=`` (the runtime channel's default deadline is 500 ms; the runtime's client interceptor
  also shortens it to what is left of the inbound call's deadline) and is timed and counted per method and status
  code (``casemesh_ecommerce_orders_dependency_call_*``);
- UNAVAILABLE is tried again, ``attempts`` in all, after ``backoff_s`` doubled each time (with jitter: between half and
  all of it): a dependency restarting comes back within a few hundred milliseconds. The runtime channel's own gRPC
  retry policy and retry budget sit below this (docs/services.md), so this loop is short on purpose;
- FAILED_PRECONDITION, NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS and OUT_OF_RANGE → :class:`Refused`: the service
  answered that it did not do it (its contract ``reason``, as ``services/ecommerce/contract.py``
  ``failed_precondition_reason`` reads it);
- anything else (UNAVAILABLE after the last attempt, DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED, CANCELLED,
  PERMISSION_DENIED of a misconfigured mesh, ...) → :class:`DependencyUnavailable`: it may or may not have been done;
  every call of the saga is idempotent, so the order stays PENDING and the step is run again later.

:class:`Unavailable` is the service's "answer UNAVAILABLE: retry with the same key" (the runtime maps it).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import grpc

from ...runtime.errors import Unavailable as RuntimeUnavailable
from ..contract import failed_precondition_reason
from . import metrics

ResponseT = TypeVar("ResponseT")

#: Codes of an answer that says the call was not done (and would not be, sent again unchanged).
REFUSALS = frozenset({grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND,
                      grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS,
                      grpc.StatusCode.OUT_OF_RANGE})


class Unavailable(RuntimeUnavailable):
    """The call cannot be finished now (a dependency or the store failed): UNAVAILABLE, the order stays PENDING; retry
    with the same key."""


class DependencyUnavailable(Unavailable):
    """A dependency did not answer (UNAVAILABLE, DEADLINE_EXCEEDED, ...): it may or may not have done the call."""


class Refused(Exception):
    """A dependency answered that it did not do the call: ``code`` (a ``grpc.StatusCode``), ``details``, and ``reason``
    (the contract's FAILED_PRECONDITION reason, ``""`` for none)."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method = method
        self.code = code
        self.details = details
        self.reason = failed_precondition_reason(details) if code == grpc.StatusCode.FAILED_PRECONDITION else ""
        super().__init__(f"{method} refused: {code.name}: {details}")


@dataclass(frozen=True, slots=True)
class CallPolicy:
    """``timeout_s`` per attempt, ``attempts`` in all for UNAVAILABLE, the first wait ``backoff_s`` (seconds)."""

    timeout_s: float
    attempts: int
    backoff_s: float

    async def call(self, method: str, rpc: Callable[..., Awaitable[ResponseT]], request) -> ResponseT:
        """``rpc(request, timeout=timeout_s)`` as the module docstring says; :class:`Refused` or
        :class:`DependencyUnavailable`."""
        attempt = 0
        while True:
            started = time.perf_counter()
            code = "OK"
            try:
                return await rpc(request, timeout=self.timeout_s)
            except grpc.aio.AioRpcError as error:
                code = error.code().name
                if error.code() in REFUSALS:
                    raise Refused(method, error.code(), error.details() or "") from None
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt + 1 >= self.attempts:
                    raise DependencyUnavailable(f"{method} did not answer ({code}: {error.details()}); retry with "
                                                "the same key") from None
            finally:
                metrics.CALL_SECONDS.labels(method).observe(time.perf_counter() - started)
                metrics.CALLS.labels(method, code).inc()
            wait_s = self.backoff_s * 2 ** attempt
            await asyncio.sleep(random.uniform(wait_s / 2, wait_s))
            attempt += 1
