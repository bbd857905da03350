"""How many connected devices (long-lived bidi streams) the chat mesh holds on this machine, and what each costs.

Usage::

    .venv/bin/python benchmarks/chat_streams.py [--users 1000,2000,5000,10000] [--rate 10] [--duration 20]
        [--warmup 5] [--json FILE]

Each step runs ``casemesh run`` of the shipped ``chat`` profile (harness/profiles/chat.yaml: two connection
servers, chat-router, chat-messages, one process each on 127.0.0.1) with ``seed.users`` set to the step's count:
every user holds one device, so one Connect stream, for the whole run, while a light message load (``--rate``
arrivals/s, the profile's mix) probes whether delivery still meets its SLOs. The harness holds all the streams in
one load process, as a k6 instance holds its WebSocket VUs.

Sampled every second from /proc while the run drives its load: the resident memory (RSS) of the harness process
and of each chat service, and their CPU seconds over the measured window. Reported per step: streams held, RSS of
the harness and of the two connection servers (total and per stream, above the 1,000-stream step), CPU of each
process in % of one core, delivery p99, send lag p99, validity and the SLO verdicts. The concurrent-stream
capacity is the largest step whose run stays valid with every SLO met. Prints a Markdown table; ``--json FILE``
keeps the raw figures. Every run has a time limit; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import descendants, proc_cpu_s  # noqa: E402

PROFILE = ROOT / "harness" / "profiles" / "chat.yaml"
SLOS = ROOT / "harness" / "profiles" / "chat.slo.yaml"
PAGE = 4096
CONNECT = "casemesh.chat.v1.ChatGatewayService/Connect"


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (/proc/PID/statm)."""
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[1]) * PAGE / 2**20


def names(root: int) -> dict[int, str]:
    """``casemesh serve NAME`` processes below ``root`` by pid, and ``root`` itself as ``harness``."""
    found = {root: "harness"}
    for kid in descendants(root):
        try:
            with open(f"/proc/{kid}/cmdline", "rb") as cmdline:
                argv = cmdline.read().decode(errors="replace").split("\0")
        except FileNotFoundError:
            continue
        if "serve" in argv:
            found[kid] = argv[argv.index("serve") + 1]
    return found


class Sampler(threading.Thread):
    """Peak RSS per process, and CPU seconds from the first sample after ``measure_from`` to the last sample."""

    def __init__(self, root: int, measure_from: float):
        super().__init__(daemon=True)
        self.root, self.measure_from = root, measure_from
        self.peak_rss: dict[str, float] = {}
        self.cpu_start: dict[str, float] = {}
        self.cpu_end: dict[str, float] = {}
        self.window: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(1.0):
            now = time.monotonic()
            for pid, name in names(self.root).items():
                try:
                    rss, cpu = rss_mib(pid), proc_cpu_s(pid)
                except (FileNotFoundError, ProcessLookupError):
                    continue
                self.peak_rss[name] = max(self.peak_rss.get(name, 0.0), rss)
                if now >= self.measure_from:
                    self.cpu_start.setdefault(name, cpu)
                    self.cpu_end[name] = cpu
                    self.window = [self.window[0] if self.window else now, now]

    def cpu_pct(self) -> dict[str, float]:
        span = (self.window[1] - self.window[0]) if len(self.window) == 2 else 0.0
        return {n: 100 * (self.cpu_end[n] - self.cpu_start[n]) / span for n in self.cpu_end if span > 0}


def step(users: int, rate: float, duration_s: float, warmup_s: float, tmp: Path) -> dict[str, Any]:
    """One run of the chat profile with ``users`` connected devices."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["seed"]["users"] = users
    profile["arrival"]["rate_per_s"] = rate
    profile["slos"] = [str(SLOS)]
    profile["metadata"]["name"] = f"chat-{users}-streams"
    path = tmp / f"chat-{users}.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    out = tmp / f"out-{users}"
    command = [sys.executable, "-m", "casemesh.harness.cli", "run", str(path), "--duration", str(duration_s), "--warmup",
               str(warmup_s), "--out", str(out), "--no-progress", "--report", "off"]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            stdin=subprocess.DEVNULL)
    sampler: Sampler | None = None
    lines = []
    deadline = time.monotonic() + duration_s + warmup_s + 600
    for line in proc.stdout:  # the "driving" line: streams connected, load starts
        lines.append(line)
        if sampler is None and line.startswith("driving "):
            sampler = Sampler(proc.pid, time.monotonic() + warmup_s)
            sampler.start()
        if time.monotonic() > deadline:
            proc.kill()
            break
    proc.wait(timeout=60)
    if sampler is not None:
        sampler.done.set()
        sampler.join()
    if not (out / "result.json").exists():
        raise SystemExit(f"{users} users: no result (exit {proc.returncode})\n{''.join(lines[-40:])}")
    result = json.loads((out / "result.json").read_text())
    journeys = result["journeys"]
    return {
        "users": users, "rate_per_s": rate, "exit": proc.returncode, "valid": result["valid"],
        "passed": result["passed"], "invalid_reasons": result["invalid_reasons"],
        "delivery_p99_ms": journeys.get("delivery", {}).get("p99_ms"),
        "group_p99_ms": journeys.get("group_delivery", {}).get("p99_ms"),
        "send_lag_p99_ms": result["send_lag"]["p99_ms"],
        "connect_p99_ms": result["rpcs"].get(CONNECT, {}).get("first_message", {}).get("p99_ms"),
        "peak_rss_mib": sampler.peak_rss if sampler else {}, "cpu_pct": sampler.cpu_pct() if sampler else {},
        "slos": {s["name"]: s["passed"] for s in result["slos"] if s.get("evaluated", True)},
    }


def table(rows: list[dict[str, Any]]) -> str:
    base = rows[0]

    def per_stream_kib(row: dict[str, Any], names_: tuple[str, ...]) -> str:
        if row is base or row["users"] == base["users"]:
            return "-"
        grown = sum(row["peak_rss_mib"].get(n, 0) - base["peak_rss_mib"].get(n, 0) for n in names_)
        return f"{grown * 1024 / (row['users'] - base['users']):.1f}"

    gateways = ("chat-gateway-1", "chat-gateway-2")
    lines = ["| streams | harness RSS | gateways RSS | KiB/stream harness | KiB/stream gateways | CPU % harness | CPU % gateways | "
             "delivery p99 | send lag p99 | valid | SLOs |", "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for r in rows:
        rss, cpu = r["peak_rss_mib"], r["cpu_pct"]
        failed = [n for n, ok in r["slos"].items() if ok is False]
        delivery = "-" if r["delivery_p99_ms"] is None else f"{r['delivery_p99_ms']:,.0f} ms"
        lines.append(
            f"| {r['users']:,} | {rss.get('harness', 0):,.0f} MiB | {sum(rss.get(g, 0) for g in gateways):,.0f} MiB | "
            f"{per_stream_kib(r, ('harness',))} | {per_stream_kib(r, gateways)} | {cpu.get('harness', 0):.0f} | "
            f"{sum(cpu.get(g, 0) for g in gateways):.0f} | {delivery} | {r['send_lag_p99_ms']:.1f} ms | "
            f"{'yes' if r['valid'] else 'no'} | {'all met' if not failed else 'missed: ' + ', '.join(failed)} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", default="1000,2000,5000,10000", help="connected devices per step, comma-separated")
    parser.add_argument("--rate", type=float, default=10.0, help="arrivals/s of the message load (the profile's mix)")
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    counts = [int(u) for u in args.users.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="casemesh-chat-streams-") as tmp:
        for users in counts:
            print(f"{users:,} connected devices ...", file=sys.stderr, flush=True)
            rows.append(step(users, args.rate, args.duration, args.warmup, Path(tmp)))
    print(table(rows))
    held = [r["users"] for r in rows if r["valid"] and all(ok is not False for ok in r["slos"].values())]
    print(f"\nconcurrent-stream capacity: {max(held):,} streams (largest step valid with every SLO met)" if held
          else "\nno step was valid with every SLO met")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
