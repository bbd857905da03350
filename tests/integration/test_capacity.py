"""``casemesh capacity`` end to end: against a queue whose capacity queueing theory gives, and on the embedded mesh.

The queue is ``benchmarks/echo_server.py --service-time-ms 20``: one request at
a time, FIFO, each served for exactly S = 20 ms. Under the profile's Poisson
arrivals it is an M/D/1 queue. For a wait bound t below S, the waiting time W
of an M/D/1 queue with arrival rate λ and utilisation ρ = λS has

    P(W <= t) = (1 - ρ) e^(λt),    0 <= t < S

(the first term of Erlang's M/D/1 waiting-time distribution, A. K. Erlang
1909; e.g. Iversen, *Teletraffic Engineering and Network Planning*, DTU 2015,
§13.4: P(W <= t) = (1 - ρ) Σ_{k=0}^{⌊t/S⌋} [λ(kS - t)]^k / k! · e^{-λ(kS - t)};
for t < S only k = 0 remains). A call's latency is W + S, so the profile's SLO
"50% of Echo within 35 ms" (t = 15 ms) holds while (1 - ρ) e^(0.75 ρ) >= 0.5:
up to ρ* = 0.7054, a capacity of λ* = ρ*/S = 35.27 requests/s.

What the harness adds to each call (δ: loopback, gRPC, Python scheduling on
both sides, the server's 1 ms timer resolution) shortens the effective wait
bound to t - δ; the test measures δ at the first step (at 20/s, ρ = 0.4 < 0.5,
so the median call does not wait: median latency = S + δ) and checks the
search against both the nominal and the δ-corrected theory.

The search runs 5 to 9 steps of 1 s warm-up + 4 s measured (≈ 150 calls
each), so the arrival path itself moves the answer: an ideal M/D/1
simulation of this very search lands within -22 %..+13 % of theory on 90 %
of 200 arrival paths (19 fall outside ±20 %). The seed fixes the path; on
this one (seed 1) the ideal simulation gives 35/s, so the ±20 % tolerance is
left for machine noise, which moves the result by about one bisection step
(2.5/s, 7 %). tests/unit/test_capacity.py checks the search against a
simulated queue with 20-s steps, within 15 % on every path tried.

The M/D/1 test takes about 50 s: it is marked ``slow`` and run by .ci/run
(``pytest -m slow tests/integration/test_capacity.py``).
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from casemesh.harness.profile import load_profile

from .profiles import RESOLVE, latency_slo, write_profile

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "casemesh.harness.cli", "capacity"]
MD1 = ROOT / "benchmarks" / "profiles" / "md1.yaml"
ECHO = "casemesh.bench.v1.EchoService/Echo"
SERVICE_S = 0.020
TOLERANCE = 0.20


def md1_capacity(threshold_s: float, target: float, service_s: float) -> float:
    """Requests/s at which P(W + S <= threshold) = target for an M/D/1 queue, with threshold - S < S (closed form above)."""
    t = threshold_s - service_s
    assert 0 <= t < service_s, "the closed form covers wait bounds below one service time"
    low, high = 0.0, 1.0
    for _ in range(60):  # (1 - ρ) e^(ρ t / S) falls from 1 at ρ = 0 to 0 at ρ = 1: bisect on ρ
        rho = (low + high) / 2
        if (1 - rho) * math.exp(rho * t / service_s) >= target:
            low = rho
        else:
            high = rho
    return low / service_s


@pytest.fixture
def md1_server():
    """benchmarks/echo_server.py as a 20 ms single-server queue on a free loopback port; yields HOST:PORT."""
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "echo_server.py"), "--port", "0", "--service-time-ms", "20"],
                               stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        line = process.stdout.readline()
        assert line.startswith("listening on 127.0.0.1:"), line
        yield line.split()[-1]
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def capacity(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.slow
def test_capacity_of_an_md1_queue_matches_queueing_theory(md1_server, tmp_path):
    profile = load_profile(MD1)
    [slo] = profile.slos
    threshold_s, target = slo.good.latency_le_ms / 1000, slo.target
    theory = md1_capacity(threshold_s, target, SERVICE_S)
    assert theory == pytest.approx(35.27, abs=0.01)

    out = tmp_path / "out"
    done = capacity(str(MD1), "--target", f"echo={md1_server}", "--start", "20", "--step", "10", "--resolution", "2.5",
                    "--max-rate", "60", "--step-duration", "4", "--step-warmup", "1", "--time-limit", "90",
                    "--out", str(out), "--no-progress", timeout=150)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((out / "capacity.json").read_text())
    found = document["capacity_rate_per_s"]
    steps = document["steps"]

    # δ from the first step: at 20/s (ρ = 0.4) the median call does not queue.
    first = steps[0]
    assert first["rate_per_s"] == 20 and first["passed"]
    delta_s = first["rpcs"][ECHO]["p50_ms"] / 1000 - SERVICE_S
    # δ only has to leave a wait bound for the corrected theory (t - δ > 0); a busy machine's δ reached 8.4 ms.
    assert 0 <= delta_s < threshold_s - SERVICE_S, f"harness + network overhead {delta_s * 1000:.1f} ms"
    corrected = md1_capacity(threshold_s - delta_s, target, SERVICE_S)
    summary = (f"capacity found {found}/s; M/D/1 theory {theory:.2f}/s (ratio {found / theory:.3f}); with the measured overhead "
               f"δ = {delta_s * 1000:.2f} ms, {corrected:.2f}/s (ratio {found / corrected:.3f}); steps: "
               + ", ".join(f"{s['rate_per_s']:g} {'pass' if s['passed'] else 'fail'} p50 {s['rpcs'][ECHO]['p50_ms']:.1f}" for s in steps))
    print(summary)
    assert abs(found / theory - 1) <= TOLERANCE, summary
    assert abs(found / corrected - 1) <= TOLERANCE, summary

    # The knee: every verdict at or below the capacity met the SLO; the median latency rises with the rate.
    # A marginal step is re-run once and the re-run's verdict stands, so a step followed by its re-run is superseded.
    verdicts = [s for s, after in zip(steps, [*steps[1:], None]) if not (after and after["rerun"])]
    assert all(s["passed"] for s in verdicts if s["rate_per_s"] <= found and s["valid"]), summary
    assert all(not s["passed"] for s in verdicts if s["rate_per_s"] > found), summary
    assert document["stopped_reason"].startswith("resolution reached"), document["stopped_reason"]
    lowest, highest = min(steps, key=lambda s: s["rate_per_s"]), max(steps, key=lambda s: s["rate_per_s"])
    assert highest["rpcs"][ECHO]["p50_ms"] > lowest["rpcs"][ECHO]["p50_ms"]
    for step in steps:
        assert step["valid"] and step["send_lag_p99_ms"] < 10
        assert step["achieved_rps"] == pytest.approx(step["rate_per_s"], rel=0.3)  # Poisson counts over 4 s
        assert step["rpcs"][ECHO]["errors"] == {} and step["slos"][0]["name"] == "echo-median-35ms"

    # The terminal: a row per step and the answer.
    assert re.search(rf"highest rate meeting every SLO: {found:g}/s", done.stdout), done.stdout
    assert done.stdout.count("step 1: 20/s") == 1 and "Capacity steps" in done.stdout
    assert (out / "capacity.html").is_file()
    assert len(list((out / "steps").glob("*/result.json"))) == len(steps)


def test_capacity_on_the_embedded_mesh_starts_it_once_and_stops_at_the_step_limit(tmp_path):
    profile = write_profile(tmp_path, rate=50, seed_urls=30, slos={"ok.slo.yaml": latency_slo("resolve-generous", RESOLVE, within_ms=1500)})
    out = tmp_path / "out"
    done = capacity(str(profile), "--start", "40", "--step", "x2", "--max-steps", "2", "--step-duration", "1.5",
                    "--step-warmup", "0.5", "--out", str(out), "--no-progress", timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((out / "capacity.json").read_text())
    # Two steps and no more, whatever they measured: on a loaded 2-core machine the 80/s step may fall behind its
    # schedule (send lag) and fail; then the search wants a third step, and the step limit stops it all the same.
    # A stalled or marginal first step is re-run (the re-run's verdict stands), and the re-run is the second step.
    first, second = document["steps"][0], document["steps"][-1]
    if second["rerun"]:
        assert [s["rate_per_s"] for s in document["steps"]] == [40, 40]
        assert document["capacity_rate_per_s"] == (40 if second["passed"] else None)
    else:
        assert [s["rate_per_s"] for s in document["steps"]] == [40, 80] and first["passed"]
        assert document["capacity_rate_per_s"] == (80 if second["passed"] else 40)
    assert document["stopped_reason"].startswith("step limit: 2 steps run (--max-steps 2)")
    assert second["rpcs"][RESOLVE]["count"] > 0.5 * second["rate_per_s"] * 1.5 and set(second["journeys"]) == {"resolve", "shorten"}
    # One mesh for the whole search: each service started once, and seeded once.
    assert done.stdout.count("starting urlshortener, idgen, analytics") == 1 and done.stdout.count("seeding url-shortener data") == 1
    assert {p.name for p in (out / "logs").iterdir() if p.suffix == ".log"} == {"urlshortener.log", "idgen.log", "analytics.log"}


def test_no_capacity_when_the_first_step_fails_exits_1(tmp_path):
    profile = write_profile(tmp_path, seed_urls=20, slos={"strict.slo.yaml": latency_slo("resolve-impossible", RESOLVE, within_ms=0.001)})
    out = tmp_path / "out"
    done = capacity(str(profile), "--start", "30", "--step-duration", "1", "--step-warmup", "0.5", "--out", str(out),
                    "--no-progress", timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    document = json.loads((out / "capacity.json").read_text())
    assert document["capacity_rate_per_s"] is None and len(document["steps"]) == 1  # a collapse is not re-run
    assert document["steps"][0]["reason"].startswith("collapse: latency far beyond every SLO threshold")
    assert document["stopped_reason"].startswith("the first step at 30/s failed (collapse)")
    assert "highest rate meeting every SLO: none" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--step", "x1"], "--step: a factor must be > 1"),
    (["--start", "500", "--max-rate", "100"], "--start: --start 500/s is above --max-rate 100/s"),
    (["--time-limit", "5"], "--time-limit: 5 s does not fit one step"),
    (["--target", "nowhere"], "--target"),
])
def test_bad_options_exit_2_before_anything_starts(tmp_path, args, message):
    profile = write_profile(tmp_path)
    out = tmp_path / "out"
    done = capacity(str(profile), *args, "--out", str(out), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and not out.exists()


def test_a_profile_without_a_steady_rate_exits_2(tmp_path):
    profile = write_profile(tmp_path)
    text = profile.read_text().replace("  process: poisson\n  rate_per_s: 100\n",
                                       "  process: ramp\n  start_rate_per_s: 10\n  end_rate_per_s: 100\n")
    profile.write_text(text)
    done = capacity(str(profile), "--out", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2 and "arrival.process: capacity offers one steady rate per step" in done.stderr
