"""The control stream's own cost: CPU of this process while it drives only the control for a while.

Runs harness/control.py's ControlStream (50 zero-work calls/s to the in-process echo server) for
``--seconds`` and prints the process CPU it took per second of wall time and per call, against an
idle loop of the same length (which measures the event loop's and grpc's own background cost).
docs/benchmarks.md "The control stream". Usage::

    .venv/bin/python benchmarks/control_cost.py --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import time

import uvloop

from casemesh.harness.control import ControlStream


async def measure(seconds: float) -> dict[str, float]:
    control = ControlStream(0.0, seconds)
    await control.start()
    try:
        idle_cpu = time.process_time()
        await asyncio.sleep(seconds)
        idle_cpu = time.process_time() - idle_cpu
        began = time.process_time()
        stats = await control.run()
        busy_cpu = time.process_time() - began
    finally:
        await control.stop()
    calls = stats.journeys["echo"].count()
    return {"seconds": seconds, "calls": calls, "idle_cpu_ms_per_s": 1000 * idle_cpu / seconds,
            "control_cpu_ms_per_s": 1000 * busy_cpu / seconds,
            "cpu_ms_per_call": 1000 * (busy_cpu - idle_cpu) / max(calls, 1),
            "share_of_one_core_pct": 100 * (busy_cpu - idle_cpu) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    figures = uvloop.run(measure(parser.parse_args().seconds))
    print("  ".join(f"{k} {v:,.3f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
