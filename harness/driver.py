"""The open-loop driver: sends journeys at their intended times and records what they took.

Coordinated-omission free, as wrk2 does it: each journey has an intended start
time taken from the arrival process, and its latency (and that of its first
RPC) is measured from that intended time, not from when the driver managed to
send it. A stalled server therefore shows up in full in the tail: requests that
should have been sent during the stall are late, and their lateness counts.
The driver also records send lag (actual first send minus intended time); a
large send lag means the driver itself fell behind, and the run is marked
invalid rather than reported as the server's latency.

RPCs after the first in a journey are measured from when the previous one
finished (the user's next click). Journeys whose intended start falls in the
warm-up are sent but not recorded. Every RPC has a deadline of the profile's
``request_timeout_ms``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace

from casemesh.services.runtime.tracing import RpcTracing, end_span, inject_metadata

from .arrival import arrivals
from .stats import OK, RunStats

log = logging.getLogger("casemesh.driver")

#: Scheduler tick (s): uvloop rounds sleeps below 1 ms down to 0, which would spin a core (shared/NOTES.md).
TICK_S = 0.001


@dataclass
class Progress:
    """Live counters of a run, read by the progress display (no locking: one event loop)."""

    phase: str = "starting"
    started_at: float = 0.0
    sent: int = 0
    completed: int = 0
    failed: int = 0
    in_flight: int = 0


class _Methods:
    """Stub methods by (service, method name), with their full method names for recording."""

    def __init__(self, workload: Any, channels: Mapping[str, grpc.aio.Channel]):
        self._stubs = {service: workload.stubs[service](channels[service]) for service in workload.services}
        self._workload = workload
        self._cache: dict[tuple[str, str], tuple[Any, str]] = {}

    def get(self, service: str, method: str) -> tuple[Any, str]:
        key = (service, method)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = (getattr(self._stubs[service], method), self._workload.full_method(service, method))
        return found


class Driver:
    """Runs one profile's load against channels to the workload's services.

    ``channels`` maps each of ``profile.workload.services`` to an open
    ``grpc.aio`` channel. Use :meth:`seed`, then :meth:`run`; both must be
    awaited inside the event loop that owns the channels.
    """

    def __init__(self, profile: Any, channels: Mapping[str, grpc.aio.Channel], *, rng_seed: int = 1,
                 tracer: trace.Tracer | None = None, trace_ratio: float = 0.0):
        self.profile = profile
        self._tracing = RpcTracing(tracer, trace_roots=True) if tracer is not None and trace_ratio > 0 else None
        self._trace_ratio = trace_ratio
        self.stats = RunStats()
        self.progress = Progress()
        self._methods = _Methods(profile.workload, channels)
        self._rng = random.Random(rng_seed)
        self._timeout_s = profile.request_timeout_ms / 1000.0
        self._state: Any = None

    async def seed(self) -> None:
        """Create the workload's data (calls are not recorded)."""
        self.progress.phase = "seeding"
        self._state = await self.profile.workload.seed(self._unrecorded_call, self.profile.seed, self._rng)

    async def _unrecorded_call(self, service: str, method: str, request: Any) -> Any:
        stub_method, _ = self._methods.get(service, method)
        return await stub_method(request, timeout=self._timeout_s)

    async def run(self, on_tick: Callable[[], None] | None = None) -> RunStats:
        """Drive warm-up then the measured window; returns the recorded stats.

        Waits for journeys still in flight at the end (each RPC is bounded by
        its deadline), so every journey sent is accounted for.
        """
        profile = self.profile
        journeys = [(j.journey, j.params) for j in profile.journeys]
        cum_weights = list(itertools.accumulate(j.weight for j in profile.journeys))
        choose = self._rng.choices
        several = len(journeys) > 1
        offsets = arrivals(profile.arrival.process, profile.arrival.rate_per_s, self._rng)
        warmup_s, end_s = profile.warmup_s, profile.warmup_s + profile.duration_s
        in_flight: set[asyncio.Task] = set()
        progress = self.progress
        progress.phase = "warm-up" if warmup_s > 0 else "measuring"
        start = progress.started_at = time.perf_counter()
        next_tick = start + 1.0
        offset = next(offsets)
        while offset < end_s:
            now = time.perf_counter()
            if now >= next_tick:
                next_tick += 1.0
                if on_tick:
                    on_tick()
            due = start + offset
            if due > now:
                await asyncio.sleep(max(due - now, TICK_S))
                continue
            while offset < end_s and start + offset <= now:
                if offset >= warmup_s and progress.phase == "warm-up":
                    progress.phase = "measuring"
                journey, params = choose(journeys, cum_weights=cum_weights)[0] if several else journeys[0]
                task = asyncio.create_task(self._journey(journey, params, start + offset, offset >= warmup_s))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                progress.sent += 1
                offset = next(offsets)
        progress.phase = "draining"
        progress.in_flight = len(in_flight)
        if in_flight:
            await asyncio.wait(in_flight, timeout=self._timeout_s * 10 + 5)
        progress.phase = "done"
        if on_tick:
            on_tick()
        return self.stats

    def _traced(self, call: Callable[..., Any]) -> Callable[..., Any]:
        """``call`` in a CLIENT span per RPC, with the span's ``traceparent`` as metadata."""
        tracing = self._tracing
        full_method = self.profile.workload.full_method

        async def traced_call(service: str, method: str, request: Any) -> Any:
            with tracing.client_span(full_method(service, method)) as span:
                code = grpc.StatusCode.OK
                try:
                    return await call(service, method, request, inject_metadata(None))
                except grpc.aio.AioRpcError as error:
                    code = error.code()
                    raise
                finally:
                    end_span(span, code.value[0], code.name)

        return traced_call

    async def _journey(self, journey: Any, params: Any, intended: float, record: bool) -> None:
        stats = self.stats
        methods = self._methods
        timeout = self._timeout_s
        step_start = intended
        first = True

        async def call(service: str, method: str, request: Any, metadata: Any = None) -> Any:
            nonlocal step_start, first
            stub_method, full_method = methods.get(service, method)
            if first:
                first = False
                if record:
                    stats.send_lag.record_value(max(int((time.perf_counter() - intended) * 1e6), 1))
            else:
                step_start = time.perf_counter()
            code = OK
            try:
                return await stub_method(request, timeout=timeout, metadata=metadata)
            except grpc.aio.AioRpcError as error:
                code = error.code().name
                raise
            finally:
                if record:
                    stats.rpc(full_method).record(code, (time.perf_counter() - step_start) * 1e6)

        code = OK
        try:
            if self._tracing is None or self._rng.random() >= self._trace_ratio:
                await journey.run(call, params, self._state, self._rng)
            else:
                with self._tracing.tracer.start_as_current_span(journey.name, kind=trace.SpanKind.CLIENT):
                    await journey.run(self._traced(call), params, self._state, self._rng)
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        except Exception:  # a bug in a journey must not stop the run; it is counted and logged
            code = "UNKNOWN"
            log.exception("journey %s failed", journey.name)
        progress = self.progress
        progress.completed += 1
        if code != OK:
            progress.failed += 1
        if record:
            stats.journey(journey.name).record(code, (time.perf_counter() - intended) * 1e6)
