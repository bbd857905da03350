"""The food-delivery workload (DoorDash / Uber Eats; seed 001 #13 "Food Delivery", shared/seeds/001_58dfc580020147d2.txt
line 38: "Regional dispatch, ML ETA, adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats").

Seeding (:mod:`.seeding`) creates restaurants clustered in San Francisco's restaurant districts through
RestaurantService.CreateRestaurants, their kitchens' preparation times scaled to the simulated city's clock. A
population held for the whole run (:mod:`.couriers`): couriers online as drivers of the ride-sharing location service
(a casemesh.rides.v1.LocationService.ReportLocations stream each, AVAILABLE or BUSY, reporting more often while they
hold an order: adaptive telemetry) and on a FoodDispatchService.ReceiveAssignments stream, driving their batches:
restaurants in dispatch's order, then the doors nearest first, in a downtown box (:mod:`.city`) that runs
``time_scale`` times faster than real time. Open-loop arrivals are customers (:mod:`.customers`): an order from a
restaurant near a lunch wave that crosses the city (so surge rises where it is), watched to the door.

Measures: ``dispatch_time``, ``pickup_time``, ``delivery_time``, ``on_time`` and ``tracking_delay`` (the customer's),
``food_wait`` and ``courier_utilisation`` (the couriers'), and the invariant ``single_dispatch`` (:mod:`.invariants`).
The workload speaks only the contracts (protos/casemesh/food/v1, protos/casemesh/rides/v1/location.proto,
casemesh.common.v1) and casemesh.services.food.contract (with casemesh.services.rides.contract through the shared
city of :mod:`..rides.city`).
"""

from __future__ import annotations

import random

from casemesh.food.v1 import dispatch_pb2, dispatch_pb2_grpc, orders_pb2, orders_pb2_grpc, restaurants_pb2, restaurants_pb2_grpc
from casemesh.rides.v1 import location_pb2, location_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .couriers import COURIER_UTILISATION, FOOD_WAIT, Fleet
from .customers import DELIVERY_TIME, DISPATCH_TIME, ON_TIME, PICKUP_TIME, TRACKING_DELAY, OrderParams, order
from .invariants import SINGLE_DISPATCH
from .seeding import DISPATCH, LOCATION, ORDERS, RESTAURANTS, SeedParams, State, seed

_SERVICES = {
    LOCATION: (location_pb2, "LocationService", location_pb2_grpc.LocationServiceStub),
    RESTAURANTS: (restaurants_pb2, "RestaurantService", restaurants_pb2_grpc.RestaurantServiceStub),
    ORDERS: (orders_pb2, "OrderService", orders_pb2_grpc.OrderServiceStub),
    DISPATCH: (dispatch_pb2, "FoodDispatchService", dispatch_pb2_grpc.FoodDispatchServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

MEASURES = (DISPATCH_TIME, PICKUP_TIME, DELIVERY_TIME, ON_TIME, TRACKING_DELAY, FOOD_WAIT, COURIER_UTILISATION,
            SINGLE_DISPATCH)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Fleet:
    """Bring this process's couriers online and wait until most have reported (``ready_fraction``); ``rng`` is not
    used: each courier draws from its own generator, seeded by its id."""
    fleet = Fleet(streams, state, params)
    try:
        await fleet.connect()
    except BaseException:
        await fleet.close()
        raise
    return fleet


async def disconnect(fleet: Fleet) -> None:
    """End the customers' watches and take the couriers offline (OFFLINE, then the half-close)."""
    await fleet.close()


WORKLOAD = Workload(
    name="food",
    description="Food delivery (shared/seeds/001 #13 'Food Delivery', DoorDash/UberEats): restaurants in San "
                "Francisco's districts, couriers streaming positions and driving batched orders, customers ordering "
                "near a moving lunch wave and tracking their order to the door",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("order", "A customer places an order and watches it to the door (dispatch_time, pickup_time, "
                    "delivery_time, on_time, tracking_delay; a few cancel)", OrderParams, order),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
