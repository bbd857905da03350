"""The hotel journeys: guests searching, booking, cancelling and checking in (open-loop arrivals).

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "Pessimistic locking, overbooking
prevention, payment auth/capture | 1M bookings/day, Booking.com"); seed 000 line 522 (the payment service's
"Idempotent APIs, retry with exponential backoff", the pattern every booking call here follows). Stays are drawn as
:mod:`.stays` says (everyday, or the festival's for ``festival_share`` of guests).

- ``search`` (most of the traffic: the read path): a guest opens a hotel's page for a stay: GetAvailability of every
  room type of the hotel at once. Not retried: the page shows the error and the guest reloads it.
- ``book``: ``crowd_min`` to ``crowd_max`` guests (uniform; 1 by default) who saw the same offer book it at the same
  moment (a festival's line-up announced, "2 rooms left" pushed to a crowd). Each, on its own: GetAvailability of
  the stay; when a night has fewer rooms available than the stay needs, the next option (:func:`.stays.options`: the
  hotel's other room types, then other hotels; ``max_searches`` looks in all), and when none has them, no booking
  (``booking_outcome`` SOLD_OUT). Else CreateBooking with a fresh idempotency key (``book-<uuid4 hex>``), the guest's
  card token and the stay, retried with the same key on UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED or
  RESOURCE_EXHAUSTED (exponential backoff, full jitter: :mod:`casemesh.harness.workloads.idempotent_retry`);
  ``double_submit_p`` of them are double clicks: the same request sent twice at once, each retried on its own
  (ABORTED while the other is in flight), which must make one booking. The race between the look and the booking is
  real: under the festival's demand the rooms seen may be gone (FAILED NO_AVAILABILITY), and in the inventory's
  optimistic lock mode the booking retries lost version races (``conflict_retries``) and may fail CONTENTION. A
  FAILED booking is an answer: the guest sees it.
- ``cancel``: a guest cancels one of the process's CONFIRMED bookings drawn uniformly (CancelBooking, retried:
  cancelling a CANCELLED booking returns it); its rooms go back on sale and its authorisation is voided.
- ``check_in``: the guest of the process's CONFIRMED booking whose first night comes first arrives (CheckIn,
  retried: checking in twice returns it): the payment is captured. Time is compressed: the day of arrival is any
  moment after the booking.

A booking is cancelled or checked in at most once, by the first journey that takes it; ``cancel`` and ``check_in``
find none in the first moments of a run (then they make no call and end OK).

Measures, besides the RPCs the driver records:

- ``booking_time``: a guest's book button: CreateBooking's first send to its final answer, retries and a double
  click's second send included; code ``OK`` for an answer (CONFIRMED or FAILED), else the last attempt's code;
- ``booking_outcome``: one sample per guest of ``book``, code ``CONFIRMED``, the failure reason (``NO_AVAILABILITY``,
  ``PAYMENT_DECLINED``, ``CONTENTION``), or ``SOLD_OUT`` when no option showed the rooms; latency 0;
- ``booking_conflicts``: one sample per answered booking, code ``NONE`` or ``RETRIED_<n>``, the booking's
  ``conflict_retries`` (version conflicts its hold retried through); latency 0;
- ``bookings_consistent`` and ``no_double_booking`` (:mod:`.end_checks`).

Every answer is entered in the process's :class:`~.bookings.Ledger`. A journey ends OK when every answer came; with
the last code when a call failed for good. With ``crowd_max`` above 1 the calls of one journey overlap: their RPC
latencies are then timed from the latest call's start (the driver's caller times one call at a time), so
``booking_time``, timed per guest here, is the booking's measure.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.hotel.v1 import booking_pb2, inventory_pb2

from ..base import Caller
from ..idempotent_retry import RetryParams, send
from .bookings import CANCELLED, CHECKED_IN, CONFIRMED, Asked, check_change, conflicts_code, outcome_code
from .live import Hotels
from .seeding import BOOKING, INVENTORY, Guest
from .stays import Stay, StayParams

BOOKING_TIME = "booking_time"
BOOKING_OUTCOME = "booking_outcome"
BOOKING_CONFLICTS = "booking_conflicts"
OK = "OK"
SOLD_OUT = "SOLD_OUT"


class SearchParams(StayParams):
    """A hotel page looked at (the stay's distribution only: a search is not retried)."""


class BookParams(StayParams, RetryParams):
    """A booking: the stay, the options looked at, the crowd, double clicks and CreateBooking's retries."""

    max_searches: int = Field(default=3, ge=1, le=20,
                              description="options a guest looks at before giving up (the stay, then alternatives)")
    crowd_min: int = Field(default=1, ge=1, le=64, description="fewest guests booking the same offer at once")
    crowd_max: int = Field(default=1, ge=1, le=64, description="most guests booking the same offer at once (uniform)")
    double_submit_p: float = Field(default=0.02, ge=0, le=1,
                                   description="share of bookings sent twice at once (a double click)")

    @model_validator(mode="after")
    def _crowd(self) -> BookParams:
        if self.crowd_min > self.crowd_max:
            raise ValueError(f"crowd_min ({self.crowd_min}) must be at most crowd_max ({self.crowd_max})")
        return self


class ChangeParams(RetryParams):
    """A cancellation or a check-in: the call's retries."""


def new_key() -> str:
    """A fresh idempotency key: ``book-<uuid4 hex>`` (unique across load processes and runs)."""
    return f"book-{uuid.uuid4().hex}"


def availability_request(stay: Stay) -> inventory_pb2.GetAvailabilityRequest:
    return inventory_pb2.GetAvailabilityRequest(hotel_id=stay.hotel.hotel_id, room_type_id=stay.room_type.room_type_id,
                                                check_in=stay.check_in.isoformat(), nights=stay.nights)


def has_rooms(stay: Stay, response: inventory_pb2.GetAvailabilityResponse) -> bool:
    """True when every night of the stay has the stay's rooms available."""
    return len(response.nights) == stay.nights and all(n.available >= stay.rooms for n in response.nights)


async def gather_raising(calls: list[Any]) -> list[Any]:
    """Await ``calls`` together; raise the last RPC error among them after all ended (others propagate at once)."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if not isinstance(error, grpc.aio.AioRpcError):
            raise error
    if errors:
        raise errors[-1]
    return results


async def search(call: Caller, params: SearchParams, hotels: Hotels, rng: Any) -> None:
    """A guest looks at a hotel's page for a stay (module docstring)."""
    stay = hotels.stay(rng, params)
    await gather_raising([call(INVENTORY, "GetAvailability", availability_request(stay.at(stay.hotel, room_type)))
                          for room_type in stay.hotel.room_types])


async def book_one(call: Caller, params: BookParams, hotels: Hotels, rng: Any, guest: Guest, tries: list[Stay]) -> None:
    """One guest's look and booking (module docstring)."""
    for stay in tries:
        if has_rooms(stay, await call(INVENTORY, "GetAvailability", availability_request(stay))):
            break
    else:
        call.observe(BOOKING_OUTCOME, 0.0, SOLD_OUT)
        return
    asked = Asked.of(guest.guest_id, stay, hotels.currency)
    key = new_key()
    request = booking_pb2.CreateBookingRequest(
        idempotency_key=key, guest_id=guest.guest_id, hotel_id=asked.hotel_id, room_type_id=asked.room_type_id,
        check_in=asked.check_in, nights=asked.nights, rooms=asked.rooms, card_token=guest.card_token)
    sends = 2 if rng.random() < params.double_submit_p else 1
    started = hotels.clock()
    outcomes = await asyncio.gather(*(send(call, BOOKING, "CreateBooking", request, params, rng, sleep=hotels.sleep)
                                      for _ in range(sends)))
    answers = [o.response.booking for o in outcomes if o.answered]
    failed = [o for o in outcomes if not o.answered]
    call.observe(BOOKING_TIME, hotels.clock() - started, OK if answers else failed[-1].code)
    if answers:
        hotels.ledger.answered(key, asked, answers)
        booking = answers[0]
        call.observe(BOOKING_OUTCOME, 0.0, outcome_code(booking))
        call.observe(BOOKING_CONFLICTS, 0.0, conflicts_code(booking.conflict_retries))
        if booking.status == CONFIRMED and booking.booking_id in hotels.ledger.booked:
            hotels.confirmed(booking.booking_id, booking.check_in)
    if failed:
        assert failed[-1].error is not None
        raise failed[-1].error


async def book(call: Caller, params: BookParams, hotels: Hotels, rng: Any) -> None:
    """A crowd of guests books the same offer at once (module docstring)."""
    stay = hotels.stay(rng, params)
    tries = hotels.options(rng, stay, params, params.max_searches)
    guests = hotels.guests(rng, rng.randint(params.crowd_min, params.crowd_max))
    await gather_raising([book_one(call, params, hotels, rng, guest, tries) for guest in guests])


async def change(call: Caller, params: ChangeParams, hotels: Hotels, rng: Any, booking_id: str, method: str,
                 request: Any, target: int) -> None:
    """``method`` (CancelBooking, CheckIn) of ``booking_id``, retried; the ledger follows it."""
    ledger = hotels.ledger
    ledger.begin(booking_id, target)
    outcome = None
    try:
        outcome = await send(call, BOOKING, method, request, params, rng, sleep=hotels.sleep)
    finally:
        refused = outcome is not None and outcome.code == grpc.StatusCode.FAILED_PRECONDITION.name
        ledger.end(booking_id, target, done=outcome is not None and outcome.answered, refused=refused)
    if outcome.answered:
        ledger.note(f"{method} {booking_id}", check_change(booking_id, target, outcome.response.booking))
        return
    if outcome.code == grpc.StatusCode.NOT_FOUND.name:
        ledger.note(f"{method} {booking_id}", ["NOT_FOUND for a booking answered CONFIRMED"])
    assert outcome.error is not None
    raise outcome.error


async def cancel(call: Caller, params: ChangeParams, hotels: Hotels, rng: Any) -> None:
    """A guest cancels a confirmed booking (module docstring)."""
    booking_id = hotels.take_to_cancel(rng)
    if booking_id is not None:
        await change(call, params, hotels, rng, booking_id, "CancelBooking",
                     booking_pb2.CancelBookingRequest(booking_id=booking_id), CANCELLED)


async def check_in(call: Caller, params: ChangeParams, hotels: Hotels, rng: Any) -> None:
    """The next guest to arrive checks in: the capture (module docstring)."""
    booking_id = hotels.take_to_check_in()
    if booking_id is not None:
        await change(call, params, hotels, rng, booking_id, "CheckIn", booking_pb2.CheckInRequest(booking_id=booking_id),
                     CHECKED_IN)
