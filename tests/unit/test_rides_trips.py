"""rides-trips (services/rides/trips): the state machine table, the atomic accept under concurrency, idempotent
requests, durability across a reopened store with the invariants in the schema, WatchRide, and status codes over gRPC.

Fakes stand in for rides-pricing, rides-dispatch and rides-location (no other service runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from dataclasses import astuple, replace

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.common.v1 import geo_pb2, money_pb2
from casemesh.rides.v1 import pricing_pb2, rides_pb2, trips_pb2, trips_pb2_grpc
from casemesh.services.rides.trips import machine
from casemesh.services.rides.trips.machine import (
    CANCELLED,
    COMPLETED,
    EN_ROUTE,
    IN_PROGRESS,
    MATCHED,
    REQUESTED,
    STATES,
    Event,
    TransitionRefused,
    decide,
)
from casemesh.services.rides.trips.service import Trips, TripServicer, WatchEnded, ride_id_for
from casemesh.services.rides.trips.settings import TripsSettings
from casemesh.services.rides.trips.store import RideStore, StoreUnavailable
from casemesh.services.runtime.errors import (
    Aborted,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

WAIT_S = 10.0
PICKUP = (37.7749, -122.4194)
DROPOFF = (37.7849, -122.4094)


class FakePricing:
    """RedeemQuote of quotes ``q-RIDER-N``: another rider's → PermissionDenied, redeemed for another ride →
    FailedPrecondition, unknown (``q-missing``) → NotFound; redeeming again for the same ride returns the quote."""

    def __init__(self) -> None:
        self.redeemed: dict[str, str] = {}
        self.calls: list[tuple[str, str, str]] = []

    async def redeem(self, quote_id: str, rider_id: str, ride_id: str) -> pricing_pb2.Quote:
        self.calls.append((quote_id, rider_id, ride_id))
        await asyncio.sleep(0)
        if quote_id == "q-missing":
            raise NotFound(f"no quote {quote_id}")
        if not quote_id.startswith(f"q-{rider_id}-"):
            raise PermissionDenied(f"quote {quote_id} was quoted to another rider")
        if self.redeemed.setdefault(quote_id, ride_id) != ride_id:
            raise FailedPrecondition(f"quote {quote_id} paid for another ride")
        return pricing_pb2.Quote(
            quote_id=quote_id, rider_id=rider_id, pickup=geo_pb2.LatLng(lat_deg=PICKUP[0], lng_deg=PICKUP[1]),
            dropoff=geo_pb2.LatLng(lat_deg=DROPOFF[0], lng_deg=DROPOFF[1]),
            fare=money_pb2.Money(currency_code="USD", amount_minor=1234), surge_multiplier=1.2)


class FakeDispatch:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.started: list[str] = []

    async def start_matching(self, ride: rides_pb2.Ride) -> None:
        if self.fail:
            raise ConnectionError("dispatch is down")
        self.started.append(ride.ride_id)


class FakeLocation:
    """TrackDriver: each call takes the next script from ``scripts`` (a list of positions to send, or an exception to
    raise after them); with none left it waits for positions pushed with :meth:`push`."""

    def __init__(self) -> None:
        self.scripts: list[tuple[list[rides_pb2.DriverPosition], Exception | None]] = []
        self.calls: list[str] = []
        self.queue: asyncio.Queue[rides_pb2.DriverPosition] = asyncio.Queue()
        self.open = 0

    def push(self, position: rides_pb2.DriverPosition) -> None:
        self.queue.put_nowait(position)

    async def track(self, driver_id: str):
        self.calls.append(driver_id)
        self.open += 1
        try:
            if self.scripts:
                positions, error = self.scripts.pop(0)
                for position in positions:
                    yield position
                if error is not None:
                    raise error
                return
            while True:
                yield await self.queue.get()
        finally:
            self.open -= 1


def position(driver_id: str, n: int) -> rides_pb2.DriverPosition:
    return rides_pb2.DriverPosition(driver_id=driver_id, point=geo_pb2.LatLng(lat_deg=37.77, lng_deg=-122.42),
                                    status=rides_pb2.DRIVER_STATUS_BUSY, sent_at_unix_ms=n)


def make_trips(store: RideStore | None = None, dispatch: FakeDispatch | None = None, **settings) -> Trips:
    settings = {"track_retry_initial_ms": 1, "track_retry_max_ms": 5, **settings}
    return Trips(TripsSettings(**settings), store or RideStore(None), FakePricing(), dispatch or FakeDispatch(),
                 FakeLocation())


async def request(trips: Trips, rider: str, n: int = 1, request_id: str | None = None):
    return await trips.request(rider, f"q-{rider}-{n}", request_id or f"req-{rider}-{n}")


async def eventually(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


# ----------------------------------------------------------------------------- the state machine table


EXPECTED = {  # (state, event) → new state, "repeat" (the ride returned) or None (refused)
    (REQUESTED, Event.ASSIGN): MATCHED, (REQUESTED, Event.DEPART): None, (REQUESTED, Event.PICK_UP): None,
    (REQUESTED, Event.DROP_OFF): None, (REQUESTED, Event.CANCEL): CANCELLED, (REQUESTED, Event.RELEASE): CANCELLED,
    (MATCHED, Event.ASSIGN): "repeat", (MATCHED, Event.DEPART): EN_ROUTE, (MATCHED, Event.PICK_UP): None,
    (MATCHED, Event.DROP_OFF): None, (MATCHED, Event.CANCEL): CANCELLED, (MATCHED, Event.RELEASE): "repeat",
    (EN_ROUTE, Event.ASSIGN): "repeat", (EN_ROUTE, Event.DEPART): "repeat", (EN_ROUTE, Event.PICK_UP): IN_PROGRESS,
    (EN_ROUTE, Event.DROP_OFF): None, (EN_ROUTE, Event.CANCEL): CANCELLED, (EN_ROUTE, Event.RELEASE): "repeat",
    (IN_PROGRESS, Event.ASSIGN): "repeat", (IN_PROGRESS, Event.DEPART): None,
    (IN_PROGRESS, Event.PICK_UP): "repeat", (IN_PROGRESS, Event.DROP_OFF): COMPLETED,
    (IN_PROGRESS, Event.CANCEL): None, (IN_PROGRESS, Event.RELEASE): "repeat",
    (COMPLETED, Event.ASSIGN): "repeat", (COMPLETED, Event.DEPART): None, (COMPLETED, Event.PICK_UP): None,
    (COMPLETED, Event.DROP_OFF): "repeat", (COMPLETED, Event.CANCEL): None, (COMPLETED, Event.RELEASE): "repeat",
    (CANCELLED, Event.ASSIGN): None, (CANCELLED, Event.DEPART): None, (CANCELLED, Event.PICK_UP): None,
    (CANCELLED, Event.DROP_OFF): None, (CANCELLED, Event.CANCEL): "repeat", (CANCELLED, Event.RELEASE): "repeat",
}


def test_the_table_covers_every_state_and_event():
    assert set(EXPECTED) == {(state, event) for state in STATES for event in Event}


@pytest.mark.parametrize(("state", "event"), sorted(EXPECTED, key=lambda k: (k[0], k[1].value)))
def test_state_machine(state, event):
    expected = EXPECTED[(state, event)]
    if expected is None:
        with pytest.raises(TransitionRefused) as refused:
            decide(state, event)
        assert event.name in str(refused.value) and machine.state_name(state) in str(refused.value)
    elif expected == "repeat":
        assert decide(state, event) is None
    else:
        assert decide(state, event) == expected


# ----------------------------------------------------------------------------- requests


async def test_request_is_idempotent_and_one_open_ride_per_rider():
    dispatch = FakeDispatch()
    trips = make_trips(dispatch=dispatch)
    first = await request(trips, "r1")
    assert first.state == REQUESTED and first.ride_id == ride_id_for(trips.id_key, "r1", "req-r1-1")
    assert len(first.ride_id) == len("ride-") + 26
    assert (first.fare_amount_minor, first.surge_multiplier, first.pickup_lat_deg) == (1234, 1.2, PICKUP[0])
    again = await request(trips, "r1")
    assert again == first
    concurrent = await asyncio.gather(*(request(trips, "r1") for _ in range(5)))
    assert all(ride == first for ride in concurrent)
    assert dispatch.started == [first.ride_id]
    with pytest.raises(FailedPrecondition, match="open ride"):
        await request(trips, "r1", n=2)
    await trips.cancel(first.ride_id, "r1")
    second = await request(trips, "r1", n=2)
    assert second.ride_id != first.ride_id
    assert (await request(trips, "r1")).state == CANCELLED  # the old request's retry: its ride, as it is now


async def test_pricing_errors_pass_through_and_store_nothing():
    trips = make_trips()
    with pytest.raises(NotFound):
        await trips.request("r1", "q-missing", "a")
    with pytest.raises(PermissionDenied):
        await trips.request("r1", "q-r2-1", "b")
    await trips.request("r1", "q-r1-1", "c")
    await trips.cancel(ride_id_for(trips.id_key, "r1", "c"), "r1")
    with pytest.raises(FailedPrecondition, match="another ride"):
        await trips.request("r1", "q-r1-1", "d")
    assert trips.store.open_count == 0


async def test_a_failed_start_matching_still_answers_the_ride():
    trips = make_trips(dispatch=FakeDispatch(fail=True))
    ride = await request(trips, "r1")
    assert ride.state == REQUESTED
    assert [r.ride_id for r in trips.open_rides(10)] == [ride.ride_id]


async def test_open_rides_oldest_first_and_release():
    trips = make_trips()
    rides = [await request(trips, f"r{i}") for i in range(5)]
    assert [r.ride_id for r in trips.open_rides(3)] == [r.ride_id for r in rides[:3]]
    released = await trips.release(rides[0].ride_id)
    assert (released.state, released.cancel_reason) == (CANCELLED, rides_pb2.CANCEL_REASON_NO_DRIVER)
    matched = await trips.assign(rides[1].ride_id, "d1")
    assert await trips.release(rides[1].ride_id) == matched  # returned unchanged
    assert [r.ride_id for r in trips.open_rides(10)] == [r.ride_id for r in rides[2:]]
    with pytest.raises(NotFound):
        await trips.release("ride-nope")


# ----------------------------------------------------------------------------- the atomic accept


async def test_twenty_concurrent_assigns_one_wins_the_rest_aborted(tmp_path):
    trips = make_trips(RideStore(tmp_path / "rides.sqlite"))
    ride = await request(trips, "r1")
    results = await asyncio.gather(*(trips.assign(ride.ride_id, f"d{i}") for i in range(20)), return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1 and won[0].state == MATCHED
    assert all(isinstance(r, Aborted) and "another driver" in str(r) for r in results if r not in won)
    assert all("d" + str(i) not in str(r) for i, r in enumerate(results) if isinstance(r, Aborted))
    assert await trips.assign(ride.ride_id, won[0].driver_id) == won[0]  # the winner's retry
    await trips.close()
    reopened = RideStore(tmp_path / "rides.sqlite")
    assert reopened.cached(ride.ride_id) == won[0]
    await reopened.close()


async def test_one_driver_accepting_two_rides_at_once_gets_one(tmp_path):
    trips = make_trips(RideStore(tmp_path / "rides.sqlite"))
    a, b = await request(trips, "r1"), await request(trips, "r2")
    results = await asyncio.gather(trips.assign(a.ride_id, "d1"), trips.assign(b.ride_id, "d1"),
                                   return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    refused = [r for r in results if isinstance(r, BaseException)]
    assert isinstance(refused[0], FailedPrecondition) and "another active ride" in str(refused[0])
    held = trips.driver_ride("d1")
    other = b if held.ride_id == a.ride_id else a
    assert trips.store.cached(other.ride_id).state == REQUESTED
    # Once the first trip is over, the driver may take the other.
    for event in (Event.DEPART, Event.PICK_UP, Event.DROP_OFF):
        await trips.update(held.ride_id, "d1", event)
    assert (await trips.assign(other.ride_id, "d1")).state == MATCHED
    await trips.close()


async def test_assign_refusals():
    trips = make_trips()
    ride = await request(trips, "r1")
    await trips.cancel(ride.ride_id, "r1")
    with pytest.raises(FailedPrecondition, match="cancelled"):
        await trips.assign(ride.ride_id, "d1")
    with pytest.raises(NotFound):
        await trips.assign("ride-unknown", "d1")


async def test_a_failed_write_changes_nothing_and_releases_the_driver(tmp_path, monkeypatch):
    store = RideStore(tmp_path / "rides.sqlite")
    trips = make_trips(store)
    ride = await request(trips, "r1")

    def broken(rows):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_commit", broken)
    with pytest.raises(StoreUnavailable):
        await trips.assign(ride.ride_id, "d1")
    assert store.cached(ride.ride_id).state == REQUESTED
    assert store.active_ride_of_driver("d1") is None
    monkeypatch.undo()
    assert (await trips.assign(ride.ride_id, "d1")).driver_id == "d1"
    await trips.close()


# ----------------------------------------------------------------------------- trip events


async def test_trip_events_and_retries():
    trips = make_trips()
    ride = await request(trips, "r1")
    with pytest.raises(PermissionDenied):
        await trips.update(ride.ride_id, "d1", Event.DEPART)  # no driver yet
    await trips.assign(ride.ride_id, "d1")
    with pytest.raises(PermissionDenied):
        await trips.update(ride.ride_id, "d2", Event.DEPART)
    with pytest.raises(FailedPrecondition, match="PICK_UP.*MATCHED"):
        await trips.update(ride.ride_id, "d1", Event.PICK_UP)
    departed = await trips.update(ride.ride_id, "d1", Event.DEPART)
    assert departed.state == EN_ROUTE
    assert await trips.update(ride.ride_id, "d1", Event.DEPART) == departed  # a retry
    assert (await trips.update(ride.ride_id, "d1", Event.PICK_UP)).state == IN_PROGRESS
    with pytest.raises(FailedPrecondition):
        await trips.cancel(ride.ride_id, "r1")
    done = await trips.update(ride.ride_id, "d1", Event.DROP_OFF)
    assert done.state == COMPLETED and done.matched_at_unix_ms > 0
    with pytest.raises(NotFound):
        trips.driver_ride("d1")
    with pytest.raises(PermissionDenied):
        await trips.cancel(ride.ride_id, "r2")


# ----------------------------------------------------------------------------- durability and schema invariants


async def test_a_reopened_store_keeps_every_acknowledged_ride(tmp_path):
    path = tmp_path / "rides.sqlite"
    trips = make_trips(RideStore(path, terminal_cache_size=1))
    rides = [await request(trips, f"r{i}") for i in range(6)]
    await trips.assign(rides[0].ride_id, "d0")
    await trips.assign(rides[1].ride_id, "d1")
    await trips.update(rides[1].ride_id, "d1", Event.DEPART)
    await trips.cancel(rides[2].ride_id, "r2")
    await trips.release(rides[3].ride_id)
    await trips.assign(rides[4].ride_id, "d4")
    for event in (Event.DEPART, Event.PICK_UP, Event.DROP_OFF):
        await trips.update(rides[4].ride_id, "d4", event)
    before = {r.ride_id: await trips.get(r.ride_id) for r in rides}
    await trips.close()

    store = RideStore(path, terminal_cache_size=10)
    after = make_trips(store)
    assert {r.ride_id: await after.get(r.ride_id) for r in rides} == before
    assert store.open_count == 3  # MATCHED, EN_ROUTE and the REQUESTED one
    assert after.driver_ride("d0").ride_id == rides[0].ride_id
    assert [r.ride_id for r in after.open_rides(10)] == [rides[5].ride_id]
    with pytest.raises(FailedPrecondition):
        await request(after, "r0", n=2)  # r0's ride is still open after the restart
    with pytest.raises(FailedPrecondition):
        await after.assign(rides[5].ride_id, "d1")  # d1 still holds its EN_ROUTE ride
    await after.close()

    # The schema refuses what the store would never write.
    db = sqlite3.connect(path)
    active = before[rides[0].ride_id]
    second_for_driver = replace(active, ride_id="ride-x", rider_id="rx", client_request_id="x")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO rides VALUES (" + ",".join("?" * 17) + ")", astuple(second_for_driver))
    second_for_rider = replace(before[rides[5].ride_id], ride_id="ride-y", client_request_id="y")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO rides VALUES (" + ",".join("?" * 17) + ")", astuple(second_for_rider))
    same_request = replace(before[rides[2].ride_id], ride_id="ride-z")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO rides VALUES (" + ",".join("?" * 17) + ")", astuple(same_request))
    matched_without_driver = replace(active, ride_id="ride-w", rider_id="rw", client_request_id="w", driver_id="")
    with pytest.raises(sqlite3.IntegrityError):
        db.execute("INSERT INTO rides VALUES (" + ",".join("?" * 17) + ")", astuple(matched_without_driver))
    # A finished ride does not hold its driver or rider.
    db.execute("INSERT INTO rides VALUES (" + ",".join("?" * 17) + ")",
               astuple(replace(second_for_driver, state=COMPLETED)))
    db.close()


# ----------------------------------------------------------------------------- WatchRide


async def test_watch_sends_the_ride_every_change_and_positions_then_ends():
    trips = make_trips()
    location: FakeLocation = trips._location
    ride = await request(trips, "r1")
    updates: list = []
    done = asyncio.Event()

    async def watch():
        async with contextlib.aclosing(trips.watch(ride.ride_id, "r1")) as stream:
            async for update in stream:
                updates.append(update)
        done.set()

    task = asyncio.create_task(watch())
    await eventually(lambda: len(updates) == 1, "the first update")
    assert updates[0] == ride
    await trips.assign(ride.ride_id, "d1")
    await eventually(lambda: location.calls == ["d1"], "tracking to start")
    location.push(position("d1", 1))
    await eventually(lambda: len(updates) == 3, "a position")
    await trips.update(ride.ride_id, "d1", Event.DEPART)
    await trips.update(ride.ride_id, "d1", Event.PICK_UP)
    await trips.update(ride.ride_id, "d1", Event.DROP_OFF)
    await asyncio.wait_for(done.wait(), WAIT_S)
    await task
    states = [u.state for u in updates if not isinstance(u, rides_pb2.DriverPosition)]
    assert states == [REQUESTED, MATCHED, EN_ROUTE, IN_PROGRESS, COMPLETED]
    assert [u.sent_at_unix_ms for u in updates if isinstance(u, rides_pb2.DriverPosition)] == [1]
    await eventually(lambda: location.open == 0 and not trips._feeds, "tracking to stop")


async def test_a_slow_watcher_gets_every_change_but_only_the_newest_position():
    trips = make_trips()
    location: FakeLocation = trips._location
    ride = await request(trips, "r1")
    stream = trips.watch(ride.ride_id, "r1")
    assert (await anext(stream)).state == REQUESTED
    await trips.assign(ride.ride_id, "d1")
    await eventually(lambda: location.calls == ["d1"], "tracking to start")
    for n in range(100):
        location.push(position("d1", n))
    await eventually(lambda: location.queue.empty(), "the positions to be read")
    await asyncio.sleep(0.01)
    await trips.update(ride.ride_id, "d1", Event.DEPART)
    got = [await asyncio.wait_for(anext(stream), WAIT_S) for _ in range(2)]
    assert got[0].state == MATCHED
    assert got[1].state == EN_ROUTE
    last = await asyncio.wait_for(anext(stream), WAIT_S)
    assert isinstance(last, rides_pb2.DriverPosition) and last.sent_at_unix_ms == 99
    await stream.aclose()


async def test_tracking_failures_are_retried_and_state_changes_keep_flowing():
    trips = make_trips()
    location: FakeLocation = trips._location
    location.scripts = [([position("d1", 1)], ConnectionError("location restarted")), ([], NotFound("offline"))]
    ride = await request(trips, "r1")
    await trips.assign(ride.ride_id, "d1")
    stream = trips.watch(ride.ride_id, "r1")
    assert (await anext(stream)).state == MATCHED
    assert (await asyncio.wait_for(anext(stream), WAIT_S)).sent_at_unix_ms == 1
    await eventually(lambda: len(location.calls) == 3, "two retries")
    location.push(position("d1", 2))
    assert (await asyncio.wait_for(anext(stream), WAIT_S)).sent_at_unix_ms == 2
    await trips.cancel(ride.ride_id, "r1")
    last = await asyncio.wait_for(anext(stream), WAIT_S)
    assert (last.state, last.cancel_reason) == (CANCELLED, rides_pb2.CANCEL_REASON_RIDER)
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_watch_refusals_and_shutdown():
    trips = make_trips(max_watchers=1)
    ride = await request(trips, "r1")
    with pytest.raises(PermissionDenied):
        await anext(trips.watch(ride.ride_id, "r2"))
    with pytest.raises(NotFound):
        await anext(trips.watch("ride-nope", "r1"))
    stream = trips.watch(ride.ride_id, "r1")
    await anext(stream)
    with pytest.raises(ResourceExhausted):
        await anext(trips.watch(ride.ride_id, "r1"))
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await trips.close()
    with pytest.raises(WatchEnded):
        await asyncio.wait_for(pending, WAIT_S)


# ----------------------------------------------------------------------------- over gRPC: status codes


@pytest.fixture
async def trips_stub(tmp_path):
    trips = make_trips(RideStore(tmp_path / "rides.sqlite"))
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])
    trips_pb2_grpc.add_TripServiceServicer_to_server(TripServicer(trips), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield trips, trips_pb2_grpc.TripServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await trips.close()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_grpc_status_codes(trips_stub):
    trips, stub = trips_stub
    code, details = await _code(stub.RequestRide(trips_pb2.RequestRideRequest(rider_id="r1", quote_id="q-r1-1"),
                                                 timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("client_request_id")
    ride = (await stub.RequestRide(trips_pb2.RequestRideRequest(rider_id="r1", quote_id="q-r1-1",
                                                                client_request_id="c1"), timeout=WAIT_S)).ride
    assert ride.state == rides_pb2.RIDE_STATE_REQUESTED and ride.fare.amount_minor == 1234
    code, _ = await _code(stub.RequestRide(trips_pb2.RequestRideRequest(rider_id="r1", quote_id="q-r1-2",
                                                                        client_request_id="c2"), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = await _code(stub.GetRide(trips_pb2.GetRideRequest(ride_id="ride-nope"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = await _code(stub.UpdateTrip(trips_pb2.UpdateTripRequest(ride_id=ride.ride_id, driver_id="d1"),
                                                timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("event")
    code, details = await _code(stub.ListOpenRides(trips_pb2.ListOpenRidesRequest(limit=0), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("limit")
    await stub.AssignDriver(trips_pb2.AssignDriverRequest(ride_id=ride.ride_id, driver_id="d1"), timeout=WAIT_S)
    code, _ = await _code(stub.AssignDriver(trips_pb2.AssignDriverRequest(ride_id=ride.ride_id, driver_id="d2"),
                                            timeout=WAIT_S))
    assert code == grpc.StatusCode.ABORTED
    code, _ = await _code(stub.CancelRide(trips_pb2.CancelRideRequest(ride_id=ride.ride_id, rider_id="r2"),
                                          timeout=WAIT_S))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    got = (await stub.GetDriverRide(trips_pb2.GetDriverRideRequest(driver_id="d1"), timeout=WAIT_S)).ride
    assert got.ride_id == ride.ride_id and got.state == rides_pb2.RIDE_STATE_MATCHED

    call = stub.WatchRide(trips_pb2.WatchRideRequest(ride_id=ride.ride_id, rider_id="r1"), timeout=WAIT_S)
    assert (await call.read()).ride.state == rides_pb2.RIDE_STATE_MATCHED
    await stub.CancelRide(trips_pb2.CancelRideRequest(ride_id=ride.ride_id, rider_id="r1"), timeout=WAIT_S)
    assert (await call.read()).ride.state == rides_pb2.RIDE_STATE_CANCELLED
    assert await call.read() is grpc.aio.EOF
    assert await call.code() == grpc.StatusCode.OK
