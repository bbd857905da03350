"""banking-transfers' input rules, as protos/casemesh/banking/v1/transfers.proto states them.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39, "Online Banking"). Each check raises
:class:`~services.runtime.errors.InvalidArgument` naming the field as the proto's comments do (``idempotency_key``,
``from_account_id``, ``amount``, ``initial_deposit.currency_code``), the first bad one in the proto's field order. The
shared rules are the contract's (:mod:`services.banking.contract`: account ids, the cash prefix, currencies, amounts,
memo and owner lengths, idempotency keys, transfer ids).

Money moves between customer accounts only: an account id starting with ``cash-`` (the bank's cash account, the other
side of every deposit, which may go negative) is refused where the proto says "customer account" (OpenAccount, and
the accounts of Deposit and Transfer), naming the field. Checks that need an account (NOT_FOUND, a currency that is
not the account's) are the domain's (:mod:`.transfers`), naming the same fields.
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.banking.v1 import transfers_pb2
from casemesh.common.v1 import money_pb2

from ...runtime.errors import InvalidArgument
from .. import contract

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"
_AMOUNT_RULE = f"1 to {contract.MAX_AMOUNT_MINOR:,} minor units of a currency of three upper-case letters"


class OpenAccount(NamedTuple):
    """A valid TransferServiceOpenAccountRequest (``amount_minor`` 0: no initial deposit)."""

    account_id: str
    owner: str
    currency_code: str
    amount_minor: int


class Deposit(NamedTuple):
    """A valid DepositRequest (amount in minor units of ``currency_code``)."""

    idempotency_key: str
    account_id: str
    currency_code: str
    amount_minor: int


class Transfer(NamedTuple):
    """A valid TransferRequest (amount in minor units of ``currency_code``)."""

    idempotency_key: str
    from_account_id: str
    to_account_id: str
    currency_code: str
    amount_minor: int
    memo: str


def idempotency_key(value: str) -> str:
    """1 to 255 printable ASCII characters, naming ``idempotency_key``."""
    if not contract.is_idempotency_key(value):
        raise InvalidArgument("idempotency_key", f"must be 1 to {contract.MAX_IDEMPOTENCY_KEY_CHARS} printable ASCII "
                                                 f"characters (got {len(value)} characters)")
    return value


def customer_account_id(field: str, value: str) -> str:
    """A customer's account id (the id rule, not starting with ``cash-``), naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not contract.is_account_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    if value.startswith(contract.CASH_PREFIX):
        raise InvalidArgument(field, f"{value!r} is a bank cash account ({contract.CASH_PREFIX!r}), not a customer's")
    return value


def amount(field: str, value: money_pb2.Money, present: bool) -> tuple[str, int]:
    """``(currency_code, amount_minor)`` of the Money of a deposit or a transfer, naming ``field``."""
    if not present:
        raise InvalidArgument(field, f"is required ({_AMOUNT_RULE})")
    if not contract.is_currency_code(value.currency_code):
        raise InvalidArgument(field, f"currency_code {value.currency_code!r} is not three upper-case letters "
                                     "(ISO 4217)")
    if not 1 <= value.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument(field, f"amount_minor {value.amount_minor} is not 1 to {contract.MAX_AMOUNT_MINOR:,}")
    return value.currency_code, value.amount_minor


def open_account(request: transfers_pb2.TransferServiceOpenAccountRequest) -> OpenAccount:
    """TransferServiceOpenAccountRequest: ``account_id``, ``owner`` (1 to 100 characters),
    ``initial_deposit.currency_code``, ``initial_deposit.amount_minor`` (0 to 10^12)."""
    account_id = customer_account_id("account_id", request.account_id)
    if not 1 <= len(request.owner) <= contract.OWNER_MAX_CHARS:
        raise InvalidArgument("owner", f"has {len(request.owner)} characters; 1 to {contract.OWNER_MAX_CHARS}")
    deposit = request.initial_deposit
    if not contract.is_currency_code(deposit.currency_code):
        raise InvalidArgument("initial_deposit.currency_code", f"{deposit.currency_code!r} is not three upper-case "
                                                               "letters (ISO 4217)")
    if not 0 <= deposit.amount_minor <= contract.MAX_AMOUNT_MINOR:
        raise InvalidArgument("initial_deposit.amount_minor", f"{deposit.amount_minor} is not 0 to "
                                                              f"{contract.MAX_AMOUNT_MINOR:,}")
    return OpenAccount(account_id, request.owner, deposit.currency_code, deposit.amount_minor)


def deposit(request: transfers_pb2.DepositRequest) -> Deposit:
    """DepositRequest: ``idempotency_key``, ``account_id``, ``amount`` (1 to 10^12 minor units)."""
    key = idempotency_key(request.idempotency_key)
    account_id = customer_account_id("account_id", request.account_id)
    currency, amount_minor = amount("amount", request.amount, request.HasField("amount"))
    return Deposit(key, account_id, currency, amount_minor)


def transfer(request: transfers_pb2.TransferRequest) -> Transfer:
    """TransferRequest: ``idempotency_key``, ``from_account_id``, ``to_account_id`` (not ``from_account_id``),
    ``amount`` (1 to 10^12 minor units), ``memo`` (up to 200 characters)."""
    key = idempotency_key(request.idempotency_key)
    from_account_id = customer_account_id("from_account_id", request.from_account_id)
    to_account_id = customer_account_id("to_account_id", request.to_account_id)
    if to_account_id == from_account_id:
        raise InvalidArgument("to_account_id", "is the same as from_account_id")
    currency, amount_minor = amount("amount", request.amount, request.HasField("amount"))
    if len(request.memo) > contract.MEMO_MAX_CHARS:
        raise InvalidArgument("memo", f"has {len(request.memo)} characters; at most {contract.MEMO_MAX_CHARS}")
    return Transfer(key, from_account_id, to_account_id, currency, amount_minor, request.memo)


def transfer_id(value: str) -> str:
    """GetTransferRequest's ``transfer_id``: ``tr_`` and 24 characters of ``[a-z2-7]``."""
    if not contract.is_transfer_id(value):
        raise InvalidArgument("transfer_id", "must be 'tr_' and 24 characters of a-z or 2-7")
    return value
