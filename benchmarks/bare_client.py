"""A minimal open-loop grpc.aio client of ``EchoService/Echo``: the baseline the harness is compared to.

It does what the casemesh driver does for one journey with one RPC, and
nothing more: constant arrivals at ``--rate`` per second for ``--duration``
seconds, a scheduler that sleeps at least 1 ms per tick (as harness/driver.py:
uvloop turns shorter sleeps into a busy loop), one task per request, a
deadline per call, latency measured from the intended send time. No
histograms, no tracing, no journeys, no progress display: latencies go into a
list and are summarised once at the end.

Usage::

    python benchmarks/bare_client.py --target 127.0.0.1:PORT --rate 2000 --duration 15
    python benchmarks/bare_client.py --target 127.0.0.1:PORT --rate 2000 --duration 15 --warmup 1   # the first second not recorded
    python benchmarks/bare_client.py --target 127.0.0.1:PORT --rate 1000 --duration 8 --minimal-stack  # as the harness's channels

Prints one JSON object on stdout: requests sent and completed, status counts,
latency and send-lag percentiles (ms; ``completed``, latency and send lag
count only the calls intended after ``--warmup``, as the harness does), and the CPU seconds (user + system) the
process spent in its load phase (``cpu_load_s``; the whole process's CPU,
start-up included, is what the caller measures with ``getrusage``/``wait4``).
Connects to 127.0.0.1 only and stops by itself after the run (in-flight calls
are bounded by their deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import grpc
import uvloop

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.bench.v1 import echo_pb2_grpc as pb_grpc

TICK_S = 0.001


def _cpu_s() -> float:
    usage = os.times()
    return usage.user + usage.system


def _percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[min(int(len(sorted_values) * q / 100.0), len(sorted_values) - 1)]


async def run(target: str, rate: float, duration_s: float, payload_bytes: int, timeout_s: float, warmup_s: float = 0.0,
              options: tuple[tuple[str, int], ...] = ()) -> dict:
    channel = grpc.aio.insecure_channel(target, options=list(options))
    echo = pb_grpc.EchoServiceStub(channel).Echo
    request = pb.EchoRequest(payload=b"x" * payload_bytes)
    await echo(request, timeout=5.0)  # connect before the clock starts (the harness connects while seeding)
    latencies: list[float] = []
    lags: list[float] = []
    codes: dict[str, int] = {}
    in_flight: set[asyncio.Task] = set()
    perf = time.perf_counter

    async def one(intended: float, record: bool) -> None:
        lag = perf() - intended
        code = "OK"
        try:
            await echo(request, timeout=timeout_s)
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        if record:  # as the harness, only arrivals intended after the warm-up count
            lags.append(lag)
            latencies.append(perf() - intended)
        codes[code] = codes.get(code, 0) + 1

    interval = 1.0 / rate
    total = int(duration_s * rate)
    cpu0 = _cpu_s()
    start = perf()
    i = 0
    while i < total:
        now = perf()
        due = start + i * interval
        if due > now:
            await asyncio.sleep(max(due - now, TICK_S))
            continue
        while i < total and start + i * interval <= now:
            task = asyncio.create_task(one(start + i * interval, i * interval >= warmup_s))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            i += 1
    if in_flight:
        await asyncio.wait(in_flight, timeout=timeout_s * 10 + 5)
    wall_s = perf() - start
    cpu_load_s = _cpu_s() - cpu0
    await channel.close()
    latencies.sort()
    lags.sort()
    ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
    return {
        "target": target,
        "rate_per_s": rate,
        "duration_s": duration_s,
        "sent": total,
        "completed": len(latencies),
        "codes": codes,
        "p50_ms": ms(_percentile(latencies, 50)),
        "p99_ms": ms(_percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else None),
        "send_lag_p99_ms": ms(_percentile(lags, 99)),
        "wall_s": round(wall_s, 3),
        "cpu_load_s": round(cpu_load_s, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="127.0.0.1:PORT of an EchoService")
    parser.add_argument("--rate", type=float, default=2000.0, help="arrivals per second (constant)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load (warm-up included)")
    parser.add_argument("--warmup", type=float, default=0.0,
                        help="the first seconds of the load whose calls are sent but not recorded in latency and send lag [0]")
    parser.add_argument("--payload-bytes", type=int, default=100, help="request payload size (bytes)")
    parser.add_argument("--timeout-ms", type=float, default=1000.0, help="deadline of each call (ms)")
    parser.add_argument("--minimal-stack", action="store_true",
                        help="open the channel on gRPC's minimal stack (grpc.minimal_stack=1), as casemesh's load channels")
    opts = parser.parse_args()
    host = opts.target.rpartition(":")[0]
    if host not in ("127.0.0.1", "localhost"):
        parser.error("--target must be on 127.0.0.1 (loopback only)")
    if not 0 < opts.rate <= 20_000 or not 0 < opts.duration <= 600:
        parser.error("--rate must be in (0, 20000] and --duration in (0, 600]")
    if not 0 <= opts.warmup < opts.duration:
        parser.error("--warmup must be in [0, --duration)")
    summary = uvloop.run(run(opts.target, opts.rate, opts.duration, opts.payload_bytes, opts.timeout_ms / 1000.0, opts.warmup,
                                  (("grpc.minimal_stack", 1),) if opts.minimal_stack else ()))
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
