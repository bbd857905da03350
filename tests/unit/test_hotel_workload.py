"""The hotel workload without a mesh: the seed plan and seeding through fake services, the stays guests look for, the
client's checks of answers and its ledger of confirmations, the journeys against a fake hotel (searches, bookings with
retries, double clicks, crowds, sold-out stays, declined cards, conflicts, cancellations and check-ins), the
festival's weekend, the end-of-run checks (a clean run, an oversold night, a lost or changed booking, an earlier run's
violations, a readable overbooking allowance), the profiles and their SLOs, that the workload imports only the
contracts, and the driver over real gRPC against the fake."""

from __future__ import annotations

import ast
import asyncio
import base64
import dataclasses
import hashlib
import itertools
import random
import subprocess
import sys
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.hotel import MEASURES, WORKLOAD, connect, disconnect
from casemesh.harness.workloads.hotel.bookings import (
    CANCELLED,
    CHECKED_IN,
    CONFIRMED,
    Asked,
    Ledger,
    check_answers,
    check_booking,
    check_read_back,
    conflicts_code,
    outcome_code,
)
from casemesh.harness.workloads.hotel.end_checks import BOOKINGS_CONSISTENT, NO_DOUBLE_BOOKING, check, windows
from casemesh.harness.workloads.hotel.journeys import (
    BOOKING_CONFLICTS,
    BOOKING_OUTCOME,
    BOOKING_TIME,
    SOLD_OUT,
    BookParams,
    ChangeParams,
    SearchParams,
    book,
    cancel,
    check_in,
    search,
)
from casemesh.harness.workloads.hotel.live import Hotels, next_friday
from casemesh.harness.workloads.hotel.seeding import Hotel, RoomTypePlan, SeedParams, State, plan, seed
from casemesh.harness.workloads.hotel.stays import StayParams, everyday_stay, festival_stay, options, zipf_cdf
from casemesh.hotel.v1 import booking_pb2, hotel_pb2, inventory_pb2
from casemesh.payments.v1 import vault_pb2
from casemesh.services.catalog import SERVICES
from casemesh.services.hotel.contract import MERCHANT_ID, is_booking_id, is_id
from casemesh.services.payments.contract import TEST_CARDS, is_card_number

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "hotel"
HOTEL_SERVICES = ("hotel-booking", "hotel-inventory", "payments-vault")
MESH = ("payments-vault", "payments-fraud", "payments-psp-a", "payments-psp-b", "payments-gateway", "hotel-inventory",
        "hotel-booking")
H = hotel_pb2
TODAY = date(2030, 3, 4)  # a Monday


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


def b32(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:15]).decode().lower()


# the fake hotel ---------------------------------------------------------------------------------------------------------

class FakeHotel:
    """RoomInventoryService, BookingService and CardVaultService's TokenizeCard in memory, as the protos say: room
    types idempotent; a booking idempotent per (guest, key) (a repeat returns it, a repeat while in flight is
    ABORTED), FAILED NO_AVAILABILITY when a night has too few rooms, PAYMENT_DECLINED for a test card, else CONFIRMED
    with ``conflicts`` conflict retries; cancel releases the rooms; Audit reports nights above their sellable rooms
    and ``violations``. ``fail`` holds codes raised by the next calls of a method; ``lose`` the methods whose next
    call is processed and then answered UNAVAILABLE. ``oversell=True`` skips the rooms check; ``allowance`` rooms are
    sellable above each room count."""

    def __init__(self, *, in_flight_s: float = 0.003, conflicts: int = 0) -> None:
        self.in_flight_s, self.conflicts = in_flight_s, conflicts
        self.types: dict[tuple[str, str], H.RoomType] = {}
        self.booked: Counter[tuple[str, str, str]] = Counter()
        self.bookings: dict[str, H.Booking] = {}
        self.in_flight: set[str] = set()
        self.declining: set[str] = set()
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.lose: set[str] = set()
        self.calls: list[tuple[str, Any]] = []
        self.tokens = itertools.count()
        self.oversell = False
        self.allowance = 0
        self.violations: list[str] = []

    async def handle(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        answer = getattr(self, f"_{method.lower()}")(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        if method in self.lose:
            self.lose.discard(method)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "answer lost")
        return answer

    def methods(self) -> list[str]:
        return [m for m, _ in self.calls]

    def _tokenizecard(self, request: vault_pb2.TokenizeCardRequest) -> vault_pb2.TokenizeCardResponse:
        assert request.merchant_id == MERCHANT_ID and is_card_number(request.card_number)
        token = f"tok_{next(self.tokens):024x}"
        if request.card_number in TEST_CARDS:
            self.declining.add(token)
        return vault_pb2.TokenizeCardResponse(card_token=token)

    def _addroomtype(self, request: inventory_pb2.AddRoomTypeRequest) -> inventory_pb2.AddRoomTypeResponse:
        room_type = request.room_type
        assert is_id(room_type.hotel_id) and is_id(room_type.room_type_id) and 1 <= room_type.rooms <= 10_000
        key = (room_type.hotel_id, room_type.room_type_id)
        if self.types.setdefault(key, room_type) != room_type:
            raise rpc_error(grpc.StatusCode.ALREADY_EXISTS, "other fields")
        return inventory_pb2.AddRoomTypeResponse(room_type=self.types[key])

    def nights(self, hotel_id: str, room_type_id: str, check_in: str, nights: int) -> list[H.NightAvailability]:
        room_type = self.types.get((hotel_id, room_type_id))
        if room_type is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "room type")
        first = date.fromisoformat(check_in)
        found = []
        for i in range(nights):
            night = (first + timedelta(days=i)).isoformat()
            sellable, booked = room_type.rooms + self.allowance, self.booked[(hotel_id, room_type_id, night)]
            found.append(H.NightAvailability(night=night, sellable=sellable, booked=booked,
                                             available=max(sellable - booked, 0), version=booked))
        return found

    def _getavailability(self, request: inventory_pb2.GetAvailabilityRequest) -> inventory_pb2.GetAvailabilityResponse:
        assert 1 <= request.nights <= 30
        return inventory_pb2.GetAvailabilityResponse(
            room_type=self.types.get((request.hotel_id, request.room_type_id)),
            nights=self.nights(request.hotel_id, request.room_type_id, request.check_in, request.nights))

    async def _createbooking(self, request: booking_pb2.CreateBookingRequest) -> booking_pb2.CreateBookingResponse:
        booking_id = "bk_" + b32(f"{request.guest_id}/{request.idempotency_key}")
        if booking_id in self.in_flight:
            raise rpc_error(grpc.StatusCode.ABORTED, "in flight")
        if booking_id in self.bookings:
            return booking_pb2.CreateBookingResponse(booking=self.bookings[booking_id])
        self.in_flight.add(booking_id)
        try:
            await asyncio.sleep(self.in_flight_s)
            nights = self.nights(request.hotel_id, request.room_type_id, request.check_in, request.nights)
            rate = self.types[(request.hotel_id, request.room_type_id)].nightly_rate
            booking = H.Booking(
                booking_id=booking_id, guest_id=request.guest_id, hotel_id=request.hotel_id,
                room_type_id=request.room_type_id, check_in=request.check_in, nights=request.nights,
                rooms=request.rooms, status=H.BOOKING_STATUS_FAILED, hold_id="hold_" + b32(booking_id),
                total=money_pb2.Money(currency_code=rate.currency_code,
                                      amount_minor=request.nights * request.rooms * rate.amount_minor))
            if not self.oversell and any(n.available < request.rooms for n in nights):
                booking.failure_reason = H.BOOKING_FAILURE_NO_AVAILABILITY
            elif request.card_token in self.declining:
                booking.failure_reason = H.BOOKING_FAILURE_PAYMENT_DECLINED
            else:
                booking.status, booking.payment_id = H.BOOKING_STATUS_CONFIRMED, "pay_" + "a" * 24
                booking.conflict_retries = self.conflicts
                self.take(booking, booking.rooms)
            self.bookings[booking_id] = booking
        finally:
            self.in_flight.discard(booking_id)
        return booking_pb2.CreateBookingResponse(booking=booking)

    def take(self, booking: H.Booking, rooms: int) -> None:
        first = date.fromisoformat(booking.check_in)
        for i in range(booking.nights):
            self.booked[(booking.hotel_id, booking.room_type_id, (first + timedelta(days=i)).isoformat())] += rooms

    def _find(self, booking_id: str) -> H.Booking:
        if booking_id not in self.bookings:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "booking_id")
        return self.bookings[booking_id]

    def _getbooking(self, request: booking_pb2.GetBookingRequest) -> booking_pb2.GetBookingResponse:
        return booking_pb2.GetBookingResponse(booking=self._find(request.booking_id))

    def _cancelbooking(self, request: booking_pb2.CancelBookingRequest) -> booking_pb2.CancelBookingResponse:
        booking = self._find(request.booking_id)
        if booking.status == H.BOOKING_STATUS_CONFIRMED:
            booking.status = H.BOOKING_STATUS_CANCELLED
            self.take(booking, -booking.rooms)
        elif booking.status != H.BOOKING_STATUS_CANCELLED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not confirmed")
        return booking_pb2.CancelBookingResponse(booking=booking)

    def _checkin(self, request: booking_pb2.CheckInRequest) -> booking_pb2.CheckInResponse:
        booking = self._find(request.booking_id)
        if booking.status == H.BOOKING_STATUS_CONFIRMED:
            booking.status = H.BOOKING_STATUS_CHECKED_IN
        elif booking.status != H.BOOKING_STATUS_CHECKED_IN:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not confirmed")
        return booking_pb2.CheckInResponse(booking=booking)

    def _audit(self, request: inventory_pb2.AuditRequest) -> inventory_pb2.AuditResponse:
        over = [f"{h}/{r} {n}: {v} booked > {self.types[(h, r)].rooms + self.allowance}"
                for (h, r, n), v in sorted(self.booked.items()) if v > self.types[(h, r)].rooms + self.allowance]
        return inventory_pb2.AuditResponse(room_types=len(self.types), booked_room_nights=sum(self.booked.values()),
                                           violations=[*self.violations, *over])


class FakeCaller:
    """A journey's Caller over a :class:`FakeHotel`: calls and measures recorded."""

    def __init__(self, hotel: FakeHotel) -> None:
        self.hotel = hotel
        self.observed: list[tuple[str, float, str]] = []
        self._intended = time.perf_counter()

    @property
    def intended_at(self) -> float:
        return self._intended

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        return await self.hotel.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]


class FakeStreams:
    """What ``connect`` gets: share, unrecorded calls to the fake hotel, observed measures."""

    def __init__(self, hotel: FakeHotel, share: tuple[int, int] = (0, 1)) -> None:
        self.hotel = hotel
        self.share = share
        self.observed: list[tuple[str, float, str]] = []

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        return await self.hotel.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]


async def no_wait(seconds: float) -> None:
    await asyncio.sleep(0.002 if seconds > 0 else 0)


SMALL = SeedParams(hotels=12, guests=40, declining_card_share=0.1, festival_hotels=2, festival_rooms=6,
                   festival_lead_days=10, rooms_median=8, rooms_min=2, rooms_max=20)


async def _hotels(fake: FakeHotel, params: SeedParams = SMALL, share: tuple[int, int] = (0, 1)) -> Hotels:
    """A :class:`Hotels` over ``fake``, seeded in it and connected (baseline Audit, festival weekend)."""
    state = await seed(lambda _s, m, r: fake.handle(m, r), params, random.Random(5))
    hotels = Hotels(FakeStreams(fake, share), state, params, sleep=no_wait)
    await hotels.take_baseline()
    await hotels.choose_festival()
    fake.calls.clear()
    return hotels


# seeding ----------------------------------------------------------------------------------------------------------------

def test_the_seed_plan_is_deterministic_with_valid_ids_rooms_rates_and_cards():
    params = SeedParams(hotels=200, guests=500, festival_hotels=3, declining_card_share=0.05)
    state, cards = plan(params, random.Random(42), TODAY)
    again, cards_again = plan(params, random.Random(42), TODAY)
    assert (state, cards) == (again, cards_again) and plan(params, random.Random(43), TODAY)[0].run != state.run
    assert state.first_night == "2030-03-05" and state.currency == "USD"
    assert [h.hotel_id for h in state.hotels[:2]] == [f"ht{state.run}-h0", f"ht{state.run}-h1"]
    assert [h.hotel_id for h in state.festival] == [f"ht{state.run}-f{i}" for i in range(3)]
    room_types = [r for h in state.hotels for r in h.room_types]
    assert all(2 <= len(h.room_types) <= 4 for h in state.hotels) and len({len(h.room_types) for h in state.hotels}) == 3
    assert all(5 <= r.rooms <= 200 for r in room_types) and 20 < sorted(r.rooms for r in room_types)[300] < 45
    assert all(is_id(h.hotel_id) and is_id(r.room_type_id) for h in state.hotels for r in h.room_types)
    for hotel in state.hotels:  # each better room type of a hotel is dearer
        rates = [r.rate_minor for r in hotel.room_types]
        assert rates == sorted(rates) and all(3_000 <= r <= 200_000 for r in rates)
    assert all(len(h.room_types) == 2 and all(r.rooms == 100 for r in h.room_types) for h in state.festival)
    assert len(state.guests) == len(cards) == 500 and all(g.card_token == "" for g in state.guests)
    declining = [g.declining for g in state.guests]
    assert 10 <= sum(declining) <= 45
    assert all((c.number in TEST_CARDS) == d for c, d in zip(cards, declining, strict=True))
    assert all(is_card_number(c.number) for c in cards)
    assert len({c.number for c, d in zip(cards, declining, strict=True) if not d}) == 500 - sum(declining)
    with pytest.raises(ValidationError, match="currency code"):
        SeedParams(currency="usd")
    with pytest.raises(ValidationError, match="rooms_min"):
        SeedParams(rooms_min=50, rooms_median=30)
    with pytest.raises(ValidationError, match="room_types_min"):
        SeedParams(room_types_min=4, room_types_max=2)


async def test_seed_puts_every_room_type_on_sale_tokenizes_every_card_and_retries_an_unavailable_service():
    fake = FakeHotel()
    fake.fail = {"AddRoomType": [grpc.StatusCode.UNAVAILABLE], "TokenizeCard": [grpc.StatusCode.DEADLINE_EXCEEDED]}
    state = await seed(lambda _s, m, r: fake.handle(m, r), SMALL, random.Random(7))
    planned, _ = plan(SMALL, random.Random(7))
    assert [h.hotel_id for h in state.hotels] == [h.hotel_id for h in planned.hotels]
    assert set(fake.types) == {(h.hotel_id, r.room_type_id) for h in (*state.hotels, *state.festival)
                               for r in h.room_types}
    for (hotel_id, room_type_id), stored in fake.types.items():
        assert stored.rooms == state.room_types()[(hotel_id, room_type_id)].rooms
        assert stored.nightly_rate.currency_code == "USD" and stored.name
    assert all(g.card_token.startswith("tok_") for g in state.guests) and len({g.card_token for g in state.guests}) == 40
    assert {g.card_token for g in state.guests if g.declining} == fake.declining != set()
    again = await seed(lambda _s, m, r: fake.handle(m, r), SMALL, random.Random(7))  # a kept data directory
    assert [h.hotel_id for h in again.hotels] == [h.hotel_id for h in state.hotels]

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "room_type.rooms")

    with pytest.raises(grpc.aio.AioRpcError):
        await seed(refused, SMALL, random.Random(7))
    other = FakeHotel()
    await seed(lambda _s, m, r: other.handle(m, r), SMALL, random.Random(7))
    changed = SMALL.model_copy(update={"rooms_median": 9})
    with pytest.raises(grpc.aio.AioRpcError) as error:  # the same ids with other rooms: ALREADY_EXISTS
        await seed(lambda _s, m, r: other.handle(m, r), changed, random.Random(7))
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


# stays ------------------------------------------------------------------------------------------------------------------

def _state(params: SeedParams = SMALL) -> State:
    return plan(params, random.Random(3), TODAY)[0]


def test_everyday_stays_follow_popularity_lead_time_and_length():
    state = _state(SeedParams(hotels=50))
    params = StayParams(lead_days_mean=20, horizon_days=60)
    rng = random.Random(1)
    cdf = zipf_cdf(50, params.zipf_exponent)
    first = date.fromisoformat(state.first_night)
    stays = [everyday_stay(rng, params, state.hotels, cdf, first) for _ in range(4_000)]
    ranks = Counter(int(s.hotel.hotel_id.rsplit("h", 1)[1]) for s in stays)
    assert ranks[0] > ranks[10] > ranks[49] > 0  # Zipf: the first hotels draw most guests
    leads = sorted((s.check_in - first).days for s in stays)
    assert leads[0] == 0 and leads[-1] == 59 and 10 <= leads[2_000] <= 18  # exponential, median 20 ln 2, cut at 60
    nights = Counter(s.nights for s in stays)
    assert set(nights) <= set(range(1, 8)) and nights[1] > nights[2] > nights[3] > nights[7]
    assert Counter(s.rooms for s in stays)[1] > 3_300 and all(s.rooms <= s.room_type.rooms for s in stays)
    assert all(s.room_type in s.hotel.room_types and not s.festival for s in stays)
    with pytest.raises(ValidationError, match="weights"):
        StayParams(nights_weights=(0, 0))
    with pytest.raises(ValidationError):
        StayParams(rooms_weights=tuple([1.0] * 11))


def test_festival_stays_all_overlap_the_festival_s_nights():
    state = _state()
    params = StayParams(festival_share=1)
    rng = random.Random(2)
    friday = next_friday(TODAY)
    assert friday == date(2030, 3, 8) and next_friday(friday) == friday
    stays = [festival_stay(rng, params, state.festival, friday, 3) for _ in range(2_000)]
    assert all(s.festival and s.hotel in state.festival for s in stays)
    assert all(friday <= s.check_in and s.check_in + timedelta(days=s.nights) <= friday + timedelta(days=3)
               for s in stays)
    saturday = sum(s.check_in <= friday + timedelta(days=1) < s.check_in + timedelta(days=s.nights) for s in stays)
    assert 0.7 < saturday / len(stays) < 0.9  # the middle night: in about 80% of the stays
    assert 0.65 < sum(s.check_in == friday for s in stays) / len(stays) < 0.85
    assert all(s.nights == 1 and s.check_in == friday for s in (festival_stay(rng, params, state.festival, friday, 1)
                                                                 for _ in range(20)))


def test_options_are_the_stay_then_its_hotel_s_other_room_types_then_other_hotels():
    room_types = tuple(RoomTypePlan(f"rt{j}", "x", 10, 1_000) for j in range(3))
    hotels = [Hotel(f"h{i}", room_types if i == 0 else room_types[:1]) for i in range(6)]
    rng = random.Random(4)
    stay = everyday_stay(rng, StayParams(), hotels[:1], [1.0], TODAY)
    found = options(rng, stay, hotels, zipf_cdf(6, 1.0), 5)
    assert found[0] == stay and [s.hotel.hotel_id for s in found[:3]] == ["h0"] * 3
    assert {s.room_type.room_type_id for s in found[:3]} == {"rt0", "rt1", "rt2"}
    assert len({s.hotel.hotel_id for s in found[3:]}) == 2 and "h0" not in {s.hotel.hotel_id for s in found[3:]}
    assert all((s.check_in, s.nights) == (stay.check_in, stay.nights) for s in found)
    assert len(options(rng, stay, hotels, None, 20)) == 3 + 5  # every room type of h0, then every other hotel
    assert options(rng, stay, hotels, None, 1) == [stay]


# the client's checks and its ledger ---------------------------------------------------------------------------------------

ASKED = Asked("g1", "h1", "rt0", "2030-03-08", 2, 1, 24_000, "USD")


def _booking(status: int = CONFIRMED, reason: int = H.BOOKING_FAILURE_UNSPECIFIED, booking_id: str = "bk_" + "a" * 24,
             total: int = 24_000, **fields: Any) -> H.Booking:
    values = {"guest_id": "g1", "hotel_id": "h1", "room_type_id": "rt0", "check_in": "2030-03-08", "nights": 2,
              "rooms": 1, "hold_id": "hold_" + "b" * 24, "payment_id": "pay_" + "c" * 24} | fields
    return H.Booking(booking_id=booking_id, status=status, failure_reason=reason,
                     total=money_pb2.Money(currency_code="USD", amount_minor=total), **values)


def test_a_well_formed_answer_has_no_problems_and_a_bad_one_is_named():
    assert check_booking(ASKED, _booking()) == [] and check_answers([_booking(), _booking()]) == []
    failed = _booking(H.BOOKING_STATUS_FAILED, H.BOOKING_FAILURE_NO_AVAILABILITY, payment_id="")
    assert check_booking(ASKED, failed) == [] and outcome_code(failed) == "NO_AVAILABILITY"
    assert outcome_code(_booking()) == "CONFIRMED" and conflicts_code(0) == "NONE" and conflicts_code(3) == "RETRIED_3"
    problems = check_booking(ASKED, _booking(booking_id="bk_x", total=1, nights=3, hold_id="", payment_id=""))
    assert len(problems) == 5 and "nights x rooms x rate make 24000 USD" in problems[2]
    assert check_booking(ASKED, _booking(H.BOOKING_STATUS_FAILED)) == ["FAILED without a reason"]
    assert "answered PENDING" in check_booking(ASKED, _booking(H.BOOKING_STATUS_PENDING))[0]
    assert check_booking(ASKED, _booking(CANCELLED)) == []  # a retried key: the booking as it is now
    assert check_answers([_booking(), _booking(CANCELLED), _booking(CHECKED_IN)]) == []
    two = check_answers([_booking(), _booking(booking_id="bk_" + "z" * 24), failed])
    assert "2 bookings" in two[0] and "2 decisions" in two[1]


def test_the_ledger_follows_changes_and_counts_the_rooms_the_clients_hold():
    ledger = Ledger()
    assert ledger.answered("k1", ASKED, [_booking()]) == [] and list(ledger.booked) == ["bk_" + "a" * 24]
    ledger.answered("k2", ASKED, [_booking(H.BOOKING_STATUS_FAILED, H.BOOKING_FAILURE_CONTENTION,
                                           booking_id="bk_" + "f" * 24)])
    assert len(ledger.booked) == 1 and ledger.problems == []
    ids = ["bk_" + c * 24 for c in "bcde"]
    for booking_id in ids:
        ledger.answered(booking_id, ASKED, [_booking(booking_id=booking_id)])
    ledger.begin(ids[0], CANCELLED)
    assert ledger.booked[ids[0]].expected == {CONFIRMED, CANCELLED}
    ledger.end(ids[0], CANCELLED, done=True, refused=False)
    ledger.begin(ids[1], CANCELLED)
    ledger.end(ids[1], CANCELLED, done=False, refused=False)  # outcome unknown
    ledger.begin(ids[2], CHECKED_IN)
    ledger.end(ids[2], CHECKED_IN, done=False, refused=True)  # refused: as before
    ledger.begin(ids[3], CHECKED_IN)
    ledger.end(ids[3], CHECKED_IN, done=True, refused=False)
    assert [ledger.booked[b].expected for b in ids] == [{CANCELLED}, {CONFIRMED, CANCELLED}, {CONFIRMED}, {CHECKED_IN}]
    # a (k1), c, e held for sure; d read back CONFIRMED (its cancellation's outcome unknown) counts too
    rooms = ledger.rooms_by_night({ids[1]: CONFIRMED})
    assert rooms == {("h1", "rt0", "2030-03-08"): 4, ("h1", "rt0", "2030-03-09"): 4}
    assert ledger.rooms_by_night({ids[1]: CANCELLED})[("h1", "rt0", "2030-03-08")] == 3
    booked = ledger.booked[ids[1]]
    assert check_read_back(ids[1], booked, _booking(CANCELLED, booking_id=ids[1])) == []
    assert "reads back CHECKED_IN, the client's answers make it CANCELLED or CONFIRMED" in \
        check_read_back(ids[1], booked, _booking(CHECKED_IN, booking_id=ids[1]))
    assert len(check_read_back(ids[1], booked, _booking(CONFIRMED, booking_id=ids[2], rooms=2))) == 2
    ledger.answered("k9", ASKED, [_booking(total=1)])
    assert len(ledger.problems) == 1 and ledger.problems[0].startswith("key k9")


def test_windows_cover_the_nights_in_reads_of_at_most_30_nights():
    nights = ["2030-01-01", "2030-01-02", "2030-01-30", "2030-01-31", "2030-03-02"]
    assert windows(nights) == [(date(2030, 1, 1), 30), (date(2030, 1, 31), 1), (date(2030, 3, 2), 1)]
    assert windows([]) == []


# the journeys -----------------------------------------------------------------------------------------------------------

BOOK = BookParams(max_attempts=4, double_submit_p=0)


async def test_a_search_looks_at_every_room_type_of_one_hotel():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    caller = FakeCaller(fake)
    await search(caller, SearchParams(), hotels, random.Random(1))
    looked = [r for m, r in fake.calls if m == "GetAvailability"]
    assert len({r.hotel_id for r in looked}) == 1 and len(looked) == len({r.room_type_id for r in looked}) >= 2
    assert len({(r.check_in, r.nights) for r in looked}) == 1
    fake.fail["GetAvailability"] = [grpc.StatusCode.UNAVAILABLE]
    with pytest.raises(grpc.aio.AioRpcError):
        await search(caller, SearchParams(), hotels, random.Random(1))


async def test_a_booking_is_confirmed_entered_in_the_ledger_and_offered_to_cancel_or_check_in():
    fake = FakeHotel(conflicts=2)
    hotels = await _hotels(fake)
    caller = FakeCaller(fake)
    await book(caller, BOOK, hotels, random.Random(3))
    assert fake.methods() == ["GetAvailability", "CreateBooking"]
    request = fake.calls[1][1]
    assert request.idempotency_key.startswith("book-") and request.card_token.startswith("tok_")
    (booking_id, booked), = hotels.ledger.booked.items()
    assert is_booking_id(booking_id) and booked.asked.guest_id == request.guest_id
    assert caller.codes(BOOKING_TIME) == ["OK"] and caller.codes(BOOKING_OUTCOME) in (["CONFIRMED"],
                                                                                      ["PAYMENT_DECLINED"])
    assert caller.codes(BOOKING_CONFLICTS) == ["RETRIED_2"] and hotels.ledger.problems == []
    assert hotels.take_to_check_in() == booking_id and hotels.take_to_check_in() is None


async def test_a_retry_after_a_lost_answer_or_a_double_click_makes_one_booking():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    fake.lose.add("CreateBooking")
    caller = FakeCaller(fake)
    await book(caller, BOOK, hotels, random.Random(3))
    sent = [r for m, r in fake.calls if m == "CreateBooking"]
    assert len(sent) == 2 and sent[0] == sent[1] and len(fake.bookings) == 1
    assert caller.codes(BOOKING_TIME) == ["OK"]
    double = FakeCaller(fake)
    await book(double, BOOK.model_copy(update={"double_submit_p": 1.0}), hotels, random.Random(8))
    assert len(fake.bookings) == 2 and len(hotels.ledger.booked) <= 2 and hotels.ledger.problems == []
    assert double.codes(BOOKING_TIME) == ["OK"]  # one sample per guest, both sends included


async def test_a_malformed_answer_is_a_problem_and_its_booking_is_not_offered_to_cancel():
    fake = FakeHotel(conflicts=0)
    hotels = await _hotels(fake, SMALL.model_copy(update={"declining_card_share": 0}))
    handle = fake.handle

    async def malformed(method: str, request: Any) -> Any:
        answer = await handle(method, request)
        if method == "CreateBooking":
            answer = booking_pb2.CreateBookingResponse(booking=answer.booking)
            answer.booking.booking_id, answer.booking.total.amount_minor = "bk_BAD", 1
        return answer

    fake.handle = malformed  # type: ignore[method-assign]
    caller = FakeCaller(fake)
    await book(caller, BOOK, hotels, random.Random(3))
    assert caller.codes(BOOKING_OUTCOME) == ["CONFIRMED"] and not hotels.ledger.booked
    assert len(hotels.ledger.problems) == 2 and hotels.take_to_cancel(random.Random(1)) is None


async def test_a_booking_without_an_answer_fails_with_the_last_code():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    fake.fail["CreateBooking"] = [grpc.StatusCode.UNAVAILABLE] * 4
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await book(caller, BOOK, hotels, random.Random(3))
    assert error.value.code() == grpc.StatusCode.UNAVAILABLE and caller.codes(BOOKING_TIME) == ["UNAVAILABLE"]
    assert caller.codes(BOOKING_OUTCOME) == [] and not hotels.ledger.booked
    fake.fail["CreateBooking"] = [grpc.StatusCode.INVALID_ARGUMENT]
    refused = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError):
        await book(refused, BOOK, hotels, random.Random(3))
    assert refused.codes(BOOKING_TIME) == ["INVALID_ARGUMENT"] and fake.methods().count("CreateBooking") == 5


async def test_a_sold_out_stay_sends_guests_to_alternatives_and_then_away():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    fake.booked = Counter({(h, r, (hotels.first_night + timedelta(days=d)).isoformat()): 1_000
                           for (h, r) in fake.types for d in range(400)})
    caller = FakeCaller(fake)
    await book(caller, BOOK.model_copy(update={"max_searches": 4}), hotels, random.Random(3))
    assert fake.methods() == ["GetAvailability"] * 4 and caller.codes(BOOKING_OUTCOME) == [SOLD_OUT]
    assert caller.codes(BOOKING_TIME) == []
    for key in list(fake.booked)[: len(fake.booked) // 2]:
        del fake.booked[key]
    found = FakeCaller(fake)
    for seed_ in range(20):
        await book(found, BOOK.model_copy(update={"max_searches": 20}), hotels, random.Random(seed_))
    assert "CONFIRMED" in found.codes(BOOKING_OUTCOME)


async def test_a_crowd_books_the_same_nights_at_once_and_the_last_rooms_go_to_some():
    fake = FakeHotel(in_flight_s=0.0)
    params = SMALL.model_copy(update={"festival_rooms": 3, "festival_hotels": 1, "festival_room_types": 1,
                                      "declining_card_share": 0})
    hotels = await _hotels(fake, params)
    crowd = BOOK.model_copy(update={"crowd_min": 8, "crowd_max": 8, "festival_share": 1.0, "max_searches": 1,
                                    "rooms_weights": (1,), "festival_first_night_p": 1, "festival_full_stay_p": 1})
    caller = FakeCaller(fake)
    await book(caller, crowd, hotels, random.Random(2))
    outcomes = Counter(caller.codes(BOOKING_OUTCOME))
    guests = {r.guest_id for m, r in fake.calls if m == "CreateBooking"}
    assert sum(outcomes.values()) == 8 and outcomes["CONFIRMED"] == 3 and len(guests) == outcomes["CONFIRMED"] + \
        outcomes["NO_AVAILABILITY"]
    assert {r.check_in for m, r in fake.calls if m == "CreateBooking"} == {hotels.festival_friday.isoformat()}


async def test_festival_guests_need_festival_hotels():
    fake = FakeHotel()
    hotels = await _hotels(fake, SMALL.model_copy(update={"festival_hotels": 0}))
    assert hotels.festival_friday is None
    with pytest.raises(ValueError, match="festival_hotels"):
        await book(FakeCaller(fake), BOOK.model_copy(update={"festival_share": 1.0}), hotels, random.Random(1))


async def test_cancel_and_check_in_take_confirmed_bookings_once_and_follow_the_answers():
    fake = FakeHotel()
    hotels = await _hotels(fake, SMALL.model_copy(update={"declining_card_share": 0}))
    caller = FakeCaller(fake)
    await cancel(caller, ChangeParams(), hotels, random.Random(1))
    await check_in(caller, ChangeParams(), hotels, random.Random(1))
    assert fake.methods() == []  # nothing to cancel or check in yet
    for seed_ in range(6):
        await book(caller, BOOK, hotels, random.Random(seed_))
    ids = list(hotels.ledger.booked)
    assert len(ids) == 6
    first = min(ids, key=lambda b: hotels.ledger.booked[b].asked.check_in)
    await check_in(caller, ChangeParams(), hotels, random.Random(1))
    assert fake.bookings[first].status == CHECKED_IN and hotels.ledger.booked[first].expected == {CHECKED_IN}
    fake.lose.add("CancelBooking")
    await cancel(caller, ChangeParams(), hotels, random.Random(1))
    cancelled = [b for b in ids if fake.bookings[b].status == CANCELLED]
    assert len(cancelled) == 1 and hotels.ledger.booked[cancelled[0]].expected == {CANCELLED}
    assert fake.methods().count("CancelBooking") == 2  # the lost answer, then the retry's
    fake.fail["CheckIn"] = [grpc.StatusCode.FAILED_PRECONDITION]
    with pytest.raises(grpc.aio.AioRpcError):
        await check_in(caller, ChangeParams(), hotels, random.Random(1))
    fake.fail["CancelBooking"] = [grpc.StatusCode.UNAVAILABLE] * 4
    with pytest.raises(grpc.aio.AioRpcError):
        await cancel(caller, ChangeParams(), hotels, random.Random(2))
    unknown = [b for b in ids if hotels.ledger.booked[b].expected == {CONFIRMED, CANCELLED}]
    assert len(unknown) == 1 and hotels.ledger.problems == []


# the festival's weekend and the end-of-run checks -----------------------------------------------------------------------

async def test_connect_picks_the_first_festival_weekend_with_nothing_booked():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    friday = hotels.festival_friday
    first_night = date.fromisoformat(hotels.state.first_night)
    assert friday is not None and friday.weekday() == 4 and friday >= first_night + timedelta(days=10)
    assert friday - (first_night + timedelta(days=10)) < timedelta(days=7)
    hotel = hotels.state.festival[1]
    fake.booked[(hotel.hotel_id, hotel.room_types[0].room_type_id, (friday + timedelta(days=2)).isoformat())] = 1
    again = Hotels(FakeStreams(fake), hotels.state, SMALL, sleep=no_wait)
    await again.choose_festival()
    assert again.festival_friday == friday + timedelta(days=7)


async def _run_some(fake: FakeHotel, hotels: Hotels, count: int = 25) -> None:
    caller = FakeCaller(fake)
    festival = BOOK.model_copy(update={"festival_share": 0.5})
    for seed_ in range(count):
        await book(caller, festival, hotels, random.Random(seed_))
        if seed_ % 5 == 0:
            await cancel(caller, ChangeParams(), hotels, random.Random(seed_))
        if seed_ % 7 == 0:
            await check_in(caller, ChangeParams(), hotels, random.Random(seed_))


async def test_a_clean_run_passes_both_end_checks_and_only_process_0_audits():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    await _run_some(fake, hotels)
    assert len(hotels.ledger.booked) > 10
    fake.calls.clear()
    await disconnect(hotels)
    assert hotels.streams.codes(BOOKINGS_CONSISTENT) == ["OK"] and hotels.streams.codes(NO_DOUBLE_BOOKING) == ["OK"]
    methods = Counter(fake.methods())
    assert methods["GetBooking"] == len(hotels.ledger.booked) and methods["Audit"] == 1 and methods["GetAvailability"]
    other = await _hotels(fake, share=(1, 2))
    await _run_some(fake, other, 5)
    fake.calls.clear()
    await check(other)
    assert "Audit" not in fake.methods() and other.streams.codes(NO_DOUBLE_BOOKING) == ["OK"]


async def test_an_oversold_night_is_a_double_booking():
    fake = FakeHotel()
    params = SMALL.model_copy(update={"festival_rooms": 2, "declining_card_share": 0})
    hotels = await _hotels(fake, params)
    fake.oversell = True
    crowd = BOOK.model_copy(update={"crowd_min": 5, "crowd_max": 5, "festival_share": 1.0, "max_searches": 1,
                                    "rooms_weights": (1,)})
    await book(FakeCaller(fake), crowd, hotels, random.Random(1))
    assert len(hotels.ledger.booked) == 5
    await check(hotels)
    assert hotels.streams.codes(NO_DOUBLE_BOOKING) == ["DATA_LOSS"]
    assert hotels.streams.codes(BOOKINGS_CONSISTENT) == ["OK"]
    fake.allowance = 3  # the inventory states an overbooking allowance: the clients' five fit in 2 + 3
    allowed = Hotels(FakeStreams(fake), hotels.state, params, sleep=no_wait)
    allowed.ledger = hotels.ledger
    await check(allowed)
    assert allowed.streams.codes(NO_DOUBLE_BOOKING) == ["OK"]


async def test_a_lost_or_changed_booking_or_rooms_the_inventory_forgot_are_caught():
    fake = FakeHotel()
    hotels = await _hotels(fake, SMALL.model_copy(update={"declining_card_share": 0}))
    await _run_some(fake, hotels, 8)
    confirmed = [b for b, booked in hotels.ledger.booked.items() if booked.expected == {CONFIRMED}]
    del fake.bookings[confirmed[0]]
    fake.bookings[confirmed[1]].status = CANCELLED
    fake.take(fake.bookings[confirmed[2]], -1)  # the inventory lost a confirmed booking's rooms
    await check(hotels)
    assert hotels.streams.codes(BOOKINGS_CONSISTENT) == ["DATA_LOSS"]
    assert hotels.streams.codes(NO_DOUBLE_BOOKING) == ["DATA_LOSS"]


async def test_an_earlier_run_s_violations_are_not_judged_new_ones_are_and_a_failed_read_gives_its_code():
    fake = FakeHotel()
    fake.violations = ["from an earlier run"]
    hotels = await _hotels(fake)
    assert hotels.baseline == {"from an earlier run"}
    await _run_some(fake, hotels, 5)
    await check(hotels)
    assert hotels.streams.codes(NO_DOUBLE_BOOKING) == ["OK"]
    fake.violations.append("a new one")
    await check(hotels)
    assert hotels.streams.codes(NO_DOUBLE_BOOKING)[-1] == "DATA_LOSS"
    fake.violations.pop()
    fake.fail["Audit"] = [grpc.StatusCode.UNAVAILABLE] * 3
    fake.fail["GetBooking"] = [grpc.StatusCode.DEADLINE_EXCEEDED] * 100
    await check(hotels)
    assert hotels.streams.codes(NO_DOUBLE_BOOKING)[-1] == "UNAVAILABLE"
    assert hotels.streams.codes(BOOKINGS_CONSISTENT)[-1] == "DEADLINE_EXCEEDED"


async def test_a_bug_in_the_end_checks_records_unknown_and_loses_nothing():
    fake = FakeHotel()
    hotels = await _hotels(fake)
    hotels.ledger = None  # type: ignore[assignment]
    await disconnect(hotels)
    assert hotels.streams.codes(BOOKINGS_CONSISTENT) == ["UNKNOWN"] == hotels.streams.codes(NO_DOUBLE_BOOKING)


async def test_connect_audits_and_picks_the_weekend():
    fake = FakeHotel()
    state = await seed(lambda _s, m, r: fake.handle(m, r), SMALL, random.Random(5))
    fake.calls.clear()
    hotels = await connect(FakeStreams(fake), state, SMALL, random.Random(0))
    assert fake.methods()[0] == "Audit" and hotels.baseline == set() and hotels.festival_friday is not None


# the workload, the profiles, the SLOs, the contracts ---------------------------------------------------------------------

def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "hotel" and WORKLOAD.services == HOTEL_SERVICES
    assert list(WORKLOAD.journeys) == ["search", "book", "cancel", "check_in"]
    assert set(MEASURES) == {"booking_time", "booking_outcome", "booking_conflicts", "bookings_consistent",
                             "no_double_booking"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.hotel.v1.BookingService/CreateBooking", "casemesh.hotel.v1.RoomInventoryService/Audit",
            "casemesh.payments.v1.CardVaultService/TokenizeCard"} <= set(WORKLOAD.rpcs)
    assert "hotel" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("hotel") is WORKLOAD


def _document(name: str) -> dict:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


MODELS = {"search": SearchParams, "book": BookParams, "cancel": ChangeParams, "check_in": ChangeParams}


def _journeys(document: dict) -> tuple[dict[str, Any], dict[str, float]]:
    return ({j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]},
            {j["name"]: j["weight"] for j in document["journeys"]})


def test_the_everyday_profile_s_rate_is_the_documented_one():
    document = _document("hotel")
    ProfileDocument.model_validate(document)
    assert document["workload"] == "hotel" and document["services"] == list(MESH)
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params.hotels == 300 and seed_params.festival_hotels == 0
    journeys, weights = _journeys(document)
    rate, total = document["arrival"]["rate_per_s"], sum(weights.values())
    assert rate == total  # the weights are the rates per second
    bookings = rate * weights["book"] / total
    assert bookings == 5 and 11.5 / bookings == pytest.approx(2.3, abs=0.05)  # 1M/day = 11.6/s: 2.3 times fewer
    assert 34.7 / bookings == pytest.approx(7, abs=0.1)  # the peak, 3 times the average: 7 times fewer
    assert weights["search"] / weights["book"] == 10  # look-to-book
    assert weights["cancel"] / weights["book"] == 0.25 and weights["check_in"] / weights["book"] == 0.55
    assert all(j.festival_share == 0 for j in journeys.values() if isinstance(j, StayParams))
    # A guest books about once in 10 minutes: far below the fraud rules' card velocity (5 in 10 minutes).
    assert bookings * 600 / seed_params.guests < 1.5
    timeout_s = document["request_timeout_ms"] / 1000
    assert journeys["book"].max_searches * timeout_s + journeys["book"].retry_within_s + timeout_s < timeout_s * 10 + 5
    metadata = document["metadata"]
    assert "seeds/001_58dfc580020147d2.txt line 23" in metadata["source"] and "1M bookings/day" in metadata["source"]
    assert "7 times fewer than the peak" in metadata["scaling"] and "Look-to-book" in metadata["scaling"]
    assert document["settings"]["hotel-inventory"] == {"lock_mode": "pessimistic", "overbooking_allowance_pct": 0}


def test_the_peak_dates_profile_makes_more_festival_demand_than_rooms():
    document = _document("hotel-peak-dates")
    ProfileDocument.model_validate(document)
    assert document["workload"] == "hotel" and document["slos"] == ["hotel.slo.yaml"]
    assert document["settings"]["hotel-inventory"]["lock_mode"] == "pessimistic"
    seed_params = SeedParams.model_validate(document["seed"])
    journeys, weights = _journeys(document)
    bookers = journeys["book"]
    assert bookers.crowd_max > 1 and bookers.festival_share >= 0.8 and journeys["search"].festival_share >= 0.8
    rate, total = document["arrival"]["rate_per_s"], sum(weights.values())
    guests_per_s = rate * weights["book"] / total * (bookers.crowd_min + bookers.crowd_max) / 2
    festival_rooms_per_night = seed_params.festival_hotels * seed_params.festival_room_types * seed_params.festival_rooms
    seconds = document["warmup_s"] + document["duration_s"]
    assert guests_per_s * bookers.festival_share * 0.8 * seconds > 1.2 * festival_rooms_per_night  # sold out
    assert guests_per_s * bookers.festival_share * 0.8 * document["warmup_s"] < festival_rooms_per_night / 2
    assert seed_params.festival_nights == 3 and seed_params.festival_hotels * seed_params.festival_room_types <= 10
    assert guests_per_s * seconds / seed_params.guests < 0.5  # a guest books once or twice a run: no card velocity
    assert "hotel-inventory.lock_mode=optimistic" in (PROFILES_DIR / "hotel-peak-dates.yaml").read_text()


@pytest.mark.parametrize(("profile", "service", "module", "model"), [
    ("hotel", "hotel-inventory", "casemesh.services.hotel.inventory.settings", "InventorySettings"),
    ("hotel-peak-dates", "hotel-inventory", "casemesh.services.hotel.inventory.settings", "InventorySettings"),
    ("hotel-peak-dates", "hotel-booking", "casemesh.services.hotel.booking.settings", "BookingSettings"),
])
def test_the_profiles_settings_fit_the_services_settings_models(profile: str, service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    validated = getattr(settings_module, model).model_validate(_document(profile)["settings"][service])
    if service == "hotel-booking":  # the profile writes the defaults out: it changes none of them
        assert validated == getattr(settings_module, model)()


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "hotel.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {"hotel-booking-time", "hotel-search-latency", "hotel-booking-availability",
                         "hotel-search-availability", "hotel-no-double-booking", "hotel-bookings-consistent",
                         "hotel-booking-time-server", "hotel-search-latency-server",
                         "hotel-booking-availability-server"}
    assert slos["hotel-booking-time"].good.latency_le_ms == 500 and slos["hotel-booking-time"].target == 0.99
    assert slos["hotel-search-latency"].good.latency_le_ms == 200
    assert slos["hotel-booking-availability"].target == 0.999
    for name in ("hotel-booking-time", "hotel-search-latency", "hotel-booking-availability"):
        assert slos[f"{name}-server"].twin_of == name
    text = (PROFILES_DIR / "hotel.slo.yaml").read_text()
    assert 'grpc_service="casemesh.hotel.v1.BookingService",grpc_method="CreateBooking",le="0.5"' in text
    assert 'grpc_service="casemesh.hotel.v1.RoomInventoryService",grpc_method="GetAvailability",le="0.2"' in text
    assert "seeds/001_58dfc580020147d2.txt line 23" in text and "000_69ff90d97cf45f9b.txt line 513" in text


def test_the_slo_names_are_the_hotel_s_own():
    def names(path: Path) -> set[str]:
        return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}

    ours = names(PROFILES_DIR / "hotel.slo.yaml")
    others = set().union(*(names(p) for p in PROFILES_DIR.glob("*.slo.yaml") if p.name != "hotel.slo.yaml"))
    assert all(name.startswith("hotel-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The mesh's services as the profile loader's catalogue sees them, whether or not their modules import (their
    settings keys are checked above)."""
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in MESH}}
    monkeypatch.setattr(profile_module, "SERVICES", known)


@pytest.mark.parametrize("name", ["hotel", "hotel-peak-dates"])
def test_the_profiles_load_with_their_slos(monkeypatch: pytest.MonkeyPatch, name: str):
    _registered(monkeypatch)
    profile = load_profile(name, known_services=MESH)
    assert profile.workload is WORKLOAD and profile.request_timeout_ms == 3000
    assert [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
    assert {"hotel-booking-time", "hotel-no-double-booking", "hotel-bookings-consistent"} <= \
        {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in MESH), reason="the hotel services are not registered yet")
def test_the_shipped_profiles_load():
    assert load_profile("hotel").seed.hotels == 300
    assert load_profile("hotel-peak-dates").seed.festival_hotels > 0


#: What the workload may import of casemesh.services: the contracts (and what they import).
ALLOWED_SERVICE_MODULES = {"casemesh.services", "casemesh.services.hotel", "casemesh.services.hotel.contract",
                           "casemesh.services.payments", "casemesh.services.payments.contract",
                           "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
                           "casemesh.services.runtime.errors"}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.hotel.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry", "payments.cards"}, \
                    f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.hotel import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "casemesh.services.hotel.contract" in loaded and loaded <= ALLOWED_SERVICE_MODULES, loaded


# the harness's driver over real gRPC, against the fake hotel ---------------------------------------------------------------

def _servicers(fake: FakeHotel) -> list[Any]:
    from casemesh.hotel.v1 import booking_pb2_grpc, inventory_pb2_grpc
    from casemesh.payments.v1 import vault_pb2_grpc

    def forward(name: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await fake.handle(name, request)
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
        return method

    inventory = type("Inventory", (inventory_pb2_grpc.RoomInventoryServiceServicer,),
                     {m: forward(m) for m in ("AddRoomType", "GetAvailability", "Audit")})
    bookings = type("Bookings", (booking_pb2_grpc.BookingServiceServicer,),
                    {m: forward(m) for m in ("CreateBooking", "GetBooking", "CancelBooking", "CheckIn")})
    vault = type("Vault", (vault_pb2_grpc.CardVaultServiceServicer,), {"TokenizeCard": forward("TokenizeCard")})
    return [(inventory_pb2_grpc.add_RoomInventoryServiceServicer_to_server, inventory()),
            (booking_pb2_grpc.add_BookingServiceServicer_to_server, bookings()),
            (vault_pb2_grpc.add_CardVaultServiceServicer_to_server, vault())]


async def test_the_driver_runs_every_journey_over_grpc_and_checks_at_the_end(monkeypatch: pytest.MonkeyPatch):
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    _registered(monkeypatch)
    profile = with_overrides(load_profile("hotel-peak-dates", known_services=MESH), duration_s=1.5, warmup_s=0.3,
                             rate_scale=0.25)
    profile = dataclasses.replace(profile, seed=SeedParams(hotels=20, guests=100, festival_hotels=2,
                                                           festival_rooms=10))
    fake = FakeHotel(in_flight_s=0.0)
    server = grpc.aio.server()
    for add, servicer in _servicers(fake):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {name: channel for name in HOTEL_SERVICES}, rng_seed=3)
        await driver.seed()
        assert isinstance(driver.state, State) and len(driver.state.guests) == 100
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    calls = stats.rpc("casemesh.hotel.v1.BookingService/CreateBooking")
    assert calls.count() > 2 and calls.count(["OK", "ABORTED"]) == calls.count()
    for journey in ("search", "book", BOOKING_TIME):
        assert stats.journey(journey).count() > 0 and stats.journey(journey).count(["OK"]) == stats.journey(journey).count()
    assert stats.journey(BOOKING_OUTCOME).count(["CONFIRMED"]) > 0
    for measure in (BOOKINGS_CONSISTENT, NO_DOUBLE_BOOKING):
        assert stats.journey(measure).count(["OK"]) == 1 == stats.journey(measure).count()
