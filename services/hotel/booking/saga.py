"""The booking service without gRPC: CreateBooking's saga, GetBooking, CancelBooking, CheckIn, and the resumption of
unfinished bookings.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"); the saga with compensations is seed
003's "Amazon E-commerce" processOrder (shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1235-1290: reserve, pay, confirm;
compensate by releasing and refunding), with the payment authorised at booking and captured at check-in. The
invariants this module exists for: **a booking never holds rooms or money it does not account for** — a CONFIRMED
booking has its rooms booked and its total authorised, a FAILED or CANCELLED one neither — and **one idempotency key
makes one booking**, also when this service or a dependency dies between two steps.

CreateBooking (every step's outcome is written and fsynced, :mod:`.store`, before the next step is taken):

1. validate (:mod:`.validation`: INVALID_ARGUMENT naming the field); the key's booking, found by (guest, key): the
   same request (the SHA-256 of it without the key, :func:`request_hash`) → that booking (a PENDING one is resumed);
   another request → FAILED_PRECONDITION ``key_reused: ...``; a call of this process running it → ABORTED (retry);
2. GetAvailability of the stay (NOT_FOUND for an unknown room type): total = nights × rooms × the nightly rate; the
   booking is written PENDING (step ``hold``) with its ids (:mod:`.ids`: the booking id from (guest, key), the hold
   id from the booking id). A total over the gateway's largest payment is written FAILED PAYMENT_DECLINED at once;
3. HoldRooms(hold_id, ``hold_ttl_ms``): HELD → step ``authorize``; ABORTED (the inventory's optimistic lock mode lost
   a version race; nothing held) → the same HoldRooms again after a full-jitter exponential backoff (``uniform(0,
   min(cap, base × 2^(retry-1)))``, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015), counted in
   ``conflict_retries``, up to ``max_conflict_retries``; then FAILED CONTENTION; ``no_availability`` (or the hold of a
   stalled booking found EXPIRED) → FAILED NO_AVAILABILITY;
4. Authorize(capture=false) of the total as merchant ``contract.MERCHANT_ID``, customer the guest, key
   ``<booking_id>:authorize``: AUTHORIZED → step ``confirm`` with the payment id; DECLINED (or refused: an unknown
   card token) → compensate: step ``release`` with reason PAYMENT_DECLINED, ReleaseHold, FAILED;
5. ConfirmHold: → CONFIRMED (the payment stays authorised; it is captured at check-in); ``hold_expired`` (the hold ran
   out while the saga stalled) → compensate: step ``void`` with reason NO_AVAILABILITY (the rooms are gone), Void
   (key ``<booking_id>:void``), FAILED.

A dependency that does not answer (:class:`.calls.DependencyUnavailable`) or a store that cannot be written ends the
call UNAVAILABLE with the booking PENDING at its step; the guest's retry with the same key, or the background recovery
(:mod:`.recovery`, :meth:`BookingSaga.resume`), takes the step again. Every call a step makes is idempotent by
construction — HoldRooms of the same hold id returns that hold, ConfirmHold of a CONFIRMED hold and ReleaseHold of a
RELEASED one return it, the gateway answers a repeated key with its first answer — so a step taken twice (its answer
lost, or this service killed after it) has the effect of one. A hold sent again after an unanswered HoldRooms that did
hold is found by its id; one the saga gave up on while an earlier, unanswered HoldRooms was still queued at the
inventory can be left HELD, and its TTL gives it back.

CancelBooking (CONFIRMED only; a CANCELLED booking is returned): the intent (step ``cancel``) is written first, then
ReleaseHold, then Void (key ``<booking_id>:void``), then CANCELLED; a crash or an unreachable dependency midway is
finished by the retry or the recovery. CheckIn (CONFIRMED only; a CHECKED_IN booking is returned): the intent (step
``check_in``) is written, then Capture of the whole authorisation (key ``<booking_id>:capture``), then CHECKED_IN; a
refused capture clears the intent and answers FAILED_PRECONDITION. A booking with one intent refuses the other.

Calls about one booking run one at a time (a lock per booking id; CreateBooking does not wait for it: ABORTED).
Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`.calls.Unavailable` (UNAVAILABLE), as
protos/casemesh/hotel/v1/booking.proto lists them per RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

from casemesh.hotel.v1 import booking_pb2, hotel_pb2
from casemesh.payments.v1 import payments_pb2
from google.protobuf.message import Message

from ...payments.contract import MAX_AMOUNT_MINOR as MAX_PAYMENT_MINOR
from ...runtime.errors import Aborted, FailedPrecondition, NotFound
from ...runtime.keyed_locks import KeyedLocks
from ..contract import KEY_REUSED
from . import ids, metrics, validation
from .calls import DependencyUnavailable
from .inventory import HoldLost, Inventory, NoAvailability, VersionConflict
from .payments import Gateway, PaymentRefused
from .settings import BookingSettings
from .store import (
    AUTHORIZE,
    CANCEL,
    CANCELLED,
    CHECK_IN,
    CHECKED_IN,
    CONFIRM,
    CONFIRMED,
    FAILED,
    HOLD,
    NO_STEP,
    PENDING,
    RELEASE,
    VOID,
    BookingRow,
    BookingStore,
    insert_row,
    update_row,
)

log = logging.getLogger("casemesh.hotel.booking.saga")

T = TypeVar("T")

NO_AVAILABILITY = hotel_pb2.BOOKING_FAILURE_NO_AVAILABILITY
PAYMENT_DECLINED = hotel_pb2.BOOKING_FAILURE_PAYMENT_DECLINED
CONTENTION = hotel_pb2.BOOKING_FAILURE_CONTENTION
#: Holds the saga goes on with after HoldRooms: HELD, or CONFIRMED (ConfirmHold of it answers it as it is).
KEPT_HOLDS = frozenset({hotel_pb2.HOLD_STATUS_HELD, hotel_pb2.HOLD_STATUS_CONFIRMED})


def request_hash(request: Message) -> str:
    """SHA-256 (hex) of ``request`` serialised deterministically without its ``idempotency_key``."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def failure_name(reason: int) -> str:
    """``no_availability`` for BOOKING_FAILURE_NO_AVAILABILITY."""
    return hotel_pb2.BookingFailure.Name(reason).removeprefix("BOOKING_FAILURE_").lower()


class BookingSaga:
    """The service's domain (see the module docstring): ``store`` its records, ``inventory`` and ``gateway`` the
    clients of its dependencies, ``id_key`` the key of :mod:`.ids`. ``clock()`` is seconds since the Unix epoch;
    ``sleep(s)`` waits between conflict retries and ``rng`` draws their jitter (both replaceable in tests)."""

    def __init__(self, settings: BookingSettings, store: BookingStore, inventory: Inventory, gateway: Gateway, *,
                 id_key: bytes, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.store = store
        self._inventory = inventory
        self._gateway = gateway
        self._id_key = id_key
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._locks = KeyedLocks()
        self._held: set[str] = set()

    def now_ms(self) -> int:
        """``clock()`` in whole Unix milliseconds."""
        return int(self._clock() * 1000)

    async def start(self) -> int:
        """Set the PENDING gauge from the store; how many bookings are PENDING."""
        pending = await self.store.count_pending()
        metrics.PENDING.set(pending)
        return pending

    async def close(self) -> None:
        """Close the store (queued writes finish first)."""
        await self.store.close()

    # -- claims and writes ------------------------------------------------------------------------------------------

    def held(self, booking_id: str) -> bool:
        """Whether a call of this process is working on ``booking_id``."""
        return booking_id in self._held

    @contextlib.asynccontextmanager
    async def _claim(self, booking_id: str, *, wait: bool) -> AsyncIterator[None]:
        """Hold ``booking_id`` for the block: ABORTED while another call holds it, or with ``wait`` after it."""
        if not wait and booking_id in self._held:
            raise Aborted(f"idempotency_key: booking {booking_id} is being made or changed; retry it")
        async with self._locks.hold(booking_id):
            self._held.add(booking_id)
            try:
                yield
            finally:
                self._held.discard(booking_id)

    async def _save(self, before: BookingRow, **changes) -> BookingRow:
        """Write ``before`` with ``changes`` (and the update time), then count it; a cancelled caller does not stop
        it. The row as written."""
        after = replace(before, updated_at_unix_ms=self.now_ms(), **changes)
        await asyncio.shield(self._write(before, after))
        return after

    async def _write(self, before: BookingRow, after: BookingRow) -> None:
        await self.store.write([update_row(after)])
        if before.status == PENDING and after.status != PENDING:
            metrics.PENDING.dec()
            if after.status == CONFIRMED:
                metrics.BOOKINGS.labels("confirmed", "none").inc()
            else:
                metrics.BOOKINGS.labels("failed", failure_name(after.failure_reason)).inc()
        elif after.status == CANCELLED and before.status != CANCELLED:
            metrics.CANCELLATIONS.inc()
        elif after.status == CHECKED_IN and before.status != CHECKED_IN:
            metrics.CHECK_INS.inc()

    @staticmethod
    async def _timed(step: str, work: Awaitable[T]) -> T:
        started = time.perf_counter()
        try:
            return await work
        finally:
            metrics.STEP_SECONDS.labels(step).observe(time.perf_counter() - started)

    async def _booking(self, booking_id: str) -> BookingRow:
        row = await self.store.get(booking_id)
        if row is None:
            raise NotFound(f"booking_id: no booking {booking_id}")
        return row

    # -- CreateBooking ----------------------------------------------------------------------------------------------

    async def create(self, request: booking_pb2.CreateBookingRequest) -> booking_pb2.CreateBookingResponse:
        """CreateBooking (see the module docstring): the booking CONFIRMED or FAILED (or as it is now, for a key that
        made it before). INVALID_ARGUMENT; NOT_FOUND (the room type); FAILED_PRECONDITION ``key_reused``; ABORTED (the
        key in flight); :class:`.calls.Unavailable` (the booking stays PENDING: retry with the same key)."""
        v = validation.create_booking(request)
        hash_ = request_hash(request)
        row = await self._stored(v, hash_)
        if row is not None and row.status != PENDING:
            return self._replay(row)
        booking_id = row.booking_id if row is not None else ids.booking_id(self._id_key, v.guest_id,
                                                                           v.idempotency_key)
        async with self._claim(booking_id, wait=False):
            row = await self._stored(v, hash_)
            if row is None:
                row = await self._new(v, hash_, booking_id)
            elif row.status != PENDING:  # decided between the two reads
                return self._replay(row)
            row = await self._run(row)
        return booking_pb2.CreateBookingResponse(booking=row.to_proto())

    @staticmethod
    def _replay(row: BookingRow) -> booking_pb2.CreateBookingResponse:
        metrics.REPLAYS.inc()
        return booking_pb2.CreateBookingResponse(booking=row.to_proto())

    async def _stored(self, v: validation.CreateBooking, hash_: str) -> BookingRow | None:
        """The key's booking, or ``None``; FAILED_PRECONDITION ``key_reused`` when it was made for another request."""
        row = await self.store.by_key(v.guest_id, v.idempotency_key)
        if row is not None and row.request_hash != hash_:
            raise FailedPrecondition(f"{KEY_REUSED}: idempotency_key {v.idempotency_key!r} of guest {v.guest_id} made "
                                     f"booking {row.booking_id} of another request")
        return row

    async def _new(self, v: validation.CreateBooking, hash_: str, booking_id: str) -> BookingRow:
        """Price the stay and write the booking PENDING at its first step (FAILED at once when the gateway could
        never take its total)."""
        check_in = v.check_in.isoformat()
        availability = await self._timed("availability", self._inventory.availability(
            v.hotel_id, v.room_type_id, check_in, v.nights))
        rate = availability.room_type.nightly_rate
        now = self.now_ms()
        row = BookingRow(booking_id, v.guest_id, v.idempotency_key, hash_, v.hotel_id, v.room_type_id, check_in,
                         v.nights, v.rooms, v.card_token, rate.currency_code, rate.amount_minor * v.nights * v.rooms,
                         ids.hold_id(self._id_key, booking_id), PENDING, HOLD, 0, "", 0, now, now)
        if row.total_minor > MAX_PAYMENT_MINOR:
            log.info("booking %s: a total of %d minor units is over the gateway's largest payment; failed",
                     booking_id, row.total_minor)
            row = replace(row, status=FAILED, step=NO_STEP, failure_reason=PAYMENT_DECLINED)
            await self.store.write([insert_row(row)])
            metrics.BOOKINGS.labels("failed", failure_name(PAYMENT_DECLINED)).inc()
            return row
        await asyncio.shield(self._insert_pending(row))
        return row

    async def _insert_pending(self, row: BookingRow) -> None:
        await self.store.write([insert_row(row)])
        metrics.PENDING.inc()

    async def _run(self, row: BookingRow) -> BookingRow:
        """Take a PENDING booking's steps until it is CONFIRMED or FAILED."""
        steps = {HOLD: self._hold, AUTHORIZE: self._authorize, CONFIRM: self._confirm, RELEASE: self._release,
                 VOID: self._void}
        while row.status == PENDING:
            row = await steps[row.step](row)
        return row

    # -- the steps --------------------------------------------------------------------------------------------------

    def backoff_s(self, retry: int) -> float:
        """The wait before conflict retry number ``retry`` (1, 2, ...), in seconds: full jitter, ``uniform(0,
        min(cap, base * 2 ** (retry - 1)))`` of the settings' milliseconds."""
        s = self.settings
        return self._rng.uniform(0, min(s.conflict_backoff_cap_ms, s.conflict_backoff_base_ms * 2 ** (retry - 1))) / 1000

    async def _hold(self, row: BookingRow) -> BookingRow:
        """Step ``hold``: HoldRooms, retrying version conflicts (see the module docstring). The conflict retries are
        written with the step's outcome (also when HoldRooms goes unanswered, so a retry counts on from them)."""
        retries, reason, hold = row.conflict_retries, CONTENTION, None
        started = time.perf_counter()
        try:
            for attempt in range(self.settings.max_conflict_retries + 1):
                try:
                    hold = await self._inventory.hold(row.hold_id, row.hotel_id, row.room_type_id, row.check_in,
                                                      row.nights, row.rooms, self.settings.hold_ttl_ms)
                    break
                except VersionConflict:
                    if attempt == self.settings.max_conflict_retries:
                        break
                    retries += 1
                    await self._sleep(self.backoff_s(attempt + 1))
                except NoAvailability:
                    reason = NO_AVAILABILITY
                    break
        except DependencyUnavailable:
            if retries != row.conflict_retries:
                await self._save(row, conflict_retries=retries)
            raise
        finally:
            metrics.STEP_SECONDS.labels("hold").observe(time.perf_counter() - started)
        metrics.CONFLICT_RETRIES.observe(retries)
        if hold is not None and hold.status in KEPT_HOLDS:
            return await self._save(row, step=AUTHORIZE, conflict_retries=retries)
        if hold is not None:  # a stalled booking's hold ran out (EXPIRED) before the saga took it up again
            reason = NO_AVAILABILITY
        return await self._save(row, status=FAILED, step=NO_STEP, failure_reason=reason, conflict_retries=retries)

    async def _authorize(self, row: BookingRow) -> BookingRow:
        """Step ``authorize``: hold the total on the guest's card (see the module docstring)."""
        try:
            payment = await self._timed("authorize", self._gateway.authorize(
                ids.payment_key(row.booking_id, "authorize"), row.card_token, row.total, row.guest_id,
                f"hotel booking {row.booking_id}"))
        except PaymentRefused as refusal:
            log.info("booking %s: the gateway refused the authorisation (%s); releasing the hold", row.booking_id,
                     refusal)
            return await self._save(row, step=RELEASE, failure_reason=PAYMENT_DECLINED)
        if payment.status == payments_pb2.PAYMENT_STATUS_DECLINED:
            return await self._save(row, step=RELEASE, failure_reason=PAYMENT_DECLINED,
                                    payment_id=payment.payment_id)
        if payment.status != payments_pb2.PAYMENT_STATUS_AUTHORIZED:
            raise DependencyUnavailable(f"Authorize answered payment {payment.payment_id} "
                                        f"{payments_pb2.PaymentStatus.Name(payment.status)}; retry with the same key")
        return await self._save(row, step=CONFIRM, payment_id=payment.payment_id)

    async def _confirm(self, row: BookingRow) -> BookingRow:
        """Step ``confirm``: book the held rooms; a hold that ran out is compensated by voiding the payment."""
        try:
            await self._timed("confirm", self._inventory.confirm(row.hold_id))
        except HoldLost as lost:
            log.info("booking %s: its hold is gone (%s); voiding the authorisation", row.booking_id, lost)
            return await self._save(row, step=VOID, failure_reason=NO_AVAILABILITY)
        return await self._save(row, status=CONFIRMED, step=NO_STEP)

    async def _release(self, row: BookingRow) -> BookingRow:
        """Compensation ``release``: give the hold back, then FAILED."""
        await self._timed("release_hold", self._inventory.release(row.hold_id))
        metrics.COMPENSATIONS.labels("release_hold").inc()
        return await self._save(row, status=FAILED, step=NO_STEP)

    async def _void(self, row: BookingRow) -> BookingRow:
        """Compensation ``void``: release the authorisation, then FAILED."""
        await self._void_payment(row)
        metrics.COMPENSATIONS.labels("void_payment").inc()
        return await self._save(row, status=FAILED, step=NO_STEP)

    async def _void_payment(self, row: BookingRow) -> None:
        """Void the booking's authorisation (key ``<booking_id>:void``). A refusal (the payment is not AUTHORIZED, or
        the acquirer has nothing to void) means nothing is held: logged, and the booking goes on."""
        try:
            await self._timed("void", self._gateway.void(ids.payment_key(row.booking_id, "void"), row.payment_id))
        except PaymentRefused as refusal:
            log.warning("booking %s: the gateway refused to void payment %s (%s); nothing left to void",
                        row.booking_id, row.payment_id, refusal)

    # -- GetBooking, CancelBooking, CheckIn -------------------------------------------------------------------------

    async def get(self, request: booking_pb2.GetBookingRequest) -> booking_pb2.GetBookingResponse:
        """GetBooking: the booking as stored. INVALID_ARGUMENT ``booking_id``; NOT_FOUND; :class:`.calls.Unavailable`
        (the store)."""
        row = await self._booking(validation.booking_id(request.booking_id))
        return booking_pb2.GetBookingResponse(booking=row.to_proto())

    @staticmethod
    def _confirmed(row: BookingRow, wanted: str) -> None:
        """FAILED_PRECONDITION unless ``row`` is CONFIRMED without an intent other than ``wanted``."""
        if row.status != CONFIRMED:
            raise FailedPrecondition(f"booking_id: booking {row.booking_id} is {row.status}, not CONFIRMED")
        if row.step not in (NO_STEP, wanted):
            doing = "being cancelled" if row.step == CANCEL else "checking in"
            raise FailedPrecondition(f"booking_id: booking {row.booking_id} is {doing}")

    async def cancel(self, request: booking_pb2.CancelBookingRequest) -> booking_pb2.CancelBookingResponse:
        """CancelBooking: CANCELLED (a CANCELLED booking is returned). INVALID_ARGUMENT ``booking_id``; NOT_FOUND;
        FAILED_PRECONDITION (not CONFIRMED, or checking in); :class:`.calls.Unavailable` (the intent is kept: retry)."""
        booking_id = validation.booking_id(request.booking_id)
        row = await self._booking(booking_id)
        if row.status != CANCELLED:
            self._confirmed(row, CANCEL)
            async with self._claim(booking_id, wait=True):
                row = await self._booking(booking_id)
                if row.status != CANCELLED:
                    self._confirmed(row, CANCEL)
                    if row.step != CANCEL:
                        row = await self._save(row, step=CANCEL)
                    row = await self._cancel(row)
        return booking_pb2.CancelBookingResponse(booking=row.to_proto())

    async def _cancel(self, row: BookingRow) -> BookingRow:
        await self._timed("release_hold", self._inventory.release(row.hold_id))
        await self._void_payment(row)
        return await self._save(row, status=CANCELLED, step=NO_STEP)

    async def check_in(self, request: booking_pb2.CheckInRequest) -> booking_pb2.CheckInResponse:
        """CheckIn: CHECKED_IN (a CHECKED_IN booking is returned). INVALID_ARGUMENT ``booking_id``; NOT_FOUND;
        FAILED_PRECONDITION (not CONFIRMED, being cancelled, or the capture refused); :class:`.calls.Unavailable` (the
        intent is kept: retry)."""
        booking_id = validation.booking_id(request.booking_id)
        row = await self._booking(booking_id)
        if row.status != CHECKED_IN:
            self._confirmed(row, CHECK_IN)
            async with self._claim(booking_id, wait=True):
                row = await self._booking(booking_id)
                if row.status != CHECKED_IN:
                    self._confirmed(row, CHECK_IN)
                    if row.step != CHECK_IN:
                        row = await self._save(row, step=CHECK_IN)
                    row = await self._check_in(row)
        return booking_pb2.CheckInResponse(booking=row.to_proto())

    async def _check_in(self, row: BookingRow) -> BookingRow:
        try:
            await self._timed("capture", self._gateway.capture(ids.payment_key(row.booking_id, "capture"),
                                                               row.payment_id))
        except PaymentRefused as refusal:
            await self._save(row, step=NO_STEP)
            raise FailedPrecondition(f"booking_id: the capture of payment {row.payment_id} was refused "
                                     f"({refusal.details})") from None
        return await self._save(row, status=CHECKED_IN, step=NO_STEP)

    # -- resumption -------------------------------------------------------------------------------------------------

    async def resume(self, row: BookingRow) -> BookingRow | None:
        """Finish the unfinished ``row`` (PENDING, or CONFIRMED with an intent) unless a call holds it or it was
        finished since: the row as finished, or ``None``. Errors as the call that would finish it."""
        if self.held(row.booking_id):
            return None
        async with self._claim(row.booking_id, wait=False):
            current = await self.store.get(row.booking_id)
            if current is None or current.step == NO_STEP:
                return None
            if current.status == PENDING:
                return await self._run(current)
            if current.step == CANCEL:
                return await self._cancel(current)
            return await self._check_in(current)
