"""The ledger's records: accounts, postings and journal entries as the domain and the store pass them around.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39, "Online Banking | Double-entry ledger"). Amounts are
signed integer minor units (positive credits the account, negative debits it); times are Unix milliseconds. Kinds are
``casemesh.banking.v1.AccountKind`` values.
"""

from __future__ import annotations

from dataclasses import dataclass

from casemesh.banking.v1 import banking_pb2

CUSTOMER = banking_pb2.ACCOUNT_KIND_CUSTOMER
BANK_CASH = banking_pb2.ACCOUNT_KIND_BANK_CASH


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """An account as opened: ``kind`` CUSTOMER or BANK_CASH; every posting to it is in ``currency_code``."""

    account_id: str
    kind: int
    owner: str
    currency_code: str
    opened_at_unix_ms: int


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of an entry: ``amount_minor`` (signed, never 0) into ``account_id``, in ``currency_code``."""

    account_id: str
    currency_code: str
    amount_minor: int


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A valid journal entry to post (:mod:`.validation`): two or more postings, one per account, summing to zero per
    currency; ``memo`` up to 200 characters."""

    entry_id: str
    postings: tuple[Posting, ...]
    memo: str

    def same_as(self, other: NewEntry | EntryRecord) -> bool:
        """True when ``other`` has the same postings (in any order) and memo: a retry of this entry."""
        return self.memo == other.memo and set(self.postings) == set(other.postings)


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """A committed entry: ``sequence`` 1, 2, 3, ... in commit order, committed at ``posted_at_unix_ms``; postings in
    the order posted."""

    sequence: int
    entry_id: str
    postings: tuple[Posting, ...]
    memo: str
    posted_at_unix_ms: int
