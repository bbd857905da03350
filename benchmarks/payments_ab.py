"""The payment-gateway A/B: PSP failover (payments-gateway.failover) on or off while one acquirer degrades, against
the availability and latency of Authorize.

Usage::

    .venv/bin/python benchmarks/payments_ab.py [--arms healthy,failover-on,failover-off,failover-fast] [--rate-scale 1]
        [--duration 60] [--warmup 10] [--repeat 1] [--json FILE]

Each arm is ``casemesh run payments`` (harness/profiles/payments.yaml: merchants' checkouts, holds, refunds and a
card-testing bot at about 50 authorizations a second through payments-vault, payments-fraud, payments-gateway and two
simulated acquirers, psp-a the gateway's first choice and psp-b its failover; one process each on 127.0.0.1):

- ``healthy``: the shipped settings and no fault: the baseline;
- ``failover-on``: psp-a degrades for the middle of the measured window (:data:`FAULT`: half of its Authorize calls
  wait 1.5 s, longer than the gateway's 1 s acquirer timeout), the shipped gateway: an attempt without an answer is
  reversed (a Void sent until psp-a confirms it) and the payment goes on to psp-b; psp-a's breaker opens after 5
  failures in a row and routing skips it for 5 s;
- ``failover-off``: the same fault with ``payments-gateway.failover=false``: only psp-a is ever tried, so an attempt
  without an answer ends the call UNAVAILABLE and the merchant's retry (the same idempotency key, backoff with full
  jitter, at most 4 sends within 6 s) tries psp-a again;
- ``failover-fast``: failover on and ``payments-gateway.acquirer_timeout_s=0.3`` (the shipped 1 s is about eight
  times the healthy issuers' p99 of 128 ms): how much of failover's latency is the wait before giving up on psp-a.

Reported per arm (result.json): Authorize p50 / p99 (every call, retries included: the headline SLO's measure),
checkout_time p50 / p99 (the tap to the final answer, retries included), the checkout-availability SLO's share (a
checkout ending with an answer, approved or declined), the checkouts that ended without one, the no-double-charge and
settlement SLOs (every payment read back and the acquirers' files reconciled: failover must not charge twice), the
fault's actual active interval, every SLO verdict, the send lag p99 and the run's validity. ``--json FILE`` keeps the
raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with ``--repeat``), a time limit each,
everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

#: psp-a degraded from 10 s to 40 s of the measured window: half its authorizations outlast the gateway's timeout.
FAULT = "payments-psp-a/Authorize:delay=1500ms@50%,at=10s,for=30s"
ARMS: dict[str, tuple[list[str], list[str]]] = {
    "healthy": ([], []),
    "failover-on": (["payments-gateway.failover=true"], [FAULT]),
    "failover-off": (["payments-gateway.failover=false"], [FAULT]),
    "failover-fast": (["payments-gateway.failover=true", "payments-gateway.acquirer_timeout_s=0.3"], [FAULT]),
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run payments`` with the arm's settings and fault; the figures from its result.json."""
    sets, faults = ARMS[name]
    result, exit_code = run_casemesh("payments", sets, rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out, faults=faults)
    checkout = result["journeys"].get("checkout_time", {})  # the availability SLI: the tap to the final answer
    fault = (result.get("faults") or [{}])[0] if faults else {}
    return {**common(name, result, exit_code), "settings": sets, "faults": faults,
            "authorize_p50_ms": _rpc(result, "p50_ms"), "authorize_p99_ms": _rpc(result, "p99_ms"),
            "checkout_p50_ms": journey(result, "checkout_time", "p50_ms"),
            "checkout_p99_ms": journey(result, "checkout_time", "p99_ms"),
            "checkouts": checkout.get("count"), "checkout_errors": checkout.get("errors", {}),
            "fault_active": fault.get("actual")}


def _rpc(result: dict[str, Any], key: str) -> float | None:
    """``key`` of the Authorize RPC's latency in result.json's per-RPC figures."""
    for name, figures in (result.get("rpcs") or {}).items():
        if name.endswith("PaymentGatewayService/Authorize"):
            return figures.get(key)
    return None


def table(rows: list[dict[str, Any]]) -> str:
    header = ("| arm | Authorize p50 / p99 | checkout p50 / p99 | checkouts answered (SLO 99.9%) | checkouts without an "
              "answer | no double charge | settlement | SLOs | send lag p99 | valid |")
    lines = [header, "|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        measured = r["measured"]
        errors = sum(r["checkout_errors"].values())
        lines.append(
            f"| {r['arm']} | {ms(r['authorize_p50_ms'])} / {ms(r['authorize_p99_ms'])} | {ms(r['checkout_p50_ms'])} / "
            f"{ms(r['checkout_p99_ms'])} | {_pct(measured.get('payment-checkout-availability'))} | {errors} of "
            f"{r['checkouts']} | {_pct(measured.get('payment-no-double-charge'))} | "
            f"{_pct(measured.get('payment-settlement-reconciles'))} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
            f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "healthy,failover-on,failover-off,failover-fast", duration_s=60.0)
    parser.set_defaults(warmup=10.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "payments")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
