"""Hotel reservation through real gRPC: guests book overlapping stays of a few rooms on popular nights, retrying with
their idempotency keys (some give up after a failed call), some cancel, some check in, a share pay with a card that
is always declined, while hotel-booking and then hotel-inventory are SIGKILLed and restarted; afterwards no night is
sold beyond its rooms and every booking's rooms and money are accounted for.

CASE-STUDY.md point 5 for hotel reservation (seed 001 #20, shared/seeds/001_58dfc580020147d2.txt line 23: "Pessimistic
locking, overbooking prevention, payment auth/capture"), in both lock modes of the inventory (the A/B switch). Every
service is a process of its own (casemesh.harness.mesh.Mesh), the payment gateway's whole case study included.
Afterwards, read through the public APIs only: the inventory's Audit finds no violation and no overbooked night; each
night's booked rooms are exactly the rooms of the CONFIRMED and CHECKED_IN bookings on it, and at most the room count
(the overbooking allowance is 0); nothing is left held; no booking is left PENDING once the recovery has run, also
those whose guests gave up; each CONFIRMED booking's hold is CONFIRMED and its payment AUTHORIZED for its total, each
CHECKED_IN one's payment CAPTURED for it; each CANCELLED booking's hold is released and its payment VOIDED; each FAILED
one holds nothing and its payment, if it was asked for, is DECLINED or VOIDED.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import Counter
from datetime import date, timedelta

import grpc
import pytest
from casemesh.common.v1 import money_pb2
from casemesh.harness.mesh import Mesh
from casemesh.hotel.v1 import booking_pb2, booking_pb2_grpc, hotel_pb2, inventory_pb2, inventory_pb2_grpc
from casemesh.payments.v1 import gateway_pb2, gateway_pb2_grpc, payments_pb2, vault_pb2, vault_pb2_grpc
from casemesh.services.hotel.booking import ids
from casemesh.services.hotel.contract import MERCHANT_ID
from casemesh.services.payments.contract import TEST_CARDS

from .payments import CVC, EXP_MONTH, EXP_YEAR, card_number
from .waiting import WAIT_S, eventually

SERVICES = ["hotel-inventory", "hotel-booking", "payments-gateway", "payments-vault", "payments-fraud",
            "payments-psp-a", "payments-psp-b"]
#: Fast acquirers that decline only the test cards; fraud rules that never block (this test is about rooms and money
#: being accounted for, not about which payment a rule refuses); a short hold TTL (a booking stalled by a kill may see
#: its hold run out: it is then voided) and a recovery that looks twice a second.
BASE_SETTINGS = {
    "payments-psp-a": {"latency_median_ms": 3, "decline_rate": 0},
    "payments-psp-b": {"latency_median_ms": 5, "decline_rate": 0},
    "payments-fraud": {"review_threshold": 101, "block_threshold": 101},
    "hotel-booking": {"hold_ttl_ms": 5_000, "recovery_grace_s": 0.5, "recovery_interval_s": 0.5,
                      "recovery_max_backoff_s": 2},
    "hotel-inventory": {"sweep_interval_ms": 200},
}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
HOTEL, ROOM_TYPE, ROOMS, RATE = "grand-hotel", "double", 5, 9_000
FIRST_NIGHT = date(2030, 6, 1)
#: Check-ins on the first 8 nights, stays of 1 to 3 nights: 10 nights in all.
CHECK_IN_DAYS, MAX_NIGHTS = 8, 3
GUESTS, BOOKINGS_EACH = 25, 4
HB, PAY = hotel_pb2, payments_pb2


async def _retried(call, request, rng: random.Random):
    """Send ``request`` until it has a final answer, retrying the same request (the same key) with jittered backoff."""
    for attempt in range(300):
        try:
            return (await call(request, timeout=5)).booking
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(1.0, 0.05 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
@pytest.mark.parametrize("lock_mode", ["pessimistic", "optimistic"])
async def test_no_double_booking_and_every_booking_accounted_for_across_kills(tmp_path, lock_mode):
    settings = {**BASE_SETTINGS, "hotel-inventory": {**BASE_SETTINGS["hotel-inventory"], "lock_mode": lock_mode}}
    async with Mesh(SERVICES, tmp_path, restart=None, settings=settings) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in ("hotel-inventory", "hotel-booking", "payments-gateway", "payments-vault")}
        inventory = inventory_pb2_grpc.RoomInventoryServiceStub(channels["hotel-inventory"])
        bookings = booking_pb2_grpc.BookingServiceStub(channels["hotel-booking"])
        gateway = gateway_pb2_grpc.PaymentGatewayServiceStub(channels["payments-gateway"])
        vault = vault_pb2_grpc.CardVaultServiceStub(channels["payments-vault"])
        id_key = mesh.secret.keyring(ids.ID_KEY_PURPOSE).current_key
        answered: dict[str, hotel_pb2.Booking] = {}  # booking id → the booking as last answered
        asked: list[str] = []  # every booking id a guest asked for, answered or not
        given_up = 0
        try:
            await inventory.AddRoomType(inventory_pb2.AddRoomTypeRequest(room_type=HB.RoomType(
                hotel_id=HOTEL, room_type_id=ROOM_TYPE, name="Double, sea view", rooms=ROOMS,
                nightly_rate=money_pb2.Money(currency_code="EUR", amount_minor=RATE))), timeout=10)
            declining = list(TEST_CARDS)
            numbers = [declining[n % len(declining)] if n % 5 == 4 else card_number() for n in range(GUESTS)]
            tokens = [(await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
                merchant_id=MERCHANT_ID, card_number=number, exp_month=EXP_MONTH, exp_year=EXP_YEAR, cvc=CVC),
                timeout=10)).card_token for number in numbers]

            async def guest(n: int) -> None:
                nonlocal given_up
                rng = random.Random(n)
                guest_id = f"guest-{n:02d}"
                patient = n % 6 != 0  # every sixth guest gives up after one failed call: the recovery finishes it
                for i in range(BOOKINGS_EACH):
                    key = f"stay-{i}"
                    request = booking_pb2.CreateBookingRequest(
                        idempotency_key=key, guest_id=guest_id, hotel_id=HOTEL, room_type_id=ROOM_TYPE,
                        check_in=(FIRST_NIGHT + timedelta(days=rng.randrange(CHECK_IN_DAYS))).isoformat(),
                        nights=rng.randint(1, MAX_NIGHTS), rooms=rng.choice((1, 1, 2)), card_token=tokens[n])
                    asked.append(ids.booking_id(id_key, guest_id, key))
                    if patient:
                        booking = await _retried(bookings.CreateBooking, request, rng)
                    else:
                        try:
                            booking = (await bookings.CreateBooking(request, timeout=5)).booking
                        except grpc.aio.AioRpcError as error:
                            assert error.code() in RETRYABLE, error
                            given_up += 1
                            continue
                    assert booking.booking_id == ids.booking_id(id_key, guest_id, key)
                    assert booking.status in (HB.BOOKING_STATUS_CONFIRMED, HB.BOOKING_STATUS_FAILED), booking
                    answered[booking.booking_id] = booking
                    if booking.status == HB.BOOKING_STATUS_CONFIRMED and patient:
                        choice = rng.random()
                        if choice < 0.25:
                            answered[booking.booking_id] = await _retried(
                                bookings.CancelBooking, booking_pb2.CancelBookingRequest(
                                    booking_id=booking.booking_id), rng)
                        elif choice < 0.4:
                            answered[booking.booking_id] = await _retried(
                                bookings.CheckIn, booking_pb2.CheckInRequest(booking_id=booking.booking_id), rng)
                    await asyncio.sleep(rng.uniform(0, 0.05))

            guests = [asyncio.create_task(guest(n)) for n in range(GUESTS)]
            await eventually(lambda: len(answered) + given_up >= 25, "25 bookings answered before the booking kill")
            assert mesh.kill("hotel-booking", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["hotel-booking"])
            await eventually(lambda: len(answered) + given_up >= 55, "55 bookings answered before the inventory kill")
            assert mesh.kill("hotel-inventory", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["hotel-inventory"])
            await asyncio.wait_for(asyncio.gather(*guests), 120)
            assert len(asked) == GUESTS * BOOKINGS_EACH == len(answered) + given_up

            # No booking stays PENDING: those the guests gave up on are finished by the recovery.
            final: dict[str, hotel_pb2.Booking] = {}

            async def settled() -> bool:
                for booking_id in asked:
                    if booking_id in final:
                        continue
                    try:
                        booking = (await bookings.GetBooking(booking_pb2.GetBookingRequest(booking_id=booking_id),
                                                             timeout=10)).booking
                    except grpc.aio.AioRpcError as error:
                        assert error.code() == grpc.StatusCode.NOT_FOUND  # killed before it was recorded
                        assert booking_id not in answered
                        final[booking_id] = hotel_pb2.Booking()
                        continue
                    if booking.status == HB.BOOKING_STATUS_PENDING:
                        return False
                    final[booking_id] = booking
                return True

            loop = asyncio.get_running_loop()
            deadline = loop.time() + WAIT_S
            while not await settled():
                assert loop.time() < deadline, "bookings still PENDING after the recovery's wait"
                await asyncio.sleep(0.2)
            for booking_id, booking in answered.items():
                assert final[booking_id] == booking  # an answer never changes
            decided = {i: b for i, b in final.items() if b.booking_id}
            statuses = Counter(HB.BookingStatus.Name(b.status) for b in decided.values())
            assert statuses["BOOKING_STATUS_CONFIRMED"] + statuses["BOOKING_STATUS_CHECKED_IN"] > 5, statuses
            failures = Counter(HB.BookingFailure.Name(b.failure_reason) for b in decided.values())
            assert failures["BOOKING_FAILURE_PAYMENT_DECLINED"] and failures["BOOKING_FAILURE_NO_AVAILABILITY"]
            if lock_mode == "pessimistic":
                assert all(b.conflict_retries == 0 for b in decided.values())

            # The inventory: consistent, nothing left held, each night's booked rooms exactly the bookings'.
            audit = await inventory.Audit(inventory_pb2.AuditRequest(), timeout=30)
            assert not audit.violations and audit.overbooked_room_nights == 0, audit
            assert audit.held_room_nights == 0, audit
            booked: Counter[str] = Counter()
            for booking in decided.values():
                if booking.status in (HB.BOOKING_STATUS_CONFIRMED, HB.BOOKING_STATUS_CHECKED_IN):
                    first = date.fromisoformat(booking.check_in)
                    for i in range(booking.nights):
                        booked[(first + timedelta(days=i)).isoformat()] += booking.rooms
            assert max(booked.values()) <= ROOMS, booked
            nights = (await inventory.GetAvailability(inventory_pb2.GetAvailabilityRequest(
                hotel_id=HOTEL, room_type_id=ROOM_TYPE, check_in=FIRST_NIGHT.isoformat(),
                nights=CHECK_IN_DAYS + MAX_NIGHTS), timeout=10)).nights
            assert {n.night: n.booked for n in nights if n.booked} == dict(booked)
            assert all(n.held == 0 and n.booked <= n.sellable == ROOMS for n in nights)
            assert audit.booked_room_nights == sum(booked.values())

            # Each booking's hold and payment are where its status says.
            for booking in decided.values():
                try:
                    hold = (await inventory.GetHold(inventory_pb2.GetHoldRequest(hold_id=booking.hold_id),
                                                    timeout=10)).hold.status
                except grpc.aio.AioRpcError as error:
                    assert error.code() == grpc.StatusCode.NOT_FOUND
                    hold = None
                payment = None
                if booking.payment_id:
                    payment = (await gateway.GetPayment(gateway_pb2.GetPaymentRequest(
                        merchant_id=MERCHANT_ID, payment_id=booking.payment_id), timeout=10)).payment
                    assert payment.amount == booking.total, (booking, payment)
                where = (booking, hold, payment)
                if booking.status == HB.BOOKING_STATUS_CONFIRMED:
                    assert hold == HB.HOLD_STATUS_CONFIRMED and payment.status == PAY.PAYMENT_STATUS_AUTHORIZED, where
                elif booking.status == HB.BOOKING_STATUS_CHECKED_IN:
                    assert hold == HB.HOLD_STATUS_CONFIRMED and payment.status == PAY.PAYMENT_STATUS_CAPTURED, where
                    assert payment.captured_minor == booking.total.amount_minor
                elif booking.status == HB.BOOKING_STATUS_CANCELLED:
                    assert hold == HB.HOLD_STATUS_RELEASED and payment.status == PAY.PAYMENT_STATUS_VOIDED, where
                else:
                    assert booking.status == HB.BOOKING_STATUS_FAILED, where
                    assert hold in (None, HB.HOLD_STATUS_RELEASED, HB.HOLD_STATUS_EXPIRED), where
                    assert payment is None or payment.status in (PAY.PAYMENT_STATUS_DECLINED,
                                                                 PAY.PAYMENT_STATUS_VOIDED), where
                    if booking.failure_reason == HB.BOOKING_FAILURE_PAYMENT_DECLINED:
                        assert payment is None or payment.status == PAY.PAYMENT_STATUS_DECLINED, where
        finally:
            for task in locals().get("guests", []):
                task.cancel()
            for channel in channels.values():
                await channel.close()
