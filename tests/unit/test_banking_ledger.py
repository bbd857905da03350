"""The banking ledger's domain (services/banking/ledger) without gRPC: the contract's rules, validation naming the
field, account openings (the cash account of a currency on first use), entries (double entry, insufficient funds, the
cash account going negative, idempotent retries from memory and from the file), durability (a new ledger on the same
file derives the same balances and continues the sequence), the store's group commit (a failing write fails alone; a
failed commit applies nothing), statements (paging), reconciliation (a clean ledger, and rows corrupted behind its
back), and isolation under concurrency: the ``account`` and ``global`` modes never overdraw, ``none`` does.

No test depends on how fast the machine is: races are forced with gates, not with sleeps.
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.banking.v1 import banking_pb2, ledger_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.banking import contract
from casemesh.services.banking.ledger import validation
from casemesh.services.banking.ledger.ledger import Ledger
from casemesh.services.banking.ledger.reconcile import reconcile
from casemesh.services.banking.ledger.records import BANK_CASH, CUSTOMER, AccountRecord, NewEntry, Posting
from casemesh.services.banking.ledger.settings import LedgerSettings, Locking
from casemesh.services.banking.ledger.store import FILE_NAME, LedgerStore, StoreUnavailable
from casemesh.services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound


async def make(folder: Path, **settings) -> Ledger:
    ledger = Ledger(LedgerStore(folder / FILE_NAME), LedgerSettings(**settings))
    await ledger.start()
    return ledger


@pytest.fixture
async def ledger(tmp_path):
    ledger = await make(tmp_path)
    yield ledger
    await ledger.close()


def entry(entry_id: str, *postings: tuple, memo: str = "") -> NewEntry:
    """An entry of ``(account_id, amount_minor[, currency])`` postings (USD by default)."""
    return NewEntry(entry_id, tuple(Posting(p[0], p[2] if len(p) > 2 else "USD", p[1]) for p in postings), memo)


async def open_accounts(ledger: Ledger, *accounts: str, currency: str = "USD") -> None:
    for account in accounts:
        await ledger.open_account(validation.OpenAccount(account, f"owner of {account}", currency))


async def deposit(ledger: Ledger, account: str, amount: int, entry_id: str, currency: str = "USD"):
    return await ledger.post(entry(entry_id, (contract.cash_account_id(currency), -amount, currency),
                                   (account, amount, currency)))


def balance(ledger: Ledger, account: str) -> int:
    return ledger.account(account).balance_minor


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ----------------------------------------------------------------------------- contract and settings


def test_the_contract_rules():
    assert contract.cash_account_id("USD") == "cash-USD" and contract.is_cash_account_id("cash-USD")
    assert not contract.is_cash_account_id("cash-usd")
    assert contract.is_account_id("a" * 64) and not contract.is_account_id("a" * 65)
    assert not contract.is_account_id("") and not contract.is_account_id("alice\n") and not contract.is_account_id("a b")
    assert contract.is_customer_account_id("alice") and not contract.is_customer_account_id("cash-anything")
    assert contract.is_entry_id("t_1-x") and not contract.is_entry_id("t.1")
    assert contract.is_transfer_id("tr_" + "a2" * 12) and not contract.is_transfer_id("tr_" + "a1" * 12)
    assert contract.is_currency_code("EUR") and not contract.is_currency_code("Eur") and not contract.is_currency_code("EURO")
    assert contract.is_idempotency_key(" ~") and contract.is_idempotency_key("k" * 255)
    assert not contract.is_idempotency_key("") and not contract.is_idempotency_key("k" * 256)
    assert not contract.is_idempotency_key("a\tb") and not contract.is_idempotency_key("é")
    assert contract.open_deposit_key("alice") == "open:alice"
    assert contract.failed_precondition_reason("insufficient_funds: account a has 1 USD") == contract.INSUFFICIENT_FUNDS
    assert contract.failed_precondition_reason("entry_id_conflict: x") == contract.ENTRY_ID_CONFLICT
    assert contract.failed_precondition_reason("something else: x") == ""


def test_settings_defaults_and_refusals():
    settings = LedgerSettings()
    assert (settings.locking, settings.recent_entries, settings.max_commit_entries) == (Locking.ACCOUNT, 100_000, 256)
    assert LedgerSettings(locking="none").locking is Locking.NONE
    for bad in ({"locking": "table"}, {"max_commit_entries": 0}, {"unknown": 1}):
        with pytest.raises(ValidationError):
            LedgerSettings(**bad)


# ----------------------------------------------------------------------------- validation


def _money(amount: int, currency: str = "USD") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount)


def _post_request(**changes) -> ledger_pb2.PostEntryRequest:
    fields = {"entry_id": "e1", "memo": "rent",
              "postings": [banking_pb2.Posting(account_id="alice", amount=_money(-100)),
                           banking_pb2.Posting(account_id="bob", amount=_money(100))]}
    fields.update(changes)
    return ledger_pb2.PostEntryRequest(entry=banking_pb2.JournalEntry(**fields))


def _posting(account: str = "bob", amount: int | None = 100, currency: str = "USD") -> banking_pb2.Posting:
    return (banking_pb2.Posting(account_id=account) if amount is None
            else banking_pb2.Posting(account_id=account, amount=_money(amount, currency)))


@pytest.mark.parametrize(("changes", "field"), [
    ({"entry_id": ""}, "entry.entry_id"),
    ({"entry_id": "e 1"}, "entry.entry_id"),
    ({"entry_id": "e" * 65}, "entry.entry_id"),
    ({"postings": [_posting()]}, "entry.postings"),
    ({"postings": []}, "entry.postings"),
    ({"postings": [_posting("", -100), _posting()]}, "entry.postings[0].account_id"),
    ({"postings": [_posting("alice", -100), _posting("b/b")]}, "entry.postings[1].account_id"),
    ({"postings": [_posting("alice", -100), _posting(amount=None)]}, "entry.postings[1].amount"),
    ({"postings": [_posting("alice", 0), _posting(amount=0)]}, "entry.postings[0].amount"),
    ({"postings": [_posting("alice", -100, "usd"), _posting()]}, "entry.postings[0].amount"),
    ({"postings": [_posting("alice", -10**12 - 1), _posting(amount=10**12 + 1)]}, "entry.postings[0].amount"),
    ({"postings": [_posting("alice", -100), _posting("alice", 100)]}, "entry.postings"),
    ({"postings": [_posting("alice", -100), _posting(amount=99)]}, "entry.postings"),
    ({"postings": [_posting("alice", -100), _posting(amount=100, currency="EUR")]}, "entry.postings"),
    ({"memo": "m" * 201}, "entry.memo"),
])
def test_post_entry_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.post_entry(_post_request(**changes))
    assert error.value.field == field


def test_a_valid_entry_in_several_currencies():
    request = _post_request(memo="m" * 200, sequence=7, posted_at_unix_ms=9, postings=[
        _posting("alice", -100), _posting("bob", 100), _posting("carol", -10**12, "EUR"), _posting("dave", 10**12, "EUR")])
    valid = validation.post_entry(request)
    assert valid == entry("e1", ("alice", -100), ("bob", 100), ("carol", -10**12, "EUR"), ("dave", 10**12, "EUR"),
                          memo="m" * 200)


@pytest.mark.parametrize(("request_fields", "field"), [
    ({"account_id": "", "owner": "A", "currency_code": "USD"}, "account_id"),
    ({"account_id": "a!", "owner": "A", "currency_code": "USD"}, "account_id"),
    ({"account_id": "cash-USD", "owner": "A", "currency_code": "USD"}, "account_id"),
    ({"account_id": "cash-x", "owner": "A", "currency_code": "USD"}, "account_id"),
    ({"account_id": "alice", "owner": "", "currency_code": "USD"}, "owner"),
    ({"account_id": "alice", "owner": "o" * 101, "currency_code": "USD"}, "owner"),
    ({"account_id": "alice", "owner": "A", "currency_code": ""}, "currency_code"),
    ({"account_id": "alice", "owner": "A", "currency_code": "US"}, "currency_code"),
])
def test_open_account_validation_names_the_field(request_fields, field):
    with pytest.raises(InvalidArgument) as error:
        validation.open_account(ledger_pb2.OpenAccountRequest(**request_fields))
    assert error.value.field == field


def test_page_size_and_account_id():
    assert validation.page_size(0) == contract.DEFAULT_PAGE_SIZE
    assert validation.page_size(100) == 100
    with pytest.raises(InvalidArgument) as error:
        validation.page_size(101)
    assert error.value.field == "page_size"
    with pytest.raises(InvalidArgument) as error:
        validation.account_id("")
    assert error.value.field == "account_id"
    assert validation.open_account(ledger_pb2.OpenAccountRequest(
        account_id="alice", owner="o" * 100, currency_code="USD")) == ("alice", "o" * 100, "USD")


# ----------------------------------------------------------------------------- accounts


async def test_opening_an_account_opens_the_cash_account_of_its_currency(ledger):
    opened = await ledger.open_account(validation.OpenAccount("alice", "Alice", "USD"))
    assert (opened.record.kind, opened.record.owner, opened.balance_minor, opened.entry_count) == (CUSTOMER, "Alice", 0, 0)
    cash = ledger.account("cash-USD")
    assert (cash.record.kind, cash.record.owner, cash.record.currency_code) == (BANK_CASH, "bank", "USD")
    assert await ledger.open_account(validation.OpenAccount("alice", "Alice", "USD")) == opened  # reopening
    with pytest.raises(AlreadyExists):
        await ledger.open_account(validation.OpenAccount("alice", "Alicia", "USD"))
    with pytest.raises(AlreadyExists):
        await ledger.open_account(validation.OpenAccount("alice", "Alice", "EUR"))
    with pytest.raises(NotFound):
        ledger.account("cash-EUR")
    await ledger.open_account(validation.OpenAccount("bob", "Bob", "EUR"))
    assert ledger.account("cash-EUR").record.currency_code == "EUR"
    with pytest.raises(NotFound):
        ledger.account("carol")


async def test_concurrent_openings_of_a_new_currency_open_one_cash_account(ledger, tmp_path):
    await asyncio.gather(*(ledger.open_account(validation.OpenAccount(f"a{i}", "o", "JPY")) for i in range(20)),
                         *(ledger.open_account(validation.OpenAccount("same", "o", "JPY")) for _ in range(5)))
    result = await ledger.reconcile()
    assert result.balanced and result.account_count == 22
    db = sqlite3.connect(tmp_path / FILE_NAME)
    try:
        assert db.execute("SELECT COUNT(*) FROM accounts WHERE kind = 2").fetchone()[0] == 1
    finally:
        db.close()


# ----------------------------------------------------------------------------- entries


async def test_deposits_and_transfers_move_balances_in_sequence(ledger):
    await open_accounts(ledger, "alice", "bob")
    first = await deposit(ledger, "alice", 1_000, "d1")
    assert first.sequence == 1 and first.posted_at_unix_ms > 0
    second = await ledger.post(entry("t1", ("alice", -300), ("bob", 300), memo="rent"))
    assert (second.sequence, second.memo) == (2, "rent")
    assert (balance(ledger, "alice"), balance(ledger, "bob"), balance(ledger, "cash-USD")) == (700, 300, -1_000)
    assert ledger.account("alice").entry_count == 2 and ledger.account("cash-USD").entry_count == 1
    assert ledger.sequence == 2 and sample("casemesh_banking_ledger_sequence") == 2


async def test_insufficient_funds_refuses_and_changes_nothing(ledger):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 500, "d1")
    refused = sample("casemesh_banking_ledger_insufficient_funds_total")
    with pytest.raises(FailedPrecondition) as error:
        await ledger.post(entry("t1", ("alice", -501), ("bob", 501)))
    assert contract.failed_precondition_reason(str(error.value)) == contract.INSUFFICIENT_FUNDS
    assert "account alice has 500 USD" in str(error.value)
    assert sample("casemesh_banking_ledger_insufficient_funds_total") == refused + 1
    assert (balance(ledger, "alice"), balance(ledger, "bob"), ledger.sequence) == (500, 0, 1)
    # The refused ID was not used: it may post something that fits.
    assert (await ledger.post(entry("t1", ("alice", -500), ("bob", 500)))).sequence == 2
    assert balance(ledger, "alice") == 0


async def test_the_cash_account_may_go_negative_and_customers_may_hold_a_credit_from_it(ledger):
    await open_accounts(ledger, "alice")
    await deposit(ledger, "alice", 10**12, "d1")
    await deposit(ledger, "alice", 10**12, "d2")
    assert balance(ledger, "cash-USD") == -2 * 10**12
    await ledger.post(entry("w1", ("alice", -5), ("cash-USD", 5)))  # a withdrawal
    assert (balance(ledger, "alice"), balance(ledger, "cash-USD")) == (2 * 10**12 - 5, -2 * 10**12 + 5)
    assert (await ledger.reconcile()).balanced


async def test_unknown_accounts_and_currencies_not_the_accounts(ledger):
    await open_accounts(ledger, "alice")
    await open_accounts(ledger, "eve", currency="EUR")
    with pytest.raises(NotFound, match="ghost"):
        await ledger.post(entry("x1", ("cash-USD", -5), ("ghost", 5)))
    with pytest.raises(InvalidArgument) as error:
        await ledger.post(entry("x2", ("cash-USD", -5), ("eve", 5)))  # balanced in USD, but eve holds EUR
    assert error.value.field == "entry.postings[1].amount"
    with pytest.raises(NotFound):
        await ledger.post(entry("x3", ("cash-GBP", -5, "GBP"), ("alice", 5, "GBP")))
    assert ledger.sequence == 0


async def test_a_retry_returns_the_stored_entry_and_other_postings_are_refused(ledger):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 1_000, "d1")
    posted = await ledger.post(entry("t1", ("alice", -600), ("bob", 600), memo="m"))
    replays = sample("casemesh_banking_ledger_idempotent_replays_total")
    # Same postings (in any order), same memo: the stored entry, even though alice could not pay it twice.
    assert await ledger.post(entry("t1", ("alice", -600), ("bob", 600), memo="m")) == posted
    assert await ledger.post(entry("t1", ("bob", 600), ("alice", -600), memo="m")) == posted
    assert sample("casemesh_banking_ledger_idempotent_replays_total") == replays + 2
    for other in (entry("t1", ("alice", -500), ("bob", 500), memo="m"), entry("t1", ("alice", -600), ("bob", 600)),
                  entry("t1", ("cash-USD", -1), ("bob", 1), memo="m")):
        with pytest.raises(FailedPrecondition) as error:
            await ledger.post(other)
        assert contract.failed_precondition_reason(str(error.value)) == contract.ENTRY_ID_CONFLICT
    assert (balance(ledger, "alice"), balance(ledger, "bob"), ledger.sequence) == (400, 600, 2)


async def test_a_retry_is_found_in_the_file_when_not_in_memory(tmp_path):
    ledger = await make(tmp_path, recent_entries=0)
    try:
        await open_accounts(ledger, "alice", "bob")
        posted = await deposit(ledger, "alice", 1_000, "d1")
        assert await deposit(ledger, "alice", 1_000, "d1") == posted  # found by the commit's unique index
        with pytest.raises(FailedPrecondition, match="entry_id_conflict"):
            await deposit(ledger, "alice", 1_001, "d1")
        moved = await ledger.post(entry("t1", ("alice", -600), ("bob", 600)))
        # alice cannot pay it again, but it was posted: the refusal gives way to the stored entry.
        assert await ledger.post(entry("t1", ("alice", -600), ("bob", 600))) == moved
        with pytest.raises(FailedPrecondition, match="entry_id_conflict"):
            await ledger.post(entry("t1", ("alice", -900), ("bob", 900)))
        with pytest.raises(FailedPrecondition, match="entry_id_conflict"):
            await ledger.post(entry("t1", ("alice", -600), ("ghost", 600)))  # not NOT_FOUND: the ID was used
        assert (balance(ledger, "alice"), ledger.sequence) == (400, 2)
    finally:
        await ledger.close()
    reopened = await make(tmp_path)
    try:
        assert await deposit(reopened, "alice", 1_000, "d1") == posted
        assert reopened.sequence == 2 and balance(reopened, "alice") == 400
    finally:
        await reopened.close()


async def test_concurrent_retries_of_one_entry_post_it_once(ledger):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 1_000, "d1")
    results = await asyncio.gather(*(ledger.post(entry("t1", ("alice", -700), ("bob", 700))) for _ in range(10)))
    assert len({r.sequence for r in results}) == 1
    assert (balance(ledger, "alice"), ledger.sequence) == (300, 2)


async def test_a_new_ledger_on_the_same_file_derives_the_balances_and_continues_the_sequence(tmp_path):
    ledger = await make(tmp_path)
    try:
        await open_accounts(ledger, "alice", "bob")
        await open_accounts(ledger, "eve", currency="EUR")
        await deposit(ledger, "alice", 1_000, "d1")
        await deposit(ledger, "eve", 50, "d2", currency="EUR")
        await ledger.post(entry("t1", ("alice", -250), ("bob", 250)))
        before = {a: ledger.account(a) for a in ("alice", "bob", "cash-USD", "eve", "cash-EUR")}
    finally:
        await ledger.close()
    reopened = await make(tmp_path)
    try:
        assert {a: reopened.account(a) for a in before} == before
        assert reopened.sequence == 3 and sample("casemesh_banking_ledger_accounts") == 5
        assert (await reopened.post(entry("t2", ("bob", -50), ("alice", 50)))).sequence == 4
        assert (await reopened.reconcile()).balanced
    finally:
        await reopened.close()


async def test_a_failed_commit_answers_unavailable_and_applies_nothing(ledger, monkeypatch):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 1_000, "d1")

    def broken_disk(writes):
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(ledger.store, "_commit", broken_disk)
        with pytest.raises(StoreUnavailable):
            await ledger.post(entry("t1", ("alice", -100), ("bob", 100)))
        with pytest.raises(StoreUnavailable):
            await ledger.open_account(validation.OpenAccount("carol", "Carol", "USD"))

        def a_bug(writes):
            raise RuntimeError("a bug in a write")

        patch.setattr(ledger.store, "_commit", a_bug)  # not a disk error: the writer still gets an answer
        with pytest.raises(RuntimeError):
            await ledger.post(entry("t1", ("alice", -100), ("bob", 100)))
    assert (balance(ledger, "alice"), balance(ledger, "bob"), ledger.sequence) == (1_000, 0, 1)
    with pytest.raises(NotFound):
        ledger.account("carol")
    # Nothing was posted: the retry posts it, as the next sequence (no gap).
    assert (await ledger.post(entry("t1", ("alice", -100), ("bob", 100)))).sequence == 2
    assert (await ledger.reconcile()).balanced


async def test_writes_queued_together_share_one_commit_and_a_bad_one_fails_alone(tmp_path):
    store = LedgerStore(tmp_path / FILE_NAME)
    try:
        await store.open_accounts([AccountRecord("cash-USD", BANK_CASH, "bank", "USD", 1),
                                   AccountRecord("alice", CUSTOMER, "A", "USD", 1)])
        commits = sample("casemesh_banking_ledger_entries_per_commit_count")
        written = sample("casemesh_banking_ledger_entries_per_commit_sum")
        good = [store.append(entry(f"e{i}", ("cash-USD", -1), ("alice", 1))) for i in range(8)]
        bad = store.append(entry("bad", ("cash-USD", -1), ("nobody", 1)))  # no such account: the schema refuses it
        results = await asyncio.gather(*good[:4], bad, *good[4:], return_exceptions=True)
        assert isinstance(results[4], StoreUnavailable)
        sequences = [r[0].sequence for r in results if not isinstance(r, BaseException)]
        assert all(r[1] for r in results if not isinstance(r, BaseException))
        assert sequences == list(range(1, 9))  # commit order, no gap where the bad one failed
        assert sample("casemesh_banking_ledger_entries_per_commit_sum") == written + 9
        assert sample("casemesh_banking_ledger_entries_per_commit_count") == commits + 1  # one group commit
        first = results[0][0]
        assert await store.append(entry("e0", ("cash-USD", -1), ("alice", 1))) == (first, False)  # nothing written
        assert await store.append(entry("e0", ("cash-USD", -2), ("alice", 2))) == (first, False)
        assert (await reconcile(store)).balanced
    finally:
        await store.close()
    with pytest.raises(StoreUnavailable):
        await store.append(entry("late", ("cash-USD", -1), ("alice", 1)))


# ----------------------------------------------------------------------------- statements


async def test_list_entries_pages_newest_first_with_all_postings(ledger):
    await open_accounts(ledger, "alice", "bob", "carol")
    await deposit(ledger, "alice", 10_000, "d1")
    for i in range(24):
        await ledger.post(entry(f"t{i}", ("alice", -10), ("bob" if i % 2 else "carol", 10)))
    await deposit(ledger, "bob", 1, "d2")  # not alice's
    pages, token = [], ""
    while True:
        page = await ledger.statement("alice", 10, token)
        pages.append([e.entry_id for e in page.entries])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [e for page in pages for e in page] == [f"t{i}" for i in reversed(range(24))] + ["d1"]
    first = (await ledger.statement("alice", 1, "")).entries[0]
    assert first.postings == (Posting("alice", "USD", -10), Posting("bob", "USD", 10))
    assert (await ledger.statement("bob", 100, "")).entries[0].entry_id == "d2"
    assert (await ledger.statement("cash-USD", 100, "")).next_page_token == ""
    with pytest.raises(InvalidArgument) as error:
        await ledger.statement("alice", 10, "not-a-token")
    assert error.value.field == "page_token"
    bobs = (await ledger.statement("bob", 1, "")).next_page_token
    with pytest.raises(InvalidArgument):
        await ledger.statement("alice", 10, bobs)  # another account's statement
    with pytest.raises(NotFound):
        await ledger.statement("nobody", 10, "")
    await open_accounts(ledger, "dave")
    assert (await ledger.statement("dave", 10, "")).entries == []


# ----------------------------------------------------------------------------- reconciliation


async def test_reconcile_a_clean_ledger(ledger):
    empty = await ledger.reconcile()
    assert (empty.balanced, empty.account_count, empty.entry_count, empty.sequence) == (True, 0, 0, 0)
    await open_accounts(ledger, "alice", "bob")
    await open_accounts(ledger, "eve", currency="EUR")
    await deposit(ledger, "alice", 700, "d1")
    await deposit(ledger, "eve", 70, "d2", currency="EUR")
    await ledger.post(entry("t1", ("alice", -200), ("bob", 200)))
    result = await ledger.reconcile()
    assert (result.balanced, result.account_count, result.entry_count, result.sequence) == (True, 5, 3, 3)
    assert result.total_minor_by_currency == {"USD": 0, "EUR": 0} and result.discrepancies == ()


async def test_reconcile_reports_rows_corrupted_behind_the_ledgers_back(ledger, tmp_path):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 1_000, "d1")
    await ledger.post(entry("t1", ("alice", -300), ("bob", 300)))
    runs = sample("casemesh_banking_ledger_reconcile_runs_total", outcome="discrepancies")
    db = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    try:
        db.execute("INSERT INTO postings (sequence, account_id, amount_minor) VALUES (1, 'bob', 5)")
        db.execute("INSERT INTO postings (sequence, account_id, amount_minor) VALUES (2, 'ghost', 7)")
        db.execute("INSERT INTO entries VALUES (3, 'lonely', '', 1)")  # not yet applied: beyond the sequence checked
        result = await ledger.reconcile()
        assert not result.balanced and result.sequence == 2 and result.entry_count == 2
        text = "\n".join(result.discrepancies)
        assert "entry 1 (d1): its USD postings sum to 5, not 0" in text
        assert "entry 2: a posting to ghost whose entry or account is not stored" in text
        assert "account bob: balance 300 USD but its postings sum to 305" in text
        assert "account bob: 1 entries counted but 2 postings stored" in text
        assert "account ghost: has stored postings but is not held by the ledger" in text
        assert sample("casemesh_banking_ledger_reconcile_runs_total", outcome="discrepancies") == runs + 1
        # The bare store, checked against itself: the entry that does not balance, its currency, the entry of one
        # posting; bob's balance is then its postings' sum.
        alone = await reconcile(ledger.store)
        text = "\n".join(alone.discrepancies)
        assert "entry 1 (d1): its USD postings sum to 5, not 0" in text and "currency USD: balances sum to 5" in text
        assert "entry 3 (lonely): 0 postings, fewer than 2" in text
        db.execute("DELETE FROM postings WHERE (sequence, account_id) IN (VALUES (1, 'bob'), (2, 'ghost'))")
        db.execute("DELETE FROM entries WHERE sequence = 3")
        db.execute("UPDATE postings SET amount_minor = -900 WHERE sequence = 2 AND account_id = 'alice'")
        text = "\n".join((await ledger.reconcile()).discrepancies)
        assert "entry 2 (t1): its USD postings sum to -600, not 0" in text
        assert "account alice: balance 700 USD but its postings sum to 100" in text
        assert "account bob" not in text
    finally:
        db.close()


# ----------------------------------------------------------------------------- isolation under concurrency


async def _hammer(ledger: Ledger, seed: int) -> None:
    """Many concurrent transfers among a few funded accounts (one of them hot), deposits and reconciliations; then
    no customer account is below zero, the ledger reconciles, and every balance is what the entries that succeeded
    say."""
    accounts = ["a0", "a1", "a2", "a3", "hot"]
    await open_accounts(ledger, *accounts)
    for account in accounts:
        await deposit(ledger, account, 1_000, f"seed-{account}")
    rng = random.Random(seed)
    calls = []
    for i in range(300):
        source = "hot" if i % 3 == 0 else rng.choice(accounts)
        target = rng.choice([a for a in accounts if a != source])
        amount = rng.randint(50, 400)
        calls.append(entry(f"t{i}", (source, -amount), (target, amount)))
    deposits = [entry(f"d{i}", ("cash-USD", -25), (rng.choice(accounts), 25)) for i in range(30)]

    async def attempt(new: NewEntry):
        try:
            return await ledger.post(new)
        except FailedPrecondition:
            return None

    async def reconciler() -> list[bool]:
        return [(await ledger.reconcile()).balanced for _ in range(5)]

    *posted, checks = await asyncio.gather(*(attempt(c) for c in calls + deposits), reconciler())
    assert all(checks)
    expected = dict.fromkeys(accounts, 1_000)
    succeeded = [p for p in posted if p is not None]
    for record in succeeded:
        for posting in record.postings:
            if posting.account_id in expected:
                expected[posting.account_id] += posting.amount_minor
    assert {a: balance(ledger, a) for a in accounts} == expected
    assert all(b >= 0 for b in expected.values())
    assert sum(expected.values()) == 5_000 + 25 * 30  # deposits never fail
    result = await ledger.reconcile()
    assert result.balanced and result.entry_count == 5 + len(succeeded)
    assert sorted(p.sequence for p in succeeded) == list(range(6, 6 + len(succeeded)))


@pytest.mark.parametrize("mode", ["account", "global"])
async def test_concurrent_debits_never_overdraw_and_the_ledger_reconciles(tmp_path, mode):
    ledger = await make(tmp_path, locking=mode)
    try:
        await _hammer(ledger, seed=14)
    finally:
        await ledger.close()


class _Gate:
    """Holds each ``store.append`` until ``count`` are waiting (or ``fallback_s`` passed: the modes that serialise
    never get there), so two entries surely check their balances before either is applied."""

    def __init__(self, store: LedgerStore, count: int, fallback_s: float = 0.5) -> None:
        self._append = store.append
        self._count = count
        self._fallback_s = fallback_s
        self._waiting = 0
        self._open = asyncio.Event()
        store.append = self  # type: ignore[method-assign]

    async def __call__(self, new: NewEntry):
        self._waiting += 1
        if self._waiting >= self._count:
            self._open.set()
        try:
            await asyncio.wait_for(self._open.wait(), self._fallback_s)
        except TimeoutError:
            pass
        return await self._append(new)


@pytest.mark.parametrize(("mode", "overdrawn"), [("none", True), ("account", False), ("global", False)])
async def test_two_concurrent_debits_that_fit_alone_overdraw_only_without_locks(tmp_path, mode, overdrawn):
    ledger = await make(tmp_path, locking=mode)
    try:
        await open_accounts(ledger, "alice", "bob", "carol")
        await deposit(ledger, "alice", 1_000, "d1")
        _Gate(ledger.store, count=2, fallback_s=30 if overdrawn else 0.5)  # with locks the second never gets there
        results = await asyncio.gather(ledger.post(entry("t1", ("alice", -600), ("bob", 600))),
                                       ledger.post(entry("t2", ("alice", -600), ("carol", 600))),
                                       return_exceptions=True)
        result = await ledger.reconcile()
        if overdrawn:  # the lost update: both checks saw 1,000
            assert not any(isinstance(r, BaseException) for r in results)
            assert balance(ledger, "alice") == -200
            assert not result.balanced
            assert result.discrepancies == ("account alice: customer balance -200 USD is below zero",)
        else:
            assert sorted(type(r).__name__ for r in results) == ["EntryRecord", "InsufficientFunds"]
            assert balance(ledger, "alice") == 400 and result.balanced
    finally:
        await ledger.close()


async def test_a_caller_cancelled_mid_commit_still_applies_what_was_committed(ledger):
    await open_accounts(ledger, "alice", "bob")
    await deposit(ledger, "alice", 1_000, "d1")
    gate = _Gate(ledger.store, count=2, fallback_s=30)
    call = asyncio.ensure_future(ledger.post(entry("t1", ("alice", -100), ("bob", 100))))
    while not gate._waiting:
        await asyncio.sleep(0)
    call.cancel()
    gate._open.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    retried = await ledger.post(entry("t1", ("alice", -100), ("bob", 100)))  # waits for the original, then finds it
    assert retried.sequence == 2 and balance(ledger, "alice") == 900
    assert (await ledger.reconcile()).balanced
