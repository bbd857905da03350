"""The chat A/B: chat-messages' fan-out concurrency and group commit, against the delivery SLOs.

Usage::

    .venv/bin/python benchmarks/chat_ab.py [--arms default,fanout1,commit1] [--rate-scale 2] [--duration 30]
        [--warmup 5] [--repeat 1] [--json FILE]

Each arm is ``casemesh run chat`` (harness/profiles/chat.yaml: 1,000 connected devices on two connection
servers, chat-router, chat-messages; one process each on 127.0.0.1) with some ``--set`` overrides:

- ``default``: the shipped settings (``fanout_concurrency`` 64, ``max_commit_batch`` 512);
- ``fanout1``: ``chat-messages.fanout_concurrency=1``: one routing consumer for the whole service, so every
  conversation's messages and receipts wait behind every other's Route call (services/chat/messages/fanout.py);
- ``commit1``: ``chat-messages.max_commit_batch=1``: one fsync per message and per acknowledgement, no group commit
  (services/chat/messages/journal.py).

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1), at the profile's rate times
``--rate-scale``. Reported per arm: delivery and group_delivery p50 / p99 (a send's intended start → the
recipient's stream), send_message p99 (→ the "sent" receipt, stored durably), the delivery SLO's measured share
within 300 ms, every SLO verdict, the harness's send lag p99 and the run's validity (a run is invalid when the
load generator fell behind its schedule by more than 10 ms at p99: on a 2-core machine shared by four services
and the harness, that happens once the machine is saturated, which says the machine, not the arm, is the limit). Prints a Markdown table; ``--json FILE`` keeps the raw
figures. The runs are benchmarks/ab.py's: a time limit each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "default": [],
    "fanout1": ["chat-messages.fanout_concurrency=1"],
    "commit1": ["chat-messages.max_commit_batch=1"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run chat`` with the arm's settings; the figures from its result.json."""
    result, exit_code = run_casemesh("chat", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    return {**common(name, result, exit_code), "settings": ARMS[name],
            "delivery_p50_ms": journey(result, "delivery", "p50_ms"),
            "delivery_p99_ms": journey(result, "delivery", "p99_ms"),
            "group_p50_ms": journey(result, "group_delivery", "p50_ms"),
            "group_p99_ms": journey(result, "group_delivery", "p99_ms"),
            "send_p99_ms": journey(result, "send_message", "p99_ms")}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | delivery p50 | delivery p99 | group p50 | group p99 | send p99 | delivery within 300 ms | SLOs | "
             "send lag p99 | valid |", "|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {ms(r['delivery_p50_ms'])} | {ms(r['delivery_p99_ms'])} | {ms(r['group_p50_ms'])} | "
                     f"{ms(r['group_p99_ms'])} | {ms(r['send_p99_ms'])} | {100 * r['measured']['delivery']:.1f}% | "
                     f"{slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "default,fanout1,commit1", duration_s=30.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "chat")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
