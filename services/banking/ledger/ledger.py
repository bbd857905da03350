"""The double-entry ledger: accounts, balanced journal entries committed atomically, in isolation and durably.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). Every movement of money is a
journal entry whose postings sum to zero per currency (double entry: Pacioli, "Summa de arithmetica", 1494); the
ledger (protos/casemesh/banking/v1/ledger.proto):

- **atomic and durable**: an entry and all its postings are one SQLite transaction, fsynced before the answer
  (:mod:`.store`, group-committed with the entries committing alongside);
- **isolated**: a customer account never goes below zero, so an entry checks the balances it debits; the check, the
  commit and the apply to memory run under the locks of setting ``locking`` (:mod:`.locking`: strict two-phase
  locking per account by default);
- **consistent**: balances and per-account entry counts live in memory, derived from the postings when the ledger
  starts (sums of the log, never a stored column), and changed only after an entry is durable; :mod:`.reconcile`
  checks them against the log;
- **idempotent**: an ``entry_id`` posts once; a retry with the same postings and memo gets the stored entry, with
  others FAILED_PRECONDITION ``entry_id_conflict``. Recent entries are found in memory; an ID not there is taken for
  new and goes through the checks to the commit, whose unique index finds an older entry of that ID (nothing
  written); an entry refused by the checks is looked up in the file before the refusal stands (a retry of an entry
  whose money has moved on since).

The bank's cash account of a currency (``cash-USD``, kind BANK_CASH, owner "bank") is opened with the first customer
account of that currency and may go negative: it is the other side of every deposit. A posting moves at most 10^12
minor units (:mod:`.validation`), so a balance leaves the int64 range of ``Money.amount_minor`` only after more than
nine million maximal postings.

Status codes come from the errors raised: InvalidArgument, NotFound, AlreadyExists, FailedPrecondition (runtime
interceptor); :class:`.store.StoreUnavailable` (the servicer: UNAVAILABLE) when the file cannot be written, in which
case nothing was applied in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

from cachetools import LRUCache

from ...runtime import page_tokens
from ...runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from ...runtime.keyed_locks import KeyedLocks
from .. import contract
from . import metrics
from .locking import EntryLocks
from .reconcile import Reconciliation, Snapshot, reconcile
from .records import BANK_CASH, CUSTOMER, AccountRecord, EntryRecord, NewEntry
from .settings import LedgerSettings
from .store import LedgerStore
from .validation import OpenAccount

#: The page-token kind of ListEntries (services/runtime/page_tokens.py), scoped to the account.
STATEMENT_TOKEN_KIND = "ledger-entries"


class InsufficientFunds(FailedPrecondition):
    """A customer account would go below zero: FAILED_PRECONDITION ``insufficient_funds: ...``."""


@dataclass(slots=True)
class _Account:
    record: AccountRecord
    balance_minor: int = 0
    entry_count: int = 0


@dataclass(frozen=True, slots=True)
class AccountView:
    """An account with its balance (minor units) and the number of entries that touched it, as of the last entry
    applied."""

    record: AccountRecord
    balance_minor: int
    entry_count: int


@dataclass(frozen=True, slots=True)
class Statement:
    """One page of an account's entries, newest first; ``next_page_token`` empty on the last page."""

    entries: list[EntryRecord]
    next_page_token: str


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Ledger:
    """The ledger over ``store``; call :meth:`start` (loads the balances) before anything else, :meth:`close` at the
    end."""

    def __init__(self, store: LedgerStore, settings: LedgerSettings | None = None) -> None:
        self.store = store
        self.settings = settings or LedgerSettings()
        self.locks = EntryLocks(self.settings.locking)
        self._accounts: dict[str, _Account] = {}
        self._sequence = 0
        self._recent: LRUCache[str, EntryRecord] | None = (
            LRUCache(self.settings.recent_entries) if self.settings.recent_entries else None)
        self._entry_ids = KeyedLocks()
        self._opening = KeyedLocks()

    async def start(self) -> None:
        """Derive the accounts, balances, entry counts and last sequence from the file."""
        loaded = await self.store.load()
        self._accounts = {record.account_id: _Account(record, loaded.balances.get(record.account_id, 0),
                                                      loaded.entry_counts.get(record.account_id, 0))
                          for record in loaded.accounts}
        self._sequence = loaded.last_sequence
        metrics.started(len(self._accounts), self._sequence)

    async def close(self) -> None:
        """Finish the writes queued and close the file."""
        await self.store.close()

    @property
    def sequence(self) -> int:
        """The sequence number of the last entry applied (0: none)."""
        return self._sequence

    # -- accounts -------------------------------------------------------------------------------------------------------

    def account(self, account_id: str) -> AccountView:
        """The account with its balance; NotFound when it is not open."""
        account = self._accounts.get(account_id)
        if account is None:
            raise NotFound(f"account {account_id} is not open")
        return AccountView(account.record, account.balance_minor, account.entry_count)

    async def open_account(self, request: OpenAccount) -> AccountView:
        """Open a customer account (and the cash account of its currency on first use); the open account when it is
        open with the same owner and currency, AlreadyExists when with others; StoreUnavailable when the file cannot
        be written (nothing opened)."""
        return await asyncio.shield(asyncio.create_task(self._open_account(request)))

    async def _open_account(self, request: OpenAccount) -> AccountView:
        cash_id = contract.cash_account_id(request.currency_code)
        async with self._opening.hold(request.account_id), contextlib.AsyncExitStack() as stack:
            existing = self._accounts.get(request.account_id)
            if existing is not None:
                if (existing.record.owner, existing.record.currency_code) != (request.owner, request.currency_code):
                    raise AlreadyExists(f"account {request.account_id} is open with another owner or currency "
                                        f"({existing.record.currency_code})")
                return self.account(request.account_id)
            if cash_id not in self._accounts:  # the first of its currency: one opening of the cash account at a time
                await stack.enter_async_context(self._opening.hold(cash_id))
            now = _now_ms()
            records = [AccountRecord(request.account_id, CUSTOMER, request.owner, request.currency_code, now)]
            if cash_id not in self._accounts:
                records.append(AccountRecord(cash_id, BANK_CASH, contract.BANK_OWNER, request.currency_code, now))
            async with self.locks.change():
                await self.store.open_accounts(records)
                for record in records:
                    self._accounts[record.account_id] = _Account(record)
            metrics.ACCOUNTS.set(len(self._accounts))
            return self.account(request.account_id)

    # -- entries ----------------------------------------------------------------------------------------------------------

    async def post(self, entry: NewEntry) -> EntryRecord:
        """Commit ``entry`` (validated: :func:`.validation.post_entry`) and return it with its sequence and time.

        The entry posted under its ``entry_id`` when there is one (same postings and memo; else FailedPrecondition
        ``entry_id_conflict``); NotFound for an account not open; InvalidArgument ``entry.postings[i].amount`` for a
        posting in another currency than its account's; FailedPrecondition ``insufficient_funds`` when a customer
        account would go below zero; StoreUnavailable when the file cannot be written (nothing posted). A cancelled
        caller does not stop an entry once started: a retry with its ``entry_id`` finds it.
        """
        return await asyncio.shield(asyncio.create_task(self._post(entry)))

    async def _post(self, entry: NewEntry) -> EntryRecord:
        async with self._entry_ids.hold(entry.entry_id):  # a retry racing its original waits for it
            recent = self._recent.get(entry.entry_id) if self._recent is not None else None
            if recent is not None:
                return self._replayed(entry, recent)
            # An entry_id not in memory is almost always new: the commit's unique index tells (no read before it).
            try:
                debited = self._debited(entry)
                async with self.locks.entry(debited):
                    self._check_funds(entry)
                    record, created = await self.store.append(entry)
                    if created:
                        self._apply(record)
            except (NotFound, InvalidArgument, InsufficientFunds) as error:
                # Refused: unless it was posted long ago (an older retry whose money has moved on since).
                stored = await self.store.entry(entry.entry_id)
                if stored is None:
                    if isinstance(error, InsufficientFunds):
                        metrics.INSUFFICIENT_FUNDS.inc()
                    raise
                return self._replayed(entry, stored)
            return record if created else self._replayed(entry, record)

    def _replayed(self, entry: NewEntry, stored: EntryRecord) -> EntryRecord:
        """``stored``, the entry posted under ``entry``'s ID, when ``entry`` is a retry of it; else
        FailedPrecondition ``entry_id_conflict``."""
        if not entry.same_as(stored):
            raise FailedPrecondition(f"{contract.ENTRY_ID_CONFLICT}: entry {entry.entry_id} was posted (sequence "
                                     f"{stored.sequence}) with other postings or another memo")
        if self._recent is not None:
            self._recent[entry.entry_id] = stored
        metrics.REPLAYS.inc()
        return stored

    def _debited(self, entry: NewEntry) -> list[str]:
        """The customer accounts ``entry`` debits (the balances its check reads); NotFound or InvalidArgument for a
        posting to an account not open or not in its currency."""
        debited = []
        for i, posting in enumerate(entry.postings):
            account = self._accounts.get(posting.account_id)
            if account is None:
                raise NotFound(f"account {posting.account_id} is not open (entry.postings[{i}].account_id)")
            if posting.currency_code != account.record.currency_code:
                raise InvalidArgument(f"entry.postings[{i}].amount", f"is in {posting.currency_code}; account "
                                      f"{posting.account_id} is in {account.record.currency_code}")
            if posting.amount_minor < 0 and account.record.kind == CUSTOMER:
                debited.append(posting.account_id)
        return debited

    def _check_funds(self, entry: NewEntry) -> None:
        for posting in entry.postings:
            account = self._accounts[posting.account_id]
            if (posting.amount_minor < 0 and account.record.kind == CUSTOMER
                    and account.balance_minor + posting.amount_minor < 0):
                raise InsufficientFunds(f"{contract.INSUFFICIENT_FUNDS}: account {posting.account_id} has "
                                         f"{account.balance_minor} {posting.currency_code}; the entry debits "
                                         f"{-posting.amount_minor}")

    def _apply(self, record: EntryRecord) -> None:
        for posting in record.postings:
            account = self._accounts[posting.account_id]
            account.balance_minor += posting.amount_minor
            account.entry_count += 1
        self._sequence = max(self._sequence, record.sequence)
        if self._recent is not None:
            self._recent[record.entry_id] = record
        metrics.ENTRIES_POSTED.inc()
        metrics.SEQUENCE.set(self._sequence)

    async def statement(self, account_id: str, page_size: int, page_token: str) -> Statement:
        """``page_size`` (1 to 100) entries of ``account_id``, newest first, after ``page_token`` (empty: from the
        newest); NotFound when the account is not open; InvalidArgument ``page_token`` for a token not of this
        account's statement."""
        self.account(account_id)
        before = (page_tokens.decode(page_token, STATEMENT_TOKEN_KIND, account_id, {"b": int})["b"]
                  if page_token else None)
        entries = await self.store.account_entries(account_id, before, page_size + 1)
        more = len(entries) > page_size
        entries = entries[:page_size]
        token = page_tokens.encode(STATEMENT_TOKEN_KIND, account_id, {"b": entries[-1].sequence}) if more else ""
        return Statement(entries, token)

    # -- reconciliation ---------------------------------------------------------------------------------------------------

    async def reconcile(self) -> Reconciliation:
        """Check the whole ledger (:mod:`.reconcile`) as of one instant: the balances copied while no entry is between
        its commit and its apply, the file read up to the same sequence."""
        async with self.locks.quiesced():
            snapshot = Snapshot(self._sequence, {i: a.record for i, a in self._accounts.items()},
                                {i: a.balance_minor for i, a in self._accounts.items()},
                                {i: a.entry_count for i, a in self._accounts.items()})
        result = await reconcile(self.store, snapshot)
        metrics.RECONCILE_RUNS.labels("balanced" if result.balanced else "discrepancies").inc()
        metrics.RECONCILE_DISCREPANCIES.inc(len(result.discrepancies))
        return result
