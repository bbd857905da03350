"""payments-gateway's input rules, as protos/casemesh/payments/v1/gateway.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do
(``idempotency_key``, ``amount.currency_code``, ``amount.amount_minor``), the first bad one in the proto's field order.
The shared rules are the contract's (:mod:`services.payments.contract`: ids, idempotency keys, amounts, currency
codes, gateway id prefixes). Checks that need the stored payment (a capture over the authorised amount, a refund
over what is left) are the domain's (:mod:`.payments`), naming ``amount_minor`` the same way.
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import gateway_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE, is_id, required_id
from .. import contract

__all__ = [
    "Authorize",
    "Capture",
    "Refund",
    "Void",
    "authorize",
    "capture",
    "get_payment",
    "idempotency_key",
    "money",
    "payment_id",
    "refund",
    "void",
]

_GATEWAY_ID_RULE = f"and {contract.GATEWAY_ID_CHARS} characters of [a-z0-9]"


class Authorize(NamedTuple):
    """A valid AuthorizeRequest (amount in minor units of ``currency_code``; ``customer_id`` may be empty)."""

    idempotency_key: str
    merchant_id: str
    card_token: str
    currency_code: str
    amount_minor: int
    capture: bool
    description: str
    customer_id: str


class Capture(NamedTuple):
    """A valid CaptureRequest (``amount_minor`` 0: all of the authorised amount)."""

    idempotency_key: str
    merchant_id: str
    payment_id: str
    amount_minor: int


class Void(NamedTuple):
    """A valid VoidRequest."""

    idempotency_key: str
    merchant_id: str
    payment_id: str


class Refund(NamedTuple):
    """A valid RefundRequest (``amount_minor`` 0: all that is left)."""

    idempotency_key: str
    merchant_id: str
    payment_id: str
    amount_minor: int


def idempotency_key(value: str) -> str:
    """1 to 255 printable ASCII characters (``contract.is_idempotency_key``), naming ``idempotency_key``."""
    if not value:
        raise InvalidArgument("idempotency_key", f"is required (1 to {contract.MAX_IDEMPOTENCY_KEY_CHARS} printable "
                                                 "ASCII characters)")
    if not contract.is_idempotency_key(value):
        raise InvalidArgument("idempotency_key", f"must be 1 to {contract.MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
                                                 "characters")
    return value


def gateway_id(field: str, value: str, prefix: str) -> str:
    """``prefix`` and 24 characters of [a-z0-9] (``pay_…``, ``tok_…``), naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({prefix!r} {_GATEWAY_ID_RULE})")
    if not contract.is_gateway_id(value, prefix):
        raise InvalidArgument(field, f"must be {prefix!r} {_GATEWAY_ID_RULE}")
    return value


def payment_id(value: str) -> str:
    """``pay_`` and 24 characters of [a-z0-9], naming ``payment_id``."""
    return gateway_id("payment_id", value, contract.PAYMENT_ID_PREFIX)


def money(field: str, value: money_pb2.Money, present: bool) -> tuple[str, int]:
    """``(currency_code, amount_minor)`` of a required Money: three upper-case letters, 1 to 100,000,000 minor units
    (``field``, ``field.currency_code``, ``field.amount_minor``)."""
    if not present:
        raise InvalidArgument(field, "is required (currency_code and amount_minor)")
    if not contract.is_currency_code(value.currency_code):
        raise InvalidArgument(f"{field}.currency_code", f"{value.currency_code!r} is not three upper-case letters "
                                                        "(ISO 4217)")
    if not 1 <= value.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument(f"{field}.amount_minor", f"{value.amount_minor} is not 1 to "
                                                       f"{contract.MAX_AMOUNT_MINOR:,} minor units")
    return value.currency_code, value.amount_minor


def amount_minor(value: int) -> int:
    """A capture's or refund's ``amount_minor``: 0 (all) or more; the upper bound is the domain's."""
    if value < 0:
        raise InvalidArgument("amount_minor", f"{value} is negative (0: all)")
    return value


def authorize(request: gateway_pb2.AuthorizeRequest) -> Authorize:
    """AuthorizeRequest: ``idempotency_key``, ``merchant_id``, ``card_token`` (``tok_…``), ``amount``
    (``amount.currency_code``, ``amount.amount_minor``), ``description`` (up to 200 characters), ``customer_id``
    (empty, or an id)."""
    key = idempotency_key(request.idempotency_key)
    merchant = required_id("merchant_id", request.merchant_id)
    token = gateway_id("card_token", request.card_token, contract.CARD_TOKEN_PREFIX)
    currency, amount = money("amount", request.amount, request.HasField("amount"))
    if len(request.description) > contract.MAX_DESCRIPTION_CHARS:
        raise InvalidArgument("description", f"has {len(request.description)} characters; at most "
                                             f"{contract.MAX_DESCRIPTION_CHARS}")
    if request.customer_id and not is_id(request.customer_id):
        raise InvalidArgument("customer_id", f"must be empty or {ID_RULE}")
    return Authorize(key, merchant, token, currency, amount, request.capture, request.description,
                     request.customer_id)


def capture(request: gateway_pb2.CaptureRequest) -> Capture:
    """CaptureRequest: ``idempotency_key``, ``merchant_id``, ``payment_id``, ``amount_minor`` (not negative)."""
    return Capture(idempotency_key(request.idempotency_key), required_id("merchant_id", request.merchant_id),
                   payment_id(request.payment_id), amount_minor(request.amount_minor))


def void(request: gateway_pb2.VoidRequest) -> Void:
    """VoidRequest: ``idempotency_key``, ``merchant_id``, ``payment_id``."""
    return Void(idempotency_key(request.idempotency_key), required_id("merchant_id", request.merchant_id),
                payment_id(request.payment_id))


def refund(request: gateway_pb2.RefundRequest) -> Refund:
    """RefundRequest: ``idempotency_key``, ``merchant_id``, ``payment_id``, ``amount_minor`` (not negative)."""
    return Refund(idempotency_key(request.idempotency_key), required_id("merchant_id", request.merchant_id),
                  payment_id(request.payment_id), amount_minor(request.amount_minor))


def get_payment(request: gateway_pb2.GetPaymentRequest) -> tuple[str, str]:
    """GetPaymentRequest: ``(merchant_id, payment_id)``."""
    return required_id("merchant_id", request.merchant_id), payment_id(request.payment_id)
