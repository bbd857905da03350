"""``casemesh run collab`` as a user runs it: the shipped profile on the embedded mesh, 200 editors with CRDT replicas."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
EDIT = "casemesh.collab.v1.EditorService/Edit"


@pytest.mark.slow  # about 40 s (three services, 200 streams joined, 10 s of load, the convergence check): .ci/run runs it
def test_the_shipped_collab_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "collab", "--duration", "10", "--warmup", "2", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) == {"collab-editor-1", "collab-editor-2", "collab-documents"}
    journeys = result["journeys"]
    # Edits were acknowledged durable and reached the other editors' replicas; no remote frame went backwards in a
    # session or failed to apply (that would be DATA_LOSS).
    assert journeys["edit"]["count"] > 50 and not journeys["edit"]["errors"]
    assert journeys["remote_edit"]["count"] > 150 and not journeys["remote_edit"]["errors"]
    assert journeys["remote_cursor"]["count"] > 0 and not journeys["remote_cursor"]["errors"]
    assert journeys["reconnect"]["count"] > 0 and not journeys["reconnect"]["errors"]
    assert journeys["open"]["count"] > 0 and not journeys["open"]["errors"]
    # After the run every replica held its document's text: one convergence sample per editor, none failed.
    assert journeys["convergence"]["count"] == 200 and not journeys["convergence"]["errors"]
    # Every stream the run opened ended as the client closed it (OK): none was cut by a server.
    streams = result["rpcs"][EDIT]
    assert streams["count"] >= 200 and not streams["errors"]
    assert {s["name"] for s in result["slos"]} >= {"remote-edit", "edit-acked", "join", "edit-availability", "convergence"}


def test_the_collab_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "collab:" in done.stdout


@pytest.mark.slow  # about 35 s: .ci/run runs it
def test_the_hot_document_profile_runs_end_to_end_and_converges(tmp_path):
    """collab-hot: 100 editors in one document, keystroke by keystroke; every edit relayed to 99 replicas."""
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "collab-hot", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    journeys = result["journeys"]
    assert journeys["edit"]["count"] > 20 and not journeys["edit"]["errors"]
    # Nearly every edit is in the hot document: each reaches up to 99 other replicas.
    assert journeys["remote_edit"]["count"] > 50 * journeys["edit"]["count"] and not journeys["remote_edit"]["errors"]
    assert journeys["convergence"]["count"] == 104 and not journeys["convergence"]["errors"]


def test_the_hot_document_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "collab-hot:" in done.stdout
