"""The simulated San Francisco of the proximity workload: its busy districts, where things are drawn, and how entities
move (pure functions and small value classes, no I/O).

The map is the contract's service area (:data:`casemesh.services.proximity.contract.SERVICE_AREA`, lat 37.70 to
37.82, lng -122.52 to -122.36: about 13 km north to south and 14 km west to east), where seed 001 #29 "Proximity
Service" (shared/seeds/001_58dfc580020147d2.txt line 51: "Geohash/H3, Redis Geo, radius search, geofencing,
real-time location updates | 100M places, 10M updates/sec, Yelp/Uber") puts Yelp's places and Uber's moving
entities. Businesses are not spread evenly over a city: they crowd into its commercial districts. :data:`DISTRICTS`
are ten of San Francisco's (their centres from the map, their spread and their share of the city's businesses an
estimate of this workload: the Financial District and Union Square the densest, the residential west the
sparsest). A point is drawn from a :class:`Mixture`: with probability ``district_share`` from an isotropic Gaussian
around a district picked by its weight (redrawn until it is inside the area, clamped into it after
:data:`MAX_DRAWS` draws), otherwise uniformly over the whole box (the box includes some of the Pacific and the bay:
the uniform background ignores the coast, as a Gaussian's tail does).

Points are ``(lat_deg, lng_deg)`` tuples; distances are great-circle metres (the contract's
:func:`~casemesh.services.proximity.contract.distance_m`). Entities move by random-waypoint mobility (:class:`Leg`):
a straight leg at a constant speed to a waypoint drawn from the mixture, then the next; within a few kilometres a
leg is interpolated linearly in degrees (the error is below a metre).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from casemesh.services.proximity.contract import SERVICE_AREA, distance_m

Point = tuple[float, float]
#: Metres per degree of latitude on a sphere of the Earth's mean radius (6,371 km, as h3's great-circle distance).
M_PER_DEG_LAT = math.pi * 6_371_007.2 / 180
#: Draws of a Gaussian point before it is clamped into the area.
MAX_DRAWS = 64


@dataclass(frozen=True)
class District:
    """A busy part of the city: its centre (degrees), its spread (metres per axis, one standard deviation) and its
    weight (its share of the city's businesses, relative to the other districts')."""

    name: str
    lat_deg: float
    lng_deg: float
    sigma_m: float
    weight: float

    @property
    def centre(self) -> Point:
        """``(lat_deg, lng_deg)``."""
        return (self.lat_deg, self.lng_deg)


#: San Francisco's commercial districts, densest first (weights sum to 1).
DISTRICTS: tuple[District, ...] = (
    District("Financial District", 37.7910, -122.4020, 500.0, 0.22),
    District("Mission", 37.7599, -122.4148, 600.0, 0.16),
    District("SoMa", 37.7785, -122.4000, 600.0, 0.12),
    District("North Beach", 37.7985, -122.4075, 400.0, 0.10),
    District("Castro", 37.7609, -122.4350, 500.0, 0.08),
    District("Marina", 37.8010, -122.4368, 500.0, 0.07),
    District("Inner Richmond", 37.7800, -122.4650, 700.0, 0.07),
    District("Hayes Valley", 37.7759, -122.4245, 350.0, 0.06),
    District("Haight-Ashbury", 37.7692, -122.4481, 400.0, 0.06),
    District("Inner Sunset", 37.7620, -122.4690, 600.0, 0.06),
)


def m_per_deg_lng(lat_deg: float) -> float:
    """Metres per degree of longitude at ``lat_deg``."""
    return M_PER_DEG_LAT * math.cos(math.radians(lat_deg))


def offset(point: Point, east_m: float, north_m: float) -> Point:
    """``point`` moved ``east_m`` east and ``north_m`` north (metres; flat at city scale; may leave the area)."""
    return (point[0] + north_m / M_PER_DEG_LAT, point[1] + east_m / m_per_deg_lng(point[0]))


def inside(point: Point) -> bool:
    """True when ``point`` is inside the service area (edges included)."""
    return SERVICE_AREA.contains(point[0], point[1])


def clamp(point: Point) -> Point:
    """The nearest point of the service area."""
    area = SERVICE_AREA
    return (min(max(point[0], area.south_deg), area.north_deg), min(max(point[1], area.west_deg), area.east_deg))


def uniform(rng: random.Random) -> Point:
    """A point drawn uniformly from the service area's box."""
    area = SERVICE_AREA
    return (rng.uniform(area.south_deg, area.north_deg), rng.uniform(area.west_deg, area.east_deg))


def gaussian(rng: random.Random, centre: Point, sigma_m: float) -> Point:
    """A point from an isotropic Gaussian of ``sigma_m`` metres per axis around ``centre``, inside the area."""
    point = centre
    for _ in range(MAX_DRAWS):
        point = offset(centre, rng.gauss(0.0, sigma_m), rng.gauss(0.0, sigma_m))
        if inside(point):
            return point
    return clamp(point)


@dataclass(frozen=True)
class Mixture:
    """Where things are: ``district_share`` (0 to 1) of points around a district drawn by weight, the rest uniform.

    ``spread`` multiplies every district's ``sigma_m`` (fences cluster tighter than businesses, say).
    """

    district_share: float
    districts: Sequence[District] = DISTRICTS
    spread: float = 1.0
    _cumulative: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0 <= self.district_share <= 1:
            raise ValueError(f"district_share must be in [0, 1], not {self.district_share}")
        if not self.districts or any(d.weight < 0 for d in self.districts) or not any(d.weight for d in self.districts):
            raise ValueError("districts need weights >= 0, not all 0")
        if self.spread <= 0:
            raise ValueError(f"spread must be > 0, not {self.spread}")
        object.__setattr__(self, "_cumulative", tuple(itertools.accumulate(d.weight for d in self.districts)))

    def district(self, rng: random.Random) -> District:
        """A district drawn by weight."""
        index = bisect.bisect_right(self._cumulative, rng.random() * self._cumulative[-1])
        return self.districts[min(index, len(self.districts) - 1)]

    def point(self, rng: random.Random) -> tuple[Point, District | None]:
        """A point and its district (``None`` for a point of the uniform background)."""
        if rng.random() >= self.district_share:
            return uniform(rng), None
        district = self.district(rng)
        return gaussian(rng, district.centre, district.sigma_m * self.spread), district


@dataclass(frozen=True)
class Leg:
    """Moving from ``start`` to ``end`` in a straight line at ``speed_mps``, leaving at ``start_s`` (clock seconds).

    ``speed_mps`` is simulated metres per clock second (a speed times the run's time scale), > 0.
    """

    start: Point
    end: Point
    start_s: float
    speed_mps: float
    distance_m: float = field(init=False)

    def __post_init__(self) -> None:
        if self.speed_mps <= 0:
            raise ValueError(f"speed_mps must be > 0, not {self.speed_mps}")
        object.__setattr__(self, "distance_m", distance_m(*self.start, *self.end))

    @property
    def arrives_s(self) -> float:
        """Clock instant of arrival at ``end``."""
        return self.start_s + self.distance_m / self.speed_mps

    def position(self, now_s: float) -> Point:
        """Where the entity is at clock instant ``now_s``: ``start`` before it leaves, ``end`` once it has arrived."""
        duration = self.distance_m / self.speed_mps
        fraction = 1.0 if duration <= 0 else min(max((now_s - self.start_s) / duration, 0.0), 1.0)
        return (self.start[0] + fraction * (self.end[0] - self.start[0]),
                self.start[1] + fraction * (self.end[1] - self.start[1]))


class Wanderer:
    """Random-waypoint mobility: from a start drawn from ``waypoints``, straight legs at ``speed_mps`` to the next
    waypoint drawn from it, for ever. ``rng`` is the entity's own (seeded by its id: reproducible)."""

    __slots__ = ("leg", "rng", "speed_mps", "waypoints")

    def __init__(self, rng: random.Random, waypoints: Mixture, speed_mps: float, now_s: float):
        self.rng = rng
        self.waypoints = waypoints
        self.speed_mps = speed_mps
        start = waypoints.point(rng)[0]
        self.leg = Leg(start, waypoints.point(rng)[0], now_s, speed_mps)

    def position(self, now_s: float) -> Point:
        """Where it is at clock instant ``now_s`` (past a waypoint it heads for the next; ``now_s`` must not go back)."""
        while now_s >= self.leg.arrives_s:
            self.leg = Leg(self.leg.end, self.waypoints.point(self.rng)[0], self.leg.arrives_s, self.speed_mps)
        return self.leg.position(now_s)
