"""The online-banking workload (Chase / Wells Fargo; seed 001 #14 "Online Banking", shared/seeds/001_58dfc580020147d2.txt
line 39: "| 14 | Online Banking | Double-entry ledger, ACID transactions, fraud detection, reconciliation | 100M
accounts, Chase/Wells Fargo |").

Seeding (:mod:`.seeding`) opens the bank's accounts through TransferService.OpenAccount, each with its first deposit:
customers (lognormal deposits around a few thousand dollars), hot accounts (billers and shops many customers pay),
takeover victims and the fraudster's mule accounts. Open-loop arrivals are customers' journeys (:mod:`.journeys`):
``transfer`` (most of the traffic: to people drawn by popularity or to the hot accounts, a few double tapped),
``pay_bills`` (a customer's bills due today, paid at once: concurrent debits of one account), ``check_balance`` (the balance and the statement's first page), ``deposit`` (a paycheck) and ``account_takeover`` (a
script draining a victim's account to new payees, against the fraud rules), every money-moving call with an
idempotency key and retried with the same key (exponential backoff, full jitter:
:mod:`casemesh.harness.workloads.idempotent_retry`). A transfer sent more than once is read back and checked to be one
transfer (:mod:`.invariants`); at the end of the run LedgerService.Reconcile must balance and every account the run
opened must hold what the clients' answers imply (:mod:`.live`).

Measures: ``transfer_time`` (the send button: first send to final answer), ``transfer_outcome`` (completed, or the
decline reason), ``takeover_blocked``, and the invariants ``single_posting`` and ``ledger_balanced``; the driver records
every RPC, TransferService/Transfer among them (the headline SLO). The workload speaks only the contracts
(protos/casemesh/banking/v1, casemesh.common.v1) and casemesh.services.banking.contract.
"""

from __future__ import annotations

import logging
import random

from casemesh.banking.v1 import ledger_pb2, ledger_pb2_grpc, transfers_pb2, transfers_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .invariants import SINGLE_POSTING
from .journeys import (
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
    pay_bills,
    transfer,
)
from .live import LEDGER_BALANCED, Bank
from .seeding import LEDGER, TRANSFERS, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.banking")

_ENTRYPOINTS = entrypoints({
    LEDGER: (ledger_pb2, "LedgerService", ledger_pb2_grpc.LedgerServiceStub),
    TRANSFERS: (transfers_pb2, "TransferService", transfers_pb2_grpc.TransferServiceStub),
})

MEASURES = (TRANSFER_TIME, TRANSFER_OUTCOME, SINGLE_POSTING, TAKEOVER_BLOCKED, LEDGER_BALANCED)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Bank:
    """This process's :class:`~.live.Bank`, after the baseline reconciliation (``baseline_reconcile``: load process 0
    only, unrecorded); ``rng`` is not used."""
    bank = Bank(streams, state, params)
    await bank.take_baseline()
    return bank


async def disconnect(bank: Bank) -> None:
    """The end-of-run check (``ledger_balanced``), after this process's last journey."""
    try:
        await bank.check()
    except Exception:  # a bug here must not lose the run's other results
        log.exception("banking: the end-of-run ledger check failed")
        bank.streams.observe(LEDGER_BALANCED, 0.0, "UNKNOWN", sent_at=bank.clock())


WORKLOAD = Workload(
    name="banking",
    description="Online banking (shared/seeds/001 #14 'Online Banking', Chase/Wells Fargo): customers' transfers with "
                "idempotent retries and double taps, bill runs, balance checks, paychecks, account takeovers against "
                "the fraud rules, and the double-entry ledger reconciled at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("transfer", "A customer sends money to a person (Zipf popularity) or a biller (Transfer with a "
                    "fresh idempotency key, retried with the same key; a few double taps, read back with "
                    "GetTransfer)", TransferParams, transfer),
            Journey("pay_bills", "The bill-pay scheduler pays a customer's bills due today, each to a biller, all "
                    "at once (a Transfer each: the concurrent debits of one account)", BillsParams, pay_bills),
            Journey("check_balance", "A customer opens the app: GetAccount, then the statement's first page "
                    "(ListEntries)", BalanceParams, check_balance),
            Journey("deposit", "A paycheck lands in a customer's account (Deposit, retried with the same key)",
                    DepositParams, deposit),
            Journey("account_takeover", "A fraudster's script drains a victim's account to new payees, several "
                    "transfers at once (takeover_blocked)", TakeoverParams, account_takeover),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
