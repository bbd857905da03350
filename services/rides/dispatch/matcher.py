"""Matching in phases: offer a ride to the nearest free drivers, a batch at a time, until one accepts.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching",
Ride Matching Algorithm (``MatchingService.requestRide``): find nearby
drivers within 5 km of the pickup ("5 // 5km radius"), widening the search
when there are none (``expandSearchRadius``); rank them; "Send request to
best drivers (top 3)"; wait for an acceptance; else "expand to next batch"
(``sendToNextBatch``). The accept is the trip service's atomic
compare-and-set (``acceptRide``: "Atomic check and set"), so dispatch keeps
offers in memory only. For each ride, one task (:meth:`Matcher._match`):

1. Search (:meth:`Matcher._search`): LocationService.FindNearbyDrivers
   around the pickup within the current radius, nearest first, excluding
   the drivers offered this ride already; drivers with an outstanding offer
   of another ride or without an open feed are filtered out afterwards (the
   request asks for ``search_overfetch`` times the batch, then once more
   for 100 when too few are left).
2. When nobody new is found, the radius doubles (``search_radius_m`` 5 km up
   to ``max_radius_m`` 20 km) and the search runs again at once; at the
   largest radius it runs again after ``no_driver_retry_s``.
3. A phase: the ride is offered to the nearest ``offer_batch_size`` of them
   at once (``Offer`` on each one's feed, with the pickup distance and the
   ETA of :mod:`.eta`), and stands ``offer_timeout_s``, or until one driver
   wins (its accept's AssignDriver succeeded) or every offer of the phase
   was declined (or refused). Offers still standing lapse ("expired": a
   withdrawal on the feed); then the next phase. When the trip service
   refuses an accept, the ride's state is checked at once (GetRide): a
   cancelled ride's phase ends there.
4. The end: a win (the ride's other offers withdrawn, "won by another
   driver"); the ride no longer REQUESTED (checked with GetRide before each
   phase but the first of a new ride: the rider cancelled, its offers
   withdrawn "cancelled"); or ``max_phases`` phases, or ``max_match_s``
   seconds since the request, without a winner: ReleaseRide
   (CANCEL_REASON_NO_DRIVER). A ride recovered by a sweep gets at least one
   search (and a phase, if it finds drivers) however old it is.

Ranking is nearest first. The seed's ``calculateScore`` also weighs the
driver's rating, acceptance rate and heading ("isMovingToward"); this system
has no ratings or acceptance history, so distance is the whole score.

A driver is offered one ride at a time: an outstanding offer blocks further
offers to it until it is answered, withdrawn or lapses. Offers are checked
and made without a suspension point between the check and the offer, so two
rides' tasks cannot both offer the same driver.

Recovery (:meth:`Matcher.sweep`): ListOpenRides on the trip service, and a
task for every REQUESTED ride without one, at start and every
``sweep_interval_s``: a ride stored while dispatch was down, a StartMatching
that never arrived, or a ride whose task ended without an outcome (the trip
service was down when it tried to release it) is matched again.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from cachetools import TTLCache

from casemesh.rides.v1 import dispatch_pb2, location_pb2, rides_pb2

from ...runtime.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied, ResourceExhausted
from ..contract import MAX_EXCLUDED_DRIVERS, MAX_NEARBY_LIMIT, MAX_OPEN_RIDES_LIMIT
from . import metrics
from .eta import SpeedModel
from .feeds import OfferFeeds
from .settings import DispatchSettings

log = logging.getLogger("casemesh.rides.dispatch")

OFFER_ID_PREFIX = "offer-"
#: Withdrawal reasons (OfferWithdrawal.reason).
WON_BY_ANOTHER = "won by another driver"
CANCELLED = "cancelled"
EXPIRED = "expired"
#: Answered or lapsed offers remembered at most (TTL ``offer_retention_s``).
MAX_SETTLED_OFFERS = 200_000


def new_offer_id() -> str:
    """``offer-`` and 26 random characters of base32 (A-Z, 2-7): 128 bits."""
    return OFFER_ID_PREFIX + base64.b32encode(secrets.token_bytes(16)).decode("ascii").rstrip("=")


class NearbyDrivers(Protocol):
    """LocationService.FindNearbyDrivers (any exception: the search failed)."""

    async def find(self, lat_deg: float, lng_deg: float, radius_m: float, limit: int,
                   exclude: list[str]) -> list[location_pb2.NearbyDriver]: ...


class TripsApi(Protocol):
    """The TripService calls dispatch makes: errors as the runtime's domain errors (:class:`Aborted`,
    :class:`FailedPrecondition`, :class:`NotFound`); anything else raised as it came (UNAVAILABLE)."""

    async def assign(self, ride_id: str, driver_id: str) -> rides_pb2.Ride: ...

    async def get(self, ride_id: str) -> rides_pb2.Ride: ...

    async def release(self, ride_id: str) -> rides_pb2.Ride: ...

    async def open_rides(self, limit: int) -> list[rides_pb2.Ride]: ...


@dataclass(eq=False)
class RideMatch:
    """One ride being matched: its task, who was offered it, the present phase's offers, and the winner's ride."""

    ride: rides_pb2.Ride
    recovered: bool
    offered: set[str] = field(default_factory=set)
    offers: list[OfferRecord] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    phase: int = 0
    won: rides_pb2.Ride | None = None
    recheck: bool = False  # the trip service refused an accept: is the ride still REQUESTED?
    task: asyncio.Task[None] | None = None


@dataclass(eq=False)
class OfferRecord:
    """One offer: ``status`` is ``open`` until it is ``accepted``, ``declined``, ``expired``, ``withdrawn``
    (``reason`` says why), ``lost`` or ``refused``; ``accepting`` counts AcceptOffer calls in flight."""

    offer: dispatch_pb2.Offer
    driver_id: str
    match: RideMatch
    status: str = "open"
    reason: str = ""
    accepting: int = 0
    ride: rides_pb2.Ride | None = None  # the won ride (accepted)


class Matcher:
    """Rides being matched, their offers, and the drivers' feeds they go to.

    ``location`` and ``trips`` are the other services (fakes in tests);
    ``clock()`` is the time in seconds since the Unix epoch, for the offers'
    timestamps, ``max_match_s`` and the retention of answered offers (phase
    timeouts run on the event loop's clock).
    """

    def __init__(self, settings: DispatchSettings, location: NearbyDrivers, trips: TripsApi, feeds: OfferFeeds,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.feeds = feeds
        self._location = location
        self._trips = trips
        self._clock = clock
        self.eta = SpeedModel(settings.city_speed_kmh, settings.detour_factor)
        self._matches: dict[str, RideMatch] = {}
        self._open: dict[str, OfferRecord] = {}  # offer id → open offer
        self._by_driver: dict[str, OfferRecord] = {}  # driver → its open offer
        self._settled: TTLCache[str, OfferRecord] = TTLCache(MAX_SETTLED_OFFERS, max(settings.offer_retention_s, 1e-3),
                                                              timer=clock)
        self._closing = False
        self._sweep_failing = False
        self._search_failing = False

    # -- queries ----------------------------------------------------------------------------------------------------

    def matching(self, ride_id: str) -> bool:
        """True while the ride has a matching task."""
        return ride_id in self._matches

    def outstanding_offer(self, driver_id: str) -> dispatch_pb2.Offer | None:
        """The driver's open offer, if any (sent again on a reconnected feed)."""
        record = self._by_driver.get(driver_id)
        return record.offer if record is not None else None

    # -- starting ---------------------------------------------------------------------------------------------------

    def start(self, ride: rides_pb2.Ride, recovered: bool = False) -> bool:
        """Start matching ``ride`` (False: it is being matched already, or dispatch is shutting down).

        :class:`ResourceExhausted` when ``max_rides_matching`` rides are being matched.
        """
        if ride.ride_id in self._matches or self._closing:
            return False
        if len(self._matches) >= self.settings.max_rides_matching:
            raise ResourceExhausted(f"rides-dispatch is matching {self.settings.max_rides_matching:,} rides already")
        match = self._matches[ride.ride_id] = RideMatch(ride, recovered)
        # A context of its own: the matching outlives the StartMatching (or sweep) call that began it, whose deadline
        # (propagated through the runtime's context variables) must not bound the matching's calls.
        match.task = asyncio.create_task(self._run(match), name=f"rides-dispatch-match-{ride.ride_id}",
                                         context=contextvars.Context())
        metrics.RIDES_MATCHING.set(len(self._matches))
        return True

    async def sweep(self) -> int:
        """Start matching every REQUESTED ride of the trip service that has no task; returns how many. A failure to
        list them is logged (when sweeps start failing) and counted; never raised."""
        try:
            rides = await self._trips.open_rides(MAX_OPEN_RIDES_LIMIT)
        except Exception as error:  # noqa: BLE001 - the trip service down must not stop dispatch: next sweep
            metrics.SWEEP_ERRORS.inc()
            if not self._sweep_failing:
                self._sweep_failing = True
                log.warning("rides-dispatch: the sweep could not list open rides (%s); retrying every %.0f s",
                            error, self.settings.sweep_interval_s)
            return 0
        self._sweep_failing = False
        recovered = 0
        for ride in rides:
            try:
                recovered += self.start(ride, recovered=True)
            except ResourceExhausted:
                break
        if recovered:
            metrics.SWEEP_RECOVERED.inc(recovered)
            log.info("rides-dispatch: the sweep started matching %d rides", recovered)
        return recovered

    async def run_sweeps(self) -> None:
        """:meth:`sweep` at once, then every ``sweep_interval_s``, until cancelled."""
        while True:
            await self.sweep()
            await asyncio.sleep(self.settings.sweep_interval_s)

    # -- one ride ---------------------------------------------------------------------------------------------------

    async def _run(self, match: RideMatch) -> None:
        outcome: str | None = None
        try:
            outcome = await self._match(match)
        except Exception as error:  # noqa: BLE001 - one ride's failure must not touch the others; the sweep retries it
            log.warning("rides-dispatch: matching ride %s stopped (%s: %s); the next sweep starts it again",
                        match.ride.ride_id, type(error).__name__, error)
        finally:
            if not self._closing:
                self._withdraw(match, CANCELLED if outcome == "cancelled" else EXPIRED)
            if self._matches.get(match.ride.ride_id) is match:
                del self._matches[match.ride.ride_id]
                metrics.RIDES_MATCHING.set(len(self._matches))
        if outcome is not None:
            metrics.match(outcome)

    async def _match(self, match: RideMatch) -> str | None:
        """Phases until a winner, a cancel, or the end of phases or time; the outcome (``None``: the ride was
        matched or finished elsewhere)."""
        s = self.settings
        ride_id = match.ride.ride_id
        deadline_s = match.ride.requested_at_unix_ms / 1000 + s.max_match_s
        radius_m = s.search_radius_m
        check = match.recovered
        while match.phase < s.max_phases and (match.phase == 0 or self._clock() < deadline_s):
            if check:
                state = await self._state(ride_id)
                if state != rides_pb2.RIDE_STATE_REQUESTED:
                    return "cancelled" if state == rides_pb2.RIDE_STATE_CANCELLED else None
            check = True
            try:
                candidates = await self._search(match, radius_m)
            except Exception as error:  # noqa: BLE001 - the location service down: search again after a pause
                self._search_failed(error)
                candidates = None
            if not candidates or not self._offer(match, candidates):
                if candidates is not None and radius_m < s.max_radius_m:
                    radius_m = min(radius_m * 2, s.max_radius_m)
                    check = False
                    continue
                if self._clock() >= deadline_s:
                    break
                await asyncio.sleep(min(s.no_driver_retry_s, max(0.0, deadline_s - self._clock())))
                continue
            state = await self._phase(match)
            if match.won is not None:
                metrics.PHASES.observe(match.phase)
                return "matched"
            if state != rides_pb2.RIDE_STATE_REQUESTED:
                return "cancelled" if state == rides_pb2.RIDE_STATE_CANCELLED else None
            self._withdraw(match, EXPIRED)
        released = await self._trips.release(ride_id)
        if released.state != rides_pb2.RIDE_STATE_CANCELLED:
            return None  # matched meanwhile (a late win of an earlier dispatch's offer)
        return "no_driver" if released.cancel_reason == rides_pb2.CANCEL_REASON_NO_DRIVER else "cancelled"

    async def _state(self, ride_id: str) -> int:
        """The ride's state at the trip service (CANCELLED when it does not know the ride)."""
        try:
            return (await self._trips.get(ride_id)).state
        except NotFound:
            return rides_pb2.RIDE_STATE_CANCELLED

    def _search_failed(self, error: Exception) -> None:
        metrics.SEARCH_ERRORS.inc()
        if not self._search_failing:
            self._search_failing = True
            log.warning("rides-dispatch: FindNearbyDrivers failed (%s); retrying every %.1f s", error,
                        self.settings.no_driver_retry_s)

    def _offerable(self, match: RideMatch, driver_id: str) -> bool:
        """Not offered this ride yet, no offer of another ride outstanding, and an open feed."""
        return driver_id not in match.offered and driver_id not in self._by_driver and self.feeds.has(driver_id)

    async def _find(self, match: RideMatch, radius_m: float, limit: int,
                    exclude: list[str]) -> list[location_pb2.NearbyDriver]:
        pickup = match.ride.pickup
        started = time.perf_counter()
        try:
            found = await self._location.find(pickup.lat_deg, pickup.lng_deg, radius_m, limit,
                                              exclude[:MAX_EXCLUDED_DRIVERS])
        finally:
            metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)
        self._search_failing = False
        return found

    async def _search(self, match: RideMatch, radius_m: float) -> list[location_pb2.NearbyDriver]:
        """Offerable drivers within ``radius_m`` of the pickup, nearest first (at most what two searches return)."""
        batch = self.settings.offer_batch_size
        exclude = list(match.offered)
        limit = min(MAX_NEARBY_LIMIT, batch * self.settings.search_overfetch)
        found = await self._find(match, radius_m, limit, exclude)
        fresh = [d for d in found if self._offerable(match, d.position.driver_id)]
        if len(fresh) < batch and len(found) >= limit and limit < MAX_NEARBY_LIMIT:
            skipped = [d.position.driver_id for d in found if not self._offerable(match, d.position.driver_id)]
            found = await self._find(match, radius_m, MAX_NEARBY_LIMIT, exclude + skipped)
            fresh = [d for d in found if self._offerable(match, d.position.driver_id)]
        return fresh

    def _offer(self, match: RideMatch, candidates: list[location_pb2.NearbyDriver]) -> bool:
        """Offer the ride to the first ``offer_batch_size`` candidates still offerable (checked here, with no
        suspension point before the offers are made); False when none could be offered."""
        s = self.settings
        ride = match.ride
        now_ms = int(self._clock() * 1000)
        match.offers = []
        for candidate in candidates:
            if len(match.offers) >= s.offer_batch_size:
                break
            driver_id = candidate.position.driver_id
            if not self._offerable(match, driver_id):
                continue
            distance_m = self.eta.distance_m(candidate.position.point, ride.pickup)
            offer = dispatch_pb2.Offer(
                offer_id=new_offer_id(), ride_id=ride.ride_id, pickup=ride.pickup, dropoff=ride.dropoff, fare=ride.fare,
                pickup_distance_m=distance_m, pickup_eta_s=self.eta.eta_s(distance_m),
                expires_at_unix_ms=now_ms + int(s.offer_timeout_s * 1000), phase=match.phase + 1)
            if not self.feeds.send(driver_id, dispatch_pb2.ReceiveOffersResponse(offer=offer)):
                continue
            record = OfferRecord(offer, driver_id, match)
            self._open[offer.offer_id] = record
            self._by_driver[driver_id] = record
            match.offered.add(driver_id)
            match.offers.append(record)
            metrics.OFFERS_SENT.inc()
        if match.offers:
            match.phase += 1
        return bool(match.offers)

    async def _phase(self, match: RideMatch) -> int:
        """Wait ``offer_timeout_s`` for the phase's offers, less when a driver wins or every offer is answered; an
        accept in flight is waited for even past the timeout (its AssignDriver decides). After the trip service
        refused an accept, the ride's state is checked: the phase ends early when it is no longer REQUESTED (the
        rider cancelled). Returns the ride's state as far as dispatch knows."""
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + self.settings.offer_timeout_s
        while match.won is None:
            if match.recheck:
                match.recheck = False
                state = await self._state(match.ride.ride_id)
                if state != rides_pb2.RIDE_STATE_REQUESTED:
                    return state
                continue
            accepting = any(o.accepting for o in match.offers)
            if not accepting and all(o.status != "open" for o in match.offers):
                break
            remaining = ends_at - loop.time()
            if remaining <= 0 and not accepting:
                break
            match.changed.clear()
            try:  # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancel (close())
                async with asyncio.timeout(remaining if remaining > 0 else None):
                    await match.changed.wait()
            except TimeoutError:
                pass
        return rides_pb2.RIDE_STATE_REQUESTED

    def _settle(self, record: OfferRecord, status: str, reason: str = "") -> None:
        """``record`` is answered or lapsed: no longer open, remembered for ``offer_retention_s``."""
        record.status = status
        record.reason = reason
        self._open.pop(record.offer.offer_id, None)
        if self._by_driver.get(record.driver_id) is record:
            del self._by_driver[record.driver_id]
        self._settled[record.offer.offer_id] = record
        metrics.offer(status)

    def _withdraw(self, match: RideMatch, reason: str) -> None:
        """Withdraw the ride's open offers (a withdrawal with ``reason`` on each driver's feed)."""
        status = "expired" if reason == EXPIRED else "withdrawn"
        for record in match.offers:
            if record.status == "open":
                self._settle(record, status, reason)
                self.feeds.send(record.driver_id, dispatch_pb2.ReceiveOffersResponse(
                    withdrawal=dispatch_pb2.OfferWithdrawal(offer_id=record.offer.offer_id, ride_id=match.ride.ride_id,
                                                            reason=reason)))

    # -- drivers' answers -------------------------------------------------------------------------------------------

    def _record(self, driver_id: str, offer_id: str) -> OfferRecord:
        record = self._open.get(offer_id) or self._settled.get(offer_id)
        if record is None:
            raise NotFound(f"no offer {offer_id} (never made, forgotten, or made before dispatch restarted)")
        if record.driver_id != driver_id:
            raise PermissionDenied(f"offer {offer_id} was made to another driver")
        return record

    async def accept(self, driver_id: str, offer_id: str) -> rides_pb2.Ride:
        """The driver accepts: TripService.AssignDriver decides. The won ride (again, for a retry).

        :class:`NotFound`, :class:`PermissionDenied`; :class:`Aborted` when
        another driver won the ride; :class:`FailedPrecondition` when the
        offer expired, was declined or withdrawn, or the trip service refused
        (the ride cancelled, the driver busy).
        """
        record = self._record(driver_id, offer_id)
        ride_id = record.offer.ride_id
        if record.status == "accepted" and record.ride is not None:
            return record.ride
        if record.reason == WON_BY_ANOTHER or record.status == "lost":
            raise Aborted(f"ride {ride_id} was accepted by another driver")
        if record.status != "open":
            raise FailedPrecondition(f"offer {offer_id} was {record.status}" +
                                     (f" ({record.reason})" if record.reason and record.reason != EXPIRED else ""))
        if self._clock() * 1000 > record.offer.expires_at_unix_ms:
            raise FailedPrecondition(f"offer {offer_id} expired")
        match = record.match
        record.accepting += 1
        try:
            ride = await self._trips.assign(ride_id, driver_id)
        except Aborted:
            if record.status == "open":
                self._settle(record, "lost")
            raise
        except (FailedPrecondition, NotFound) as error:
            if record.status == "open":
                self._settle(record, "refused")
            match.recheck = True
            raise FailedPrecondition(str(error)) from None
        finally:
            record.accepting -= 1
            match.changed.set()
        if record.status != "accepted":
            self._settle(record, "accepted")
            record.ride = ride
        if match.won is None:
            match.won = ride
            self._withdraw(match, WON_BY_ANOTHER)
        return ride

    def decline(self, driver_id: str, offer_id: str) -> None:
        """The driver declines; a phase whose offers are all answered ends at once. Declining an offer no longer
        open is OK, except an accepted one (:class:`FailedPrecondition`, as for one being accepted)."""
        record = self._record(driver_id, offer_id)
        if record.status == "accepted" or record.accepting:
            raise FailedPrecondition(f"offer {offer_id} was accepted")
        if record.status != "open":
            return
        self._settle(record, "declined")
        record.match.changed.set()

    # -- shutdown ---------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop every matching task (the rides stay REQUESTED at the trip service: the next dispatch sweeps them up)."""
        self._closing = True
        tasks = [m.task for m in self._matches.values() if m.task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
