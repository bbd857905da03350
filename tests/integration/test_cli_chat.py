"""``casemesh run chat`` as a user runs it: the shipped profile on the embedded mesh, 1,000 devices on bidi streams."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
CONNECT = "casemesh.chat.v1.ChatGatewayService/Connect"


@pytest.mark.slow  # about 40 s (four services, 1,000 streams connected, 10 s of load): .ci/run runs it
def test_the_shipped_chat_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "chat", "--duration", "10", "--warmup", "2", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) == {"chat-gateway-1", "chat-gateway-2", "chat-router", "chat-messages"}
    journeys = result["journeys"]
    # Messages reached their recipients' streams, none out of order or twice in a session (that would be DATA_LOSS).
    assert journeys["send_message"]["count"] > 50 and not journeys["send_message"]["errors"]
    assert journeys["delivery"]["count"] > 30 and not journeys["delivery"]["errors"]
    assert journeys["group_delivery"]["count"] > 30 and not journeys["group_delivery"]["errors"]
    assert journeys["reconnect"]["count"] > 0 and not journeys["reconnect"]["errors"]
    # Every stream the run opened ended as the client closed it (OK): none was cut by a server.
    streams = result["rpcs"][CONNECT]
    assert streams["count"] >= 1000 and not streams["errors"]
    assert {s["name"] for s in result["slos"]} >= {"delivery", "group-delivery", "send-availability"}


def test_the_chat_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "chat:" in done.stdout
