"""What the hotel journeys share in one load process: the seeded hotels and guests, the festival's weekend, the
bookings the process saw (:class:`~.bookings.Ledger`) and those a guest may still cancel or check in.

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "Pessimistic locking, overbooking
prevention, payment auth/capture | 1M bookings/day, Booking.com"). The workload's ``connect`` makes a :class:`Hotels`
for the process and, before the first arrival (all unrecorded):

1. with ``baseline_audit`` (load process 0 only), RoomInventoryService.Audit once: the violations already in the
   inventory (an earlier run's, in a kept data directory) are remembered and not blamed on this run;
2. with festival hotels, picks the festival's weekend (:meth:`Hotels.choose_festival`): the first Friday
   ``festival_lead_days`` or more after ``first_night``, then each next one, up to ``festival_probe_weeks``, on which
   GetAvailability finds nothing booked or held on any festival room type for the festival's nights. So every run,
   and every step of ``casemesh capacity`` (one seeding, one connect per step, all on the same inventory), starts its
   festival on empty nights: the demand meets the full supply, not an earlier step's leftovers. With ``--workers N``
   every process probes alike before the load starts, so they agree.

A fresh :class:`Hotels` per connect means a fresh ledger: each capacity step is judged (:mod:`.end_checks`) on the
bookings it made, against the baseline it took.

The bookings a guest may still cancel or check in (:meth:`Hotels.confirmed`) are the process's CONFIRMED ones, kept
in first-night order (``sortedcontainers.SortedList``): ``cancel`` takes one at random, ``check_in`` the one whose
first night comes first (the next guest to arrive); each is taken once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import date, timedelta
from typing import Any

import grpc
from sortedcontainers import SortedList

from casemesh.hotel.v1 import inventory_pb2

from ..idempotent_retry import Outcome, RetryParams, send
from .bookings import Ledger
from .seeding import INVENTORY, Guest, SeedParams, State
from .stays import Stay, StayParams, everyday_stay, festival_stay, options, zipf_cdf

log = logging.getLogger("casemesh.workloads.hotel")

#: Codes after which Audit is sent again, and the pause before it.
AUDIT_RETRIED = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE})
AUDIT_PAUSE_S = 1.0
#: How the unrecorded reads (the festival probe, the end-of-run checks) are retried.
READ_RETRY = RetryParams(max_attempts=3, backoff_base_ms=100, backoff_cap_ms=1_000, retry_within_s=5)
FRIDAY = 4


def next_friday(day: date) -> date:
    """``day`` when it is a Friday, else the Friday after it."""
    return day + timedelta(days=(FRIDAY - day.weekday()) % 7)


class Hotels:
    """A load process's share of the workload (module docstring).

    ``streams`` is :class:`casemesh.harness.streams.Streams` (its unrecorded ``call``, ``observe`` and ``share``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if not state.hotels or not state.guests:
            raise ValueError("the hotel workload needs at least one hotel and one guest")
        self.streams = streams
        self.state = state
        self.params = params
        self.clock = clock
        self.sleep = sleep
        self.ledger = Ledger()
        self.first_night = date.fromisoformat(state.first_night)
        self.room_types = state.room_types()
        #: The festival's first night (a Friday), once chosen; ``None`` without festival hotels.
        self.festival_friday: date | None = None
        #: Audit's violations at connect (``None``: not taken).
        self.baseline: set[str] | None = None
        self._confirmed: SortedList = SortedList()
        self._cdfs: dict[float, list[float]] = {}

    @property
    def currency(self) -> str:
        return self.state.currency

    @property
    def checker(self) -> bool:
        """True for the load process that audits the inventory (process 0)."""
        return self.streams.share[0] == 0

    def guests(self, rng: random.Random, count: int) -> list[Guest]:
        """``count`` distinct guests drawn uniformly (with repeats only when there are fewer guests)."""
        guests = self.state.guests
        return rng.sample(guests, count) if count <= len(guests) else rng.choices(guests, k=count)

    def _cdf(self, exponent: float) -> list[float]:
        cdf = self._cdfs.get(exponent)
        if cdf is None:
            cdf = self._cdfs[exponent] = zipf_cdf(len(self.state.hotels), exponent)
        return cdf

    def stay(self, rng: random.Random, params: StayParams) -> Stay:
        """A stay a guest looks for: the festival's for ``festival_share`` of guests, else an everyday one."""
        if params.festival_share > 0 and rng.random() < params.festival_share:
            if self.festival_friday is None:
                raise ValueError("festival_share > 0 needs festival hotels (seed festival_hotels > 0)")
            return festival_stay(rng, params, self.state.festival, self.festival_friday, self.params.festival_nights)
        return everyday_stay(rng, params, self.state.hotels, self._cdf(params.zipf_exponent), self.first_night)

    def options(self, rng: random.Random, stay: Stay, params: StayParams, count: int) -> list[Stay]:
        """``stay`` and its alternatives (:func:`.stays.options`), ``count`` at most."""
        if stay.festival:
            return options(rng, stay, self.state.festival, None, count)
        return options(rng, stay, self.state.hotels, self._cdf(params.zipf_exponent), count)

    def confirmed(self, booking_id: str, check_in: str) -> None:
        """A booking answered CONFIRMED: a guest may cancel it or check in."""
        self._confirmed.add((check_in, booking_id))

    def take_to_cancel(self, rng: random.Random) -> str | None:
        """A confirmed booking drawn uniformly, taken (``None`` when there is none yet)."""
        return self._confirmed.pop(rng.randrange(len(self._confirmed)))[1] if self._confirmed else None

    def take_to_check_in(self) -> str | None:
        """The confirmed booking whose first night comes first, taken (``None`` when there is none yet)."""
        return self._confirmed.pop(0)[1] if self._confirmed else None

    async def audit(self) -> inventory_pb2.AuditResponse:
        """One Audit (unrecorded), sent again on ABORTED or UNAVAILABLE; raises its last error."""
        attempts = 3
        for attempt in range(1, attempts + 1):
            try:
                return await self.streams.call(INVENTORY, "Audit", inventory_pb2.AuditRequest(),
                                               timeout_s=self.params.audit_timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in AUDIT_RETRIED or attempt == attempts:
                    raise
                log.info("hotel: Audit answered %s, again in %.0f s", error.code().name, AUDIT_PAUSE_S)
                await self.sleep(AUDIT_PAUSE_S)
        raise AssertionError("unreachable")  # pragma: no cover

    async def take_baseline(self) -> None:
        """The Audit at connect (not judged): the violations already in the inventory."""
        if not (self.params.baseline_audit and self.checker):
            return
        try:
            response = await self.audit()
        except grpc.aio.AioRpcError as error:
            log.warning("hotel: the baseline Audit failed (%s %s): every violation at the end is judged",
                        error.code().name, error.details())
            return
        self.baseline = set(response.violations)
        if response.violations:
            log.warning("hotel: the inventory has %d violations before the run (an earlier run's): not judged",
                        len(response.violations))

    async def availability(self, hotel_id: str, room_type_id: str, check_in: date, nights: int,
                           rng: random.Random) -> Outcome:
        """GetAvailability of a stay (unrecorded, retried); a failure for good is logged."""
        request = inventory_pb2.GetAvailabilityRequest(hotel_id=hotel_id, room_type_id=room_type_id,
                                                       check_in=check_in.isoformat(), nights=nights)
        outcome = await send(self.streams.call, INVENTORY, "GetAvailability", request, READ_RETRY, rng,
                             clock=self.clock, sleep=self.sleep)
        if not outcome.answered:
            log.warning("hotel: GetAvailability %s/%s from %s failed: %s", hotel_id, room_type_id, check_in,
                        outcome.code)
        return outcome

    async def choose_festival(self) -> None:
        """Pick the festival's weekend (module docstring, step 2); nothing without festival hotels."""
        if not self.state.festival:
            return
        rng = random.Random(self.state.run)
        nights = self.params.festival_nights
        first = next_friday(self.first_night + timedelta(days=self.params.festival_lead_days))
        kinds = [(h.hotel_id, r.room_type_id) for h in self.state.festival for r in h.room_types]
        for week in range(self.params.festival_probe_weeks):
            friday = first + timedelta(days=7 * week)
            answers = await asyncio.gather(*(self.availability(h, r, friday, nights, rng) for h, r in kinds))
            if all(a.answered and not any(n.booked or n.held for n in a.response.nights) for a in answers):
                self.festival_friday = friday
                log.info("hotel: the festival's %d nights from %s (%d weeks after the first candidate)", nights,
                         friday, week)
                return
        self.festival_friday = first
        log.warning("hotel: no weekend with the festival hotels empty in %d weeks from %s: the festival starts on %s "
                    "with earlier bookings in place", self.params.festival_probe_weeks, first, first)
