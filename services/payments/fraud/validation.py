"""payments-fraud's input rules, as protos/casemesh/payments/v1/fraud.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``payment_id``, ``merchant_id``, ``card_fingerprint``, ``customer_id``, ``amount``, ``amount.currency_code``,
``amount.amount_minor``), the first bad one in the proto's field order. The rules are the contract's
(services/payments/contract.py: gateway ids, currency codes, the largest amount) and the identifier rule
(services/runtime/identifiers.py).
"""

from __future__ import annotations

import re

from casemesh.payments.v1 import fraud_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE, is_id, required_id
from .. import contract
from .rules import Payment

__all__ = ["amount", "card_fingerprint", "customer_id", "payment_id", "required_id", "score_payment"]

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def payment_id(field: str, value: str) -> str:
    """The gateway's payment id: ``pay_`` and 24 characters of [a-z0-9]."""
    if not value:
        raise InvalidArgument(field, f"is required ({contract.PAYMENT_ID_PREFIX!r} and {contract.GATEWAY_ID_CHARS} "
                                     "characters of a-z, 0-9)")
    if not contract.is_gateway_id(value, contract.PAYMENT_ID_PREFIX):
        raise InvalidArgument(field, f"must be {contract.PAYMENT_ID_PREFIX!r} and {contract.GATEWAY_ID_CHARS} "
                                     "characters of a-z, 0-9")
    return value


def card_fingerprint(field: str, value: str) -> str:
    """Card.fingerprint: 64 lower-case hex characters."""
    if not value:
        raise InvalidArgument(field, "is required (64 lower-case hex characters: Card.fingerprint)")
    if _FINGERPRINT.fullmatch(value) is None:
        raise InvalidArgument(field, "must be 64 lower-case hex characters (Card.fingerprint)")
    return value


def customer_id(field: str, value: str) -> str:
    """Empty (no customer), or an id."""
    if value and not is_id(value):
        raise InvalidArgument(field, f"must be empty or {ID_RULE}")
    return value


def amount(field: str, request: fraud_pb2.ScorePaymentRequest) -> tuple[int, str]:
    """``(amount_minor, currency_code)`` of the request's Money: present, ``currency_code`` three upper-case
    letters, ``amount_minor`` 1 to :data:`~services.payments.contract.MAX_AMOUNT_MINOR`."""
    if not request.HasField("amount"):
        raise InvalidArgument(field, "is required (currency_code and amount_minor)")
    money = request.amount
    if not contract.is_currency_code(money.currency_code):
        raise InvalidArgument(f"{field}.currency_code", f"{money.currency_code!r} is not three upper-case letters "
                                                        "(ISO 4217)")
    if not 1 <= money.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument(f"{field}.amount_minor", f"{money.amount_minor} is not 1 to "
                                                       f"{contract.MAX_AMOUNT_MINOR:,}")
    return money.amount_minor, money.currency_code


def score_payment(request: fraud_pb2.ScorePaymentRequest) -> Payment:
    """ScorePaymentRequest: ``payment_id``, ``merchant_id``, ``card_fingerprint``, ``customer_id`` (optional),
    ``amount``."""
    pay = payment_id("payment_id", request.payment_id)
    merchant = required_id("merchant_id", request.merchant_id)
    card = card_fingerprint("card_fingerprint", request.card_fingerprint)
    customer = customer_id("customer_id", request.customer_id)
    amount_minor, currency_code = amount("amount", request)
    return Payment(pay, merchant, card, customer, amount_minor, currency_code)
