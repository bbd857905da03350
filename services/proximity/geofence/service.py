"""``casemesh.proximity.v1.GeofenceService`` (topology name ``proximity-geofence``): circular fences, ENTER/EXIT.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, Redis Geo, radius
search, geofencing, real-time location updates | 100M places, 10M updates/sec, Yelp/Uber". The mechanism: the fence
index of H3 cells (:mod:`.fences`), the transition logic (:mod:`.evaluator`), the durable store and its group commit
(:mod:`.store`, :mod:`.geofences`), the event feed (:mod:`.watchers`). The invariant it protects: a fence event is
neither lost nor repeated, across retried batches, watcher reconnects and a crash (:mod:`.geofences`).

RPCs and status codes (protos/casemesh/proximity/v1/geofence.proto):

- CreateFence (public): INVALID_ARGUMENT naming ``fence.fence_id``, ``fence.name``, ``fence.center``,
  ``fence.center.lat_deg``, ``fence.center.lng_deg`` or ``fence.radius_m``; ``created=false`` for the same fence
  again; ALREADY_EXISTS for the id with other fields; RESOURCE_EXHAUSTED at ``max_fences``; UNAVAILABLE when it
  could not be written.
- GetFence (public): INVALID_ARGUMENT naming ``fence_id``; NOT_FOUND.
- DeleteFence (public): INVALID_ARGUMENT naming ``fence_id``; NOT_FOUND; UNAVAILABLE when it could not be written.
- WatchFenceEvents (public): INVALID_ARGUMENT naming ``fence_ids`` or ``after_sequence``; OUT_OF_RANGE when events
  after ``after_sequence`` are trimmed; RESOURCE_EXHAUSTED at ``max_watchers`` or when the watcher fell
  ``watcher_queue`` events behind; UNAVAILABLE on shutdown. Never ends by itself.
- EvaluatePositions (internal: :data:`EVALUATE_CALLERS`): INVALID_ARGUMENT naming ``positions`` or the first bad
  field (``positions[2].point.lat_deg``, ``positions[i].entity_id`` for an entity twice); UNAVAILABLE when the
  batch could not be written (nothing of it applied: send it again). Answers once the batch is on disk.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.GeofenceSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator

import grpc

from casemesh.proximity.v1 import geofence_pb2 as pb
from casemesh.proximity.v1 import geofence_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.identifiers import required_id
from . import validation
from .geofences import Geofences, StoreUnavailable
from .settings import WATCH_STREAM_SLOTS, GeofenceSettings
from .watchers import EventsTrimmed, WatchStopped

log = logging.getLogger("casemesh.proximity.geofence")

NAME = "proximity-geofence"
FULL_NAME = pb.DESCRIPTOR.services_by_name["GeofenceService"].full_name
#: Who may call EvaluatePositions (the food-delivery case study may add its own tracker).
EVALUATE_CALLERS: tuple[str, ...] = ("proximity-tracker",)
UNARY_SLOTS = 256
#: The SQLite file's name in the service's data folder.
FILE_NAME = "geofences.sqlite"


def _unavailable_on_store_errors(method):
    """A unary handler that answers UNAVAILABLE when the change could not be written."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class GeofenceServicer(pb_grpc.GeofenceServiceServicer):
    """Validates each request and calls :class:`~.geofences.Geofences`."""

    def __init__(self, geofences: Geofences) -> None:
        self._geofences = geofences

    @_unavailable_on_store_errors
    async def CreateFence(self, request: pb.CreateFenceRequest,
                          context: grpc.aio.ServicerContext) -> pb.CreateFenceResponse:
        created = await self._geofences.create_fence(validation.fence(request))
        return pb.CreateFenceResponse(created=created)

    async def GetFence(self, request: pb.GetFenceRequest, context: grpc.aio.ServicerContext) -> pb.GetFenceResponse:
        fence = self._geofences.get_fence(required_id("fence_id", request.fence_id))
        return pb.GetFenceResponse(fence=fence.to_proto())

    @_unavailable_on_store_errors
    async def DeleteFence(self, request: pb.DeleteFenceRequest,
                          context: grpc.aio.ServicerContext) -> pb.DeleteFenceResponse:
        await self._geofences.delete_fence(required_id("fence_id", request.fence_id))
        return pb.DeleteFenceResponse()

    async def WatchFenceEvents(self, request: pb.WatchFenceEventsRequest,
                               context: grpc.aio.ServicerContext) -> AsyncIterator[pb.WatchFenceEventsResponse]:
        query = validation.watch(request)
        try:
            async with contextlib.aclosing(self._geofences.watch(*query)) as events:
                async for event in events:
                    yield pb.WatchFenceEventsResponse(event=event.to_proto())
        except WatchStopped as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        except EventsTrimmed as error:
            await context.abort(grpc.StatusCode.OUT_OF_RANGE, str(error))

    @_unavailable_on_store_errors
    async def EvaluatePositions(self, request: pb.EvaluatePositionsRequest,
                                context: grpc.aio.ServicerContext) -> pb.EvaluatePositionsResponse:
        result = await self._geofences.evaluate(validation.positions(request))
        return pb.EvaluatePositionsResponse(applied=result.applied, stale=result.stale, events=result.events)


class GeofenceComponent:
    """The servicer over :class:`~.geofences.Geofences` (``DATA_DIR/proximity-geofence/geofences.sqlite``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, GeofenceSettings)
        self.geofences = Geofences(self.settings, context.data_dir(NAME) / FILE_NAME)
        self.servicer = GeofenceServicer(self.geofences)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_GeofenceServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.geofences.start()
        log.info("%s: %d fences, %d entities, last event %d loaded", NAME, len(self.geofences.index),
                 self.geofences.entity_count, self.geofences.last_sequence)

    async def stop(self) -> None:
        await self.geofences.close()


async def build(context: RuntimeContext) -> GeofenceComponent:
    return GeofenceComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=GeofenceSettings,
    access=Access(public={"CreateFence", "GetFence", "DeleteFence", "WatchFenceEvents"},
                  internal={"EvaluatePositions": EVALUATE_CALLERS}),
    # A WatchFenceEvents stream lasts as long as its watcher: its own slots, not the 256 of unary work.
    default_limits={FULL_NAME: WATCH_STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/WatchFenceEvents": WATCH_STREAM_SLOTS},
)
