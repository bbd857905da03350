"""The bookings as a client sees them: what each answer must say, what each booking should read back as at the end,
and how many rooms of each room-night the client holds confirmations for (pure: no I/O).

Seed 001 #20 "Hotel Reservation" (shared/seeds/001_58dfc580020147d2.txt line 23: "Pessimistic locking, overbooking
prevention, payment auth/capture"); booking.proto: "A retry with the same key returns the same booking".

**An answer** (:func:`check_booking`): a CreateBooking answer is the booking asked for (guest, hotel, room type,
first night, nights, rooms), its id ``bk_`` and 24 base32 characters, its total ``nights x rooms x`` the seeded
nightly rate in the hotels' currency, and a well-formed decision: CONFIRMED with a hold (``hold_...``), a payment
(``pay_...``) and no failure reason, or FAILED with a reason (a retried key is answered with the booking as it is now,
so CANCELLED and CHECKED_IN pass as a confirmed booking). Every answer one key got must carry one booking id and one
decision, confirmed or the same failure (:func:`check_answers`: a double click or a retry never makes two
bookings). A CancelBooking answer must
say CANCELLED, a CheckIn answer CHECKED_IN, each of the booking asked for.

**The ledger** (:class:`Ledger`): every booking the client saw CONFIRMED, with the statuses it may read back as at
the end (:attr:`Booked.expected`): CONFIRMED; CANCELLED once a CancelBooking was answered, CHECKED_IN once a CheckIn
was; while a change is in flight or ended without a known outcome, either the old status or the new. A change
refused for good (FAILED_PRECONDITION) leaves the expectation as it was: a booking the client holds as CONFIRMED that
the service will not cancel is what the read back then shows. Problems found in answers are kept
(:attr:`Ledger.problems`) and judged at the end with the read back (:mod:`.end_checks`).

**Rooms held** (:meth:`Ledger.rooms_by_night`): per (hotel, room type, night), the rooms of the bookings the client
holds a confirmation for and did not (possibly) cancel; a booking whose cancellation's outcome is unknown counts when
it reads back CONFIRMED or CHECKED_IN. The inventory must count at least these as booked on each night, and they
must fit in the night's sellable rooms: more is a double booking.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from casemesh.hotel.v1 import hotel_pb2
from casemesh.services.hotel.contract import is_booking_id, is_hold_id

from .stays import Stay

H = hotel_pb2
CONFIRMED = H.BOOKING_STATUS_CONFIRMED
CANCELLED = H.BOOKING_STATUS_CANCELLED
CHECKED_IN = H.BOOKING_STATUS_CHECKED_IN
FAILED = H.BOOKING_STATUS_FAILED
#: Statuses whose rooms are booked in the inventory.
HOLDS_ROOMS = frozenset({CONFIRMED, CHECKED_IN})
#: Statuses of a booking that was confirmed: a retried key's answer is the booking as it is now.
WAS_CONFIRMED = frozenset({CONFIRMED, CANCELLED, CHECKED_IN})


def status_name(status: int) -> str:
    """``CONFIRMED`` for BOOKING_STATUS_CONFIRMED (the number itself when unknown)."""
    try:
        return H.BookingStatus.Name(status).removeprefix("BOOKING_STATUS_")
    except ValueError:
        return str(status)


def failure_name(reason: int) -> str:
    """``NO_AVAILABILITY`` for BOOKING_FAILURE_NO_AVAILABILITY (the number itself when unknown)."""
    try:
        return H.BookingFailure.Name(reason).removeprefix("BOOKING_FAILURE_")
    except ValueError:
        return str(reason)


def outcome_code(booking: H.Booking) -> str:
    """``CONFIRMED``, or the failure reason (``NO_AVAILABILITY``, ``PAYMENT_DECLINED``, ``CONTENTION``)."""
    return status_name(booking.status) if booking.status != FAILED else failure_name(booking.failure_reason)


def conflicts_code(retries: int) -> str:
    """The ``booking_conflicts`` code of a booking that retried through ``retries`` version conflicts: ``NONE`` or
    ``RETRIED_<n>``."""
    return "NONE" if retries <= 0 else f"RETRIED_{retries}"


@dataclass(frozen=True)
class Asked:
    """What a guest asked CreateBooking for (the stay's ids and dates), and the total it must cost (minor units)."""

    guest_id: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    total_minor: int
    currency: str

    @classmethod
    def of(cls, guest_id: str, stay: Stay, currency: str) -> Asked:
        return cls(guest_id, stay.hotel.hotel_id, stay.room_type.room_type_id, stay.check_in.isoformat(), stay.nights,
                   stay.rooms, stay.nights * stay.rooms * stay.room_type.rate_minor, currency)

    def nights_iso(self) -> list[str]:
        """The room-nights the stay occupies, ``YYYY-MM-DD``."""
        first = date.fromisoformat(self.check_in)
        return [(first + timedelta(days=i)).isoformat() for i in range(self.nights)]


def check_booking(asked: Asked, booking: H.Booking) -> list[str]:
    """Problems of one CreateBooking answer against what was asked and the shape of a decision (module docstring)."""
    problems: list[str] = []
    if not is_booking_id(booking.booking_id):
        problems.append(f"booking_id {booking.booking_id!r} is not bk_ and 24 base32 characters")
    got = (booking.guest_id, booking.hotel_id, booking.room_type_id, booking.check_in, booking.nights, booking.rooms)
    want = (asked.guest_id, asked.hotel_id, asked.room_type_id, asked.check_in, asked.nights, asked.rooms)
    if got != want:
        problems.append(f"the booking is {got}, asked {want}")
    if (booking.total.amount_minor, booking.total.currency_code) != (asked.total_minor, asked.currency):
        problems.append(f"total {booking.total.amount_minor} {booking.total.currency_code}, nights x rooms x rate "
                        f"make {asked.total_minor} {asked.currency}")
    status = status_name(booking.status)
    if booking.status in WAS_CONFIRMED:
        if not is_hold_id(booking.hold_id):
            problems.append(f"{status} with hold_id {booking.hold_id!r}")
        if not booking.payment_id.startswith("pay_"):
            problems.append(f"{status} with payment_id {booking.payment_id!r}")
        if booking.failure_reason != H.BOOKING_FAILURE_UNSPECIFIED:
            problems.append(f"{status} with failure reason {failure_name(booking.failure_reason)}")
    elif booking.status == FAILED:
        if booking.failure_reason == H.BOOKING_FAILURE_UNSPECIFIED:
            problems.append("FAILED without a reason")
    else:
        problems.append(f"CreateBooking answered {status} (CONFIRMED or FAILED expected)")
    if booking.conflict_retries < 0:
        problems.append(f"conflict_retries {booking.conflict_retries}")
    return problems


def check_answers(bookings: Iterable[H.Booking]) -> list[str]:
    """Problems of the bookings one key's answers carried: more than one id or decision is a double booking (or a
    key answered two ways)."""
    seen = list(bookings)
    ids = sorted({b.booking_id for b in seen})
    problems = [f"one key answered with {len(ids)} bookings: {', '.join(ids)}"] if len(ids) > 1 else []
    decisions = sorted({"CONFIRMED" if b.status in WAS_CONFIRMED else outcome_code(b) for b in seen})
    if len(decisions) > 1:
        problems.append(f"one key answered {len(decisions)} decisions: {decisions}")
    return problems


def check_change(booking_id: str, wanted: int, booking: H.Booking) -> list[str]:
    """Problems of a CancelBooking or CheckIn answer: the booking asked for, in the ``wanted`` status."""
    problems = [] if booking.booking_id == booking_id else [f"answered booking {booking.booking_id!r}"]
    if booking.status != wanted:
        problems.append(f"answered {status_name(booking.status)}, {status_name(wanted)} expected")
    return problems


@dataclass
class Booked:
    """A booking the client saw CONFIRMED: what was asked, the statuses it may read back as, the changes in flight."""

    asked: Asked
    expected: set[int] = field(default_factory=lambda: {CONFIRMED})
    in_flight: int = 0

    @property
    def counts_rooms(self) -> bool:
        """True when the client holds its confirmation for sure: it was not (possibly) cancelled."""
        return self.expected <= HOLDS_ROOMS


class Ledger:
    """The bookings one load process saw CONFIRMED (by id) and the problems its answers showed (module docstring)."""

    def __init__(self) -> None:
        self.booked: dict[str, Booked] = {}
        self.problems: list[str] = []

    def answered(self, key: str, asked: Asked, answers: list[H.Booking]) -> list[str]:
        """Enter one key's answers (at least one); returns their problems (also kept)."""
        problems = check_answers(answers) + check_booking(asked, answers[0])
        booking = answers[0]
        if booking.status == CONFIRMED and is_booking_id(booking.booking_id):
            self.booked.setdefault(booking.booking_id, Booked(asked))
        self.note(f"key {key} ({booking.booking_id or '?'})", problems)
        return problems

    def note(self, subject: str, problems: list[str]) -> None:
        self.problems += [f"{subject}: {p}" for p in problems]

    def begin(self, booking_id: str, target: int) -> None:
        """A change of ``booking_id`` to ``target`` (CANCELLED, CHECKED_IN) is sent: either may read back."""
        booked = self.booked[booking_id]
        booked.expected.add(target)
        booked.in_flight += 1

    def end(self, booking_id: str, target: int, *, done: bool, refused: bool) -> None:
        """The change ended: ``done`` (answered in ``target``: only it may read back now), ``refused`` (refused for
        good: the expectation before it stands), or neither (unknown outcome: either)."""
        booked = self.booked[booking_id]
        booked.in_flight -= 1
        if done:
            booked.expected = {target}
        elif refused and not booked.in_flight:
            booked.expected.discard(target)

    def rooms_by_night(self, read_back: Mapping[str, int]) -> Counter[tuple[str, str, str]]:
        """Rooms per (hotel, room type, night) of the bookings the client holds (module docstring); ``read_back``
        maps booking ids to the status GetBooking returned."""
        rooms: Counter[tuple[str, str, str]] = Counter()
        for booking_id, booked in self.booked.items():
            if booked.counts_rooms or read_back.get(booking_id) in HOLDS_ROOMS:
                asked = booked.asked
                for night in asked.nights_iso():
                    rooms[(asked.hotel_id, asked.room_type_id, night)] += asked.rooms
        return rooms


def check_read_back(booking_id: str, booked: Booked, stored: H.Booking) -> list[str]:
    """Problems of GetBooking's ``stored`` booking against the client's view of it."""
    asked = booked.asked
    problems: list[str] = []
    if stored.booking_id != booking_id:
        problems.append(f"GetBooking returned {stored.booking_id!r}")
    got = (stored.guest_id, stored.hotel_id, stored.room_type_id, stored.check_in, stored.nights, stored.rooms)
    want = (asked.guest_id, asked.hotel_id, asked.room_type_id, asked.check_in, asked.nights, asked.rooms)
    if got != want:
        problems.append(f"reads back as {got}, booked {want}")
    if stored.status not in booked.expected:
        problems.append(f"reads back {status_name(stored.status)}, the client's answers make it "
                        f"{' or '.join(sorted(status_name(s) for s in booked.expected))}")
    return problems
