"""The recommendation A/B: the candidate pool the ranker ranks (``reco-ranker.pool_size``), its recall and its cost.

Usage::

    .venv/bin/python benchmarks/reco_ab.py [--pool-sizes 25,100,400,1600] [--duration 45] [--warmup 5]
        [--repeat 1] [--sample-users 400] [--k 20,50] [--json FILE]

Each arm is one value of ``reco-ranker.pool_size``: how many candidates GetRecommendations asks reco-candidates
for and merges with seed 003's weights (collaborative 0.4, embedding 0.3, trending 0.2) before cutting to the
limit. Side by side in one invocation (interleaved when ``--repeat`` > 1), each arm starts the recommendation
mesh (reco-ranker, reco-candidates, reco-signals: one process each on 127.0.0.1, ``casemesh.harness.mesh.Mesh``)
with that setting and drives ``harness/profiles/recommendations.yaml`` through it with ``casemesh run --target``
(seeding records every user's train interactions and trains the model once). From the harness's ``driving``
line (seeding and training done) to the end of the run it reads the CPU time of reco-ranker and reco-candidates
(psutil), so CPU-ms per request counts the load only: CPU over the GetRecommendations calls the run completed.

After the run, with the mesh still up, it scores quality: the dataset is regenerated from the profile's seed
parameters (``harness/workloads/reco/dataset.py``, same seed, same dataset), ``--sample-users`` users with a
held-out part are drawn (the same users in every arm), and each gets one GetRecommendations straight from
reco-ranker with ``limit`` the largest ``--k`` (the arm's pool size applies). recall@k is
``|top-k ∩ held_out| / min(k, |held_out|)`` (:func:`~casemesh.harness.workloads.reco.dataset.recall_at_k`), the
held-out items being the fifth of each history that neither seeding nor the load ever sent. For reference, the
"most popular items the user has not seen" list scores ``popular`` (computed offline, the same for every arm):
only recall above it comes from personalisation.

Reported per arm: recall@k, GetRecommendations p50 / p99 and the for_you p99 from result.json, the reco-latency
SLO's measured share within 100 ms and its verdict, CPU-ms per GetRecommendations of reco-ranker and
reco-candidates, and the run's validity. Prints a Markdown table; ``--json FILE`` keeps the raw figures. Every
child has a time limit; everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.profile_run import drive  # noqa: E402
from casemesh.harness.mesh import Mesh  # noqa: E402
from casemesh.harness.workloads.reco.dataset import Dataset, generate, popularity_baseline, recall_at_k  # noqa: E402
from casemesh.harness.workloads.reco.seeding import SeedParams  # noqa: E402
from casemesh.reco.v1 import recommendations_pb2, recommendations_pb2_grpc  # noqa: E402

PROFILE = "recommendations"
PROFILES = ROOT / "harness" / "profiles"
SERVICES = ["reco-ranker", "reco-candidates", "reco-signals"]
PUBLIC = ("reco-ranker", "reco-candidates", "reco-signals")  # every service the workload calls, seeding included
MEASURED = ("reco-ranker", "reco-candidates")
GET_RECOMMENDATIONS = "casemesh.reco.v1.RecommendationService/GetRecommendations"


def cpu_s(mesh: Mesh) -> dict[str, float]:
    return {name: sum(psutil.Process(mesh.pid(name)).cpu_times()[:2]) for name in MEASURED}


def profile_dataset() -> Dataset:
    """The dataset the shipped profile seeds: its ``seed:`` parameters through the workload's own SeedParams."""
    profile = yaml.safe_load((PROFILES / f"{PROFILE}.yaml").read_text())
    return generate(SeedParams(**profile.get("seed", {})).spec())


def sample_users(dataset: Dataset, count: int) -> list[str]:
    """``count`` users with a held-out part, the same in every arm (a fixed RNG)."""
    eligible = sorted(u.user_id for u in dataset.users if u.held_out)
    return random.Random(20240519).sample(eligible, min(count, len(eligible)))


async def recommendations(address: str, users: list[str], limit: int, concurrency: int = 4) -> dict[str, list[str]]:
    """One GetRecommendations per user straight from reco-ranker (the arm's pool size), ``limit`` items each."""
    found: dict[str, list[str]] = {}
    pending = iter(users)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = recommendations_pb2_grpc.RecommendationServiceStub(channel)

        async def worker() -> None:
            for user in pending:
                answer = await stub.GetRecommendations(
                    recommendations_pb2.GetRecommendationsRequest(user_id=user, limit=limit), timeout=30)
                found[user] = [r.item_id for r in answer.recommendations]

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return found


def recalls(dataset: Dataset, found: dict[str, list[str]], ks: list[int]) -> dict[int, float]:
    users = dataset.by_id()
    return {k: statistics.fmean(recall_at_k(items, users[u].held_out, k) for u, items in found.items()) for k in ks}


async def one(pool_size: int, duration_s: float, warmup_s: float, dataset: Dataset, users: list[str],
              ks: list[int]) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="casemesh-reco-bench-"))
    settings = {"reco-ranker": {"pool_size": pool_size}}
    try:
        async with Mesh(SERVICES, folder / "mesh", settings=settings) as mesh:
            async def cpu() -> dict[str, float]:
                return cpu_s(mesh)

            run = await drive(mesh, PROFILE, PUBLIC, folder / "out", cpu, duration_s=duration_s, warmup_s=warmup_s)
            start, end, result = run.at_driving, run.at_end, run.result
            scored_at = time.perf_counter()
            found = await recommendations(mesh.topology.endpoint("reco-ranker").address, users, max(ks))
            score_s = time.perf_counter() - scored_at
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    calls = result["rpcs"].get(GET_RECOMMENDATIONS, {"count": 0, "ok": 0, "p50_ms": None, "p99_ms": None})
    for_you = result["journeys"].get("for_you", {"p99_ms": None})
    signal = result["journeys"].get("signal_to_recommendation", {"count": 0, "ok": 0, "p99_ms": None})
    slo = next(s for s in result["slos"] if s["name"] == "reco-latency")
    per_call = (lambda cpu: 1000 * cpu / calls["count"] if calls["count"] else None)
    return {
        "pool_size": pool_size, "exit": run.exit_code, "valid": result["valid"],
        "recall": {str(k): v for k, v in recalls(dataset, found, ks).items()}, "users_scored": len(found),
        "mean_returned": statistics.fmean(len(v) for v in found.values()) if found else 0.0,
        "scoring_s": score_s,
        "calls": calls["count"], "call_errors": calls["count"] - calls["ok"],
        "p50_ms": calls["p50_ms"], "p99_ms": calls["p99_ms"], "for_you_p99_ms": for_you["p99_ms"],
        "within_100ms": slo["measured"], "slo_passed": slo["passed"],
        "signals": signal["count"], "signals_lost": signal["count"] - signal["ok"], "signal_p99_ms": signal["p99_ms"],
        **{f"{name}_cpu_ms_per_call": per_call(end[name] - start[name]) for name in MEASURED},
        "slos": {s["name"]: {"passed": s["passed"], "measured": s["measured"], "evaluated": s["evaluated"]}
                 for s in result["slos"]},
    }


def table(rows: list[dict[str, Any]], ks: list[int], popular: dict[int, float]) -> str:
    def num(x: float | None, fmt: str = ",.1f") -> str:
        return "-" if x is None else format(x, fmt)

    recall_heads = " | ".join(f"recall@{k}" for k in ks)
    lines = [f"| reco-ranker.pool_size | {recall_heads} | GetRecommendations p50 / p99 ms | for_you p99 ms "
             "| within 100 ms | reco-latency SLO | ranker CPU-ms / call | candidates CPU-ms / call "
             "| likes used / lost | valid |",
             "|---:|" + "---:|" * len(ks) + "---:|---:|---:|:---:|---:|---:|---:|:---:|"]
    by: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault(row["pool_size"], []).append(row)

    def med(group: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in group if r[key] is not None]
        return statistics.median(values) if values else None

    for pool, group in by.items():
        recall_cells = " | ".join(num(statistics.median(r["recall"][str(k)] for r in group), ".3f") for k in ks)
        within = med(group, "within_100ms")
        lines.append(
            f"| {pool:,} | {recall_cells} | {num(med(group, 'p50_ms'))} / {num(med(group, 'p99_ms'))} "
            f"| {num(med(group, 'for_you_p99_ms'))} | {num(None if within is None else 100 * within, '.2f')}% "
            f"| {'PASS' if all(r['slo_passed'] for r in group) else 'FAIL'} "
            f"| {num(med(group, 'reco-ranker_cpu_ms_per_call'), '.2f')} | {num(med(group, 'reco-candidates_cpu_ms_per_call'), '.2f')} "
            f"| {sum(r['signals'] - r['signals_lost'] for r in group):,} / {sum(r['signals_lost'] for r in group):,} "
            f"| {'yes' if all(r['valid'] for r in group) else 'NO'} |")
    popular_cells = " | ".join(num(popular[k], ".3f") for k in ks)
    lines.append(f"| most popular unseen (offline reference) | {popular_cells} | | | | | | | | |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pool-sizes", default="25,100,400,1600", help="comma-separated reco-ranker.pool_size arms")
    parser.add_argument("--duration", type=float, default=45.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per arm (interleaved)")
    parser.add_argument("--sample-users", type=int, default=400, help="users whose recall is scored after each run")
    parser.add_argument("--k", default="20,50", help="comma-separated k of recall@k (at most 100, the contract's limit)")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    opts = parser.parse_args()
    pools = [int(p) for p in opts.pool_sizes.split(",")]
    ks = sorted({int(k) for k in opts.k.split(",")})
    if not all(1 <= k <= 100 for k in ks):
        parser.error("every --k must be 1 to 100 (GetRecommendations' limit)")
    if not all(1 <= p <= 5000 for p in pools):
        parser.error("every pool size must be 1 to 5,000")
    dataset = profile_dataset()
    users = sample_users(dataset, opts.sample_users)
    by_id = dataset.by_id()
    popular = {k: statistics.fmean(recall_at_k(popularity_baseline(dataset, by_id[u], k), by_id[u].held_out, k)
                                   for u in users) for k in ks}
    rows = []
    started = time.perf_counter()
    for round_ in range(opts.repeat):
        for pool in pools:
            print(f"round {round_ + 1}/{opts.repeat}: reco-ranker.pool_size {pool:,}", file=sys.stderr)
            rows.append(await one(pool, opts.duration, opts.warmup, dataset, users, ks))
            r = rows[-1]
            print(f"  recall {r['recall']}, GetRecommendations p99 {r['p99_ms']} ms, within 100 ms {r['within_100ms']}, "
                  f"ranker CPU-ms/call {r['reco-ranker_cpu_ms_per_call']}, exit {r['exit']}, valid {r['valid']}",
                  file=sys.stderr)
    print(table(rows, ks, popular))
    print(f"\n({time.perf_counter() - started:,.0f} s; {opts.repeat} run(s) per arm, medians; recall over "
          f"{len(users)} users with a held-out part, profile seed {PROFILE}.yaml)")
    if opts.json:
        opts.json.write_text(json.dumps({"popular": {str(k): v for k, v in popular.items()}, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
