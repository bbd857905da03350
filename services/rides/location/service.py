"""``casemesh.rides.v1.LocationService`` (topology name ``rides-location``): where every online driver is.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Geospatial Indexing (line 662); seed 000
(shared/seeds/000_69ff90d97cf45f9b.txt line 432), "Location Service"; seed 001 #29 (line 51), H3 radius search and
real-time location updates. The mechanism is in :mod:`.drivers` (connections, expiry) over
:mod:`services.geo.index` (the sharded H3 ring-walk index) and :mod:`.feeds` (latest-value tracking). A/B knob:
``index_resolution`` (:mod:`.settings`).

Status codes, as protos/casemesh/rides/v1/location.proto says:

- ReportLocations (public: the driver app): INVALID_ARGUMENT naming ``driver_id`` (missing, malformed, or not the
  stream's first frame's), ``point``, ``point.lat_deg``, ``point.lng_deg``, ``status`` or ``heading_deg`` (the frames
  before it stay applied); ABORTED when another stream of the driver took over; RESOURCE_EXHAUSTED at
  ``max_connections`` streams; UNAVAILABLE when the service shuts down (reconnect); OK with ``positions_received``
  on half-close.
- FindNearbyDrivers (internal: :data:`NEARBY_CALLERS`): INVALID_ARGUMENT naming ``point``, ``point.lat_deg``,
  ``point.lng_deg``, ``radius_m``, ``limit``, ``exclude_driver_ids`` or ``exclude_driver_ids[i]``.
- CountAvailableDrivers (internal: :data:`COUNT_CALLERS`): INVALID_ARGUMENT naming ``resolution``.
- GetDriverPosition (public): INVALID_ARGUMENT naming ``driver_id``; NOT_FOUND when the driver is not online.
- TrackDriver (public: the rider's app, and rides-trips): INVALID_ARGUMENT naming ``driver_id``; NOT_FOUND when the
  driver is not online; RESOURCE_EXHAUSTED at ``max_watchers`` streams; OK when the driver goes OFFLINE (after that
  position) or expires; UNAVAILABLE when the service shuts down.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on, and
so does the expiry sweep (an error in one sweep is logged, the next runs). Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import grpc

from casemesh.rides.v1 import location_pb2 as pb
from casemesh.rides.v1 import location_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .. import validation as check
from . import validation
from .drivers import DriverLocations, StreamEnded
from .feeds import TrackingStopped
from .settings import REPORT_STREAM_SLOTS, TRACK_STREAM_SLOTS, LocationSettings

log = logging.getLogger("casemesh.rides.location")

NAME = "rides-location"
FULL_NAME = pb.DESCRIPTOR.services_by_name["LocationService"].full_name
#: Who may call FindNearbyDrivers: the ride and the food-delivery dispatchers (couriers are drivers of this index).
NEARBY_CALLERS: tuple[str, ...] = ("rides-dispatch", "food-dispatch")
#: Who may call CountAvailableDrivers (the supply side of surge pricing, rides' and food deliveries').
COUNT_CALLERS: tuple[str, ...] = ("rides-pricing", "food-orders")
UNARY_SLOTS = 256


class LocationServicer(pb_grpc.LocationServiceServicer):
    """Validates each request and calls :class:`~.drivers.DriverLocations`."""

    def __init__(self, locations: DriverLocations) -> None:
        self._locations = locations

    async def ReportLocations(self, request_iterator: AsyncIterator[pb.ReportLocationsRequest],
                              context: grpc.aio.ServicerContext) -> pb.ReportLocationsResponse:
        try:
            received = await self._locations.serve(request_iterator)
        except StreamEnded as ended:
            await context.abort(ended.code, str(ended))
        return pb.ReportLocationsResponse(positions_received=received)

    async def FindNearbyDrivers(self, request: pb.FindNearbyDriversRequest,
                                context: grpc.aio.ServicerContext) -> pb.FindNearbyDriversResponse:
        found = await self._locations.nearby(validation.nearby(request))
        return pb.FindNearbyDriversResponse(
            drivers=[pb.NearbyDriver(position=entry.payload, distance_m=distance_m) for entry, distance_m in found.hits],
            cells_searched=found.cells_searched)

    async def CountAvailableDrivers(self, request: pb.CountAvailableDriversRequest,
                                    context: grpc.aio.ServicerContext) -> pb.CountAvailableDriversResponse:
        resolution = check.resolution("resolution", request.resolution)
        counts = await self._locations.available_counts(resolution)
        return pb.CountAvailableDriversResponse(cells=[pb.CellCount(cell=cell, drivers=n) for cell, n in counts.items()],
                                                total_drivers=sum(counts.values()))

    async def GetDriverPosition(self, request: pb.GetDriverPositionRequest,
                                context: grpc.aio.ServicerContext) -> pb.GetDriverPositionResponse:
        driver_id = check.required_id("driver_id", request.driver_id)
        return pb.GetDriverPositionResponse(position=self._locations.position(driver_id))

    async def TrackDriver(self, request: pb.TrackDriverRequest,
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.TrackDriverResponse]:
        driver_id = check.required_id("driver_id", request.driver_id)
        try:
            async with contextlib.aclosing(self._locations.track(driver_id)) as positions:
                async for position in positions:
                    yield pb.TrackDriverResponse(position=position)
        except TrackingStopped as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


class LocationComponent:
    """The servicer over :class:`~.drivers.DriverLocations` and the expiry sweep (every ``sweep_interval_s``)."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, LocationSettings)
        self.locations = DriverLocations(self.settings)
        self.servicer = LocationServicer(self.locations)
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_LocationServiceServicer_to_server(self.servicer, server)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval_s)
            try:
                await self.locations.expire()
            except Exception:  # noqa: BLE001 - one failed sweep must not end expiry; the next one retries
                log.exception("%s: the expiry sweep failed", NAME)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name=f"{NAME}-expiry")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.locations.stop()


async def build(context: RuntimeContext) -> LocationComponent:
    return LocationComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=LocationSettings,
    access=Access(public={"ReportLocations", "GetDriverPosition", "TrackDriver"},
                  internal={"FindNearbyDrivers": NEARBY_CALLERS, "CountAvailableDrivers": COUNT_CALLERS}),
    # A driver's ReportLocations lasts a shift and a rider's TrackDriver a pickup: their own slots, not the unary ones.
    default_limits={FULL_NAME: REPORT_STREAM_SLOTS + TRACK_STREAM_SLOTS + UNARY_SLOTS,
                    f"{FULL_NAME}/ReportLocations": REPORT_STREAM_SLOTS,
                    f"{FULL_NAME}/TrackDriver": TRACK_STREAM_SLOTS},
)
