"""Admission control: how many calls a service takes on at once, and which it sheds.

Every casemesh server applies it in its interceptor (``interceptors/server.py``),
per gRPC service (``casemesh.urlshortener.v1.UrlShortenerService``), with limits
from the topology's ``server:`` section (:class:`~.topology.ServerPolicy`):

- a call holds one of the service's ``max_concurrent_rpcs`` slots from the
  moment the server takes it from gRPC until its status is sent (whatever
  ends it: success, error, cancellation);
- with every slot taken, up to ``max_queued_rpcs`` calls wait for one, first
  come first served, for at most ``max_queue_wait_ms``;
- a full queue (``queue_full``, at once), a wait that ran out
  (``queue_timeout``), or a per-method bound from ``limits``
  (``method_limit``, at once) rejects the call without decoding its body or
  doing any of its work;
- optionally (``max_start_wait_ms``, off by default), a call that waited
  longer than that between the server taking it and its handler starting
  (for a slot, or for a saturated event loop) is rejected (``start_timeout``);
- a call whose remaining deadline is shorter than its method's recent median
  (p50) service time is dropped before its handler runs (``deadline``): it
  would most likely miss its deadline anyway, after doing the work. (The
  interceptor applies this to methods with one response only: a stream lasts
  as long as its caller asked.)
- ``abandoned_work`` says what becomes of the work of a call whose caller gave
  up (cancelled it, or its deadline passed): ``drop`` (the default, gRPC's
  cancellation reaching the work) takes a queued call out of the queue and
  cancels a running handler; ``finish`` models a server whose work queue or
  backend cannot be told that the caller left: a queued call keeps its place
  and, on reaching a slot, holds it for the method's recent median service
  time (the work it would have done), and a running handler of a method with
  one response runs to its end, its answer discarded (the interceptor shields
  it). Work done for callers that already left is the sustaining effect of
  many metastable failures (Bronson et al., HotOS 2021; Huang et al., OSDI
  2022): the retry-storm profiles use ``finish``.

A rejection is ``RESOURCE_EXHAUSTED`` with the ``grpc-retry-pushback-ms``
trailer (gRFC A6: a client's retry policy waits that long before retrying),
counted in ``grpc_server_handled_total{grpc_code="ResourceExhausted"}`` and in
``casemesh_server_shed_total{grpc_service, grpc_method, reason}``.

The health and reflection services are never shed, so probes and ``grpcurl``
keep working under overload. The limits are fixed, like Envoy's cluster
circuit breakers (``max_requests`` with ``max_pending_requests``) and the
``FixedLimit`` of Netflix's concurrency-limits; they are not adapted to
observed latency.
"""

from __future__ import annotations

import asyncio
import functools
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, Counter

if TYPE_CHECKING:
    from .topology import ServerPolicy

#: Reasons (``reason`` label of ``casemesh_server_shed_total``).
QUEUE_FULL = "queue_full"
QUEUE_TIMEOUT = "queue_timeout"
START_TIMEOUT = "start_timeout"
METHOD_LIMIT = "method_limit"
DEADLINE = "deadline"
REASONS = (QUEUE_FULL, QUEUE_TIMEOUT, START_TIMEOUT, METHOD_LIMIT, DEADLINE)

#: What becomes of the work of a call whose caller gave up (``AdmissionLimits.abandoned_work``).
ABANDONED_WORK = ("drop", "finish")

#: Trailer naming how long (ms) a client should wait before retrying (gRFC A6).
PUSHBACK_TRAILER = "grpc-retry-pushback-ms"

#: gRPC services that are never shed: health checks and reflection keep answering under overload.
EXEMPT_SERVICES = frozenset({
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
})


class RecentMedian:
    """Median of the last ``size`` observations (seconds), recomputed every ``every`` observations.

    ``value`` is 0.0 until ``every`` observations have been made, so a method
    that has not been measured yet is never judged too slow for a deadline.
    Observing costs an index store; the sort runs once per ``every`` calls.
    """

    __slots__ = ("_samples", "_next", "_count", "_every", "value")

    def __init__(self, size: int = 64, every: int = 16):
        if size < 1 or every < 1:
            raise ValueError(f"size and every must be at least 1 (got size={size}, every={every})")
        self._samples = [0.0] * size
        self._next = 0
        self._count = 0
        self._every = every
        self.value = 0.0

    def observe(self, seconds: float) -> None:
        """Record one service time in seconds."""
        samples = self._samples
        samples[self._next] = seconds
        self._next = (self._next + 1) % len(samples)
        self._count += 1
        if self._count % self._every == 0:
            filled = sorted(samples[: min(self._count, len(samples))])
            self.value = filled[len(filled) // 2]


class Limiter:
    """At most ``limit`` holders; up to ``max_queue`` more wait for a slot (FIFO), each at most ``max_wait_s``.

    ``try_acquire`` takes a slot if one is free and nobody waits; ``acquire``
    also queues; ``release`` hands the slot straight to the oldest waiter.
    """

    __slots__ = ("limit", "max_queue", "max_wait_s", "in_flight", "_waiters")

    def __init__(self, limit: int, max_queue: int = 0, max_wait_s: float = 0.1):
        if limit < 1 or max_queue < 0 or max_wait_s <= 0:
            raise ValueError(f"need limit >= 1, max_queue >= 0, max_wait_s > 0 (got {limit}, {max_queue}, {max_wait_s})")
        self.limit = limit
        self.max_queue = max_queue
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self._waiters: deque[asyncio.Future[bool]] = deque()

    @property
    def queued(self) -> int:
        """Calls waiting for a slot."""
        return len(self._waiters)

    def try_acquire(self) -> bool:
        """Take a slot now if one is free and no call waits; ``True`` when taken."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, abandoned: Callable[[bool], None] | None = None) -> str | None:
        """Take a slot, waiting in the queue if need be: ``None`` when taken, else the reason it was not.

        The reason is :data:`QUEUE_FULL` (``max_queue`` calls wait already) or
        :data:`QUEUE_TIMEOUT` (no slot within ``max_wait_s``). Cancelling the
        caller while it waits leaves no slot taken, unless ``abandoned`` is
        given: then the waiter keeps its place, and ``abandoned(True)`` is
        called when it is handed the slot (which it then owns and must
        :meth:`release`), or ``abandoned(False)`` when its wait runs out.
        """
        if self.try_acquire():
            return None
        if len(self._waiters) >= self.max_queue:
            return QUEUE_FULL
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(self.max_wait_s, self._expire, waiter)
        try:
            # Shielded when abandoned waiters stay: cancelling the caller must not cancel its place in the queue.
            granted = await (waiter if abandoned is None else asyncio.shield(waiter))
        except asyncio.CancelledError:
            if abandoned is not None:
                # The queue cannot be told the caller left: the waiter stays, and owns the slot it is handed.
                if waiter.done():
                    timer.cancel()
                    abandoned(waiter.result())
                else:
                    waiter.add_done_callback(lambda done: (timer.cancel(), abandoned(done.result())))
                raise
            timer.cancel()
            if waiter.done() and not waiter.cancelled() and waiter.result():
                self.release()  # handed a slot just as the caller was cancelled: give it back
            else:
                self._forget(waiter)
            raise
        timer.cancel()
        return None if granted else QUEUE_TIMEOUT

    def release(self, *_: object) -> None:
        """Give a slot back: to the oldest waiter if any, else free it. Extra arguments are ignored (done callbacks)."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return
        self.in_flight -= 1

    def _expire(self, waiter: asyncio.Future[bool]) -> None:
        if not waiter.done():
            waiter.set_result(False)
            self._forget(waiter)

    def _forget(self, waiter: asyncio.Future[bool]) -> None:
        try:
            self._waiters.remove(waiter)
        except ValueError:
            pass


@dataclass(frozen=True)
class AdmissionLimits:
    """The admission settings of one server process (from the topology's ``server:`` section).

    ``max_concurrent_rpcs``: slots per gRPC service; ``max_queued_rpcs``:
    calls that may wait for one; ``max_queue_wait_ms``: the longest wait;
    ``retry_pushback_ms``: the ``grpc-retry-pushback-ms`` trailer of a
    rejection; ``limits``: ``"pkg.Service"`` → that service's own slot count,
    ``"pkg.Service/Method"`` → a bound on that method's calls in flight (no
    queue; beyond it ``method_limit``); ``deadline_drop``: drop calls that
    cannot finish within their deadline; ``max_start_wait_ms``: reject calls
    that waited longer than this to start (``None``: off);
    ``abandoned_work``: ``"drop"`` or ``"finish"`` the work of calls whose
    caller gave up (module docstring).
    """

    max_concurrent_rpcs: int = 256
    max_queued_rpcs: int = 64
    max_queue_wait_ms: float = 100.0
    retry_pushback_ms: int = 100
    limits: Mapping[str, int] = field(default_factory=dict)
    deadline_drop: bool = True
    max_start_wait_ms: float | None = None
    abandoned_work: str = "drop"

    def __post_init__(self) -> None:
        if self.abandoned_work not in ABANDONED_WORK:
            raise ValueError(f"abandoned_work must be one of {', '.join(ABANDONED_WORK)} (got {self.abandoned_work!r})")


def _shed_counter(registry: CollectorRegistry) -> Counter:
    return Counter("casemesh_server_shed_total",
                   "Calls the server rejected with RESOURCE_EXHAUSTED before doing their work, by reason "
                   "(queue_full, queue_timeout, start_timeout, method_limit, deadline).",
                   ("grpc_service", "grpc_method", "reason"), registry=registry)


@functools.cache
def shed_counter() -> Counter:
    """The process-wide ``casemesh_server_shed_total`` counter, created once."""
    return _shed_counter(REGISTRY)


class Gate:
    """Admission of one method: its service's limiter, its own bound if any, its recent median service time."""

    __slots__ = ("service", "method", "service_limiter", "method_limiter", "median", "deadline_drop",
                 "finish_abandoned", "max_start_wait_s", "pushback", "_shed", "_shed_children")

    def __init__(self, service: str, method: str, service_limiter: Limiter, method_limiter: Limiter | None,
                 limits: AdmissionLimits, shed: Counter):
        self.service = service
        self.method = method
        self.service_limiter = service_limiter
        self.method_limiter = method_limiter
        self.median = RecentMedian()
        self.deadline_drop = limits.deadline_drop
        #: ``abandoned_work: finish``: the work of a call whose caller gave up goes on (module docstring).
        self.finish_abandoned = limits.abandoned_work == "finish"
        #: Seconds a call may wait to start (``math.inf``: no bound).
        self.max_start_wait_s = math.inf if limits.max_start_wait_ms is None else limits.max_start_wait_ms / 1000
        self.pushback = ((PUSHBACK_TRAILER, str(limits.retry_pushback_ms)),)
        self._shed = shed
        self._shed_children: dict[str, object] = {}

    def try_enter(self) -> bool:
        """Take the method's slots now if free (the fast path, no await); ``True`` when taken."""
        method_limiter = self.method_limiter
        if method_limiter is not None:
            if not method_limiter.try_acquire():
                return False
            if self.service_limiter.try_acquire():
                return True
            method_limiter.release()
            return False
        return self.service_limiter.try_acquire()

    async def enter(self) -> str | None:
        """Take the method's slots, queueing for the service's: ``None`` when taken, else the shed reason."""
        method_limiter = self.method_limiter
        if method_limiter is not None and not method_limiter.try_acquire():
            return METHOD_LIMIT
        try:
            reason = await self.service_limiter.acquire(self._abandoned if self.finish_abandoned else None)
        except asyncio.CancelledError:
            if method_limiter is not None and not self.finish_abandoned:
                method_limiter.release()
            raise
        if reason is not None and method_limiter is not None:
            method_limiter.release()
        return reason

    def _abandoned(self, granted: bool) -> None:
        """A queued call whose caller left reached a slot (``granted``): hold it for the recent median, then leave."""
        if granted:
            asyncio.get_running_loop().call_later(self.median.value, self.leave)
        elif self.method_limiter is not None:
            self.method_limiter.release()

    def leave(self, *_: object) -> None:
        """Give the slots back (usable as a task's done callback)."""
        self.service_limiter.release()
        if self.method_limiter is not None:
            self.method_limiter.release()

    def too_late(self, remaining_s: float | None, waited_s: float = 0.0) -> str | None:
        """Why a call about to start should be dropped instead, or ``None`` to run it.

        ``waited_s``: seconds since the server took the call (:data:`START_TIMEOUT`
        beyond ``max_start_wait_ms``); ``remaining_s``: seconds left of its
        deadline, ``None`` for none (:data:`DEADLINE` when shorter than the
        method's recent median service time).
        """
        if waited_s > self.max_start_wait_s:
            return START_TIMEOUT
        if self.deadline_drop and remaining_s is not None and remaining_s < self.median.value:
            return DEADLINE
        return None

    def count_shed(self, reason: str) -> None:
        """Count one rejection in ``casemesh_server_shed_total``."""
        child = self._shed_children.get(reason)
        if child is None:
            child = self._shed_children[reason] = self._shed.labels(self.service, self.method, reason)
        child.inc()


class Admission:
    """The gates of one server process: one :class:`Limiter` per gRPC service, one :class:`Gate` per method."""

    def __init__(self, limits: AdmissionLimits | None = None, registry: CollectorRegistry | None = None):
        self.limits = limits or AdmissionLimits()
        self._shed = shed_counter() if registry is None else _shed_counter(registry)
        self._services: dict[str, Limiter] = {}
        self._methods: dict[str, Limiter] = {}

    def gate(self, service: str, method: str) -> Gate | None:
        """The gate of ``service``/``method`` (``pkg.Service``, ``Method``); ``None`` for exempt services."""
        if service in EXEMPT_SERVICES:
            return None
        limits = self.limits
        limiter = self._services.get(service)
        if limiter is None:
            limiter = self._services[service] = Limiter(
                limits.limits.get(service, limits.max_concurrent_rpcs), limits.max_queued_rpcs,
                limits.max_queue_wait_ms / 1000)
        full = f"{service}/{method}"
        method_limiter = self._methods.get(full)
        if method_limiter is None and full in limits.limits:
            method_limiter = self._methods[full] = Limiter(limits.limits[full])
        return Gate(service, method, limiter, method_limiter, limits, self._shed)


def limits_from_policy(policy: ServerPolicy, defaults: Mapping[str, int] | None = None) -> AdmissionLimits:
    """The :class:`AdmissionLimits` of a topology's ``server:`` section (:class:`~.topology.ServerPolicy`).

    ``defaults`` (``"pkg.Service"`` → slots: the served definitions'
    ``default_limits``, e.g. a service of long-lived streams) apply where
    ``policy.limits`` names no limit of its own.
    """
    return AdmissionLimits(
        max_concurrent_rpcs=policy.max_concurrent_rpcs, max_queued_rpcs=policy.max_queued_rpcs,
        max_queue_wait_ms=policy.max_queue_wait_ms, retry_pushback_ms=policy.retry_pushback_ms,
        limits={**(defaults or {}), **policy.limits}, deadline_drop=policy.deadline_drop, max_start_wait_ms=policy.max_start_wait_ms,
        abandoned_work=policy.abandoned_work)
