"""The shared runtime under real gRPC: crashes stay contained, deadlines propagate, metrics follow the convention."""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest
from prometheus_client import REGISTRY, generate_latest

from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc
from casemesh.services.runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent

from .conftest import loopback_topology, start_mesh

FULL = "casemesh.idgen.v1.IdGeneratorService"


class Back(pb_grpc.IdGeneratorServiceServicer):
    """Crashes on count 13, sleeps on count 99 (recording the deadline it was given), else answers."""

    def __init__(self) -> None:
        self.time_remaining: list[float | None] = []

    async def LeaseIds(self, request, context):
        if request.count == 13:
            raise RuntimeError("boom")
        if request.count == 99:
            self.time_remaining.append(context.time_remaining())
            await asyncio.sleep(2)
        return pb.LeaseIdsResponse(ranges=[pb.IdRange(start=1, count=request.count)])


class Front(pb_grpc.IdGeneratorServiceServicer):
    """Forwards every lease to the back service, as a mesh hop."""

    def __init__(self, context: RuntimeContext):
        self.back = pb_grpc.IdGeneratorServiceStub(context.channel("back"))

    async def LeaseIds(self, request, context):
        return await self.back.LeaseIds(request)


@pytest.fixture
async def front_back():
    back = Back()

    async def build_back(context):
        return StatelessComponent(back, pb_grpc.add_IdGeneratorServiceServicer_to_server)

    async def build_front(context):
        return StatelessComponent(Front(context), pb_grpc.add_IdGeneratorServiceServicer_to_server)

    chosen = [ServiceDefinition("front", (FULL,), ("back",), build_front), ServiceDefinition("back", (FULL,), (), build_back)]
    running, stop, task = await start_mesh(chosen, loopback_topology(["front", "back"]))
    yield running, back
    await running.close()
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_a_crashing_request_returns_unknown_and_the_server_goes_on(front_back):
    running, _ = front_back
    stub = pb_grpc.IdGeneratorServiceStub(running.channel("back"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LeaseIds(pb.LeaseIdsRequest(count=13))
    assert caught.value.code() == grpc.StatusCode.UNKNOWN
    assert "RuntimeError" in caught.value.details()
    assert (await stub.LeaseIds(pb.LeaseIdsRequest(count=2))).ranges[0].count == 2


async def test_inbound_deadline_bounds_the_outbound_call(front_back):
    running, back = front_back
    stub = pb_grpc.IdGeneratorServiceStub(running.channel("front"))
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LeaseIds(pb.LeaseIdsRequest(count=99), timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 1.5  # not the 2 s the back service sleeps
    # The back service saw the caller's deadline, not the channel's 500 ms default. The grpc-timeout header carries it
    # rounded up to its unit, so it may arrive a fraction of a millisecond longer than it left (a CI run saw 0.3006 s).
    assert back.time_remaining and 0 < back.time_remaining[0] < 0.35


async def test_a_dependency_failure_maps_to_unavailable(front_back):
    running, _ = front_back
    stub = pb_grpc.IdGeneratorServiceStub(running.channel("front"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.LeaseIds(pb.LeaseIdsRequest(count=13))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "UNKNOWN" in caught.value.details()


async def test_metrics_use_the_grpc_prometheus_names(front_back):
    running, _ = front_back
    stub = pb_grpc.IdGeneratorServiceStub(running.channel("front"))
    await stub.LeaseIds(pb.LeaseIdsRequest(count=3))
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.LeaseIds(pb.LeaseIdsRequest(count=13))
    text = generate_latest(REGISTRY).decode()
    labels = 'grpc_method="LeaseIds",grpc_service="casemesh.idgen.v1.IdGeneratorService",grpc_type="unary"'
    assert f'grpc_server_handled_total{{grpc_code="OK",{labels}}}' in text
    assert f'grpc_server_handled_total{{grpc_code="Unknown",{labels}}}' in text
    assert f'grpc_server_handled_total{{grpc_code="Unavailable",{labels}}}' in text
    assert f'grpc_client_handled_total{{grpc_code="OK",{labels}}}' in text
    for name in ("grpc_server_started_total", "grpc_server_msg_received_total", "grpc_server_msg_sent_total",
                 "grpc_client_started_total", "grpc_client_handling_seconds_bucket"):
        assert f"{name}{{" in text, name
    assert f'grpc_server_handling_seconds_bucket{{{labels},le="0.05"}}' in text
    assert f'grpc_server_handling_seconds_bucket{{{labels},le="2.0"}}' in text


async def test_health_watch_streams_through_the_interceptor(mesh):
    # grpc's Health.Watch writes with context.write instead of yielding; the interceptor must still run it.
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    call = health_pb2_grpc.HealthStub(mesh.channel("urlshortener")).Watch(health_pb2.HealthCheckRequest(service=""), timeout=10)
    first = await call.read()
    assert first.status == health_pb2.HealthCheckResponse.SERVING
    call.cancel()
