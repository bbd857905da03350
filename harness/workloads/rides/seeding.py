"""The rides workload's parameters (the city, its drivers, its demand) and its seeding, which makes no call.

Nothing is created through the API before the run: drivers come online in
``connect`` (:mod:`.drivers`), riders are created by the journeys. The seeder
only names the drivers, ``rd<run>-d<i>``, where ``<run>`` is random per
seeding; each connect adds a random session suffix (``rd<run>-d<i>-<session>``,
:class:`.drivers.Fleet`), so a data directory kept from an earlier run (the
trip service's rides, a driver a location index has not yet expired) or an
earlier step of ``casemesh capacity`` (seeded once, connected per step) shares
no driver or rider with this one. Riders are ``rd<run>-w<worker>-<session>-r<n>``,
one per ride journey (a rider holds one open ride at a time: trips.proto
RequestRide).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import Field, model_validator

from ..base import Caller, Params
from .city import City, Demand

LOCATION = "rides-location"
PRICING = "rides-pricing"
TRIPS = "rides-trips"
DISPATCH = "rides-dispatch"

_CITY = City()
_DEMAND = Demand(_CITY)


class SeedParams(Params):
    """The city, its drivers and how they behave, and where riders want to go (defaults: the ``rides`` profile's)."""

    drivers: int = Field(default=150, ge=1, le=5000,
                         description="drivers online for the whole run, each holding a ReportLocations and a ReceiveOffers "
                                     "stream")
    south_deg: float = Field(default=_CITY.south_deg, description="the city box's southern edge, degrees of latitude")
    west_deg: float = Field(default=_CITY.west_deg, description="the city box's western edge, degrees of longitude")
    north_deg: float = Field(default=_CITY.north_deg, description="the city box's northern edge, degrees of latitude")
    east_deg: float = Field(default=_CITY.east_deg, description="the city box's eastern edge, degrees of longitude")
    speed_kmh: float = Field(default=30.0, gt=0, le=130, description="driving speed in the simulated city, km/h")
    time_scale: float = Field(default=30.0, ge=1, le=600,
                              description="simulated seconds per real second of driving (30: a 3 km trip at 30 km/h, "
                                          "6 minutes, takes 12 s); offers, think times and pings run in real time")
    ping_interval_s: float = Field(default=4.0, ge=0.5, le=30,
                                   description="real seconds between a driver's position reports (seed 003: every 3-5 s), "
                                               "plus one at once when its status changes")
    think_min_s: float = Field(default=0.3, ge=0, le=30, description="shortest time a driver takes to answer an offer, s")
    think_max_s: float = Field(default=1.5, ge=0, le=30, description="longest time a driver takes to answer an offer, s")
    accept_p: float = Field(default=0.75, ge=0, le=1, description="probability that a free driver accepts an offer")
    decline_p: float = Field(default=0.15, ge=0, le=1,
                             description="probability that a free driver declines an offer (the rest are ignored and expire)")
    busy_accept_p: float = Field(default=0.5, ge=0, le=1,
                                 description="probability that a driver on a ride accepts an offer anyway (a double tap: "
                                             "the trip service must refuse it, FAILED_PRECONDITION); the others are declined")
    hotspot_fraction: float = Field(default=0.6, ge=0, le=1,
                                    description="share of pickups drawn around the moving hotspot; the rest are uniform")
    hotspot_sigma_m: float = Field(default=400.0, gt=0, le=10_000,
                                   description="the hotspot's Gaussian spread, metres per axis")
    hotspot_period_s: float = Field(default=_DEMAND.hotspot_period_s, gt=0, le=86_400,
                                    description="seconds the hotspot takes to cross the city, south-west to north-east "
                                                "(then it comes back)")
    hotspot_inset: float = Field(default=_DEMAND.hotspot_inset, ge=0, lt=0.5,
                                 description="how far inside the box's corners the hotspot turns, fraction of each side")
    trip_min_m: float = Field(default=1000.0, gt=0, le=50_000, description="shortest trip, pickup to dropoff, metres")
    trip_max_m: float = Field(default=5000.0, gt=0, le=50_000, description="longest trip, pickup to dropoff, metres")
    ready_fraction: float = Field(default=0.9, gt=0, le=1,
                                  description="share of this process's drivers that must have reported a position before "
                                              "the load starts")
    ready_timeout_s: float = Field(default=20.0, gt=0, le=600,
                                   description="seconds connect waits for them before failing the run")
    connect_concurrency: int = Field(default=32, ge=1, le=10_000,
                                     description="GetDriverPosition checks in flight while waiting for the drivers")

    @model_validator(mode="after")
    def _consistent(self) -> SeedParams:
        self.city()  # raises ValueError when the box is not one inside the service area
        if self.think_min_s > self.think_max_s:
            raise ValueError(f"think_min_s ({self.think_min_s:g}) must be at most think_max_s ({self.think_max_s:g})")
        if self.accept_p + self.decline_p > 1 + 1e-9:
            raise ValueError(f"accept_p + decline_p ({self.accept_p + self.decline_p:g}) must be at most 1")
        if self.trip_min_m > self.trip_max_m:
            raise ValueError(f"trip_min_m ({self.trip_min_m:g}) must be at most trip_max_m ({self.trip_max_m:g})")
        return self

    def city(self) -> City:
        """The city box (``ValueError`` when it is not inside the service area)."""
        return City(south_deg=self.south_deg, west_deg=self.west_deg, north_deg=self.north_deg, east_deg=self.east_deg)

    def demand(self) -> Demand:
        """Where pickups and dropoffs are drawn."""
        return Demand(self.city(), hotspot_fraction=self.hotspot_fraction, hotspot_sigma_m=self.hotspot_sigma_m,
                      hotspot_period_s=self.hotspot_period_s, hotspot_inset=self.hotspot_inset,
                      trip_min_m=self.trip_min_m, trip_max_m=self.trip_max_m)

    @property
    def speed_mps(self) -> float:
        """Simulated metres a car covers per real second: ``speed_kmh`` x ``time_scale``."""
        return self.speed_kmh / 3.6 * self.time_scale


def hotspot_centre(elapsed_s: float, params: SeedParams) -> tuple[float, float]:
    """Where the demand hotspot is ``elapsed_s`` seconds into the run (from the load's first instant), as
    ``(lat_deg, lng_deg)``: for plotting next to the surge map (:meth:`.city.Demand.centre`)."""
    return params.demand().centre(elapsed_s)


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix and every driver's ID."""

    run: str
    drivers: list[str]


def plan(params: SeedParams, run: str) -> State:
    """The drivers' IDs (no call)."""
    return State(run=run, drivers=[f"rd{run}-d{i}" for i in range(params.drivers)])


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Name the drivers under a fresh run prefix; no call (drivers come online in ``connect``)."""
    return plan(params, f"{random.Random().getrandbits(32):08x}")
