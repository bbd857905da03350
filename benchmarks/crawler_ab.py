"""The web crawler A/B: near-duplicate detection (crawler.near_duplicates) against the copies that reach the index.

Usage::

    .venv/bin/python benchmarks/crawler_ab.py [--arms simhash,md5-only] [--duration 60] [--warmup 5] [--repeat 1]
        [--json FILE]

Each arm is ``casemesh run crawler-dedup`` (harness/profiles/crawler-dedup.yaml: a web of 100 hosts and 2,000 pages,
10% of them near copies with one word changed and 3% exact copies; a crawl every 20 s of up to 1,500 pages from 10 home
pages, so that copies and their originals meet in one crawl; crawler-web, crawler, search-indexer and search-shards on
127.0.0.1):

- ``simhash`` (the shipped setting, seed 001 #28 "deduplication (MD5/Simhash)"): a page whose MD5 was seen in the
  crawl is an exact duplicate; one whose 64-bit SimHash lies within 3 bits of a page's seen in the crawl is a near
  duplicate; both are skipped (not indexed, links not followed);
- ``md5-only``: only exact copies are caught; near copies are indexed and their links followed.

Reported per arm (result.json): the copies the referee saw each crawl fetch together with their original and the
share the crawler kept out (duplicates_kept_out, the profile's SLO), the copies kept, the pages fetched per crawl and
crawl_time p50, every SLO verdict, the send lag p99 and the run's validity. ``--json FILE`` keeps the raw rows. The
runs are benchmarks/ab.py's: one after the other (interleaved with ``--repeat``), a time limit each, everything on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ab import add_arguments, common, finish, journey, ms, run_casemesh, run_rounds, slo_cell

ARMS: dict[str, list[str]] = {
    "simhash": ["crawler.near_duplicates=true"],
    "md5-only": ["crawler.near_duplicates=false"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One ``casemesh run crawler-dedup`` with the arm's setting; the figures from its result.json."""
    result, exit_code = run_casemesh("crawler-dedup", ARMS[name], rate_scale=args.rate_scale,
                                     duration_s=args.duration, warmup_s=args.warmup, out=out)
    kept_out = result["journeys"].get("duplicates_kept_out", {})
    crawls = result["journeys"].get("crawl_time", {})
    per_page = journey(result, "crawl_time_per_page", "p50_ms")
    crawl_p50 = journey(result, "crawl_time", "p50_ms")
    return {**common(name, result, exit_code), "settings": ARMS[name], "copies": kept_out.get("count", 0),
            "kept_out": kept_out.get("ok", 0), "crawls": crawls.get("count", 0), "crawl_p50_ms": crawl_p50,
            "pages_per_crawl": round(crawl_p50 / per_page) if crawl_p50 and per_page else None}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [("| arm | crawls | copies fetched with their original | kept out | kept (indexed) | pages per crawl "
              "(p50) | crawl time p50 | SLOs | send lag p99 | valid |"),
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        share = f"{r['kept_out']} ({r['kept_out'] / r['copies']:.1%})" if r["copies"] else "-"
        lines.append(f"| {r['arm']} | {r['crawls']} | {r['copies']} | {share} | {r['copies'] - r['kept_out']} | "
                     f"{r['pages_per_crawl'] or '-'} | {ms(r['crawl_p50_ms'])} | {slo_cell(r)} | "
                     f"{r['send_lag_p99_ms']:.1f} ms | {'yes' if r['valid'] else 'no'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "simhash,md5-only", duration_s=60.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, "crawler")
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
