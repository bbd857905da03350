"""Online banking through real gRPC: many customers' transfers, retried with their idempotency keys and sometimes sent
twice at once, while the ledger and the transfer service are SIGKILLed and restarted; afterwards the ledger balances.

CASE-STUDY.md point 5 for online banking (seed 001 #14, shared/seeds/001_58dfc580020147d2.txt line 39: "Double-entry
ledger, ACID transactions, fraud detection, reconciliation"; the issue: "the ledger always balances", "the invariants
hold under concurrent transfers and a process kill mid-transfer"). Afterwards, read through the public API only:
LedgerService.Reconcile finds every entry summing to zero and every balance equal to its postings; the customers'
money is exactly what was deposited (transfers only move it); every key made one transfer; each completed transfer
is one journal entry in both accounts' statements and a declined one is in neither; no account is overdrawn; and
each balance is its deposit plus what the completed transfers moved in, minus what they moved out.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict

import grpc
import pytest

from casemesh.banking.v1 import ledger_pb2, ledger_pb2_grpc, transfers_pb2, transfers_pb2_grpc
from casemesh.common.v1 import money_pb2
from casemesh.harness.mesh import Mesh

from .waiting import eventually

SERVICES = ["banking-ledger", "banking-transfers"]
#: The fraud rules off: this test is about the ledger's invariants, not about which transfers a rule refuses.
SETTINGS = {"banking-transfers": {"fraud_rules": False}}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
ACCOUNTS = 30
DEPOSIT = 50_000  # minor units: small beside the transfers, so some are declined for insufficient funds
CLIENTS, TRANSFERS_EACH = 24, 15


def _usd(amount: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code="USD", amount_minor=amount)


async def _retried(call, request, rng: random.Random):
    """Send ``request`` until it has a final answer, retrying the same request (the same key) with jittered backoff."""
    for attempt in range(200):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(1.0, 0.05 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


async def _statement(ledger: ledger_pb2_grpc.LedgerServiceStub, account_id: str) -> list[ledger_pb2.JournalEntry]:
    entries, token = [], ""
    while True:
        page = await ledger.ListEntries(ledger_pb2.ListEntriesRequest(account_id=account_id, page_size=100,
                                                                      page_token=token), timeout=10)
        entries.extend(page.entries)
        if not page.next_page_token:
            return entries
        token = page.next_page_token


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_the_ledger_balances_across_ledger_and_transfer_service_kills(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES}
        ledger = ledger_pb2_grpc.LedgerServiceStub(channels["banking-ledger"])
        transfers = transfers_pb2_grpc.TransferServiceStub(channels["banking-transfers"])
        answers: dict[str, set[str]] = defaultdict(set)  # idempotency key (per source account) → transfer ids
        decided: dict[str, transfers_pb2.Transfer] = {}  # transfer id → the transfer as answered
        try:
            accounts = [f"acct-{n:03d}" for n in range(ACCOUNTS)]
            for account in accounts:
                await transfers.OpenAccount(transfers_pb2.TransferServiceOpenAccountRequest(
                    account_id=account, owner=f"Customer {account}", initial_deposit=_usd(DEPOSIT)), timeout=10)

            async def client(n: int) -> None:
                rng = random.Random(n)
                for i in range(TRANSFERS_EACH):
                    source, destination = rng.sample(accounts, 2)
                    request = transfers_pb2.TransferRequest(
                        idempotency_key=f"client-{n}-{i}", from_account_id=source, to_account_id=destination,
                        amount=_usd(rng.randint(1_000, 30_000)), memo=f"transfer {n}/{i}")
                    sends = 2 if rng.random() < 0.2 else 1  # a double tap: the same request twice at once
                    results = await asyncio.gather(*(_retried(transfers.Transfer, request, rng) for _ in range(sends)))
                    for result in results:
                        answers[f"{source}/{request.idempotency_key}"].add(result.transfer.transfer_id)
                        decided[result.transfer.transfer_id] = result.transfer
                    await asyncio.sleep(rng.uniform(0, 0.03))

            clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
            await eventually(lambda: len(answers) >= 60, "60 transfers answered before the ledger's kill", 60)
            assert mesh.kill("banking-ledger", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["banking-ledger"])
            await eventually(lambda: len(answers) >= 180, "180 transfers answered before the transfers' kill", 60)
            assert mesh.kill("banking-transfers", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["banking-transfers"])
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            assert len(answers) == CLIENTS * TRANSFERS_EACH

            # One transfer per key, whatever the retries, double taps and kills.
            assert all(len(ids) == 1 for ids in answers.values()), {k: v for k, v in answers.items() if len(v) > 1}
            completed = {i: t for i, t in decided.items() if t.status == transfers_pb2.TRANSFER_STATUS_COMPLETED}
            declined = {i: t for i, t in decided.items() if t.status == transfers_pb2.TRANSFER_STATUS_DECLINED}
            assert len(completed) + len(declined) == len(decided)
            assert len(completed) > 100 and declined, (len(completed), len(declined))

            # The ledger reconciles, and customers hold exactly what was deposited.
            report = await ledger.Reconcile(ledger_pb2.ReconcileRequest(), timeout=30)
            assert report.balanced and not report.discrepancies, report
            assert report.total_minor_by_currency["USD"] == 0, report
            balances = {account: (await ledger.GetAccount(ledger_pb2.GetAccountRequest(account_id=account),
                                                          timeout=10)).account.balance.amount_minor
                        for account in accounts}
            assert sum(balances.values()) == ACCOUNTS * DEPOSIT, balances
            assert min(balances.values()) >= 0, balances

            # Each completed transfer is one entry in both statements; a declined one is in neither.
            expected = {account: DEPOSIT for account in accounts}
            for transfer in completed.values():
                expected[transfer.from_account_id] -= transfer.amount.amount_minor
                expected[transfer.to_account_id] += transfer.amount.amount_minor
            assert balances == expected
            seen: dict[str, list[int]] = defaultdict(list)
            for account in accounts:
                for entry in await _statement(ledger, account):
                    seen[entry.entry_id].append(entry.sequence)
                    assert sum(p.amount.amount_minor for p in entry.postings) == 0, entry
            for transfer_id, transfer in completed.items():
                sequences = seen.get(transfer_id, [])
                assert len(sequences) == 2 and sequences[0] == sequences[1] == transfer.entry_sequence, (
                    transfer_id, sequences, transfer)
            assert not set(declined) & set(seen)
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            for channel in channels.values():
                await channel.close()
