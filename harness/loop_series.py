"""Event-loop lag, GC pauses and resident memory of every process of a run, per second on the run's time axis: ``event_loop``.

``result.json``'s ``event_loop`` object.

During ``casemesh run`` each embedded service (``OUT/logs/<service>.loop.jsonl``,
set by :class:`~casemesh.harness.mesh.Mesh`) and the harness itself
(``OUT/logs/harness.loop.jsonl``, :func:`start_harness_probe`) append one line
per second of their loop probe (:mod:`casemesh.services.runtime.loop_probe`).
After the run :func:`event_loop_summary` reads them back onto the driver's
time axis, the one of ``series`` and ``timeline``: second ``i`` is
``[i, i + 1)`` s from the driver's start.

**Alignment.** A line covers ``[t - window_s, t]`` in ``time.perf_counter()``
(CLOCK_MONOTONIC, shared by every process of the machine and by the driver's
start instant). It goes to the second holding the middle of its last second,
``floor(t - 0.5 - start)``: within half a second of the latency series. Two
lines landing in one second merge (highest ``lag_max_ms`` and ``lag_p99_ms``,
GC summed). Lines before the start (start-up, seeding) and after the series'
last second are left out; so are lines older than the run (a reused ``--out``).

Shape (docs/results.md)::

    "event_loop": {
      "interval_s": 1, "probe_interval_ms": 5, "seconds": N,
      "processes": {
        "harness" | SERVICE: {
          "pids": [4242],
          "lag_p99_ms": [0.9, ...], "lag_max_ms": [1.2, ...],   # per second, null where the process sent no line
          "gc_count": [31, ...], "gc_ms": [2.3, ...],           # per second, all generations
          "rss_mb": [87.1, ...],                                # per second, resident set size (MiB), the highest line
          "measured": {"ticks", "lag_p50_ms", "lag_p99_ms", "lag_max_ms",  # over the measured window
                       "gc_count", "gc_ms", "gc_max_ms", "gc_per_s", "gc_ms_per_s",
                       "gc_by_generation": {"0": {"count", "ms"}, "1": {...}, "2": {...}},
                       "rss_start_mb", "rss_max_mb"}}}}      # RSS in the first measured second, and its highest

``measured`` percentiles come from the lines' log buckets (±2.2 %); maxima
are exact.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from casemesh.services.runtime.loop_probe import (
    INTERVAL_ENV, LoopMetrics, LoopProbe, interval_from_env, lag_percentiles, read_series,
)

from .errors import ConfigError

#: Suffix of the series files under ``OUT/logs``.
SERIES_SUFFIX = ".loop.jsonl"
#: Process name of the harness's own series.
HARNESS = "harness"


def start_harness_probe(metrics: LoopMetrics, logs_dir: Path) -> LoopProbe | None:
    """Start the harness's probe on the running loop: ``metrics`` (the harness registry's) and ``logs_dir/harness.loop.jsonl``.

    ``None`` when ``CASEMESH_LOOP_PROBE_MS=0`` turns probes off. Stop it with
    :meth:`~casemesh.services.runtime.loop_probe.LoopProbe.stop` after the load.
    ``ConfigError`` naming ``CASEMESH_LOOP_PROBE_MS`` when it is not a number ≥ 0.
    """
    try:
        interval_s = interval_from_env()
    except ValueError as error:
        raise ConfigError(str(error).removeprefix(f"{INTERVAL_ENV}: "), field=INTERVAL_ENV) from None
    if interval_s is None:
        return None
    probe = LoopProbe(interval_s=interval_s, metrics=metrics, series=logs_dir / f"{HARNESS}{SERIES_SUFFIX}", process=HARNESS)
    probe.start()
    return probe


def event_loop_summary(logs_dir: Path, *, started_at: float, seconds: int, warmup_s: float, measured_end_s: float,
                       not_before_unix: float | None = None) -> dict[str, Any] | None:
    """The ``event_loop`` object from every ``*.loop.jsonl`` under ``logs_dir``; ``None`` when there is none.

    ``started_at``: the driver's start (``time.perf_counter()``); ``seconds``:
    length of the per-second lists (``series.seconds``); the measured window
    is ``[warmup_s, measured_end_s)`` s from the start. Lines written before
    ``not_before_unix`` (wall clock; a previous run into the same ``--out``)
    are skipped. Unreadable files are skipped.
    """
    processes: dict[str, Any] = {}
    for path in sorted(logs_dir.glob(f"*{SERIES_SUFFIX}")) if logs_dir.is_dir() else ():
        try:
            lines = read_series(path)
        except OSError:
            continue
        if not_before_unix is not None:
            lines = [line for line in lines if line.get("unix", 0) >= not_before_unix]
        summary = process_summary(lines, started_at=started_at, seconds=seconds, warmup_s=warmup_s, measured_end_s=measured_end_s)
        if summary is not None:
            processes[path.name.removesuffix(SERIES_SUFFIX)] = summary
    if not processes:
        return None
    interval_s = interval_from_env()
    return {
        "interval_s": 1,
        "probe_interval_ms": None if interval_s is None else round(interval_s * 1000, 3),
        "seconds": seconds,
        "processes": dict(sorted(processes.items(), key=lambda item: (item[0] != HARNESS, item[0]))),
    }


def process_summary(lines: list[Mapping[str, Any]], *, started_at: float, seconds: int, warmup_s: float,
                    measured_end_s: float) -> dict[str, Any] | None:
    """One process's entry of ``processes`` from its series lines; ``None`` when none falls in the run's seconds."""
    lag_p99: list[float | None] = [None] * seconds
    lag_max: list[float | None] = [None] * seconds
    gc_count: list[int | None] = [None] * seconds
    gc_ms: list[float | None] = [None] * seconds
    rss_mb: list[float | None] = [None] * seconds
    pids: list[int] = []
    hist: dict[int, int] = {}
    measured = {"ticks": 0, "lag_max_ms": None, "gc_count": [0, 0, 0], "gc_ms": [0.0, 0.0, 0.0], "gc_max_ms": 0.0,
                "rss_start_mb": None, "rss_max_mb": None}
    used = 0
    for line in lines:
        second = math.floor(line["t"] - 0.5 - started_at)
        if not 0 <= second < seconds:
            continue
        used += 1
        if line.get("pid") is not None and line["pid"] not in pids:
            pids.append(line["pid"])
        lag_p99[second] = _higher(lag_p99[second], line.get("lag_p99_ms"))
        lag_max[second] = _higher(lag_max[second], line.get("lag_max_ms"))
        gc_count[second] = (gc_count[second] or 0) + sum(line.get("gc_count", ()))
        gc_ms[second] = round((gc_ms[second] or 0.0) + sum(line.get("gc_ms", ())), 3)
        rss = None if line.get("rss_bytes") is None else round(line["rss_bytes"] / 2**20, 1)
        rss_mb[second] = _higher(rss_mb[second], rss)
        if warmup_s <= second < measured_end_s:
            if measured["rss_start_mb"] is None:
                measured["rss_start_mb"] = rss
            measured["rss_max_mb"] = _higher(measured["rss_max_mb"], rss)
            measured["ticks"] += line.get("ticks", 0)
            measured["lag_max_ms"] = _higher(measured["lag_max_ms"], line.get("lag_max_ms"))
            for bucket, count in line.get("lag_hist", {}).items():
                hist[bucket] = hist.get(bucket, 0) + count
            for generation, (count, ms) in enumerate(zip(line.get("gc_count", ()), line.get("gc_ms", ()))):
                measured["gc_count"][generation] += count
                measured["gc_ms"][generation] += ms
            measured["gc_max_ms"] = max(measured["gc_max_ms"], line.get("gc_max_ms") or 0.0)
    if not used:
        return None
    p50, p99 = lag_percentiles(hist, (50.0, 99.0))
    window_s = max(measured_end_s - warmup_s, 0.0)
    total_count, total_ms = sum(measured["gc_count"]), sum(measured["gc_ms"])
    return {
        "pids": pids,
        "lag_p99_ms": lag_p99, "lag_max_ms": lag_max, "gc_count": gc_count, "gc_ms": gc_ms, "rss_mb": rss_mb,
        "measured": {
            "ticks": measured["ticks"],
            "lag_p50_ms": None if p50 is None else round(p50, 3),
            "lag_p99_ms": None if p99 is None else round(p99, 3),
            "lag_max_ms": measured["lag_max_ms"],
            "gc_count": total_count,
            "gc_ms": round(total_ms, 3),
            "gc_max_ms": round(measured["gc_max_ms"], 3),
            "gc_per_s": round(total_count / window_s, 2) if window_s else None,
            "gc_ms_per_s": round(total_ms / window_s, 3) if window_s else None,
            "gc_by_generation": {str(g): {"count": c, "ms": round(ms, 3)}
                                 for g, (c, ms) in enumerate(zip(measured["gc_count"], measured["gc_ms"]))},
            "rss_start_mb": measured["rss_start_mb"],
            "rss_max_mb": measured["rss_max_mb"],
        },
    }


def _higher(current: float | None, value: float | None) -> float | None:
    if value is None:
        return current
    return value if current is None or value > current else current


def run_event_loop(logs_dir: Path, *, stats: Any, profile: Any, driver_started_at: float, not_before_unix: float) -> dict[str, Any] | None:
    """:func:`event_loop_summary` on the time axis of a finished run: its ``RunStats`` and profile give the seconds and the measured window."""
    timeline = stats.timeline
    measured_s = timeline.measured_s if timeline.ended_early else profile.duration_s
    return event_loop_summary(logs_dir, started_at=driver_started_at, seconds=max(len(timeline.intended), stats.series.seconds),
                              warmup_s=profile.warmup_s, measured_end_s=profile.warmup_s + measured_s,
                              not_before_unix=not_before_unix)
