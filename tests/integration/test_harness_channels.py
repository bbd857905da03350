"""The harness's channels to the mesh (harness/call_policy.harness_channel_options) keep what the harness relies on.

Without a retry policy they are gRPC's minimal stack: a deadline must still
end a slow call with DEADLINE_EXCEEDED, and a gzip-compressed response
larger than gRPC's default 4 MiB receive limit must still arrive whole. With a ``harness_retry``
policy they must retry by it: the minimal stack would drop the service
config that carries it, so a server that fails twice with UNAVAILABLE must
still answer the third attempt.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from casemesh.bench.v1 import echo_pb2 as pb
from casemesh.bench.v1 import echo_pb2_grpc as pb_grpc
from casemesh.harness.call_policy import MINIMAL_STACK, HarnessRetry, harness_channel_options

BIG = 5 * 2**20  # bytes: above gRPC's default 4 MiB receive limit


class Flaky(pb_grpc.EchoServiceServicer):
    """Echo that fails the first ``failures`` attempts of each payload with UNAVAILABLE, and sleeps on b"slow"."""

    def __init__(self, failures: int = 0):
        self.failures = failures
        self.attempts: dict[bytes, int] = {}

    async def Echo(self, request: pb.EchoRequest, context: grpc.aio.ServicerContext) -> pb.EchoResponse:
        key = request.payload[:16]
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if request.payload == b"slow":
            await asyncio.sleep(2.0)
        if request.payload == b"big":
            return pb.EchoResponse(payload=b"x" * BIG)
        if self.attempts[key] <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not yet")
        return pb.EchoResponse(payload=request.payload)


async def _serve(servicer: Flaky) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server(options=[("grpc.max_send_message_length", -1)], compression=grpc.Compression.Gzip)
    pb_grpc.add_EchoServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def test_without_retries_the_minimal_stack_keeps_deadlines_and_compression_and_has_no_receive_limit():
    options = harness_channel_options(None)
    assert MINIMAL_STACK in options
    server, address = await _serve(Flaky())
    try:
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            stub = pb_grpc.EchoServiceStub(channel)
            started = time.perf_counter()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Echo(pb.EchoRequest(payload=b"slow"), timeout=0.2)
            assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            assert time.perf_counter() - started < 1.9, "the deadline did not end the call before the server answered"
            response = await stub.Echo(pb.EchoRequest(payload=b"big"), timeout=30)
            assert len(response.payload) == BIG
    finally:
        await server.stop(None)


async def test_with_a_retry_policy_the_channel_retries_by_it():
    options = harness_channel_options(HarnessRetry(max_attempts=3))
    assert MINIMAL_STACK not in options
    servicer = Flaky(failures=2)
    server, address = await _serve(servicer)
    try:
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            response = await pb_grpc.EchoServiceStub(channel).Echo(pb.EchoRequest(payload=b"retried"), timeout=10)
        assert response.payload == b"retried"
        assert servicer.attempts[b"retried"] == 3
    finally:
        await server.stop(None)
