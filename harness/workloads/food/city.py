"""The food workload's San Francisco: where restaurants are, which one a customer orders from, where the food goes
(pure functions and small value classes, no I/O).

The map, the driving legs and the moving hotspot are the ride-sharing workload's (:mod:`..rides.city`: a 6 km x 6 km
box of downtown San Francisco, lat 37.745 to 37.800 and lng -122.455 to -122.385, inside the contract's service area,
:data:`casemesh.services.food.contract.SERVICE_AREA`): couriers are drivers of the same location service and drive
the same streets. What this module adds for seed 001 #13 "Food Delivery" (shared/seeds/001_58dfc580020147d2.txt
line 38: "Regional dispatch, ML ETA, adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats"):

- **Restaurants crowd into districts** (:data:`DISTRICTS`: nine of the box's restaurant districts, their centres
  from the map, their spread and share of the city's restaurants an estimate of this workload): each restaurant is
  drawn from a Gaussian around a district picked by weight (redrawn until it is inside the box, clamped after
  :data:`MAX_DRAWS` draws), and with probability ``same_street_share`` it opens on the same street as an earlier
  restaurant of its district, :data:`STREET_MIN_M` to :data:`STREET_MAX_M` east or west of it (same latitude): two
  orders from one street are the cheapest batch a dispatcher can make.
- **Demand moves** (:class:`FoodDemand`): with probability ``hotspot_fraction`` a customer orders from a restaurant
  drawn with weight ``exp(-d^2 / 2 sigma^2)`` of its distance ``d`` to the hotspot's centre (``hotspot_sigma_m``),
  otherwise from any restaurant (uniformly). The centre is :meth:`..rides.city.Demand.centre`: a lunch wave crossing
  the box from the south-west to the north-east in ``hotspot_period_s`` and back, a pure function of the run's
  elapsed time, so open orders pile up where it is and the order service's surge rises there.
- **Drop-offs** are a uniform ``dropoff_min_m`` to ``dropoff_max_m`` (default 0.5 to 4 km) from the restaurant in a
  random direction, inside the box (:meth:`..rides.city.Demand.dropoff`).

Points are ``(lat_deg, lng_deg)`` tuples; distances are great-circle metres (:func:`distance_m`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..rides.city import M_PER_DEG_LAT, City, Demand, Leg, Point, distance_m, leg

__all__ = ["City", "Leg", "Point", "distance_m", "leg", "District", "DISTRICTS", "place_restaurants", "FoodDemand",
           "MAX_DRAWS", "STREET_MIN_M", "STREET_MAX_M"]

#: Draws of a Gaussian point before it is clamped into the box.
MAX_DRAWS = 64
#: A same-street restaurant opens this many metres (uniform, east or west) from its neighbour.
STREET_MIN_M = 30.0
STREET_MAX_M = 200.0


@dataclass(frozen=True)
class District:
    """A restaurant district: its centre (degrees), spread (metres per axis, one standard deviation) and weight (its
    share of the city's restaurants, relative to the other districts')."""

    name: str
    lat_deg: float
    lng_deg: float
    sigma_m: float
    weight: float

    @property
    def centre(self) -> Point:
        """``(lat_deg, lng_deg)``."""
        return (self.lat_deg, self.lng_deg)


#: The restaurant districts inside the default box, densest first (weights sum to 1).
DISTRICTS: tuple[District, ...] = (
    District("Financial District", 37.7910, -122.4020, 400.0, 0.20),
    District("Mission", 37.7599, -122.4148, 500.0, 0.18),
    District("SoMa", 37.7785, -122.4000, 500.0, 0.15),
    District("North Beach", 37.7970, -122.4075, 350.0, 0.12),
    District("Hayes Valley", 37.7759, -122.4245, 300.0, 0.08),
    District("Castro", 37.7609, -122.4350, 400.0, 0.08),
    District("Haight-Ashbury", 37.7692, -122.4481, 350.0, 0.07),
    District("Noe Valley", 37.7502, -122.4337, 350.0, 0.06),
    District("Potrero Hill", 37.7605, -122.4009, 350.0, 0.06),
)


def gaussian_point(city: City, centre: Point, sigma_m: float, rng: random.Random) -> Point:
    """A point of an isotropic Gaussian of ``sigma_m`` metres per axis around ``centre``, inside the box (redrawn
    until it is, clamped after :data:`MAX_DRAWS` draws)."""
    point = centre
    for _ in range(MAX_DRAWS):
        point = city.offset(centre, rng.gauss(0.0, sigma_m), rng.gauss(0.0, sigma_m))
        if city.contains(point):
            return point
    return city.clamp(point)


def place_restaurants(city: City, count: int, same_street_share: float, rng: random.Random,
                      districts: Sequence[District] = DISTRICTS) -> list[tuple[Point, District]]:
    """``count`` restaurant locations with their district, drawn from ``rng`` in order (module docstring): a district
    by weight, then a Gaussian point around it, or (``same_street_share`` of the time, when the district has one
    already) a point on an earlier restaurant's street."""
    weights = [d.weight for d in districts]
    placed: dict[str, list[Point]] = {d.name: [] for d in districts}
    out: list[tuple[Point, District]] = []
    for _ in range(count):
        district = rng.choices(districts, weights=weights)[0]
        neighbours = placed[district.name]
        if neighbours and rng.random() < same_street_share:
            neighbour = rng.choice(neighbours)
            east = rng.uniform(STREET_MIN_M, STREET_MAX_M) * rng.choice((-1.0, 1.0))
            point = city.clamp(city.offset(neighbour, east, 0.0))
        else:
            point = gaussian_point(city, district.centre, district.sigma_m, rng)
        neighbours.append(point)
        out.append((point, district))
    return out


@dataclass(frozen=True)
class FoodDemand:
    """Which restaurant a customer orders from and where the food goes (module docstring).

    ``restaurants`` are the restaurants' points (index = the seeder's order);
    ``hotspot_fraction`` in [0, 1]; ``hotspot_sigma_m`` > 0 (m); the rest as
    :class:`..rides.city.Demand` (``dropoff_min_m`` <= ``dropoff_max_m``, m).
    """

    city: City
    restaurants: tuple[Point, ...]
    hotspot_fraction: float = 0.6
    hotspot_sigma_m: float = 600.0
    hotspot_period_s: float = 70.0
    hotspot_inset: float = 0.15
    dropoff_min_m: float = 500.0
    dropoff_max_m: float = 4000.0
    _demand: Demand = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.restaurants:
            raise ValueError("FoodDemand needs at least one restaurant")
        object.__setattr__(self, "_demand", Demand(
            self.city, hotspot_fraction=self.hotspot_fraction, hotspot_sigma_m=self.hotspot_sigma_m,
            hotspot_period_s=self.hotspot_period_s, hotspot_inset=self.hotspot_inset,
            trip_min_m=self.dropoff_min_m, trip_max_m=self.dropoff_max_m))

    def centre(self, elapsed_s: float) -> Point:
        """The lunch wave's centre ``elapsed_s`` seconds into the run (:meth:`..rides.city.Demand.centre`)."""
        return self._demand.centre(elapsed_s)

    def hotspot_weights(self, elapsed_s: float) -> list[float]:
        """Each restaurant's weight ``exp(-d^2 / 2 sigma^2)`` at ``elapsed_s`` (flat distances: under a metre off at
        city scale)."""
        lat0, lng0 = self.centre(elapsed_s)
        m_per_deg_lng = M_PER_DEG_LAT * math.cos(math.radians(lat0))
        scale = -0.5 / (self.hotspot_sigma_m ** 2)
        return [math.exp(scale * (((lat - lat0) * M_PER_DEG_LAT) ** 2 + ((lng - lng0) * m_per_deg_lng) ** 2))
                for lat, lng in self.restaurants]

    def restaurant(self, rng: random.Random, elapsed_s: float) -> int:
        """The index of the restaurant a customer orders from ``elapsed_s`` seconds into the run: near the hotspot
        (``hotspot_fraction``) or any (uniform; also when no restaurant is near the hotspot at all)."""
        if rng.random() < self.hotspot_fraction:
            weights = self.hotspot_weights(elapsed_s)
            if sum(weights) > 1e-12:
                return rng.choices(range(len(self.restaurants)), weights=weights)[0]
        return rng.randrange(len(self.restaurants))

    def dropoff(self, rng: random.Random, pickup: Point) -> Point:
        """Where the food goes: ``dropoff_min_m`` to ``dropoff_max_m`` from ``pickup``, inside the box."""
        return self._demand.dropoff(rng, pickup)
