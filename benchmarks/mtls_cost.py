"""What mutual TLS costs Resolve: the URL-shortener mesh plaintext and with mTLS, side by side in one run.

Starts two embedded meshes (urlshortener, idgen, analytics as ``casemesh
serve`` processes on 127.0.0.1), one plaintext and one with ``tls:`` from a
fresh ``casemesh certs init`` set, and keeps both for the whole run. Then, at
each ``--rates`` rate and ``--repeat`` times, drives
``benchmarks/profiles/resolve.yaml`` (Resolve only, constant arrivals, SLO p99
< 10 ms) against each mesh with ``casemesh run --target`` (``--tls`` for the
mTLS one), the two modes taking turns and swapping who goes first at every
pair, so that both meet the same stretches of machine noise. Each run seeds
its codes, then 2 s warm-up + 8 s measured (``--warmup``, ``--duration``).

Per run: the harness's and the three services' CPU time per request over the
load phase (``/proc/PID/stat``, as ``benchmarks/run.py``), Resolve's p50/p99,
send lag, errors and the SLO verdict. The summary gives medians per mode and
the mTLS/plaintext ratio of CPU per request. On this 2-core machine the
harness and the mesh share both cores and Resolve's capacity is CPU-bound
(docs/benchmarks.md, (B)), so capacity scales as the inverse of the total
CPU per request: ``plaintext CPU/req ÷ mTLS CPU/req`` is the capacity ratio
this predicts. Everything runs on 127.0.0.1 and stops by itself; with the
defaults about 2.5 minutes.

    .venv/bin/python benchmarks/mtls_cost.py                     # 1,500/s, 3 pairs
    .venv/bin/python benchmarks/mtls_cost.py --rates 1000,2000 --repeat 2 --json out/mtls.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import RESOLVE_PROFILE, casemesh_run, proc_cpu_s

from casemesh.harness.certs import init_certs
from casemesh.harness.mesh import Mesh
from casemesh.services.runtime.topology import TlsSettings

SERVICES = ["urlshortener", "idgen", "analytics"]


class MeshCpu:
    """CPU seconds so far of a mesh's service processes (what ``casemesh_run`` samples as the server's)."""

    def __init__(self, mesh: Mesh):
        self.pids = [mesh.pid(name) for name in SERVICES]

    def cpu_s(self) -> float:
        return sum(proc_cpu_s(pid) for pid in self.pids if pid is not None)


def one_run(mode: str, mesh: Mesh, certs: Path, rate: float, warmup_s: float, duration_s: float) -> dict[str, Any]:
    # --strict: a p99 over 10 ms fails the run even where the machine's own floor would make it inconclusive.
    extra = ("--workers", "1", "--report", "off", "--strict") + (("--tls", str(certs)) if mode == "mtls" else ())
    run = casemesh_run(RESOLVE_PROFILE, rate, warmup_s=warmup_s, duration_s=duration_s,
                       target=f"urlshortener={mesh.topology.endpoint('urlshortener').address}", server=MeshCpu(mesh), extra=extra)
    if run.result is None or run.exit_code in (2, 3):
        raise SystemExit(f"{mode} at {rate:g}/s: casemesh run exited {run.exit_code}\n{run.output_tail}")
    n = run.sent or 1
    rpc = run.rpc
    row = {"mode": mode, "rate": rate, "exit_code": run.exit_code, "valid": run.result["valid"],
           "passed": run.exit_code == 0 and run.result["valid"] and not run.errors, "errors": run.errors,
           "p50_ms": rpc.get("p50_ms"), "p99_ms": rpc.get("p99_ms"), "send_lag_p99_ms": run.result["send_lag"]["p99_ms"],
           "harness_cpu_ms": None if run.cpu_load_s is None else 1000 * run.cpu_load_s / n,
           "services_cpu_ms": 1000 * sum(run.server_cpu_load_s.values()) / n if run.server_cpu_load_s else None,
           "other_processes_pct": ((run.result.get("environment") or {}).get("cpu") or {}).get("other_pct"),
           "steal_pct": ((run.result.get("environment") or {}).get("cpu") or {}).get("steal_pct")}
    total = (row["harness_cpu_ms"] or 0) + (row["services_cpu_ms"] or 0)
    row["total_cpu_ms"] = total or None
    print(f"  {mode:9s} {rate:>6,.0f}/s: {'pass' if row['passed'] else 'FAIL'} p50 {row['p50_ms']} ms p99 {row['p99_ms']} ms, "
          f"send lag p99 {row['send_lag_p99_ms']} ms; CPU-ms/req harness {row['harness_cpu_ms'] or 0:.3f} "
          f"services {row['services_cpu_ms'] or 0:.3f}; other processes {row['other_processes_pct']}% of the CPUs", file=sys.stderr)
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians per (rate, mode) and the mTLS / plaintext ratios."""
    out: dict[str, Any] = {}
    for rate in sorted({r["rate"] for r in rows}):
        per = {}
        for mode in ("plaintext", "mtls"):
            mine = [r for r in rows if r["rate"] == rate and r["mode"] == mode]
            med = lambda key: statistics.median([r[key] for r in mine if r[key] is not None]) if any(r[key] is not None for r in mine) else None  # noqa: E731
            per[mode] = {"runs": len(mine), "passed": sum(r["passed"] for r in mine), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
                         "send_lag_p99_ms": med("send_lag_p99_ms"), "harness_cpu_ms": med("harness_cpu_ms"),
                         "services_cpu_ms": med("services_cpu_ms"), "total_cpu_ms": med("total_cpu_ms"),
                         "other_processes_pct": med("other_processes_pct")}
        plain, mtls = per["plaintext"], per["mtls"]
        ratio = lambda key: mtls[key] / plain[key] if plain[key] and mtls[key] else None  # noqa: E731
        per["mtls_over_plaintext"] = {key: ratio(key) for key in ("harness_cpu_ms", "services_cpu_ms", "total_cpu_ms", "p50_ms", "p99_ms")}
        per["predicted_capacity_ratio"] = (plain["total_cpu_ms"] / mtls["total_cpu_ms"]) if plain["total_cpu_ms"] and mtls["total_cpu_ms"] else None
        out[f"{rate:g}"] = per
    return out


async def start(meshes: list[Mesh]) -> None:
    await asyncio.gather(*(m.start() for m in meshes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument("--rates", default="1500", help="comma-separated offered rates, req/s [1500]")
    parser.add_argument("--repeat", type=int, default=3, help="pairs (plaintext, mTLS) per rate [3]")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per run [2]")
    parser.add_argument("--duration", type=float, default=8.0, help="measured seconds per run [8]")
    parser.add_argument("--json", type=Path, help="also write every run and the summary to this file")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="casemesh-mtls-cost-") as tmp:
        work = Path(tmp)
        certs = init_certs(work / "certs").directory
        plain = Mesh(SERVICES, work / "plaintext", restart=None)
        mtls = Mesh(SERVICES, work / "mtls", restart=None, tls=TlsSettings(dir=str(certs)))
        rows: list[dict[str, Any]] = []
        try:
            print("starting the plaintext and the mTLS mesh", file=sys.stderr)
            asyncio.run(start([plain, mtls]))
            for rate in rates:
                for i in range(args.repeat):
                    order = [("plaintext", plain), ("mtls", mtls)]
                    for mode, mesh in order if i % 2 == 0 else order[::-1]:
                        rows.append(one_run(mode, mesh, certs, rate, args.warmup, args.duration))
        finally:
            plain.stop()
            mtls.stop()
    result = {"rates": rates, "repeat": args.repeat, "warmup_s": args.warmup, "duration_s": args.duration,
              "runs": rows, "summary": summary(rows)}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
