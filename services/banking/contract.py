"""The online bank's contract rules that clients and servers both apply (part of the contract:
protos/casemesh/banking/v1/{banking,ledger,transfers}.proto).

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). Imported by the banking services
(``banking-ledger``, ``banking-transfers``) and by the banking workload alike, and by nothing else of either side; a
client in another language applies the same rules, which the protos quote in their field comments. Patterns are
written anchored (``^…$``) as other languages need them; match them with ``fullmatch`` (or the ``is_…`` functions).

- Account IDs: 1 to 64 characters of ``[A-Za-z0-9_-]`` (:data:`ACCOUNT_ID_RE`, :func:`is_account_id`). A customer's
  account never starts with :data:`CASH_PREFIX`: ``cash-<CUR>`` (:func:`cash_account_id`) is the bank's own cash
  account of currency CUR, owned by :data:`BANK_OWNER`, opened with the first customer account of that currency; it is
  the other side of every deposit and its balance goes negative by what the bank holds for its customers.
- Journal entry IDs: the account ID rule (:data:`ENTRY_ID_RE`); unique in the ledger, so a retry posts nothing twice.
- Transfer IDs: ``tr_`` and 24 characters of ``[a-z2-7]`` (RFC 4648 base32, lower case) (:data:`TRANSFER_ID_RE`).
- Money: integer minor units (``casemesh.common.v1.Money``); a currency is three upper-case letters (the shape of an
  ISO 4217 code, :data:`CURRENCY_RE`); a deposit or transfer moves 1 to :data:`MAX_AMOUNT_MINOR` minor units, and the
  ledger refuses a posting of more than that (either sign).
- Text: an owner's name 1 to :data:`OWNER_MAX_CHARS` characters, a memo up to :data:`MEMO_MAX_CHARS` characters.
- Idempotency keys: 1 to :data:`MAX_IDEMPOTENCY_KEY_CHARS` printable ASCII characters, space included
  (:func:`is_idempotency_key`); an account's opening deposit uses the key :func:`open_deposit_key`.
- Paging (ListEntries): ``page_size`` 0 to :data:`MAX_PAGE_SIZE`, 0 meaning :data:`DEFAULT_PAGE_SIZE`.
- The ledger's FAILED_PRECONDITION details start with a reason and a colon: :data:`INSUFFICIENT_FUNDS` (a customer
  account would go below zero) or :data:`ENTRY_ID_CONFLICT` (the entry ID was posted with other postings or memo), so
  a caller tells them apart with :func:`failed_precondition_reason`.
"""

from __future__ import annotations

import re
import string

__all__ = [
    "ACCOUNT_ID_RE",
    "BANK_OWNER",
    "CASH_PREFIX",
    "CURRENCY_RE",
    "DEFAULT_PAGE_SIZE",
    "ENTRY_ID_CONFLICT",
    "ENTRY_ID_RE",
    "INSUFFICIENT_FUNDS",
    "MAX_AMOUNT_MINOR",
    "MAX_IDEMPOTENCY_KEY_CHARS",
    "MAX_PAGE_SIZE",
    "MEMO_MAX_CHARS",
    "OWNER_MAX_CHARS",
    "TRANSFER_ID_PREFIX",
    "TRANSFER_ID_RE",
    "cash_account_id",
    "failed_precondition_reason",
    "is_account_id",
    "is_cash_account_id",
    "is_currency_code",
    "is_customer_account_id",
    "is_entry_id",
    "is_idempotency_key",
    "is_transfer_id",
    "open_deposit_key",
]

#: An account ID: 1 to 64 characters of [A-Za-z0-9_-].
ACCOUNT_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
#: A journal entry ID: the account ID rule.
ENTRY_ID_RE = ACCOUNT_ID_RE
TRANSFER_ID_PREFIX = "tr_"
#: A transfer ID: "tr_" and 24 characters of lower-case RFC 4648 base32 (15 bytes).
TRANSFER_ID_RE = re.compile(r"^tr_[a-z2-7]{24}$")
#: A currency: three upper-case letters (ISO 4217 alphabetic code).
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
#: The bank's cash account of a currency is this prefix and the code ("cash-USD"); no customer account starts so.
CASH_PREFIX = "cash-"
#: The owner of every cash account.
BANK_OWNER = "bank"
#: 10,000,000,000.00 in a two-decimal currency: the largest deposit or transfer, and the largest posting.
MAX_AMOUNT_MINOR = 10**12
OWNER_MAX_CHARS = 100
MEMO_MAX_CHARS = 200
#: Stripe's limit on an idempotency key's length.
MAX_IDEMPOTENCY_KEY_CHARS = 255
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
#: Reason of the ledger's FAILED_PRECONDITION when a customer account would go below zero.
INSUFFICIENT_FUNDS = "insufficient_funds"
#: Reason of the ledger's FAILED_PRECONDITION when an entry ID was posted with other postings or another memo.
ENTRY_ID_CONFLICT = "entry_id_conflict"

_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def is_account_id(value: str) -> bool:
    """True for 1 to 64 characters of ``[A-Za-z0-9_-]`` (a customer's or a cash account's)."""
    return ACCOUNT_ID_RE.fullmatch(value) is not None


def is_customer_account_id(value: str) -> bool:
    """True for an account ID a customer may open: the account ID rule, not starting with :data:`CASH_PREFIX`."""
    return is_account_id(value) and not value.startswith(CASH_PREFIX)


def is_entry_id(value: str) -> bool:
    """True for a journal entry ID: 1 to 64 characters of ``[A-Za-z0-9_-]``."""
    return ENTRY_ID_RE.fullmatch(value) is not None


def is_transfer_id(value: str) -> bool:
    """True for ``tr_`` and 24 characters of ``[a-z2-7]``."""
    return TRANSFER_ID_RE.fullmatch(value) is not None


def is_currency_code(value: str) -> bool:
    """True for three upper-case letters (the shape of an ISO 4217 alphabetic code)."""
    return CURRENCY_RE.fullmatch(value) is not None


def is_idempotency_key(value: str) -> bool:
    """True for 1 to 255 printable ASCII characters (space included, no other whitespace)."""
    return 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS and all(c in _PRINTABLE for c in value)


def cash_account_id(currency_code: str) -> str:
    """The bank's cash account of ``currency_code``: ``cash_account_id("USD") == "cash-USD"``."""
    return f"{CASH_PREFIX}{currency_code}"


def is_cash_account_id(value: str) -> bool:
    """True for ``cash-`` and a currency code."""
    return value.startswith(CASH_PREFIX) and is_currency_code(value[len(CASH_PREFIX):])


def open_deposit_key(account_id: str) -> str:
    """The idempotency key of the deposit TransferService.OpenAccount makes: ``open:<account_id>``."""
    return f"open:{account_id}"


def failed_precondition_reason(details: str) -> str:
    """The reason a ledger FAILED_PRECONDITION's details start with (:data:`INSUFFICIENT_FUNDS`,
    :data:`ENTRY_ID_CONFLICT`), or ``""`` when they start with none."""
    reason, sep, _ = details.partition(":")
    return reason if sep and reason in (INSUFFICIENT_FUNDS, ENTRY_ID_CONFLICT) else ""
