"""``casemesh.rides.v1.DispatchService`` (topology name ``rides-dispatch``): matching rides with drivers in phases.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching",
Ride Matching Algorithm: the mechanism is :mod:`.matcher` (phases of offers
to the nearest ``offer_batch_size`` free drivers, the search radius widened
when nobody is found, release after ``max_phases``), the drivers' streams
:mod:`.feeds`, the pickup ETA :mod:`.eta`. The accept is
TripService.AssignDriver's atomic compare-and-set: dispatch holds offers in
memory only, and after a restart its sweep of ListOpenRides offers every
REQUESTED ride again.

RPCs and status codes (protos/casemesh/rides/v1/dispatch.proto):

- StartMatching (internal: rides-trips): INVALID_ARGUMENT naming ``ride``,
  ``ride.ride_id`` or ``ride.pickup`` (``ride.pickup.lat_deg`` /
  ``ride.pickup.lng_deg`` out of range); RESOURCE_EXHAUSTED when
  ``max_rides_matching`` rides are being matched; a ride being matched
  already: OK, nothing done.
- ReceiveOffers (public, driver app): INVALID_ARGUMENT naming ``driver_id``;
  RESOURCE_EXHAUSTED beyond ``max_feeds``; ABORTED when another
  ReceiveOffers of the driver took over; UNAVAILABLE when the service shuts
  down. The driver's outstanding offer, if any, is sent first (a reconnect).
- AcceptOffer (public): INVALID_ARGUMENT naming ``driver_id`` or
  ``offer_id``; NOT_FOUND for an unknown offer; PERMISSION_DENIED for another
  driver's; FAILED_PRECONDITION when the offer expired, was declined or
  withdrawn, or the trip service refused (the ride cancelled, the driver
  holds another ride); ABORTED when another driver won the ride (the late
  accept: its offer withdrawn "won by another driver", or AssignDriver's
  ABORTED); UNAVAILABLE (DEADLINE_EXCEEDED) when the trip service cannot be
  reached. An accepted offer accepted again returns the ride.
- DeclineOffer (public): INVALID_ARGUMENT naming ``driver_id`` or
  ``offer_id``; NOT_FOUND; PERMISSION_DENIED; FAILED_PRECONDITION for an
  accepted offer; declining again (or an offer no longer standing) is OK.

A crash inside one request ends that request (UNKNOWN, logged by the
runtime's interceptor); a crash of one ride's matching task is logged and
the sweep starts the ride again; the server goes on. Settings:
:class:`.settings.DispatchSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import grpc

from casemesh.rides.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    location_pb2,
    location_pb2_grpc,
    rides_pb2,
    trips_pb2,
    trips_pb2_grpc,
)

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from ..validation import latlng, point, required_id
from .feeds import FeedEnded, OfferFeeds
from .matcher import Matcher
from .settings import FEED_STREAM_SLOTS, DispatchSettings


NAME = "rides-dispatch"
LOCATION = "rides-location"
TRIPS = "rides-trips"
FULL_NAME = dispatch_pb2.DESCRIPTOR.services_by_name["DispatchService"].full_name
UNARY_SLOTS = 256


class LocationClient:
    """:class:`~.matcher.NearbyDrivers` over LocationService.FindNearbyDrivers, ``timeout_s`` per call."""

    def __init__(self, stub: location_pb2_grpc.LocationServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def find(self, lat_deg: float, lng_deg: float, radius_m: float, limit: int,
                   exclude: list[str]) -> list[location_pb2.NearbyDriver]:
        response = await self._stub.FindNearbyDrivers(location_pb2.FindNearbyDriversRequest(
            point=latlng(lat_deg, lng_deg), radius_m=radius_m, limit=limit, exclude_driver_ids=exclude),
            timeout=self._timeout_s)
        return list(response.drivers)


class TripsClient:
    """:class:`~.matcher.TripsApi` over TripService: ABORTED, FAILED_PRECONDITION and NOT_FOUND become the runtime's
    domain errors (passed through to the driver); anything else stays an ``AioRpcError`` (UNAVAILABLE, or
    DEADLINE_EXCEEDED). ``timeout_s`` per call."""

    _PASSED = {grpc.StatusCode.ABORTED: Aborted, grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
               grpc.StatusCode.NOT_FOUND: NotFound}

    def __init__(self, stub: trips_pb2_grpc.TripServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            passed = self._PASSED.get(error.code())
            if passed is not None:
                raise passed(error.details() or error.code().name) from None
            raise

    async def assign(self, ride_id: str, driver_id: str) -> rides_pb2.Ride:
        return (await self._call(self._stub.AssignDriver,
                                 trips_pb2.AssignDriverRequest(ride_id=ride_id, driver_id=driver_id))).ride

    async def get(self, ride_id: str) -> rides_pb2.Ride:
        return (await self._call(self._stub.GetRide, trips_pb2.GetRideRequest(ride_id=ride_id))).ride

    async def release(self, ride_id: str) -> rides_pb2.Ride:
        return (await self._call(self._stub.ReleaseRide, trips_pb2.ReleaseRideRequest(ride_id=ride_id))).ride

    async def open_rides(self, limit: int) -> list[rides_pb2.Ride]:
        return list((await self._call(self._stub.ListOpenRides, trips_pb2.ListOpenRidesRequest(limit=limit))).rides)


class DispatchServicer(dispatch_pb2_grpc.DispatchServiceServicer):
    """Validates each request and calls the :class:`~.matcher.Matcher` (and its feeds)."""

    def __init__(self, matcher: Matcher) -> None:
        self._matcher = matcher

    async def StartMatching(self, request: dispatch_pb2.StartMatchingRequest,
                            context: grpc.aio.ServicerContext) -> dispatch_pb2.StartMatchingResponse:
        if not request.HasField("ride"):
            raise InvalidArgument("ride", "is required (the ride as the trip service stored it)")
        ride = request.ride
        required_id("ride.ride_id", ride.ride_id)
        point("ride.pickup", ride.pickup, ride.HasField("pickup"))
        self._matcher.start(ride)
        return dispatch_pb2.StartMatchingResponse()

    async def ReceiveOffers(self, request: dispatch_pb2.ReceiveOffersRequest,
                            context: grpc.aio.ServicerContext) -> AsyncIterator[dispatch_pb2.ReceiveOffersResponse]:
        driver_id = required_id("driver_id", request.driver_id)
        feeds = self._matcher.feeds
        feed = feeds.open(driver_id)
        try:
            outstanding = self._matcher.outstanding_offer(driver_id)
            if outstanding is not None:
                feed.push(dispatch_pb2.ReceiveOffersResponse(offer=outstanding))
            while True:
                yield await feed.next()
        except FeedEnded as ended:
            await context.abort(ended.code, str(ended))
        finally:
            feeds.close(feed)

    async def AcceptOffer(self, request: dispatch_pb2.AcceptOfferRequest,
                          context: grpc.aio.ServicerContext) -> dispatch_pb2.AcceptOfferResponse:
        driver_id = required_id("driver_id", request.driver_id)
        offer_id = required_id("offer_id", request.offer_id)
        return dispatch_pb2.AcceptOfferResponse(ride=await self._matcher.accept(driver_id, offer_id))

    async def DeclineOffer(self, request: dispatch_pb2.DeclineOfferRequest,
                           context: grpc.aio.ServicerContext) -> dispatch_pb2.DeclineOfferResponse:
        driver_id = required_id("driver_id", request.driver_id)
        offer_id = required_id("offer_id", request.offer_id)
        self._matcher.decline(driver_id, offer_id)
        return dispatch_pb2.DeclineOfferResponse()


class DispatchComponent:
    """The servicer over the matcher, its sweep task, and the stubs to rides-location and rides-trips."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, DispatchSettings)
        location = LocationClient(location_pb2_grpc.LocationServiceStub(context.channel(LOCATION)),
                                  settings.location_timeout_ms / 1000)
        trips = TripsClient(trips_pb2_grpc.TripServiceStub(context.channel(TRIPS)), settings.trips_timeout_ms / 1000)
        self.matcher = Matcher(settings, location, trips, OfferFeeds(settings.max_feeds, settings.feed_queue_size))
        self.servicer = DispatchServicer(self.matcher)
        self._sweeper: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        dispatch_pb2_grpc.add_DispatchServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self.matcher.run_sweeps(), name=f"{NAME}-sweep")

    async def stop(self) -> None:
        """Stop sweeping and matching; end every feed UNAVAILABLE (drivers reconnect to the next dispatch)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.matcher.close()
        self.matcher.feeds.end_all(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect")


async def build(context: RuntimeContext) -> DispatchComponent:
    return DispatchComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(LOCATION, TRIPS), build=build,
    settings_model=DispatchSettings,
    access=Access(public={"ReceiveOffers", "AcceptOffer", "DeclineOffer"}, internal={"StartMatching": (TRIPS,)}),
    # ReceiveOffers streams last a driver's shift: their own slots, not the 256 of unary work.
    default_limits={FULL_NAME: FEED_STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/ReceiveOffers": FEED_STREAM_SLOTS},
)
