"""The collab A/B: the editor servers' broadcast window against the remote-edit SLO, on one hot document.

Usage::

    .venv/bin/python benchmarks/collab_ab.py [--arms window20,window0,window50] [--profile collab-hot]
        [--rate-scale 1] [--duration 20] [--warmup 5] [--repeat 1] [--json FILE]

Each arm is ``casemesh run collab-hot`` (harness/profiles/collab-hot.yaml: 100 editors in one document, half on
each editor server, typing keystroke by keystroke; collab-documents; one process each on 127.0.0.1) with the
``broadcast_window_ms`` of both editor servers set (services/collab/editor/broadcaster.py):

- ``window20``: the shipped 20 ms: the first update after a quiet window goes at once, the ones within the window
  after it are merged (pycrdt.merge_updates) into one frame per editor;
- ``window0``: every update relayed alone: one frame per keystroke per editor of the document;
- ``window50``: a longer window: fewer, larger frames, up to 50 ms more delay.

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1), at the profile's rate times
``--rate-scale``. Reported per arm: remote_edit p50 / p99 (an edit's intended send → applied in each other
editor's replica), edit p99 (→ the durable ack), the share of remote edits within 300 ms, every SLO verdict, the
harness's send lag p99 and the run's validity (a run is invalid when the load generator fell behind its schedule
by more than 10 ms at p99: the editors' replicas apply every remote frame on the same two cores as the services,
so that says the machine, not the arm, is the limit). ``--json FILE`` keeps the raw figures. The runs are benchmarks/ab.py's: a time limit each, everything on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

EDITOR_SERVERS = ("collab-editor-1", "collab-editor-2")
WINDOWS_MS: dict[str, int] = {"window20": 20, "window0": 0, "window50": 50}
ARMS: dict[str, list[str]] = {arm: [f"{server}.broadcast_window_ms={window}" for server in EDITOR_SERVERS]
                              for arm, window in WINDOWS_MS.items()}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run PROFILE`` with the arm's window on both editor servers; the figures from its result.json."""
    result, exit_code = run_casemesh(args.profile, ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    return {**common(name, result, exit_code), "window_ms": WINDOWS_MS[name],
            "remote_edits": journey(result, "remote_edit", "count"),
            "remote_p50_ms": journey(result, "remote_edit", "p50_ms"),
            "remote_p99_ms": journey(result, "remote_edit", "p99_ms"), "edit_p99_ms": journey(result, "edit", "p99_ms")}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | remote edits | remote_edit p50 | remote_edit p99 | edit (ack) p99 | within 300 ms | SLOs | "
             "send lag p99 | valid |", "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['remote_edits'] or 0:,} | {ms(r['remote_p50_ms'])} | {ms(r['remote_p99_ms'])} | "
                     f"{ms(r['edit_p99_ms'])} | {100 * r['measured']['remote-edit']:.1f}% | {slo_cell(r)} | "
                     f"{r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "window20,window0,window50", duration_s=20.0)
    parser.add_argument("--profile", default="collab-hot")
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "collab")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
