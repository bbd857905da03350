"""banking-transfers through real gRPC: the service built by its DEFINITION (settings, data folder, the runtime's
channel to the ledger) in front of a fake LedgerService on a grpc.aio server (every status code of
protos/casemesh/banking/v1/transfers.proto, the ledger client's mapping of the ledger's codes, a ledger that hangs
or fails), and the real banking-ledger and banking-transfers served by the runtime side by side: many concurrent
clients with duplicated calls move money exactly once per key, and the ledger reconciles.
"""

from __future__ import annotations

import asyncio
import random

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.banking.v1 import ledger_pb2, ledger_pb2_grpc, transfers_pb2, transfers_pb2_grpc
from casemesh.common.v1 import money_pb2
from casemesh.services.banking.ledger import service as ledger_service
from casemesh.services.banking.transfers import metrics, service
from casemesh.services.banking.transfers.ledger import LedgerUnavailable
from casemesh.services.banking.transfers.settings import TransferSettings
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology

from ..integration.conftest import loopback_topology, start_mesh
from .test_banking_transfers import FakeLedger, deposit_request, open_request, sample, transfer_request

WAIT_S = 10.0
TS = transfers_pb2
INVALID = grpc.StatusCode.INVALID_ARGUMENT


class FakeLedgerService(ledger_pb2_grpc.LedgerServiceServicer):
    """LedgerService over :class:`FakeLedger` (its domain errors mapped by the runtime's interceptor; ``down`` and a
    lost answer as UNAVAILABLE)."""

    def __init__(self, ledger: FakeLedger) -> None:
        self.ledger = ledger

    async def _answer(self, context, work):
        try:
            return await work
        except LedgerUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    async def OpenAccount(self, request, context):
        return ledger_pb2.OpenAccountResponse(account=await self._answer(context, self.ledger.open_account(
            request.account_id, request.owner, request.currency_code)))

    async def PostEntry(self, request, context):
        entry = request.entry
        postings = [(p.account_id, p.amount.amount_minor) for p in entry.postings]
        return ledger_pb2.PostEntryResponse(entry=await self._answer(context, self.ledger.post_entry(
            entry.entry_id, postings, entry.postings[0].amount.currency_code, entry.memo)))

    async def GetAccount(self, request, context):
        return ledger_pb2.GetAccountResponse(account=await self._answer(context, self.ledger.get_account(
            request.account_id)))


def _server() -> grpc.aio.Server:
    return grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])


@pytest.fixture
async def served(tmp_path):
    """(fake ledger, TransferService stub, component): the service built by its DEFINITION, ledger calls of 2 s."""
    ledger = FakeLedger()
    ledger_server = _server()
    ledger_pb2_grpc.add_LedgerServiceServicer_to_server(FakeLedgerService(ledger), ledger_server)
    ledger_port = ledger_server.add_insecure_port("127.0.0.1:0")
    await ledger_server.start()
    topology = Topology(services={service.NAME: Endpoint(address="127.0.0.1:1"),
                                  service.LEDGER: Endpoint(address=f"127.0.0.1:{ledger_port}")},
                        data_dir=str(tmp_path), settings={service.NAME: {"ledger_timeout_s": 2.0}})
    context = RuntimeContext(topology).for_service(service.NAME)
    component = await service.DEFINITION.build(context)
    server = _server()
    component.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await component.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield ledger, transfers_pb2_grpc.TransferServiceStub(channel), component
    finally:
        if ledger.gate is not None:
            ledger.gate.set()
        await channel.close()
        await server.stop(None)
        await component.stop()
        await context.close()
        await ledger_server.stop(None)


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_the_definition():
    d = service.DEFINITION
    assert (d.name, d.dependencies, d.grpc_services) == (
        "banking-transfers", ("banking-ledger",), ("casemesh.banking.v1.TransferService",))
    assert d.access.public == {"OpenAccount", "Deposit", "Transfer", "GetTransfer"} and not d.access.internal
    assert d.settings_model is TransferSettings and not d.optional_dependencies
    assert metrics.TRANSFERS._name == "casemesh_banking_transfers_transfers"
    assert 0.05 in metrics.LEDGER_BUCKETS and 2.0 in metrics.LEDGER_BUCKETS


async def test_status_codes(served, tmp_path):
    ledger, stub, _ = served
    assert (tmp_path / "banking-transfers" / "transfers.sqlite3").is_file()
    posted = sample("casemesh_banking_transfers_ledger_calls_total", {"method": "PostEntry", "code": "OK"})
    alice = (await stub.OpenAccount(open_request("alice", 1_000), timeout=WAIT_S)).account
    assert alice.balance.amount_minor == 1_000
    await stub.OpenAccount(open_request("bob"), timeout=WAIT_S)
    assert sample("casemesh_banking_transfers_ledger_calls_total",
                  {"method": "PostEntry", "code": "OK"}) == posted + 1
    for call, expected in (
        (stub.OpenAccount(open_request("cash-USD"), timeout=WAIT_S), (INVALID, "account_id:")),
        (stub.OpenAccount(open_request("alice", owner=""), timeout=WAIT_S), (INVALID, "owner:")),
        (stub.OpenAccount(open_request("alice", -1), timeout=WAIT_S), (INVALID, "initial_deposit.amount_minor:")),
        (stub.OpenAccount(open_request("alice", owner="Eve"), timeout=WAIT_S), (grpc.StatusCode.ALREADY_EXISTS, "")),
        (stub.Deposit(deposit_request(account_id="nobody"), timeout=WAIT_S),
         (grpc.StatusCode.NOT_FOUND, "account_id:")),
        (stub.Deposit(deposit_request(amount=0), timeout=WAIT_S), (INVALID, "amount:")),
        (stub.Transfer(transfer_request(to="alice"), timeout=WAIT_S),
         (INVALID, "to_account_id:")),
        (stub.Transfer(transfer_request(memo="m" * 201), timeout=WAIT_S), (INVALID, "memo:")),
        (stub.Transfer(transfer_request(to="nobody"), timeout=WAIT_S), (grpc.StatusCode.NOT_FOUND, "to_account_id:")),
        (stub.GetTransfer(TS.GetTransferRequest(transfer_id="tr_x"), timeout=WAIT_S),
         (INVALID, "transfer_id:")),
        (stub.GetTransfer(TS.GetTransferRequest(transfer_id="tr_" + "a" * 24), timeout=WAIT_S),
         (grpc.StatusCode.NOT_FOUND, "transfer_id:")),
    ):
        code, details = await _code(call)
        assert (code, details.startswith(expected[1])) == (expected[0], True), details

    transfer = (await stub.Transfer(transfer_request(amount=400), timeout=WAIT_S)).transfer
    assert transfer.status == TS.TRANSFER_STATUS_COMPLETED
    assert (await stub.Transfer(transfer_request(amount=400), timeout=WAIT_S)).transfer == transfer
    got = await stub.GetTransfer(TS.GetTransferRequest(transfer_id=transfer.transfer_id), timeout=WAIT_S)
    assert got.transfer == transfer
    code, details = await _code(stub.Transfer(transfer_request(amount=401), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("idempotency_key:")
    # the ledger's FAILED_PRECONDITION insufficient_funds is a refusal, not an error
    declined = (await stub.Transfer(transfer_request(key="k2", amount=601), timeout=WAIT_S)).transfer
    assert declined.decline_reason == TS.DECLINE_REASON_INSUFFICIENT_FUNDS
    await stub.OpenAccount(TS.TransferServiceOpenAccountRequest(
        account_id="eve", owner="Eve", initial_deposit=money_pb2.Money(currency_code="EUR")), timeout=WAIT_S)
    code, details = await _code(stub.Transfer(transfer_request(key="k3", to="eve"), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and "EUR" in details

    # the ledger fails its PostEntry: UNAVAILABLE, PENDING; the retry finishes it
    ledger.posts_down = True
    code, _ = await _code(stub.Transfer(transfer_request(key="k4", amount=100), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and sample("casemesh_banking_transfers_pending") == 1
    ledger.posts_down = False
    assert (await stub.Transfer(transfer_request(key="k4", amount=100), timeout=WAIT_S)).transfer.status == (
        TS.TRANSFER_STATUS_COMPLETED)
    assert ledger.balances["bob"] == 500 and ledger.total() == 0

    # a ledger that does not answer within ledger_timeout_s: UNAVAILABLE
    ledger.gate = asyncio.Event()
    code, details = await _code(stub.Deposit(deposit_request(key="slow"), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "DEADLINE_EXCEEDED" in details
    assert sample("casemesh_banking_transfers_ledger_calls_total",
                  {"method": "GetAccount", "code": "DEADLINE_EXCEEDED"}) >= 1


async def test_both_services_under_concurrent_duplicated_calls(tmp_path):
    """The real ledger and transfers served by the runtime: transfers call the ledger's internal OpenAccount and
    PostEntry as ``banking-transfers``; every key sent twice at once; every key moves money once."""
    names = [ledger_service.NAME, service.NAME]
    topology = loopback_topology(names, data_dir=tmp_path, settings={service.NAME: {"velocity_max_transfers": 1_000}})
    running, stop, task = await start_mesh([ledger_service.DEFINITION, service.DEFINITION], topology)
    try:
        stub = transfers_pb2_grpc.TransferServiceStub(running.anonymous_channel(service.NAME))
        ledger = ledger_pb2_grpc.LedgerServiceStub(running.anonymous_channel(ledger_service.NAME))
        accounts = [f"acct{n}" for n in range(4)]
        for account in accounts:
            await stub.OpenAccount(open_request(account, 5_000), timeout=WAIT_S)
        rng = random.Random(7)
        plan = [(f"key{n}", *rng.sample(accounts, 2), rng.randint(1, 3_000)) for n in range(40)]

        async def send(key, frm, to, amount) -> transfers_pb2.Transfer:
            for _ in range(100):
                try:
                    return (await stub.Transfer(transfer_request(key=key, frm=frm, to=to, amount=amount),
                                                timeout=WAIT_S)).transfer
                except grpc.aio.AioRpcError as error:
                    assert error.code() in (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE), error.details()
                    await asyncio.sleep(0.01)
            raise AssertionError(f"{key} never answered")

        answers = await asyncio.gather(*(send(*step) for step in plan for _ in range(2)))
        expected = dict.fromkeys(accounts, 5_000)
        for n, (key, frm, to, amount) in enumerate(plan):
            first, second = answers[2 * n], answers[2 * n + 1]
            assert first == second, key
            if first.status == TS.TRANSFER_STATUS_COMPLETED:
                expected[frm] -= amount
                expected[to] += amount
            else:
                assert first.decline_reason == TS.DECLINE_REASON_INSUFFICIENT_FUNDS
        for account in accounts:
            got = (await ledger.GetAccount(ledger_pb2.GetAccountRequest(account_id=account), timeout=WAIT_S)).account
            assert got.balance.amount_minor == expected[account] >= 0
        result = await ledger.Reconcile(ledger_pb2.ReconcileRequest(), timeout=WAIT_S)
        completed = sum(answers[2 * n].status == TS.TRANSFER_STATUS_COMPLETED for n in range(len(plan)))
        assert result.balanced and result.entry_count == len(accounts) + completed
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
