"""hotel-booking's input rules, as protos/casemesh/hotel/v1/booking.proto states them.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23, "Hotel Reservation"). Each check raises
:class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do (``idempotency_key``,
``guest_id``, ``check_in``, ``card_token``, ``booking_id``), the first bad one in the proto's field order. The rules
are the hotel contract's (:mod:`services.hotel.contract`: ids, nights, stay lengths, room counts, booking ids,
idempotency keys) and, for the card token the guest got from the payment gateway's vault, the payment contract's
(:mod:`services.payments.contract`, of which this service is a client).
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from casemesh.hotel.v1 import booking_pb2

from ...payments.contract import CARD_TOKEN_PREFIX, GATEWAY_ID_CHARS, is_gateway_id
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract


class CreateBooking(NamedTuple):
    """A valid CreateBookingRequest."""

    idempotency_key: str
    guest_id: str
    hotel_id: str
    room_type_id: str
    check_in: date
    nights: int
    rooms: int
    card_token: str


def create_booking(request: booking_pb2.CreateBookingRequest) -> CreateBooking:
    """CreateBookingRequest: ``idempotency_key`` (1 to 255 printable ASCII characters), ``guest_id``, ``hotel_id``,
    ``room_type_id`` (ids), ``check_in`` ("YYYY-MM-DD", 2000-01-01 to 2099-12-31), ``nights`` (1 to 30), ``rooms``
    (1 to 10), ``card_token`` ("tok_" and 24 characters of [a-z0-9])."""
    if not contract.is_idempotency_key(request.idempotency_key):
        raise InvalidArgument("idempotency_key", f"must be 1 to {contract.MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
                                                 f"characters (got {len(request.idempotency_key)} characters)")
    guest_id = required_id("guest_id", request.guest_id)
    hotel_id = required_id("hotel_id", request.hotel_id)
    room_type_id = required_id("room_type_id", request.room_type_id)
    check_in = contract.parse_night(request.check_in)
    if check_in is None:
        raise InvalidArgument("check_in", f"{request.check_in!r} is not a date YYYY-MM-DD from "
                                          f"{contract.FIRST_NIGHT} to {contract.LAST_NIGHT}")
    if not 1 <= request.nights <= contract.MAX_NIGHTS:
        raise InvalidArgument("nights", f"{request.nights} is not 1 to {contract.MAX_NIGHTS}")
    if not 1 <= request.rooms <= contract.MAX_ROOMS_PER_STAY:
        raise InvalidArgument("rooms", f"{request.rooms} is not 1 to {contract.MAX_ROOMS_PER_STAY}")
    if not is_gateway_id(request.card_token, CARD_TOKEN_PREFIX):
        raise InvalidArgument("card_token", f"must be {CARD_TOKEN_PREFIX!r} and {GATEWAY_ID_CHARS} characters of a-z "
                                            "or 0-9 (from CardVaultService.TokenizeCard)")
    return CreateBooking(request.idempotency_key, guest_id, hotel_id, room_type_id, check_in, request.nights,
                         request.rooms, request.card_token)


def booking_id(value: str) -> str:
    """A request's ``booking_id``: ``bk_`` and 24 characters of ``[a-z2-7]``."""
    if not contract.is_booking_id(value):
        raise InvalidArgument("booking_id", "must be 'bk_' and 24 characters of a-z or 2-7")
    return value
