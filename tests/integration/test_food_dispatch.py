"""Food delivery through real gRPC: orders flow through the kitchen, regional dispatch and the couriers, no order is
dispatched twice, and a SIGKILL of dispatch and of the order service loses and duplicates nothing.

CASE-STUDY.md point 5 for food delivery (seed 001 #13, shared/seeds/001_58dfc580020147d2.txt line 38: "Regional
dispatch"; the issue: "no order dispatched twice"). Couriers are drivers of the ride-sharing location service; they
hold an assignment feed and deliver every order they are given (tests/integration/food.py). Afterwards: no order was
given to two couriers (the couriers' ledger), every order the order service acknowledged is DELIVERED by the courier
that was given it.
"""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

import grpc
import pytest

from casemesh.food.v1 import food_pb2, orders_pb2, orders_pb2_grpc, restaurants_pb2, restaurants_pb2_grpc
from casemesh.harness.mesh import Mesh

from .food import SERVICES, Courier, Ledger, eventually, food_mesh, near, place_order

#: Three restaurants a few dozen metres apart (so that orders can share a courier), ready in a second or two.
RESTAURANTS = [restaurants_pb2.Restaurant(restaurant_id=f"r{i}", name=f"Kitchen {i}", point=near(30 * i, 20 * i),
                                          prep_base_s=1.0, prep_per_item_s=0.2, kitchen_slots=4) for i in range(3)]


async def _create_restaurants(channel: grpc.aio.Channel) -> None:
    stub = restaurants_pb2_grpc.RestaurantServiceStub(channel)
    await stub.CreateRestaurants(restaurants_pb2.CreateRestaurantsRequest(restaurants=RESTAURANTS), timeout=10)


async def _final_orders(channel: grpc.aio.Channel, order_ids: list[str]) -> list[food_pb2.Order]:
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    return [(await stub.GetOrder(orders_pb2.GetOrderRequest(order_id=o), timeout=10)).order for o in order_ids]


def _check(ledger: Ledger, couriers: list[Courier], final: list[food_pb2.Order]) -> None:
    assert not ledger.violations, ledger.violations
    delivered = Counter(o for c in couriers for o in c.delivered)
    assert all(n == 1 for n in delivered.values()), [o for o, n in delivered.items() if n > 1]
    for order in final:
        assert order.state == food_pb2.ORDER_STATE_DELIVERED, order
        assert ledger.courier_of[order.order_id] == (order.courier_id, order.batch_id), order


@pytest.mark.asyncio
async def test_concurrent_orders_are_each_delivered_by_one_courier_and_some_share_one(tmp_path):
    async with food_mesh(tmp_path) as mesh:
        await _create_restaurants(mesh.channel("food-restaurants"))
        ledger = Ledger()
        couriers = [Courier(mesh.anonymous_channel, f"c{i}", near(-300 + 100 * i, 200), ledger, trip_s=0.5)
                    for i in range(6)]
        try:
            for courier in couriers:
                courier.start()
            await eventually(lambda: all(c.pings and c.feed_open for c in couriers), "every courier online")
            await asyncio.sleep(0.5)
            orders = await asyncio.gather(*(
                place_order(mesh.anonymous_channel("food-orders"), f"cust-{n}", f"r{n % 3}",
                            near(1_000 + 20 * n, -500 + 30 * n), request_id=f"o{n}") for n in range(30)))
            assert all(o.state == food_pb2.ORDER_STATE_PLACED and o.promised_at_unix_ms > o.placed_at_unix_ms
                       and o.ready_at_unix_ms >= o.placed_at_unix_ms for o in orders), orders[0]
            # A retried PlaceOrder is the same order.
            again = await place_order(mesh.anonymous_channel("food-orders"), "cust-0", "r0",
                                      near(1_000, -500), request_id="o0")
            assert again.order_id == orders[0].order_id
            ids = [o.order_id for o in orders]
            await eventually(lambda: sum(len(c.delivered) for c in couriers) >= len(ids),
                             lambda: f"{sum(len(c.delivered) for c in couriers)} of {len(ids)} delivered")
            final = await _final_orders(mesh.anonymous_channel("food-orders"), ids)
        finally:
            await asyncio.gather(*(c.stop() for c in couriers), return_exceptions=True)
        _check(ledger, couriers, final)
        # Thirty orders from three neighbouring kitchens on six couriers: dispatch put some of them two to a courier.
        assert max(Counter(o.batch_id for o in final).values()) == 2, Counter(o.batch_id for o in final)


#: Client channels reconnect quickly: a service is gone for a second or two only.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))
SETTINGS = {"food-dispatch": {"tick_s": 0.1, "sweep_interval_s": 0.5, "max_dispatch_s": 120.0}}


async def _place_with_retry(channel: grpc.aio.Channel, n: int) -> food_pb2.Order | None:
    """A customer's order, sent again with the same client request id while the order service is down."""
    for _ in range(150):
        try:
            return await place_order(channel, f"cust-{n}", f"r{n % 3}", near(1_000 + 20 * n, -500 + 30 * n),
                                     request_id=f"o{n}", timeout_s=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            await asyncio.sleep(0.2)
    return None


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_sigkill_of_dispatch_then_orders_dispatches_no_order_twice_and_loses_none(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES}
        ledger = Ledger()
        couriers = [Courier(channels.__getitem__, f"c{i}", near(-300 + 100 * i, 200), ledger, trip_s=0.3)
                    for i in range(6)]
        acknowledged: list[food_pb2.Order] = []
        customers: list[asyncio.Task] = []

        async def order(n: int) -> None:
            placed = await _place_with_retry(channels["food-orders"], n)
            if placed is not None:
                acknowledged.append(placed)

        try:
            await _create_restaurants(channels["food-restaurants"])
            for courier in couriers:
                courier.start()
            await eventually(lambda: all(c.pings and c.feed_open for c in couriers), "every courier online")
            await asyncio.sleep(0.5)
            for n in range(10):
                customers.append(asyncio.create_task(order(n)))
            await eventually(lambda: sum(len(c.delivered) for c in couriers) >= 3, "three orders delivered")

            for n in range(10, 20):
                customers.append(asyncio.create_task(order(n)))
            await asyncio.sleep(0.1)
            assert mesh.kill("food-dispatch", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.5)
            await mesh.start_services(["food-dispatch"])
            done_then = sum(len(c.delivered) for c in couriers)
            await eventually(lambda: sum(len(c.delivered) for c in couriers) >= done_then + 3,
                             "three more orders delivered after the dispatch restart")

            for n in range(20, 30):
                customers.append(asyncio.create_task(order(n)))
            await asyncio.sleep(0.2)
            assert mesh.kill("food-orders", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.5)
            await mesh.start_services(["food-orders"])
            await asyncio.wait_for(asyncio.gather(*customers), 90)
            assert len(acknowledged) == 30, "every order was answered, retried across the order service's restart"
            assert len({o.order_id for o in acknowledged}) == 30

            ids = [o.order_id for o in acknowledged]
            await eventually(lambda: len({o for c in couriers for o in c.delivered}) >= len(ids),
                             lambda: f"{len({o for c in couriers for o in c.delivered})} of {len(ids)} delivered", 120)
            final = await _final_orders(channels["food-orders"], ids)
        finally:
            await asyncio.gather(*(c.stop() for c in couriers), return_exceptions=True)
            for task in customers:
                task.cancel()
            for channel in channels.values():
                await channel.close()
        _check(ledger, couriers, final)
