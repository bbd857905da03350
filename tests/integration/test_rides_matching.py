"""Ride sharing through real gRPC: matching in phases, the atomic accept, the trip state machine, tracking, bad input.

CASE-STUDY.md points 3, 5 and 8 for ride sharing (seed 003 "Uber Ride Matching"): offers go to the nearest
available drivers in batches; however many of them accept at once, exactly one wins the ride and the others get
ABORTED (the late accept) or find their offer withdrawn; no driver holds two rides; the rider's WatchRide follows
the ride from REQUESTED to COMPLETED with its driver's positions. One mesh (four services, in this process) serves
every test of the module; each test uses drivers and riders of its own, placed apart from the others' so that no
test's drivers are offered another test's rides.
"""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
import pytest_asyncio

from casemesh.rides.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    location_pb2,
    location_pb2_grpc,
    pricing_pb2,
    pricing_pb2_grpc,
    rides_pb2,
    trips_pb2,
    trips_pb2_grpc,
)

from .rides import Driver, Ledger, always, eventually, near, online, point, quote_and_request, rides_mesh

pytestmark = pytest.mark.asyncio(loop_scope="module")

SETTINGS = {"rides-dispatch": {"offer_timeout_s": 1.0, "sweep_interval_s": 0.5, "offer_batch_size": 3,
                               "search_radius_m": 1_500, "max_radius_m": 3_000, "max_match_s": 4.0}}
#: Each test's drivers and riders sit around a spot of their own, 4 km from the next test's and from the centre (beyond
#: max_radius_m), inside the service area (the centre has 3.5 km of it to the north, 4 km to the east).
_AREAS = itertools.count()


def area() -> tuple[float, float]:
    """Metres north and east of the centre for the next test: a fresh spot of the city (six of them)."""
    n = next(_AREAS)
    assert n < 6, "more tests than spots: add spots"
    return (-8_000 + 4_000 * (n % 3), -8_000 + 4_000 * (n // 3))


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    async with rides_mesh(tmp_path_factory.mktemp("rides"), SETTINGS) as running:
        yield running


async def _drivers(mesh, prefix: str, origin: tuple[float, float], distances_m, ledger: Ledger, **kwargs) -> list[Driver]:
    drivers = [Driver(mesh, f"{prefix}-{i}", near(origin[0] + d, origin[1]), ledger, **kwargs)
               for i, d in enumerate(distances_m)]
    for d in drivers:
        d.start()
    await online(mesh, drivers)
    await asyncio.sleep(0.3)  # the feeds are registered at dispatch
    return drivers


async def _watch_until(mesh, ride: rides_pb2.Ride, states: set[int]) -> list[trips_pb2.WatchRideResponse]:
    trips = trips_pb2_grpc.TripServiceStub(mesh.anonymous_channel("rides-trips"))
    updates = []
    async for update in trips.WatchRide(trips_pb2.WatchRideRequest(ride_id=ride.ride_id, rider_id=ride.rider_id),
                                        timeout=60):
        updates.append(update)
        if update.HasField("ride") and update.ride.state in states:
            break
    return updates


async def test_ten_drivers_accept_one_ride_at_once_and_exactly_one_wins(mesh):
    origin = area()
    ledger = Ledger()
    drivers = await _drivers(mesh, "rush", origin, [50 * i for i in range(10)], ledger, drive=False)
    settings_batch = 3
    try:
        ride = await quote_and_request(mesh, "rush-rider", near(*origin), near(origin[0] + 2_000, origin[1]))
        assert ride.state == rides_pb2.RIDE_STATE_REQUESTED
        await eventually(lambda: sum(d.outcomes.get("OK", 0) for d in drivers) == 1, "one driver to win the ride")
        await eventually(lambda: sum(sum(d.outcomes.values()) for d in drivers) == settings_batch,
                         "every driver offered the ride to have an answer")
        winners = [d for d in drivers if d.outcomes.get("OK")]
        losers = {code for d in drivers for code, n in d.outcomes.items() if code != "OK"}
        assert len(winners) == 1 and losers <= {"ABORTED", "FAILED_PRECONDITION"}, [d.outcomes for d in drivers]
        assert all(o.phase == 1 for d in drivers for o in d.offers)
        offered = {d.driver_id for d in drivers if d.offers}
        assert offered == {f"rush-{i}" for i in range(settings_batch)}, "the nearest three are offered the ride"
        stored = (await trips_pb2_grpc.TripServiceStub(mesh.anonymous_channel("rides-trips")).GetRide(
            trips_pb2.GetRideRequest(ride_id=ride.ride_id), timeout=10)).ride
        assert stored.state == rides_pb2.RIDE_STATE_MATCHED and stored.driver_id == winners[0].driver_id
        assert not ledger.violations
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))


async def test_concurrent_rides_and_accepts_never_give_a_ride_two_drivers_or_a_driver_two_rides(mesh):
    origin = area()
    ledger = Ledger()
    drivers = await _drivers(mesh, "crowd", origin, [30 * i for i in range(12)], ledger, trip_s=0.2)
    try:
        rides = await asyncio.gather(*(quote_and_request(mesh, f"crowd-rider-{i}", near(origin[0] + 20 * i, origin[1]),
                                                         near(origin[0] + 1_500, origin[1] + 500)) for i in range(16)))
        trips = trips_pb2_grpc.TripServiceStub(mesh.anonymous_channel("rides-trips"))

        async def settled() -> list[rides_pb2.Ride]:
            return [(await trips.GetRide(trips_pb2.GetRideRequest(ride_id=r.ride_id), timeout=10)).ride for r in rides]

        terminal = {rides_pb2.RIDE_STATE_COMPLETED, rides_pb2.RIDE_STATE_CANCELLED}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while not all(r.state in terminal for r in await settled()):
            assert loop.time() < deadline, [rides_pb2.RideState.Name(r.state) for r in await settled()]
            await asyncio.sleep(0.2)
        final = await settled()
        assert not ledger.violations, ledger.violations
        completed = [r for r in final if r.state == rides_pb2.RIDE_STATE_COMPLETED]
        assert len(completed) >= 8, [rides_pb2.RideState.Name(r.state) for r in final]
        for r in completed:
            assert ledger.winner[r.ride_id] == r.driver_id
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))


async def test_declined_then_ignored_offers_move_the_ride_to_the_next_batch(mesh):
    origin = area()
    ledger = Ledger()
    nearest = await _drivers(mesh, "shy", origin, [10, 20, 30], ledger, policy=always("decline"))
    ignoring = await _drivers(mesh, "deaf", origin, [40, 50, 60], ledger, policy=always("ignore"))
    willing = await _drivers(mesh, "keen", origin, [400], ledger, drive=False)
    try:
        ride = await quote_and_request(mesh, "patient-rider", near(*origin), near(origin[0] + 1_000, origin[1]))
        updates = await _watch_until(mesh, ride, {rides_pb2.RIDE_STATE_MATCHED, rides_pb2.RIDE_STATE_CANCELLED})
        matched = updates[-1].ride
        assert matched.state == rides_pb2.RIDE_STATE_MATCHED and matched.driver_id == "keen-0", matched
        assert [o.phase for o in willing[0].offers] == [3]
        assert all(o.phase == 1 for d in nearest for o in d.offers) and all(d.offers for d in nearest)
        assert all(o.phase == 2 for d in ignoring for o in d.offers) and all(d.offers for d in ignoring)
        # The ignored offers lapsed after offer_timeout_s: the match came at least that late.
        assert matched.matched_at_unix_ms - matched.requested_at_unix_ms >= 900
    finally:
        await asyncio.gather(*(d.stop() for d in nearest + ignoring + willing))


async def test_a_ride_no_driver_accepts_is_cancelled_no_driver(mesh):
    origin = area()
    ledger = Ledger()
    drivers = await _drivers(mesh, "busy", origin, [100], ledger, policy=always("decline"))
    try:
        ride = await quote_and_request(mesh, "unlucky-rider", near(*origin), near(origin[0] + 1_000, origin[1]))
        updates = await _watch_until(mesh, ride, {rides_pb2.RIDE_STATE_CANCELLED, rides_pb2.RIDE_STATE_MATCHED})
        assert updates[-1].ride.state == rides_pb2.RIDE_STATE_CANCELLED
        assert updates[-1].ride.cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))


async def test_the_rider_watches_the_whole_trip_with_the_drivers_positions(mesh):
    origin = area()
    ledger = Ledger()
    drivers = await _drivers(mesh, "steady", origin, [200], ledger, trip_s=1.5, ping_s=0.2)
    try:
        ride = await quote_and_request(mesh, "watching-rider", near(*origin), near(origin[0] + 1_000, origin[1]))
        updates = await _watch_until(mesh, ride, {rides_pb2.RIDE_STATE_COMPLETED, rides_pb2.RIDE_STATE_CANCELLED})
        states = [u.ride.state for u in updates if u.HasField("ride")]
        assert states == [rides_pb2.RIDE_STATE_REQUESTED, rides_pb2.RIDE_STATE_MATCHED, rides_pb2.RIDE_STATE_EN_ROUTE,
                          rides_pb2.RIDE_STATE_IN_PROGRESS, rides_pb2.RIDE_STATE_COMPLETED] or \
            states[0] != rides_pb2.RIDE_STATE_REQUESTED and states[-1] == rides_pb2.RIDE_STATE_COMPLETED, states
        positions = [u.driver_position for u in updates if u.HasField("driver_position")]
        assert positions and {p.driver_id for p in positions} == {"steady-0"}
        assert updates[-1].ride.fare.currency_code == "USD" and updates[-1].ride.fare.amount_minor >= 500
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))


async def test_a_late_accept_is_aborted_and_a_retried_accept_returns_the_ride(mesh):
    origin = area()
    ledger = Ledger()
    drivers = await _drivers(mesh, "late", origin, [10, 20], ledger, policy=always("ignore"))
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(mesh.anonymous_channel("rides-dispatch"))
    try:
        await quote_and_request(mesh, "late-rider", near(*origin), near(origin[0] + 1_000, origin[1]))
        await eventually(lambda: all(d.offers for d in drivers), "both drivers offered the ride")
        first, second = (d.offers[0] for d in drivers)
        won = await dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="late-0", offer_id=first.offer_id),
                                         timeout=10)
        assert won.ride.driver_id == "late-0"
        again = await dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="late-0", offer_id=first.offer_id),
                                           timeout=10)
        assert again.ride.ride_id == won.ride.ride_id and again.ride.driver_id == "late-0"
        with pytest.raises(grpc.aio.AioRpcError) as late:
            await dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="late-1", offer_id=second.offer_id),
                                       timeout=10)
        assert late.value.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.FAILED_PRECONDITION)
        with pytest.raises(grpc.aio.AioRpcError) as foreign:
            await dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="late-1", offer_id=first.offer_id),
                                       timeout=10)
        assert foreign.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await asyncio.gather(*(d.stop() for d in drivers))


async def test_bad_requests_are_invalid_argument_naming_the_field_and_change_nothing(mesh):
    pricing = pricing_pb2_grpc.PricingServiceStub(mesh.anonymous_channel("rides-pricing"))
    trips = trips_pb2_grpc.TripServiceStub(mesh.anonymous_channel("rides-trips"))
    location = location_pb2_grpc.LocationServiceStub(mesh.anonymous_channel("rides-location"))
    internal_location = location_pb2_grpc.LocationServiceStub(mesh.channel("rides-location"))  # the test identity
    dispatch = dispatch_pb2_grpc.DispatchServiceStub(mesh.anonymous_channel("rides-dispatch"))
    cases = [
        (pricing.GetQuote(pricing_pb2.GetQuoteRequest(rider_id="r", pickup=point(91, 0), dropoff=near(0))),
         "pickup.lat_deg"),
        (pricing.GetQuote(pricing_pb2.GetQuoteRequest(rider_id="r", pickup=near(0), dropoff=point(48.85, 2.35))),
         "dropoff"),
        (pricing.GetQuote(pricing_pb2.GetQuoteRequest(rider_id="bad id", pickup=near(0), dropoff=near(100))),
         "rider_id"),
        (trips.RequestRide(trips_pb2.RequestRideRequest(rider_id="r", quote_id="", client_request_id="c")), "quote_id"),
        (trips.UpdateTrip(trips_pb2.UpdateTripRequest(ride_id="x", driver_id="d")), "event"),
        (internal_location.FindNearbyDrivers(location_pb2.FindNearbyDriversRequest(point=near(0), radius_m=0, limit=3)),
         "radius_m"),
        (location.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id="")), "driver_id"),
        (dispatch.AcceptOffer(dispatch_pb2.AcceptOfferRequest(driver_id="d", offer_id="no/such")), "offer_id"),
    ]
    for call, field in cases:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await call
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, raised.value)
        assert raised.value.details().startswith(f"{field}:"), (field, raised.value.details())

    # A position outside the service area ends the driver's stream INVALID_ARGUMENT naming the field.
    frames = [location_pb2.ReportLocationsRequest(driver_id="wanderer", point=near(0),
                                                  status=rides_pb2.DRIVER_STATUS_AVAILABLE),
              location_pb2.ReportLocationsRequest(driver_id="wanderer", point=point(40.7, -74.0),
                                                  status=rides_pb2.DRIVER_STATUS_AVAILABLE)]
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await location.ReportLocations(iter(frames), timeout=10)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and raised.value.details().startswith("point")
    kept = await location.GetDriverPosition(location_pb2.GetDriverPositionRequest(driver_id="wanderer"), timeout=10)
    assert kept.position.point.lat_deg == pytest.approx(near(0).lat_deg), "the good position before it is kept"

    # Another rider's quote, and another rider's ride.
    quote = (await pricing.GetQuote(pricing_pb2.GetQuoteRequest(rider_id="owner", pickup=near(0), dropoff=near(900)),
                                    timeout=10)).quote
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await trips.RequestRide(trips_pb2.RequestRideRequest(rider_id="thief", quote_id=quote.quote_id,
                                                             client_request_id="c1"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    ride = (await trips.RequestRide(trips_pb2.RequestRideRequest(rider_id="owner", quote_id=quote.quote_id,
                                                                 client_request_id="c1"), timeout=10)).ride
    retried = (await trips.RequestRide(trips_pb2.RequestRideRequest(rider_id="owner", quote_id=quote.quote_id,
                                                                    client_request_id="c1"), timeout=10)).ride
    assert retried.ride_id == ride.ride_id, "a retried request is the same ride"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await trips.CancelRide(trips_pb2.CancelRideRequest(ride_id=ride.ride_id, rider_id="thief"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.PERMISSION_DENIED
    cancelled = (await trips.CancelRide(trips_pb2.CancelRideRequest(ride_id=ride.ride_id, rider_id="owner"),
                                        timeout=10)).ride
    assert cancelled.state == rides_pb2.RIDE_STATE_CANCELLED
    assert cancelled.cancel_reason == rides_pb2.CANCEL_REASON_RIDER
