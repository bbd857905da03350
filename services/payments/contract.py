"""The payment gateway contract's rules that clients and servers both apply (part of the contract:
protos/casemesh/payments/v1).

Imported by the payment services and by the payments workload alike, and by nothing else of either side; a client in
another language applies the same rules, which the protos quote in their field comments.

- IDs (merchant, customer): 1 to 64 characters of ``[A-Za-z0-9_-]`` (services/runtime/identifiers.py). Gateway ids
  are a prefix and 24 characters of ``[a-z0-9]``: payments ``pay_``, refunds ``re_``, card tokens ``tok_``
  (:func:`is_gateway_id`). Acquirer references: 1 to 64 characters of ``[A-Za-z0-9_.-]`` (:func:`is_reference`).
- Idempotency keys: 1 to :data:`MAX_IDEMPOTENCY_KEY_CHARS` printable ASCII characters (:func:`is_idempotency_key`),
  scoped to a merchant and an operation, kept :data:`IDEMPOTENCY_KEY_TTL_S`.
- Money: ``amount_minor`` 1 to :data:`MAX_AMOUNT_MINOR`, ``currency_code`` three upper-case letters
  (:func:`is_currency_code`).
- Cards: 12 to 19 digits with a valid Luhn check digit (``stdnum.luhn``; :func:`is_card_number`), the brand from the
  leading digits (:func:`card_brand`), an expiry not past (:func:`expired`), a security code of 3 or 4 digits.
- Test cards (:data:`TEST_CARDS`): the simulated acquirers' issuers always decline these, with the code given, as
  Stripe's test numbers do; any other valid number is approved unless the acquirer's random decline rate says no.
"""

from __future__ import annotations

import re
import string
from datetime import UTC, datetime

from stdnum import luhn

from ..runtime.identifiers import ID_PATTERN, is_id

__all__ = ["ID_PATTERN", "is_id", "MAX_AMOUNT_MINOR", "MAX_IDEMPOTENCY_KEY_CHARS", "IDEMPOTENCY_KEY_TTL_S",
           "MAX_DESCRIPTION_CHARS", "PAYMENT_ID_PREFIX", "REFUND_ID_PREFIX", "CARD_TOKEN_PREFIX", "GATEWAY_ID_CHARS",
           "MAX_EXP_YEARS_AHEAD", "TEST_CARDS", "is_gateway_id", "is_reference", "is_idempotency_key",
           "is_currency_code", "is_card_number", "card_brand", "expired", "is_cvc", "last4"]

#: 1,000,000.00 in a two-decimal currency: the largest amount one payment may carry.
MAX_AMOUNT_MINOR = 100_000_000
#: Stripe's limit on an idempotency key's length.
MAX_IDEMPOTENCY_KEY_CHARS = 255
#: How long a key is remembered (Stripe: 24 hours); a retry after that is a new request.
IDEMPOTENCY_KEY_TTL_S = 24 * 3_600
MAX_DESCRIPTION_CHARS = 200
PAYMENT_ID_PREFIX = "pay_"
REFUND_ID_PREFIX = "re_"
CARD_TOKEN_PREFIX = "tok_"
#: Characters after a gateway id's prefix.
GATEWAY_ID_CHARS = 24
#: A card's expiry at most this many years ahead.
MAX_EXP_YEARS_AHEAD = 20

#: Card numbers every simulated issuer declines, with its decline code (Stripe's test numbers).
TEST_CARDS: dict[str, str] = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
    "4100000000000019": "do_not_honor",
}

_GATEWAY_ID = re.compile(rf"[a-z0-9]{{{GATEWAY_ID_CHARS}}}")
_REFERENCE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


def is_gateway_id(value: str, prefix: str) -> bool:
    """True when ``value`` is ``prefix`` and 24 characters of ``[a-z0-9]`` (``pay_…``, ``re_…``, ``tok_…``)."""
    return value.startswith(prefix) and _GATEWAY_ID.fullmatch(value[len(prefix):]) is not None


def is_reference(value: str) -> bool:
    """True for an acquirer reference: 1 to 64 characters of ``[A-Za-z0-9_.-]``."""
    return _REFERENCE.fullmatch(value) is not None


def is_idempotency_key(value: str) -> bool:
    """True for 1 to 255 printable ASCII characters (space included, no other whitespace)."""
    return 0 < len(value) <= MAX_IDEMPOTENCY_KEY_CHARS and all(c in _PRINTABLE for c in value)


def is_currency_code(value: str) -> bool:
    """True for three upper-case letters (the shape of an ISO 4217 alphabetic code)."""
    return _CURRENCY.fullmatch(value) is not None


def is_card_number(value: str) -> bool:
    """True for 12 to 19 digits with a valid Luhn check digit (ISO/IEC 7812)."""
    return 12 <= len(value) <= 19 and value.isdigit() and value.isascii() and luhn.is_valid(value)


def card_brand(number: str) -> str:
    """``visa``, ``mastercard``, ``amex`` or ``other``, from the leading digits (the networks' published IIN ranges)."""
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "other"


def expired(exp_month: int, exp_year: int, now: datetime | None = None) -> bool:
    """True when the card's expiry (the end of ``exp_month`` of ``exp_year``) is past, UTC."""
    now = now or datetime.now(UTC)
    return (exp_year, exp_month) < (now.year, now.month)


def is_cvc(value: str) -> bool:
    """True for a security code of 3 or 4 ASCII digits."""
    return len(value) in (3, 4) and value.isdigit() and value.isascii()


def last4(number: str) -> str:
    """The last four digits of a card number."""
    return number[-4:]
