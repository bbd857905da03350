"""Geofencing through real gRPC: fence events neither lost nor repeated, under concurrent gateways, resent batches,
watcher reconnects, and a SIGKILL of the geofence service and of the tracker.

CASE-STUDY.md point 5 for the proximity service (seed 001 #29, shared/seeds/001_58dfc580020147d2.txt line 51,
"geofencing, real-time location updates"; the issue: "geofence events neither lost nor duplicated for an entity
crossing a fence"). Entities walk east and back along rows of the city, some rows through a line of fences (two of
them overlapping), others past them; device gateways send their entities' positions in batches on
TrackerService.StreamPositions; watchers follow GeofenceService.WatchFenceEvents. Afterwards, what every watcher saw
equals, event for event, what the acknowledged positions cause by the contract's rule (tests/integration/proximity.py
``expected_events``): nothing lost, nothing twice, nothing extra.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.proximity.v1 import geofence_pb2, geofence_pb2_grpc, tracker_pb2_grpc

from .proximity import (
    SERVICES,
    Gateway,
    Watcher,
    eventually,
    expected_events,
    lost_and_repeated,
    near,
    position,
    proximity_mesh,
)

#: A line of fences 400 m apart, 150 m in radius, along the row 0 m north; "f-overlap" overlaps "f-2".
FENCES = [geofence_pb2.Fence(fence_id=f"f-{i}", name=f"fence {i}", center=near(0, 400 * i), radius_m=150)
          for i in range(6)] + [geofence_pb2.Fence(fence_id="f-overlap", center=near(60, 880), radius_m=200)]


def route(row_m: float, step: int) -> tuple[float, float]:
    """Where an entity of the row ``row_m`` m north is at ``step``: from 300 m west of the first fence east to 300 m
    past the last one in 50 m steps, then back (so it crosses each fence on its row twice each way)."""
    span = 2_600 // 50
    leg = step % (2 * span)
    x = -300 + 50 * (leg if leg <= span else 2 * span - leg)
    return row_m, x


def rows(n: int) -> list[float]:
    """``n`` rows from 250 m south to 250 m north: the middle ones cross the fences, the outer ones pass by."""
    return [-250 + 500 * i / max(1, n - 1) for i in range(n)]


async def _create_fences(stub: geofence_pb2_grpc.GeofenceServiceStub) -> None:
    for fence in FENCES:
        await stub.CreateFence(geofence_pb2.CreateFenceRequest(fence=fence), timeout=10)


async def _walk(gateways: list[Gateway], entities: list[list[tuple[str, float]]], steps: range,
                pause_s: float = 0.01) -> None:
    """Each step, every gateway sends one batch with the next position of each of its entities."""
    for step in steps:
        for gateway, mine in zip(gateways, entities):
            gateway.send(position(entity_id, step + 1, near(*route(row_m, step))) for entity_id, row_m in mine)
        await asyncio.sleep(pause_s)


def _check_exactly_once(gateways: list[Gateway], watchers: list[tuple[Watcher, set[str] | None]]) -> int:
    acknowledged = [p for g in gateways for batch, _ in g.acked for p in batch.positions]
    expected = expected_events(acknowledged, FENCES)
    for watcher, only in watchers:
        wanted = [key for key in expected if only is None or key[0] in only]
        lost, repeated = lost_and_repeated(watcher.keys(), wanted)
        assert not lost and not repeated, (f"lost {sum(lost.values())}: {list(lost)[:5]}; "
                                           f"repeated or extra {sum(repeated.values())}: {list(repeated)[:5]}")
        sequences = [e.sequence for e in watcher.events]
        assert sequences == sorted(set(sequences)), "a watcher saw a sequence twice or out of order"
    return len(expected)


@pytest.mark.asyncio
async def test_concurrent_gateways_resends_and_watcher_reconnects_lose_and_repeat_nothing(tmp_path):
    async with proximity_mesh(tmp_path) as mesh:
        fences = geofence_pb2_grpc.GeofenceServiceStub(mesh.channel("proximity-geofence"))
        await _create_fences(fences)
        everything = Watcher(lambda: mesh.channel("proximity-geofence"))
        some = {"f-2", "f-overlap"}
        subset = Watcher(lambda: mesh.channel("proximity-geofence"), fence_ids=sorted(some))
        everything.start()
        subset.start()
        tracker = mesh.channel("proximity-tracker")
        gateways = [Gateway(lambda: tracker) for _ in range(4)]
        entities = [[(f"g{g}-e{i}", row) for i, row in enumerate(rows(12))] for g in range(4)]
        try:
            await asyncio.sleep(0.3)  # the watchers' streams are open before the first position
            for gateway in gateways:
                gateway.start()
            await _walk(gateways, entities, range(0, 60))
            everything.reconnect()  # a watcher that goes away and comes back resumes after its last sequence
            await _walk(gateways, entities, range(60, 120))
            for gateway in gateways:
                await gateway.drain()
            # A gateway unsure whether a batch landed sends it again, on a stream of its own: all of it is stale.
            again = tracker_pb2_grpc.TrackerServiceStub(tracker).StreamPositions(timeout=30)
            await again.write(gateways[0].acked[-1][0])
            ack = await again.read()
            await again.done_writing()
            assert (ack.applied, ack.stale) == (0, 12)

            acknowledged = [p for g in gateways for batch, _ in g.acked for p in batch.positions]
            total = len(expected_events(acknowledged, FENCES))
            assert total > 100, "the walk crosses fences: many events expected"
            await eventually(lambda: len(everything.events) >= total, lambda: f"{len(everything.events)} of {total}")
            await eventually(lambda: len(subset.events) >= sum(1 for k in expected_events(acknowledged, FENCES)
                                                                if k[0] in some), "the subset watcher caught up")
            await asyncio.sleep(0.3)  # anything extra would arrive now
            _check_exactly_once(gateways, [(everything, None), (subset, some)])
            assert grpc.StatusCode.CANCELLED in everything.ends  # it did reconnect
        finally:
            for client in (*gateways, everything, subset):
                await client.stop()


#: Client channels reconnect quickly: a service is gone for a second or two only.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_sigkill_of_the_geofence_service_then_the_tracker_loses_and_repeats_no_event(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in ("proximity-tracker", "proximity-geofence")}
        gateways: list[Gateway] = []
        watcher = Watcher(lambda: channels["proximity-geofence"])
        try:
            await _create_fences(geofence_pb2_grpc.GeofenceServiceStub(channels["proximity-geofence"]))
            watcher.start()
            await asyncio.sleep(0.5)
            gateways = [Gateway(lambda: channels["proximity-tracker"]) for _ in range(3)]
            entities = [[(f"g{g}-e{i}", row) for i, row in enumerate(rows(8))] for g in range(3)]
            for gateway in gateways:
                gateway.start()
            await _walk(gateways, entities, range(0, 40), pause_s=0.02)
            # Killed with batches in flight: some evaluated and committed but not answered, some not yet evaluated.
            assert mesh.kill("proximity-geofence", signal.SIGKILL) == -signal.SIGKILL
            await _walk(gateways, entities, range(40, 60), pause_s=0.02)  # sent while it is down: acknowledged later
            await mesh.start_services(["proximity-geofence"])
            await _walk(gateways, entities, range(60, 90), pause_s=0.02)
            assert mesh.kill("proximity-tracker", signal.SIGKILL) == -signal.SIGKILL
            await _walk(gateways, entities, range(90, 100), pause_s=0.02)
            await mesh.start_services(["proximity-tracker"])
            await _walk(gateways, entities, range(100, 130), pause_s=0.02)
            for gateway in gateways:
                await gateway.drain(within_s=90)

            acknowledged = [p for g in gateways for batch, _ in g.acked for p in batch.positions]
            total = len(expected_events(acknowledged, FENCES))
            await eventually(lambda: len(watcher.events) >= total, lambda: f"{len(watcher.events)} of {total}", 90)
            await asyncio.sleep(0.5)
            assert _check_exactly_once(gateways, [(watcher, None)]) > 50
            assert grpc.StatusCode.UNAVAILABLE in {code for g in gateways for code in g.ends}, "the kills broke streams"
            assert watcher.ends, "the geofence kill ended the watcher's stream, and it resumed"
        finally:
            for client in (*gateways, watcher):
                await client.stop()
            for channel in channels.values():
                await channel.close()
