"""``casemesh run proximity`` as a user runs it: the shipped profile on the embedded mesh, places searched, entities
moving across geofences, fence events watched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about a minute (seeding the places and fences, three services, the movers' streams): .ci/run runs it
def test_the_shipped_proximity_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "proximity", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=400, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) == {"proximity-places", "proximity-tracker", "proximity-geofence"}
    journeys = result["journeys"]
    assert journeys["search"]["count"] > 50, journeys["search"]
    assert journeys["fence_notify"]["count"] > 0, journeys["fence_notify"]
    # The invariant: every fence event the acknowledged positions cause is seen once, none twice, none extra.
    invariant = journeys["fence_events_exactly_once"]
    assert invariant["count"] > 0 and not invariant["errors"], invariant


def test_the_proximity_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "proximity:" in done.stdout
