"""The banking ledger's servicer through real gRPC: served by the runtime (DEFINITION, its settings and data folder),
called as ``banking-transfers`` for the internal RPCs and anonymously for the public ones; every status code of
protos/casemesh/banking/v1/ledger.proto; many concurrent clients debiting a few accounts never overdraw them and the
ledger reconciles; a ledger whose file is gone answers UNAVAILABLE.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.banking.v1 import banking_pb2, ledger_pb2, ledger_pb2_grpc
from casemesh.common.v1 import money_pb2
from casemesh.services.banking.ledger.ledger import Ledger
from casemesh.services.banking.ledger.service import DEFINITION, NAME, LedgerServicer
from casemesh.services.banking.ledger.store import FILE_NAME, LedgerStore
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0


def _money(amount: int, currency: str = "USD") -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount)


def _post(entry_id: str, *postings: tuple[str, int], memo: str = "") -> ledger_pb2.PostEntryRequest:
    return ledger_pb2.PostEntryRequest(entry=banking_pb2.JournalEntry(
        entry_id=entry_id, memo=memo,
        postings=[banking_pb2.Posting(account_id=a, amount=_money(amount)) for a, amount in postings]))


def _open(account_id: str, owner: str = "Owner", currency: str = "USD") -> ledger_pb2.OpenAccountRequest:
    return ledger_pb2.OpenAccountRequest(account_id=account_id, owner=owner, currency_code=currency)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    assert DEFINITION.name == NAME == "banking-ledger" and DEFINITION.dependencies == ()
    assert DEFINITION.grpc_services == ("casemesh.banking.v1.LedgerService",)
    assert DEFINITION.access.public == {"GetAccount", "ListEntries", "Reconcile"}
    assert dict(DEFINITION.access.internal) == {"OpenAccount": ("banking-transfers",),
                                                "PostEntry": ("banking-transfers",)}


async def test_the_ledger_through_the_runtime(tmp_path):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"locking": "account"}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    transfers = RuntimeContext(topology, secret=TEST_SECRET).for_service("banking-transfers")
    try:
        ledger = ledger_pb2_grpc.LedgerServiceStub(transfers.channel(NAME))
        public = ledger_pb2_grpc.LedgerServiceStub(running.anonymous_channel(NAME))
        opened = (await ledger.OpenAccount(_open("alice", "Alice"), timeout=WAIT_S)).account
        assert (opened.kind, opened.owner, opened.balance, opened.entry_count) == (
            banking_pb2.ACCOUNT_KIND_CUSTOMER, "Alice", _money(0), 0)
        assert (await ledger.OpenAccount(_open("alice", "Alice"), timeout=WAIT_S)).account == opened
        await ledger.OpenAccount(_open("bob"), timeout=WAIT_S)
        code, _ = await _code(ledger.OpenAccount(_open("alice", "Alicia"), timeout=WAIT_S))
        assert code == grpc.StatusCode.ALREADY_EXISTS
        for request, field in ((_open("cash-USD"), "account_id"), (_open("carol", ""), "owner"),
                               (_open("carol", currency="usd"), "currency_code")):
            code, details = await _code(ledger.OpenAccount(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:")

        deposit = (await ledger.PostEntry(_post("d1", ("cash-USD", -1_000), ("alice", 1_000), memo="cash in"),
                                          timeout=WAIT_S)).entry
        assert (deposit.entry_id, deposit.sequence, deposit.memo) == ("d1", 1, "cash in")
        assert deposit.posted_at_unix_ms > 0 and deposit.postings[1].amount == _money(1_000)
        assert (await ledger.PostEntry(_post("d1", ("cash-USD", -1_000), ("alice", 1_000), memo="cash in"),
                                       timeout=WAIT_S)).entry == deposit
        code, details = await _code(ledger.PostEntry(_post("d1", ("cash-USD", -1), ("alice", 1)), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("entry_id_conflict:")
        code, details = await _code(ledger.PostEntry(_post("t1", ("alice", -1_001), ("bob", 1_001)), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("insufficient_funds:")
        code, _ = await _code(ledger.PostEntry(_post("t1", ("alice", -1), ("ghost", 1)), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        for request, field in ((_post("", ("alice", -1), ("bob", 1)), "entry.entry_id"),
                               (_post("t1", ("alice", -1)), "entry.postings"),
                               (_post("t1", ("alice", -1), ("bob", 2)), "entry.postings"),
                               (_post("t1", ("alice", -1), ("b b", 1)), "entry.postings[1].account_id"),
                               (_post("t1", ("alice", 0), ("bob", 0)), "entry.postings[0].amount"),
                               (_post("t1", ("alice", -1), ("bob", 1), memo="m" * 201), "entry.memo")):
            code, details = await _code(ledger.PostEntry(request, timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}:")
        await ledger.PostEntry(_post("t1", ("alice", -400), ("bob", 400)), timeout=WAIT_S)

        alice = (await public.GetAccount(ledger_pb2.GetAccountRequest(account_id="alice"), timeout=WAIT_S)).account
        assert (alice.balance, alice.entry_count) == (_money(600), 2)
        cash = (await public.GetAccount(ledger_pb2.GetAccountRequest(account_id="cash-USD"), timeout=WAIT_S)).account
        assert (cash.kind, cash.owner, cash.balance) == (banking_pb2.ACCOUNT_KIND_BANK_CASH, "bank", _money(-1_000))
        code, _ = await _code(public.GetAccount(ledger_pb2.GetAccountRequest(account_id="carol"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(public.GetAccount(ledger_pb2.GetAccountRequest(), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("account_id:")

        page = await public.ListEntries(ledger_pb2.ListEntriesRequest(account_id="alice", page_size=1),
                                        timeout=WAIT_S)
        assert [e.entry_id for e in page.entries] == ["t1"] and page.next_page_token
        rest = await public.ListEntries(ledger_pb2.ListEntriesRequest(account_id="alice",
                                                                      page_token=page.next_page_token), timeout=WAIT_S)
        assert [e.entry_id for e in rest.entries] == ["d1"] and not rest.next_page_token
        for request, expected in ((ledger_pb2.ListEntriesRequest(account_id="alice", page_size=101),
                                   (grpc.StatusCode.INVALID_ARGUMENT, "page_size:")),
                                  (ledger_pb2.ListEntriesRequest(account_id="alice", page_token="%%"),
                                   (grpc.StatusCode.INVALID_ARGUMENT, "page_token:")),
                                  (ledger_pb2.ListEntriesRequest(account_id="carol"), (grpc.StatusCode.NOT_FOUND, ""))):
            code, details = await _code(public.ListEntries(request, timeout=WAIT_S))
            assert code == expected[0] and details.startswith(expected[1])

        result = await public.Reconcile(ledger_pb2.ReconcileRequest(), timeout=WAIT_S)
        assert (result.balanced, result.account_count, result.entry_count, result.sequence) == (True, 3, 2, 2)
        assert dict(result.total_minor_by_currency) == {"USD": 0} and not result.discrepancies

        code, _ = await _code(public.PostEntry(_post("t2", ("alice", -1), ("bob", 1)), timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        code, _ = await _code(public.OpenAccount(_open("carol"), timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    finally:
        await transfers.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.mark.parametrize("locking", ["account", "global"])
async def test_concurrent_clients_never_overdraw_and_the_ledger_reconciles(tmp_path, locking):
    topology = loopback_topology([NAME], data_dir=tmp_path, settings={NAME: {"locking": locking}})
    running, stop, task = await start_mesh([DEFINITION], topology)
    transfers = RuntimeContext(topology, secret=TEST_SECRET).for_service("banking-transfers")
    try:
        ledger = ledger_pb2_grpc.LedgerServiceStub(transfers.channel(NAME))
        accounts = ["a0", "a1", "a2"]
        for account in accounts:
            await ledger.OpenAccount(_open(account), timeout=WAIT_S)
            await ledger.PostEntry(_post(f"d-{account}", ("cash-USD", -500), (account, 500)), timeout=WAIT_S)
        rng = random.Random(7)

        async def transfer(i: int) -> ledger_pb2.PostEntryResponse | None:
            source, target = rng.sample(accounts, 2)
            amount = rng.randint(40, 200)
            try:
                return await ledger.PostEntry(_post(f"t{i}", (source, -amount), (target, amount)), timeout=WAIT_S)
            except grpc.aio.AioRpcError as error:
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
                return None

        answers = await asyncio.gather(*(transfer(i) for i in range(120)))
        posted = [a.entry for a in answers if a is not None]
        assert sorted(e.sequence for e in posted) == list(range(4, 4 + len(posted)))
        balances = {a: (await ledger.GetAccount(ledger_pb2.GetAccountRequest(account_id=a),
                                                timeout=WAIT_S)).account.balance.amount_minor for a in accounts}
        assert all(b >= 0 for b in balances.values()) and sum(balances.values()) == 1_500
        result = await ledger.Reconcile(ledger_pb2.ReconcileRequest(), timeout=WAIT_S)
        assert result.balanced and result.entry_count == 3 + len(posted)
    finally:
        await transfers.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_ledger_whose_file_is_gone_answers_unavailable(tmp_path):
    ledger = Ledger(LedgerStore(tmp_path / FILE_NAME))
    await ledger.start()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    ledger_pb2_grpc.add_LedgerServiceServicer_to_server(LedgerServicer(ledger), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = ledger_pb2_grpc.LedgerServiceStub(channel)
    try:
        await stub.OpenAccount(_open("alice"), timeout=WAIT_S)
        await ledger.close()  # the disk is gone
        for call in (stub.OpenAccount(_open("bob"), timeout=WAIT_S),
                     stub.PostEntry(_post("d1", ("cash-USD", -5), ("alice", 5)), timeout=WAIT_S),
                     stub.ListEntries(ledger_pb2.ListEntriesRequest(account_id="alice"), timeout=WAIT_S),
                     stub.Reconcile(ledger_pb2.ReconcileRequest(), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE
        alice = (await stub.GetAccount(ledger_pb2.GetAccountRequest(account_id="alice"), timeout=WAIT_S)).account
        assert alice.balance.amount_minor == 0  # nothing applied
    finally:
        await channel.close()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await ledger.close()
