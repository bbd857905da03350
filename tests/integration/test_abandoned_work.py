"""``server.abandoned_work``: whether a call's work stops when its caller gives up (drop) or goes on (finish).

A real grpc.aio server on 127.0.0.1 with the casemesh server interceptor and
one slot: a call whose deadline (50 ms) passes during its work (which lasts
until the test lets it end) ends DEADLINE_EXCEEDED at its client either way.
Under ``drop`` its handler is cancelled and the slot is free at once; under
``finish`` the handler runs to its end and keeps the slot meanwhile, so a
second call is refused RESOURCE_EXHAUSTED until the work is done: the wasted
work that sustains a retry storm (docs/benchmarks.md, "Retry storm").
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.services.runtime.admission import Admission, AdmissionLimits
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

SERVICE = "test.Work"


async def serve(abandoned_work: str, finished: list[float], go: asyncio.Event) -> tuple[grpc.aio.Server, int]:
    async def work(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await go.wait()
        finished.append(time.monotonic())
        return b"done"

    registry = CollectorRegistry()
    limits = AdmissionLimits(max_concurrent_rpcs=1, max_queued_rpcs=0, abandoned_work=abandoned_work)
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry),
                                                             admission=Admission(limits, registry=registry))])
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler(
        SERVICE, {"Do": grpc.unary_unary_rpc_method_handler(work)})])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, port


async def answered(call: grpc.aio.UnaryUnaryMultiCallable) -> bool:
    """Whether a call with a short deadline was admitted (it then waits for the work and expires): not RESOURCE_EXHAUSTED."""
    try:
        await call(b"", timeout=0.05)
    except grpc.aio.AioRpcError as error:
        return error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED
    return True


@pytest.mark.parametrize("abandoned_work", ["drop", "finish"])
async def test_abandoned_work_drop_frees_the_slot_and_finish_runs_the_work_to_its_end(abandoned_work):
    finished: list[float] = []
    go = asyncio.Event()
    server, port = await serve(abandoned_work, finished, go)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = channel.unary_unary(f"/{SERVICE}/Do")
            with pytest.raises(grpc.aio.AioRpcError) as expired:
                await call(b"", timeout=0.05)
            assert expired.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            if abandoned_work == "drop":
                for _ in range(100):  # the server sees the deadline pass and cancels the handler
                    if server_free := await answered(call):
                        break
                    await asyncio.sleep(0.05)
                assert server_free  # the slot was freed while the abandoned work never ended
                assert finished == []
            else:
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await call(b"", timeout=5)
                assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # the abandoned work holds the slot
                go.set()
                for _ in range(100):
                    if finished:
                        break
                    await asyncio.sleep(0.01)
                assert len(finished) == 1  # it ran to its end ...
                assert await call(b"", timeout=5) == b"done"  # ... and gave the slot back
    finally:
        await server.stop(None)
