"""``casemesh run social-feed`` and ``social-for-you`` as a user runs them: the shipped profiles on the embedded mesh,
seeded through the API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 45 s (seeding 2,000 users and 4,000 tweets, then 9 s of load): .ci/run runs it
def test_the_shipped_social_feed_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "social-feed", "--duration", "8", "--warmup", "1", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert result["target"]["mode"] == "embedded" and set(result["target"]["services"]) == {"social-graph", "social-tweets", "social-timeline"}
    journeys = result["journeys"]
    assert journeys["home_timeline"]["count"] > 100 and not journeys["home_timeline"]["errors"]
    assert journeys["post_tweet"]["count"] > 0 and journeys["fanout_freshness"]["count"] > 0
    assert {s["name"] for s in result["slos"]} >= {"feed-load", "feed-availability", "fanout-freshness"}


@pytest.mark.slow  # about 40 s (1,000 tweets and 73,000 interactions seeded, a model trained, then 9 s of load)
def test_the_shipped_for_you_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "social-for-you", "--duration", "8", "--warmup", "1", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) >= {"social-timeline", "social-tweets", "reco-ranker", "reco-signals"}
    journeys = result["journeys"]
    assert journeys["for_you"]["count"] > 100 and not journeys["for_you"]["errors"]
    # Every like from "For you" reached the recommendation engine: the liked tweet left the liker's timeline.
    assert journeys["like_to_for_you"]["count"] > 0 and not journeys["like_to_for_you"]["errors"]
    assert {s["name"] for s in result["slos"]} >= {"for-you-load", "for-you-availability", "like-to-for-you"}


def test_social_profiles_are_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and all(f"{name}:" in done.stdout for name in ("social-feed", "social-feed-fanout", "social-for-you"))
