"""ecommerce-orders' input rules, as protos/casemesh/ecommerce/v1/orders.proto states them.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585). Each check raises
:class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do (``idempotency_key``,
``user_id``, ``card_token``, ``order_id``, ``page_size``; ``page_token`` is checked where it is decoded, :mod:`.orders`),
the first bad one in the proto's field order. The rules are the contracts' (services/ecommerce/contract.py: ids,
idempotency keys, order ids, page sizes; services/payments/contract.py: card tokens, ``tok_`` and 24 characters of
``[a-z0-9]``).
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.ecommerce.v1 import orders_pb2

from ...payments.contract import CARD_TOKEN_PREFIX, is_gateway_id
from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract


class Checkout(NamedTuple):
    """A valid CheckoutRequest."""

    idempotency_key: str
    user_id: str
    card_token: str


class ListOrders(NamedTuple):
    """A valid ListOrdersRequest (``page_size`` resolved: 1 to 100)."""

    user_id: str
    page_size: int
    page_token: str


def checkout(request: orders_pb2.CheckoutRequest) -> Checkout:
    """CheckoutRequest: ``idempotency_key`` (1 to 255 printable ASCII characters), ``user_id``, ``card_token``."""
    if not contract.is_idempotency_key(request.idempotency_key):
        raise InvalidArgument("idempotency_key", f"must be 1 to {contract.MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
                                                 f"characters (got {len(request.idempotency_key)} characters)")
    user_id = required_id("user_id", request.user_id)
    if not is_gateway_id(request.card_token, CARD_TOKEN_PREFIX):
        raise InvalidArgument("card_token", f"must be {CARD_TOKEN_PREFIX!r} and 24 characters of a-z or 0-9 (from "
                                            f"CardVaultService.TokenizeCard for merchant {contract.MERCHANT_ID!r})")
    return Checkout(request.idempotency_key, user_id, request.card_token)


def order_id(value: str) -> str:
    """GetOrderRequest's ``order_id``: ``ord_`` and 24 characters of ``[a-z2-7]``."""
    if not contract.is_order_id(value):
        raise InvalidArgument("order_id", "must be 'ord_' and 24 characters of a-z or 2-7")
    return value


def list_orders(request: orders_pb2.ListOrdersRequest) -> ListOrders:
    """ListOrdersRequest: ``user_id``, ``page_size`` (0 to 100; 0: 20)."""
    user_id = required_id("user_id", request.user_id)
    if not 0 <= request.page_size <= contract.MAX_LIST_PAGE_SIZE:
        raise InvalidArgument("page_size", f"{request.page_size} is not 0 to {contract.MAX_LIST_PAGE_SIZE}")
    return ListOrders(user_id, request.page_size or contract.DEFAULT_LIST_PAGE_SIZE, request.page_token)
