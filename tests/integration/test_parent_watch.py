"""A service started by a harness that dies (SIGKILL) stops by itself instead of serving on, orphaned."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from casemesh.harness.implementations import NODE_ENTRY_POINTS
from casemesh.harness.mesh import free_port

PYTHON_SERVE = [sys.executable, "-m", "casemesh.harness.cli", "serve", "idgen", "--no-supervise", "--topology"]
NODE_SERVE = ["node", str(NODE_ENTRY_POINTS["idgen"][0]), "--service", "idgen", "--topology"]


@pytest.mark.parametrize("command", [PYTHON_SERVE, NODE_SERVE], ids=["python", "node"])
def test_a_served_process_stops_when_the_process_that_started_it_is_killed(tmp_path, command):
    if command is NODE_SERVE and not NODE_ENTRY_POINTS["idgen"][0].is_file():
        subprocess.run(["make", "-s", "node-idgen"], check=True, timeout=300)
    topology = tmp_path / "topology.yaml"
    topology.write_text(f"services:\n  idgen: {{address: 127.0.0.1:{free_port()}}}\ndata_dir: {tmp_path / 'data'}\n")
    # A stand-in harness: starts the service as the embedded mesh does (its pid in CASEMESH_PARENT_PID), then waits.
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, subprocess, sys, time
        from casemesh.services.runtime.parent_watch import parent_environment
        log = open({str(tmp_path / 'idgen.log')!r}, "w")
        child = subprocess.Popen({[*command, str(topology)]!r}, env={{**os.environ, **parent_environment()}}, stdout=log, stderr=log)
        print(child.pid, flush=True)
        time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "CASEMESH_SECRET": secrets.token_hex(32)})
    child = int(parent.stdout.readline())
    try:
        deadline = time.monotonic() + 60
        while "serving idgen" not in (tmp_path / "idgen.log").read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "serving idgen" in (tmp_path / "idgen.log").read_text()
        parent.send_signal(signal.SIGKILL)  # the harness dies without stopping its children
        parent.wait(10)
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the orphaned service is still running"
        assert "is gone: stopping, as on SIGTERM" in (tmp_path / "idgen.log").read_text()
    finally:
        if _alive(child):
            os.kill(child, signal.SIGKILL)
        if parent.poll() is None:
            parent.kill()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie has stopped; init reaps it
    except FileNotFoundError:
        return False
