"""The food workload's parameters (the city, its restaurants and couriers, the demand) and its seeding through the
public API (RestaurantService.CreateRestaurants).

Seed 001 #13 "Food Delivery" (shared/seeds/001_58dfc580020147d2.txt line 38: "Regional dispatch, ML ETA, adaptive
telemetry, surge pricing | 10M orders/day, DoorDash/UberEats"). ``restaurants`` restaurants (default 300) are
clustered in the box's restaurant districts, some on the same street (:func:`.city.place_restaurants`).

**One clock for the whole city.** Everything a city takes time for is set in **simulated** seconds and divided by
``time_scale`` (30: 30 simulated seconds a real second), so the kitchens, the couriers and the services' models run
on the same clock:

- kitchens: ``prep_base_s`` a uniform ``prep_base_min_s`` .. ``prep_base_max_s`` (6 to 12 minutes) and
  ``prep_per_item_s`` a uniform ``prep_per_item_min_s`` .. ``prep_per_item_max_s`` (20 to 40 s), created divided by
  ``time_scale`` (12 to 24 real seconds and 0.7 to 1.3 an item); a base below 1 s (the contract's minimum, reached
  only above ``time_scale`` 360) is raised to 1 s. ``kitchen_slots`` is a uniform ``kitchen_slots_min`` ..
  ``kitchen_slots_max`` (2 to 6 orders at once);
- couriers: ``speed_kmh`` on roads ``detour_factor`` times longer than the straight line (they move along the straight
  line at ``speed_kmh / detour_factor``), x ``time_scale``: :attr:`SeedParams.speed_mps` (200 road metres a real
  second by default) is the value of the services' ``courier_speed_mps`` and ``detour_factor`` theirs too;
- handoffs: a courier loses an exponential ``pickup_handoff_s`` (mean) at the restaurant once the food is ready and
  ``dropoff_handoff_s`` at the door (parking, the counter, the stairs), divided by ``time_scale``: their sum is the
  order service's ``pickup_wait_s``.

The profile (harness/profiles/food.yaml) writes the services' settings from these numbers.

Everything is drawn from the run's ``rng`` (``casemesh run --seed``) in a fixed order (the run prefix, then each
restaurant): the same seed makes the same restaurants under the same ids (``fd<run>-r<i>``, ``<run>`` 8 hex digits of
the same generator), so seeding a kept data directory again with the same seed and parameters is a retry
(CreateRestaurants counts an identical restaurant as created again) and another seed adds a disjoint set; the same
seed with other kitchen parameters is refused ALREADY_EXISTS. Restaurants go ``restaurant_batch`` at a time,
``seed_concurrency`` calls in flight, a call answered UNAVAILABLE or DEADLINE_EXCEEDED sent again.

Couriers are not created: they come online in ``connect`` (:mod:`.couriers`) as ``fd<run>-c<i>-<session>``, with a
random session suffix per connect, and customers are ``fd<run>-w<worker>-<session>-u<n>``, one per order journey:
a data directory kept from an earlier run, or an earlier step of ``casemesh capacity`` (seeded once, connected per
step), shares no courier or customer with this one.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.common.v1 import geo_pb2
from casemesh.food.v1 import restaurants_pb2
from casemesh.services.food.contract import MAX_BATCH, MAX_KITCHEN_SLOTS, MAX_PREP_BASE_S, MAX_PREP_PER_ITEM_S, SERVICE_AREA

from ..base import Caller, Params
from .city import City, FoodDemand, Point, place_restaurants

LOCATION = "rides-location"
RESTAURANTS = "food-restaurants"
ORDERS = "food-orders"
DISPATCH = "food-dispatch"

#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: The contract's smallest ``prep_base_s``, seconds.
MIN_PREP_BASE_S = 1.0
#: Words for display names.
CUISINES = ("Taqueria", "Noodle Bar", "Pizzeria", "Burger Joint", "Sushi", "Thai Kitchen", "Deli", "Curry House",
            "Salad Co", "Dim Sum", "Pho", "Bakery")

_CITY = City()


class SeedParams(Params):
    """The restaurants, the couriers, the city and the demand (defaults: the ``food`` profile's)."""

    restaurants: int = Field(default=300, ge=1, le=100_000,
                             description="restaurants created before the run (CreateRestaurants)")
    restaurant_batch: int = Field(default=500, ge=1, le=MAX_BATCH,
                                  description="restaurants per CreateRestaurants call (the contract allows 1,000)")
    same_street_share: float = Field(default=0.3, ge=0, le=1,
                                     description="share of restaurants opened 30-200 m east or west of an earlier "
                                                 "restaurant of their district (same street): batching's best chances")
    prep_base_min_s: float = Field(default=360.0, gt=0, le=MAX_PREP_BASE_S * 600,
                                   description="shortest kitchen base preparation, SIMULATED seconds (6 min; created "
                                               "divided by time_scale)")
    prep_base_max_s: float = Field(default=720.0, gt=0, le=MAX_PREP_BASE_S * 600,
                                   description="longest kitchen base preparation, simulated seconds (12 min)")
    prep_per_item_min_s: float = Field(default=20.0, ge=0, le=MAX_PREP_PER_ITEM_S,
                                       description="shortest preparation per item, simulated seconds")
    prep_per_item_max_s: float = Field(default=40.0, ge=0, le=MAX_PREP_PER_ITEM_S,
                                       description="longest preparation per item, simulated seconds")
    kitchen_slots_min: int = Field(default=2, ge=1, le=MAX_KITCHEN_SLOTS,
                                   description="fewest orders a kitchen prepares at once")
    kitchen_slots_max: int = Field(default=6, ge=1, le=MAX_KITCHEN_SLOTS,
                                   description="most orders a kitchen prepares at once")
    seed_concurrency: int = Field(default=2, ge=1, le=64, description="CreateRestaurants calls in flight")
    couriers: int = Field(default=150, ge=1, le=5000,
                          description="couriers online for the whole run, each holding a ReportLocations and a "
                                      "ReceiveAssignments stream")
    south_deg: float = Field(default=_CITY.south_deg, description="the city box's southern edge, degrees of latitude")
    west_deg: float = Field(default=_CITY.west_deg, description="the city box's western edge, degrees of longitude")
    north_deg: float = Field(default=_CITY.north_deg, description="the city box's northern edge, degrees of latitude")
    east_deg: float = Field(default=_CITY.east_deg, description="the city box's eastern edge, degrees of longitude")
    speed_kmh: float = Field(default=24.0, gt=0, le=130,
                             description="a courier's road speed in the simulated city, km/h (24: a scooter or car in "
                                         "downtown traffic)")
    detour_factor: float = Field(default=1.3, ge=1, le=5,
                                 description="road over straight-line distance: couriers move along the straight line "
                                             "at speed_kmh / detour_factor (the services' detour_factor)")
    time_scale: float = Field(default=30.0, ge=1, le=600,
                              description="simulated seconds per real second of driving, cooking and handoffs (30: a "
                                          "2 km drop-off, 2.6 km of road at 24 km/h, 6.5 minutes, takes 13 s); pings, "
                                          "calls and dispatch ticks run in real time")
    pickup_handoff_s: float = Field(default=60.0, ge=0, le=3_600,
                                    description="mean time a courier loses at the restaurant once the food is ready, "
                                                "simulated seconds (exponential; divided by time_scale)")
    dropoff_handoff_s: float = Field(default=60.0, ge=0, le=3_600,
                                     description="mean time a courier loses at the door, simulated seconds "
                                                 "(exponential; divided by time_scale)")
    ping_interval_s: float = Field(default=4.0, ge=0.5, le=30,
                                   description="real seconds between the position reports of a courier holding no order")
    busy_ping_interval_s: float = Field(default=2.0, ge=0.25, le=30,
                                       description="real seconds between the position reports of a courier holding an "
                                                   "order (adaptive telemetry: the customer tracks it; set equal to "
                                                   "ping_interval_s to turn the adaptation off)")
    hotspot_fraction: float = Field(default=0.6, ge=0, le=1,
                                    description="share of orders drawn from restaurants near the moving hotspot; the "
                                                "rest from any restaurant")
    hotspot_sigma_m: float = Field(default=600.0, gt=0, le=10_000,
                                   description="the hotspot's Gaussian reach, metres")
    hotspot_period_s: float = Field(default=90.0, gt=0, le=86_400,
                                    description="real seconds the lunch wave takes to cross the city, south-west to "
                                                "north-east (then it comes back)")
    hotspot_inset: float = Field(default=0.15, ge=0, lt=0.5,
                                 description="how far inside the box's corners the hotspot turns, fraction of each side")
    dropoff_min_m: float = Field(default=500.0, gt=0, le=50_000, description="nearest drop-off from its restaurant, m")
    dropoff_max_m: float = Field(default=4000.0, gt=0, le=50_000, description="farthest drop-off from its restaurant, m")
    ready_fraction: float = Field(default=0.9, gt=0, le=1,
                                  description="share of this process's couriers that must have reported a position "
                                              "before the load starts")
    ready_timeout_s: float = Field(default=20.0, gt=0, le=600,
                                   description="seconds connect waits for them before failing the run")
    connect_concurrency: int = Field(default=32, ge=1, le=10_000,
                                     description="GetDriverPosition checks in flight while waiting for the couriers")
    utilisation_interval_s: float = Field(default=1.0, gt=0, le=60,
                                          description="real seconds between two courier_utilisation samples of every "
                                                      "courier (BUSY or IDLE)")

    @model_validator(mode="after")
    def _consistent(self) -> SeedParams:
        city = self.city()  # raises ValueError when the box is not inside the rides location service's area
        for lat, lng in ((city.south_deg, city.west_deg), (city.north_deg, city.east_deg)):
            if not SERVICE_AREA.contains(lat, lng):
                raise ValueError(f"the city box must lie inside the food service area ({SERVICE_AREA.describe()})")
        for low, high in (("prep_base_min_s", "prep_base_max_s"), ("prep_per_item_min_s", "prep_per_item_max_s"),
                          ("kitchen_slots_min", "kitchen_slots_max"), ("dropoff_min_m", "dropoff_max_m")):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} ({getattr(self, low):g}) must be at most {high} ({getattr(self, high):g})")
        if self.prep_base_max_s / self.time_scale > MAX_PREP_BASE_S:
            raise ValueError(f"prep_base_max_s / time_scale must be at most {MAX_PREP_BASE_S:g} real seconds")
        if self.busy_ping_interval_s > self.ping_interval_s:
            raise ValueError(f"busy_ping_interval_s ({self.busy_ping_interval_s:g}) must be at most ping_interval_s "
                             f"({self.ping_interval_s:g}): a courier on a job reports at least as often")
        return self

    def city(self) -> City:
        """The city box (``ValueError`` when it is not inside the service area)."""
        return City(south_deg=self.south_deg, west_deg=self.west_deg, north_deg=self.north_deg, east_deg=self.east_deg)

    def demand(self, restaurants: tuple[Point, ...]) -> FoodDemand:
        """Which of ``restaurants`` (their points, in the seeder's order) customers order from, and where to."""
        return FoodDemand(self.city(), restaurants, hotspot_fraction=self.hotspot_fraction,
                          hotspot_sigma_m=self.hotspot_sigma_m, hotspot_period_s=self.hotspot_period_s,
                          hotspot_inset=self.hotspot_inset, dropoff_min_m=self.dropoff_min_m,
                          dropoff_max_m=self.dropoff_max_m)

    @property
    def speed_mps(self) -> float:
        """Simulated road metres a courier covers per real second: ``speed_kmh`` / 3.6 x ``time_scale`` (200 by
        default): the value of the services' ``courier_speed_mps`` setting in the profile."""
        return self.speed_kmh / 3.6 * self.time_scale

    @property
    def straight_mps(self) -> float:
        """Metres of straight line a courier covers per real second: :attr:`speed_mps` / ``detour_factor``."""
        return self.speed_mps / self.detour_factor

    @property
    def handoff_s(self) -> float:
        """Mean real seconds a courier loses per order at the restaurant and the door together: the value of the
        order service's ``pickup_wait_s`` setting in the profile."""
        return (self.pickup_handoff_s + self.dropoff_handoff_s) / self.time_scale


@dataclass(frozen=True)
class RestaurantSpot:
    """A seeded restaurant as the journeys need it: its id and point (degrees)."""

    restaurant_id: str
    lat_deg: float
    lng_deg: float

    @property
    def point(self) -> Point:
        return (self.lat_deg, self.lng_deg)


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the restaurants, the couriers."""

    run: str
    restaurants: list[RestaurantSpot]
    couriers: list[str]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def plan_restaurants(params: SeedParams, run: str, rng: random.Random) -> list[restaurants_pb2.Restaurant]:
    """The restaurants, in id order (``fd<run>-r<i>``), drawn from ``rng`` (module docstring)."""
    out = []
    for i, (point, district) in enumerate(place_restaurants(params.city(), params.restaurants,
                                                            params.same_street_share, rng)):
        base = max(round(rng.uniform(params.prep_base_min_s, params.prep_base_max_s) / params.time_scale, 2),
                   MIN_PREP_BASE_S)
        per_item = round(rng.uniform(params.prep_per_item_min_s, params.prep_per_item_max_s) / params.time_scale, 3)
        slots = rng.randint(params.kitchen_slots_min, params.kitchen_slots_max)
        cuisine = rng.choice(CUISINES)
        out.append(restaurants_pb2.Restaurant(
            restaurant_id=f"fd{run}-r{i}", name=f"{district.name} {cuisine} {i}",
            point=geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1]), prep_base_s=base, prep_per_item_s=per_item,
            kitchen_slots=slots))
    return out


def plan(params: SeedParams, rng: random.Random) -> tuple[State, list[restaurants_pb2.Restaurant]]:
    """What seeding creates, drawn from ``rng`` in a fixed order (the run prefix, then the restaurants): no call."""
    run = run_prefix(rng)
    restaurants = plan_restaurants(params, run, rng)
    spots = [RestaurantSpot(r.restaurant_id, r.point.lat_deg, r.point.lng_deg) for r in restaurants]
    return State(run=run, restaurants=spots, couriers=[f"fd{run}-c{i}" for i in range(params.couriers)]), restaurants


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create the restaurants (CreateRestaurants, ``restaurant_batch`` at a time, ``seed_concurrency`` calls in
    flight). A call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again (an identical retry counts as created), up
    to :data:`SEED_ATTEMPTS` times, 100 ms doubling between; any other refusal fails the seeding with its status
    (ALREADY_EXISTS: a kept data directory holds the same ids with other kitchens)."""
    state, restaurants = plan(params, rng)
    limit = asyncio.Semaphore(params.seed_concurrency)

    async def create(batch: list[Any]) -> None:
        request = restaurants_pb2.CreateRestaurantsRequest(restaurants=batch)
        async with limit:
            for attempt in range(1, SEED_ATTEMPTS + 1):
                try:
                    await call(RESTAURANTS, "CreateRestaurants", request)
                    return
                except grpc.aio.AioRpcError as error:
                    if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                        raise
                await asyncio.sleep(0.1 * 2 ** (attempt - 1))

    size = params.restaurant_batch
    await asyncio.gather(*(create(restaurants[i:i + size]) for i in range(0, len(restaurants), size)))
    return state
