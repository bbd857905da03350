"""The simulated acquirers' input rules, as protos/casemesh/payments/v1/acquirer.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as written in the .proto
(``reference``, ``amount.currency_code``), the first bad one in the proto's field order. The shared rules are the
contract's (:mod:`services.payments.contract`: references, ids, amounts, currency codes).

The card number is checked as the acquirer's contract says, 12 to 19 digits: the Luhn check digit is the vault's rule
(TokenizeCard), and a number that reached an acquirer came out of the vault.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import acquirer_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract

__all__ = ["Authorize", "Refund", "authorize", "batch_id", "capture", "money", "reference", "refund"]

REFERENCE_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_', '.' or '-'"
_DIGITS = re.compile(r"[0-9]{12,19}")
#: A batch id: an acquirer's name and a sequence of at least 6 digits ("payments-psp-a-000001").
BATCH_ID = re.compile(r"[a-z0-9-]{1,56}-[0-9]{6,}")


class Authorize(NamedTuple):
    """A valid AcquirerServiceAuthorizeRequest (amount in minor units of ``currency``)."""

    reference: str
    merchant_id: str
    card_number: str
    exp_month: int
    exp_year: int
    currency: str
    amount_minor: int


class Refund(NamedTuple):
    """A valid AcquirerServiceRefundRequest (amount in minor units)."""

    reference: str
    refund_reference: str
    amount_minor: int


def reference(field: str, value: str) -> str:
    """A gateway reference: 1 to 64 characters of ``[A-Za-z0-9_.-]``."""
    if not value:
        raise InvalidArgument(field, f"is required ({REFERENCE_RULE})")
    if not contract.is_reference(value):
        raise InvalidArgument(field, f"must be {REFERENCE_RULE}")
    return value


def money(field: str, value: money_pb2.Money, present: bool) -> tuple[str, int]:
    """``(currency_code, amount_minor)`` of a Money: present, ``currency_code`` three upper-case letters,
    ``amount_minor`` 1 to 100,000,000."""
    if not present:
        raise InvalidArgument(field, "is required")
    if not contract.is_currency_code(value.currency_code):
        raise InvalidArgument(f"{field}.currency_code", f"{value.currency_code!r} is not three upper-case letters "
                                                        "(an ISO 4217 code)")
    if not 1 <= value.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument(f"{field}.amount_minor", f"{value.amount_minor} is not 1 to "
                                                       f"{contract.MAX_AMOUNT_MINOR:,} minor units")
    return value.currency_code, value.amount_minor


def authorize(request: acquirer_pb2.AcquirerServiceAuthorizeRequest) -> Authorize:
    """AcquirerServiceAuthorizeRequest: ``reference``, ``merchant_id`` (an id), ``card_number`` (12 to 19 digits),
    ``exp_month`` (1 to 12), ``exp_year`` (four digits), ``amount`` (required; ``amount.currency_code``,
    ``amount.amount_minor``)."""
    ref = reference("reference", request.reference)
    merchant_id = required_id("merchant_id", request.merchant_id)
    if not _DIGITS.fullmatch(request.card_number):
        raise InvalidArgument("card_number", "must be 12 to 19 digits" if request.card_number else
                              "is required (12 to 19 digits)")
    if not 1 <= request.exp_month <= 12:
        raise InvalidArgument("exp_month", f"{request.exp_month} is not 1 to 12")
    if not 1_000 <= request.exp_year <= 9_999:
        raise InvalidArgument("exp_year", f"{request.exp_year} is not a four-digit year")
    currency, amount_minor = money("amount", request.amount, request.HasField("amount"))
    return Authorize(ref, merchant_id, request.card_number, request.exp_month, request.exp_year, currency,
                     amount_minor)


def capture(request: acquirer_pb2.AcquirerServiceCaptureRequest) -> tuple[str, int]:
    """AcquirerServiceCaptureRequest: ``reference``, ``amount_minor`` 0 (all) to 100,000,000 (the authorised amount,
    the bound of which the ledger checks)."""
    ref = reference("reference", request.reference)
    if not 0 <= request.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument("amount_minor", f"{request.amount_minor} is not 0 (all) up to the authorised amount")
    return ref, request.amount_minor


def refund(request: acquirer_pb2.AcquirerServiceRefundRequest) -> Refund:
    """AcquirerServiceRefundRequest: ``reference``, ``refund_reference``, ``amount_minor`` 1 to 100,000,000 (what is
    captured and not refunded, the bound of which the ledger checks: FAILED_PRECONDITION)."""
    ref = reference("reference", request.reference)
    refund_reference = reference("refund_reference", request.refund_reference)
    if not 1 <= request.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument("amount_minor", f"{request.amount_minor} is not 1 to "
                                              f"{contract.MAX_AMOUNT_MINOR:,} minor units")
    return Refund(ref, refund_reference, request.amount_minor)


def batch_id(value: str) -> str:
    """GetSettlementFileRequest.batch_id: an acquirer's name, ``-`` and a sequence of at least six digits."""
    if not value:
        raise InvalidArgument("batch_id", "is required (as CloseBatchResponse.batch_id: '<acquirer>-000001')")
    if len(value) > 64 or not BATCH_ID.fullmatch(value):
        raise InvalidArgument("batch_id", "must be an acquirer's name, '-' and a sequence of six digits or more "
                                          "(as CloseBatchResponse.batch_id)")
    return value
