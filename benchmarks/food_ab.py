"""The food-delivery A/B: batching (food-dispatch.batching) on or off, against courier utilisation and the on-time
share.

Usage::

    .venv/bin/python benchmarks/food_ab.py [--arms batching-on,batching-off] [--rate-scale 1] [--duration 60]
        [--warmup 30] [--repeat 1] [--json FILE]

Each arm runs harness/profiles/food.yaml (300 restaurants of a simulated downtown San Francisco, 150 couriers on
ReportLocations and ReceiveAssignments streams, customers arriving open-loop at 3 a second around a lunch wave; the
city 30 times faster than real time) with ``--set food-dispatch.batching=...``:

- ``batching-on``: the shipped dispatch: a due order may join a courier who holds one order not yet picked up from a
  restaurant within ``batch_radius_m``, when the combined route costs less courier time than a second courier and
  delays neither delivery by more than ``max_batch_delay_s`` (services/food/dispatch/batching.py);
- ``batching-off``: every order gets a courier of its own (the nearest free one).

Batching's case is that it saves courier time when couriers are scarce: run it at the profile's rate and at
``--rate-scale 2`` (6 orders/s against a fleet the profile's note says saturates near 7/s).

Arms run one after the other in one invocation (interleaved when ``--repeat`` > 1: on, off, on, off), at the profile's
rate times ``--rate-scale``. Each starts the profile's four services (rides-location, food-restaurants, food-orders,
food-dispatch: one process each on 127.0.0.1, ``casemesh.harness.mesh.Mesh``, with the profile's ``settings:`` and the
arm's, as ``casemesh run`` would) and drives the profile through them with ``casemesh run --target``
(benchmarks/profile_run.py), so that it can read food-dispatch's own metrics: the workload does not record batches
(the couriers' feeds carry batch ids, but only the single-dispatch check looks at them; nothing about batch sizes
reaches result.json), so the batched share is dispatch's. ``--rate-scale`` is applied to a copy of the profile (its
arrival rate; the SLO files stay the shipped ones).

Reported per arm, client-side (result.json): orders placed in the measured window (the ``order`` journey), orders
delivered (``on_time`` samples), the on-time share (``on_time`` ok / count: delivered no later than the ETA model's
promise) and the on-time SLO's verdict (85%), delivery_time p50 / p95 (the customer's tap to DELIVERED), the
dispatch-time SLO (95% of orders assigned no later than their food's ready time: share and verdict), food_wait p99
(how long ready food waited for its courier), courier utilisation (the ``courier_utilisation`` measure: one sample per
courier a second while customers arrive, ``BUSY`` when it holds an order, from assignment to its last delivery,
``IDLE`` otherwise: the BUSY share of samples), orders delivered per busy courier-second (delivered / (BUSY share x
couriers x measured seconds): the window's deliveries over the window's busy courier time, a steady-state figure: the
deliveries of orders placed late in the window fall in the drain, balanced by orders of the warm-up delivered in it),
every SLO verdict, the harness's send lag p99, the run's validity and the machine's load (CPU busy, other processes'
share, the control stream's p99: the machine floor).

Server-side (the deltas of food-dispatch's metrics from the end of the warm-up, timed from the harness's ``driving``
line, to the end of the run, drain included): assignments (``casemesh_food_dispatch_decisions_total``
``assigned_new`` + ``batched``), the batched share (``batched`` / assignments), orders released for want of a
courier, batching evaluations (``batch``, ``no_saving``, ``too_late``), the courier seconds the batches made were
predicted to save, and the share of assignments made within 5 s of the order being due (the dispatch-time-server SLO's
measure, from the 5 s bucket of ``casemesh_food_dispatch_decision_seconds``). ``--json FILE`` keeps the raw figures,
with the services' CPU seconds. Everything listens on 127.0.0.1 only; every run has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.request
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
from casemesh.harness.profile import load_profile, with_settings  # noqa: E402
from casemesh.services.runtime.secrets import (  # noqa: E402
    SECRET_ENV,
    SECRET_FILE_ENV,
    generate_secret,
    load_mesh_secret,
)
from casemesh.services.runtime.tracing import RATIO_ENV  # noqa: E402

PROFILE = "food"
PROFILES = ROOT / "harness" / "profiles"
DISPATCH = "food-dispatch"
DISPATCH_PREFIX = "casemesh_food_dispatch_"
DECISIONS = "casemesh_food_dispatch_decisions_total"
EVALUATIONS = "casemesh_food_dispatch_batch_evaluations_total"
SAVED = "casemesh_food_dispatch_courier_seconds_saved_total"
DECISION_SECONDS = "casemesh_food_dispatch_decision_seconds"
#: The dispatch-time-server SLO's bound (harness/profiles/food.slo.yaml), a bucket bound of DECISION_SECONDS.
DECISION_BOUND = "5.0"

ARMS: dict[str, list[str]] = {
    "batching-on": [],
    "batching-off": ["food-dispatch.batching=false"],
}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(mesh: Mesh) -> dict[str, Any]:
    """food-dispatch's own samples (``_created`` left out) and every service's CPU seconds."""
    address = mesh.topology.endpoint(DISPATCH).metrics_address
    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=10).read().decode()  # noqa: S310 - loopback
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.startswith(DISPATCH_PREFIX) and not sample.name.endswith("_created"):
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    cpu = {}
    for name in mesh.services:
        pid = mesh.pid(name)
        if pid is not None:
            cpu[name] = sum(psutil.Process(pid).cpu_times()[:2])
    return {"samples": samples, "cpu_s": cpu}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels``."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and all(dict(ls).get(k) == x for k, x in labels.items()))


def server_figures(start: dict[str, Any], end: dict[str, Any]) -> dict[str, Any]:
    """Dispatch's figures of the load from two scrapes (module docstring)."""
    d = {key: value - start["samples"].get(key, 0.0) for key, value in end["samples"].items()}
    new = total(d, DECISIONS, outcome="assigned_new")
    batched = total(d, DECISIONS, outcome="batched")
    assigned = new + batched
    decided = total(d, DECISION_SECONDS + "_count")
    return {
        "assignments": assigned,
        "assigned_new": new,
        "batched": batched,
        "batched_share": batched / assigned if assigned else None,
        "released": total(d, DECISIONS, outcome="released"),
        "refused": total(d, DECISIONS, outcome="refused"),
        "aborted": total(d, DECISIONS, outcome="aborted"),
        "evaluations": {result: total(d, EVALUATIONS, result=result) for result in ("batch", "no_saving", "too_late")},
        "seconds_saved": total(d, SAVED),
        "decided_within_5s": total(d, DECISION_SECONDS + "_bucket", le=DECISION_BOUND) / decided if decided else None,
        "cpu_s": {name: end["cpu_s"][name] - start["cpu_s"].get(name, 0.0) for name in end["cpu_s"]},
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
    """The mesh with the profile's and the arm's settings, the profile driven through it: the run, and dispatch's
    metrics at the end of the warm-up and at the end."""
    profile = with_settings(load_profile(PROFILE), ARMS[name])
    async with Mesh(list(profile.services), out / "mesh", env={RATIO_ENV: "0"}, settings=profile.settings,
                    secret=load_mesh_secret()) as mesh:
        marks: dict[str, Any] = {}

        async def at_warmup_end() -> None:
            await asyncio.sleep(args.warmup)
            marks["warmed"] = await asyncio.to_thread(scrape, mesh)

        async def snapshot() -> dict[str, Any]:
            if "timer" not in marks:  # the driving line: the warm-up starts
                marks["timer"] = asyncio.get_running_loop().create_task(at_warmup_end())
            return await asyncio.to_thread(scrape, mesh)

        run = await drive(mesh, profile_for(args, out), list(profile.workload.services), out / "run", snapshot,
                          duration_s=args.duration, warmup_s=args.warmup, extra_s=300.0)
        await marks["timer"]
        return run, marks["warmed"]


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict[str, Any]:
    """One arm: its mesh and run; the figures of its result.json and of food-dispatch's metrics."""
    run, warmed = asyncio.run(one(name, args, out))
    result = run.result
    profile = load_profile(PROFILE)
    on_time = result["journeys"].get("on_time", {})
    delivered = on_time.get("count", 0) or 0
    utilisation = result["journeys"].get("courier_utilisation", {})
    samples = utilisation.get("count", 0) or 0
    busy_share = utilisation.get("errors", {}).get("BUSY", 0) / samples if samples else None
    couriers = profile.seed.couriers
    measured_s = result["throughput"]["measured_s"]
    busy_courier_s = busy_share * couriers * measured_s if busy_share else None
    cpu = result["environment"].get("cpu") or {}
    control = (result["environment"].get("control") or {}).get("latency") or {}
    row = {**common(name, result, run.exit_code), "settings": ARMS[name], "rate_scale": args.rate_scale,
           "offered_per_s": result["profile"]["arrival"]["rate_per_s"],
           "orders": journey(result, "order", "count"),
           "order_errors": result["journeys"].get("order", {}).get("errors", {}),
           "delivered": delivered,
           "on_time_share": on_time.get("ok", 0) / delivered if delivered else None,
           "delivery_p50_ms": journey(result, "delivery_time", "p50_ms"),
           "delivery_p95_ms": journey(result, "delivery_time", "p95_ms"),
           "dispatch_p50_ms": journey(result, "dispatch_time", "p50_ms"),
           "pickup_p50_ms": journey(result, "pickup_time", "p50_ms"),
           "food_wait_p90_ms": journey(result, "food_wait", "p90_ms"),
           "food_wait_p99_ms": journey(result, "food_wait", "p99_ms"),
           "late_p95_ms": journey(result, "on_time", "p95_ms"),
           "busy_share": busy_share, "couriers": couriers, "measured_s": measured_s,
           "orders_per_busy_courier_s": delivered / busy_courier_s if busy_courier_s else None,
           "busy_courier_s_per_order": busy_courier_s / delivered if busy_courier_s and delivered else None,
           "cpu_busy_pct": cpu.get("busy_pct"), "cpu_other_pct": cpu.get("other_pct"),
           "control_p99_ms": control.get("p99_ms"),
           **server_figures(warmed, run.at_end)}
    print(f"  {name} x{args.rate_scale:g}: {row['delivered']} delivered, on time {pct(row['on_time_share'])}, busy "
          f"{pct(row['busy_share'])}, batched {pct(row['batched_share'])}, exit {row['exit']}, valid {row['valid']}, "
          f"CPU {row['cpu_busy_pct']}% (other {row['cpu_other_pct']}%)", file=sys.stderr, flush=True)
    return row


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def slo(row: dict[str, Any], name: str) -> str:
    """``96.5% met`` (measured share and verdict) of SLO ``name``."""
    passed = row["verdicts"].get(name)
    return f"{pct(row['measured'].get(name))} {'met' if passed else 'missed' if passed is False else '-'}"


def table(rows: list[dict[str, Any]]) -> str:
    client = ["| arm | rate | orders | delivered | on time (SLO 85%) | delivery p50 / p95 | dispatch-time (SLO 95%) | "
              "food wait p99 | courier utilisation | orders / busy courier-s (busy s / order) | SLOs | send lag p99 | "
              "CPU busy (other) | valid |",
              "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---|---:|---:|---|"]
    server = ["| arm | rate | assignments | batched share | released | "
              "batch evaluations: batch / no saving / too late | courier s saved (predicted) | "
              "assigned within 5 s of due |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        per = (f"{r['orders_per_busy_courier_s']:.3f} ({r['busy_courier_s_per_order']:.1f} s)"
               if r["orders_per_busy_courier_s"] else "-")
        client.append(
            f"| {r['arm']} | {r['offered_per_s']:g}/s | {r['orders'] or 0:,} | {r['delivered']:,} | "
            f"{slo(r, 'on-time')} | {ms(r['delivery_p50_ms'])} / {ms(r['delivery_p95_ms'])} | "
            f"{slo(r, 'dispatch-time')} | {ms(r['food_wait_p99_ms'])} | {pct(r['busy_share'])} | {per} | "
            f"{slo_cell(r)} | {r['send_lag_p99_ms']:.1f} ms | "
            f"{r['cpu_busy_pct'] or 0:.0f}% ({r['cpu_other_pct'] or 0:.0f}%) | {'yes' if r['valid'] else 'no'} |")
        e = r["evaluations"]
        server.append(
            f"| {r['arm']} | {r['offered_per_s']:g}/s | {r['assignments']:,.0f} | {pct(r['batched_share'])} | "
            f"{r['released']:,.0f} | {e['batch']:,.0f} / {e['no_saving']:,.0f} / {e['too_late']:,.0f} | "
            f"{r['seconds_saved']:,.0f} s | {pct(r['decided_within_5s'])} |")
    return "\n".join(client) + "\n\n" + "\n".join(server)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_arguments(parser, ARMS, "batching-on,batching-off", duration_s=60.0)
    parser.set_defaults(warmup=30.0)  # the profile's: a cold fleet reaches its steady state after about one order
    args = parser.parse_args()
    if not (os.environ.get(SECRET_ENV) or os.environ.get(SECRET_FILE_ENV)):
        os.environ[SECRET_ENV] = generate_secret()  # one mesh secret for the services and the harness (its child)
    rows = run_rounds(parser, args, ARMS, run_arm, PROFILE)
    return finish(rows, table(rows), args.json)


if __name__ == "__main__":
    raise SystemExit(main())
