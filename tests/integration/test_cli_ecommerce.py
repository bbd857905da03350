"""``casemesh run ecommerce`` as a user runs it: the shipped profile on the embedded mesh, shoppers browsing and
searching the catalogue, carts holding reserved stock, checkouts through the saga and the payment gateway, and the
inventory audited at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 45 s (the shop's and the payment gateway's services, 3,000 products seeded, 10 s of shoppers)
def test_the_shipped_ecommerce_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "ecommerce", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine (checkout p99 near its 500 ms). Never a configuration or
    # harness error, and never an invalid run but for the load generator's send lag on a machine whose hypervisor
    # stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert {"ecommerce-catalog", "ecommerce-cart", "ecommerce-orders"} <= set(result["target"]["services"])
    journeys = result["journeys"]
    assert journeys["search_time"]["count"] > 100 and journeys["checkout_time"]["count"] > 20, journeys["checkout_time"]
    assert journeys["checkout_outcome"]["errors"].get("CONFIRMED", 0) > 0, journeys["checkout_outcome"]
    # The invariants: no unit sold twice; the stock sold is the orders the clients saw confirmed, read back so.
    for check in ("no_oversell", "orders_consistent"):
        assert journeys[check]["count"] == 1 and not journeys[check]["errors"], journeys[check]


def test_the_ecommerce_profiles_are_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "ecommerce:" in done.stdout and "ecommerce-flash-sale:" in done.stdout
