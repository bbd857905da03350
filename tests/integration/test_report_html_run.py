"""``casemesh run`` writes ``OUT/report.html`` beside result.json: the per-second series of a real run, as a page."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from .profiles import RESOLVE, latency_slo, verdict_exit, write_profile

CLI = [sys.executable, "-m", "casemesh.harness.cli"]


def test_run_writes_a_self_contained_report_from_its_series(tmp_path):
    profile = write_profile(tmp_path, duration_s=2, warmup_s=1, rate=50,
                            slos={"ok.slo.yaml": latency_slo("resolve-generous", RESOLVE, within_ms=1500)})
    out = tmp_path / "out"
    done = subprocess.run([*CLI, "run", str(profile), "--out", str(out), "--no-progress"], capture_output=True, text=True,
                          timeout=180, stdin=subprocess.DEVNULL)
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) == 0, done.stdout + done.stderr
    assert f"report: {out / 'report.html'}" in done.stdout
    series = result["series"]
    assert series["seconds"] >= 3 and series["warmup"][:2] == [True, False]
    counted = sum(series["rpcs"][RESOLVE]["count"])
    assert counted > result["rpcs"][RESOLVE]["count"]  # the series has the warm-up's calls too
    page = (out / "report.html").read_text()
    assert "<script" not in page.lower() and "<link" not in page and "<!--" not in page  # pygal's config script and comments: gone
    assert set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>]*", page)) <= {"http://www.w3.org/2000/svg"}  # nothing fetched
    assert "resolve-generous" in page and ">SLO resolve-generous: 99% ≤ 1500 ms<" in page
    # Every plotted section has its plots: per RPC and journey over time, each process's event loop, the percentiles, arrivals.
    for heading, plots in (("Latency over time", len(series["rpcs"]) + len(series["journeys"])), ("Event-loop lag and GC pauses", 3),
                           ("Latency by percentile", 2), ("Throughput: intended vs achieved", 2)):
        start = page.index(f"<section><h2>{heading}</h2>")
        assert page[start:page.index("</section>", start)].count("<svg") == plots, heading
