"""rides-location (services/rides/location): the domain without gRPC, then the servicer over real gRPC on 127.0.0.1.

Validation errors name the proto field; a second stream of a driver takes over (the first ends ABORTED); an invalid
frame ends its stream INVALID_ARGUMENT and keeps what came before; OFFLINE removes the driver and ends its trackers
after that position; expiry (a fake clock, no sleeping) removes it and ends them too; a slow tracker gets only the
newest position; the stream and watcher bounds answer RESOURCE_EXHAUSTED; shutdown ends streams UNAVAILABLE; search
returns AVAILABLE drivers only, nearest first, minus the excluded; supply counts per cell.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.common.v1 import geo_pb2
from casemesh.rides.v1 import location_pb2, location_pb2_grpc, rides_pb2
from casemesh.services.rides.location import validation
from casemesh.services.rides.location.drivers import DriverLocations, StreamEnded
from casemesh.services.rides.location.feeds import TrackingStopped
from casemesh.services.rides.location.service import LocationServicer
from casemesh.services.rides.location.settings import LocationSettings
from casemesh.services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

AVAILABLE = rides_pb2.DRIVER_STATUS_AVAILABLE
BUSY = rides_pb2.DRIVER_STATUS_BUSY
OFFLINE = rides_pb2.DRIVER_STATUS_OFFLINE
SF = (37.7749, -122.4194)
WAIT_S = 5.0


def frame(driver_id: str = "d1", lat: float = SF[0], lng: float = SF[1], status: int = AVAILABLE,
          heading: float = 90.0, sent_at_ms: int = 0) -> location_pb2.ReportLocationsRequest:
    return location_pb2.ReportLocationsRequest(driver_id=driver_id, point=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng),
                                               status=status, heading_deg=heading, sent_at_unix_ms=sent_at_ms)


class Stream:
    """A ReportLocations stream driven by the test: ``send`` a frame, ``close`` to half-close."""

    def __init__(self, locations: DriverLocations) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.create_task(locations.serve(self._frames()))

    async def _frames(self):
        while (item := await self.queue.get()) is not None:
            yield item

    async def send(self, *frames: location_pb2.ReportLocationsRequest) -> None:
        for item in frames:
            self.queue.put_nowait(item)
        for _ in range(5):  # let the stream apply them
            await asyncio.sleep(0)

    async def close(self) -> int:
        self.queue.put_nowait(None)
        return await asyncio.wait_for(self.task, WAIT_S)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock | None = None, **settings) -> DriverLocations:
    return DriverLocations(LocationSettings(**settings), clock=clock or Clock())


@pytest.mark.parametrize(("request_frame", "stream_driver", "field"), [
    (frame(driver_id=""), None, "driver_id"),
    (frame(driver_id="bad id!"), None, "driver_id"),
    (frame(driver_id="d2"), "d1", "driver_id"),
    (location_pb2.ReportLocationsRequest(driver_id="d1", status=AVAILABLE), None, "point"),
    (frame(lat=91), None, "point.lat_deg"),
    (frame(lng=float("nan")), None, "point.lng_deg"),
    (frame(lat=40.7, lng=-74.0), None, "point"),  # New York: outside the service area
    (frame(status=rides_pb2.DRIVER_STATUS_UNSPECIFIED), None, "status"),
    (frame(status=9), None, "status"),
    (frame(heading=360.0), None, "heading_deg"),
    (frame(heading=-0.5), None, "heading_deg"),
    (frame(heading=float("inf")), None, "heading_deg"),
])
def test_report_validation_names_the_field(request_frame, stream_driver, field):
    with pytest.raises(InvalidArgument) as error:
        validation.report(request_frame, stream_driver)
    assert error.value.field == field


@pytest.mark.parametrize(("changes", "field"), [
    ({"radius_m": 0.5}, "radius_m"),
    ({"radius_m": 50_001}, "radius_m"),
    ({"radius_m": float("nan")}, "radius_m"),
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"exclude_driver_ids": [f"d{i}" for i in range(101)]}, "exclude_driver_ids"),
    ({"exclude_driver_ids": ["d1", "no good"]}, "exclude_driver_ids[1]"),
])
def test_nearby_validation_names_the_field(changes, field):
    request = location_pb2.FindNearbyDriversRequest(point=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]),
                                                    radius_m=1_000, limit=5)
    for key, value in changes.items():
        if key == "exclude_driver_ids":
            request.exclude_driver_ids.extend(value)
        else:
            setattr(request, key, value)
    with pytest.raises(InvalidArgument) as error:
        validation.nearby(request)
    assert error.value.field == field


async def test_a_stream_reports_positions_and_a_half_close_leaves_the_driver_until_expiry():
    clock = Clock()
    locations = make(clock)
    stream = Stream(locations)
    await stream.send(frame(sent_at_ms=1), frame(lat=SF[0] + 0.001))
    assert await stream.close() == 2
    position = locations.position("d1")
    assert position.point.lat_deg == pytest.approx(SF[0] + 0.001) and position.received_at_unix_ms > 0
    clock.now += 29
    assert await locations.expire() == []
    clock.now += 2
    assert await locations.expire() == ["d1"]
    with pytest.raises(NotFound):
        locations.position("d1")


async def test_a_second_stream_of_the_driver_takes_over_and_the_first_ends_aborted():
    locations = make()
    first = Stream(locations)
    await first.send(frame(heading=1))
    second = Stream(locations)
    await second.send(frame(heading=2))
    with pytest.raises(StreamEnded) as ended:
        await asyncio.wait_for(first.task, WAIT_S)
    assert ended.value.code == grpc.StatusCode.ABORTED
    assert locations.position("d1").heading_deg == 2
    await second.send(frame(heading=3))
    assert await second.close() == 2
    assert locations.position("d1").heading_deg == 3
    assert locations.connections == {} and not locations.open


async def test_an_invalid_frame_ends_the_stream_and_keeps_what_came_before():
    locations = make()
    stream = Stream(locations)
    await stream.send(frame(heading=10), frame(heading=400))
    with pytest.raises(InvalidArgument) as error:
        await asyncio.wait_for(stream.task, WAIT_S)
    assert error.value.field == "heading_deg"
    assert locations.position("d1").heading_deg == 10


async def test_offline_removes_the_driver_and_ends_its_trackers_after_that_position():
    locations = make()
    stream = Stream(locations)
    await stream.send(frame())
    tracker = locations.track("d1")
    assert (await anext(tracker)).status == AVAILABLE
    await stream.send(frame(status=OFFLINE))
    assert (await anext(tracker)).status == OFFLINE
    with pytest.raises(StopAsyncIteration):
        await anext(tracker)
    with pytest.raises(NotFound):
        locations.position("d1")
    with pytest.raises(NotFound):
        await anext(locations.track("d1"))
    assert await stream.close() == 2


async def test_expiry_ends_trackers_ok():
    clock = Clock()
    locations = make(clock, expiry_s=5)
    stream = Stream(locations)
    await stream.send(frame())
    tracker = locations.track("d1")
    await anext(tracker)
    clock.now += 6
    assert await locations.expire() == ["d1"]
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(tracker), WAIT_S)
    assert locations.feeds.watchers == 0 and len(locations.feeds) == 0
    await stream.close()


async def test_a_slow_tracker_gets_only_the_newest_position():
    locations = make()
    stream = Stream(locations)
    await stream.send(frame(heading=0))
    tracker = locations.track("d1")
    assert (await anext(tracker)).heading_deg == 0
    await stream.send(*(frame(heading=h) for h in range(1, 50)))
    assert (await anext(tracker)).heading_deg == 49  # not 1: the 48 in between were overwritten
    waiting = asyncio.create_task(anext(tracker))
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await stream.send(frame(heading=50))
    assert (await asyncio.wait_for(waiting, WAIT_S)).heading_deg == 50
    await tracker.aclose()
    assert locations.feeds.watchers == 0
    await stream.close()


async def test_bounds_answer_resource_exhausted():
    locations = make(max_connections=2, max_watchers=1)
    streams = [Stream(locations), Stream(locations)]
    await streams[0].send(frame(driver_id="a"))
    await streams[1].send(frame(driver_id="b"))
    third = Stream(locations)
    with pytest.raises(ResourceExhausted):
        await asyncio.wait_for(third.task, WAIT_S)
    tracker = locations.track("a")
    await anext(tracker)
    with pytest.raises(ResourceExhausted):
        await anext(locations.track("b"))
    await tracker.aclose()
    for stream in streams:
        await stream.close()


async def test_shutdown_ends_streams_unavailable_and_trackers():
    locations = make()
    stream, quiet = Stream(locations), Stream(locations)
    await stream.send(frame())
    tracker = locations.track("d1")
    await anext(tracker)
    await locations.stop(timeout_s=WAIT_S)
    for task in (stream.task, quiet.task):
        with pytest.raises(StreamEnded) as ended:
            await task
        assert ended.value.code == grpc.StatusCode.UNAVAILABLE
    with pytest.raises(TrackingStopped):
        await anext(tracker)
    with pytest.raises(StreamEnded):
        await locations.serve(Stream(locations)._frames())


async def test_search_finds_available_drivers_nearest_first_and_counts_supply():
    locations = make()
    for n, (driver, status) in enumerate([("a", AVAILABLE), ("b", BUSY), ("c", AVAILABLE), ("d", AVAILABLE)]):
        stream = Stream(locations)
        await stream.send(frame(driver_id=driver, lat=SF[0] + 0.001 * (n + 1), status=status))
        await stream.close()
    query = validation.nearby(location_pb2.FindNearbyDriversRequest(
        point=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=5_000, limit=10, exclude_driver_ids=["c"]))
    found = await locations.nearby(query)
    assert [entry.entity_id for entry, _ in found.hits] == ["a", "d"]
    assert found.hits[0][1] < found.hits[1][1] and found.cells_searched >= 1
    counts = await locations.available_counts(7)
    assert sum(counts.values()) == 3


@contextlib.asynccontextmanager
async def served(locations: DriverLocations):
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])
    location_pb2_grpc.add_LocationServiceServicer_to_server(LocationServicer(locations), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield location_pb2_grpc.LocationServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(0)


async def test_over_grpc_report_search_track_takeover_and_errors():
    locations = make()
    async with served(locations) as stub:
        response = await stub.ReportLocations(iter([frame(), frame(heading=45)]), timeout=WAIT_S)
        assert response.positions_received == 2
        position = (await stub.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id="d1"))).position
        assert position.heading_deg == 45 and position.status == AVAILABLE

        nearby = await stub.FindNearbyDrivers(location_pb2.FindNearbyDriversRequest(
            point=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=1_000, limit=5))
        assert [d.position.driver_id for d in nearby.drivers] == ["d1"] and nearby.cells_searched >= 1
        counts = await stub.CountAvailableDrivers(location_pb2.CountAvailableDriversRequest(resolution=8))
        assert counts.total_drivers == 1 and len(counts.cells) == 1 and len(counts.cells[0].cell) == 15

        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id="nobody"))
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.ReportLocations(iter([frame(heading=1), frame(heading=361)]), timeout=WAIT_S)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "heading_deg" in error.value.details()
        assert locations.position("d1").heading_deg == 1
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.CountAvailableDrivers(location_pb2.CountAvailableDriversRequest(resolution=16))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "resolution" in error.value.details()

        track = stub.TrackDriver(location_pb2.TrackDriverRequest(driver_id="d1"), timeout=WAIT_S)
        assert (await track.read()).position.heading_deg == 1

        first = stub.ReportLocations(timeout=WAIT_S)
        await first.write(frame(heading=100))
        assert (await track.read()).position.heading_deg == 100
        second = stub.ReportLocations(timeout=WAIT_S)
        await second.write(frame(heading=200))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await first
        assert error.value.code() == grpc.StatusCode.ABORTED
        assert (await track.read()).position.heading_deg == 200
        await second.write(frame(status=OFFLINE))
        assert (await track.read()).position.status == OFFLINE
        assert await track.read() == grpc.aio.EOF
        assert await track.code() == grpc.StatusCode.OK
        await second.done_writing()
        assert (await second).positions_received == 2
