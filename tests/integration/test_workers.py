"""``casemesh run --workers N`` end to end: a real coordinator, real worker processes, the embedded mesh.

Counts are compared with the single-process schedule computed from the same
profile and seed (``Driver.plan``'s RNG streams): they do not depend on how
loaded the machine is, so the checks are exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from casemesh.harness.driver import plan_rngs
from casemesh.harness.profile import load_profile
from casemesh.harness.workers import plan_arrivals

from .profiles import write_profile

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
MIX = "  - {name: resolve, weight: 80}\n  - {name: resolve_miss, weight: 10}\n  - {name: shorten, weight: 10}\n"


def casemesh(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_two_workers_send_exactly_the_single_process_schedule(tmp_path: Path):
    path = write_profile(tmp_path, rate=120, duration_s=2, warmup_s=0.5, seed_urls=40, journeys=MIX)
    out = tmp_path / "out"
    done = casemesh("run", str(path), "--workers", "2", "--seed", "3", "--out", str(out), "--no-progress", "--trace-ratio", "0.2")
    # 4 only if this machine was so loaded that a worker fell behind by > 10 ms at p99: the result is written either way.
    assert done.returncode in (0, 4), done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())

    profile = load_profile(path)
    arrivals, journeys = plan_rngs(3)
    schedule = list(plan_arrivals((profile.arrival.schedule(arrivals, 2.5), journeys.choices), profile))
    measured = [journey for offset, journey in schedule if offset >= profile.warmup_s]

    timeline = result["timeline"]
    assert timeline["intended_total"] == timeline["sent_total"] == timeline["completed_total"] == len(schedule)
    per_second = Counter(int(offset) for offset, _ in schedule)
    assert timeline["intended"][:3] == [per_second[s] for s in range(3)]
    # Every measured arrival ran the journey the single-process schedule gives it, once.
    assert {name: row["count"] for name, row in result["journeys"].items()} == dict(Counter(measured))
    assert result["send_lag"]["count"] == len(measured)

    workers = result["workers"]
    assert [w["index"] for w in workers] == [0, 1]
    assert len({w["pid"] for w in workers}) == 2
    assert [w["sent"] for w in workers] == [len(schedule[0::2]), len(schedule[1::2])]
    assert sum(w["send_lag"]["count"] for w in workers) == len(measured)
    for w in workers:
        assert w["send_lag"]["p99_ms"] is not None and w["send_lag"]["p50_ms"] <= w["send_lag"]["p99_ms"]
        assert w["cpu_s"] > 0 and abs(w["start_skew_ms"]) < 1000
    # The merged histograms are the result's percentiles: their count is every call.
    resolve = result["rpcs"]["casemesh.urlshortener.v1.UrlShortenerService/Resolve"]
    assert resolve["count"] == Counter(measured)["resolve"] + Counter(measured)["resolve_miss"]
    assert "load workers: 2 processes" in done.stdout and "worker 1 (pid" in done.stdout
    # Each worker traced its own sampled journeys into a file of its own.
    assert {f"casemesh-harness-{w['pid']}.otlp.jsonl" for w in workers} <= {p.name for p in (out / "traces").iterdir()}


def test_an_unreachable_target_stops_a_workers_run_with_exit_3_before_any_load(tmp_path: Path):
    from casemesh.harness.mesh import free_port

    # The readiness wait (harness/readiness.py) finds it before a load worker starts; the workers' own
    # connection check (harness/workers.py) is for a target that dies between the two.
    echo = Path(__file__).resolve().parents[2] / "benchmarks" / "profiles" / "echo.yaml"
    done = casemesh("run", str(echo), "--target", f"echo=127.0.0.1:{free_port()}", "--workers", "2", "--duration", "1", "--warmup", "0",
                    "--out", str(tmp_path / "out"), "--no-progress", "--connect-timeout", "1")
    assert done.returncode == 3, done.stdout + done.stderr
    assert "target not ready after 1 s" in " ".join(done.stderr.split()) and "load worker" not in done.stderr
    assert not (tmp_path / "out" / "result.json").exists()
