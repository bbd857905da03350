"""The online-banking A/B: the ledger's isolation (banking-ledger.locking: per-account locks, one global lock, or
none) against the Transfer latency SLO and the invariant that the ledger balances with no account overdrawn.

Usage::

    .venv/bin/python benchmarks/banking_ab.py [--arms account,global,none] [--rate-scale 1] [--duration 60]
        [--warmup 10] [--repeat 1] [--json FILE]

Each arm is ``casemesh run banking`` (harness/profiles/banking.yaml: customers' transfers with idempotent retries
and double taps, bill runs paying several billers at once from one account, balance and statement reads, paychecks
and account-takeover bursts, about 105 transfers a second through banking-transfers into banking-ledger; one process
each on 127.0.0.1):

- ``account`` (the shipped setting): strict two-phase locking per account: an entry locks the customer accounts it
  debits from its balance check until it is durable and applied, so entries on different accounts commit together
  (group commit) while debits of one account queue;
- ``global``: one lock for the whole ledger: every entry waits for the one before it to be durable (one commit per
  entry);
- ``none``: no locks: a balance check and the commit of a concurrent debit of the same account interleave (the lost
  update isolation prevents): kept only to show that the lock is what keeps accounts from being overdrawn.

Reported per arm (result.json): Transfer p50 / p99 (every call, retries included: the headline SLO's measure),
transfer_time p99 (the tap to the final answer), the ledger-balanced SLO (Reconcile and every
account read back at the end: none overdrawn), every SLO verdict, the send lag p99 and the run's validity. ``--json
FILE`` keeps the raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with ``--repeat``), a
time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "account": ["banking-ledger.locking=account"],
    "global": ["banking-ledger.locking=global"],
    "none": ["banking-ledger.locking=none"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run banking`` with the arm's locking; the figures from its result.json."""
    result, exit_code = run_casemesh("banking", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    transfer = _rpc(result, "Transfer")
    balanced = result["journeys"].get("ledger_balanced", {})
    return {**common(name, result, exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
            "transfers": transfer.get("count"), "transfer_p50_ms": transfer.get("p50_ms"),
            "transfer_p99_ms": transfer.get("p99_ms"),
            "transfer_time_p99_ms": journey(result, "transfer_time", "p99_ms"),
            "ledger_balanced_errors": balanced.get("errors", {})}


def _rpc(result: dict[str, Any], method: str) -> dict[str, Any]:
    """The per-RPC figures of TransferService/``method`` in result.json ({} when absent)."""
    for name, figures in (result.get("rpcs") or {}).items():
        if name.endswith(f"TransferService/{method}"):
            return figures
    return {}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | Transfer calls | Transfer p50 / p99 | transfer p99 (tap to answer) | ledger balanced | SLOs | "
             "send lag p99 | valid |", "|---|---:|---:|---:|---|---|---:|---|"]
    for r in rows:
        balanced = "yes" if not r["ledger_balanced_errors"] else f"no ({r['ledger_balanced_errors']})"
        lines.append(f"| {r['arm']} | {r['transfers']} | {ms(r['transfer_p50_ms'])} / {ms(r['transfer_p99_ms'])} | "
                     f"{ms(r['transfer_time_p99_ms'])} | {balanced} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
                     f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "account,global,none", duration_s=60.0)
    parser.set_defaults(warmup=10.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "banking")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
