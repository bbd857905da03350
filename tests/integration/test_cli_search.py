"""``casemesh run search`` as a user runs it: the shipped profile on the embedded mesh, a synthetic web indexed through
the public API, users searching, typing into autocomplete and publishing breaking news, and the index's counts
checked at the end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .profiles import verdict_exit

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


@pytest.mark.slow  # about 40 s (the search services, 5,000 pages indexed, 10 s of users)
def test_the_shipped_search_profile_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", "search", "--duration", "10", "--warmup", "2", "--no-progress", "--report",
                           "off", "--out", str(out)], check=False, capture_output=True, text=True, timeout=400,
                          stdin=subprocess.DEVNULL)
    # 0: every SLO met; 1: one missed on this (loaded) machine. Never a configuration or harness error, and never an
    # invalid run but for the load generator's send lag on a machine whose hypervisor stalls it (verdict_exit).
    assert (out / "result.json").exists(), done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    assert {"search-shards", "search-indexer", "search-query", "search-autocomplete"} <= \
        set(result["target"]["services"])
    journeys = result["journeys"]
    assert journeys["search"]["count"] > 100 and journeys["autocomplete"]["count"] > 50, journeys["search"]
    assert journeys["index_freshness"]["count"] > 0, journeys.get("index_freshness")
    # Every results page keeps the contract; the shards hold exactly the document store's pages at the end.
    assert journeys["search_correct"]["count"] > 100 and not journeys["search_correct"]["errors"], \
        journeys["search_correct"]
    assert journeys["index_consistent"]["count"] == 1 and not journeys["index_consistent"]["errors"], \
        journeys["index_consistent"]


def test_the_search_profiles_are_listed():
    done = subprocess.run([*CLI, "profiles"], check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "search:" in done.stdout and "search-stragglers:" in done.stdout
