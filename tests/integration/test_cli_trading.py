"""``casemesh run trading`` as a user runs it: the shipped profile on the embedded mesh, market makers quoting and
cancelling, takers trading, market data streams held for the run, and the books checked at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 40 s (three services, the seeded ladder, 10 s of orders and the end checks): .ci/run runs it
def test_the_shipped_trading_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "trading", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine: the seed's 10 ms p99 is tight on two shared cores.
    # Never a configuration or harness error, and never an invalid run but for the load generator's send lag on a
    # machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert set(result["target"]["services"]) == {"trading-engine", "trading-gateway", "trading-marketdata"}
    journeys = result["journeys"]
    assert journeys["quote"]["count"] > 200 and journeys["take"]["count"] > 50, journeys["quote"]
    assert journeys["market_data_freshness"]["count"] > 50, journeys["market_data_freshness"]
    # The invariants: orders as sent with consistent fills, streams in sequence, books consistent, fills = trades.
    for invariant in ("order_integrity", "market_data_sequence", "book_integrity", "fills_match_trades"):
        figures = journeys[invariant]
        assert figures["count"] >= 1 and not figures["errors"], (invariant, figures)


def test_the_trading_profile_is_listed():
    done = subprocess.run([*CLI, "profiles"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "trading:" in done.stdout
