"""banking-ledger's input rules, as protos/casemesh/banking/v1/ledger.proto and banking.proto state them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field path as the proto's comments do
(``account_id``, ``owner``, ``currency_code``, ``entry.entry_id``, ``entry.postings``,
``entry.postings[i].account_id``, ``entry.postings[i].amount``, ``entry.memo``, ``page_size``), the first bad one in
the proto's field order. The shared rules are the contract's (:mod:`services.banking.contract`). Checks that need the
ledger's accounts (an account not open: NOT_FOUND; a posting not in its account's currency) are the domain's
(:mod:`.ledger`), naming ``entry.postings[i].amount`` the same way.

A posting's amount is at most :data:`~services.banking.contract.MAX_AMOUNT_MINOR` either way (the largest deposit or
transfer): the ledger's sums then stay far from the int64 range of ``Money.amount_minor``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from casemesh.banking.v1 import ledger_pb2

from ...runtime.errors import InvalidArgument
from .. import contract
from .records import NewEntry, Posting

__all__ = ["OpenAccount", "account_id", "open_account", "page_size", "post_entry"]

_ID_RULE = "1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'"


class OpenAccount(NamedTuple):
    """A valid OpenAccountRequest."""

    account_id: str
    owner: str
    currency_code: str


def _id(field: str, value: str) -> str:
    if not value:
        raise InvalidArgument(field, f"is required ({_ID_RULE})")
    if not contract.is_account_id(value):
        raise InvalidArgument(field, f"must be {_ID_RULE}")
    return value


def account_id(value: str, field: str = "account_id") -> str:
    """An account ID (1 to 64 characters of [A-Za-z0-9_-]), naming ``field``."""
    return _id(field, value)


def open_account(request: ledger_pb2.OpenAccountRequest) -> OpenAccount:
    """OpenAccountRequest: ``account_id`` (not starting with "cash-"), ``owner`` (1 to 100 characters),
    ``currency_code`` (three upper-case letters)."""
    account = _id("account_id", request.account_id)
    if account.startswith(contract.CASH_PREFIX):
        raise InvalidArgument("account_id", f"must not start with {contract.CASH_PREFIX!r} (the bank's cash accounts)")
    if not 1 <= len(request.owner) <= contract.OWNER_MAX_CHARS:
        raise InvalidArgument("owner", f"has {len(request.owner)} characters; 1 to {contract.OWNER_MAX_CHARS}")
    if not contract.is_currency_code(request.currency_code):
        raise InvalidArgument("currency_code", f"{request.currency_code!r} is not three upper-case letters (ISO 4217)")
    return OpenAccount(account, request.owner, request.currency_code)


def post_entry(request: ledger_pb2.PostEntryRequest) -> NewEntry:
    """PostEntryRequest: ``entry.entry_id``; ``entry.postings`` (two or more, each account once, summing to zero per
    currency); each ``entry.postings[i].account_id`` and ``entry.postings[i].amount`` (a currency code, not 0, at most
    10^12 minor units either way); ``entry.memo`` (up to 200 characters). ``sequence`` and ``posted_at_unix_ms`` are
    ignored."""
    entry = request.entry
    entry_id = _id("entry.entry_id", entry.entry_id)
    if len(entry.postings) < 2:
        raise InvalidArgument("entry.postings", f"has {len(entry.postings)} postings; at least 2")
    postings = []
    for i, posting in enumerate(entry.postings):
        field = f"entry.postings[{i}]"
        account = _id(f"{field}.account_id", posting.account_id)
        amount = posting.amount
        if not posting.HasField("amount"):
            raise InvalidArgument(f"{field}.amount", "is required (currency_code and a signed amount_minor, not 0)")
        if not contract.is_currency_code(amount.currency_code):
            raise InvalidArgument(f"{field}.amount", f"currency_code {amount.currency_code!r} is not three upper-case "
                                                     "letters (ISO 4217)")
        if amount.amount_minor == 0:
            raise InvalidArgument(f"{field}.amount", "is 0 (a posting moves money: positive credits, negative debits)")
        if abs(amount.amount_minor) > contract.MAX_AMOUNT_MINOR:
            raise InvalidArgument(f"{field}.amount", f"{amount.amount_minor} is beyond ±{contract.MAX_AMOUNT_MINOR:,} "
                                                     "minor units")
        postings.append(Posting(account, amount.currency_code, amount.amount_minor))
    seen: set[str] = set()
    totals: defaultdict[str, int] = defaultdict(int)
    for posting in postings:
        if posting.account_id in seen:
            raise InvalidArgument("entry.postings", f"posts to account {posting.account_id!r} twice (at most one "
                                                    "posting per account)")
        seen.add(posting.account_id)
        totals[posting.currency_code] += posting.amount_minor
    unbalanced = {currency: total for currency, total in sorted(totals.items()) if total}
    if unbalanced:
        sums = ", ".join(f"{total} {currency}" for currency, total in unbalanced.items())
        raise InvalidArgument("entry.postings", f"do not sum to zero per currency ({sums})")
    if len(entry.memo) > contract.MEMO_MAX_CHARS:
        raise InvalidArgument("entry.memo", f"has {len(entry.memo)} characters; at most {contract.MEMO_MAX_CHARS}")
    return NewEntry(entry_id, tuple(postings), entry.memo)


def page_size(value: int) -> int:
    """ListEntries' ``page_size``: 0 to 100, 0 meaning 20."""
    if value > contract.MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"{value} is more than {contract.MAX_PAGE_SIZE}")
    return value or contract.DEFAULT_PAGE_SIZE
