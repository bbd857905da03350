"""The banking workload without a mesh: the seed plan and seeding through a fake TransferService, the single-posting
checks and the book of what each account should hold, the journeys against a fake bank (retries, double taps, a bank
that posts twice, declines, paychecks, an account takeover against the fraud rules), the end-of-run ledger check
(a balanced ledger, an overdrawn account, a balance the answers do not explain, an earlier run's discrepancies), the
profile and its SLOs, that the workload imports only the contracts, and the driver over real gRPC against the fake."""

from __future__ import annotations

import ast
import asyncio
import base64
import dataclasses
import hashlib
import itertools
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from casemesh.banking.v1 import banking_pb2, ledger_pb2, transfers_pb2
from casemesh.common.v1 import money_pb2
from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.banking import MEASURES, WORKLOAD, connect, disconnect
from casemesh.harness.workloads.banking.invariants import (
    DATA_LOSS,
    OK,
    SINGLE_POSTING,
    Asked,
    Book,
    check_answers,
    check_read_back,
    check_transfer,
    record,
)
from casemesh.harness.workloads.banking.journeys import (
    ALLOWED,
    TAKEOVER_BLOCKED,
    TRANSFER_OUTCOME,
    TRANSFER_TIME,
    BalanceParams,
    BillsParams,
    DepositParams,
    TakeoverParams,
    TransferParams,
    account_takeover,
    check_balance,
    deposit,
    draw_amount,
    pay_bills,
    transfer,
)
from casemesh.harness.workloads.banking.live import LEDGER_BALANCED, Bank
from casemesh.harness.workloads.banking.seeding import SeedParams, State, plan, seed
from casemesh.services.banking.contract import (
    cash_account_id,
    is_cash_account_id,
    is_customer_account_id,
    is_transfer_id,
    open_deposit_key,
)
from casemesh.services.catalog import SERVICES

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "banking"
BANKING_SERVICES = ("banking-ledger", "banking-transfers")
T = transfers_pb2
CASH = cash_account_id("USD")


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_seed_plan_is_deterministic_with_valid_ids_and_lognormal_deposits():
    params = SeedParams(customers=2_000, victims=400, hot_accounts=3, mules=50)
    run, populations = plan(params, random.Random(42))
    assert (run, populations) == plan(params, random.Random(42)) and plan(params, random.Random(43))[0] != run
    customers, victims = populations["customers"], populations["victims"]
    assert [o.account_id for o in customers[:2]] == [f"bk{run}-c0", f"bk{run}-c1"]
    assert [len(populations[p]) for p in ("customers", "hot", "victims", "mules")] == [2_000, 3, 400, 50]
    ids = [o.account_id for p in populations.values() for o in p]
    assert len(set(ids)) == len(ids) and all(is_customer_account_id(i) for i in ids)
    assert all(1 <= len(o.owner) <= 100 for p in populations.values() for o in p)
    deposits = sorted(o.deposit_minor for o in customers)
    assert 250_000 < deposits[1_000] < 350_000 and deposits[0] >= 2_000 and deposits[-1] <= 50_000_000
    savings = sorted(o.deposit_minor for o in victims)
    assert 8_000_000 < savings[200] < 12_000_000 and savings[0] > 2_000_000  # many times the daily limit
    assert all(o.deposit_minor == 0 for p in ("hot", "mules") for o in populations[p])
    with pytest.raises(ValidationError, match="currency code"):
        SeedParams(currency="usd")
    with pytest.raises(ValidationError, match="victim_deposit_median_minor"):
        SeedParams(victim_deposit_median_minor=60_000_000)


async def test_seed_opens_every_account_with_its_deposit_and_retries_an_unavailable_service():
    bank = FakeBank()
    failures = [rpc_error(grpc.StatusCode.UNAVAILABLE, "restarting")]

    async def call(service: str, method: str, request: Any) -> Any:
        assert (service, method) == ("banking-transfers", "OpenAccount")
        if failures:
            raise failures.pop()
        return await bank.handle(method, request)

    params = SeedParams(customers=40, victims=5, hot_accounts=2, mules=8, open_concurrency=4)
    state = await seed(call, params, random.Random(7))
    _, populations = plan(params, random.Random(7))
    assert state.customers == [o.account_id for o in populations["customers"]]
    assert len(state.accounts) == 55 and state.currency == "USD"
    assert {a: bank.balances[a] for a in state.accounts} == state.opening_minor
    assert sum(state.opening_minor.values()) == -bank.balances[CASH] > 0
    assert bank.deposit_keys == {open_deposit_key(o.account_id) for p in populations.values() for o in p
                                 if o.deposit_minor}

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "owner")

    with pytest.raises(grpc.aio.AioRpcError):
        await seed(refused, params, random.Random(7))


# the single-posting checks and the book ---------------------------------------------------------------------------------

ASKED = Asked("a1", "a2", 1_000, "USD")


def _transfer(status: int = T.TRANSFER_STATUS_COMPLETED, reason: int = T.DECLINE_REASON_UNSPECIFIED,
              sequence: int = 7, transfer_id: str = "tr_" + "a" * 24, amount: int = 1_000) -> T.Transfer:
    return T.Transfer(transfer_id=transfer_id, from_account_id="a1", to_account_id="a2",
                      amount=money_pb2.Money(currency_code="USD", amount_minor=amount), status=status,
                      decline_reason=reason, entry_sequence=sequence)


def test_a_consistent_transfer_has_no_problems():
    done = _transfer()
    assert check_transfer(ASKED, done) == [] and check_answers([done, done]) == [] and check_read_back(done, done) == []
    declined = _transfer(T.TRANSFER_STATUS_DECLINED, T.DECLINE_REASON_INSUFFICIENT_FUNDS, 0)
    assert check_transfer(ASKED, declined) == []


def test_a_double_posting_or_a_malformed_decision_is_flagged():
    assert check_answers([_transfer(), _transfer(transfer_id="tr_" + "b" * 24)])[0].startswith(
        "one key answered with 2 transfers")
    assert "2 decisions" in check_answers([_transfer(), _transfer(sequence=8)])[0]
    assert any("without a journal entry" in p for p in check_transfer(ASKED, _transfer(sequence=0)))
    assert any("DECLINED with journal entry" in p
               for p in check_transfer(ASKED, _transfer(T.TRANSFER_STATUS_DECLINED, T.DECLINE_REASON_VELOCITY)))
    assert any("without a reason" in p for p in check_transfer(ASKED, _transfer(T.TRANSFER_STATUS_DECLINED, sequence=0)))
    assert any("amount 2000 USD, asked 1000" in p for p in check_transfer(ASKED, _transfer(amount=2_000)))
    assert any("is not tr_" in p for p in check_transfer(ASKED, _transfer(transfer_id="tr_x")))
    assert any("status UNSPECIFIED" in p for p in check_transfer(ASKED, _transfer(T.TRANSFER_STATUS_UNSPECIFIED)))
    assert any("entry_sequence" in p for p in check_read_back(_transfer(), _transfer(sequence=9)))
    caller = FakeCaller(FakeBank())
    assert record(caller, "k1", "tr_x", ["boom"]) == DATA_LOSS and record(caller, "k2", "tr_y", []) == OK
    assert caller.codes(SINGLE_POSTING) == [DATA_LOSS, OK]


def test_the_book_follows_answers_and_knows_which_accounts_are_uncertain():
    book = Book({"a": 1_000, "b": 0, "c": 50})
    book.begin(["a", "b"])
    assert book.uncertain("a") and not book.uncertain("c")
    book.transfer("a", "b", 300)
    book.end(["a", "b"], True)
    book.begin(["c"], deposit=True)
    book.deposit("c", 100)
    book.end(["c"], True, deposit=True)
    assert not any(book.uncertain(x) for x in "abc") and not book.total_uncertain
    assert dict(book.expected) == {"a": 700, "b": 300, "c": 150} and book.total() == 1_150
    book.begin(["a", "c"])
    book.end(["a", "c"], False)
    assert book.uncertain("a") and book.uncertain("c") and not book.total_uncertain  # a transfer: the total holds
    book.begin(["b"], deposit=True)
    assert book.total_uncertain
    book.end(["b"], False, deposit=True)
    assert book.total_uncertain and book.uncertain_accounts == 3


# the fake bank ----------------------------------------------------------------------------------------------------------

class FakeBank:
    """TransferService and LedgerService in memory, as the protos say: OpenAccount with its keyed opening deposit;
    Deposit and Transfer idempotent per (account, key) (a repeat returns the stored answer, a repeat while in flight
    is ABORTED); the fraud rules (daily limit, velocity, new payee and a large amount: only transfers that moved money
    count) before the funds check; Reconcile over every balance. ``fail`` holds codes raised by the next calls of a
    method; ``lose`` the methods whose next call is processed and then answered UNAVAILABLE. ``idempotent=False``
    makes a new transfer for every call (a double posting); ``overdraw=True`` checks the funds before its in-flight
    pause and applies after it (no isolation: concurrent debits can overdraw)."""

    def __init__(self, *, idempotent: bool = True, fraud: bool = True, overdraw: bool = False,
                 in_flight_s: float = 0.003) -> None:
        self.idempotent, self.fraud, self.overdraw, self.in_flight_s = idempotent, fraud, overdraw, in_flight_s
        self.balances: dict[str, int] = {}
        self.entries: list[banking_pb2.JournalEntry] = []
        self.transfers: dict[str, T.Transfer] = {}
        self.answers: dict[tuple[str, str, str], Any] = {}
        self.in_flight: set[tuple[str, str, str]] = set()
        self.windows: dict[str, list[int]] = {}
        self.paid: set[tuple[str, str]] = set()
        self.deposit_keys: set[str] = set()
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.lose: set[str] = set()
        self.calls: list[tuple[str, Any]] = []
        self.made = itertools.count()
        self.discrepancies: list[str] = []

    async def handle(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        if method in ("Transfer", "Deposit"):
            owner = request.from_account_id if method == "Transfer" else request.account_id
            key = (owner, method, request.idempotency_key)
            if self.idempotent:
                if key in self.in_flight:
                    raise rpc_error(grpc.StatusCode.ABORTED, "in flight")
                if key in self.answers:
                    return self.answers[key]
            self.in_flight.add(key)
            try:
                answer = await getattr(self, f"_{method.lower()}")(request)
            finally:
                self.in_flight.discard(key)
            self.answers[key] = answer
        else:
            answer = getattr(self, f"_{method.lower()}")(request)
        if method in self.lose:
            self.lose.discard(method)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "answer lost")
        return answer

    def account(self, account_id: str) -> banking_pb2.Account:
        if account_id not in self.balances:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"account {account_id}")
        return banking_pb2.Account(
            account_id=account_id, currency_code="USD", owner="x",
            kind=banking_pb2.ACCOUNT_KIND_BANK_CASH if is_cash_account_id(account_id) else banking_pb2.ACCOUNT_KIND_CUSTOMER,
            balance=money_pb2.Money(currency_code="USD", amount_minor=self.balances[account_id]))

    def post(self, entry_id: str, postings: list[tuple[str, int]], memo: str) -> banking_pb2.JournalEntry:
        for account_id, amount in postings:
            self.balances[account_id] += amount
        entry = banking_pb2.JournalEntry(entry_id=entry_id, memo=memo, sequence=len(self.entries) + 1, postings=[
            banking_pb2.Posting(account_id=a, amount=money_pb2.Money(currency_code="USD", amount_minor=v))
            for a, v in postings])
        self.entries.append(entry)
        return entry

    def _openaccount(self, request: T.TransferServiceOpenAccountRequest) -> T.TransferServiceOpenAccountResponse:
        self.balances.setdefault(CASH, 0)
        if request.account_id not in self.balances:
            self.balances[request.account_id] = 0
            if request.initial_deposit.amount_minor:
                self.deposit_keys.add(open_deposit_key(request.account_id))
                self.post(f"dep-{request.account_id}", [(CASH, -request.initial_deposit.amount_minor),
                                                        (request.account_id, request.initial_deposit.amount_minor)], "")
        return T.TransferServiceOpenAccountResponse(account=self.account(request.account_id))

    async def _deposit(self, request: T.DepositRequest) -> T.DepositResponse:
        self.account(request.account_id)
        await asyncio.sleep(self.in_flight_s)
        amount = request.amount.amount_minor
        return T.DepositResponse(entry=self.post(f"dep-{next(self.made)}", [(CASH, -amount),
                                                                           (request.account_id, amount)], "deposit"))

    def _transfer_id(self, request: T.TransferRequest) -> str:
        seed = request.idempotency_key if self.idempotent else f"{request.idempotency_key}/{next(self.made)}"
        digest = hashlib.sha256(f"{request.from_account_id}/{seed}".encode()).digest()[:15]
        return "tr_" + base64.b32encode(digest).decode().lower()

    def _rule(self, request: T.TransferRequest) -> int:
        window = self.windows.get(request.from_account_id, [])
        amount = request.amount.amount_minor
        if sum(window) + amount > 1_000_000:
            return T.DECLINE_REASON_DAILY_LIMIT
        if len(window) >= 10:
            return T.DECLINE_REASON_VELOCITY
        if amount >= 500_000 and (request.from_account_id, request.to_account_id) not in self.paid:
            return T.DECLINE_REASON_NEW_PAYEE_AMOUNT
        return T.DECLINE_REASON_UNSPECIFIED

    async def _transfer(self, request: T.TransferRequest) -> T.TransferResponse:
        source, target, amount = request.from_account_id, request.to_account_id, request.amount.amount_minor
        self.account(source), self.account(target)
        transfer = T.Transfer(transfer_id=self._transfer_id(request), from_account_id=source, to_account_id=target,
                              amount=request.amount, memo=request.memo, status=T.TRANSFER_STATUS_DECLINED)
        reason = self._rule(request) if self.fraud else T.DECLINE_REASON_UNSPECIFIED
        if not reason:
            self.windows.setdefault(source, []).append(amount)
            funded = self.balances[source] >= amount
            await asyncio.sleep(self.in_flight_s)
            if not self.overdraw:
                funded = self.balances[source] >= amount
            if funded:
                transfer.status = T.TRANSFER_STATUS_COMPLETED
                transfer.entry_sequence = self.post(transfer.transfer_id, [(source, -amount), (target, amount)],
                                                    request.memo).sequence
                self.paid.add((source, target))
            else:
                self.windows[source].remove(amount)
                reason = T.DECLINE_REASON_INSUFFICIENT_FUNDS
        transfer.decline_reason = reason
        self.transfers[transfer.transfer_id] = transfer
        return T.TransferResponse(transfer=transfer)

    def _gettransfer(self, request: T.GetTransferRequest) -> T.GetTransferResponse:
        if request.transfer_id not in self.transfers:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "transfer_id")
        return T.GetTransferResponse(transfer=self.transfers[request.transfer_id])

    def _getaccount(self, request: ledger_pb2.GetAccountRequest) -> ledger_pb2.GetAccountResponse:
        return ledger_pb2.GetAccountResponse(account=self.account(request.account_id))

    def _listentries(self, request: ledger_pb2.ListEntriesRequest) -> ledger_pb2.ListEntriesResponse:
        self.account(request.account_id)
        mine = [e for e in reversed(self.entries) if any(p.account_id == request.account_id for p in e.postings)]
        return ledger_pb2.ListEntriesResponse(entries=mine[:request.page_size or 20])

    def _reconcile(self, request: ledger_pb2.ReconcileRequest) -> ledger_pb2.ReconcileResponse:
        total = sum(self.balances.values())
        lines = [*self.discrepancies, *(f"account {a} below zero: {v}" for a, v in sorted(self.balances.items())
                                        if v < 0 and not is_cash_account_id(a))]
        if total:
            lines.append(f"USD sums to {total}")
        return ledger_pb2.ReconcileResponse(balanced=not lines, account_count=len(self.balances),
                                            entry_count=len(self.entries), sequence=len(self.entries),
                                            total_minor_by_currency={"USD": total}, discrepancies=lines)


class FakeCaller:
    """A journey's Caller over a :class:`FakeBank`: calls and measures recorded."""

    def __init__(self, bank: FakeBank) -> None:
        self.bank = bank
        self.requests: list[tuple[str, str, Any]] = []
        self.observed: list[tuple[str, float, str]] = []
        self._intended = time.perf_counter()

    @property
    def intended_at(self) -> float:
        return self._intended

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        self.requests.append((service, method, request))
        return await self.bank.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]

    def methods(self) -> list[str]:
        return [m for _, m, _ in self.requests]


class FakeStreams:
    """What ``connect`` gets: share, unrecorded calls to the fake bank (Reconcile's failures injected first), observed
    measures."""

    def __init__(self, bank: FakeBank, share: tuple[int, int] = (0, 1)) -> None:
        self.bank = bank
        self.share = share
        self.reconcile_failures: list[grpc.StatusCode] = []
        self.calls: list[tuple[str, str, float | None]] = []
        self.observed: list[tuple[str, float, str]] = []

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        self.calls.append((service, method, timeout_s))
        if method == "Reconcile" and self.reconcile_failures:
            raise rpc_error(self.reconcile_failures.pop(0), "injected")
        return await self.bank.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def methods(self) -> list[str]:
        return [m for _, m, _ in self.calls]


async def no_wait(seconds: float) -> None:
    """Backoffs in tests: any pause is 2 ms (a double tap's retry comes after the first send's 3 ms in flight only on
    its later attempts)."""
    await asyncio.sleep(0.002 if seconds > 0 else 0)


SMALL = SeedParams(customers=30, victims=4, hot_accounts=6, mules=30)


async def _bank(fake: FakeBank, params: SeedParams = SMALL, share: tuple[int, int] = (0, 1)) -> Bank:
    """A :class:`Bank` over ``fake``, its accounts opened (seeded) in it."""
    state = await seed(lambda _s, m, r: fake.handle(m, r), params, random.Random(5))
    fake.calls.clear()
    return Bank(FakeStreams(fake, share), state, params, sleep=no_wait)


# the journeys -----------------------------------------------------------------------------------------------------------

async def test_a_transfer_moves_money_once_between_two_customers_and_is_booked():
    fake = FakeBank()
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await transfer(caller, TransferParams(double_submit_p=0.0, hot_payee_p=0.0), bank, random.Random(1))
    assert caller.methods() == ["Transfer"]  # sent once: nothing to read back
    request = caller.requests[0][2]
    assert request.idempotency_key.startswith("transfer-") and request.from_account_id != request.to_account_id
    assert {request.from_account_id, request.to_account_id} <= set(bank.state.customers)
    assert caller.codes(TRANSFER_TIME) == [OK] and caller.codes(TRANSFER_OUTCOME) == ["COMPLETED"]
    assert caller.codes(SINGLE_POSTING) == []
    amount = request.amount.amount_minor
    assert 100 <= amount <= 400_000 and request.amount.currency_code == "USD"
    assert bank.book.expected[request.from_account_id] == bank.state.opening_minor[request.from_account_id] - amount
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)
    assert bank.book.uncertain_accounts == 0 and all(is_transfer_id(t) for t in fake.transfers)


async def test_a_retry_after_a_lost_answer_reuses_the_key_finds_the_same_transfer_and_reads_it_back():
    fake = FakeBank()
    fake.fail["Transfer"] = [grpc.StatusCode.UNAVAILABLE]
    fake.lose.add("Transfer")  # the second send posts, its answer is lost: the third gets the stored answer
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await transfer(caller, TransferParams(double_submit_p=0.0), bank, random.Random(2))
    keys = [r.idempotency_key for _, m, r in caller.requests if m == "Transfer"]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(fake.transfers) == 1
    assert caller.methods()[-1] == "GetTransfer" and caller.codes(SINGLE_POSTING) == [OK]
    assert caller.codes(TRANSFER_TIME) == [OK] and bank.book.uncertain_accounts == 0


async def test_a_double_tap_comes_back_as_one_transfer():
    fake = FakeBank()
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await transfer(caller, TransferParams(double_submit_p=1.0), bank, random.Random(3))
    sends = [r for _, m, r in caller.requests if m == "Transfer"]
    assert len(sends) >= 3 and len({r.idempotency_key for r in sends}) == 1  # ABORTED, then retried
    assert len(fake.transfers) == 1 and caller.codes(SINGLE_POSTING) == [OK]
    assert caller.codes(TRANSFER_OUTCOME) == ["COMPLETED"]  # one outcome per transfer, not per send
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)


async def test_a_bank_that_posts_a_retry_twice_is_caught():
    fake = FakeBank(idempotent=False)
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await transfer(caller, TransferParams(double_submit_p=1.0), bank, random.Random(3))
    assert caller.codes(SINGLE_POSTING) == [DATA_LOSS] and len(fake.transfers) == 2

    class Wrong(FakeBank):  # answers COMPLETED without posting
        async def _transfer(self, request: T.TransferRequest) -> T.TransferResponse:
            return T.TransferResponse(transfer=T.Transfer(
                transfer_id=self._transfer_id(request), from_account_id=request.from_account_id,
                to_account_id=request.to_account_id, amount=request.amount, status=T.TRANSFER_STATUS_COMPLETED))

    wrong = Wrong()
    bank = await _bank(wrong)
    caller = FakeCaller(wrong)
    with pytest.raises(grpc.aio.AioRpcError) as caught:  # GetTransfer finds no such transfer
        await transfer(caller, TransferParams(double_submit_p=0.0), bank, random.Random(4))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND and caller.codes(SINGLE_POSTING) == [DATA_LOSS]


async def test_insufficient_funds_is_an_answer_with_its_reason_and_moves_nothing():
    fake = FakeBank()
    bank = await _bank(fake)
    for account in bank.state.customers:
        fake.balances[account] = 0
        bank.book.expected[account] = 0
    caller = FakeCaller(fake)
    await transfer(caller, TransferParams(double_submit_p=0.0), bank, random.Random(5))
    assert caller.codes(TRANSFER_TIME) == [OK] and caller.codes(TRANSFER_OUTCOME) == ["INSUFFICIENT_FUNDS"]
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)


async def test_a_transfer_without_an_answer_fails_with_the_last_code_and_leaves_its_accounts_uncertain():
    fake = FakeBank()
    fake.fail["Transfer"] = [grpc.StatusCode.UNAVAILABLE] * 10
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await transfer(caller, TransferParams(double_submit_p=0.0, max_attempts=3), bank, random.Random(6))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE and caller.methods() == ["Transfer"] * 3
    assert caller.codes(TRANSFER_TIME) == ["UNAVAILABLE"] and caller.codes(TRANSFER_OUTCOME) == []
    request = caller.requests[0][2]
    assert bank.book.uncertain(request.from_account_id) and bank.book.uncertain(request.to_account_id)
    assert bank.book.uncertain_accounts == 2 and not bank.book.total_uncertain


async def test_payees_are_popular_customers_or_hot_accounts_never_the_payer():
    fake = FakeBank()
    bank = await _bank(fake, SeedParams(customers=200, victims=1, hot_accounts=3, mules=1))
    rng = random.Random(9)
    payees = Counter(bank.payee(rng, 1.0, bank.state.customers[0]) for _ in range(5_000))
    assert bank.state.customers[0] not in payees
    assert payees[bank.state.customers[1]] > payees[bank.state.customers[10]] > payees[bank.state.customers[150]]
    caller = FakeCaller(fake)
    for i in range(40):
        await transfer(caller, TransferParams(double_submit_p=0.0, hot_payee_p=0.5), bank, random.Random(i))
    to_hot = sum(r.to_account_id in bank.state.hot for _, m, r in caller.requests if m == "Transfer")
    assert 8 <= to_hot <= 32 and all(r.memo in ("bill payment", "transfer") for _, m, r in caller.requests)


async def test_amounts_are_lognormal_around_the_median_and_clipped():
    rng = random.Random(4)
    amounts = sorted(draw_amount(rng, TransferParams()) for _ in range(4_000))
    assert amounts[0] >= 100 and amounts[-1] <= 400_000 and 7_200 < amounts[2_000] < 8_800
    with pytest.raises(ValidationError):
        TransferParams(amount_min_minor=9_000)


async def test_a_balance_check_reads_the_account_then_its_statement():
    fake = FakeBank()
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await check_balance(caller, BalanceParams(page_size=5, hot_account_p=0.0), bank, random.Random(1))
    assert [(s, m) for s, m, _ in caller.requests] == [("banking-ledger", "GetAccount"), ("banking-ledger", "ListEntries")]
    get, listing = caller.requests[0][2], caller.requests[1][2]
    assert get.account_id in bank.state.customers and listing.account_id == get.account_id and listing.page_size == 5
    hot = FakeCaller(fake)
    await check_balance(hot, BalanceParams(hot_account_p=1.0), bank, random.Random(2))
    assert hot.requests[0][2].account_id in bank.state.hot


async def test_a_paycheck_is_deposited_once_and_booked_and_a_retried_one_is_checked():
    fake = FakeBank()
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    await deposit(caller, DepositParams(), bank, random.Random(1))
    (request,) = [r for _, m, r in caller.requests]
    assert request.idempotency_key.startswith("paycheck-") and 10_000 <= request.amount.amount_minor <= 2_000_000
    assert caller.codes(SINGLE_POSTING) == [] and bank.book.deposited_minor == request.amount.amount_minor
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)
    fake.fail["Deposit"] = [grpc.StatusCode.UNAVAILABLE]
    await deposit(caller, DepositParams(), bank, random.Random(2))
    assert caller.codes(SINGLE_POSTING) == [OK] and sum(bank.book.expected.values()) == sum(fake.balances.values()) - \
        fake.balances[CASH]

    class Sideways(FakeBank):  # credits the bank's cash account instead of the customer's
        async def _deposit(self, request: T.DepositRequest) -> T.DepositResponse:
            amount = request.amount.amount_minor
            return T.DepositResponse(entry=self.post("dep-x", [(CASH, amount), (request.account_id, -amount)], ""))

    sideways = Sideways()
    bank = await _bank(sideways)
    caller = FakeCaller(sideways)
    await deposit(caller, DepositParams(), bank, random.Random(3))
    assert caller.codes(SINGLE_POSTING) == [DATA_LOSS]
    down = FakeBank()
    bank = await _bank(down)
    down.fail["Deposit"] = [grpc.StatusCode.UNAVAILABLE] * 10
    with pytest.raises(grpc.aio.AioRpcError):
        await deposit(FakeCaller(down), DepositParams(max_attempts=2), bank, random.Random(4))
    assert bank.book.total_uncertain and bank.book.deposited_minor == 0


async def test_an_account_takeover_is_judged_once_the_velocity_rule_has_its_evidence():
    fake = FakeBank()
    bank = await _bank(fake)
    for victim in bank.state.victims:  # rich: the fraud rules, not the balance, stop the script
        fake.balances[victim] = bank.book.expected[victim] = 10_000_000
    caller = FakeCaller(fake)
    params = TakeoverParams(transfers=20, concurrency=4)
    await account_takeover(caller, params, bank, random.Random(11))
    tries = [r for _, m, r in caller.requests if m == "Transfer"]
    assert len(tries) == 20 and len({r.from_account_id for r in tries}) == 1 and len({r.to_account_id for r in tries}) == 20
    assert tries[0].from_account_id in bank.state.victims and {r.to_account_id for r in tries} <= set(bank.state.mules)
    assert all(100_000 <= r.amount.amount_minor <= 700_000 for r in tries)
    assert caller.codes(TAKEOVER_BLOCKED) == [OK] * 7  # tries 14 to 20: 10 + 4 in flight - 1 before them
    assert caller.codes(TRANSFER_TIME) == [] and caller.codes(TRANSFER_OUTCOME) == []
    victim = tries[0].from_account_id
    assert 0 < 10_000_000 - fake.balances[victim] <= 1_000_000  # the daily limit at most was stolen
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)
    unguarded = FakeBank(fraud=False)
    bank = await _bank(unguarded)
    for victim in bank.state.victims:
        unguarded.balances[victim] = bank.book.expected[victim] = 100_000_000
    caller = FakeCaller(unguarded)
    await account_takeover(caller, TakeoverParams(transfers=8, evident_after_transfers=5, concurrency=2), bank,
                           random.Random(12))
    assert caller.codes(TAKEOVER_BLOCKED) == [ALLOWED] * 2  # judged from the 7th: 5 + 2 in flight - 1


async def test_a_poor_victim_s_tries_stopped_by_the_balance_are_not_judged():
    fake = FakeBank(fraud=False)
    bank = await _bank(fake)
    for victim in bank.state.victims:
        fake.balances[victim] = bank.book.expected[victim] = 150_000
    caller = FakeCaller(fake)
    await account_takeover(caller, TakeoverParams(transfers=12, evident_after_transfers=0, concurrency=1), bank,
                           random.Random(13))
    assert len(caller.codes(TAKEOVER_BLOCKED)) <= 1  # at most one try fits in 1,500.00: the others are not judged
    assert all(fake.balances[a] >= 0 for a in bank.state.accounts)


async def test_a_bill_run_pays_several_billers_at_once_and_bounces_what_the_balance_cannot_cover():
    fake = FakeBank()
    bank = await _bank(fake)
    caller = FakeCaller(fake)
    params = BillsParams(bills_min=4, bills_max=4, amount_median_minor=50_000, amount_sigma=0.0)
    payer = bank.customer(random.Random(21))
    fake.balances[payer] = bank.book.expected[payer] = 120_000  # covers two of the four 500.00 bills
    await pay_bills(caller, params, bank, random.Random(21))
    bills = [r for _, m, r in caller.requests if m == "Transfer"]
    assert len(bills) == 4 and {r.from_account_id for r in bills} == {payer}
    assert len({r.to_account_id for r in bills}) == 4 and {r.to_account_id for r in bills} <= set(bank.state.hot)
    assert len({r.idempotency_key for r in bills}) == 4 and all(r.memo == "bill payment" for r in bills)
    assert sorted(caller.codes(TRANSFER_OUTCOME)) == ["COMPLETED"] * 2 + ["INSUFFICIENT_FUNDS"] * 2
    assert fake.balances[payer] == 20_000 and caller.codes(TRANSFER_TIME) == []
    assert all(bank.book.expected[a] == fake.balances[a] for a in bank.state.accounts)
    with pytest.raises(ValidationError, match="bills_min"):
        BillsParams(bills_min=5, bills_max=2)


async def test_without_isolation_a_bill_run_overdraws_and_the_end_of_run_check_finds_it():
    racing = FakeBank(overdraw=True)
    bank = await _bank(racing)
    params = BillsParams(bills_min=4, bills_max=4, amount_median_minor=50_000, amount_sigma=0.0)
    payer = bank.customer(random.Random(22))
    racing.balances[payer] = bank.book.expected[payer] = 120_000
    await pay_bills(FakeCaller(racing), params, bank, random.Random(22))
    assert racing.balances[payer] == 120_000 - 4 * 50_000  # four debits passed one balance check
    assert await bank.check() == DATA_LOSS


# the end-of-run check ---------------------------------------------------------------------------------------------------

async def _run_some(fake: FakeBank, bank: Bank, journeys: int = 30) -> None:
    caller = FakeCaller(fake)
    for i in range(journeys):
        await transfer(caller, TransferParams(double_submit_p=0.2), bank, random.Random(i))
        await deposit(caller, DepositParams(), bank, random.Random(100 + i))


async def test_a_balanced_ledger_with_every_balance_as_answered_is_ok():
    fake = FakeBank()
    fake.discrepancies = ["an earlier run's line"]
    bank = await _bank(fake)
    streams = bank.streams
    live = await connect(streams, bank.state, SMALL, random.Random(1))
    live.sleep = no_wait
    accounts = len(live.state.accounts)
    assert live.baseline == {"an earlier run's line"} and streams.methods() == ["Reconcile"] + ["GetAccount"] * accounts
    await _run_some(fake, live)
    await disconnect(live)
    assert streams.observed[-1][0] == LEDGER_BALANCED and streams.observed[-1][2] == OK, streams.observed
    assert streams.methods().count("GetAccount") == 2 * accounts and streams.calls[1 + accounts][2] == 30.0


async def test_each_capacity_step_is_judged_from_the_balances_at_its_connect():
    # casemesh capacity seeds once and connects once per step: the second step starts from what the first moved.
    fake = FakeBank()
    bank = await _bank(fake)
    first = await connect(bank.streams, bank.state, SMALL, random.Random(1))
    first.sleep = no_wait
    await _run_some(fake, first)
    await disconnect(first)
    assert bank.streams.observed[-1][2] == OK, bank.streams.observed
    second = await connect(bank.streams, bank.state, SMALL, random.Random(2))
    second.sleep = no_wait
    assert second.book.expected == {a: fake.balances[a] for a in bank.state.accounts}
    await _run_some(fake, second)
    await disconnect(second)
    assert bank.streams.observed[-1][0] == LEDGER_BALANCED and bank.streams.observed[-1][2] == OK


async def test_an_overdraft_a_balance_the_answers_do_not_explain_or_a_new_discrepancy_is_data_loss():
    fake = FakeBank()
    bank = await _bank(fake)
    await _run_some(fake, bank, 5)
    victim = bank.state.victims[0]
    fake.balances[victim] -= 10**9
    fake.balances[CASH] += 10**9
    assert await bank.check() == DATA_LOSS  # overdrawn, Reconcile says so, and not what the answers make
    fake = FakeBank()
    bank = await _bank(fake)
    await _run_some(fake, bank, 5)
    fake.post("stray", [(CASH, -500), (bank.state.customers[3], 500)], "")  # money no client asked for
    assert await bank.check() == DATA_LOSS
    fake = FakeBank()
    bank = await _bank(fake)
    fake.discrepancies = ["an entry does not sum to zero"]
    assert await bank.check() == DATA_LOSS  # no baseline taken: every line is this run's


async def test_uncertain_accounts_are_not_compared_and_other_processes_only_check_signs_and_reconcile():
    fake = FakeBank()
    bank = await _bank(fake)
    payer, payee = bank.state.customers[:2]
    bank.book.begin([payer, payee])
    bank.book.end([payer, payee], False)
    fake.post("unknown", [(payer, -1), (payee, 1)], "")  # as if the transfer of unknown outcome had moved money
    assert await bank.check() == OK
    fake = FakeBank()
    two = await _bank(fake, share=(0, 2))
    fake.balances[two.state.customers[0]] += 7  # another process's paycheck
    fake.balances[CASH] -= 7
    assert await two.check() == OK and two.streams.observed[-1][2] == OK
    other = await _bank(FakeBank(), share=(1, 2))
    assert await other.check() is None and other.streams.observed == [] and other.streams.calls == []


async def test_a_reconciliation_that_cannot_run_records_its_code():
    fake = FakeBank()
    bank = await _bank(fake)
    bank.streams.reconcile_failures = [grpc.StatusCode.UNAVAILABLE] * 3
    assert await bank.check() == "UNAVAILABLE" and bank.streams.methods().count("Reconcile") == 3
    fake.fail["GetAccount"] = [grpc.StatusCode.DEADLINE_EXCEEDED] * 3 * len(bank.state.accounts)
    assert await bank.check() == "DEADLINE_EXCEEDED"  # no account read after its retries: nothing to compare

    async def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError("a bug")

    bank.streams.call = broken
    await disconnect(bank)
    assert bank.streams.observed[-1][::2] == (LEDGER_BALANCED, "UNKNOWN")


# the workload, the profile, the SLOs, the contracts ---------------------------------------------------------------------

def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "banking" and WORKLOAD.services == BANKING_SERVICES
    assert list(WORKLOAD.journeys) == ["transfer", "pay_bills", "check_balance", "deposit", "account_takeover"]
    assert set(MEASURES) == {"transfer_time", "transfer_outcome", "single_posting", "takeover_blocked",
                             "ledger_balanced"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)  # a measure is reported like a journey: names must not clash
    assert {"casemesh.banking.v1.TransferService/Transfer", "casemesh.banking.v1.LedgerService/GetAccount",
            "casemesh.banking.v1.LedgerService/Reconcile"} <= set(WORKLOAD.rpcs)
    assert "banking" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("banking") is WORKLOAD


def _document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "banking.yaml").read_text())


MODELS = {"transfer": TransferParams, "pay_bills": BillsParams, "check_balance": BalanceParams,
          "deposit": DepositParams, "account_takeover": TakeoverParams}


def test_the_profile_s_blocks_are_valid_and_its_rate_is_the_documented_one():
    document = _document()
    ProfileDocument.model_validate(document)
    assert document["workload"] == "banking" and document["services"] == list(BANKING_SERVICES)
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params.customers == 5_000 and seed_params.currency == "USD"
    journeys = {j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    rate, total = document["arrival"]["rate_per_s"], sum(weights.values())
    assert total == pytest.approx(100)
    bills = journeys["pay_bills"]
    per_run = (bills.bills_min + bills.bills_max) / 2
    customer_transfers = rate * (weights["transfer"] + weights["pay_bills"] * per_run) / total
    assert 100 <= customer_transfers <= 110  # about 105 customer transfers and bills a second
    bursts_per_run = rate * weights["account_takeover"] / total * document["duration_s"]
    assert 12 <= bursts_per_run <= 16  # 14 bursts
    moves = customer_transfers + rate * (weights["deposit"] + weights["account_takeover"] * 20) / total
    assert 120 <= moves <= 130  # about 125 money movements a second
    # The run's drain (10 request timeouts + 5 s) outlasts the longest journey: a takeover's rounds, each try at most
    # retry_within_s of retries and one timeout, then a read back.
    timeout_s = document["request_timeout_ms"] / 1000
    takeover = journeys["account_takeover"]
    rounds = -(-takeover.transfers // takeover.concurrency)
    assert (rounds + 1) * (takeover.retry_within_s + timeout_s) < timeout_s * 10 + 5
    assert 2 * (journeys["transfer"].retry_within_s + timeout_s) < timeout_s * 10 + 5
    metadata = document["metadata"]
    assert "seeds/001_58dfc580020147d2.txt line 39" in metadata["source"] and "100M accounts" in metadata["source"]
    assert "7 times fewer than the peak" in metadata["scaling"]


def test_ordinary_customers_stay_below_the_fraud_rules_and_the_takeover_crosses_them():
    document = _document()
    fraud = document["settings"]["banking-transfers"]
    journeys = {j["name"]: MODELS[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    assert journeys["transfer"].amount_max_minor < fraud["new_payee_threshold_minor"]
    assert journeys["pay_bills"].amount_max_minor < fraud["new_payee_threshold_minor"]
    assert journeys["pay_bills"].bills_max < fraud["velocity_max_transfers"]
    assert journeys["account_takeover"].evident_after_transfers == fraud["velocity_max_transfers"]
    assert journeys["account_takeover"].amount_max_minor >= fraud["new_payee_threshold_minor"]
    seed_params = SeedParams.model_validate(document["seed"])
    bills = journeys["pay_bills"]
    per_s = document["arrival"]["rate_per_s"] * (weights["transfer"] + weights["pay_bills"] * bills.bills_max) / 100
    per_minute = per_s * fraud["velocity_window_s"] / seed_params.customers
    assert per_minute < fraud["velocity_max_transfers"] / 5  # a customer's transfers a minute, on average
    assert seed_params.victim_deposit_median_minor >= 10 * fraud["daily_limit_minor"]  # the rules, not the balance
    assert document["settings"]["banking-ledger"] == {"locking": "account"}


@pytest.mark.parametrize(("service", "module", "model"), [
    ("banking-ledger", "casemesh.services.banking.ledger.settings", "LedgerSettings"),
    ("banking-transfers", "casemesh.services.banking.transfers.settings", "TransferSettings"),
])
def test_the_profile_s_settings_fit_the_services_settings_models(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    if not hasattr(settings_module, model):
        pytest.skip(f"{module}.{model} is not there yet")
    validated = getattr(settings_module, model).model_validate(_document()["settings"][service])
    if service == "banking-transfers":  # the profile writes the defaults out: it changes none of them
        assert validated == getattr(settings_module, model)()


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "banking.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {"banking-transfer-latency", "banking-transfer-availability", "banking-balance-read-latency",
                         "banking-no-double-posting", "banking-ledger-balanced", "banking-takeover-blocked",
                         "banking-transfer-latency-server", "banking-transfer-availability-server",
                         "banking-balance-read-latency-server"}
    latency = slos["banking-transfer-latency"]
    assert latency.target == 0.99 and latency.good.latency_le_ms == 250 and "ABORTED" not in latency.total.codes
    assert len(latency.total.codes) == 16 and latency.good.rpc == "casemesh.banking.v1.TransferService/Transfer"
    assert slos["banking-balance-read-latency"].good.latency_le_ms == 100
    assert slos["banking-transfer-availability"].target == 0.999
    assert slos["banking-no-double-posting"].target == 0.9999 and slos["banking-takeover-blocked"].target == 0.9
    for name in ("banking-transfer-latency", "banking-transfer-availability", "banking-balance-read-latency"):
        assert slos[f"{name}-server"].twin_of == name
    text = (PROFILES_DIR / "banking.slo.yaml").read_text()
    assert 'grpc_service="casemesh.banking.v1.TransferService",grpc_method="Transfer",le="0.25"' in text
    assert 'grpc_service="casemesh.banking.v1.LedgerService",grpc_method="GetAccount",le="0.1"' in text
    assert "seeds/001_58dfc580020147d2.txt line 39" in text and "seeds/000_69ff90d97cf45f9b.txt line 522" in text


def test_the_slo_names_are_banking_s_own():
    def names(path: Path) -> set[str]:
        return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}

    ours = names(PROFILES_DIR / "banking.slo.yaml")
    others = set().union(*(names(p) for p in PROFILES_DIR.glob("*.slo.yaml") if p.name != "banking.slo.yaml"))
    assert all(name.startswith("banking-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The banking services as the profile loader's catalogue sees them, whether or not services/catalog.py lists
    them yet (their settings keys are checked by the test above and by the shipped-profile test below)."""
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in BANKING_SERVICES}}
    monkeypatch.setattr(profile_module, "SERVICES", known)


def test_the_profile_loads_with_its_slos(monkeypatch: pytest.MonkeyPatch):
    _registered(monkeypatch)
    profile = load_profile("banking", known_services=BANKING_SERVICES)
    assert profile.workload is WORKLOAD and profile.arrival.rate_per_s == 160 and profile.request_timeout_ms == 3000
    assert [j.name for j in profile.journeys] == list(WORKLOAD.journeys)
    assert {"banking-transfer-latency", "banking-no-double-posting", "banking-ledger-balanced"} <= \
        {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in BANKING_SERVICES),
                    reason="the banking services are not registered yet (services/catalog.py)")
def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("banking")
    assert profile.seed.customers == 5_000 and profile.settings["banking-ledger"]["locking"] == "account"
    assert {"banking-transfer-latency", "banking-transfer-availability", "banking-ledger-balanced"} <= \
        {slo.name for slo in profile.slos}


#: What the workload may import of casemesh.services: the banking contract (and what it imports).
ALLOWED_SERVICE_MODULES = {"casemesh.services", "casemesh.services.banking", "casemesh.services.banking.contract",
                           "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
                           "casemesh.services.runtime.errors"}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.banking.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry"}, f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.banking import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "casemesh.services.banking.contract" in loaded and loaded <= ALLOWED_SERVICE_MODULES, loaded


# the harness's driver over real gRPC, against the fake bank ----------------------------------------------------------------

def _servicers(fake: FakeBank) -> list[Any]:
    from casemesh.banking.v1 import ledger_pb2_grpc, transfers_pb2_grpc

    async def handle(method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fake.handle(method, request)
        except grpc.aio.AioRpcError as error:
            await context.abort(error.code(), error.details() or "")

    def forward(name: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            return await handle(name, request, context)
        return method

    ledger = type("Ledger", (ledger_pb2_grpc.LedgerServiceServicer,),
                  {m: forward(m) for m in ("GetAccount", "ListEntries", "Reconcile")})
    transfers = type("Transfers", (transfers_pb2_grpc.TransferServiceServicer,),
                     {m: forward(m) for m in ("OpenAccount", "Deposit", "Transfer", "GetTransfer")})
    return [(ledger_pb2_grpc.add_LedgerServiceServicer_to_server, ledger()),
            (transfers_pb2_grpc.add_TransferServiceServicer_to_server, transfers())]


async def test_the_driver_runs_every_journey_over_grpc_and_checks_the_ledger_at_the_end(
        monkeypatch: pytest.MonkeyPatch):
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    _registered(monkeypatch)
    profile = with_overrides(load_profile("banking", known_services=BANKING_SERVICES), duration_s=1.5, warmup_s=0.2,
                             rate_scale=0.25)
    profile = dataclasses.replace(profile, seed=SeedParams(customers=200, victims=10, hot_accounts=2, mules=40))
    # More takeovers than the profile's share, so that a short run has some.
    journeys = tuple(dataclasses.replace(j, weight=5) if j.name == "account_takeover" else j for j in profile.journeys)
    profile = dataclasses.replace(profile, journeys=journeys)
    fake = FakeBank(in_flight_s=0.0)
    server = grpc.aio.server()
    for add, servicer in _servicers(fake):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {"banking-ledger": channel, "banking-transfers": channel}, rng_seed=3)
        await driver.seed()
        assert isinstance(driver.state, State) and len(driver.state.customers) == 200
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    calls = stats.rpc("casemesh.banking.v1.TransferService/Transfer")
    assert calls.count() > 10 and calls.count(["OK", "ABORTED"]) == calls.count()
    for journey in ("transfer", "pay_bills", "check_balance", "deposit", TRANSFER_TIME):
        assert stats.journey(journey).count() > 0 and stats.journey(journey).count(["OK"]) == stats.journey(journey).count()
    assert stats.journey(TRANSFER_OUTCOME).count(["COMPLETED"]) > 0
    assert stats.journey(LEDGER_BALANCED).count(["OK"]) == 1 == stats.journey(LEDGER_BALANCED).count()
