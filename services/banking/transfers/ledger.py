"""banking-transfers' calls to the ledger (``casemesh.banking.v1.LedgerService``), as the domain sees them.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "Online Banking | Double-entry ledger, ACID
transactions"). :class:`LedgerClient` wraps ``ledger_pb2_grpc.LedgerServiceStub`` over the runtime's channel to
``banking-ledger`` (which carries this service's identity: OpenAccount and PostEntry are internal to
``banking-transfers``), passes an explicit ``timeout=`` on every call (the runtime channel's default deadline is
500 ms), times each call (``casemesh_banking_transfers_ledger_call_seconds``) and turns its errors into what the
domain decides on:

- NOT_FOUND → :class:`~services.runtime.errors.NotFound`; INVALID_ARGUMENT → ``InvalidArgument`` (the ledger's field
  path); ALREADY_EXISTS → ``AlreadyExists``;
- FAILED_PRECONDITION whose reason is ``contract.INSUFFICIENT_FUNDS`` → :class:`InsufficientFunds`; any other
  (``contract.ENTRY_ID_CONFLICT``) → ``FailedPrecondition``;
- anything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, CANCELLED, ...) → :class:`LedgerUnavailable`: the
  ledger may or may not have done it (a PostEntry is retried with the same entry ID, which posts it at most once).

:class:`Unavailable` is the service's "answer UNAVAILABLE: retry with the same key" (the servicer maps it).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

import grpc

from casemesh.banking.v1 import banking_pb2, ledger_pb2, ledger_pb2_grpc
from casemesh.common.v1 import money_pb2

from ...runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from ...runtime.errors import Unavailable as RuntimeUnavailable
from ..contract import INSUFFICIENT_FUNDS, failed_precondition_reason
from . import metrics


class Unavailable(RuntimeUnavailable):
    """The call cannot be served now (the ledger or the store failed): UNAVAILABLE, retry with the same key."""


class LedgerUnavailable(Unavailable):
    """The ledger did not answer (UNAVAILABLE, DEADLINE_EXCEEDED, ...): it may or may not have done it."""


class InsufficientFunds(FailedPrecondition):
    """The ledger refused an entry because a customer account would go below zero: nothing was posted."""


class Ledger(Protocol):
    """The three LedgerService calls banking-transfers makes (errors as the module docstring says)."""

    async def open_account(self, account_id: str, owner: str, currency_code: str) -> banking_pb2.Account: ...

    async def post_entry(self, entry_id: str, postings: Sequence[tuple[str, int]], currency_code: str,
                         memo: str) -> banking_pb2.JournalEntry: ...

    async def get_account(self, account_id: str) -> banking_pb2.Account: ...


def journal_entry(entry_id: str, postings: Sequence[tuple[str, int]], currency_code: str, memo: str,
                  sequence: int = 0, posted_at_unix_ms: int = 0) -> banking_pb2.JournalEntry:
    """A JournalEntry of ``postings`` ((account_id, signed minor units), all in ``currency_code``)."""
    return banking_pb2.JournalEntry(
        entry_id=entry_id, memo=memo, sequence=sequence, posted_at_unix_ms=posted_at_unix_ms,
        postings=[banking_pb2.Posting(account_id=account_id, amount=money_pb2.Money(
            currency_code=currency_code, amount_minor=amount_minor)) for account_id, amount_minor in postings])


def _domain_error(error: grpc.aio.AioRpcError) -> Exception:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.ALREADY_EXISTS:
        return AlreadyExists(details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, sep, reason = details.partition(": ")
        return InvalidArgument(field, reason) if sep else InvalidArgument("request", details)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        if failed_precondition_reason(details) == INSUFFICIENT_FUNDS:
            return InsufficientFunds(details)
        return FailedPrecondition(details)
    return LedgerUnavailable(f"banking-ledger did not answer ({code.name}: {details}); retry with the same key")


class LedgerClient:
    """:class:`Ledger` over ``ledger_pb2_grpc.LedgerServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: ledger_pb2_grpc.LedgerServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def _call(self, name: str, request):
        started = time.perf_counter()
        code = "OK"
        try:
            return await getattr(self._stub, name)(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            raise _domain_error(error) from None
        finally:
            metrics.LEDGER_SECONDS.labels(name).observe(time.perf_counter() - started)
            metrics.LEDGER_CALLS.labels(name, code).inc()

    async def open_account(self, account_id: str, owner: str, currency_code: str) -> banking_pb2.Account:
        return (await self._call("OpenAccount", ledger_pb2.OpenAccountRequest(
            account_id=account_id, owner=owner, currency_code=currency_code))).account

    async def post_entry(self, entry_id: str, postings: Sequence[tuple[str, int]], currency_code: str,
                         memo: str) -> banking_pb2.JournalEntry:
        return (await self._call("PostEntry", ledger_pb2.PostEntryRequest(
            entry=journal_entry(entry_id, postings, currency_code, memo)))).entry

    async def get_account(self, account_id: str) -> banking_pb2.Account:
        return (await self._call("GetAccount", ledger_pb2.GetAccountRequest(account_id=account_id))).account
