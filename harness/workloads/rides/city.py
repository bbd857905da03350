"""The simulated city: its box, straight driving legs, and the moving demand hotspot (pure functions, no I/O).

The city is a latitude/longitude box inside the contract's service area
(:data:`casemesh.services.rides.contract.DEFAULT_SERVICE_AREA`); the default,
lat 37.745 to 37.800 and lng -122.455 to -122.385, is about 6.1 km north to
south and 6.2 km west to east of downtown San Francisco (from Noe Valley and
the Mission in the south-west to North Beach and the Financial District in the
north-east), where seed 003 "Uber Ride Matching" (shared/seeds/003, line 619)
and seed 000 "Ride-Sharing (like Uber)" (line 423) place their riders and
drivers on a map.

Points are ``(lat_deg, lng_deg)`` tuples. Distances are great-circle metres
(``h3.great_circle_distance``); within a few kilometres a straight leg is
interpolated linearly in degrees (the equirectangular error over 6 km is
below a metre). Drivers move by random-waypoint mobility: a straight
:class:`Leg` at a constant speed to a waypoint, then the next one.

Demand (:class:`Demand`): a pickup is drawn with probability
``hotspot_fraction`` from an isotropic Gaussian of ``hotspot_sigma_m`` around
the hotspot's centre, otherwise uniformly in the box; the dropoff is a random
direction at a uniform 1 to 5 km (``trip_min_m`` .. ``trip_max_m``). The
hotspot centre moves as a commute wave (:meth:`Demand.centre`): from the
south-west corner of the box (inset by ``hotspot_inset`` of each side) to the
north-east one over ``hotspot_period_s`` seconds of the run, then back, a
triangle wave of period ``2 x hotspot_period_s``: a pure function of the run's
elapsed time, so a benchmark can plot where demand was next to the surge map
(PricingService.ListSurge) of the same instant.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import h3

from casemesh.services.rides.contract import DEFAULT_SERVICE_AREA

Point = tuple[float, float]
#: Metres per degree of latitude on a sphere of the Earth's mean radius (6,371 km, as h3's great-circle distance).
M_PER_DEG_LAT = math.pi * 6_371_007.2 / 180
#: Draws of a Gaussian pickup, or of a dropoff, before falling back (clamped into the box).
MAX_DRAWS = 64


def distance_m(a: Point, b: Point) -> float:
    """Great-circle distance between two points, in metres."""
    return h3.great_circle_distance(a, b, unit="m")


@dataclass(frozen=True)
class City:
    """A box in degrees (south < north, west < east), inside the contract's service area; ``ValueError`` otherwise."""

    south_deg: float = 37.745
    west_deg: float = -122.455
    north_deg: float = 37.800
    east_deg: float = -122.385

    def __post_init__(self) -> None:
        if not (self.south_deg < self.north_deg and self.west_deg < self.east_deg):
            raise ValueError(f"the city box must have south < north and west < east: {self}")
        for lat, lng in ((self.south_deg, self.west_deg), (self.north_deg, self.east_deg)):
            if not DEFAULT_SERVICE_AREA.contains(lat, lng):
                raise ValueError(f"the city box must lie inside the service area ({DEFAULT_SERVICE_AREA.describe()}): {self}")

    @property
    def m_per_deg_lng(self) -> float:
        """Metres per degree of longitude at the box's middle latitude."""
        return M_PER_DEG_LAT * math.cos(math.radians((self.south_deg + self.north_deg) / 2))

    @property
    def width_m(self) -> float:
        """West to east, in metres (at the middle latitude)."""
        return (self.east_deg - self.west_deg) * self.m_per_deg_lng

    @property
    def height_m(self) -> float:
        """South to north, in metres."""
        return (self.north_deg - self.south_deg) * M_PER_DEG_LAT

    def contains(self, point: Point) -> bool:
        """True when ``point`` is inside the box (edges included)."""
        return self.south_deg <= point[0] <= self.north_deg and self.west_deg <= point[1] <= self.east_deg

    def clamp(self, point: Point) -> Point:
        """The nearest point of the box."""
        return (min(max(point[0], self.south_deg), self.north_deg), min(max(point[1], self.west_deg), self.east_deg))

    def uniform(self, rng: random.Random) -> Point:
        """A point drawn uniformly from the box."""
        return (rng.uniform(self.south_deg, self.north_deg), rng.uniform(self.west_deg, self.east_deg))

    def offset(self, point: Point, east_m: float, north_m: float) -> Point:
        """``point`` moved ``east_m`` east and ``north_m`` north (metres; flat at city scale; may leave the box)."""
        return (point[0] + north_m / M_PER_DEG_LAT, point[1] + east_m / self.m_per_deg_lng)

    def at(self, east_fraction: float, north_fraction: float) -> Point:
        """The point at these fractions (0 to 1) of the box's width from the west and height from the south."""
        return (self.south_deg + north_fraction * (self.north_deg - self.south_deg),
                self.west_deg + east_fraction * (self.east_deg - self.west_deg))

    def heading_deg(self, a: Point, b: Point) -> float:
        """Heading from ``a`` to ``b`` in degrees clockwise from north, in [0, 360); 0 when they are the same point."""
        east = (b[1] - a[1]) * self.m_per_deg_lng
        north = (b[0] - a[0]) * M_PER_DEG_LAT
        if east == 0 and north == 0:
            return 0.0
        heading = math.degrees(math.atan2(east, north)) % 360.0
        return 0.0 if heading >= 360.0 else heading


@dataclass(frozen=True)
class Leg:
    """Driving from ``start`` to ``end`` in a straight line at ``speed_mps``, leaving at ``start_s`` (clock seconds).

    ``speed_mps`` is simulated metres per clock second (a city speed times the
    run's time scale); ``heading_deg`` is the leg's heading, [0, 360).
    """

    start: Point
    end: Point
    start_s: float
    speed_mps: float
    heading_deg: float = 0.0
    distance_m: float = field(init=False)

    def __post_init__(self) -> None:
        if self.speed_mps <= 0:
            raise ValueError(f"speed_mps must be > 0, not {self.speed_mps}")
        object.__setattr__(self, "distance_m", distance_m(self.start, self.end))

    @property
    def duration_s(self) -> float:
        """Clock seconds the leg takes."""
        return self.distance_m / self.speed_mps

    @property
    def arrives_s(self) -> float:
        """Clock instant of arrival at ``end``."""
        return self.start_s + self.duration_s

    def position(self, now_s: float) -> Point:
        """Where the car is at clock instant ``now_s``: ``start`` before it leaves, ``end`` once it has arrived."""
        duration = self.duration_s
        fraction = 1.0 if duration <= 0 else min(max((now_s - self.start_s) / duration, 0.0), 1.0)
        return (self.start[0] + fraction * (self.end[0] - self.start[0]),
                self.start[1] + fraction * (self.end[1] - self.start[1]))


def leg(city: City, start: Point, end: Point, start_s: float, speed_mps: float) -> Leg:
    """A :class:`Leg` from ``start`` to ``end`` with its heading."""
    return Leg(start, end, start_s, speed_mps, city.heading_deg(start, end))


@dataclass(frozen=True)
class Demand:
    """Where riders ask to be picked up and where they go (module docstring).

    ``hotspot_fraction`` in [0, 1]; ``hotspot_sigma_m`` > 0 (m, per axis);
    ``hotspot_period_s`` > 0 (s, one crossing); ``hotspot_inset`` in [0, 0.5)
    (fraction of each side); 0 < ``trip_min_m`` <= ``trip_max_m`` (m).
    """

    city: City
    hotspot_fraction: float = 0.6
    hotspot_sigma_m: float = 400.0
    hotspot_period_s: float = 70.0
    hotspot_inset: float = 0.15
    trip_min_m: float = 1000.0
    trip_max_m: float = 5000.0

    def centre(self, elapsed_s: float) -> Point:
        """The hotspot's centre ``elapsed_s`` seconds into the run: south-west → north-east over one period, then back."""
        phase = (max(elapsed_s, 0.0) / self.hotspot_period_s) % 2.0
        progress = phase if phase <= 1.0 else 2.0 - phase
        position = self.hotspot_inset + progress * (1.0 - 2 * self.hotspot_inset)
        return self.city.at(position, position)

    def pickup(self, rng: random.Random, elapsed_s: float) -> Point:
        """A pickup point drawn from the mixture at ``elapsed_s`` seconds into the run (always inside the box)."""
        if rng.random() >= self.hotspot_fraction:
            return self.city.uniform(rng)
        centre = self.centre(elapsed_s)
        point = centre
        for _ in range(MAX_DRAWS):
            point = self.city.offset(centre, rng.gauss(0.0, self.hotspot_sigma_m), rng.gauss(0.0, self.hotspot_sigma_m))
            if self.city.contains(point):
                return point
        return self.city.clamp(point)

    def dropoff(self, rng: random.Random, pickup: Point) -> Point:
        """A dropoff ``trip_min_m`` to ``trip_max_m`` (uniform) from ``pickup`` in a random direction, inside the box
        (redrawn until it is; clamped into the box after :data:`MAX_DRAWS` draws)."""
        point = pickup
        for _ in range(MAX_DRAWS):
            length = rng.uniform(self.trip_min_m, self.trip_max_m)
            angle = rng.uniform(0.0, 2 * math.pi)
            point = self.city.offset(pickup, length * math.sin(angle), length * math.cos(angle))
            if self.city.contains(point):
                return point
        return self.city.clamp(point)
