"""``casemesh.food.v1.RestaurantService`` (topology name ``food-restaurants``): restaurants and their kitchens.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38): "| 13 | Food Delivery | Regional dispatch, ML ETA,
adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |". Orders flow through their restaurant's
preparation time: :mod:`.kitchens` is each kitchen's queue (``kitchen_slots`` parallel orders, ready at the earliest
free slot plus the order's preparation time, idempotent per order id; in memory), :mod:`.store` the restaurants
(SQLite, group commit, fsync before acknowledging; every restaurant loaded at start). Knobs: :mod:`.settings`
(``prep_jitter``: how far real preparation times stray from the nominal ones).

Status codes, as protos/casemesh/food/v1/restaurants.proto says:

- CreateRestaurants (public: the seeding client): INVALID_ARGUMENT naming ``restaurants`` (none or over 1,000), the
  first bad field of the first bad restaurant (``restaurants[2].point.lat_deg``, ``restaurants[0].kitchen_slots``,
  ...) or ``restaurants[i].restaurant_id`` (an id twice in the request); ALREADY_EXISTS naming the first restaurant id
  that exists with other fields; RESOURCE_EXHAUSTED beyond ``max_restaurants``; UNAVAILABLE when the store cannot be
  written. Nothing is stored unless OK; ``created`` counts the new restaurants (an identical retry: 0).
- GetRestaurant (public): INVALID_ARGUMENT naming ``restaurant_id``; NOT_FOUND. ``next_ready_at_unix_ms`` is the
  nominal ready time of a one-item order placed now.
- PrepareOrder (internal: :data:`PREPARE_CALLERS`): INVALID_ARGUMENT naming ``restaurant_id``, ``order_id`` or
  ``items`` (not 1 to 50); NOT_FOUND for an unknown restaurant. Idempotent per (restaurant, order id) while the order
  is remembered (``recent_orders``).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on, and
so does the kitchen sweep (an error in one sweep is logged, the next runs). Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

import grpc

from casemesh.food.v1 import restaurants_pb2 as pb
from casemesh.food.v1 import restaurants_pb2_grpc as pb_grpc

from ...geo.validation import latlng
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .kitchens import Kitchens
from .settings import RestaurantsSettings
from .store import Restaurants, RestaurantStore, StoreUnavailable

log = logging.getLogger("casemesh.food.restaurants")

NAME = "food-restaurants"
FULL_NAME = pb.DESCRIPTOR.services_by_name["RestaurantService"].full_name
#: Who may call PrepareOrder: the order service, once it has stored the order.
PREPARE_CALLERS: tuple[str, ...] = ("food-orders",)
#: The SQLite file of the restaurants, in the service's data folder.
STORE_FILE = "restaurants.sqlite"


def _unavailable_on_store_errors(method):
    """A unary handler that answers UNAVAILABLE when the restaurant store cannot be written."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class RestaurantServicer(pb_grpc.RestaurantServiceServicer):
    """Validates each request and calls :class:`~.store.Restaurants` and :class:`~.kitchens.Kitchens`."""

    def __init__(self, restaurants: Restaurants, kitchens: Kitchens) -> None:
        self._restaurants = restaurants
        self._kitchens = kitchens

    @_unavailable_on_store_errors
    async def CreateRestaurants(self, request: pb.CreateRestaurantsRequest,
                                context: grpc.aio.ServicerContext) -> pb.CreateRestaurantsResponse:
        created = await self._restaurants.create(validation.create(request))
        return pb.CreateRestaurantsResponse(created=created)

    async def GetRestaurant(self, request: pb.GetRestaurantRequest,
                            context: grpc.aio.ServicerContext) -> pb.GetRestaurantResponse:
        record = self._restaurants.get(validation.restaurant_id(request.restaurant_id))
        outlook = self._kitchens.outlook(record)
        return pb.GetRestaurantResponse(restaurant=record.to_proto(), orders_preparing=outlook.orders_preparing,
                                        next_ready_at_unix_ms=outlook.next_ready_at_unix_ms)

    async def PrepareOrder(self, request: pb.PrepareOrderRequest,
                           context: grpc.aio.ServicerContext) -> pb.PrepareOrderResponse:
        order = validation.prepare(request)
        record = self._restaurants.get(order.restaurant_id)
        prepared = self._kitchens.prepare(record, order.order_id, order.items)
        return pb.PrepareOrderResponse(ready_at_unix_ms=prepared.ready_at_unix_ms,
                                       pickup=latlng(record.lat_deg, record.lng_deg))


class RestaurantsComponent:
    """The servicer over the restaurants (``DATA_DIR/food-restaurants/restaurants.sqlite``, loaded) and the kitchens,
    and the kitchen sweep (every ``sweep_interval_s``)."""

    def __init__(self, restaurants: Restaurants, kitchens: Kitchens) -> None:
        self.restaurants = restaurants
        self.kitchens = kitchens
        self.servicer = RestaurantServicer(restaurants, kitchens)
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_RestaurantServiceServicer_to_server(self.servicer, server)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.restaurants.settings.sweep_interval_s)
            try:
                self.kitchens.sweep()
            except Exception:  # noqa: BLE001 - one failed sweep must not end the sweeps; the next one retries
                log.exception("%s: the kitchen sweep failed", NAME)

    async def start(self) -> None:
        # The kitchens start empty: the process-wide gauges say so now, not what an earlier service of this process
        # (a test's mesh) left in them.
        self.kitchens.sweep()
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{NAME}-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.restaurants.close()


async def build(context: RuntimeContext, clock: Callable[[], float] = time.time) -> RestaurantsComponent:
    """Open the store and load every restaurant (before the server answers anything); the kitchens start empty."""
    settings = context.settings(NAME, RestaurantsSettings)
    store = RestaurantStore(context.data_dir(NAME) / STORE_FILE, settings.commit_batch)
    restaurants = Restaurants(settings, store)
    started = time.perf_counter()
    loaded = await restaurants.load()
    log.info("%s: %d restaurants loaded in %.2f s", NAME, loaded, time.perf_counter() - started)
    return RestaurantsComponent(restaurants, Kitchens(settings, clock))


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=RestaurantsSettings,
    access=Access(public={"CreateRestaurants", "GetRestaurant"}, internal={"PrepareOrder": PREPARE_CALLERS}),
)
