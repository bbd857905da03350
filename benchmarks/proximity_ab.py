"""The proximity A/B: the H3 resolution of the indexes (places and moving entities) against search latency and update
cost, seed 001 #29's "Geohash/H3" trade-off (shared/seeds/001_58dfc580020147d2.txt line 51).

Usage::

    .venv/bin/python benchmarks/proximity_ab.py [--arms res6,res7,res8,res9,res10,res11,res12] [--rate-scale 1]
        [--duration 30] [--warmup 5] [--repeat 1] [--json FILE]

Each arm sets both indexes' resolution, as ``casemesh run proximity --set proximity-places.index_resolution=R --set
proximity-tracker.index_resolution=R`` would (the shard resolution stays the shipped 5, below R; ``res5`` also
sets both ``shard_resolution`` to 4):

- ``res6`` (about 36 km² a cell, edge about 3.2 km) and ``res7`` (about 5 km², edge about 1.2 km): coarse. A search
  reads few cells but measures every place of each, most of them beyond its radius or its page: downtown a res6
  cell holds thousands of places;
- ``res8`` (about 0.74 km², edge about 0.5 km; seed 003 line 906, geohash precision 6, "~1km"): the tracker's
  shipped value;
- ``res9`` (about 0.1 km²: the places index's shipped value, measured best here), ``res10`` (about 0.015 km², edge about 66 m), ``res11`` (about 0.002 km², edge about
  25 m) and ``res12`` (about 0.0003 km², edge about 9 m; the settings' finest): fine. A search measures few places
  per cell but walks many rings, and where its category is rare (museums are 2% of the places) or the city sparse, a
  5 km search reads thousands of cells, most of them empty; moving entities change cells more often.

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1), at the profile's rate times
``--rate-scale``. Each starts the three services (proximity-places, proximity-tracker, proximity-geofence: one
process each on 127.0.0.1, ``casemesh.harness.mesh.Mesh``) with the arm's settings and drives
``harness/profiles/proximity.yaml`` through them with ``casemesh run --target`` (benchmarks/profile_run.py), so that
it can read the services' own metrics (their ``/metrics``, the topology's ``metrics_address``) and CPU time when the
harness prints its ``driving`` line (50,000 places seeded) and when the run has ended: the server-side figures count
the load only (warm-up included), not the seeding.

Reported per arm, client-side (result.json): SearchPlaces p50 / p99 (every page; the first from its journey's intended
start) and the search-latency SLO (99% within 100 ms: the share measured and the verdict), FindNearbyEntities p99 and
the nearby-latency SLO, update_ack p99 (a gateway's batch of 250 positions, from its due time to its
acknowledgement), every SLO verdict, the harness's send lag p99 and the run's validity. Server-side (the deltas of
the services' metrics): index cells read per SearchPlaces page, mean and p99
(``casemesh_proximity_places_search_cells``; also the mean of searches over every category and of one-category
searches, which read that category's own index; per category in the JSON), the places index search time per page,
mean and p99 (``casemesh_proximity_places_search_seconds``: the ring walk alone), proximity-places CPU-ms per
SearchPlaces page; cells read per FindNearbyEntities (``casemesh_proximity_tracker_search_cells``); the mean index
update time per position (``casemesh_proximity_tracker_index_update_seconds``, sum / count: each observation is a
batch's apply time divided by its positions), cell changes per applied position
(``casemesh_proximity_tracker_cell_changes_total`` / ``casemesh_proximity_tracker_positions_total{result="applied"}``)
and proximity-tracker CPU-ms per applied position (its whole work: the stream, the forward to the geofence service,
the index, and its FindNearbyEntities searches too, which grow with fine cells). p99s from histogram buckets are
interpolated within a bucket, as PromQL's ``histogram_quantile`` (``≥`` when in the top bucket). ``--json FILE``
keeps the raw figures. The runs are benchmarks/profile_run.py's: a time limit
each, everything on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ab import add_arguments, common, finish, journey, ms, run_rounds, slo_cell  # noqa: E402

from benchmarks.profile_run import drive  # noqa: E402
from casemesh.harness.mesh import Mesh  # noqa: E402

PROFILE = "proximity"
PROFILES = ROOT / "harness" / "profiles"
SERVICES = ["proximity-places", "proximity-tracker", "proximity-geofence"]
PUBLIC = tuple(SERVICES)  # the workload calls all three (the fences are seeded and watched on proximity-geofence)
MEASURED = ("proximity-places", "proximity-tracker")  # whose /metrics and CPU time are read
#: Each measured service's own metric families (every service's /metrics also shows the other services' families,
#: at 0: their modules are imported by the service catalog).
OWN_PREFIX = {"proximity-places": "casemesh_proximity_places_", "proximity-tracker": "casemesh_proximity_tracker_"}
SEARCH_PLACES = "casemesh.proximity.v1.PlacesService/SearchPlaces"
FIND_NEARBY = "casemesh.proximity.v1.TrackerService/FindNearbyEntities"
#: The shards' H3 resolution (both services' shipped ``shard_resolution``); an arm at or below it lowers it.
SHARD_RESOLUTION = 5


def resolution(r: int) -> list[str]:
    """The ``--set`` assignments of an arm at H3 resolution ``r``, for both indexes."""
    sets = [f"{service}.index_resolution={r}" for service in MEASURED]
    if r <= SHARD_RESOLUTION:
        sets += [f"{service}.shard_resolution={r - 1}" for service in MEASURED]
    return sets


ARMS: dict[str, list[str]] = {f"res{r}": resolution(r) for r in (5, 6, 7, 8, 9, 10, 11, 12)}


def settings_of(assignments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``["SERVICE.KEY=VALUE", ...]`` (VALUE read as YAML, as ``casemesh run --set`` does) → the mesh's settings,
    ``{service: {key: value}}``."""
    settings: dict[str, dict[str, Any]] = {}
    for assignment in assignments:
        target, value = assignment.split("=", 1)
        service, key = target.split(".", 1)
        settings.setdefault(service, {})[key] = yaml.safe_load(value)
    return settings


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(mesh: Mesh) -> dict[str, Any]:
    """Each measured service's own samples (:data:`OWN_PREFIX`; ``_created`` left out), and their CPU seconds."""
    samples: Samples = {}
    cpu: dict[str, float] = {}
    for name in MEASURED:
        address = mesh.topology.endpoint(name).metrics_address
        text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()  # noqa: S310 - loopback
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith(OWN_PREFIX[name]) and not sample.name.endswith("_created"):
                    samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        cpu[name] = sum(psutil.Process(mesh.pid(name)).cpu_times()[:2])
    return {"samples": samples, "cpu_s": cpu}


def delta(start: Samples, end: Samples) -> Samples:
    """The load's share of every sample: end - start (a series born during the load counts from 0)."""
    return {key: value - start.get(key, 0.0) for key, value in end.items()}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def mean(samples: Samples, histogram: str, keep: Any = None) -> float | None:
    """``histogram``'s sum / count over the series ``keep(labels)`` accepts (all by default); None when empty."""
    def pick(suffix: str) -> float:
        return sum(v for (n, ls), v in samples.items()
                   if n == histogram + suffix and (keep is None or keep(dict(ls))))
    count = pick("_count")
    return pick("_sum") / count if count else None


def quantile(samples: Samples, histogram: str, q: float) -> float | None:
    """``q`` (0..1) of ``histogram`` over all its series, from its cumulative buckets, interpolated linearly within
    the bucket as PromQL's ``histogram_quantile`` does (the lowest bucket from 0; beyond the last finite bound, that
    bound). None when empty."""
    buckets: dict[float, float] = {}
    for (n, ls), v in samples.items():
        if n == histogram + "_bucket":
            le = float(dict(ls)["le"])
            buckets[le] = buckets.get(le, 0.0) + v
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        if buckets[le] >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * ((rank - below) / (buckets[le] - below) if buckets[le] > below else 0)
        lower, below = le, buckets[le]
    return lower


def saturated(samples: Samples, histogram: str, value: float | None) -> bool:
    """Whether ``value`` (a :func:`quantile` of ``histogram``) is its last finite bucket bound: the true value is
    that bound or more."""
    bounds = [float(dict(ls)["le"]) for (n, ls) in samples if n == histogram + "_bucket"]
    finite = [b for b in bounds if not math.isinf(b)]
    return value is not None and bool(finite) and value >= max(finite)


def server_figures(start: dict[str, Any], end: dict[str, Any], search_pages: float | None) -> dict[str, Any]:
    """The server-side figures of one run from its two scrapes (module docstring)."""
    d = delta(start["samples"], end["samples"])
    cpu = {name: end["cpu_s"][name] - start["cpu_s"][name] for name in MEASURED}
    cells = "casemesh_proximity_places_search_cells"
    pages = total(d, cells + "_count")
    applied = total(d, "casemesh_proximity_tracker_positions_total", result="applied")
    update_s = mean(d, "casemesh_proximity_tracker_index_update_seconds")
    places_s = mean(d, "casemesh_proximity_places_search_seconds")
    places_p99_s = quantile(d, "casemesh_proximity_places_search_seconds", 0.99)
    nearby_s = mean(d, "casemesh_proximity_tracker_search_seconds")
    return {
        "pages_server": pages,
        "cells_per_page": mean(d, cells),
        "cells_per_page_p99": quantile(d, cells, 0.99),
        "cells_per_page_p99_saturated": saturated(d, cells, quantile(d, cells, 0.99)),
        "cells_per_page_any": mean(d, cells, lambda ls: ls.get("category") == "any"),
        "cells_per_page_category": mean(d, cells, lambda ls: ls.get("category") != "any"),
        "cells_per_page_by_category": {
            category: mean(d, cells, lambda labels, c=category: labels.get("category") == c)
            for category in sorted({dict(ls)["category"] for (n, ls), v in d.items() if n == cells + "_count" and v})},
        "places_search_mean_us": None if places_s is None else 1e6 * places_s,
        "places_search_p99_us": None if places_p99_s is None else 1e6 * places_p99_s,
        "places_cpu_ms_per_page": 1e3 * cpu["proximity-places"] / pages if pages else None,
        "search_pages_client": search_pages,
        "nearby_cells": mean(d, "casemesh_proximity_tracker_search_cells"),
        "nearby_search_mean_us": None if nearby_s is None else 1e6 * nearby_s,
        "positions_applied": applied,
        "positions_stale": total(d, "casemesh_proximity_tracker_positions_total", result="stale"),
        "update_us_per_position": None if update_s is None else 1e6 * update_s,
        "update_p99_us": (None if (p := quantile(d, "casemesh_proximity_tracker_index_update_seconds", 0.99)) is None
                          else 1e6 * p),
        "cell_changes": total(d, "casemesh_proximity_tracker_cell_changes_total"),
        "cell_changes_per_position": (total(d, "casemesh_proximity_tracker_cell_changes_total") / applied
                                      if applied else None),
        "shard_changes_per_position": (total(d, "casemesh_proximity_tracker_shard_changes_total") / applied
                                       if applied else None),
        "tracker_cpu_ms_per_position": 1e3 * cpu["proximity-tracker"] / applied if applied else None,
        "cpu_s": cpu,
    }


def profile_for(args: argparse.Namespace, out: Path) -> str:
    """The profile to drive: the shipped name, or with ``--rate-scale`` other than 1 a copy of it in ``out`` whose
    arrival rate is scaled (profile_run.drive passes no ``--rate-scale``; the SLO files stay the shipped ones)."""
    if args.rate_scale == 1.0:
        return PROFILE
    profile = yaml.safe_load((PROFILES / f"{PROFILE}.yaml").read_text())
    profile["arrival"]["rate_per_s"] *= args.rate_scale
    profile["slos"] = [str(PROFILES / name) for name in profile.get("slos", [])]
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{PROFILE}.yaml"
    path.write_text(yaml.safe_dump(profile, sort_keys=False))
    return str(path)


async def one(name: str, args: argparse.Namespace, out: Path) -> Any:
    """The mesh with the arm's settings, the profile driven through it: the run and the two scrapes."""
    profile = profile_for(args, out)
    async with Mesh(SERVICES, out / "mesh", settings=settings_of(ARMS[name])) as mesh:
        async def snapshot() -> dict[str, Any]:
            return await asyncio.to_thread(scrape, mesh)

        return await drive(mesh, profile, PUBLIC, out / "run", snapshot, duration_s=args.duration,
                           warmup_s=args.warmup, extra_s=300.0)


def rpc(result: dict[str, Any], method: str, key: str) -> float | None:
    """Figure ``key`` of RPC ``method`` in a result, None when absent."""
    return result["rpcs"].get(method, {}).get(key)


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One arm: its mesh and run; the figures of its result.json and of the services' metrics."""
    run = asyncio.run(one(name, args, out))
    result = run.result
    row = {**common(name, result, run.exit_code), "settings": ARMS[name],
           "search_pages": rpc(result, SEARCH_PLACES, "count"),
           "search_p50_ms": rpc(result, SEARCH_PLACES, "p50_ms"),
           "search_p99_ms": rpc(result, SEARCH_PLACES, "p99_ms"),
           "search_max_ms": rpc(result, SEARCH_PLACES, "max_ms"),
           "nearby_p50_ms": rpc(result, FIND_NEARBY, "p50_ms"),
           "nearby_p99_ms": rpc(result, FIND_NEARBY, "p99_ms"),
           "update_ack_p50_ms": journey(result, "update_ack", "p50_ms"),
           "update_ack_p99_ms": journey(result, "update_ack", "p99_ms"),
           "search_journey_p99_ms": journey(result, "search", "p99_ms")}
    row.update(server_figures(run.at_driving, run.at_end, row["search_pages"]))
    print(f"  {name}: SearchPlaces p50 {row['search_p50_ms']} / p99 {row['search_p99_ms']} ms, cells/page "
          f"{row['cells_per_page']}, update {row['update_us_per_position']} us/position, cell changes/position "
          f"{row['cell_changes_per_position']}, exit {row['exit']}, valid {row['valid']}",
          file=sys.stderr, flush=True)
    return row


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def num(value: float | None, fmt: str = ",.1f") -> str:
    return "-" if value is None else format(value, fmt)


def slo(row: dict[str, Any], name: str) -> str:
    """``99.71% ✓`` (measured share and verdict) of SLO ``name``."""
    passed = row["verdicts"].get(name)
    return f"{pct(row['measured'].get(name))} {'met' if passed else 'missed' if passed is False else '-'}"


def table(rows: list[dict[str, Any]]) -> str:
    client = ["| arm | SearchPlaces pages | SearchPlaces p50 / p99 | search-latency (≤ 100 ms) | "
              "FindNearbyEntities p99 | nearby-latency | update_ack p99 | SLOs | send lag p99 | valid |",
              "|---|---:|---:|---|---:|---|---:|---|---:|---|"]
    server = ["| arm | cells / page: mean (p99) | any category / one category | index search / page: mean (p99) | "
              "places CPU / page | cells / nearby search | index update / position | cell changes / position | "
              "tracker CPU / position |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        client.append(
            f"| {r['arm']} | {r['search_pages'] or 0:,} | {ms1(r['search_p50_ms'])} / {ms1(r['search_p99_ms'])} | "
            f"{slo(r, 'search-latency')} | {ms1(r['nearby_p99_ms'])} | {slo(r, 'nearby-latency')} | "
            f"{ms(r['update_ack_p99_ms'])} | {slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
            f"{'yes' if r['valid'] else 'no'} |")
        server.append(
            f"| {r['arm']} | {num(r['cells_per_page'])} "
            f"({'≥ ' if r['cells_per_page_p99_saturated'] else ''}{num(r['cells_per_page_p99'], ',.0f')}) | "
            f"{num(r['cells_per_page_any'])} / {num(r['cells_per_page_category'])} | "
            f"{num(r['places_search_mean_us'], ',.0f')} µs ({num(r['places_search_p99_us'], ',.0f')} µs) | "
            f"{num(r['places_cpu_ms_per_page'], '.2f')} ms | {num(r['nearby_cells'])} | "
            f"{num(r['update_us_per_position'], '.2f')} µs | {num(r['cell_changes_per_position'], '.3f')} | "
            f"{num(r['tracker_cpu_ms_per_position'], '.3f')} ms |")
    return "\n".join(client) + "\n\n" + "\n".join(server)


def ms1(value: float | None) -> str:
    """``12.3 ms`` (one decimal: the pages are fast), or ``-``."""
    return "-" if value is None else f"{value:,.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "res6,res7,res8,res9,res10,res11,res12", duration_s=30.0)
    args = parser.parse_args()
    rows = run_rounds(parser, args, ARMS, run_arm, PROFILE)
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
