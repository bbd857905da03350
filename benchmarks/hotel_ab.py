"""The hotel-reservation A/B: the room inventory's lock mode (hotel-inventory.lock_mode: pessimistic per room-night
locks, the seed's, or an optimistic version check with ABORTED and retry) under contention for popular dates.

Usage::

    .venv/bin/python benchmarks/hotel_ab.py [--arms pessimistic,optimistic] [--rate-scale 1] [--duration 60]
        [--warmup 10] [--repeat 1] [--json FILE]

Each arm is ``casemesh run hotel-peak-dates`` (harness/profiles/hotel-peak-dates.yaml: a festival weekend, crowds of
guests booking the same room types and nights at the same moment, more demand than rooms; hotel-booking saga over
hotel-inventory and the payment gateway, one process each on 127.0.0.1):

- ``pessimistic`` (the shipped setting, seed 001 #20 "Pessimistic locking"): a hold locks its room-nights in date
  order from its availability check until its write is durable; holds of the same nights queue, none is refused for
  a conflict;
- ``optimistic``: a hold reads the nights' versions, checks, and writes only if no version moved (seed 003 "Attempt
  update with version check"); holds that read the same versions race in one group commit, the first wins and the
  others are ABORTED and retried by hotel-booking with jittered backoff (``max_conflict_retries``).

Reported per arm (result.json): booking_time p50 / p99 (the guest's wait, conflict retries included), CreateBooking
p99, the bookings confirmed and refused by reason, the share of bookings that retried through version conflicts and
the most retries one booking needed, the no-double-booking invariant, every SLO verdict, the send lag p99 and the run's
validity. ``--json FILE`` keeps the raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with
``--repeat``), a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "pessimistic": ["hotel-inventory.lock_mode=pessimistic"],
    "optimistic": ["hotel-inventory.lock_mode=optimistic"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run hotel-peak-dates`` with the arm's lock mode; the figures from its result.json."""
    result, exit_code = run_casemesh("hotel-peak-dates", ARMS[name], rate_scale=args.rate_scale,
                                     duration_s=args.duration, warmup_s=args.warmup, out=out)
    outcomes = result["journeys"].get("booking_outcome", {}).get("errors", {})
    conflicts = result["journeys"].get("booking_conflicts", {}).get("errors", {})
    retried = sum(n for label, n in conflicts.items() if label != "NONE")
    most = max((int(label.rsplit("_", 1)[1]) for label in conflicts if label.startswith("RETRIED_")), default=0)
    create = _rpc(result, "CreateBooking")
    double = result["journeys"].get("no_double_booking", {})
    return {**common(name, result, exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
            "booking_p50_ms": journey(result, "booking_time", "p50_ms"),
            "booking_p99_ms": journey(result, "booking_time", "p99_ms"),
            "create_p99_ms": create.get("p99_ms"), "outcomes": outcomes,
            "bookings": sum(conflicts.values()), "retried": retried, "most_retries": most,
            "double_booking_errors": double.get("errors", {})}


def _rpc(result: dict[str, Any], method: str) -> dict[str, Any]:
    """The per-RPC figures of BookingService/``method`` in result.json ({} when absent)."""
    for name, figures in (result.get("rpcs") or {}).items():
        if name.endswith(f"BookingService/{method}"):
            return figures
    return {}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | booking p50 / p99 | CreateBooking p99 | confirmed | refused (by reason) | retried through "
             "conflicts | most retries | no double booking | SLOs | send lag p99 | valid |",
             "|---|---:|---:|---:|---|---:|---:|---|---|---:|---|"]
    for r in rows:
        outcomes = dict(r["outcomes"])
        confirmed = outcomes.pop("CONFIRMED", 0)
        refused = ", ".join(f"{reason} {n}" for reason, n in sorted(outcomes.items())) or "none"
        share = f"{r['retried']} of {r['bookings']}" if r["bookings"] else "-"
        double = "yes" if not r["double_booking_errors"] else f"no ({r['double_booking_errors']})"
        lines.append(f"| {r['arm']} | {ms(r['booking_p50_ms'])} / {ms(r['booking_p99_ms'])} | "
                     f"{ms(r['create_p99_ms'])} | {confirmed} | {refused} | {share} | {r['most_retries']} | {double} | "
                     f"{slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "pessimistic,optimistic", duration_s=60.0)
    parser.set_defaults(warmup=10.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "hotel")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
