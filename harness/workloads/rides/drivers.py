"""The driver population: online for the whole run, reporting positions, answering offers, driving rides.

Each driver of this load process (``state.drivers[index::count]`` with
``--workers``: :attr:`casemesh.harness.streams.Streams.share`) holds two
streams, each reconnected after 100 ms doubling to 2 s when it breaks (a
service restart), as the live broadcaster does:

- a LocationService.ReportLocations **client stream** carrying its position
  every ``ping_interval_s`` (seed 003 "Uber Ride Matching", shared/seeds/003
  line 636: "Location updates every 3-5 seconds"), with its status (AVAILABLE,
  or BUSY while it holds a ride), heading and ``sent_at_unix_ms``, and one at
  once when its status changes; the first report of each connection goes out
  at once, the next after a random part of the interval (spreading the
  population's reports over it). At the end of the run it reports OFFLINE and
  half-closes, so the next run's dispatch offers it nothing;
- a DispatchService.ReceiveOffers **server stream**: its offer feed.

Between rides it cruises by random-waypoint mobility (:mod:`.city`) at
``speed_kmh`` x ``time_scale``. On an offer it thinks (uniform
``think_min_s`` .. ``think_max_s``, real seconds), then accepts with
``accept_p``, declines with ``decline_p`` or else ignores it (it expires);
a driver already on a ride accepts with ``busy_accept_p`` (the trip service
must refuse: it holds another ride) and declines otherwise. A withdrawal
that arrives while it thinks ends the offer. An accept that wins: BUSY,
UpdateTrip DEPART, drive to the pickup, PICK_UP, drive to the dropoff,
DROP_OFF, AVAILABLE (a second ride won meanwhile is driven next). A trip
event refused FAILED_PRECONDITION because the rider cancelled ends the
ride; UNAVAILABLE and other transient codes are retried (the trip service
restarting). A late accept (ABORTED) or a refused one (FAILED_PRECONDITION)
is part of the game, not an error of the run.

The population's calls are its own (unrecorded per RPC); it records:

- ``offer``: one sample per offer, from its receipt to what became of it,
  by code: ``OK`` (accepted and won), ``ABORTED`` (accepted late: another
  driver won), ``FAILED_PRECONDITION`` (accepted, refused: the offer had
  lapsed or been withdrawn, or the driver holds a ride), another gRPC code
  when the accept failed otherwise (``NOT_FOUND`` after a dispatch
  restart), and ``DECLINED``, ``EXPIRED`` (ignored until it lapsed, or
  withdrawn as expired), ``WITHDRAWN`` (withdrawn while the driver thought:
  another driver won, the rider cancelled) and ``BUSY`` (declined by a
  driver on a ride). The share of offers DECLINED or EXPIRED is what
  ``offer_batch_size`` moves;
- ``accept``: each accepted offer's AcceptOffer, from the first request to the
  final answer (the trip service's durable compare-and-set included; up to 3
  attempts when an answer is lost, the 100 and 200 ms waits between them
  included), by the final code;
- ``single_assignment`` through :class:`~.invariants.Assignments`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import math
import random
import secrets
import time
from collections import Counter
from typing import Any

import grpc

from casemesh.common.v1 import geo_pb2
from casemesh.rides.v1 import dispatch_pb2, location_pb2, rides_pb2, trips_pb2

from .city import City, Leg, Point, leg
from .invariants import SINGLE_ASSIGNMENT, Assignments
from .seeding import DISPATCH, LOCATION, TRIPS, SeedParams, State

log = logging.getLogger("casemesh.workloads.rides")

OFFER = "offer"
ACCEPT = "accept"
#: ``offer`` codes besides the AcceptOffer status codes (module docstring).
DECLINED = "DECLINED"
EXPIRED = "EXPIRED"
WITHDRAWN = "WITHDRAWN"
BUSY = "BUSY"
OK = "OK"

#: The streams' deadline: longer than any run (they end when the driver goes offline, not by a deadline).
STREAM_TIMEOUT_S = 7 * 24 * 3600.0
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.0
#: Seconds an ignored offer waits past its ``expires_at`` for dispatch's withdrawal before counting as EXPIRED.
EXPIRY_GRACE_S = 1.0
#: AcceptOffer attempts when the answer is lost (UNAVAILABLE, DEADLINE_EXCEEDED): a retry of a won accept returns it.
ACCEPT_ATTEMPTS = 3
#: Codes after which a call is tried again: the service is restarting or overloaded, the request may not have applied.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
#: Codes that end a driver's stream for good (a bug of the workload or a refusal that retrying cannot change).
FATAL = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
                   grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED})
TERMINAL_STATES = frozenset({rides_pb2.RIDE_STATE_COMPLETED, rides_pb2.RIDE_STATE_CANCELLED})


def backoff_s(failures: int) -> float:
    """Pause before the next attempt after ``failures`` failures in a row: 100 ms doubling up to 2 s."""
    return min(RECONNECT_BASE_S * 2 ** min(max(failures, 1) - 1, 10), RECONNECT_MAX_S)


def latlng(point: Point) -> geo_pb2.LatLng:
    """A point as the contract's LatLng."""
    return geo_pb2.LatLng(lat_deg=point[0], lng_deg=point[1])


def choose_action(rng: random.Random, params: SeedParams, busy: bool) -> str:
    """What a driver does with an offer: ``accept``, ``decline``, ``ignore``, or ``busy`` (declined on a ride)."""
    u = rng.random()
    if busy:
        return "accept" if u < params.busy_accept_p else "busy"
    if u < params.accept_p:
        return "accept"
    return "decline" if u < params.accept_p + params.decline_p else "ignore"


class Driver:
    """One driver: its movement, its two streams, its offers and its rides (module docstring)."""

    def __init__(self, driver_id: str, fleet: Fleet, rng: random.Random):
        self.id = driver_id
        self.fleet = fleet
        self.params = fleet.params
        self.city: City = fleet.city
        self.rng = rng
        now = fleet.clock()
        start = self.city.uniform(rng)
        self.leg: Leg = leg(self.city, start, self.city.uniform(rng), now, self.params.speed_mps)
        #: Rides won and not yet over: the one being driven first.
        self.rides: collections.deque[rides_pb2.Ride] = collections.deque()
        self.offers: dict[str, asyncio.Future[str]] = {}
        self.wake = asyncio.Event()
        self.reports = 0
        self.report_sessions = 0
        self.feed_sessions = 0
        self.errors: Counter[str] = Counter()
        self.tasks: set[asyncio.Task] = set()
        self.trip_task: asyncio.Task | None = None
        self.feed_call: Any = None

    # movement -----------------------------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while the driver holds a ride."""
        return bool(self.rides)

    def position(self, now: float) -> Point:
        """Where the driver is at clock instant ``now``; a free driver past its waypoint heads for the next one."""
        while not self.busy and now >= self.leg.arrives_s:
            self.leg = leg(self.city, self.leg.end, self.city.uniform(self.rng), self.leg.arrives_s, self.params.speed_mps)
        return self.leg.position(now)

    def frame(self, status: int | None = None) -> location_pb2.ReportLocationsRequest:
        """A position report of now."""
        now = self.fleet.clock()
        if status is None:
            status = rides_pb2.DRIVER_STATUS_BUSY if self.busy else rides_pb2.DRIVER_STATUS_AVAILABLE
        point = self.position(now)  # first: it may start the next leg, whose heading goes with it
        return location_pb2.ReportLocationsRequest(
            driver_id=self.id, point=latlng(point), status=status, heading_deg=self.leg.heading_deg,
            sent_at_unix_ms=self.fleet.streams.wall_ns(now) // 1_000_000)

    # the location stream ------------------------------------------------------------------------------------------

    async def frames(self) -> Any:
        """One connection's reports: now, then after a random part of the interval, then every interval or at a status
        change; OFFLINE and the half-close once the fleet closes."""
        self.report_sessions += 1
        interval = self.params.ping_interval_s
        wait = self.rng.uniform(0, interval)
        while not self.fleet.closing:
            self.reports += 1
            yield self.frame()
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), wait)
            except TimeoutError:
                pass
            wait = interval
        yield self.frame(rides_pb2.DRIVER_STATUS_OFFLINE)

    async def report(self) -> None:
        """Hold ReportLocations until the fleet closes, reconnecting after failures."""
        failures = 0
        while not self.fleet.closing:
            before = self.reports
            try:
                await self.fleet.streams.call(LOCATION, "ReportLocations", self.frames(), timeout_s=STREAM_TIMEOUT_S)
                if self.fleet.closing:
                    return
                self.errors["ReportLocations OK"] += 1  # ended by the server without being asked: connect again
            except grpc.aio.AioRpcError as error:
                if self.fleet.closing:
                    return
                self.errors[f"ReportLocations {error.code().name}"] += 1
                log.info("%s: ReportLocations ended %s: %s", self.id, error.code().name, error.details())
                if error.code() in FATAL:
                    log.warning("%s: ReportLocations refused %s: the driver stops reporting", self.id, error.code().name)
                    return
            failures = 1 if self.reports - before > 1 else failures + 1
            await asyncio.sleep(backoff_s(failures))

    # the offer feed -----------------------------------------------------------------------------------------------

    async def feed(self) -> None:
        """Hold ReceiveOffers until the fleet closes, reconnecting after failures; each event handled at once."""
        failures = 0
        request = dispatch_pb2.ReceiveOffersRequest(driver_id=self.id)
        while not self.fleet.closing:
            call = self.feed_call = self.fleet.streams.server_stream(DISPATCH, "ReceiveOffers", request)
            self.feed_sessions += 1
            try:
                async for event in call:
                    failures = 0
                    self.event(event)
                self.errors["ReceiveOffers OK"] += 1
            except grpc.aio.AioRpcError as error:
                if self.fleet.closing:
                    return
                self.errors[f"ReceiveOffers {error.code().name}"] += 1
                log.info("%s: ReceiveOffers ended %s: %s", self.id, error.code().name, error.details())
                if error.code() in FATAL:
                    log.warning("%s: ReceiveOffers refused %s: the driver takes no more offers", self.id, error.code().name)
                    return
            except asyncio.CancelledError:
                call.cancel()
                raise
            finally:
                self.feed_call = None
            failures += 1
            await asyncio.sleep(backoff_s(failures))

    def event(self, event: dispatch_pb2.ReceiveOffersResponse) -> None:
        """An offer starts its handling; a withdrawal ends the handling of its offer if the driver has not answered."""
        kind = event.WhichOneof("event")
        if kind == "offer":
            offer = event.offer
            if offer.offer_id not in self.offers:
                withdrawn: asyncio.Future[str] = asyncio.get_running_loop().create_future()
                self.offers[offer.offer_id] = withdrawn
                self.spawn(self.answer(offer, withdrawn, self.fleet.clock()), f"offer-{offer.offer_id}")
        elif kind == "withdrawal":
            withdrawn = self.offers.get(event.withdrawal.offer_id)
            if withdrawn is not None and not withdrawn.done():
                withdrawn.set_result(event.withdrawal.reason)

    def spawn(self, coroutine: Any, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(self.fleet.guard(self.id, coroutine), name=f"rides-{self.id}-{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def answer(self, offer: dispatch_pb2.Offer, withdrawn: asyncio.Future[str], received: float) -> None:
        """Think, then accept, decline or ignore ``offer`` (module docstring); one ``offer`` sample."""
        try:
            action = choose_action(self.rng, self.params, self.busy)
            if action == "busy":
                code = await self.decline(offer, BUSY)
            else:
                if action == "ignore":
                    expires = self.fleet.streams.perf_at(offer.expires_at_unix_ms * 1_000_000)
                    wait = max(expires - self.fleet.clock(), 0.0) + EXPIRY_GRACE_S
                else:
                    wait = self.rng.uniform(self.params.think_min_s, self.params.think_max_s)
                try:
                    reason = await asyncio.wait_for(asyncio.shield(withdrawn), wait)
                except TimeoutError:
                    reason = None
                if reason is not None:
                    code = EXPIRED if "expire" in reason.lower() else WITHDRAWN
                elif action == "ignore":
                    code = EXPIRED
                elif action == "decline":
                    code = await self.decline(offer, DECLINED)
                else:
                    code = await self.accept(offer)
            self.fleet.observe(OFFER, self.fleet.clock() - received, code, received)
        finally:
            self.offers.pop(offer.offer_id, None)

    async def decline(self, offer: dispatch_pb2.Offer, code: str) -> str:
        """DeclineOffer (its failure only logged: the offer lapses anyway); returns ``code``."""
        try:
            await self.fleet.streams.call(DISPATCH, "DeclineOffer", dispatch_pb2.DeclineOfferRequest(
                driver_id=self.id, offer_id=offer.offer_id))
        except grpc.aio.AioRpcError as error:
            self.errors[f"DeclineOffer {error.code().name}"] += 1
        return code

    async def accept(self, offer: dispatch_pb2.Offer) -> str:
        """AcceptOffer (tried again when the answer was lost; a won ride is then found with GetDriverRide); returns its
        code name, and drives the ride when it won."""
        made = self.fleet.clock()
        request = dispatch_pb2.AcceptOfferRequest(driver_id=self.id, offer_id=offer.offer_id)
        ride: rides_pb2.Ride | None = None
        code = OK
        for attempt in range(1, ACCEPT_ATTEMPTS + 1):
            try:
                ride = (await self.fleet.streams.call(DISPATCH, "AcceptOffer", request)).ride
                code = OK
                break
            except grpc.aio.AioRpcError as error:
                code = error.code().name
                if error.code() not in TRANSIENT or attempt == ACCEPT_ATTEMPTS or self.fleet.closing:
                    break
                await asyncio.sleep(backoff_s(attempt))
        self.fleet.observe(ACCEPT, self.fleet.clock() - made, code, made)
        if code != OK and grpc.StatusCode[code] in TRANSIENT:
            ride = await self.driver_ride(offer.ride_id)
            code = OK if ride is not None else code
        if ride is not None:
            await self.won(ride)
        return code

    async def driver_ride(self, ride_id: str) -> rides_pb2.Ride | None:
        """The driver's active ride per the trip service when it is ``ride_id`` (an accept whose answer was lost)."""
        try:
            ride = (await self.fleet.streams.call(TRIPS, "GetDriverRide", trips_pb2.GetDriverRideRequest(driver_id=self.id))).ride
        except grpc.aio.AioRpcError:
            return None
        return ride if ride.ride_id == ride_id else None

    async def ride_state(self, ride_id: str) -> int | None:
        """The trip service's state of ``ride_id``, or None when it cannot say."""
        try:
            return (await self.fleet.streams.call(TRIPS, "GetRide", trips_pb2.GetRideRequest(ride_id=ride_id))).ride.state
        except grpc.aio.AioRpcError as error:
            self.errors[f"GetRide {error.code().name}"] += 1
            return None

    # rides --------------------------------------------------------------------------------------------------------

    async def won(self, ride: rides_pb2.Ride) -> None:
        """A won ride: released rides the trip service ended under the driver are dropped, the win checked, the ride
        queued and driven."""
        checker = self.fleet.checker
        for held in list(self.rides):
            if held.ride_id != ride.ride_id and await self.ride_state(held.ride_id) in TERMINAL_STATES:
                checker.released(held.ride_id, self.id)
        if any(held.ride_id == ride.ride_id for held in self.rides):
            return  # the same ride again (an accept retried)
        checker.won(ride.ride_id, self.id)
        self.rides.append(ride)
        self.wake.set()  # report BUSY at once
        if self.trip_task is None or self.trip_task.done():
            self.trip_task = self.spawn(self.drive(), "trips")

    async def drive(self) -> None:
        """Drive every ride won, one after the other; AVAILABLE again (reported at once) after the last."""
        while self.rides and not self.fleet.closing:
            ride = self.rides[0]
            try:
                await self.trip(ride)
            finally:
                self.fleet.checker.released(ride.ride_id, self.id)
                if self.rides and self.rides[0] is ride:
                    self.rides.popleft()
        now = self.fleet.clock()
        here = self.position(now)
        self.leg = leg(self.city, here, self.city.uniform(self.rng), now, self.params.speed_mps)
        self.wake.set()

    async def trip(self, ride: rides_pb2.Ride) -> None:
        """DEPART, drive to the pickup, PICK_UP, drive to the dropoff, DROP_OFF (ended early when the ride is)."""
        if not await self.update(ride, trips_pb2.TRIP_EVENT_DEPART):
            return
        await self.go((ride.pickup.lat_deg, ride.pickup.lng_deg))
        if not await self.update(ride, trips_pb2.TRIP_EVENT_PICK_UP):
            return
        await self.go((ride.dropoff.lat_deg, ride.dropoff.lng_deg))
        if await self.update(ride, trips_pb2.TRIP_EVENT_DROP_OFF):
            self.fleet.completed += 1

    async def go(self, point: Point) -> None:
        """Drive straight to ``point`` (its positions reported on the way by the location stream)."""
        now = self.fleet.clock()
        self.leg = leg(self.city, self.position(now), point, now, self.params.speed_mps)
        await asyncio.sleep(self.leg.duration_s)

    async def update(self, ride: rides_pb2.Ride, event: int) -> bool:
        """UpdateTrip ``event``, tried again after transient errors until it is answered; False when the ride is over
        for this driver (cancelled by its rider, or refused for another reason: logged)."""
        failures = 0
        request = trips_pb2.UpdateTripRequest(ride_id=ride.ride_id, driver_id=self.id, event=event)
        while not self.fleet.closing:
            try:
                await self.fleet.streams.call(TRIPS, "UpdateTrip", request)
                return True
            except grpc.aio.AioRpcError as error:
                code = error.code()
                if code in TRANSIENT:
                    failures += 1
                    await asyncio.sleep(backoff_s(failures))
                    continue
                if code == grpc.StatusCode.FAILED_PRECONDITION and \
                        await self.ride_state(ride.ride_id) == rides_pb2.RIDE_STATE_CANCELLED:
                    self.fleet.cancelled_under += 1
                    return False
                self.errors[f"UpdateTrip {code.name}"] += 1
                log.warning("%s: UpdateTrip %s of %s refused %s: %s", self.id, trips_pb2.TripEvent.Name(event),
                            ride.ride_id, code.name, error.details())
                return False
        return False

    # the life of the driver ---------------------------------------------------------------------------------------

    def start(self) -> None:
        """Come online: both streams."""
        self.spawn(self.report(), "report")
        self.spawn(self.feed(), "feed")

    async def stop(self) -> None:
        """Go offline: OFFLINE and the half-close on the location stream, the feed and every task ended."""
        self.wake.set()
        if self.feed_call is not None:
            self.feed_call.cancel()
        report = [t for t in self.tasks if t.get_name().endswith("-report")]
        others = [t for t in self.tasks if t not in report]
        for task in others:
            task.cancel()
        _, pending = await asyncio.wait(report, timeout=2.0) if report else (set(), set())
        for task in pending:
            task.cancel()
        await asyncio.gather(*others, *pending, return_exceptions=True)


class Fleet:
    """This process's drivers and what the journeys share: built by ``connect``, closed by ``disconnect``.

    ``started_at`` is the clock instant the load starts (the end of
    ``connect``): the hotspot's elapsed time is counted from it.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter):
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        self.city = params.city()
        self.demand = params.demand()
        index, count = streams.share
        self.worker = index
        self.closing = False
        self.checker = Assignments(lambda code: self.observe(SINGLE_ASSIGNMENT, 0.0, code, self.clock()))
        #: This connect's own suffix of every driver and rider id: `casemesh capacity` seeds once and connects once
        #: per step against the same mesh, and a step must not find the last step's rides under its ids (a
        #: RequestRide retried by id returns the stored ride; a driver id would still hold its unfinished ride).
        self.session = secrets.token_hex(3)
        self.drivers = [Driver(f"{driver_id}-{self.session}", self, random.Random(driver_id))
                        for driver_id in state.drivers[index::count]]
        self.started_at = clock()
        self.riders = 0
        #: Open WatchRide calls of the rider journeys (cancelled at close).
        self.watches: set[Any] = set()
        self.completed = 0
        self.cancelled_under = 0

    def observe(self, name: str, latency_s: float, code: str, at: float) -> None:
        """Record measure ``name`` of an event at clock instant ``at`` (recorded when ``at`` is after the warm-up)."""
        self.streams.observe(name, latency_s, code, sent_at=at)

    def next_rider(self) -> str:
        """A new rider's ID (one per ride journey)."""
        self.riders += 1
        return f"rd{self.state.run}-w{self.worker}-{self.session}-r{self.riders}"

    async def guard(self, driver_id: str, coroutine: Any) -> None:
        """Run a driver's task; a bug is logged, never raised into the event loop's void."""
        try:
            await coroutine
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s: a driver task failed", driver_id)

    async def connect(self) -> None:
        """Bring every driver online, then wait until ``ready_fraction`` of them have a position in the location service
        (UNAVAILABLE naming the count and the first missing driver's errors after ``ready_timeout_s``)."""
        for driver in self.drivers:
            driver.start()
        await self.ready()
        self.started_at = self.clock()

    async def ready(self) -> None:
        total = len(self.drivers)
        needed = math.ceil(total * self.params.ready_fraction)
        limit = asyncio.Semaphore(self.params.connect_concurrency)
        deadline = self.clock() + self.params.ready_timeout_s
        pending = list(self.drivers)
        last_error: dict[str, str] = {}

        async def online(driver: Driver) -> bool:
            async with limit:
                try:
                    await self.streams.call(LOCATION, "GetDriverPosition",
                                            location_pb2.GetDriverPositionRequest(driver_id=driver.id))
                except grpc.aio.AioRpcError as error:
                    last_error[driver.id] = error.code().name
                    return False
                return True

        while total - len(pending) < needed:
            found = await asyncio.gather(*(online(d) for d in pending))
            pending = [d for d, ok in zip(pending, found, strict=True) if not ok]
            if total - len(pending) >= needed:
                break
            if self.clock() >= deadline:
                first = pending[0]
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(),
                    f"only {total - len(pending)} of {total} drivers had reported a position after "
                    f"{self.params.ready_timeout_s:g} s (need {needed}); first missing: {first.id}, GetDriverPosition "
                    f"{last_error.get(first.id)}, its streams' errors {dict(first.errors)}")
            await asyncio.sleep(0.2)
        log.info("rides: %d of %d drivers of this process online", total - len(pending), total)

    async def close(self) -> None:
        """End the riders' watches, then take every driver offline; log what the population went through."""
        self.closing = True
        for call in list(self.watches):
            call.cancel()
        await asyncio.gather(*(d.stop() for d in self.drivers), return_exceptions=True)
        errors: Counter[str] = Counter()
        for driver in self.drivers:
            errors.update(driver.errors)
        log.info("rides: %d rides driven to the end, %d cancelled under their driver; single assignment: %d OK, %d breaches; "
                 "%d location and %d offer-feed reconnects; driver stream and call errors %s", self.completed,
                 self.cancelled_under, self.checker.completed_ok, self.checker.breaches,
                 sum(max(d.report_sessions - 1, 0) for d in self.drivers),
                 sum(max(d.feed_sessions - 1, 0) for d in self.drivers), dict(errors))
