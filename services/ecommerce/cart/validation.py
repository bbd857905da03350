"""ecommerce-cart's input rules, as protos/casemesh/ecommerce/v1/cart.proto states them.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 520: "Cart Service").
Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do
(``user_id``, ``product_id``, ``quantity``, ``reservation_ids``; a bad reservation ID ``reservation_ids[2]``), the
first bad one in the proto's field order. The shared rules are the contract's (:mod:`services.ecommerce.contract`).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.ecommerce.v1 import cart_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract


class SetItem(NamedTuple):
    """A valid SetItemRequest (``quantity`` 0: remove the line)."""

    user_id: str
    product_id: str
    quantity: int


class ClearLines(NamedTuple):
    """A valid ClearLinesRequest."""

    user_id: str
    reservation_ids: frozenset[str]


def user_id(value: str) -> str:
    """``user_id``: 1 to 64 characters of ``[A-Za-z0-9_-]``."""
    return required_id("user_id", value)


def set_item(request: cart_pb2.SetItemRequest) -> SetItem:
    """SetItemRequest: ``user_id``, ``product_id``, ``quantity`` (0 to 1,000)."""
    user = user_id(request.user_id)
    product_id = required_id("product_id", request.product_id)
    if not 0 <= request.quantity <= contract.MAX_LINE_QUANTITY:
        raise InvalidArgument("quantity", f"{request.quantity} is not 0 (remove) to {contract.MAX_LINE_QUANTITY:,}")
    return SetItem(user, product_id, request.quantity)


def clear_lines(request: cart_pb2.ClearLinesRequest) -> ClearLines:
    """ClearLinesRequest: ``user_id``, ``reservation_ids`` (1 to 50, each ``rsv_`` and 24 characters of
    ``[a-z2-7]``)."""
    user = user_id(request.user_id)
    ids = request.reservation_ids
    if not 1 <= len(ids) <= contract.MAX_CART_LINES:
        raise InvalidArgument("reservation_ids", f"has {len(ids)} IDs; 1 to {contract.MAX_CART_LINES}")
    for index, reservation_id in enumerate(ids):
        if not contract.is_reservation_id(reservation_id):
            raise InvalidArgument(f"reservation_ids[{index}]", "must be 'rsv_' and 24 characters of a-z or 2-7")
    return ClearLines(user, frozenset(ids))
