"""Admission control under real gRPC: overload is shed fast with RESOURCE_EXHAUSTED, counted, and passes.

Every load here goes to 127.0.0.1 and is bounded (a fixed number of calls).
Latency bounds are generous: the point is "answered, not left to time out".
"""

from __future__ import annotations

import asyncio
import time
import urllib.request

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.harness.mesh import free_port
from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.services.catalog import definitions
from casemesh.services.runtime.component import ServiceDefinition, StatelessComponent
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

from .conftest import loopback_topology, start_mesh

SHORTENER = "casemesh.urlshortener.v1.UrlShortenerService"
IDGEN = "casemesh.idgen.v1.IdGeneratorService"
BURST = 1500  # concurrent Resolves, far more than the 1 slot
PUSHBACK_MS = 37


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def resolve_labels(code: str) -> dict[str, str]:
    return {"grpc_type": "unary", "grpc_service": SHORTENER, "grpc_method": "Resolve", "grpc_code": code}


def shed(service: str, method: str) -> dict[str, float]:
    """casemesh_server_shed_total of one method, by reason."""
    return {reason: metric("casemesh_server_shed_total", grpc_service=service, grpc_method=method, reason=reason)
            for reason in ("queue_full", "queue_timeout", "start_timeout", "method_limit", "deadline")}


@pytest.fixture
async def tight_shortener():
    """The URL-shortener mesh with 1 slot and no queue per service (so a burst is sure to overflow), /metrics on a free port."""
    names = ["urlshortener", "idgen", "analytics"]
    base = loopback_topology(names)
    metrics_port = free_port()
    services = dict(base.services)
    services["urlshortener"] = Endpoint(address=services["urlshortener"].address, metrics_address=f"127.0.0.1:{metrics_port}")
    topology = base.model_copy(update={"services": services, "server": ServerPolicy(
        max_concurrent_rpcs=1, max_queued_rpcs=0, retry_pushback_ms=PUSHBACK_MS)})
    running, stop, task = await start_mesh(definitions(names), topology)
    try:
        yield running, f"http://127.0.0.1:{metrics_port}/metrics"
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of ``name{labels}`` in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_burst_past_capacity_is_shed_fast_counted_and_then_served_normally(tight_shortener):
    running, metrics_url = tight_shortener
    stub = pb_grpc.UrlShortenerServiceStub(running.channel("urlshortener"))
    code = (await stub.Shorten(pb.ShortenRequest(long_url="https://example.com/overload"))).code
    before = await asyncio.to_thread(scrape, metrics_url)

    outcomes: list[tuple[grpc.StatusCode, float, tuple]] = []

    async def resolve() -> None:
        started = time.monotonic()
        try:
            response = await stub.Resolve(pb.ResolveRequest(code=code), timeout=60)
            assert response.long_url == "https://example.com/overload"
            outcomes.append((grpc.StatusCode.OK, time.monotonic() - started, ()))
        except grpc.aio.AioRpcError as error:
            outcomes.append((error.code(), time.monotonic() - started, tuple(error.trailing_metadata() or ())))

    await asyncio.wait_for(asyncio.gather(*(resolve() for _ in range(BURST))), 120)

    by_code: dict[grpc.StatusCode, list[float]] = {}
    for status, seconds, _ in outcomes:
        by_code.setdefault(status, []).append(seconds)
    assert set(by_code) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, {c.name: len(v) for c, v in by_code.items()}
    rejected = len(by_code[grpc.StatusCode.RESOURCE_EXHAUSTED])
    # Rejected at once, not after waiting out a deadline: far under the 60 s the calls allowed (generous bound).
    assert max(by_code[grpc.StatusCode.RESOURCE_EXHAUSTED]) < 15
    for status, _, trailers in outcomes:
        if status == grpc.StatusCode.RESOURCE_EXHAUSTED:
            assert ("grpc-retry-pushback-ms", str(PUSHBACK_MS)) in trailers

    after = await asyncio.to_thread(scrape, metrics_url)
    handled = "grpc_server_handled_total"
    assert sample(after, handled, resolve_labels("ResourceExhausted")) - sample(before, handled, resolve_labels("ResourceExhausted")) == rejected
    assert sample(after, handled, resolve_labels("OK")) - sample(before, handled, resolve_labels("OK")) == len(by_code[grpc.StatusCode.OK])
    shed_delta = sum(sample(after, "casemesh_server_shed_total", {"grpc_method": "Resolve", "reason": r})
                     - sample(before, "casemesh_server_shed_total", {"grpc_method": "Resolve", "reason": r})
                     for r in ("queue_full", "queue_timeout", "deadline"))
    assert shed_delta == rejected

    # The burst is over: calls one at a time are all admitted and answered.
    for _ in range(20):
        assert (await stub.Resolve(pb.ResolveRequest(code=code), timeout=10)).long_url == "https://example.com/overload"


class Sleeper(idgen_pb2_grpc.IdGeneratorServiceServicer):
    """LeaseIds sleeps ``count`` milliseconds, then answers."""

    async def LeaseIds(self, request, context):
        await asyncio.sleep(request.count / 1000)
        return idgen_pb2.LeaseIdsResponse(ranges=[idgen_pb2.IdRange(start=1, count=request.count)])


async def sleeper_mesh(policy: ServerPolicy):
    async def build(context):
        return StatelessComponent(Sleeper(), idgen_pb2_grpc.add_IdGeneratorServiceServicer_to_server)

    topology = loopback_topology(["sleeper"]).model_copy(update={"server": policy})
    return await start_mesh([ServiceDefinition("sleeper", (IDGEN,), (), build)], topology)


@pytest.fixture
async def one_slot():
    """A service with 1 slot and 1 queue place waiting at most 300 ms."""
    running, stop, task = await sleeper_mesh(ServerPolicy(max_concurrent_rpcs=1, max_queued_rpcs=1, max_queue_wait_ms=300))
    yield running
    await running.close()
    stop.set()
    await asyncio.wait_for(task, 30)


def lease_started() -> float:
    return metric("grpc_server_started_total", grpc_type="unary", grpc_service=IDGEN, grpc_method="LeaseIds")


async def until_started(before: float) -> None:
    """Wait (at most 10 s) until a LeaseIds handler has started since ``before`` was read: its slot is taken."""
    for _ in range(1000):
        if lease_started() > before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the call did not start within 10 s")


async def status_of(call) -> grpc.StatusCode:
    try:
        await call
        return grpc.StatusCode.OK
    except grpc.aio.AioRpcError as error:
        return error.code()


async def test_past_the_slots_calls_queue_briefly_then_are_refused(one_slot):
    one_slot = idgen_pb2_grpc.IdGeneratorServiceStub(one_slot.channel("sleeper"))
    before = shed(IDGEN, "LeaseIds")
    started = lease_started()
    busy = asyncio.create_task(status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=2500), timeout=30)))
    await until_started(started)  # the slot is taken
    waiting = asyncio.create_task(status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)))
    await asyncio.sleep(0.05)
    refused = asyncio.create_task(status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)))
    assert await refused == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert await waiting == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert not busy.done()  # both answered while the slot was still held
    assert await busy == grpc.StatusCode.OK
    after = shed(IDGEN, "LeaseIds")
    # One found the queue full, the other waited its 300 ms in it (which is which depends on arrival order).
    assert after["queue_full"] - before["queue_full"] == 1
    assert after["queue_timeout"] - before["queue_timeout"] == 1
    # The slot is free again.
    assert await status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)) == grpc.StatusCode.OK


async def test_a_queued_call_gets_the_slot_when_it_frees(one_slot):
    one_slot = idgen_pb2_grpc.IdGeneratorServiceStub(one_slot.channel("sleeper"))
    before = shed(IDGEN, "LeaseIds")
    started = lease_started()
    busy = asyncio.create_task(status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=200), timeout=30)))
    await until_started(started)
    # Sent while the slot is held: it waits (the queue allows 300 ms) and runs once the slot frees.
    assert await status_of(one_slot.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)) == grpc.StatusCode.OK
    assert busy.done() and busy.result() == grpc.StatusCode.OK
    assert shed(IDGEN, "LeaseIds") == before


@pytest.fixture
async def roomy():
    running, stop, task = await sleeper_mesh(ServerPolicy(max_concurrent_rpcs=64))
    yield idgen_pb2_grpc.IdGeneratorServiceStub(running.channel("sleeper"))
    await running.close()
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_a_call_with_less_deadline_left_than_the_methods_median_is_dropped_before_its_work(roomy):
    # 16 calls of 1 s make the method's recent median 1 s.
    codes = await asyncio.gather(*(status_of(roomy.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1000), timeout=30))
                                   for _ in range(16)))
    assert set(codes) == {grpc.StatusCode.OK}
    before = shed(IDGEN, "LeaseIds")
    exhausted_before = metric("grpc_server_handled_total", grpc_type="unary", grpc_service=IDGEN, grpc_method="LeaseIds",
                              grpc_code="ResourceExhausted")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await roomy.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1000), timeout=0.5)
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "median service time" in caught.value.details()
    assert ("grpc-retry-pushback-ms", "100") in tuple(caught.value.trailing_metadata())
    assert shed(IDGEN, "LeaseIds")["deadline"] - before["deadline"] == 1
    assert metric("grpc_server_handled_total", grpc_type="unary", grpc_service=IDGEN, grpc_method="LeaseIds",
                  grpc_code="ResourceExhausted") - exhausted_before == 1
    # With time enough, the same call is served.
    assert await status_of(roomy.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)) == grpc.StatusCode.OK


async def test_health_checks_are_answered_while_every_slot_is_taken(one_slot):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = one_slot.channel("sleeper")
    stub = idgen_pb2_grpc.IdGeneratorServiceStub(channel)
    started = lease_started()
    busy = asyncio.create_task(status_of(stub.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1500), timeout=30)))
    await until_started(started)
    queued = asyncio.create_task(status_of(stub.LeaseIds(idgen_pb2.LeaseIdsRequest(count=1), timeout=30)))
    await asyncio.sleep(0.05)
    # Slot and queue are full, but health and reflection are never shed.
    answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=IDGEN), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert not busy.done()
    assert await busy == grpc.StatusCode.OK
    assert await queued in (grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED)
