"""The versioned JSON result of a run (``OUT/result.json``), documented in docs/results.md.

Shape (schema_version 1)::

    {
      "schema_version": 1,
      "casemesh_version": "0.1.0",
      "profile": {"name", "path", "workload", "arrival": {"process", "rate_per_s"},
                  "warmup_s", "duration_s", "request_timeout_ms", "journeys": {name: weight}},
      "target": {"mode": "embedded" | "external", "services": {name: "host:port"}},
      "environment": {"python", "platform", "cpus", "grpcio"},
      "started_at": "2026-11-22T02:10:00Z",
      "passed": true,                      # every SLO passed and the run is valid
      "valid": true, "invalid_reasons": [],
      "throughput": {"offered_rps", "completed_rps", "measured_s"},
      "send_lag": {"count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"},
      "rpcs":     {"pkg.Service/Method": CALLS},
      "journeys": {"name": CALLS},
      "slos": [{"name", "display_name", "passed", "objective", "target", "measured",
                "good", "total", "error_budget", "budget_burnt", "note"}]
    }

    CALLS = {"count", "ok", "errors": {"NOT_FOUND": 12, ...}, "throughput_rps",
             "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms",
             "histogram": "HISTFAAAA..."}
    rpcs[m] of a server-streaming method also has
             "first_message": {"count", "p50_ms", ..., "histogram"}   # time to its first message
    journeys[j] also has
             "slowest_traces": [{"trace_id": "32 hex", "latency_ms", "code"}]  # sampled journeys, slowest first

Latencies are in milliseconds, from the intended send time, over every call
(OK and not); ``errors`` counts calls per non-OK status code name;
``histogram`` is the HdrHistogram (µs, 3 significant figures) in its
compressed base64 encoding, so runs can be merged and re-analysed exactly.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from typing import Any

from hdrh.histogram import HdrHistogram

from .stats import OK, CallStats, RunStats

SCHEMA_VERSION = 1
PERCENTILES = (("p50_ms", 50.0), ("p90_ms", 90.0), ("p99_ms", 99.0), ("p999_ms", 99.9))


def latency_summary(histogram: HdrHistogram) -> dict[str, float | int | None]:
    """Count and p50/p90/p99/p99.9/max/mean in ms of a µs histogram (``None`` values when empty)."""
    count = histogram.get_total_count()
    summary: dict[str, float | int | None] = {"count": count}
    for key, percentile in PERCENTILES:
        summary[key] = round(histogram.get_value_at_percentile(percentile) / 1000, 3) if count else None
    summary["max_ms"] = round(histogram.get_max_value() / 1000, 3) if count else None
    summary["mean_ms"] = round(histogram.get_mean_value() / 1000, 3) if count else None
    return summary


def calls_summary(stats: CallStats, measured_s: float) -> dict[str, Any]:
    """The CALLS object of one RPC or journey."""
    merged = stats.merged()
    summary = latency_summary(merged)
    count = summary["count"] or 0
    return {
        "count": count,
        "ok": stats.count([OK]),
        "errors": stats.errors(),
        "throughput_rps": round(count / measured_s, 2) if measured_s > 0 else None,
        **{k: v for k, v in summary.items() if k != "count"},
        "histogram": encode_histogram(merged),
    }


def encode_histogram(histogram: HdrHistogram) -> str:
    """``histogram`` in HdrHistogram's compressed base64 encoding (µs values; ``hdrh`` ``decode``/``decode_and_add`` read it)."""
    encoded = histogram.encode()
    return encoded.decode() if isinstance(encoded, bytes) else encoded


def build_result(*, profile: Any, stats: RunStats, verdicts: list[Any], target: dict[str, Any],
                 started_at: datetime, valid: bool, invalid_reasons: list[str]) -> dict[str, Any]:
    """The result document of a finished run."""
    measured_s = profile.duration_s
    completed = sum(s.count() for s in stats.journeys.values())
    slos = [v.to_dict() for v in verdicts]
    return {
        "schema_version": SCHEMA_VERSION,
        "casemesh_version": _version("casemesh"),
        "profile": {
            "name": profile.name,
            "path": str(profile.path),
            "workload": profile.workload.name,
            "arrival": {"process": profile.arrival.process, "rate_per_s": profile.arrival.rate_per_s},
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
        },
        "started_at": started_at.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "passed": valid and all(s["passed"] for s in slos),
        "valid": valid,
        "invalid_reasons": invalid_reasons,
        "throughput": {
            "offered_rps": profile.arrival.rate_per_s,
            "completed_rps": round(completed / measured_s, 2) if measured_s > 0 else None,
            "measured_s": measured_s,
        },
        "send_lag": latency_summary(stats.send_lag),
        "rpcs": {name: _rpc_summary(name, s, stats, measured_s) for name, s in sorted(stats.rpcs.items())},
        "journeys": {name: _journey_summary(name, s, stats, measured_s) for name, s in sorted(stats.journeys.items())},
        "slos": slos,
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
