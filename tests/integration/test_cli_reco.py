"""``casemesh run recommendations`` as a user runs it: the shipped profile on the embedded mesh, seeded through the API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 40 s (73,000 interactions seeded and a model trained, then 9 s of load): .ci/run runs it
def test_the_shipped_recommendations_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "recommendations", "--duration", "8", "--warmup", "1", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert result["target"]["mode"] == "embedded"
    assert set(result["target"]["services"]) >= {"reco-ranker", "reco-candidates", "reco-signals"}
    journeys = result["journeys"]
    assert journeys["for_you"]["count"] > 100 and not journeys["for_you"]["errors"]
    # Every like was used by the next recommendations (else the journey ends DATA_LOSS).
    assert journeys["signal_to_recommendation"]["count"] > 0 and not journeys["signal_to_recommendation"]["errors"]
    assert {s["name"] for s in result["slos"]} >= {"reco-latency", "reco-availability"}


def test_the_recommendations_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "recommendations:" in done.stdout
