"""A circuit breaker per outbound channel: stop calling an upstream that keeps failing, and probe it now and then.

One :class:`CircuitBreaker` guards each channel a process opens to a target
service (``RuntimeContext.channel``), so there is one per (calling process,
target). The client interceptor asks :meth:`CircuitBreaker.admit` before each
call and reports the call's final status (after gRPC's own retries) to
:meth:`CircuitBreaker.record`. The state machine, settings from the
topology's ``calls.circuit_breaker`` (:class:`~.topology.CircuitBreakerPolicy`):

- **closed** (0): calls go through. ``consecutive_failures`` calls in a row
  ending with one of ``failure_codes`` (by default ``UNAVAILABLE``,
  ``DEADLINE_EXCEEDED``, ``RESOURCE_EXHAUSTED``) open it. Any other final
  status (``OK``, ``NOT_FOUND``, ...) proves the upstream answers and resets
  the count; ``CANCELLED`` (the caller gave up) counts for nothing.
- **open** (1): every call fails at once with ``UNAVAILABLE`` "circuit open
  to TARGET", without a network call, for ``open_ms``.
- **half-open** (2): after ``open_ms``, up to ``half_open_probes`` calls at a
  time go through as probes, the others still fail fast. A probe's success
  closes the breaker; a probe's failure opens it for another ``open_ms``.

This is the consecutive-failure breaker of Nygard's *Release It!* (2nd ed.,
ch. 5) and of Envoy's ``consecutive_5xx`` outlier detection. It is written
here rather than taken from a library: ``aiobreaker`` has had no release since
2021, ``pybreaker``'s asynchronous path runs on Tornado, and ``purgatory``
keeps its state behind an awaited storage call on every call and does not
bound the probes of its half-open state; the interceptor needs a synchronous
check and a status-code (not exception) verdict on each call.

Metrics (process registry): ``casemesh_circuit_state{target}`` (gauge: 0
closed, 1 open, 2 half-open; open turns half-open when the first call after
``open_ms`` asks), ``casemesh_circuit_rejected_total{target}`` (calls failed
fast; they never reach ``grpc_client_*``), ``casemesh_circuit_opened_total{target}``
(transitions to open).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

if TYPE_CHECKING:
    from .topology import CircuitBreakerPolicy

log = logging.getLogger("casemesh.circuit_breaker")

CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half-open"}


class CircuitMetrics:
    """The breaker metric families in one registry."""

    def __init__(self, registry: CollectorRegistry = REGISTRY):
        self.state = Gauge("casemesh_circuit_state", "Circuit breaker state per target service: 0 closed, 1 open, 2 half-open.",
                           ["target"], registry=registry)
        self.rejected = Counter("casemesh_circuit_rejected", "Outbound calls failed fast with UNAVAILABLE by an open circuit breaker.",
                                ["target"], registry=registry)
        self.opened = Counter("casemesh_circuit_opened", "Times a circuit breaker opened.", ["target"], registry=registry)


@functools.cache
def process_metrics() -> CircuitMetrics:
    """The process-wide breaker metrics (created on first use)."""
    return CircuitMetrics()


class CircuitBreaker:
    """Closed / open / half-open state of calls to ``target`` (a topology service name).

    ``clock`` returns seconds (monotonic); ``metrics`` defaults to the
    process's. Not thread-safe: use it from one event loop.
    """

    def __init__(self, target: str, policy: CircuitBreakerPolicy, *, clock: Callable[[], float] = time.monotonic,
                 metrics: CircuitMetrics | None = None):
        self.target = target
        self._threshold = policy.consecutive_failures
        self._open_s = policy.open_ms / 1000
        self._max_probes = policy.half_open_probes
        self._failure_codes = frozenset(grpc.StatusCode[name] for name in policy.failure_codes)
        self._clock = clock
        metrics = metrics or process_metrics()
        self._state_gauge = metrics.state.labels(target)
        self._rejected = metrics.rejected.labels(target)
        self._opened = metrics.opened.labels(target)
        self._state = CLOSED
        self._failures = 0  # consecutive, while closed
        self._open_until = 0.0
        self._probes = 0  # probes in flight, while half-open
        self._state_gauge.set(CLOSED)

    @property
    def state(self) -> int:
        """``CLOSED`` (0), ``OPEN`` (1) or ``HALF_OPEN`` (2); an open breaker whose ``open_ms`` is over reads half-open."""
        if self._state == OPEN and self._clock() >= self._open_until:
            self._set(HALF_OPEN)
        return self._state

    def admit(self) -> bool:
        """Whether a call may go out now; ``False`` counts a rejection (the caller fails it fast: :meth:`rejection`)."""
        state = self.state
        if state == CLOSED:
            return True
        if state == HALF_OPEN and self._probes < self._max_probes:
            self._probes += 1
            return True
        self._rejected.inc()
        return False

    def record(self, code: grpc.StatusCode) -> None:
        """The final status of a call that :meth:`admit` let through."""
        if self._state == HALF_OPEN:
            self._probes = max(0, self._probes - 1)
            if code in self._failure_codes:
                self._trip()
            elif code is not grpc.StatusCode.CANCELLED:
                self._failures = 0
                self._set(CLOSED)
                log.warning("circuit to %s closed: a probe call succeeded (%s)", self.target, code.name)
            return
        if code in self._failure_codes:
            self._failures += 1
            if self._state == CLOSED and self._failures >= self._threshold:
                self._trip()
        elif code is not grpc.StatusCode.CANCELLED:
            self._failures = 0

    def rejection(self) -> grpc.aio.AioRpcError:
        """The error a call rejected by the open breaker fails with: ``UNAVAILABLE`` "circuit open to TARGET"."""
        remaining_ms = max(0.0, (self._open_until - self._clock()) * 1000)
        return grpc.aio.AioRpcError(
            grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
            details=f"circuit open to {self.target}: {self._threshold} calls in a row failed; "
                    f"next probe in {remaining_ms:.0f} ms (no call was sent)")

    def _trip(self) -> None:
        self._open_until = self._clock() + self._open_s
        self._failures = 0
        self._probes = 0
        if self._state != OPEN:
            self._opened.inc()
            if self._state == CLOSED:
                log.warning("circuit to %s open: %d calls in a row failed; failing calls fast for %.0f ms",
                            self.target, self._threshold, self._open_s * 1000)
        self._set(OPEN)

    def _set(self, state: int) -> None:
        self._state = state
        self._state_gauge.set(state)
