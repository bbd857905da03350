"""Server-side fault injection under real gRPC: a schedule file switches delay and abort on and off, every call counted."""

from __future__ import annotations

import asyncio
import json
import time

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.idgen.v1 import idgen_pb2 as pb
from casemesh.idgen.v1 import idgen_pb2_grpc as pb_grpc
from casemesh.services.catalog import definitions
from casemesh.services.runtime.faults import FAULTS_ENV, events_path

from .conftest import loopback_topology, start_mesh

SERVICE = "casemesh.idgen.v1.IdGeneratorService"
REQUEST = pb.LeaseIdsRequest(count=1, layout=pb.ID_LAYOUT_COUNTER)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def handled(code: str) -> float:
    return counted("grpc_server_handled_total", grpc_type="unary", grpc_service=SERVICE, grpc_method="LeaseIds", grpc_code=code)


def injected(fault: str) -> float:
    return counted("casemesh_fault_injected_total", grpc_service=SERVICE, grpc_method="LeaseIds", fault=fault)


async def test_a_scheduled_abort_then_delay_reach_the_calls_in_their_windows_only(tmp_path, monkeypatch):
    schedule = tmp_path / "schedule.json"
    monkeypatch.setenv(FAULTS_ENV, str(schedule))
    running, stop, task = await start_mesh(definitions(["idgen"]), loopback_topology(["idgen"], tmp_path / "data"))
    try:
        stub = pb_grpc.IdGeneratorServiceStub(running.channel("idgen"))
        assert (await stub.LeaseIds(REQUEST, timeout=5)).ranges  # no schedule yet: untouched
        now = time.time()
        schedule.write_text(json.dumps({"version": 1, "faults": [
            {"name": "flaky-ids", "service": SERVICE, "method": "LeaseIds", "start_unix_s": now + 1.0, "end_unix_s": now + 2.5,
             "percent": 100, "abort": "UNAVAILABLE", "delay": None},
            {"name": "slow-ids", "service": SERVICE, "method": None, "start_unix_s": now + 3.0, "end_unix_s": now + 4.5,
             "percent": 100, "abort": None, "delay": {"distribution": "fixed", "ms": 600}},
        ]}))
        before = handled("Unavailable"), injected("abort"), injected("delay")
        outcomes: list[tuple[float, str, float]] = []
        while time.time() < now + 5.5:
            sent = time.time()
            try:
                await stub.LeaseIds(REQUEST, timeout=5)
                code, details = "OK", ""
            except grpc.aio.AioRpcError as error:
                code, details = error.code().name, error.details()
            outcomes.append((sent - now, code, time.time() - sent))
            if code == "UNAVAILABLE":
                assert details == "fault injected by casemesh: flaky-ids"
            await asyncio.sleep(0.05)
        # Margins around each switch: the file is polled every 0.2 s, and a loaded machine is late.
        aborted = [t for t, code, _ in outcomes if code == "UNAVAILABLE"]
        assert aborted and all(0.9 <= t < 2.55 for t in aborted), outcomes
        assert all(code == "UNAVAILABLE" for t, code, _ in outcomes if 1.4 <= t < 2.2), outcomes
        delayed = [t for t, code, took in outcomes if code == "OK" and took >= 0.6]
        assert delayed and all(2.9 <= t < 4.55 for t in delayed), outcomes
        assert all(code == "OK" for t, code, _ in outcomes if t < 0.9 or t >= 4.6), outcomes
        # Counted honestly: every abort under its code in the server's own metrics, and as an injected fault.
        assert handled("Unavailable") - before[0] == len(aborted)
        assert injected("abort") - before[1] == len(aborted)
        assert injected("delay") - before[2] >= len(delayed)
        events = [json.loads(line) for line in events_path(schedule).read_text().splitlines()]
        assert [(e["fault"], e["event"]) for e in events] == [("flaky-ids", "start"), ("flaky-ids", "end"),
                                                              ("slow-ids", "start"), ("slow-ids", "end")]
        assert events[0]["at_unix_s"] >= now + 0.95 and events[1]["at_unix_s"] >= now + 2.45
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("bad", ["not json", '{"version": 2, "faults": []}'])
async def test_without_a_valid_schedule_nothing_is_injected(tmp_path, monkeypatch, bad):
    schedule = tmp_path / "schedule.json"
    schedule.write_text(bad)
    monkeypatch.setenv(FAULTS_ENV, str(schedule))
    running, stop, task = await start_mesh(definitions(["idgen"]), loopback_topology(["idgen"], tmp_path / "data"))
    try:
        stub = pb_grpc.IdGeneratorServiceStub(running.channel("idgen"))
        assert (await stub.LeaseIds(REQUEST, timeout=5)).ranges
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
