"""proximity-tracker (services/proximity/tracker): the domain without gRPC, then the servicer over real gRPC on
127.0.0.1 with a fake GeofenceService.

Validation names the proto field, and a bad batch is refused whole (nothing of it forwarded or applied, the batches
before it kept); each batch is forwarded whole to the geofence before it is applied and acknowledged, in order; a
failed forward ends the stream UNAVAILABLE with nothing applied, and the resend applies; stale positions are skipped
(and an upsert that lost a race to a newer position puts it back); expiry (a fake clock) removes entities;
FindNearbyEntities agrees with a brute-force scan; cell and shard changes are counted; the forwarder retries
UNAVAILABLE within its budget (a fake clock, no sleeping) and nothing else.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import grpc
import h3
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import (
    geofence_pb2,
    geofence_pb2_grpc,
    proximity_pb2,
    tracker_pb2,
    tracker_pb2_grpc,
)
from casemesh.services.proximity import contract
from casemesh.services.proximity.tracker import validation
from casemesh.services.proximity.tracker.entities import EntityIndex
from casemesh.services.proximity.tracker.forwarding import ForwardFailed, GeofenceForwarder
from casemesh.services.proximity.tracker.service import DEFINITION, TrackerServicer, evaluate_call
from casemesh.services.proximity.tracker.settings import TrackerSettings
from casemesh.services.proximity.tracker.streams import PositionStreams, StreamEnded
from casemesh.services.runtime.errors import InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

SF = (37.7749, -122.4194)
WAIT_S = 10.0
AREA = contract.SERVICE_AREA


def position(entity_id: str = "e1", sequence: int = 1, lat: float = SF[0], lng: float = SF[1],
             sent_at_ms: int = 0) -> proximity_pb2.EntityPosition:
    return proximity_pb2.EntityPosition(entity_id=entity_id, sequence=sequence,
                                        point=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng), sent_at_unix_ms=sent_at_ms)


def batch(batch_id: int, *positions: proximity_pb2.EntityPosition) -> tracker_pb2.StreamPositionsRequest:
    return tracker_pb2.StreamPositionsRequest(batch_id=batch_id, positions=positions)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class FakeGeofence:
    """The :class:`~.forwarding.Evaluate` of a test: records each batch it is given as [(entity, sequence)], or raises
    ``fail``."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.fail: Exception | None = None

    async def __call__(self, positions) -> None:
        await asyncio.sleep(0)
        if self.fail is not None:
            raise self.fail
        self.batches.append([(p.entity_id, p.sequence) for p in positions])


def make(clock: Clock | None = None, **settings) -> tuple[PositionStreams, FakeGeofence]:
    geofence = FakeGeofence()
    settings = TrackerSettings(**settings)
    return PositionStreams(settings, EntityIndex(settings, clock=clock or Clock()), geofence), geofence


class Stream:
    """A StreamPositions stream driven by the test: ``send`` a batch and get its acknowledgement, ``close`` to
    half-close; ``task`` ends with the stream's error."""

    def __init__(self, streams: PositionStreams) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.acks: asyncio.Queue = asyncio.Queue()
        self.task = asyncio.create_task(self._run(streams))

    async def _requests(self):
        while (item := await self.requests.get()) is not None:
            yield item

    async def _run(self, streams: PositionStreams) -> None:
        async with contextlib.aclosing(streams.serve(self._requests())) as acks:
            async for ack in acks:
                self.acks.put_nowait(ack)

    async def send(self, request: tracker_pb2.StreamPositionsRequest) -> tracker_pb2.StreamPositionsResponse:
        self.requests.put_nowait(request)
        return await asyncio.wait_for(self.acks.get(), WAIT_S)

    async def fails(self, request: tracker_pb2.StreamPositionsRequest) -> BaseException:
        self.requests.put_nowait(request)
        with pytest.raises(Exception) as error:
            await asyncio.wait_for(self.task, WAIT_S)
        return error.value

    async def close(self) -> None:
        self.requests.put_nowait(None)
        await asyncio.wait_for(self.task, WAIT_S)


def ack(batch_id: int, applied: int, stale: int = 0) -> tracker_pb2.StreamPositionsResponse:
    return tracker_pb2.StreamPositionsResponse(batch_id=batch_id, applied=applied, stale=stale)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("positions", "field"), [
    ([], "positions"),
    ([position(f"e{i}") for i in range(contract.MAX_BATCH + 1)], "positions"),
    ([position(entity_id="")], "positions[0].entity_id"),
    ([position("a"), position(entity_id="no good")], "positions[1].entity_id"),
    ([position(entity_id="x" * 65)], "positions[0].entity_id"),
    ([position("a"), position("b"), position("a", sequence=2)], "positions[2].entity_id"),  # an entity twice
    ([position(sequence=0)], "positions[0].sequence"),
    ([position("a"), position("b", sequence=-3)], "positions[1].sequence"),
    ([proximity_pb2.EntityPosition(entity_id="a", sequence=1)], "positions[0].point"),
    ([position(lat=91)], "positions[0].point.lat_deg"),
    ([position("a"), position("b", lng=float("nan"))], "positions[1].point.lng_deg"),
    ([position(lat=40.7, lng=-74.0)], "positions[0].point"),  # New York: outside the service area
    ([position("a", sequence=0), position(entity_id="bad id")], "positions[0].sequence"),  # the first bad field
])
def test_batch_validation_names_the_first_bad_field(positions, field):
    with pytest.raises(InvalidArgument) as error:
        validation.batch(batch(1, *positions))
    assert error.value.field == field


def test_a_full_batch_of_valid_positions_is_accepted_as_sent():
    positions = [position(f"e{i}", sequence=i + 1, lat=AREA.south_deg, lng=AREA.east_deg, sent_at_ms=i)
                 for i in range(contract.MAX_BATCH)]
    valid = validation.batch(batch(1, *positions))
    assert len(valid) == contract.MAX_BATCH
    assert [p.to_proto() for p in valid] == positions


@pytest.mark.parametrize(("changes", "field"), [
    ({"center": None}, "center"),
    ({"center": geo_pb2.LatLng(lat_deg=-91, lng_deg=SF[1])}, "center.lat_deg"),
    ({"center": geo_pb2.LatLng(lat_deg=SF[0], lng_deg=181)}, "center.lng_deg"),
    ({"center": geo_pb2.LatLng(lat_deg=51.5, lng_deg=-0.1)}, "center"),
    ({"radius_m": 0.5}, "radius_m"),
    ({"radius_m": 50_001}, "radius_m"),
    ({"radius_m": float("nan")}, "radius_m"),
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
])
def test_nearby_validation_names_the_field(changes, field):
    request = tracker_pb2.FindNearbyEntitiesRequest(center=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]),
                                                    radius_m=1_000, limit=5)
    for key, value in changes.items():
        if value is None:
            request.ClearField(key)
        elif key == "center":
            request.center.CopyFrom(value)
        else:
            setattr(request, key, value)
    with pytest.raises(InvalidArgument) as error:
        validation.nearby(request)
    assert error.value.field == field


@pytest.mark.parametrize("entity_id", ["", "a b", "é"])
def test_get_position_validation_names_entity_id(entity_id):
    with pytest.raises(InvalidArgument) as error:
        validation.entity_id(tracker_pb2.GetPositionRequest(entity_id=entity_id))
    assert error.value.field == "entity_id"


def test_settings_refuse_shards_not_coarser_than_cells_and_resolutions_out_of_range():
    assert TrackerSettings().index_resolution == 8 and TrackerSettings().expiry_s == 60
    for bad in ({"index_resolution": 3}, {"index_resolution": 13}, {"index_resolution": 6, "shard_resolution": 6},
                {"max_streams": 1_001}, {"unknown": 1}):
        with pytest.raises(ValueError):
            TrackerSettings(**bad)


# ----------------------------------------------------------------------------- streams, with a fake geofence


async def test_batches_are_forwarded_whole_then_applied_and_acknowledged_in_order():
    streams, geofence = make()
    stream = Stream(streams)
    assert await stream.send(batch(7, position("a", 1), position("b", 1))) == ack(7, 2)
    assert await stream.send(batch(3, position("a", 2, lat=SF[0] + 0.01))) == ack(3, 1)
    assert await stream.send(batch(9, position("c", 5), position("b", 4))) == ack(9, 2)
    await stream.close()
    assert geofence.batches == [[("a", 1), ("b", 1)], [("a", 2)], [("c", 5), ("b", 4)]]
    got = streams.entities.position("a")
    assert got == position("a", 2, lat=SF[0] + 0.01)
    assert streams.entities.last_sequence("b") == 4 and len(streams.entities) == 3
    assert not streams.open


async def test_a_slow_forward_holds_the_next_batch_back_so_acknowledgements_stay_in_order():
    """A slow forward of batch 1 holds batch 2 back: one batch at a time per stream."""
    release = asyncio.Event()
    seen: list[int] = []

    async def slow_first(positions):
        seen.append(positions[0].sequence)
        if positions[0].sequence == 1:
            await release.wait()

    settings = TrackerSettings()
    stream = Stream(PositionStreams(settings, EntityIndex(settings, clock=Clock()), slow_first))
    stream.requests.put_nowait(batch(1, position("a", 1)))
    stream.requests.put_nowait(batch(2, position("a", 2)))
    for _ in range(20):
        await asyncio.sleep(0)
    assert seen == [1] and stream.acks.empty()  # batch 2 not even forwarded yet
    release.set()
    first = await asyncio.wait_for(stream.acks.get(), WAIT_S)
    second = await asyncio.wait_for(stream.acks.get(), WAIT_S)
    assert [first.batch_id, second.batch_id] == [1, 2] and seen == [1, 2]
    await stream.close()


async def test_stale_positions_are_skipped_but_still_forwarded():
    streams, geofence = make()
    stream = Stream(streams)
    assert await stream.send(batch(1, position("a", 5, lat=SF[0]), position("b", 1))) == ack(1, 2)
    # a resend (5), an older one (3) and a newer one: the geofence gets all of them (it dedupes durably itself)
    assert await stream.send(batch(2, position("a", 5, lat=SF[0] + 0.02), position("b", 2))) == ack(2, 1, 1)
    assert await stream.send(batch(3, position("a", 3, lat=SF[0] + 0.03))) == ack(3, 0, 1)
    assert geofence.batches[1:] == [[("a", 5), ("b", 2)], [("a", 3)]]
    assert streams.entities.position("a").point.lat_deg == SF[0]  # still sequence 5's point
    await stream.close()


async def test_an_invalid_batch_ends_the_stream_and_nothing_of_it_is_applied():
    streams, geofence = make()
    stream = Stream(streams)
    await stream.send(batch(1, position("a", 1)))
    error = await stream.fails(batch(2, position("a", 2, lat=SF[0] + 0.01), position("b", 1),
                                     position("c", 1, lng=-200)))
    assert isinstance(error, InvalidArgument) and error.field == "positions[2].point.lng_deg"
    assert geofence.batches == [[("a", 1)]]  # the bad batch never forwarded
    assert streams.entities.last_sequence("a") == 1 and streams.entities.position("a").point.lat_deg == SF[0]
    with pytest.raises(NotFound):
        streams.entities.position("b")
    assert not streams.open


async def test_a_failed_forward_ends_the_stream_unavailable_and_the_resend_applies():
    streams, geofence = make()
    stream = Stream(streams)
    await stream.send(batch(1, position("a", 1)))
    geofence.fail = ForwardFailed("the geofence service is unavailable")
    error = await stream.fails(batch(2, position("a", 2, lat=SF[0] + 0.01), position("b", 1)))
    assert isinstance(error, StreamEnded) and error.code == grpc.StatusCode.UNAVAILABLE
    assert "batch 2 was not acknowledged" in str(error) and "send it again" in str(error)
    assert streams.entities.last_sequence("a") == 1 and streams.entities.last_sequence("b") == 0
    geofence.fail = None
    again = Stream(streams)
    assert await again.send(batch(2, position("a", 2, lat=SF[0] + 0.01), position("b", 1))) == ack(2, 2)
    assert streams.entities.last_sequence("a") == 2 and streams.entities.last_sequence("b") == 1
    await again.close()


async def test_the_geofence_refusing_a_batch_ends_the_stream_invalid_argument():
    streams, geofence = make()
    geofence.fail = InvalidArgument("positions[0].point", "outside")
    error = await Stream(streams).fails(batch(1, position("a", 1)))
    assert isinstance(error, InvalidArgument) and error.field == "positions[0].point"
    assert len(streams.entities) == 0


async def test_more_streams_than_max_streams_are_refused_and_shutdown_ends_the_open_ones():
    streams, _ = make(max_streams=2)
    first, second = Stream(streams), Stream(streams)
    await first.send(batch(1, position("a", 1)))
    await second.send(batch(1, position("b", 1)))
    error = await Stream(streams).fails(batch(1, position("c", 1)))
    assert isinstance(error, ResourceExhausted)
    await streams.stop(timeout_s=WAIT_S)
    for stream in (first, second):
        with pytest.raises(StreamEnded) as ended:
            await asyncio.wait_for(stream.task, WAIT_S)
        assert ended.value.code == grpc.StatusCode.UNAVAILABLE
    assert not streams.open
    error = await Stream(streams).fails(batch(1, position("c", 1)))
    assert isinstance(error, StreamEnded) and error.code == grpc.StatusCode.UNAVAILABLE


# ----------------------------------------------------------------------------- the index


async def test_expiry_removes_entities_not_heard_from_and_a_late_resend_comes_back():
    clock = Clock()
    streams, _ = make(clock, expiry_s=60)
    stream = Stream(streams)
    await stream.send(batch(1, position("a", 4), position("b", 1)))
    clock.now += 30
    await stream.send(batch(2, position("b", 2)))
    clock.now += 31
    assert await streams.entities.expire() == ["a"]
    with pytest.raises(NotFound):
        streams.entities.position("a")
    assert streams.entities.last_sequence("a") == 0 and streams.entities.last_sequence("b") == 2
    # its last sequence left with it: a resend applies again (the geofence dedupes it durably)
    assert await stream.send(batch(3, position("a", 4))) == ack(3, 1)
    clock.now += 61
    assert sorted(await streams.entities.expire()) == ["a", "b"] and len(streams.entities) == 0
    await stream.close()


async def test_an_upsert_that_lost_a_race_to_a_newer_position_puts_it_back():
    settings = TrackerSettings()
    entities = EntityIndex(settings, clock=Clock())
    first = validation.batch(batch(1, position("a", 1)))
    await entities.apply(first)
    shard = entities.index.get("a").shard
    lock = entities.index._shards[shard].lock.writer_lock
    await lock.acquire()  # both upserts below wait for the shard, after both passed the sequence check
    newer = asyncio.create_task(entities.apply(validation.batch(batch(2, position("a", 3, lat=SF[0] + 0.001)))))
    older = asyncio.create_task(entities.apply(validation.batch(batch(3, position("a", 2, lat=SF[0] + 0.002)))))
    for _ in range(5):
        await asyncio.sleep(0)
    lock.release()
    assert (await newer).applied == 1
    assert (await older)[:2] == (0, 1)  # counted stale
    assert entities.last_sequence("a") == 3
    assert entities.position("a").point.lat_deg == pytest.approx(SF[0] + 0.001)


def random_point(rng: random.Random) -> tuple[float, float]:
    return (rng.uniform(AREA.south_deg, AREA.north_deg), rng.uniform(AREA.west_deg, AREA.east_deg))


@pytest.mark.parametrize("resolution", [6, 8, 10])
async def test_find_nearby_agrees_with_a_brute_force_scan(resolution):
    rng = random.Random(resolution)
    settings = TrackerSettings(index_resolution=resolution)
    entities = EntityIndex(settings, clock=Clock())
    points = {f"e{i}": random_point(rng) for i in range(400)}
    # two updates each, so what is searched is every entity's last position
    for sequence in (1, 2):
        moved = {e: (lat + rng.uniform(-0.002, 0.002), lng) if sequence == 2 else (lat, lng)
                 for e, (lat, lng) in points.items()}
        moved = {e: (min(max(lat, AREA.south_deg), AREA.north_deg), lng) for e, (lat, lng) in moved.items()}
        positions = [position(e, sequence, lat, lng) for e, (lat, lng) in moved.items()]
        await entities.apply(validation.batch(batch(sequence, *positions)))
        points = moved
    for _ in range(25):
        lat, lng = random_point(rng)
        radius_m = rng.choice([50.0, 300.0, 1_500.0, 5_000.0, 50_000.0])
        limit = rng.choice([1, 5, 20, 100])
        query = validation.nearby(tracker_pb2.FindNearbyEntitiesRequest(
            center=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng), radius_m=radius_m, limit=limit))
        found = await entities.nearby(query)
        expected = sorted((contract.distance_m(lat, lng, *p), e) for e, p in points.items())
        expected = [e for d, e in expected if d <= radius_m][:limit]
        assert [entry.entity_id for entry, _ in found.hits] == expected
        assert all(d == pytest.approx(contract.distance_m(lat, lng, entry.lat_deg, entry.lng_deg))
                   for entry, d in found.hits)
        assert found.cells_searched >= 1


async def test_cell_and_shard_changes_are_counted():
    settings = TrackerSettings(index_resolution=9, shard_resolution=5)
    entities = EntityIndex(settings, clock=Clock())
    lat, lng = SF
    cell = h3.latlng_to_cell(lat, lng, 9)
    # a point of the same cell, a point of another cell of the same shard, and a point of another shard
    same = h3.cell_to_latlng(cell)
    shard = h3.cell_to_parent(cell, 5)
    other_cell = next(c for c in h3.grid_disk(cell, 3) if c != cell and h3.cell_to_parent(c, 5) == shard)
    rng = random.Random(5)
    other_shard_point = next(p for p in (random_point(rng) for _ in range(10_000))
                             if h3.cell_to_parent(h3.latlng_to_cell(*p, 9), 5) != shard)
    counted = REGISTRY.get_sample_value("casemesh_proximity_tracker_cell_changes_total") or 0.0
    assert await entities.apply(validation.batch(batch(1, position("a", 1, lat, lng)))) == (1, 0, 0, 0)
    assert await entities.apply(validation.batch(batch(2, position("a", 2, *same)))) == (1, 0, 0, 0)
    assert await entities.apply(validation.batch(batch(3, position("a", 3, *h3.cell_to_latlng(other_cell))))) \
        == (1, 0, 1, 0)
    assert await entities.apply(validation.batch(batch(4, position("a", 4, *other_shard_point)))) == (1, 0, 1, 1)
    assert entities.index.get("a").shard != shard
    assert REGISTRY.get_sample_value("casemesh_proximity_tracker_cell_changes_total") == counted + 2


# ----------------------------------------------------------------------------- the forwarder


def unavailable(details: str = "down") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


class FakeCall:
    """EvaluatePositions that fails with each of ``errors`` in turn, then answers; time moves only by sleeping."""

    def __init__(self, clock: Clock, errors: list[grpc.aio.AioRpcError]) -> None:
        self.clock = clock
        self.errors = list(errors)
        self.calls: list[tuple[int, float]] = []

    async def __call__(self, request, timeout_s):
        self.calls.append((len(request.positions), timeout_s))
        if self.errors:
            raise self.errors.pop(0)
        return geofence_pb2.EvaluatePositionsResponse(applied=len(request.positions))

    async def sleep(self, seconds: float) -> None:
        self.clock.now += seconds


def forwarder(clock: Clock, call: FakeCall, timeout_s: float = 2.0, budget_s: float = 3.0) -> GeofenceForwarder:
    return GeofenceForwarder(call, timeout_s, budget_s, clock=clock, sleep=call.sleep, jitter=lambda: 0.5)


async def test_the_forwarder_retries_unavailable_and_sends_the_whole_batch_with_its_deadline():
    clock = Clock()
    call = FakeCall(clock, [unavailable(), unavailable()])
    response = await forwarder(clock, call)([position("a"), position("b")])
    assert response.applied == 2
    assert [n for n, _ in call.calls] == [2, 2, 2]
    assert all(0 < timeout_s <= 2.0 for _, timeout_s in call.calls)


async def test_the_forwarder_gives_up_when_the_budget_is_spent():
    clock = Clock()
    call = FakeCall(clock, [unavailable()] * 1_000)
    started = clock.now
    with pytest.raises(ForwardFailed, match="unavailable"):
        await forwarder(clock, call, budget_s=3.0)([position()])
    assert 3 <= len(call.calls) < 50 and clock.now - started <= 3.0
    call = FakeCall(clock, [unavailable()])
    with pytest.raises(ForwardFailed):
        await forwarder(clock, call, budget_s=0)([position()])  # no retry at all
    assert len(call.calls) == 1


@pytest.mark.parametrize("code", [grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INTERNAL])
async def test_the_forwarder_does_not_retry_other_failures(code):
    clock = Clock()
    call = FakeCall(clock, [grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="no")])
    with pytest.raises(ForwardFailed):
        await forwarder(clock, call)([position()])
    assert len(call.calls) == 1


async def test_the_forwarder_passes_invalid_argument_through_with_the_field():
    clock = Clock()
    call = FakeCall(clock, [grpc.aio.AioRpcError(grpc.StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(),
                                                 grpc.aio.Metadata(), details="positions[0].point: outside")])
    with pytest.raises(InvalidArgument) as error:
        await forwarder(clock, call)([position()])
    assert error.value.field == "positions[0].point"


# ----------------------------------------------------------------------------- over gRPC


class FakeGeofenceService(geofence_pb2_grpc.GeofenceServiceServicer):
    """EvaluatePositions that records the batches (as [(entity, sequence)]) or answers UNAVAILABLE while ``down``."""

    def __init__(self) -> None:
        self.batches: list[list[tuple[str, int]]] = []
        self.down = False

    async def EvaluatePositions(self, request, context):
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "geofence down")
        self.batches.append([(p.entity_id, p.sequence) for p in request.positions])
        return geofence_pb2.EvaluatePositionsResponse(applied=len(request.positions))


@contextlib.asynccontextmanager
async def served(**settings):
    geofence = FakeGeofenceService()
    geofence_server = grpc.aio.server()
    geofence_pb2_grpc.add_GeofenceServiceServicer_to_server(geofence, geofence_server)
    geofence_port = geofence_server.add_insecure_port("127.0.0.1:0")
    await geofence_server.start()
    geofence_channel = grpc.aio.insecure_channel(f"127.0.0.1:{geofence_port}")
    tracker_settings = TrackerSettings(**settings)
    entities = EntityIndex(tracker_settings)
    forward = GeofenceForwarder(evaluate_call(geofence_pb2_grpc.GeofenceServiceStub(geofence_channel)),
                                tracker_settings.geofence_timeout_ms / 1000,
                                tracker_settings.geofence_retry_budget_ms / 1000)
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    tracker_pb2_grpc.add_TrackerServiceServicer_to_server(
        TrackerServicer(PositionStreams(tracker_settings, entities, forward)), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield tracker_pb2_grpc.TrackerServiceStub(channel), geofence
    finally:
        await channel.close()
        await server.stop(None)
        await geofence_channel.close()
        await geofence_server.stop(None)


async def test_over_grpc_stream_acknowledgements_errors_get_and_find():
    async with served(geofence_retry_budget_ms=100) as (stub, geofence):
        call = stub.StreamPositions(timeout=WAIT_S)
        await call.write(batch(1, position("a", 1), position("b", 1, lat=SF[0] + 0.01)))
        await call.write(batch(2, position("a", 2, lat=SF[0] + 0.001), position("b", 1)))
        assert await call.read() == ack(1, 2)
        assert await call.read() == ack(2, 1, 1)
        await call.write(batch(3, position("c", 1), position("c", 2)))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call.read()
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("positions[1].entity_id:")
        assert geofence.batches == [[("a", 1), ("b", 1)], [("a", 2), ("b", 1)]]

        got = await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="a"), timeout=WAIT_S)
        assert got.position == position("a", 2, lat=SF[0] + 0.001)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="c"), timeout=WAIT_S)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id=""), timeout=WAIT_S)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("entity_id")

        found = await stub.FindNearbyEntities(tracker_pb2.FindNearbyEntitiesRequest(
            center=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=5_000, limit=10), timeout=WAIT_S)
        assert [e.position.entity_id for e in found.entities] == ["a", "b"]
        assert found.entities[0].distance_m < found.entities[1].distance_m and found.cells_searched >= 1
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.FindNearbyEntities(tracker_pb2.FindNearbyEntitiesRequest(
                center=geo_pb2.LatLng(lat_deg=SF[0], lng_deg=SF[1]), radius_m=5_000, limit=0), timeout=WAIT_S)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("limit")

        # the geofence down: the stream ends UNAVAILABLE, the batch unapplied; the resend on a new stream applies
        geofence.down = True
        call = stub.StreamPositions(timeout=WAIT_S)
        await call.write(batch(4, position("a", 3, lat=SF[0] + 0.002)))
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await call.read()
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE and "send it again" in error.value.details()
        got = await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="a"), timeout=WAIT_S)
        assert got.position.sequence == 2
        geofence.down = False
        call = stub.StreamPositions(timeout=WAIT_S)
        await call.write(batch(4, position("a", 3, lat=SF[0] + 0.002)))
        assert await call.read() == ack(4, 1)
        await call.done_writing()
        assert await call.read() == grpc.aio.EOF
        assert await call.code() == grpc.StatusCode.OK
        got = await stub.GetPosition(tracker_pb2.GetPositionRequest(entity_id="a"), timeout=WAIT_S)
        assert got.position.sequence == 3


def test_the_definition_declares_the_geofence_dependency_public_methods_and_stream_slots():
    assert DEFINITION.name == "proximity-tracker" and DEFINITION.dependencies == ("proximity-geofence",)
    assert DEFINITION.access.public == {"StreamPositions", "GetPosition", "FindNearbyEntities"}
    assert DEFINITION.default_limits["casemesh.proximity.v1.TrackerService/StreamPositions"] == 1_000
