"""``casemesh.rides.v1.TripService`` (topology name ``rides-trips``): every ride and its trip state machine.

The seeds' "PostgreSQL (Trips)" and the accept of seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt, "Uber Ride Matching", Ride Matching
Algorithm, ``acceptRide``: "Atomic check and set" with Redis ``SET NX``):
:meth:`Trips.assign` is a compare-and-set REQUESTED → MATCHED, serialised per
ride by an asyncio lock and per driver by the store's claim of the driver's
active ride (:class:`.store.RideStore`), written to disk (fsync) before it
answers. However many drivers accept at once, one wins and the others get
ABORTED; a driver never holds two active rides (the partial unique indexes of
the SQLite file say so too). Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt,
"Ride-Sharing (like Uber)") and seed 001 #02 (shared/seeds/001_58dfc580020147d2.txt,
"Ride-Sharing ... real-time tracking"): WatchRide forwards the assigned
driver's positions to the rider.

RPCs and status codes (protos/casemesh/rides/v1/trips.proto):

- RequestRide (public, rider app): INVALID_ARGUMENT naming ``rider_id``,
  ``quote_id`` or ``client_request_id``; a retry (same rider and
  ``client_request_id``) returns the stored ride; FAILED_PRECONDITION when the
  rider has an open ride; then PricingService.RedeemQuote: its NOT_FOUND,
  PERMISSION_DENIED and FAILED_PRECONDITION passed through, anything else
  UNAVAILABLE (DEADLINE_EXCEEDED when it ran out of time); the ride is stored
  REQUESTED (UNAVAILABLE when it cannot be written), then
  DispatchService.StartMatching is called best effort (a failure is logged and
  counted; dispatch's sweep of ListOpenRides finds the ride). The ride id is
  ``ride-`` and 26 characters of base32 of HMAC-SHA-256 of (rider_id,
  client_request_id) under a key kept in the data folder (``ride-id.key``): a
  retry after a failed write redeems the quote again for the same ride id,
  which pricing accepts, and nobody without the key can derive a ride id.
- GetRide (public): INVALID_ARGUMENT naming ``ride_id``; NOT_FOUND.
- WatchRide (public): INVALID_ARGUMENT naming ``ride_id`` or ``rider_id``;
  NOT_FOUND; PERMISSION_DENIED for another rider's ride; RESOURCE_EXHAUSTED
  beyond ``max_watchers``; UNAVAILABLE when the service shuts down. The ride
  first, then every change of state (all of them, in order), and while a
  driver holds the ride, its positions from LocationService.TrackDriver (the
  newest only, for a slow watcher); ends OK after a COMPLETED or CANCELLED
  ride.
- CancelRide (public): INVALID_ARGUMENT naming ``ride_id`` or ``rider_id``;
  NOT_FOUND; PERMISSION_DENIED; FAILED_PRECONDITION from IN_PROGRESS or
  COMPLETED; a cancelled ride is returned again; UNAVAILABLE when not written.
- UpdateTrip (public, driver app): INVALID_ARGUMENT naming ``ride_id``,
  ``driver_id`` or ``event``; NOT_FOUND; PERMISSION_DENIED when the ride is not
  the driver's; FAILED_PRECONDITION naming the event and the state; the event
  that led to the present state returns the ride; UNAVAILABLE when not written.
- GetDriverRide (public): INVALID_ARGUMENT naming ``driver_id``; NOT_FOUND.
- AssignDriver (internal: rides-dispatch): INVALID_ARGUMENT naming ``ride_id``
  or ``driver_id``; NOT_FOUND; ABORTED "ride R was accepted by another driver"
  (no other driver's id is told); FAILED_PRECONDITION when the ride was
  cancelled or the driver holds another active ride; the ride's own driver
  again returns it; UNAVAILABLE when not written.
- ListOpenRides (internal: rides-dispatch): INVALID_ARGUMENT naming ``limit``.
- ReleaseRide (internal: rides-dispatch): INVALID_ARGUMENT naming ``ride_id``;
  NOT_FOUND; REQUESTED → CANCELLED (NO_DRIVER), any other ride returned
  unchanged; UNAVAILABLE when not written.

A crash inside one request ends that request (UNKNOWN, logged by the
runtime's interceptor); the server goes on. Settings:
:class:`.settings.TripsSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import grpc

from casemesh.rides.v1 import (
    dispatch_pb2,
    dispatch_pb2_grpc,
    location_pb2,
    location_pb2_grpc,
    pricing_pb2,
    pricing_pb2_grpc,
    rides_pb2,
    trips_pb2,
    trips_pb2_grpc,
)

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from ...runtime.keyed_locks import KeyedLocks
from ..contract import MAX_OPEN_RIDES_LIMIT
from ..validation import required_id
from ..location.following import Following, TrackRetry
from . import metrics
from .machine import (
    ACTIVE,
    CANCELLED,
    MATCHED,
    REQUESTED,
    TERMINAL,
    TRIP_EVENTS,
    Event,
    TransitionRefused,
    decide,
    state_name,
)
from .settings import WATCH_STREAM_SLOTS, TripsSettings
from .store import DriverBusy, RiderBusy, RideRecord, RideStore, StoreUnavailable

log = logging.getLogger("casemesh.rides.trips")

NAME = "rides-trips"
PRICING = "rides-pricing"
DISPATCH = "rides-dispatch"
LOCATION = "rides-location"
FULL_NAME = trips_pb2.DESCRIPTOR.services_by_name["TripService"].full_name
UNARY_SLOTS = 256
RIDE_ID_PREFIX = "ride-"


def ride_id_for(key: bytes, rider_id: str, client_request_id: str) -> str:
    """``ride-`` and 26 characters of base32 (A-Z, 2-7) of HMAC-SHA-256(key, rider_id, client_request_id): 130 bits.

    The same request always gets the same id (a retry after a failed write redeems its quote for the same ride),
    and without the service's ``key`` nobody can work a ride id out from a rider's request id.
    """
    digest = hmac.new(key, f"{rider_id}\x00{client_request_id}".encode(), hashlib.sha256).digest()
    return RIDE_ID_PREFIX + base64.b32encode(digest).decode("ascii")[:26]


def load_id_key(path: Path) -> bytes:
    """The 32-byte ride-id key kept at ``path`` (``DATA_DIR/rides-trips/ride-id.key``, mode 0600), made on first use."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        key = secrets.token_bytes(32)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key)
            file.flush()
            os.fsync(file.fileno())
        return key


# -- the other services, as the domain sees them ----------------------------------------------------------------------

class Pricing(Protocol):
    """PricingService.RedeemQuote, errors already mapped (see :class:`PricingClient`)."""

    async def redeem(self, quote_id: str, rider_id: str, ride_id: str) -> pricing_pb2.Quote: ...


class Dispatch(Protocol):
    """DispatchService.StartMatching (any exception: not started)."""

    async def start_matching(self, ride: rides_pb2.Ride) -> None: ...


class Location(Protocol):
    """LocationService.TrackDriver as an async iterator of positions (any exception: the stream failed)."""

    def track(self, driver_id: str) -> AsyncIterator[rides_pb2.DriverPosition]: ...


class PricingClient:
    """:class:`Pricing` over the stub: NOT_FOUND, PERMISSION_DENIED and FAILED_PRECONDITION become the runtime's
    domain errors (passed through to the rider); anything else stays an ``AioRpcError`` (UNAVAILABLE, or
    DEADLINE_EXCEEDED). ``timeout_s`` per call."""

    _PASSED = {grpc.StatusCode.NOT_FOUND: NotFound, grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
               grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition}

    def __init__(self, stub: pricing_pb2_grpc.PricingServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def redeem(self, quote_id: str, rider_id: str, ride_id: str) -> pricing_pb2.Quote:
        try:
            response = await self._stub.RedeemQuote(pricing_pb2.RedeemQuoteRequest(
                quote_id=quote_id, rider_id=rider_id, ride_id=ride_id), timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            passed = self._PASSED.get(error.code())
            if passed is not None:
                raise passed(error.details() or error.code().name) from None
            raise
        return response.quote


class DispatchClient:
    """:class:`Dispatch` over the stub, ``timeout_s`` per call."""

    def __init__(self, stub: dispatch_pb2_grpc.DispatchServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def start_matching(self, ride: rides_pb2.Ride) -> None:
        await self._stub.StartMatching(dispatch_pb2.StartMatchingRequest(ride=ride), timeout=self._timeout_s)


#: Deadline of one TrackDriver stream (s): a ride's tracking outlives any unary deadline (the channel's default is
#: 500 ms); a stream that reaches it is reopened like one that failed.
TRACK_STREAM_TIMEOUT_S = 3_600.0


class LocationClient:
    """:class:`Location` over the stub (the TrackDriver call is cancelled when the iteration stops)."""

    def __init__(self, stub: location_pb2_grpc.LocationServiceStub) -> None:
        self._stub = stub

    async def track(self, driver_id: str) -> AsyncIterator[rides_pb2.DriverPosition]:
        call = self._stub.TrackDriver(location_pb2.TrackDriverRequest(driver_id=driver_id),
                                      timeout=TRACK_STREAM_TIMEOUT_S)
        try:
            async for response in call:
                yield response.position
        finally:
            call.cancel()


# -- watchers ---------------------------------------------------------------------------------------------------------

class WatchEnded(Exception):
    """A WatchRide stream must end UNAVAILABLE (the service shuts down)."""


class Watcher:
    """One WatchRide stream's pending updates: every ride change (a ride has at most five), and only the newest
    driver position (latest-value: a slow watcher does not grow a queue)."""

    __slots__ = ("changes", "position", "wake", "ended")

    def __init__(self) -> None:
        self.changes: deque[RideRecord] = deque()
        self.position: rides_pb2.DriverPosition | None = None
        self.wake = asyncio.Event()
        self.ended: str | None = None

    def changed(self, ride: RideRecord) -> None:
        self.changes.append(ride)
        self.wake.set()

    def moved(self, position: rides_pb2.DriverPosition) -> None:
        self.position = position
        self.wake.set()

    def end(self, reason: str) -> None:
        self.ended = reason
        self.wake.set()



# -- the domain -------------------------------------------------------------------------------------------------------

class Trips:
    """The trip service without gRPC: rides in ``store``, quotes from ``pricing``, matching by ``dispatch``, drivers'
    positions from ``location``. ``clock()`` is the time in seconds since the Unix epoch (injectable for tests).

    Errors are the runtime's domain errors (``services/runtime/errors.py``)
    and :class:`.store.StoreUnavailable` (UNAVAILABLE), as the module
    docstring lists per RPC.
    """

    def __init__(self, settings: TripsSettings, store: RideStore, pricing: Pricing, dispatch: Dispatch,
                 location: Location, clock: Callable[[], float] = time.time, id_key: bytes | None = None) -> None:
        self.settings = settings
        #: The key of :func:`ride_id_for` (random per instance unless given: the component keeps it on disk).
        self.id_key = id_key if id_key is not None else secrets.token_bytes(32)
        self.store = store
        store.on_change = self._changed
        self._pricing = pricing
        self._dispatch = dispatch
        self._location = location
        self._clock = clock
        self._ride_locks = KeyedLocks()
        self._rider_locks = KeyedLocks()
        self._feeds: dict[str, Following] = {}
        self._track_retry = TrackRetry(settings.track_retry_initial_ms / 1000, settings.track_retry_max_ms / 1000)
        self._watchers = 0
        self._closing = False
        self._dispatch_failing = False
        metrics.ACTIVE_RIDES.set(store.open_count)

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _get(self, ride_id: str) -> RideRecord:
        ride = await self.store.get(ride_id)
        if ride is None:
            raise NotFound(f"no ride {ride_id}")
        return ride

    async def _put(self, ride: RideRecord) -> RideRecord:
        try:
            await self.store.put(ride)
        except (DriverBusy, RiderBusy) as error:
            raise FailedPrecondition(str(error)) from None
        return ride

    @staticmethod
    def _decide(ride: RideRecord, event: Event) -> int | None:
        try:
            return decide(ride.state, event)
        except TransitionRefused as error:
            raise FailedPrecondition(f"ride {ride.ride_id}: {error}") from None

    # -- rider ------------------------------------------------------------------------------------------------------

    async def request(self, rider_id: str, quote_id: str, client_request_id: str) -> RideRecord:
        """Store a REQUESTED ride for the quote and hand it to dispatch; a retry returns the stored ride."""
        ride_id = ride_id_for(self.id_key, rider_id, client_request_id)
        async with self._rider_locks.hold(rider_id):
            stored = await self.store.get(ride_id)
            if stored is not None:
                return stored
            open_ride = self.store.open_ride_of_rider(rider_id)
            if open_ride is not None:
                raise FailedPrecondition(f"rider {rider_id} has an open ride already: {open_ride.ride_id} "
                                         f"({state_name(open_ride.state)})")
            quote = await self._pricing.redeem(quote_id, rider_id, ride_id)
            now = self._now_ms()
            ride = await self._put(RideRecord(
                ride_id=ride_id, rider_id=rider_id, client_request_id=client_request_id, quote_id=quote_id,
                pickup_lat_deg=quote.pickup.lat_deg, pickup_lng_deg=quote.pickup.lng_deg,
                dropoff_lat_deg=quote.dropoff.lat_deg, dropoff_lng_deg=quote.dropoff.lng_deg,
                fare_currency_code=quote.fare.currency_code, fare_amount_minor=quote.fare.amount_minor,
                surge_multiplier=quote.surge_multiplier, state=REQUESTED, driver_id="", requested_at_unix_ms=now,
                matched_at_unix_ms=0, updated_at_unix_ms=now, cancel_reason=rides_pb2.CANCEL_REASON_UNSPECIFIED))
        await self._start_matching(ride)
        return ride

    async def _start_matching(self, ride: RideRecord) -> None:
        """StartMatching, best effort: a failure is counted, and logged when calls start failing."""
        try:
            await self._dispatch.start_matching(ride.to_proto())
        except Exception as error:  # noqa: BLE001 - whatever went wrong, the ride is stored: dispatch's sweep finds it
            metrics.START_MATCHING_FAILURES.inc()
            if not self._dispatch_failing:
                self._dispatch_failing = True
                log.warning("%s: StartMatching failed (%s); rides are matched after dispatch's sweep until it "
                            "works again", NAME, error)
            return
        if self._dispatch_failing:
            self._dispatch_failing = False
            log.info("%s: StartMatching works again", NAME)

    async def get(self, ride_id: str) -> RideRecord:
        """The ride; :class:`NotFound`."""
        return await self._get(ride_id)

    async def cancel(self, ride_id: str, rider_id: str) -> RideRecord:
        """The rider cancels before pickup (CANCEL_REASON_RIDER); a cancelled ride is returned again."""
        async with self._ride_locks.hold(ride_id):
            ride = await self._get(ride_id)
            if ride.rider_id != rider_id:
                raise PermissionDenied(f"ride {ride_id} is not rider {rider_id}'s")
            if self._decide(ride, Event.CANCEL) is None:
                return ride
            return await self._put(replace(ride, state=CANCELLED, cancel_reason=rides_pb2.CANCEL_REASON_RIDER,
                                           updated_at_unix_ms=self._now_ms()))

    async def watch(self, ride_id: str, rider_id: str) -> AsyncIterator[RideRecord | rides_pb2.DriverPosition]:
        """The ride, then each change of it, and its driver's positions while it holds the ride; returns after a
        finished ride. :class:`WatchEnded` on shutdown."""
        ride = await self._get(ride_id)
        if ride.rider_id != rider_id:
            raise PermissionDenied(f"ride {ride_id} is not rider {rider_id}'s")
        if self._closing:
            raise WatchEnded(f"{NAME} is shutting down; watch again")
        if self._watchers >= self.settings.max_watchers:
            raise ResourceExhausted(f"{NAME} holds {self.settings.max_watchers:,} watchers already")
        ride = self.store.cached(ride_id) or ride  # no await from here to the subscription: no change is missed
        watcher = Watcher()
        feed = self._feeds.get(ride_id)
        if feed is None:
            feed = self._feeds[ride_id] = Following()
        feed.watchers.add(watcher)
        self._watchers += 1
        metrics.WATCHERS.set(self._watchers)
        try:
            self._follow(feed, ride)
            yield ride
            while ride.state not in TERMINAL:
                await watcher.wake.wait()
                watcher.wake.clear()
                if watcher.ended is not None:
                    raise WatchEnded(watcher.ended)
                while watcher.changes:
                    ride = watcher.changes.popleft()
                    yield ride
                    if ride.state in TERMINAL:
                        return
                if watcher.position is not None:
                    position, watcher.position = watcher.position, None
                    yield position
        finally:
            feed.watchers.discard(watcher)
            self._watchers -= 1
            metrics.WATCHERS.set(self._watchers)
            if not feed.watchers:
                feed.stop()
                if self._feeds.get(ride_id) is feed:
                    del self._feeds[ride_id]

    # -- driver -----------------------------------------------------------------------------------------------------

    async def update(self, ride_id: str, driver_id: str, event: Event) -> RideRecord:
        """The driver's DEPART, PICK_UP or DROP_OFF; the event that led to the present state returns the ride."""
        async with self._ride_locks.hold(ride_id):
            ride = await self._get(ride_id)
            if ride.driver_id != driver_id:
                raise PermissionDenied(f"ride {ride_id} is not driver {driver_id}'s")
            target = self._decide(ride, event)
            if target is None:
                return ride
            return await self._put(replace(ride, state=target, updated_at_unix_ms=self._now_ms()))

    def driver_ride(self, driver_id: str) -> RideRecord:
        """The driver's active ride; :class:`NotFound` when it has none."""
        ride = self.store.active_ride_of_driver(driver_id)
        if ride is None:
            raise NotFound(f"driver {driver_id} has no active ride")
        return ride

    # -- dispatch ---------------------------------------------------------------------------------------------------

    async def assign(self, ride_id: str, driver_id: str) -> RideRecord:
        """The atomic accept: REQUESTED → MATCHED with ``driver_id``, on disk before it returns.

        The ride's own driver again: the ride (a retry). :class:`Aborted`
        when another driver won it; :class:`FailedPrecondition` when it was
        cancelled or the driver holds another active ride.
        """
        outcome = "refused"
        try:
            async with self._ride_locks.hold(ride_id):
                ride = await self._get(ride_id)
                if ride.state == CANCELLED:
                    raise FailedPrecondition(f"ride {ride_id} was cancelled")
                if self._decide(ride, Event.ASSIGN) is None:
                    if ride.driver_id != driver_id:
                        outcome = "lost"
                        raise Aborted(f"ride {ride_id} was accepted by another driver")
                    outcome = "retry"
                    return ride
                now = self._now_ms()
                ride = await self._put(replace(ride, state=MATCHED, driver_id=driver_id, matched_at_unix_ms=now,
                                               updated_at_unix_ms=now))
                outcome = "won"
                metrics.MATCH_SECONDS.observe(max(0, now - ride.requested_at_unix_ms) / 1000)
                return ride
        finally:
            metrics.assign(outcome)

    def open_rides(self, limit: int) -> list[RideRecord]:
        """At most ``limit`` REQUESTED rides, oldest first."""
        return self.store.requested(limit)

    async def release(self, ride_id: str) -> RideRecord:
        """REQUESTED → CANCELLED (CANCEL_REASON_NO_DRIVER); a ride in any other state is returned unchanged."""
        async with self._ride_locks.hold(ride_id):
            ride = await self._get(ride_id)
            if self._decide(ride, Event.RELEASE) is None:
                return ride
            return await self._put(replace(ride, state=CANCELLED, cancel_reason=rides_pb2.CANCEL_REASON_NO_DRIVER,
                                           updated_at_unix_ms=self._now_ms()))

    # -- notifications ----------------------------------------------------------------------------------------------

    def _changed(self, ride: RideRecord) -> None:
        """A change is on disk: count it, tell the ride's watchers, follow (or stop following) its driver."""
        metrics.moved(ride.state)
        metrics.ACTIVE_RIDES.set(self.store.open_count)
        feed = self._feeds.get(ride.ride_id)
        if feed is not None:
            for watcher in feed.watchers:
                watcher.changed(ride)
            self._follow(feed, ride)

    def _follow(self, feed: Following, ride: RideRecord) -> None:
        """Track the ride's driver while it holds the ride (MATCHED, EN_ROUTE, IN_PROGRESS) and someone watches."""
        wanted = ride.driver_id if ride.state in ACTIVE and feed.watchers and not self._closing else ""
        feed.follow(wanted, self._location.track, self._track_retry, metrics.TRACKING_ERRORS, NAME)

    async def close(self) -> None:
        """End every WatchRide UNAVAILABLE, stop tracking, close the store (queued writes finish first)."""
        self._closing = True
        tasks = []
        for feed in self._feeds.values():
            for watcher in feed.watchers:
                watcher.end(f"{NAME} is shutting down; watch again")
            if feed.tracking is not None:
                tasks.append(feed.tracking)
            feed.stop()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.store.close()


# -- gRPC -------------------------------------------------------------------------------------------------------------

def _unavailable_on_store_errors(method):
    """A unary handler that answers UNAVAILABLE when the ride store cannot be read or written."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class TripServicer(trips_pb2_grpc.TripServiceServicer):
    """Validates each request and calls :class:`Trips`."""

    def __init__(self, trips: Trips) -> None:
        self._trips = trips

    @_unavailable_on_store_errors
    async def RequestRide(self, request: trips_pb2.RequestRideRequest,
                          context: grpc.aio.ServicerContext) -> trips_pb2.RequestRideResponse:
        rider_id = required_id("rider_id", request.rider_id)
        quote_id = required_id("quote_id", request.quote_id)
        client_request_id = required_id("client_request_id", request.client_request_id)
        ride = await self._trips.request(rider_id, quote_id, client_request_id)
        return trips_pb2.RequestRideResponse(ride=ride.to_proto())

    @_unavailable_on_store_errors
    async def GetRide(self, request: trips_pb2.GetRideRequest,
                      context: grpc.aio.ServicerContext) -> trips_pb2.GetRideResponse:
        ride = await self._trips.get(required_id("ride_id", request.ride_id))
        return trips_pb2.GetRideResponse(ride=ride.to_proto())

    async def WatchRide(self, request: trips_pb2.WatchRideRequest,
                        context: grpc.aio.ServicerContext) -> AsyncIterator[trips_pb2.WatchRideResponse]:
        ride_id = required_id("ride_id", request.ride_id)
        rider_id = required_id("rider_id", request.rider_id)
        try:
            async with contextlib.aclosing(self._trips.watch(ride_id, rider_id)) as updates:
                async for update in updates:
                    if isinstance(update, RideRecord):
                        yield trips_pb2.WatchRideResponse(ride=update.to_proto())
                    else:
                        yield trips_pb2.WatchRideResponse(driver_position=update)
        except (WatchEnded, StoreUnavailable) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    @_unavailable_on_store_errors
    async def CancelRide(self, request: trips_pb2.CancelRideRequest,
                         context: grpc.aio.ServicerContext) -> trips_pb2.CancelRideResponse:
        ride_id = required_id("ride_id", request.ride_id)
        rider_id = required_id("rider_id", request.rider_id)
        ride = await self._trips.cancel(ride_id, rider_id)
        return trips_pb2.CancelRideResponse(ride=ride.to_proto())

    @_unavailable_on_store_errors
    async def UpdateTrip(self, request: trips_pb2.UpdateTripRequest,
                         context: grpc.aio.ServicerContext) -> trips_pb2.UpdateTripResponse:
        ride_id = required_id("ride_id", request.ride_id)
        driver_id = required_id("driver_id", request.driver_id)
        event = TRIP_EVENTS.get(request.event)
        if event is None:
            raise InvalidArgument("event", f"{request.event} is not DEPART, PICK_UP or DROP_OFF")
        ride = await self._trips.update(ride_id, driver_id, event)
        return trips_pb2.UpdateTripResponse(ride=ride.to_proto())

    async def GetDriverRide(self, request: trips_pb2.GetDriverRideRequest,
                            context: grpc.aio.ServicerContext) -> trips_pb2.GetDriverRideResponse:
        ride = self._trips.driver_ride(required_id("driver_id", request.driver_id))
        return trips_pb2.GetDriverRideResponse(ride=ride.to_proto())

    @_unavailable_on_store_errors
    async def AssignDriver(self, request: trips_pb2.AssignDriverRequest,
                           context: grpc.aio.ServicerContext) -> trips_pb2.AssignDriverResponse:
        try:
            ride_id = required_id("ride_id", request.ride_id)
            driver_id = required_id("driver_id", request.driver_id)
        except InvalidArgument:
            metrics.assign("refused")
            raise
        ride = await self._trips.assign(ride_id, driver_id)
        return trips_pb2.AssignDriverResponse(ride=ride.to_proto())

    async def ListOpenRides(self, request: trips_pb2.ListOpenRidesRequest,
                            context: grpc.aio.ServicerContext) -> trips_pb2.ListOpenRidesResponse:
        if not 1 <= request.limit <= MAX_OPEN_RIDES_LIMIT:
            raise InvalidArgument("limit", f"{request.limit} is not 1 to {MAX_OPEN_RIDES_LIMIT:,}")
        rides = self._trips.open_rides(request.limit)
        return trips_pb2.ListOpenRidesResponse(rides=[ride.to_proto() for ride in rides])

    @_unavailable_on_store_errors
    async def ReleaseRide(self, request: trips_pb2.ReleaseRideRequest,
                          context: grpc.aio.ServicerContext) -> trips_pb2.ReleaseRideResponse:
        ride = await self._trips.release(required_id("ride_id", request.ride_id))
        return trips_pb2.ReleaseRideResponse(ride=ride.to_proto())


class TripsComponent:
    """The servicer over :class:`Trips`, the ride store (``DATA_DIR/rides-trips/rides.sqlite``) and the stubs to
    rides-pricing, rides-dispatch and rides-location."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, TripsSettings)
        store = RideStore(context.data_dir(NAME) / "rides.sqlite", settings.terminal_cache_size)
        pricing = PricingClient(pricing_pb2_grpc.PricingServiceStub(context.channel(PRICING)),
                                settings.pricing_timeout_ms / 1000)
        dispatch = DispatchClient(dispatch_pb2_grpc.DispatchServiceStub(context.channel(DISPATCH)),
                                  settings.dispatch_timeout_ms / 1000)
        location = LocationClient(location_pb2_grpc.LocationServiceStub(context.channel(LOCATION)))
        self.trips = Trips(settings, store, pricing, dispatch, location,
                           id_key=load_id_key(context.data_dir(NAME) / "ride-id.key"))
        self.servicer = TripServicer(self.trips)

    def register(self, server: grpc.aio.Server) -> None:
        trips_pb2_grpc.add_TripServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        if self.trips.store.open_count:
            log.info("%s: %d open rides loaded", NAME, self.trips.store.open_count)

    async def stop(self) -> None:
        await self.trips.close()


async def build(context: RuntimeContext) -> TripsComponent:
    return TripsComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(PRICING, DISPATCH, LOCATION), build=build,
    settings_model=TripsSettings,
    # Rides are stored and answered without dispatch (its sweep finds them) and without tracking (state changes
    # still flow); only RequestRide needs pricing.
    optional_dependencies=(DISPATCH, LOCATION),
    access=Access(public={"RequestRide", "GetRide", "WatchRide", "CancelRide", "UpdateTrip", "GetDriverRide"},
                  internal={"AssignDriver": (DISPATCH,), "ListOpenRides": (DISPATCH,), "ReleaseRide": (DISPATCH,)}),
    # WatchRide streams last as long as a ride: their own slots, not the 256 of unary work.
    default_limits={FULL_NAME: WATCH_STREAM_SLOTS + UNARY_SLOTS, f"{FULL_NAME}/WatchRide": WATCH_STREAM_SLOTS},
)
