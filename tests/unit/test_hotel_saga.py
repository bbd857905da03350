"""hotel-booking's saga (services/hotel/booking): validation per field, ids, every step's failure and its
compensation, the optimistic lock mode's version conflicts retried with full-jitter backoff up to the budget,
idempotent retries (lost answers, the same key in flight, a different request), a crash between any two steps
finished by the recovery, cancellation and check-in with their intents, the store's invariants, and a hypothesis
property over random schedules of dependency failures, lost answers and crashes: every booking ends CONFIRMED with its
rooms booked and its total authorised, or FAILED with nothing held and nothing authorised.

Plain fakes stand in for the clients at the saga's interfaces (:class:`Inventory`, :class:`Gateway`) with the
contracts of hotel-inventory (a hold id held twice returns the first hold; ``booked + held <= rooms`` per night;
ConfirmHold of an expired hold is refused) and payments-gateway (a key answered twice gives the first answer; a
declining card's payment is DECLINED; Void of a VOIDED payment returns it). gRPC, the real clients and the service's
status codes are in tests/unit/test_hotel_booking_grpc.py.
"""

from __future__ import annotations

import asyncio
import random
import shutil
import sqlite3
import tempfile
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

import grpc
import pytest
from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import booking_pb2, hotel_pb2, inventory_pb2
from casemesh.payments.v1 import payments_pb2
from casemesh.services.hotel import contract
from casemesh.services.hotel.booking import ids, validation
from casemesh.services.hotel.booking.calls import DependencyUnavailable, Refused
from casemesh.services.hotel.booking.inventory import HoldLost, NoAvailability, VersionConflict
from casemesh.services.hotel.booking.payments import PaymentRefused
from casemesh.services.hotel.booking.recovery import Recovery
from casemesh.services.hotel.booking.saga import BookingSaga, request_hash
from casemesh.services.hotel.booking.settings import BookingSettings
from casemesh.services.hotel.booking.store import (
    AUTHORIZE,
    CANCEL,
    CHECK_IN,
    CONFIRM,
    HOLD,
    PENDING,
    RELEASE,
    VOID,
    BookingStore,
    StoreUnavailable,
)
from casemesh.services.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

HOTEL, ROOM_TYPE = "hotel-1", "double"
RATE = 12_500  # minor units a night
HB = hotel_pb2
PAY = payments_pb2
#: Grace 0: an unfinished booking is the recovery's at once (the tests say when it runs).
FAST = {"recovery_grace_s": 0}
KEY = b"k" * 32
#: A scripted outcome: the dependency does the call, then its answer is lost (UNAVAILABLE to the saga).
LOST = "lost"
#: A scripted outcome: the dependency does the call, then this process dies before it hears the answer.
CRASH = "crash"


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


class Crash(Exception):
    """This service died here (the test's SIGKILL): nothing after it in the call runs."""


class Faults:
    """Per method, outcomes scripted for its next calls: an exception (raised before the call does anything), a
    function (called first, then the call goes on), :data:`LOST` or :data:`CRASH` (after it did it); ``down``: every
    call fails before doing anything. ``tried`` counts the calls, failed or not."""

    def __init__(self) -> None:
        self.plan: dict[str, list] = defaultdict(list)
        self.down = False
        self.tried: Counter[str] = Counter()

    def add(self, method: str, *outcomes) -> None:
        self.plan[method].extend(outcomes)

    async def before(self, method: str):
        await asyncio.sleep(0)
        self.tried[method] += 1
        if self.down:
            raise DependencyUnavailable(f"{method}: down")
        if self.plan[method]:
            outcome = self.plan[method].pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            if callable(outcome):  # something happens at the dependency first (a hold runs out)
                outcome()
                return None
            return outcome
        return None

    @staticmethod
    def after(method: str, outcome) -> None:
        if outcome == LOST:
            raise DependencyUnavailable(f"{method}: the answer was lost")
        if outcome == CRASH:
            raise Crash(method)


# ----------------------------------------------------------------------------- the fakes


class FakeInventory:
    """hotel-inventory's contract in memory, at the saga's :class:`Inventory` interface: one room type of ``rooms``
    rooms at :data:`RATE`; holds by id; ``gate`` (an event): HoldRooms waits for it."""

    def __init__(self, rooms: int = 3, rate: int = RATE) -> None:
        self.room_type = HB.RoomType(hotel_id=HOTEL, room_type_id=ROOM_TYPE, name="Double", rooms=rooms,
                                     nightly_rate=money_pb2.Money(currency_code="EUR", amount_minor=rate))
        self.holds: dict[str, HB.Hold] = {}
        self.faults = Faults()
        self.calls: Counter[str] = Counter()
        self.ttls: list[int] = []
        self.gate: asyncio.Event | None = None

    def _type(self, hotel_id: str, room_type_id: str) -> HB.RoomType:
        if (hotel_id, room_type_id) != (HOTEL, ROOM_TYPE):
            raise NotFound(f"room_type_id: no room type {room_type_id}")
        return self.room_type

    @staticmethod
    def nights(hold: HB.Hold) -> list[str]:
        first = date.fromisoformat(hold.check_in)
        return [(first + timedelta(days=i)).isoformat() for i in range(hold.nights)]

    def taken(self, night: str, statuses=(HB.HOLD_STATUS_HELD, HB.HOLD_STATUS_CONFIRMED)) -> int:
        """Rooms of ``night`` held or booked."""
        return sum(h.rooms for h in self.holds.values() if h.status in statuses and night in self.nights(h))

    @staticmethod
    def _copy(hold: HB.Hold) -> HB.Hold:
        copy = HB.Hold()
        copy.CopyFrom(hold)
        return copy

    async def availability(self, hotel_id, room_type_id, check_in, nights) -> inventory_pb2.GetAvailabilityResponse:
        outcome = await self.faults.before("availability")
        self.calls["availability"] += 1
        room_type = self._type(hotel_id, room_type_id)
        stay = HB.Hold(check_in=check_in, nights=nights)
        response = inventory_pb2.GetAvailabilityResponse(room_type=room_type, nights=[
            HB.NightAvailability(night=n, sellable=room_type.rooms, available=room_type.rooms - self.taken(n))
            for n in self.nights(stay)])
        self.faults.after("availability", outcome)
        return response

    async def hold(self, hold_id, hotel_id, room_type_id, check_in, nights, rooms, ttl_ms) -> HB.Hold:
        outcome = await self.faults.before("hold")
        if self.gate is not None:
            await self.gate.wait()
        self.calls["hold"] += 1
        self.ttls.append(ttl_ms)
        hold = self.holds.get(hold_id)
        if hold is None:
            room_type = self._type(hotel_id, room_type_id)
            hold = HB.Hold(hold_id=hold_id, hotel_id=hotel_id, room_type_id=room_type_id, check_in=check_in,
                           nights=nights, rooms=rooms, status=HB.HOLD_STATUS_HELD, expires_at_unix_ms=1)
            for night in self.nights(hold):
                if self.taken(night) + rooms > room_type.rooms:
                    raise NoAvailability(f"{contract.NO_AVAILABILITY}: {night} has "
                                         f"{room_type.rooms - self.taken(night)} rooms")
            self.holds[hold_id] = hold
        elif (hold.check_in, hold.nights, hold.rooms) != (check_in, nights, rooms):
            raise FailedPrecondition(f"{contract.KEY_REUSED}: {hold_id} holds another stay")
        self.faults.after("hold", outcome)
        return self._copy(hold)

    async def confirm(self, hold_id) -> HB.Hold:
        outcome = await self.faults.before("confirm")
        self.calls["confirm"] += 1
        hold = self.holds.get(hold_id)
        if hold is None:
            raise HoldLost(f"no hold {hold_id}")
        if hold.status == HB.HOLD_STATUS_EXPIRED:
            raise HoldLost(f"{contract.HOLD_EXPIRED}: {hold_id}")
        if hold.status == HB.HOLD_STATUS_RELEASED:
            raise HoldLost(f"{contract.HOLD_RELEASED}: {hold_id}")
        hold.status, hold.expires_at_unix_ms = HB.HOLD_STATUS_CONFIRMED, 0
        self.faults.after("confirm", outcome)
        return self._copy(hold)

    async def release(self, hold_id) -> HB.Hold | None:
        outcome = await self.faults.before("release")
        self.calls["release"] += 1
        hold = self.holds.get(hold_id)
        if hold is None:
            return None
        if hold.status in (HB.HOLD_STATUS_HELD, HB.HOLD_STATUS_CONFIRMED):
            hold.status, hold.expires_at_unix_ms = HB.HOLD_STATUS_RELEASED, 0
        self.faults.after("release", outcome)
        return self._copy(hold)

    def expire(self, hold_id: str) -> None:
        """The hold's TTL ran out."""
        assert self.holds[hold_id].status == HB.HOLD_STATUS_HELD
        self.holds[hold_id].status = HB.HOLD_STATUS_EXPIRED

    def expire_all(self) -> None:
        """Every HELD hold's TTL ran out."""
        for hold_id, hold in self.holds.items():
            if hold.status == HB.HOLD_STATUS_HELD:
                self.expire(hold_id)


class FakeGateway:
    """payments-gateway's contract in memory, at the saga's :class:`Gateway` interface: cards by token (approved or
    always declined), payments by id, answers by (operation, key)."""

    def __init__(self) -> None:
        self.cards: dict[str, bool] = {}
        self.payments: dict[str, PAY.Payment] = {}
        self.answers: dict[tuple[str, str], tuple[tuple, str]] = {}
        self.faults = Faults()
        self.calls: Counter[str] = Counter()
        self.customers: dict[str, str] = {}

    def card(self, approve: bool = True) -> str:
        token = "tok_" + f"{len(self.cards):024d}"
        self.cards[token] = approve
        return token

    @staticmethod
    def _refused(method: str, code: grpc.StatusCode, details: str) -> PaymentRefused:
        return PaymentRefused(Refused(method, code, details))

    def _replay(self, operation: str, key: str, request: tuple) -> PAY.Payment | None:
        found = self.answers.get((operation, key))
        if found is None:
            return None
        if found[0] != request:
            raise self._refused(operation, grpc.StatusCode.FAILED_PRECONDITION, "idempotency_key: another request")
        return self._copy(found[1])

    def _copy(self, payment_id: str) -> PAY.Payment:
        copy = PAY.Payment()
        copy.CopyFrom(self.payments[payment_id])
        return copy

    async def authorize(self, key, card_token, amount, customer_id, description) -> PAY.Payment:
        outcome = await self.faults.before("authorize")
        self.calls["authorize"] += 1
        request = (card_token, amount.SerializeToString(), customer_id)
        payment = self._replay("authorize", key, request)
        if payment is None:
            if card_token not in self.cards:
                raise self._refused("Authorize", grpc.StatusCode.NOT_FOUND, f"card_token: no card {card_token}")
            payment_id = "pay_" + f"{len(self.payments):024d}"
            approved = self.cards[card_token]
            self.payments[payment_id] = PAY.Payment(
                payment_id=payment_id, merchant_id=contract.MERCHANT_ID, amount=amount, description=description,
                status=PAY.PAYMENT_STATUS_AUTHORIZED if approved else PAY.PAYMENT_STATUS_DECLINED,
                decline_code="" if approved else "card_declined")
            self.answers[("authorize", key)] = (request, payment_id)
            self.customers[payment_id] = customer_id
            payment = self._copy(payment_id)
        self.faults.after("authorize", outcome)
        return payment

    async def _settle(self, operation: str, key: str, payment_id: str, allowed: set[int], to: int) -> PAY.Payment:
        outcome = await self.faults.before(operation)
        self.calls[operation] += 1
        payment = self._replay(operation, key, (payment_id,))
        if payment is None:
            found = self.payments.get(payment_id)
            if found is None:
                raise self._refused(operation, grpc.StatusCode.NOT_FOUND, f"payment_id: no payment {payment_id}")
            if found.status not in allowed:
                raise self._refused(operation, grpc.StatusCode.FAILED_PRECONDITION,
                                    f"payment_id: payment {payment_id} is {PAY.PaymentStatus.Name(found.status)}")
            found.status = to
            if to == PAY.PAYMENT_STATUS_CAPTURED:
                found.captured_minor = found.amount.amount_minor
            self.answers[(operation, key)] = ((payment_id,), payment_id)
            payment = self._copy(payment_id)
        self.faults.after(operation, outcome)
        return payment

    async def capture(self, key, payment_id) -> PAY.Payment:
        return await self._settle("capture", key, payment_id, {PAY.PAYMENT_STATUS_AUTHORIZED},
                                  PAY.PAYMENT_STATUS_CAPTURED)

    async def void(self, key, payment_id) -> PAY.Payment:
        return await self._settle("void", key, payment_id, {PAY.PAYMENT_STATUS_AUTHORIZED, PAY.PAYMENT_STATUS_VOIDED},
                                  PAY.PAYMENT_STATUS_VOIDED)


class Clock:
    """A clock the test moves: seconds since the Unix epoch."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Env:
    """The fakes and the saga over a store in ``folder``; :meth:`restart` reopens the saga over the same folder (a
    crash of hotel-booking, its dependencies living on). Conflict backoffs are recorded in ``sleeps``, not slept."""

    def __init__(self, folder: Path, rooms: int = 3, **settings) -> None:
        self.folder = folder
        self.settings = BookingSettings(**{**FAST, **settings})
        self.inventory = FakeInventory(rooms)
        self.gateway = FakeGateway()
        self.clock = Clock()
        self.sleeps: list[float] = []
        self.card = self.gateway.card()
        self.saga = self._open()
        self.recovery = Recovery(self.saga)

    def _open(self) -> BookingSaga:
        return BookingSaga(self.settings, BookingStore(self.folder / "bookings.sqlite3"), self.inventory,
                           self.gateway, id_key=KEY, clock=self.clock, sleep=self._sleep, rng=random.Random(7))

    async def _sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(0)

    async def restart(self) -> BookingSaga:
        await self.saga.close()
        self.saga = self._open()
        self.recovery = Recovery(self.saga)
        await self.saga.start()
        return self.saga

    def request(self, key: str = "k1", **fields) -> booking_pb2.CreateBookingRequest:
        return create_request(key, **{"card_token": self.card, **fields})

    async def book(self, key: str = "k1", **fields) -> HB.Booking:
        return (await self.saga.create(self.request(key, **fields))).booking

    async def get(self, booking_id: str) -> HB.Booking:
        return (await self.saga.get(booking_pb2.GetBookingRequest(booking_id=booking_id))).booking

    async def cancel(self, booking_id: str) -> HB.Booking:
        return (await self.saga.cancel(booking_pb2.CancelBookingRequest(booking_id=booking_id))).booking

    async def check_in(self, booking_id: str) -> HB.Booking:
        return (await self.saga.check_in(booking_pb2.CheckInRequest(booking_id=booking_id))).booking

    async def stored(self, key: str = "k1", guest: str = "guest-1"):
        return await self.saga.store.by_key(guest, key)

    def hold(self, booking: HB.Booking) -> HB.Hold:
        return self.inventory.holds[booking.hold_id]

    def payment(self, booking: HB.Booking) -> PAY.Payment:
        return self.gateway.payments[booking.payment_id]


def create_request(key: str = "k1", guest_id: str = "guest-1", hotel_id: str = HOTEL, room_type_id: str = ROOM_TYPE,
                   check_in: str = "2030-06-01", nights: int = 2, rooms: int = 1,
                   card_token: str = "tok_" + "0" * 24) -> booking_pb2.CreateBookingRequest:
    return booking_pb2.CreateBookingRequest(idempotency_key=key, guest_id=guest_id, hotel_id=hotel_id,
                                            room_type_id=room_type_id, check_in=check_in, nights=nights, rooms=rooms,
                                            card_token=card_token)


@pytest.fixture
async def env(tmp_path):
    environment = Env(tmp_path)
    await environment.saga.start()
    try:
        yield environment
    finally:
        await environment.saga.close()


def assert_confirmed(env: Env, booking: HB.Booking, nights: int = 2, rooms: int = 1) -> None:
    """CONFIRMED: its rooms booked, its total authorised (not captured), nothing else done."""
    assert booking.status == HB.BOOKING_STATUS_CONFIRMED, booking
    assert booking.failure_reason == HB.BOOKING_FAILURE_UNSPECIFIED
    assert booking.total.amount_minor == RATE * nights * rooms and booking.total.currency_code == "EUR"
    assert env.hold(booking).status == HB.HOLD_STATUS_CONFIRMED
    payment = env.payment(booking)
    assert payment.status == PAY.PAYMENT_STATUS_AUTHORIZED and payment.amount == booking.total


def assert_nothing_held(env: Env, booking: HB.Booking, reason: int) -> None:
    """FAILED with ``reason``: no room held or booked for it, no money authorised."""
    assert booking.status == HB.BOOKING_STATUS_FAILED and booking.failure_reason == reason, booking
    hold = env.inventory.holds.get(booking.hold_id)
    assert hold is None or hold.status in (HB.HOLD_STATUS_RELEASED, HB.HOLD_STATUS_EXPIRED), hold
    if booking.payment_id:
        assert env.payment(booking).status in (PAY.PAYMENT_STATUS_DECLINED, PAY.PAYMENT_STATUS_VOIDED)


# ----------------------------------------------------------------------------- settings, ids, validation


def test_settings_defaults_and_refusals():
    s = BookingSettings()
    assert (s.hold_ttl_ms, s.max_conflict_retries, s.conflict_backoff_base_ms, s.conflict_backoff_cap_ms) == (
        0, 8, 5.0, 200.0)
    assert (s.inventory_timeout_s, s.gateway_timeout_s) == (2.0, 4.0)
    assert (s.recovery_grace_s, s.recovery_interval_s, s.recovery_max_backoff_s) == (5.0, 5.0, 60.0)
    assert BookingSettings(hold_ttl_ms=1_000).hold_ttl_ms == 1_000
    for bad in ({"hold_ttl_ms": 999}, {"hold_ttl_ms": 3_600_001}, {"max_conflict_retries": -1},
                {"conflict_backoff_base_ms": 10, "conflict_backoff_cap_ms": 5}, {"inventory_timeout_s": 0},
                {"recovery_interval_s": 10, "recovery_max_backoff_s": 5}, {"lock_mode": "optimistic"}):
        with pytest.raises(ValidationError):
            BookingSettings(**bad)


def test_ids_are_keyed_deterministic_and_of_the_contract_shape():
    booking_id = ids.booking_id(KEY, "guest-1", "k1")
    assert contract.is_booking_id(booking_id) and booking_id == ids.booking_id(KEY, "guest-1", "k1")
    assert booking_id != ids.booking_id(KEY, "guest-2", "k1") != ids.booking_id(KEY, "guest-1", "k2")
    assert booking_id != ids.booking_id(b"x" * 32, "guest-1", "k1")
    assert ids.booking_id(KEY, "a", "b-c") != ids.booking_id(KEY, "a-b", "c")  # NUL-separated: no id holds one
    hold_id = ids.hold_id(KEY, booking_id)
    assert contract.is_hold_id(hold_id) and hold_id == ids.hold_id(KEY, booking_id) != ids.hold_id(KEY, "bk_x")
    assert ids.payment_key(booking_id, "authorize") == f"{booking_id}:authorize"


def test_request_hash_leaves_the_key_out():
    assert request_hash(create_request("a")) == request_hash(create_request("b"))
    assert request_hash(create_request("a")) != request_hash(create_request("a", nights=3))


@pytest.mark.parametrize(("changes", "field"), [
    ({"key": ""}, "idempotency_key"), ({"key": "x" * 256}, "idempotency_key"), ({"key": "a\nb"}, "idempotency_key"),
    ({"guest_id": ""}, "guest_id"), ({"guest_id": "a b"}, "guest_id"), ({"hotel_id": "h" * 65}, "hotel_id"),
    ({"room_type_id": "d/1"}, "room_type_id"), ({"check_in": ""}, "check_in"), ({"check_in": "2030-02-30"}, "check_in"),
    ({"check_in": "1999-12-31"}, "check_in"), ({"check_in": "2100-01-01"}, "check_in"),
    ({"check_in": "2030-6-01"}, "check_in"), ({"nights": 0}, "nights"), ({"nights": 31}, "nights"),
    ({"rooms": 0}, "rooms"), ({"rooms": 11}, "rooms"), ({"card_token": ""}, "card_token"),
    ({"card_token": "tok_" + "A" * 24}, "card_token"), ({"card_token": "tok_" + "a" * 23}, "card_token"),
    ({"key": "", "guest_id": ""}, "idempotency_key"), ({"nights": 0, "rooms": 0}, "nights"),
])
def test_create_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.create_booking(create_request(**changes))
    assert error.value.field == field


def test_create_validation_accepts_the_limits():
    v = validation.create_booking(create_request("x" * 255, guest_id="g" * 64, check_in="2099-12-31", nights=30,
                                                 rooms=10))
    assert v.check_in == date(2099, 12, 31) and (v.nights, v.rooms) == (30, 10)
    assert validation.create_booking(create_request(" ~", check_in="2000-01-01", nights=1, rooms=1)).nights == 1


@pytest.mark.parametrize("value", ["", "bk_", "bk_" + "a" * 23, "bk_" + "A" * 24, "hold_" + "a" * 24,
                                   "bk_" + "1" * 24])
def test_booking_id_validation(value):
    with pytest.raises(InvalidArgument) as error:
        validation.booking_id(value)
    assert error.value.field == "booking_id"


async def test_bad_requests_change_nothing(env):
    for request in (env.request(nights=0), env.request(card_token="x")):
        with pytest.raises(InvalidArgument):
            await env.saga.create(request)
    for call, request in ((env.saga.get, booking_pb2.GetBookingRequest), (env.saga.cancel,
                          booking_pb2.CancelBookingRequest), (env.saga.check_in, booking_pb2.CheckInRequest)):
        with pytest.raises(InvalidArgument):
            await call(request(booking_id="nope"))
    assert not env.inventory.calls and not env.gateway.calls
    assert await env.saga.store.count_pending() == 0


# ----------------------------------------------------------------------------- the saga


async def test_a_booking_is_held_authorised_and_confirmed(env):
    confirmed = sample("casemesh_hotel_booking_bookings_total", {"outcome": "confirmed", "reason": "none"})
    booking = await env.book(nights=3, rooms=2)
    assert_confirmed(env, booking, nights=3, rooms=2)
    assert booking.booking_id == ids.booking_id(KEY, "guest-1", "k1")
    assert booking.hold_id == ids.hold_id(KEY, booking.booking_id) and booking.conflict_retries == 0
    assert (booking.guest_id, booking.hotel_id, booking.room_type_id, booking.check_in, booking.nights,
            booking.rooms) == ("guest-1", HOTEL, ROOM_TYPE, "2030-06-01", 3, 2)
    assert booking.created_at_unix_ms == int(env.clock.now * 1000)
    assert env.hold(booking).rooms == 2 and env.hold(booking).nights == 3 and env.inventory.ttls == [0]
    assert env.gateway.answers[("authorize", f"{booking.booking_id}:authorize")][1] == booking.payment_id
    assert env.gateway.customers[booking.payment_id] == "guest-1"
    assert env.payment(booking).merchant_id == contract.MERCHANT_ID
    assert sample("casemesh_hotel_booking_bookings_total", {"outcome": "confirmed", "reason": "none"}) == confirmed + 1
    assert await env.get(booking.booking_id) == booking
    assert await env.saga.store.count_pending() == 0


async def test_the_retry_returns_the_booking_and_calls_nothing(env):
    replays = sample("casemesh_hotel_booking_idempotent_replays_total")
    booking = await env.book()
    calls = (env.inventory.calls.copy(), env.gateway.calls.copy())
    assert await env.book() == booking
    assert (env.inventory.calls, env.gateway.calls) == calls
    assert sample("casemesh_hotel_booking_idempotent_replays_total") == replays + 1
    other = await env.book("k2")  # another key of the same guest: another booking
    assert other.booking_id != booking.booking_id and other.hold_id != booking.hold_id
    assert other.payment_id != booking.payment_id


async def test_a_key_used_for_another_request_is_refused(env):
    booking = await env.book()
    with pytest.raises(FailedPrecondition) as error:
        await env.book(nights=3)
    assert contract.failed_precondition_reason(str(error.value)) == contract.KEY_REUSED
    assert (await env.get(booking.booking_id)) == booking
    assert (await env.book("k1", guest_id="guest-2")).booking_id != booking.booking_id  # keys are per guest


async def test_an_unknown_room_type_is_not_found_and_stores_nothing(env):
    with pytest.raises(NotFound, match="room_type_id"):
        await env.book(room_type_id="suite")
    assert await env.stored() is None and not env.inventory.holds


async def test_a_total_over_the_gateways_largest_payment_fails_at_once(tmp_path):
    env = Env(tmp_path)
    env.inventory.room_type.nightly_rate.amount_minor = 10_000_000
    booking = await env.book(nights=30, rooms=1)  # 300,000,000 minor units
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_PAYMENT_DECLINED)
    assert booking.total.amount_minor == 300_000_000 and not booking.payment_id
    assert not env.inventory.holds and not env.gateway.calls
    await env.saga.close()


async def test_no_availability_fails_with_nothing_authorised(env):
    for n in range(3):
        assert_confirmed(env, await env.book(f"k{n}", check_in="2030-06-02", nights=1), nights=1)
    booking = await env.book("late", check_in="2030-06-01", nights=3)  # the 2nd night is full
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    assert not booking.payment_id and booking.hold_id not in env.inventory.holds
    assert env.gateway.calls["authorize"] == 3
    assert await env.book("late", check_in="2030-06-01", nights=3) == booking


async def test_version_conflicts_are_retried_with_full_jitter_backoff(env):
    env.inventory.faults.add("hold", *(VersionConflict("aborted: version moved") for _ in range(4)))
    before = sample("casemesh_hotel_booking_conflict_retries_count")
    retries = sample("casemesh_hotel_booking_conflict_retries_sum")
    booking = await env.book()
    assert_confirmed(env, booking)
    assert booking.conflict_retries == 4 and len(env.sleeps) == 4
    for retry, slept in enumerate(env.sleeps, 1):
        assert 0 <= slept <= min(200, 5 * 2 ** (retry - 1)) / 1000
    assert sample("casemesh_hotel_booking_conflict_retries_count") == before + 1
    assert sample("casemesh_hotel_booking_conflict_retries_sum") == retries + 4


def test_the_backoff_is_capped():
    saga = BookingSaga(BookingSettings(conflict_backoff_base_ms=10, conflict_backoff_cap_ms=50), None, None, None,
                       id_key=KEY, rng=random.Random(1))
    draws = [saga.backoff_s(retry) for retry in range(1, 12) for _ in range(50)]
    assert max(draws) <= 0.05 and min(draws) >= 0
    assert max(saga.backoff_s(1) for _ in range(200)) <= 0.01


async def test_the_conflict_budget_runs_out_as_contention(tmp_path):
    env = Env(tmp_path, max_conflict_retries=3)
    env.inventory.faults.add("hold", *(VersionConflict("aborted") for _ in range(10)))
    failed = sample("casemesh_hotel_booking_bookings_total", {"outcome": "failed", "reason": "contention"})
    booking = await env.book()
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_CONTENTION)
    assert booking.conflict_retries == 3 and len(env.sleeps) == 3 and not env.gateway.calls
    assert sample("casemesh_hotel_booking_bookings_total", {"outcome": "failed", "reason": "contention"}) == failed + 1
    assert await env.book() == booking  # the refusal is the key's answer
    await env.saga.close()


async def test_conflicts_then_unavailable_keep_the_count_and_the_retry_goes_on(env):
    env.inventory.faults.add("hold", VersionConflict("a"), VersionConflict("b"), DependencyUnavailable("down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    row = await env.stored()
    assert (row.status, row.step, row.conflict_retries) == (PENDING, HOLD, 2)
    env.inventory.faults.add("hold", VersionConflict("c"))
    booking = await env.book()
    assert_confirmed(env, booking)
    assert booking.conflict_retries == 3


async def test_a_declined_card_releases_the_hold(env):
    releases = sample("casemesh_hotel_booking_compensations_total", {"kind": "release_hold"})
    booking = await env.book(card_token=env.gateway.card(approve=False))
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_PAYMENT_DECLINED)
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_DECLINED
    assert env.hold(booking).status == HB.HOLD_STATUS_RELEASED
    assert sample("casemesh_hotel_booking_compensations_total", {"kind": "release_hold"}) == releases + 1
    assert env.inventory.taken("2030-06-01") == 0


async def test_an_unknown_card_token_is_a_decline(env):
    booking = await env.book(card_token="tok_" + "z" * 24)
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_PAYMENT_DECLINED)
    assert not booking.payment_id and env.hold(booking).status == HB.HOLD_STATUS_RELEASED


async def test_a_hold_that_expired_before_its_confirmation_voids_the_payment(env):
    voids = sample("casemesh_hotel_booking_compensations_total", {"kind": "void_payment"})
    env.inventory.faults.add("confirm", DependencyUnavailable("inventory down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    row = await env.stored()
    assert (row.status, row.step) == (PENDING, CONFIRM)
    env.inventory.expire(row.hold_id)
    booking = await env.book()
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED
    assert env.gateway.answers[("void", f"{booking.booking_id}:void")][1] == booking.payment_id
    assert sample("casemesh_hotel_booking_compensations_total", {"kind": "void_payment"}) == voids + 1


async def test_a_stalled_bookings_hold_found_expired_fails_without_payment(env):
    env.gateway.faults.add("authorize", DependencyUnavailable("gateway down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    row = await env.stored()
    assert row.step == AUTHORIZE
    # A crash lost the step's write: the row is back at ``hold`` while the hold itself ran out.
    await env.saga.store.write([("UPDATE bookings SET step = ? WHERE booking_id = ?", (HOLD, row.booking_id))])
    env.inventory.expire(row.hold_id)
    booking = await env.book()
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    assert not booking.payment_id and not env.gateway.payments


@pytest.mark.parametrize(("dependency", "method", "step"), [
    ("inventory", "hold", HOLD), ("gateway", "authorize", AUTHORIZE), ("inventory", "confirm", CONFIRM),
])
async def test_an_unreachable_step_leaves_the_booking_pending_and_the_retry_finishes_it(env, dependency, method, step):
    getattr(env, dependency).faults.add(method, DependencyUnavailable(f"{method}: down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    row = await env.stored()
    assert (row.status, row.step) == (PENDING, step)
    assert (await env.get(row.booking_id)).status == HB.BOOKING_STATUS_PENDING
    assert sample("casemesh_hotel_booking_pending") >= 1
    assert_confirmed(env, await env.book())
    assert len(env.inventory.holds) == 1 and len(env.gateway.payments) == 1


async def test_an_unreachable_availability_stores_nothing(env):
    env.inventory.faults.add("availability", DependencyUnavailable("down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    assert await env.stored() is None
    assert_confirmed(env, await env.book())


@pytest.mark.parametrize(("method", "card", "reason", "step"), [
    ("release", False, HB.BOOKING_FAILURE_PAYMENT_DECLINED, RELEASE),
    ("void", True, HB.BOOKING_FAILURE_NO_AVAILABILITY, VOID),
])
async def test_an_unreachable_compensation_is_finished_by_the_retry(env, method, card, reason, step):
    dependency = env.inventory if method == "release" else env.gateway
    dependency.faults.add(method, DependencyUnavailable(f"{method}: down"))
    if method == "void":
        env.inventory.faults.add("confirm", env.inventory.expire_all)
    request = env.request(card_token=env.gateway.card(approve=card))
    with pytest.raises(DependencyUnavailable):
        await env.saga.create(request)
    row = await env.stored()
    assert (row.status, row.step, row.failure_reason) == (PENDING, step, reason)
    assert (await env.get(row.booking_id)).failure_reason == HB.BOOKING_FAILURE_UNSPECIFIED  # only once FAILED
    booking = (await env.saga.create(request)).booking
    assert booking.status == HB.BOOKING_STATUS_FAILED and booking.failure_reason == reason
    if method == "release":
        assert env.hold(booking).status == HB.HOLD_STATUS_RELEASED
    else:
        assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED


@pytest.mark.parametrize(("dependency", "method"), [
    ("inventory", "hold"), ("gateway", "authorize"), ("inventory", "confirm"),
])
async def test_lost_answers_are_taken_again_with_one_effect(env, dependency, method):
    getattr(env, dependency).faults.add(method, LOST)
    with pytest.raises(DependencyUnavailable):
        await env.book()
    booking = await env.book()
    assert_confirmed(env, booking)
    assert len(env.inventory.holds) == 1 and len(env.gateway.payments) == 1
    assert getattr(env, dependency).calls[method] == 2


async def test_the_same_key_in_flight_is_aborted(env):
    env.inventory.gate = asyncio.Event()
    first = asyncio.create_task(env.book())
    while await env.stored() is None:  # claimed, priced, written PENDING, waiting at HoldRooms
        await asyncio.sleep(0.001)
    with pytest.raises(Aborted):
        await env.book()
    with pytest.raises(FailedPrecondition):  # PENDING: not yet cancellable
        await env.cancel(ids.booking_id(KEY, "guest-1", "k1"))
    env.inventory.gate.set()
    booking = await first
    assert_confirmed(env, booking)
    assert await env.book() == booking


async def test_concurrent_guests_never_book_more_rooms_than_there_are(env):
    bookings = await asyncio.gather(*(env.book(f"k{n}", guest_id=f"guest-{n}", rooms=1 + n % 2) for n in range(8)))
    confirmed = [b for b in bookings if b.status == HB.BOOKING_STATUS_CONFIRMED]
    assert sum(b.rooms for b in confirmed) <= 3 and confirmed
    for booking in bookings:
        if booking.status == HB.BOOKING_STATUS_CONFIRMED:
            assert_confirmed(env, booking, rooms=booking.rooms)
        else:
            assert_nothing_held(env, booking, HB.BOOKING_FAILURE_NO_AVAILABILITY)


# ----------------------------------------------------------------------------- crashes and the recovery


@pytest.mark.parametrize(("dependency", "method", "card", "outcome"), [
    ("inventory", "hold", True, HB.BOOKING_STATUS_CONFIRMED),
    ("gateway", "authorize", True, HB.BOOKING_STATUS_CONFIRMED),
    ("inventory", "confirm", True, HB.BOOKING_STATUS_CONFIRMED),
    ("gateway", "authorize", False, HB.BOOKING_STATUS_FAILED),
    ("inventory", "release", False, HB.BOOKING_STATUS_FAILED),
])
async def test_a_crash_after_any_call_is_finished_by_the_recovery(env, dependency, method, card, outcome):
    getattr(env, dependency).faults.add(method, CRASH)
    request = env.request(card_token=env.gateway.card(approve=card))
    with pytest.raises(Crash):
        await env.saga.create(request)
    assert (await env.stored()).status == PENDING
    await env.restart()
    assert sample("casemesh_hotel_booking_pending") == 1
    recovered = sample("casemesh_hotel_booking_recovered_total", {"outcome": HB.BookingStatus.Name(outcome)[
        len("BOOKING_STATUS_"):].lower()})
    assert await env.recovery.sweep()
    booking = (await env.saga.create(request)).booking
    assert booking.status == outcome
    if outcome == HB.BOOKING_STATUS_CONFIRMED:
        assert_confirmed(env, booking)
    else:
        assert_nothing_held(env, booking, HB.BOOKING_FAILURE_PAYMENT_DECLINED)
    assert len(env.inventory.holds) == 1 and len(env.gateway.payments) == 1
    assert sample("casemesh_hotel_booking_recovered_total", {"outcome": HB.BookingStatus.Name(outcome)[
        len("BOOKING_STATUS_"):].lower()}) == recovered + 1
    assert sample("casemesh_hotel_booking_pending") == 0


async def test_a_crash_after_the_void_is_finished_by_the_recovery(env):
    env.inventory.faults.add("confirm", env.inventory.expire_all)
    env.gateway.faults.add("void", CRASH)
    with pytest.raises(Crash):
        await env.book()
    await env.restart()
    assert await env.recovery.sweep()
    booking = await env.book()
    assert_nothing_held(env, booking, HB.BOOKING_FAILURE_NO_AVAILABILITY)
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED and env.gateway.calls["void"] == 2


async def test_the_recovery_waits_for_the_grace_and_skips_held_bookings(tmp_path):
    env = Env(tmp_path, recovery_grace_s=30)
    env.gateway.faults.add("authorize", DependencyUnavailable("down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    assert await env.recovery.sweep() and (await env.stored()).step == AUTHORIZE  # too young
    env.clock.now += 31
    env.inventory.gate = asyncio.Event()  # a call of this process holds the next booking
    second = asyncio.create_task(env.book("k2"))
    while await env.stored("k2") is None:
        await asyncio.sleep(0.001)
    await env.saga.store.write([("UPDATE bookings SET updated_at_unix_ms = 0 WHERE idempotency_key = 'k2'", ())])
    assert await env.recovery.sweep()
    assert (await env.stored()).status == "CONFIRMED" and (await env.stored("k2")).status == PENDING
    env.inventory.gate.set()
    assert_confirmed(env, await second)
    await env.saga.close()


async def test_the_recovery_stops_at_an_unreachable_dependency_and_runs_in_the_background(tmp_path):
    env = Env(tmp_path, recovery_interval_s=0.01)
    for key in ("k1", "k2"):
        env.gateway.faults.add("authorize", DependencyUnavailable("down"))
        with pytest.raises(DependencyUnavailable):
            await env.book(key)
    env.gateway.faults.down = True
    unavailable = sample("casemesh_hotel_booking_recovered_total", {"outcome": "unavailable"})
    assert not await env.recovery.sweep()
    assert sample("casemesh_hotel_booking_recovered_total", {"outcome": "unavailable"}) == unavailable + 1
    assert env.gateway.faults.tried["authorize"] == 3  # the second booking was not tried
    env.gateway.faults.down = False
    env.recovery.start()
    try:
        for _ in range(500):
            if (await env.saga.store.count_pending()) == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        await env.recovery.stop()
    for key in ("k1", "k2"):
        assert_confirmed(env, await env.book(key))
    await env.saga.close()


async def test_a_refused_step_is_logged_and_left_for_a_person(env):
    env.inventory.faults.add("hold", DependencyUnavailable("down"))
    with pytest.raises(DependencyUnavailable):
        await env.book()
    env.inventory.faults.add("hold", FailedPrecondition(f"{contract.KEY_REUSED}: another stay"))
    refused = sample("casemesh_hotel_booking_recovered_total", {"outcome": "refused"})
    assert await env.recovery.sweep()
    assert sample("casemesh_hotel_booking_recovered_total", {"outcome": "refused"}) == refused + 1
    assert (await env.stored()).step == HOLD


# ----------------------------------------------------------------------------- cancellation and check-in


async def test_cancel_releases_the_rooms_and_voids_the_payment(env):
    cancelled = sample("casemesh_hotel_booking_cancellations_total")
    booking = await env.book()
    done = await env.cancel(booking.booking_id)
    assert done.status == HB.BOOKING_STATUS_CANCELLED and done.payment_id == booking.payment_id
    assert env.hold(booking).status == HB.HOLD_STATUS_RELEASED
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED
    assert env.inventory.taken("2030-06-01") == 0
    assert await env.cancel(booking.booking_id) == done  # cancelling again returns it
    assert env.gateway.calls["void"] == 1
    assert sample("casemesh_hotel_booking_cancellations_total") == cancelled + 1
    assert (await env.book()).status == HB.BOOKING_STATUS_CANCELLED  # the key's booking, as it is now
    with pytest.raises(FailedPrecondition):
        await env.check_in(booking.booking_id)


async def test_cancel_and_check_in_refuse_what_is_not_confirmed(env):
    failed = await env.book(card_token=env.gateway.card(approve=False))
    for call in (env.cancel, env.check_in):
        with pytest.raises(FailedPrecondition, match="FAILED, not CONFIRMED"):
            await call(failed.booking_id)
        with pytest.raises(NotFound):
            await call(ids.booking_id(KEY, "nobody", "k"))
    with pytest.raises(NotFound):
        await env.get(ids.booking_id(KEY, "nobody", "k"))


@pytest.mark.parametrize("method", ["release", "void"])
async def test_an_interrupted_cancel_keeps_its_intent_and_is_finished(env, method):
    booking = await env.book()
    dependency = env.inventory if method == "release" else env.gateway
    dependency.faults.add(method, DependencyUnavailable(f"{method}: down"))
    with pytest.raises(DependencyUnavailable):
        await env.cancel(booking.booking_id)
    row = await env.saga.store.get(booking.booking_id)
    assert (row.status, row.step) == ("CONFIRMED", CANCEL)
    with pytest.raises(FailedPrecondition, match="being cancelled"):
        await env.check_in(booking.booking_id)
    assert (await env.cancel(booking.booking_id)).status == HB.BOOKING_STATUS_CANCELLED
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED


async def test_a_crash_mid_cancel_is_finished_by_the_recovery(env):
    booking = await env.book()
    env.inventory.faults.add("release", CRASH)
    with pytest.raises(Crash):
        await env.cancel(booking.booking_id)
    await env.restart()
    assert await env.recovery.sweep()
    done = await env.get(booking.booking_id)
    assert done.status == HB.BOOKING_STATUS_CANCELLED
    assert env.hold(booking).status == HB.HOLD_STATUS_RELEASED
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_VOIDED


async def test_a_refused_void_on_cancel_means_nothing_is_held(env):
    booking = await env.book()
    env.gateway.payments[booking.payment_id].status = PAY.PAYMENT_STATUS_DECLINED  # whatever happened there
    assert (await env.cancel(booking.booking_id)).status == HB.BOOKING_STATUS_CANCELLED


async def test_check_in_captures_the_authorisation(env):
    check_ins = sample("casemesh_hotel_booking_check_ins_total")
    booking = await env.book()
    done = await env.check_in(booking.booking_id)
    assert done.status == HB.BOOKING_STATUS_CHECKED_IN
    payment = env.payment(booking)
    assert payment.status == PAY.PAYMENT_STATUS_CAPTURED and payment.captured_minor == booking.total.amount_minor
    assert env.gateway.answers[("capture", f"{booking.booking_id}:capture")][1] == booking.payment_id
    assert await env.check_in(booking.booking_id) == done and env.gateway.calls["capture"] == 1
    assert env.hold(booking).status == HB.HOLD_STATUS_CONFIRMED
    with pytest.raises(FailedPrecondition, match="CHECKED_IN, not CONFIRMED"):
        await env.cancel(booking.booking_id)
    assert sample("casemesh_hotel_booking_check_ins_total") == check_ins + 1


async def test_check_in_after_a_lost_capture_answer_captures_once(env):
    booking = await env.book()
    env.gateway.faults.add("capture", LOST)
    with pytest.raises(DependencyUnavailable):
        await env.check_in(booking.booking_id)
    assert (await env.saga.store.get(booking.booking_id)).step == CHECK_IN
    with pytest.raises(FailedPrecondition, match="checking in"):
        await env.cancel(booking.booking_id)
    await env.restart()
    assert await env.recovery.sweep()
    assert (await env.get(booking.booking_id)).status == HB.BOOKING_STATUS_CHECKED_IN
    assert env.payment(booking).status == PAY.PAYMENT_STATUS_CAPTURED


async def test_a_refused_capture_clears_the_intent(env):
    booking = await env.book()
    env.gateway.faults.add("capture", PaymentRefused(Refused("Capture", grpc.StatusCode.FAILED_PRECONDITION,
                                                             "payment_id: psp-a refused the capture")))
    with pytest.raises(FailedPrecondition, match="refused"):
        await env.check_in(booking.booking_id)
    row = await env.saga.store.get(booking.booking_id)
    assert (row.status, row.step) == ("CONFIRMED", "")
    assert (await env.cancel(booking.booking_id)).status == HB.BOOKING_STATUS_CANCELLED


# ----------------------------------------------------------------------------- the store


async def test_the_store_refuses_what_breaks_its_invariants(env):
    booking = await env.book()
    failed = await env.book("k2", card_token=env.gateway.card(approve=False))
    db = sqlite3.connect(env.folder / "bookings.sqlite3")
    try:
        for sql in (
            f"UPDATE bookings SET status = 'CONFIRMED' WHERE booking_id = '{failed.booking_id}'",  # final
            f"UPDATE bookings SET status = 'CANCELLED' WHERE booking_id = '{booking.booking_id}'",  # no intent
            f"UPDATE bookings SET status = 'PENDING', step = 'hold' WHERE booking_id = '{booking.booking_id}'",
            f"UPDATE bookings SET total_minor = 1 WHERE booking_id = '{booking.booking_id}'",  # the request
            f"UPDATE bookings SET step = 'void' WHERE booking_id = '{booking.booking_id}'",  # not a CONFIRMED step
            f"DELETE FROM bookings WHERE booking_id = '{booking.booking_id}'",
        ):
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(sql)
        db.execute(f"UPDATE bookings SET step = 'cancel' WHERE booking_id = '{booking.booking_id}'")
        db.commit()
        with pytest.raises(sqlite3.IntegrityError):  # a cancellation is never turned into a check-in
            db.execute(f"UPDATE bookings SET step = 'check_in' WHERE booking_id = '{booking.booking_id}'")
    finally:
        db.close()


async def test_a_closed_store_is_unavailable(env):
    booking = await env.book()
    await env.saga.close()
    with pytest.raises(StoreUnavailable):
        await env.get(booking.booking_id)
    with pytest.raises(StoreUnavailable):
        await env.book("k2")
    env.saga = env._open()


# ----------------------------------------------------------------------------- a property over random schedules


FAULT = st.sampled_from(["none", "unavailable", "lost", "crash", "conflict"])
STEP_METHODS = [("inventory", "hold"), ("gateway", "authorize"), ("inventory", "confirm"), ("inventory", "release"),
                ("gateway", "void")]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schedule=st.lists(st.tuples(st.integers(0, 4), st.sampled_from(STEP_METHODS), FAULT), min_size=1,
                         max_size=12),
       declining=st.lists(st.booleans(), min_size=5, max_size=5), expire=st.lists(st.booleans(), min_size=5,
                                                                                  max_size=5))
def test_every_booking_ends_confirmed_with_its_rooms_and_money_or_failed_with_neither(schedule, declining, expire):
    folder = Path(tempfile.mkdtemp(prefix="hotel-saga-"))
    try:
        asyncio.run(_run_schedule(folder, schedule, declining, expire))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def _run_schedule(folder: Path, schedule, declining, expire) -> None:
    """Five guests book the same night (2 rooms), each through faults scripted on the calls of its attempts, retrying
    with its key after each failure (a crash: after a restart); a hold may run out between attempts. Then the
    recovery runs, and every booking is decided with its rooms and money accounted for."""
    env = Env(folder, rooms=2, max_conflict_retries=2)
    await env.saga.start()
    cards = [env.gateway.card(approve=not d) for d in declining]
    faults = defaultdict(list)
    for guest, (dependency, method), fault in schedule:
        faults[guest].append((dependency, method, fault))
    answers: dict[int, HB.Booking] = {}
    try:
        for guest in range(5):
            request = env.request(f"key-{guest}", guest_id=f"guest-{guest}", nights=1, card_token=cards[guest])
            for dependency, method, fault in faults[guest]:
                outcome = {"none": None, "unavailable": DependencyUnavailable("down"), "lost": LOST, "crash": CRASH,
                           "conflict": VersionConflict("aborted") if method == "hold" else None}[fault]
                getattr(env, dependency).faults.add(method, outcome)
                try:
                    answers[guest] = (await env.saga.create(request)).booking
                except DependencyUnavailable:
                    pass
                except Crash:
                    await env.restart()
                row = await env.saga.store.by_key(f"guest-{guest}", f"key-{guest}")
                if expire[guest] and row is not None and row.hold_id in env.inventory.holds and \
                        env.inventory.holds[row.hold_id].status == HB.HOLD_STATUS_HELD:
                    env.inventory.expire(row.hold_id)
            for plan in (env.inventory.faults.plan, env.gateway.faults.plan):
                plan.clear()
        await env.restart()
        assert await env.recovery.sweep()
        for guest in range(5):
            request = env.request(f"key-{guest}", guest_id=f"guest-{guest}", nights=1, card_token=cards[guest])
            booking = (await env.saga.create(request)).booking
            if guest in answers and answers[guest].status != HB.BOOKING_STATUS_PENDING:
                assert answers[guest] == booking  # an answer never changes
            if booking.status == HB.BOOKING_STATUS_CONFIRMED:
                assert_confirmed(env, booking, nights=1)
                assert not declining[guest]
            else:
                assert booking.status == HB.BOOKING_STATUS_FAILED, booking
                assert_nothing_held(env, booking, booking.failure_reason)
        assert env.inventory.taken("2030-06-01") <= 2
        assert await env.saga.store.count_pending() == 0
        # One hold per booking, one payment per booking, whatever the retries.
        assert len(env.inventory.holds) <= 5 and len(env.gateway.payments) <= 5
    finally:
        await env.saga.close()
