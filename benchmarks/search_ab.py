"""The search engine A/B: the per-shard deadline (search-query.shard_deadline_ms) when some shard calls straggle.

Usage::

    .venv/bin/python benchmarks/search_ab.py [--arms deadline250,wait-all] [--rate-scale 1] [--duration 60]
        [--warmup 5] [--repeat 1] [--json FILE]

Each arm is ``casemesh run search-stragglers`` (harness/profiles/search-stragglers.yaml: the search profile's users,
with 2% of the query service's SearchShard calls delayed 600 ms by a fault, a garbage-collection pause or a noisy
neighbour's worth; search-query scattering each query to the 4 shards of search-shards, in two phases, on 127.0.0.1):

- ``deadline250`` (the shipped setting): a shard that has not answered within 250 ms, half of the 500 ms budget, is
  left out and the answer says it is partial (the tail at scale: Dean and Barroso, "The Tail at Scale", CACM 2013);
- ``wait-all`` (``shard_deadline_ms=0``): every query waits for every shard, so one straggler holds its whole query.

Reported per arm (result.json): Search p50 / p99, the share of results pages with every shard's answer
(search_complete) and of correct ones (search_correct), every SLO verdict (search-query-latency and
search-results-complete are the pair the deadline trades), the send lag p99 and the run's validity. ``--json FILE``
keeps the raw rows. The runs are benchmarks/ab.py's: one after the other (interleaved with ``--repeat``), a time limit
each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "deadline250": ["search-query.shard_deadline_ms=250"],
    "wait-all": ["search-query.shard_deadline_ms=0"],
}
SEARCH = "casemesh.search.v1.SearchService/Search"


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run search-stragglers`` with the arm's shard deadline; the figures from its result.json."""
    result, exit_code = run_casemesh("search-stragglers", ARMS[name], rate_scale=args.rate_scale,
                                     duration_s=args.duration, warmup_s=args.warmup, out=out)
    search = (result.get("rpcs") or {}).get(SEARCH, {})
    complete = result["journeys"].get("search_complete", {})
    correct = result["journeys"].get("search_correct", {})
    return {**common(name, result, exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
            "search_p50_ms": search.get("p50_ms"), "search_p99_ms": search.get("p99_ms"),
            "pages": complete.get("count", 0), "complete": complete.get("ok", 0), "correct": correct.get("ok", 0),
            "correct_of": correct.get("count", 0)}


def _share(part: int, whole: int) -> str:
    return f"{part / whole:.1%}" if whole else "-"


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| arm | Search p50 / p99 | results pages | complete | correct | SLOs | send lag p99 | valid |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        lines.append(f"| {r['arm']} | {ms(r['search_p50_ms'])} / {ms(r['search_p99_ms'])} | {r['pages']:,} | "
                     f"{_share(r['complete'], r['pages'])} | {_share(r['correct'], r['correct_of'])} | {slo_cell(r)} | "
                     f"{r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "deadline250,wait-all", duration_s=60.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "search")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
