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
so that says the machine, not the arm, is the limit). ``--json FILE`` keeps the raw figures. Every run has a time
limit; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EDITOR_SERVERS = ("collab-editor-1", "collab-editor-2")
ARMS: dict[str, int] = {"window20": 20, "window0": 0, "window50": 50}


def run_arm(name: str, profile: str, rate_scale: float, duration_s: float, warmup_s: float, out: Path) -> dict[str, Any]:
    """One ``casemesh run PROFILE`` with the arm's window on both editor servers; the figures from its result.json."""
    command = [sys.executable, "-m", "casemesh.harness.cli", "run", profile, "--duration", str(duration_s), "--warmup",
               str(warmup_s), "--rate-scale", str(rate_scale), "--out", str(out), "--no-progress", "--report", "off"]
    for server in EDITOR_SERVERS:
        command += ["--set", f"{server}.broadcast_window_ms={ARMS[name]}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + warmup_s + 240, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    if done.returncode not in (0, 1, 4):
        raise SystemExit(f"arm {name}: casemesh run exited {done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    result = json.loads((out / "result.json").read_text())
    journeys = result["journeys"]
    slos = {s["name"]: s for s in result["slos"]}

    def pick(journey: str, key: str) -> float | None:
        return journeys.get(journey, {}).get(key)

    return {
        "arm": name, "window_ms": ARMS[name], "valid": result["valid"], "exit": done.returncode,
        "invalid_reasons": result["invalid_reasons"], "send_lag_p99_ms": result["send_lag"]["p99_ms"],
        "remote_edits": pick("remote_edit", "count"),
        "remote_p50_ms": pick("remote_edit", "p50_ms"), "remote_p99_ms": pick("remote_edit", "p99_ms"),
        "edit_p99_ms": pick("edit", "p99_ms"), "remote_within": slos["remote-edit"]["measured"],
        "verdicts": {n: s["passed"] for n, s in slos.items()},
    }


def table(rows: list[dict[str, Any]]) -> str:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f} ms"

    lines = ["| arm | remote edits | remote_edit p50 | remote_edit p99 | edit (ack) p99 | within 300 ms | SLOs | "
             "send lag p99 | valid |", "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        failed = [n for n, ok in r["verdicts"].items() if ok is False]
        lines.append(f"| {r['arm']} | {r['remote_edits'] or 0:,} | {ms(r['remote_p50_ms'])} | {ms(r['remote_p99_ms'])} | "
                     f"{ms(r['edit_p99_ms'])} | {100 * r['remote_within']:.1f}% | "
                     f"{'all met' if not failed else 'missed: ' + ', '.join(failed)} | {r['send_lag_p99_ms']:.1f} ms | "
                     f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arms", default="window20,window0,window50", help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--profile", default="collab-hot")
    parser.add_argument("--rate-scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    arms = args.arms.split(",")
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(ARMS)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="casemesh-collab-ab-") as tmp:
        for round_ in range(args.repeat):
            for arm in arms:
                print(f"round {round_ + 1}/{args.repeat}: {arm} ...", file=sys.stderr, flush=True)
                rows.append(run_arm(arm, args.profile, args.rate_scale, args.duration, args.warmup,
                                    Path(tmp) / f"{arm}-{round_}"))
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
