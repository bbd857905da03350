"""The e-commerce A/B: the inventory's reservation TTL (ecommerce-inventory.reservation_ttl_s) in a flash sale,
against where the deal's units end up and the share of checkouts that fail.

Usage::

    .venv/bin/python benchmarks/ecommerce_ab.py [--arms ttl600,ttl30,ttl5] [--rate-scale 1] [--duration 60]
        [--warmup 5] [--repeat 1] [--json FILE]

Each arm is ``casemesh run ecommerce-flash-sale`` (harness/profiles/ecommerce-flash-sale.yaml: one deal of 200 units,
ten times the shop's traffic for 20 s after the sale opens, 30% of the deal's carts abandoned, buyers thinking a
median 3 s between cart and checkout; the catalogue, carts, inventory, checkout saga and the payment gateway's
services, on 127.0.0.1):

- ``ttl600`` (the shipped setting, seed 000 ``reserve_stock(..., ttl=600)``): a unit in an abandoned cart stays held
  for ten minutes, longer than the sale: buyers are turned away out_of_stock while units sit in carts nobody checks
  out (stranded);
- ``ttl30``: abandoned units come back half a minute later and sell; every buyer checks out well within it;
- ``ttl5``: abandoned units come back within seconds, but a buyer who thinks longer than 5 s finds the unit gone at
  checkout (the checkout re-holds an expired reservation only if the unit is still there).

Reported per arm (result.json): the deal's units sold, stranded in carts and unsold at the end (sell_through), the
carts honoured (a buyer who put the unit in the cart and paid got it: cart_honoured), add-to-cart refusals,
checkout_time p99 (the seed's 500 ms), the no-oversell invariant, every SLO verdict, the send lag p99 and the run's
validity. ``--json FILE`` keeps the raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with
``--repeat``), a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "ttl600": ["ecommerce-inventory.reservation_ttl_s=600"],
    "ttl30": ["ecommerce-inventory.reservation_ttl_s=30"],
    "ttl5": ["ecommerce-inventory.reservation_ttl_s=5"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run ecommerce-flash-sale`` with the arm's TTL; the figures from its result.json."""
    result, exit_code = run_casemesh("ecommerce-flash-sale", ARMS[name], rate_scale=args.rate_scale,
                                     duration_s=args.duration, warmup_s=args.warmup, out=out)
    journeys = result["journeys"]
    units = journeys.get("sell_through", {})
    honoured = journeys.get("cart_honoured", {})
    cart_add = journeys.get("cart_add", {})
    return {**common(name, result, exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
            "sold": units.get("ok", 0), "stranded": units.get("errors", {}).get("STRANDED", 0),
            "unsold": units.get("errors", {}).get("UNSOLD", 0),
            "honoured": honoured.get("ok", 0), "carts": honoured.get("count", 0),
            "cart_refusals": sum(cart_add.get("errors", {}).values()), "cart_adds": cart_add.get("count", 0),
            "checkout_p99_ms": journey(result, "checkout_time", "p99_ms"),
            "oversell_errors": journeys.get("no_oversell", {}).get("errors", {})}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | deal units sold / stranded / unsold | carts honoured | add-to-cart refused | checkout p99 | "
             "no oversell | SLOs | send lag p99 | valid |", "|---|---:|---:|---:|---:|---|---|---:|---|"]
    for r in rows:
        oversell = "yes" if not r["oversell_errors"] else f"no ({r['oversell_errors']})"
        lines.append(f"| {r['arm']} | {r['sold']} / {r['stranded']} / {r['unsold']} | {r['honoured']} of {r['carts']} | "
                     f"{r['cart_refusals']} of {r['cart_adds']} | {ms(r['checkout_p99_ms'])} | {oversell} | "
                     f"{slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "ttl600,ttl30,ttl5", duration_s=60.0)
    parser.set_defaults(warmup=5.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "ecommerce")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
