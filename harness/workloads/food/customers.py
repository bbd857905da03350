"""The customer's journey ``order``: place an order, watch it to the door (open-loop arrivals).

Each arrival is a new customer. Its restaurant comes from the city's demand (:class:`~.city.FoodDemand`: near the
lunch wave at this instant of the run, or any), the drop-off 0.5 to 4 km away inside the city, 1 to 6 items. Then,
as a DoorDash or Uber Eats app does (seed 001 #13 "Food Delivery", shared/seeds/001_58dfc580020147d2.txt line 38):

1. OrderService.PlaceOrder with a ``client_request_id`` (recorded per RPC, timed from the arrival's intended start:
   the customer's tap);
2. OrderService.WatchOrder (held without a deadline: a delivery lasts longer than a request timeout; reopened after
   100 ms doubling to 2 s when it breaks, its first update is the order as it is then) until the update that ends
   the order: its state changes and, while a courier has it, the courier's positions;
3. ``cancel_p`` of customers cancel (CancelOrder) at a uniform time within ``cancel_within_s`` of placing the order,
   unless it is picked up by then.

Measures (:class:`OrderView`), recorded for journeys started after the warm-up, all in real seconds (x
``time_scale`` for the simulated city's):

- ``dispatch_time``: the intended start → the first update showing the order ASSIGNED (or further on). Code **OK**
  when the courier was assigned no later than the food's ready time (the order's ``assigned_at_unix_ms`` <=
  ``ready_at_unix_ms``: dispatch ran ahead of the kitchen, as just-in-time dispatch must), **DEADLINE_EXCEEDED**
  when it was assigned after the food was ready (the food then waits a whole courier trip); **NOT_FOUND** for an
  order CANCELLED with CANCEL_REASON_NO_COURIER (no courier was found), and the code of a refused PlaceOrder.
  Dispatch holds an order until it is due (a courier sent now arrives as the food is ready), so the latency is
  mostly the kitchen's preparation minus the courier's way to it: it is read, the code is judged. A customer's own
  cancel before assignment records nothing (the customer's choice, not the system's).
- ``pickup_time``: the intended start → PICKED_UP seen;
- ``delivery_time``: the intended start → DELIVERED seen;
- ``on_time``: one sample per delivered order, **OK** when
  :func:`casemesh.services.food.contract.on_time` (``delivered_at_unix_ms`` <= ``promised_at_unix_ms``, the order
  service's own records: the ETA model's promise against the delivery), **DEADLINE_EXCEEDED** otherwise; its latency
  is how late the order was (0 when on time);
- ``tracking_delay``: for each courier position the customer's stream carries, now − the position's
  ``sent_at_unix_ms`` (the courier app's clock, the same machine's): the way of a position from the courier's app
  through the location service and the order service to the customer. The first position of an order is left out
  (TrackDriver replays the courier's last known one, up to a ping interval old) and so is one not newer than the
  last seen (a replay after the stream was reopened);
- ``single_dispatch``: every order update from ASSIGNED on and every courier position goes through
  :class:`~.invariants.Dispatches`; DELIVERED adds the order's sample.

The journey ends OK at DELIVERED and after the customer's own cancel; NOT_FOUND for an order no courier took;
DEADLINE_EXCEEDED when the order was not over ``max_order_s`` after the journey's intended start; ABORTED when the
order was cancelled but not by an answered CancelOrder of this customer; CANCELLED when the run ends first; and the
code of a refused PlaceOrder, or of a WatchOrder that ends for good (NOT_FOUND, PERMISSION_DENIED, ...).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.food.v1 import food_pb2, orders_pb2
from casemesh.rides.v1 import rides_pb2
from casemesh.services.food.contract import MAX_ITEMS, on_time

from ..base import Caller, Params
from .couriers import Fleet, backoff_s, latlng
from .invariants import Dispatches
from .seeding import ORDERS

log = logging.getLogger("casemesh.workloads.food")

DISPATCH_TIME = "dispatch_time"
PICKUP_TIME = "pickup_time"
DELIVERY_TIME = "delivery_time"
ON_TIME = "on_time"
TRACKING_DELAY = "tracking_delay"
OK = "OK"
#: ``dispatch_time``'s code for an order assigned after its food was ready, and ``on_time``'s for a late delivery.
LATE = "DEADLINE_EXCEEDED"
#: ``dispatch_time``'s code for an order CANCELLED with CANCEL_REASON_NO_COURIER.
NO_COURIER = "NOT_FOUND"
ASSIGNED_STATES = frozenset({food_pb2.ORDER_STATE_ASSIGNED, food_pb2.ORDER_STATE_PICKED_UP,
                             food_pb2.ORDER_STATE_DELIVERED})
PICKED_UP_STATES = frozenset({food_pb2.ORDER_STATE_PICKED_UP, food_pb2.ORDER_STATE_DELIVERED})
TERMINAL_STATES = frozenset({food_pb2.ORDER_STATE_DELIVERED, food_pb2.ORDER_STATE_CANCELLED})
#: WatchOrder ends after which the customer stops watching: the order does not exist, or the call is refused for good.
FINAL_CODES = frozenset({"NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT", "UNAUTHENTICATED", "UNIMPLEMENTED"})

Measure = tuple[str, float, str]


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A client-side error as a journey raises it (its code becomes the journey's status)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class OrderParams(Params):
    """How a customer orders and behaves."""

    items_min: int = Field(default=1, ge=1, le=MAX_ITEMS, description="fewest items in an order (uniform to items_max)")
    items_max: int = Field(default=6, ge=1, le=MAX_ITEMS, description="most items in an order")
    cancel_p: float = Field(default=0.02, ge=0, le=1, description="share of customers who cancel before pickup")
    cancel_within_s: float = Field(default=10.0, gt=0, le=600,
                                   description="a cancelling customer cancels at a uniform time this long after placing "
                                               "the order, real seconds (unless it is picked up by then)")
    max_order_s: float = Field(default=75.0, gt=0, le=3600,
                               description="real seconds from the journey's intended start after which the customer stops "
                                           "watching (DEADLINE_EXCEEDED); keep it under the run's drain (10 request "
                                           "timeouts)")

    @model_validator(mode="after")
    def _items(self) -> OrderParams:
        if self.items_min > self.items_max:
            raise ValueError(f"items_min ({self.items_min}) must be at most items_max ({self.items_max})")
        return self


class OrderView:
    """What one customer's WatchOrder showed of ``order_id`` and the measures it yields (no I/O).

    ``intended`` is the journey's intended start (clock s); each :meth:`update` returns the
    ``(measure, seconds, code)`` samples it makes.
    """

    def __init__(self, order_id: str, intended: float, checker: Dispatches):
        self.order_id = order_id
        self.intended = intended
        self.checker = checker
        self.state = food_pb2.ORDER_STATE_PLACED
        self.cancel_reason = food_pb2.CANCEL_REASON_UNSPECIFIED
        self.assigned_seen: float | None = None
        self.picked_up_seen: float | None = None
        self.delivered_seen: float | None = None
        self.last_sent_ms: int | None = None

    @property
    def terminal(self) -> bool:
        """True once the order is DELIVERED or CANCELLED."""
        return self.state in TERMINAL_STATES

    def update(self, response: orders_pb2.WatchOrderResponse, now: float, now_unix_ms: float) -> list[Measure]:
        """One WatchOrder update received at clock instant ``now`` (``now_unix_ms`` on the wall clock)."""
        kind = response.WhichOneof("update")
        if kind == "order":
            return self._order(response.order, now)
        if kind == "courier_position":
            return self._position(response.courier_position, now_unix_ms)
        return []

    def _order(self, order: food_pb2.Order, now: float) -> list[Measure]:
        samples: list[Measure] = []
        self.state = order.state
        self.cancel_reason = order.cancel_reason
        if order.state in ASSIGNED_STATES or (order.state == food_pb2.ORDER_STATE_CANCELLED and order.courier_id):
            self.checker.customer_saw(self.order_id, order.courier_id)
            if self.assigned_seen is None:
                self.assigned_seen = now
                ahead = order.assigned_at_unix_ms <= order.ready_at_unix_ms or order.ready_at_unix_ms <= 0
                samples.append((DISPATCH_TIME, now - self.intended, OK if ahead else LATE))
        if order.state in PICKED_UP_STATES and self.picked_up_seen is None:
            self.picked_up_seen = now
            samples.append((PICKUP_TIME, now - self.intended, OK))
        if order.state == food_pb2.ORDER_STATE_DELIVERED and self.delivered_seen is None:
            self.delivered_seen = now
            samples.append((DELIVERY_TIME, now - self.intended, OK))
            late_s = max(order.delivered_at_unix_ms - order.promised_at_unix_ms, 0) / 1000
            samples.append((ON_TIME, late_s, OK if on_time(order.delivered_at_unix_ms, order.promised_at_unix_ms)
                            else LATE))
        if (order.state == food_pb2.ORDER_STATE_CANCELLED and order.cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER
                and self.assigned_seen is None):
            samples.append((DISPATCH_TIME, now - self.intended, NO_COURIER))
        return samples

    def _position(self, position: rides_pb2.DriverPosition, now_unix_ms: float) -> list[Measure]:
        self.checker.customer_saw(self.order_id, position.driver_id)
        sent = position.sent_at_unix_ms
        if sent <= 0 or (self.last_sent_ms is not None and sent <= self.last_sent_ms):
            return []
        first = self.last_sent_ms is None
        self.last_sent_ms = sent
        return [] if first else [(TRACKING_DELAY, max(now_unix_ms - sent, 0.0) / 1000, OK)]


class OrderWatch:
    """One customer's WatchOrder, held (and reopened) until the order ends, with the customer's timers (module
    docstring)."""

    def __init__(self, call: Caller, fleet: Fleet, params: OrderParams, customer_id: str, order_id: str,
                 cancel_at: float | None):
        self.call = call
        self.fleet = fleet
        self.params = params
        self.customer_id = customer_id
        self.order_id = order_id
        self.cancel_at = cancel_at
        self.intended = call.intended_at
        self.view = OrderView(order_id, self.intended, fleet.checker)
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.session = 0
        self.stream: Any = None
        self.reader: asyncio.Task | None = None
        self.customer_cancelled = False

    def _open(self) -> None:
        self.session += 1
        self.stream = self.fleet.streams.server_stream(ORDERS, "WatchOrder", orders_pb2.WatchOrderRequest(
            order_id=self.order_id))
        self.fleet.watches.add(self.stream)
        self.reader = asyncio.get_running_loop().create_task(self._read(self.stream, self.session),
                                                             name=f"food-watch-{self.order_id}")

    async def _read(self, stream: Any, session: int) -> None:
        code = OK
        try:
            async for response in stream:
                self.queue.put_nowait((session, response))
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            code = "CANCELLED"  # the call was cancelled (the fleet closing)
        self.queue.put_nowait((session, code))

    async def _close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.fleet.watches.discard(self.stream)
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)

    def _observe(self, samples: list[Measure]) -> None:
        for name, seconds, code in samples:
            self.call.observe(name, seconds, code)

    async def _cancel(self) -> bool:
        """CancelOrder (recorded); True when it cancelled, False when refused (picked up already) or failed."""
        try:
            await self.call(ORDERS, "CancelOrder", orders_pb2.CancelOrderRequest(
                order_id=self.order_id, customer_id=self.customer_id))
        except grpc.aio.AioRpcError as error:
            log.info("%s: CancelOrder answered %s", self.order_id, error.code().name)
            return False
        return True

    def _next_timer(self) -> tuple[float, str]:
        timers = [(self.intended + self.params.max_order_s, "deadline")]
        if self.cancel_at is not None and self.view.picked_up_seen is None:
            timers.append((self.cancel_at, "cancel"))
        return min(timers)

    async def run(self) -> None:
        """Watch until the order ends; raises the journey's error (module docstring)."""
        self._open()
        try:
            await self._follow()
        finally:
            await self._close()
        self._settle()

    async def _follow(self) -> None:
        clock = self.fleet.clock
        failures = 0
        while not self.view.terminal:
            when, what = self._next_timer()
            try:
                session, item = await asyncio.wait_for(self.queue.get(), max(when - clock(), 0.0))
            except TimeoutError:
                await self._timer(what)
                continue
            if session != self.session:
                continue  # left over from a stream reopened since
            if not isinstance(item, str):
                now = clock()
                self._observe(self.view.update(item, now, self.fleet.streams.wall_ns(now) / 1e6))
                failures = 0
                continue
            if self.view.terminal:
                break
            if self.fleet.closing:
                raise rpc_error(grpc.StatusCode.CANCELLED, f"{self.order_id}: the run ended before the order did")
            if item in FINAL_CODES:
                if self.view.assigned_seen is None:
                    self.call.observe(DISPATCH_TIME, clock() - self.intended, item)
                raise rpc_error(grpc.StatusCode[item], f"{self.order_id}: WatchOrder ended {item}")
            failures += 1
            await self._close()
            await asyncio.sleep(backoff_s(failures))
            self._open()

    async def _timer(self, what: str) -> None:
        if what == "cancel":
            self.cancel_at = None
            self.customer_cancelled = await self._cancel()
            return
        elapsed = self.fleet.clock() - self.intended
        if self.view.assigned_seen is None:
            self.call.observe(DISPATCH_TIME, elapsed, grpc.StatusCode.DEADLINE_EXCEEDED.name)
        raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.order_id}: not over {elapsed:.1f} s after the tap")

    def _settle(self) -> None:
        view = self.view
        if view.state == food_pb2.ORDER_STATE_DELIVERED:
            self.fleet.checker.delivered(self.order_id)
            return
        if view.cancel_reason == food_pb2.CANCEL_REASON_NO_COURIER:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"{self.order_id}: no courier took it")
        if not self.customer_cancelled:
            raise rpc_error(grpc.StatusCode.ABORTED, f"{self.order_id}: cancelled, not by its customer "
                                                     f"({food_pb2.CancelReason.Name(view.cancel_reason)})")


async def order(call: Caller, params: OrderParams, fleet: Fleet, rng: random.Random) -> None:
    """A customer orders from a restaurant and follows the order to the door (module docstring)."""
    customer = fleet.next_customer()
    intended = call.intended_at
    restaurant = fleet.restaurants[fleet.demand.restaurant(rng, intended - fleet.started_at)]
    dropoff = fleet.demand.dropoff(rng, restaurant.point)
    items = rng.randint(params.items_min, params.items_max)
    try:
        placed = (await call(ORDERS, "PlaceOrder", orders_pb2.PlaceOrderRequest(
            customer_id=customer, client_request_id=f"{customer}-o1", restaurant_id=restaurant.restaurant_id,
            dropoff=latlng(dropoff), items=items))).order
    except grpc.aio.AioRpcError as error:
        call.observe(DISPATCH_TIME, fleet.clock() - intended, error.code().name)
        raise
    cancel_at = fleet.clock() + rng.uniform(0, params.cancel_within_s) if rng.random() < params.cancel_p else None
    await OrderWatch(call, fleet, params, customer, placed.order_id, cancel_at).run()
