"""Event-loop lag and garbage-collector pauses of one process, as Prometheus histograms and a per-second series.

Every casemesh service process (:func:`casemesh.services.runtime.server.serve`)
and the harness (``casemesh run``) run one :class:`LoopProbe` on their event
loop. It measures two things that stall every call a process serves, whatever
the call does:

- **Event-loop lag**: a timer due every :data:`DEFAULT_INTERVAL_S` (5 ms)
  records how late it ran (``time.perf_counter()`` when it ran minus when it
  was due, never below 0). A callback that blocks the loop for 50 ms (a
  flush, a sweep, a synchronous lock, a ``time.sleep``) makes the next tick
  about 50 ms late. One observation per tick, so a long stall is one large
  value, not many. Resolution: uvloop's timers have 1 ms granularity (its
  clock is in whole milliseconds and it rounds delays), so lags below about
  1 ms are timer jitter, not stalls; a 5 ms period rather than 1 ms because
  uvloop turns sub-millisecond sleeps into busy loops (docs/benchmarks.md).
- **GC pauses**: ``gc.callbacks`` gives each collection's start and stop; the
  time between is a pause of every Python thread of the process (the
  collector holds the GIL), recorded with its generation (0, 1, 2). The
  callback only appends to a deque (it may run in any thread, in the middle
  of anything, including a ``prometheus_client`` lock held by the same
  thread); the next tick moves the pauses into the histograms.

Prometheus families (in the process's default registry for services, in the
harness's own registry for the harness):

=====================================  =========  ==============  ==============================================
family                                 type       labels          what
=====================================  =========  ==============  ==============================================
``casemesh_event_loop_lag_seconds``    histogram  (none)          lateness of each probe tick
``casemesh_gc_pause_seconds``          histogram  ``generation``  duration of each collection (0, 1 or 2)
=====================================  =========  ==============  ==============================================

Buckets (:data:`LAG_BUCKETS_S`, :data:`GC_BUCKETS_S`) run from 0.1 ms to 1 s.
The three ``generation`` series exist from the start (0 until a collection).

**Per-second series.** When ``CASEMESH_LOOP_SERIES`` names a file (the
harness sets it for each process it starts: ``OUT/logs/<process>.loop.jsonl``),
the probe appends one JSON line per second of wall time (:data:`SERIES_FIELDS`)::

    {"process": "urlshortener", "pid": 4242, "t": 81234.52, "unix": 1764627012.31, "window_s": 1.001,
     "ticks": 199, "lag_max_ms": 1.21, "lag_p99_ms": 0.98, "lag_hist": {"170": 12, ...},
     "gc_count": [31, 2, 0], "gc_ms": [1.9, 0.4, 0.0], "gc_max_ms": 0.31, "rss_bytes": 91226112}

``t`` is ``time.perf_counter()`` (CLOCK_MONOTONIC, the same clock in every
process of the machine, and the harness driver's) at the end of the window
``[t - window_s, t]``, ``unix`` the wall-clock time then. ``lag_p99_ms`` and
``lag_max_ms`` are exact over the window's ticks; ``lag_hist`` counts them
in log buckets (:func:`lag_bucket`, 16 per doubling of the lag in µs, ±2.2 %)
so that percentiles over any span of seconds can be read back
(:func:`lag_percentiles`). ``gc_count``/``gc_ms`` are per generation.
``rss_bytes`` is the process's resident set size when the line was written
(:func:`resident_bytes`; ``null`` where the system does not say). A
window holding a stall longer than a second is longer than a second: the
next line is written by the first tick after the stall.

**Cost** (``benchmarks/loop_probe_cost.py --seconds 10 --repeat 5``, the
2-vCPU AMD EPYC VM of docs/benchmarks.md while other jobs loaded it, uvloop;
docs/benchmarks.md, "The event-loop probe's own cost"):

- in a process with work, nothing measurable: a bare echo server at 1,000
  requests/s spent 0.580 CPU-ms per request with the probe on and 0.586 with
  it off (medians of 5 alternating 10 s phases in one process; phases vary by
  ±8 %);
- in an idle process, 25 CPU-ms per second (2.5 % of a core), of which 20 are
  the wake-ups of any 5 ms timer (a ``call_later`` chain doing nothing costs
  that) and 6 the probe's own work (≈ 30 µs per tick with cold caches, ≈ 4.5 µs
  warm). ``CASEMESH_LOOP_PROBE_MS=20`` makes both about four times smaller.

The tick avoids ``prometheus_client.Histogram.observe`` (a lock and a Python
loop over the buckets per call): :class:`LoopMetrics` is a custom collector
whose counts a ``bisect`` increments, turned into buckets when scraped.

Settings, from the environment: ``CASEMESH_LOOP_PROBE_MS`` the tick period
in ms (default 5; ``0`` turns the probe off), ``CASEMESH_LOOP_SERIES`` the
series file (default: none).
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import gc
import json
import math
import os
import time
import weakref
from pathlib import Path
from collections.abc import Iterator
from typing import Any, TextIO

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

#: Environment: tick period in ms (``0`` turns the probe off).
INTERVAL_ENV = "CASEMESH_LOOP_PROBE_MS"
#: Environment: the per-second series file (JSON lines, appended).
SERIES_ENV = "CASEMESH_LOOP_SERIES"
#: Tick period by default (s). uvloop rounds sleeps below 1 ms to 0: a shorter period spins.
DEFAULT_INTERVAL_S = 0.005
#: Lag buckets (s): 0.1 ms to 1 s.
LAG_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: GC pause buckets (s): 0.1 ms to 1 s.
GC_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
#: Fields of one line of the per-second series, in order.
SERIES_FIELDS = ("process", "pid", "t", "unix", "window_s", "ticks", "lag_max_ms", "lag_p99_ms", "lag_hist",
                 "gc_count", "gc_ms", "gc_max_ms", "rss_bytes")
#: Family names, as dashboards use them.
LAG_FAMILY = "casemesh_event_loop_lag_seconds"
GC_FAMILY = "casemesh_gc_pause_seconds"
#: Log buckets per doubling of the lag in ``lag_hist``.
LAG_BUCKETS_PER_OCTAVE = 16
GENERATIONS = (0, 1, 2)


class LoopMetrics(Collector):
    """The two Prometheus families of the loop probes of one registry (see the module docstring); get it with :func:`loop_metrics`.

    A custom collector, as the harness's (harness/metrics.py): a tick adds 1
    to a list slot found by ``bisect`` (no lock, no ``Histogram.observe``,
    which costs a lock and a Python loop over the buckets per call), and a
    scrape turns the counts into cumulative buckets. The counts only grow.
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.lag_counts = [0] * (len(LAG_BUCKETS_S) + 1)  # last slot: above the highest bound
        self.lag_sum_s = 0.0
        self.gc_counts = [[0] * (len(GC_BUCKETS_S) + 1) for _ in GENERATIONS]
        self.gc_sum_s = [0.0 for _ in GENERATIONS]
        if registry is not None:
            registry.register(self)

    def observe_lag(self, lag_s: float) -> None:
        """Count one tick's lag (s)."""
        self.lag_counts[bisect.bisect_left(LAG_BUCKETS_S, lag_s)] += 1
        self.lag_sum_s += lag_s

    def observe_gc(self, generation: int, pause_s: float) -> None:
        """Count one collection of ``generation`` (0-2) that paused the process ``pause_s`` seconds."""
        self.gc_counts[generation][bisect.bisect_left(GC_BUCKETS_S, pause_s)] += 1
        self.gc_sum_s[generation] += pause_s

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(LAG_FAMILY, _LAG_HELP, unit="seconds"),
                HistogramMetricFamily(GC_FAMILY, _GC_HELP, labels=("generation",), unit="seconds")]

    def collect(self) -> Iterator[Metric]:
        lag = HistogramMetricFamily(LAG_FAMILY, _LAG_HELP, unit="seconds")
        lag.add_metric((), _cumulative(self.lag_counts[:], _LAG_LE), self.lag_sum_s)
        pauses = HistogramMetricFamily(GC_FAMILY, _GC_HELP, labels=("generation",), unit="seconds")
        for generation in GENERATIONS:
            pauses.add_metric((str(generation),), _cumulative(self.gc_counts[generation][:], _GC_LE), self.gc_sum_s[generation])
        yield lag
        yield pauses


_LAG_HELP = "How late the event-loop probe's timer ran after it was due (one observation per tick, every 5 ms)."
_GC_HELP = "Duration of each garbage collection (every Python thread of the process is paused), by generation."
_LAG_LE = tuple(floatToGoString(b) for b in LAG_BUCKETS_S)
_GC_LE = tuple(floatToGoString(b) for b in GC_BUCKETS_S)


def _cumulative(counts: list[int], bounds: tuple[str, ...]) -> list[tuple[str, int]]:
    buckets, running = [], 0
    for le, count in zip((*bounds, "+Inf"), counts):
        running += count
        buckets.append((le, running))
    return buckets


_metrics: weakref.WeakKeyDictionary[CollectorRegistry, LoopMetrics] = weakref.WeakKeyDictionary()


def loop_metrics(registry: CollectorRegistry = REGISTRY) -> LoopMetrics:
    """The families in ``registry``, created on first use (once per registry)."""
    metrics = _metrics.get(registry)
    if metrics is None:
        metrics = _metrics[registry] = LoopMetrics(registry)
    return metrics


def lag_bucket(lag_s: float) -> int:
    """The ``lag_hist`` bucket of a lag: ``floor(16 * log2(lag in µs))``, 0 for lags below 1 µs."""
    lag_us = lag_s * 1e6
    return int(LAG_BUCKETS_PER_OCTAVE * math.log2(lag_us)) if lag_us > 1 else 0


def lag_bucket_ms(bucket: int) -> float:
    """The lag a ``lag_hist`` bucket stands for, in ms: its geometric middle (within ±2.2 % of every lag in it)."""
    return 2 ** ((bucket + 0.5) / LAG_BUCKETS_PER_OCTAVE) / 1000


def lag_percentiles(hist: dict[int, int], percentiles: tuple[float, ...]) -> list[float | None]:
    """Percentiles (0-100) in ms of a ``lag_hist`` (summed over any lines, keys as ints); ``None`` when empty."""
    total = sum(hist.values())
    if not total:
        return [None for _ in percentiles]
    ordered = sorted(hist.items())
    values: list[float | None] = []
    for percentile in percentiles:
        rank, running = max(1, math.ceil(total * percentile / 100)), 0
        for bucket, count in ordered:
            running += count
            if running >= rank:
                values.append(lag_bucket_ms(bucket))
                break
    return values


class LoopProbe:
    """The lag timer and GC hooks of one event loop (see the module docstring).

    ``interval_s``: tick period (s, > 0). ``metrics``: the families to
    observe into (default: the process registry's). ``series``: the
    per-second JSON-lines file, appended to (``None``: none). ``process``:
    the name written into each line. :meth:`start` on the running loop,
    :meth:`stop` on the same loop. ``ValueError`` for ``interval_s <= 0``.

    ``max_lag_s``, ``ticks`` and ``gc_pauses`` (``[(generation, seconds)]``
    of the last 1,000 collections) are what it measured since :meth:`start`.
    """

    def __init__(self, *, interval_s: float = DEFAULT_INTERVAL_S, metrics: LoopMetrics | None = None,
                 series: Path | str | None = None, process: str = ""):
        if not interval_s > 0:
            raise ValueError(f"interval_s: must be > 0 s, got {interval_s!r}")
        self.interval_s = interval_s
        self.metrics = metrics or loop_metrics()
        self.series_path = Path(series) if series else None
        self.process = process
        self.max_lag_s = 0.0
        self.ticks = 0
        self.gc_pauses: collections.deque[tuple[int, float]] = collections.deque(maxlen=1000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._pending_gc: collections.deque[tuple[int, float]] = collections.deque(maxlen=10_000)  # bounded if ticks stop
        self._gc_started = 0.0
        self._series: TextIO | None = None
        self._window_start = 0.0
        self._window_lags: list[float] = []
        self._window_gc_count = [0, 0, 0]
        self._window_gc_s = [0.0, 0.0, 0.0]
        self._window_gc_max_s = 0.0
        self._users = 0

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        """Start ticking on the running loop and hook the collector (``RuntimeError`` outside a running loop)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        if self.series_path is not None:
            self.series_path.parent.mkdir(parents=True, exist_ok=True)
            self._series = self.series_path.open("a", encoding="utf-8")
        gc.callbacks.append(self._on_gc)
        self._window_start = time.perf_counter()
        self._schedule(self._window_start)

    def stop(self) -> None:
        """Stop ticking, unhook the collector, write the last partial second (idempotent)."""
        if self._loop is None:
            return
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        try:
            gc.callbacks.remove(self._on_gc)
        except ValueError:
            pass
        self._drain_gc()
        now = time.perf_counter()
        if self._window_lags or any(self._window_gc_count):
            self._flush(now)
        if self._series is not None:
            self._series.close()
            self._series = None
        self._loop = None

    # -- the timer ----------------------------------------------------------------------------------

    def _schedule(self, now: float) -> None:
        self._due = now + self.interval_s
        self._handle = self._loop.call_later(self.interval_s, self._tick)  # type: ignore[union-attr]

    def _tick(self) -> None:
        now = time.perf_counter()
        lag = now - self._due
        if lag < 0:  # uvloop fires up to 1 ms early (whole-ms clock)
            lag = 0.0
        self.metrics.observe_lag(lag)
        self.ticks += 1
        if lag > self.max_lag_s:
            self.max_lag_s = lag
        self._window_lags.append(lag)
        if self._pending_gc:
            self._drain_gc()
        if now - self._window_start >= 1.0:
            self._flush(now)
        self._schedule(now)

    # -- the collector ------------------------------------------------------------------------------

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        # Any thread, at any allocation: touch nothing that takes a lock.
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self._pending_gc.append((info.get("generation", 0), time.perf_counter() - self._gc_started))

    def _drain_gc(self) -> None:
        pending = self._pending_gc
        while pending:
            generation, pause = pending.popleft()
            generation = min(max(generation, 0), 2)
            self.metrics.observe_gc(generation, pause)
            self.gc_pauses.append((generation, pause))
            self._window_gc_count[generation] += 1
            self._window_gc_s[generation] += pause
            if pause > self._window_gc_max_s:
                self._window_gc_max_s = pause

    # -- the series ---------------------------------------------------------------------------------

    def _flush(self, now: float) -> None:
        lags = self._window_lags
        if self._series is not None:
            lags.sort()
            hist: dict[int, int] = {}
            for lag in lags:
                bucket = lag_bucket(lag)
                hist[bucket] = hist.get(bucket, 0) + 1
            line = {
                "process": self.process, "pid": os.getpid(), "t": round(now, 4), "unix": round(time.time(), 4),
                "window_s": round(now - self._window_start, 4), "ticks": len(lags),
                "lag_max_ms": round(lags[-1] * 1000, 3) if lags else None,
                "lag_p99_ms": round(lags[max(0, math.ceil(len(lags) * 0.99) - 1)] * 1000, 3) if lags else None,
                "lag_hist": hist,
                "gc_count": self._window_gc_count, "gc_ms": [round(s * 1000, 3) for s in self._window_gc_s],
                "gc_max_ms": round(self._window_gc_max_s * 1000, 3),
                "rss_bytes": resident_bytes(),
            }
            self._series.write(json.dumps(line, separators=(",", ":")) + "\n")
            self._series.flush()
        self._window_start = now
        self._window_lags = []
        self._window_gc_count = [0, 0, 0]
        self._window_gc_s = [0.0, 0.0, 0.0]
        self._window_gc_max_s = 0.0

    # -- one probe per loop -------------------------------------------------------------------------

    def release(self) -> None:
        """Give back a probe from :func:`shared_probe`; the last release stops it."""
        self._users -= 1
        if self._users <= 0:
            _shared.pop(id(self._loop), None)
            self.stop()


_shared: dict[int, LoopProbe] = {}


def shared_probe(process: str, *, metrics: LoopMetrics | None = None) -> LoopProbe | None:
    """The running loop's probe, started with the environment's settings on first use; ``None`` when turned off.

    Several servers in one process (tests, ``casemesh serve`` of several
    services) share one probe: each caller :meth:`~LoopProbe.release`\\ s it when
    done. ``ValueError`` naming ``CASEMESH_LOOP_PROBE_MS`` when it is not a number ≥ 0.
    """
    interval_s = interval_from_env()
    if interval_s is None:
        return None
    loop = asyncio.get_running_loop()
    probe = _shared.get(id(loop))
    if probe is None or probe._loop is not loop:  # none yet, or one left on a closed loop whose id was reused
        probe = _shared[id(loop)] = LoopProbe(interval_s=interval_s, metrics=metrics,
                                              series=os.environ.get(SERIES_ENV) or None, process=process)
        probe.start()
    probe._users += 1
    return probe


def resident_bytes() -> int | None:
    """This process's resident set size now (bytes), from ``/proc/self/statm`` (Linux); ``None`` elsewhere.

    The same figure as prometheus-client's ``process_resident_memory_bytes``,
    read once a second by the probe for the per-second series.
    """
    try:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return None


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def interval_from_env() -> float | None:
    """The tick period (s) from ``CASEMESH_LOOP_PROBE_MS`` (default 5 ms); ``None`` when it is 0 (probe off)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        interval_ms = float(raw)
    except ValueError:
        raise ValueError(f"{INTERVAL_ENV}: expected a tick period in ms (0 turns the probe off), got {raw!r}") from None
    if interval_ms < 0 or not math.isfinite(interval_ms):
        raise ValueError(f"{INTERVAL_ENV}: expected a tick period in ms ≥ 0, got {raw!r}")
    return interval_ms / 1000 if interval_ms else None


def read_series(path: Path | str) -> list[dict[str, Any]]:
    """The lines of a series file (:data:`SERIES_FIELDS`), ``lag_hist`` keys as ints; a torn last line is skipped.

    ``OSError`` when the file cannot be read.
    """
    lines = []
    with open(path, encoding="utf-8") as file:
        for text in file:
            try:
                line = json.loads(text)
            except json.JSONDecodeError:
                continue  # a process killed mid-write
            line["lag_hist"] = {int(k): v for k, v in line.get("lag_hist", {}).items()}
            lines.append(line)
    return lines
