"""Run the benchmarks of docs/benchmarks.md and print their tables in Markdown.

Usage::

    .venv/bin/python benchmarks/run.py harness-cpu [--repeat 3]   # (A) CPU per request, harness vs bare client
    .venv/bin/python benchmarks/run.py capacity    [--repeat 3]   # (B) capacity at p99 < 10 ms, Resolve vs echo
    .venv/bin/python benchmarks/run.py all         [--repeat 3]   # both

(A) harness-cpu: starts benchmarks/echo_server.py, then, one after the other
against that same server, ``casemesh run benchmarks/profiles/echo.yaml
--target echo=...`` and benchmarks/bare_client.py at the same constant rate
(2,000/s) for the same number of requests. CPU (user + system) of each client
process comes from ``os.wait4`` (the rusage of that child alone, start-up
included) and, for the load phase only, from ``/proc/PID/stat`` sampled when
the harness prints "driving ..." and its last progress line (the bare client
reports its own load-phase CPU). The server's CPU is sampled the same way.

(B) capacity: searches the highest offered rate that passes, for
``casemesh run benchmarks/profiles/echo.yaml`` against the bare echo server
and for ``casemesh run benchmarks/profiles/resolve.yaml`` (embedded
URL-shortener mesh, started by the harness for every step): steps of 500/s
(500, 1000, ...) until one fails, then bisection down to 125/s; 2 s warm-up +
8 s measured per step. A step passes when the run exits 0 under ``--strict`` (its
p99 < 10 ms SLO passed, not merely inconclusive against the machine's floor, and
its send lag p99 stayed within the harness's 10 ms validity bound)
and no call ended with an error status; a failing step is re-run once and
fails only if the re-run fails too (one-off stalls happen on this machine,
docs/benchmarks.md). With ``--repeat`` the later searches start one step below
the capacity the previous one found. CPU per request of the harness and of
every server process is sampled over each step's load phase.

Everything listens on and connects to 127.0.0.1 only; every child process has
a hard time limit and is stopped by PID. ``--json PATH`` also writes the raw
measurements; ``--keep DIR`` keeps every run's output directory (by default
they are temporary and removed). Exit status 0 when the runs completed (whether or not the
targets were met), 1 when a child failed in an unexpected way.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
PYTHON = sys.executable
CASEMESH = str(Path(PYTHON).parent / "casemesh")
ECHO_PROFILE = BENCH / "profiles" / "echo.yaml"
RESOLVE_PROFILE = BENCH / "profiles" / "resolve.yaml"
PROFILE_BASE_RATE = 1000.0  # rate_per_s of both benchmark profiles; --rate-scale = rate / this
CLK_TCK = os.sysconf("SC_CLK_TCK")

CPU_TARGET_MS = 0.25  # (A): harness CPU-ms per request at 2,000/s
CAPACITY_TARGET = 0.85  # (B): Resolve capacity / echo capacity, on the faster (AMD EPYC) VM (issue 10)
CAPACITY_TARGET_SLOW_VM = 0.60  # (B): the same on a VM about 3x slower

#: Where each ``casemesh run`` writes result.json, logs and traces: kept under this directory when set
#: (``--keep DIR``), otherwise a temporary directory removed once the result has been read.
KEEP_DIR: Path | None = None
_RUN_NUMBER = itertools.count(1)

PROGRESS_RE = re.compile(r"(\d+)/(\d+) s: sent (\d+), completed (\d+), failed (\d+)")


class BenchError(RuntimeError):
    """A child process did not behave (could not start, crashed, timed out)."""


# --------------------------------------------------------------------------- processes


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc/PID/stat (resolution 1/CLK_TCK s)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15 of proc(5))


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (from /proc/PID/task/TID/children)."""
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as children:
                kids = [int(k) for k in children.read().split()]
        except FileNotFoundError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def service_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds of each ``casemesh serve NAME`` process below ``pid``, by service name."""
    cpu: dict[str, float] = {}
    for kid in descendants(pid):
        try:
            with open(f"/proc/{kid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace").split("\0")
            if "serve" in argv:
                cpu[argv[argv.index("serve") + 1]] = proc_cpu_s(kid)
        except (FileNotFoundError, IndexError, ProcessLookupError):
            continue
    return cpu


def wait_rusage(proc: subprocess.Popen) -> tuple[int, float]:
    """Reap ``proc`` with wait4: (exit code, user + system CPU seconds of the process, start-up included).

    Like ``getrusage(RUSAGE_CHILDREN)``, the figure includes the process's own
    children that it reaped (the services of an embedded mesh), none for an
    external target or the bare client.
    """
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_utime + usage.ru_stime


class Watchdog:
    """Stops ``proc`` if it outlives ``limit_s``: every child is bounded in time.

    SIGINT first (``casemesh run`` then stops the services it started), SIGKILL
    after 15 s to the process and to every descendant it still has, each by PID.
    """

    def __init__(self, proc: subprocess.Popen, limit_s: float):
        self.fired = False
        self._timer = threading.Timer(limit_s, self._stop, args=(proc,))
        self._timer.daemon = True
        self._timer.start()

    def _stop(self, proc: subprocess.Popen) -> None:
        self.fired = True
        family = descendants(proc.pid)
        try:
            os.kill(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and os.path.exists(f"/proc/{proc.pid}") and proc.returncode is None:
            time.sleep(0.2)
        if proc.returncode is None:  # not reaped yet, so the PID is still ours
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in family:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    if b"casemesh" not in cmdline.read():  # exited and the PID was reused
                        continue
                os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass

    def cancel(self) -> None:
        self._timer.cancel()


class EchoServer:
    """benchmarks/echo_server.py on a free loopback port, for a ``with`` block."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.address = ""

    def __enter__(self) -> EchoServer:
        self.proc = subprocess.Popen([PYTHON, str(BENCH / "echo_server.py"), "--port", "0"],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()  # "listening on 127.0.0.1:PORT"
        if not line.startswith("listening on "):
            self.__exit__()
            raise BenchError(f"echo server did not start: {line!r}")
        self.address = line.split()[-1]
        return self

    def cpu_s(self) -> float:
        return proc_cpu_s(self.proc.pid)

    def __exit__(self, *exc: object) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class HarnessRun:
    """One ``casemesh run``: exit code, result.json, and CPU of the process (and of an external server)."""

    profile: str
    rate: float
    exit_code: int
    result: dict[str, Any] | None
    sent: int  # journeys sent, warm-up included (from the last progress line)
    cpu_total_s: float  # whole process, start-up and summary included (wait4; embedded services included)
    cpu_load_s: float | None  # the harness process alone, from "driving ..." to the last progress line (/proc)
    server_cpu_load_s: dict[str, float]  # each server (external echo server, or embedded service) over that interval
    wall_s: float
    output_tail: str = ""

    @property
    def errors(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for calls in (self.result or {}).get("rpcs", {}).values():
            for code, n in calls["errors"].items():
                found[code] = found.get(code, 0) + n
        return found

    @property
    def rpc(self) -> dict[str, Any]:
        rpcs = (self.result or {}).get("rpcs", {})
        return next(iter(rpcs.values())) if len(rpcs) == 1 else {}


def casemesh_run(profile: Path, rate: float, *, warmup_s: float, duration_s: float,
                 target: str | None = None, server: EchoServer | None = None, extra: tuple[str, ...] = ()) -> HarnessRun:
    """``casemesh run PROFILE`` at ``rate``/s as a child process, with its CPU measured.

    ``server``: anything with ``cpu_s()`` (the external server's CPU seconds so far); ``extra``: more options.
    """
    if KEEP_DIR is not None:
        out = KEEP_DIR / f"{next(_RUN_NUMBER):03d}-{profile.stem}-{rate:g}"
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = Path(tempfile.mkdtemp(prefix="casemesh-bench-"))
    command = [CASEMESH, "run", str(profile), "--rate-scale", f"{rate / PROFILE_BASE_RATE:g}",
               "--warmup", f"{warmup_s:g}", "--duration", f"{duration_s:g}", "--no-progress", "--out", str(out),
               "--workers", "1"]  # one load process: its CPU is the harness's (auto may add worker processes)
    if target:
        command += ["--target", target]
    command += list(extra)
    # Bytecode as a user's install has it: with PYTHONDONTWRITEBYTECODE set (some CI images and sandboxes set it)
    # every run would compile casemesh's ~270 modules again, about 0.6 CPU-s that no installed casemesh pays.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"} | {"PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    started = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, cwd=ROOT, env=env)
    watchdog = Watchdog(proc, warmup_s + duration_s + 120)
    cpu_start = server_start = None
    cpu_end = server_end = None
    sent = 0
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("driving ") and cpu_start is None:
                cpu_start = proc_cpu_s(proc.pid)
                server_start = {"echo-server": server.cpu_s()} if server else service_cpu_s(proc.pid)
            elif cpu_start is not None and (match := PROGRESS_RE.search(line)):
                # The last progress line is printed once every journey has finished.
                cpu_end = proc_cpu_s(proc.pid)
                server_end = {"echo-server": server.cpu_s()} if server else service_cpu_s(proc.pid)
                sent = int(match.group(3))
    finally:
        code, cpu_total = wait_rusage(proc)
        watchdog.cancel()
    result_file = out / "result.json"
    result = json.loads(result_file.read_text()) if result_file.exists() else None
    if KEEP_DIR is None:
        shutil.rmtree(out, ignore_errors=True)
    if watchdog.fired:
        raise BenchError(f"casemesh run {profile.name} at {rate:g}/s exceeded its time limit")
    return HarnessRun(
        profile=profile.name, rate=rate, exit_code=code, result=result, sent=sent,
        cpu_total_s=cpu_total,
        cpu_load_s=None if cpu_end is None else cpu_end - cpu_start,
        server_cpu_load_s={} if server_end is None else {k: v - server_start[k] for k, v in server_end.items() if k in server_start},
        wall_s=time.perf_counter() - started,
        output_tail="".join(lines[-15:]),
    )


@dataclass
class BareRun:
    """One benchmarks/bare_client.py run."""

    rate: float
    summary: dict[str, Any]
    cpu_total_s: float
    server_cpu_s: float  # server CPU over the client's whole life (the server is idle otherwise)


def bare_client(server: EchoServer, rate: float, duration_s: float, warmup_s: float = 0.0, extra: tuple[str, ...] = ()) -> BareRun:
    """benchmarks/bare_client.py at ``rate``/s for ``duration_s`` seconds (the first ``warmup_s`` of them not recorded); ``extra``: more options."""
    command = [PYTHON, str(BENCH / "bare_client.py"), "--target", server.address,
               "--rate", f"{rate:g}", "--duration", f"{duration_s:g}", "--warmup", f"{warmup_s:g}", *extra]
    server_start = server.cpu_s()
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, cwd=ROOT)
    watchdog = Watchdog(proc, duration_s + 60)
    try:
        output = proc.stdout.read()
    finally:
        code, cpu_total = wait_rusage(proc)
        watchdog.cancel()
    server_cpu = server.cpu_s() - server_start
    if code != 0 or watchdog.fired:
        raise BenchError(f"bare client exited with {code}: {output[-500:]}")
    return BareRun(rate=rate, summary=json.loads(output.strip().splitlines()[-1]), cpu_total_s=cpu_total,
                   server_cpu_s=server_cpu)


# --------------------------------------------------------------------------- (A) harness CPU


@dataclass
class CpuSample:
    """CPU-ms per request of one client run and of the server while it ran."""

    client: str
    requests: int
    cpu_total_ms: float
    cpu_load_ms: float
    server_ms: float
    p99_ms: float | None
    send_lag_p99_ms: float | None
    errors: int


def harness_cpu(rate: float, warmup_s: float, duration_s: float, repeat: int) -> dict[str, Any]:
    samples: list[CpuSample] = []
    with EchoServer() as server:
        print(f"(A) echo server on {server.address}; {repeat} x (casemesh run, bare client) at {rate:g}/s, "
              f"{warmup_s + duration_s:g} s each", file=sys.stderr)
        for i in range(repeat):
            order = ("harness", "bare") if i % 2 == 0 else ("bare", "harness")  # alternate to cancel order effects
            for who in order:
                if who == "harness":
                    run = casemesh_run(ECHO_PROFILE, rate, warmup_s=warmup_s, duration_s=duration_s,
                                       target=f"echo={server.address}", server=server)
                    if run.result is None or run.sent == 0 or run.cpu_load_s is None:
                        raise BenchError(f"casemesh run failed (exit {run.exit_code}):\n{run.output_tail}")
                    n = run.sent
                    samples.append(CpuSample(
                        "harness", n, 1000 * run.cpu_total_s / n, 1000 * run.cpu_load_s / n,
                        1000 * run.server_cpu_load_s["echo-server"] / n, run.rpc.get("p99_ms"), run.result["send_lag"]["p99_ms"],
                        sum(run.errors.values())))
                else:
                    bare = bare_client(server, rate, warmup_s + duration_s)
                    s = bare.summary
                    n = s["completed"]
                    samples.append(CpuSample(
                        "bare", n, 1000 * bare.cpu_total_s / n, 1000 * s["cpu_load_s"] / n,
                        1000 * bare.server_cpu_s / (n + 1), s["p99_ms"], s["send_lag_p99_ms"],
                        sum(v for k, v in s["codes"].items() if k != "OK")))
                last = samples[-1]
                print(f"  {last.client}: {last.requests} requests, {last.cpu_total_ms:.3f} CPU-ms/request "
                      f"(load phase {last.cpu_load_ms:.3f}), server {last.server_ms:.3f}", file=sys.stderr)
    return {"rate": rate, "warmup_s": warmup_s, "duration_s": duration_s, "repeat": repeat,
            "samples": [asdict(s) for s in samples]}


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def cpu_table(data: dict[str, Any]) -> str:
    by = {who: [s for s in data["samples"] if s["client"] == who] for who in ("harness", "bare")}
    med = {who: {k: _median([s[k] for s in rows]) for k in ("requests", "cpu_total_ms", "cpu_load_ms", "server_ms",
                                                             "p99_ms", "send_lag_p99_ms", "errors")}
           for who, rows in by.items()}
    runs = len(by["harness"])
    what = f"median of {runs} runs" if runs > 1 else "one run"
    lines = [
        f"(A) Client CPU per request at {data['rate']:,.0f} req/s, constant arrivals, against the bare echo server "
        f"({what} of each client, {data['warmup_s'] + data['duration_s']:g} s of load per run, same server)",
        "",
        "| client | requests | CPU-ms/request, whole process | CPU-ms/request, load phase | server CPU-ms/request | p99 ms | send lag p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    names = {"harness": "`casemesh run` (echo profile)", "bare": "bare grpc.aio client"}
    for who in ("harness", "bare"):
        m = med[who]
        lines.append(f"| {names[who]} | {m['requests']:,.0f} | {m['cpu_total_ms']:.3f} | {m['cpu_load_ms']:.3f} | "
                     f"{m['server_ms']:.3f} | {_fmt(m['p99_ms'])} | {_fmt(m['send_lag_p99_ms'])} | {m['errors']:.0f} |")
    h, b = med["harness"], med["bare"]
    lines.append(f"| **harness / bare** | | **{h['cpu_total_ms'] / b['cpu_total_ms']:.2f}x** | "
                 f"**{h['cpu_load_ms'] / b['cpu_load_ms']:.2f}x** | {h['server_ms'] / b['server_ms']:.2f}x | | | |")
    met = h["cpu_total_ms"] <= CPU_TARGET_MS
    lines += ["", f"Target: harness <= {CPU_TARGET_MS} CPU-ms per request (whole process): "
                  f"{h['cpu_total_ms']:.3f} -> **{'met' if met else 'NOT met'}** "
                  f"(load phase only: {h['cpu_load_ms']:.3f}, {'met' if h['cpu_load_ms'] <= CPU_TARGET_MS else 'not met'})."]
    if runs > 1:
        lines += ["", "Per run (harness whole/load, bare whole/load, CPU-ms/request): " + "; ".join(
            f"{hs['cpu_total_ms']:.3f}/{hs['cpu_load_ms']:.3f} vs {bs['cpu_total_ms']:.3f}/{bs['cpu_load_ms']:.3f}"
            for hs, bs in zip(by["harness"], by["bare"]))]
    return "\n".join(lines)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


# --------------------------------------------------------------------------- (B) capacity


@dataclass
class Step:
    """One run of a capacity search at one offered rate."""

    rate: float
    passed: bool
    exit_code: int
    p99_ms: float | None
    send_lag_p99_ms: float | None
    completed_rps: float | None
    harness_cpu_ms: float | None  # harness process, CPU-ms per request over the load phase
    server_cpu_ms: dict[str, float] = field(default_factory=dict)  # each server process, CPU-ms per request
    errors: dict[str, int] = field(default_factory=dict)
    reason: str = ""


def _step(profile: Path, rate: float, warmup_s: float, duration_s: float, server: EchoServer | None) -> Step:
    run = casemesh_run(profile, rate, warmup_s=warmup_s, duration_s=duration_s,
                       target=f"echo={server.address}" if server else None, server=server,
                       extra=("--strict",))  # p99 < 10 ms measured: a verdict inconclusive on the machine's floor fails
    if run.exit_code in (2, 3) or run.result is None:
        raise BenchError(f"casemesh run {profile.name} at {rate:g}/s: exit {run.exit_code}\n{run.output_tail}")
    result = run.result
    errors = run.errors
    reasons = []
    if run.exit_code == 1:
        reasons.append("p99 SLO failed")
    if not result["valid"]:
        reasons.append("invalid: send lag p99 > 10 ms")
    if errors:
        reasons.append("errors " + ", ".join(f"{c} {n}" for c, n in errors.items()))
    n = run.sent or 1
    step = Step(rate=rate, passed=run.exit_code == 0 and result["valid"] and not errors, exit_code=run.exit_code,
                p99_ms=run.rpc.get("p99_ms"), send_lag_p99_ms=result["send_lag"]["p99_ms"],
                completed_rps=result["throughput"]["completed_rps"],
                harness_cpu_ms=None if run.cpu_load_s is None else 1000 * run.cpu_load_s / n,
                server_cpu_ms={k: 1000 * v / n for k, v in run.server_cpu_load_s.items()},
                errors=errors, reason="; ".join(reasons))
    print(f"  {profile.name} {rate:>6,.0f}/s: {'pass' if step.passed else 'FAIL'} p99 {_fmt(step.p99_ms)} ms, "
          f"send lag p99 {_fmt(step.send_lag_p99_ms)} ms {step.reason}", file=sys.stderr)
    return step


class Search:
    """Finds the highest passing rate of one profile: step up, confirm failures once, bisect."""

    def __init__(self, profile: Path, step_rps: float, resolution_rps: float, max_rps: float,
                 warmup_s: float, duration_s: float, server: EchoServer | None):
        self.profile, self.step_rps, self.resolution_rps, self.max_rps = profile, step_rps, resolution_rps, max_rps
        self.warmup_s, self.duration_s, self.server = warmup_s, duration_s, server
        self.steps: list[Step] = []

    def passes(self, rate: float) -> bool:
        """Run at ``rate``; a failure is re-run once and counts only if it fails again (a one-off stall is not capacity)."""
        for _ in range(2):
            step = _step(self.profile, rate, self.warmup_s, self.duration_s, self.server)
            self.steps.append(step)
            if step.passed:
                return True
        return False

    def run(self, start_rps: float) -> dict[str, Any]:
        low, high = 0.0, None  # highest rate known to pass, lowest known to fail
        rate = start_rps
        while rate >= self.step_rps and not self.passes(rate):  # started too high: step down
            high = rate
            rate -= self.step_rps
        if rate >= self.step_rps:
            low = rate
            rate += self.step_rps
            while high is None and rate <= self.max_rps:
                if self.passes(rate):
                    low = rate
                    rate += self.step_rps
                else:
                    high = rate
        while high is not None and high - low > self.resolution_rps:
            mid = (low + high) / 2
            if self.passes(mid):
                low = mid
            else:
                high = mid
        return {"profile": self.profile.name, "capacity_rps": low, "first_fail_rps": high,
                "steps": [asdict(s) for s in self.steps]}


def capacity(step_rps: float, resolution_rps: float, max_rps: float, warmup_s: float, duration_s: float,
             repeat: int) -> dict[str, Any]:
    searches: list[dict[str, Any]] = []
    start = {"echo": step_rps, "resolve": step_rps}
    for i in range(repeat):
        with EchoServer() as server:
            print(f"(B) capacity search {i + 1}/{repeat}: echo (bare server {server.address})", file=sys.stderr)
            echo = Search(ECHO_PROFILE, step_rps, resolution_rps, max_rps, warmup_s, duration_s, server).run(start["echo"])
        print(f"(B) capacity search {i + 1}/{repeat}: resolve (embedded URL-shortener mesh)", file=sys.stderr)
        resolve = Search(RESOLVE_PROFILE, step_rps, resolution_rps, max_rps, warmup_s, duration_s, None).run(start["resolve"])
        searches.append({"echo": echo, "resolve": resolve})
        # Later searches start one step below the capacity just found instead of at the bottom (saves time).
        for name, found in (("echo", echo), ("resolve", resolve)):
            start[name] = max(step_rps, (found["capacity_rps"] // step_rps - 1) * step_rps)
    return {"step_rps": step_rps, "resolution_rps": resolution_rps, "warmup_s": warmup_s, "duration_s": duration_s,
            "repeat": repeat, "searches": searches}


def _at_capacity(search: dict[str, Any]) -> dict[str, Any] | None:
    """The passing step at the capacity rate (the last one, if it was run more than once)."""
    passing = [s for s in search["steps"] if s["passed"] and s["rate"] == search["capacity_rps"]]
    return passing[-1] if passing else None


def capacity_table(data: dict[str, Any]) -> str:
    searches = data["searches"]
    caps = {name: [s[name]["capacity_rps"] for s in searches] for name in ("echo", "resolve")}
    med = {name: statistics.median(values) for name, values in caps.items()}
    runs = len(searches)
    what = f"median of {runs} searches" if runs > 1 else "one search"
    labels = {"echo": "bare echo server (`benchmarks/profiles/echo.yaml`, external target)",
              "resolve": "Resolve on the embedded URL-shortener mesh (`benchmarks/profiles/resolve.yaml`)"}
    lines = [
        f"(B) Capacity at p99 < 10 ms with no errors and send lag p99 <= 10 ms, driven by `casemesh run` ({what}; "
        f"steps of {data['step_rps']:,.0f}/s, then bisection to {data['resolution_rps']:,.0f}/s; "
        f"{data['warmup_s']:g} s warm-up + {data['duration_s']:g} s measured per step; a failing step is re-run once)",
        "",
        "| target | capacity req/s | per search | lowest failing req/s | harness CPU-ms/req at capacity | server CPU-ms/req at capacity |",
        "|---|---:|---|---|---:|---|",
    ]
    for name in ("echo", "resolve"):
        at = _at_capacity(searches[-1][name])
        servers = ", ".join(f"{k} {v:.3f}" for k, v in sorted(at["server_cpu_ms"].items())) if at else "-"
        lines.append(f"| {labels[name]} | {med[name]:,.0f} | {', '.join(f'{c:,.0f}' for c in caps[name])} | "
                     f"{', '.join(_rate(s[name]['first_fail_rps']) for s in searches)} | "
                     f"{_fmt(at['harness_cpu_ms'] if at else None, '.3f')} | {servers} |")
    ratio = med["resolve"] / med["echo"] if med["echo"] else float("nan")
    lines.append(f"| **Resolve / echo** | **{ratio:.0%}** | {', '.join(f'{r / e:.0%}' if e else '-' for r, e in zip(caps['resolve'], caps['echo']))} | | | |")
    lines += ["", f"Target: Resolve >= {CAPACITY_TARGET:.0%} of the bare echo's capacity on the faster VM, "
                  f">= {CAPACITY_TARGET_SLOW_VM:.0%} on a slow one: {ratio:.0%} -> "
                  f"**{'met' if ratio >= CAPACITY_TARGET else 'met for a slow VM only' if ratio >= CAPACITY_TARGET_SLOW_VM else 'NOT met'}**.", "",
              f"Steps of search {runs}:", "",
              "| target | offered req/s | verdict | p99 ms | send lag p99 ms | completed req/s | harness CPU-ms/req | server CPU-ms/req | why |",
              "|---|---:|---|---:|---:|---:|---:|---|---|"]
    for name in ("echo", "resolve"):
        for s in searches[-1][name]["steps"]:
            servers = ", ".join(f"{k} {v:.3f}" for k, v in sorted(s["server_cpu_ms"].items()))
            lines.append(f"| {name} | {s['rate']:,.0f} | {'pass' if s['passed'] else 'fail'} | {_fmt(s['p99_ms'])} | "
                         f"{_fmt(s['send_lag_p99_ms'])} | {_fmt(s['completed_rps'], ',.0f')} | "
                         f"{_fmt(s['harness_cpu_ms'], '.3f')} | {servers} | {s['reason']} |")
    return "\n".join(lines)


def _rate(value: float | None) -> str:
    return "none" if value is None else f"{value:,.0f}"


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("what", choices=("harness-cpu", "capacity", "all"))
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; tables show medians [1]")
    parser.add_argument("--cpu-rate", type=float, default=2000.0, help="(A) constant rate, req/s [2000]")
    parser.add_argument("--cpu-duration", type=float, default=15.0, help="(A) measured seconds after the warm-up [15]")
    parser.add_argument("--cpu-warmup", type=float, default=2.0, help="(A) warm-up seconds [2]")
    parser.add_argument("--step", type=float, default=500.0, help="(B) rate step, req/s [500]")
    parser.add_argument("--resolution", type=float, default=125.0, help="(B) bisect until the pass/fail gap is this small, req/s [125]")
    parser.add_argument("--max-rate", type=float, default=8000.0, help="(B) highest rate tried, req/s [8000]")
    parser.add_argument("--step-duration", type=float, default=8.0, help="(B) measured seconds per step [8]")
    parser.add_argument("--step-warmup", type=float, default=2.0, help="(B) warm-up seconds per step [2]")
    parser.add_argument("--json", type=Path, help="also write the raw measurements to this file")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="keep every casemesh run's output (result.json, logs, traces) under DIR [removed]")
    opts = parser.parse_args()
    global KEEP_DIR
    KEEP_DIR = opts.keep
    if not 1 <= opts.repeat <= 9:
        parser.error("--repeat must be 1..9")
    started = time.perf_counter()
    raw: dict[str, Any] = {"cpus": os.cpu_count()}
    tables: list[str] = []
    try:
        if opts.what in ("harness-cpu", "all"):
            raw["harness_cpu"] = harness_cpu(opts.cpu_rate, opts.cpu_warmup, opts.cpu_duration, opts.repeat)
            tables.append(cpu_table(raw["harness_cpu"]))
        if opts.what in ("capacity", "all"):
            raw["capacity"] = capacity(opts.step, opts.resolution, opts.max_rate, opts.step_warmup, opts.step_duration, opts.repeat)
            tables.append(capacity_table(raw["capacity"]))
    except BenchError as error:
        print(f"benchmark error: {error}", file=sys.stderr)
        return 1
    raw["elapsed_s"] = round(time.perf_counter() - started, 1)
    if opts.json:
        opts.json.write_text(json.dumps(raw, indent=2) + "\n")
    print("\n\n".join(tables))
    print(f"\n({os.cpu_count()} CPUs; {raw['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
