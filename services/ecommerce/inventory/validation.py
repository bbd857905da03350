"""ecommerce-inventory's input rules, as protos/casemesh/ecommerce/v1/inventory.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the proto does
(``restock_id``, ``product_id``, ``quantity``, ``reservation_id``, ``ttl_ms``), the first bad one in the proto's field
order. The shared rules are the contract's (:mod:`services.ecommerce.contract`): IDs of 1 to 64 characters of
``[A-Za-z0-9_-]``, reservation IDs ``rsv_`` and 24 characters of ``[a-z2-7]``, a reservation 1 to 1,000 units, a
restock 1 to 1,000,000, a TTL 0 (the service's default) or 1,000 to 3,600,000 milliseconds. Seed 000 "E-commerce
Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 541, ``reserve_stock(product_id, quantity,
user_id, ttl=600)``).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.ecommerce.v1 import inventory_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract
from .records import Restock

__all__ = ["Reserve", "product_id", "reservation_id", "reserve", "restock"]


class Reserve(NamedTuple):
    """A valid ReserveRequest: ``ttl_ms`` 0 (the service's ``reservation_ttl_s``) or 1,000 to 3,600,000."""

    reservation_id: str
    product_id: str
    quantity: int
    ttl_ms: int


def product_id(value: str) -> str:
    """A product ID (1 to 64 characters of [A-Za-z0-9_-]), naming ``product_id``."""
    return required_id("product_id", value)


def reservation_id(value: str) -> str:
    """A reservation ID ("rsv_" and 24 characters of [a-z2-7]), naming ``reservation_id``."""
    if not value:
        raise InvalidArgument("reservation_id", "is required ('rsv_' and 24 characters of a-z, 2-7)")
    if not contract.is_reservation_id(value):
        raise InvalidArgument("reservation_id", f"{value[:80]!r} is not 'rsv_' and 24 characters of a-z, 2-7")
    return value


def _quantity(value: int, most: int) -> int:
    if not 1 <= value <= most:
        raise InvalidArgument("quantity", f"{value} is not 1 to {most:,} units")
    return value


def restock(request: inventory_pb2.RestockRequest) -> Restock:
    """RestockRequest: ``restock_id``, ``product_id``, ``quantity`` (1 to 1,000,000 units)."""
    return Restock(required_id("restock_id", request.restock_id), product_id(request.product_id),
                   _quantity(request.quantity, contract.MAX_RESTOCK_QUANTITY))


def reserve(request: inventory_pb2.ReserveRequest) -> Reserve:
    """ReserveRequest: ``reservation_id``, ``product_id``, ``quantity`` (1 to 1,000 units), ``ttl_ms`` (0, or 1,000
    to 3,600,000 milliseconds)."""
    checked = (reservation_id(request.reservation_id), product_id(request.product_id),
               _quantity(request.quantity, contract.MAX_LINE_QUANTITY))
    ttl_ms = request.ttl_ms
    if ttl_ms != 0 and not contract.MIN_TTL_MS <= ttl_ms <= contract.MAX_TTL_MS:
        raise InvalidArgument("ttl_ms", f"{ttl_ms} is not 0 (the service's default) or {contract.MIN_TTL_MS:,} to "
                                        f"{contract.MAX_TTL_MS:,} milliseconds")
    return Reserve(*checked, ttl_ms)
