"""The hotel reservation contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/hotel/v1/{hotel,inventory,booking}.proto).

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). Imported by the hotel services and
by the hotel workload alike, and by nothing else of either side; a client in another language applies the same rules,
which the protos quote in their field comments.

- IDs (hotels, room types, guests): 1 to 64 characters of ``[A-Za-z0-9_-]`` (:func:`is_id`).
- Hold IDs ``hold_`` and booking IDs ``bk_``, each followed by 24 characters of ``[a-z2-7]`` (RFC 4648 base32, lower
  case): :func:`is_hold_id`, :func:`is_booking_id`.
- Nights are dates ``YYYY-MM-DD`` from :data:`FIRST_NIGHT` to :data:`LAST_NIGHT` (:func:`parse_night`); a stay of
  ``nights`` nights from ``check_in`` occupies :func:`stay_nights`; 1 to :data:`MAX_NIGHTS` nights, 1 to
  :data:`MAX_ROOMS_PER_STAY` rooms.
- Room types: a name of 1 to :data:`NAME_MAX_CHARS` characters, 1 to :data:`MAX_ROOMS` rooms, a nightly rate of 1 to
  :data:`MAX_RATE_MINOR` minor units in a currency of three upper-case letters.
- Hold TTL: 0 for the inventory's default, else :data:`MIN_TTL_MS` to :data:`MAX_TTL_MS` milliseconds.
- Idempotency keys (1 to :data:`MAX_IDEMPOTENCY_KEY_CHARS` printable ASCII characters) and currency codes are the
  payment gateway's rules, re-exported from services/payments/contract.py (:func:`is_idempotency_key`,
  :func:`is_currency_code`).
- Payment: bookings are paid through the payment gateway (protos/casemesh/payments/v1) as merchant
  :data:`MERCHANT_ID`, so a guest's card token comes from ``CardVaultService.TokenizeCard`` for that merchant.
- FAILED_PRECONDITION details start with a reason and a colon (:func:`failed_precondition_reason`):
  :data:`NO_AVAILABILITY`, :data:`HOLD_EXPIRED`, :data:`HOLD_RELEASED`, and :data:`KEY_REUSED` (a hold ID or
  idempotency key used for a different request).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from ..payments.contract import MAX_IDEMPOTENCY_KEY_CHARS, is_currency_code, is_idempotency_key
from ..runtime.identifiers import is_id

__all__ = [
    "BOOKING_ID_RE", "FIRST_NIGHT", "HOLD_EXPIRED", "HOLD_ID_RE", "HOLD_RELEASED", "KEY_REUSED", "LAST_NIGHT",
    "MAX_IDEMPOTENCY_KEY_CHARS", "MAX_NIGHTS", "MAX_RATE_MINOR", "MAX_ROOMS", "MAX_ROOMS_PER_STAY", "MAX_TTL_MS",
    "MERCHANT_ID", "MIN_TTL_MS", "NAME_MAX_CHARS", "NO_AVAILABILITY", "failed_precondition_reason", "is_booking_id",
    "is_currency_code", "is_hold_id", "is_id", "is_idempotency_key", "parse_night", "stay_nights",
]

#: A hold ID: "hold_" and 24 characters of lower-case RFC 4648 base32 (15 bytes).
HOLD_ID_RE = re.compile(r"^hold_[a-z2-7]{24}$")
#: A booking ID: "bk_" and 24 characters of lower-case RFC 4648 base32.
BOOKING_ID_RE = re.compile(r"^bk_[a-z2-7]{24}$")
_NIGHT_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

FIRST_NIGHT, LAST_NIGHT = date(2000, 1, 1), date(2099, 12, 31)
MAX_NIGHTS = 30
MAX_ROOMS_PER_STAY = 10
MAX_ROOMS = 10_000
NAME_MAX_CHARS = 100
#: 100,000.00 in a two-decimal currency: the highest nightly rate.
MAX_RATE_MINOR = 10_000_000
MIN_TTL_MS, MAX_TTL_MS = 1_000, 3_600_000
#: The hotels' merchant ID at the payment gateway: guests tokenize their cards for it.
MERCHANT_ID = "casemesh-hotels"

NO_AVAILABILITY = "no_availability"
HOLD_EXPIRED = "hold_expired"
HOLD_RELEASED = "hold_released"
KEY_REUSED = "key_reused"
_REASONS = frozenset({NO_AVAILABILITY, HOLD_EXPIRED, HOLD_RELEASED, KEY_REUSED})


def is_hold_id(value: str) -> bool:
    """True for ``hold_`` and 24 characters of ``[a-z2-7]``."""
    return HOLD_ID_RE.fullmatch(value) is not None


def is_booking_id(value: str) -> bool:
    """True for ``bk_`` and 24 characters of ``[a-z2-7]``."""
    return BOOKING_ID_RE.fullmatch(value) is not None




def parse_night(value: str) -> date | None:
    """The date of ``"YYYY-MM-DD"`` from 2000-01-01 to 2099-12-31, or ``None`` for anything else."""
    if _NIGHT_RE.fullmatch(value) is None:
        return None
    try:
        night = date.fromisoformat(value)
    except ValueError:
        return None
    return night if FIRST_NIGHT <= night <= LAST_NIGHT else None


def stay_nights(check_in: date, nights: int) -> list[date]:
    """The room-nights a stay occupies: ``check_in`` and the ``nights - 1`` days after it, in date order."""
    return [check_in + timedelta(days=i) for i in range(nights)]


def failed_precondition_reason(details: str) -> str:
    """The reason a FAILED_PRECONDITION's details start with (``"no_availability: 2025-06-01 has 0 rooms"`` →
    ``"no_availability"``), or ``""`` when they start with none of the contract's reasons."""
    reason, sep, _ = details.partition(":")
    return reason if sep and reason in _REASONS else ""
