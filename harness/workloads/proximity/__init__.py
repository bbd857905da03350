"""The proximity workload (Yelp / Uber; seed 001 #29 "Proximity Service", shared/seeds/001_58dfc580020147d2.txt line
51: "Geohash/H3, Redis Geo, radius search, geofencing, real-time location updates | 100M places, 10M updates/sec,
Yelp/Uber").

Seeding (:mod:`.seeding`) creates places clustered in San Francisco's busy districts and circular geofences through
the public API. A population held for the whole run (:mod:`.movers`): entities wandering the city, reported in
batches by device gateways on TrackerService.StreamPositions streams, and fence watchers on
GeofenceService.WatchFenceEvents (:mod:`.watchers`). Open-loop arrivals are searches (:mod:`.searchers`):
SearchPlaces with its next page and a GetPlace, and FindNearbyEntities.

Measures: ``update_ack`` (a gateway's batch, due → acknowledged), ``fence_notify`` (a position's send →
its fence event on the watcher's stream), and the invariants ``fence_events_exactly_once`` and ``search_results``
(:mod:`.invariants`). The workload speaks only the contracts (protos/casemesh/proximity/v1, casemesh.common.v1) and
casemesh.services.proximity.contract.
"""

from __future__ import annotations

import random

from casemesh.proximity.v1 import (
    geofence_pb2,
    geofence_pb2_grpc,
    places_pb2,
    places_pb2_grpc,
    tracker_pb2,
    tracker_pb2_grpc,
)

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .invariants import FENCE_EVENTS, SEARCH_RESULTS
from .movers import UPDATE_ACK, Population
from .searchers import NearbyParams, SearchParams, nearby, search
from .seeding import GEOFENCE, PLACES, TRACKER, SeedParams, State, seed
from .watchers import FENCE_NOTIFY

_SERVICES = {
    PLACES: (places_pb2, "PlacesService", places_pb2_grpc.PlacesServiceStub),
    TRACKER: (tracker_pb2, "TrackerService", tracker_pb2_grpc.TrackerServiceStub),
    GEOFENCE: (geofence_pb2, "GeofenceService", geofence_pb2_grpc.GeofenceServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

MEASURES = (UPDATE_ACK, FENCE_NOTIFY, FENCE_EVENTS, SEARCH_RESULTS)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Population:
    """Start this process's fence watchers, prove them live, and start its gateways; ``rng`` is not used (each entity
    draws from its own generator, seeded by its id)."""
    population = Population(streams, state, params)
    try:
        await population.connect()
    except BaseException:
        await population.close()
        raise
    return population


async def disconnect(population: Population) -> None:
    """Stop the reports, wait for the acknowledgements and the watchers, judge fence_events_exactly_once, close."""
    await population.close()


WORKLOAD = Workload(
    name="proximity",
    description="Proximity service (shared/seeds/001 #29 'Proximity Service', Yelp/Uber): places clustered in San "
                "Francisco searched by radius, entities moving and reported in batches by gateways, geofence events "
                "watched and checked exactly once",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("search", "Search places around a point (a radius from 500 m to 5 km, any category or one), maybe "
                    "the next page, and open one hit", SearchParams, search),
            Journey("nearby", "Find the moving entities near a point (FindNearbyEntities)", NearbyParams, nearby),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
