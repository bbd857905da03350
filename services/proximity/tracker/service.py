"""``casemesh.proximity.v1.TrackerService`` (topology name ``proximity-tracker``): where every moving entity is.

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | Geohash/H3, Redis Geo, radius
search, geofencing, real-time location updates | 100M places, 10M updates/sec, Yelp/Uber". The mechanism is in
:mod:`.streams` (one StreamPositions connection: validate the batch whole, forward it to proximity-geofence, apply,
acknowledge), :mod:`.forwarding` (GeofenceService.EvaluatePositions with a deadline and bounded retries) and
:mod:`.entities` (the sharded H3 index of entities, :mod:`services.geo.index`, with their last sequence and expiry).
A/B knob: ``index_resolution`` (:mod:`.settings`).

Status codes, as protos/casemesh/proximity/v1/tracker.proto says (every method public):

- StreamPositions: INVALID_ARGUMENT naming ``positions`` (empty or over 1,000) or the first bad field
  (``positions[2].entity_id``, ``positions[4].sequence``, ``positions[0].point``, ``positions[0].point.lng_deg``),
  ``positions[i].entity_id`` for an entity twice in one batch; UNAVAILABLE when the geofence service could not
  evaluate a batch (resend it), or when the service shuts down; RESOURCE_EXHAUSTED at ``max_streams`` streams. The
  batches acknowledged before an error stay applied.
- GetPosition: INVALID_ARGUMENT naming ``entity_id``; NOT_FOUND when the entity is not in the index.
- FindNearbyEntities: INVALID_ARGUMENT naming ``center``, ``center.lat_deg``, ``center.lng_deg``, ``radius_m`` (not
  1 to 50,000) or ``limit`` (not 1 to 100).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on, and
so does the expiry sweep (an error in one sweep is logged, the next runs). Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from casemesh.proximity.v1 import geofence_pb2, geofence_pb2_grpc
from casemesh.proximity.v1 import tracker_pb2 as pb
from casemesh.proximity.v1 import tracker_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .entities import EntityIndex
from .forwarding import GeofenceForwarder
from .settings import POSITION_STREAM_SLOTS, TrackerSettings
from .streams import NAME, PositionStreams, StreamEnded

log = logging.getLogger("casemesh.proximity.tracker")

GEOFENCE = "proximity-geofence"
FULL_NAME = pb.DESCRIPTOR.services_by_name["TrackerService"].full_name
UNARY_SLOTS = 256


class TrackerServicer(pb_grpc.TrackerServiceServicer):
    """Validates each request and calls :class:`~.streams.PositionStreams` and :class:`~.entities.EntityIndex`."""

    def __init__(self, streams: PositionStreams) -> None:
        self._streams = streams
        self._entities = streams.entities

    async def StreamPositions(self, request_iterator: AsyncIterator[pb.StreamPositionsRequest],
                              context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamPositionsResponse]:
        try:
            async with contextlib.aclosing(self._streams.serve(request_iterator)) as acknowledgements:
                async for acknowledgement in acknowledgements:
                    yield acknowledgement
        except StreamEnded as ended:
            await context.abort(ended.code, str(ended))

    async def GetPosition(self, request: pb.GetPositionRequest,
                          context: grpc.aio.ServicerContext) -> pb.GetPositionResponse:
        return pb.GetPositionResponse(position=self._entities.position(validation.entity_id(request)))

    async def FindNearbyEntities(self, request: pb.FindNearbyEntitiesRequest,
                                 context: grpc.aio.ServicerContext) -> pb.FindNearbyEntitiesResponse:
        found = await self._entities.nearby(validation.nearby(request))
        return pb.FindNearbyEntitiesResponse(
            entities=[pb.NearbyEntity(position=entry.payload.to_proto(), distance_m=distance_m)
                      for entry, distance_m in found.hits],
            cells_searched=found.cells_searched)


def evaluate_call(stub: geofence_pb2_grpc.GeofenceServiceStub):
    """:data:`~.forwarding.Call` over ``stub``: EvaluatePositions with an explicit ``timeout`` (seconds)."""

    async def call(request: geofence_pb2.EvaluatePositionsRequest,
                   timeout_s: float) -> geofence_pb2.EvaluatePositionsResponse:
        return await stub.EvaluatePositions(request, timeout=timeout_s)

    return call


class TrackerComponent:
    """The servicer over the streams and the index, the expiry sweep (every ``sweep_interval_s``), and the stub to
    proximity-geofence."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, TrackerSettings)
        forwarder = GeofenceForwarder(
            evaluate_call(geofence_pb2_grpc.GeofenceServiceStub(context.channel(GEOFENCE))),
            self.settings.geofence_timeout_ms / 1000, self.settings.geofence_retry_budget_ms / 1000)
        self.entities = EntityIndex(self.settings)
        self.streams = PositionStreams(self.settings, self.entities, forwarder)
        self.servicer = TrackerServicer(self.streams)
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_TrackerServiceServicer_to_server(self.servicer, server)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.entities.expire()
            except Exception:  # noqa: BLE001 - one failed sweep must not end expiry; the next one retries
                log.exception("%s: the expiry sweep failed", NAME)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{NAME}-expiry")

    async def stop(self) -> None:
        """Stop sweeping; end every stream UNAVAILABLE once its current batch is acknowledged (the geofence still
        serves: dependents stop first)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.streams.stop()


async def build(context: RuntimeContext) -> TrackerComponent:
    return TrackerComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(GEOFENCE,), build=build, settings_model=TrackerSettings,
    access=Access(public={"StreamPositions", "GetPosition", "FindNearbyEntities"}),
    # A gateway's StreamPositions lasts as long as the gateway: their own slots, not the unary ones.
    default_limits={FULL_NAME: POSITION_STREAM_SLOTS + UNARY_SLOTS,
                    f"{FULL_NAME}/StreamPositions": POSITION_STREAM_SLOTS},
)
