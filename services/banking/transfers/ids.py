"""Transfer and deposit ids, derived from the customer's idempotency key (seed 001 #14 "Online Banking": ACID
transactions, shared/seeds/001_58dfc580020147d2.txt line 39).

A transfer's id is ``tr_`` and 24 characters of lowercase base32 (``[a-z2-7]``, 120 bits) of HMAC-SHA256(K,
``from_account_id + "\\0" + idempotency_key``), K the mesh secret's key of purpose :data:`ID_KEY_PURPOSE`
(``services/runtime/secrets.py``, HKDF); a deposit's is ``dep_`` and 24 characters of HMAC-SHA256(K, ``"deposit\\0" +
account_id + "\\0" + idempotency_key``). The id is also the id of the transfer's journal entry in the ledger, so a retry
of the same call reaches the same entry, and the ledger's idempotent PostEntry posts it once.

Ids are keyed, so nobody without the secret can guess another customer's transfer id. A retry finds its transfer by
(account, key) in the store (:mod:`.store`), not by recomputing the id: a transfer keeps its id when the mesh secret
changes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from ..contract import TRANSFER_ID_PREFIX

#: The mesh-secret purpose of the key that derives transfer and deposit ids.
ID_KEY_PURPOSE = "banking-transfer-id"
#: A deposit's id (and its journal entry's): not a transfer id, so GetTransfer never answers one.
DEPOSIT_ID_PREFIX = "dep_"
#: Characters after the prefix.
ID_CHARS = 24


def _keyed(key: bytes, message: str) -> str:
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:ID_CHARS]


def transfer_id(key: bytes, from_account_id: str, idempotency_key: str) -> str:
    """``tr_`` and 24 characters of ``[a-z2-7]``: HMAC-SHA256(``key``, from_account_id NUL idempotency_key)."""
    return TRANSFER_ID_PREFIX + _keyed(key, f"{from_account_id}\x00{idempotency_key}")


def deposit_id(key: bytes, account_id: str, idempotency_key: str) -> str:
    """``dep_`` and 24 characters of ``[a-z2-7]``: HMAC-SHA256(``key``, "deposit" NUL account_id NUL key)."""
    return DEPOSIT_ID_PREFIX + _keyed(key, f"deposit\x00{account_id}\x00{idempotency_key}")
