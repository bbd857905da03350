"""``casemesh.proximity.v1.PlacesService`` (topology name ``proximity-places``): places, found by distance.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51): "| 29 | Proximity Service | Geohash/H3, Redis Geo,
radius search, geofencing, real-time location updates | 100M places, 10M updates/sec, Yelp/Uber |". The mechanism is
in :mod:`.catalog` (an H3 index over every place and one per category, ring-walk radius search with keyset pages)
over :mod:`services.geo.index`, durable in :mod:`.store` (SQLite, group commit, fsync before acknowledging; every
place loaded into the indexes at start). A/B knob: ``index_resolution`` (:mod:`.settings`).

Every RPC is public (the places app and the seeding client). Status codes, as protos/casemesh/proximity/v1/places.proto
says:

- CreatePlaces: INVALID_ARGUMENT naming ``places`` (none or over 1,000), the first bad field of the first bad place
  (``places[3].point.lat_deg``, ``places[0].name``, ...) or ``places[i].place_id`` (an id twice in the request);
  ALREADY_EXISTS naming the first place id that exists with other fields; RESOURCE_EXHAUSTED beyond ``max_places``;
  UNAVAILABLE when the store cannot be written. Nothing is stored unless OK; ``created`` counts the new places (an
  identical retry: 0).
- GetPlace: INVALID_ARGUMENT naming ``place_id``; NOT_FOUND.
- DeletePlace: INVALID_ARGUMENT naming ``place_id``; NOT_FOUND; UNAVAILABLE when the store cannot be written (the
  place stays).
- SearchPlaces: INVALID_ARGUMENT naming ``center``, ``center.lat_deg``, ``center.lng_deg``, ``radius_m``,
  ``category``, ``page_size`` or ``page_token`` (malformed, or from another search).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import functools
import logging
import time

import grpc

from casemesh.proximity.v1 import places_pb2 as pb
from casemesh.proximity.v1 import places_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .catalog import Places
from .settings import PlacesSettings
from .store import PlaceStore, StoreUnavailable

log = logging.getLogger("casemesh.proximity.places")

NAME = "proximity-places"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PlacesService"].full_name
#: The SQLite file of the places, in the service's data folder.
STORE_FILE = "places.sqlite"


def _unavailable_on_store_errors(method):
    """A unary handler that answers UNAVAILABLE when the place store cannot be written."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class PlacesServicer(pb_grpc.PlacesServiceServicer):
    """Validates each request and calls :class:`~.catalog.Places`."""

    def __init__(self, places: Places) -> None:
        self._places = places

    @_unavailable_on_store_errors
    async def CreatePlaces(self, request: pb.CreatePlacesRequest,
                           context: grpc.aio.ServicerContext) -> pb.CreatePlacesResponse:
        created = await self._places.create(validation.create(request))
        return pb.CreatePlacesResponse(created=created)

    async def GetPlace(self, request: pb.GetPlaceRequest, context: grpc.aio.ServicerContext) -> pb.GetPlaceResponse:
        return pb.GetPlaceResponse(place=self._places.get(validation.place_id(request.place_id)).to_proto())

    @_unavailable_on_store_errors
    async def DeletePlace(self, request: pb.DeletePlaceRequest,
                          context: grpc.aio.ServicerContext) -> pb.DeletePlaceResponse:
        await self._places.delete(validation.place_id(request.place_id))
        return pb.DeletePlaceResponse()

    async def SearchPlaces(self, request: pb.SearchPlacesRequest,
                           context: grpc.aio.ServicerContext) -> pb.SearchPlacesResponse:
        page = await self._places.search(validation.search(request))
        return pb.SearchPlacesResponse(
            places=[pb.PlaceHit(place=record.to_proto(), distance_m=distance_m) for record, distance_m in page.hits],
            next_page_token=page.next_page_token, cells_searched=page.cells_searched)


class PlacesComponent:
    """The servicer over :class:`~.catalog.Places`, its store (``DATA_DIR/proximity-places/places.sqlite``) loaded."""

    def __init__(self, places: Places) -> None:
        self.places = places
        self.servicer = PlacesServicer(places)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PlacesServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.places.close()


async def build(context: RuntimeContext) -> PlacesComponent:
    """Open the store, load every place into the indexes (before the server answers anything)."""
    settings = context.settings(NAME, PlacesSettings)
    store = PlaceStore(context.data_dir(NAME) / STORE_FILE, settings.commit_batch)
    places = Places(settings, store)
    started = time.perf_counter()
    loaded = await places.load()
    log.info("%s: %d places loaded and indexed in %.2f s", NAME, loaded, time.perf_counter() - started)
    return PlacesComponent(places)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=PlacesSettings,
    access=Access(public={"CreatePlaces", "GetPlace", "DeletePlace", "SearchPlaces"}),
)
