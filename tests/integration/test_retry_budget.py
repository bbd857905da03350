"""Outbound channels against real servers on 127.0.0.1: gRPC's retryThrottling limits retries; the circuit breaker fails fast.

A test server answers every call UNAVAILABLE and counts the attempts it saw,
so the counts are what reached the wire (gRPC retries below the interceptor).
"""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from casemesh.harness.mesh import free_port
from casemesh.services.runtime.channels import open_channel
from casemesh.services.runtime.circuit_breaker import CLOSED, OPEN
from casemesh.services.runtime.topology import CallPolicy, CircuitBreakerPolicy, RetryBudget

CALLS = 20
NO_BREAKER = CircuitBreakerPolicy(enabled=False)


class _AlwaysUnavailable(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.attempts = 0

    async def Check(self, request, context):
        self.attempts += 1
        await context.abort(grpc.StatusCode.UNAVAILABLE, "always unavailable")


@pytest.fixture
async def unavailable_server():
    servicer = _AlwaysUnavailable()
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
    await server.start()
    yield address, servicer
    await server.stop(None)


async def _call_n(address: str, policy: CallPolicy, n: int = CALLS) -> list[grpc.aio.AioRpcError]:
    errors = []
    channel = open_channel(address, policy, target="upstream")
    try:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(n):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
            errors.append(caught.value)
    finally:
        await channel.close()
    return errors


async def test_retry_budget_limits_the_attempts_an_always_failing_upstream_sees(unavailable_server):
    address, servicer = unavailable_server
    unbudgeted = CallPolicy(max_attempts=5, initial_backoff_ms=10, max_backoff_ms=20, retry_budget=None, circuit_breaker=NO_BREAKER)
    await _call_n(address, unbudgeted)
    without_budget, servicer.attempts = servicer.attempts, 0
    assert without_budget == CALLS * 5  # every call retried to max_attempts

    budgeted = unbudgeted.model_copy(update={"retry_budget": RetryBudget(max_tokens=10, token_ratio=0.1)})
    errors = await _call_n(address, budgeted)
    # 10 tokens, 1 per failed attempt, retries only above 5: the first call makes 5 attempts, the rest 1 each.
    assert CALLS <= servicer.attempts <= CALLS + 6, servicer.attempts
    assert all(e.code() == grpc.StatusCode.UNAVAILABLE for e in errors)


async def test_circuit_breaker_fails_fast_against_a_dead_upstream_then_probes_it():
    dead = f"127.0.0.1:{free_port()}"  # nothing listens there
    policy = CallPolicy(max_attempts=2, initial_backoff_ms=10, max_backoff_ms=20,
                        circuit_breaker=CircuitBreakerPolicy(consecutive_failures=3, open_ms=300))
    channel = open_channel(dead, policy, target="idgen")
    stub = health_pb2_grpc.HealthStub(channel)
    breaker = channel._unary_unary_interceptors[0]._breaker
    try:
        details = []
        for _ in range(5):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.Check(health_pb2.HealthCheckRequest(), timeout=2)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            details.append(caught.value.details())
        assert not any("circuit open" in d for d in details[:3])
        assert all(d.startswith("circuit open to idgen") for d in details[3:]), details
        assert breaker.state == OPEN

        # A server comes up on that port: after open_ms a probe goes through and closes the breaker.
        server = grpc.aio.server()
        health = _Serving()
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
        assert server.add_insecure_port(dead) != 0
        await server.start()
        try:
            for _ in range(100):  # bounded: up to 100 x 0.1 s
                try:
                    await stub.Check(health_pb2.HealthCheckRequest(), timeout=2, wait_for_ready=True)
                    break
                except grpc.aio.AioRpcError:
                    await __import__("asyncio").sleep(0.1)
            assert breaker.state == CLOSED and health.calls >= 1
        finally:
            await server.stop(None)
    finally:
        await channel.close()


class _Serving(health_pb2_grpc.HealthServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def Check(self, request, context):
        self.calls += 1
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
