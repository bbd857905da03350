"""``casemesh run`` with faults, as a user runs it: ``faults:`` in the profile and ``--fault`` on the command line."""

from __future__ import annotations

import json
import os

from casemesh.harness.report_html import render_run_report

from .profiles import RESOLVE, write_profile
from .test_cli_run import casemesh

ABORT_FAULT = """faults:
  - {kind: abort, target: urlshortener/Resolve, code: UNAVAILABLE, percent: 50, at_s: 1, for_s: 1.5}
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_profile_and_command_line_faults_run_and_are_recorded(tmp_path):
    profile = write_profile(tmp_path, duration_s=5, warmup_s=1)
    profile.write_text(profile.read_text() + ABORT_FAULT)
    out = tmp_path / "out"
    done = casemesh("run", str(profile), "--out", str(out), "--no-progress", "--no-control", "--report", "off",
                    "--fault", "analytics:pause,at=0.5s,for=1s", "--fault", "idgen:kill,at=0.5s,restart_after=0.5s")
    # 4: a machine this loaded may leave the load generator behind its schedule; the faults are recorded all the same.
    assert done.returncode in (0, 4), done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())
    abort, pause, kill = result["faults"]
    assert [f["name"] for f in result["faults"]] == ["abort:urlshortener/Resolve", "pause:analytics", "kill:idgen"]

    # The abort: its errors are in its window and nowhere else (the counted seconds follow its actual interval).
    assert abort["source"].endswith("faults[0]") and abort["planned"] == {"start_s": 1.0, "end_s": 2.5}
    assert abs(abort["actual"]["start_s"] - 1.0) < 1 and abs(abort["actual"]["end_s"] - 2.5) < 1, abort
    first, last = abort["counted"]["from_s"], abort["counted"]["to_s"]
    assert abort["counted"]["codes"] == ["UNAVAILABLE"]
    unavailable = result["series"]["rpcs"][RESOLVE]["errors"]["UNAVAILABLE"]
    inside = sum(unavailable[first:last])
    assert inside > 0 and sum(unavailable) == inside, (unavailable, first, last)
    assert abort["errors"]["rpcs"][RESOLVE] == {"UNAVAILABLE": inside} == abort["errors"]["journeys"]["resolve"]
    assert abort["errors_total"] == inside == result["rpcs"][RESOLVE]["errors"]["UNAVAILABLE"]
    resolves_in_window = sum(result["series"]["rpcs"][RESOLVE]["count"][first:last])
    assert inside < resolves_in_window  # 50 %, not all of them

    # The pause: SIGSTOP then SIGCONT, on time; the run went on.
    assert [e["event"] for e in pause["events"]] == ["pause", "resume"]
    assert pause["planned"] == {"start_s": 0.5, "end_s": 1.5} and abs(pause["actual"]["end_s"] - 1.5) < 1

    # The kill: SIGKILL, and a restart the supervisor did not race (no restart of its own).
    events = [e["event"] for e in kill["events"]]
    assert events[:3] == ["kill", "exited", "restart"] and kill["events"][1]["exit"] == "killed by SIGKILL"
    assert events == ["kill", "exited", "restart", "serving"] or kill["notes"], kill
    assert result["target"]["restarts"] == {}
    pids = [e["pid"] for f in (pause, kill) for e in f["events"] if e.get("pid")]
    assert pids and not any(alive(pid) for pid in pids)  # everything stopped at the end, the paused process too

    words = " ".join(done.stdout.split())  # a line longer than the console wraps
    assert "faults (seconds from the measured window's start" in words and "calls ended UNAVAILABLE" in words, done.stdout
    report = render_run_report(result)
    assert "fault abort:urlshortener/Resolve (abort=UNAVAILABLE@50%)" in report and "fault pause:analytics (pause)" in report


def test_a_bad_fault_is_a_config_error_naming_it_before_anything_starts(tmp_path):
    profile = write_profile(tmp_path)
    out = tmp_path / "out"
    done = casemesh("run", str(profile), "--out", str(out), "--no-progress", "--fault", "idgen/LeaseId:abort=UNAVAILABLE,at=1s")
    assert done.returncode == 2
    assert "--fault: 'idgen/LeaseId:abort=UNAVAILABLE,at=1s': target: idgen has no method 'LeaseId'" in done.stderr
    assert not out.exists()
