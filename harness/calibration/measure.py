"""``casemesh calibrate``: what this machine can measure, with the harness's own client.

Against the bare echo server (echo_server.py, a process of its own on
127.0.0.1, zero work per call), one harness process drives constant-rate
open-loop steps of :data:`STEP_S` s (after :data:`STEP_WARMUP_S` s of warm-up)
at rising rates (:data:`RATES`) and records, per step, the latency
percentiles from the intended send time and the send lag. Two things come
out:

- the **instrument floor**: latency of a call that does nothing, at each
  rate. No SLO tighter than a few times the floor at its rate can be judged
  on this machine;
- the **one-process ceiling** (``ceiling_per_s``): the highest rate at which
  one harness process stays on schedule (send-lag p99 ≤
  :data:`ON_SCHEDULE_LAG_P99_MS` ms, or twice the send lag of the lowest
  rate when that is larger: an idle process's own wake-up jitter) with no errors, found by stepping up to
  the first failing rate (a step off schedule is re-run once before it
  counts: one blip is not a ceiling), then one bisection between the last
  passing rate and it. ``--workers auto`` and ``rate_scale: auto`` plan with it
  (harness/planning.py).

A calibration takes 20-40 s and is cached per machine fingerprint
(cache.py); the result records its age.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import grpc

from casemesh.services.runtime.parent_watch import parent_environment

from ..call_policy import harness_channel_options
from ..errors import HarnessError
from ..result import latency_summary
from ..stats import new_histogram
from .machine import CpuWatch, fingerprint

#: Offered rates of the steps, arrivals/s, tried in order until one is off schedule (then one bisection).
RATES: tuple[float, ...] = (50, 200, 500, 1000, 2000, 4000, 8000)
#: Measured seconds per step, after the warm-up.
STEP_S = 2.5
#: Warm-up seconds per step (sent, not measured): connections and caches settle.
STEP_WARMUP_S = 1.0
#: A step is on schedule when the send lag's p99 stays within this (ms): the NOTES.md bound for a client that keeps up.
ON_SCHEDULE_LAG_P99_MS = 2.0
#: The on-schedule bound is at least this many times the send lag at the lowest rate: at 50/s every arrival wakes an
#: idle process, and a VM's wake-up latency alone can exceed 2 ms (2.7 ms seen on a quiet 2-vCPU EPYC VM).
IDLE_JITTER_FACTOR = 2.0
#: Pause between steps (s): the server finishes what it was given.
STEP_PAUSE_S = 0.5


def _start_server() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen([sys.executable, "-m", "casemesh.harness.calibration.echo_server", "--port", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **parent_environment()})
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("listening on "):
        process.kill()
        _, err = process.communicate(timeout=5)
        raise HarnessError(f"the calibration echo server did not start: {(line + err).strip()[-500:]}")
    return process, line.removeprefix("listening on ").strip()


async def _step(channel: grpc.aio.Channel, rate: float, step_s: float = STEP_S, warmup_s: float = STEP_WARMUP_S,
                lag_bound_ms: float = ON_SCHEDULE_LAG_P99_MS) -> dict[str, Any]:
    from ..control import control_profile
    from ..driver import Driver

    profile = control_profile(warmup_s, step_s, rate)
    driver = Driver(profile, {"echo": channel})
    stats = await driver.run()
    journey = stats.journeys.get("echo")
    latency = latency_summary(journey.merged() if journey is not None else new_histogram())
    lag = latency_summary(stats.send_lag)
    errors = journey.errors() if journey is not None else {}
    on_schedule = (lag["p99_ms"] or 0.0) <= lag_bound_ms and not errors
    return {"rate_per_s": rate, "latency_ms": {k: latency[k] for k in ("count", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")},
            "send_lag_p99_ms": lag["p99_ms"], "errors": errors, "on_schedule": on_schedule}


async def calibrate(say: Callable[[str], Any] = print, *, rates: tuple[float, ...] = RATES, step_s: float = STEP_S,
                    warmup_s: float = STEP_WARMUP_S) -> dict[str, Any]:
    """Measure this machine (see the module docstring); returns the calibration document (docs/cli.md ``casemesh calibrate``).

    ``{"fingerprint", "measured_at" (ISO 8601 UTC), "duration_s", "steps": [{"rate_per_s", "latency_ms": {count,
    p50_ms, p90_ms, p99_ms, p999_ms, max_ms}, "send_lag_p99_ms", "errors", "on_schedule"}], "ceiling_per_s",
    "floor": {"p50_ms", "p99_ms"} (of the lowest-rate step), "lag_bound_ms", "cpu" (machine.CpuUse of the calibration), "noisy"}``.
    ``rates``, ``step_s`` and ``warmup_s`` change the steps (tests use short ones). Raises ``HarnessError`` when the echo server cannot start.
    """
    began = time.monotonic()
    process, address = _start_server()
    steps: list[dict[str, Any]] = []
    watch = CpuWatch(lambda: [process.pid])
    watch.start()

    lag_bound_ms = ON_SCHEDULE_LAG_P99_MS

    async def measure(rate: float) -> bool:
        """One step at ``rate``, re-run once when it is off schedule (a blip is not a ceiling); ``True`` when on schedule."""
        nonlocal lag_bound_ms
        for attempt in range(2):
            step = await _step(channel, rate, step_s, warmup_s, lag_bound_ms)
            if len(steps) == 0:
                # The lowest rate is the process's own wake-up jitter (an idle VM wakes late): the bound sits above it.
                lag_bound_ms = max(ON_SCHEDULE_LAG_P99_MS, IDLE_JITTER_FACTOR * (step["send_lag_p99_ms"] or 0.0))
                step["on_schedule"] = not step["errors"]
            step["lag_bound_ms"] = round(lag_bound_ms, 3)
            step["attempt"] = attempt + 1
            steps.append(step)
            say(_step_line(step))
            await asyncio.sleep(STEP_PAUSE_S)
            if step["on_schedule"]:
                return True
        return False
    try:
        async with grpc.aio.insecure_channel(address, options=harness_channel_options(None)) as channel:  # as the load's
            await asyncio.wait_for(channel.channel_ready(), 10)
            passed: float | None = None
            failed: float | None = None
            for rate in rates:
                if not await measure(rate):
                    failed = rate
                    break
                passed = rate
            if failed is not None and passed is not None:
                middle = round((passed + failed) / 2, -1)
                if await measure(middle):
                    passed = middle
    finally:
        use = watch.stop()
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
    lowest = min((s for s in steps if s["rate_per_s"] == steps[0]["rate_per_s"]), key=lambda s: s["latency_ms"]["p99_ms"] or 0)
    lowest = lowest["latency_ms"]
    return {
        "fingerprint": fingerprint(),
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "duration_s": round(time.monotonic() - began, 1),
        "steps": steps,
        "ceiling_per_s": passed,
        "ceiling_bound": "not reached" if failed is None else f"off schedule at {failed:g}/s",
        "lag_bound_ms": round(lag_bound_ms, 3),
        "floor": {"rate_per_s": steps[0]["rate_per_s"], "p50_ms": lowest["p50_ms"], "p99_ms": lowest["p99_ms"]},
        "cpu": None if use is None else use.to_dict(),
        "noisy": bool(use and use.noisy),
    }


def _step_line(step: dict[str, Any]) -> str:
    latency = step["latency_ms"]
    verdict = "on schedule" if step["on_schedule"] else "OFF SCHEDULE"
    errors = "" if not step["errors"] else "; errors " + ", ".join(f"{c} {n}" for c, n in step["errors"].items())
    return (f"  {step['rate_per_s']:>7,g}/s: p50 {latency['p50_ms'] or 0:.2f} ms, p99 {latency['p99_ms'] or 0:.2f} ms, "
            f"max {latency['max_ms'] or 0:.2f} ms; send lag p99 {step['send_lag_p99_ms'] or 0:.2f} ms: {verdict}{errors}")

