"""LeaseIds latency of the Python and the Node idgen side by side (docs/polyglot.md), in ms.

Usage::

    .venv/bin/python benchmarks/idgen_impls.py [--calls 2000] [--concurrency 1] [--count 256] [--impls python,node] [--counter-reserve-ids 0]

For each implementation, one embedded mesh of idgen alone (harness/mesh.py,
the same process and environment ``casemesh run`` gives it, a fresh data
folder) on 127.0.0.1; then ``--calls`` LeaseIds of ``--count`` counter IDs
(the URL shortener's block size), ``--concurrency`` in flight, through one
channel that carries the urlshortener's caller token, as the shortener does.
The first 10% of the calls warm up and are not counted. With
``--counter-reserve-ids 0`` (the default setting) every lease fsyncs the
high-water mark (file and folder), so the figures include the disk's fsync
latency; a large value (1000000) leaves one write per million IDs and
measures the RPC and the implementation alone. Prints p50, p90, p99 and max in ms
(client-side, HDR histogram) and the calls per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import grpc
from hdrh.histogram import HdrHistogram

from casemesh.harness.mesh import Mesh
from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc
from casemesh.services.runtime.identity import CallerToken, service_identity
from casemesh.services.runtime.secrets import SERVICE_TOKEN


async def measure(impl: str, calls: int, concurrency: int, count: int, reserve: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"idgen-{impl}-") as folder:
        async with Mesh(["idgen"], Path(folder), impls={"idgen": impl}, restart=None,
                        settings={"idgen": {"counter_reserve_ids": reserve}}) as mesh:
            token = CallerToken(service_identity("urlshortener"), mesh.secret.keyring(SERVICE_TOKEN))
            async with grpc.aio.insecure_channel(mesh.topology.endpoint("idgen").address) as channel:
                stub = pb_grpc.IdGeneratorServiceStub(channel)
                request = pb.LeaseIdsRequest(count=count, layout=pb.ID_LAYOUT_COUNTER)
                histogram = HdrHistogram(1, 60_000_000, 3)  # µs
                warmup = calls // 10
                done = 0
                started = 0.0

                async def worker() -> None:
                    nonlocal done, started
                    while done < calls:
                        done += 1
                        number = done
                        if number == warmup + 1:
                            started = time.perf_counter()
                        t0 = time.perf_counter()
                        await stub.LeaseIds(request, metadata=token.metadata(), timeout=10)
                        if number > warmup:
                            histogram.record_value(max(1, int((time.perf_counter() - t0) * 1e6)))

                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed = time.perf_counter() - started
    return {"p50_ms": histogram.get_value_at_percentile(50) / 1000, "p90_ms": histogram.get_value_at_percentile(90) / 1000,
            "p99_ms": histogram.get_value_at_percentile(99) / 1000, "max_ms": histogram.get_max_value() / 1000,
            "calls_per_s": histogram.get_total_count() / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--impls", default="python,node")
    parser.add_argument("--counter-reserve-ids", type=int, default=0)
    args = parser.parse_args()
    print(f"LeaseIds of {args.count} counter IDs, {args.calls} calls ({args.calls // 10} warm-up), {args.concurrency} in flight, "
          f"counter_reserve_ids {args.counter_reserve_ids}")
    print(f"{'impl':<8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'calls/s':>9}")
    for impl in args.impls.split(","):
        row = asyncio.run(measure(impl, args.calls, args.concurrency, args.count, args.counter_reserve_ids))
        print(f"{impl:<8} {row['p50_ms']:>8.2f} {row['p90_ms']:>8.2f} {row['p99_ms']:>8.2f} {row['max_ms']:>8.2f} {row['calls_per_s']:>9.0f}")


if __name__ == "__main__":
    main()
