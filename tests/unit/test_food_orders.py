"""food-orders (services/food/orders): the state machine table, the atomic batch assignment under concurrency (no order
dispatched twice), idempotent PlaceOrder, durability across a reopened store with the invariants in the schema, the
ETA regression, surge, WatchOrder, validation and status codes over gRPC.

Fakes stand in for food-restaurants, food-dispatch and rides-location (no other service runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import tempfile
import time
from dataclasses import astuple, replace
from pathlib import Path

import grpc
import numpy as np
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import food_pb2, orders_pb2, orders_pb2_grpc
from casemesh.rides.v1 import rides_pb2
from casemesh.services.food.orders import eta as eta_module
from casemesh.services.food.orders import machine, service, validation
from casemesh.services.food.orders.eta import FEATURES, CityModel, EtaFeatures, EtaModel, synthetic_history
from casemesh.services.food.orders.machine import (
    ASSIGNED,
    CANCELLED,
    DELIVERED,
    PICKED_UP,
    PLACED,
    STATES,
    Event,
    TransitionRefused,
    decide,
)
from casemesh.services.food.orders.service import (
    DEFINITION,
    DISPATCH_CALLERS,
    OrderServicer,
    Orders,
    Prepared,
    RestaurantsUnavailable,
    WatchEnded,
    order_id_for,
)
from casemesh.services.food.orders.settings import OrdersSettings
from casemesh.services.food.orders.store import OrderStore, StoreUnavailable
from casemesh.services.food.orders.surge import SurgeLadder, SurgeMap
from casemesh.services.runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

WAIT_S = 10.0
KITCHEN = (37.7880, -122.4075)  # Union Square
ELSEWHERE = (37.7600, -122.4400)  # another surge region
DOOR = (37.7950, -122.4000)
BATCH = "bat-" + "A" * 26
BATCH2 = "bat-" + "B" * 26
BATCH3 = "bat-" + "C" * 26


class FakeRestaurants:
    """PrepareOrder: ``r-far`` is at :data:`ELSEWHERE`, any other ``r…`` at :data:`KITCHEN`, ready ``prep_s`` after
    the call; ``missing`` → NotFound; ``down`` → unreachable. The same order id again: the same answer."""

    def __init__(self, prep_s: float = 600.0) -> None:
        self.prep_s = prep_s
        self.down = False
        self.calls: list[tuple[str, str, int]] = []
        self._ready: dict[str, int] = {}

    async def prepare(self, restaurant_id: str, order_id: str, items: int) -> Prepared:
        self.calls.append((restaurant_id, order_id, items))
        await asyncio.sleep(0)
        if self.down:
            raise RestaurantsUnavailable("food-restaurants is down")
        if restaurant_id == "missing":
            raise NotFound(f"restaurant_id: no restaurant {restaurant_id}")
        ready = self._ready.setdefault(order_id, int((time.time() + self.prep_s) * 1000))
        return Prepared(ready, ELSEWHERE if restaurant_id == "r-far" else KITCHEN)


class FakeDispatch:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.dispatched: list[str] = []

    async def dispatch(self, order: food_pb2.Order) -> None:
        if self.fail:
            raise ConnectionError("dispatch is down")
        self.dispatched.append(order.order_id)


class FakeLocation:
    """TrackDriver like rides-trips' tests (scripts, then positions pushed); CountAvailableDrivers from ``supply``
    (``None``: unreachable)."""

    def __init__(self) -> None:
        self.scripts: list[tuple[list[rides_pb2.DriverPosition], Exception | None]] = []
        self.calls: list[str] = []
        self.queue: asyncio.Queue[rides_pb2.DriverPosition] = asyncio.Queue()
        self.open = 0
        self.supply: dict[str, int] | None = {}

    def push(self, position: rides_pb2.DriverPosition) -> None:
        self.queue.put_nowait(position)

    async def track(self, courier_id: str):
        self.calls.append(courier_id)
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

    async def count_available(self, resolution: int) -> dict[str, int]:
        if self.supply is None:
            raise ConnectionError("rides-location is down")
        return dict(self.supply)


def position(courier_id: str, n: int) -> rides_pb2.DriverPosition:
    return rides_pb2.DriverPosition(driver_id=courier_id, point=geo_pb2.LatLng(lat_deg=37.78, lng_deg=-122.41),
                                    status=rides_pb2.DRIVER_STATUS_BUSY, sent_at_unix_ms=n)


def make_orders(store: OrderStore | None = None, dispatch: FakeDispatch | None = None, id_key: bytes | None = None,
                **settings) -> Orders:
    settings = {"track_retry_initial_ms": 1, "track_retry_max_ms": 5, "eta_history_size": 500, **settings}
    return Orders(OrdersSettings(**settings), store or OrderStore(None), FakeRestaurants(), dispatch or FakeDispatch(),
                  FakeLocation(), id_key=id_key)


async def place(orders: Orders, customer: str, n: int = 1, restaurant: str = "r1", items: int = 2):
    return await orders.place(customer, f"req-{n}", restaurant, DOOR, items)


async def eventually(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


# ----------------------------------------------------------------------------- the state machine table


EXPECTED = {  # (state, event) → new state, "repeat" (the order returned) or None (refused)
    (PLACED, Event.ASSIGN): ASSIGNED, (PLACED, Event.PICK_UP): None, (PLACED, Event.DELIVER): None,
    (PLACED, Event.CANCEL): CANCELLED, (PLACED, Event.RELEASE): CANCELLED,
    (ASSIGNED, Event.ASSIGN): "repeat", (ASSIGNED, Event.PICK_UP): PICKED_UP, (ASSIGNED, Event.DELIVER): None,
    (ASSIGNED, Event.CANCEL): CANCELLED, (ASSIGNED, Event.RELEASE): None,
    (PICKED_UP, Event.ASSIGN): "repeat", (PICKED_UP, Event.PICK_UP): "repeat", (PICKED_UP, Event.DELIVER): DELIVERED,
    (PICKED_UP, Event.CANCEL): None, (PICKED_UP, Event.RELEASE): None,
    (DELIVERED, Event.ASSIGN): "repeat", (DELIVERED, Event.PICK_UP): None, (DELIVERED, Event.DELIVER): "repeat",
    (DELIVERED, Event.CANCEL): None, (DELIVERED, Event.RELEASE): None,
    (CANCELLED, Event.ASSIGN): None, (CANCELLED, Event.PICK_UP): None, (CANCELLED, Event.DELIVER): None,
    (CANCELLED, Event.CANCEL): "repeat", (CANCELLED, Event.RELEASE): "repeat",
}


def test_the_table_covers_every_state_and_event():
    assert set(EXPECTED) == {(state, event) for state in STATES for event in Event}
    assert machine.MOVES == {(PLACED, ASSIGNED), (ASSIGNED, PICKED_UP), (PICKED_UP, DELIVERED),
                             (PLACED, CANCELLED), (ASSIGNED, CANCELLED)}


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


# ----------------------------------------------------------------------------- validation


def _place_request(**changes) -> orders_pb2.PlaceOrderRequest:
    request = orders_pb2.PlaceOrderRequest(customer_id="c1", client_request_id="q1", restaurant_id="r1",
                                           dropoff=geo_pb2.LatLng(lat_deg=DOOR[0], lng_deg=DOOR[1]), items=2)
    for name, value in changes.items():
        if value is None:
            request.ClearField(name)
        elif name == "dropoff":
            request.dropoff.CopyFrom(value)
        else:
            setattr(request, name, value)
    return request


@pytest.mark.parametrize(("changes", "field"), [
    ({"customer_id": ""}, "customer_id"),
    ({"customer_id": "bad id"}, "customer_id"),
    ({"client_request_id": "x" * 65}, "client_request_id"),
    ({"restaurant_id": ""}, "restaurant_id"),
    ({"dropoff": None}, "dropoff"),
    ({"dropoff": geo_pb2.LatLng(lat_deg=91, lng_deg=-122.4)}, "dropoff.lat_deg"),
    ({"dropoff": geo_pb2.LatLng(lat_deg=37.78, lng_deg=float("nan"))}, "dropoff.lng_deg"),
    ({"dropoff": geo_pb2.LatLng(lat_deg=40.7, lng_deg=-74.0)}, "dropoff"),  # New York: outside the service area
    ({"items": 0}, "items"),
    ({"items": 51}, "items"),
])
def test_place_order_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.place_order(_place_request(**changes))
    assert error.value.field == field


def test_place_order_validation_accepts_a_good_request():
    assert validation.place_order(_place_request()) == ("c1", "q1", "r1", DOOR, 2)


@pytest.mark.parametrize(("order_ids", "courier_id", "batch_id", "field"), [
    ([], "c1", BATCH, "order_ids"),
    ([f"o{i}" for i in range(11)], "c1", BATCH, "order_ids"),
    (["o1", "o2", "o1"], "c1", BATCH, "order_ids"),
    (["o1", "bad id"], "c1", BATCH, "order_ids[1]"),
    (["o1"], "", BATCH, "courier_id"),
    (["o1"], "c1", "", "batch_id"),
    (["o1"], "c1", "bat-short", "batch_id"),
    (["o1"], "c1", "xyz-" + "A" * 26, "batch_id"),
])
def test_assign_validation_names_the_field(order_ids, courier_id, batch_id, field):
    request = orders_pb2.AssignCourierRequest(order_ids=order_ids, courier_id=courier_id, batch_id=batch_id)
    with pytest.raises(InvalidArgument) as error:
        validation.assignment(request)
    assert error.value.field == field


def test_event_and_limit_validation():
    assert validation.event(orders_pb2.COURIER_EVENT_PICK_UP) is Event.PICK_UP
    for bad in (orders_pb2.COURIER_EVENT_UNSPECIFIED, 7):
        with pytest.raises(InvalidArgument, match="^event"):
            validation.event(bad)
    assert validation.limit(10_000) == 10_000
    for bad in (0, 10_001):
        with pytest.raises(InvalidArgument, match="^limit"):
            validation.limit(bad)


def test_settings_refuse_a_bad_ladder_and_unknown_keys():
    with pytest.raises(ValidationError):
        OrdersSettings(surge_ladder=((1.0, 1.5), (0.5, 2.0)))
    with pytest.raises(ValidationError):
        OrdersSettings(surge_ladder=((1.0, 3.0),), surge_max_multiplier=2.5)
    with pytest.raises(ValidationError):
        OrdersSettings(surge_enabld=False)
    assert OrdersSettings().courier_speed_mps == pytest.approx(8.333, abs=0.001)


def test_definition():
    assert DEFINITION.name == "food-orders"
    assert DEFINITION.dependencies == ("food-restaurants", "food-dispatch", "rides-location")
    assert set(DEFINITION.optional_dependencies) == {"food-dispatch", "rides-location"}
    assert DISPATCH_CALLERS == ("food-dispatch",)
    assert DEFINITION.access.internal == {"AssignCourier": DISPATCH_CALLERS, "ListOpenOrders": DISPATCH_CALLERS,
                                          "ReleaseOrder": DISPATCH_CALLERS}
    assert f"{service.FULL_NAME}/WatchOrder" in DEFINITION.default_limits


# ----------------------------------------------------------------------------- placing orders


async def test_place_is_idempotent_and_dispatched_once():
    dispatch = FakeDispatch()
    orders = make_orders(dispatch=dispatch)
    first = await place(orders, "cust1")
    assert first.order_id == order_id_for(orders.id_key, "cust1", "req-1")
    assert first.order_id.startswith("ord-") and len(first.order_id) == 30
    assert first.state == PLACED and first.pickup == KITCHEN and (first.dropoff_lat_deg, first.items) == (DOOR[0], 2)
    assert (first.fee_currency_code, first.fee_amount_minor, first.surge_multiplier) == ("USD", 299, 1.0)
    assert first.ready_at_unix_ms > first.placed_at_unix_ms
    assert first.promised_at_unix_ms > first.ready_at_unix_ms  # the kitchen, then the trip
    again = await asyncio.gather(*(place(orders, "cust1") for _ in range(5)))
    assert all(order == first for order in again)
    await eventually(lambda: dispatch.dispatched == [first.order_id], "the dispatch")
    other = await place(orders, "cust1", n=2)
    assert other.order_id != first.order_id
    assert other.order_id != (await place(orders, "cust2")).order_id  # another customer's req-1
    assert [o.order_id for o in orders.open_orders(10)][:2] == [first.order_id, other.order_id]
    await orders.close()


async def test_an_unknown_or_unreachable_kitchen_stores_nothing():
    orders = make_orders()
    with pytest.raises(NotFound, match="restaurant_id: no restaurant missing"):
        await place(orders, "cust1", restaurant="missing")
    orders._restaurants.down = True
    with pytest.raises(RestaurantsUnavailable):
        await place(orders, "cust1", n=2)
    assert orders.store.open_count == 0
    orders._restaurants.down = False
    assert (await place(orders, "cust1", n=2)).state == PLACED  # the retry works once the kitchen answers
    await orders.close()


class _FailingStub:
    def __init__(self, code: grpc.StatusCode) -> None:
        self.code = code

    async def PrepareOrder(self, request, timeout):  # noqa: N802 - the stub's method name
        assert timeout == 2.0
        raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   details="items: 0 is not 1 to 50")


@pytest.mark.parametrize(("code", "error"), [
    (grpc.StatusCode.NOT_FOUND, NotFound), (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgument),
    (grpc.StatusCode.UNAVAILABLE, RestaurantsUnavailable), (grpc.StatusCode.DEADLINE_EXCEEDED, RestaurantsUnavailable),
    (grpc.StatusCode.INTERNAL, RestaurantsUnavailable),
])
async def test_the_restaurants_client_maps_errors(code, error):
    client = service.RestaurantsClient(_FailingStub(code), 2.0)
    with pytest.raises(error) as raised:
        await client.prepare("r7", "ord-x", 2)
    if error is NotFound:
        assert str(raised.value) == "restaurant_id: no restaurant r7"


async def test_a_failed_dispatch_still_answers_the_order():
    orders = make_orders(dispatch=FakeDispatch(fail=True))
    order = await place(orders, "cust1")
    assert order.state == PLACED
    await eventually(lambda: not orders._background, "the dispatch attempt")
    assert [o.order_id for o in orders.open_orders(10)] == [order.order_id]
    await orders.close()


async def test_the_fee_follows_the_surge_of_the_restaurants_region():
    orders = make_orders()
    location: FakeLocation = orders._location
    region = orders.surge.region_of(*KITCHEN)
    for n in range(3):
        await place(orders, f"cust{n}")
    location.supply = {region: 1}
    await orders.recompute_surge()  # 3 open orders over 1 courier: ratio 3 → 2.5x
    assert orders.surge_at(*KITCHEN).multiplier == 2.5
    assert orders.surge_at(*ELSEWHERE).multiplier == 1.0
    surged = await place(orders, "cust9")
    assert (surged.surge_multiplier, surged.fee_amount_minor) == (2.5, 748)  # 299 × 2.5 = 747.5, half up
    assert (await place(orders, "cust8", restaurant="r-far")).fee_amount_minor == 299
    location.supply = None  # unreachable: the last supply stays
    await orders.recompute_surge()
    assert orders.surge.supply(region) == 1 and orders.surge_at(*KITCHEN).multiplier == 2.5
    await orders.close()

    off = make_orders(surge_enabled=False)
    for n in range(3):
        await place(off, f"cust{n}")
    off._location.supply = {region: 1}
    await off.recompute_surge()
    assert off.surge_at(*KITCHEN).multiplier == 1.0
    assert (await place(off, "cust9")).fee_amount_minor == 299
    await off.close()


# ----------------------------------------------------------------------------- the atomic assignment


async def test_twenty_couriers_assigned_one_order_at_once_one_wins_the_rest_aborted(tmp_path):
    orders = make_orders(OrderStore(tmp_path / "orders.sqlite"))
    order = await place(orders, "cust1")
    results = await asyncio.gather(*(orders.assign((order.order_id,), f"c{i}", f"bat-{i:026d}") for i in range(20)),
                                   return_exceptions=True)
    won = [r for r in results if not isinstance(r, BaseException)]
    assert len(won) == 1 and won[0][0].state == ASSIGNED
    assert all(isinstance(r, Aborted) for r in results if r is not won[0])
    winner = won[0][0]
    assert await orders.assign((order.order_id,), winner.courier_id, winner.batch_id) == [winner]  # the retry
    with pytest.raises(Aborted):
        await orders.assign((order.order_id,), winner.courier_id, BATCH)  # the same courier, another batch
    await orders.close()
    reopened = OrderStore(tmp_path / "orders.sqlite")
    assert reopened.cached(order.order_id) == winner
    assert reopened.batch_of_courier(winner.courier_id) == winner.batch_id
    await reopened.close()


async def test_overlapping_batches_race_and_no_order_goes_to_two_couriers(tmp_path):
    orders = make_orders(OrderStore(tmp_path / "orders.sqlite"))
    placed = [await place(orders, f"cust{i}") for i in range(6)]
    ids = [o.order_id for o in placed]
    # Couriers ask for overlapping pairs at once: (0,1), (1,2), (2,3), ... each order is wanted by two batches.
    requests = [((ids[i], ids[(i + 1) % 6]), f"c{i}", f"bat-{i:026d}") for i in range(6)]
    results = await asyncio.gather(*(orders.assign(*r) for r in requests), return_exceptions=True)
    assert all(isinstance(r, (list, Aborted)) for r in results), results
    owners: dict[str, str] = {}
    for result in results:
        if isinstance(result, list):
            for order in result:
                assert order.order_id not in owners
                owners[order.order_id] = order.courier_id
    for order_id in ids:
        stored = await orders.get(order_id)
        assert stored.courier_id == owners.get(order_id, "")
    await orders.close()


async def test_a_courier_holds_one_batch(tmp_path):
    orders = make_orders(OrderStore(tmp_path / "orders.sqlite"))
    a, b, c = [await place(orders, f"cust{i}") for i in range(3)]
    await orders.assign((a.order_id,), "c1", BATCH)
    with pytest.raises(FailedPrecondition, match="another batch"):
        await orders.assign((b.order_id,), "c1", BATCH2)
    with pytest.raises(FailedPrecondition, match="another courier's"):
        await orders.assign((b.order_id,), "c2", BATCH)
    assert orders.store.cached(b.order_id).state == PLACED
    # At once: one courier, two new batches: one wins.
    results = await asyncio.gather(orders.assign((b.order_id,), "c3", BATCH2),
                                   orders.assign((c.order_id,), "c3", BATCH3), return_exceptions=True)
    assert sum(isinstance(r, list) for r in results) == 1
    assert sum(isinstance(r, FailedPrecondition) for r in results) == 1
    await orders.close()


async def test_a_batch_of_two_then_a_third_refused_and_no_join_after_pickup(tmp_path):
    orders = make_orders(OrderStore(tmp_path / "orders.sqlite"))
    a, b, c, d, e = [await place(orders, f"cust{i}") for i in range(5)]
    together = await orders.assign((a.order_id, b.order_id), "c1", BATCH)
    assert [o.order_id for o in together] == [a.order_id, b.order_id]
    assert {(o.courier_id, o.batch_id, o.state) for o in together} == {("c1", BATCH, ASSIGNED)}
    with pytest.raises(FailedPrecondition, match="at most 2"):
        await orders.assign((c.order_id,), "c1", BATCH)
    with pytest.raises(FailedPrecondition, match="would hold 3 orders; at most 2"):
        await orders.assign((c.order_id, d.order_id, e.order_id), "c2", BATCH2)
    with pytest.raises(Aborted):  # an order of another courier: ABORTED before any batch rule
        await orders.assign((c.order_id, a.order_id), "c2", BATCH2)
    assert orders.store.cached(c.order_id).state == PLACED
    # Joining one by one.
    await orders.assign((c.order_id,), "c2", BATCH2)
    await orders.update(c.order_id, "c2", Event.PICK_UP)
    with pytest.raises(FailedPrecondition, match="picked up"):
        await orders.assign((d.order_id,), "c2", BATCH2)
    await orders.update(c.order_id, "c2", Event.DELIVER)
    assert (await orders.assign((d.order_id,), "c2", BATCH3))[0].batch_id == BATCH3  # free again: a new batch
    await orders.close()


async def test_assign_refusals_and_cancelled_orders():
    orders = make_orders()
    a, b = await place(orders, "cust1"), await place(orders, "cust2")
    await orders.cancel(a.order_id, "cust1")
    with pytest.raises(Aborted, match="cancelled"):
        await orders.assign((a.order_id, b.order_id), "c1", BATCH)
    assert orders.store.cached(b.order_id).state == PLACED  # all or none
    with pytest.raises(NotFound):
        await orders.assign(("ord-unknown",), "c1", BATCH)
    await orders.close()


async def test_a_failed_write_changes_nothing_and_frees_the_courier(tmp_path, monkeypatch):
    store = OrderStore(tmp_path / "orders.sqlite")
    orders = make_orders(store)
    a, b = await place(orders, "cust1"), await place(orders, "cust2")

    def broken(puts):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_commit", broken)
    with pytest.raises(StoreUnavailable):
        await orders.assign((a.order_id, b.order_id), "c1", BATCH)
    assert store.cached(a.order_id).state == PLACED and store.cached(b.order_id).state == PLACED
    assert store.batch_of_courier("c1") is None and store.batch(BATCH) is None
    monkeypatch.undo()
    assert len(await orders.assign((a.order_id,), "c1", BATCH2)) == 1
    await orders.close()


# ----------------------------------------------------------------------------- courier events, cancel, release


async def test_courier_events_and_retries():
    orders = make_orders()
    order = await place(orders, "cust1")
    with pytest.raises(PermissionDenied):
        await orders.update(order.order_id, "c1", Event.PICK_UP)  # no courier yet
    await orders.assign((order.order_id,), "c1", BATCH)
    with pytest.raises(PermissionDenied):
        await orders.update(order.order_id, "c2", Event.PICK_UP)
    with pytest.raises(FailedPrecondition, match="DELIVER.*ASSIGNED"):
        await orders.update(order.order_id, "c1", Event.DELIVER)
    picked = await orders.update(order.order_id, "c1", Event.PICK_UP)
    assert picked.state == PICKED_UP and picked.picked_up_at_unix_ms > 0
    assert await orders.update(order.order_id, "c1", Event.PICK_UP) == picked  # a retry
    with pytest.raises(FailedPrecondition, match="picked|PICKED_UP"):
        await orders.cancel(order.order_id, "cust1")
    done = await orders.update(order.order_id, "c1", Event.DELIVER)
    assert done.state == DELIVERED and done.delivered_at_unix_ms >= done.picked_up_at_unix_ms > 0
    assert await orders.update(order.order_id, "c1", Event.DELIVER) == done
    with pytest.raises(FailedPrecondition):
        await orders.update(order.order_id, "c1", Event.PICK_UP)
    assert orders.store.batch_of_courier("c1") is None
    await orders.close()


async def test_cancel_and_release():
    orders = make_orders()
    a, b, c = [await place(orders, f"cust{i}") for i in range(3)]
    with pytest.raises(PermissionDenied):
        await orders.cancel(a.order_id, "cust9")
    cancelled = await orders.cancel(a.order_id, "cust0")
    assert (cancelled.state, cancelled.cancel_reason) == (CANCELLED, food_pb2.CANCEL_REASON_CUSTOMER)
    assert await orders.cancel(a.order_id, "cust0") == cancelled
    assert await orders.release(a.order_id) == cancelled  # already cancelled: returned
    released = await orders.release(b.order_id)
    assert (released.state, released.cancel_reason) == (CANCELLED, food_pb2.CANCEL_REASON_NO_COURIER)
    assert await orders.release(b.order_id) == released
    await orders.assign((c.order_id,), "c1", BATCH)
    with pytest.raises(FailedPrecondition):
        await orders.release(c.order_id)
    # The customer may cancel an assigned order: the courier is free again.
    assert (await orders.cancel(c.order_id, "cust2")).courier_id == "c1"
    assert orders.store.batch_of_courier("c1") is None
    assert orders.open_orders(10) == []
    with pytest.raises(NotFound):
        await orders.release("ord-nope")
    await orders.close()


# ----------------------------------------------------------------------------- durability and schema invariants


async def test_a_reopened_store_keeps_every_acknowledged_order(tmp_path):
    path = tmp_path / "orders.sqlite"
    key = b"k" * 32
    orders = make_orders(OrderStore(path, terminal_cache_size=1), id_key=key)
    placed = [await place(orders, f"cust{i}") for i in range(7)]
    await orders.assign((placed[0].order_id, placed[1].order_id), "c0", BATCH)
    await orders.assign((placed[2].order_id,), "c2", BATCH2)
    await orders.update(placed[2].order_id, "c2", Event.PICK_UP)
    await orders.cancel(placed[3].order_id, "cust3")
    await orders.release(placed[4].order_id)
    await orders.assign((placed[5].order_id,), "c5", BATCH3)
    await orders.update(placed[5].order_id, "c5", Event.PICK_UP)
    await orders.update(placed[5].order_id, "c5", Event.DELIVER)
    before = {o.order_id: await orders.get(o.order_id) for o in placed}
    await orders.close()

    store = OrderStore(path, terminal_cache_size=10)
    after = make_orders(store, id_key=key)
    assert {o.order_id: await after.get(o.order_id) for o in placed} == before
    assert store.open_count == 4  # two ASSIGNED, one PICKED_UP, one PLACED
    assert [o.order_id for o in after.open_orders(10)] == [placed[6].order_id]
    # Dispatch's recovery: then the ASSIGNED orders (c0's batch), oldest first; not c2's PICKED_UP one; limit in all.
    assert [o.order_id for o in after.open_orders(10, include_assigned=True)] == [
        placed[6].order_id, placed[0].order_id, placed[1].order_id]
    assert [o.order_id for o in after.open_orders(2, include_assigned=True)] == [placed[6].order_id,
                                                                                 placed[0].order_id]
    assert store.batch_of_courier("c0") == BATCH and store.batch_of_courier("c5") is None
    with pytest.raises(FailedPrecondition, match="another batch"):
        await after.assign((placed[6].order_id,), "c0", "bat-" + "D" * 26)
    with pytest.raises(FailedPrecondition, match="at most 2"):
        await after.assign((placed[6].order_id,), "c0", BATCH)
    with pytest.raises(Aborted):
        await after.assign((placed[0].order_id,), "c9", "bat-" + "E" * 26)
    assert await place(after, "cust6") == before[placed[6].order_id]  # a retry after the restart: the same order
    await after.close()

    # The schema refuses what the store would never write.
    db = sqlite3.connect(path)
    insert = "INSERT INTO orders VALUES (" + ",".join("?" * 23) + ")"
    assigned = before[placed[0].order_id]
    second_batch = replace(assigned, order_id="ord-" + "X" * 26, customer_id="cx", batch_id="bat-" + "F" * 26)
    with pytest.raises(sqlite3.IntegrityError, match="orders_one_batch"):
        db.execute(insert, astuple(second_batch))  # c0 holds BATCH already
    other_courier_same_batch = replace(assigned, order_id="ord-" + "Y" * 26, customer_id="cy", courier_id="c7")
    with pytest.raises(sqlite3.IntegrityError, match="orders_one_batch"):
        db.execute(insert, astuple(other_courier_same_batch))
    with pytest.raises(sqlite3.IntegrityError, match="orders_one_courier"):  # dispatched twice
        db.execute("UPDATE orders SET courier_id = 'c8', batch_id = ? WHERE order_id = ?",
                   ("bat-" + "G" * 26, assigned.order_id))
    with pytest.raises(sqlite3.IntegrityError, match="orders_moves"):  # back to PLACED
        db.execute("UPDATE orders SET state = ? WHERE order_id = ?", (PLACED, assigned.order_id))
    open_order = before[placed[6].order_id]
    with pytest.raises(sqlite3.IntegrityError):  # UNIQUE (customer_id, client_request_id)
        db.execute(insert, astuple(replace(open_order, order_id="ord-" + "Z" * 26)))
    with pytest.raises(sqlite3.IntegrityError):  # CHECK: PLACED with a courier
        db.execute(insert, astuple(replace(open_order, order_id="ord-" + "W" * 26, client_request_id="w",
                                           courier_id="c1", batch_id=BATCH3, assigned_at_unix_ms=1)))
    with pytest.raises(sqlite3.IntegrityError, match="orders_batch_join"):  # joining a picked-up batch
        db.execute("UPDATE orders SET state = ?, courier_id = 'c2', batch_id = ?, assigned_at_unix_ms = 1 "
                   "WHERE order_id = ?", (ASSIGNED, BATCH2, open_order.order_id))
    db.execute("UPDATE orders SET state = ?, courier_id = 'c9', batch_id = ?, assigned_at_unix_ms = 1 "
               "WHERE order_id = ?", (ASSIGNED, "bat-" + "H" * 26, open_order.order_id))  # a legal move
    db.rollback()
    db.close()


# ----------------------------------------------------------------------------- a model of any sequence of calls


COURIERS = ("c1", "c2", "c3")
BATCHES = tuple(f"bat-{letter * 26}" for letter in "PQRS")
PICK = st.integers(min_value=0, max_value=1_000)


class OrdersMachine(RuleBasedStateMachine):
    """Any sequence of placements, (batch) assignments, courier events, cancels, releases and restarts of the store
    from its file: every acknowledged order is kept exactly, an order once given to a courier never changes courier
    or batch, a courier's active orders are one batch of at most ``max_batch_orders``, and the schema never refuses
    what the service writes."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="food-orders-"))
        self.key = b"m" * 32
        self.orders = self._open()
        self.acknowledged: dict[str, object] = {}  # order id → the OrderRecord last answered
        self.first_courier: dict[str, tuple[str, str]] = {}
        self.customers = 0

    def _open(self) -> Orders:
        return make_orders(OrderStore(self.folder / "orders.sqlite", terminal_cache_size=2), id_key=self.key)

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def _ack(self, *orders) -> None:
        for order in orders:
            self.acknowledged[order.order_id] = order
            if order.courier_id:
                assert self.first_courier.setdefault(order.order_id, (order.courier_id, order.batch_id)) == (
                    order.courier_id, order.batch_id), "an order was dispatched twice"

    def _pick(self, pick: int, *states: int) -> str:
        """An acknowledged order, in one of ``states`` when there is one (any order otherwise)."""
        ids = sorted(i for i, o in self.acknowledged.items() if o.state in states) or sorted(self.acknowledged)
        return ids[pick % len(ids)]

    @rule(again=st.booleans())
    def place(self, again: bool) -> None:
        if not again or not self.customers:
            self.customers += 1
        order = self.run(place(self.orders, f"cust{self.customers}"))
        if again and order.order_id in self.acknowledged:
            assert order == self.acknowledged[order.order_id]
        self._ack(order)

    @precondition(lambda self: self.acknowledged)
    @rule(picks=st.lists(PICK, min_size=1, max_size=3), courier=st.sampled_from(COURIERS),
          batch=st.sampled_from(BATCHES), placed=st.booleans())
    def assign(self, picks: list[int], courier: str, batch: str, placed: bool) -> None:
        ids = tuple(dict.fromkeys(self._pick(p, *((PLACED,) if placed else STATES)) for p in picks))
        before = {order_id: self.acknowledged[order_id] for order_id in ids}
        try:
            result = self.run(self.orders.assign(ids, courier, batch))
        except Aborted:
            assert any(order.state != PLACED for order in before.values())
            return
        except FailedPrecondition:
            return
        assert [order.order_id for order in result] == list(ids)
        assert all((order.courier_id, order.batch_id) == (courier, batch) for order in result)
        self._ack(*result)

    @precondition(lambda self: self.acknowledged)
    @rule(pick=PICK, event=st.sampled_from([Event.PICK_UP, Event.DELIVER]), own=st.booleans(),
          courier=st.sampled_from(COURIERS))
    def courier_event(self, pick: int, event: Event, own: bool, courier: str) -> None:
        order_id = self._pick(pick, ASSIGNED, PICKED_UP)
        if own and self.acknowledged[order_id].courier_id:
            courier = self.acknowledged[order_id].courier_id
        with contextlib.suppress(PermissionDenied, FailedPrecondition):
            self._ack(self.run(self.orders.update(order_id, courier, event)))

    @precondition(lambda self: self.acknowledged)
    @rule(pick=PICK, release=st.booleans(), now=st.integers(0, 2))
    def cancel_or_release(self, pick: int, release: bool, now: int) -> None:
        if now:  # a third of the time: orders are mostly left to their couriers
            return
        order_id = self._pick(pick)
        call = (self.orders.release(order_id) if release
                else self.orders.cancel(order_id, self.acknowledged[order_id].customer_id))
        with contextlib.suppress(FailedPrecondition):
            self._ack(self.run(call))

    @rule()
    def restart(self) -> None:
        self.run(self.orders.close())
        self.orders = self._open()

    @invariant()
    def every_acknowledged_order_is_kept_and_couriers_hold_one_small_batch(self) -> None:
        batches: dict[str, set[str]] = {}
        sizes: dict[str, int] = {}
        for order_id, expected in self.acknowledged.items():
            stored = self.run(self.orders.get(order_id))
            assert stored == expected
            if stored.state in (ASSIGNED, PICKED_UP):
                batches.setdefault(stored.courier_id, set()).add(stored.batch_id)
                sizes[stored.batch_id] = sizes.get(stored.batch_id, 0) + 1
        assert all(len(held) == 1 for held in batches.values()), batches
        assert all(size <= 2 for size in sizes.values()), sizes
        assert {o.order_id for o in self.orders.open_orders(1_000)} == {
            o.order_id for o in self.acknowledged.values() if o.state == PLACED}

    def teardown(self) -> None:
        self.run(self.orders.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestOrdersModel = OrdersMachine.TestCase
TestOrdersModel.settings = hypothesis_settings(max_examples=25, stateful_step_count=25, deadline=None)


# ----------------------------------------------------------------------------- the ETA model


def test_the_regression_recovers_known_coefficients():
    rng = np.random.default_rng(1)
    features = [EtaFeatures(float(k), float(t), float(a)) for k, t, a in
                zip(rng.uniform(0, 900, 2_000), rng.uniform(0, 8_000, 2_000), rng.uniform(10, 600, 2_000), strict=True)]
    rows = np.array([f.row() for f in features])
    truth = np.array([90.0, 1.0, 0.12, 0.05, 0.8])
    targets = rows @ truth + rng.normal(0, 5, len(rows))
    model = EtaModel.fit(rows, targets, quantile=0.9)
    assert model.coefficients == pytest.approx(truth, rel=0.05, abs=0.5)
    assert model.rmse_s == pytest.approx(5, rel=0.1)
    assert model.margin_s == pytest.approx(5 * 1.2816, rel=0.15)  # the normal's 90% quantile
    assert model.promise_s(features[0]) == pytest.approx(model.predict_s(features[0]) + model.margin_s)
    assert set(model.coefficient_map()) == set(FEATURES)
    assert EtaModel.fit(rows, targets, margin_s=30).margin_s == 30


@pytest.mark.parametrize("city", [
    {"courier_speed_mps": 30 / 3.6},  # the real-world defaults
    # A city 30 times faster than real time, as a profile sets it (every duration scaled down alike).
    {"courier_speed_mps": 250.0, "assign_delay_s": 0.5, "pickup_wait_s": 4.0, "eta_noise_s": 2.0,
     "eta_history_max_kitchen_s": 60.0},
])
def test_the_fitted_model_follows_the_city_and_its_promises_cover_the_quantile(city):
    settings = OrdersSettings(eta_history_size=5_000, **city)
    speed_mps = settings.courier_speed_mps
    model, city = eta_module.fit_from_settings(settings)
    coefficients = model.coefficient_map()
    assert coefficients["trip_m"] == pytest.approx(1 / speed_mps, rel=0.05)  # s per road metre: the speed model
    assert coefficients["kitchen_wait_s"] == pytest.approx(1.0, abs=0.05)
    fresh_rows, fresh_s = synthetic_history(
        city, 20_000, seed=99, max_kitchen_s=settings.eta_history_max_kitchen_s,
        max_trip_m=settings.eta_history_max_trip_m, max_supply=settings.eta_history_max_supply,
        pickup_wait_s=settings.pickup_wait_s, noise_s=settings.eta_noise_s)
    promised = np.maximum(fresh_rows @ model.coefficients, 0) + model.margin_s
    assert np.mean(fresh_s <= promised) == pytest.approx(settings.promise_quantile, abs=0.03)
    assert "synthetic" in model.describe()


def test_the_city_model():
    city = CityModel(10.0, 1.3, 5.0, approach_m=1_000, approach_max_m=3_000, resolution=7)
    assert city.expected_approach_m(None) == 1_000
    assert city.expected_approach_m(0) == 3_000
    assert city.expected_approach_m(4) == pytest.approx(0.5 * (city.region_area_m2 / 4) ** 0.5)
    assert city.expected_approach_m(100) < city.expected_approach_m(4)
    features = city.features(-5, KITCHEN, KITCHEN, None)
    assert (features.kitchen_wait_s, features.trip_m) == (0.0, 0.0)
    assert features.approach_s == pytest.approx(5 + 1_000 * 1.3 / 10)
    with pytest.raises(ValueError):
        CityModel(0, 1.3, 5, 1_000, 3_000, 7)


# ----------------------------------------------------------------------------- surge


@pytest.mark.parametrize(("demand", "supply", "multiplier"), [
    (0, 0, 1.0), (1, 4, 1.0), (2, 4, 1.2), (3, 4, 1.2), (4, 4, 1.5), (7, 4, 1.5), (8, 4, 2.0), (11, 4, 2.0),
    (12, 4, 2.5), (100, 4, 2.5), (1, 0, 1.5), (3, 0, 2.5),
])
def test_the_surge_ladder(demand, supply, multiplier):
    settings = OrdersSettings()
    ladder = SurgeLadder(settings.surge_ladder, settings.surge_max_multiplier)
    assert ladder.multiplier(demand, supply) == multiplier
    surge = SurgeMap(ladder, 7)
    surge.recompute({"r": demand}, {"r": supply}, 1)
    assert surge.surge("r").multiplier == multiplier
    off = SurgeMap(ladder, 7, enabled=False)
    off.recompute({"r": demand}, {"r": supply}, 1)
    assert off.surge("r").multiplier == 1.0 and off.supply("r") == supply


def test_the_surge_map_keeps_the_last_supply():
    surge = SurgeMap(SurgeLadder(OrdersSettings().surge_ladder, 2.5), 7)
    assert surge.supply("x") is None and surge.surge("x").multiplier == 1.0
    surge.recompute({"x": 2}, {"x": 1, "y": 5}, 10)
    assert (surge.supply("x"), surge.supply("z"), surge.surge("x").multiplier) == (1, 0, 2.0)
    surge.recompute({"x": 4}, None, 20)
    assert surge.surge("x").supply == 1 and surge.surge("x").multiplier == 2.5 and surge.computed_at_unix_ms == 20
    assert {r.region for r in surge.regions()} == {"x", "y"}


async def test_the_surge_loop_survives_failures():
    orders = make_orders(surge_interval_s=0.1)
    orders._location.supply = None
    calls = 0
    real = orders.recompute_surge

    async def flaky():
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("boom")
        return await real()

    orders.recompute_surge = flaky
    loop = asyncio.create_task(orders.run_surge())
    await eventually(lambda: calls >= 3, "three recomputations")
    loop.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loop
    await orders.close()


# ----------------------------------------------------------------------------- WatchOrder


async def test_watch_sends_the_order_every_change_and_positions_then_ends():
    orders = make_orders()
    location: FakeLocation = orders._location
    order = await place(orders, "cust1")
    updates: list = []
    done = asyncio.Event()

    async def watch():
        async with contextlib.aclosing(orders.watch(order.order_id)) as stream:
            async for update in stream:
                updates.append(update)
        done.set()

    tasks = [asyncio.create_task(watch()) for _ in range(2)]
    await eventually(lambda: len(updates) == 2, "the first updates")
    await orders.assign((order.order_id,), "c1", BATCH)
    await eventually(lambda: location.calls == ["c1"], "tracking to start (one stream for both watchers)")
    location.push(position("c1", 1))
    await eventually(lambda: sum(isinstance(u, rides_pb2.DriverPosition) for u in updates) == 2, "a position")
    await orders.update(order.order_id, "c1", Event.PICK_UP)
    await orders.update(order.order_id, "c1", Event.DELIVER)
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    states = [u.state for u in updates if not isinstance(u, rides_pb2.DriverPosition)]
    assert sorted(states) == sorted([PLACED, ASSIGNED, PICKED_UP, DELIVERED] * 2)
    assert location.calls == ["c1"]
    await eventually(lambda: location.open == 0 and not orders._feeds, "tracking to stop")
    await orders.close()


async def test_watch_refusals_tracking_retries_and_shutdown():
    orders = make_orders(max_watchers=1)
    location: FakeLocation = orders._location
    location.scripts = [([position("c1", 1)], ConnectionError("location restarted"))]
    order = await place(orders, "cust1")
    await orders.assign((order.order_id,), "c1", BATCH)
    with pytest.raises(NotFound):
        await anext(orders.watch("ord-nope"))
    stream = orders.watch(order.order_id)
    assert (await anext(stream)).state == ASSIGNED
    assert (await asyncio.wait_for(anext(stream), WAIT_S)).sent_at_unix_ms == 1
    await eventually(lambda: len(location.calls) == 2, "a retry")
    with pytest.raises(ResourceExhausted):
        await anext(orders.watch(order.order_id))
    pending = asyncio.ensure_future(anext(stream))
    await asyncio.sleep(0)
    await orders.close()
    with pytest.raises(WatchEnded):
        await asyncio.wait_for(pending, WAIT_S)


# ----------------------------------------------------------------------------- over gRPC: status codes


@pytest.fixture
async def orders_stub(tmp_path):
    orders = make_orders(OrderStore(tmp_path / "orders.sqlite"))
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    orders_pb2_grpc.add_OrderServiceServicer_to_server(OrderServicer(orders), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield orders, orders_pb2_grpc.OrderServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)
        await orders.close()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_grpc_status_codes(orders_stub):
    orders, stub = orders_stub
    code, details = await _code(stub.PlaceOrder(_place_request(items=0), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("items")
    code, details = await _code(stub.PlaceOrder(_place_request(restaurant_id="missing"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND and "missing" in details
    orders._restaurants.down = True
    code, _ = await _code(stub.PlaceOrder(_place_request(), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
    orders._restaurants.down = False
    order = (await stub.PlaceOrder(_place_request(), timeout=WAIT_S)).order
    assert order.state == food_pb2.ORDER_STATE_PLACED and order.delivery_fee.amount_minor == 299
    assert (await stub.PlaceOrder(_place_request(), timeout=WAIT_S)).order == order
    code, _ = await _code(stub.GetOrder(orders_pb2.GetOrderRequest(order_id="ord-nope"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = await _code(stub.UpdateOrder(orders_pb2.UpdateOrderRequest(
        order_id=order.order_id, courier_id="c1"), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("event")
    code, details = await _code(stub.ListOpenOrders(orders_pb2.ListOpenOrdersRequest(limit=0), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("limit")
    listed = (await stub.ListOpenOrders(orders_pb2.ListOpenOrdersRequest(limit=5), timeout=WAIT_S)).orders
    assert [o.order_id for o in listed] == [order.order_id]
    code, details = await _code(stub.AssignCourier(orders_pb2.AssignCourierRequest(
        order_ids=[order.order_id, order.order_id], courier_id="c1", batch_id=BATCH), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("order_ids")
    assigned = (await stub.AssignCourier(orders_pb2.AssignCourierRequest(
        order_ids=[order.order_id], courier_id="c1", batch_id=BATCH), timeout=WAIT_S)).orders
    assert [(o.state, o.courier_id, o.batch_id) for o in assigned] == [(food_pb2.ORDER_STATE_ASSIGNED, "c1", BATCH)]
    assert not (await stub.ListOpenOrders(orders_pb2.ListOpenOrdersRequest(limit=5), timeout=WAIT_S)).orders
    listed = (await stub.ListOpenOrders(orders_pb2.ListOpenOrdersRequest(limit=5, include_assigned=True),
                                        timeout=WAIT_S)).orders
    assert [(o.order_id, o.courier_id, o.batch_id) for o in listed] == [(order.order_id, "c1", BATCH)]
    code, _ = await _code(stub.AssignCourier(orders_pb2.AssignCourierRequest(
        order_ids=[order.order_id], courier_id="c2", batch_id=BATCH2), timeout=WAIT_S))
    assert code == grpc.StatusCode.ABORTED
    code, _ = await _code(stub.ReleaseOrder(orders_pb2.ReleaseOrderRequest(order_id=order.order_id), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = await _code(stub.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order.order_id, customer_id="c9"),
                                           timeout=WAIT_S))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _ = await _code(stub.UpdateOrder(orders_pb2.UpdateOrderRequest(
        order_id=order.order_id, courier_id="c2", event=orders_pb2.COURIER_EVENT_PICK_UP), timeout=WAIT_S))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, details = await _code(stub.GetSurge(orders_pb2.GetSurgeRequest(
        point=geo_pb2.LatLng(lat_deg=37.78, lng_deg=200)), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("point.lng_deg")
    surge = await stub.GetSurge(orders_pb2.GetSurgeRequest(point=order.pickup), timeout=WAIT_S)
    assert surge.surge_multiplier == 1.0 and surge.region == orders.surge.region_of(*KITCHEN)

    call = stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id=order.order_id), timeout=WAIT_S)
    assert (await call.read()).order.state == food_pb2.ORDER_STATE_ASSIGNED
    await stub.UpdateOrder(orders_pb2.UpdateOrderRequest(order_id=order.order_id, courier_id="c1",
                                                         event=orders_pb2.COURIER_EVENT_PICK_UP), timeout=WAIT_S)
    code, _ = await _code(stub.CancelOrder(orders_pb2.CancelOrderRequest(order_id=order.order_id, customer_id="c1"),
                                           timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    await stub.UpdateOrder(orders_pb2.UpdateOrderRequest(order_id=order.order_id, courier_id="c1",
                                                         event=orders_pb2.COURIER_EVENT_DELIVER), timeout=WAIT_S)
    states = []
    while (message := await call.read()) is not grpc.aio.EOF:
        if message.HasField("order"):
            states.append(message.order.state)
    assert states == [food_pb2.ORDER_STATE_PICKED_UP, food_pb2.ORDER_STATE_DELIVERED]
    assert await call.code() == grpc.StatusCode.OK
    code, _ = await _code(stub.WatchOrder(orders_pb2.WatchOrderRequest(order_id="bad id"), timeout=WAIT_S).read())
    assert code == grpc.StatusCode.INVALID_ARGUMENT
