"""The bare reference server: ``casemesh.bench.v1.EchoService`` on plain grpc.aio.

No casemesh runtime, no interceptors, no health or reflection service, no
metrics: one ``grpc.aio`` server on uvloop whose handler returns the request's
payload. It is the "trivial server" of docs/benchmarks.md, against which the
harness's own cost and the case-study meshes are compared.

Usage::

    python benchmarks/echo_server.py --port 0     # 0: any free port

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

LOOPBACK = "127.0.0.1"


class EchoServicer(pb_grpc.EchoServiceServicer):
    """Returns every request's payload unchanged."""

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext) -> pb.EchoResponse:
        return pb.EchoResponse(payload=request.payload)


async def serve(port: int) -> None:
    """Serve on 127.0.0.1:``port`` until SIGTERM/SIGINT."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    pb_grpc.add_EchoServiceServicer_to_server(EchoServicer(), server)
    bound = server.add_insecure_port(f"{LOOPBACK}:{port}")
    if bound == 0:
        raise SystemExit(f"cannot listen on {LOOPBACK}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {LOOPBACK}:{bound}", flush=True)
    await stop.wait()
    await server.stop(1.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: pick a free one)")
    opts = parser.parse_args()
    uvloop.run(serve(opts.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
