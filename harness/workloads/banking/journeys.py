"""The banking journeys: customers' transfers, bill runs, balance checks and paychecks, and an account takeover
(open-loop arrivals).

Seed 001 #14 "Online Banking" (shared/seeds/001_58dfc580020147d2.txt line 39: "Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo"); seed 000 line 522 (the payment
service's "Idempotent APIs, retry with exponential backoff", the pattern every money-moving call here follows). Every
money-moving call carries a fresh idempotency key (``<kind>-<uuid4 hex>``, unique across load processes) and is
retried with the same key on UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (exponential backoff with
full jitter, bounded in attempts and in time: :mod:`casemesh.harness.workloads.idempotent_retry`).

- ``transfer`` (most of the traffic): a customer (uniform over the customers) sends money: to one of the hot accounts
  (a shop, a bill paid by hand: ``hot_payee_p``, uniform over them) or to another customer drawn by popularity (Zipf
  with ``zipf_exponent`` over the customers' seeded order: a few people are everyone's payee).
  TransferService.Transfer with a fresh key; ``double_submit_p`` of them are double taps: the same request sent twice
  at once, each retried on its own (ABORTED while the other is in flight), which must make one transfer. A transfer
  whose key was sent more than once (a double tap, a retry) is read back with GetTransfer, the ``single_posting``
  check (:mod:`.invariants`). A DECLINED transfer (insufficient funds, a fraud rule) is an answer: the customer sees
  it.
- ``pay_bills``: the bank's bill-pay scheduler pays a customer's bills due today, ``bills_min`` to ``bills_max`` of
  them (uniform), each to a different biller (a hot account), all at once: one Transfer each, its own key, retried,
  read back when sent more than once. A customer whose balance cannot cover them all gets some DECLINED for
  insufficient funds (a bounced bill). These are the workload's concurrent debits of one account: they queue on its
  lock in the ledger (``banking-ledger.locking=account``), and without isolation (``none``) two of them can pass the
  balance check together and overdraw it, which the end-of-run check (:mod:`.live`) finds.
- ``check_balance``: a customer opens the app: LedgerService.GetAccount, then the statement's first page
  (ListEntries, ``page_size`` entries); for ``hot_account_p`` of them it is a biller reading its much longer
  statement.
- ``deposit``: a paycheck lands in a customer's account (TransferService.Deposit, lognormal around
  ``amount_median_minor``), with a fresh key, retried; the bank's cash account is the entry's other side.
- ``account_takeover``: a fraudster holding a victim's credentials drains the account with a script: ``transfers``
  transfers to as many mule accounts the victim never paid (each a new payee), uniform amounts of
  ``amount_min_minor`` to ``amount_max_minor``, ``concurrency`` at a time (each sent at most ``max_attempts`` times).
  banking-transfers' fraud rules (daily limit, velocity, new payee and a large amount) should decline them. By the
  ``evident_after_transfers``-th decided try (the velocity rule's count) one of the rules must have bound, so tries
  from the ``evident_after_transfers + concurrency``-th on (by then at least that many were decided) are judged, one
  ``takeover_blocked`` sample each: ``OK`` when DECLINED by a fraud rule (DAILY_LIMIT, VELOCITY, NEW_PAYEE_AMOUNT),
  ``ALLOWED`` when COMPLETED (money stolen), or the status code of a try that failed; its latency is the try's
  Transfer (with retries). A try DECLINED only for insufficient funds is not judged: the balance, not the rules, had
  the last word (the victims hold many times the daily limit, so it is rare with the rules on).

Amounts are integer minor units of the bank's currency: lognormal around ``amount_median_minor`` (``amount_sigma``),
clipped to ``amount_min_minor`` .. ``amount_max_minor``; a customer's transfers and bills stay below
banking-transfers' new-payee threshold (5,000.00), so an ordinary customer trips no fraud rule.

Measures, besides the RPCs the driver records (TransferService/Transfer among them: the headline SLO):

- ``transfer_time``: a customer's send button (``transfer``), from the journey's intended start to the final answer,
  retries included; code ``OK`` for an answer (completed or declined), else the last attempt's code;
- ``transfer_outcome``: one sample per answered customer transfer and bill, code ``COMPLETED`` or the decline reason
  (``INSUFFICIENT_FUNDS``, ``DAILY_LIMIT``, ``VELOCITY``, ``NEW_PAYEE_AMOUNT``): the decline share by reason;
  latency 0;
- ``single_posting`` (:mod:`.invariants`), ``takeover_blocked`` (above), ``ledger_balanced`` (:mod:`.live`).

Every money-moving call is entered in the process's :class:`~.invariants.Book` (what each account should hold). A
journey ends OK when every answer came and every check ran; with the last code when a call failed for good (after the
check of what could be checked).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from dataclasses import dataclass, field

import grpc
from pydantic import Field, model_validator

from casemesh.banking.v1 import ledger_pb2, transfers_pb2
from casemesh.common.v1 import money_pb2
from casemesh.services.banking.contract import MAX_AMOUNT_MINOR, MAX_PAGE_SIZE, cash_account_id

from ..base import Caller, Params
from ..idempotent_retry import Outcome, RetryParams, send
from .invariants import Asked, check_answers, check_read_back, check_transfer, reason_name, record
from .live import Bank
from .seeding import LEDGER, TRANSFERS

log = logging.getLogger("casemesh.workloads.banking")

TRANSFER_TIME = "transfer_time"
TRANSFER_OUTCOME = "transfer_outcome"
TAKEOVER_BLOCKED = "takeover_blocked"
OK = "OK"
COMPLETED = "COMPLETED"
ALLOWED = "ALLOWED"

T = transfers_pb2
#: Decline reasons of the fraud rules (a takeover try declined so is blocked).
FRAUD_REASONS = frozenset({T.DECLINE_REASON_DAILY_LIMIT, T.DECLINE_REASON_VELOCITY, T.DECLINE_REASON_NEW_PAYEE_AMOUNT})


class AmountParams(RetryParams):
    """An amount's distribution (minor units) and the call's retries (a base of the money-moving journeys' params)."""

    amount_median_minor: int = Field(default=8_000, ge=1, le=MAX_AMOUNT_MINOR,
                                     description="median amount, minor units (8,000: 80.00, a dinner paid back)")
    amount_sigma: float = Field(default=1.0, ge=0, le=5, description="the amount's lognormal sigma (log scale)")
    amount_min_minor: int = Field(default=100, ge=1, le=MAX_AMOUNT_MINOR, description="smallest amount, minor units")
    amount_max_minor: int = Field(default=400_000, ge=1, le=MAX_AMOUNT_MINOR,
                                  description="largest amount, minor units (below the new-payee threshold, 500,000)")

    @model_validator(mode="after")
    def _amounts(self) -> AmountParams:
        if not self.amount_min_minor <= self.amount_median_minor <= self.amount_max_minor:
            raise ValueError(f"amount_min_minor ({self.amount_min_minor}) <= amount_median_minor "
                             f"({self.amount_median_minor}) <= amount_max_minor ({self.amount_max_minor}) must hold")
        return self


class TransferParams(AmountParams):
    """A customer's transfer."""

    hot_payee_p: float = Field(default=0.15, ge=0, le=1,
                               description="share paid to a hot account (a shop, a bill) rather than a person")
    zipf_exponent: float = Field(default=0.8, ge=0, le=5,
                                 description="popularity of customers as payees: rank r weighs 1 / r**exponent")
    double_submit_p: float = Field(default=0.03, ge=0, le=1,
                                   description="share of transfers sent twice at once (a double tap)")


class BillsParams(AmountParams):
    """A bill run."""

    amount_median_minor: int = Field(default=25_000, ge=1, le=MAX_AMOUNT_MINOR,
                                     description="median bill, minor units (25,000: 250.00)")
    amount_min_minor: int = Field(default=1_000, ge=1, le=MAX_AMOUNT_MINOR, description="smallest bill, minor units")
    amount_max_minor: int = Field(default=200_000, ge=1, le=MAX_AMOUNT_MINOR,
                                  description="largest bill, minor units (six of them stay near the daily limit, "
                                              "1,000,000)")
    bills_min: int = Field(default=2, ge=1, le=100, description="fewest bills due in one run")
    bills_max: int = Field(default=6, ge=1, le=100, description="most bills due in one run (uniform)")

    @model_validator(mode="after")
    def _bills(self) -> BillsParams:
        if self.bills_min > self.bills_max:
            raise ValueError(f"bills_min ({self.bills_min}) must be at most bills_max ({self.bills_max})")
        return self


class BalanceParams(Params):
    """A balance check (reads are not retried: the app shows the error and the customer opens it again)."""

    page_size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="statement entries on the first page")
    hot_account_p: float = Field(default=0.02, ge=0, le=1,
                                 description="share of checks by a biller (a hot account, a long statement)")


class DepositParams(AmountParams):
    """A paycheck."""

    amount_median_minor: int = Field(default=250_000, ge=1, le=MAX_AMOUNT_MINOR,
                                     description="median paycheck, minor units (250,000: 2,500.00)")
    amount_sigma: float = Field(default=0.4, ge=0, le=5, description="the paycheck's lognormal sigma")
    amount_min_minor: int = Field(default=10_000, ge=1, le=MAX_AMOUNT_MINOR, description="smallest paycheck")
    amount_max_minor: int = Field(default=2_000_000, ge=1, le=MAX_AMOUNT_MINOR, description="largest paycheck")


class TakeoverParams(RetryParams):
    """An account-takeover burst."""

    max_attempts: int = Field(default=2, ge=1, le=10, description="sends of one try at most (a script moves on)")
    retry_within_s: float = Field(default=2.0, gt=0, le=600, description="no retry starts later than this, s")
    transfers: int = Field(default=20, ge=1, le=1_000, description="transfers tried in one burst, each to a new mule")
    amount_min_minor: int = Field(default=100_000, ge=1, le=MAX_AMOUNT_MINOR, description="smallest try, minor units")
    amount_max_minor: int = Field(default=700_000, ge=1, le=MAX_AMOUNT_MINOR,
                                  description="largest try, minor units (uniform: a third above the new-payee "
                                              "threshold, 500,000)")
    evident_after_transfers: int = Field(default=10, ge=0, le=1_000,
                                         description="transfers of one account the velocity rule allows "
                                                     "(banking-transfers' velocity_max_transfers, 10): the tries "
                                                     "after that many (and the concurrency) are judged")
    concurrency: int = Field(default=4, ge=1, le=64, description="tries in flight at once (a script)")

    @model_validator(mode="after")
    def _tries(self) -> TakeoverParams:
        if self.amount_min_minor > self.amount_max_minor:
            raise ValueError(f"amount_min_minor ({self.amount_min_minor}) must be at most amount_max_minor "
                             f"({self.amount_max_minor})")
        return self

    @property
    def judged_from(self) -> int:
        """The 0-based index of the burst's first judged try."""
        return self.evident_after_transfers + self.concurrency - 1


def new_key(kind: str) -> str:
    """A fresh idempotency key: ``<kind>-<uuid4 hex>`` (unique across load processes and runs)."""
    return f"{kind}-{uuid.uuid4().hex}"


def draw_amount(rng: random.Random, params: AmountParams) -> int:
    """An amount in minor units: lognormal around the median, clipped (module docstring)."""
    value = round(rng.lognormvariate(math.log(params.amount_median_minor), params.amount_sigma))
    return min(max(value, params.amount_min_minor), params.amount_max_minor)


def money(currency: str, amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount_minor)


def outcome_code(transfer: T.Transfer) -> str:
    """``COMPLETED``, or the decline reason (``INSUFFICIENT_FUNDS``, ``VELOCITY``, ...)."""
    if transfer.status == T.TRANSFER_STATUS_COMPLETED:
        return COMPLETED
    return reason_name(transfer.decline_reason)


def error_of(outcome: Outcome) -> grpc.aio.AioRpcError:
    assert outcome.error is not None
    return outcome.error


@dataclass
class Moved:
    """One key's Transfer after its retries (and, for a double tap, both sends): what was asked, every answer's
    transfer, and the outcomes."""

    key: str
    asked: Asked
    outcomes: list[Outcome]
    answers: list[T.Transfer] = field(default_factory=list)

    @property
    def transfer(self) -> T.Transfer | None:
        """The first answered transfer."""
        return self.answers[0] if self.answers else None

    @property
    def failed(self) -> Outcome:
        """The last unanswered outcome."""
        return [o for o in self.outcomes if not o.answered][-1]

    @property
    def resent(self) -> bool:
        """True when the key was sent more than once (a double tap or a retry)."""
        return sum(o.attempts for o in self.outcomes) > 1


async def move(call: Caller, bank: Bank, asked: Asked, params: RetryParams, rng: random.Random, *, kind: str,
               memo: str, double_submit: bool = False) -> Moved:
    """Transfer ``asked`` with a fresh key, retried; a double tap sends it twice at once. Enters it in the book."""
    key = new_key(kind)
    request = T.TransferRequest(idempotency_key=key, from_account_id=asked.from_account_id,
                                to_account_id=asked.to_account_id, amount=money(asked.currency, asked.amount_minor),
                                memo=memo)
    accounts = (asked.from_account_id, asked.to_account_id)
    moved = Moved(key, asked, [])
    bank.book.begin(accounts)
    try:
        sends = 2 if double_submit else 1
        moved.outcomes = list(await asyncio.gather(*(
            send(call, TRANSFERS, "Transfer", request, params, rng, sleep=bank.sleep) for _ in range(sends))))
    finally:
        moved.answers = [o.response.transfer for o in moved.outcomes if o.answered]
        if moved.transfer is not None and moved.transfer.status == T.TRANSFER_STATUS_COMPLETED:
            bank.book.transfer(asked.from_account_id, asked.to_account_id, asked.amount_minor)
        bank.book.end(accounts, bool(moved.answers) or (bool(moved.outcomes) and all(o.known for o in moved.outcomes)))
    return moved


async def verify(call: Caller, bank: Bank, moved: Moved, params: RetryParams, rng: random.Random) -> Outcome | None:
    """The ``single_posting`` check of an answered key when it was sent more than once or its answers show a problem:
    GetTransfer (retried) and one sample. Returns GetTransfer's outcome (``None`` when not checked)."""
    transfer = moved.transfer
    assert transfer is not None
    problems = check_answers(moved.answers) + check_transfer(moved.asked, transfer)
    if not (moved.resent or problems):
        return None
    outcome = await send(call, TRANSFERS, "GetTransfer", T.GetTransferRequest(transfer_id=transfer.transfer_id),
                         params, rng, sleep=bank.sleep)
    if outcome.answered:
        record(call, moved.key, transfer.transfer_id, problems + check_read_back(transfer, outcome.response.transfer))
    elif problems:
        record(call, moved.key, transfer.transfer_id, problems)
    else:
        log.info("banking: %s: GetTransfer %s failed (%s): not checked", moved.key, transfer.transfer_id, outcome.code)
    return outcome


async def transfer(call: Caller, params: TransferParams, bank: Bank, rng: random.Random) -> None:
    """A customer's transfer (module docstring)."""
    payer = bank.customer(rng)
    bill = rng.random() < params.hot_payee_p
    payee = rng.choice(bank.state.hot) if bill else bank.payee(rng, params.zipf_exponent, payer)
    asked = Asked(payer, payee, draw_amount(rng, params), bank.currency)
    moved = await move(call, bank, asked, params, rng, kind="transfer", memo="bill payment" if bill else "transfer",
                       double_submit=rng.random() < params.double_submit_p)
    transfer_ = moved.transfer
    call.observe(TRANSFER_TIME, bank.clock() - call.intended_at, OK if transfer_ is not None else moved.failed.code)
    if transfer_ is None:
        raise error_of(moved.failed)
    call.observe(TRANSFER_OUTCOME, 0.0, outcome_code(transfer_))
    check = await verify(call, bank, moved, params, rng)
    if check is not None and not check.answered:
        raise error_of(check)
    if len(moved.answers) < len(moved.outcomes):  # one of a double tap's sends never got its answer
        raise error_of(moved.failed)


async def pay_bills(call: Caller, params: BillsParams, bank: Bank, rng: random.Random) -> None:
    """A customer's bills due today, paid all at once (module docstring)."""
    payer = bank.customer(rng)
    count = rng.randint(params.bills_min, params.bills_max)
    hot = bank.state.hot
    billers = rng.sample(hot, count) if count <= len(hot) else rng.choices(hot, k=count)
    asked = [Asked(payer, biller, draw_amount(rng, params), bank.currency) for biller in billers]
    errors: list[grpc.aio.AioRpcError] = []

    async def one(bill: Asked) -> None:
        moved = await move(call, bank, bill, params, rng, kind="bill", memo="bill payment")
        if moved.transfer is None:
            errors.append(error_of(moved.failed))
            return
        call.observe(TRANSFER_OUTCOME, 0.0, outcome_code(moved.transfer))
        check = await verify(call, bank, moved, params, rng)
        if check is not None and not check.answered:
            errors.append(error_of(check))

    await asyncio.gather(*(one(bill) for bill in asked))
    if errors:
        raise errors[-1]


async def check_balance(call: Caller, params: BalanceParams, bank: Bank, rng: random.Random) -> None:
    """A customer (or a biller) opens the app: the balance, then the statement's first page."""
    hot = rng.random() < params.hot_account_p
    account_id = rng.choice(bank.state.hot) if hot else bank.customer(rng)
    account = (await call(LEDGER, "GetAccount", ledger_pb2.GetAccountRequest(account_id=account_id))).account
    await call(LEDGER, "ListEntries", ledger_pb2.ListEntriesRequest(account_id=account.account_id,
                                                                    page_size=params.page_size))


def deposit_problems(entry: ledger_pb2.JournalEntry, account_id: str, amount_minor: int, currency: str) -> list[str]:
    """Problems of a Deposit's journal entry: it must credit the account and debit the bank's cash account by the
    amount, and carry an entry id and a sequence number."""
    postings = sorted((p.account_id, p.amount.amount_minor, p.amount.currency_code) for p in entry.postings)
    want = sorted([(account_id, amount_minor, currency), (cash_account_id(currency), -amount_minor, currency)])
    problems = [] if postings == want else [f"deposit entry postings {postings}, expected {want}"]
    if not entry.entry_id or entry.sequence == 0:
        problems.append(f"deposit entry {entry.entry_id!r} with sequence {entry.sequence}")
    return problems


async def deposit(call: Caller, params: DepositParams, bank: Bank, rng: random.Random) -> None:
    """A paycheck into a customer's account (module docstring); a retried or malformed answer is a
    ``single_posting`` sample (the entry's shape: whether it was posted once is the end-of-run balance check's)."""
    account_id = bank.customer(rng)
    amount = draw_amount(rng, params)
    key = new_key("paycheck")
    request = T.DepositRequest(idempotency_key=key, account_id=account_id, amount=money(bank.currency, amount))
    outcome: Outcome | None = None
    bank.book.begin([account_id], deposit=True)
    try:
        outcome = await send(call, TRANSFERS, "Deposit", request, params, rng, sleep=bank.sleep)
    finally:
        if outcome is not None and outcome.answered:
            bank.book.deposit(account_id, amount)
        bank.book.end([account_id], outcome is not None and outcome.known, deposit=True)
    if not outcome.answered:
        raise error_of(outcome)
    entry = outcome.response.entry
    problems = deposit_problems(entry, account_id, amount, bank.currency)
    if outcome.attempts > 1 or problems:
        record(call, key, entry.entry_id, problems)


def takeover_code(transfer: T.Transfer) -> str | None:
    """A takeover try's ``takeover_blocked`` code: OK (a fraud rule declined it), ALLOWED (completed), or ``None`` (not
    judged) when only the balance declined it."""
    if transfer.status == T.TRANSFER_STATUS_COMPLETED:
        return ALLOWED
    return OK if transfer.decline_reason in FRAUD_REASONS else None


async def account_takeover(call: Caller, params: TakeoverParams, bank: Bank, rng: random.Random) -> None:
    """An account-takeover burst (module docstring)."""
    victim = rng.choice(bank.state.victims)
    mules = bank.state.mules
    payees = rng.sample(mules, params.transfers) if params.transfers <= len(mules) else \
        [mules[i % len(mules)] for i in range(params.transfers)]
    amounts = [rng.randint(params.amount_min_minor, params.amount_max_minor) for _ in payees]
    limit = asyncio.Semaphore(params.concurrency)
    errors: list[grpc.aio.AioRpcError] = []

    async def one(index: int) -> None:
        asked = Asked(victim, payees[index], amounts[index], bank.currency)
        async with limit:
            moved = await move(call, bank, asked, params, rng, kind="takeover", memo="transfer")
        outcome = moved.outcomes[0]
        code: str | None
        if moved.transfer is None:
            errors.append(error_of(outcome))
            code = outcome.code
        else:
            code = takeover_code(moved.transfer)
            check = await verify(call, bank, moved, params, rng)
            if check is not None and not check.answered:
                errors.append(error_of(check))
        if index >= params.judged_from and code is not None:
            call.observe(TAKEOVER_BLOCKED, outcome.elapsed_s, code)

    await asyncio.gather(*(one(i) for i in range(params.transfers)))
    if errors:
        raise errors[-1]
