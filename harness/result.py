"""The versioned JSON result of a run (``OUT/result.json``), documented in docs/results.md.

Shape (schema_version 1)::

    {
      "schema_version": 1,
      "casemesh_version": "0.1.0",
      "profile": {"name", "path", "workload", "arrival": {"process", ...that process's fields},
                  "warmup_s", "duration_s", "request_timeout_ms", "journeys": {name: weight}},
      "target": {"mode": "embedded" | "external", "services": {name: "host:port"}},
      "environment": {"python", "platform", "cpus", "grpcio"},
      "started_at": "2026-11-22T02:10:00Z",
      "passed": true,                      # every evaluated SLO passed and the run is valid
      "valid": true, "invalid_reasons": [],
      "throughput": {"offered_rps", "completed_rps", "measured_s"},   # offered: mean intended rate over the measured window
      "send_lag": {"count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"},
      "workers": [{"index", "pid", "sent", "send_lag": {...as send_lag}, "start_skew_ms", "cpu_s"}],  # one per load process
      "rpcs":     {"pkg.Service/Method": CALLS},
      "journeys": {"name": CALLS},
      "slos": [{"name", "display_name", "passed", "objective", "target", "measured",
                "good", "total", "error_budget", "budget_burnt", "note",
                "source", "twin_of", "evaluated"}],
      "prometheus": null | {"mode": "embedded" | "external", "url",
                            "window": {"start", "end", "start_unix", "end_unix", "seconds", "duration"},
                            "directory", "config", "data_dir", "reopen"},   # the last four: embedded only
      "timeline": TIMELINE,                # per second of the whole run, warm-up included
      "series": SERIES,                    # per second of the whole run: latency percentiles and errors per RPC and journey
      "event_loop": null | EVENT_LOOP,     # per process per second: event-loop lag and GC pauses (harness/loop_series.py)
      "tail_breakdown": {JOURNEY: BREAKDOWN},  # where the sampled tail journeys' time went, by hop (harness/tail_breakdown.py)
      "faults": [FAULT]                    # only with faults: planned/actual interval, errors in it (harness/faults/summary.py)
    }

    CALLS = {"count", "ok", "errors": {"NOT_FOUND": 12, ...}, "harness_side": {"DEADLINE_EXCEEDED": 3, ...}, "throughput_rps",
             "p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
             "histogram": "HISTFAAAA..."}
    rpcs[m] of a server-streaming method also has
             "first_message": {"count", "p50_ms", ..., "histogram"}   # time to its first message
    journeys[j] also has
             "slowest_traces": [{"trace_id": "32 hex", "latency_ms", "code"}]  # sampled journeys, slowest first
    # harness_side: of the errors, those the harness caused (a deadline expiry its event loop saw far past the
    # deadline: harness.driver.harness_caused); they keep their gRPC status code in "errors".

    TIMELINE = {"interval_s": 1, "warmup_s", "planned_end_s", "end_s", "ended_early", "abandoned_at_s", "abandoned_behind_s",
                "intended_total", "sent_total", "completed_total", "completed_after_end",
                "max_shortfall": {"second", "shortfall", "intended", "sent"},
                "warmup": [true, ..., false], "intended": [800, ...], "sent": [800, ...], "completed": [797, ...]}
    # intended[i]: arrivals due in second i; sent[i]: dispatched in second i; completed[i]: journeys finished
    # in second i. end_s < planned_end_s (ended_early) when a trace ended first: sending stopped there and
    # throughput.measured_s is end_s - warmup_s instead of duration_s. abandoned_at_s (null unless) is when the
    # driver stopped sending because it was abandoned_behind_s seconds behind its schedule: the run is invalid.

    SERIES = {"interval_s": 1, "seconds": N, "warmup": [true, ..., false],
              "resolution": {"buckets_per_octave": 32, "relative_error": 0.0109},
              "rpcs": {"pkg.Service/Method": POINTS}, "journeys": {"name": POINTS}}
    POINTS = {"count": [n, ...], "p50_ms": [ms | null, ...], "p90_ms": [...], "p99_ms": [...], "max_ms": [...],
              "errors": {"NOT_FOUND": [n, ...], ...}}
    # entry i: the calls that ended in second [i, i + 1) of the run, warm-up included; percentiles from
    # log buckets (32 per doubling) read at their geometric middle: within ±1.1 %; null when no call ended.

    EVENT_LOOP = {"interval_s": 1, "probe_interval_ms": 5.0, "seconds": N,
                  "processes": {"harness" | SERVICE: {"pids", "lag_p99_ms": [...], "lag_max_ms": [...],
                                                      "gc_count": [...], "gc_ms": [...], "measured": {...}}}}
    # entry i: second [i, i + 1) of the run, as in SERIES (within 0.5 s); null where the process wrote no line.

Latencies are in milliseconds, from the intended send time, over every call
(OK and not); ``errors`` counts calls per non-OK status code name;
``histogram`` is the HdrHistogram (µs, 3 significant figures) in its
compressed base64 encoding, so runs can be merged and re-analysed exactly.
"""

from __future__ import annotations

import itertools
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from hdrh.histogram import HdrHistogram

from .stats import OK, SERIES_BUCKETS_PER_OCTAVE, CallStats, LatencySeries, RunSeries, RunStats, Timeline, series_percentiles

SCHEMA_VERSION = 1
PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p95_ms", 95.0), ("p99_ms", 99.0), ("p999_ms", 99.9))


def latency_summary(histogram: HdrHistogram, *, mean: bool = True) -> dict[str, float | int | None]:
    """Count and p50/p90/p95/p99/p99.9/max/mean in ms of a µs histogram (``None`` values when empty).

    The percentiles come from one pass over the histogram (``get_percentile_to_value_dict``):
    one ``get_value_at_percentile`` per percentile costs a pass each, tens of ms for
    second-long latencies, which the live view cannot afford on the driver's event loop.
    """
    count = histogram.get_total_count()
    summary: dict[str, float | int | None] = {"count": count}
    values = histogram.get_percentile_to_value_dict([p for _, p in PERCENTILES]) if count else {}
    for key, percentile in PERCENTILES:
        summary[key] = round(values[percentile] / 1000, 3) if count else None
    summary["max_ms"] = round(histogram.get_max_value() / 1000, 3) if count else None
    if mean:  # a pass over the counts array: skipped by the live view
        summary["mean_ms"] = round(histogram_mean(histogram) / 1000, 3) if count else None
    return summary


def histogram_mean(histogram: HdrHistogram) -> float:
    """The mean of a non-empty histogram's values, as ``HdrHistogram.get_mean_value`` computes it (µs here).

    Each count at the midpoint of its bucket's range of equivalent values.
    hdrh's own method walks an iterator over every bucket up to the highest
    value (140,000 steps of Python for a 60 s range: 0.37 s per histogram,
    seconds per run); this reads the counts array up to the highest value once
    and converts only the buckets that hold values.
    """
    total = 0
    last = histogram.get_counts_array_index(histogram.get_max_value())
    for index, count in enumerate(itertools.islice(histogram.counts, last + 1)):
        if count:
            value = histogram.get_value_from_index(index)
            lowest = histogram.get_lowest_equivalent_value(value)
            size = histogram.get_highest_equivalent_value(value) - lowest + 1
            total += (lowest + (size >> 1)) * count
    return total / histogram.get_total_count()


def calls_summary(stats: CallStats, measured_s: float) -> dict[str, Any]:
    """The CALLS object of one RPC or journey."""
    merged = stats.merged()
    summary = latency_summary(merged)
    count = summary["count"] or 0
    return {
        "count": count,
        "ok": stats.count([OK]),
        "errors": stats.errors(),
        "harness_side": dict(sorted(stats.harness_side.items())),
        "throughput_rps": round(count / measured_s, 2) if measured_s > 0 else None,
        **{k: v for k, v in summary.items() if k != "count"},
        "histogram": encode_histogram(merged),
    }


def encode_histogram(histogram: HdrHistogram) -> str:
    """``histogram`` in HdrHistogram's compressed base64 encoding (µs values; ``hdrh`` ``decode``/``decode_and_add`` read it)."""
    encoded = histogram.encode()
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def build_result(*, profile: Any, stats: RunStats, verdicts: list[Any], target: dict[str, Any],
                 started_at: datetime, valid: bool, invalid_reasons: list[str],
                 prometheus: dict[str, Any] | None = None, workers: list[dict[str, Any]] | None = None,
                 event_loop: dict[str, Any] | None = None, environment: dict[str, Any] | None = None,
                 plan: dict[str, Any] | None = None, strict: bool = False,
                 tail_breakdown: dict[str, Any] | None = None) -> dict[str, Any]:
    """The result document of a finished run.

    ``prometheus`` describes the Prometheus server the run's Prometheus SLOs
    were evaluated against (``None`` when there was none). SLO verdicts that
    were not evaluated (``evaluated: false``) do not count towards ``passed``.
    ``workers`` are the load processes' :func:`worker_summary` entries; by
    default the run was one process, whose entry is made from ``stats``.
    ``event_loop`` is :func:`~casemesh.harness.loop_series.event_loop_summary`'s
    object (``None``: no process wrote a loop series).
    ``environment`` adds to ``environment`` what the run knew of its machine
    (``machine``, ``calibration``, ``control``, ``stalls``, ``cpu``, ``noisy``:
    docs/results.md); ``plan`` is how the rate and the load processes were
    chosen. An SLO verdict that is ``inconclusive`` (missed where the machine
    explains it, harness/floor.py) does not fail the run unless ``strict``.
    ``tail_breakdown`` is :func:`~casemesh.harness.tail_breakdown.breakdown`'s object (``{}``: no sampled journey).
    """
    # A trace that ends before warm-up + duration stops the sending early: the measured window is shorter.
    # So does a driver that abandons the run (it fell too far behind: harness/driver.py).
    measured_s = (stats.timeline.measured_s if stats.timeline.ended_early or stats.timeline.abandoned_at_s is not None
                  else profile.duration_s)
    # Journeys of the profile only: journey-defined measures (Caller.observe) share stats.journeys.
    completed = sum(stats.journeys[j.name].count() for j in profile.journeys if j.name in stats.journeys)
    slos = [v.to_dict() for v in verdicts]
    return {
        "schema_version": SCHEMA_VERSION,
        "casemesh_version": _version("casemesh"),
        "profile": {
            "name": profile.name,
            "path": str(profile.path),
            "workload": profile.workload.name,
            "arrival": {"process": profile.arrival.process, **profile.arrival.model_dump(mode="json")},
            "warmup_s": profile.warmup_s,
            "duration_s": profile.duration_s,
            "request_timeout_ms": profile.request_timeout_ms,
            "journeys": {j.name: j.weight for j in profile.journeys},
        },
        "target": target,
        "environment": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "grpcio": _version("grpcio"),
            **(environment or {}),
        },
        "plan": plan or {},
        "started_at": started_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "passed": valid and all(s["passed"] or (s.get("inconclusive") and not strict) for s in slos if s.get("evaluated", True)),
        "strict": strict,
        "inconclusive": [s["name"] for s in slos if s.get("inconclusive") and s.get("evaluated", True)],
        "valid": valid,
        "invalid_reasons": invalid_reasons,
        "throughput": {
            "offered_rps": round(profile.arrival.offered_rate_per_s(
                profile.warmup_s + profile.duration_s, profile.warmup_s, profile.warmup_s + measured_s), 2),
            "completed_rps": round(completed / measured_s, 2) if measured_s > 0 else None,
            "measured_s": measured_s,
        },
        "send_lag": latency_summary(stats.send_lag),
        "workers": workers if workers is not None else [worker_summary(index=0, pid=os.getpid(), stats=stats, start_skew_s=0.0)],
        "rpcs": {name: _rpc_summary(name, s, stats, measured_s) for name, s in sorted(stats.rpcs.items())},
        "journeys": {name: _journey_summary(name, s, stats, measured_s) for name, s in sorted(stats.journeys.items())},
        "slos": slos,
        "prometheus": prometheus,
        "timeline": timeline_summary(stats.timeline),
        "series": series_summary(stats.series, stats.timeline),
        "event_loop": event_loop,
        "tail_breakdown": tail_breakdown or {},
    }


def worker_summary(*, index: int, pid: int | None, stats: RunStats, start_skew_s: float | None = None,
                   cpu_s: float | None = None) -> dict[str, Any]:
    """One entry of ``workers``: a load process's share of the run (docs/results.md).

    ``stats`` are that process's own (before any merge): ``sent`` counts the
    journeys it dispatched over the whole run (warm-up included, as
    ``timeline.sent``), ``send_lag`` its send lag over the measured window
    (ms, as the top-level ``send_lag``). ``start_skew_s`` is how far its
    start was from the run's shared start instant (s), ``cpu_s`` the CPU time
    (user + system, all its threads) it spent from its start to the end of
    its drain (s); ``None`` when not known.
    """
    return {
        "index": index,
        "pid": pid,
        "sent": sum(stats.timeline.sent),
        "send_lag": latency_summary(stats.send_lag),
        "start_skew_ms": None if start_skew_s is None else round(start_skew_s * 1000, 3),
        "cpu_s": None if cpu_s is None else round(cpu_s, 3),
    }


def timeline_summary(timeline: Timeline) -> dict[str, Any]:
    """The ``timeline`` object: per second of the run (warm-up included), arrivals intended, sent and completed.

    Lists are indexed by second from the run's start; ``warmup[i]`` is true
    for seconds that start in the warm-up. ``max_shortfall`` is the second
    whose sent count fell furthest below its intended count (shortfall 0
    when none did). Shape in docs/results.md.
    """
    shortfall, second = timeline.max_shortfall()
    seconds = len(timeline.intended)
    return {
        "interval_s": 1,
        "warmup_s": timeline.warmup_s,
        "planned_end_s": timeline.planned_end_s,
        "end_s": round(timeline.end_s, 3),
        "ended_early": timeline.ended_early,
        "abandoned_at_s": None if timeline.abandoned_at_s is None else round(timeline.abandoned_at_s, 3),
        "abandoned_behind_s": None if timeline.abandoned_behind_s is None else round(timeline.abandoned_behind_s, 3),
        "intended_total": sum(timeline.intended),
        "sent_total": sum(timeline.sent),
        "completed_total": sum(timeline.completed) + timeline.completed_after_end,
        "completed_after_end": timeline.completed_after_end,
        "max_shortfall": {
            "second": second, "shortfall": shortfall,
            "intended": timeline.intended[second] if seconds else 0, "sent": timeline.sent[second] if seconds else 0,
        },
        "warmup": [i < timeline.warmup_s for i in range(seconds)],
        "intended": list(timeline.intended),
        "sent": list(timeline.sent),
        "completed": list(timeline.completed),
    }


def _rpc_summary(name: str, calls: CallStats, stats: RunStats, measured_s: float) -> dict[str, Any]:
    summary = calls_summary(calls, measured_s)
    first = stats.first_message.get(name)
    if first is not None:
        summary["first_message"] = {**latency_summary(first.merged()), "histogram": encode_histogram(first.merged())}
    return summary


def _journey_summary(name: str, calls: CallStats, stats: RunStats, measured_s: float) -> dict[str, Any]:
    summary = calls_summary(calls, measured_s)
    summary["slowest_traces"] = [
        {"trace_id": trace_id, "latency_ms": round(latency_us / 1000, 3), "code": code}
        for latency_us, trace_id, code in stats.slowest_traces.get(name, [])
    ]
    return summary


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


#: Per-second percentiles in the ``series`` section: (key, percentile).
SERIES_PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("max_ms", 100.0))


def series_summary(series: RunSeries, timeline: Timeline) -> dict[str, Any]:
    """The ``series`` object: per second of the run (warm-up included), per RPC and journey, calls, p50/p90/p99/max and errors.

    Every list has ``seconds`` entries: the run's seconds (``timeline``), or
    more when calls ended later (the drain after the last arrival). Entry
    ``i`` covers the calls that ended in ``[i, i + 1)`` s from the start;
    percentiles are in ms (``None`` for a second without calls), read from
    log buckets (:data:`~casemesh.harness.stats.SERIES_BUCKETS_PER_OCTAVE`
    per doubling) to within ±1.1 %. ``errors`` has one list per non-OK status
    code that occurred. Shape in docs/results.md.
    """
    seconds = max(len(timeline.intended), series.seconds)
    return {
        "interval_s": 1,
        "seconds": seconds,
        "warmup": [i < timeline.warmup_s for i in range(seconds)],
        "resolution": {"buckets_per_octave": SERIES_BUCKETS_PER_OCTAVE,
                       "relative_error": round(2 ** (0.5 / SERIES_BUCKETS_PER_OCTAVE) - 1, 4)},
        "rpcs": {name: _series_points(s, seconds) for name, s in sorted(series.rpcs.items())},
        "journeys": {name: _series_points(s, seconds) for name, s in sorted(series.journeys.items())},
    }


def _series_points(series: LatencySeries, seconds: int) -> dict[str, Any]:
    percentiles = [p for _, p in SERIES_PERCENTILES]
    points: dict[str, Any] = {"count": []}
    points.update({key: [] for key, _ in SERIES_PERCENTILES})
    for second in range(seconds):
        buckets = series.histogram(second)
        points["count"].append(sum(buckets.values()))
        for (key, _), value in zip(SERIES_PERCENTILES, series_percentiles(buckets, percentiles)):
            points[key].append(None if value is None else round(value / 1000, 3))
    points["errors"] = {code: (counts + [0] * seconds)[:seconds] for code, counts in series.errors().items()}
    return points
