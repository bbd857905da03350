"""What the banking journeys share in one load process, and the end-of-run check that the ledger balances.

Seed 001 #14 "Online Banking" (shared/seeds/001_58dfc580020147d2.txt line 39: "Double-entry ledger, ACID transactions,
fraud detection, reconciliation | 100M accounts"). The workload's ``connect`` makes a :class:`Bank` for the process
(the seeded accounts, the :class:`~.invariants.Book` of what the client's answers moved) and, with
``baseline_reconcile``, reconciles once, unrecorded: discrepancies already in the ledger (a data directory kept from an
earlier run, say one with ``locking: none``) are remembered and not blamed on this run. With one load process it
also reads every account's balance then (GetAccount, unrecorded): the :class:`~.invariants.Book` starts from those,
not from the opening deposits, so that each step of ``casemesh capacity`` (one seeding, then one connect per step on
the same ledger) is judged on what that step moved. ``disconnect`` runs
:meth:`Bank.check` after the process's last journey has ended, as a bank's end-of-day close does:

1. LedgerService.Reconcile: every entry sums to zero, every balance equals its postings, each currency's accounts sum
   to zero, no customer account below zero. Each discrepancy line not in the baseline's is a problem;
2. LedgerService.GetAccount of every account the run opened (``balance_read_concurrency`` in flight): each must be in
   the run's currency and not below zero (the overdraft ``banking-ledger.locking=none`` lets concurrent debits make).
   With one load process also: each account's balance equals the one the client's answers imply (:class:`Book`),
   unless a call of unknown outcome touched it; and the accounts together hold the opening deposits plus the
   deposits answered (transfers between the run's accounts move money, never make or lose it), unless a deposit's
   outcome is unknown. With ``--workers N`` the other processes' answers are not known here: those two comparisons
   are skipped (the log says so) and the ledger's own checks and the signs remain.

The ``ledger_balanced`` measure gets one sample, its latency the check's time: ``OK``; ``DATA_LOSS`` for any problem
(each logged); or, when nothing is wrong but a call failed for good (Reconcile after ``reconcile_attempts``, ABORTED
and UNAVAILABLE sent again after 1 s; a GetAccount after 3 attempts), that call's status code. With ``--workers N``
only load process 0 checks, ``reconcile_delay_s`` after its own drain; the others record no sample.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from bisect import bisect_left
from typing import Any

import grpc

from casemesh.banking.v1 import banking_pb2, ledger_pb2

from ..idempotent_retry import RetryParams, send
from .invariants import DATA_LOSS, OK, Book
from .seeding import LEDGER, SeedParams, State

log = logging.getLogger("casemesh.workloads.banking")

LEDGER_BALANCED = "ledger_balanced"
#: Codes after which Reconcile is sent again.
RECONCILE_RETRIED = frozenset({grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE})
RECONCILE_PAUSE_S = 1.0
#: How the end-of-run check retries a GetAccount.
READ_RETRY = RetryParams(max_attempts=3, backoff_base_ms=100, backoff_cap_ms=1_000, retry_within_s=5)


class Bank:
    """A load process's share of the workload: the seeded accounts, the :class:`Book`, the end-of-run check.

    ``streams`` is :class:`casemesh.harness.streams.Streams` (its unrecorded ``call``, ``observe`` and ``share``);
    ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(self, streams: Any, state: State, params: SeedParams, *, clock: Any = time.perf_counter,
                 sleep: Any = asyncio.sleep) -> None:
        if len(state.customers) < 2 or not state.hot or not state.victims or not state.mules:
            raise ValueError("the banking workload needs two customers and at least one hot, victim and mule account")
        self.streams = streams
        self.state = state
        self.params = params
        self.book = Book(state.opening_minor)
        self.clock = clock
        self.sleep = sleep
        self.baseline: set[str] | None = None
        self._cdfs: dict[float, list[float]] = {}

    @property
    def currency(self) -> str:
        return self.state.currency

    def customer(self, rng: random.Random) -> str:
        """A customer drawn uniformly: who acts."""
        return self.state.customers[rng.randrange(len(self.state.customers))]

    def payee(self, rng: random.Random, exponent: float, payer: str) -> str:
        """A customer other than ``payer`` drawn by popularity: rank r (its place in the seeded order, from 1) with
        weight ``1 / r**exponent`` (Zipf; 0 is uniform)."""
        cdf = self._cdfs.get(exponent)
        if cdf is None:
            cdf = self._cdfs[exponent] = list(itertools.accumulate(
                1.0 / (r ** exponent) for r in range(1, len(self.state.customers) + 1)))
        while True:
            index = min(bisect_left(cdf, rng.random() * cdf[-1]), len(cdf) - 1)
            if self.state.customers[index] != payer:
                return self.state.customers[index]

    @property
    def checker(self) -> bool:
        """True for the load process that runs the end-of-run check (process 0)."""
        return self.streams.share[0] == 0

    async def reconcile(self) -> ledger_pb2.ReconcileResponse:
        """One Reconcile (unrecorded), sent again on ABORTED or UNAVAILABLE; raises its last error."""
        for attempt in range(1, self.params.reconcile_attempts + 1):
            try:
                return await self.streams.call(LEDGER, "Reconcile", ledger_pb2.ReconcileRequest(),
                                               timeout_s=self.params.reconcile_timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() not in RECONCILE_RETRIED or attempt == self.params.reconcile_attempts:
                    raise
                log.info("banking: Reconcile answered %s, again in %.0f s", error.code().name, RECONCILE_PAUSE_S)
                await self.sleep(RECONCILE_PAUSE_S)
        raise AssertionError("unreachable")  # pragma: no cover

    async def take_baseline(self) -> None:
        """The reconciliation at connect (not judged): the discrepancy lines already in the ledger."""
        if not (self.params.baseline_reconcile and self.checker):
            return
        try:
            response = await self.reconcile()
        except grpc.aio.AioRpcError as error:
            log.warning("banking: the baseline Reconcile failed (%s %s): every discrepancy at the end is judged",
                        error.code().name, error.details())
            return
        self.baseline = set(response.discrepancies)
        if response.discrepancies:
            log.warning("banking: the ledger has %d discrepancies before the run (an earlier run's): not judged",
                        len(response.discrepancies))
        if self.streams.share[1] == 1:
            balances, _ = await self.read_balances()
            self.book = Book({account: balances[account].balance.amount_minor for account in balances},
                             unread=[a for a in self.state.accounts if a not in balances])

    async def check(self) -> str | None:
        """The end-of-run check (module docstring): records one ``ledger_balanced`` sample and returns its code
        (``None`` in a load process that does not check)."""
        if not self.checker:
            return None
        if self.streams.share[1] > 1 and self.params.reconcile_delay_s > 0:
            await self.sleep(self.params.reconcile_delay_s)
        started = self.clock()
        failed: list[str] = []
        problems: list[str] = []
        try:
            response = await self.reconcile()
        except grpc.aio.AioRpcError as error:
            log.warning("banking: Reconcile failed: %s %s", error.code().name, error.details())
            failed.append(error.code().name)
        else:
            problems += self.judge_reconcile(response)
        balances, codes = await self.read_balances()
        failed += codes
        problems += self.judge_balances(balances)
        for problem in problems:
            log.warning("banking: the ledger does not balance: %s", problem)
        code = DATA_LOSS if problems else failed[0] if failed else OK
        self.streams.observe(LEDGER_BALANCED, self.clock() - started, code, sent_at=started)
        return code

    def judge_reconcile(self, response: ledger_pb2.ReconcileResponse) -> list[str]:
        """Problems of Reconcile's answer: its discrepancy lines not in the baseline's."""
        log.info("banking: Reconcile: %s, %d accounts, %d entries up to sequence %d, totals %s",
                 "balanced" if response.balanced else "NOT balanced", response.account_count, response.entry_count,
                 response.sequence, dict(response.total_minor_by_currency))
        known = self.baseline or set()
        problems = [f"Reconcile: {line}" for line in response.discrepancies if line not in known]
        if not response.balanced and not response.discrepancies:
            problems.append("Reconcile answered not balanced without a discrepancy")
        if response.balanced and response.discrepancies:
            problems.append(f"Reconcile answered balanced with {len(response.discrepancies)} discrepancies")
        return problems

    async def read_balances(self) -> tuple[dict[str, banking_pb2.Account], list[str]]:
        """GetAccount of every account the run opened (unrecorded, retried): the accounts read, and the codes of the
        reads that failed for good."""
        limit = asyncio.Semaphore(self.params.balance_read_concurrency)
        rng = random.Random(self.state.run)
        accounts: dict[str, banking_pb2.Account] = {}
        codes: list[str] = []

        async def one(account_id: str) -> None:
            async with limit:
                outcome = await send(self.streams.call, LEDGER, "GetAccount",
                                     ledger_pb2.GetAccountRequest(account_id=account_id), READ_RETRY, rng,
                                     clock=self.clock, sleep=self.sleep)
            if outcome.answered:
                accounts[account_id] = outcome.response.account
            else:
                log.warning("banking: GetAccount %s failed: %s", account_id, outcome.code)
                codes.append(outcome.code)

        await asyncio.gather(*(one(a) for a in self.state.accounts))
        return accounts, codes

    def judge_balances(self, accounts: dict[str, banking_pb2.Account]) -> list[str]:
        """Problems of the balances read (module docstring, step 2)."""
        problems: list[str] = []
        for account_id, account in accounts.items():
            balance = account.balance.amount_minor
            if account.account_id != account_id:
                problems.append(f"GetAccount {account_id} returned account {account.account_id!r}")
            if account.balance.currency_code != self.currency or account.currency_code != self.currency:
                problems.append(f"{account_id} holds {account.balance.currency_code}, opened in {self.currency}")
            if balance < 0:
                problems.append(f"{account_id} is overdrawn: balance {balance}")
        if self.streams.share[1] > 1:
            log.info("banking: the balances not compared with the clients' answers: several load processes")
            return problems
        book = self.book
        skipped = 0
        for account_id, account in accounts.items():
            if book.uncertain(account_id):
                skipped += 1
                continue
            expected = book.expected[account_id]
            if account.balance.amount_minor != expected:
                problems.append(f"{account_id} holds {account.balance.amount_minor}, the clients' answers make "
                                f"{expected}")
        if skipped:
            log.info("banking: %d accounts touched by calls of unknown outcome not compared", skipped)
        if book.total_uncertain or len(accounts) < len(self.state.accounts):
            log.info("banking: the run's total not compared: %s",
                     "a deposit's outcome is unknown" if book.total_uncertain else "some accounts were not read")
        else:
            held = sum(a.balance.amount_minor for a in accounts.values())
            if held != book.total():
                problems.append(f"the run's accounts hold {held} together, started with {book.opened_minor} and "
                                f"deposited {book.deposited_minor} since: {held - book.total():+d}")
        return problems
