"""``casemesh run live`` as a user runs it: the shipped profile on the embedded mesh, broadcasters, viewers and chat."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 30 s (eight services, 2 broadcasters, 80 viewers, 20 chatters, 10 s of load): .ci/run runs it
def test_the_shipped_live_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "live", "--duration", "10", "--warmup", "2", "--no-progress", "--report", "off",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    # The services the workload calls (the origin and chat-messages/router sit behind them in the mesh).
    assert set(result["target"]["services"]) == {"live-ingest", "live-edge", "live-chat", "chat-gateway-1",
                                                 "chat-gateway-2"}
    journeys = result["journeys"]
    # 10 s of two 30 frame/s broadcasts: about 600 chunks, each measured once at its first viewer.
    assert journeys["glass_to_glass"]["count"] > 300 and not journeys["glass_to_glass"]["errors"]
    assert journeys["join"]["count"] > 0 and journeys["time_to_first_part"]["count"] > 0
    assert journeys["chat_delivery"]["count"] > 0 and not journeys["chat_delivery"]["errors"]
    # The invariants: no viewer saw a gap or a duplicate, no banned word was delivered, the spammer was held.
    for invariant in ("continuity", "moderation", "rate_limit"):
        assert journeys[invariant]["count"] > 0 and not journeys[invariant]["errors"], (invariant, journeys[invariant])
    assert {s["name"] for s in result["slos"]} >= {"glass-to-glass", "time-to-first-part", "chat-delivery", "continuity",
                                                   "moderation", "rate-limit"}


def test_the_live_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "live:" in done.stdout
