"""rides-dispatch (services/rides/dispatch): phases of offers with fake location and trip services, one ride at a time
per driver, withdrawals, the late accept, the recovery sweep, the feeds, and status codes over gRPC.

Phase timeouts are small (0.05 s) where a test waits for offers to lapse, and long where it must not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import grpc
import h3
import pytest
from prometheus_client import CollectorRegistry

from casemesh.common.v1 import geo_pb2, money_pb2
from casemesh.rides.v1 import dispatch_pb2, dispatch_pb2_grpc, location_pb2, rides_pb2
from casemesh.services.rides.dispatch.eta import SpeedModel
from casemesh.services.rides.dispatch.feeds import FeedEnded, OfferFeeds
from casemesh.services.rides.dispatch.matcher import CANCELLED, EXPIRED, WON_BY_ANOTHER, Matcher
from casemesh.services.rides.dispatch.service import DispatchServicer
from casemesh.services.rides.dispatch.settings import DispatchSettings
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


def north_of_pickup(metres: float) -> tuple[float, float]:
    return PICKUP[0] + metres / 111_195, PICKUP[1]


class FakeLocation:
    """FindNearbyDrivers over a dict of driver → (lat, lng): nearest first, within the radius, minus the excluded."""

    def __init__(self) -> None:
        self.drivers: dict[str, tuple[float, float]] = {}
        self.calls: list[dict] = []
        self.fail = False

    async def find(self, lat_deg, lng_deg, radius_m, limit, exclude):
        self.calls.append({"radius_m": radius_m, "limit": limit, "exclude": list(exclude)})
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("location is down")
        found = []
        for driver_id, (lat, lng) in self.drivers.items():
            distance = h3.great_circle_distance((lat_deg, lng_deg), (lat, lng), unit="m")
            if distance <= radius_m and driver_id not in exclude:
                found.append(location_pb2.NearbyDriver(position=rides_pb2.DriverPosition(
                    driver_id=driver_id, point=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng),
                    status=rides_pb2.DRIVER_STATUS_AVAILABLE), distance_m=distance))
        found.sort(key=lambda d: d.distance_m)
        return found[:limit]


class FakeTrips:
    """The trip service's rules for AssignDriver, GetRide, ReleaseRide and ListOpenRides, over a dict of rides."""

    def __init__(self) -> None:
        self.rides: dict[str, rides_pb2.Ride] = {}
        self.assign_delay_s = 0.0
        self.down = False

    def add(self, ride_id: str, requested_at_unix_ms: int | None = None) -> rides_pb2.Ride:
        ride = rides_pb2.Ride(
            ride_id=ride_id, rider_id=f"rider-{ride_id}", pickup=geo_pb2.LatLng(lat_deg=PICKUP[0], lng_deg=PICKUP[1]),
            dropoff=geo_pb2.LatLng(lat_deg=37.79, lng_deg=-122.40), state=rides_pb2.RIDE_STATE_REQUESTED,
            fare=money_pb2.Money(currency_code="USD", amount_minor=1500),
            requested_at_unix_ms=int(time.time() * 1000) if requested_at_unix_ms is None else requested_at_unix_ms)
        self.rides[ride_id] = ride
        return ride

    def _ride(self, ride_id: str) -> rides_pb2.Ride:
        if self.down:
            raise ConnectionError("trips is down")
        if ride_id not in self.rides:
            raise NotFound(ride_id)
        return self.rides[ride_id]

    async def assign(self, ride_id, driver_id):
        await asyncio.sleep(self.assign_delay_s)
        ride = self._ride(ride_id)
        if ride.state == rides_pb2.RIDE_STATE_CANCELLED:
            raise FailedPrecondition(f"ride {ride_id} was cancelled")
        if ride.state != rides_pb2.RIDE_STATE_REQUESTED:
            if ride.driver_id == driver_id:
                return ride
            raise Aborted(f"ride {ride_id} was accepted by another driver")
        if any(r.driver_id == driver_id and r.state == rides_pb2.RIDE_STATE_MATCHED for r in self.rides.values()):
            raise FailedPrecondition(f"driver {driver_id} holds another active ride")
        ride.state, ride.driver_id = rides_pb2.RIDE_STATE_MATCHED, driver_id
        return ride

    async def get(self, ride_id):
        return self._ride(ride_id)

    async def release(self, ride_id):
        ride = self._ride(ride_id)
        if ride.state == rides_pb2.RIDE_STATE_REQUESTED:
            ride.state, ride.cancel_reason = rides_pb2.RIDE_STATE_CANCELLED, rides_pb2.CANCEL_REASON_NO_DRIVER
        return ride

    async def open_rides(self, limit):
        if self.down:
            raise ConnectionError("trips is down")
        return [r for r in self.rides.values() if r.state == rides_pb2.RIDE_STATE_REQUESTED][:limit]

    def cancel(self, ride_id: str) -> None:
        ride = self.rides[ride_id]
        ride.state, ride.cancel_reason = rides_pb2.RIDE_STATE_CANCELLED, rides_pb2.CANCEL_REASON_RIDER


class Driver:
    """A driver's app: its feed, and every event received on it."""

    def __init__(self, matcher: Matcher, driver_id: str) -> None:
        self.driver_id = driver_id
        self.feed = matcher.feeds.open(driver_id)
        self.events: list[dispatch_pb2.ReceiveOffersResponse] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(FeedEnded):
            while True:
                self.events.append(await self.feed.next())

    def offers(self) -> list[dispatch_pb2.Offer]:
        return [e.offer for e in self.events if e.WhichOneof("event") == "offer"]

    def withdrawals(self) -> list[dispatch_pb2.OfferWithdrawal]:
        return [e.withdrawal for e in self.events if e.WhichOneof("event") == "withdrawal"]


_MADE: list[Matcher] = []


@pytest.fixture(autouse=True)
async def _close_matchers():
    """Every matcher a test made is closed after it (its tasks cancelled, its feeds ended)."""
    yield
    while _MADE:
        matcher = _MADE.pop()
        await matcher.close()
        matcher.feeds.end_all(grpc.StatusCode.UNAVAILABLE, "test over")
        await asyncio.sleep(0)


def make(offer_timeout_s: float = 30.0, **overrides) -> tuple[Matcher, FakeLocation, FakeTrips]:
    settings = DispatchSettings(**{"offer_timeout_s": offer_timeout_s, "no_driver_retry_s": 0.01, **overrides})
    location, trips = FakeLocation(), FakeTrips()
    matcher = Matcher(settings, location, trips, OfferFeeds(settings.max_feeds, settings.feed_queue_size))
    _MADE.append(matcher)
    return matcher, location, trips


def drivers_at(matcher: Matcher, location: FakeLocation, distances_m: list[float]) -> list[Driver]:
    """Drivers d0, d1, ... at these distances north of the pickup, each with a feed."""
    drivers = []
    for i, distance in enumerate(distances_m):
        location.drivers[f"d{i}"] = north_of_pickup(distance)
        drivers.append(Driver(matcher, f"d{i}"))
    return drivers


async def eventually(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def finished(matcher: Matcher, ride_id: str) -> None:
    await eventually(lambda: not matcher.matching(ride_id), f"ride {ride_id}'s matching to end")


# ----------------------------------------------------------------------------- phases


async def test_first_batch_declines_then_the_next_batch_is_offered_and_one_wins():
    matcher, location, trips = make()
    drivers = drivers_at(matcher, location, [100, 200, 300, 400, 500, 600, 700])
    ride = trips.add("ride-1")
    assert matcher.start(ride)
    await eventually(lambda: all(d.offers() for d in drivers[:3]), "the first batch's offers")
    assert not any(d.offers() for d in drivers[3:])  # the nearest three first
    first = drivers[0].offers()[0]
    assert (first.ride_id, first.phase, first.fare.amount_minor) == ("ride-1", 1, 1500)
    assert first.pickup_distance_m == pytest.approx(100, abs=1)
    assert first.pickup_eta_s == pytest.approx(100 * 1.3 / (30 / 3.6), rel=1e-3)
    assert first.offer_id.startswith("offer-") and len(first.offer_id) == 32
    assert first.expires_at_unix_ms - time.time() * 1000 == pytest.approx(30_000, abs=2_000)
    for driver in drivers[:3]:
        matcher.decline(driver.driver_id, driver.offers()[0].offer_id)
    # All declined: the next phase at once, not after the 30 s timeout.
    await eventually(lambda: all(d.offers() for d in drivers[3:6]), "the second batch's offers")
    assert not drivers[6].offers()
    assert {d.offers()[0].phase for d in drivers[3:6]} == {2}
    assert location.calls[1]["exclude"] == ["d0", "d1", "d2"] or set(location.calls[1]["exclude"]) == {"d0", "d1", "d2"}
    won = await matcher.accept("d4", drivers[4].offers()[0].offer_id)
    assert (won.state, won.driver_id) == (rides_pb2.RIDE_STATE_MATCHED, "d4")
    await finished(matcher, "ride-1")
    for loser in (drivers[3], drivers[5]):  # withdrawn, and a late accept is ABORTED
        await eventually(lambda d=loser: d.withdrawals(), "a withdrawal")
        assert loser.withdrawals()[0].reason == WON_BY_ANOTHER
        with pytest.raises(Aborted):
            await matcher.accept(loser.driver_id, loser.offers()[0].offer_id)
    assert await matcher.accept("d4", drivers[4].offers()[0].offer_id) == won  # the winner's retry
    with pytest.raises(FailedPrecondition):
        matcher.decline("d4", drivers[4].offers()[0].offer_id)
    with pytest.raises(FailedPrecondition, match="declined"):
        await matcher.accept("d0", drivers[0].offers()[0].offer_id)


async def test_lapsed_phases_expire_then_the_ride_is_released():
    matcher, location, trips = make(offer_timeout_s=0.05, max_phases=2)
    drivers = drivers_at(matcher, location, [100, 200, 300, 400, 500, 600, 700])
    matcher.start(trips.add("ride-1"))
    await finished(matcher, "ride-1")
    assert trips.rides["ride-1"].state == rides_pb2.RIDE_STATE_CANCELLED
    assert trips.rides["ride-1"].cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER
    assert [len(d.offers()) for d in drivers] == [1, 1, 1, 1, 1, 1, 0]
    for driver in drivers[:6]:
        await eventually(lambda d=driver: d.withdrawals(), "the lapsed offer's withdrawal")
        assert driver.withdrawals()[0].reason == EXPIRED
    with pytest.raises(FailedPrecondition, match="expired"):
        await matcher.accept("d0", drivers[0].offers()[0].offer_id)


async def test_the_radius_doubles_when_nobody_is_found_and_offers_go_to_drivers_with_a_feed():
    matcher, location, trips = make()
    location.drivers["feedless"] = north_of_pickup(50)  # no ReceiveOffers open: never offered
    [far] = drivers_at(matcher, location, [12_000])
    matcher.start(trips.add("ride-1"))
    await eventually(lambda: far.offers(), "the far driver's offer")
    assert [c["radius_m"] for c in location.calls] == [5_000, 10_000, 20_000]
    await matcher.accept("d0", far.offers()[0].offer_id)
    await finished(matcher, "ride-1")


async def test_nobody_at_all_retries_until_max_match_s_then_releases():
    matcher, location, trips = make(max_match_s=0.2)
    started = time.monotonic()
    matcher.start(trips.add("ride-1"))
    await finished(matcher, "ride-1")
    assert time.monotonic() - started >= 0.15
    assert trips.rides["ride-1"].cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER
    assert len(location.calls) > 3  # searched again and again


async def test_a_failing_location_service_is_retried():
    matcher, location, trips = make()
    location.fail = True
    [driver] = drivers_at(matcher, location, [100])
    matcher.start(trips.add("ride-1"))
    await eventually(lambda: len(location.calls) >= 3, "retries")
    location.fail = False
    await eventually(lambda: driver.offers(), "the offer once the search works")


# ----------------------------------------------------------------------------- one ride at a time per driver


async def test_a_driver_is_offered_one_ride_at_a_time():
    matcher, location, trips = make(max_match_s=30)
    [driver] = drivers_at(matcher, location, [100])
    matcher.start(trips.add("ride-a"))
    await eventually(lambda: driver.offers(), "the first offer")
    matcher.start(trips.add("ride-b"))
    await eventually(lambda: len([c for c in location.calls if c["radius_m"] == 20_000]) >= 2, "ride b's searches")
    assert len(driver.offers()) == 1
    assert matcher.outstanding_offer("d0").ride_id == "ride-a"
    matcher.decline("d0", driver.offers()[0].offer_id)
    await eventually(lambda: len(driver.offers()) == 2, "ride b's offer once the first is declined")
    assert driver.offers()[1].ride_id == "ride-b"
    await matcher.accept("d0", driver.offers()[1].offer_id)
    assert trips.rides["ride-b"].driver_id == "d0"
    await matcher.close()


async def test_many_drivers_accepting_at_once_one_wins_the_rest_get_aborted():
    matcher, location, trips = make(offer_batch_size=10)
    trips.assign_delay_s = 0.01
    drivers = drivers_at(matcher, location, [100 * (i + 1) for i in range(10)])
    matcher.start(trips.add("ride-1"))
    await eventually(lambda: all(d.offers() for d in drivers), "ten offers")
    results = await asyncio.gather(*(matcher.accept(d.driver_id, d.offers()[0].offer_id) for d in drivers),
                                   return_exceptions=True)
    winners = [r for r in results if isinstance(r, rides_pb2.Ride)]
    assert len(winners) == 1
    assert all(isinstance(r, Aborted) for r in results if not isinstance(r, rides_pb2.Ride))
    await finished(matcher, "ride-1")
    assert matcher.outstanding_offer("d0") is None


# ----------------------------------------------------------------------------- cancel, answers, recovery


async def test_a_cancelled_ride_ends_its_matching_and_its_offers_are_withdrawn():
    matcher, location, trips = make()
    drivers = drivers_at(matcher, location, [100, 200, 300])
    matcher.start(trips.add("ride-1"))
    await eventually(lambda: all(d.offers() for d in drivers), "the offers")
    trips.cancel("ride-1")
    with pytest.raises(FailedPrecondition, match="cancelled"):
        await matcher.accept("d0", drivers[0].offers()[0].offer_id)
    matcher.decline("d1", drivers[1].offers()[0].offer_id)
    await finished(matcher, "ride-1")  # every offer answered → the next phase checks the ride: cancelled
    await eventually(lambda: drivers[2].withdrawals(), "the withdrawal")
    assert drivers[2].withdrawals()[0].reason == CANCELLED


async def test_answer_refusals():
    matcher, location, trips = make()
    [driver] = drivers_at(matcher, location, [100])
    matcher.start(trips.add("ride-1"))
    await eventually(lambda: driver.offers(), "the offer")
    offer_id = driver.offers()[0].offer_id
    with pytest.raises(NotFound):
        await matcher.accept("d0", "offer-unknown")
    with pytest.raises(PermissionDenied):
        await matcher.accept("d9", offer_id)
    with pytest.raises(PermissionDenied):
        matcher.decline("d9", offer_id)
    matcher.decline("d0", offer_id)
    matcher.decline("d0", offer_id)  # again: OK
    await matcher.close()


async def test_the_sweep_recovers_rides_it_was_not_told_about():
    matcher, location, trips = make()
    [driver] = drivers_at(matcher, location, [100])
    known = trips.add("ride-known")
    matcher.start(known)
    trips.add("ride-lost", requested_at_unix_ms=int(time.time() * 1000) - 3_600_000)  # an hour old: one phase
    trips.down = True
    assert await matcher.sweep() == 0  # the trip service down: counted, not raised
    trips.down = False
    assert await matcher.sweep() == 1
    assert matcher.matching("ride-lost")
    assert await matcher.sweep() == 0
    await eventually(lambda: driver.offers(), "an offer")
    await matcher.close()


async def test_start_matching_is_bounded():
    matcher, location, trips = make(max_rides_matching=2)
    assert matcher.start(trips.add("a")) and matcher.start(trips.add("b"))
    assert not matcher.start(trips.rides["a"])  # already matching: nothing done
    with pytest.raises(ResourceExhausted):
        matcher.start(trips.add("c"))
    await matcher.close()


# ----------------------------------------------------------------------------- feeds and the ETA


async def test_feeds_takeover_limit_and_bounded_queue():
    feeds = OfferFeeds(max_feeds=2, capacity=2)
    first = feeds.open("d1")
    feeds.open("d2")
    with pytest.raises(ResourceExhausted):
        feeds.open("d3")
    second = feeds.open("d1")  # a takeover replaces, it does not count
    with pytest.raises(FeedEnded) as ended:
        await first.next()
    assert ended.value.code == grpc.StatusCode.ABORTED
    feeds.close(first)  # the old stream's cleanup leaves the new feed
    assert feeds.has("d1")
    event = dispatch_pb2.ReceiveOffersResponse(withdrawal=dispatch_pb2.OfferWithdrawal(offer_id="o"))
    assert feeds.send("d1", event) and feeds.send("d1", event)
    assert not feeds.send("d1", event) and not feeds.has("d1")  # full: the app stopped reading
    assert await second.next() == event
    assert not feeds.send("nobody", event)


def test_speed_model():
    model = SpeedModel(city_speed_kmh=36, detour_factor=1.5)
    assert model.eta_s(1_000) == pytest.approx(150)
    a, b = geo_pb2.LatLng(lat_deg=37.77, lng_deg=-122.42), geo_pb2.LatLng(lat_deg=37.78, lng_deg=-122.42)
    assert model.distance_m(a, b) == pytest.approx(1_112, abs=2)
    with pytest.raises(ValueError):
        SpeedModel(0, 1.3)


# ----------------------------------------------------------------------------- over gRPC


@pytest.fixture
async def dispatch_stub():
    matcher, location, trips = make()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])
    dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(DispatchServicer(matcher), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield matcher, location, trips, dispatch_pb2_grpc.DispatchServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def test_grpc_status_codes_and_a_feed(dispatch_stub):
    matcher, location, trips, stub = dispatch_stub
    with pytest.raises(grpc.aio.AioRpcError) as no_ride:
        await stub.StartMatching(dispatch_pb2.StartMatchingRequest(), timeout=WAIT_S)
    assert no_ride.value.code() == grpc.StatusCode.INVALID_ARGUMENT and no_ride.value.details().startswith("ride:")
    bad = trips.add("ride-1")
    bad.ClearField("pickup")
    with pytest.raises(grpc.aio.AioRpcError) as no_pickup:
        await stub.StartMatching(dispatch_pb2.StartMatchingRequest(ride=bad), timeout=WAIT_S)
    assert no_pickup.value.details().startswith("ride.pickup")
    with pytest.raises(grpc.aio.AioRpcError) as bad_driver:
        await stub.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="bad id", offer_id="o"), timeout=WAIT_S)
    assert bad_driver.value.details().startswith("driver_id")

    location.drivers["d1"] = north_of_pickup(100)
    feed = stub.ReceiveOffers(dispatch_pb2.ReceiveOffersRequest(driver_id="d1"), timeout=WAIT_S)
    await eventually(lambda: matcher.feeds.has("d1"), "the feed")
    await stub.StartMatching(dispatch_pb2.StartMatchingRequest(ride=trips.add("ride-2")), timeout=WAIT_S)
    offer = (await feed.read()).offer
    assert offer.ride_id == "ride-2"
    with pytest.raises(grpc.aio.AioRpcError) as other:
        await stub.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="d2", offer_id=offer.offer_id), timeout=WAIT_S)
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # A reconnect takes over (the old stream ends ABORTED) and gets the outstanding offer again.
    again = stub.ReceiveOffers(dispatch_pb2.ReceiveOffersRequest(driver_id="d1"), timeout=WAIT_S)
    assert (await again.read()).offer.offer_id == offer.offer_id
    with pytest.raises(grpc.aio.AioRpcError) as taken_over:
        await feed.read()
    assert taken_over.value.code() == grpc.StatusCode.ABORTED
    won = await stub.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="d1", offer_id=offer.offer_id),
                                 timeout=WAIT_S)
    assert won.ride.driver_id == "d1"
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.DeclineOffer(dispatch_pb2.DeclineOfferRequest(driver_id="d1", offer_id="offer-x"), timeout=WAIT_S)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    again.cancel()
