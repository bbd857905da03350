"""The retry storm and its mitigation: run both retry-storm profiles, print their recovery verdicts and per-second figures, plot them.

Runs ``casemesh run url-shortener-retry-storm`` and ``casemesh run
url-shortener-retry-storm-guarded`` one after the other (about a minute
each), then reads their result.json files and prints, per second of the run,
GetStats' p50, p99 and failed calls side by side, and writes a small PNG of
the p99 and the share of failed calls over time (``--plot``; docs/img/retry-storm.png in
docs/benchmarks.md "Retry storm"). ``--skip-run`` only reads and plots the
results of an earlier run in ``--out``. Usage::

    .venv/bin/python benchmarks/retry_storm.py --out out/retry-storm --plot docs/img/retry-storm.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

PROFILES = {"storm": "url-shortener-retry-storm", "guarded": "url-shortener-retry-storm-guarded"}
GET_STATS = "casemesh.urlshortener.v1.UrlShortenerService/GetStats"


def run(profile: str, out: Path) -> int:
    command = [sys.executable, "-m", "casemesh.harness.cli", "run", profile, "--out", str(out), "--no-progress"]
    print("$ casemesh run", profile, "--out", out, flush=True)
    return subprocess.run(command, stdin=subprocess.DEVNULL).returncode


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / "result.json").read_text())


def summary(name: str, result: dict[str, Any]) -> None:
    (verdict,) = [v for v in result["slos"] if v["name"] == "stats-recovery"]
    environment = result.get("environment", {})
    print(f"{name}: recovery SLO {'PASS' if verdict['passed'] else 'FAIL'}: {verdict['note']}")
    print(f"  measured after the allowance {verdict['measured']:.2%} good ({verdict['good']:,} of {verdict['total']:,}); "
          f"run valid: {result['valid']} {result.get('invalid_reasons') or ''}; noisy: {environment.get('noisy')}")


def per_second(results: dict[str, dict[str, Any]]) -> None:
    columns = list(results)
    print("second  " + "  ".join(f"{c:>7} p50  {c:>7} p99  {c:>7} failed" for c in columns))
    length = max(results[c]["series"]["seconds"] for c in columns)
    for second in range(length):
        cells = []
        for c in columns:
            series = results[c]["series"]["rpcs"].get(GET_STATS, {})
            counts = series.get("count", [])
            if second >= len(counts) or not counts[second]:
                cells.append(f"{'':>11}  {'':>11}  {'':>14}")
                continue
            failed = sum(v[second] for v in series.get("errors", {}).values() if second < len(v))
            cells.append(f"{series['p50_ms'][second]:>11,.0f}  {series['p99_ms'][second]:>11,.0f}  {failed:>5} of {counts[second]:>5}")
        print(f"{second:>6}  " + "  ".join(cells))


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (axis, failed_axis) = plt.subplots(2, 1, figsize=(7, 4.6), dpi=100, sharex=True,
                                               gridspec_kw={"height_ratios": [3, 2]})
    for name, result in results.items():
        series = result["series"]["rpcs"][GET_STATS]
        seconds = [s for s, count in enumerate(series["count"]) if count]
        axis.plot(seconds, [series["p99_ms"][s] for s in seconds], label=f"{PROFILES[name]}: p99", linewidth=1.5)
        failed = [sum(v[s] for v in series.get("errors", {}).values() if s < len(v)) for s in seconds]
        failed_axis.plot(seconds, [100 * f / series["count"][s] for f, s in zip(failed, seconds)], linewidth=1.5,
                         label=f"{PROFILES[name]}: failed")
    any_result = next(iter(results.values()))
    spike = any_result["profile"].get("arrival", {})
    start, length = spike.get("at_s"), spike.get("duration_s")
    warmup = any_result["profile"].get("warmup_s", 0)
    (verdict,) = [v for v in any_result["slos"] if v["name"] == "stats-recovery"]
    deadline = None
    if verdict.get("recovery") and verdict["recovery"].get("event_end_s") is not None:
        deadline = verdict["recovery"]["event_end_s"] + verdict["recovery"]["within_s"]
    for panel in (axis, failed_axis):
        first = panel is axis
        if start is not None and length is not None:
            panel.axvspan(start, start + length, color="orange", alpha=0.25, label="load spike" if first else None)
        panel.axvspan(0, warmup, color="grey", alpha=0.2, label="warm-up" if first else None)
        if deadline is not None:
            panel.axvline(deadline, color="black", linestyle=":", linewidth=0.8,
                          label="recovery deadline (spike end + 5 s)" if first else None)
    axis.axhline(300, color="black", linestyle="--", linewidth=0.8, label="recovery SLO threshold (300 ms)")
    axis.set_ylabel("GetStats p99 (ms)")
    highest = max(v for r in results.values() for v in r["series"]["rpcs"][GET_STATS]["p99_ms"] if v is not None)
    axis.set_ylim(0, max(1100, highest * 1.05))
    axis.legend(fontsize=7, loc="upper right")
    failed_axis.set_ylabel("GetStats failed (%)")
    failed_axis.set_ylim(0, 105)
    failed_axis.set_xlabel("seconds from the start of the run")
    failed_axis.legend(fontsize=7, loc="center right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    print(f"plot: {path} ({path.stat().st_size / 1024:.0f} KiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/retry-storm"), help="parent folder of the two runs' OUT folders")
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG of p99 and failed share over time here")
    parser.add_argument("--skip-run", action="store_true", help="read the results of an earlier run in --out")
    args = parser.parse_args()
    if not args.skip_run:
        for name, profile in PROFILES.items():
            code = run(profile, args.out / name)
            print(f"exit {code}", flush=True)
    results = {name: load(args.out / name) for name in PROFILES}
    for name, result in results.items():
        summary(PROFILES[name], result)
    per_second(results)
    if args.plot is not None:
        plot(results, args.plot)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
