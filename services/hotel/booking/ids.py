"""Booking and hold ids, derived from the guest's idempotency key (seed 001 #20 "Hotel Reservation": overbooking
prevention, payment auth/capture; shared/seeds/001_58dfc580020147d2.txt line 23).

A booking's id is ``bk_`` and 24 characters of lower-case base32 (``[a-z2-7]``, 120 bits) of HMAC-SHA256(K,
``guest_id + "\\0" + idempotency_key``), K the mesh secret's key of purpose :data:`ID_KEY_PURPOSE`
(``services/runtime/secrets.py``, HKDF). Its hold's id at the inventory is ``hold_`` and 24 characters of
HMAC-SHA256(K, ``"hold\\0" + booking_id``): every HoldRooms of one booking, a retry's or the recovery's, names the
same hold, which the inventory holds at most once. Its payment's idempotency keys at the gateway are the booking id
and the operation (:func:`payment_key`), so every Authorize, Capture or Void of one booking reaches one payment.

Ids are keyed, so nobody without the secret can guess another guest's booking id. A retry finds its booking by
(guest, key) in the store (:mod:`.store`), not by recomputing the id, and the hold id is stored with the booking: a
booking keeps its ids when the mesh secret changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The mesh-secret purpose of the key that derives booking and hold ids.
ID_KEY_PURPOSE = "hotel-booking-id"
BOOKING_ID_PREFIX = "bk_"
HOLD_ID_PREFIX = "hold_"
#: Characters after the prefix (15 bytes of the HMAC in base32).
ID_CHARS = 24


def _keyed(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:ID_CHARS]


def booking_id(key: bytes, guest_id: str, idempotency_key: str) -> str:
    """``bk_`` and 24 characters of ``[a-z2-7]``: HMAC-SHA256(``key``, guest_id NUL idempotency_key)."""
    return BOOKING_ID_PREFIX + _keyed(key, f"{guest_id}\x00{idempotency_key}")


def hold_id(key: bytes, booking_id_: str) -> str:
    """``hold_`` and 24 characters of ``[a-z2-7]``: HMAC-SHA256(``key``, "hold" NUL booking_id)."""
    return HOLD_ID_PREFIX + _keyed(key, f"hold\x00{booking_id_}")


def payment_key(booking_id_: str, operation: str) -> str:
    """The gateway idempotency key of a booking's ``operation`` (``authorize``, ``capture``, ``void``):
    ``"<booking_id>:<operation>"``."""
    return f"{booking_id_}:{operation}"
