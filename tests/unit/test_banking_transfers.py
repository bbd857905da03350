"""banking-transfers (services/banking/transfers): validation per field, idempotency keys (replay, conflict,
concurrency, a crash between the posting and the answer, the ledger down), the background recovery, each fraud rule,
currencies, the store's invariants, and a hypothesis property over random schedules of retries, ledger failures, lost
answers and restarts: one journal entry per key, every answered transfer in the ledger as answered, the ledger
balanced.

A plain fake (:class:`FakeLedger`) stands in for the ledger's client at the domain's :class:`Ledger` interface, with
the ledger's contract: an entry id posted twice with the same postings returns the first entry, a customer account
never goes below zero (FAILED_PRECONDITION ``insufficient_funds``). gRPC, the real ledger client and the service's
status codes are in tests/unit/test_banking_transfers_grpc.py.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.banking.v1 import banking_pb2, transfers_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.banking import contract
from casemesh.services.banking.transfers import ids, validation
from casemesh.services.banking.transfers.fraud import DAY_MS
from casemesh.services.banking.transfers.ledger import (
    InsufficientFunds,
    LedgerUnavailable,
    Unavailable,
    journal_entry,
)
from casemesh.services.banking.transfers.recovery import Recovery
from casemesh.services.banking.transfers.settings import TransferSettings
from casemesh.services.banking.transfers.store import (
    COMPLETED,
    DECLINED,
    PENDING,
    TRANSFER,
    StoreUnavailable,
    TransferStore,
)
from casemesh.services.banking.transfers.transfers import Transfers, request_hash
from casemesh.services.runtime.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)

USD = "USD"
TS = transfers_pb2
#: Grace 0: a PENDING row is the recovery's at once (the tests say when it runs).
FAST = {"recovery_grace_s": 0}


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# ----------------------------------------------------------------------------- the fake ledger


class FakeLedger:
    """The ledger's contract in memory, at the domain's :class:`Ledger` interface. ``down``: every call fails
    :class:`LedgerUnavailable` before doing anything, ``posts_down``: every PostEntry does; ``lose_answers``: a
    PostEntry is posted, then its answer is lost (:class:`LedgerUnavailable`); ``gate`` (an event): calls wait for
    it."""

    def __init__(self) -> None:
        self.accounts: dict[str, banking_pb2.Account] = {}
        self.balances: dict[str, int] = {}
        self.entries: dict[str, banking_pb2.JournalEntry] = {}
        self.down = False
        self.posts_down = False
        self.lose_answers = False
        self.gate: asyncio.Event | None = None
        self.posts = 0

    async def _enter(self) -> None:
        await asyncio.sleep(0)
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise LedgerUnavailable("banking-ledger did not answer (UNAVAILABLE: fake down)")

    def _account(self, account_id: str) -> banking_pb2.Account:
        account = banking_pb2.Account()
        account.CopyFrom(self.accounts[account_id])
        account.balance.CopyFrom(money_pb2.Money(currency_code=account.currency_code,
                                                 amount_minor=self.balances[account_id]))
        return account

    def _open(self, account_id: str, kind: int, owner: str, currency_code: str) -> None:
        self.accounts[account_id] = banking_pb2.Account(account_id=account_id, kind=kind, owner=owner,
                                                        currency_code=currency_code, opened_at_unix_ms=1)
        self.balances[account_id] = 0

    async def open_account(self, account_id: str, owner: str, currency_code: str) -> banking_pb2.Account:
        await self._enter()
        found = self.accounts.get(account_id)
        if found is not None:
            if (found.owner, found.currency_code) != (owner, currency_code):
                raise AlreadyExists(f"account_id: {account_id} is taken")
            return self._account(account_id)
        cash = contract.cash_account_id(currency_code)
        if cash not in self.accounts:
            self._open(cash, banking_pb2.ACCOUNT_KIND_BANK_CASH, contract.BANK_OWNER, currency_code)
        self._open(account_id, banking_pb2.ACCOUNT_KIND_CUSTOMER, owner, currency_code)
        return self._account(account_id)

    async def get_account(self, account_id: str) -> banking_pb2.Account:
        await self._enter()
        if account_id not in self.accounts:
            raise NotFound(f"account_id: no account {account_id}")
        return self._account(account_id)

    async def post_entry(self, entry_id, postings, currency_code, memo) -> banking_pb2.JournalEntry:
        await self._enter()
        if self.posts_down:
            raise LedgerUnavailable("banking-ledger did not answer (UNAVAILABLE: posts down)")
        self.posts += 1
        entry = journal_entry(entry_id, postings, currency_code, memo)
        existing = self.entries.get(entry_id)
        if existing is not None:
            if list(existing.postings) != list(entry.postings) or existing.memo != memo:
                raise FailedPrecondition(f"{contract.ENTRY_ID_CONFLICT}: {entry_id} was posted with other postings")
        else:
            for account_id, amount in postings:
                if account_id not in self.accounts:
                    raise NotFound(f"entry.postings: no account {account_id}")
                account = self.accounts[account_id]
                if account.currency_code != currency_code:
                    raise InvalidArgument("entry.postings[0].amount", "not the account's currency")
                if account.kind == banking_pb2.ACCOUNT_KIND_CUSTOMER and self.balances[account_id] + amount < 0:
                    raise InsufficientFunds(f"{contract.INSUFFICIENT_FUNDS}: {account_id} holds "
                                            f"{self.balances[account_id]}")
            for account_id, amount in postings:
                self.balances[account_id] += amount
            entry.sequence = len(self.entries) + 1
            entry.posted_at_unix_ms = 1_000 + entry.sequence
            self.entries[entry_id] = existing = entry
        if self.lose_answers:
            raise LedgerUnavailable("banking-ledger did not answer (DEADLINE_EXCEEDED: answer lost)")
        return existing

    def total(self) -> int:
        """The sum of every balance: 0 while the ledger is balanced."""
        return sum(self.balances.values())


class Clock:
    """A clock the test moves: seconds since the Unix epoch."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Env:
    """The fake ledger and the domain over a store in ``folder``; :meth:`restart` reopens the domain over the same
    folder (a crash of banking-transfers, the ledger living on)."""

    def __init__(self, folder: Path, **settings) -> None:
        self.folder = folder
        self.settings = TransferSettings(**{**FAST, **settings})
        self.ledger = FakeLedger()
        self.clock = Clock()
        self.transfers = self._open()
        self.recovery = Recovery(self.transfers)

    def _open(self) -> Transfers:
        return Transfers(self.settings, TransferStore(self.folder / "transfers.sqlite3"), self.ledger,
                         id_key=b"k" * 32, clock=self.clock)

    async def restart(self) -> Transfers:
        await self.transfers.close()
        self.transfers = self._open()
        self.recovery = Recovery(self.transfers)
        await self.transfers.start()
        return self.transfers

    async def open(self, account_id: str, amount_minor: int = 0, currency: str = USD) -> banking_pb2.Account:
        return (await self.transfers.open_account(open_request(account_id, amount_minor, currency))).account

    async def transfer(self, **fields) -> transfers_pb2.Transfer:
        return (await self.transfers.transfer(transfer_request(**fields))).transfer

    def balance(self, account_id: str) -> int:
        return self.ledger.balances[account_id]


def open_request(account_id: str, amount_minor: int = 0, currency: str = USD, owner: str = "Ada"):
    return TS.TransferServiceOpenAccountRequest(account_id=account_id, owner=owner, initial_deposit=money_pb2.Money(
        currency_code=currency, amount_minor=amount_minor))


def deposit_request(key: str = "d1", account_id: str = "alice", amount: int = 100, currency: str = USD):
    return TS.DepositRequest(idempotency_key=key, account_id=account_id,
                             amount=money_pb2.Money(currency_code=currency, amount_minor=amount))


def transfer_request(key: str = "k1", frm: str = "alice", to: str = "bob", amount: int = 100, currency: str = USD,
                     memo: str = "rent"):
    return TS.TransferRequest(idempotency_key=key, from_account_id=frm, to_account_id=to, memo=memo,
                              amount=money_pb2.Money(currency_code=currency, amount_minor=amount))


@pytest.fixture
async def env(tmp_path):
    environment = Env(tmp_path)
    await environment.transfers.start()
    try:
        yield environment
    finally:
        await environment.transfers.close()


@pytest.fixture
async def funded(env):
    """alice holds 10,000, bob 0 (USD)."""
    await env.open("alice", 10_000)
    await env.open("bob")
    return env


# ----------------------------------------------------------------------------- settings, ids, validation


def test_settings_defaults_and_refusals():
    s = TransferSettings()
    assert (s.fraud_rules, s.daily_limit_minor, s.velocity_max_transfers, s.velocity_window_s,
            s.new_payee_threshold_minor, s.ledger_timeout_s) == (True, 1_000_000, 10, 60.0, 500_000, 1.0)
    with pytest.raises(ValidationError):
        TransferSettings(unknown=1)
    with pytest.raises(ValidationError):
        TransferSettings(recovery_interval_s=10, recovery_max_backoff_s=5)
    with pytest.raises(ValidationError):
        TransferSettings(daily_limit_minor=0)


def test_ids_are_keyed_and_deterministic():
    key = b"k" * 32
    first = ids.transfer_id(key, "alice", "k1")
    assert contract.is_transfer_id(first)
    assert first == ids.transfer_id(key, "alice", "k1")
    assert len({first, ids.transfer_id(key, "bob", "k1"), ids.transfer_id(key, "alice", "k2"),
                ids.transfer_id(b"j" * 32, "alice", "k1")}) == 4
    deposit = ids.deposit_id(key, "alice", "k1")
    assert deposit.startswith("dep_") and len(deposit) == 28 and contract.is_entry_id(deposit)
    assert deposit[4:] != first[3:]


def test_request_hash_leaves_the_key_out():
    assert request_hash(transfer_request(key="a")) == request_hash(transfer_request(key="b"))
    assert request_hash(transfer_request()) != request_hash(transfer_request(amount=101))
    assert request_hash(transfer_request()) != request_hash(transfer_request(memo="other"))


@pytest.mark.parametrize(("changes", "field"), [
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"idempotency_key": "a\nb"}, "idempotency_key"),
    ({"idempotency_key": "x" * 256}, "idempotency_key"),
    ({"idempotency_key": "é"}, "idempotency_key"),
    ({"from_account_id": ""}, "from_account_id"),
    ({"from_account_id": "bad id"}, "from_account_id"),
    ({"from_account_id": "a" * 65}, "from_account_id"),
    ({"from_account_id": "cash-USD"}, "from_account_id"),
    ({"to_account_id": ""}, "to_account_id"),
    ({"to_account_id": "b/c"}, "to_account_id"),
    ({"to_account_id": "alice"}, "to_account_id"),
    ({"to_account_id": "cash-USD"}, "to_account_id"),
    ({"amount": None}, "amount"),
    ({"amount": money_pb2.Money(currency_code="usd", amount_minor=5)}, "amount"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=0)}, "amount"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=-5)}, "amount"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=10**12 + 1)}, "amount"),
    ({"memo": "m" * 201}, "memo"),
])
def test_transfer_validation_names_the_field(changes, field):
    request = transfer_request()
    for name, value in changes.items():
        if value is None:
            request.ClearField(name)
        elif isinstance(value, money_pb2.Money):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    with pytest.raises(InvalidArgument) as error:
        validation.transfer(request)
    assert error.value.field == field


def test_transfer_validation_accepts_the_limits():
    v = validation.transfer(transfer_request(key="k" * 255, frm="a" * 64, amount=10**12, memo="m" * 200))
    assert (v.from_account_id, v.amount_minor, len(v.memo)) == ("a" * 64, 10**12, 200)
    assert validation.transfer(transfer_request(key=" ~", memo="")).idempotency_key == " ~"


@pytest.mark.parametrize(("request_", "field"), [
    (deposit_request(key=""), "idempotency_key"),
    (deposit_request(account_id=""), "account_id"),
    (deposit_request(account_id="cash-USD"), "account_id"),
    (deposit_request(amount=0), "amount"),
    (deposit_request(amount=10**12 + 1), "amount"),
    (deposit_request(currency="US"), "amount"),
    (TS.DepositRequest(idempotency_key="d", account_id="alice"), "amount"),
])
def test_deposit_validation_names_the_field(request_, field):
    with pytest.raises(InvalidArgument) as error:
        validation.deposit(request_)
    assert error.value.field == field


@pytest.mark.parametrize(("request_", "field"), [
    (open_request(""), "account_id"),
    (open_request("a b"), "account_id"),
    (open_request("cash-EUR"), "account_id"),
    (open_request("alice", owner=""), "owner"),
    (open_request("alice", owner="o" * 101), "owner"),
    (open_request("alice", currency="usd"), "initial_deposit.currency_code"),
    (TS.TransferServiceOpenAccountRequest(account_id="alice", owner="Ada"), "initial_deposit.currency_code"),
    (open_request("alice", -1), "initial_deposit.amount_minor"),
    (open_request("alice", 10**12 + 1), "initial_deposit.amount_minor"),
])
def test_open_account_validation_names_the_field(request_, field):
    with pytest.raises(InvalidArgument) as error:
        validation.open_account(request_)
    assert error.value.field == field


@pytest.mark.parametrize("value", ["", "tr_short", "tr_" + "A" * 24, "dep_" + "a" * 24, "tr_" + "1" * 24])
def test_transfer_id_validation(value):
    with pytest.raises(InvalidArgument) as error:
        validation.transfer_id(value)
    assert error.value.field == "transfer_id"


# ----------------------------------------------------------------------------- OpenAccount and Deposit


async def test_open_account_deposits_once_and_reopening_returns_it(env):
    account = await env.open("alice", 5_000)
    assert account.balance.amount_minor == 5_000 and account.kind == banking_pb2.ACCOUNT_KIND_CUSTOMER
    assert env.balance("cash-USD") == -5_000
    again = await env.open("alice", 5_000)
    assert again.balance.amount_minor == 5_000 and len(env.ledger.entries) == 1
    other = await env.open("alice", 7_000)  # opened before with another initial deposit: returned as it is
    assert other.balance.amount_minor == 5_000 and len(env.ledger.entries) == 1
    with pytest.raises(AlreadyExists):
        await env.open("alice", 5_000, currency="EUR")
    empty = await env.open("carol")
    assert empty.balance.amount_minor == 0 and len(env.ledger.entries) == 1
    # the opening deposit's key is a Deposit key like any other
    response = await env.transfers.deposit(deposit_request(key=contract.open_deposit_key("alice"), amount=5_000))
    assert response.entry.entry_id == ids.deposit_id(b"k" * 32, "alice", "open:alice")
    assert len(env.ledger.entries) == 1


async def test_open_account_with_the_ledger_down_is_unavailable_and_the_retry_deposits(env):
    env.ledger.down = True
    with pytest.raises(Unavailable):
        await env.open("alice", 100)
    env.ledger.down = False
    await env.open("alice", 100)
    assert env.balance("alice") == 100 and env.ledger.total() == 0


async def test_deposit_replays_and_refuses_a_different_request(funded):
    env = funded
    replays = sample("casemesh_banking_transfers_idempotent_replays_total", {"operation": "deposit"})
    first = (await env.transfers.deposit(deposit_request(amount=250))).entry
    assert first.entry_id.startswith("dep_") and first.sequence > 0
    assert [(p.account_id, p.amount.amount_minor) for p in first.postings] == [("cash-USD", -250), ("alice", 250)]
    again = (await env.transfers.deposit(deposit_request(amount=250))).entry
    assert again == first and env.balance("alice") == 10_250
    assert sample("casemesh_banking_transfers_idempotent_replays_total", {"operation": "deposit"}) == replays + 1
    with pytest.raises(FailedPrecondition, match="^idempotency_key: used for a different request"):
        await env.transfers.deposit(deposit_request(amount=251))
    with pytest.raises(NotFound, match="^account_id"):
        await env.transfers.deposit(deposit_request(key="d2", account_id="nobody"))
    with pytest.raises(InvalidArgument) as error:
        await env.transfers.deposit(deposit_request(key="d3", currency="EUR"))
    assert error.value.field == "amount"
    # refused requests leave their keys unused
    await env.transfers.deposit(deposit_request(key="d3", amount=1))
    assert env.balance("alice") == 10_251 and env.ledger.total() == 0


async def test_concurrent_deposits_with_one_key_post_once(funded):
    env = funded
    env.ledger.gate = asyncio.Event()
    calls = [asyncio.create_task(env.transfers.deposit(deposit_request(key="same", amount=10))) for _ in range(5)]
    await asyncio.sleep(0.01)
    env.ledger.gate.set()
    entries = {(await call).entry.SerializeToString() for call in calls}
    assert len(entries) == 1 and env.balance("alice") == 10_010


# ----------------------------------------------------------------------------- Transfer


async def test_transfer_completes_and_the_retry_returns_the_same_transfer(funded):
    env = funded
    completed = sample("casemesh_banking_transfers_transfers_total", {"status": "completed", "decline_reason": "none"})
    transfer = await env.transfer(amount=1_500)
    assert transfer.status == TS.TRANSFER_STATUS_COMPLETED and transfer.entry_sequence > 0
    assert transfer.transfer_id == ids.transfer_id(b"k" * 32, "alice", "k1")
    assert (transfer.from_account_id, transfer.to_account_id, transfer.amount.amount_minor, transfer.memo) == (
        "alice", "bob", 1_500, "rent")
    assert transfer.decided_at_unix_ms > 0 and transfer.decline_reason == TS.DECLINE_REASON_UNSPECIFIED
    assert (env.balance("alice"), env.balance("bob")) == (8_500, 1_500)
    posts = env.ledger.posts
    assert await env.transfer(amount=1_500) == transfer
    assert env.ledger.posts == posts and (env.balance("alice"), env.balance("bob")) == (8_500, 1_500)
    entry = env.ledger.entries[transfer.transfer_id]
    assert entry.sequence == transfer.entry_sequence and entry.memo == "rent"
    got = await env.transfers.get_transfer(TS.GetTransferRequest(transfer_id=transfer.transfer_id))
    assert got.transfer == transfer
    assert sample("casemesh_banking_transfers_transfers_total",
                  {"status": "completed", "decline_reason": "none"}) == completed + 1
    # the same key from another account is another transfer
    await env.open("carol", 100)
    other = await env.transfer(frm="carol", amount=10)
    assert other.transfer_id != transfer.transfer_id and env.balance("bob") == 1_510


async def test_a_different_request_with_the_key_is_refused(funded):
    env = funded
    await env.transfer(amount=100)
    for changes in ({"amount": 101}, {"memo": "other"}, {"to": "carol"}):
        with pytest.raises(FailedPrecondition, match="^idempotency_key: used for a different request"):
            await env.transfer(**changes)
    assert env.balance("bob") == 100


async def test_get_transfer_not_found(funded):
    env = funded
    with pytest.raises(NotFound, match="^transfer_id"):
        await env.transfers.get_transfer(TS.GetTransferRequest(transfer_id="tr_" + "a" * 24))
    with pytest.raises(InvalidArgument):
        await env.transfers.get_transfer(TS.GetTransferRequest(transfer_id="dep_" + "a" * 24))


async def test_accounts_not_found_and_currencies(funded):
    env = funded
    with pytest.raises(NotFound, match="^from_account_id"):
        await env.transfer(frm="nobody")
    with pytest.raises(NotFound, match="^to_account_id"):
        await env.transfer(to="nobody")
    await env.open("eve", 1_000, currency="EUR")
    with pytest.raises(FailedPrecondition, match="EUR"):
        await env.transfer(to="eve")
    with pytest.raises(InvalidArgument) as error:
        await env.transfer(currency="EUR")
    assert error.value.field == "amount"
    # none of them used the key
    assert (await env.transfer()).status == TS.TRANSFER_STATUS_COMPLETED
    assert env.ledger.total() == 0


async def test_insufficient_funds_is_declined_and_the_retry_returns_the_refusal(funded):
    env = funded
    declined = sample("casemesh_banking_transfers_transfers_total",
                      {"status": "declined", "decline_reason": "insufficient_funds"})
    transfer = await env.transfer(amount=10_001)
    assert transfer.status == TS.TRANSFER_STATUS_DECLINED
    assert transfer.decline_reason == TS.DECLINE_REASON_INSUFFICIENT_FUNDS and transfer.entry_sequence == 0
    assert sample("casemesh_banking_transfers_transfers_total",
                  {"status": "declined", "decline_reason": "insufficient_funds"}) == declined + 1
    await env.transfers.deposit(deposit_request(amount=5_000))  # enough now; the key's answer stays
    assert await env.transfer(amount=10_001) == transfer
    assert env.balance("alice") == 15_000 and transfer.transfer_id not in env.ledger.entries
    got = await env.transfers.get_transfer(TS.GetTransferRequest(transfer_id=transfer.transfer_id))
    assert got.transfer == transfer


async def test_concurrent_calls_with_one_key_post_once(funded):
    env = funded
    env.ledger.gate = asyncio.Event()
    calls = [asyncio.create_task(env.transfer(amount=700)) for _ in range(6)]
    await asyncio.sleep(0.01)
    env.ledger.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    answers = [r for r in results if isinstance(r, transfers_pb2.Transfer)]
    assert answers and all(isinstance(r, Aborted) for r in results if not isinstance(r, transfers_pb2.Transfer))
    assert len({a.SerializeToString() for a in answers}) == 1
    assert (env.balance("alice"), env.balance("bob")) == (9_300, 700)
    assert (await env.transfer(amount=700)) == answers[0]


async def test_lost_answer_then_a_crash_the_retry_completes_with_the_one_entry(funded):
    env = funded
    env.ledger.lose_answers = True
    with pytest.raises(Unavailable):
        await env.transfer(amount=2_000)
    transfer_id = ids.transfer_id(b"k" * 32, "alice", "k1")
    assert (await env.transfers.store.get(transfer_id)).state == PENDING
    assert env.balance("bob") == 2_000  # the ledger posted it
    with pytest.raises(NotFound):  # not answered yet
        await env.transfers.get_transfer(TS.GetTransferRequest(transfer_id=transfer_id))
    await env.restart()
    env.ledger.lose_answers = False
    transfer = await env.transfer(amount=2_000)
    assert transfer.status == TS.TRANSFER_STATUS_COMPLETED and transfer.transfer_id == transfer_id
    assert transfer.entry_sequence == env.ledger.entries[transfer_id].sequence
    assert (env.balance("alice"), env.balance("bob")) == (8_000, 2_000) and len(env.ledger.entries) == 2


async def test_the_decision_write_lost_then_a_new_process_finishes_it(funded, monkeypatch):
    env = funded
    store = env.transfers.store
    write = store.write

    async def crash_on_decision(statements):
        if statements[0][0].startswith("UPDATE"):
            raise StoreUnavailable("the process died")
        await write(statements)

    monkeypatch.setattr(store, "write", crash_on_decision)
    with pytest.raises(Unavailable):
        await env.transfer(amount=300)
    assert env.balance("bob") == 300
    await env.restart()
    assert sample("casemesh_banking_transfers_pending") == 1
    assert await env.recovery.sweep()
    transfer = await env.transfer(amount=300)
    assert transfer.status == TS.TRANSFER_STATUS_COMPLETED and env.balance("bob") == 300
    assert sample("casemesh_banking_transfers_pending") == 0


async def test_ledger_down_leaves_it_pending_and_the_recovery_finishes_it(funded):
    env = funded
    recovered = sample("casemesh_banking_transfers_recoveries_total", {"kind": "transfer", "outcome": "completed"})
    env.ledger.posts_down = True
    with pytest.raises(Unavailable):
        await env.transfer(amount=400)
    row = await env.transfers.store.by_key(TRANSFER, "alice", "k1")
    assert row.state == PENDING and sample("casemesh_banking_transfers_pending") == 1
    assert await env.recovery.sweep() is False  # still down: stops at once
    assert (await env.transfers.store.get(row.transfer_id)).state == PENDING
    env.ledger.posts_down = False
    assert await env.recovery.sweep() is True
    done = await env.transfers.store.get(row.transfer_id)
    assert done.state == COMPLETED and env.balance("bob") == 400
    assert sample("casemesh_banking_transfers_recoveries_total",
                  {"kind": "transfer", "outcome": "completed"}) == recovered + 1
    assert sample("casemesh_banking_transfers_pending") == 0
    assert (await env.transfer(amount=400)).entry_sequence == done.entry_sequence  # the retry replays it


async def test_the_recovery_waits_for_the_grace_and_skips_held_keys(tmp_path):
    env = Env(tmp_path, recovery_grace_s=30)
    await env.transfers.start()
    try:
        await env.open("alice", 1_000)
        await env.open("bob")
        env.ledger.posts_down = True
        with pytest.raises(Unavailable):
            await env.transfer(amount=100)
        env.ledger.posts_down = False
        posts = env.ledger.posts
        await env.recovery.sweep()
        assert env.balance("bob") == 0 and env.ledger.posts == posts  # too young
        env.clock.now += 31
        env.ledger.gate = asyncio.Event()
        call = asyncio.create_task(env.transfer(amount=100))  # the customer's retry holds the key
        while not env.transfers.held((TRANSFER, "alice", "k1")):
            await asyncio.sleep(0.001)
        await env.recovery.sweep()
        env.ledger.gate.set()
        assert (await call).status == TS.TRANSFER_STATUS_COMPLETED
        assert env.balance("bob") == 100 and env.ledger.posts == posts + 1
    finally:
        await env.transfers.close()


async def test_the_recovery_declines_on_insufficient_funds_and_runs_in_the_background(funded):
    env = funded
    env.ledger.posts_down = True
    with pytest.raises(Unavailable):
        await env.transfer(amount=9_000)
    env.ledger.posts_down = False
    await env.transfer(key="k2", amount=5_000)  # alice has 5,000 left: the pending one no longer fits
    env.recovery.start()
    row = await env.transfers.store.by_key(TRANSFER, "alice", "k1")
    for _ in range(2_000):
        if (await env.transfers.store.get(row.transfer_id)).state != PENDING:
            break
        await asyncio.sleep(0.005)
    await env.recovery.stop()
    done = await env.transfers.store.get(row.transfer_id)
    assert done.state == DECLINED and done.decline_reason == TS.DECLINE_REASON_INSUFFICIENT_FUNDS
    assert (await env.transfer(amount=9_000)).status == TS.TRANSFER_STATUS_DECLINED


# ----------------------------------------------------------------------------- fraud rules


async def _fraud_env(tmp_path, **settings) -> Env:
    env = Env(tmp_path, **settings)
    await env.transfers.start()
    await env.open("alice", 10_000_000)
    await env.open("bob")
    return env


async def test_daily_limit(tmp_path):
    env = await _fraud_env(tmp_path, daily_limit_minor=1_000)
    try:
        before = sample("casemesh_banking_transfers_fraud_declines_total", {"rule": "daily_limit"})
        assert (await env.transfer(key="a", amount=600)).status == TS.TRANSFER_STATUS_COMPLETED
        assert (await env.transfer(key="b", amount=400)).status == TS.TRANSFER_STATUS_COMPLETED
        declined = await env.transfer(key="c", amount=1)
        assert declined.status == TS.TRANSFER_STATUS_DECLINED
        assert declined.decline_reason == TS.DECLINE_REASON_DAILY_LIMIT
        assert declined.transfer_id not in env.ledger.entries
        assert sample("casemesh_banking_transfers_fraud_declines_total", {"rule": "daily_limit"}) == before + 1
        assert await env.transfer(key="c", amount=1) == declined  # the refusal is the key's answer
        await env.restart()  # the windows are rebuilt from the store
        assert (await env.transfer(key="d", amount=1)).decline_reason == TS.DECLINE_REASON_DAILY_LIMIT
        env.clock.now += DAY_MS / 1000
        assert (await env.transfer(key="e", amount=1_000)).status == TS.TRANSFER_STATUS_COMPLETED
    finally:
        await env.transfers.close()


async def test_velocity(tmp_path):
    env = await _fraud_env(tmp_path, velocity_max_transfers=3, velocity_window_s=60)
    try:
        for n in range(3):
            assert (await env.transfer(key=f"v{n}", amount=1)).status == TS.TRANSFER_STATUS_COMPLETED
            env.clock.now += 1
        assert (await env.transfer(key="v3", amount=1)).decline_reason == TS.DECLINE_REASON_VELOCITY
        env.clock.now += 57.5  # the first left the window, the next two not
        assert (await env.transfer(key="v4", amount=1)).status == TS.TRANSFER_STATUS_COMPLETED
        assert (await env.transfer(key="v5", amount=1)).decline_reason == TS.DECLINE_REASON_VELOCITY
    finally:
        await env.transfers.close()


async def test_new_payee_amount(tmp_path):
    env = await _fraud_env(tmp_path, new_payee_threshold_minor=5_000)
    try:
        await env.open("carol")
        assert (await env.transfer(key="p1", amount=5_000)).decline_reason == TS.DECLINE_REASON_NEW_PAYEE_AMOUNT
        assert (await env.transfer(key="p2", amount=4_999)).status == TS.TRANSFER_STATUS_COMPLETED
        assert (await env.transfer(key="p3", amount=5_000)).status == TS.TRANSFER_STATUS_COMPLETED  # bob is known
        assert (await env.transfer(key="p4", to="carol", amount=9_000)).decline_reason == (
            TS.DECLINE_REASON_NEW_PAYEE_AMOUNT)
    finally:
        await env.transfers.close()


async def test_insufficient_funds_frees_the_daily_limit(tmp_path):
    env = await _fraud_env(tmp_path, daily_limit_minor=100)
    try:
        await env.open("poor", 60)
        assert (await env.transfer(key="y", frm="poor", amount=80)).decline_reason == (
            TS.DECLINE_REASON_INSUFFICIENT_FUNDS)
        assert (await env.transfer(key="z", frm="poor", amount=60)).status == TS.TRANSFER_STATUS_COMPLETED
    finally:
        await env.transfers.close()


async def test_fraud_rules_off(tmp_path):
    env = await _fraud_env(tmp_path, fraud_rules=False, daily_limit_minor=1, velocity_max_transfers=1,
                           new_payee_threshold_minor=1)
    try:
        for n in range(3):
            assert (await env.transfer(key=f"o{n}", amount=600_000)).status == TS.TRANSFER_STATUS_COMPLETED
        assert len(env.transfers.fraud) == 0
    finally:
        await env.transfers.close()


# ----------------------------------------------------------------------------- the store's invariants


async def test_the_schema_refuses_changes_to_decided_rows(funded):
    env = funded
    transfer = await env.transfer(amount=10)
    store = env.transfers.store
    with pytest.raises(StoreUnavailable, match="transfers_decided"):
        await store.write([("UPDATE transfers SET entry_sequence = 99 WHERE transfer_id = ?",
                            (transfer.transfer_id,))])
    with pytest.raises(StoreUnavailable, match="transfers_kept"):
        await store.write([("DELETE FROM transfers WHERE transfer_id = ?", (transfer.transfer_id,))])
    assert (await store.get(transfer.transfer_id)).entry_sequence == transfer.entry_sequence
    db = sqlite3.connect(store.path)
    try:  # a second row for the key is refused by the unique index
        with pytest.raises(sqlite3.IntegrityError, match="idempotency_key"):
            db.execute("INSERT INTO transfers SELECT 'tr_' || substr(transfer_id, 4, 23) || 'z', kind, "
                       "idempotency_key, from_account_id, to_account_id, amount_minor, currency_code, memo, "
                       "request_hash, state, decline_reason, entry_sequence, created_at_unix_ms, "
                       "decided_at_unix_ms FROM transfers WHERE transfer_id = ?", (transfer.transfer_id,))
    finally:
        db.close()


# ----------------------------------------------------------------------------- a property over schedules

KEYS = 4
STEP = st.one_of(
    st.tuples(st.just("call"), st.integers(0, KEYS - 1)),
    st.tuples(st.just("down"), st.booleans()),
    st.tuples(st.just("posts_down"), st.booleans()),
    st.tuples(st.just("lose"), st.booleans()),
    st.tuples(st.just("restart"), st.just(0)),
    st.tuples(st.just("sweep"), st.just(0)),
)
AMOUNTS = (3_000, 4_000, 5_000, 6_000)


async def _schedule(folder: Path, steps) -> None:
    env = Env(folder, fraud_rules=False)
    await env.transfers.start()
    try:
        await env.open("alice", 10_000)
        await env.open("bob")
        answers: dict[int, transfers_pb2.Transfer] = {}

        async def call(n: int) -> None:
            try:
                transfer = await env.transfer(key=f"key{n}", amount=AMOUNTS[n])
            except Unavailable:
                return
            assert answers.setdefault(n, transfer) == transfer
        for action, value in steps:
            if action == "call":
                await call(value)
            elif action == "down":
                env.ledger.down = value
            elif action == "posts_down":
                env.ledger.posts_down = value
            elif action == "lose":
                env.ledger.lose_answers = value
            elif action == "restart":
                await env.restart()
            else:
                await env.recovery.sweep()
        env.ledger.down = env.ledger.posts_down = env.ledger.lose_answers = False
        await env.recovery.sweep()
        for n in range(KEYS):
            await call(n)
        assert env.ledger.total() == 0
        moved = 0
        for n, transfer in answers.items():
            if transfer.status == TS.TRANSFER_STATUS_COMPLETED:
                assert env.ledger.entries[transfer.transfer_id].sequence == transfer.entry_sequence
                moved += AMOUNTS[n]
            else:
                assert transfer.transfer_id not in env.ledger.entries
        assert len(env.ledger.entries) == 1 + sum(t.status == TS.TRANSFER_STATUS_COMPLETED for t in answers.values())
        assert (env.balance("alice"), env.balance("bob")) == (10_000 - moved, moved)
    finally:
        await env.transfers.close()


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=12))
def test_one_entry_per_key_under_any_schedule_of_retries_failures_and_restarts(steps):
    folder = Path(tempfile.mkdtemp(prefix="banking-transfers-"))
    try:
        asyncio.run(_schedule(folder, steps))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
