"""The food workload without a mesh: the city and its restaurants, deterministic seeding through a fake API, a
courier's route (restaurants in dispatch's order, then the nearest door first) and its calls against fake streams,
what a customer's stream yields, the single-dispatch checker, the profile and its SLOs, and that the workload imports
only the contracts."""

from __future__ import annotations

import ast
import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml
from pydantic import ValidationError

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import dispatch_pb2, food_pb2, orders_pb2, restaurants_pb2
from casemesh.harness.profile import PROFILES_DIR, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads import get_workload
from casemesh.harness.workloads.food.city import DISTRICTS, City, FoodDemand, distance_m, place_restaurants
from casemesh.harness.workloads.food.couriers import (
    BUSY,
    COURIER_UTILISATION,
    DROPOFF,
    FOOD_WAIT,
    IDLE,
    PICKUP,
    Fleet,
    Job,
    plan_route,
)
from casemesh.harness.workloads.food.customers import (
    DELIVERY_TIME,
    DISPATCH_TIME,
    LATE,
    NO_COURIER,
    ON_TIME,
    PICKUP_TIME,
    TRACKING_DELAY,
    OrderParams,
    OrderView,
    order,
)
from casemesh.harness.workloads.food.invariants import DATA_LOSS, OK, SINGLE_DISPATCH, Dispatches
from casemesh.harness.workloads.food.seeding import SeedParams, plan, seed
from casemesh.rides.v1 import location_pb2, rides_pb2
from casemesh.services.catalog import SERVICES
from casemesh.services.food.contract import (
    MAX_KITCHEN_SLOTS,
    MAX_PREP_BASE_S,
    MAX_PREP_PER_ITEM_S,
    SERVICE_AREA,
    is_id,
)

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "food"
FOOD_SERVICES = ("food-restaurants", "food-orders", "food-dispatch")


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# the city -------------------------------------------------------------------------------------------------------------

def test_the_districts_lie_in_the_city_and_their_weights_sum_to_one():
    city = City()
    assert all(city.contains(d.centre) for d in DISTRICTS)
    assert sum(d.weight for d in DISTRICTS) == pytest.approx(1.0)


def test_restaurants_crowd_into_districts_and_some_share_a_street():
    city = City()
    placed = place_restaurants(city, 400, 0.3, random.Random(3))
    points = [p for p, _ in placed]
    assert all(city.contains(p) for p in points)
    near = sum(distance_m(p, d.centre) <= 3 * d.sigma_m for p, d in placed)
    assert near / len(placed) > 0.95
    same_street = sum(any(q != p and abs(q[0] - p[0]) < 1e-12 and 25 <= distance_m(p, q) <= 205 for q in points)
                      for p in points)
    assert same_street >= 60  # about 0.3 x 400, each pair counted twice; clamping aside
    scattered = [p for p, _ in place_restaurants(city, 200, 0.0, random.Random(3))]
    assert sum(any(q != p and abs(q[0] - p[0]) < 1e-12 for q in scattered) for p in scattered) == 0


def test_orders_follow_the_lunch_wave_and_doors_are_half_a_km_to_4_km_away():
    city = City()
    points = tuple(p for p, _ in place_restaurants(city, 300, 0.3, random.Random(5)))
    rng = random.Random(9)
    for elapsed in (0.0, 35.0, 70.0):
        wave = FoodDemand(city, points, hotspot_fraction=1.0, hotspot_sigma_m=600, hotspot_period_s=70)
        anywhere = FoodDemand(city, points, hotspot_fraction=0.0)
        centre = wave.centre(elapsed)
        close_wave = sum(distance_m(points[wave.restaurant(rng, elapsed)], centre) <= 1200 for _ in range(1000))
        close_any = sum(distance_m(points[anywhere.restaurant(rng, elapsed)], centre) <= 1200 for _ in range(1000))
        assert close_wave > 700 and close_wave > 3 * close_any, (elapsed, close_wave, close_any)
    demand = FoodDemand(city, points)
    assert demand.centre(0) == pytest.approx(city.at(0.15, 0.15)) and demand.centre(70) == pytest.approx(city.at(0.85, 0.85))
    for _ in range(300):
        pickup = points[demand.restaurant(rng, rng.uniform(0, 140))]
        dropoff = demand.dropoff(rng, pickup)
        assert city.contains(dropoff) and 490 <= distance_m(pickup, dropoff) <= 4010
    with pytest.raises(ValueError, match="at least one restaurant"):
        FoodDemand(city, ())


# seeding --------------------------------------------------------------------------------------------------------------

def test_seeding_is_deterministic_from_the_run_seed_and_within_the_contract():
    params = SeedParams(restaurants=120, couriers=5)
    state, restaurants = plan(params, random.Random(42))
    again_state, again = plan(params, random.Random(42))
    assert again == restaurants and again_state == state
    other_state, other = plan(params, random.Random(43))
    assert other_state.run != state.run and [r.point for r in other] != [r.point for r in restaurants]
    assert [r.restaurant_id for r in restaurants] == [f"fd{state.run}-r{i}" for i in range(120)]
    assert state.couriers == [f"fd{state.run}-c{i}" for i in range(5)]
    assert [(s.restaurant_id, s.point) for s in state.restaurants] == \
        [(r.restaurant_id, (r.point.lat_deg, r.point.lng_deg)) for r in restaurants]
    for r in restaurants:
        assert is_id(r.restaurant_id) and 1 <= len(r.name) <= 200
        assert SERVICE_AREA.contains(r.point.lat_deg, r.point.lng_deg) and params.city().contains((r.point.lat_deg, r.point.lng_deg))
        # Simulated 6-12 min and 20-40 s an item, created divided by the time scale (30).
        assert 360 / 30 - 0.01 <= r.prep_base_s <= 720 / 30 + 0.01 and 1 <= r.prep_base_s <= MAX_PREP_BASE_S
        assert 20 / 30 - 0.001 <= r.prep_per_item_s <= 40 / 30 + 0.001 <= MAX_PREP_PER_ITEM_S
        assert 2 <= r.kitchen_slots <= 6 <= MAX_KITCHEN_SLOTS
    fast_state, fast = plan(SeedParams(restaurants=20, time_scale=600), random.Random(1))
    assert min(r.prep_base_s for r in fast) == 1.0  # 6-12 min / 600 is 0.6-1.2 s: raised to the contract's 1 s
    assert fast_state.run == plan(params, random.Random(1))[0].run  # the run prefix is the generator's first draw


async def test_seed_creates_the_restaurants_in_batches_and_retries_an_unavailable_service():
    calls: list[tuple[str, str, int]] = []
    failures = [rpc_error(grpc.StatusCode.UNAVAILABLE, "restarting")]

    async def call(service, method, request):
        calls.append((service, method, len(request.restaurants)))
        if failures:
            raise failures.pop()
        return restaurants_pb2.CreateRestaurantsResponse(created=len(request.restaurants))

    params = SeedParams(restaurants=250, restaurant_batch=100)
    state = await seed(call, params, random.Random(8))
    assert state == plan(params, random.Random(8))[0]
    assert sorted(n for _, _, n in calls) == [50, 100, 100, 100]  # one batch of 100 sent twice
    assert {(s, m) for s, m, _ in calls} == {("food-restaurants", "CreateRestaurants")}

    async def refuse(service, method, request):
        raise rpc_error(grpc.StatusCode.ALREADY_EXISTS, "restaurants[0] exists with other fields")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await seed(refuse, SeedParams(restaurants=5), random.Random(8))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_seed_params_refuse_inconsistent_values():
    with pytest.raises(ValidationError, match="prep_base_min_s"):
        SeedParams(prep_base_min_s=1000, prep_base_max_s=900)
    with pytest.raises(ValidationError, match="kitchen_slots_min"):
        SeedParams(kitchen_slots_min=7, kitchen_slots_max=6)
    with pytest.raises(ValidationError, match="busy_ping_interval_s"):
        SeedParams(ping_interval_s=2, busy_ping_interval_s=3)
    with pytest.raises(ValidationError, match="service area"):
        SeedParams(north_deg=37.9)
    with pytest.raises(ValidationError, match="items_min"):
        OrderParams(items_min=4, items_max=2)
    params = SeedParams()
    assert params.speed_mps == pytest.approx(200.0)  # 24 km/h x 30, road metres per real second
    assert params.straight_mps == pytest.approx(200.0 / 1.3) and params.handoff_s == pytest.approx(4.0)


# a courier's route ----------------------------------------------------------------------------------------------------

def _job(order_id: str, pickup, dropoff, rank, picked_up=False) -> Job:
    return Job(order_id, "bat-1", pickup, dropoff, 0, rank, picked_up)


def test_a_route_picks_up_in_dispatch_s_order_then_delivers_the_nearest_door_first():
    city = City()
    here = city.at(0.5, 0.5)
    r1, r2 = city.offset(here, 300, 0), city.offset(here, 600, 0)
    near, far = city.offset(r2, 0, 400), city.offset(r2, 0, -2500)
    jobs = [_job("a", r1, far, (0, 0)), _job("b", r2, near, (0, 1))]
    assert [(s.kind, s.order_id) for s in plan_route(here, jobs)] == [
        (PICKUP, "a"), (PICKUP, "b"), (DROPOFF, "b"), (DROPOFF, "a")]
    jobs[0].rank = (0, 2)  # dispatch now wants b first
    assert [(s.kind, s.order_id) for s in plan_route(here, jobs)][:2] == [(PICKUP, "b"), (PICKUP, "a")]
    jobs[0].picked_up = True  # a is in the bag: from b's restaurant, b's door is nearer than a's
    assert [(s.kind, s.order_id) for s in plan_route(here, jobs)] == [(PICKUP, "b"), (DROPOFF, "b"), (DROPOFF, "a")]
    jobs[1].picked_up = True  # both in the bag: from here, the nearest door first
    assert [s.order_id for s in plan_route(city.offset(far, 0, 100), jobs)] == ["a", "b"]
    assert plan_route(here, []) == []


class FakeFeed:
    """A server stream that yields what it is given (``put``) and ends when cancelled, as grpc.aio does."""

    def __init__(self, items=()) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        for item in items:
            self.queue.put_nowait(item)

    def __aiter__(self):
        return self

    async def __anext__(self):
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    def put(self, item) -> None:
        self.queue.put_nowait(item)

    def cancel(self) -> None:
        self.queue.put_nowait(asyncio.CancelledError())


class FakeStreams:
    """What the food population needs of casemesh.harness.streams.Streams: unary answers by method, a location
    service that records the reports, feeds that send what a test puts in them."""

    share = (0, 1)

    def __init__(self) -> None:
        self.observed: list[tuple[str, float, str]] = []
        self.calls: list[tuple[str, object]] = []
        self.answers: dict[str, object] = {}
        self.frames: list[location_pb2.ReportLocationsRequest] = []
        self.online: set[str] = set()
        self.feeds: list[FakeFeed] = []
        self.watch_updates: list = []

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
        if method == "WatchOrder":
            return FakeFeed([*self.watch_updates, None])
        feed = FakeFeed()
        self.feeds.append(feed)
        return feed

    def updates(self) -> list[tuple[str, int]]:
        return [(r.order_id, r.event) for m, r in self.calls if m == "UpdateOrder"]


def _state(couriers: int = 1, restaurants: int = 5):
    params = SeedParams(restaurants=restaurants, couriers=couriers)
    return plan(params, random.Random(11))[0]


def _fleet(streams: FakeStreams, **params) -> Fleet:
    seed_params = SeedParams(**{"couriers": 1, "restaurants": 5, "speed_kmh": 130, "time_scale": 600, "detour_factor": 1,
                                "pickup_handoff_s": 0, "dropoff_handoff_s": 0, **params})
    return Fleet(streams, _state(seed_params.couriers, seed_params.restaurants), seed_params)


def _order(order_id: str, courier_id: str, pickup, dropoff, *, ready_in_s: float = -1.0,
           state: int = food_pb2.ORDER_STATE_ASSIGNED) -> food_pb2.Order:
    return food_pb2.Order(order_id=order_id, courier_id=courier_id, state=state, batch_id="bat-1",
                          pickup=geo_pb2.LatLng(lat_deg=pickup[0], lng_deg=pickup[1]),
                          dropoff=geo_pb2.LatLng(lat_deg=dropoff[0], lng_deg=dropoff[1]),
                          ready_at_unix_ms=int((time.perf_counter() + ready_in_s) * 1000))


def _assignment(batch_id: str, *orders: food_pb2.Order) -> dispatch_pb2.ReceiveAssignmentsResponse:
    return dispatch_pb2.ReceiveAssignmentsResponse(batch_id=batch_id, orders=orders)


async def _until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not condition():
        assert time.perf_counter() < deadline, "timed out"
        await asyncio.sleep(0.005)


def _updated(streams: FakeStreams) -> None:
    streams.answers["UpdateOrder"] = lambda request: orders_pb2.UpdateOrderResponse()


async def test_a_batch_is_driven_restaurants_first_then_the_nearest_door():
    streams = FakeStreams()
    _updated(streams)
    fleet = _fleet(streams)
    courier = fleet.couriers[0]
    here = courier.position(time.perf_counter())
    r1, r2 = fleet.city.offset(here, 150, 0), fleet.city.offset(here, 300, 0)
    far, near = fleet.city.offset(r2, 0, -1500), fleet.city.offset(r2, 0, 200)
    courier.assignment(_assignment("bat-1", _order("ord-a", courier.id, r1, far), _order("ord-b", courier.id, r2, near)))
    assert courier.busy
    await _until(lambda: fleet.delivered == 2)
    assert streams.updates() == [("ord-a", orders_pb2.COURIER_EVENT_PICK_UP), ("ord-b", orders_pb2.COURIER_EVENT_PICK_UP),
                                 ("ord-b", orders_pb2.COURIER_EVENT_DELIVER), ("ord-a", orders_pb2.COURIER_EVENT_DELIVER)]
    assert all(r.courier_id == courier.id for m, r in streams.calls if m == "UpdateOrder")
    assert streams.codes(FOOD_WAIT) == [OK, OK] and all(s >= 0.9 for n, s, _ in streams.observed if n == FOOD_WAIT)
    await _until(lambda: not courier.busy and not courier.tasks)
    assert fleet.checker.assignments == {"ord-a": (courier.id, "bat-1"), "ord-b": (courier.id, "bat-1")}
    assert courier.busy_s > 0 and courier.busy_since is None
    assert fleet.city.contains(courier.position(time.perf_counter()))
    courier.assignment(_assignment("bat-1", _order("ord-a", courier.id, r1, far)))  # a feed replay after a reconnect
    assert not courier.busy and len(streams.updates()) == 4


async def test_an_order_joining_the_batch_on_the_way_is_picked_up_in_dispatch_s_new_order():
    streams = FakeStreams()
    _updated(streams)
    fleet = _fleet(streams, speed_kmh=10, time_scale=1)  # 2.8 m/s: 100 m takes 36 s
    courier = fleet.couriers[0]
    here = courier.position(time.perf_counter())
    far_restaurant, door = fleet.city.offset(here, 100, 0), fleet.city.offset(here, 0, 300)
    first = _order("ord-a", courier.id, far_restaurant, door)
    courier.assignment(_assignment("bat-1", first))
    await asyncio.sleep(0.05)
    assert streams.updates() == []  # on its way to the first restaurant
    fast = SeedParams(couriers=1, restaurants=5, speed_kmh=130, time_scale=600, pickup_handoff_s=0, dropoff_handoff_s=0)
    fleet.params = courier.params = fast  # the next legs at 21.7 km/s
    on_the_way = courier.position(time.perf_counter())
    joined = _order("ord-b", courier.id, on_the_way, fleet.city.offset(door, 0, 50))
    courier.assignment(_assignment("bat-1", joined, first))  # dispatch: b first (it is where the courier is)
    await _until(lambda: fleet.delivered == 2)
    assert [u for u in streams.updates() if u[1] == orders_pb2.COURIER_EVENT_PICK_UP] == [
        ("ord-b", orders_pb2.COURIER_EVENT_PICK_UP), ("ord-a", orders_pb2.COURIER_EVENT_PICK_UP)]


async def test_a_courier_waits_for_the_food_drops_a_cancelled_order_and_reports_a_taken_one():
    streams = FakeStreams()
    fleet = _fleet(streams, couriers=2)
    one, two = fleet.couriers
    here = one.position(time.perf_counter())
    restaurant = fleet.city.offset(here, 50, 0)
    made: list[float] = []

    def update(request):
        made.append(time.perf_counter())
        if request.order_id == "ord-cancelled":
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "cancelled")
        if request.order_id == "ord-taken":
            raise rpc_error(grpc.StatusCode.PERMISSION_DENIED, "not this courier's")
        return orders_pb2.UpdateOrderResponse()

    streams.answers["UpdateOrder"] = update
    streams.answers["GetOrder"] = lambda request: orders_pb2.GetOrderResponse(order=food_pb2.Order(
        order_id=request.order_id, state=food_pb2.ORDER_STATE_CANCELLED))
    ready_in = 1.0
    started = time.perf_counter()
    one.assignment(_assignment("bat-1", _order("ord-late-food", one.id, restaurant, fleet.city.offset(here, 0, 100),
                                               ready_in_s=ready_in)))
    await _until(lambda: fleet.delivered == 1)
    assert made[0] - started >= ready_in - 0.02  # picked up once the food was ready, not when it arrived
    assert [s for n, s, _ in streams.observed if n == FOOD_WAIT] == [0.0]  # the courier came first
    one.assignment(_assignment("bat-2", _order("ord-cancelled", one.id, restaurant, here)))
    await _until(lambda: fleet.cancelled_under == 1)
    await _until(lambda: not one.busy)
    two.assignment(_assignment("bat-3", _order("ord-taken", two.id, restaurant, here)))
    await _until(lambda: not two.busy and fleet.checker.breaches == 1)
    assert streams.codes(SINGLE_DISPATCH) == [DATA_LOSS] and fleet.checker.breached == {"ord-taken"}


async def test_an_order_on_two_couriers_feeds_is_a_breach():
    streams = FakeStreams()
    _updated(streams)
    fleet = _fleet(streams, couriers=2)
    one, two = fleet.couriers
    here = one.position(time.perf_counter())
    same = _order("ord-x", one.id, fleet.city.offset(here, 10, 0), fleet.city.offset(here, 20, 0))
    one.assignment(_assignment("bat-1", same))
    one.assignment(_assignment("bat-1", same))  # the same batch again: not a breach
    assert streams.codes(SINGLE_DISPATCH) == []
    two.assignment(_assignment("bat-2", same))
    assert streams.codes(SINGLE_DISPATCH) == [DATA_LOSS]
    await _until(lambda: not one.busy and not two.busy)


async def test_the_fleet_comes_online_adapts_its_pings_samples_utilisation_and_goes_offline():
    streams = FakeStreams()
    params = SeedParams(couriers=4, restaurants=5, ping_interval_s=1.0, busy_ping_interval_s=0.5,
                        utilisation_interval_s=0.05)
    fleet = Fleet(streams, _state(4, 5), params)
    await fleet.connect()
    assert streams.online == {c.id for c in fleet.couriers} and all(is_id(c.id) for c in fleet.couriers)
    assert len({c.id.rsplit("-", 1)[1] for c in fleet.couriers}) == 1  # one session suffix per connect
    frame = streams.frames[0]
    assert frame.status == rides_pb2.DRIVER_STATUS_AVAILABLE and fleet.city.contains((frame.point.lat_deg, frame.point.lng_deg))
    courier = fleet.couriers[0]
    assert courier.interval_s() == 1.0
    here = courier.position(time.perf_counter())
    courier.jobs["ord-1"] = Job("ord-1", "bat-1", here, here, 0, (0, 0))  # holding an order (not driven here)
    courier._held_changed()
    assert courier.interval_s() == 0.5
    await _until(lambda: any(f.driver_id == courier.id and f.status == rides_pb2.DRIVER_STATUS_BUSY for f in streams.frames))
    await asyncio.sleep(0.15)
    assert streams.codes(COURIER_UTILISATION) == []  # no customer yet: not under load
    assert fleet.next_customer() == f"fd{fleet.state.run}-w0-{fleet.session}-u1" and is_id(fleet.next_customer() + "-o1")
    await _until(lambda: streams.codes(COURIER_UTILISATION).count(BUSY) >= 2)
    assert set(streams.codes(COURIER_UTILISATION)) == {BUSY, IDLE}
    assert 0 < fleet.utilisation() <= 0.25 + 1e-9 and 0 < fleet.utilisation_under_load() <= 0.25 + 1e-9  # 1 of 4
    await fleet.close()
    assert streams.online == set()  # every courier reported OFFLINE before half-closing


async def test_the_fleet_fails_clearly_when_couriers_never_report():
    streams = FakeStreams()

    async def refuse(service, method, request, *, timeout_s=None):
        if method == "ReportLocations":
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "location is down")
        raise rpc_error(grpc.StatusCode.NOT_FOUND, "offline")

    streams.call = refuse
    fleet = Fleet(streams, _state(3, 5), SeedParams(couriers=3, restaurants=5, ready_timeout_s=0.3))
    with pytest.raises(grpc.aio.AioRpcError, match=r"only 0 of 3 couriers had reported") as caught:
        await fleet.connect()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and "ReportLocations UNAVAILABLE" in caught.value.details()
    await fleet.close()


# the single-dispatch checker ------------------------------------------------------------------------------------------

def _checker() -> tuple[Dispatches, list[str]]:
    codes: list[str] = []
    return Dispatches(codes.append), codes


def test_a_double_dispatch_is_caught_from_the_couriers_side():
    checker, codes = _checker()
    checker.assigned("c1", "bat-1", ["o1", "o2"])
    checker.assigned("c1", "bat-1", ["o1", "o2", "o3"])  # o3 joins the batch; o1, o2 repeated
    assert codes == []
    checker.assigned("c2", "bat-2", ["o1"])  # a second courier
    assert codes == [DATA_LOSS] and checker.breached == {"o1"}
    checker.assigned("c2", "bat-2", ["o1"])  # the same change again: one breach per change
    assert codes == [DATA_LOSS]
    checker.assigned("c1", "bat-9", ["o2"])  # the same courier, another batch
    assert codes == [DATA_LOSS, DATA_LOSS]
    checker.refused("o3", "c1", "UpdateOrder COURIER_EVENT_PICK_UP")
    assert codes == [DATA_LOSS] * 3 and checker.breached == {"o1", "o2", "o3"}
    checker.customer_saw("o1", "c2")
    checker.delivered("o1")
    assert codes == [DATA_LOSS] * 3  # no OK sample for a breached order


def test_a_double_dispatch_is_caught_from_the_customer_s_side():
    checker, codes = _checker()
    checker.assigned("c1", "bat-1", ["o1"])
    checker.customer_saw("o1", "c1")
    checker.customer_saw("o1", "c1")
    checker.delivered("o1")
    assert codes == [OK] and checker.delivered_ok == 1
    checker.customer_saw("o2", "c2")
    checker.customer_saw("o2", "c3")
    checker.customer_saw("o2", "c3")
    assert codes == [OK, DATA_LOSS]
    checker.customer_saw("o3", "")
    assert codes == [OK, DATA_LOSS, DATA_LOSS]
    checker.assigned("c4", "bat-4", ["o4"])
    checker.customer_saw("o4", "c5")  # this process's c4 was given it, the customer sees c5
    checker.delivered("o4")
    assert codes[-1] == DATA_LOSS
    checker.customer_saw("o5", "c9")  # another process's courier: only the customer's view is checked
    checker.delivered("o5")
    assert codes[-1] == OK and checker.delivered_ok == 2
    checker.delivered("o6")  # delivered without a courier ever shown
    assert codes[-1] == DATA_LOSS


# what a customer's stream yields --------------------------------------------------------------------------------------

def _update(state: int, courier: str = "", *, assigned_ms: int = 0, ready_ms: int = 0, delivered_ms: int = 0,
            promised_ms: int = 0, reason: int = food_pb2.CANCEL_REASON_UNSPECIFIED) -> orders_pb2.WatchOrderResponse:
    return orders_pb2.WatchOrderResponse(order=food_pb2.Order(
        order_id="ord-1", state=state, courier_id=courier, assigned_at_unix_ms=assigned_ms, ready_at_unix_ms=ready_ms,
        delivered_at_unix_ms=delivered_ms, promised_at_unix_ms=promised_ms, cancel_reason=reason))


def _position(courier: str, sent_ms: int) -> orders_pb2.WatchOrderResponse:
    return orders_pb2.WatchOrderResponse(courier_position=rides_pb2.DriverPosition(driver_id=courier, sent_at_unix_ms=sent_ms))


def test_the_order_view_measures_dispatch_pickup_delivery_on_time_and_tracking():
    checker, codes = _checker()
    view = OrderView("ord-1", 10.0, checker)
    assert view.update(_update(food_pb2.ORDER_STATE_PLACED), 10.3, 0) == []
    assert view.update(_update(food_pb2.ORDER_STATE_ASSIGNED, "c1", assigned_ms=5_000, ready_ms=8_000), 30.0, 0) == [
        (DISPATCH_TIME, 20.0, OK)]
    assert view.update(_position("c1", 1_000), 30.1, 9_000) == []  # TrackDriver's replay of the last known position
    assert view.update(_position("c1", 9_000), 30.2, 9_030) == [(TRACKING_DELAY, pytest.approx(0.03), OK)]
    assert view.update(_position("c1", 9_000), 30.3, 12_000) == []  # the same one again (a reopened stream)
    assert view.update(_update(food_pb2.ORDER_STATE_PICKED_UP, "c1"), 35.0, 0) == [(PICKUP_TIME, 25.0, OK)]
    assert view.update(_update(food_pb2.ORDER_STATE_DELIVERED, "c1", delivered_ms=50_000, promised_ms=52_000),
                       45.0, 0) == [(DELIVERY_TIME, 35.0, OK), (ON_TIME, 0.0, OK)]
    assert view.terminal and codes == [] and checker.seen["ord-1"] == "c1"
    late = OrderView("ord-2", 0.0, checker)
    assert late.update(_update(food_pb2.ORDER_STATE_ASSIGNED, "c2", assigned_ms=9_000, ready_ms=8_000), 5.0, 0) == [
        (DISPATCH_TIME, 5.0, LATE)]  # assigned after the food was ready
    assert late.update(_update(food_pb2.ORDER_STATE_DELIVERED, "c2", delivered_ms=60_500, promised_ms=60_000),
                       9.0, 0)[-1] == (ON_TIME, 0.5, LATE)
    # A stream reopened after the pickup shows PICKED_UP first: dispatch and pickup are seen at once.
    skipped = OrderView("ord-3", 0.0, checker)
    assert [m for m, _, _ in skipped.update(_update(food_pb2.ORDER_STATE_PICKED_UP, "c3"), 4.0, 0)] == [DISPATCH_TIME, PICKUP_TIME]


def test_an_order_no_courier_took_is_a_failed_dispatch_and_a_second_courier_a_breach():
    checker, codes = _checker()
    view = OrderView("ord-1", 10.0, checker)
    assert view.update(_update(food_pb2.ORDER_STATE_CANCELLED, reason=food_pb2.CANCEL_REASON_NO_COURIER), 70.0, 0) == [
        (DISPATCH_TIME, 60.0, NO_COURIER)]
    assert view.terminal and NO_COURIER == "NOT_FOUND"
    other = OrderView("ord-2", 0.0, checker)
    other.update(_update(food_pb2.ORDER_STATE_ASSIGNED, "c1"), 1.0, 0)
    other.update(_position("c2", 100), 1.5, 200)
    assert codes == [DATA_LOSS]


class FakeCaller:
    """A journey's Caller: unary answers by method, measures recorded."""

    def __init__(self, answers: dict) -> None:
        self.answers = answers
        self.requests: list[tuple[str, object]] = []
        self.observed: list[tuple[str, float, str]] = []
        self._intended = time.perf_counter()

    @property
    def intended_at(self) -> float:
        return self._intended

    async def __call__(self, service, method, request):
        self.requests.append((method, request))
        answer = self.answers[method]
        return answer(request) if callable(answer) else answer

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))


async def test_the_order_journey_places_an_order_and_watches_it_to_the_door():
    streams = FakeStreams()
    fleet = _fleet(streams, restaurants=20)
    now_ms = int(time.perf_counter() * 1000)
    streams.watch_updates = [
        _update(food_pb2.ORDER_STATE_PLACED),
        _update(food_pb2.ORDER_STATE_ASSIGNED, "c1", assigned_ms=now_ms, ready_ms=now_ms + 5_000),
        _position("c1", now_ms), _position("c1", now_ms + 1),
        _update(food_pb2.ORDER_STATE_PICKED_UP, "c1"),
        _update(food_pb2.ORDER_STATE_DELIVERED, "c1", delivered_ms=now_ms + 9_000, promised_ms=now_ms + 10_000),
    ]
    placed = food_pb2.Order(order_id="ord-1", state=food_pb2.ORDER_STATE_PLACED)
    caller = FakeCaller({"PlaceOrder": orders_pb2.PlaceOrderResponse(order=placed)})
    await order(caller, OrderParams(cancel_p=0.0), fleet, random.Random(2))
    method, request = caller.requests[0]
    assert method == "PlaceOrder" and is_id(request.customer_id) and is_id(request.client_request_id)
    assert request.restaurant_id in {r.restaurant_id for r in fleet.restaurants} and 1 <= request.items <= 6
    restaurant = next(r for r in fleet.restaurants if r.restaurant_id == request.restaurant_id)
    assert 490 <= distance_m(restaurant.point, (request.dropoff.lat_deg, request.dropoff.lng_deg)) <= 4010
    assert [(m, c) for m, _, c in caller.observed] == [(DISPATCH_TIME, OK), (TRACKING_DELAY, OK), (PICKUP_TIME, OK),
                                                       (DELIVERY_TIME, OK), (ON_TIME, OK)]
    assert streams.codes(SINGLE_DISPATCH) == [OK]

    def refused(request):
        raise rpc_error(grpc.StatusCode.NOT_FOUND, "unknown restaurant")

    failing = FakeCaller({"PlaceOrder": refused})
    with pytest.raises(grpc.aio.AioRpcError):
        await order(failing, OrderParams(), fleet, random.Random(3))
    assert [(m, c) for m, _, c in failing.observed] == [(DISPATCH_TIME, "NOT_FOUND")]


async def test_a_customer_who_cancels_ends_ok_and_an_order_nobody_took_ends_not_found():
    streams = FakeStreams()
    fleet = _fleet(streams, restaurants=20)
    placed = food_pb2.Order(order_id="ord-1", state=food_pb2.ORDER_STATE_PLACED)
    cancelled = _update(food_pb2.ORDER_STATE_CANCELLED, reason=food_pb2.CANCEL_REASON_CUSTOMER)
    gate = FakeFeed([_update(food_pb2.ORDER_STATE_PLACED)])
    streams.server_stream = lambda service, method, request: gate

    def cancel(request):
        gate.put(cancelled)
        gate.put(None)
        return orders_pb2.CancelOrderResponse(order=cancelled.order)

    caller = FakeCaller({"PlaceOrder": orders_pb2.PlaceOrderResponse(order=placed), "CancelOrder": cancel})
    await order(caller, OrderParams(cancel_p=1.0, cancel_within_s=0.05), fleet, random.Random(4))
    assert [m for m, _ in caller.requests] == ["PlaceOrder", "CancelOrder"] and caller.observed == []
    streams.server_stream = FakeStreams.server_stream.__get__(streams)
    streams.watch_updates = [_update(food_pb2.ORDER_STATE_CANCELLED, reason=food_pb2.CANCEL_REASON_NO_COURIER)]
    nobody = FakeCaller({"PlaceOrder": orders_pb2.PlaceOrderResponse(order=placed)})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await order(nobody, OrderParams(cancel_p=0.0), fleet, random.Random(5))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert [(m, c) for m, _, c in nobody.observed] == [(DISPATCH_TIME, NO_COURIER)]


# the profile, the SLOs, the contracts ---------------------------------------------------------------------------------

def _profile_document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "food.yaml").read_text())


def test_the_workload_declares_its_services_and_measures():
    workload = get_workload("food")
    assert workload.services == ("rides-location", "food-restaurants", "food-orders", "food-dispatch")
    assert {"dispatch_time", "pickup_time", "delivery_time", "on_time", "tracking_delay", "food_wait",
            "courier_utilisation", "single_dispatch"} == set(workload.measures)
    assert {"casemesh.food.v1.OrderService/PlaceOrder", "casemesh.food.v1.FoodDispatchService/ReceiveAssignments",
            "casemesh.rides.v1.LocationService/ReportLocations"} <= set(workload.rpcs)
    assert list(workload.journeys) == ["order"]


def test_the_profile_s_blocks_are_valid_and_its_settings_run_on_the_simulated_city_s_clock():
    """Seed and journey parameters, and the services' settings that are times of the city: the couriers' speed
    (speed_kmh x time_scale / 3.6) and road detour, and the real-world defaults divided by time_scale."""
    document = _profile_document()
    params = SeedParams.model_validate(document["seed"])
    assert params.couriers == 150 and params.restaurants == 300 and params.time_scale == 30
    assert document["services"] == ["rides-location", "food-restaurants", "food-orders", "food-dispatch"]
    orders, dispatch = document["settings"]["food-orders"], document["settings"]["food-dispatch"]
    for settings in (orders, dispatch):
        assert settings["courier_speed_mps"] == pytest.approx(params.speed_mps)
        assert settings["detour_factor"] == params.detour_factor
    assert orders["pickup_wait_s"] == pytest.approx(params.handoff_s)
    assert orders["eta_noise_s"] == pytest.approx(60 / params.time_scale)
    assert orders["eta_history_max_kitchen_s"] == pytest.approx(1800 / params.time_scale)
    assert dispatch["max_batch_delay_s"] == pytest.approx(120 / params.time_scale)
    assert dispatch["stop_s"] == pytest.approx(params.pickup_handoff_s / params.time_scale)
    assert params.pickup_handoff_s == params.dropoff_handoff_s  # one stop_s for both kinds of stop
    journey = document["journeys"][0]
    order_params = OrderParams.model_validate(journey["params"])
    drain_s = document["request_timeout_ms"] / 1000 * 10 + 5  # harness.driver: the run's drain
    assert order_params.max_order_s < drain_s
    assert "seeds/001_58dfc580020147d2.txt line 38" in document["metadata"]["source"]


def test_the_slo_file_loads_against_the_workload():
    workload = get_workload("food")
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "food.slo.yaml", rpcs=workload.rpcs,
                                                 journeys=["order", *workload.measures])}
    assert set(slos) == {"dispatch-time", "on-time", "order-availability", "food-wait", "courier-tracking-delay",
                         "single-dispatch", "dispatch-time-server", "on-time-server", "order-availability-server",
                         "courier-tracking-delay-location"}
    assert slos["dispatch-time"].target == 0.95 and slos["dispatch-time"].good.codes == ("OK",)
    assert slos["on-time"].target == 0.85 and slos["order-availability"].target == 0.99
    assert slos["courier-tracking-delay"].good.latency_le_ms == 1000 and slos["food-wait"].good.latency_le_ms == 10_000
    assert slos["dispatch-time-server"].twin_of == "dispatch-time"
    text = (PROFILES_DIR / "food.slo.yaml").read_text()
    assert "casemesh_food_dispatch_decision_seconds" in text and 'casemesh_food_orders_on_time_total{outcome="on_time"}' in text
    assert "seeds/001_58dfc580020147d2.txt line 38" in text


@pytest.mark.skipif(not all(name in SERVICES for name in FOOD_SERVICES),
                    reason="the food services are not in services/catalog.py yet (the profile names them)")
def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("food")
    assert profile.seed.couriers == 150 and profile.arrival.rate_per_s == 3 and profile.request_timeout_ms == 10_000
    assert profile.settings["food-orders"]["courier_speed_mps"] == profile.settings["food-dispatch"]["courier_speed_mps"] \
        == pytest.approx(profile.seed.speed_mps)
    assert {"dispatch-time", "on-time", "order-availability", "single-dispatch"} <= {slo.name for slo in profile.slos}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.food.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2 and (node.module or "").startswith("rides"):
                assert node.module == "rides.city", f"{source.name} imports ..{node.module}: only the shared city"
    code = ("import sys; from casemesh.harness.workloads import get_workload; get_workload('food'); "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    # The contract modules (food's, and rides' through the shared city) and what they are made of: the shared
    # service area and identifier rule (and its error type).
    assert done.stdout.strip() == str(sorted([
        "casemesh.services.food", "casemesh.services.food.contract", "casemesh.services.rides",
        "casemesh.services.rides.contract", "casemesh.services.geo", "casemesh.services.geo.area",
        "casemesh.services.runtime", "casemesh.services.runtime.identifiers", "casemesh.services.runtime.errors"]))
