"""``casemesh run moderation`` as a user runs it: the shipped profile on the embedded mesh (the classifier fitting its
model at start, the review queue, the pipeline), labelled items posted and routed by the classifier's confidence,
reviewers working the queue, appeals, and every audited item accounted for."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 60 s (three services, the classifier's fit, the rate's pilots, 10 s of posts, the drain)
def test_the_shipped_moderation_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "moderation", "--duration", "10", "--no-progress", "--report", "off", "--out",
                           str(out)], check=False, capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) == {"moderation-pipeline", "moderation-review"}  # the entry points
    assert "starting moderation-classifier, moderation-review, moderation-pipeline" in done.stdout  # the whole mesh
    journeys = result["journeys"]
    assert journeys["post"]["count"] > 50, journeys["post"]
    # The classifier routed posts both ways: decided alone, and sent to people.
    decisions = journeys["time_to_decision"]
    assert decisions["count"] > 50 and decisions["errors"].get("IN_REVIEW", 0) > 0, decisions
    assert journeys["auto_decision_correct"]["count"] > 0 and journeys["review_claim"]["count"] > 0
    assert journeys["review_wait"]["count"] > 0, journeys["review_claim"]
    # The invariant: every audited item found, its audit log replaying to its state.
    accounted = journeys["item_accounted"]
    assert accounted["count"] >= 1 and not accounted["errors"], accounted


def test_the_moderation_profiles_are_listed():
    done = subprocess.run([*CLI, "profiles"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "moderation:" in done.stdout and "moderation-thresholds:" in done.stdout
