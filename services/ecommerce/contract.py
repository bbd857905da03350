"""The shop's contract rules that clients and servers both apply (part of the contract:
protos/casemesh/ecommerce/v1/{ecommerce,catalog,inventory,cart,orders}.proto).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Latency: Sub-200ms
for search, 500ms for checkout", "Consistency: Inventory counts must be accurate (no overselling)",
``reserve_stock(product_id, quantity, user_id, ttl=600)``) and seed 001 #05 (shared/seeds/001_58dfc580020147d2.txt
line 21: "| 05 | E-Commerce | Inventory management, shopping cart, checkout, order fulfillment | 10M products,
Amazon-scale |"). Imported by the e-commerce services and by the e-commerce workload alike, and by nothing else of
either side; a client in another language applies the same rules, which the protos quote in their field comments.

- IDs (products, buyers, restocks): 1 to 64 characters of ``[A-Za-z0-9_-]`` (:func:`is_id`). Categories: 1 to 64
  characters of ``[a-z0-9-]`` (:func:`is_category`).
- Reservation IDs ``rsv_`` and order IDs ``ord_``, each followed by 24 characters of ``[a-z2-7]`` (RFC 4648 base32,
  lower case): :func:`is_reservation_id`, :func:`is_order_id`; :func:`new_reservation_id` makes a random one.
- Money: integer minor units; a unit price is 1 to :data:`MAX_PRICE_MINOR`; a currency three upper-case letters.
- Quantities: a reservation or cart line 1 to :data:`MAX_LINE_QUANTITY` units, a restock 1 to
  :data:`MAX_RESTOCK_QUANTITY`; a cart at most :data:`MAX_CART_LINES` lines.
- Reservation TTL: 0 for the inventory's default (:data:`DEFAULT_RESERVATION_TTL_S`, the seed's 600 s), else
  :data:`MIN_TTL_MS` to :data:`MAX_TTL_MS` milliseconds.
- Idempotency keys (1 to :data:`MAX_IDEMPOTENCY_KEY_CHARS` printable ASCII characters) and currency codes are the
  payment gateway's rules, re-exported from services/payments/contract.py (:func:`is_idempotency_key`,
  :func:`is_currency_code`).
- Payment: checkout pays through the payment gateway (protos/casemesh/payments/v1) as merchant :data:`MERCHANT_ID`,
  so a buyer's card token comes from ``CardVaultService.TokenizeCard`` for that merchant.
- FAILED_PRECONDITION details start with a reason and a colon (:func:`failed_precondition_reason`): the inventory's
  :data:`OUT_OF_STOCK`, :data:`RESERVATION_EXPIRED`, :data:`RESERVATION_RELEASED`, :data:`RESERVATION_COMMITTED`,
  the cart's :data:`CART_FULL` and :data:`CURRENCY_MISMATCH`, the checkout's :data:`EMPTY_CART`, and
  :data:`KEY_REUSED` (an idempotency key or restock ID used for a different request).
"""

from __future__ import annotations

import base64
import re
import secrets

from ..payments.contract import MAX_IDEMPOTENCY_KEY_CHARS, is_currency_code, is_idempotency_key
from ..runtime.identifiers import is_id

__all__ = [
    "CART_FULL", "CATEGORY_RE", "CURRENCY_MISMATCH", "DEFAULT_LIST_PAGE_SIZE", "DEFAULT_RESERVATION_TTL_S",
    "DEFAULT_SEARCH_PAGE_SIZE", "DESCRIPTION_MAX_CHARS", "EMPTY_CART", "KEY_REUSED", "MAX_CART_LINES", "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_LINE_QUANTITY", "MAX_LIST_PAGE_SIZE", "MAX_PRICE_MINOR", "MAX_RESTOCK_QUANTITY", "MAX_SEARCH_PAGE_SIZE",
    "MAX_TTL_MS", "MERCHANT_ID", "MIN_TTL_MS", "ORDER_ID_RE", "OUT_OF_STOCK", "QUERY_MAX_CHARS", "RESERVATION_COMMITTED",
    "RESERVATION_EXPIRED", "RESERVATION_ID_RE", "RESERVATION_RELEASED", "TITLE_MAX_CHARS", "failed_precondition_reason",
    "is_category", "is_currency_code", "is_id", "is_idempotency_key", "is_order_id", "is_reservation_id",
    "new_reservation_id",
]

#: A category: 1 to 64 characters of [a-z0-9-].
CATEGORY_RE = re.compile(r"^[a-z0-9-]{1,64}$")
#: A reservation ID: "rsv_" and 24 characters of lower-case RFC 4648 base32 (15 bytes).
RESERVATION_ID_RE = re.compile(r"^rsv_[a-z2-7]{24}$")
#: An order ID: "ord_" and 24 characters of lower-case RFC 4648 base32.
ORDER_ID_RE = re.compile(r"^ord_[a-z2-7]{24}$")

TITLE_MAX_CHARS = 200
DESCRIPTION_MAX_CHARS = 2_000
#: 1,000,000.00 in a two-decimal currency: the payment gateway's largest payment.
MAX_PRICE_MINOR = 100_000_000
MAX_LINE_QUANTITY = 1_000
MAX_RESTOCK_QUANTITY = 1_000_000
MAX_CART_LINES = 50
QUERY_MAX_CHARS = 200
MAX_SEARCH_PAGE_SIZE, DEFAULT_SEARCH_PAGE_SIZE = 50, 10
MAX_LIST_PAGE_SIZE, DEFAULT_LIST_PAGE_SIZE = 100, 20
#: The seed's ``reserve_stock(..., ttl=600)``: a reservation holds its units this long unless asked otherwise.
DEFAULT_RESERVATION_TTL_S = 600
MIN_TTL_MS, MAX_TTL_MS = 1_000, 3_600_000
#: The shop's merchant ID at the payment gateway: buyers tokenize their cards for it.
MERCHANT_ID = "casemesh-shop"

OUT_OF_STOCK = "out_of_stock"
RESERVATION_EXPIRED = "reservation_expired"
RESERVATION_RELEASED = "reservation_released"
RESERVATION_COMMITTED = "reservation_committed"
CART_FULL = "cart_full"
CURRENCY_MISMATCH = "currency_mismatch"
EMPTY_CART = "empty_cart"
KEY_REUSED = "key_reused"
_REASONS = frozenset({OUT_OF_STOCK, RESERVATION_EXPIRED, RESERVATION_RELEASED, RESERVATION_COMMITTED, CART_FULL,
                      CURRENCY_MISMATCH, EMPTY_CART, KEY_REUSED})


def is_category(value: str) -> bool:
    """True for 1 to 64 characters of ``[a-z0-9-]``."""
    return CATEGORY_RE.fullmatch(value) is not None


def is_reservation_id(value: str) -> bool:
    """True for ``rsv_`` and 24 characters of ``[a-z2-7]``."""
    return RESERVATION_ID_RE.fullmatch(value) is not None


def is_order_id(value: str) -> bool:
    """True for ``ord_`` and 24 characters of ``[a-z2-7]``."""
    return ORDER_ID_RE.fullmatch(value) is not None




def new_reservation_id() -> str:
    """A fresh random reservation ID (120 random bits): ``rsv_`` and 24 characters of ``[a-z2-7]``."""
    return "rsv_" + base64.b32encode(secrets.token_bytes(15)).decode("ascii").lower()


def failed_precondition_reason(details: str) -> str:
    """The reason a FAILED_PRECONDITION's details start with (``"out_of_stock: 3 available"`` → ``"out_of_stock"``),
    or ``""`` when they start with none of the contract's reasons."""
    reason, sep, _ = details.partition(":")
    return reason if sep and reason in _REASONS else ""
