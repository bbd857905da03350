"""Shared by the proximity integration tests: the mesh, and a device gateway, a fence watcher and the expected events
as a client writes them.

:func:`proximity_mesh` serves the three proximity services (proximity-places, proximity-tracker, proximity-geofence)
in the test's event loop. :class:`Gateway` is a device gateway: one TrackerService.StreamPositions stream, batches
acknowledged in order, the unacknowledged ones sent again on a new stream when one breaks. :class:`Watcher` is a
WatchFenceEvents consumer that resumes after the last sequence it saw. :func:`expected_events` replays positions
against the fences with the contract's rule (services/proximity/contract.py ``inside_fence``): the events a correct
service writes, once each.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import geofence_pb2, geofence_pb2_grpc, proximity_pb2, tracker_pb2, tracker_pb2_grpc
from casemesh.services.catalog import definitions
from casemesh.services.proximity.contract import inside_fence
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .conftest import RunningMesh, free_port, start_mesh
from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests

SERVICES = ["proximity-places", "proximity-tracker", "proximity-geofence"]
#: Union Square, San Francisco: inside the service area (services/proximity/contract.py).
CENTRE = (37.7880, -122.4075)
#: (fence id, entity id, position sequence, transition): one fence event as the tests compare them.
EventKey = tuple[str, str, int, int]


@contextlib.asynccontextmanager
async def proximity_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                         names: Sequence[str] = SERVICES) -> AsyncIterator[RunningMesh]:
    """The proximity services served in this event loop on 127.0.0.1 (their SQLite files in ``data_dir``)."""
    chosen = list(definitions(list(names)))
    topology = Topology(services={d.name: Endpoint(address=f"127.0.0.1:{free_port()}") for d in chosen},
                        data_dir=str(data_dir), settings=settings or {}, server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def point(lat: float, lng: float) -> geo_pb2.LatLng:
    return geo_pb2.LatLng(lat_deg=lat, lng_deg=lng)


def near(metres_north: float, metres_east: float = 0.0) -> geo_pb2.LatLng:
    """A point ``metres_north`` m north and ``metres_east`` m east of :data:`CENTRE` (flat-earth, fine at city scale)."""
    return point(CENTRE[0] + metres_north / 111_320, CENTRE[1] + metres_east / 88_000)


def position(entity_id: str, sequence: int, at: geo_pb2.LatLng) -> proximity_pb2.EntityPosition:
    return proximity_pb2.EntityPosition(entity_id=entity_id, sequence=sequence, point=at)


class Gateway:
    """A device gateway: :meth:`send` queues a batch; one StreamPositions stream writes the batches in order and reads
    their acknowledgements; when the stream ends with an error, a new one sends every unacknowledged batch again.

    ``acked`` lists the acknowledged batches in order, ``ends`` the status codes the streams ended with.
    ``channel_for()`` gives the channel of each new stream (a test that kills the tracker reconnects through it).
    """

    def __init__(self, channel_for: Callable[[], grpc.aio.Channel], retry_s: float = 0.2) -> None:
        self._channel_for = channel_for
        self._retry_s = retry_s
        self._next = 1
        self.unacked: dict[int, tracker_pb2.StreamPositionsRequest] = {}
        self.acked: list[tuple[tracker_pb2.StreamPositionsRequest, tracker_pb2.StreamPositionsResponse]] = []
        self.ends: list[grpc.StatusCode] = []
        self._more = asyncio.Event()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def send(self, positions: Iterable[proximity_pb2.EntityPosition]) -> int:
        batch = tracker_pb2.StreamPositionsRequest(batch_id=self._next, positions=list(positions))
        self.unacked[self._next] = batch
        self._next += 1
        self._more.set()
        return batch.batch_id

    async def drain(self, within_s: float = WAIT_S) -> None:
        """Wait until every batch sent is acknowledged."""
        await eventually(lambda: not self.unacked, "every batch acknowledged", within_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _write(self, call) -> None:
        sent = 0
        while True:
            pending = [batch for batch_id, batch in list(self.unacked.items()) if batch_id > sent]
            if not pending:
                self._more.clear()
                await self._more.wait()
                continue
            for batch in pending:
                await call.write(batch)
                sent = batch.batch_id

    async def _run(self) -> None:
        while True:
            call = tracker_pb2_grpc.TrackerServiceStub(self._channel_for()).StreamPositions(timeout=600)
            writer = asyncio.create_task(self._write(call))
            try:
                async for ack in call:
                    batch = self.unacked.pop(ack.batch_id, None)
                    if batch is not None:
                        self.acked.append((batch, ack))
                self.ends.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
            finally:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError, grpc.aio.UsageError):
                    await writer
                call.cancel()
            await asyncio.sleep(self._retry_s)


class Watcher:
    """A WatchFenceEvents consumer: every event it receives in ``events``; when its stream breaks it opens a new one
    after the last sequence it saw. ``ends`` lists the codes its streams ended with."""

    def __init__(self, channel_for: Callable[[], grpc.aio.Channel], fence_ids: Sequence[str] = (),
                 retry_s: float = 0.2) -> None:
        self._channel_for = channel_for
        self._fence_ids = list(fence_ids)
        self._retry_s = retry_s
        self.events: list[geofence_pb2.FenceEvent] = []
        self.ends: list[grpc.StatusCode] = []
        self._task: asyncio.Task | None = None
        self._call = None

    @property
    def last_sequence(self) -> int:
        return self.events[-1].sequence if self.events else 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def reconnect(self) -> None:
        """End the current stream from this side (a client that went away): the next one resumes."""
        if self._call is not None:
            self._call.cancel()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            stub = geofence_pb2_grpc.GeofenceServiceStub(self._channel_for())
            self._call = stub.WatchFenceEvents(geofence_pb2.WatchFenceEventsRequest(
                fence_ids=self._fence_ids, after_sequence=self.last_sequence), timeout=600)
            try:
                async for response in self._call:
                    self.events.append(response.event)
                self.ends.append(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
            except asyncio.CancelledError:
                if self._call.cancelled() and self._task is not None and not self._task.cancelling():
                    self.ends.append(grpc.StatusCode.CANCELLED)  # reconnect(): resume below
                else:
                    raise
            await asyncio.sleep(self._retry_s)

    def keys(self) -> list[EventKey]:
        return [(e.fence_id, e.position.entity_id, e.position.sequence, e.transition) for e in self.events]


def expected_events(positions: Iterable[proximity_pb2.EntityPosition],
                    fences: Sequence[geofence_pb2.Fence]) -> list[EventKey]:
    """The fence events of ``positions`` (any order; each entity's applied in sequence order, stale ones skipped) for
    ``fences`` that all exist before the first position: ENTER when an entity comes inside a fence, EXIT when it
    leaves, by the contract's rule (``inside_fence``)."""
    by_entity: dict[str, list[proximity_pb2.EntityPosition]] = {}
    for p in positions:
        by_entity.setdefault(p.entity_id, []).append(p)
    events: list[EventKey] = []
    for entity_id, mine in by_entity.items():
        inside: set[str] = set()
        last = 0
        for p in sorted(mine, key=lambda p: p.sequence):
            if p.sequence <= last:
                continue
            last = p.sequence
            now = {f.fence_id for f in fences
                   if inside_fence(f.center.lat_deg, f.center.lng_deg, f.radius_m, p.point.lat_deg, p.point.lng_deg)}
            events += [(fence_id, entity_id, p.sequence, geofence_pb2.FENCE_TRANSITION_ENTER)
                       for fence_id in sorted(now - inside)]
            events += [(fence_id, entity_id, p.sequence, geofence_pb2.FENCE_TRANSITION_EXIT)
                       for fence_id in sorted(inside - now)]
            inside = now
    return events


def lost_and_repeated(observed: Iterable[EventKey], expected: Iterable[EventKey]) -> tuple[Counter, Counter]:
    """(expected events not observed, observed events beyond what was expected: duplicates and strays)."""
    seen, wanted = Counter(observed), Counter(expected)
    return wanted - seen, seen - wanted
