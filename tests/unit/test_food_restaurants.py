"""food-restaurants (services/food/restaurants): validation, the durable catalog, the kitchen queues, then the servicer
over real gRPC on 127.0.0.1.

Validation errors name the proto field (``restaurants[2].point.lat_deg``, the first bad restaurant, a repeated id,
``items``); CreateRestaurants is idempotent for identical restaurants and all-or-nothing otherwise (ALREADY_EXISTS and
RESOURCE_EXHAUSTED store nothing, also on disk); concurrent creates of one id store it once; what was acknowledged is
there after reopening the SQLite file. The kitchen queue (a fake clock): ``kitchen_slots`` orders at once, the next
one starts when the earliest slot frees, an order id prepared again gets the same ready time (until the bounded
memory forgets it), the jitter is deterministic per order id and within its share; a hypothesis test checks, for any
arrivals, that no more orders than slots are ever prepared at once, orders start in arrival order, and an order waits
only while every slot is busy. The component loads the restaurants at build, its sweep drops idle kitchens and sets
the kitchen gauges, and a restart keeps the restaurants but not the kitchens' load.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3

import grpc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import restaurants_pb2, restaurants_pb2_grpc
from casemesh.services.food import contract
from casemesh.services.food.restaurants import validation
from casemesh.services.food.restaurants.kitchens import Kitchens, jitter_factor
from casemesh.services.food.restaurants.service import (DEFINITION, NAME, PREPARE_CALLERS, RestaurantServicer,
                                                        build)
from casemesh.services.food.restaurants.settings import RestaurantsSettings
from casemesh.services.food.restaurants.store import (RestaurantRecord, Restaurants, RestaurantStore,
                                                      StoreUnavailable)
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology

SF = (37.7749, -122.4194)
AREA = contract.SERVICE_AREA
WAIT_S = 5.0
T0 = 1_700_000_000.0  # the fake clock's start, seconds since the epoch


class FakeClock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def record(restaurant_id: str = "r1", base: float = 60.0, per_item: float = 10.0, slots: int = 2,
           name: str = "") -> RestaurantRecord:
    return RestaurantRecord(restaurant_id, name or f"Kitchen {restaurant_id}", SF[0], SF[1], base, per_item, slots)


def proto(restaurant_id: str = "r1", name: str = "Burma Superstar", lat: float = SF[0], lng: float = SF[1],
          base: float = 600.0, per_item: float = 60.0, slots: int = 4,
          point: bool = True) -> restaurants_pb2.Restaurant:
    message = restaurants_pb2.Restaurant(restaurant_id=restaurant_id, name=name, prep_base_s=base,
                                         prep_per_item_s=per_item, kitchen_slots=slots)
    if point:
        message.point.CopyFrom(geo_pb2.LatLng(lat_deg=lat, lng_deg=lng))
    return message


def make(tmp_path=None, **changes) -> Restaurants:
    store = RestaurantStore(tmp_path / "restaurants.sqlite" if tmp_path is not None else None)
    return Restaurants(RestaurantsSettings(**changes), store)


def kitchens(clock: FakeClock, **changes) -> Kitchens:
    return Kitchens(RestaurantsSettings(**{"prep_jitter": 0.0, **changes}), clock)


def ms(seconds: float) -> int:
    """Seconds since the epoch as the service's whole ms (rounded up)."""
    return math.ceil(seconds * 1000)


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("restaurants", "field"), [
    ([], "restaurants"),
    ([proto(restaurant_id=f"r{i}") for i in range(1_001)], "restaurants"),
    ([proto(restaurant_id="")], "restaurants[0].restaurant_id"),
    ([proto(restaurant_id="no spaces")], "restaurants[0].restaurant_id"),
    ([proto(restaurant_id="x" * 65)], "restaurants[0].restaurant_id"),
    ([proto(restaurant_id="a"), proto(restaurant_id="b"), proto(restaurant_id="a")], "restaurants[2].restaurant_id"),
    ([proto(name="")], "restaurants[0].name"),
    ([proto(name="x" * 201)], "restaurants[0].name"),
    ([proto(name="bell\x07")], "restaurants[0].name"),
    ([proto(name="next line\x85")], "restaurants[0].name"),
    ([proto(point=False)], "restaurants[0].point"),
    ([proto(lat=91)], "restaurants[0].point.lat_deg"),
    ([proto(lng=float("nan"))], "restaurants[0].point.lng_deg"),
    ([proto(lat=40.7, lng=-74.0)], "restaurants[0].point"),  # New York: outside the service area
    ([proto(base=0)], "restaurants[0].prep_base_s"),
    ([proto(base=0.999)], "restaurants[0].prep_base_s"),
    ([proto(base=3_600.5)], "restaurants[0].prep_base_s"),
    ([proto(base=float("inf"))], "restaurants[0].prep_base_s"),
    ([proto(base=float("nan"))], "restaurants[0].prep_base_s"),
    ([proto(per_item=-0.1)], "restaurants[0].prep_per_item_s"),
    ([proto(per_item=600.1)], "restaurants[0].prep_per_item_s"),
    ([proto(per_item=float("nan"))], "restaurants[0].prep_per_item_s"),
    ([proto(slots=0)], "restaurants[0].kitchen_slots"),
    ([proto(slots=51)], "restaurants[0].kitchen_slots"),
    ([proto(slots=-3)], "restaurants[0].kitchen_slots"),
    # The first bad restaurant is named, with its first bad field in the proto's order.
    ([proto(restaurant_id="a"), proto(restaurant_id="b", lat=95, slots=0), proto(restaurant_id="a")],
     "restaurants[1].point.lat_deg"),
    ([proto(restaurant_id="a"), proto(restaurant_id="b"), proto(restaurant_id="c", base=0, per_item=-1)],
     "restaurants[2].prep_base_s"),
])
def test_create_validation_names_the_field(restaurants, field):
    with pytest.raises(InvalidArgument) as error:
        validation.create(restaurants_pb2.CreateRestaurantsRequest(restaurants=restaurants))
    assert error.value.field == field


def test_create_validation_accepts_the_limits():
    restaurants = [proto(restaurant_id=f"r-{i}_X", name="é" * 200, base=1 if i % 2 else 3_600,
                         per_item=0 if i % 2 else 600, slots=1 if i % 2 else 50,
                         lat=AREA.north_deg if i % 2 else AREA.south_deg, lng=AREA.east_deg) for i in range(1_000)]
    records = validation.create(restaurants_pb2.CreateRestaurantsRequest(restaurants=restaurants))
    assert len(records) == 1_000
    assert records[1] == RestaurantRecord("r-1_X", "é" * 200, AREA.north_deg, AREA.east_deg, 1.0, 0.0, 1)
    assert records[2].to_proto() == restaurants[2] and records[1].to_proto() == restaurants[1]


@pytest.mark.parametrize(("changes", "field"), [
    ({"restaurant_id": ""}, "restaurant_id"),
    ({"restaurant_id": "bad id"}, "restaurant_id"),
    ({"order_id": ""}, "order_id"),
    ({"order_id": "o" * 65}, "order_id"),
    ({"items": 0}, "items"),
    ({"items": 51}, "items"),
    ({"items": -1}, "items"),
    ({"restaurant_id": "", "order_id": "", "items": 0}, "restaurant_id"),
])
def test_prepare_and_get_validation_name_the_field(changes, field):
    request = restaurants_pb2.PrepareOrderRequest(restaurant_id="r1", order_id="ord-1", items=3)
    for key, value in changes.items():
        setattr(request, key, value)
    with pytest.raises(InvalidArgument) as error:
        validation.prepare(request)
    assert error.value.field == field
    assert validation.prepare(restaurants_pb2.PrepareOrderRequest(restaurant_id="r", order_id="o", items=50)) == \
        ("r", "o", 50)
    with pytest.raises(InvalidArgument) as error:
        validation.restaurant_id("")
    assert error.value.field == "restaurant_id"


def test_settings_are_checked_and_the_definition():
    defaults = RestaurantsSettings()
    assert (defaults.max_restaurants, defaults.recent_orders, defaults.prep_jitter) == (100_000, 100_000, 0.2)
    for bad in ({"max_restaurants": 0}, {"recent_orders": 0}, {"prep_jitter": -0.1}, {"prep_jitter": 0.95},
                {"commit_batch": 0}, {"sweep_interval_s": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            RestaurantsSettings(**bad)
    assert DEFINITION.name == NAME == "food-restaurants" and DEFINITION.dependencies == ()
    assert DEFINITION.access.public == {"CreateRestaurants", "GetRestaurant"}
    assert DEFINITION.access.internal == {"PrepareOrder": ("food-orders",)} and PREPARE_CALLERS == ("food-orders",)
    assert DEFINITION.settings_model is RestaurantsSettings


# ----------------------------------------------------------------------------- the catalog


async def test_create_is_idempotent_for_identical_restaurants():
    restaurants = make()
    a, b, c = record("a"), record("b", slots=5), record("c", base=1.5)
    assert await restaurants.create([a, b]) == 2
    assert await restaurants.create([b, a]) == 0
    assert await restaurants.create([a, b, c]) == 1
    assert restaurants.get("c") == c and len(restaurants) == 3
    assert REGISTRY.get_sample_value("casemesh_food_restaurants_restaurants") == 3
    with pytest.raises(NotFound):
        restaurants.get("d")


async def test_already_exists_names_the_id_and_stores_nothing(tmp_path):
    restaurants = make(tmp_path)
    await restaurants.create([record("a")])
    for changed in (record("a", slots=3), record("a", name="Other"), record("a", per_item=10.000001)):
        with pytest.raises(AlreadyExists) as error:
            await restaurants.create([record("new1"), changed, record("new2")])
        assert "a" in str(error.value).split()
    for restaurant_id in ("new1", "new2"):
        with pytest.raises(NotFound):
            restaurants.get(restaurant_id)
    assert len(restaurants) == 1
    await restaurants.close()
    reopened = make(tmp_path)
    assert await reopened.load() == 1 and reopened.get("a") == record("a")
    await reopened.close()


async def test_max_restaurants_refuses_the_whole_batch():
    restaurants = make(max_restaurants=3)
    assert await restaurants.create([record("a"), record("b")]) == 2
    with pytest.raises(ResourceExhausted):
        await restaurants.create([record("c"), record("d")])
    assert len(restaurants) == 2
    assert await restaurants.create([record("a"), record("c")]) == 1  # the existing one does not count twice
    assert await restaurants.create([record("a")]) == 0


async def test_restaurants_survive_a_reopen(tmp_path):
    restaurants = make(tmp_path)
    created = [record(f"r{i}", base=1 + i * 7.3, per_item=i / 3, slots=1 + i % 50) for i in range(60)]
    assert await asyncio.gather(*(restaurants.create(created[i:i + 10]) for i in range(0, 60, 10))) == [10] * 6
    await restaurants.close()
    reopened = make(tmp_path)
    assert await reopened.load() == 60
    assert all(reopened.get(r.restaurant_id) == r for r in created)  # floats round-trip exactly
    assert await reopened.create(created[:5]) == 0  # an identical retry after a restart is still identical
    await reopened.close()
    with sqlite3.connect(tmp_path / "restaurants.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM restaurants").fetchone() == (60,)


async def test_concurrent_creates_of_one_id_store_it_once(tmp_path):
    restaurants = make(tmp_path)
    identical = [restaurants.create([record("same"), record(f"own{i}")]) for i in range(10)]
    assert sorted(await asyncio.gather(*identical)) == [1] * 9 + [2]
    rivals = await asyncio.gather(*(restaurants.create([record("rival", slots=1 + i)]) for i in range(10)),
                                  return_exceptions=True)
    assert sum(result == 1 for result in rivals) == 1
    assert all(isinstance(result, AlreadyExists) for result in rivals if result != 1)
    await restaurants.close()
    reopened = make(tmp_path)
    assert await reopened.load() == 12
    await reopened.close()


async def test_a_failed_write_leaves_nothing_visible_and_a_cancelled_one_lands(tmp_path):
    restaurants = make(tmp_path)
    task = asyncio.create_task(restaurants.create([record("a"), record("b")]))
    await asyncio.sleep(0)  # the write is queued (waiting on the disk)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await restaurants.store.close()  # waits for the write under way, then the disk is gone
    assert restaurants.get("a") == record("a")
    with pytest.raises(StoreUnavailable):
        await restaurants.create([record("c")])
    with pytest.raises(NotFound):
        restaurants.get("c")
    assert not restaurants._busy  # nothing left claimed: the next write is not blocked
    reopened = make(tmp_path)
    assert await reopened.load() == 2
    await reopened.close()


async def test_one_bad_insert_of_a_group_commit_fails_alone(tmp_path):
    store = RestaurantStore(tmp_path / "restaurants.sqlite")
    await store.insert([record("a")])
    results = await asyncio.gather(store.insert([record("b")]), store.insert([record("c"), record("a")]),
                                   store.insert([record("d")]), return_exceptions=True)
    assert results[0] is None and isinstance(results[1], StoreUnavailable) and results[2] is None
    assert [r.restaurant_id for r in await store.load()] == ["a", "b", "d"]  # "c" went with its failed insert
    await store.close()


# ----------------------------------------------------------------------------- the kitchens


def test_a_kitchen_prepares_slots_orders_at_once_and_queues_the_rest():
    clock = FakeClock()
    model = kitchens(clock)
    r = record(base=60, per_item=10, slots=2)
    assert model.outlook(r) == (0, ms(T0 + 70))  # empty: a one-item order now
    first = model.prepare(r, "o1", 1)
    assert first == (ms(T0 + 70), False, 0.0, 70.0)
    assert model.prepare(r, "o2", 2).ready_at_unix_ms == ms(T0 + 80)  # the second slot
    third = model.prepare(r, "o3", 1)  # both slots busy: starts when o1's frees
    assert third.ready_at_unix_ms == ms(T0 + 140) and third.wait_s == 70
    assert model.prepare(r, "o4", 5).ready_at_unix_ms == ms(T0 + 80 + 110)  # then o2's slot
    assert model.outlook(r) == (4, ms(T0 + 140 + 70))  # the next order waits for o3's slot
    # The same order id again: the same ready time, nothing queued.
    again = model.prepare(r, "o1", 1)
    assert again.ready_at_unix_ms == first.ready_at_unix_ms and again.repeated
    assert model.prepare(r, "o3", 50).ready_at_unix_ms == third.ready_at_unix_ms  # the first answer stands
    assert model.outlook(r) == (4, ms(T0 + 140 + 70))
    assert model.sweep() == (2, 4)

    clock.now = T0 + 75  # o1 ready, its slot took o3
    assert model.outlook(r) == (3, ms(T0 + 140 + 70))
    assert model.sweep() == (2, 3)
    clock.now = T0 + 145  # o1, o2, o3 ready; o4 still in its slot: one slot free
    assert model.outlook(r) == (1, ms(T0 + 145 + 70))
    assert model.sweep() == (1, 1)
    assert REGISTRY.get_sample_value("casemesh_food_restaurants_kitchen_slots_busy") == 1
    late = model.prepare(r, "o5", 1)  # a free slot: starts now
    assert late.ready_at_unix_ms == ms(T0 + 145 + 70) and late.wait_s == 0
    clock.now = T0 + 1_000  # everything ready: the kitchen is forgotten
    assert model.sweep() == (0, 0) and len(model) == 0
    assert model.outlook(r) == (0, ms(T0 + 1_070))
    assert model.prepare(r, "o1", 1).ready_at_unix_ms == first.ready_at_unix_ms  # still remembered


def test_kitchens_are_independent_and_the_same_order_id_at_another_restaurant_is_another_order():
    clock = FakeClock()
    model = kitchens(clock)
    one, other = record("one", base=100, per_item=0, slots=1), record("other", base=30, per_item=5, slots=1)
    assert model.prepare(one, "o1", 1).ready_at_unix_ms == ms(T0 + 100)
    assert model.prepare(one, "o2", 1).ready_at_unix_ms == ms(T0 + 200)
    assert model.prepare(other, "o1", 2).ready_at_unix_ms == ms(T0 + 40)
    assert model.outlook(one).orders_preparing == 2 and model.outlook(other).orders_preparing == 1
    assert model.sweep() == (2, 3)


def test_the_memory_of_recent_orders_is_bounded():
    clock = FakeClock()
    model = kitchens(clock, recent_orders=2)
    r = record(base=60, per_item=0, slots=1)
    assert [model.prepare(r, f"o{i}", 1).ready_at_unix_ms for i in range(3)] == [ms(T0 + 60 * k) for k in (1, 2, 3)]
    assert model.prepare(r, "o2", 1).repeated  # recent: remembered
    forgotten = model.prepare(r, "o0", 1)  # evicted: queued again, behind the others
    assert not forgotten.repeated and forgotten.ready_at_unix_ms == ms(T0 + 240)


def test_the_jitter_is_deterministic_per_order_and_within_its_share():
    factors = [jitter_factor(f"ord-{i}", 0.2) for i in range(2_000)]
    assert all(0.8 <= f <= 1.2 for f in factors)
    assert min(factors) < 0.82 and max(factors) > 1.18 and 0.98 < sum(factors) / len(factors) < 1.02
    assert jitter_factor("ord-7", 0.2) == factors[7] and jitter_factor("ord-7", 0.0) == 1.0
    clock = FakeClock()
    model = Kitchens(RestaurantsSettings(prep_jitter=0.2), clock)
    r = record(base=100, per_item=10, slots=1)
    first = model.prepare(r, "ord-7", 3)
    assert first.prep_s == pytest.approx(130 * factors[7]) and first.ready_at_unix_ms == ms(T0 + 130 * factors[7])
    second = model.prepare(r, "ord-8", 1)  # queued behind the jittered one
    assert second.ready_at_unix_ms == ms(T0 + 130 * factors[7] + 110 * factors[8])


@settings(max_examples=150, deadline=None)
@given(slots=st.integers(1, 4), jitter=st.sampled_from([0.0, 0.2]),
       orders=st.lists(st.tuples(st.floats(0, 50), st.integers(1, 50)), min_size=1, max_size=40))
def test_no_more_orders_than_slots_at_once_first_come_first_served_and_no_idle_wait(slots, jitter, orders):
    clock = FakeClock()
    model = Kitchens(RestaurantsSettings(prep_jitter=jitter), clock)
    r = record(base=20, per_item=3, slots=slots)
    spans: list[tuple[float, float, float]] = []  # (arrival, start, ready)
    for n, (gap, items) in enumerate(orders):
        clock.now += gap
        prepared = model.prepare(r, f"ord-{n}", items)
        start = clock.now + prepared.wait_s
        spans.append((clock.now, start, start + prepared.prep_s))
        assert prepared.wait_s >= 0 and prepared.ready_at_unix_ms >= (start + prepared.prep_s) * 1000 - 1e-3
    starts = [start for _, start, _ in spans]
    assert starts == sorted(starts)  # first come, first served
    for arrival, start, _ in spans:
        # At most `slots` orders in the kitchen at any start; an order that waited found every slot busy.
        at_start = sum(1 for _, s, ready in spans if s <= start < ready)
        assert at_start <= slots
        if start > arrival:
            assert sum(1 for _, s, ready in spans if s <= arrival < ready) == slots
    busy, preparing = model.sweep()
    now = clock.now
    assert preparing == sum(1 for _, _, ready in spans if ready > now)
    assert busy == sum(1 for _, s, ready in spans if s <= now < ready)


def test_preparing_counts_in_the_metrics():
    def sample(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0

    before = {name: sample(name) for name in ("casemesh_food_restaurants_orders_prepared_total",
                                              "casemesh_food_restaurants_orders_repeated_total",
                                              "casemesh_food_restaurants_kitchen_wait_seconds_count")}
    waited_before = REGISTRY.get_sample_value("casemesh_food_restaurants_kitchen_wait_seconds_bucket", {"le": "0.0"})
    model = kitchens(FakeClock())
    r = record(slots=1)
    model.prepare(r, "m1", 1)
    model.prepare(r, "m2", 1)
    model.prepare(r, "m1", 1)
    assert sample("casemesh_food_restaurants_orders_prepared_total") == \
        before["casemesh_food_restaurants_orders_prepared_total"] + 2
    assert sample("casemesh_food_restaurants_orders_repeated_total") == \
        before["casemesh_food_restaurants_orders_repeated_total"] + 1
    assert sample("casemesh_food_restaurants_kitchen_wait_seconds_count") == \
        before["casemesh_food_restaurants_kitchen_wait_seconds_count"] + 2
    # One of them started at once (le="0.0"), the other waited.
    assert REGISTRY.get_sample_value("casemesh_food_restaurants_kitchen_wait_seconds_bucket",
                                     {"le": "0.0"}) == waited_before + 1


# ----------------------------------------------------------------------------- over gRPC


@contextlib.asynccontextmanager
async def served(restaurants: Restaurants, model: Kitchens):
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    restaurants_pb2_grpc.add_RestaurantServiceServicer_to_server(RestaurantServicer(restaurants, model), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield restaurants_pb2_grpc.RestaurantServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_over_grpc_create_get_prepare_and_status_codes(tmp_path):
    restaurants = make(tmp_path)
    clock = FakeClock()
    model = kitchens(clock)
    async with served(restaurants, model) as stub:
        batch = [proto(restaurant_id=f"r{i}", base=300, per_item=30, slots=1 + i) for i in range(3)]
        create = restaurants_pb2.CreateRestaurantsRequest
        assert (await stub.CreateRestaurants(create(restaurants=batch), timeout=WAIT_S)).created == 3
        assert (await stub.CreateRestaurants(create(restaurants=batch[:2]), timeout=WAIT_S)).created == 0

        got = await stub.GetRestaurant(restaurants_pb2.GetRestaurantRequest(restaurant_id="r0"), timeout=WAIT_S)
        assert got.restaurant == batch[0] and got.orders_preparing == 0
        assert got.next_ready_at_unix_ms == ms(T0 + 330)

        prepare = restaurants_pb2.PrepareOrderRequest
        first = await stub.PrepareOrder(prepare(restaurant_id="r0", order_id="ord-1", items=2), timeout=WAIT_S)
        assert first.ready_at_unix_ms == ms(T0 + 360) and first.pickup == batch[0].point
        second = await stub.PrepareOrder(prepare(restaurant_id="r0", order_id="ord-2", items=1), timeout=WAIT_S)
        assert second.ready_at_unix_ms == ms(T0 + 360 + 330)  # one slot: behind ord-1
        retry = await stub.PrepareOrder(prepare(restaurant_id="r0", order_id="ord-1", items=2), timeout=WAIT_S)
        assert retry == first
        got = await stub.GetRestaurant(restaurants_pb2.GetRestaurantRequest(restaurant_id="r0"), timeout=WAIT_S)
        assert got.orders_preparing == 2 and got.next_ready_at_unix_ms == ms(T0 + 690 + 330)

        code, details = await _code(stub.PrepareOrder(prepare(restaurant_id="r9", order_id="o", items=1),
                                                      timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        for bad, field in ((prepare(restaurant_id="r0", order_id="o", items=51), "items"),
                           (prepare(restaurant_id="r0", order_id="", items=1), "order_id"),
                           (prepare(restaurant_id="r 0", order_id="o", items=1), "restaurant_id")):
            code, details = await _code(stub.PrepareOrder(bad, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:")
        code, _ = await _code(stub.GetRestaurant(restaurants_pb2.GetRestaurantRequest(restaurant_id="r9"),
                                                 timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(stub.GetRestaurant(restaurants_pb2.GetRestaurantRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("restaurant_id:")

        bad = [proto(restaurant_id="q0"), proto(restaurant_id="q1", lat=95)]
        code, details = await _code(stub.CreateRestaurants(create(restaurants=bad), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("restaurants[1].point.lat_deg:")
        changed = [proto(restaurant_id="q0"), proto(restaurant_id="r2", slots=7)]
        code, details = await _code(stub.CreateRestaurants(create(restaurants=changed), timeout=WAIT_S))
        assert code == grpc.StatusCode.ALREADY_EXISTS and "r2" in details
        code, _ = await _code(stub.GetRestaurant(restaurants_pb2.GetRestaurantRequest(restaurant_id="q0"),
                                                 timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND  # nothing of the refused batch stored

        await restaurants.store.close()  # the disk is gone: creates answer UNAVAILABLE, reads and kitchens go on
        code, _ = await _code(stub.CreateRestaurants(create(restaurants=[proto(restaurant_id="z")]), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE
        third = await stub.PrepareOrder(prepare(restaurant_id="r1", order_id="ord-3", items=1), timeout=WAIT_S)
        assert third.ready_at_unix_ms == ms(T0 + 330)

    reopened = make(tmp_path)
    assert await reopened.load() == 3 and reopened.get("r1").to_proto() == batch[1]
    await reopened.close()


async def test_the_component_loads_at_build_sweeps_and_closes(tmp_path):
    topology = Topology(services={NAME: Endpoint(address="127.0.0.1:1")}, data_dir=str(tmp_path),
                        settings={NAME: {"sweep_interval_s": 0.01, "prep_jitter": 0.0}})
    clock = FakeClock()
    component = await build(RuntimeContext(topology), clock)
    await component.restaurants.create([record("a", base=60, per_item=0, slots=1)])
    component.kitchens.prepare(component.restaurants.get("a"), "o1", 1)
    await component.start()
    for _ in range(500):  # the sweep sets the gauges (no timing assertion: it waits as long as it needs)
        if REGISTRY.get_sample_value("casemesh_food_restaurants_orders_preparing") == 1:
            break
        await asyncio.sleep(0.01)
    assert REGISTRY.get_sample_value("casemesh_food_restaurants_kitchen_slots_busy") == 1
    clock.now += 60
    for _ in range(500):
        if len(component.kitchens) == 0:
            break
        await asyncio.sleep(0.01)
    assert len(component.kitchens) == 0  # the idle kitchen was dropped
    await component.stop()
    restarted = await build(RuntimeContext(topology), clock)  # a restart: the restaurants, not the kitchens' load
    assert restarted.restaurants.get("a") == record("a", base=60, per_item=0, slots=1)
    assert restarted.kitchens.outlook(restarted.restaurants.get("a")) == (0, ms(clock.now + 60))
    await restarted.stop()
