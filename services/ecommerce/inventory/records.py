"""The inventory's records: reservations and restocks as the domain and the store pass them around.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 541:
``reserve_stock(product_id, quantity, user_id, ttl=600)``). Quantities are units; times are Unix milliseconds (wall
clock, as the contract reports them). Statuses are ``casemesh.ecommerce.v1.ReservationStatus`` values.
"""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.ecommerce.v1 import ecommerce_pb2

HELD = ecommerce_pb2.RESERVATION_STATUS_HELD
COMMITTED = ecommerce_pb2.RESERVATION_STATUS_COMMITTED
RELEASED = ecommerce_pb2.RESERVATION_STATUS_RELEASED
EXPIRED = ecommerce_pb2.RESERVATION_STATUS_EXPIRED
#: Every status a stored reservation may have.
STATUSES = frozenset({HELD, COMMITTED, RELEASED, EXPIRED})


@dataclass(frozen=True, slots=True)
class Reservation:
    """``quantity`` units (1 to 1,000) of ``product_id`` held (HELD) until ``expires_at_unix_ms``, sold (COMMITTED,
    ``expires_at_unix_ms`` 0), given back (RELEASED) or run out of time (EXPIRED); the last two keep the expiry time
    they had."""

    reservation_id: str
    product_id: str
    quantity: int
    status: int
    expires_at_unix_ms: int


@dataclass(frozen=True, slots=True)
class Restock:
    """``quantity`` units (1 to 1,000,000) of ``product_id`` put into stock under the merchant's ``restock_id``."""

    restock_id: str
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StockLevel:
    """A product's units: ever stocked, held by HELD reservations, sold by COMMITTED ones; ``available`` what a new
    reservation can take (``stocked - committed - held``, never negative)."""

    product_id: str
    stocked: int
    held: int
    committed: int

    @property
    def available(self) -> int:
        return self.stocked - self.committed - self.held
