"""The shipped retry-storm profiles end to end: without budgets the mesh stays down after the spike, with them it recovers.

Each run takes about 45 s (35 s of load plus start-up), so the test is
``slow`` (``pytest -m slow tests/integration/test_retry_storm.py``; .ci/run
runs it). The analytics service's capacity is set by a delay fault and a
concurrency limit, and the work of abandoned calls goes on
(``abandoned_work: finish``), so the storm does not depend on the CPU and
the verdicts hold on a quiet machine and a loaded 2-core one alike; a run
the harness judged invalid (its own send lag on a saturated machine) still
has its verdicts in result.json, and they are what is checked here. On a
machine that stalls (the control stream's p99 jumping, harness/floor.py) the
guarded verdict may be *inconclusive*: missed only in windows holding a
stall, met without them; that is accepted, a miss outside the stalls is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


def recovery_verdict(profile: str, out: Path) -> dict:
    done = subprocess.run([*CLI, "run", profile, "--out", str(out), "--no-progress", "--report", "off"],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1, 4), done.stdout[-3000:] + done.stderr[-3000:]  # passed, SLO missed, run invalid
    result = json.loads((out / "result.json").read_text())
    if result["timeline"]["abandoned_at_s"] is not None:  # the harness itself fell seconds behind: nothing was measured after the spike
        pytest.skip(f"{profile}: this machine was too busy to run it: {'; '.join(result['invalid_reasons'])}")
    (verdict,) = [v for v in result["slos"] if v["name"] == "stats-recovery"]
    assert verdict["recovery"]["windows"], verdict["note"]  # judged on data, not for lack of it
    return verdict


@pytest.mark.slow
def test_the_storm_outlives_the_spike_without_budgets_and_the_guarded_mesh_recovers(tmp_path: Path):
    storm = recovery_verdict("url-shortener-retry-storm", tmp_path / "storm")
    assert storm["passed"] is False, storm["note"]
    assert storm["recovery"]["event_end_s"] == 15

    guarded = recovery_verdict("url-shortener-retry-storm-guarded", tmp_path / "guarded")
    if guarded["inconclusive"]:  # missed only in windows where the machine itself stalled (harness/floor.py)
        assert "without those seconds: recovered" in guarded["machine_note"], guarded["machine_note"]
    else:
        assert guarded["passed"] is True, (guarded["note"], guarded["machine_note"])
        assert guarded["recovery"]["recovery_s"] <= 5
