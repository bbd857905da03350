"""The ad serving A/B: budget pacing (ads-budget.pacing) against when in the day campaigns' budgets run out.

Usage::

    .venv/bin/python benchmarks/ads_ab.py [--arms paced,asap] [--duration 200] [--warmup 10] [--repeat 1]
        [--json FILE]

Each arm is ``casemesh run ads-pacing`` (harness/profiles/ads-pacing.yaml: 30 campaigns whose daily budgets together
buy 30% of a day's page views at the profile's 20 a second, a day compressed to 90 s by ads-budget's
``day_length_s``; ads-campaigns, ads-budget, ads-frequency and ads-server on 127.0.0.1):

- ``paced`` (the shipped setting, seed 001 #15 "pacing"): a charge is taken only while the day's spend stays within
  an even spread of the budget over the day plus ``pacing_slack`` (2% of it), so a budget runs out at the end of the
  day, if at all;
- ``asap`` (``pacing=false``): every charge the budget allows is taken, and budgets run out as early as the traffic
  spends them.

Reported per arm (result.json): the budget exhaustions seen (``budget_exhaustion``: the share of the day left when a
budget ran out), their median and the share that came after 80% of the day (the SLO ``ads-budgets-last-the-day``),
the ads served and the no-fills by reason (``fill``), Decide p99, every SLO verdict, the send lag p99 and the run's
validity. ``--json FILE`` keeps the raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with
``--repeat``), a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "paced": ["ads-budget.pacing=true"],
    "asap": ["ads-budget.pacing=false"],
}
DECIDE = "casemesh.ads.v1.AdService/Decide"
#: ``budget_exhaustion``'s latency: 1 s is a whole day, so 200 ms is "after 80% of the day".
LATE_MS = 200.0


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run ads-pacing`` with the arm's pacing; the figures from its result.json."""
    result, exit_code = run_casemesh("ads-pacing", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    exhaustion = result["journeys"].get("budget_exhaustion", {})
    fill = result["journeys"].get("fill", {})
    late = next((s["measured"] for s in result["slos"] if s["name"] == "ads-budgets-last-the-day"), None)
    return {**common(name, result, exit_code), "settings": ARMS[name], "exhaustions": exhaustion.get("count", 0),
            "day_left_p50_ms": journey(result, "budget_exhaustion", "p50_ms"), "late_share": late,
            "served": fill.get("ok", 0), "no_fill": fill.get("errors", {}),
            "decide_p99_ms": (result.get("rpcs") or {}).get(DECIDE, {}).get("p99_ms")}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [("| arm | budget exhaustions | day left at exhaustion (median) | after 80% of the day | ads served | "
              "no fill (by reason) | Decide p99 | SLOs | send lag p99 | valid |"),
             "|---|---:|---:|---:|---:|---|---:|---|---:|---|"]
    for r in rows:
        left = "-" if r["day_left_p50_ms"] is None else f"{r['day_left_p50_ms'] / 10:.1f}%"
        late = "-" if r["late_share"] is None else f"{r['late_share']:.0%}"
        no_fill = ", ".join(f"{reason} {n}" for reason, n in sorted(r["no_fill"].items())) or "none"
        lines.append(f"| {r['arm']} | {r['exhaustions']} | {left} | {late} | {r['served']:,} | {no_fill} | "
                     f"{ms(r['decide_p99_ms'])} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
                     f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "paced,asap", duration_s=200.0)
    parser.set_defaults(warmup=10.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "ads")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
