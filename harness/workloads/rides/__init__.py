"""The ride-sharing workload (Uber; shared/seeds/000 line 423 "Ride-Sharing (like Uber)", shared/seeds/003 lines
619-990 "Uber Ride Matching", shared/seeds/001 line 11 "#02 Ride-Sharing").

A population held for the whole run (:mod:`.drivers`): every driver online
on a LocationService.ReportLocations client stream (a position every 4 s)
and a DispatchService.ReceiveOffers server stream, moving through a
simulated downtown San Francisco (:mod:`.city`) that runs ``time_scale``
times faster than real time, answering offers and driving the rides it
wins. Open-loop arrivals are riders (:mod:`.riders`): a quote, a request,
and the ride watched to its end, with pickups concentrated around a
hotspot that crosses the city during the run.

Measures: ``match_time`` (request → matched: seed 003 "< 5 seconds"),
``tracking_delay`` (a driver position's way to the rider), ``pickup_wait``,
``offer`` (what became of each offer, by code) and ``accept`` (AcceptOffer
calls); the invariant ``single_assignment`` (:mod:`.invariants`). The
workload speaks only the contracts (protos/casemesh/rides/v1,
casemesh.common.v1) and casemesh.services.rides.contract.
"""

from __future__ import annotations

import random

from casemesh.rides.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    location_pb2,
    location_pb2_grpc,
    pricing_pb2,
    pricing_pb2_grpc,
    trips_pb2,
    trips_pb2_grpc,
)

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .drivers import ACCEPT, OFFER, Fleet
from .invariants import SINGLE_ASSIGNMENT
from .riders import MATCH_TIME, PICKUP_WAIT, TRACKING_DELAY, RideParams, ride
from .seeding import DISPATCH, LOCATION, PRICING, TRIPS, SeedParams, State, seed

_SERVICES = {
    LOCATION: (location_pb2, "LocationService", location_pb2_grpc.LocationServiceStub),
    PRICING: (pricing_pb2, "PricingService", pricing_pb2_grpc.PricingServiceStub),
    TRIPS: (trips_pb2, "TripService", trips_pb2_grpc.TripServiceStub),
    DISPATCH: (dispatch_pb2, "DispatchService", dispatch_pb2_grpc.DispatchServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

MEASURES = (MATCH_TIME, TRACKING_DELAY, PICKUP_WAIT, OFFER, ACCEPT, SINGLE_ASSIGNMENT)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Fleet:
    """Bring this process's drivers online and wait until most have reported (``ready_fraction``); ``rng`` is not used:
    each driver draws from its own generator, seeded by its ID."""
    fleet = Fleet(streams, state, params)
    try:
        await fleet.connect()
    except BaseException:
        await fleet.close()
        raise
    return fleet


async def disconnect(fleet: Fleet) -> None:
    """End the riders' watches and take the drivers offline (OFFLINE, then the half-close)."""
    await fleet.close()


WORKLOAD = Workload(
    name="rides",
    description="Ride-sharing (shared/seeds/003 'Uber Ride Matching'): drivers streaming positions and answering "
                "offers in a simulated San Francisco, riders quoting, requesting and tracking rides",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("ride", "A rider quotes, requests and watches a ride to its end (match_time, tracking_delay, "
                    "pickup_wait; a few cancel)", RideParams, ride),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
