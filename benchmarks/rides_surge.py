"""Surge follows the moving hotspot: the ride-sharing surge map sampled during a ``casemesh run rides``, plotted against
where the workload's demand hotspot is.

Usage::

    .venv/bin/python benchmarks/rides_surge.py [--duration 140] [--surge-interval 5] [--plot docs/img/rides-surge.png]
        [--json FILE]

The script starts the four ride-sharing services itself (harness Mesh: one process each, on 127.0.0.1, with
``rides-pricing.surge_interval_s`` = ``--surge-interval``, so a 70 s crossing of the city shows many recomputations
instead of the shipped 30 s's two), runs ``casemesh run rides --target ...`` against them for ``--duration`` seconds
(harness/profiles/rides.yaml: 150 drivers, riders at 2 a second, 60% of pickups around a hotspot that crosses the city
from the south-west to the north-east in 70 s and back), and meanwhile asks PricingService.ListSurge once a second.
The load's start is taken as the first sample at which 90% of the drivers are online
(LocationService.CountAvailableDrivers, an internal call made with a rides-pricing caller token under the mesh's
secret: the workload starts its riders then), and the hotspot's centre at each
instant comes from the workload's own pure function (harness/workloads/rides/seeding.py ``hotspot_centre``).

Printed: per surge recomputation, the cells surging (multiplier above 1), the surge-weighted centroid of those cells,
and its distance from the hotspot's centre at that moment; and the mean of that distance against the mean distance
from the hotspot of a cell drawn at random from the city (what "not following" would give). ``--plot`` draws the
position of both along the city's south-west → north-east diagonal over time, and three snapshots of the surge map.
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import grpc
import h3
import yaml

ROOT = Path(__file__).resolve().parent.parent

from casemesh.harness.mesh import Mesh  # noqa: E402
from casemesh.harness.profile import PROFILES_DIR  # noqa: E402
from casemesh.harness.workloads.rides.seeding import SeedParams, hotspot_centre  # noqa: E402
from casemesh.rides.v1 import location_pb2, location_pb2_grpc, pricing_pb2, pricing_pb2_grpc  # noqa: E402
from casemesh.services.runtime.identity import CallerToken, service_identity  # noqa: E402
from casemesh.services.runtime.secrets import SERVICE_TOKEN  # noqa: E402

SERVICES = ["rides-location", "rides-pricing", "rides-trips", "rides-dispatch"]


def seed_params() -> SeedParams:
    """The rides profile's seed block."""
    profile = yaml.safe_load((PROFILES_DIR / "rides.yaml").read_text())
    return SeedParams(**profile["seed"])


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return h3.great_circle_distance(a, b, unit="m")


def centroid(cells: list[dict[str, Any]]) -> tuple[float, float] | None:
    """The surge-weighted centre (weight: multiplier − 1) of the surging cells, or None when none surges."""
    weights = [(c["multiplier"] - 1.0, c["center"]) for c in cells if c["multiplier"] > 1.0]
    total = sum(w for w, _ in weights)
    if total <= 0:
        return None
    return (sum(w * p[0] for w, p in weights) / total, sum(w * p[1] for w, p in weights) / total)


async def sample(mesh: Mesh, samples: list[dict[str, Any]], stop_at: float) -> None:
    """Append ListSurge (and the available drivers) to ``samples`` once a second until ``stop_at`` (monotonic)."""
    async with grpc.aio.insecure_channel(mesh.topology.endpoint("rides-pricing").address) as pricing_channel, \
            grpc.aio.insecure_channel(mesh.topology.endpoint("rides-location").address) as location_channel:
        pricing = pricing_pb2_grpc.PricingServiceStub(pricing_channel)
        location = location_pb2_grpc.LocationServiceStub(location_channel)
        # CountAvailableDrivers is internal to rides-pricing: this script calls it as rides-pricing would, with a
        # caller token of that identity under this mesh's secret (services/runtime/identity.py).
        token = CallerToken(service_identity("rides-pricing"), mesh.secret.keyring(SERVICE_TOKEN))
        while time.monotonic() < stop_at:
            try:
                surge = await pricing.ListSurge(pricing_pb2.ListSurgeRequest(), timeout=5)
                online = await location.CountAvailableDrivers(
                    location_pb2.CountAvailableDriversRequest(resolution=surge.resolution or 8), timeout=5,
                    metadata=token.metadata())
            except grpc.aio.AioRpcError:
                await asyncio.sleep(1)
                continue
            samples.append({"t": time.monotonic(), "computed_at_ms": surge.computed_at_unix_ms,
                            "available": online.total_drivers,
                            "cells": [{"cell": c.cell, "multiplier": c.multiplier, "demand": c.demand,
                                       "supply": c.supply, "center": (c.center.lat_deg, c.center.lng_deg)}
                                      for c in surge.cells]})
            await asyncio.sleep(1)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    params = seed_params()
    with tempfile.TemporaryDirectory(prefix="casemesh-rides-surge-") as tmp:
        settings = {"rides-pricing": {"surge_interval_s": args.surge_interval}}
        async with Mesh(SERVICES, Path(tmp), settings=settings) as mesh:
            command = [sys.executable, "-m", "casemesh.harness.cli", "run", "rides", "--duration", str(args.duration),
                       "--warmup", "0", "--out", str(Path(tmp) / "run"), "--no-progress", "--report", "off"]
            for name in SERVICES:
                command += ["--target", f"{name}={mesh.topology.endpoint(name).address}"]
            env = {**os.environ, "CASEMESH_SECRET": os.environ.get("CASEMESH_SECRET") or "surge-benchmark-only"}
            harness = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, env=env, text=True)
            limit = time.monotonic() + args.duration + 180
            samples: list[dict[str, Any]] = []
            sampler = asyncio.create_task(sample(mesh, samples, limit))
            while harness.poll() is None and time.monotonic() < limit:
                await asyncio.sleep(1)
            if harness.poll() is None:
                harness.kill()
            output = harness.communicate()[0]
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
    if harness.returncode not in (0, 1):
        raise SystemExit(f"casemesh run rides exited {harness.returncode}:\n{output[-3000:]}")
    return analyse(samples, params, args.duration)


def analyse(samples: list[dict[str, Any]], params: SeedParams, duration_s: float) -> dict[str, Any]:
    """One row per recomputation seen during the load: the surge centroid against the hotspot's centre."""
    ready = math.ceil(params.drivers * params.ready_fraction)
    start = next((s["t"] for s in samples if s["available"] >= ready), None)
    if start is None:
        raise SystemExit("the drivers never came online")
    city = params.city()
    rng = random.Random(7)
    rows, seen = [], set()
    for s in samples:
        elapsed = s["t"] - start
        if not 0 <= elapsed <= duration_s or s["computed_at_ms"] in seen:
            continue
        seen.add(s["computed_at_ms"])
        hotspot = hotspot_centre(elapsed, params)
        surging = [c for c in s["cells"] if c["multiplier"] > 1.0]
        centre = centroid(s["cells"])
        random_cells = [city.uniform(rng) for _ in range(200)]
        rows.append({"elapsed_s": round(elapsed, 1), "hotspot": hotspot, "surge_centroid": centre,
                     "cells_surging": len(surging), "max_multiplier": max((c["multiplier"] for c in surging), default=1.0),
                     "distance_m": None if centre is None else round(metres(centre, hotspot)),
                     "random_distance_m": round(sum(metres(p, hotspot) for p in random_cells) / len(random_cells)),
                     "cells": s["cells"]})
    return {"rows": rows, "box": [city.south_deg, city.west_deg, city.north_deg, city.east_deg]}


def along(point: tuple[float, float], box: list[float]) -> float:
    """Position of ``point`` along the box's south-west → north-east diagonal, 0 to 1 (projection)."""
    south, west, north, east = box
    x, y = (point[1] - west) / (east - west), (point[0] - south) / (north - south)
    return (x + y) / 2


def plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, box = report["rows"], report["box"]
    figure = plt.figure(figsize=(12, 7.5))
    top = figure.add_subplot(2, 1, 1)
    times = [r["elapsed_s"] for r in rows]
    top.plot(times, [along(r["hotspot"], box) for r in rows], "-", color="tab:blue", label="demand hotspot centre")
    with_centre = [r for r in rows if r["surge_centroid"]]
    top.scatter([r["elapsed_s"] for r in with_centre], [along(r["surge_centroid"], box) for r in with_centre],
                s=[12 * r["cells_surging"] for r in with_centre], color="tab:red", alpha=0.6,
                label="surge-weighted centre of surging cells (size: cells surging)")
    top.set_xlabel("seconds into the load")
    top.set_ylabel("south-west (0) → north-east (1)")
    top.set_ylim(-0.05, 1.05)
    top.legend(loc="upper left", fontsize=8)
    top.set_title("Surge follows the moving hotspot (casemesh run rides; surge recomputed every few seconds)")
    picks = [rows[int(i)] for i in (len(rows) * 0.2, len(rows) * 0.5, len(rows) * 0.8)] if len(rows) >= 3 else rows
    colours = {1.2: "#fde0a0", 1.5: "#fdae61", 2.0: "#f46d43", 2.5: "#a50026"}
    for n, row in enumerate(picks):
        axis = figure.add_subplot(2, 3, 4 + n)
        for cell in row["cells"]:
            if cell["multiplier"] <= 1.0:
                continue
            boundary = h3.cell_to_boundary(cell["cell"])
            axis.fill([p[1] for p in boundary], [p[0] for p in boundary],
                      color=colours.get(cell["multiplier"], "#a50026"), edgecolor="grey", linewidth=0.3)
        axis.plot(row["hotspot"][1], row["hotspot"][0], "b*", markersize=12)
        axis.set_xlim(box[1], box[3])
        axis.set_ylim(box[0], box[2])
        axis.set_title(f"t = {row['elapsed_s']:.0f} s: {row['cells_surging']} cells surging", fontsize=9)
        axis.tick_params(labelsize=6)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=140.0, help="seconds of load (two crossings of the city)")
    parser.add_argument("--surge-interval", type=float, default=5.0, help="rides-pricing.surge_interval_s (s)")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print("| t (s) | cells surging | max multiplier | surge centre → hotspot | random cell → hotspot |")
    print("|---:|---:|---:|---:|---:|")
    for r in report["rows"]:
        distance = "-" if r["distance_m"] is None else f"{r['distance_m']:,} m"
        print(f"| {r['elapsed_s']:.0f} | {r['cells_surging']} | {r['max_multiplier']:.1f}x | {distance} | "
              f"{r['random_distance_m']:,} m |")
    measured = [r for r in report["rows"] if r["distance_m"] is not None]
    if measured:
        print(f"\nmean distance of the surge centre from the hotspot: {sum(r['distance_m'] for r in measured) / len(measured):,.0f} m "
              f"(a random cell: {sum(r['random_distance_m'] for r in measured) / len(measured):,.0f} m), "
              f"{len(measured)} of {len(report['rows'])} recomputations with a surging cell")
    if args.plot:
        plot(report, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
