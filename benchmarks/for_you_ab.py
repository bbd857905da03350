"""The "For you" A/B: how often social-tweets sends like signals on to the recommendation engine, against freshness.

Usage::

    .venv/bin/python benchmarks/for_you_ab.py [--intervals 10,100,1000] [--duration 30] [--warmup 5] [--repeat 1]
        [--json FILE]

Each arm is one value of ``social-tweets.signal_flush_interval_ms``: a like is acknowledged at once and queued, and
a background loop sends the queue to reco-signals (one RecordInteractions per flush) every interval
(services/social/tweets/signals.py). A shorter interval makes a like shift the liker's "For you" sooner; a longer
one batches more likes per call. Side by side in one invocation (interleaved when ``--repeat`` > 1), each arm
starts the social-for-you mesh (social-timeline, social-tweets, social-graph, idgen, reco-ranker, reco-candidates,
reco-signals: one process each on 127.0.0.1, ``casemesh.harness.mesh.Mesh``) with ``record_signals`` on and that
interval, and drives ``harness/profiles/social-for-you.yaml`` through it with ``casemesh run --target``. From the
harness's ``driving`` line (seeding and training done) to the end of the run it reads social-tweets' own metrics
(``casemesh_social_like_signals_total{outcome="sent"}`` and the RecordInteractions calls it made,
``grpc_client_handled_total``), so the figures count the load only.

Reported per arm: like_to_for_you p50 / p99 (LikeTweet OK → the liked tweet has left the liker's "For you"), the
like-to-for-you SLO's measured share within 1 s and its verdict, for_you p99, like signals sent, RecordInteractions
calls and signals per call (the batching a longer interval buys), and the run's validity. Prints a
Markdown table; ``--json FILE`` keeps the raw figures. Every child has a time limit; everything listens on
127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.profile_run import drive  # noqa: E402
from casemesh.harness.mesh import Mesh  # noqa: E402

PROFILE = "social-for-you"
SERVICES = ["social-timeline", "social-tweets", "social-graph", "idgen", "reco-ranker", "reco-candidates", "reco-signals"]
PUBLIC = ("social-timeline", "social-tweets", "reco-signals", "reco-candidates", "reco-ranker")  # seeding included
RECORD = {"grpc_service": "casemesh.reco.v1.SignalService", "grpc_method": "RecordInteractions"}


def scrape(mesh: Mesh) -> dict[str, float]:
    """social-tweets' like signals sent and RecordInteractions calls made so far."""
    address = mesh.topology.endpoint("social-tweets").metrics_address
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()  # noqa: S310 - 127.0.0.1
    sent = calls = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "casemesh_social_like_signals_total" and sample.labels.get("outcome") == "sent":
                sent += sample.value
            elif sample.name == "grpc_client_handled_total" and all(sample.labels.get(k) == v for k, v in RECORD.items()):
                calls += sample.value
    return {"sent": sent, "calls": calls}


async def one(interval_ms: float, duration_s: float, warmup_s: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="casemesh-for-you-bench-"))
    settings = {"social-tweets": {"record_signals": True, "signal_flush_interval_ms": interval_ms}}
    try:
        async with Mesh(SERVICES, folder / "mesh", settings=settings) as mesh:
            async def snapshot() -> dict[str, float]:
                return await asyncio.to_thread(scrape, mesh)

            run = await drive(mesh, PROFILE, PUBLIC, folder / "out", snapshot, duration_s=duration_s, warmup_s=warmup_s)
            stuck = run.result["journeys"].get("like_to_for_you", {}).get("errors")
            if stuck:  # a like that never left "For you": show what the signal path said
                print(f"  like_to_for_you errors {stuck}; logs:", file=sys.stderr)
                for name in ("social-tweets", "reco-signals", "reco-ranker"):
                    print(f"  --- {name}\n{mesh.log_tail(name, 15)}", file=sys.stderr)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    start, end, result = run.at_driving, run.at_end, run.result
    sent, calls = end["sent"] - start["sent"], end["calls"] - start["calls"]
    fresh = result["journeys"].get("like_to_for_you", {"count": 0, "ok": 0, "p50_ms": None, "p99_ms": None})
    for_you = result["journeys"].get("for_you", {"p99_ms": None})
    slo = next(s for s in result["slos"] if s["name"] == "like-to-for-you")
    return {
        "interval_ms": interval_ms, "exit": run.exit_code, "valid": result["valid"],
        "likes": fresh["count"], "likes_stuck": fresh["count"] - fresh["ok"],
        "fresh_p50_ms": fresh["p50_ms"], "fresh_p99_ms": fresh["p99_ms"], "for_you_p99_ms": for_you["p99_ms"],
        "within_1s": slo["measured"], "slo_passed": slo["passed"],
        "signals_sent": sent, "record_calls": calls, "signals_per_call": sent / calls if calls else None,
    }


def table(rows: list[dict[str, Any]]) -> str:
    def num(x: float | None, fmt: str = ",.1f") -> str:
        return "-" if x is None else format(x, fmt)

    lines = ["| social-tweets.signal_flush_interval_ms | like_to_for_you p50 / p99 ms | within 1 s | like-to-for-you SLO "
             "| for_you p99 ms | signals sent | RecordInteractions calls | signals / call | stuck likes | valid |",
             "|---:|---:|---:|:---:|---:|---:|---:|---:|---:|:---:|"]
    by: dict[float, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["interval_ms"], []).append(row)

    def med(group: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in group if r[key] is not None]
        return statistics.median(values) if values else None

    for interval, group in by.items():
        within = med(group, "within_1s")
        lines.append(
            f"| {interval:g} | {num(med(group, 'fresh_p50_ms'))} / {num(med(group, 'fresh_p99_ms'))} "
            f"| {num(None if within is None else 100 * within, '.2f')}% "
            f"| {'PASS' if all(r['slo_passed'] for r in group) else 'FAIL'} | {num(med(group, 'for_you_p99_ms'))} "
            f"| {num(med(group, 'signals_sent'), ',.0f')} | {num(med(group, 'record_calls'), ',.0f')} "
            f"| {num(med(group, 'signals_per_call'), '.2f')} "
            f"| {sum(r['likes_stuck'] for r in group):,} | {'yes' if all(r['valid'] for r in group) else 'NO'} |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--intervals", default="10,100,1000", help="comma-separated signal_flush_interval_ms arms")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per arm (interleaved)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    opts = parser.parse_args()
    intervals = [float(i) for i in opts.intervals.split(",")]
    if not all(0 < i <= 60_000 for i in intervals):
        parser.error("every interval must be above 0 and at most 60,000 ms (the setting's range)")
    rows = []
    started = time.perf_counter()
    for round_ in range(opts.repeat):
        for interval in intervals:
            print(f"round {round_ + 1}/{opts.repeat}: social-tweets.signal_flush_interval_ms {interval:g}", file=sys.stderr)
            rows.append(await one(interval, opts.duration, opts.warmup))
            r = rows[-1]
            print(f"  like_to_for_you p50 {r['fresh_p50_ms']} / p99 {r['fresh_p99_ms']} ms, signals/call "
                  f"{r['signals_per_call']}, exit {r['exit']}, valid {r['valid']}", file=sys.stderr)
    print(table(rows))
    print(f"\n({time.perf_counter() - started:,.0f} s; {opts.repeat} run(s) per arm, medians; profile {PROFILE}.yaml)")
    if opts.json:
        opts.json.write_text(json.dumps({"rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
