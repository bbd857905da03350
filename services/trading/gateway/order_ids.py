"""Exchange order ids: ``ord_`` and 24 characters of lowercase base32 of an HMAC of (account, client order id).

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "Stock Trading | Order matching engine, order book,
market data, low-latency"). The id is a keyed function of the broker's retry key, as the payment gateway's payment
ids are (services/payments/gateway/payments.py ``gateway_id``): every retry of one (account_id, client_order_id)
maps to the same engine order, and the engine's SubmitOrder returns an order id it already holds as it is, so a
retry never trades twice, with no state in the gateway. The key is derived from the mesh secret
(services/runtime/secrets.py, purpose :data:`ORDER_ID_PURPOSE`), so ids are not guessable from the client's ids and
every gateway process of a mesh derives the same ones.

``ord_`` + the first 24 characters (120 bits) of base32(HMAC-SHA256(key, account_id || 0x00 || client_order_id)),
lower-cased (RFC 4648 alphabet: a-z, 2-7). Both parts are 1 to 64 characters of [A-Za-z0-9_-], so the NUL separator
makes the message unambiguous. Rotating the mesh secret changes every id: a retry across a rotation would be a new
order (rotate between trading sessions).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..contract import ORDER_ID_CHARS, ORDER_ID_PREFIX

#: The mesh-secret purpose of the order-id key (``derive_key(secret, ORDER_ID_PURPOSE)``).
ORDER_ID_PURPOSE = "trading-order-id"


class OrderIds:
    """Derives order ids under one key (32 bytes, from ``context.secret.keyring(ORDER_ID_PURPOSE)``)."""

    def __init__(self, key: bytes) -> None:
        self._mac = hmac.new(key, digestmod=hashlib.sha256)  # keyed once; each id copies it

    def order_id(self, account_id: str, client_order_id: str) -> str:
        """The exchange id of ``client_order_id`` of ``account_id``: the same for every call with the same pair."""
        mac = self._mac.copy()
        mac.update(f"{account_id}\x00{client_order_id}".encode())
        return ORDER_ID_PREFIX + base64.b32encode(mac.digest()).decode("ascii").lower()[:ORDER_ID_CHARS]
