"""``casemesh.food.v1.OrderService`` (topology name ``food-orders``): every order, its fee, its promise, its courier.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38: "| 13 | Food Delivery | Regional dispatch, ML ETA,
adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |"). The order service is the record of every
order and the place where the case study's invariant lives: :meth:`Orders.assign` (AssignCourier) is a
compare-and-set PLACED → ASSIGNED of all the orders of a batch at once, serialised per courier and per order by
asyncio locks and per courier by the store's claim of its batch (:class:`.store.OrderStore`), written to disk
(fsync) before it answers: however often dispatch asks, restarts or races itself, **no order is dispatched twice**
(the SQLite triggers say so too). The mechanisms: the ETA model (:mod:`.eta`, a regression fitted at start on
synthetic history: the promised delivery time), surge pricing of the delivery fee (:mod:`.surge`, open orders over
available couriers per H3 region, recomputed every ``surge_interval_s``; A/B switch ``surge_enabled``), the state
machine (:mod:`.machine`), WatchOrder's courier tracking (rides-location's TrackDriver, as rides-trips' WatchRide).

RPCs and status codes (protos/casemesh/food/v1/orders.proto):

- PlaceOrder (public, customer app): INVALID_ARGUMENT naming ``customer_id``, ``client_request_id``,
  ``restaurant_id``, ``dropoff``, ``dropoff.lat_deg``, ``dropoff.lng_deg`` or ``items``; a retry (same customer and
  ``client_request_id``) returns the stored order as it is now; then RestaurantService.PrepareOrder (idempotent per
  order id): NOT_FOUND "restaurant_id: no restaurant R" passed through, anything else UNAVAILABLE (nothing stored:
  retry); the order is stored PLACED (UNAVAILABLE when it cannot be written), answered, and handed to
  FoodDispatchService.DispatchOrder in a background task (a failure is logged and counted; dispatch's recovery sweep
  of ListOpenOrders finds the order). The order id is ``ord-`` and 26 characters of base32 of HMAC-SHA-256 of
  (customer_id, client_request_id) under a key kept in the data folder (``order-id.key``): a retry after a failed
  write asks the kitchen again for the same order id, which it answers with the same ready time, and nobody without
  the key can derive an order id. The fee is round(``base_fee_minor`` × the surge multiplier of the restaurant's
  region), the promise ``placed_at`` + the ETA model's promise.
- GetOrder (public): INVALID_ARGUMENT naming ``order_id``; NOT_FOUND.
- WatchOrder (public): INVALID_ARGUMENT naming ``order_id``; NOT_FOUND; RESOURCE_EXHAUSTED beyond ``max_watchers``;
  UNAVAILABLE when the service shuts down. The order first, then every change of state (all of them, in order), and
  while a courier has it (ASSIGNED, PICKED_UP) the courier's positions from LocationService.TrackDriver (one stream
  per watched order, shared by its watchers; the newest position only, for a slow watcher); ends OK after DELIVERED
  or CANCELLED.
- CancelOrder (public): INVALID_ARGUMENT naming ``order_id`` or ``customer_id``; NOT_FOUND; PERMISSION_DENIED for
  another customer's order; FAILED_PRECONDITION once picked up; a cancelled order is returned again.
- UpdateOrder (public, courier app): INVALID_ARGUMENT naming ``order_id``, ``courier_id`` or ``event``; NOT_FOUND;
  PERMISSION_DENIED when the order is not the courier's; FAILED_PRECONDITION naming the event and the state; the
  event that led to the present state returns the order.
- GetSurge (public): INVALID_ARGUMENT naming ``point``, ``point.lat_deg`` or ``point.lng_deg``.
- AssignCourier (internal: :data:`DISPATCH_CALLERS`): INVALID_ARGUMENT naming ``order_ids``, ``order_ids[i]``,
  ``courier_id`` or ``batch_id``; NOT_FOUND for an unknown order; ABORTED when an order is no longer PLACED and not
  already this courier's in this batch (another courier has it, or it was cancelled); FAILED_PRECONDITION when the
  courier holds another batch, the batch is another courier's, was picked up, or would exceed
  ``max_batch_orders``; orders already this courier's in this batch are returned as they are (a retry).
- ListOpenOrders (internal: :data:`DISPATCH_CALLERS`): PLACED orders, oldest first, then with ``include_assigned`` the
  ASSIGNED ones (``limit`` in all); INVALID_ARGUMENT naming ``limit``.
- ReleaseOrder (internal: :data:`DISPATCH_CALLERS`): INVALID_ARGUMENT naming ``order_id``; NOT_FOUND;
  PLACED → CANCELLED (NO_COURIER); a cancelled order is returned again; FAILED_PRECONDITION when a courier has it.

Every write answers UNAVAILABLE when the store cannot write it (nothing changed). A crash inside one request ends
that request (UNKNOWN, logged by the runtime's interceptor); the server goes on. Settings:
:class:`.settings.OrdersSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import contextvars
import functools
import hashlib
import hmac
import logging
import math
import os
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import grpc

from casemesh.food.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    food_pb2,
    orders_pb2,
    orders_pb2_grpc,
    restaurants_pb2,
    restaurants_pb2_grpc,
)
from casemesh.rides.v1 import location_pb2, location_pb2_grpc, rides_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    dependency_error,
)
from ...runtime.keyed_locks import KeyedLocks
from ...rides.location.following import Following, TrackRetry
from ..contract import ORDER_ID_PREFIX, on_time
from . import metrics
from . import validation as check
from .eta import CityModel, EtaModel, fit_from_settings
from .machine import (
    ACTIVE,
    ASSIGNED,
    CANCELLED,
    DELIVERED,
    DEMAND,
    PICKED_UP,
    PLACED,
    TERMINAL,
    Event,
    TransitionRefused,
    decide,
)
from .settings import WATCH_STREAM_SLOTS, OrdersSettings
from .store import CourierBusy, OrderRecord, OrderStore, StoreUnavailable
from .surge import RegionSurge, SurgeLadder, SurgeMap

log = logging.getLogger("casemesh.food.orders")

NAME = "food-orders"
RESTAURANTS = "food-restaurants"
DISPATCH = "food-dispatch"
LOCATION = "rides-location"
FULL_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name
UNARY_SLOTS = 256
#: Who may call AssignCourier, ListOpenOrders and ReleaseOrder.
DISPATCH_CALLERS: tuple[str, ...] = (DISPATCH,)


def order_id_for(key: bytes, customer_id: str, client_request_id: str) -> str:
    """``ord-`` and 26 characters of base32 (A-Z, 2-7) of HMAC-SHA-256(key, customer_id, client_request_id): 130 bits.

    The same request always gets the same id (a retry after a failed write asks the kitchen again for the same
    order), and without the service's ``key`` nobody can work an order id out from a customer's request id.
    """
    digest = hmac.new(key, f"{customer_id}\x00{client_request_id}".encode(), hashlib.sha256).digest()
    return ORDER_ID_PREFIX + base64.b32encode(digest).decode("ascii")[:26]


def load_id_key(path: Path) -> bytes:
    """The 32-byte order-id key kept at ``path`` (``DATA_DIR/food-orders/order-id.key``, mode 0600), made on first
    use (as rides-trips' ride-id key)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        return key


# -- the other services, as the domain sees them ----------------------------------------------------------------------

class Prepared(NamedTuple):
    """RestaurantService.PrepareOrder's answer: when the food is ready (ms since the Unix epoch), and the pickup
    point (the restaurant, degrees)."""

    ready_at_unix_ms: int
    pickup: tuple[float, float]


class RestaurantsUnavailable(Exception):
    """food-restaurants could not be reached (or failed): nothing stored; UNAVAILABLE, retry."""


class Restaurants(Protocol):
    """RestaurantService.PrepareOrder, errors already mapped: :class:`NotFound` for an unknown restaurant,
    :class:`RestaurantsUnavailable` when it cannot be reached (see :class:`RestaurantsClient`)."""

    async def prepare(self, restaurant_id: str, order_id: str, items: int) -> Prepared: ...


class Dispatch(Protocol):
    """FoodDispatchService.DispatchOrder (any exception: not queued; dispatch's recovery sweep finds the order)."""

    async def dispatch(self, order: food_pb2.Order) -> None: ...


class Location(Protocol):
    """rides-location as the order service uses it: TrackDriver as an async iterator of positions (any exception:
    the stream failed), and CountAvailableDrivers (H3 cell → AVAILABLE couriers; any exception: unreachable)."""

    def track(self, courier_id: str) -> AsyncIterator[rides_pb2.DriverPosition]: ...

    async def count_available(self, resolution: int) -> Mapping[str, int]: ...


class RestaurantsClient:
    """:class:`Restaurants` over the stub, ``timeout_s`` per call: NOT_FOUND becomes :class:`NotFound` naming
    ``restaurant_id``, INVALID_ARGUMENT the runtime's :class:`InvalidArgument` (passed through), anything else
    :class:`RestaurantsUnavailable`."""

    def __init__(self, stub: restaurants_pb2_grpc.RestaurantServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def prepare(self, restaurant_id: str, order_id: str, items: int) -> Prepared:
        try:
            response = await self._stub.PrepareOrder(restaurants_pb2.PrepareOrderRequest(
                restaurant_id=restaurant_id, order_id=order_id, items=items), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"restaurant_id: no restaurant {restaurant_id}") from None
            if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                raise dependency_error(error) from None
            raise RestaurantsUnavailable(f"{RESTAURANTS} could not prepare the order ({error.code().name}: "
                                         f"{error.details()}); nothing was stored, retry") from None
        return Prepared(response.ready_at_unix_ms, (response.pickup.lat_deg, response.pickup.lng_deg))


class DispatchClient:
    """:class:`Dispatch` over the stub, ``timeout_s`` per call."""

    def __init__(self, stub: dispatch_pb2_grpc.FoodDispatchServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def dispatch(self, order: food_pb2.Order) -> None:
        await self._stub.DispatchOrder(dispatch_pb2.DispatchOrderRequest(order=order), timeout=self._timeout_s)


#: Deadline of one TrackDriver stream (s): an order's tracking outlives any unary deadline (the channel's default is
#: 500 ms); a stream that reaches it is reopened like one that failed.
TRACK_STREAM_TIMEOUT_S = 3_600.0


class LocationClient:
    """:class:`Location` over the stub: CountAvailableDrivers with ``timeout_s``; TrackDriver with
    :data:`TRACK_STREAM_TIMEOUT_S` (cancelled when the iteration stops)."""

    def __init__(self, stub: location_pb2_grpc.LocationServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def track(self, courier_id: str) -> AsyncIterator[rides_pb2.DriverPosition]:
        call = self._stub.TrackDriver(location_pb2.TrackDriverRequest(driver_id=courier_id),
                                      timeout=TRACK_STREAM_TIMEOUT_S)
        try:
            async for response in call:
                yield response.position
        finally:
            call.cancel()

    async def count_available(self, resolution: int) -> dict[str, int]:
        response = await self._stub.CountAvailableDrivers(
            location_pb2.CountAvailableDriversRequest(resolution=resolution), timeout=self._timeout_s)
        return {cell.cell: cell.drivers for cell in response.cells}


# -- watchers ---------------------------------------------------------------------------------------------------------

class WatchEnded(Exception):
    """A WatchOrder stream must end UNAVAILABLE (the service shuts down)."""


class Watcher:
    """One WatchOrder stream's pending updates: every order change (an order has at most four), and only the newest
    courier position (latest-value: a slow watcher does not grow a queue)."""

    __slots__ = ("changes", "position", "wake", "ended")

    def __init__(self) -> None:
        self.changes: deque[OrderRecord] = deque()
        self.position: rides_pb2.DriverPosition | None = None
        self.wake = asyncio.Event()
        self.ended: str | None = None

    def changed(self, order: OrderRecord) -> None:
        self.changes.append(order)
        self.wake.set()

    def moved(self, position: rides_pb2.DriverPosition) -> None:
        self.position = position
        self.wake.set()

    def end(self, reason: str) -> None:
        self.ended = reason
        self.wake.set()



# -- the domain -------------------------------------------------------------------------------------------------------

class Orders:
    """The order service without gRPC: orders in ``store``, kitchens through ``restaurants``, dispatch through
    ``dispatch``, couriers' supply and positions from ``location``. ``eta`` and ``city`` (the ETA model and its speed
    model) are fitted from ``settings`` when not given. ``clock()`` is the time in seconds since the Unix epoch
    (injectable for tests).

    Errors are the runtime's domain errors (``services/runtime/errors.py``), :class:`.store.StoreUnavailable` and
    :class:`RestaurantsUnavailable` (UNAVAILABLE), as the module docstring lists per RPC.
    """

    def __init__(self, settings: OrdersSettings, store: OrderStore, restaurants: Restaurants, dispatch: Dispatch,
                 location: Location, *, eta: EtaModel | None = None, city: CityModel | None = None,
                 clock: Callable[[], float] = time.time, id_key: bytes | None = None) -> None:
        self.settings = settings
        #: The key of :func:`order_id_for` (random per instance unless given: the component keeps it on disk).
        self.id_key = id_key if id_key is not None else secrets.token_bytes(32)
        self.store = store
        store.on_change = self._changed
        self._restaurants = restaurants
        self._dispatch = dispatch
        self._location = location
        self._clock = clock
        if eta is None or city is None:
            eta, city = fit_from_settings(settings)
        self.eta = eta
        self.city = city
        self.surge = SurgeMap(SurgeLadder(settings.surge_ladder, settings.surge_max_multiplier),
                              settings.surge_resolution, settings.surge_enabled)
        self._order_locks = KeyedLocks()
        self._courier_locks = KeyedLocks()
        self._feeds: dict[str, Following] = {}
        self._track_retry = TrackRetry(settings.track_retry_initial_ms / 1000, settings.track_retry_max_ms / 1000)
        self._watchers = 0
        self._closing = False
        self._background: set[asyncio.Task[Any]] = set()
        self._dispatch_failing = False
        self._supply_failing = False
        metrics.OPEN_ORDERS.set(store.open_count)
        metrics.WATCHERS.set(0)
        for name, value in self.eta.coefficient_map().items():
            metrics.ETA_COEFFICIENT.labels(name).set(value)
        metrics.ETA_COEFFICIENT.labels("margin_s").set(self.eta.margin_s)
        for multiplier in self.surge.ladder.multipliers:
            metrics.SURGE_REGIONS.labels(metrics.multiplier_label(multiplier)).set(0)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _get(self, order_id: str) -> OrderRecord:
        order = await self.store.get(order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return order

    async def _put(self, orders: list[OrderRecord]) -> list[OrderRecord]:
        try:
            await self.store.put(orders)
        except CourierBusy as error:
            raise FailedPrecondition(str(error)) from None
        return orders

    @staticmethod
    def _decide(order: OrderRecord, event: Event) -> int | None:
        try:
            return decide(order.state, event)
        except TransitionRefused as error:
            raise FailedPrecondition(f"order {order.order_id}: {error}") from None

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``coroutine`` in the background, in a context of its own: it outlives the request that started it,
        whose deadline (propagated through the runtime's context variables) must not bound its calls."""
        task = asyncio.create_task(coroutine, name=name, context=contextvars.Context())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- customer ---------------------------------------------------------------------------------------------------

    def fee_minor(self, multiplier: float) -> int:
        """``base_fee_minor`` × ``multiplier``, rounded half up to the minor unit."""
        return math.floor(self.settings.base_fee_minor * multiplier + 0.5)

    async def place(self, customer_id: str, client_request_id: str, restaurant_id: str, dropoff: tuple[float, float],
                    items: int) -> OrderRecord:
        """Queue the order in the restaurant's kitchen, price it, promise it, store it PLACED, and hand it to
        dispatch (in the background); a retry returns the stored order. :class:`NotFound` for an unknown
        restaurant, :class:`RestaurantsUnavailable` when the kitchen cannot be reached (nothing stored)."""
        order_id = order_id_for(self.id_key, customer_id, client_request_id)
        async with self._order_locks.hold(order_id):
            stored = await self.store.get(order_id)
            if stored is not None:
                return stored
            prepared = await self._restaurants.prepare(restaurant_id, order_id, items)
            now = self._now_ms()
            region = self.surge.region_of(*prepared.pickup)
            multiplier = self.surge.surge(region).multiplier
            features = self.city.features((prepared.ready_at_unix_ms - now) / 1000, prepared.pickup, dropoff,
                                          self.surge.supply(region))
            promise_s = self.eta.promise_s(features)
            (order,) = await self._put([OrderRecord(
                order_id=order_id, customer_id=customer_id, client_request_id=client_request_id,
                restaurant_id=restaurant_id, pickup_lat_deg=prepared.pickup[0], pickup_lng_deg=prepared.pickup[1],
                dropoff_lat_deg=dropoff[0], dropoff_lng_deg=dropoff[1], items=items, state=PLACED,
                cancel_reason=food_pb2.CANCEL_REASON_UNSPECIFIED, courier_id="", batch_id="",
                fee_currency_code=self.settings.currency_code, fee_amount_minor=self.fee_minor(multiplier),
                surge_multiplier=multiplier, placed_at_unix_ms=now, ready_at_unix_ms=prepared.ready_at_unix_ms,
                promised_at_unix_ms=now + math.ceil(promise_s * 1000), assigned_at_unix_ms=0,
                picked_up_at_unix_ms=0, delivered_at_unix_ms=0, updated_at_unix_ms=now)])
        metrics.SURGE_MULTIPLIER.observe(multiplier)
        metrics.PROMISE_SECONDS.observe(promise_s)
        self._spawn(self._dispatch_order(order), f"{NAME}-dispatch-{order_id}")
        return order

    async def _dispatch_order(self, order: OrderRecord) -> None:
        """DispatchOrder, best effort: a failure is counted, and logged when calls start failing."""
        try:
            await self._dispatch.dispatch(order.to_proto())
        except Exception as error:  # noqa: BLE001 - whatever went wrong, the order is stored: dispatch's sweep finds it
            metrics.DISPATCH_FAILURES.inc()
            if not self._dispatch_failing:
                self._dispatch_failing = True
                log.warning("%s: DispatchOrder failed (%s: %s); orders are dispatched after dispatch's recovery sweep "
                            "until it works again", NAME, type(error).__name__, error)
            return
        if self._dispatch_failing:
            self._dispatch_failing = False
            log.info("%s: DispatchOrder works again", NAME)

    async def get(self, order_id: str) -> OrderRecord:
        """The order; :class:`NotFound`."""
        return await self._get(order_id)

    async def cancel(self, order_id: str, customer_id: str) -> OrderRecord:
        """The customer cancels before pickup (CANCEL_REASON_CUSTOMER); a cancelled order is returned again.
        :class:`PermissionDenied` for another customer's order, :class:`FailedPrecondition` once picked up."""
        async with self._order_locks.hold(order_id):
            order = await self._get(order_id)
            if order.customer_id != customer_id:
                raise PermissionDenied(f"order {order_id} is not customer {customer_id}'s")
            if self._decide(order, Event.CANCEL) is None:
                return order
            (order,) = await self._put([replace(order, state=CANCELLED, cancel_reason=food_pb2.CANCEL_REASON_CUSTOMER,
                                                updated_at_unix_ms=self._now_ms())])
            return order

    async def watch(self, order_id: str) -> AsyncIterator[OrderRecord | rides_pb2.DriverPosition]:
        """The order, then each change of it, and its courier's positions while a courier has it; returns after a
        finished order. :class:`NotFound`; :class:`ResourceExhausted` beyond ``max_watchers``; :class:`WatchEnded`
        on shutdown."""
        order = await self._get(order_id)
        if self._closing:
            raise WatchEnded(f"{NAME} is shutting down; watch again")
        if self._watchers >= self.settings.max_watchers:
            raise ResourceExhausted(f"{NAME} holds {self.settings.max_watchers:,} watchers already")
        order = self.store.cached(order_id) or order  # no await from here to the subscription: no change is missed
        watcher = Watcher()
        feed = self._feeds.get(order_id)
        if feed is None:
            feed = self._feeds[order_id] = Following()
        feed.watchers.add(watcher)
        self._watchers += 1
        metrics.WATCHERS.set(self._watchers)
        try:
            self._follow(feed, order)
            yield order
            while order.state not in TERMINAL:
                await watcher.wake.wait()
                watcher.wake.clear()
                if watcher.ended is not None:
                    raise WatchEnded(watcher.ended)
                while watcher.changes:
                    order = watcher.changes.popleft()
                    yield order
                    if order.state in TERMINAL:
                        return
                if watcher.position is not None:
                    position, watcher.position = watcher.position, None
                    yield position
        finally:
            feed.watchers.discard(watcher)
            self._watchers -= 1
            metrics.WATCHERS.set(self._watchers)
            if not feed.watchers:
                feed.stop()
                if self._feeds.get(order_id) is feed:
                    del self._feeds[order_id]

    def surge_at(self, lat_deg: float, lng_deg: float) -> RegionSurge:
        """The surge in force in the point's region."""
        return self.surge.surge(self.surge.region_of(lat_deg, lng_deg))

    # -- courier ----------------------------------------------------------------------------------------------------

    async def update(self, order_id: str, courier_id: str, event: Event) -> OrderRecord:
        """The courier's PICK_UP or DELIVER; the event that led to the present state returns the order.
        :class:`PermissionDenied` when the order is not the courier's; :class:`FailedPrecondition` out of turn."""
        async with self._courier_locks.hold(courier_id), self._order_locks.hold(order_id):
            order = await self._get(order_id)
            if order.courier_id != courier_id:
                raise PermissionDenied(f"order {order_id} is not courier {courier_id}'s")
            target = self._decide(order, event)
            if target is None:
                return order
            now = self._now_ms()
            if target == PICKED_UP:
                changed = replace(order, state=PICKED_UP, picked_up_at_unix_ms=now, updated_at_unix_ms=now)
            else:
                changed = replace(order, state=DELIVERED, delivered_at_unix_ms=now, updated_at_unix_ms=now)
            (order,) = await self._put([changed])
            return order

    # -- dispatch ---------------------------------------------------------------------------------------------------

    async def assign(self, order_ids: tuple[str, ...], courier_id: str, batch_id: str) -> list[OrderRecord]:
        """The atomic assignment: every PLACED order of ``order_ids`` → ASSIGNED to ``courier_id`` in ``batch_id``,
        all or none, on disk before it returns; orders already this courier's in this batch are returned as they are
        (a retry). Returns the orders in the request's order.

        :class:`NotFound` for an unknown order; :class:`Aborted` when an order is no longer PLACED and not this
        courier's in this batch (the order was not dispatched twice); :class:`FailedPrecondition` when the courier
        holds another batch, the batch is another courier's or was picked up, or it would exceed
        ``max_batch_orders``.
        """
        outcome = "refused"
        try:
            async with self._courier_locks.hold(courier_id), self._order_locks.hold_all(order_ids):
                orders = [await self._get(order_id) for order_id in order_ids]
                joining = []
                for order in orders:
                    if order.state == PLACED:
                        joining.append(order)
                    elif not (order.state != CANCELLED and order.courier_id == courier_id
                              and order.batch_id == batch_id):
                        outcome = "aborted"
                        why = "was cancelled" if order.state == CANCELLED else "went to another courier"
                        raise Aborted(f"order {order.order_id} is no longer PLACED: it {why}")
                if not joining:
                    outcome = "retry"
                    return orders
                held = self.store.batch_of_courier(courier_id)
                if held is not None and held != batch_id:
                    raise FailedPrecondition(f"courier {courier_id} holds another batch ({held})")
                batch = self.store.batch(batch_id)
                members: list[OrderRecord] = []
                if batch is not None:
                    owner, members = batch
                    if owner != courier_id:
                        raise FailedPrecondition(f"batch {batch_id} is another courier's")
                    if any(member.state != ASSIGNED for member in members):
                        raise FailedPrecondition(f"batch {batch_id} was picked up; no order joins it")
                size = len(members) + len(joining)
                if size > self.settings.max_batch_orders:
                    raise FailedPrecondition(f"batch {batch_id} would hold {size} orders; at most "
                                             f"{self.settings.max_batch_orders}")
                now = self._now_ms()
                assigned = await self._put([replace(order, state=ASSIGNED, courier_id=courier_id, batch_id=batch_id,
                                                    assigned_at_unix_ms=now, updated_at_unix_ms=now)
                                            for order in joining])
                outcome = "assigned"
                by_id = {order.order_id: order for order in assigned}
                return [by_id.get(order.order_id, order) for order in orders]
        finally:
            metrics.assign(outcome)

    def open_orders(self, limit: int, include_assigned: bool = False) -> list[OrderRecord]:
        """At most ``limit`` PLACED orders, oldest first; with ``include_assigned`` then the ASSIGNED ones (not yet
        picked up), oldest first, ``limit`` in all (dispatch's recovery resends each courier its batch)."""
        orders = self.store.placed(limit)
        if include_assigned and len(orders) < limit:
            orders += self.store.assigned(limit - len(orders))
        return orders

    async def release(self, order_id: str) -> OrderRecord:
        """PLACED → CANCELLED (CANCEL_REASON_NO_COURIER); a cancelled order is returned again;
        :class:`FailedPrecondition` when a courier has it (or had it)."""
        async with self._order_locks.hold(order_id):
            order = await self._get(order_id)
            if self._decide(order, Event.RELEASE) is None:
                return order
            (order,) = await self._put([replace(order, state=CANCELLED,
                                                cancel_reason=food_pb2.CANCEL_REASON_NO_COURIER,
                                                updated_at_unix_ms=self._now_ms())])
            return order

    # -- surge ------------------------------------------------------------------------------------------------------

    async def recompute_surge(self) -> list[RegionSurge]:
        """Count the open orders (PLACED, ASSIGNED) per region, fetch the AVAILABLE couriers per region (the last
        supply when rides-location cannot be reached: logged once per outage, counted), and put the new surge map in
        force. Returns its regions."""
        demand = Counter(self.surge.region_of(*order.pickup) for order in self.store.open_orders()
                         if order.state in DEMAND)
        supply: Mapping[str, int] | None
        try:
            supply = await self._location.count_available(self.surge.resolution)
            if self._supply_failing:
                log.info("%s: %s answers again; surge uses fresh supply", NAME, LOCATION)
            self._supply_failing = False
        except Exception as error:  # noqa: BLE001 - surge must go on with the last supply
            supply = None
            metrics.SURGE_ERRORS.inc()
            if not self._supply_failing:
                log.warning("%s: cannot get the supply from %s (%s: %s); surge keeps the last supply until it "
                            "answers", NAME, LOCATION, type(error).__name__, error)
            self._supply_failing = True
        regions = self.surge.recompute(demand, supply, self._now_ms())
        metrics.RECOMPUTATIONS.inc()
        by_multiplier = {multiplier: 0 for multiplier in self.surge.ladder.multipliers}
        for region in regions:
            by_multiplier[region.multiplier] = by_multiplier.get(region.multiplier, 0) + 1
        for multiplier, count in by_multiplier.items():
            metrics.SURGE_REGIONS.labels(metrics.multiplier_label(multiplier)).set(count)
        return regions

    async def run_surge(self) -> None:
        """Recompute the surge map now and then every ``surge_interval_s``, for ever (a failure is logged; the loop
        goes on)."""
        while True:
            try:
                await self.recompute_surge()
            except Exception:  # noqa: BLE001 - one failed recomputation must not end surge pricing
                log.exception("%s: a surge recomputation failed", NAME)
            await asyncio.sleep(self.settings.surge_interval_s)

    # -- notifications ----------------------------------------------------------------------------------------------

    def _changed(self, order: OrderRecord) -> None:
        """A change is on disk: count it, tell the order's watchers, follow (or stop following) its courier."""
        metrics.moved(order.state)
        metrics.OPEN_ORDERS.set(self.store.open_count)
        if order.state == ASSIGNED:
            metrics.ASSIGN_WAIT_SECONDS.observe(max(0, order.assigned_at_unix_ms - order.placed_at_unix_ms) / 1000)
        elif order.state == DELIVERED:
            metrics.delivered(max(0, order.delivered_at_unix_ms - order.placed_at_unix_ms) / 1000,
                              (order.delivered_at_unix_ms - order.promised_at_unix_ms) / 1000,
                              on_time(order.delivered_at_unix_ms, order.promised_at_unix_ms))
        feed = self._feeds.get(order.order_id)
        if feed is not None:
            for watcher in feed.watchers:
                watcher.changed(order)
            self._follow(feed, order)

    def _follow(self, feed: Following, order: OrderRecord) -> None:
        """Track the order's courier while it has the order (ASSIGNED, PICKED_UP) and someone watches."""
        wanted = order.courier_id if order.state in ACTIVE and feed.watchers and not self._closing else ""
        feed.follow(wanted, self._location.track, self._track_retry, metrics.TRACKING_ERRORS, NAME)

    async def close(self) -> None:
        """End every WatchOrder UNAVAILABLE, stop tracking and background dispatch calls (dispatch's sweep finds
        their orders), close the store (queued writes finish first)."""
        self._closing = True
        tasks = list(self._background)
        for task in tasks:
            task.cancel()
        for feed in self._feeds.values():
            for watcher in feed.watchers:
                watcher.end(f"{NAME} is shutting down; watch again")
            if feed.tracking is not None:
                tasks.append(feed.tracking)
            feed.stop()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.close()


# -- gRPC -------------------------------------------------------------------------------------------------------------

def _unavailable_on(method):
    """A unary handler that answers UNAVAILABLE when the order store cannot be read or written, or the kitchen
    cannot be reached."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except (StoreUnavailable, RestaurantsUnavailable) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class OrderServicer(orders_pb2_grpc.OrderServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`Orders`."""

    def __init__(self, orders: Orders) -> None:
        self._orders = orders

    @_unavailable_on
    async def PlaceOrder(self, request: orders_pb2.PlaceOrderRequest,
                         context: grpc.aio.ServicerContext) -> orders_pb2.PlaceOrderResponse:
        placing = check.place_order(request)
        order = await self._orders.place(*placing)
        return orders_pb2.PlaceOrderResponse(order=order.to_proto())

    @_unavailable_on
    async def GetOrder(self, request: orders_pb2.GetOrderRequest,
                       context: grpc.aio.ServicerContext) -> orders_pb2.GetOrderResponse:
        order = await self._orders.get(check.required_id("order_id", request.order_id))
        return orders_pb2.GetOrderResponse(order=order.to_proto())

    async def WatchOrder(self, request: orders_pb2.WatchOrderRequest,
                         context: grpc.aio.ServicerContext) -> AsyncIterator[orders_pb2.WatchOrderResponse]:
        order_id = check.required_id("order_id", request.order_id)
        try:
            async with contextlib.aclosing(self._orders.watch(order_id)) as updates:
                async for update in updates:
                    if isinstance(update, OrderRecord):
                        yield orders_pb2.WatchOrderResponse(order=update.to_proto())
                    else:
                        yield orders_pb2.WatchOrderResponse(courier_position=update)
        except (WatchEnded, StoreUnavailable) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    @_unavailable_on
    async def CancelOrder(self, request: orders_pb2.CancelOrderRequest,
                          context: grpc.aio.ServicerContext) -> orders_pb2.CancelOrderResponse:
        order_id = check.required_id("order_id", request.order_id)
        customer_id = check.required_id("customer_id", request.customer_id)
        order = await self._orders.cancel(order_id, customer_id)
        return orders_pb2.CancelOrderResponse(order=order.to_proto())

    @_unavailable_on
    async def UpdateOrder(self, request: orders_pb2.UpdateOrderRequest,
                          context: grpc.aio.ServicerContext) -> orders_pb2.UpdateOrderResponse:
        order_id = check.required_id("order_id", request.order_id)
        courier_id = check.required_id("courier_id", request.courier_id)
        event = check.event(request.event)
        order = await self._orders.update(order_id, courier_id, event)
        return orders_pb2.UpdateOrderResponse(order=order.to_proto())

    async def GetSurge(self, request: orders_pb2.GetSurgeRequest,
                       context: grpc.aio.ServicerContext) -> orders_pb2.GetSurgeResponse:
        lat, lng = check.point("point", request.point, request.HasField("point"))
        surge = self._orders.surge_at(lat, lng)
        return orders_pb2.GetSurgeResponse(surge_multiplier=surge.multiplier, region=surge.region)

    @_unavailable_on
    async def AssignCourier(self, request: orders_pb2.AssignCourierRequest,
                            context: grpc.aio.ServicerContext) -> orders_pb2.AssignCourierResponse:
        try:
            assignment = check.assignment(request)
        except InvalidArgument:
            metrics.assign("refused")
            raise
        orders = await self._orders.assign(*assignment)
        return orders_pb2.AssignCourierResponse(orders=[order.to_proto() for order in orders])

    async def ListOpenOrders(self, request: orders_pb2.ListOpenOrdersRequest,
                             context: grpc.aio.ServicerContext) -> orders_pb2.ListOpenOrdersResponse:
        orders = self._orders.open_orders(check.limit(request.limit), request.include_assigned)
        return orders_pb2.ListOpenOrdersResponse(orders=[order.to_proto() for order in orders])

    @_unavailable_on
    async def ReleaseOrder(self, request: orders_pb2.ReleaseOrderRequest,
                           context: grpc.aio.ServicerContext) -> orders_pb2.ReleaseOrderResponse:
        order = await self._orders.release(check.required_id("order_id", request.order_id))
        return orders_pb2.ReleaseOrderResponse(order=order.to_proto())


class OrdersComponent:
    """The servicer over :class:`Orders`, the order store (``DATA_DIR/food-orders/orders.sqlite``), the surge loop,
    and the stubs to food-restaurants, food-dispatch and rides-location."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, OrdersSettings)
        data_dir = context.data_dir(NAME)
        store = OrderStore(data_dir / "orders.sqlite", settings.terminal_cache_size)
        restaurants = RestaurantsClient(restaurants_pb2_grpc.RestaurantServiceStub(context.channel(RESTAURANTS)),
                                        settings.restaurants_timeout_ms / 1000)
        dispatch = DispatchClient(dispatch_pb2_grpc.FoodDispatchServiceStub(context.channel(DISPATCH)),
                                  settings.dispatch_timeout_ms / 1000)
        location = LocationClient(location_pb2_grpc.LocationServiceStub(context.channel(LOCATION)),
                                  settings.location_timeout_ms / 1000)
        self.orders = Orders(settings, store, restaurants, dispatch, location,
                             id_key=load_id_key(data_dir / "order-id.key"))
        self.servicer = OrderServicer(self.orders)
        self._surge: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        orders_pb2_grpc.add_OrderServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        log.info("%s: ETA model (a regression fitted on synthetic history, not a trained production model): %s",
                 NAME, self.orders.eta.describe())
        if self.orders.store.open_count:
            log.info("%s: %d open orders loaded", NAME, self.orders.store.open_count)
        self._surge = asyncio.create_task(self.orders.run_surge(), name=f"{NAME}-surge", context=contextvars.Context())

    async def stop(self) -> None:
        if self._surge is not None:
            self._surge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._surge
        await self.orders.close()


async def build(context: RuntimeContext) -> OrdersComponent:
    return OrdersComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(RESTAURANTS, DISPATCH, LOCATION), build=build,
    settings_model=OrdersSettings,
    # Orders are stored and answered without dispatch (its recovery sweep finds them) and without rides-location
    # (surge keeps the last supply, state changes still flow to watchers); only PlaceOrder needs the kitchens.
    optional_dependencies=(DISPATCH, LOCATION),
    access=Access(public={"PlaceOrder", "GetOrder", "WatchOrder", "CancelOrder", "UpdateOrder", "GetSurge"},
                  internal={"AssignCourier": DISPATCH_CALLERS, "ListOpenOrders": DISPATCH_CALLERS,
                            "ReleaseOrder": DISPATCH_CALLERS}),
    # WatchOrder streams last as long as a delivery: their own slots, not the 256 of unary work.
    default_limits={FULL_NAME: WATCH_STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/WatchOrder": WATCH_STREAM_SLOTS},
)
