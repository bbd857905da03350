"""Parallel load generation: ``casemesh run --workers N`` splits one run's arrivals across N worker processes.

One Python process on one event loop holds a schedule up to a few thousand
requests per second (shared/NOTES.md). With ``--workers N`` (N ≥ 2) the
``casemesh run`` process becomes the **coordinator**: it starts the embedded
mesh once (or uses ``--target``), seeds the workload once, and starts N
**workers**, each a :class:`WorkerDriver` (the ordinary
:class:`~casemesh.harness.driver.Driver` with a narrowed plan) on its own
uvloop, with its own gRPC channels to the same targets. ``--workers 1``, the
default, does not come here at all: it is the single-process path.

**The schedule is split exactly.** A run's arrival schedule and its journey
choices come from RNG streams of their own, derived from ``--seed``
(:func:`~casemesh.harness.driver.plan_rngs`): the sequence of (intended offset,
journey) pairs is a function of the profile and the seed, the same in every
process and the same as a single-process run's. Every worker generates that
whole sequence and keeps arrival *i* (0-based, in schedule order) when
``i % N == index``: :func:`partition_plan`. So the workers' arrivals, taken
together, are exactly the single-process schedule, each once; a worker's own
arrivals are every N-th (for a Poisson process: Erlang-N gaps per worker,
Poisson in sum). The journey of arrival *i* is the *i*-th draw of the journey
RNG: a worker draws the choices of all N arrivals of each round and keeps its
own (:class:`PartitionedChoice`), so arrival *i* runs the same journey
whichever worker sends it. Per-arrival sizes of a ``trace`` are split the same
way. Generating the whole sequence costs each worker about a microsecond per
arrival of the run, its own or not.

What is per worker: the RNG of request contents and trace sampling (seeded
from the seed and the worker's index, so workers do not send identical
request streams), its channels (one HTTP/2 connection per target per worker),
its start instant, and any state a journey mutates.

**Seeding happens once, in the coordinator**, through an ordinary
:class:`~casemesh.harness.driver.Driver` on the coordinator's own channels,
exactly as a single-process run seeds; the state the workload's seeder returns
is pickled into every worker (url-shortener: the seeded codes; echo:
``None``; video: the catalogue's ids and the viewers). A state that cannot be
pickled stops the run with a harness error before any load. Each worker then
owns a copy: what journeys change in it during the run stays in that worker
(the video workload's per-viewer throughput estimates, for example, are
learnt per worker). The alternative, worker 0 seeding and broadcasting, would
need the same pickling and a second round trip, and would put seeding time
inside a worker's start-up.

**Processes: ``multiprocessing`` with the ``spawn`` start method.** The
coordinator runs an event loop, gRPC's threads and an OpenTelemetry exporter
when it starts workers; forking such a process is unsafe (grpc-core supports
``fork`` only in narrow conditions), so each worker is a fresh interpreter
that imports casemesh and creates its channels inside its own loop (gRPC aio
channels belong to the loop that made them, shared/NOTES.md). ``spawn`` also
gives pickled arguments (the profile, the state) and a ``Pipe`` per worker
for free; subprocesses of ``casemesh`` itself would need a hidden command
line and a serialisation of the profile of their own. Start-up (≈ 1 s of CPU
per worker for the imports) happens before the load: workers report
*ready* once connected, and the coordinator then hands all of them one start
instant (``time.perf_counter()``, CLOCK_MONOTONIC, the same clock in every
process on the machine) :data:`START_DELAY_S` ahead. Each worker's driver
measures from its own start; how far it is from the shared instant is
reported (``start_skew_ms``: 0.1–3 ms here, when the workers and the
coordinator wake at once on two shared cores).

**Results merge exactly.** Every second (the driver's tick) a worker sends
its counts (sent, completed, failed, in flight, measured-window arrivals)
and a snapshot of its stats in the wire format of
:meth:`RunStats.to_wire <casemesh.harness.stats.RunStats.to_wire>` (encoded
HDR histograms, without the per-second series, whose plain form grows with
the run; encoding costs ≈ 0.1 ms per histogram, on the worker's loop); at
the end its complete stats, series included. The coordinator decodes and merges them
(:meth:`RunStats.merge <casemesh.harness.stats.RunStats.merge>`): histogram
counts add, so every percentile is that of one recorder that saw every call,
never an average of percentiles. The merged snapshots feed the live view,
the SLOs judged while the run goes on and the harness's ``/metrics``
(:mod:`casemesh.harness.metrics`), which therefore covers every worker, at
most one second behind; the final merge feeds ``result.json``. Each worker's
own send lag, sent count, start skew and CPU time are kept apart
(:meth:`WorkerPool.worker_summaries`): the run is invalid when any one
worker fell behind, even if the merged p99 hides it.

**Failure.** A worker that cannot connect, raises, or exits without its
result stops the run with a :class:`~casemesh.harness.errors.HarnessError`
naming it (exit code 3); the coordinator then terminates the other workers.
Every wait is bounded: :data:`READY_TIMEOUT_S` for start-up, the run's length
plus the driver's own drain bound plus :data:`FINISH_MARGIN_S` for the rest.
Workers ignore SIGINT (a Ctrl-C reaches the coordinator, which stops them
with SIGTERM) and are daemonic, so they never outlive it.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import os
import pickle
import queue
import signal
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from hdrh.histogram import HdrHistogram

from casemesh.services.runtime.topology import TlsSettings

from .arrivals import Schedule
from .call_policy import harness_channel_options
from .channels import open_mesh_channel
from .driver import Driver, Progress
from .errors import HarnessError
from .stats import RunStats, new_histogram

#: How far ahead of "all workers ready" the shared start instant is (s): time for the start message to reach every worker.
START_DELAY_S = 0.25
#: How long workers may take to start, connect to every target and report ready (s).
READY_TIMEOUT_S = 60.0
#: How long a worker waits for each target's channel to connect (s).
CONNECT_TIMEOUT_S = 10.0
#: Slack after the run's planned end and the driver's drain bound before a silent worker is given up on (s).
FINISH_MARGIN_S = 30.0
#: Grace between SIGTERM and SIGKILL when stopping workers (s).
STOP_GRACE_S = 5.0
#: Highest ``--workers``.
MAX_WORKERS = 64

#: The phases of :class:`~casemesh.harness.driver.Progress`, in order; the merged phase is the earliest of any worker.
PHASES = ("starting", "seeding", "warm-up", "measuring", "draining", "done")


# --------------------------------------------------------------------------- the split


class PartitionedChoice:
    """Journey choice of one worker: ``choose(population, cum_weights=...)`` like ``random.Random.choices``.

    ``draw`` is the journey RNG's ``choices`` (one ``random()`` per call).
    Each call draws the choices of the next ``count`` arrivals of the whole
    schedule, in order, and returns the one of arrival ``index`` of them (as
    a one-element list, as ``choices`` does), so the worker's k-th arrival,
    arrival ``k * count + index`` of the schedule, gets the journey a single
    process would give it. The driver calls it once per arrival it takes.
    """

    __slots__ = ("_draw", "_index", "_count")

    def __init__(self, draw: Callable[..., list[Any]], index: int, count: int):
        self._draw, self._index, self._count = draw, index, count

    def __call__(self, population: Any, *, cum_weights: Any) -> list[Any]:
        draw = self._draw
        picks = [draw(population, cum_weights=cum_weights)[0] for _ in range(self._count)]
        return [picks[self._index]]


def partition_plan(schedule: Schedule, choose: Callable[..., list[Any]], index: int, count: int) -> tuple[Schedule, Callable[..., list[Any]]]:
    """Worker ``index``'s part (0 ≤ index < count) of a run's plan: arrivals ``i`` with ``i % count == index``.

    ``schedule`` and ``choose`` are :meth:`Driver.plan
    <casemesh.harness.driver.Driver.plan>`'s. Offsets and sizes are sliced
    alike; ``length_s`` is the whole schedule's, so every worker stops
    sending where a single process would. ``ValueError`` for an index out of
    range.
    """
    if not 0 <= index < count:
        raise ValueError(f"worker index {index} is not in 0..{count - 1}")
    sizes = None if schedule.sizes is None else itertools.islice(schedule.sizes, index, None, count)
    return (Schedule(itertools.islice(schedule.offsets, index, None, count), sizes, schedule.length_s),
            PartitionedChoice(choose, index, count))


class WorkerDriver(Driver):
    """A :class:`~casemesh.harness.driver.Driver` that sends only worker ``index``'s arrivals of ``count``.

    ``rng_seed`` is the run's seed: the schedule and the journey choices are
    the run's (:func:`partition_plan`). Request contents and trace sampling
    draw from a stream of this worker's own. Assign :attr:`state` (the
    coordinator's seeded state) instead of calling :meth:`seed`.
    """

    def __init__(self, profile: Any, channels: Mapping[str, grpc.aio.Channel], *, rng_seed: int, index: int, count: int,
                 tracer: Any = None, trace_ratio: float = 0.0):
        if not 0 <= index < count:
            raise ValueError(f"worker index {index} is not in 0..{count - 1}")
        super().__init__(profile, channels, rng_seed=rng_seed, tracer=tracer, trace_ratio=trace_ratio)
        self.index, self.count = index, count
        self._rng.seed(f"casemesh-worker-{rng_seed}-{index}-of-{count}")

    @property
    def share(self) -> tuple[int, int]:
        """``(index, count)`` of this worker."""
        return self.index, self.count

    def plan(self, run_s: float) -> tuple[Schedule, Callable[..., list[Any]]]:
        """This worker's part of the run's plan (:func:`partition_plan`)."""
        schedule, choose = super().plan(run_s)
        return partition_plan(schedule, choose, self.index, self.count)


# --------------------------------------------------------------------------- the worker process


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs (pickled into it by ``spawn``).

    ``profile`` is the loaded profile (overrides applied), ``targets`` maps
    each of the workload's services to ``host:port``, ``seed`` is the run's
    seed, ``state`` what the workload's seeder returned in the coordinator,
    ``tls`` the run's mTLS settings (``--tls``; ``None``: plaintext).
    """

    index: int
    count: int
    profile: Any
    targets: dict[str, str]
    seed: int
    trace_ratio: float
    state: Any
    tls: TlsSettings | None = None


def _counts(progress: Any) -> dict[str, Any]:
    """A worker's live counters, as sent to the coordinator."""
    return {"phase": progress.phase, "sent": progress.sent, "completed": progress.completed, "failed": progress.failed,
            "in_flight": progress.in_flight, "measured_sent": progress.measured_sent}


def worker_main(spec: WorkerSpec, conn: Any) -> None:
    """Entry point of a worker process: drive ``spec``'s part of the run, talking to the coordinator over ``conn``.

    Messages to the coordinator (tuples): ``("ready", {"pid"})`` once
    connected; ``("tick", COUNTS, WIRE)`` every second with a snapshot of the
    stats (``RunStats.to_wire(series=False)``); ``("done", COUNTS, WIRE,
    {"start_skew_s", "cpu_s"})`` at the end, with the complete stats; or
    ``("error", TEXT)``. From it: ``("start", PERF_COUNTER_INSTANT)``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the coordinator handles Ctrl-C and stops the workers
    import uvloop

    outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    sender = threading.Thread(target=_send_all, args=(conn, outbox), name="casemesh-worker-sender", daemon=True)
    sender.start()
    code = 0
    try:
        uvloop.run(_work(spec, conn, outbox))
    except BaseException as error:  # reported, then the process exits non-zero
        detail = str(error) if isinstance(error, HarnessError) else "".join(traceback.format_exception(error)).strip()
        outbox.put(("error", detail))
        code = 1
    outbox.put(None)
    sender.join(STOP_GRACE_S)
    conn.close()
    if code:
        raise SystemExit(code)


def _send_all(conn: Any, outbox: queue.SimpleQueue[Any]) -> None:
    """Sends the worker's messages from a thread of its own, so a full pipe never blocks the event loop."""
    while (message := outbox.get()) is not None:
        try:
            conn.send(message)
        except OSError:  # the coordinator is gone: nothing left to report to
            return


async def _connect(channel: grpc.aio.Channel, what: str) -> None:
    """Return once ``channel`` is connected; ``HarnessError`` naming ``what`` when a connection attempt fails or takes too long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONNECT_TIMEOUT_S
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        if state == grpc.ChannelConnectivity.TRANSIENT_FAILURE:
            raise HarnessError(f"cannot connect to {what}: the connection failed")
        try:
            await asyncio.wait_for(channel.wait_for_state_change(state), max(deadline - loop.time(), 0.001))
        except asyncio.TimeoutError:
            raise HarnessError(f"cannot connect to {what} within {CONNECT_TIMEOUT_S:g} s") from None
        state = channel.get_state(try_to_connect=True)


async def _work(spec: WorkerSpec, conn: Any, outbox: queue.SimpleQueue[Any]) -> None:
    async def wait_start() -> float:
        command, start_at = await asyncio.to_thread(conn.recv)
        if command != "start":
            raise HarnessError(f"unexpected message from the coordinator: {command!r}")
        return start_at

    await drive_share(spec, outbox.put, wait_start)


async def drive_share(spec: WorkerSpec, emit: Callable[[tuple[Any, ...]], Any], wait_start: Callable[[], Awaitable[float]]) -> None:
    """Drive worker ``spec.index``'s share of the run; the body of a worker, whatever carries its messages.

    Connects to every target, then ``emit("ready", {"pid"})``, awaits
    ``wait_start()`` (the agreed start instant on this process's
    ``time.perf_counter()`` clock), drives, emitting ``("tick", COUNTS,
    WIRE)`` every second and ``("done", COUNTS, WIRE, {"start_skew_s",
    "cpu_s"})`` at the end (the messages of :func:`worker_main`). The local
    pool's pipe (:func:`worker_main`) and the distributed harness's gRPC
    stream (harness/distributed/worker.py) both use it. ``emit`` must not
    block the event loop. Raises :class:`HarnessError` when a target cannot be
    reached.
    """
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from casemesh.services.runtime.tracing import configure_tracing

    from .metrics import watch_arrivals

    provider = configure_tracing("casemesh-harness", sampler=ALWAYS_ON) if spec.trace_ratio > 0 else None
    retry = harness_channel_options(getattr(spec.profile, "harness_retry", None))
    channels = {service: open_mesh_channel(address, spec.tls, options=retry) for service, address in spec.targets.items()}
    try:
        for service, channel in channels.items():
            await _connect(channel, f"{service} at {spec.targets[service]}")
        driver = WorkerDriver(spec.profile, channels, rng_seed=spec.seed, index=spec.index, count=spec.count,
                              tracer=provider.get_tracer("casemesh.harness") if provider else None, trace_ratio=spec.trace_ratio)
        driver.state = spec.state
        progress = watch_arrivals(driver)
        gc.freeze()  # as the single process does: what lives for the whole run stays out of the collector's scans
        emit(("ready", {"pid": os.getpid()}))
        start_at = await wait_start()
        delay = start_at - time.perf_counter()
        if delay > 0.002:
            await asyncio.sleep(delay - 0.002)
        while time.perf_counter() < start_at:  # the last 2 ms: uvloop's sleeps are 1 ms coarse
            pass
        cpu_start = time.process_time()

        def tick() -> None:
            if progress.phase != "done":
                emit(("tick", _counts(progress), driver.stats.to_wire(series=False)))

        stats = await driver.run(on_tick=tick)
        cpu_s = time.process_time() - cpu_start
        emit(("done", _counts(progress), stats.to_wire(), {"start_skew_s": progress.started_at - start_at, "cpu_s": cpu_s}))
    finally:
        for channel in channels.values():
            await channel.close()
        if provider is not None:
            provider.shutdown()


# --------------------------------------------------------------------------- the coordinator


@dataclass
class PoolProgress(Progress):
    """The workers' :class:`~casemesh.harness.driver.Progress` summed (phase: the earliest any worker is in).

    ``started_at`` is the shared start instant (``time.perf_counter()``);
    ``measured_sent`` the arrivals of the measured window dispatched so far
    (read by the harness's ``/metrics``, as :class:`~casemesh.harness.metrics.WindowProgress`'s).
    """

    measured_sent: int = 0


@dataclass
class _Worker:
    index: int
    process: Any
    conn: Any
    pid: int | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    snapshot: dict[str, Any] | None = None
    final: RunStats | None = None
    info: dict[str, Any] = field(default_factory=dict)


class WorkerPool:
    """The coordinator's side of ``--workers N``: drives a run with N worker processes, as :class:`Driver` would.

    Same surface as the driver for ``casemesh run``: :meth:`seed` (seeds
    through the coordinator's ``channels``), then :meth:`start` (spawns the
    workers and waits until each is connected and ready), :meth:`run`
    (returns the merged :class:`RunStats`), and always :meth:`close`.
    :attr:`stats` is the latest merge of the workers' snapshots (replaced,
    never mutated, at most once a second) and the final merge after
    :meth:`run`; :attr:`progress` their summed counters. ``on_snapshot(stats,
    progress)`` is called with each new merge (e.g. to hand it to the
    ``/metrics`` collector). ``say`` prints a status line.

    Raises :class:`~casemesh.harness.errors.HarnessError` when a worker fails
    to start, to connect, raises, dies or stays silent past its bound;
    ``grpc.aio.AioRpcError`` from :meth:`seed` as the driver's does.
    """

    #: Fewest workers a pool drives (one process is the driver's own path, not a pool's).
    min_workers = 2
    #: How far ahead of "all workers ready" the shared start instant is (s).
    start_delay_s = START_DELAY_S

    def __init__(self, profile: Any, channels: Mapping[str, grpc.aio.Channel], targets: Mapping[str, str], *, workers: int,
                 rng_seed: int = 1, trace_ratio: float = 0.0, say: Callable[[str], Any] = print,
                 on_snapshot: Callable[[RunStats, PoolProgress], Any] | None = None, tls: TlsSettings | None = None):
        if not self.min_workers <= workers <= MAX_WORKERS:
            raise ValueError(f"a pool has {self.min_workers}..{MAX_WORKERS} workers, not {workers}")
        self.profile = profile
        self.count = workers
        self.stats = RunStats()
        self.progress = PoolProgress()
        self.on_snapshot = on_snapshot
        self._channels = channels
        self._targets = dict(targets)
        self._seed = rng_seed
        self._trace_ratio = trace_ratio
        self._tls = tls  # the workers connect with mTLS as the harness when set (harness/channels.py)
        self._say = say
        #: What the workload's seeder returned (set by :meth:`seed`; assign it to drive data seeded elsewhere).
        self.state: Any = None
        self._workers: list[_Worker] = []
        self._inbox: asyncio.Queue[tuple[int, tuple[Any, ...]]] | None = None
        self._readers: list[threading.Thread] = []

    async def seed(self) -> None:
        """Seed the workload once, through the coordinator's channels (as a single-process run does)."""
        self.progress.phase = "seeding"
        seeder = Driver(self.profile, self._channels, rng_seed=self._seed)
        await seeder.seed()
        self.state = seeder.state

    async def start(self) -> None:
        """Spawn the workers with the seeded state; return once every one is connected and ready."""
        try:
            pickle.dumps(self.state)
        except Exception as error:  # noqa: BLE001 - any pickling failure means the same thing here
            raise HarnessError(f"the {self.profile.workload.name} workload's seeded state cannot be sent to worker processes "
                               f"({type(error).__name__}: {error}); run with --workers 1") from None
        loop = asyncio.get_running_loop()
        self._inbox = asyncio.Queue()
        context = multiprocessing.get_context("spawn")
        self._say(f"starting {self.count} load workers")
        for index in range(self.count):
            spec = WorkerSpec(index=index, count=self.count, profile=self.profile, targets=self._targets, seed=self._seed,
                              trace_ratio=self._trace_ratio, state=self.state, tls=self._tls)
            mine, theirs = context.Pipe(duplex=True)
            process = context.Process(target=worker_main, args=(spec, theirs), name=f"casemesh-worker-{index}", daemon=True)
            process.start()
            theirs.close()  # only the worker holds its end now: its exit shows as EOF here
            worker = _Worker(index, process, mine)
            self._workers.append(worker)
            reader = threading.Thread(target=self._read, args=(loop, worker), name=f"casemesh-worker-{index}-reader", daemon=True)
            reader.start()
            self._readers.append(reader)
        deadline = loop.time() + READY_TIMEOUT_S
        ready = 0
        while ready < self.count:
            index, message = await self._next(deadline, f"the load workers did not all start within {READY_TIMEOUT_S:g} s")
            if message[0] == "ready":
                self._workers[index].pid = message[1]["pid"]
                ready += 1
            else:
                self._fail(index, message)
        self._say(f"{self.count} load workers ready (pids {', '.join(str(w.pid) for w in self._workers)})")

    def _read(self, loop: asyncio.AbstractEventLoop, worker: _Worker) -> None:
        """Reader thread of one worker's pipe: hands each message to the event loop; ``("eof",)`` when the pipe closes."""
        inbox = self._inbox
        while True:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError):
                message = ("eof",)
            try:
                loop.call_soon_threadsafe(inbox.put_nowait, (worker.index, message))
            except RuntimeError:  # the loop is closed: nobody is listening any more
                return
            if message[0] in ("done", "error", "eof"):
                return

    async def _next(self, deadline: float, late: str) -> tuple[int, tuple[Any, ...]]:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(self._inbox.get(), max(deadline - loop.time(), 0.0))
        except asyncio.TimeoutError:
            raise HarnessError(late) from None

    def _fail(self, index: int, message: tuple[Any, ...]) -> None:
        worker = self._workers[index]
        if message[0] == "error":
            raise HarnessError(f"load worker {index} (pid {worker.pid or worker.process.pid}) failed: {message[1]}")
        worker.process.join(1.0)
        raise HarnessError(f"load worker {index} (pid {worker.process.pid}) exited unexpectedly "
                           f"(exit code {worker.process.exitcode}) before sending its results")

    async def run(self, on_tick: Callable[[], None] | None = None) -> RunStats:
        """Start every worker at one instant, follow them, and return their merged stats once all have finished.

        ``on_tick`` is called about once a second with :attr:`stats` and
        :attr:`progress` up to date (to the workers' last snapshots), and a
        last time when the phase is ``done``.
        """
        if not self._workers:
            raise RuntimeError("WorkerPool.run before start")
        profile = self.profile
        total_s = profile.warmup_s + profile.duration_s
        start_at = time.perf_counter() + self.start_delay_s
        self._send_start(start_at)
        progress = self.progress
        progress.started_at = start_at
        progress.phase = "warm-up" if profile.warmup_s > 0 else "measuring"
        loop = asyncio.get_running_loop()
        drain_s = profile.request_timeout_ms / 1000 * 10 + 5  # the driver's own bound on its drain
        deadline = loop.time() + self.start_delay_s + total_s + drain_s + FINISH_MARGIN_S
        next_tick = loop.time() + self.start_delay_s + 1.0
        finished = 0
        dirty = False
        while finished < self.count:
            now = loop.time()
            if now >= next_tick:
                next_tick = max(next_tick + 1.0, now + 0.5)  # a stalled coordinator does not tick in a burst
                if dirty:
                    self._merge_snapshots()
                    dirty = False
                if on_tick:
                    on_tick()
                continue
            if now >= deadline:
                silent = [str(w.index) for w in self._workers if w.final is None]
                raise HarnessError(f"load worker(s) {', '.join(silent)} did not finish within {deadline - start_at + self.start_delay_s:.0f} s")
            try:
                index, message = await asyncio.wait_for(self._inbox.get(), min(next_tick, deadline) - now)
            except asyncio.TimeoutError:
                continue
            worker = self._workers[index]
            kind = message[0]
            if kind == "tick":
                worker.counts, worker.snapshot = message[1], message[2]
                dirty = True
            elif kind == "done":
                worker.counts, worker.info = message[1], message[3]
                worker.final = RunStats.from_wire(message[2])
                worker.snapshot = None
                finished += 1
                dirty = True
            else:
                self._fail(index, message)
        self.stats = merged = RunStats()
        for worker in self._workers:
            merged.merge(worker.final)
        self._sum_counts()
        progress.phase = "done"
        if self.on_snapshot:
            self.on_snapshot(merged, progress)
        if on_tick:
            on_tick()
        self._finished()
        return merged

    def _send_start(self, start_at: float) -> None:
        """Hand every worker the start instant (``time.perf_counter()`` of this machine)."""
        for worker in self._workers:
            worker.conn.send(("start", start_at))

    def _finished(self) -> None:
        """After the final merge: let the worker processes exit."""
        for worker in self._workers:
            worker.process.join(STOP_GRACE_S)

    def _merge_snapshots(self) -> None:
        merged = RunStats()
        for worker in self._workers:
            if worker.final is not None:
                merged.merge(worker.final)
            elif worker.snapshot is not None:
                merged.merge(RunStats.from_wire(worker.snapshot))
        self.stats = merged
        self._sum_counts()
        if self.on_snapshot:
            self.on_snapshot(merged, self.progress)

    def _sum_counts(self) -> None:
        progress = self.progress
        counts = [w.counts for w in self._workers if w.counts]
        for key in ("sent", "completed", "failed", "in_flight", "measured_sent"):
            setattr(progress, key, sum(c[key] for c in counts))
        if len(counts) == self.count:
            progress.phase = min((c["phase"] for c in counts), key=lambda p: PHASES.index(p) if p in PHASES else 0)

    def behind_schedule(self, max_p99_ms: float) -> list[str]:
        """Why the run is invalid on account of single workers: :func:`behind_schedule` of every worker's final send lag."""
        return behind_schedule([(w.index, w.pid, w.final.send_lag if w.final is not None else new_histogram()) for w in self._workers],
                               max_p99_ms)

    def worker_summaries(self) -> list[dict[str, Any]]:
        """One entry per worker for ``result.json``'s ``workers`` (docs/results.md): index, pid, sent, send lag, start skew, CPU."""
        from .result import worker_summary

        return [worker_summary(index=w.index, pid=w.pid, stats=w.final or RunStats(),
                               start_skew_s=w.info.get("start_skew_s"), cpu_s=w.info.get("cpu_s"))
                for w in self._workers]

    def close(self) -> None:
        """Stop every worker still running (SIGTERM, then SIGKILL after :data:`STOP_GRACE_S`) and close the pipes (idempotent)."""
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_S
        for worker in self._workers:
            worker.process.join(max(deadline - time.monotonic(), 0.0))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(1.0)
        for worker in self._workers:
            worker.conn.close()
        for reader in self._readers:
            reader.join(1.0)


def behind_schedule(workers: Sequence[tuple[int, int | None, HdrHistogram]], max_p99_ms: float) -> list[str]:
    """One reason per worker whose send-lag p99 exceeds ``max_p99_ms``: ``(index, pid, send-lag histogram in µs)`` each.

    The reason names the worker (``worker 1 (pid 4242): send lag p99 12.3 ms
    > 10 ms: ...``); an empty list when every worker kept its schedule. A
    worker is judged alone: a merged p99 can stay low while one worker,
    sending every N-th arrival, is behind.
    """
    reasons = []
    for index, pid, lag in workers:
        p99_ms = lag.get_value_at_percentile(99) / 1000 if lag.get_total_count() else 0.0
        if p99_ms > max_p99_ms:
            reasons.append(f"worker {index} (pid {pid}): send lag p99 {p99_ms:.1f} ms > {max_p99_ms:g} ms: "
                           "that load worker fell behind its schedule")
    return reasons


def plan_arrivals(plan: tuple[Schedule, Callable[..., list[Any]]], profile: Any) -> Iterator[tuple[float, str]]:
    """The (intended offset s, journey name) pairs of a plan within ``profile``'s run, drawn as the driver draws them.

    ``plan`` is :meth:`Driver.plan <casemesh.harness.driver.Driver.plan>`'s
    (or :func:`partition_plan`'s) for ``profile``; pairs stop at warm-up +
    duration, or at the schedule's end. For tests and tools that check a
    split against the whole schedule.
    """
    schedule, choose = plan
    names = [j.name for j in profile.journeys]
    cum_weights = list(itertools.accumulate(j.weight for j in profile.journeys))
    end_s = profile.warmup_s + profile.duration_s
    for offset in schedule.offsets:
        if offset >= end_s:
            return
        yield offset, (choose(names, cum_weights=cum_weights)[0] if len(names) > 1 else names[0])
