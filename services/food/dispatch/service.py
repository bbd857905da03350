"""``casemesh.food.v1.FoodDispatchService`` (topology name ``food-dispatch``): regional dispatch of orders to couriers.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery | Regional dispatch, ML ETA, adaptive
telemetry, surge pricing | 10M orders/day, DoorDash/UberEats". The mechanism is :mod:`.regions` (H3 regions, one
dispatcher task each, due orders given to couriers every tick), the batching decision :mod:`.batching`, what dispatch
knows of its couriers :mod:`.couriers`, the couriers' streams :mod:`.feeds`. The assignment itself is
OrderService.AssignCourier's compare-and-set: dispatch keeps its queue in memory, and after a restart its sweep of
ListOpenOrders queues every PLACED order again, and its first sweep (``include_assigned``) rebuilds each courier's batch
from the ASSIGNED orders, sent on the courier's reconnected feed. Couriers are drivers of the ride-sharing location
service (LocationService.FindNearbyDrivers finds the AVAILABLE ones).

RPCs and status codes (protos/casemesh/food/v1/dispatch.proto):

- DispatchOrder (internal: :data:`ORDERS_CALLERS`): INVALID_ARGUMENT naming ``order``, ``order.order_id``,
  ``order.pickup``, ``order.pickup.lat_deg`` or ``order.pickup.lng_deg``; RESOURCE_EXHAUSTED when ``max_queued``
  orders are queued; an order queued already: OK, nothing done.
- ReceiveAssignments (public, courier app): INVALID_ARGUMENT naming ``courier_id``; RESOURCE_EXHAUSTED beyond
  ``max_feeds``; ABORTED when another ReceiveAssignments of the courier took over; UNAVAILABLE when the service shuts
  down. The courier's batch as dispatch knows it, if any, is sent first (a reconnect).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); a crash while
dispatching one order is logged and the order tried again next tick; the server goes on. Settings:
:class:`.settings.FoodDispatchSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from casemesh.food.v1 import dispatch_pb2, dispatch_pb2_grpc, food_pb2, orders_pb2, orders_pb2_grpc
from casemesh.rides.v1 import location_pb2, location_pb2_grpc

from ...geo.validation import latlng
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import Aborted, FailedPrecondition, NotFound
from . import validation
from .feeds import AssignmentFeeds, FeedEnded
from .regions import RegionalDispatcher
from .settings import FEED_STREAM_SLOTS, FoodDispatchSettings

NAME = "food-dispatch"
ORDERS = "food-orders"
LOCATION = "rides-location"
#: Who may call DispatchOrder.
ORDERS_CALLERS: tuple[str, ...] = (ORDERS,)
FULL_NAME = dispatch_pb2.DESCRIPTOR.services_by_name["FoodDispatchService"].full_name
UNARY_SLOTS = 256


class LocationClient:
    """:class:`~.regions.NearbyCouriers` over LocationService.FindNearbyDrivers, ``timeout_s`` per call."""

    def __init__(self, stub: location_pb2_grpc.LocationServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def find(self, lat_deg: float, lng_deg: float, radius_m: float, limit: int,
                   exclude: list[str]) -> list[location_pb2.NearbyDriver]:
        response = await self._stub.FindNearbyDrivers(location_pb2.FindNearbyDriversRequest(
            point=latlng(lat_deg, lng_deg), radius_m=radius_m, limit=limit, exclude_driver_ids=exclude),
            timeout=self._timeout_s)
        return list(response.drivers)


class OrdersClient:
    """:class:`~.regions.OrdersApi` over OrderService: ABORTED, FAILED_PRECONDITION and NOT_FOUND become the runtime's
    domain errors; anything else stays an ``AioRpcError`` (UNAVAILABLE, DEADLINE_EXCEEDED: the outcome unknown).
    ``timeout_s`` per call."""

    _PASSED = {grpc.StatusCode.ABORTED: Aborted, grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
               grpc.StatusCode.NOT_FOUND: NotFound}

    def __init__(self, stub: orders_pb2_grpc.OrderServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            passed = self._PASSED.get(error.code())
            if passed is not None:
                raise passed(error.details() or error.code().name) from None
            raise

    async def assign(self, order_ids: list[str], courier_id: str, batch_id: str) -> list[food_pb2.Order]:
        return list((await self._call(self._stub.AssignCourier, orders_pb2.AssignCourierRequest(
            order_ids=order_ids, courier_id=courier_id, batch_id=batch_id))).orders)

    async def release(self, order_id: str) -> food_pb2.Order:
        return (await self._call(self._stub.ReleaseOrder, orders_pb2.ReleaseOrderRequest(order_id=order_id))).order

    async def open_orders(self, limit: int, include_assigned: bool = False) -> list[food_pb2.Order]:
        return list((await self._call(self._stub.ListOpenOrders, orders_pb2.ListOpenOrdersRequest(
            limit=limit, include_assigned=include_assigned))).orders)


class FoodDispatchServicer(dispatch_pb2_grpc.FoodDispatchServiceServicer):
    """Validates each request and calls the :class:`~.regions.RegionalDispatcher` (and its feeds)."""

    def __init__(self, dispatcher: RegionalDispatcher) -> None:
        self._dispatcher = dispatcher

    async def DispatchOrder(self, request: dispatch_pb2.DispatchOrderRequest,
                            context: grpc.aio.ServicerContext) -> dispatch_pb2.DispatchOrderResponse:
        self._dispatcher.dispatch(validation.dispatch_order(request))
        return dispatch_pb2.DispatchOrderResponse()

    async def ReceiveAssignments(
            self, request: dispatch_pb2.ReceiveAssignmentsRequest,
            context: grpc.aio.ServicerContext) -> AsyncIterator[dispatch_pb2.ReceiveAssignmentsResponse]:
        courier_id = validation.courier_id(request)
        feeds = self._dispatcher.feeds
        feed = feeds.open(courier_id)
        try:
            current = self._dispatcher.reconnected(courier_id)
            if current is not None:
                feed.push(current)
            while True:
                yield await feed.next()
        except FeedEnded as ended:
            await context.abort(ended.code, str(ended))
        finally:
            feeds.close(feed)


class FoodDispatchComponent:
    """The servicer over the regional dispatcher, its sweep task, and the stubs to food-orders and rides-location."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, FoodDispatchSettings)
        location = LocationClient(location_pb2_grpc.LocationServiceStub(context.channel(LOCATION)),
                                  settings.location_timeout_ms / 1000)
        orders = OrdersClient(orders_pb2_grpc.OrderServiceStub(context.channel(ORDERS)),
                              settings.orders_timeout_ms / 1000)
        self.dispatcher = RegionalDispatcher(settings, orders, location,
                                             AssignmentFeeds(settings.max_feeds, settings.feed_queue_size))
        self.servicer = FoodDispatchServicer(self.dispatcher)
        self._sweeper: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatch_pb2_grpc.add_FoodDispatchServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self.dispatcher.run_sweeps(), name=f"{NAME}-sweep")

    async def stop(self) -> None:
        """Stop sweeping and dispatching; end every feed UNAVAILABLE (couriers reconnect to the next dispatch)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.dispatcher.close()
        self.dispatcher.feeds.end_all(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect")


async def build(context: RuntimeContext) -> FoodDispatchComponent:
    return FoodDispatchComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(ORDERS, LOCATION), build=build,
    settings_model=FoodDispatchSettings,
    access=Access(public={"ReceiveAssignments"}, internal={"DispatchOrder": ORDERS_CALLERS}),
    # ReceiveAssignments streams last a courier's shift: their own slots, not the 256 of unary work.
    default_limits={FULL_NAME: FEED_STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/ReceiveAssignments": FEED_STREAM_SLOTS},
)
