"""The proximity workload's parameters (the places, the fences, the moving population) and its seeding through the
public API (PlacesService.CreatePlaces, GeofenceService.CreateFence).

Seed 001 #29 "Proximity Service" (shared/seeds/001_58dfc580020147d2.txt line 51): "100M places, 10M updates/sec,
Yelp/Uber". Here ``places`` businesses (default 50,000) are spread over the contract's service area (San
Francisco), ``district_share`` of them around the city's busy districts (:mod:`.city`), the rest uniformly; each
has a category from :data:`CATEGORY_MIX` (restaurants the most common, museums the rarest), a display name and a
rating. ``fences`` circular geofences (default 100, radius ``fence_min_radius_m`` to ``fence_max_radius_m``) are
centred ``fence_district_share`` of the time in a district (a shopping street, a stadium, a pickup zone), the rest
anywhere.

Everything is drawn from the run's ``rng`` (the run seed, ``casemesh run --seed``): the same seed makes the same
places and fences under the same ids (``pl<run>-<i>``, ``fn<run>-<j>``, where ``<run>`` is 8 hex digits of the
same generator), so seeding a kept data directory again with the same seed is a retry (both RPCs take an identical
retry as created again) and another seed adds a disjoint set. Places go in batches of ``place_batch`` (at most
1,000, the contract's limit), ``seed_concurrency`` calls in flight, a call answered UNAVAILABLE or DEADLINE_EXCEEDED
sent again. Moving entities are not seeded: they appear
with their first position (:mod:`.movers`).
"""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.common.v1 import geo_pb2
from casemesh.proximity.v1 import geofence_pb2, places_pb2
from casemesh.services.proximity.contract import MAX_BATCH, MIN_FENCE_RADIUS_M, distance_m

from ..base import Caller, Params
from .city import DISTRICTS, Mixture, Point

PLACES = "proximity-places"
TRACKER = "proximity-tracker"
GEOFENCE = "proximity-geofence"
#: Largest radius of a seeded fence, metres (the contract allows 50 km): the service area is 13 km north to south, so a
#: point 50 m outside a fence of at most 5 km lies inside it to the north or the south of any centre (the watchers'
#: probes need one).
MAX_SEEDED_FENCE_RADIUS_M = 5_000.0

#: Category → share of places (and of category searches). An estimate of a Yelp-like city listing: eating and
#: shopping make most of it, museums are few.
CATEGORY_MIX: dict[int, float] = {
    places_pb2.PLACE_CATEGORY_RESTAURANT: 0.30,
    places_pb2.PLACE_CATEGORY_SHOP: 0.20,
    places_pb2.PLACE_CATEGORY_CAFE: 0.12,
    places_pb2.PLACE_CATEGORY_BAR: 0.09,
    places_pb2.PLACE_CATEGORY_GROCERY: 0.07,
    places_pb2.PLACE_CATEGORY_GYM: 0.06,
    places_pb2.PLACE_CATEGORY_HOTEL: 0.05,
    places_pb2.PLACE_CATEGORY_PHARMACY: 0.05,
    places_pb2.PLACE_CATEGORY_FUEL: 0.04,
    places_pb2.PLACE_CATEGORY_MUSEUM: 0.02,
}
#: A word per category, for display names.
_CATEGORY_WORDS = {
    places_pb2.PLACE_CATEGORY_RESTAURANT: "Kitchen", places_pb2.PLACE_CATEGORY_SHOP: "Store",
    places_pb2.PLACE_CATEGORY_CAFE: "Coffee", places_pb2.PLACE_CATEGORY_BAR: "Tavern",
    places_pb2.PLACE_CATEGORY_GROCERY: "Market", places_pb2.PLACE_CATEGORY_GYM: "Fitness",
    places_pb2.PLACE_CATEGORY_HOTEL: "Hotel", places_pb2.PLACE_CATEGORY_PHARMACY: "Pharmacy",
    places_pb2.PLACE_CATEGORY_FUEL: "Gas", places_pb2.PLACE_CATEGORY_MUSEUM: "Museum",
}
#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Share of places with no review yet (rating 0).
UNRATED_SHARE = 0.05


def pick_category(rng: random.Random, mix: dict[int, float] = CATEGORY_MIX) -> int:
    """A category drawn from ``mix`` (category → weight)."""
    return rng.choices(list(mix), weights=list(mix.values()))[0]


def draw_rating(rng: random.Random) -> int:
    """A rating in tenths of a star, in half-star steps as Yelp shows them: 0 (no reviews) for
    :data:`UNRATED_SHARE` of places, otherwise a Gaussian of mean 3.9 and deviation 0.6 stars clamped to 1-5."""
    if rng.random() < UNRATED_SHARE:
        return 0
    stars = min(max(rng.gauss(3.9, 0.6), 1.0), 5.0)
    return round(stars * 2) * 5


class SeedParams(Params):
    """The places, the fences and the moving population (defaults: the ``proximity`` profile's)."""

    places: int = Field(default=50_000, ge=1, le=2_000_000,
                        description="places (businesses) created before the run, CreatePlaces in batches")
    place_batch: int = Field(default=MAX_BATCH, ge=1, le=MAX_BATCH,
                             description="places per CreatePlaces call (the contract's maximum: 1,000)")
    district_share: float = Field(default=0.75, ge=0, le=1,
                                  description="share of places drawn around a district (Gaussian); the rest uniform "
                                              "over the service area")
    fences: int = Field(default=100, ge=1, le=10_000, description="circular geofences created before the run")
    fence_min_radius_m: float = Field(default=100.0, ge=MIN_FENCE_RADIUS_M, le=MAX_SEEDED_FENCE_RADIUS_M,
                                      description="smallest fence radius, metres (uniform between min and max)")
    fence_max_radius_m: float = Field(default=600.0, ge=MIN_FENCE_RADIUS_M, le=MAX_SEEDED_FENCE_RADIUS_M,
                                      description="largest fence radius, metres (at most 5 km: a point just outside "
                                                  "every fence must lie in the service area, for the watchers' "
                                                  "probes)")
    fence_district_share: float = Field(default=0.8, ge=0, le=1,
                                        description="share of fences centred around a district; the rest anywhere")
    seed_concurrency: int = Field(default=2, ge=1, le=256, description="seeding calls in flight")
    entities: int = Field(default=2_000, ge=1, le=200_000,
                          description="moving entities (phones, vehicles, couriers) reporting for the whole run")
    gateways: int = Field(default=8, ge=1, le=1_000,
                          description="device gateways, each holding one TrackerService.StreamPositions stream and "
                                      "batching its share of the entities (at most 1,000 each)")
    report_interval_s: float = Field(default=2.0, ge=0.05, le=60,
                                     description="real seconds between a gateway's batches (each carries every one of "
                                                 "its entities' newest position): updates/s = entities / interval")
    walk_share: float = Field(default=0.6, ge=0, le=1, description="share of entities walking; the rest drive")
    walk_kmh: float = Field(default=5.0, gt=0, le=30, description="walking speed, km/h (simulated)")
    drive_kmh: float = Field(default=30.0, gt=0, le=130, description="driving speed, km/h (simulated)")
    time_scale: float = Field(default=10.0, ge=1, le=600,
                              description="simulated seconds per real second of movement (10: a walker covers 14 m "
                                          "and a car 83 m a real second); reports and fence events run in real time")
    waypoint_district_share: float = Field(default=0.6, ge=0, le=1,
                                           description="share of waypoints drawn around a district; the rest uniform")
    max_unacked_batches: int = Field(default=32, ge=1, le=10_000,
                                     description="batches a gateway holds unacknowledged at most; a report due while it "
                                                 "holds that many is skipped (update_ack RESOURCE_EXHAUSTED)")
    ready_timeout_s: float = Field(default=20.0, gt=0, le=600,
                                   description="seconds connect waits for the tracker to acknowledge a probe position "
                                               "and every fence watcher to see its event")
    settle_timeout_s: float = Field(default=15.0, gt=0, le=600,
                                    description="seconds the end of the run waits for every batch to be acknowledged")
    catch_up_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                      description="seconds the end of the run then waits for the watchers to see every "
                                                  "expected fence event before judging fence_events_exactly_once")

    @model_validator(mode="after")
    def _consistent(self) -> SeedParams:
        if self.fence_min_radius_m > self.fence_max_radius_m:
            raise ValueError(f"fence_min_radius_m ({self.fence_min_radius_m:g}) must be at most fence_max_radius_m "
                             f"({self.fence_max_radius_m:g})")
        per_gateway = math.ceil(self.entities / self.gateways)
        if per_gateway > MAX_BATCH:
            raise ValueError(f"entities / gateways is {per_gateway} entities per gateway batch: at most "
                             f"{MAX_BATCH} (the contract's batch limit); add gateways")
        return self

    @property
    def updates_per_s(self) -> float:
        """Position updates a second the whole population sends: ``entities / report_interval_s``."""
        return self.entities / self.report_interval_s

    def place_mixture(self) -> Mixture:
        """Where places are drawn."""
        return Mixture(self.district_share)

    def fence_mixture(self) -> Mixture:
        """Where fence centres are drawn (districts at half their businesses' spread: a fence covers a hot spot)."""
        return Mixture(self.fence_district_share, spread=0.5)

    def waypoint_mixture(self) -> Mixture:
        """Where entities head."""
        return Mixture(self.waypoint_district_share)

    def speed_mps(self, walking: bool) -> float:
        """Simulated metres an entity covers per real second: its speed x ``time_scale``."""
        return (self.walk_kmh if walking else self.drive_kmh) / 3.6 * self.time_scale


@dataclass(frozen=True)
class FenceSpec:
    """One fence as seeded: its id, centre (degrees) and radius (metres)."""

    fence_id: str
    lat_deg: float
    lng_deg: float
    radius_m: float

    @property
    def centre(self) -> Point:
        return (self.lat_deg, self.lng_deg)


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the place count and every fence."""

    run: str
    places: int
    fences: list[FenceSpec]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def plan_places(params: SeedParams, run: str, rng: random.Random) -> list[places_pb2.Place]:
    """The places, in id order (``pl<run>-<i>``), drawn from ``rng``."""
    mixture = params.place_mixture()
    out = []
    for i in range(params.places):
        (lat, lng), district = mixture.point(rng)
        category = pick_category(rng)
        where = district.name if district is not None else "Bay"
        out.append(places_pb2.Place(
            place_id=f"pl{run}-{i}", name=f"{where} {_CATEGORY_WORDS[category]} {i}", category=category,
            point=geo_pb2.LatLng(lat_deg=lat, lng_deg=lng), rating_tenths=draw_rating(rng)))
    return out


def plan_fences(params: SeedParams, run: str, rng: random.Random) -> list[FenceSpec]:
    """The fences, in id order (``fn<run>-<j>``), drawn from ``rng``."""
    mixture = params.fence_mixture()
    fences = []
    for j in range(params.fences):
        (lat, lng), _ = mixture.point(rng)
        radius = rng.uniform(params.fence_min_radius_m, params.fence_max_radius_m)
        fences.append(FenceSpec(f"fn{run}-{j}", lat, lng, round(radius, 1)))
    return fences


def plan(params: SeedParams, rng: random.Random) -> tuple[State, list[places_pb2.Place]]:
    """What seeding creates, drawn from ``rng`` in a fixed order (run prefix, places, fences): no call."""
    run = run_prefix(rng)
    places = plan_places(params, run, rng)
    fences = plan_fences(params, run, rng)
    return State(run=run, places=len(places), fences=fences), places


def fence_message(fence: FenceSpec, index: int) -> geofence_pb2.Fence:
    """The CreateFence request's fence."""
    nearest = min(DISTRICTS, key=lambda d: distance_m(d.lat_deg, d.lng_deg, fence.lat_deg, fence.lng_deg))
    return geofence_pb2.Fence(fence_id=fence.fence_id, name=f"{nearest.name} zone {index}",
                              center=geo_pb2.LatLng(lat_deg=fence.lat_deg, lng_deg=fence.lng_deg), radius_m=fence.radius_m)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create the places (CreatePlaces, ``place_batch`` at a time) and the fences (CreateFence), ``seed_concurrency``
    calls in flight. A call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again (both RPCs take an identical
    retry as created), up to :data:`SEED_ATTEMPTS` times, 100 ms doubling between; any other refusal fails the seeding
    with its status (ALREADY_EXISTS: a kept data directory holds the same ids with other fields)."""
    state, places = plan(params, rng)
    limit = asyncio.Semaphore(params.seed_concurrency)

    async def create(service: str, method: str, request: Any) -> None:
        async with limit:
            for attempt in range(1, SEED_ATTEMPTS + 1):
                try:
                    await call(service, method, request)
                    return
                except grpc.aio.AioRpcError as error:
                    if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                        raise
                await asyncio.sleep(0.1 * 2 ** (attempt - 1))

    async def create_places(batch: list[places_pb2.Place]) -> None:
        await create(PLACES, "CreatePlaces", places_pb2.CreatePlacesRequest(places=batch))

    async def create_fence(fence: FenceSpec, index: int) -> None:
        await create(GEOFENCE, "CreateFence", geofence_pb2.CreateFenceRequest(fence=fence_message(fence, index)))

    size = params.place_batch
    await asyncio.gather(*(create_places(places[i:i + size]) for i in range(0, len(places), size)))
    await asyncio.gather(*(create_fence(fence, j) for j, fence in enumerate(state.fences)))
    return state
