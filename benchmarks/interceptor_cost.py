"""The casemesh server interceptor chain's own CPU cost per RPC, against the design's 40 µs target (issue 10).

Usage::

    .venv/bin/python benchmarks/interceptor_cost.py [--calls 20000] [--repeat 5] [--trace-share 0.01]

One process, no network: an Echo handler is called the way grpc.aio calls
it, one task per call, bare and then through the runtime's interceptor with
the default admission limits and tracing (admission gate, SERVER span when
the call carries ``traceparent``, metrics with exemplars, inbound deadline,
error mapping; authorization is measured by benchmarks/authz_cost.py). ``--trace-share`` of the
calls carry a sampled ``traceparent`` (1 %: what the harness's default
``--trace-ratio`` sends), so spans are made for them and recorded by a
tracer provider without an exporter. Phases alternate bare/intercepted
``--repeat`` times; each phase's CPU time (``time.process_time``: user +
system of this process, so other processes' load does not count) divided by
its calls gives µs per call, and the difference of the medians is the chain's
cost. gRPC's own work (HTTP/2, serialization) is the same either way and is
not in this figure.

Prints a JSON line per phase and a summary with the 40 µs target.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from typing import Any

import grpc
import uvloop
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.services.runtime.admission import Admission, limits_from_policy
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.topology import ServerPolicy
from casemesh.services.runtime.tracing import RpcTracing

METHOD = "/casemesh.bench.v1.EchoService/Echo"
TARGET_US = 40.0


class FakeContext:
    """The parts of ``grpc.aio.ServicerContext`` the interceptor touches, as cheap as they can be."""

    __slots__ = ("_metadata", "_code")

    def __init__(self, metadata: tuple[tuple[str, str], ...]):
        self._metadata = metadata
        self._code = None

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def time_remaining(self) -> float:
        return 1.0

    def code(self) -> Any:
        return self._code

    def peer(self) -> str:
        return "ipv4:127.0.0.1:40000"

    def auth_context(self) -> dict[str, list[bytes]]:
        return {}

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self._code = code
        raise grpc.aio.AbortError()


async def echo(request: pb.EchoRequest, context: Any) -> pb.EchoResponse:
    return pb.EchoResponse(payload=request.payload)


async def _handlers() -> tuple[grpc.RpcMethodHandler, ServerInterceptor, Any]:
    bare = grpc.unary_unary_rpc_method_handler(echo)
    provider = TracerProvider(sampler=ALWAYS_ON)  # spans are made and ended, then dropped (no exporter)
    interceptor = ServerInterceptor(tracing=RpcTracing(provider.get_tracer("bench"), trace_roots=False),
                                    admission=Admission(limits_from_policy(ServerPolicy())))

    async def continuation(details: Any) -> grpc.RpcMethodHandler:
        return bare

    return bare, interceptor, continuation


async def phase(kind: str, calls: int, trace_share: float, rng: random.Random) -> float:
    """CPU µs per call of ``calls`` calls, ``kind`` ``bare`` or ``intercepted``, 200 tasks at a time."""
    bare, interceptor, continuation = await _handlers()
    request = pb.EchoRequest(payload=b"x" * 16)
    traced = (("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),)

    class Details:
        method = METHOD
        invocation_metadata = ()

    async def one_bare() -> None:
        await bare.unary_unary(request, FakeContext(()))

    async def one_intercepted(metadata: tuple) -> None:
        handler = await interceptor.intercept_service(continuation, Details)
        await handler.unary_unary(request, FakeContext(metadata))

    await asyncio.gather(*(one_intercepted(()) for _ in range(100)))  # per-method caches filled before timing
    batch = 200
    started = time.process_time()
    for start in range(0, calls, batch):
        if kind == "bare":
            await asyncio.gather(*(one_bare() for _ in range(batch)))
        else:
            await asyncio.gather(*(one_intercepted(traced if rng.random() < trace_share else ()) for _ in range(batch)))
    return (time.process_time() - started) / calls * 1e6


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(1)
    runs: dict[str, list[float]] = {"bare": [], "intercepted": []}
    for index in range(args.repeat):
        for kind in ("bare", "intercepted") if index % 2 == 0 else ("intercepted", "bare"):
            us = await phase(kind, args.calls, args.trace_share, rng)
            runs[kind].append(round(us, 2))
            print(json.dumps({"phase": index, "kind": kind, "cpu_us_per_call": round(us, 2)}), flush=True)
    bare, intercepted = statistics.median(runs["bare"]), statistics.median(runs["intercepted"])
    return {"calls_per_phase": args.calls, "repeat": args.repeat, "trace_share": args.trace_share, "runs": runs,
            "bare_us": bare, "intercepted_us": intercepted, "chain_us": round(intercepted - bare, 2), "target_us": TARGET_US,
            "met": intercepted - bare <= TARGET_US}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per phase")
    parser.add_argument("--repeat", type=int, default=5, help="phases of each kind (alternating)")
    parser.add_argument("--trace-share", type=float, default=0.01, help="share of calls that carry a sampled traceparent")
    args = parser.parse_args()
    summary = uvloop.run(main_async(args))
    print(json.dumps(summary))
    print(f"interceptor chain: {summary['chain_us']:.1f} µs CPU per call (bare handler {summary['bare_us']:.1f} µs, "
          f"through the chain {summary['intercepted_us']:.1f} µs); target {TARGET_US:g} µs: {'met' if summary['met'] else 'MISSED'}")


if __name__ == "__main__":
    main()
