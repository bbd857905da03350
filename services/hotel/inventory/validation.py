"""hotel-inventory's input rules, as protos/casemesh/hotel/v1/inventory.proto and hotel.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the proto's comments do
(``room_type.hotel_id``, ``room_type.room_type_id``, ``room_type.name``, ``room_type.rooms``,
``room_type.nightly_rate.currency_code``, ``room_type.nightly_rate.amount_minor``; ``hold_id``, ``hotel_id``,
``room_type_id``, ``check_in``, ``nights``, ``rooms``, ``ttl_ms``), the first bad one in the proto's field order. The
shared rules are the contract's (:mod:`services.hotel.contract`). A stay whose last night would fall after 2099-12-31
is refused naming ``nights``.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

from casemesh.hotel.v1 import inventory_pb2

from ...runtime.errors import InvalidArgument
from .. import contract
from .inventory import HoldRequest
from .records import RoomTypeRecord, Stay

__all__ = ["StayQuery", "add_room_type", "availability", "hold_id", "hold_rooms"]

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


def _id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not contract.is_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    return value


def hold_id(value: str) -> str:
    """A hold ID: "hold_" and 24 characters of [a-z2-7], naming ``hold_id``."""
    if not contract.is_hold_id(value):
        raise InvalidArgument("hold_id", f"{value!r} is not 'hold_' and 24 characters of a-z, 2-7" if value
                              else "is required ('hold_' and 24 characters of a-z, 2-7)")
    return value


def add_room_type(request: inventory_pb2.AddRoomTypeRequest) -> RoomTypeRecord:
    """AddRoomTypeRequest: the room type's IDs, name (1 to 100 characters), rooms (1 to 10,000) and nightly rate (a
    currency code, 1 to 10,000,000 minor units)."""
    room_type = request.room_type
    hotel = _id("room_type.hotel_id", room_type.hotel_id)
    room_type_id = _id("room_type.room_type_id", room_type.room_type_id)
    if not 1 <= len(room_type.name) <= contract.NAME_MAX_CHARS:
        raise InvalidArgument("room_type.name", f"has {len(room_type.name)} characters; 1 to "
                                                f"{contract.NAME_MAX_CHARS}")
    if not 1 <= room_type.rooms <= contract.MAX_ROOMS:
        raise InvalidArgument("room_type.rooms", f"{room_type.rooms} is not 1 to {contract.MAX_ROOMS:,}")
    rate = room_type.nightly_rate
    if not contract.is_currency_code(rate.currency_code):
        raise InvalidArgument("room_type.nightly_rate.currency_code", f"{rate.currency_code!r} is not three "
                                                                      "upper-case letters (ISO 4217)")
    if not 1 <= rate.amount_minor <= contract.MAX_RATE_MINOR:
        raise InvalidArgument("room_type.nightly_rate.amount_minor", f"{rate.amount_minor} is not 1 to "
                                                                     f"{contract.MAX_RATE_MINOR:,} minor units")
    return RoomTypeRecord(hotel, room_type_id, room_type.name, room_type.rooms, rate.currency_code, rate.amount_minor)


class StayQuery(NamedTuple):
    """A valid GetAvailabilityRequest: a room type and ``nights`` nights from ``check_in``."""

    hotel_id: str
    room_type_id: str
    check_in: date
    nights: int


def _stay(hotel_id: str, room_type_id: str, check_in: str, nights: int) -> StayQuery:
    hotel = _id("hotel_id", hotel_id)
    room_type_id = _id("room_type_id", room_type_id)
    first = contract.parse_night(check_in)
    if first is None:
        raise InvalidArgument("check_in", f"{check_in!r} is not a date YYYY-MM-DD from "
                                          f"{contract.FIRST_NIGHT.isoformat()} to {contract.LAST_NIGHT.isoformat()}")
    if not 1 <= nights <= contract.MAX_NIGHTS:
        raise InvalidArgument("nights", f"{nights} is not 1 to {contract.MAX_NIGHTS}")
    if contract.stay_nights(first, nights)[-1] > contract.LAST_NIGHT:
        raise InvalidArgument("nights", f"a stay of {nights} nights from {check_in} runs past "
                                        f"{contract.LAST_NIGHT.isoformat()}")
    return StayQuery(hotel, room_type_id, first, nights)


def availability(request: inventory_pb2.GetAvailabilityRequest) -> StayQuery:
    """GetAvailabilityRequest: ``hotel_id``, ``room_type_id``, ``check_in`` (2000-01-01 to 2099-12-31), ``nights`` (1 to
    30)."""
    return _stay(request.hotel_id, request.room_type_id, request.check_in, request.nights)


def hold_rooms(request: inventory_pb2.HoldRoomsRequest) -> HoldRequest:
    """HoldRoomsRequest: ``hold_id``, the stay (as :func:`availability`), ``rooms`` (1 to 10) and ``ttl_ms`` (0, or
    1,000 to 3,600,000)."""
    hold = hold_id(request.hold_id)
    stay = _stay(request.hotel_id, request.room_type_id, request.check_in, request.nights)
    if not 1 <= request.rooms <= contract.MAX_ROOMS_PER_STAY:
        raise InvalidArgument("rooms", f"{request.rooms} is not 1 to {contract.MAX_ROOMS_PER_STAY}")
    if request.ttl_ms != 0 and not contract.MIN_TTL_MS <= request.ttl_ms <= contract.MAX_TTL_MS:
        raise InvalidArgument("ttl_ms", f"{request.ttl_ms} is not 0 (the default) or {contract.MIN_TTL_MS:,} to "
                                        f"{contract.MAX_TTL_MS:,} ms")
    return HoldRequest(hold, Stay(stay.hotel_id, stay.room_type_id, stay.check_in, stay.nights, request.rooms),
                       request.ttl_ms)
