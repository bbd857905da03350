"""The stock-trading A/B: the matching engine's durable log committed per order or in groups (trading-engine.commit),
against the order acknowledgement's latency (the seed's < 10 ms p99).

Usage::

    .venv/bin/python benchmarks/trading_ab.py [--arms group,per_order] [--rate-scale 1] [--duration 60] [--warmup 10]
        [--repeat 1] [--json FILE]

Each arm is ``casemesh run trading`` (harness/profiles/trading.yaml: market makers quoting and cancelling, takers
trading against the books and market data streams, about 200 orders a second through trading-gateway into
trading-engine, whose events trading-marketdata publishes; one process each on 127.0.0.1):

- ``group`` (the shipped setting): the engine matches on its event loop and hands each order's events to one writer
  thread, which writes whatever has gathered with one write and one fdatasync and then releases every order of that
  batch (group commit);
- ``per_order``: the engine writes and fdatasyncs each order's events itself, before it matches the next order: the
  matching thread waits for the disk once per order.

Reported per arm (result.json): PlaceOrder p50 / p99 / p99.9 (every call, retries included: the headline SLO's
measure), the market data freshness p99 (a trade's engine time to its arrival on a stream), every SLO verdict, the
send lag p99 and the run's validity. ``--json FILE`` keeps the raw rows. The runs are benchmarks/ab.py's: one after
the other (interleaved with ``--repeat``), a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "group": ["trading-engine.commit=group"],
    "per_order": ["trading-engine.commit=per_order"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run trading`` with the arm's commit mode; the figures from its result.json."""
    result, exit_code = run_casemesh("trading", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    place = _rpc(result, "PlaceOrder")
    return {**common(name, result, exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
            "place_orders": place.get("count"), "place_p50_ms": place.get("p50_ms"),
            "place_p99_ms": place.get("p99_ms"), "place_p999_ms": place.get("p999_ms"),
            "freshness_p99_ms": journey(result, "market_data_freshness", "p99_ms")}


def _rpc(result: dict[str, Any], method: str) -> dict[str, Any]:
    """The per-RPC figures of OrderEntryService/``method`` in result.json ({} when absent)."""
    for name, figures in (result.get("rpcs") or {}).items():
        if name.endswith(f"OrderEntryService/{method}"):
            return figures
    return {}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} ms"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | rate scale | PlaceOrder calls | PlaceOrder p50 / p99 / p99.9 | market data freshness p99 | SLOs "
             "| send lag p99 | valid |", "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['rate_scale']:g} | {r['place_orders']} | {_ms(r['place_p50_ms'])} / "
                     f"{_ms(r['place_p99_ms'])} / {_ms(r['place_p999_ms'])} | {_ms(r['freshness_p99_ms'])} | "
                     f"{slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "group,per_order", duration_s=60.0)
    parser.set_defaults(warmup=10.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "trading")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
