"""The rider's journey ``ride``: quote, request, watch the ride through to its end (open-loop arrivals).

Each arrival is a new rider (a rider holds one open ride at a time). Its
pickup comes from the city's demand (:class:`~.city.Demand`: the moving
hotspot at this instant of the run, or anywhere), its dropoff 1 to 5 km
away. Then, as the rider's app does (seed 001 #02 "Ride-Sharing",
shared/seeds/001 line 11: "real-time tracking"; seed 003 "Uber Ride
Matching", shared/seeds/003 lines 619-990):

1. PricingService.GetQuote, then TripService.RequestRide with the quote and a
   ``client_request_id`` (both recorded per RPC, the first timed from the
   arrival's intended start);
2. TripService.WatchRide (held without a deadline: a ride lasts longer than a
   request timeout; reopened after 100 ms doubling to 2 s when it breaks, its
   first update is the ride as it is then) until the update that ends the
   ride;
3. ``cancel_p`` of riders cancel (CancelRide) at a uniform time within
   ``cancel_within_s`` of the request, unless they are in the car by then.

Measures (:class:`RiderView`), recorded for journeys started after the warm-up:

- ``match_time``: the intended start → the first update showing the ride
  MATCHED (or further on), code OK: seed 003 line 634 "Latency: Match rider
  with driver < 5 seconds". A ride CANCELLED with CANCEL_REASON_NO_DRIVER is a
  failed match, code **NOT_FOUND** (no driver was found: not UNAVAILABLE, so
  it is not confused with a service that could not be reached); a rider
  that waited ``match_patience_s`` without a match gives up (cancels) with
  code DEADLINE_EXCEEDED; a quote or request refused records that error's
  code. A rider's own cancel before a match records nothing (the rider's
  choice, not the system's).
- ``tracking_delay``: for each driver position the rider's stream carries,
  now − the position's ``sent_at_unix_ms`` (the driver's app clock, the same
  machine's): how fresh the real-time tracking is, i.e. the way of a
  position from the driver's app through the location and trip services to
  the rider. The first position of a ride is left out (TrackDriver replays
  the driver's last known one, up to a ping interval old) and so is one not
  newer than the last seen (a replay after the stream was reopened).
- ``pickup_wait``: MATCHED → IN_PROGRESS as the rider saw them (real seconds;
  x ``time_scale`` for the simulated city's).
- ``single_assignment``: every ride update and position from MATCHED on goes
  through :class:`~.invariants.Assignments`; COMPLETED adds the ride's sample.

The journey ends OK at COMPLETED and after the rider's own cancel; NOT_FOUND
for a ride no driver took; DEADLINE_EXCEEDED when the rider gave up waiting
for a match, or the ride was not over ``max_ride_s`` after the journey's intended start;
ABORTED when the ride was cancelled but not by an answered CancelRide of this rider (one whose answer was lost);
CANCELLED when the run ends first; and the code of a refused GetQuote or RequestRide, or of a WatchRide that
ends for good (NOT_FOUND, PERMISSION_DENIED, ...).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.rides.v1 import pricing_pb2, rides_pb2, trips_pb2

from ..base import Caller, Params
from .drivers import Fleet, backoff_s, latlng
from .invariants import Assignments
from .seeding import PRICING, TRIPS

log = logging.getLogger("casemesh.workloads.rides")

MATCH_TIME = "match_time"
TRACKING_DELAY = "tracking_delay"
PICKUP_WAIT = "pickup_wait"
OK = "OK"
#: ``match_time``'s code for a ride CANCELLED with CANCEL_REASON_NO_DRIVER (module docstring).
NO_DRIVER = "NOT_FOUND"
MATCHED_STATES = frozenset({rides_pb2.RIDE_STATE_MATCHED, rides_pb2.RIDE_STATE_EN_ROUTE, rides_pb2.RIDE_STATE_IN_PROGRESS,
                            rides_pb2.RIDE_STATE_COMPLETED})
PICKED_UP_STATES = frozenset({rides_pb2.RIDE_STATE_IN_PROGRESS, rides_pb2.RIDE_STATE_COMPLETED})
TERMINAL_STATES = frozenset({rides_pb2.RIDE_STATE_COMPLETED, rides_pb2.RIDE_STATE_CANCELLED})
#: WatchRide ends after which the rider stops watching: the ride is not its, or does not exist.
FINAL_CODES = frozenset({"NOT_FOUND", "PERMISSION_DENIED", "INVALID_ARGUMENT", "UNAUTHENTICATED", "UNIMPLEMENTED"})

Measure = tuple[str, float, str]


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A client-side error as a journey raises it (its code becomes the journey's status)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class RideParams(Params):
    """How a rider behaves."""

    cancel_p: float = Field(default=0.02, ge=0, le=1, description="share of riders who cancel before pickup")
    cancel_within_s: float = Field(default=5.0, gt=0, le=600,
                                   description="a cancelling rider cancels at a uniform time this long after the request, s")
    match_patience_s: float = Field(default=30.0, gt=0, le=600,
                                    description="seconds a rider waits for a match before cancelling (match_time "
                                                "DEADLINE_EXCEEDED)")
    max_ride_s: float = Field(default=50.0, gt=0, le=3600,
                              description="seconds from the journey's intended start (its arrival, before GetQuote) after which the rider stops watching "
                                          "(DEADLINE_EXCEEDED); keep it under the run's drain (10 request timeouts)")

    @model_validator(mode="after")
    def _patience_first(self) -> RideParams:
        if self.match_patience_s > self.max_ride_s:
            raise ValueError(f"match_patience_s ({self.match_patience_s:g}) must be at most max_ride_s ({self.max_ride_s:g})")
        return self


class RiderView:
    """What one rider's WatchRide showed of ``ride_id`` and the measures it yields (no I/O).

    ``intended`` is the journey's intended start (clock s); each
    :meth:`update` returns the ``(measure, seconds, code)`` samples it makes.
    """

    def __init__(self, ride_id: str, intended: float, checker: Assignments):
        self.ride_id = ride_id
        self.intended = intended
        self.checker = checker
        self.state = rides_pb2.RIDE_STATE_REQUESTED
        self.cancel_reason = rides_pb2.CANCEL_REASON_UNSPECIFIED
        self.matched_at: float | None = None
        self.picked_up_at: float | None = None
        self.last_sent_ms: int | None = None

    @property
    def terminal(self) -> bool:
        """True once the ride is COMPLETED or CANCELLED."""
        return self.state in TERMINAL_STATES

    def update(self, response: trips_pb2.WatchRideResponse, now: float, now_unix_ms: float) -> list[Measure]:
        """One WatchRide update received at clock instant ``now`` (``now_unix_ms`` on the wall clock)."""
        kind = response.WhichOneof("update")
        if kind == "ride":
            return self._ride(response.ride, now)
        if kind == "driver_position":
            return self._position(response.driver_position, now_unix_ms)
        return []

    def _ride(self, ride: rides_pb2.Ride, now: float) -> list[Measure]:
        samples: list[Measure] = []
        self.state = ride.state
        self.cancel_reason = ride.cancel_reason
        if ride.state in MATCHED_STATES or (ride.state == rides_pb2.RIDE_STATE_CANCELLED and ride.driver_id):
            self.checker.rider_saw(self.ride_id, ride.driver_id)
            if self.matched_at is None:
                self.matched_at = now
                samples.append((MATCH_TIME, now - self.intended, OK))
        if ride.state in PICKED_UP_STATES and self.picked_up_at is None and self.matched_at is not None:
            self.picked_up_at = now
            samples.append((PICKUP_WAIT, now - self.matched_at, OK))
        if (ride.state == rides_pb2.RIDE_STATE_CANCELLED and ride.cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER
                and self.matched_at is None):
            samples.append((MATCH_TIME, now - self.intended, NO_DRIVER))
        return samples

    def _position(self, position: rides_pb2.DriverPosition, now_unix_ms: float) -> list[Measure]:
        self.checker.rider_saw(self.ride_id, position.driver_id)
        sent = position.sent_at_unix_ms
        if sent <= 0 or (self.last_sent_ms is not None and sent <= self.last_sent_ms):
            return []
        first = self.last_sent_ms is None
        self.last_sent_ms = sent
        return [] if first else [(TRACKING_DELAY, max(now_unix_ms - sent, 0.0) / 1000, OK)]


class RideWatch:
    """One rider's WatchRide, held (and reopened) until the ride ends, with the rider's timers (module docstring)."""

    def __init__(self, call: Caller, fleet: Fleet, params: RideParams, rider_id: str, ride_id: str,
                 cancel_at: float | None):
        self.call = call
        self.fleet = fleet
        self.params = params
        self.rider_id = rider_id
        self.ride_id = ride_id
        self.cancel_at = cancel_at
        self.intended = call.intended_at
        self.view = RiderView(ride_id, self.intended, fleet.checker)
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.session = 0
        self.stream: Any = None
        self.reader: asyncio.Task | None = None
        self.rider_cancelled = False

    def _open(self) -> None:
        self.session += 1
        self.stream = self.fleet.streams.server_stream(TRIPS, "WatchRide", trips_pb2.WatchRideRequest(
            ride_id=self.ride_id, rider_id=self.rider_id))
        self.fleet.watches.add(self.stream)
        self.reader = asyncio.get_running_loop().create_task(self._read(self.stream, self.session),
                                                             name=f"rides-watch-{self.ride_id}")

    async def _read(self, stream: Any, session: int) -> None:
        code = OK
        try:
            async for response in stream:
                self.queue.put_nowait((session, response))
        except grpc.aio.AioRpcError as error:
            code = error.code().name
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
            code = "CANCELLED"  # the call was cancelled (the fleet closing)
        self.queue.put_nowait((session, code))

    async def _close(self) -> None:
        if self.stream is not None:
            self.stream.cancel()
            self.fleet.watches.discard(self.stream)
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)

    def _observe(self, samples: list[Measure]) -> None:
        for name, seconds, code in samples:
            self.call.observe(name, seconds, code)

    async def _cancel(self) -> bool:
        """CancelRide (recorded); True when it cancelled, False when refused (picked up already) or failed."""
        try:
            await self.call(TRIPS, "CancelRide", trips_pb2.CancelRideRequest(ride_id=self.ride_id, rider_id=self.rider_id))
        except grpc.aio.AioRpcError as error:
            log.info("%s: CancelRide answered %s", self.ride_id, error.code().name)
            return False
        return True

    def _next_timer(self) -> tuple[float, str]:
        view = self.view
        timers = [(self.intended + self.params.max_ride_s, "deadline")]
        if view.matched_at is None:
            timers.append((self.intended + self.params.match_patience_s, "patience"))
        if self.cancel_at is not None and view.picked_up_at is None:
            timers.append((self.cancel_at, "cancel"))
        return min(timers)

    async def run(self) -> None:
        """Watch until the ride ends; raises the journey's error (module docstring)."""
        self._open()
        try:
            await self._follow()
        finally:
            await self._close()
        self._settle()

    async def _follow(self) -> None:
        clock = self.fleet.clock
        failures = 0
        while not self.view.terminal:
            when, what = self._next_timer()
            try:
                session, item = await asyncio.wait_for(self.queue.get(), max(when - clock(), 0.0))
            except TimeoutError:
                await self._timer(what)
                continue
            if session != self.session:
                continue  # left over from a stream reopened since
            if not isinstance(item, str):
                now = clock()
                self._observe(self.view.update(item, now, self.fleet.streams.wall_ns(now) / 1e6))
                failures = 0
                continue
            if self.view.terminal:
                break
            if self.fleet.closing:
                raise rpc_error(grpc.StatusCode.CANCELLED, f"{self.ride_id}: the run ended before the ride did")
            if item in FINAL_CODES:
                if self.view.matched_at is None:
                    self.call.observe(MATCH_TIME, clock() - self.intended, item)
                raise rpc_error(grpc.StatusCode[item], f"{self.ride_id}: WatchRide ended {item}")
            failures += 1
            await self._close()
            await asyncio.sleep(backoff_s(failures))
            self._open()

    async def _timer(self, what: str) -> None:
        if what == "cancel":
            self.cancel_at = None
            self.rider_cancelled = await self._cancel()
            return
        elapsed = self.fleet.clock() - self.intended
        if self.view.matched_at is None:
            self.call.observe(MATCH_TIME, elapsed, grpc.StatusCode.DEADLINE_EXCEEDED.name)
        if what == "patience":
            await self._cancel()
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.ride_id}: no driver after {elapsed:.1f} s: the rider gave up")
        raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{self.ride_id}: not over {elapsed:.1f} s after the request")

    def _settle(self) -> None:
        view = self.view
        if view.state == rides_pb2.RIDE_STATE_COMPLETED:
            self.fleet.checker.completed(self.ride_id)
            return
        if view.cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"{self.ride_id}: no driver accepted")
        if not self.rider_cancelled:
            raise rpc_error(grpc.StatusCode.ABORTED, f"{self.ride_id}: cancelled, not by its rider "
                                                     f"({rides_pb2.CancelReason.Name(view.cancel_reason)})")


async def ride(call: Caller, params: RideParams, fleet: Fleet, rng: random.Random) -> None:
    """A rider asks for a ride and follows it to its end (module docstring)."""
    rider = fleet.next_rider()
    intended = call.intended_at
    pickup = fleet.demand.pickup(rng, intended - fleet.started_at)
    dropoff = fleet.demand.dropoff(rng, pickup)
    try:
        quote = (await call(PRICING, "GetQuote", pricing_pb2.GetQuoteRequest(
            rider_id=rider, pickup=latlng(pickup), dropoff=latlng(dropoff)))).quote
        requested = (await call(TRIPS, "RequestRide", trips_pb2.RequestRideRequest(
            rider_id=rider, quote_id=quote.quote_id, client_request_id=f"{rider}-1"))).ride
    except grpc.aio.AioRpcError as error:
        call.observe(MATCH_TIME, fleet.clock() - intended, error.code().name)
        raise
    cancel_at = fleet.clock() + rng.uniform(0, params.cancel_within_s) if rng.random() < params.cancel_p else None
    await RideWatch(call, fleet, params, rider, requested.ride_id, cancel_at).run()
