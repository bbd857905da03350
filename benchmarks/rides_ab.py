"""The ride-sharing A/B: the offer batch size (rides-dispatch.offer_batch_size) against the 5 s match SLO and the share
of offers declined or expired.

Usage::

    .venv/bin/python benchmarks/rides_ab.py [--arms batch1,batch3,batch5] [--rate-scale 1] [--duration 60]
        [--warmup 10] [--repeat 1] [--json FILE]

Each arm is ``casemesh run rides`` (harness/profiles/rides.yaml: 150 drivers on ReportLocations and ReceiveOffers
streams, riders arriving open-loop at 2 a second around a moving hotspot; one process per service on 127.0.0.1) with
``--set rides-dispatch.offer_batch_size=N``:

- ``batch1``: one driver at a time, the nearest: every decline or lapse costs a round of the offer timeout (5 s) or of
  the driver's think time before the next driver hears of the ride;
- ``batch3``: the shipped value, seed 003's "Send request to best drivers (top 3)";
- ``batch5``: five at once: faster still, more drivers bothered per ride (their offers withdrawn when another wins).

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1), at the profile's rate times
``--rate-scale``. Reported per arm: match_time p50 / p95 (the rider's request → the MATCHED update on its WatchRide
stream) and its share within 5 s (the SLO), offers per ride, the share of offers declined or expired (the drivers'
view: their workload records each offer's fate as the ``offer`` measure), the share withdrawn (another driver won),
late accepts (ABORTED), every SLO verdict, the harness's send lag p99 and the run's validity. ``--json FILE`` keeps the
raw figures. The runs are benchmarks/ab.py's: a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "batch1": ["rides-dispatch.offer_batch_size=1"],
    "batch3": [],
    "batch5": ["rides-dispatch.offer_batch_size=5"],
}


def offer_shares(result: dict[str, Any]) -> dict[str, Any]:
    """Offers in all, and the shares declined or expired, withdrawn and lost (ABORTED), from the ``offer`` measure."""
    offers = result["journeys"].get("offer", {})
    total = offers.get("count", 0) or 0
    errors = offers.get("errors", {})

    def share(*codes: str) -> float | None:
        return sum(errors.get(c, 0) for c in codes) / total if total else None

    return {"offers": total, "won": offers.get("ok", 0), "declined_or_expired": share("DECLINED", "EXPIRED"),
            "withdrawn": share("WITHDRAWN"), "late_accepts": errors.get("ABORTED", 0)}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run rides`` with the arm's settings; the figures from its result.json."""
    result, exit_code = run_casemesh("rides", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    return {**common(name, result, exit_code), "settings": ARMS[name],
            "rides": journey(result, "match_time", "count"),
            "match_p50_ms": journey(result, "match_time", "p50_ms"),
            "match_p95_ms": journey(result, "match_time", "p95_ms"),
            "match_p99_ms": journey(result, "match_time", "p99_ms"),
            **offer_shares(result)}


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | rides matched | match time p50 / p95 / p99 | within 5 s | offers per ride | declined or expired | "
             "withdrawn | late accepts | SLOs | send lag p99 | valid |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        per_ride = f"{r['offers'] / r['won']:.2f}" if r["won"] else "-"
        lines.append(f"| {r['arm']} | {r['rides'] or 0:,} | {ms(r['match_p50_ms'])} / {ms(r['match_p95_ms'])} / "
                     f"{ms(r['match_p99_ms'])} | {pct(r['measured'].get('match-time'))} | {per_ride} | "
                     f"{pct(r['declined_or_expired'])} | {pct(r['withdrawn'])} | {r['late_accepts']} | {slo_cell(r)} | "
                     f"{r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "batch1,batch3,batch5", duration_s=60.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "rides")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
