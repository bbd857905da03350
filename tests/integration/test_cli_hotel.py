"""``casemesh run hotel`` as a user runs it: the shipped profile on the embedded mesh, guests searching hotels, booking
with idempotent retries (authorise now, capture at check-in), cancelling and checking in, and the room-nights audited
at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 40 s (the hotel services and the payment gateway's, hundreds of room types, 10 s of guests)
def test_the_shipped_hotel_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "hotel", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert {"hotel-booking", "hotel-inventory"} <= set(result["target"]["services"])
    journeys = result["journeys"]
    assert journeys["search"]["count"] > 100 and journeys["booking_time"]["count"] > 10, journeys["booking_time"]
    assert journeys["booking_outcome"]["errors"].get("CONFIRMED", 0) > 0, journeys["booking_outcome"]
    # The invariants: no room-night sold beyond its rooms; every confirmed booking reads back as the guest saw it.
    for check in ("no_double_booking", "bookings_consistent"):
        assert journeys[check]["count"] == 1 and not journeys[check]["errors"], journeys[check]


def test_the_hotel_profiles_are_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "hotel:" in done.stdout and "hotel-peak-dates:" in done.stdout
