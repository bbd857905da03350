"""What the case studies' A/B benchmarks share: one ``casemesh run`` per arm, rounds interleaved, a Markdown table.

Used by chat_ab.py, collab_ab.py and live_ab.py. Each names its arms (the ``--set SERVICE.KEY=VALUE`` overrides of
each) and picks its figures from each run's result.json; this module makes the runs: ``casemesh run PROFILE`` once
per arm and round, one after the other (round 1's arms, then round 2's: interleaved, so that every arm meets the same
stretches of machine noise), with the HTML report off, a time limit on each run, and everything on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
#: casemesh run's exit codes that still leave a result to read: 0 passed, 1 an SLO missed, 4 the run was invalid.
READABLE_EXITS = (0, 1, 4)


def run_casemesh(profile: str, sets: Sequence[str], *, rate_scale: float, duration_s: float, warmup_s: float,
                 out: Path, faults: Sequence[str] = ()) -> tuple[dict[str, Any], int]:
    """``casemesh run PROFILE --set ... [--fault ...]`` into ``out``; returns its result.json and exit code.

    ``SystemExit`` with the run's output tail when it exits with another code than :data:`READABLE_EXITS`.
    """
    command = [sys.executable, "-m", "casemesh.harness.cli", "run", profile, "--duration", str(duration_s), "--warmup",
               str(warmup_s), "--rate-scale", str(rate_scale), "--out", str(out), "--no-progress", "--report", "off"]
    for assignment in sets:
        command += ["--set", assignment]
    for fault in faults:
        command += ["--fault", fault]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration_s + warmup_s + 240, cwd=ROOT,
                          stdin=subprocess.DEVNULL)
    if done.returncode not in READABLE_EXITS:
        raise SystemExit(f"casemesh run {profile} {' '.join(sets)} exited {done.returncode}\n"
                         f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return json.loads((out / "result.json").read_text()), done.returncode


def journey(result: dict[str, Any], name: str, key: str) -> float | None:
    """Figure ``key`` (``p99_ms``, ``count``...) of journey or measure ``name`` in a result, None when absent."""
    return result["journeys"].get(name, {}).get(key)


def common(arm: str, result: dict[str, Any], exit_code: int) -> dict[str, Any]:
    """What every arm's row has: its name, validity, exit code, send lag p99, and every SLO's measure and verdict."""
    slos = {s["name"]: s for s in result["slos"]}
    return {"arm": arm, "valid": result["valid"], "exit": exit_code, "invalid_reasons": result["invalid_reasons"],
            "send_lag_p99_ms": result["send_lag"]["p99_ms"], "measured": {n: s["measured"] for n, s in slos.items()},
            "verdicts": {n: s["passed"] for n, s in slos.items()}}


def ms(value: float | None) -> str:
    """``1,234 ms``, or ``-`` for no figure."""
    return "-" if value is None else f"{value:,.0f} ms"


def slo_cell(row: dict[str, Any]) -> str:
    """``all met``, or ``missed: a, b``."""
    failed = [n for n, ok in row["verdicts"].items() if ok is False]
    return "all met" if not failed else "missed: " + ", ".join(failed)


def add_arguments(parser: argparse.ArgumentParser, arms: Mapping[str, Any], default_arms: str,
                  duration_s: float) -> None:
    """The options every A/B script takes: --arms, --rate-scale, --duration, --warmup, --repeat, --json."""
    parser.add_argument("--arms", default=default_arms, help=f"comma-separated, of {', '.join(arms)}")
    parser.add_argument("--rate-scale", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=duration_s)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", type=Path)


def run_rounds(parser: argparse.ArgumentParser, args: argparse.Namespace, arms: Mapping[str, Sequence[str]],
               row: Callable[[str, argparse.Namespace, Path], dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """Each of ``args.arms`` once per round (``args.repeat`` rounds), ``row(arm, args, out_dir)`` making each row.

    An unknown arm is a usage error (``parser.error``) before anything runs.
    """
    chosen = args.arms.split(",")
    unknown = [a for a in chosen if a not in arms]
    if unknown:
        parser.error(f"unknown arm(s) {', '.join(unknown)}; known: {', '.join(arms)}")
    rows = []
    with tempfile.TemporaryDirectory(prefix=f"casemesh-{name}-ab-") as tmp:
        for round_ in range(args.repeat):
            for arm in chosen:
                print(f"round {round_ + 1}/{args.repeat}: {arm} ...", file=sys.stderr, flush=True)
                rows.append(row(arm, args, Path(tmp) / f"{arm}-{round_}"))
    return rows


def finish(rows: list[dict[str, Any]], table: str, json_path: Path | None) -> int:
    """Print ``table``; keep the raw rows in ``json_path`` when given. Returns 0 (the exit code)."""
    print(table)
    if json_path:
        json_path.write_text(json.dumps(rows, indent=2))
    return 0
