"""Shared by the food-delivery integration tests: the mesh, and couriers and customers as a client writes them.

:func:`food_mesh` serves the food-delivery services (food-restaurants, food-orders, food-dispatch) and the
ride-sharing location service they reuse (rides-location: couriers are its drivers) in the test's event loop.
:class:`Courier` is a courier's app: one LocationService.ReportLocations client stream (AVAILABLE while it holds no
order, BUSY while it does) and one FoodDispatchService.ReceiveAssignments feed, both reopened when they break; every
order it is given is picked up and delivered after ``trip_s``. :class:`Ledger` is the single-dispatch check: no order
given to two couriers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import dispatch_pb2, dispatch_pb2_grpc, food_pb2, orders_pb2, orders_pb2_grpc
from casemesh.rides.v1 import location_pb2, location_pb2_grpc, rides_pb2
from casemesh.services.catalog import definitions
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .conftest import RunningMesh, free_port, start_mesh
from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests

SERVICES = ["rides-location", "food-restaurants", "food-orders", "food-dispatch"]
#: Union Square, San Francisco: inside the service area (services/food/contract.py).
CENTRE = (37.7880, -122.4075)
#: Orders are dispatched as soon as they are placed (food is ready in a second or two) and the ticks are short, so a
#: test's orders are delivered in seconds.
FAST_SETTINGS: dict[str, dict[str, Any]] = {
    "food-dispatch": {"tick_s": 0.1, "sweep_interval_s": 0.5},
}


@contextlib.asynccontextmanager
async def food_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                    names: Sequence[str] = SERVICES) -> AsyncIterator[RunningMesh]:
    """The food-delivery services and rides-location served in this event loop on 127.0.0.1 (their files in
    ``data_dir``)."""
    chosen = list(definitions(list(names)))
    topology = Topology(services={d.name: Endpoint(address=f"127.0.0.1:{free_port()}") for d in chosen},
                        data_dir=str(data_dir), settings=settings if settings is not None else FAST_SETTINGS,
                        server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def point(lat: float, lng: float) -> geo_pb2.LatLng:
    return geo_pb2.LatLng(lat_deg=lat, lng_deg=lng)


def near(metres_north: float, metres_east: float = 0.0) -> geo_pb2.LatLng:
    """A point ``metres_north`` m north and ``metres_east`` m east of :data:`CENTRE` (flat-earth, fine at city scale)."""
    return point(CENTRE[0] + metres_north / 111_320, CENTRE[1] + metres_east / 88_000)


@dataclass
class Ledger:
    """The single-dispatch invariant over every assignment the couriers received: ``violations`` lists each order
    given to a second courier or in a second batch."""

    courier_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def assigned(self, courier_id: str, batch_id: str, order_id: str) -> None:
        held = self.courier_of.get(order_id)
        if held is not None and held != (courier_id, batch_id):
            self.violations.append(f"order {order_id} given to {held} and to {(courier_id, batch_id)}")
        self.courier_of[order_id] = (courier_id, batch_id)


class Courier:
    """One courier's app: its position stream, its assignment feed, and its deliveries (module docstring).

    ``delivered`` lists the orders it delivered, ``batches`` the batch id of every assignment it received, ``ends``
    the status codes its streams ended with. ``channel_for(name)`` gives the channel of each new call.
    """

    def __init__(self, channel_for: Callable[[str], grpc.aio.Channel], courier_id: str, at: geo_pb2.LatLng,
                 ledger: Ledger, *, trip_s: float = 0.1, ping_s: float = 0.3) -> None:
        self._channel_for = channel_for
        self.courier_id = courier_id
        self.at = at
        self.ledger = ledger
        self.trip_s = trip_s
        self.ping_s = ping_s
        self.holding: set[str] = set()
        self.delivered: list[str] = []
        self.batches: list[str] = []
        self.ends: list[grpc.StatusCode] = []
        self.feed_open = False
        self.pings = 0
        self._handled: set[str] = set()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def status(self) -> int:
        return rides_pb2.DRIVER_STATUS_BUSY if self.holding else rides_pb2.DRIVER_STATUS_AVAILABLE

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._report()), asyncio.create_task(self._feed())]

    async def stop(self) -> None:
        self._stopping.set()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 30)

    async def _positions(self) -> AsyncIterator[location_pb2.ReportLocationsRequest]:
        while not self._stopping.is_set():
            yield location_pb2.ReportLocationsRequest(driver_id=self.courier_id, point=self.at, status=self.status)
            self.pings += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.ping_s)
        yield location_pb2.ReportLocationsRequest(driver_id=self.courier_id, point=self.at,
                                                  status=rides_pb2.DRIVER_STATUS_OFFLINE)

    async def _report(self) -> None:
        while not self._stopping.is_set():
            try:
                stub = location_pb2_grpc.LocationServiceStub(self._channel_for("rides-location"))
                await stub.ReportLocations(self._positions(), timeout=600)
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
                await asyncio.sleep(0.2)

    async def _feed(self) -> None:
        while not self._stopping.is_set():
            stub = dispatch_pb2_grpc.FoodDispatchServiceStub(self._channel_for("food-dispatch"))
            call = stub.ReceiveAssignments(dispatch_pb2.ReceiveAssignmentsRequest(courier_id=self.courier_id),
                                           timeout=600)
            stopping = asyncio.create_task(self._stopping.wait())
            try:
                self.feed_open = True
                while True:
                    read = asyncio.create_task(call.read())
                    done, _ = await asyncio.wait({read, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping in done:
                        read.cancel()
                        call.cancel()
                        return
                    assignment = read.result()
                    if assignment is grpc.aio.EOF:
                        break
                    self.batches.append(assignment.batch_id)
                    for order in assignment.orders:
                        self.ledger.assigned(self.courier_id, assignment.batch_id, order.order_id)
                        if order.order_id not in self._handled:
                            self._handled.add(order.order_id)
                            self.holding.add(order.order_id)
                            asyncio.create_task(self._deliver(order.order_id))
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
                await asyncio.sleep(0.2)
            finally:
                self.feed_open = False
                stopping.cancel()

    async def _update(self, order_id: str, event: int) -> food_pb2.Order | None:
        """One courier event, retried while the order service is unreachable (repeating it is idempotent); None when
        the order service refuses it (the customer cancelled)."""
        for _ in range(300):
            try:
                stub = orders_pb2_grpc.OrderServiceStub(self._channel_for("food-orders"))
                return (await stub.UpdateOrder(orders_pb2.UpdateOrderRequest(
                    order_id=order_id, courier_id=self.courier_id, event=event), timeout=5)).order
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    return None
                await asyncio.sleep(0.2)
        return None

    async def _deliver(self, order_id: str) -> None:
        try:
            await asyncio.sleep(self.trip_s)
            if await self._update(order_id, orders_pb2.COURIER_EVENT_PICK_UP) is None:
                return
            await asyncio.sleep(self.trip_s)
            order = await self._update(order_id, orders_pb2.COURIER_EVENT_DELIVER)
            if order is not None and order.state == food_pb2.ORDER_STATE_DELIVERED:
                self.delivered.append(order_id)
        finally:
            self.holding.discard(order_id)


async def place_order(channel: grpc.aio.Channel, customer_id: str, restaurant_id: str, dropoff: geo_pb2.LatLng, *,
                      request_id: str = "o1", items: int = 2, timeout_s: float = 10) -> food_pb2.Order:
    """PlaceOrder as a customer's app sends it: the stored order (PLACED)."""
    stub = orders_pb2_grpc.OrderServiceStub(channel)
    return (await stub.PlaceOrder(orders_pb2.PlaceOrderRequest(
        customer_id=customer_id, client_request_id=request_id, restaurant_id=restaurant_id, dropoff=dropoff,
        items=items), timeout=timeout_s)).order
