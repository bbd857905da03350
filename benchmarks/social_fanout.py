"""The social feed's A/B: the celebrity threshold against write cost, fan-out freshness and home-timeline latency.

Usage::

    .venv/bin/python benchmarks/social_fanout.py [--thresholds 0,25,100,400,1000000000] [--duration 60] [--warmup 5] [--repeat 1]

For each celebrity threshold (0: pure fan-out on read; 1000000000: pure
fan-out on write; the hybrid in between), side by side in one invocation and
in interleaved order when ``--repeat`` > 1, this starts the social mesh
(social-graph, social-tweets, social-timeline, idgen: one process each on
127.0.0.1, ``casemesh.harness.mesh.Mesh``) with that threshold and drives
``harness/profiles/social-feed-fanout.yaml`` through it with ``casemesh run
--target``. Between the harness's ``driving`` line (seeding done) and the end
of the run it reads TimelineService.GetFanoutStatus and the CPU time of the
social-timeline and social-tweets processes, so the write cost counts the
load only:

- pushed/post: timeline-cache entries written per tweet (the fan-out's write amplification);
- cached IDs and the timeline process's RSS at the end (the fan-out's memory);
- timeline CPU-ms/post and per arrival, tweets CPU-ms/arrival;
- fanout_freshness p50/p99 (PostTweet OK → visible at a sampled follower), PostTweet p99;
- home_timeline p50/p99 (the feed load of seed 003) and pulled celebrities per read.

Prints a Markdown table; ``--json FILE`` keeps the raw figures. Every child
has a time limit; everything listens on 127.0.0.1 only.
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
from pathlib import Path
from typing import Any

import grpc
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.profile_run import drive  # noqa: E402
from casemesh.harness.mesh import Mesh  # noqa: E402
from casemesh.social.v1 import timeline_pb2, timeline_pb2_grpc  # noqa: E402

PROFILE = "social-feed-fanout"
SERVICES = ["social-graph", "social-tweets", "social-timeline", "idgen"]
PUBLIC = ("social-graph", "social-tweets", "social-timeline")


async def snapshot(mesh: Mesh, stub: timeline_pb2_grpc.TimelineServiceStub) -> dict[str, float]:
    status = await stub.GetFanoutStatus(timeline_pb2.GetFanoutStatusRequest(), timeout=10)
    cpu = {name: sum(psutil.Process(mesh.pid(name)).cpu_times()[:2]) for name in ("social-timeline", "social-tweets")}
    return {"applied": status.applied_sequence, "pushed": status.pushed_entries, "skipped": status.skipped_celebrity_tweets,
            "cached": status.cached_entries, "timeline_rss_mb": psutil.Process(mesh.pid("social-timeline")).memory_info().rss / 2**20,
            "timeline_cpu_s": cpu["social-timeline"], "tweets_cpu_s": cpu["social-tweets"], "at": time.monotonic()}


async def one(threshold: int, duration_s: float, warmup_s: float) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="casemesh-social-bench-"))
    try:
        async with Mesh(SERVICES, folder / "mesh", settings={"social-timeline": {"celebrity_threshold": threshold}}) as mesh:
            async with grpc.aio.insecure_channel(mesh.topology.endpoint("social-timeline").address) as channel:
                stub = timeline_pb2_grpc.TimelineServiceStub(channel)
                run = await drive(mesh, PROFILE, PUBLIC, folder / "out", lambda: snapshot(mesh, stub),
                                  duration_s=duration_s, warmup_s=warmup_s, extra_s=600)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    start, end, result, proc_returncode = run.at_driving, run.at_end, run.result, run.exit_code
    posts = end["applied"] - start["applied"]
    arrivals = result["throughput"].get("sent") or sum(j["count"] for name, j in result["journeys"].items() if name != "fanout_freshness")
    journeys, rpcs = result["journeys"], result["rpcs"]
    return {
        "threshold": threshold, "exit": proc_returncode, "valid": result["valid"], "posts": posts, "arrivals": arrivals,
        "pushed_per_post": (end["pushed"] - start["pushed"]) / posts if posts else None,
        "celebrity_posts": end["skipped"] - start["skipped"],
        "cached_entries": end["cached"], "timeline_rss_mb": end["timeline_rss_mb"],
        "timeline_cpu_ms_per_post": 1000 * (end["timeline_cpu_s"] - start["timeline_cpu_s"]) / posts if posts else None,
        "timeline_cpu_ms_per_arrival": 1000 * (end["timeline_cpu_s"] - start["timeline_cpu_s"]) / arrivals,
        "tweets_cpu_ms_per_arrival": 1000 * (end["tweets_cpu_s"] - start["tweets_cpu_s"]) / arrivals,
        "freshness": {k: journeys["fanout_freshness"][k] for k in ("count", "p50_ms", "p99_ms")},
        "freshness_errors": journeys["fanout_freshness"]["errors"],
        "post_tweet_p99_ms": rpcs["casemesh.social.v1.TweetService/PostTweet"]["p99_ms"],
        "home": {k: journeys["home_timeline"][k] for k in ("count", "p50_ms", "p99_ms")},
        "home_errors": journeys["home_timeline"]["errors"],
        "list_recent_calls": rpcs.get("casemesh.social.v1.TweetService/ListRecentTweets", {}).get("count", 0),
    }


def table(rows: list[dict[str, Any]]) -> str:
    def ms(x: float | None) -> str:
        return "-" if x is None else f"{x:,.1f}"

    lines = ["| celebrity threshold | pushed / post | cached IDs at the end | timeline RSS MiB | timeline CPU-ms / post | timeline CPU-ms / arrival | fanout_freshness p50 / p99 ms "
             "| PostTweet p99 ms | home_timeline p50 / p99 ms | valid |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    by: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["threshold"], []).append(row)
    for threshold, group in sorted(by.items()):
        med = {key: statistics.median(r[key] for r in group if r[key] is not None)
               for key in ("pushed_per_post", "cached_entries", "timeline_rss_mb", "timeline_cpu_ms_per_post", "timeline_cpu_ms_per_arrival", "post_tweet_p99_ms")}
        f50 = statistics.median(r["freshness"]["p50_ms"] for r in group)
        f99 = statistics.median(r["freshness"]["p99_ms"] for r in group)
        h50 = statistics.median(r["home"]["p50_ms"] for r in group)
        h99 = statistics.median(r["home"]["p99_ms"] for r in group)
        name = "1e9 (pure push)" if threshold >= 10**9 else ("0 (pure pull)" if threshold == 0 else f"{threshold:,}")
        lines.append(f"| {name} | {med['pushed_per_post']:,.1f} | {med['cached_entries']:,.0f} | {med['timeline_rss_mb']:,.0f} | "
                     f"{med['timeline_cpu_ms_per_post']:,.2f} | "
                     f"{med['timeline_cpu_ms_per_arrival']:,.2f} | {ms(f50)} / {ms(f99)} | {ms(med['post_tweet_p99_ms'])} | "
                     f"{ms(h50)} / {ms(h99)} | {'yes' if all(r['valid'] for r in group) else 'no'} |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thresholds", default="0,25,100,400,1000000000", help="comma-separated celebrity thresholds (followers)")
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per threshold (interleaved)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    opts = parser.parse_args()
    thresholds = [int(t) for t in opts.thresholds.split(",")]
    rows = []
    started = time.perf_counter()
    for round_ in range(opts.repeat):
        for threshold in thresholds:
            print(f"round {round_ + 1}/{opts.repeat}: threshold {threshold:,}", file=sys.stderr)
            rows.append(await one(threshold, opts.duration, opts.warmup))
            r = rows[-1]
            print(f"  pushed/post {r['pushed_per_post']}, freshness p99 {r['freshness']['p99_ms']} ms, "
                  f"home p99 {r['home']['p99_ms']} ms, valid {r['valid']}", file=sys.stderr)
    print(table(rows))
    print(f"\n({time.perf_counter() - started:,.0f} s; {opts.repeat} run(s) per threshold, medians)")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
