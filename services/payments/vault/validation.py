"""payments-vault's input rules, as protos/casemesh/payments/v1/vault.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``merchant_id``, ``card_number``, ``exp_month``, ``exp_year``, ``cvc``, ``card_token``), the first bad one in the
proto's field order. The rules are the contract's (services/payments/contract.py: Luhn via ``stdnum``, the expiry,
the security code, the token shape) and the identifier rule (services/runtime/identifiers.py). The messages never
quote a card number or a security code.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import NamedTuple

from casemesh.payments.v1 import vault_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract

__all__ = ["NewCard", "card_number", "card_token", "cvc", "detokenize_card", "exp_month", "exp_year", "required_id",
           "tokenize_card"]


class NewCard(NamedTuple):
    """A valid TokenizeCardRequest (the security code checked and dropped)."""

    merchant_id: str
    card_number: str
    exp_month: int
    exp_year: int


def card_number(field: str, value: str) -> str:
    """A primary account number: 12 to 19 ASCII digits with a valid Luhn check digit."""
    if not value:
        raise InvalidArgument(field, "is required (12 to 19 digits)")
    if not (value.isascii() and value.isdigit()) or not 12 <= len(value) <= 19:
        raise InvalidArgument(field, f"must be 12 to 19 digits (got {len(value)} characters)")
    if not contract.is_card_number(value):
        raise InvalidArgument(field, "the check digit is wrong (Luhn)")
    return value


def exp_month(field: str, value: int) -> int:
    """An expiry month, 1 to 12."""
    if not 1 <= value <= 12:
        raise InvalidArgument(field, f"{value} is not a month (1 to 12)")
    return value


def exp_year(field: str, value: int, month: int, now: datetime | None = None) -> int:
    """An expiry year of four digits, the card not expired at the end of ``month`` of it (UTC) and at most
    :data:`~services.payments.contract.MAX_EXP_YEARS_AHEAD` years ahead."""
    now = now or datetime.now(UTC)
    if value == 0:
        raise InvalidArgument(field, "is required (four digits)")
    if not 1_000 <= value <= 9_999:
        raise InvalidArgument(field, f"{value} is not a four-digit year")
    if contract.expired(month, value, now):
        raise InvalidArgument(field, f"the card expired ({month:02d}/{value})")
    if value > now.year + contract.MAX_EXP_YEARS_AHEAD:
        raise InvalidArgument(field, f"{value} is more than {contract.MAX_EXP_YEARS_AHEAD} years ahead")
    return value


def cvc(field: str, value: str) -> str:
    """A security code: 3 or 4 ASCII digits."""
    if not value:
        raise InvalidArgument(field, "is required (3 or 4 digits)")
    if not contract.is_cvc(value):
        raise InvalidArgument(field, "must be 3 or 4 digits")
    return value


def card_token(field: str, value: str) -> str:
    """A card token: ``tok_`` and 24 characters of [a-z0-9]."""
    if not value:
        raise InvalidArgument(field, f"is required ({contract.CARD_TOKEN_PREFIX!r} and "
                                     f"{contract.GATEWAY_ID_CHARS} characters of a-z, 0-9)")
    if not contract.is_gateway_id(value, contract.CARD_TOKEN_PREFIX):
        raise InvalidArgument(field, f"must be {contract.CARD_TOKEN_PREFIX!r} and {contract.GATEWAY_ID_CHARS} "
                                     "characters of a-z, 0-9")
    return value


def tokenize_card(request: vault_pb2.TokenizeCardRequest, now: datetime | None = None) -> NewCard:
    """TokenizeCardRequest: ``merchant_id``, ``card_number``, ``exp_month``, ``exp_year`` (not expired at the end of
    ``exp_month``, at most 20 years ahead), ``cvc`` (checked, not kept). ``now``: the time (UTC) the expiry is judged
    at (default: now)."""
    merchant = required_id("merchant_id", request.merchant_id)
    number = card_number("card_number", request.card_number)
    month = exp_month("exp_month", request.exp_month)
    year = exp_year("exp_year", request.exp_year, month, now)
    cvc("cvc", request.cvc)
    return NewCard(merchant, number, month, year)


def detokenize_card(request: vault_pb2.DetokenizeCardRequest) -> tuple[str, str]:
    """DetokenizeCardRequest: ``(merchant_id, card_token)``."""
    return required_id("merchant_id", request.merchant_id), card_token("card_token", request.card_token)
