"""The hotel workload's parameters (hotels and their room types, the festival city's hotels, guests and their cards,
the end-of-run checks) and its seeding through the public API (RoomInventoryService.AddRoomType,
CardVaultService.TokenizeCard).

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation |
Pessimistic locking, overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). What is seeded,
each id under the run's prefix ``ht<run>`` (8 hex digits, the first draw of the run's generator):

- **hotels** (``ht<run>-h<i>``, ``hotels``): each sells ``room_types_min`` to ``room_types_max`` room types (uniform),
  ``rt0``, ``rt1``, ... named from :data:`ROOM_TYPE_NAMES` in order. A room type's room count is lognormal around
  ``rooms_median`` (``rooms_sigma``) clipped to ``rooms_min`` .. ``rooms_max`` (5 to 200 by default: a guest house's
  few doubles to a city hotel's floors of them). A hotel's base rate (minor units a night) is lognormal around
  ``rate_median_minor`` (``rate_sigma``: a hostel to a palace); room type ``j`` costs ``1 + 0.3 j`` times it (a twin,
  a superior room, a suite), clipped to ``rate_min_minor`` .. ``rate_max_minor``. Their seeded order is their
  popularity (:mod:`.stays`: Zipf over the rank);
- **festival hotels** (``ht<run>-f<i>``, ``festival_hotels``, none by default): the hotels of a city that holds a
  festival (the ``hotel-peak-dates`` profile), ``festival_room_types`` room types of ``festival_rooms`` rooms each,
  rates drawn as above. Only festival guests book them, so the festival's nights start empty: the workload's
  ``connect`` picks the first weekend, ``festival_lead_days`` or more after ``first_night``, on which nothing of them
  is booked or held (:mod:`.live`);
- **guests** (``ht<run>-g<i>``, ``guests``): each with one card tokenized for the hotels' merchant
  (:data:`casemesh.services.hotel.contract.MERCHANT_ID`) as a hotel's booking page does: the number goes to the
  vault, the token comes back. The numbers are the payments workload's per-run pool of valid Luhn numbers
  (:func:`casemesh.harness.workloads.payments.cards.card_pool`), except for ``declining_card_share`` of guests, whose
  card is one of the contract's TEST_CARDS (every simulated issuer declines them), in turn: their bookings fail
  PAYMENT_DECLINED and are compensated.

What is drawn, in order, from the run's generator: the run prefix, then per hotel its room-type count, base rate and
each room type's rooms, then per festival hotel its base rate, then per guest whether its card declines; the card
numbers and expiries from their own generator (the pool's). ``first_night`` (the first night guests may book) is the
day after the seeding's UTC date. AddRoomType goes ``add_concurrency`` calls in flight (adding a room type that
exists with the same fields returns it: a resend or a data directory kept from a run with the same ``--seed``),
TokenizeCard ``tokenize_concurrency``; a call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again, up to
:data:`SEED_ATTEMPTS` times, 100 ms doubling between; any other refusal fails the seeding with its status.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import grpc
from pydantic import Field, field_validator, model_validator

from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import hotel_pb2, inventory_pb2
from casemesh.payments.v1 import vault_pb2
from casemesh.services.hotel.contract import MAX_NIGHTS, MAX_RATE_MINOR, MAX_ROOMS, MERCHANT_ID, is_currency_code

from ..base import Caller, Params
from ..payments.cards import CardPlan, card_pool, declining_cards

INVENTORY = "hotel-inventory"
BOOKING = "hotel-booking"
VAULT = "payments-vault"

#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: Room type ``rt<j>``'s name; a hotel has at most this many room types.
ROOM_TYPE_NAMES = ("Standard double", "Twin", "Superior double", "Junior suite", "Family room", "Suite")
#: Room type ``j``'s rate is ``1 + RATE_STEP * j`` times its hotel's base rate.
RATE_STEP = 0.3

T = TypeVar("T")


class SeedParams(Params):
    """Hotels, festival hotels, guests and the end-of-run checks (defaults: the ``hotel`` profile's)."""

    currency: str = Field(default="USD", description="every hotel's currency (ISO 4217)")
    hotels: int = Field(default=300, ge=1, le=100_000, description="hotels on sale (everyday traffic)")
    room_types_min: int = Field(default=2, ge=1, le=len(ROOM_TYPE_NAMES), description="fewest room types of a hotel")
    room_types_max: int = Field(default=4, ge=1, le=len(ROOM_TYPE_NAMES), description="most room types (uniform)")
    rooms_median: int = Field(default=30, ge=1, le=MAX_ROOMS, description="median rooms of a room type")
    rooms_sigma: float = Field(default=0.8, ge=0, le=5, description="a room type's rooms: lognormal sigma")
    rooms_min: int = Field(default=5, ge=1, le=MAX_ROOMS, description="fewest rooms of a room type")
    rooms_max: int = Field(default=200, ge=1, le=MAX_ROOMS, description="most rooms of a room type")
    rate_median_minor: int = Field(default=12_000, ge=1, le=MAX_RATE_MINOR,
                                   description="median base rate of a hotel, minor units a night (12,000: 120.00)")
    rate_sigma: float = Field(default=0.5, ge=0, le=5, description="a hotel's base rate: lognormal sigma")
    rate_min_minor: int = Field(default=3_000, ge=1, le=MAX_RATE_MINOR, description="lowest nightly rate")
    rate_max_minor: int = Field(default=200_000, ge=1, le=MAX_RATE_MINOR, description="highest nightly rate")
    festival_hotels: int = Field(default=0, ge=0, le=1_000,
                                 description="hotels of the festival city (only festival guests book them)")
    festival_room_types: int = Field(default=2, ge=1, le=len(ROOM_TYPE_NAMES),
                                     description="room types of a festival hotel")
    festival_rooms: int = Field(default=100, ge=1, le=MAX_ROOMS, description="rooms of a festival room type")
    festival_nights: int = Field(default=3, ge=1, le=MAX_NIGHTS, description="the festival's nights, from a Friday")
    festival_lead_days: int = Field(default=60, ge=1, le=3_650,
                                    description="the festival's Friday is at least this many days after first_night")
    festival_probe_weeks: int = Field(default=52, ge=1, le=520,
                                      description="weekends connect looks at for one with nothing booked")
    guests: int = Field(default=3_000, ge=1, le=1_000_000, description="guests, each with one card")
    declining_card_share: float = Field(default=0.02, ge=0, le=1,
                                        description="share of guests whose card is a contract TEST_CARD (declined)")
    add_concurrency: int = Field(default=16, ge=1, le=256, description="AddRoomType calls in flight while seeding")
    tokenize_concurrency: int = Field(default=16, ge=1, le=256, description="TokenizeCard calls in flight")
    baseline_audit: bool = Field(default=True,
                                 description="audit once when the load processes connect (not recorded), so that "
                                             "violations an earlier run left in a kept data directory are not "
                                             "blamed on this one")
    audit_timeout_s: float = Field(default=30.0, gt=0, le=600, description="deadline of one Audit call, s")
    audit_delay_s: float = Field(default=2.0, ge=0, le=600,
                                 description="with --workers, the seconds load process 0 waits after its own drain "
                                             "before its Audit (the others' last journeys)")
    check_concurrency: int = Field(default=16, ge=1, le=256,
                                   description="GetBooking and GetAvailability calls in flight in the end-of-run "
                                               "checks")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency_code(value):
            raise ValueError(f"{value!r} is not a currency code (three upper-case letters)")
        return value

    @model_validator(mode="after")
    def _ranges(self) -> SeedParams:
        for low, mid, high in (("room_types_min", None, "room_types_max"), ("rooms_min", "rooms_median", "rooms_max"),
                               ("rate_min_minor", "rate_median_minor", "rate_max_minor")):
            values = [getattr(self, name) for name in (low, mid, high) if name is not None]
            if values != sorted(values):
                names = " <= ".join(f"{n} ({getattr(self, n)})" for n in (low, mid, high) if n is not None)
                raise ValueError(f"{names} must hold")
        return self


@dataclass(frozen=True)
class RoomTypePlan:
    """A room type on sale: its id, name, room count and nightly rate (minor units)."""

    room_type_id: str
    name: str
    rooms: int
    rate_minor: int


@dataclass(frozen=True)
class Hotel:
    """A hotel and its room types."""

    hotel_id: str
    room_types: tuple[RoomTypePlan, ...]


@dataclass(frozen=True)
class Guest:
    """A guest and the token of its card (for the hotels' merchant); ``declining`` when the card always declines."""

    guest_id: str
    card_token: str
    declining: bool = False


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the currency, the first night
    guests may book (``YYYY-MM-DD``), the hotels in popularity order, the festival hotels and the guests."""

    run: str
    currency: str
    first_night: str
    hotels: list[Hotel]
    festival: list[Hotel]
    guests: list[Guest]

    def room_types(self) -> dict[tuple[str, str], RoomTypePlan]:
        """Every room type the run put on sale, by (hotel_id, room_type_id)."""
        return {(h.hotel_id, r.room_type_id): r for h in (*self.hotels, *self.festival) for r in h.room_types}


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def lognormal(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    """A lognormal draw around ``median`` (``sigma``), rounded and clipped to ``low`` .. ``high``."""
    return min(max(round(rng.lognormvariate(math.log(median), sigma)), low), high)


def room_types(params: SeedParams, rng: random.Random, count: int, rooms: int | None = None) -> tuple[RoomTypePlan, ...]:
    """``count`` room types of one hotel: its base rate, then each type's rooms (``rooms`` when given), drawn."""
    base = rng.lognormvariate(math.log(params.rate_median_minor), params.rate_sigma)
    plans = []
    for j in range(count):
        rate = min(max(round(base * (1 + RATE_STEP * j)), params.rate_min_minor), params.rate_max_minor)
        size = rooms if rooms is not None else lognormal(rng, params.rooms_median, params.rooms_sigma,
                                                         params.rooms_min, params.rooms_max)
        plans.append(RoomTypePlan(f"rt{j}", ROOM_TYPE_NAMES[j], size, rate))
    return tuple(plans)


def plan(params: SeedParams, rng: random.Random, today: date | None = None) -> tuple[State, list[CardPlan]]:
    """The state to seed and each guest's card (in the guests' order), drawn in a fixed order (module docstring): no
    call. The guests' tokens are empty until :func:`seed` fills them."""
    run = run_prefix(rng)
    base = f"ht{run}"
    hotels = [Hotel(f"{base}-h{i}", room_types(params, rng, rng.randint(params.room_types_min, params.room_types_max)))
              for i in range(params.hotels)]
    festival = [Hotel(f"{base}-f{i}", room_types(params, rng, params.festival_room_types, params.festival_rooms))
                for i in range(params.festival_hotels)]
    declining = [rng.random() < params.declining_card_share for _ in range(params.guests)]
    pool = iter(card_pool(run, declining.count(False)))
    tests = itertools.cycle(declining_cards(random.Random(f"casemesh-hotel-test-cards-{run}")))
    cards = [next(tests) if d else next(pool) for d in declining]
    guests = [Guest(f"{base}-g{i}", "", d) for i, d in enumerate(declining)]
    first = (today or datetime.now(UTC).date()) + timedelta(days=1)
    return State(run=run, currency=params.currency, first_night=first.isoformat(), hotels=hotels, festival=festival,
                 guests=guests), cards


async def resend(send: Callable[[], Awaitable[T]]) -> T:
    """``send()`` until answered; UNAVAILABLE or DEADLINE_EXCEEDED are sent again (module docstring)."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return await send()
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await asyncio.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def add_room_type_request(hotel: Hotel, room_type: RoomTypePlan, currency: str) -> inventory_pb2.AddRoomTypeRequest:
    return inventory_pb2.AddRoomTypeRequest(room_type=hotel_pb2.RoomType(
        hotel_id=hotel.hotel_id, room_type_id=room_type.room_type_id, name=room_type.name, rooms=room_type.rooms,
        nightly_rate=money_pb2.Money(currency_code=currency, amount_minor=room_type.rate_minor)))


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Put every room type on sale and tokenize every guest's card (module docstring); returns the state."""
    state, cards = plan(params, rng)
    add_limit = asyncio.Semaphore(params.add_concurrency)
    tokenize_limit = asyncio.Semaphore(params.tokenize_concurrency)

    async def add(hotel: Hotel, room_type: RoomTypePlan) -> None:
        request = add_room_type_request(hotel, room_type, state.currency)
        async with add_limit:
            stored: Any = (await resend(lambda: call(INVENTORY, "AddRoomType", request))).room_type
        if (stored.rooms, stored.nightly_rate.amount_minor) != (room_type.rooms, room_type.rate_minor):
            raise RuntimeError(f"AddRoomType {hotel.hotel_id}/{room_type.room_type_id} answered {stored.rooms} rooms "
                               f"at {stored.nightly_rate.amount_minor}, asked {room_type.rooms} at "
                               f"{room_type.rate_minor}")

    async def tokenize(index: int, card: CardPlan) -> None:
        request = vault_pb2.TokenizeCardRequest(merchant_id=MERCHANT_ID, card_number=card.number,
                                                exp_month=card.exp_month, exp_year=card.exp_year, cvc=card.cvc)
        async with tokenize_limit:
            token = (await resend(lambda: call(VAULT, "TokenizeCard", request))).card_token
        guest = state.guests[index]
        state.guests[index] = Guest(guest.guest_id, token, guest.declining)

    await asyncio.gather(*(add(h, r) for h in (*state.hotels, *state.festival) for r in h.room_types),
                         *(tokenize(i, c) for i, c in enumerate(cards)))
    return state
