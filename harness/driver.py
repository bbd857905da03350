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

When the driver itself is the bottleneck, it says so instead of blaming the
server. A ``DEADLINE_EXCEEDED`` that reached the journey far past its
deadline (:func:`harness_caused`) is counted as harness-side beside its
status code (``CallStats.harness_side``). A driver that falls more than
``abandon_behind_s`` behind its schedule stops sending
(``Timeline.abandoned_at_s``): the run is invalid, and running on would only
take several times the planned duration to say so.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import math
import random
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace

from casemesh.services.runtime.admission import PUSHBACK_TRAILER
from casemesh.services.runtime.tracing import RpcTracing, end_span, inject_metadata

from .arrivals import Schedule, set_arrival_size
from .phases import SEED_METADATA
from .stats import OK, RunStats
from .streams import BidiStream, StreamRecorder, Streams
from .tail_breakdown import SEND_LAG_ATTRIBUTE

log = logging.getLogger("casemesh.driver")

#: Scheduler tick (s): uvloop rounds sleeps below 1 ms down to 0, which would spin a core (shared/NOTES.md).
TICK_S = 0.001
#: The driver dispatches an arrival once it is due within this many seconds (the event loop's timer resolution:
#: uvloop's timers are libuv's, in whole milliseconds, so a sleep until the due time wakes up to 1 ms late). A journey
#: that starts early is timed from its actual start, so waking early never shortens a latency, while waking late
#: would lengthen every one (docs/benchmarks.md, "Harness overhead against k6").
EARLY_S = 0.001
#: The driver abandons a run once it is this far (s) behind its schedule. Such a run is invalid anyway (its
#: send-lag p99 is far past the 10 ms bound): every second more only delays the verdict.
ABANDON_BEHIND_S = 2.0
#: After abandoning, how long (s, beyond one request timeout) the driver waits for calls in flight before cancelling them.
ABANDON_DRAIN_S = 1.0
#: Seeding retries a call refused RESOURCE_EXHAUSTED (a server's admission control) up to this many times, waiting
#: its ``grpc-retry-pushback-ms`` (gRFC A6; SEED_PUSHBACK_DEFAULT_S without one) before each.
SEED_RESOURCE_EXHAUSTED_RETRIES = 50
SEED_PUSHBACK_DEFAULT_S = 0.1


def harness_caused(code: str, elapsed_s: float, timeout_s: float) -> bool:
    """Whether a call that ended with status ``code`` after ``elapsed_s`` failed because of the harness, not the server.

    ``elapsed_s`` is from the moment the harness made the call to the moment
    its journey saw the outcome; ``timeout_s`` is the call's deadline. True
    for ``DEADLINE_EXCEEDED`` seen more than max(50 ms, 25 % of the
    deadline) past the deadline: grpc-core expires a call on time, so the
    surplus is how late the harness's event loop was, and a loop that late
    could not send the request or take the response on time either (seen at
    12x the url-shortener's rate: every Resolve expired while the server's CPU
    sat at 0-4 %). The status code stays ``DEADLINE_EXCEEDED``.
    """
    return code == "DEADLINE_EXCEEDED" and elapsed_s - timeout_s > max(0.05, 0.25 * timeout_s)



def plan_rngs(seed: int) -> tuple[random.Random, random.Random]:
    """``(arrivals, journeys)``: the RNGs of a run's arrival schedule and of its journey choices, derived from ``seed``.

    Both are streams of their own, apart from the RNG that seeding, trace
    sampling and the journeys' request contents draw from (journeys draw when
    they run, so that stream's order depends on timing). The sequence of
    (intended offset, journey) pairs is therefore a function of the profile
    and the seed alone, which is what lets ``casemesh run --workers N`` split
    it exactly across processes (harness/workers.py).
    """
    return random.Random(f"casemesh-arrivals-{seed}"), random.Random(f"casemesh-journeys-{seed}")


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
        self._arrival_rng, self._choice_rng = plan_rngs(rng_seed)
        self._timeout_s = profile.request_timeout_ms / 1000.0
        self._state: Any = None
        self._live: Any = None  # what journeys get: the seeded state, or what the workload's connect made of it
        self.stream_recorder = StreamRecorder(self)
        #: Seconds behind schedule past which :meth:`run` abandons the run (:data:`ABANDON_BEHIND_S`).
        self.abandon_behind_s = ABANDON_BEHIND_S

    async def seed(self) -> None:
        """Create the workload's data (calls are not recorded, and carry ``casemesh-phase: seed``: harness/phases.py)."""
        self.progress.phase = "seeding"
        self._state = await self.profile.workload.seed(self._unrecorded_call, self.profile.seed, self._rng)

    async def _unrecorded_call(self, service: str, method: str, request: Any) -> Any:
        """One seeding call; refused RESOURCE_EXHAUSTED (admission control of a tightly limited service), it is sent again
        after the server's pushback, up to SEED_RESOURCE_EXHAUSTED_RETRIES times: seeding is not measured, only slowed."""
        stub_method, _ = self._methods.get(service, method)
        for attempt in itertools.count():
            try:
                return await stub_method(request, timeout=self._timeout_s, metadata=SEED_METADATA)  # marked: harness/phases.py
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or attempt >= SEED_RESOURCE_EXHAUSTED_RETRIES:
                    raise
                await asyncio.sleep(_pushback_s(error))
        raise AssertionError("unreachable")  # pragma: no cover

    @property
    def state(self) -> Any:
        """What the workload's seeder returned (``None`` before :meth:`seed`); assign it to drive data seeded elsewhere."""
        return self._state

    @state.setter
    def state(self, value: Any) -> None:
        self._state = value

    def plan(self, run_s: float) -> tuple[Schedule, Callable[..., list[Any]]]:
        """``(schedule, choose)`` of a run of ``run_s`` seconds: its arrivals and how each picks its journey.

        ``choose(population, cum_weights=...)`` is ``random.Random.choices``
        of the journey RNG (:func:`plan_rngs`); :meth:`run` calls it once per
        arrival, in order, when the profile has several journeys. Subclasses
        may narrow the plan (``harness.workers.WorkerDriver`` keeps every N-th
        arrival).
        """
        return self.profile.arrival.schedule(self._arrival_rng, run_s), self._choice_rng.choices

    @property
    def share(self) -> tuple[int, int]:
        """``(index, count)``: this driver sends worker ``index``'s share of ``count`` (``(0, 1)``: all of it)."""
        return 0, 1

    async def run(self, on_tick: Callable[[], None] | None = None) -> RunStats:
        """Connect the workload's population of streams (if it has one), drive the load, disconnect; returns the stats.

        A workload with ``connect`` (:mod:`~casemesh.harness.streams`) opens
        its long-lived streams before the first arrival (phase
        ``connecting``); the journeys then get what ``connect`` returned as
        their state, and ``disconnect`` closes the streams after the last
        journey has ended, even when the run failed.
        """
        workload = self.profile.workload
        self._live = self._state
        if workload.connect is not None:
            self.progress.phase = "connecting"
            streams = Streams(self, self.stream_recorder, self.share)
            self._live = await workload.connect(streams, self._state, self.profile.seed, self._rng)
            gc.freeze()  # the population lives for the whole run: keep it out of the collector's scans
        try:
            return await self._drive(on_tick)
        finally:
            if workload.disconnect is not None:
                await workload.disconnect(self._live)

    async def _drive(self, on_tick: Callable[[], None] | None = None) -> RunStats:
        """Drive warm-up then the measured window; returns the recorded stats.

        Sends each arrival of the profile's schedule at its intended time
        until warm-up + duration, or until the schedule's end when it is
        shorter (a trace): then sending stops early, which
        ``stats.timeline`` records (``end_s``, ``ended_early``). Counts per
        second the arrivals intended, sent and completed in
        ``stats.timeline``. When an arrival carries a size, the journey's task
        sees it through :func:`~casemesh.harness.arrivals.arrival_size`.
        Waits for journeys still in flight at the end (each RPC is bounded by
        its deadline), so every journey sent is accounted for.

        Once the next arrival is more than :attr:`abandon_behind_s` overdue,
        sending stops (``stats.timeline.abandoned_at_s``); journeys still in
        flight get one request timeout plus :data:`ABANDON_DRAIN_S`, then are
        cancelled (not recorded).
        """
        profile = self.profile
        journeys = [(j.journey, j.params) for j in profile.journeys]
        cum_weights = list(itertools.accumulate(j.weight for j in profile.journeys))
        several = len(journeys) > 1
        warmup_s, end_s = profile.warmup_s, profile.warmup_s + profile.duration_s
        schedule, choose = self.plan(end_s)
        offsets, sizes = schedule.offsets, schedule.sizes
        stop_s = end_s if schedule.length_s is None else min(end_s, schedule.length_s)
        timeline = self.stats.timeline
        timeline.begin(warmup_s, end_s, stop_s)
        intended = timeline.intended
        in_flight: set[asyncio.Task] = set()
        progress = self.progress
        progress.phase = "warm-up" if warmup_s > 0 else "measuring"
        start = progress.started_at = time.perf_counter()
        stop_at = start + stop_s
        next_tick = start + 1.0
        never = math.inf  # the offset once the schedule has run out
        offset = next(offsets, never)
        while True:
            now = time.perf_counter()
            if now >= next_tick:
                next_tick += 1.0
                timeline.tick(progress.completed)
                if on_tick:
                    on_tick()
            if offset >= end_s:  # no arrival left in this run: wait for its end (ticking), then stop
                if now >= stop_at:
                    break
                await asyncio.sleep(max(min(stop_at, next_tick) - now, TICK_S))
                continue
            due = start + offset
            if due > now + EARLY_S:
                await asyncio.sleep(max(min(due - EARLY_S, next_tick) - now, TICK_S))
                continue
            if now - due > self.abandon_behind_s:
                timeline.abandon(now - start, now - due)
                log.warning("the load generator is %.1f s behind its schedule at %.1f s: sending stopped, the run is invalid",
                            now - due, now - start)
                break
            dispatched = 0
            while offset < end_s and start + offset <= now + EARLY_S:
                if offset >= warmup_s and progress.phase == "warm-up":
                    progress.phase = "measuring"
                journey, params = choose(journeys, cum_weights=cum_weights)[0] if several else journeys[0]
                intended[int(offset)] += 1
                if sizes is not None:
                    set_arrival_size(next(sizes))  # copied into the task's context by create_task
                task = asyncio.create_task(self._journey(journey, params, start + offset, offset >= warmup_s))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
                dispatched += 1
                offset = next(offsets, never)
            progress.sent += dispatched
            timeline.add_sent(int(now - start), dispatched)
        timeline.finish(time.perf_counter() - start, progress.completed)
        progress.phase = "draining"
        progress.in_flight = len(in_flight)
        if in_flight:
            abandoned = timeline.abandoned_at_s is not None
            await asyncio.wait(in_flight, timeout=self._timeout_s + ABANDON_DRAIN_S if abandoned else self._timeout_s * 10 + 5)
            if abandoned:
                for task in list(in_flight):
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)
        timeline.drained(progress.completed)
        progress.phase = "done"
        if on_tick:
            on_tick()
        return self.stats

    async def _journey(self, journey: Any, params: Any, intended: float, record: bool) -> None:
        # Dispatched up to EARLY_S before its intended start: then timed from when it actually starts.
        intended = max(intended, time.perf_counter())
        if self._tracing is None or self._rng.random() >= self._trace_ratio:
            caller = JourneyCaller(self, intended, record)
            code = await self._run_journey(journey, caller, params)
            trace_id = None
        else:
            with self._tracing.tracer.start_as_current_span(journey.name, kind=trace.SpanKind.CLIENT) as span:
                # Client-side queueing before the span began, for the tail breakdown (harness/tail_breakdown.py).
                span.set_attribute(SEND_LAG_ATTRIBUTE, round((time.perf_counter() - intended) * 1e3, 3))
                caller = TracedJourneyCaller(self, intended, record)
                code = await self._run_journey(journey, caller, params)
                end_span(span, 0 if code == OK else 2, code)
                trace_id = format(span.get_span_context().trace_id, "032x")
        progress = self.progress
        progress.completed += 1
        if code != OK:
            progress.failed += 1
        self.stats.series.journey(journey.name).record_ended(code, intended, progress.started_at)
        if record:
            latency_us = (time.perf_counter() - intended) * 1e6
            calls = self.stats.journey(journey.name)
            calls.record(code, latency_us)
            if code != OK and code == caller.harness_code:
                calls.blame_harness(code)
            if trace_id is not None:
                self.stats.sampled_trace(journey.name, latency_us, trace_id, code)

    async def _run_journey(self, journey: Any, caller: JourneyCaller, params: Any) -> str:
        """Run one journey; returns its status code name (a journey's failure never stops the run)."""
        try:
            await journey.run(caller, params, self._live, self._rng)
        except grpc.aio.AioRpcError as error:
            return error.code().name
        except Exception:  # a bug in a journey must not stop the run; it is counted and logged
            log.exception("journey %s failed", journey.name)
            return "UNKNOWN"
        return OK


class JourneyCaller:
    """The :class:`~casemesh.harness.workloads.base.Caller` of one journey: makes, times and records its RPCs.

    The first RPC of a journey is timed from the journey's intended start
    (coordinated-omission free) and records the send lag; each later one from
    the moment it is made. Server streams also record the time to their first
    message (under ``RunStats.first_message``) besides the whole call.
    Latencies are recorded only when the journey started after the warm-up.
    """

    __slots__ = ("_driver", "_intended", "_record", "_step_start", "_first", "harness_code")

    def __init__(self, driver: Driver, intended: float, record: bool):
        self._driver = driver
        self._intended = intended
        self._record = record
        self._step_start = intended
        self._first = True
        #: The status of this journey's last call that the harness caused (:func:`harness_caused`), else ``None``.
        self.harness_code: str | None = None

    def _ended(self, full_method: str, code: str, made_at: float) -> None:
        """Record the end of a call to ``full_method`` made at ``made_at`` (perf_counter s) with status ``code``."""
        now = time.perf_counter()
        stats = self._driver.stats
        if self._record:
            calls = stats.rpc(full_method)
            calls.record(code, (now - self._step_start) * 1e6)
            if code != OK and harness_caused(code, now - made_at, self._driver._timeout_s):
                calls.blame_harness(code)
                self.harness_code = code
        stats.series.rpc(full_method).record_ended(code, self._step_start, self._driver.progress.started_at)

    def _begin(self) -> None:
        if self._first:
            self._first = False
            if self._record:
                self._driver.stats.send_lag.record_value(max(int((time.perf_counter() - self._intended) * 1e6), 1))
        else:
            self._step_start = time.perf_counter()

    def _metadata(self) -> Any:
        return None

    def _span(self, full_method: str) -> Any:
        return None

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        """A unary call; returns the response, raises ``grpc.aio.AioRpcError`` on a non-OK status (recorded first)."""
        stub_method, full_method = self._driver._methods.get(service, method)
        span_scope = self._span(full_method)
        span = span_scope.__enter__() if span_scope is not None else None
        self._begin()
        code = OK
        made_at = time.perf_counter()
        try:
            return await stub_method(request, timeout=self._driver._timeout_s, metadata=self._metadata())
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            raise
        finally:
            self._ended(full_method, code, made_at)
            if span is not None:
                _end_call_span(span, span_scope, code)

    async def server_stream(self, service: str, method: str, request: Any) -> AsyncIterator[Any]:
        """A server-streaming call: yields its messages; records time to first message and the whole call.

        Consume it to the end: a stream abandoned early is cancelled and
        recorded as ``CANCELLED``. Raises ``grpc.aio.AioRpcError`` on a non-OK
        status (recorded first).
        """
        stub_method, full_method = self._driver._methods.get(service, method)
        span_scope = self._span(full_method)
        span = span_scope.__enter__() if span_scope is not None else None
        self._begin()
        stats = self._driver.stats
        code = "CANCELLED"
        waiting_first = True
        made_at = time.perf_counter()
        call = stub_method(request, timeout=self._driver._timeout_s, metadata=self._metadata())
        try:
            async for response in call:
                if waiting_first:
                    waiting_first = False
                    if self._record:
                        stats.first_message_of(full_method).record(OK, (time.perf_counter() - self._step_start) * 1e6)
                yield response
            code = OK
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            raise
        finally:
            if code == "CANCELLED":
                call.cancel()
            self._ended(full_method, code, made_at)
            if span is not None:
                _end_call_span(span, span_scope, code)

    async def client_stream(self, service: str, method: str, requests: AsyncIterable[Any] | Iterable[Any]) -> Any:
        """A client-streaming call sending ``requests``; returns the response (errors as :meth:`__call__`)."""
        return await self(service, method, requests)

    def begin(self) -> None:
        """Mark the journey's first action when it is not an RPC (a frame on a long-lived stream): records the send
        lag as a first RPC does. Later calls (and RPCs after it) time from the moment they are made."""
        self._begin()

    @property
    def intended_at(self) -> float:
        """The journey's intended start (perf_counter s), from the arrival process: what latencies are measured from."""
        return self._intended

    def bidi_stream(self, service: str, method: str) -> BidiStream:
        """Open a bidi stream (:class:`~casemesh.harness.streams.BidiStream`) that may outlive the journey.

        Its time to first message (time to connect) is recorded like a call
        of this journey's (from the intended start when it is the journey's
        first call); its end is recorded when it ends
        (:mod:`~casemesh.harness.streams`). No deadline: close it.
        """
        stub_method, full_method = self._driver._methods.get(service, method)
        self._begin()
        return BidiStream(stub_method, full_method, self._driver.stream_recorder, opened_at=self._step_start,
                          record_first=self._record, metadata=self._metadata())

    def observe(self, name: str, latency_s: float, code: str = OK) -> None:
        """Record a journey-defined measure ``name`` (e.g. upload complete → published) of ``latency_s`` seconds.

        It is reported and judged like a journey of that name.
        """
        if self._record:
            self._driver.stats.journey(name).record(code, latency_s * 1e6)
        self._driver.stats.series.journey(name).record(code, latency_s * 1e6, time.perf_counter() - self._driver.progress.started_at)


class TracedJourneyCaller(JourneyCaller):
    """A :class:`JourneyCaller` inside a sampled journey: a CLIENT span per RPC, its ``traceparent`` sent along."""

    __slots__ = ()

    def _metadata(self) -> Any:
        return inject_metadata(None)

    def _span(self, full_method: str) -> Any:
        return self._driver._tracing.client_span(full_method)


def _end_call_span(span: Any, scope: Any, code: str) -> None:
    end_span(span, grpc.StatusCode[code].value[0] if code in grpc.StatusCode.__members__ else 2, code)
    scope.__exit__(None, None, None)


def _pushback_s(error: grpc.aio.AioRpcError) -> float:
    """The ``grpc-retry-pushback-ms`` trailer of a refusal in seconds (gRFC A6); SEED_PUSHBACK_DEFAULT_S without a valid one."""
    for key, value in error.trailing_metadata() or ():
        if key == PUSHBACK_TRAILER:
            try:
                return max(int(value), 0) / 1000
            except ValueError:
                break
    return SEED_PUSHBACK_DEFAULT_S
