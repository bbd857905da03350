"""The bare reference server: ``casemesh.bench.v1.EchoService`` on plain grpc.aio.

No casemesh runtime, no interceptors, no health or reflection service, no
metrics: one ``grpc.aio`` server on uvloop whose handler returns the request's
payload. It is the "trivial server" of docs/benchmarks.md, against which the
harness's own cost and the case-study meshes are compared.

Used three ways: as ``casemesh calibrate``'s server (a process of its own,
``python -m casemesh.harness.calibration.echo_server``), in-process as every
run's control stream's server (:func:`start_in_process`), and by the
benchmarks (benchmarks/echo_server.py runs :func:`main`)::

    python -m casemesh.harness.calibration.echo_server --port 0                        # 0: any free port
    python -m casemesh.harness.calibration.echo_server --port 0 --service-time-ms 20   # a single-server queue (below)

With ``--service-time-ms S`` it is instead a single-server FIFO queue with a
deterministic service time: requests are served one at a time, in order of
arrival, each for exactly S ms (held, not computed: no CPU is spent), so under
Poisson arrivals it is an M/D/1 queue whose latency at any rate queueing
theory gives (docs/benchmarks.md, tests/integration/test_capacity.py). The
server keeps a virtual clock: a request's service starts when it arrives or
when the previous one's service ended, whichever is later, and it is answered
at that start + S. Timer overshoot (uvloop's timers have 1 ms resolution)
therefore delays an answer slightly but never accumulates into a longer
service time. A request cancelled while it waits leaves the queue; one
cancelled in service frees the server at once.

Listens on 127.0.0.1 only. Prints ``listening on 127.0.0.1:PORT`` (flushed)
once it accepts calls, and stops on SIGTERM or SIGINT (grace 1 s).

grpc-core's default pending-request limits are kept: past about 4.5k req/s on
a 2-core machine the server sheds with ``CANCELLED`` (shared/NOTES.md), which
the benchmarks count as errors, i.e. as the end of capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

import grpc
import uvloop

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.bench.v1 import echo_pb2_grpc as pb_grpc
from casemesh.services.runtime.parent_watch import watch_parent

LOOPBACK = "127.0.0.1"


class EchoServicer(pb_grpc.EchoServiceServicer):
    """Returns every request's payload unchanged."""

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext) -> pb.EchoResponse:
        return pb.EchoResponse(payload=request.payload)


class QueueEchoServicer(pb_grpc.EchoServiceServicer):
    """Returns the payload after queueing: one request at a time, FIFO, each served for exactly ``service_time_s`` seconds."""

    def __init__(self, service_time_s: float):
        self.service_time_s = service_time_s
        self._lock = asyncio.Lock()  # FIFO: waiters are woken in the order they came
        self._free_at = 0.0  # loop time at which the request in service (virtually) finishes

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext) -> pb.EchoResponse:
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        async with self._lock:
            start = max(arrived, self._free_at)
            self._free_at = start + self.service_time_s
            try:
                await asyncio.sleep(max(self._free_at - loop.time(), 0.0))
            except asyncio.CancelledError:  # deadline or client gone: the server is free now
                self._free_at = loop.time()
                raise
        return pb.EchoResponse(payload=request.payload)


async def start_in_process(port: int = 0) -> tuple[grpc.aio.Server, int]:
    """Start the bare echo server on 127.0.0.1:``port`` in the running event loop; returns ``(server, bound port)``.

    The control stream's server (harness/control.py): it shares the harness's
    loop on purpose, so its latency is the harness's own for a zero-work call.
    Stop it with ``await server.stop(grace)``. Raises ``OSError`` when the port
    cannot be bound.
    """
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_EchoServiceServicer_to_server(EchoServicer(), server)
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {LOOPBACK}:{port}")
    await server.start()
    return server, bound


async def serve(port: int, service_time_ms: float = 0.0) -> None:
    """Serve on 127.0.0.1:``port`` until SIGTERM/SIGINT; ``service_time_ms`` > 0 makes it the single-server queue."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    servicer = QueueEchoServicer(service_time_ms / 1000) if service_time_ms > 0 else EchoServicer()
    pb_grpc.add_EchoServiceServicer_to_server(servicer, server)
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    if bound == 0:
        raise SystemExit(f"cannot listen on {LOOPBACK}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    orphan_watch = watch_parent(stop)  # started by `casemesh calibrate`: stop if it dies (services/runtime/parent_watch.py)
    print(f"listening on {LOOPBACK}:{bound}", flush=True)
    await stop.wait()
    if orphan_watch is not None:
        orphan_watch.cancel()
    await server.stop(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    parser.add_argument("--service-time-ms", type=float, default=0.0,
                        help="serve one request at a time, FIFO, each for exactly this many ms (0: plain echo) [0]")
    opts = parser.parse_args()
    if not 0 <= opts.service_time_ms <= 60_000:
        parser.error("--service-time-ms must be between 0 and 60000")
    uvloop.run(serve(opts.port, opts.service_time_ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
