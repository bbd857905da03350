"""``casemesh run payments`` as a user runs it: the shipped profile on the embedded mesh, merchants' checkouts with
their retries, holds, refunds, a card-testing bot, and the acquirers' settlement reconciled at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 40 s (five services, 10 s of payments and the settlement at the end): .ci/run runs it
def test_the_shipped_payments_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "payments", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    # The harness calls the vault and the gateway; the gateway calls the fraud service and both acquirers (the
    # settlement below closes a batch at each of them: it fails UNAVAILABLE when either is missing).
    assert set(result["target"]["services"]) == {"payments-vault", "payments-gateway"}
    journeys = result["journeys"]
    assert journeys["checkout"]["count"] > 50 and journeys["checkout_time"]["count"] > 50, journeys["checkout"]
    # The invariants: one payment per idempotency key, charged at most once; settlement reconciles.
    assert journeys["single_charge"]["count"] > 50 and not journeys["single_charge"]["errors"], journeys["single_charge"]
    settlement = journeys["settlement"]
    assert settlement["count"] == 1 and not settlement["errors"], settlement


def test_the_payments_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "payments:" in done.stdout
