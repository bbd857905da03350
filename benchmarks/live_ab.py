"""The live-streaming A/B: the part duration (live-ingest.part_target_ms) against the glass-to-glass SLO.

Usage::

    .venv/bin/python benchmarks/live_ab.py [--arms part200,part1000,part2000] [--rate-scale 1] [--duration 30]
        [--warmup 5] [--repeat 1] [--json FILE]

Each arm is ``casemesh run live`` (harness/profiles/live.yaml: 2 streams published in real media time, 80 viewers
held on live-edge, half on StreamParts and half LL-HLS players, chat on the chat case study's gateways; one process
per service on 127.0.0.1) with ``--set`` overrides:

- ``part200``: the shipped 200 ms parts (services/live/ingest/packager.py): a chunk waits at most one part for its
  part to close, then the edge has it;
- ``part1000``: 1 s parts, each chunk waits up to five times longer;
- ``part2000``: parts as long as the 2 s segments: one part per segment, the latency of plain HLS with 2 s segments
  (RFC 8216bis without its low-latency extension);
- ``nocoalesce``: 200 ms parts, but the edge sends every viewer's blocked request to the origin on its own
  (``live-edge.coalesce_requests=false``): the origin's load grows with the audience instead of with the parts.

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1), at the profile's rate times
``--rate-scale``. Reported per arm: glass_to_glass p50 / p95 / p99 (a chunk's capture on the broadcaster's schedule
→ the first viewer receiving the part that holds it), its share within 1 s (the SLO), the viewers' own latency p95
(sampled per viewer and part), time_to_first_part p95 for joining viewers, every SLO verdict, the harness's send lag
p99 and the run's validity. ``--json FILE`` keeps the raw figures. The runs are benchmarks/ab.py's: a time limit
each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "part200": [],
    "part1000": ["live-ingest.part_target_ms=1000"],
    "part2000": ["live-ingest.part_target_ms=2000"],
    "nocoalesce": ["live-edge.coalesce_requests=false"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run live`` with the arm's settings; the figures from its result.json."""
    result, exit_code = run_casemesh("live", ARMS[name], rate_scale=args.rate_scale, duration_s=args.duration,
                                     warmup_s=args.warmup, out=out)
    return {**common(name, result, exit_code), "settings": ARMS[name],
            "chunks": journey(result, "glass_to_glass", "count"),
            "g2g_p50_ms": journey(result, "glass_to_glass", "p50_ms"),
            "g2g_p95_ms": journey(result, "glass_to_glass", "p95_ms"),
            "g2g_p99_ms": journey(result, "glass_to_glass", "p99_ms"),
            "viewer_p95_ms": journey(result, "viewer_latency", "p95_ms"),
            "first_part_p95_ms": journey(result, "time_to_first_part", "p95_ms")}


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | chunks | glass to glass p50 / p95 / p99 | within 1 s | viewer latency p95 | first part p95 | SLOs | "
             "send lag p99 | valid |", "|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {r['chunks'] or 0:,} | {ms(r['g2g_p50_ms'])} / {ms(r['g2g_p95_ms'])} / "
                     f"{ms(r['g2g_p99_ms'])} | {100 * r['measured']['glass-to-glass']:.1f}% | {ms(r['viewer_p95_ms'])} | "
                     f"{ms(r['first_part_p95_ms'])} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
                     f"{'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "part200,part1000,part2000,nocoalesce", duration_s=30.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "live")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
