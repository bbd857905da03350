"""gRPC's minimal channel stack against its full one: client CPU per call of the bare open-loop client, side by side.

casemesh opens its load channels on gRPC core's minimal stack
(``grpc.minimal_stack=1``, harness/call_policy.py ``MINIMAL_STACK``) unless a
profile's ``harness_retry`` needs the full one. This measures what that saves:
benchmarks/bare_client.py against the bare echo server (benchmarks/echo_server.py)
at ``--rate`` for ``--duration`` seconds, with and without ``--minimal-stack``,
taking turns for ``--rounds`` rounds so both meet the same noise. Reports each
run's load-phase CPU-ms per call, the medians and their ratio.

Usage::

    .venv/bin/python benchmarks/channel_stack.py                     # 1,000/s, 6 rounds of 8 s each way, about 2 min
    .venv/bin/python benchmarks/channel_stack.py --rate 2000 --rounds 4

127.0.0.1 only; every run is bounded by its duration and stops by itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from run import EchoServer, bare_client

VARIANTS = {"full stack (gRPC's default)": (), "minimal stack (casemesh's load channels)": ("--minimal-stack",)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="arrivals per second [1000]")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per run, the first not counted [8]")
    parser.add_argument("--rounds", type=int, default=6, help="runs of each variant, taking turns [6]")
    opts = parser.parse_args()
    if not 0 < opts.rate <= 5000 or not 2 <= opts.duration <= 60 or not 1 <= opts.rounds <= 20:
        parser.error("--rate must be in (0, 5000], --duration in [2, 60] s, --rounds in [1, 20]")
    per_call: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with EchoServer() as server:
        for round_ in range(opts.rounds):
            for name, extra in VARIANTS.items():
                run = bare_client(server, opts.rate, opts.duration, warmup_s=1.0, extra=extra)
                ms = run.summary["cpu_load_s"] / run.summary["sent"] * 1e3
                per_call[name].append(ms)
                print(f"round {round_ + 1}: {name}: {ms:.4f} CPU-ms/call, send lag p99 {run.summary['send_lag_p99_ms']} ms",
                      file=sys.stderr, flush=True)
    medians = {name: statistics.median(values) for name, values in per_call.items()}
    print(f"\nclient CPU per call at {opts.rate:,.0f}/s, load phase, median of {opts.rounds} ({opts.duration:g} s each)\n")
    print("| channel | CPU-ms/call | runs |\n|---|---:|---|")
    for name, values in per_call.items():
        print(f"| {name} | {medians[name]:.4f} | {', '.join(f'{v:.4f}' for v in values)} |")
    full, minimal = medians.values()
    print(f"\nminimal / full: {minimal / full:.3f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
