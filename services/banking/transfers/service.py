"""``casemesh.banking.v1.TransferService`` (topology name ``banking-transfers``).

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). A thin servicer over the domain,
:class:`.transfers.Transfers` (idempotency keys and the PENDING-before-posting protocol, fraud rules :mod:`.fraud`,
the durable records :mod:`.store`, the background recovery :mod:`.recovery`). Calls out to ``banking-ledger``
(OpenAccount and PostEntry, internal to this service's identity, which the runtime's channel carries; GetAccount),
each with the explicit deadline ``ledger_timeout_s`` (:mod:`.ledger`).

RPCs and status codes (protos/casemesh/banking/v1/transfers.proto), all public:

- OpenAccount: INVALID_ARGUMENT naming ``account_id`` (also a ``cash-`` one), ``owner``,
  ``initial_deposit.currency_code`` or ``initial_deposit.amount_minor``; ALREADY_EXISTS (another owner or currency);
  UNAVAILABLE when the ledger cannot be reached (retry).
- Deposit: INVALID_ARGUMENT naming ``idempotency_key``, ``account_id`` or ``amount`` (also in another currency than
  the account's); NOT_FOUND; FAILED_PRECONDITION when the key was used for a different request; UNAVAILABLE (retry
  with the same key).
- Transfer: INVALID_ARGUMENT naming ``idempotency_key``, ``from_account_id``, ``to_account_id``, ``amount`` or
  ``memo``; NOT_FOUND naming the account; FAILED_PRECONDITION when the currencies differ or the key was used for a
  different request; ABORTED while a call with the same key is in flight; UNAVAILABLE when the ledger (or the store)
  cannot be reached (retry with the same key). A refusal is an answer: DECLINED with its reason.
- GetTransfer: INVALID_ARGUMENT naming ``transfer_id``; NOT_FOUND.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.TransferSettings` (A/B switch ``fraud_rules``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc

from casemesh.banking.v1 import ledger_pb2_grpc, transfers_pb2, transfers_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .ids import ID_KEY_PURPOSE
from .ledger import LedgerClient
from .recovery import Recovery
from .settings import TransferSettings
from .store import TransferStore
from .transfers import Transfers

log = logging.getLogger("casemesh.banking.transfers.service")

NAME = "banking-transfers"
LEDGER = "banking-ledger"
FULL_NAME = transfers_pb2.DESCRIPTOR.services_by_name["TransferService"].full_name
#: The service's SQLite file, under DATA_DIR/banking-transfers/.
DB_FILE = "transfers.sqlite3"
#: Every method: the bank's customers (their apps) call them.
PUBLIC_METHODS = frozenset({"OpenAccount", "Deposit", "Transfer", "GetTransfer"})



class TransferServicer(transfers_pb2_grpc.TransferServiceServicer):
    """Calls :class:`.transfers.Transfers` (which validates each request: :mod:`.validation`)."""

    def __init__(self, transfers: Transfers) -> None:
        self._transfers = transfers

    async def OpenAccount(self, request: transfers_pb2.TransferServiceOpenAccountRequest,
                          context: grpc.aio.ServicerContext) -> transfers_pb2.TransferServiceOpenAccountResponse:
        return await self._transfers.open_account(request)

    async def Deposit(self, request: transfers_pb2.DepositRequest,
                      context: grpc.aio.ServicerContext) -> transfers_pb2.DepositResponse:
        return await self._transfers.deposit(request)

    async def Transfer(self, request: transfers_pb2.TransferRequest,
                       context: grpc.aio.ServicerContext) -> transfers_pb2.TransferResponse:
        return await self._transfers.transfer(request)

    async def GetTransfer(self, request: transfers_pb2.GetTransferRequest,
                          context: grpc.aio.ServicerContext) -> transfers_pb2.GetTransferResponse:
        return await self._transfers.get_transfer(request)


class TransfersComponent:
    """The servicer over the store (``DATA_DIR/banking-transfers/transfers.sqlite3``), the ledger's stub, and the
    background recovery."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, TransferSettings)
        store = TransferStore(context.data_dir(NAME) / DB_FILE)
        ledger = LedgerClient(ledger_pb2_grpc.LedgerServiceStub(context.channel(LEDGER)), settings.ledger_timeout_s)
        self.transfers = Transfers(settings, store, ledger,
                                   id_key=context.secret.keyring(ID_KEY_PURPOSE).current_key)
        self.recovery = Recovery(self.transfers)

    def register(self, server: grpc.aio.Server) -> None:
        transfers_pb2_grpc.add_TransferServiceServicer_to_server(TransferServicer(self.transfers), server)

    async def start(self) -> None:
        pending = await self.transfers.start()
        if pending:
            log.info("%s: %d transfers and deposits PENDING; the recovery finishes them", NAME, pending)
        self.recovery.start()

    async def stop(self) -> None:
        await self.recovery.stop()
        await self.transfers.close()


async def build(context: RuntimeContext) -> TransfersComponent:
    return TransfersComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(LEDGER,), build=build, settings_model=TransferSettings,
    access=Access(public=PUBLIC_METHODS),
)
