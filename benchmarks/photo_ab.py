"""The photo-sharing A/B: sizes pre-generated on upload against made on first request, and the edge cache's size.

Usage::

    .venv/bin/python benchmarks/photo_ab.py [--pregenerate all,thumbnail+medium,none] [--cache-bytes 8388608]
        [--duration 45] [--warmup 5] [--repeat 1] [--young] [--json FILE]

Each arm is one pair (``photo-media.pregenerate_sizes``, ``video-edge.cache_bytes``) of the cross product of
the two lists: ``all`` is the seed's create-thumbnails queue (every size made after upload, the photo READY
once they exist), ``none`` makes every size on its first GetPhoto, ``thumbnail+medium`` pre-generates those
two and leaves LARGE to first request. Side by side in one invocation (interleaved when ``--repeat`` > 1),
each arm starts the photo mesh (photo-media, photo-resizer, photo-feed, social-graph, video-storage,
video-edge, idgen: one process each on 127.0.0.1, ``casemesh.harness.mesh.Mesh``) with its settings and
drives ``harness/profiles/photo-sharing.yaml`` through it with ``casemesh run --target``. From the harness's
``driving`` line (seeding done) to the end it reads PhotoService.GetMediaStatus and the CPU time of
photo-resizer and photo-media, so costs count the load only:

- photo_load p50 / p99 and its share within 200 ms (the photo-load SLO of seed 003), the p99 of the loads
  whose size was made for them (photo_load_rendered) and how many there were, the edge hit ratio;
- upload_photo p99 and photo_visible p50 / p99 (Complete OK → in a follower's feed: the queue's delay);
- sizes made per upload on upload and on first request, resizer CPU-ms per upload, rendered KB per upload.

The seeded catalogue is aged by default (every size of every seeded photo viewed once before load), so only
photos uploaded during the run are made on first request; ``--young`` seeds with ``aged: false`` (a profile
copy in a temporary folder), and the run pays the first views of the whole catalogue too. Prints a Markdown table; ``--json FILE`` keeps the raw figures. Every child has a time
limit; everything listens on 127.0.0.1 only.
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
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.profile_run import drive  # noqa: E402
from casemesh.harness.mesh import Mesh  # noqa: E402
from casemesh.photo.v1 import media_pb2, media_pb2_grpc  # noqa: E402

PROFILE = "photo-sharing"
PROFILES = ROOT / "harness" / "profiles"
SERVICES = ["photo-media", "photo-resizer", "photo-feed", "social-graph", "video-storage", "video-edge", "idgen"]
PUBLIC = ("photo-media", "photo-feed", "social-graph", "video-storage", "video-edge")
PREGENERATE = {"all": ["thumbnail", "medium", "large"], "thumbnail+medium": ["thumbnail", "medium"], "none": []}


async def snapshot(mesh: Mesh, stub: media_pb2_grpc.PhotoServiceStub) -> dict[str, float]:
    status = await stub.GetMediaStatus(media_pb2.GetMediaStatusRequest(), timeout=10)
    cpu = {name: sum(psutil.Process(mesh.pid(name)).cpu_times()[:2]) for name in ("photo-resizer", "photo-media")}
    return {"on_upload": status.renders_on_upload, "on_request": status.renders_on_request,
            "rendered_bytes": status.rendered_bytes, "resizer_cpu_s": cpu["photo-resizer"], "media_cpu_s": cpu["photo-media"]}


def young_profile(folder: Path) -> str:
    """A copy of the shipped profile whose seed is not aged, its SLO file named by absolute path."""
    profile = yaml.safe_load((PROFILES / f"{PROFILE}.yaml").read_text())
    profile["seed"]["aged"] = False
    profile["slos"] = [str(PROFILES / name) for name in profile["slos"]]
    path = folder / f"{PROFILE}-young.yaml"
    path.write_text(yaml.safe_dump(profile))
    return str(path)


async def one(pregenerate: str, cache_bytes: int, duration_s: float, warmup_s: float, young: bool) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="casemesh-photo-bench-"))
    settings = {"photo-media": {"pregenerate_sizes": PREGENERATE[pregenerate]}, "video-edge": {"cache_bytes": cache_bytes}}
    try:
        async with Mesh(SERVICES, folder / "mesh", settings=settings) as mesh:
            async with grpc.aio.insecure_channel(mesh.topology.endpoint("photo-media").address) as channel:
                stub = media_pb2_grpc.PhotoServiceStub(channel)
                run = await drive(mesh, young_profile(folder) if young else PROFILE, PUBLIC, folder / "out",
                                  lambda: snapshot(mesh, stub), duration_s=duration_s, warmup_s=warmup_s, extra_s=600)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    start, end, result = run.at_driving, run.at_end, run.result
    journeys = result["journeys"]
    uploads = journeys["upload_photo"]["count"]  # every attempt, OK or not
    loads = journeys["photo_load"]
    hits = journeys.get("photo_load_edge_hit", {}).get("count", 0)
    rendered = journeys.get("photo_load_rendered", {"count": 0, "p99_ms": None})
    slo = next(s for s in result["slos"] if s["name"] == "photo-load")
    per_upload = (lambda x: x / uploads if uploads else None)
    return {
        "pregenerate": pregenerate, "cache_bytes": cache_bytes, "exit": run.exit_code, "valid": result["valid"],
        "uploads": uploads, "loads": loads["count"], "load_errors": loads["count"] - loads["ok"],
        "load_p50_ms": loads["p50_ms"], "load_p99_ms": loads["p99_ms"], "within_200ms": slo["measured"],
        "slo_passed": slo["passed"], "hit_ratio": hits / loads["count"] if loads["count"] else None,
        "rendered_loads": rendered["count"], "rendered_p99_ms": rendered["p99_ms"],
        "upload_p99_ms": journeys["upload_photo"]["p99_ms"],
        "visible_p50_ms": journeys.get("photo_visible", {}).get("p50_ms"),
        "visible_p99_ms": journeys.get("photo_visible", {}).get("p99_ms"),
        "renders_on_upload_per_upload": per_upload(end["on_upload"] - start["on_upload"]),
        "renders_on_request": end["on_request"] - start["on_request"],
        "resizer_cpu_ms_per_upload": per_upload(1000 * (end["resizer_cpu_s"] - start["resizer_cpu_s"])),
        "media_cpu_ms_per_arrival": 1000 * (end["media_cpu_s"] - start["media_cpu_s"]) / max(1, result["throughput"]["completed_rps"] * result["throughput"]["measured_s"]),
        "rendered_kb_per_upload": per_upload((end["rendered_bytes"] - start["rendered_bytes"]) / 1000),
    }


def table(rows: list[dict[str, Any]]) -> str:
    def num(x: float | None, fmt: str = ",.1f") -> str:
        return "-" if x is None else format(x, fmt)

    lines = ["| pregenerate | edge cache | photo_load p50 / p99 ms | within 200 ms | photo-load SLO | edge hits "
             "| loads rendered for them (p99 ms) | renders on upload / upload | renders on request | resizer CPU-ms / upload "
             "| upload_photo p99 ms | photo_visible p50 / p99 ms |",
             "|---|---:|---:|---:|:---:|---:|---:|---:|---:|---:|---:|---:|"]
    by: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        by.setdefault((row["pregenerate"], row["cache_bytes"]), []).append(row)

    def med(group: list[dict[str, Any]], key: str) -> float | None:
        values = [r[key] for r in group if r[key] is not None]
        return statistics.median(values) if values else None

    for (pregenerate, cache), group in by.items():
        lines.append(
            f"| {pregenerate} | {cache / 2**20:g} MiB | {num(med(group, 'load_p50_ms'))} / {num(med(group, 'load_p99_ms'))} "
            f"| {num(100 * med(group, 'within_200ms'), '.2f')}% | {'PASS' if all(r['slo_passed'] for r in group) else 'FAIL'} "
            f"| {num(100 * med(group, 'hit_ratio'), '.0f')}% | {num(med(group, 'rendered_loads'), ',.0f')} "
            f"({num(med(group, 'rendered_p99_ms'))}) | {num(med(group, 'renders_on_upload_per_upload'), '.2f')} "
            f"| {num(med(group, 'renders_on_request'), ',.0f')} | {num(med(group, 'resizer_cpu_ms_per_upload'))} "
            f"| {num(med(group, 'upload_p99_ms'))} | {num(med(group, 'visible_p50_ms'))} / {num(med(group, 'visible_p99_ms'))} |")
    return "\n".join(lines)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pregenerate", default="all,thumbnail+medium,none",
                        help=f"comma-separated arms of photo-media.pregenerate_sizes: {', '.join(PREGENERATE)}")
    parser.add_argument("--cache-bytes", default="8388608", help="comma-separated video-edge.cache_bytes values")
    parser.add_argument("--duration", type=float, default=45.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds per run")
    parser.add_argument("--repeat", type=int, default=1, help="runs per arm (interleaved)")
    parser.add_argument("--young", action="store_true", help="seed a young catalogue (aged: false), never viewed before load")
    parser.add_argument("--json", type=Path, help="write the raw figures here")
    opts = parser.parse_args()
    arms = [(p, int(c)) for p in opts.pregenerate.split(",") for c in opts.cache_bytes.split(",")]
    unknown = [p for p, _ in arms if p not in PREGENERATE]
    if unknown:
        parser.error(f"unknown --pregenerate arm(s) {unknown}; known: {', '.join(PREGENERATE)}")
    rows = []
    started = time.perf_counter()
    for round_ in range(opts.repeat):
        for pregenerate, cache in arms:
            print(f"round {round_ + 1}/{opts.repeat}: pregenerate {pregenerate}, edge cache {cache:,} bytes", file=sys.stderr)
            rows.append(await one(pregenerate, cache, opts.duration, opts.warmup, opts.young))
            r = rows[-1]
            print(f"  photo_load p99 {r['load_p99_ms']} ms, within 200 ms {r['within_200ms']:.4f}, "
                  f"rendered loads {r['rendered_loads']}, valid {r['valid']}", file=sys.stderr)
    print(table(rows))
    print(f"\n({time.perf_counter() - started:,.0f} s; {opts.repeat} run(s) per arm, medians)")
    if opts.json:
        opts.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
