"""Every run's control stream, the verdicts it qualifies, and the run's plan (rate_scale auto, --workers auto), end to end.

``casemesh run --target`` drives the bare echo server (its own process, on
127.0.0.1) with a profile whose rate is ``rate_scale: auto``; the calibration
cache is pre-filled (a calibration takes 30 s: tests/unit/test_planning.py
covers the cache, test_calibrate_measures_a_floor_and_a_ceiling below the
measurement itself, with short steps).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from casemesh.harness.calibration.cache import save_calibration
from casemesh.harness.calibration.machine import fingerprint
from casemesh.harness.calibration.measure import calibrate

from .profiles import latency_slo, verdict_exit

ECHO = "casemesh.bench.v1.EchoService/Echo"


@pytest.fixture(scope="module")
def echo_server():
    process = subprocess.Popen([sys.executable, "-m", "casemesh.harness.calibration.echo_server", "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.removeprefix("listening on ").strip()
    process.terminate()
    process.wait(10)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A calibration cache holding this machine's entry: one process holds 2,000/s (no 30 s calibration in the test)."""
    monkeypatch.setenv("CASEMESH_CACHE_DIR", str(tmp_path / "cache"))
    save_calibration({"fingerprint": fingerprint(), "measured_at": "2026-12-01T10:00:00Z", "ceiling_per_s": 2000,
                      "ceiling_bound": "off schedule at 4000/s", "noisy": False,
                      "steps": [{"rate_per_s": 50, "send_lag_p99_ms": 0.5, "on_schedule": True, "errors": {},
                                 "latency_ms": {"count": 125, "p50_ms": 0.5, "p90_ms": 0.8, "p99_ms": 1.0, "p999_ms": 1.2, "max_ms": 1.2}}],
                      "floor": {"rate_per_s": 50, "p50_ms": 0.5, "p99_ms": 1.0}})
    return tmp_path / "cache"


def echo_profile(directory: Path, *, within_ms: float, auto: bool = True) -> Path:
    (directory / "echo.slo.yaml").write_text(latency_slo("echo-latency", ECHO, within_ms))
    path = directory / "echo.yaml"
    path.write_text(f"""apiVersion: casemesh.dev/v1
kind: Profile
metadata: {{name: echo-test}}
workload: echo
services: []
arrival: {{process: constant, rate_per_s: 100}}
{"rate_scale: auto" if auto else ""}
{"rate_scales: [2, 1]" if auto else ""}
warmup_s: 1
duration_s: 4
journeys:
  - {{name: echo, weight: 1}}
slos: [echo.slo.yaml]
""")
    return path


def run(profile: Path, target: str, out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict]:
    done = subprocess.run([sys.executable, "-m", "casemesh.harness.cli", "run", str(profile), "--target", f"echo={target}",
                           "--out", str(out), "--no-progress", "--trace-ratio", "0", *extra],
                          capture_output=True, text=True, timeout=180)
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else {}
    return done, result


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
def test_a_run_records_its_machine_floor_and_plans_its_rate(tmp_path, echo_server, cache):
    # 0.05 ms: no call over loopback is that fast, and the machine's own floor is far above a third of it.
    done, result = run(echo_profile(tmp_path, within_ms=0.05), echo_server, tmp_path / "out")
    assert verdict_exit(done, result) == 0, done.stdout + done.stderr
    # The plan: the pilots, highest scale first, and the choice with its reason.
    rate = result["plan"]["rate"]
    assert [c["rate_scale"] for c in rate["candidates"]][0] == 2 and rate["rate_scale"] in (1, 2)
    assert rate["reason"] and all(c["outcome"] in ("kept up", "fell behind", "skipped") for c in rate["candidates"])
    assert result["plan"]["workers"] == {"count": 1, "mode": "auto", "reason": result["plan"]["workers"]["reason"]}
    # The control stream: its floor over the measured window and a series per second of the whole run.
    environment = result["environment"]
    control = environment["control"]
    assert control["rate_per_s"] == 20 and control["ok"] >= 60 and control["latency"]["p99_ms"] > 0.05
    assert len(control["per_second"]) >= 5 and all({"second", "count", "p99_ms"} <= set(s) for s in control["per_second"])
    assert environment["calibration"]["ceiling_per_s"] == 2000
    assert {"busy_pct", "steal_pct", "other_pct", "own_pct"} <= set(environment["cpu"]) and isinstance(environment["noisy"], bool)
    # The SLO cannot be judged on any machine: its miss is inconclusive, and the run passes (exit 0) with it named.
    [slo] = result["slos"]
    assert slo["passed"] is False and slo["inconclusive"] is True and slo["floor_ms"] > 0.05
    assert "cannot be judged here" in slo["machine_note"] or "stalled" in slo["machine_note"]
    assert result["passed"] is result["valid"] and result["inconclusive"] == ["echo-latency"]
    assert "INCONCLUSIVE" in done.stdout and "machine floor (control stream" in done.stdout and "rate chosen:" in done.stdout


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
def test_strict_counts_an_inconclusive_slo_as_failed_and_no_control_judges_plainly(tmp_path, echo_server, cache):
    done, result = run(echo_profile(tmp_path, within_ms=0.05, auto=False), echo_server, tmp_path / "strict", "--strict")
    assert verdict_exit(done, result) == 1, done.stdout + done.stderr
    assert result["strict"] is True and result["passed"] is False
    assert "FAILED: echo-latency" in done.stdout or not result["valid"]  # an invalid run says RUN INVALID instead
    assert result["plan"] == {"workers": {"count": 1, "mode": "auto", "reason": result["plan"]["workers"]["reason"]}}

    done, result = run(echo_profile(tmp_path, within_ms=0.05, auto=False), echo_server, tmp_path / "plain", "--no-control",
                       "--rate-scale", "0.5", "--workers", "1")
    assert verdict_exit(done, result) == 1, done.stdout + done.stderr
    assert result["environment"]["control"] is None and result["slos"][0]["inconclusive"] is False
    assert result["profile"]["arrival"]["rate_per_s"] == 50


def test_bad_workers_and_rate_scale_options_are_config_errors(tmp_path, echo_server, cache):
    for option, value, message in (("--workers", "many", "--workers: expected a whole number of processes or auto"),
                                   ("--workers", "0", "--workers: must be between 1 and 64"),
                                   ("--rate-scale", "fast", "--rate-scale: expected a number or auto")):
        done, _ = run(echo_profile(tmp_path, within_ms=10), echo_server, tmp_path / "bad", option, value)
        assert done.returncode == 2 and message in done.stderr, done.stderr


async def test_calibrate_measures_a_floor_and_a_ceiling():
    lines: list[str] = []
    found = await calibrate(say=lines.append, rates=(50, 200), step_s=0.5, warmup_s=0.2)
    assert [s["rate_per_s"] for s in found["steps"]][:1] == [50] and len(lines) == len(found["steps"])
    assert found["floor"]["rate_per_s"] == 50 and 0 < found["floor"]["p50_ms"] <= found["floor"]["p99_ms"]
    assert found["ceiling_per_s"] in (None, 50, 200) and found["fingerprint"]["cpus"] >= 1
    assert isinstance(found["noisy"], bool) and found["cpu"] is not None


def test_calibrate_command_shows_the_cached_floor_table(cache):
    done = subprocess.run([sys.executable, "-m", "casemesh.harness.cli", "calibrate"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "cached calibration from 2026-12-01T10:00:00Z" in done.stdout and "Instrument floor" in done.stdout
    assert "up to 2,000/s" in done.stdout
