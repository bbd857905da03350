"""Order ids, derived from the buyer's idempotency key, and the keys of the saga's own idempotent calls.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions"). An order's id is ``ord_`` and 24 characters of lowercase base32
(``[a-z2-7]``, 120 bits) of HMAC-SHA256(K, ``user_id + "\\0" + idempotency_key``), K the mesh secret's key of purpose
:data:`ID_KEY_PURPOSE` (``services/runtime/secrets.py``, HKDF), as banking-transfers derives its transfer ids
(services/banking/transfers/ids.py). Ids are keyed, so nobody without the secret can guess another buyer's order id;
a retry finds its order by (user_id, key) in the store, not by recomputing the id.

Every call the saga makes is idempotent by construction, so a step re-run after a crash does nothing twice: the
inventory's calls name the cart's reservation ids; the payment gateway's carry keys derived from the order
(:func:`payment_key`: ``<order_id>:authorize``, ``:capture``, ``:void``, scoped per merchant and operation by the
gateway); a compensating Restock's id is :func:`restock_id` (``<order_id>-<line index>``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The mesh-secret purpose of the key that derives order ids.
ID_KEY_PURPOSE = "ecommerce-order-id"
ORDER_ID_PREFIX = "ord_"
#: Characters after the prefix.
ID_CHARS = 24

AUTHORIZE = "authorize"
CAPTURE = "capture"
VOID = "void"


def order_id(key: bytes, user_id: str, idempotency_key: str) -> str:
    """``ord_`` and 24 characters of ``[a-z2-7]``: HMAC-SHA256(``key``, user_id NUL idempotency_key)."""
    digest = hmac.new(key, f"{user_id}\x00{idempotency_key}".encode(), hashlib.sha256).digest()
    return ORDER_ID_PREFIX + base64.b32encode(digest).decode("ascii").lower()[:ID_CHARS]


def payment_key(order_id_: str, operation: str) -> str:
    """The payment gateway idempotency key of ``operation`` (:data:`AUTHORIZE`, :data:`CAPTURE`, :data:`VOID`) of an
    order: ``<order_id>:<operation>``."""
    return f"{order_id_}:{operation}"


def restock_id(order_id_: str, line_index: int) -> str:
    """The Restock id that gives back line ``line_index``'s committed units of a failed order (at most 32 + 3
    characters of ``[A-Za-z0-9_-]``)."""
    return f"{order_id_}-{line_index}"
