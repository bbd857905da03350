"""The inventory's audit: every room-night's counts against its holds, and no night sold beyond its sellable rooms.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | Pessimistic locking, overbooking
prevention"); protos/casemesh/hotel/v1/inventory.proto ``Audit``. :func:`audit` checks one consistent state (the
inventory's memory, copied in one step of the event loop, or the file, read in one transaction):

- each room-night's ``booked`` equals the rooms of the CONFIRMED holds whose stays cover it, and ``held`` those of the
  HELD ones (a night with neither and no row counts 0);
- ``0 <= booked``, ``0 <= held`` and ``booked + held <= sellable`` (the room count plus the overbooking allowance):
  no double booking beyond the allowance;
- every room-night and hold is of a room type on sale.

Nights where ``booked + held`` exceeds the room count (within the allowance) are counted, not reported.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from .records import CONFIRMED, HELD, HoldRecord, NightKey, RoomTypeRecord

#: Most violations listed in one report (the rest are counted in a last line).
MAX_VIOLATIONS = 100


@dataclass(frozen=True, slots=True)
class AuditReport:
    """What an audit found (AuditResponse's fields); ``violations`` empty when every invariant holds."""

    room_types: int
    room_nights: int
    booked_room_nights: int
    held_room_nights: int
    overbooked_room_nights: int
    violations: list[str] = field(default_factory=list)


def _name(key: NightKey) -> str:
    return f"{key[0]}/{key[1]} {key[2].isoformat()}"


def audit(room_types: Iterable[RoomTypeRecord], nights: Mapping[NightKey, tuple[int, int]],
          holds: Iterable[HoldRecord], sellable: Callable[[int], int], where: str) -> AuditReport:
    """Check ``nights`` (key → (booked, held)) against the HELD and CONFIRMED ``holds`` and the room types' sellable
    rooms (``sellable(rooms)``); violations are prefixed with ``where`` ("memory", "file")."""
    rooms = {(t.hotel_id, t.room_type_id): t.rooms for t in room_types}
    violations: list[str] = []
    expected: defaultdict[NightKey, list[int]] = defaultdict(lambda: [0, 0])
    for hold in holds:
        stay = hold.stay
        if (stay.hotel_id, stay.room_type_id) not in rooms:
            violations.append(f"{where}: hold {hold.hold_id} is of room type {stay.hotel_id}/{stay.room_type_id}, "
                              "not on sale")
        if hold.status not in (HELD, CONFIRMED):
            violations.append(f"{where}: hold {hold.hold_id} takes rooms in status {hold.status}")
            continue
        for key in stay.night_keys():
            expected[key][0 if hold.status == CONFIRMED else 1] += stay.rooms
    room_nights = booked_total = held_total = overbooked = 0
    for key in sorted(set(nights) | set(expected)):
        booked, held = nights.get(key, (0, 0))
        want_booked, want_held = expected.get(key, (0, 0))
        name = _name(key)
        if (booked, held) != (want_booked, want_held):
            violations.append(f"{where}: {name} has {booked} booked and {held} held; its holds say {want_booked} "
                              f"booked and {want_held} held")
        if booked < 0 or held < 0:
            violations.append(f"{where}: {name} has a negative count ({booked} booked, {held} held)")
        count = rooms.get(key[:2])
        if count is None:
            violations.append(f"{where}: {name} is of a room type not on sale")
        else:
            if booked + held > sellable(count):
                violations.append(f"{where}: {name} has {booked} booked + {held} held > {sellable(count)} sellable")
            if booked + held > count:
                overbooked += 1
        room_nights += booked + held > 0
        booked_total += booked
        held_total += held
    if len(violations) > MAX_VIOLATIONS:
        violations[MAX_VIOLATIONS:] = [f"{where}: and {len(violations) - MAX_VIOLATIONS} more"]
    return AuditReport(len(rooms), room_nights, booked_total, held_total, overbooked, violations)
