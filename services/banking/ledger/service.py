"""``casemesh.banking.v1.LedgerService`` (topology name ``banking-ledger``): the bank's double-entry ledger.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). A thin servicer over
:class:`.ledger.Ledger` (isolation :mod:`.locking`, the durable log :mod:`.store`, :mod:`.reconcile`); input rules in
:mod:`.validation`. Calls no other service.

RPCs and status codes (protos/casemesh/banking/v1/ledger.proto):

- OpenAccount (internal, caller ``banking-transfers``): INVALID_ARGUMENT naming ``account_id`` (or it starts with
  "cash-"), ``owner`` or ``currency_code``; ALREADY_EXISTS when the ID is open with another owner or currency;
  UNAVAILABLE when the log cannot be written.
- PostEntry (internal, caller ``banking-transfers``): INVALID_ARGUMENT naming ``entry.entry_id``, ``entry.postings``,
  ``entry.postings[i].account_id``, ``entry.postings[i].amount`` or ``entry.memo``; NOT_FOUND for an account not
  open; FAILED_PRECONDITION ``insufficient_funds: ...`` or ``entry_id_conflict: ...``; UNAVAILABLE when the log cannot
  be written (nothing posted, nothing applied in memory: retry with the same ``entry_id``).
- GetAccount (public): INVALID_ARGUMENT naming ``account_id``; NOT_FOUND.
- ListEntries (public): INVALID_ARGUMENT naming ``account_id``, ``page_size`` or ``page_token``; NOT_FOUND.
- Reconcile (public): none (UNAVAILABLE only when the file cannot be read).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.LedgerSettings` (A/B switch ``locking``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations


import grpc

from casemesh.banking.v1 import banking_pb2, ledger_pb2, ledger_pb2_grpc
from casemesh.common.v1 import money_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .ledger import AccountView, Ledger
from .records import EntryRecord
from .settings import LedgerSettings
from .store import FILE_NAME, LedgerStore

NAME = "banking-ledger"
TRANSFERS = "banking-transfers"
LEDGER_FULL_NAME = ledger_pb2.DESCRIPTOR.services_by_name["LedgerService"].full_name
#: Methods anyone may call (the harness, the bank's back office).
PUBLIC_METHODS = frozenset({"GetAccount", "ListEntries", "Reconcile"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"OpenAccount": (TRANSFERS,), "PostEntry": (TRANSFERS,)}


def account_message(view: AccountView) -> banking_pb2.Account:
    record = view.record
    return banking_pb2.Account(
        account_id=record.account_id, kind=record.kind, owner=record.owner, currency_code=record.currency_code,
        balance=money_pb2.Money(currency_code=record.currency_code, amount_minor=view.balance_minor),
        entry_count=view.entry_count, opened_at_unix_ms=record.opened_at_unix_ms)


def entry_message(entry: EntryRecord) -> banking_pb2.JournalEntry:
    return banking_pb2.JournalEntry(
        entry_id=entry.entry_id, memo=entry.memo, sequence=entry.sequence, posted_at_unix_ms=entry.posted_at_unix_ms,
        postings=[banking_pb2.Posting(account_id=p.account_id, amount=money_pb2.Money(
            currency_code=p.currency_code, amount_minor=p.amount_minor)) for p in entry.postings])



class LedgerServicer(ledger_pb2_grpc.LedgerServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.ledger.Ledger`."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def OpenAccount(self, request: ledger_pb2.OpenAccountRequest,
                          context: grpc.aio.ServicerContext) -> ledger_pb2.OpenAccountResponse:
        view = await self._ledger.open_account(validation.open_account(request))
        return ledger_pb2.OpenAccountResponse(account=account_message(view))

    async def PostEntry(self, request: ledger_pb2.PostEntryRequest,
                        context: grpc.aio.ServicerContext) -> ledger_pb2.PostEntryResponse:
        entry = await self._ledger.post(validation.post_entry(request))
        return ledger_pb2.PostEntryResponse(entry=entry_message(entry))

    async def GetAccount(self, request: ledger_pb2.GetAccountRequest,
                         context: grpc.aio.ServicerContext) -> ledger_pb2.GetAccountResponse:
        view = self._ledger.account(validation.account_id(request.account_id))
        return ledger_pb2.GetAccountResponse(account=account_message(view))

    async def ListEntries(self, request: ledger_pb2.ListEntriesRequest,
                          context: grpc.aio.ServicerContext) -> ledger_pb2.ListEntriesResponse:
        account_id = validation.account_id(request.account_id)
        statement = await self._ledger.statement(account_id, validation.page_size(request.page_size),
                                                 request.page_token)
        return ledger_pb2.ListEntriesResponse(entries=[entry_message(e) for e in statement.entries],
                                              next_page_token=statement.next_page_token)

    async def Reconcile(self, request: ledger_pb2.ReconcileRequest,
                        context: grpc.aio.ServicerContext) -> ledger_pb2.ReconcileResponse:
        result = await self._ledger.reconcile()
        return ledger_pb2.ReconcileResponse(
            balanced=result.balanced, account_count=result.account_count, entry_count=result.entry_count,
            sequence=result.sequence, total_minor_by_currency=result.total_minor_by_currency,
            discrepancies=result.discrepancies)


class LedgerComponent:
    """The servicer over the ledger and its file (``DATA_DIR/banking-ledger/ledger.sqlite3``)."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, LedgerSettings)
        store = LedgerStore(context.data_dir(NAME) / FILE_NAME, settings.max_commit_entries)
        self.ledger = Ledger(store, settings)

    def register(self, server: grpc.aio.Server) -> None:
        ledger_pb2_grpc.add_LedgerServiceServicer_to_server(LedgerServicer(self.ledger), server)

    async def start(self) -> None:
        await self.ledger.start()

    async def stop(self) -> None:
        await self.ledger.close()


async def build(context: RuntimeContext) -> LedgerComponent:
    return LedgerComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(LEDGER_FULL_NAME,), dependencies=(), build=build, settings_model=LedgerSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
