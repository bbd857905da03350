"""The open-loop journeys of the proximity workload: people searching for places, and a dispatcher looking for the
entities near a point (seed 001 #29 "Proximity Service", shared/seeds/001_58dfc580020147d2.txt line 51: "radius
search ... Yelp/Uber").

``search`` (Yelp: "coffee near me"): a centre drawn around a busy district (``district_share``) or anywhere in the
city; a radius from ``radii_m`` by ``radius_weights`` (500 m to 5 km: a walk to a drive); any category with
``any_category_p``, else one drawn from the places' own mix (:data:`.seeding.CATEGORY_MIX`: restaurants are
searched for most). Then, as the app does:

1. PlacesService.SearchPlaces, first page of ``page_size``;
2. with ``next_page_p``, when the first page says there is more, the next page with its ``next_page_token`` (the
   token flows from one step to the next);
3. with ``open_p``, when anything was found, PlacesService.GetPlace of one hit (the place the user taps), which must
   be the place the search returned.

``nearby`` (Uber's "drivers near me", seed 000 line 455 ``find_nearby_drivers(lat, lng, radius_km=5, limit=10)``):
TrackerService.FindNearbyEntities around a centre drawn the same way, a uniform radius of ``radius_min_m`` to
``radius_max_m``, at most ``limit``.

Both journeys check what they were given against the contract (:func:`.invariants.check_places`,
:func:`.invariants.check_entities`): one ``search_results`` sample each, OK or DATA_LOSS. A journey ends with the
code of its first refused call (recorded per RPC by the harness), else OK; a breach of the contract is not an error
of the journey, only of ``search_results``.
"""

from __future__ import annotations

import logging
import random

from pydantic import Field, model_validator

from casemesh.proximity.v1 import places_pb2, tracker_pb2
from casemesh.services.proximity.contract import DEFAULT_PAGE_SIZE, MAX_NEARBY_LIMIT, MAX_PAGE_SIZE, MAX_RADIUS_M

from ..base import Caller, Params
from .city import Mixture
from .invariants import DATA_LOSS, OK, SEARCH_RESULTS, check_entities, check_places
from .movers import Population, latlng
from .seeding import PLACES, TRACKER, pick_category

log = logging.getLogger("casemesh.workloads.proximity")


class SearchParams(Params):
    """How people search for places."""

    radii_m: tuple[float, ...] = Field(default=(500.0, 1000.0, 2000.0, 5000.0), min_length=1,
                                       description="search radii, metres (1 to 50,000 each)")
    radius_weights: tuple[float, ...] = Field(default=(4.0, 3.0, 2.0, 1.0), min_length=1,
                                              description="relative weight of each radius (as many as radii_m)")
    any_category_p: float = Field(default=0.3, ge=0, le=1,
                                  description="share of searches over every category; the rest name one, drawn from "
                                              "the places' category mix")
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE,
                           description="places per page")
    next_page_p: float = Field(default=0.3, ge=0, le=1,
                               description="share of searches that fetch the next page (when there is one)")
    open_p: float = Field(default=1.0, ge=0, le=1,
                          description="share of searches that open one hit (GetPlace) when anything was found")
    district_share: float = Field(default=0.7, ge=0, le=1,
                                  description="share of search centres drawn around a district; the rest anywhere")

    @model_validator(mode="after")
    def _consistent(self) -> SearchParams:
        if len(self.radii_m) != len(self.radius_weights):
            raise ValueError(f"radius_weights needs one weight per radius ({len(self.radii_m)} radii, "
                             f"{len(self.radius_weights)} weights)")
        if any(not 1 <= r <= MAX_RADIUS_M for r in self.radii_m):
            raise ValueError(f"radii_m must each be 1 to {MAX_RADIUS_M:,.0f} m: {list(self.radii_m)}")
        if any(w < 0 for w in self.radius_weights) or not any(self.radius_weights):
            raise ValueError("radius_weights must be >= 0 and not all 0")
        return self


class NearbyParams(Params):
    """How a dispatcher looks for entities."""

    radius_min_m: float = Field(default=500.0, ge=1, le=MAX_RADIUS_M, description="smallest radius, metres")
    radius_max_m: float = Field(default=2000.0, ge=1, le=MAX_RADIUS_M, description="largest radius, metres")
    limit: int = Field(default=20, ge=1, le=MAX_NEARBY_LIMIT, description="most entities asked for")
    district_share: float = Field(default=0.7, ge=0, le=1,
                                  description="share of centres drawn around a district; the rest anywhere")

    @model_validator(mode="after")
    def _consistent(self) -> NearbyParams:
        if self.radius_min_m > self.radius_max_m:
            raise ValueError(f"radius_min_m ({self.radius_min_m:g}) must be at most radius_max_m ({self.radius_max_m:g})")
        return self


def _judge(call: Caller, problem: str | None, what: str) -> None:
    if problem is None:
        call.observe(SEARCH_RESULTS, 0.0, OK)
    else:
        log.warning("proximity: %s broke the contract: %s", what, problem)
        call.observe(SEARCH_RESULTS, 0.0, DATA_LOSS)


async def search(call: Caller, params: SearchParams, population: Population, rng: random.Random) -> None:
    """Search places around a point, maybe read the next page, open one hit (module docstring)."""
    centre, _ = Mixture(params.district_share).point(rng)
    radius = rng.choices(params.radii_m, weights=params.radius_weights)[0]
    category = places_pb2.PLACE_CATEGORY_UNSPECIFIED if rng.random() < params.any_category_p else pick_category(rng)
    request = places_pb2.SearchPlacesRequest(center=latlng(centre), radius_m=radius, category=category,
                                             page_size=params.page_size)
    first = await call(PLACES, "SearchPlaces", request)
    pages = [list(first.places)]
    if first.next_page_token and rng.random() < params.next_page_p:
        request.page_token = first.next_page_token
        second = await call(PLACES, "SearchPlaces", request)
        pages.append(list(second.places))
    problem = check_places(pages, centre, radius, category, params.page_size)
    hits = [hit for page in pages for hit in page]
    if hits and rng.random() < params.open_p:
        hit = rng.choice(hits)
        opened = (await call(PLACES, "GetPlace", places_pb2.GetPlaceRequest(place_id=hit.place.place_id))).place
        if problem is None and opened != hit.place:
            problem = f"GetPlace({hit.place.place_id}) returned {opened}, the search returned {hit.place}"
    _judge(call, problem, f"SearchPlaces around {centre} within {radius:g} m")


async def nearby(call: Caller, params: NearbyParams, population: Population, rng: random.Random) -> None:
    """The entities near a point (module docstring)."""
    centre, _ = Mixture(params.district_share).point(rng)
    radius = rng.uniform(params.radius_min_m, params.radius_max_m)
    found = await call(TRACKER, "FindNearbyEntities", tracker_pb2.FindNearbyEntitiesRequest(
        center=latlng(centre), radius_m=radius, limit=params.limit))
    _judge(call, check_entities(found.entities, centre, radius, params.limit),
           f"FindNearbyEntities around {centre} within {radius:.0f} m")
