"""``casemesh run photo-sharing`` as a user runs it: the shipped profile on the embedded mesh, seeded through the API."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 60 s (seeding 400 users and 400 photos resized by Pillow, then 9 s of load): .ci/run runs it
def test_the_shipped_photo_sharing_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "photo-sharing", "--duration", "8", "--warmup", "1", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert result["target"]["mode"] == "embedded"
    assert set(result["target"]["services"]) >= {"photo-media", "photo-feed", "video-edge", "social-graph"}
    journeys = result["journeys"]
    assert journeys["feed"]["count"] > 50 and not journeys["feed"]["errors"]
    # Every image loaded is a whole JPEG of the size its SizeRef gives (the journey checks; a mismatch is DATA_LOSS).
    assert journeys["photo_load"]["count"] > 100 and not journeys["photo_load"]["errors"]
    assert journeys["photo_load_edge_hit"]["count"] > 0 and journeys["photo_load_edge_miss"]["count"] > 0
    assert {s["name"] for s in result["slos"]} >= {"photo-load", "photo-availability"}


def test_the_photo_sharing_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "photo-sharing:" in done.stdout
