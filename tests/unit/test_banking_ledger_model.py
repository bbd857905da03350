"""A hypothesis state machine of the banking ledger against a dictionary model: any sequence of account openings
(reopenings, other owners, two currencies), deposits, transfers (too large, into another currency, from accounts not
open), retries of posted entries (the same, or other postings or memo under the same ID), deposits posted side by side, and
restarts of the ledger from its file (with or without the memory of recent entries): every answer is the model's,
every balance and entry count is the model's, the sequence counts the entries posted, and the ledger reconciles.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from casemesh.services.banking.contract import cash_account_id
from casemesh.services.banking.ledger.ledger import Ledger
from casemesh.services.banking.ledger.records import NewEntry, Posting
from casemesh.services.banking.ledger.settings import LedgerSettings
from casemesh.services.banking.ledger.store import FILE_NAME, LedgerStore
from casemesh.services.banking.ledger.validation import OpenAccount
from casemesh.services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound

ACCOUNTS = ("alice", "bob", "carol", "dave")
ENTRY_IDS = tuple(f"e{i}" for i in range(12))
CURRENCIES = ("USD", "EUR")
AMOUNTS = st.integers(min_value=1, max_value=1_500)


@dataclass
class Held:
    """What the model says an account holds (minor units) and how many entries touched it."""

    owner: str
    currency: str
    customer: bool
    balance: int = 0
    entries: int = 0


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="banking-ledger-"))
        self.ledger = self._open(100)
        self.held: dict[str, Held] = {}
        self.posted: dict[str, NewEntry] = {}
        self.sequences: dict[str, int] = {}

    def _open(self, recent_entries: int) -> Ledger:
        ledger = Ledger(LedgerStore(self.folder / FILE_NAME), LedgerSettings(recent_entries=recent_entries))
        self.run(ledger.start())
        return ledger

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def expected(self, new: NewEntry) -> type[Exception] | None:
        """The error the ledger must answer ``new`` with, or ``None`` when it posts it (or replays it)."""
        if new.entry_id in self.posted:
            return None if new.same_as(self.posted[new.entry_id]) else FailedPrecondition
        for posting in new.postings:
            held = self.held.get(posting.account_id)
            if held is None:
                return NotFound
            if held.currency != posting.currency_code:
                return InvalidArgument
        if any(self.held[p.account_id].customer and self.held[p.account_id].balance + p.amount_minor < 0
               for p in new.postings):
            return FailedPrecondition
        return None

    def post(self, new: NewEntry) -> None:
        error = self.expected(new)
        if error is not None:
            with pytest.raises(error):
                self.run(self.ledger.post(new))
            return
        record = self.run(self.ledger.post(new))
        self.settle(new, record)

    def settle(self, new: NewEntry, record) -> None:
        if new.entry_id in self.posted:
            assert record.sequence == self.sequences[new.entry_id]
            return
        assert record.sequence == len(self.posted) + 1
        self.posted[new.entry_id] = new
        self.sequences[new.entry_id] = record.sequence
        for posting in new.postings:
            self.held[posting.account_id].balance += posting.amount_minor
            self.held[posting.account_id].entries += 1

    @rule(account=st.sampled_from(ACCOUNTS), owner=st.sampled_from(["A", "A", "B"]),
          currency=st.sampled_from(CURRENCIES))
    def open_account(self, account: str, owner: str, currency: str) -> None:
        held = self.held.get(account)
        call = self.ledger.open_account(OpenAccount(account, owner, currency))
        if held is not None and (held.owner, held.currency) != (owner, currency):
            with pytest.raises(AlreadyExists):
                self.run(call)
            return
        view = self.run(call)
        if held is None:
            self.held[account] = Held(owner, currency, True)
            self.held.setdefault(cash_account_id(currency), Held("bank", currency, False))
        assert view.balance_minor == self.held[account].balance

    @rule(account=st.sampled_from(ACCOUNTS), amount=AMOUNTS, entry_id=st.sampled_from(ENTRY_IDS),
          currency=st.sampled_from(CURRENCIES))
    def deposit(self, account: str, amount: int, entry_id: str, currency: str) -> None:
        self.post(NewEntry(entry_id, (Posting(cash_account_id(currency), currency, -amount),
                                      Posting(account, currency, amount)), "deposit"))

    @rule(source=st.sampled_from(ACCOUNTS), payee=st.sampled_from(ACCOUNTS), amount=AMOUNTS,
          entry_id=st.sampled_from(ENTRY_IDS))
    def transfer(self, source: str, payee: str, amount: int, entry_id: str) -> None:
        if source == payee:
            return
        currency = self.held[source].currency if source in self.held else "USD"
        self.post(NewEntry(entry_id, (Posting(source, currency, -amount), Posting(payee, currency, amount)), ""))

    @precondition(lambda self: self.posted)
    @rule(pick=st.integers(min_value=0, max_value=100), reorder=st.booleans())
    def retry(self, pick: int, reorder: bool) -> None:
        original = self.posted[sorted(self.posted)[pick % len(self.posted)]]
        postings = tuple(reversed(original.postings)) if reorder else original.postings
        record = self.run(self.ledger.post(NewEntry(original.entry_id, postings, original.memo)))
        assert record.sequence == self.sequences[original.entry_id]

    @precondition(lambda self: self.posted)
    @rule(pick=st.integers(min_value=0, max_value=100))
    def retry_with_another_memo(self, pick: int) -> None:
        original = self.posted[sorted(self.posted)[pick % len(self.posted)]]
        with pytest.raises(FailedPrecondition):
            self.run(self.ledger.post(NewEntry(original.entry_id, original.postings, original.memo + "!")))

    @precondition(lambda self: any(h.customer for h in self.held.values()))
    @rule(amounts=st.lists(AMOUNTS, min_size=2, max_size=6))
    def deposits_side_by_side(self, amounts: list[int]) -> None:
        customers = sorted(a for a, h in self.held.items() if h.customer)
        entries = []
        for i, amount in enumerate(amounts):
            account = customers[i % len(customers)]
            currency = self.held[account].currency
            entries.append(NewEntry(f"side-{len(self.posted)}-{i}", (
                Posting(cash_account_id(currency), currency, -amount), Posting(account, currency, amount)), ""))

        async def together():
            return await asyncio.gather(*(self.ledger.post(e) for e in entries))

        records = sorted(zip(self.run(together()), entries, strict=True), key=lambda pair: pair[0].sequence)
        for record, new in records:
            self.settle(new, record)

    @rule(recent_entries=st.sampled_from([0, 100]))
    def restart(self, recent_entries: int) -> None:
        self.run(self.ledger.close())
        self.ledger = self._open(recent_entries)

    @invariant()
    def the_ledger_is_the_model_and_reconciles(self) -> None:
        for account, held in self.held.items():
            view = self.ledger.account(account)
            assert (view.balance_minor, view.entry_count, view.record.currency_code) == (
                held.balance, held.entries, held.currency)
        assert self.ledger.sequence == len(self.posted)
        result = self.run(self.ledger.reconcile())
        assert result.balanced, result.discrepancies
        assert (result.account_count, result.entry_count) == (len(self.held), len(self.posted))

    def teardown(self) -> None:
        self.run(self.ledger.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestLedgerModel = LedgerMachine.TestCase
TestLedgerModel.settings = hypothesis_settings(max_examples=40, stateful_step_count=30, deadline=None)
