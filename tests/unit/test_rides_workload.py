"""The rides workload without a mesh: the city, legs and the moving hotspot, the single-assignment checker, what a rider's
stream yields, a driver's offers and trips against fake streams, the fleet's readiness wait, the profile and its SLOs,
and that the workload imports only the contracts."""

from __future__ import annotations

import ast
import asyncio
import math
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import grpc
import pytest
from pydantic import ValidationError

from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile
from casemesh.harness.workloads import get_workload
from casemesh.harness.workloads.rides.city import City, Demand, Leg, distance_m, leg
from casemesh.harness.workloads.rides.drivers import (
    ACCEPT,
    BUSY,
    DECLINED,
    EXPIRED,
    OFFER,
    WITHDRAWN,
    Fleet,
    choose_action,
)
from casemesh.harness.workloads.rides.invariants import DATA_LOSS, OK, Assignments
from casemesh.harness.workloads.rides.riders import MATCH_TIME, NO_DRIVER, PICKUP_WAIT, TRACKING_DELAY, RiderView
from casemesh.harness.workloads.rides.seeding import SeedParams, hotspot_centre, plan
from casemesh.common.v1 import geo_pb2
from casemesh.rides.v1 import dispatch_pb2, location_pb2, rides_pb2, trips_pb2
from casemesh.services.rides.contract import DEFAULT_SERVICE_AREA

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "rides"


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# the city -------------------------------------------------------------------------------------------------------------

def test_the_default_city_is_about_6_km_square_inside_the_service_area():
    city = City()
    assert 5_900 < city.width_m < 6_400 and 5_900 < city.height_m < 6_400
    assert DEFAULT_SERVICE_AREA.contains(city.south_deg, city.west_deg)
    assert DEFAULT_SERVICE_AREA.contains(city.north_deg, city.east_deg)
    with pytest.raises(ValueError, match="service area"):
        City(south_deg=37.6)
    with pytest.raises(ValueError, match="south < north"):
        City(south_deg=37.8, north_deg=37.75)


def test_a_leg_moves_at_its_speed_from_start_to_end_with_its_heading():
    city = City()
    start = city.at(0.5, 0.2)
    north = city.offset(start, 0, 1000)
    drive = leg(city, start, north, 100.0, 250.0)
    assert drive.distance_m == pytest.approx(1000, rel=0.01)
    assert drive.duration_s == pytest.approx(4.0, rel=0.01)
    assert drive.position(99.0) == start and drive.position(1e9) == north
    assert distance_m(start, drive.position(102.0)) == pytest.approx(500, rel=0.01)
    assert drive.heading_deg == pytest.approx(0.0, abs=0.01)
    assert leg(city, start, city.offset(start, 1000, 0), 0, 1).heading_deg == pytest.approx(90, abs=0.01)
    assert leg(city, start, city.offset(start, -1000, 0), 0, 1).heading_deg == pytest.approx(270, abs=0.01)
    assert leg(city, start, start, 0, 1).heading_deg == 0.0 and Leg(start, start, 0, 1).position(5) == start
    with pytest.raises(ValueError, match="speed"):
        Leg(start, north, 0, 0)


def test_random_waypoint_drivers_stay_in_the_box():
    params = SeedParams(drivers=20)
    fleet = Fleet(FakeStreams(), plan(params, "00000000"), params, clock=lambda: 0.0)
    city = fleet.city
    for driver in fleet.drivers:
        for t in range(0, 600, 7):  # ten minutes of real time: about 150 km of simulated driving each
            point = driver.position(float(t))
            assert city.contains(point), (driver.id, t, point)
            assert 0 <= driver.leg.heading_deg < 360
    assert len({d.leg.end for d in fleet.drivers}) == 20  # each its own waypoints (seeded by its id)


def test_the_hotspot_crosses_the_city_and_comes_back():
    demand = Demand(City(), hotspot_period_s=70, hotspot_inset=0.15)
    city = demand.city
    assert demand.centre(0) == pytest.approx(city.at(0.15, 0.15))
    assert demand.centre(35) == pytest.approx(city.at(0.5, 0.5))
    assert demand.centre(70) == pytest.approx(city.at(0.85, 0.85))
    assert demand.centre(105) == pytest.approx(demand.centre(35))
    assert demand.centre(140) == pytest.approx(demand.centre(0))
    lats = [demand.centre(t)[0] for t in range(0, 71, 5)]
    assert lats == sorted(lats)  # north-east all the way in the first crossing
    params = SeedParams(hotspot_period_s=70)
    assert hotspot_centre(35, params) == pytest.approx(demand.centre(35))


def _share_near(demand: Demand, elapsed: float, radius_m: float, n: int = 4000) -> float:
    rng = random.Random(7)
    centre = demand.centre(elapsed)
    points = [demand.pickup(rng, elapsed) for _ in range(n)]
    assert all(demand.city.contains(p) for p in points)
    return sum(distance_m(p, centre) <= radius_m for p in points) / n


def test_pickups_are_a_mixture_of_the_hotspot_and_the_whole_city():
    city = City()
    uniform_share = math.pi * 1200**2 / (city.width_m * city.height_m)  # about 0.12 of the box within 1.2 km
    mixed = _share_near(Demand(city, hotspot_fraction=0.6, hotspot_sigma_m=400), 35, 1200)
    assert mixed == pytest.approx(0.6 * 0.99 + 0.4 * uniform_share, abs=0.04)
    assert _share_near(Demand(city, hotspot_fraction=0.0), 35, 1200) == pytest.approx(uniform_share, abs=0.03)
    assert _share_near(Demand(city, hotspot_fraction=1.0, hotspot_sigma_m=400), 35, 1200) > 0.97


def test_dropoffs_are_1_to_5_km_away_inside_the_box():
    demand = Demand(City())
    rng = random.Random(3)
    for _ in range(500):
        pickup = demand.pickup(rng, rng.uniform(0, 200))
        dropoff = demand.dropoff(rng, pickup)
        assert demand.city.contains(dropoff)
        assert 990 <= distance_m(pickup, dropoff) <= 5010


# the single-assignment checker ----------------------------------------------------------------------------------------

def _checker() -> tuple[Assignments, list[str]]:
    codes: list[str] = []
    return Assignments(codes.append), codes


def test_two_winners_of_one_ride_are_a_breach():
    checker, codes = _checker()
    checker.won("ride-1", "d1")
    checker.won("ride-1", "d1")  # a retried accept: the same winner
    assert codes == []
    checker.won("ride-1", "d2")
    assert codes == [DATA_LOSS] and checker.breached == {"ride-1"}
    checker.rider_saw("ride-1", "d1")
    checker.completed("ride-1")
    assert codes == [DATA_LOSS]  # no OK sample for a breached ride


def test_a_win_while_holding_another_ride_is_a_breach_unless_released():
    checker, codes = _checker()
    checker.won("ride-1", "d1")
    checker.released("ride-1", "d1")
    checker.released("ride-1", "d1")  # idempotent
    checker.won("ride-2", "d1")
    assert codes == []
    checker.won("ride-3", "d1")
    assert codes == [DATA_LOSS] and checker.holding["d1"] == {"ride-2", "ride-3"}


def test_a_rider_must_see_one_driver_the_winner():
    checker, codes = _checker()
    checker.won("ride-1", "d1")
    checker.rider_saw("ride-1", "d1")
    checker.rider_saw("ride-1", "d1")
    checker.completed("ride-1")
    assert codes == [OK]
    checker.rider_saw("ride-2", "d2")
    checker.rider_saw("ride-2", "d3")
    checker.rider_saw("ride-2", "d3")  # one breach per change, not per update
    assert codes == [OK, DATA_LOSS]
    checker.rider_saw("ride-3", "")
    assert codes == [OK, DATA_LOSS, DATA_LOSS]
    checker.won("ride-4", "d4")
    checker.rider_saw("ride-4", "d5")  # a driver of another process, per the rider; this process's d4 won it
    checker.completed("ride-4")
    assert codes == [OK, DATA_LOSS, DATA_LOSS, DATA_LOSS]
    checker.rider_saw("ride-5", "d9")  # won by another process's driver: only the rider's view is checked
    checker.completed("ride-5")
    assert codes[-1] == OK and checker.completed_ok == 2


# what a rider's stream yields -----------------------------------------------------------------------------------------

def _ride(state: int, driver: str = "", reason: int = rides_pb2.CANCEL_REASON_UNSPECIFIED) -> trips_pb2.WatchRideResponse:
    return trips_pb2.WatchRideResponse(ride=rides_pb2.Ride(ride_id="ride-1", state=state, driver_id=driver, cancel_reason=reason))


def _position(driver: str, sent_ms: int) -> trips_pb2.WatchRideResponse:
    return trips_pb2.WatchRideResponse(driver_position=rides_pb2.DriverPosition(driver_id=driver, sent_at_unix_ms=sent_ms))


def test_the_rider_view_measures_match_time_tracking_and_pickup_wait():
    checker, codes = _checker()
    view = RiderView("ride-1", 10.0, checker)
    assert view.update(_ride(rides_pb2.RIDE_STATE_REQUESTED), 10.5, 0) == []
    assert view.update(_ride(rides_pb2.RIDE_STATE_MATCHED, "d1"), 12.0, 0) == [(MATCH_TIME, 2.0, OK)]
    assert view.update(_ride(rides_pb2.RIDE_STATE_EN_ROUTE, "d1"), 12.1, 0) == []  # matched once
    assert view.update(_position("d1", 1_000), 12.2, 5_000) == []  # TrackDriver's replay of the last known position
    assert view.update(_position("d1", 5_000), 12.3, 5_040) == [(TRACKING_DELAY, pytest.approx(0.04), OK)]
    assert view.update(_position("d1", 5_000), 12.4, 9_000) == []  # the same one again (a reopened stream)
    assert view.update(_position("d1", 9_000), 12.5, 8_999) == [(TRACKING_DELAY, 0.0, OK)]  # clocks: never negative
    assert view.update(_ride(rides_pb2.RIDE_STATE_IN_PROGRESS, "d1"), 15.0, 0) == [(PICKUP_WAIT, 3.0, OK)]
    assert view.update(_ride(rides_pb2.RIDE_STATE_COMPLETED, "d1"), 20.0, 0) == []
    assert view.terminal and codes == [] and checker.seen["ride-1"] == "d1"


def test_a_ride_no_driver_took_is_a_failed_match_and_a_second_driver_a_breach():
    checker, codes = _checker()
    view = RiderView("ride-1", 10.0, checker)
    view.update(_ride(rides_pb2.RIDE_STATE_REQUESTED), 10.5, 0)
    assert view.update(_ride(rides_pb2.RIDE_STATE_CANCELLED, reason=rides_pb2.CANCEL_REASON_NO_DRIVER), 40.0, 0) == [
        (MATCH_TIME, 30.0, NO_DRIVER)]
    assert view.terminal and NO_DRIVER == "NOT_FOUND"
    other = RiderView("ride-2", 0.0, checker)
    other.update(_ride(rides_pb2.RIDE_STATE_MATCHED, "d1"), 1.0, 0)
    other.update(_position("d2", 100), 1.5, 200)
    assert codes == [DATA_LOSS]


# a driver against fake streams ----------------------------------------------------------------------------------------

class FakeFeed:
    """A ReceiveOffers call that never sends; cancel() ends it as grpc.aio does (CancelledError in the reader)."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()

    def __aiter__(self):
        return self

    async def __anext__(self):
        await self.cancelled.wait()
        raise asyncio.CancelledError

    def cancel(self) -> None:
        self.cancelled.set()


class FakeStreams:
    """What the rides population needs of casemesh.harness.streams.Streams: unary answers by method, a location
    service that records the reports, feeds that never send."""

    share = (0, 1)

    def __init__(self) -> None:
        self.observed: list[tuple[str, float, str]] = []
        self.calls: list[tuple[str, object]] = []
        self.answers: dict[str, object] = {}
        self.frames: list[location_pb2.ReportLocationsRequest] = []
        self.online: set[str] = set()
        self.refuse_reports = False

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [code for measured, _, code in self.observed if measured == name]

    def wall_ns(self, at: float) -> int:
        return int(at * 1e9)

    def perf_at(self, wall_ns: int) -> float:
        return wall_ns / 1e9

    async def call(self, service: str, method: str, request, *, timeout_s: float | None = None):
        if method == "ReportLocations":
            if self.refuse_reports:
                raise rpc_error(grpc.StatusCode.UNAVAILABLE, "location is down")
            async for frame in request:
                self.frames.append(frame)
                if frame.status == rides_pb2.DRIVER_STATUS_OFFLINE:
                    self.online.discard(frame.driver_id)
                else:
                    self.online.add(frame.driver_id)
            return location_pb2.ReportLocationsResponse()
        self.calls.append((method, request))
        if method == "GetDriverPosition":
            if request.driver_id not in self.online:
                raise rpc_error(grpc.StatusCode.NOT_FOUND, "offline")
            return location_pb2.GetDriverPositionResponse()
        answer = self.answers[method]
        return answer(request) if callable(answer) else answer

    def server_stream(self, service: str, method: str, request):
        return FakeFeed()

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


def _fleet(streams: FakeStreams, **params) -> Fleet:
    seed = SeedParams(drivers=1, think_min_s=0.0, think_max_s=0.01, speed_kmh=130, time_scale=600, **params)
    return Fleet(streams, plan(seed, "0000abcd"), seed)


def _offer(offer_id: str = "offer-1", ride_id: str = "ride-1",
           expires_in_s: float = 5.0) -> dispatch_pb2.ReceiveOffersResponse:
    expires_ms = int((time.perf_counter() + expires_in_s) * 1000)
    return dispatch_pb2.ReceiveOffersResponse(offer=dispatch_pb2.Offer(offer_id=offer_id, ride_id=ride_id,
                                                                        expires_at_unix_ms=expires_ms))


def _won_ride(fleet: Fleet, ride_id: str = "ride-1") -> rides_pb2.Ride:
    here = fleet.drivers[0].position(time.perf_counter())
    pickup = fleet.city.offset(here, 100, 0)
    dropoff = fleet.city.offset(here, 200, 100)
    return rides_pb2.Ride(ride_id=ride_id, state=rides_pb2.RIDE_STATE_MATCHED, driver_id=fleet.drivers[0].id,
                          pickup=geo_pb2.LatLng(lat_deg=pickup[0], lng_deg=pickup[1]),
                          dropoff=geo_pb2.LatLng(lat_deg=dropoff[0], lng_deg=dropoff[1]))


async def _until(condition, timeout_s: float = 3.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_offer_actions_follow_the_probabilities():
    params = SeedParams(accept_p=0.75, decline_p=0.15, busy_accept_p=0.5)
    rng = random.Random(5)
    free = [choose_action(rng, params, False) for _ in range(10_000)]
    assert free.count("accept") / 1e4 == pytest.approx(0.75, abs=0.02)
    assert free.count("decline") / 1e4 == pytest.approx(0.15, abs=0.02)
    assert free.count("ignore") / 1e4 == pytest.approx(0.10, abs=0.02)
    busy = [choose_action(rng, params, True) for _ in range(10_000)]
    assert set(busy) == {"accept", "busy"} and busy.count("busy") / 1e4 == pytest.approx(0.5, abs=0.02)


async def test_a_won_offer_is_driven_through_depart_pick_up_and_drop_off():
    streams = FakeStreams()
    fleet = _fleet(streams, accept_p=1.0, decline_p=0.0)
    driver = fleet.drivers[0]
    events: list[int] = []
    streams.answers["AcceptOffer"] = dispatch_pb2.AcceptOfferResponse(ride=_won_ride(fleet))
    streams.answers["UpdateTrip"] = lambda request: events.append(request.event) or trips_pb2.UpdateTripResponse()
    driver.event(_offer())
    await _until(lambda: fleet.completed == 1)
    assert events == [trips_pb2.TRIP_EVENT_DEPART, trips_pb2.TRIP_EVENT_PICK_UP, trips_pb2.TRIP_EVENT_DROP_OFF]
    assert streams.codes(OFFER) == ["OK"] and streams.codes(ACCEPT) == ["OK"]
    assert fleet.checker.winners == {"ride-1": driver.id} and not fleet.checker.holding
    await _until(lambda: not driver.busy and not driver.tasks)
    assert fleet.city.contains(driver.position(time.perf_counter()))


async def test_a_late_accept_is_aborted_and_a_withdrawal_while_thinking_ends_the_offer():
    streams = FakeStreams()
    fleet = _fleet(streams, accept_p=1.0, decline_p=0.0)
    driver = fleet.drivers[0]

    def aborted(request):
        raise rpc_error(grpc.StatusCode.ABORTED, "another driver won")

    streams.answers["AcceptOffer"] = aborted
    driver.event(_offer("offer-1"))
    await _until(lambda: streams.codes(OFFER))
    assert streams.codes(OFFER) == ["ABORTED"] and not driver.busy and fleet.checker.winners == {}
    fleet.params = driver.params = SeedParams(drivers=1, think_min_s=0.5, think_max_s=0.5, accept_p=1.0, decline_p=0.0)
    driver.event(_offer("offer-2"))
    driver.event(dispatch_pb2.ReceiveOffersResponse(withdrawal=dispatch_pb2.OfferWithdrawal(
        offer_id="offer-2", ride_id="ride-1", reason="won by another driver")))
    await _until(lambda: len(streams.codes(OFFER)) == 2, timeout_s=0.4)  # before the 0.5 s think time is over
    assert streams.codes(OFFER)[-1] == WITHDRAWN and streams.methods().count("AcceptOffer") == 1


async def test_declined_ignored_and_busy_offers():
    streams = FakeStreams()
    fleet = _fleet(streams, accept_p=0.0, decline_p=1.0)
    driver = fleet.drivers[0]
    streams.answers["DeclineOffer"] = dispatch_pb2.DeclineOfferResponse()
    driver.event(_offer("offer-1"))
    await _until(lambda: streams.codes(OFFER))
    assert streams.codes(OFFER) == [DECLINED] and streams.methods() == ["DeclineOffer"]
    fleet.params = driver.params = SeedParams(drivers=1, accept_p=0.0, decline_p=0.0)  # ignores every offer
    driver.event(_offer("offer-2", expires_in_s=30))
    await asyncio.sleep(0.05)
    driver.event(dispatch_pb2.ReceiveOffersResponse(withdrawal=dispatch_pb2.OfferWithdrawal(
        offer_id="offer-2", ride_id="ride-1", reason="expired")))
    await _until(lambda: len(streams.codes(OFFER)) == 2)
    assert streams.codes(OFFER)[-1] == EXPIRED
    fleet.params = driver.params = SeedParams(drivers=1, busy_accept_p=0.0)
    driver.rides.append(_won_ride(fleet, "ride-9"))
    driver.event(_offer("offer-3"))
    await _until(lambda: len(streams.codes(OFFER)) == 3)
    assert streams.codes(OFFER)[-1] == BUSY


async def test_a_busy_driver_s_accept_that_wins_is_a_breach_unless_its_ride_was_cancelled():
    streams = FakeStreams()
    fleet = _fleet(streams, busy_accept_p=1.0)
    driver = fleet.drivers[0]
    held = _won_ride(fleet, "ride-A")
    fleet.checker.won("ride-A", driver.id)
    driver.rides.append(held)
    driver.trip_task = asyncio.get_running_loop().create_future()  # driving ride-A (never ends here)
    streams.answers["AcceptOffer"] = dispatch_pb2.AcceptOfferResponse(ride=_won_ride(fleet, "ride-B"))
    states = {"ride-A": rides_pb2.RIDE_STATE_CANCELLED}
    streams.answers["GetRide"] = lambda request: trips_pb2.GetRideResponse(ride=rides_pb2.Ride(
        ride_id=request.ride_id, state=states[request.ride_id]))
    driver.event(_offer("offer-1", "ride-B"))
    await _until(lambda: streams.codes(OFFER))
    assert streams.codes(OFFER) == ["OK"] and streams.codes("single_assignment") == []  # ride-A was cancelled under it
    states["ride-C"] = rides_pb2.RIDE_STATE_EN_ROUTE
    states["ride-B"] = rides_pb2.RIDE_STATE_EN_ROUTE
    streams.answers["AcceptOffer"] = dispatch_pb2.AcceptOfferResponse(ride=_won_ride(fleet, "ride-C"))
    driver.event(_offer("offer-2", "ride-C"))
    await _until(lambda: len(streams.codes(OFFER)) == 2)
    assert streams.codes("single_assignment") == [DATA_LOSS]
    driver.trip_task.cancel()


async def test_the_fleet_waits_for_its_drivers_and_goes_offline_at_the_end():
    streams = FakeStreams()
    params = SeedParams(drivers=6, ping_interval_s=0.5)
    fleet = Fleet(streams, plan(params, "0000abcd"), params)
    await fleet.connect()
    assert streams.online == {d.id for d in fleet.drivers}
    frame = streams.frames[0]
    assert frame.status == rides_pb2.DRIVER_STATUS_AVAILABLE and fleet.city.contains((frame.point.lat_deg, frame.point.lng_deg))
    assert abs(frame.sent_at_unix_ms - time.perf_counter() * 1000) < 5_000
    await fleet.close()
    assert streams.online == set()  # every driver reported OFFLINE before half-closing


async def test_the_fleet_fails_clearly_when_drivers_never_report():
    streams = FakeStreams()
    streams.refuse_reports = True
    params = SeedParams(drivers=3, ready_timeout_s=0.3)
    fleet = Fleet(streams, plan(params, "0000abcd"), params)
    with pytest.raises(grpc.aio.AioRpcError, match=r"only 0 of 3 drivers had reported") as caught:
        await fleet.connect()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "ReportLocations UNAVAILABLE" in caught.value.details()
    await fleet.close()


# the seed, the profile, the contracts ---------------------------------------------------------------------------------

def test_seed_params_refuse_impossible_behaviour_and_a_city_outside_the_service_area():
    with pytest.raises(ValidationError, match="accept_p \\+ decline_p"):
        SeedParams(accept_p=0.9, decline_p=0.2)
    with pytest.raises(ValidationError, match="think_min_s"):
        SeedParams(think_min_s=2, think_max_s=1)
    with pytest.raises(ValidationError, match="service area"):
        SeedParams(north_deg=37.9)
    with pytest.raises(ValidationError, match="trip_min_m"):
        SeedParams(trip_min_m=6000)
    assert SeedParams().speed_mps == pytest.approx(250.0)
    assert plan(SeedParams(drivers=2), "0000abcd").drivers == ["rd0000abcd-d0", "rd0000abcd-d1"]


def test_the_workload_declares_its_services_and_measures():
    workload = get_workload("rides")
    assert set(workload.services) == {"rides-location", "rides-pricing", "rides-trips", "rides-dispatch"}
    assert {"match_time", "tracking_delay", "single_assignment", "offer"} <= set(workload.measures)
    assert "casemesh.rides.v1.TripService/RequestRide" in workload.rpcs and list(workload.journeys) == ["ride"]


def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("rides")
    assert profile.seed.drivers == 150 and profile.arrival.rate_per_s == 2 and profile.request_timeout_ms == 5000
    names = {slo.name for slo in profile.slos}
    assert {"match-time", "ride-availability", "tracking-delay", "single-assignment", "match-time-server",
            "ride-availability-server"} <= names
    match = next(slo for slo in profile.slos if slo.name == "match-time")
    assert match.target == 0.95 and match.good.latency_le_ms == 5000


def test_a_bad_workload_option_names_its_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: casemesh.dev/v1
        kind: Profile
        metadata: {name: p}
        workload: rides
        services: [rides-location, rides-pricing, rides-trips, rides-dispatch]
        seed:
          drivers: 0
        arrival: {process: poisson, rate_per_s: 1}
        duration_s: 5
        journeys:
          - {name: ride, weight: 1, params: {match_patience_s: 60, max_ride_s: 30}}
        """))
    with pytest.raises(ConfigError) as caught:
        load_profile(str(path))
    text = str(caught.value) + " ".join(str(p) for p in caught.value.more)
    assert "drivers" in text and "match_patience_s" in text


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.rides.contract", f"{source.name} imports {name}"
    code = ("import sys; from casemesh.harness.workloads import get_workload; get_workload('rides'); "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The contract module and what it is made of: the shared service area and identifier rule (and its error type).
    assert done.stdout.strip() == str(sorted([
        "casemesh.services.rides", "casemesh.services.rides.contract", "casemesh.services.geo",
        "casemesh.services.geo.area", "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
        "casemesh.services.runtime.errors"]))
