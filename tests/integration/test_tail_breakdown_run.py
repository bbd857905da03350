"""The tail breakdown by hop from a real run: a delay injected into one hop shows up as that hop's time (issue 10, item 2)."""

from __future__ import annotations

import json
import subprocess
import sys

from .profiles import write_profile

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


def test_a_delay_injected_into_urlshortener_is_its_self_time(tmp_path):
    # Constant arrivals: 2 s at 20/s is 40 journeys, 30 of them after the warm-up, whatever the arrival path.
    profile = write_profile(tmp_path, rate=20, process="constant", duration_s=2, warmup_s=0.5,
                            journeys="  - {name: resolve, weight: 1}\n")
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", str(profile), "--out", str(out), "--no-progress", "--no-control", "--report", "off",
                           "--trace-ratio", "1", "--fault", "urlshortener/Resolve:delay=300ms"],
                          capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    assert done.returncode in (0, 1), done.stdout + done.stderr
    resolve = json.loads((out / "result.json").read_text())["tail_breakdown"]["resolve"]
    assert resolve["sampled"] >= 20  # every journey traced
    # Around the median (robust on a loaded machine), the 300 ms of the injected delay is urlshortener's own time:
    # the largest part, whole, and not blamed on the transport or the harness.
    median = resolve["median"]
    largest = next(iter(median["parts_ms"]))
    assert largest == "urlshortener self", median
    assert median["parts_ms"]["urlshortener self"] >= 295
    assert abs(sum(median["parts_ms"].values()) - median["mean_ms"]) <= 0.01 * median["mean_ms"] + 0.01
    assert "tail breakdown by hop" in done.stdout and "urlshortener self" in done.stdout
