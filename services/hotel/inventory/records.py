"""The inventory's records: room types, holds, room-night keys and the changes written to the log.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23, "Hotel Reservation"). Nights are ``datetime.date``
values (``"YYYY-MM-DD"`` in the file and on the wire); times are Unix milliseconds; rates are integer minor units;
statuses are ``casemesh.hotel.v1.HoldStatus`` values.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from casemesh.hotel.v1 import hotel_pb2

from ..contract import stay_nights

HELD = hotel_pb2.HOLD_STATUS_HELD
CONFIRMED = hotel_pb2.HOLD_STATUS_CONFIRMED
RELEASED = hotel_pb2.HOLD_STATUS_RELEASED
EXPIRED = hotel_pb2.HOLD_STATUS_EXPIRED
#: Statuses whose holds take rooms (and are always kept in memory).
ACTIVE = frozenset({HELD, CONFIRMED})

#: A room-night: (hotel_id, room_type_id, night).
NightKey = tuple[str, str, date]


@dataclass(frozen=True, slots=True)
class RoomTypeRecord:
    """A room type as added: ``rooms`` physical rooms, ``rate_minor`` per room and night in ``currency_code``."""

    hotel_id: str
    room_type_id: str
    name: str
    rooms: int
    currency_code: str
    rate_minor: int


@dataclass(frozen=True, slots=True)
class Stay:
    """Rooms of one type for every night from ``check_in``: what a hold asks for (and what makes two holds the same)."""

    hotel_id: str
    room_type_id: str
    check_in: date
    nights: int
    rooms: int

    def night_keys(self) -> list[NightKey]:
        """The stay's room-nights, in date order."""
        return [(self.hotel_id, self.room_type_id, night) for night in stay_nights(self.check_in, self.nights)]


@dataclass(frozen=True, slots=True)
class HoldRecord:
    """A hold as stored: ``expires_at_unix_ms`` is set while HELD, 0 in every other status."""

    hold_id: str
    stay: Stay
    status: int
    expires_at_unix_ms: int

    def moved_to(self, status: int) -> HoldRecord:
        """This hold in ``status`` (a later one: no expiry time)."""
        return replace(self, status=status, expires_at_unix_ms=0)

    def due(self, now_ms: int) -> bool:
        """True for a HELD hold whose time is up at ``now_ms``."""
        return self.status == HELD and self.expires_at_unix_ms <= now_ms


@dataclass(frozen=True, slots=True)
class NightChange:
    """What one write does to a room-night: ``booked_delta`` and ``held_delta`` rooms, and the version bumped by one.

    ``expected_version`` ``None``: unconditional; else the write commits only if the room-night is at that version in
    the file (0: the row does not exist yet), the optimistic lock mode's version check.
    """

    key: NightKey
    booked_delta: int
    held_delta: int
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One write to the log, all or none: ``hold`` as it will be stored, from ``previous_status`` (``None``: a new
    hold, inserted; else the hold's status in the file must still be that one), and the changes of its room-nights."""

    hold: HoldRecord
    previous_status: int | None
    nights: tuple[NightChange, ...]
