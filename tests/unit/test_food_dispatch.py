"""food-dispatch (services/food/dispatch): the batching decision's pure functions, regional dispatch with fake order and
location services (due times, batching on and off, ABORTED never reassigned, FAILED_PRECONDITION tries the next
courier, a lost answer retried as it was, release after max_dispatch_s, the recovery sweep, regions independent of
each other), the courier feeds, and the status codes and field names over gRPC.

The dispatcher's clock is a fake (:class:`Clock`) and most tests run ticks by hand (``run_regions=False``): no test
depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math

import grpc
import h3
import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import dispatch_pb2, dispatch_pb2_grpc, food_pb2, orders_pb2, orders_pb2_grpc
from casemesh.rides.v1 import location_pb2, rides_pb2
from casemesh.services.food.dispatch import batching, validation
from casemesh.services.food.dispatch.feeds import AssignmentFeeds, FeedEnded
from casemesh.services.food.dispatch.regions import RegionalDispatcher, new_batch_id
from casemesh.services.food.dispatch.service import DEFINITION, ORDERS_CALLERS, FoodDispatchServicer, OrdersClient
from casemesh.services.food.dispatch.settings import FoodDispatchSettings
from casemesh.services.runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

WAIT_S = 10.0
T0 = 1_700_000_000.0
#: A restaurant in the Mission, and a second region's point in the Sunset (another H3 resolution-6 cell).
R = (37.7749, -122.4194)
FAR_REGION = (37.72, -122.48)
MODEL = batching.TravelModel(speed_mps=8.3, detour_factor=1.3)


def north_of(point: tuple[float, float], metres: float) -> tuple[float, float]:
    return point[0] + metres / 111_195, point[1]


def latlng(point: tuple[float, float]) -> geo_pb2.LatLng:
    return geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])


class Clock:
    """The dispatcher's clock: Unix seconds, moved by the test."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class FakeLocation:
    """FindNearbyDrivers over couriers: id → (point, received_at_s); only AVAILABLE ones, nearest first."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.couriers: dict[str, tuple[tuple[float, float], float]] = {}
        self.calls: list[dict] = []
        self.fail = False

    def put(self, courier_id: str, point: tuple[float, float], received_at_s: float | None = None) -> None:
        self.couriers[courier_id] = (point, self.clock.now if received_at_s is None else received_at_s)

    async def find(self, lat_deg, lng_deg, radius_m, limit, exclude):
        self.calls.append({"radius_m": radius_m, "limit": limit, "exclude": list(exclude)})
        await asyncio.sleep(0)
        if self.fail:
            raise ConnectionError("location is down")
        found = []
        for courier_id, (point, received_at_s) in self.couriers.items():
            distance = h3.great_circle_distance((lat_deg, lng_deg), point, unit="m")
            if distance <= radius_m and courier_id not in exclude:
                found.append(location_pb2.NearbyDriver(position=rides_pb2.DriverPosition(
                    driver_id=courier_id, point=latlng(point), status=rides_pb2.DRIVER_STATUS_AVAILABLE,
                    received_at_unix_ms=int(received_at_s * 1000)), distance_m=distance))
        found.sort(key=lambda d: d.distance_m)
        return found[:limit]


class FakeOrders:
    """The order service's rules for AssignCourier (compare-and-set, one batch per courier, two orders per batch,
    retries), ReleaseOrder and ListOpenOrders, over a dict of orders."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.orders: dict[str, food_pb2.Order] = {}
        self.assigns: list[tuple[tuple[str, ...], str, str]] = []
        self.gates: dict[str, asyncio.Event] = {}  # order id → AssignCourier waits for it
        self.down = False
        self.lose_answers = 0  # assignments applied whose answer is lost (ConnectionError)
        self.listed: list[bool] = []  # ListOpenOrders' include_assigned, call by call

    def add(self, order_id: str, pickup=R, dropoff_m: float = 1_000.0, ready_in_s: float = 5.0,
            placed_ago_s: float = 0.0) -> food_pb2.Order:
        order = food_pb2.Order(
            order_id=order_id, customer_id=f"cust-{order_id}", restaurant_id="rest-1", pickup=latlng(pickup),
            dropoff=latlng(north_of(pickup, dropoff_m)), items=2, state=food_pb2.ORDER_STATE_PLACED,
            placed_at_unix_ms=int((self.clock.now - placed_ago_s) * 1000),
            ready_at_unix_ms=int((self.clock.now + ready_in_s) * 1000))
        self.orders[order_id] = order
        return order

    def held_by(self, courier_id: str) -> list[food_pb2.Order]:
        return [o for o in self.orders.values() if o.courier_id == courier_id
                and o.state in (food_pb2.ORDER_STATE_ASSIGNED, food_pb2.ORDER_STATE_PICKED_UP)]

    async def assign(self, order_ids, courier_id, batch_id):
        self.assigns.append((tuple(order_ids), courier_id, batch_id))
        gate = self.gates.get(order_ids[0])
        if gate is not None:
            await gate.wait()
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("orders is down")
        orders = []
        for order_id in order_ids:
            if order_id not in self.orders:
                raise NotFound(order_id)
            orders.append(self.orders[order_id])
        if all(o.state == food_pb2.ORDER_STATE_ASSIGNED and o.courier_id == courier_id and o.batch_id == batch_id
               for o in orders):
            return [food_pb2.Order.FromString(o.SerializeToString()) for o in orders]  # a retry
        if any(o.state != food_pb2.ORDER_STATE_PLACED for o in orders):
            raise Aborted("an order is no longer PLACED")
        held = self.held_by(courier_id)
        if any(o.batch_id != batch_id for o in held):
            raise FailedPrecondition(f"courier {courier_id} holds another batch")
        if any(o.state == food_pb2.ORDER_STATE_PICKED_UP for o in held):
            raise FailedPrecondition(f"batch {batch_id} was picked up")
        if len(held) + len(orders) > 2:
            raise FailedPrecondition("the batch would exceed max_batch_orders")
        for order in orders:
            order.state, order.courier_id, order.batch_id = food_pb2.ORDER_STATE_ASSIGNED, courier_id, batch_id
            order.assigned_at_unix_ms = int(self.clock.now * 1000)
        if self.lose_answers:
            self.lose_answers -= 1
            raise ConnectionError("the answer was lost")
        return [food_pb2.Order.FromString(o.SerializeToString()) for o in orders]

    async def release(self, order_id):
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("orders is down")
        order = self.orders.get(order_id)
        if order is None:
            raise NotFound(order_id)
        if order.state == food_pb2.ORDER_STATE_PLACED:
            order.state, order.cancel_reason = food_pb2.ORDER_STATE_CANCELLED, food_pb2.CANCEL_REASON_NO_COURIER
        elif order.state != food_pb2.ORDER_STATE_CANCELLED:
            raise FailedPrecondition(f"order {order_id} is not PLACED")
        return order

    def held(self, order_id: str, courier_id: str, batch_id: str, state=food_pb2.ORDER_STATE_ASSIGNED,
             **add) -> food_pb2.Order:
        """An order already given to ``courier_id`` (by a dispatch before a restart)."""
        order = self.add(order_id, **add)
        order.state, order.courier_id, order.batch_id = state, courier_id, batch_id
        order.assigned_at_unix_ms = int(self.clock.now * 1000) + len(self.orders)  # in the order added
        return order

    async def open_orders(self, limit, include_assigned=False):
        self.listed.append(include_assigned)
        await asyncio.sleep(0)
        if self.down:
            raise ConnectionError("orders is down")
        placed = [o for o in self.orders.values() if o.state == food_pb2.ORDER_STATE_PLACED]
        if include_assigned:
            placed += [o for o in self.orders.values() if o.state == food_pb2.ORDER_STATE_ASSIGNED]
        return placed[:limit]


class Courier:
    """A courier's app: its feed, and every assignment received on it."""

    def __init__(self, dispatcher: RegionalDispatcher, courier_id: str) -> None:
        self.courier_id = courier_id
        self.feed = dispatcher.feeds.open(courier_id)
        self.events: list[dispatch_pb2.ReceiveAssignmentsResponse] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(FeedEnded):
            while True:
                self.events.append(await self.feed.next())


_MADE: list[RegionalDispatcher] = []


@pytest.fixture(autouse=True)
async def _close_dispatchers():
    """Every dispatcher a test made is closed after it (its region tasks cancelled, its feeds ended)."""
    yield
    while _MADE:
        dispatcher = _MADE.pop()
        await dispatcher.close()
        dispatcher.feeds.end_all(grpc.StatusCode.UNAVAILABLE, "test over")
        await asyncio.sleep(0)


def make(run_regions: bool = False, **overrides) -> tuple[RegionalDispatcher, FakeOrders, FakeLocation, Clock]:
    settings = FoodDispatchSettings(**overrides)
    clock = Clock()
    orders, location = FakeOrders(clock), FakeLocation(clock)
    dispatcher = RegionalDispatcher(settings, orders, location,
                                    AssignmentFeeds(settings.max_feeds, settings.feed_queue_size), clock,
                                    run_regions=run_regions)
    _MADE.append(dispatcher)
    return dispatcher, orders, location, clock


def couriers_at(dispatcher: RegionalDispatcher, location: FakeLocation, distances_m: list[float],
                origin: tuple[float, float] = R, prefix: str = "c") -> list[Courier]:
    """Couriers c0, c1, ... at these distances north of ``origin``, each AVAILABLE with a feed."""
    couriers = []
    for i, distance in enumerate(distances_m):
        location.put(f"{prefix}{i}", north_of(origin, distance))
        couriers.append(Courier(dispatcher, f"{prefix}{i}"))
    return couriers


async def eventually(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def tick(dispatcher: RegionalDispatcher, point: tuple[float, float] = R) -> int:
    return await dispatcher.tick(dispatcher.region_of(*point))


def decisions(outcome: str) -> float:
    return REGISTRY.get_sample_value("casemesh_food_dispatch_decisions_total", {"outcome": outcome}) or 0.0


# ----------------------------------------------------------------------------- the batching decision (pure)


def _job(pickup, dropoff_m: float, ready_at_s: float = T0, south: bool = False) -> batching.Job:
    return batching.Job(pickup, north_of(pickup, -dropoff_m if south else dropoff_m), ready_at_s)


def test_solo_and_combined_trips():
    km_s = 1_000 * 1.3 / 8.3
    alone = batching.solo(MODEL, T0, 60.0, _job(R, 1_000, ready_at_s=T0 + 100))  # waits for the food
    assert alone.delivered_at_s[0] == pytest.approx(T0 + 100 + km_s, rel=1e-3)
    assert alone.courier_s == pytest.approx(100 + km_s, rel=1e-3)
    held, new = _job(R, 1_000), _job(R, 1_500)  # same restaurant, the new dropoff 500 m further north
    together = batching.combined(MODEL, T0, 0.0, held, new)
    assert together.delivered_at_s[0] == pytest.approx(T0 + km_s, rel=1e-3)  # the nearer dropoff first
    assert together.delivered_at_s[1] == pytest.approx(T0 + 1.5 * km_s, rel=1e-3)
    assert together.courier_s == pytest.approx(1.5 * km_s, rel=1e-3)
    flipped = batching.combined(MODEL, T0, 0.0, _job(R, 1_500), _job(R, 1_000))
    assert flipped.delivered_at_s[1] < flipped.delivered_at_s[0]


def test_batches_when_it_saves_courier_time_within_the_delay_limit():
    held, new = _job(R, 1_000), _job(R, 1_100)
    decision = batching.decide(MODEL, T0, held, 10.0, new, free_approach_s=300.0, batch_radius_m=500,
                               max_delay_s=120)
    assert decision.batch and decision.result == batching.BATCH
    assert decision.saved_s > 300  # the second courier's approach and trip, less a 100 m detour
    assert decision.held_delay_s == pytest.approx(0, abs=1e-6) and decision.new_delay_s < 0
    # Nobody free for the new order: the batch saves a whole courier; only the held order's delay limits it.
    alone = batching.decide(MODEL, T0, held, 10.0, new, None, batch_radius_m=500, max_delay_s=120)
    assert alone.batch and math.isinf(alone.saved_s)


def test_does_not_batch_far_restaurants_or_without_a_saving():
    held = _job(R, 1_000)
    far = _job(north_of(R, -800), 1_000)
    assert batching.decide(MODEL, T0, held, 0.0, far, 0.0, batch_radius_m=500, max_delay_s=120).result == batching.FAR
    # A free courier at the restaurant and the dropoffs in opposite directions: two couriers cost less.
    opposite = _job(R, 1_000, south=True)
    decision = batching.decide(MODEL, T0, held, 0.0, opposite, 0.0, batch_radius_m=500, max_delay_s=10_000)
    assert decision.result == batching.NO_SAVING and decision.saved_s < 0


def test_does_not_batch_when_an_order_would_be_delayed_too_much():
    held, opposite = _job(R, 1_000), _job(R, 1_000, south=True)
    # A second courier 180 s away costs more courier time than the batch's 2 km between the dropoffs, but the new
    # order would be delivered after the held one's, 133 s later than by its own courier.
    decision = batching.decide(MODEL, T0, held, 0.0, opposite, 180.0, batch_radius_m=500, max_delay_s=120)
    assert decision.result == batching.TOO_LATE and decision.saved_s > 0
    assert decision.new_delay_s == pytest.approx(133, abs=1)
    # The new order's food is ready 5 minutes after the held one's: the held customer would wait for it.
    late = _job(R, 1_100, ready_at_s=T0 + 300)
    decision = batching.decide(MODEL, T0, held, 0.0, late, None, batch_radius_m=500, max_delay_s=120)
    assert decision.result == batching.TOO_LATE and decision.held_delay_s == pytest.approx(300, abs=1)
    assert batching.decide(MODEL, T0, held, 0.0, late, None, batch_radius_m=500, max_delay_s=400).batch


def test_a_batch_may_spend_an_orders_slack_but_not_break_its_promise():
    km_s = 1_000 * 1.3 / 8.3
    held = _job(R, 1_000)  # delivered alone at T0 + km_s
    late = _job(R, 1_100, ready_at_s=T0 + 60)  # the held customer would wait 60 s for the new order's food
    assert batching.decide(MODEL, T0, held, 0.0, late, None, batch_radius_m=500, max_delay_s=120).batch
    promised = dataclasses.replace(held, promised_at_s=T0 + km_s + 30)  # 30 s of slack: 60 s breaks the promise
    decision = batching.decide(MODEL, T0, promised, 0.0, late, None, batch_radius_m=500, max_delay_s=120)
    assert decision.result == batching.TOO_LATE and decision.held_delay_s == pytest.approx(60, abs=1)
    roomy = dataclasses.replace(held, promised_at_s=T0 + km_s + 90)
    assert batching.decide(MODEL, T0, roomy, 0.0, late, None, batch_radius_m=500, max_delay_s=120).batch
    # An order its own trip would deliver late anyway is not protected: only max_delay_s limits its delay.
    already_late = dataclasses.replace(held, promised_at_s=T0)
    assert batching.decide(MODEL, T0, already_late, 0.0, late, None, batch_radius_m=500, max_delay_s=120).batch
    # The same rule for the new order against its own courier's trip.
    new = dataclasses.replace(_job(R, 1_000, south=True), promised_at_s=T0 + 400)  # alone at +337 s, batched +471
    decision = batching.decide(MODEL, T0, held, 0.0, new, 180.0, batch_radius_m=500, max_delay_s=400)
    assert decision.result == batching.TOO_LATE and decision.saved_s > 0


def test_travel_model_and_batch_ids():
    assert MODEL.travel_s(R, north_of(R, 1_000)) == pytest.approx(1_000 * 1.3 / 8.3, rel=1e-3)
    with pytest.raises(ValueError):
        batching.TravelModel(0, 1.3)
    batch_id = new_batch_id()
    assert batch_id.startswith("bat-") and len(batch_id) == 30 and batch_id != new_batch_id()


# ----------------------------------------------------------------------------- regional dispatch


async def test_an_order_is_dispatched_only_once_due():
    dispatcher, orders, location, clock = make(dispatch_lead_s=5)
    [c0] = couriers_at(dispatcher, location, [100])
    order = orders.add("ord-1", ready_in_s=100)
    assert dispatcher.dispatch(order)
    assert not dispatcher.dispatch(order)  # queued already: nothing done
    assert await tick(dispatcher) == 0
    assert not location.calls and not orders.assigns  # not due: ready in 100 s, lead 5 s
    clock.now += 94
    assert await tick(dispatcher) == 0
    clock.now += 1  # ready_at - now = 5: due
    assert await tick(dispatcher) == 1
    assert orders.orders["ord-1"].courier_id == "c0"
    await eventually(lambda: c0.events, "the assignment on c0's feed")
    event = c0.events[0]
    assert event.batch_id.startswith("bat-") and [o.order_id for o in event.orders] == ["ord-1"]
    assert event.orders[0].state == food_pb2.ORDER_STATE_ASSIGNED
    assert dispatcher.queued("ord-1") is None
    assert not dispatcher.dispatch(order)  # finished moments ago: a late duplicate is ignored


async def test_nearest_courier_with_a_feed_gets_the_order_and_the_radius_widens():
    dispatcher, orders, location, clock = make()
    location.put("feedless", north_of(R, 50))  # no ReceiveAssignments open: never given an order
    [far] = couriers_at(dispatcher, location, [8_000])
    dispatcher.dispatch(orders.add("ord-1"))
    await tick(dispatcher)
    assert [c["radius_m"] for c in location.calls] == [3_000, 6_000, 12_000]
    assert orders.orders["ord-1"].courier_id == "c0"
    assert far.courier_id == "c0"


async def test_a_second_order_nearby_joins_the_first_couriers_batch():
    dispatcher, orders, location, clock = make()
    c0, c1 = couriers_at(dispatcher, location, [100, 2_000])
    batched_before = decisions("batched")
    dispatcher.dispatch(orders.add("ord-a", dropoff_m=1_000, placed_ago_s=2))
    dispatcher.dispatch(orders.add("ord-b", dropoff_m=1_100, placed_ago_s=1))
    assert await tick(dispatcher) == 2
    a, b = orders.orders["ord-a"], orders.orders["ord-b"]
    assert a.courier_id == b.courier_id == "c0" and a.batch_id == b.batch_id
    assert orders.assigns[1] == (("ord-b",), "c0", a.batch_id)
    await eventually(lambda: len(c0.events) == 2, "both assignments on c0's feed")
    assert [o.order_id for o in c0.events[1].orders] == ["ord-a", "ord-b"]  # the batch so far, pickup order
    assert not c1.events
    assert decisions("batched") == batched_before + 1
    # The batch holds two orders: a third goes to another courier.
    dispatcher.dispatch(orders.add("ord-c", dropoff_m=1_050))
    await tick(dispatcher)
    assert orders.orders["ord-c"].courier_id == "c1"


async def test_batching_off_gives_every_order_its_own_courier():
    dispatcher, orders, location, clock = make(batching=False)
    couriers_at(dispatcher, location, [100, 2_000])
    dispatcher.dispatch(orders.add("ord-a", placed_ago_s=2))
    dispatcher.dispatch(orders.add("ord-b", dropoff_m=1_100, placed_ago_s=1))
    await tick(dispatcher)
    assert orders.orders["ord-a"].courier_id == "c0" and orders.orders["ord-b"].courier_id == "c1"
    assert orders.orders["ord-a"].batch_id != orders.orders["ord-b"].batch_id


async def test_restaurants_beyond_the_batch_radius_are_not_batched():
    dispatcher, orders, location, clock = make(batch_radius_m=500)
    couriers_at(dispatcher, location, [100, 1_500])
    dispatcher.dispatch(orders.add("ord-a", placed_ago_s=2))
    dispatcher.dispatch(orders.add("ord-b", pickup=north_of(R, 900), placed_ago_s=1))
    await tick(dispatcher)
    assert orders.orders["ord-a"].courier_id == "c0" and orders.orders["ord-b"].courier_id == "c1"


async def test_a_refused_join_drops_the_courier_from_batch_candidates():
    dispatcher, orders, location, clock = make()
    couriers_at(dispatcher, location, [100, 2_000])
    dispatcher.dispatch(orders.add("ord-a"))
    await tick(dispatcher)
    orders.orders["ord-a"].state = food_pb2.ORDER_STATE_PICKED_UP  # earlier than dispatch estimated
    dispatcher.dispatch(orders.add("ord-b", dropoff_m=1_100))
    await tick(dispatcher)
    assert orders.assigns[1][1] == "c0" and orders.assigns[2][1] == "c1"  # the join refused, then a new batch
    assert orders.orders["ord-b"].courier_id == "c1"
    assert not dispatcher.couriers.candidates() or all(h.courier_id != "c0" for h in dispatcher.couriers.candidates())


async def test_aborted_drops_the_order_and_never_gives_it_to_another_courier():
    dispatcher, orders, location, clock = make()
    couriers_at(dispatcher, location, [100, 200, 300])
    cancelled = orders.add("ord-cancelled", placed_ago_s=2)
    taken = orders.add("ord-taken", placed_ago_s=1)
    dispatcher.dispatch(cancelled)
    dispatcher.dispatch(taken)
    cancelled.state = food_pb2.ORDER_STATE_CANCELLED
    taken.state, taken.courier_id, taken.batch_id = food_pb2.ORDER_STATE_ASSIGNED, "elsewhere", "bat-x"
    aborted_before = decisions("aborted")
    assert await tick(dispatcher) == 2
    assert [a[0] for a in orders.assigns] == [("ord-cancelled",), ("ord-taken",)]  # one attempt each
    assert decisions("aborted") == aborted_before + 2
    assert dispatcher.queued("ord-cancelled") is None and dispatcher.queued("ord-taken") is None
    assert await tick(dispatcher) == 0 and len(orders.assigns) == 2
    assert taken.courier_id == "elsewhere" and dispatcher.couriers.holding("c0") is None  # c0 still free
    assert await dispatcher.sweep() == 0  # neither is PLACED


async def test_failed_precondition_tries_the_next_courier():
    dispatcher, orders, location, clock = make()
    c0, c1 = couriers_at(dispatcher, location, [100, 200])
    other = orders.add("ord-other")  # c0 holds a batch dispatch does not know of (made before a restart)
    other.state, other.courier_id, other.batch_id = food_pb2.ORDER_STATE_ASSIGNED, "c0", "bat-earlier"
    dispatcher.dispatch(orders.add("ord-1", pickup=north_of(R, 10)))
    await tick(dispatcher)
    assert [a[1] for a in orders.assigns] == ["c0", "c1"]
    assert orders.orders["ord-1"].courier_id == "c1"
    held = dispatcher.couriers.holding("c0")
    assert held is not None and not held.batchable  # known held now: not picked again until seen free
    # c0 reports AVAILABLE again too soon after: still held. Later than the grace: free.
    dispatcher.dispatch(orders.add("ord-2", pickup=north_of(R, -2_000)))
    location.put("c0", north_of(R, 100), received_at_s=clock.now + 1)
    location.couriers.pop("c1")
    clock.now += 1
    await tick(dispatcher)
    assert orders.orders["ord-2"].state == food_pb2.ORDER_STATE_PLACED and len(orders.assigns) == 2
    other.state = food_pb2.ORDER_STATE_DELIVERED
    clock.now += 2
    location.put("c0", north_of(R, 100))
    await tick(dispatcher)
    assert orders.orders["ord-2"].courier_id == "c0"


async def test_a_lost_answer_is_retried_as_the_same_assignment():
    dispatcher, orders, location, clock = make()
    c0, c1 = couriers_at(dispatcher, location, [100, 200])
    dispatcher.dispatch(orders.add("ord-1"))
    orders.lose_answers = 1
    await tick(dispatcher)
    assert dispatcher.queued("ord-1").pending is not None  # applied at the order service, the answer lost
    location.couriers.pop("c0")  # the courier is BUSY now: not found; the retry does not need a search
    await tick(dispatcher)
    assert orders.assigns[0] == orders.assigns[1]  # the same courier and batch: AssignCourier's retry
    assert dispatcher.queued("ord-1") is None
    await eventually(lambda: c0.events, "the assignment on c0's feed")
    assert not c1.events and orders.orders["ord-1"].courier_id == "c0"


async def test_a_courier_whose_feed_missed_the_assignment_stays_held_until_it_reconnects():
    dispatcher, orders, location, clock = make(free_grace_s=2)
    [c0] = couriers_at(dispatcher, location, [100])
    gate = orders.gates["ord-1"] = asyncio.Event()
    dispatcher.dispatch(orders.add("ord-1"))
    ticking = asyncio.create_task(tick(dispatcher))
    await eventually(lambda: orders.assigns, "the AssignCourier in flight")
    c0.feed.end(grpc.StatusCode.UNAVAILABLE, "the app lost its connection")
    dispatcher.feeds.close(c0.feed)
    gate.set()
    await ticking
    assert orders.orders["ord-1"].courier_id == "c0"
    # The app never heard of it and goes on reporting AVAILABLE: not free, whatever the grace.
    clock.now += 10
    location.put("c0", north_of(R, 100))
    again = Courier(dispatcher, "c0")
    dispatcher.dispatch(orders.add("ord-2", pickup=north_of(R, -2_000)))
    await tick(dispatcher)
    assert orders.orders["ord-2"].state == food_pb2.ORDER_STATE_PLACED and len(orders.assigns) == 1
    # Its reconnect gets the batch; the grace runs from then.
    assert [o.order_id for o in dispatcher.reconnected("c0").orders] == ["ord-1"]
    assert dispatcher.reconnected("nobody") is None
    assert again.courier_id == "c0"


async def test_no_courier_within_max_dispatch_s_releases_the_order():
    dispatcher, orders, location, clock = make(max_dispatch_s=60)
    dispatcher.dispatch(orders.add("ord-1"))
    old = orders.add("ord-old", placed_ago_s=3_600, ready_in_s=-3_500)  # recovered late: one attempt first
    dispatcher.dispatch(old)
    await tick(dispatcher)
    assert dispatcher.queued("ord-1") is not None and dispatcher.queued("ord-old") is not None
    released_before = decisions("released")
    await tick(dispatcher)
    assert orders.orders["ord-old"].cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER
    assert dispatcher.queued("ord-old") is None and dispatcher.queued("ord-1") is not None
    clock.now += 59
    await tick(dispatcher)
    assert orders.orders["ord-1"].state == food_pb2.ORDER_STATE_PLACED
    clock.now += 1  # 60 s after it became due (placed at T0, ready at T0+5, lead 5: due at T0)
    await tick(dispatcher)
    assert orders.orders["ord-1"].state == food_pb2.ORDER_STATE_CANCELLED
    assert orders.orders["ord-1"].cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER
    assert decisions("released") == released_before + 2
    assert not orders.assigns


async def test_failures_of_the_other_services_wait_for_the_next_tick():
    dispatcher, orders, location, clock = make()
    [c0] = couriers_at(dispatcher, location, [100])
    dispatcher.dispatch(orders.add("ord-1"))
    location.fail = True
    await tick(dispatcher)
    assert dispatcher.queued("ord-1") is not None and not orders.assigns
    location.fail = False
    orders.down = True
    await tick(dispatcher)
    assert dispatcher.queued("ord-1").pending is not None
    orders.down = False
    await tick(dispatcher)
    assert orders.orders["ord-1"].courier_id == "c0"


async def test_the_sweep_queues_placed_orders_it_does_not_hold():
    dispatcher, orders, location, clock = make()
    known = orders.add("ord-known")
    dispatcher.dispatch(known)
    orders.add("ord-lost")
    orders.add("ord-other-region", pickup=FAR_REGION)
    orders.down = True
    assert await dispatcher.sweep() == 0  # the order service down: counted, not raised
    orders.down = False
    assert await dispatcher.sweep() == 2
    assert dispatcher.queued("ord-lost") is not None
    assert dispatcher.queued("ord-other-region").region == dispatcher.region_of(*FAR_REGION)
    assert await dispatcher.sweep() == 0
    assert set(dispatcher.regions()) == {dispatcher.region_of(*R), dispatcher.region_of(*FAR_REGION)}


async def test_the_first_sweep_rebuilds_the_couriers_batches_after_a_restart():
    dispatcher, orders, location, clock = make(free_grace_s=2)
    # Before the restart: c0 got a batch of two (its feed message lost with the old process), c1 one order, c2
    # picked its order up; ord-new is PLACED.
    orders.held("ord-b", "c0", "bat-0")
    orders.held("ord-a", "c0", "bat-0", placed_ago_s=60)
    orders.held("ord-c", "c1", "bat-1")
    orders.held("ord-p", "c2", "bat-2", state=food_pb2.ORDER_STATE_PICKED_UP)
    orders.add("ord-new", pickup=north_of(R, -2_000))
    c1 = Courier(dispatcher, "c1")  # c1's app reconnected before the first sweep
    orders.down = True
    assert await dispatcher.sweep() == 0
    orders.down = False
    assert await dispatcher.sweep() == 1  # ord-new queued; the holdings rebuilt
    assert orders.listed == [True, True]  # until one sweep listed
    held = dispatcher.couriers.holding("c0")
    assert (held.batch_id, [o.order_id for o in held.orders]) == ("bat-0", ["ord-b", "ord-a"])  # as assigned
    assert not held.notified and not dispatcher.couriers.candidates()
    assert dispatcher.couriers.holding("c2") is None and dispatcher.queued("ord-a") is None
    # c1's open feed got its batch at once.
    await eventually(lambda: c1.events, "c1's batch")
    assert [(e.batch_id, [o.order_id for o in e.orders]) for e in c1.events] == [("bat-1", ["ord-c"])]
    assert dispatcher.couriers.holding("c1").notified
    # c0 reports AVAILABLE (it never heard of its batch), well past the grace, with a feed open (its batch not sent
    # yet: the helper skips ReceiveAssignments' reconnected()): not offered ord-new.
    clock.now += 10
    location.put("c0", north_of(R, -2_000))
    again = Courier(dispatcher, "c0")
    await tick(dispatcher)
    assert not orders.assigns and orders.orders["ord-new"].state == food_pb2.ORDER_STATE_PLACED
    # Later sweeps list PLACED orders only, and leave the holdings be.
    await dispatcher.sweep()
    assert orders.listed == [True, True, False] and not dispatcher.couriers.holding("c0").notified
    # c0's reconnected feed gets the whole batch; then, once done and AVAILABLE past the grace, it is free.
    resent = dispatcher.reconnected("c0")
    assert (resent.batch_id, [o.order_id for o in resent.orders]) == ("bat-0", ["ord-b", "ord-a"])
    assert again.feed.push(resent)
    await eventually(lambda: again.events, "c0's batch")
    for order_id in ("ord-a", "ord-b"):
        orders.orders[order_id].state = food_pb2.ORDER_STATE_DELIVERED
    clock.now += 3
    location.put("c0", north_of(R, -2_000))
    await tick(dispatcher)
    assert orders.orders["ord-new"].courier_id == "c0"


def test_recovered_holdings_keep_what_dispatch_knows():
    dispatcher, orders, location, clock = make()
    book = dispatcher.couriers
    a, b = orders.held("ord-a", "c0", "bat-0"), orders.held("ord-b", "c0", "bat-0")
    book.assigned("c0", "bat-0", a, T0, T0, T0)  # dispatch assigned ord-a since the restart
    assert book.recovered("c0", "bat-0", [a], T0) is None  # nothing new
    holding = book.recovered("c0", "bat-0", [a, b], T0)
    assert [o.order_id for o in holding.orders] == ["ord-a", "ord-b"] and not holding.notified
    assert not book.candidates()
    book.assigned("c1", "bat-new", orders.add("ord-n"), T0, T0, T0)
    assert book.recovered("c1", "bat-old", [orders.held("ord-o", "c1", "bat-old")], T0) is None  # a newer batch
    book.refused("c2", T0)  # an unknown batch, learnt from a refusal: the recovered one is it
    holding = book.recovered("c2", "bat-2", [orders.held("ord-2", "c2", "bat-2")], T0)
    assert holding.batch_id == "bat-2" and book.holding("c2") is holding


async def test_dispatch_order_is_bounded():
    dispatcher, orders, location, clock = make(max_queued=2)
    assert dispatcher.dispatch(orders.add("a")) and dispatcher.dispatch(orders.add("b"))
    assert not dispatcher.dispatch(orders.orders["a"])
    with pytest.raises(ResourceExhausted):
        dispatcher.dispatch(orders.add("c"))


async def test_regions_are_independent_a_slow_region_does_not_hold_another():
    dispatcher, orders, location, clock = make(run_regions=True, tick_s=0.01)
    assert dispatcher.region_of(*R) != dispatcher.region_of(*FAR_REGION)
    couriers_at(dispatcher, location, [100], origin=R, prefix="mission")
    couriers_at(dispatcher, location, [100], origin=FAR_REGION, prefix="sunset")
    gate = orders.gates["ord-slow"] = asyncio.Event()  # the mission's AssignCourier hangs until the gate opens
    dispatcher.dispatch(orders.add("ord-slow"))
    await eventually(lambda: orders.assigns, "the slow region's AssignCourier")
    dispatcher.dispatch(orders.add("ord-fast", pickup=FAR_REGION))
    await eventually(lambda: orders.orders["ord-fast"].state == food_pb2.ORDER_STATE_ASSIGNED,
                     "the other region's assignment")
    assert orders.orders["ord-fast"].courier_id == "sunset0"
    assert orders.orders["ord-slow"].state == food_pb2.ORDER_STATE_PLACED and not gate.is_set()
    gate.set()
    await eventually(lambda: orders.orders["ord-slow"].courier_id == "mission0", "the slow region's assignment")
    assert len(dispatcher.regions()) == 2


# ----------------------------------------------------------------------------- feeds


async def test_feeds_takeover_limit_and_bounded_queue():
    feeds = AssignmentFeeds(max_feeds=2, capacity=2)
    first = feeds.open("c1")
    feeds.open("c2")
    with pytest.raises(ResourceExhausted):
        feeds.open("c3")
    second = feeds.open("c1")  # a takeover replaces, it does not count
    with pytest.raises(FeedEnded) as ended:
        await first.next()
    assert ended.value.code == grpc.StatusCode.ABORTED
    feeds.close(first)  # the old stream's cleanup leaves the new feed
    assert feeds.has("c1") and len(feeds) == 2
    event = dispatch_pb2.ReceiveAssignmentsResponse(batch_id="bat-1")
    assert feeds.send("c1", event) and feeds.send("c1", event)
    assert not feeds.send("c1", event) and not feeds.has("c1")  # full: the app stopped reading
    assert await second.next() == event
    assert not feeds.send("nobody", event)
    feeds.end_all(grpc.StatusCode.UNAVAILABLE, "bye")
    with pytest.raises(FeedEnded) as shutdown:
        await second.next()
    assert shutdown.value.code == grpc.StatusCode.UNAVAILABLE


# ----------------------------------------------------------------------------- validation and gRPC


def _field(call) -> str:
    with pytest.raises(InvalidArgument) as error:
        call()
    return error.value.field


def test_validation_names_the_field():
    def request(order_id: str = "ord-1",
                pickup: geo_pb2.LatLng | None = latlng(R)) -> dispatch_pb2.DispatchOrderRequest:
        order = food_pb2.Order(order_id=order_id)
        if pickup is not None:
            order.pickup.CopyFrom(pickup)
        return dispatch_pb2.DispatchOrderRequest(order=order)

    assert validation.dispatch_order(request()).order_id == "ord-1"
    assert _field(lambda: validation.dispatch_order(dispatch_pb2.DispatchOrderRequest())) == "order"
    assert _field(lambda: validation.dispatch_order(request(order_id=""))) == "order.order_id"
    assert _field(lambda: validation.dispatch_order(request(order_id="bad id"))) == "order.order_id"
    assert _field(lambda: validation.dispatch_order(request(pickup=None))) == "order.pickup"
    assert _field(lambda: validation.dispatch_order(request(pickup=geo_pb2.LatLng(lat_deg=91, lng_deg=0)))) \
        == "order.pickup.lat_deg"
    assert _field(lambda: validation.dispatch_order(request(pickup=geo_pb2.LatLng(lat_deg=37.77, lng_deg=181)))) \
        == "order.pickup.lng_deg"
    assert _field(lambda: validation.dispatch_order(request(pickup=geo_pb2.LatLng(lat_deg=40.7, lng_deg=-74)))) \
        == "order.pickup"  # New York: outside the service area
    assert _field(lambda: validation.courier_id(dispatch_pb2.ReceiveAssignmentsRequest())) == "courier_id"
    assert _field(lambda: validation.courier_id(dispatch_pb2.ReceiveAssignmentsRequest(courier_id="x" * 65))) \
        == "courier_id"


def test_definition():
    assert DEFINITION.name == "food-dispatch"
    assert DEFINITION.dependencies == ("food-orders", "rides-location")
    assert ORDERS_CALLERS == ("food-orders",)
    assert DEFINITION.access.internal["DispatchOrder"] == ORDERS_CALLERS
    assert DEFINITION.access.public == {"ReceiveAssignments"}
    with pytest.raises(ValueError):
        FoodDispatchSettings(search_radius_m=5_000, max_radius_m=4_000)
    with pytest.raises(ValueError):
        FoodDispatchSettings(unknown_key=1)


@pytest.fixture
async def dispatch_stub():
    dispatcher, orders, location, clock = make()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])
    dispatch_pb2_grpc.add_FoodDispatchServiceServicer_to_server(FoodDispatchServicer(dispatcher), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield dispatcher, orders, location, clock, dispatch_pb2_grpc.FoodDispatchServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def test_grpc_status_codes_and_a_feed(dispatch_stub):
    dispatcher, orders, location, clock, stub = dispatch_stub
    with pytest.raises(grpc.aio.AioRpcError) as no_order:
        await stub.DispatchOrder(dispatch_pb2.DispatchOrderRequest(), timeout=WAIT_S)
    assert no_order.value.code() == grpc.StatusCode.INVALID_ARGUMENT and no_order.value.details().startswith("order:")
    bad = food_pb2.Order(order_id="ord-1")
    with pytest.raises(grpc.aio.AioRpcError) as no_pickup:
        await stub.DispatchOrder(dispatch_pb2.DispatchOrderRequest(order=bad), timeout=WAIT_S)
    assert no_pickup.value.details().startswith("order.pickup")
    bad_feed = stub.ReceiveAssignments(dispatch_pb2.ReceiveAssignmentsRequest(courier_id="bad id"), timeout=WAIT_S)
    with pytest.raises(grpc.aio.AioRpcError) as bad_courier:
        await bad_feed.read()
    assert bad_courier.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_courier.value.details().startswith("courier_id")

    location.put("c0", north_of(R, 100))
    feed = stub.ReceiveAssignments(dispatch_pb2.ReceiveAssignmentsRequest(courier_id="c0"), timeout=WAIT_S)
    await eventually(lambda: dispatcher.feeds.has("c0"), "the feed")
    await stub.DispatchOrder(dispatch_pb2.DispatchOrderRequest(order=orders.add("ord-2")), timeout=WAIT_S)
    await stub.DispatchOrder(dispatch_pb2.DispatchOrderRequest(order=orders.orders["ord-2"]), timeout=WAIT_S)  # again
    await tick(dispatcher)
    assignment = await feed.read()
    assert [o.order_id for o in assignment.orders] == ["ord-2"]
    # A reconnect takes over (the old stream ends ABORTED) and gets the courier's batch again.
    again = stub.ReceiveAssignments(dispatch_pb2.ReceiveAssignmentsRequest(courier_id="c0"), timeout=WAIT_S)
    assert (await again.read()).batch_id == assignment.batch_id
    with pytest.raises(grpc.aio.AioRpcError) as taken_over:
        await feed.read()
    assert taken_over.value.code() == grpc.StatusCode.ABORTED
    again.cancel()


async def test_a_restarted_dispatch_resends_a_batch_on_the_couriers_new_feed(dispatch_stub):
    dispatcher, orders, location, clock, stub = dispatch_stub
    orders.held("ord-1", "c0", "bat-0")  # committed before the restart; the courier never heard of it
    assert await dispatcher.sweep() == 0
    feed = stub.ReceiveAssignments(dispatch_pb2.ReceiveAssignmentsRequest(courier_id="c0"), timeout=WAIT_S)
    first = await feed.read()
    assert (first.batch_id, [o.order_id for o in first.orders]) == ("bat-0", ["ord-1"])
    assert dispatcher.couriers.holding("c0").notified
    feed.cancel()


class _OrderService(orders_pb2_grpc.OrderServiceServicer):
    """AssignCourier answers with the status its first order id names; ReleaseOrder and ListOpenOrders answer OK."""

    async def AssignCourier(self, request, context):
        codes = {"aborted": grpc.StatusCode.ABORTED, "refused": grpc.StatusCode.FAILED_PRECONDITION,
                 "unknown": grpc.StatusCode.NOT_FOUND, "down": grpc.StatusCode.UNAVAILABLE}
        code = codes.get(request.order_ids[0])
        if code is not None:
            await context.abort(code, request.order_ids[0])
        return orders_pb2.AssignCourierResponse(orders=[food_pb2.Order(
            order_id=i, courier_id=request.courier_id, batch_id=request.batch_id) for i in request.order_ids])

    async def ReleaseOrder(self, request, context):
        return orders_pb2.ReleaseOrderResponse(order=food_pb2.Order(
            order_id=request.order_id, cancel_reason=food_pb2.CANCEL_REASON_NO_COURIER))

    async def ListOpenOrders(self, request, context):
        return orders_pb2.ListOpenOrdersResponse(orders=[food_pb2.Order(order_id=f"o{i}") for i in range(3)])


async def test_orders_client_maps_status_codes():
    server = grpc.aio.server()
    orders_pb2_grpc.add_OrderServiceServicer_to_server(_OrderService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        client = OrdersClient(orders_pb2_grpc.OrderServiceStub(channel), WAIT_S)
        [assigned] = await client.assign(["ord-1"], "c0", "bat-1")
        assert (assigned.order_id, assigned.courier_id, assigned.batch_id) == ("ord-1", "c0", "bat-1")
        for order_id, error in (("aborted", Aborted), ("refused", FailedPrecondition), ("unknown", NotFound)):
            with pytest.raises(error):
                await client.assign([order_id], "c0", "bat-1")
        with pytest.raises(grpc.aio.AioRpcError) as down:  # the outcome unknown: retried as it was
            await client.assign(["down"], "c0", "bat-1")
        assert down.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (await client.release("ord-1")).cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER
        assert [o.order_id for o in await client.open_orders(10)] == ["o0", "o1", "o2"]
    finally:
        await channel.close()
        await server.stop(None)
