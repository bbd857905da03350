"""One outgoing call of hotel-booking, as both of its clients (:mod:`.inventory`, :mod:`.payments`) make it.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23, "Hotel Reservation": payment auth/capture). :func:`call`
sends one request with an explicit ``timeout=`` (the runtime channel's default deadline is 500 ms), counts it
(``casemesh_hotel_booking_dependency_calls_total{method,code}``) and sorts its failures in two:

- the dependency answered that it did not do it (NOT_FOUND, INVALID_ARGUMENT, FAILED_PRECONDITION, ABORTED) →
  :class:`Refused`, with the code and details, which each client turns into what the saga decides on;
- anything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED, ...) → :class:`DependencyUnavailable`:
  it may or may not have done it. Every call the saga makes is idempotent by construction (the hold id, the payment
  keys), so the booking stays where it was and the retry with the same key, or the recovery, sends it again.

:class:`Unavailable` is the service's "answer UNAVAILABLE: retry with the same key" (the runtime's interceptor maps
it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import grpc

from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from ...runtime.errors import Unavailable as RuntimeUnavailable
from . import metrics

ResponseT = TypeVar("ResponseT")

#: Codes by which a dependency says it did nothing: :class:`Refused`.
REFUSALS = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT,
                      grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED})


class Unavailable(RuntimeUnavailable):
    """The call cannot be finished now (a dependency or the store failed): UNAVAILABLE, retry with the same key; what
    was done is recorded and a retry goes on from there."""


class DependencyUnavailable(Unavailable):
    """A dependency did not answer (UNAVAILABLE, DEADLINE_EXCEEDED, ...): it may or may not have done it."""


class Refused(Exception):
    """The dependency answered ``code`` (a ``grpc.StatusCode`` of :data:`REFUSALS`) with ``details``."""

    def __init__(self, method: str, code: grpc.StatusCode, details: str) -> None:
        self.method = method
        self.code = code
        self.details = details
        super().__init__(f"{method}: {code.name}: {details}")

    def domain_error(self) -> Exception:
        """The runtime's domain error of a refusal a client has no meaning of its own for: NOT_FOUND → ``NotFound``,
        FAILED_PRECONDITION → ``FailedPrecondition``, INVALID_ARGUMENT → ``InvalidArgument`` (the dependency's field
        path), ABORTED (a call with the same key in flight there) → :class:`DependencyUnavailable`."""
        if self.code == grpc.StatusCode.NOT_FOUND:
            return NotFound(self.details)
        if self.code == grpc.StatusCode.FAILED_PRECONDITION:
            return FailedPrecondition(self.details)
        if self.code == grpc.StatusCode.INVALID_ARGUMENT:
            field, sep, reason = self.details.partition(": ")
            return InvalidArgument(field, reason) if sep else InvalidArgument("request", self.details)
        return DependencyUnavailable(f"{self}; retry with the same key")


async def call(method: str, rpc: Callable[..., Awaitable[ResponseT]], request, timeout_s: float) -> ResponseT:
    """``rpc(request, timeout=timeout_s)`` (``method`` its name, for the metric and the errors): the response, or
    :class:`Refused`, or :class:`DependencyUnavailable`."""
    code = "OK"
    try:
        return await rpc(request, timeout=timeout_s)
    except grpc.aio.AioRpcError as error:
        code = error.code().name
        details = error.details() or ""
        if error.code() in REFUSALS:
            raise Refused(method, error.code(), details) from None
        raise DependencyUnavailable(f"{method} was not answered ({code}: {details}); retry with the same key") \
            from None
    finally:
        metrics.DEPENDENCY_CALLS.labels(method, code).inc()
