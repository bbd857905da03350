"""The transfer service without gRPC: OpenAccount, Deposit, Transfer, GetTransfer, and the resumption of PENDING rows.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). The invariant this module
exists for: **one idempotency key moves money at most once, and a transfer the customer was told about (or that was
sent to the ledger) is never lost** — also when this service or the ledger dies between the posting and the answer.
The pattern is the payment gateway's idempotency keys (services/payments/gateway/idempotency.py, after Stripe's).

Transfer (every write is fsynced before the next step):

1. validate (:mod:`.validation`: INVALID_ARGUMENT naming the field);
2. the key's row (:mod:`.store`, found by (source account, key)): decided → the stored transfer, a DECLINED one too
   (a replay), when the request's hash (:func:`request_hash`) is the same; another hash → FAILED_PRECONDITION
   "idempotency_key: used for a different request"; a call of this process holds the key → ABORTED (retry it);
3. no row: GetAccount of both accounts (NOT_FOUND naming the field), FAILED_PRECONDITION when their currencies
   differ, INVALID_ARGUMENT ``amount`` when the amount's currency is not theirs; the transfer id ``tr_…`` is derived
   from (source account, key) (:mod:`.ids`); the fraud rules (:mod:`.fraud`): a refusal is written DECLINED and
   answered; else the row is written PENDING **before** the ledger is asked;
4. LedgerService.PostEntry with entry_id = the transfer id, postings [-amount from, +amount to] and the memo:
   COMPLETED with the entry's sequence, or DECLINED INSUFFICIENT_FUNDS (the ledger's FAILED_PRECONDITION
   ``insufficient_funds``); the decision is written, then answered. No answer from the ledger → UNAVAILABLE, the row
   stays PENDING.

A PENDING row (this service died, or the ledger did not answer) is resumed by the customer's retry, or after
``recovery_grace_s`` by the background recovery (:mod:`.recovery`): the fraud rules are not asked again (they
passed), PostEntry is sent again with the same entry id, and the ledger answers a repeated entry id with the entry it
holds: never two entries, never a lost one.

Deposit is the same without fraud rules (kind ``deposit``, id ``dep_…`` from (account, key), postings [-amount
``cash-<CUR>``, +amount account]; a concurrent call with the same key waits for the first and gets its answer).
OpenAccount: LedgerService.OpenAccount, then with a non-zero initial deposit a Deposit with the key
``open:<account_id>`` (an account opened before with another initial deposit is returned as it is), then GetAccount.

Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`.ledger.Unavailable` (UNAVAILABLE),
as protos/casemesh/banking/v1/transfers.proto lists them per RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace

from google.protobuf.message import Message

from casemesh.banking.v1 import banking_pb2, transfers_pb2
from casemesh.common.v1 import money_pb2

from ...runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from ...runtime.keyed_locks import KeyedLocks
from ..contract import cash_account_id, open_deposit_key
from . import ids, metrics, validation
from .fraud import DAY_MS, FraudRules
from .ledger import InsufficientFunds, Ledger
from .settings import TransferSettings
from .store import (
    COMPLETED,
    DECLINED,
    DEPOSIT,
    DEPOSIT_MEMO,
    PENDING,
    TRANSFER,
    StoreUnavailable,
    TransferRow,
    TransferStore,
    decide,
    insert_row,
)

Scope = tuple[str, str, str]


class KeyConflict(FailedPrecondition):
    """The idempotency key was used for a different request (FAILED_PRECONDITION)."""

    def __init__(self) -> None:
        super().__init__("idempotency_key: used for a different request")


def request_hash(request: Message) -> str:
    """SHA-256 (hex) of ``request`` serialised deterministically without its ``idempotency_key``."""
    copy = type(request)()
    copy.CopyFrom(request)
    copy.ClearField("idempotency_key")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


def reason_name(decline_reason: int) -> str:
    """``insufficient_funds`` for DECLINE_REASON_INSUFFICIENT_FUNDS."""
    return transfers_pb2.DeclineReason.Name(decline_reason).removeprefix("DECLINE_REASON_").lower()


class Transfers:
    """The service's domain (see the module docstring): ``store`` its records, ``ledger`` the ledger's client,
    ``id_key`` the key of :mod:`.ids`. ``clock()`` is seconds since the Unix epoch."""

    def __init__(self, settings: TransferSettings, store: TransferStore, ledger: Ledger, *, id_key: bytes,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self.fraud = FraudRules(settings)
        self._ledger = ledger
        self._id_key = id_key
        self._clock = clock
        self._locks = KeyedLocks()
        self._held: set[Scope] = set()

    def now_ms(self) -> int:
        """``clock()`` in whole Unix milliseconds."""
        return int(self._clock() * 1000)

    async def start(self) -> int:
        """Rebuild the fraud windows from the store's transfers of the last 24 h and set the PENDING gauge; how many
        rows are PENDING."""
        now = self.now_ms()
        self.fraud.load(await self.store.outgoing_since(now - DAY_MS), now)
        pending = await self.store.count_pending()
        metrics.PENDING.set(pending)
        return pending

    async def close(self) -> None:
        """Close the store (queued writes finish first)."""
        await self.store.close()

    # -- keys -------------------------------------------------------------------------------------------------------

    def held(self, scope: Scope) -> bool:
        """Whether a call of this process holds the key of ``scope``."""
        return scope in self._held

    @contextlib.asynccontextmanager
    async def _claim(self, scope: Scope, *, wait: bool) -> AsyncIterator[None]:
        """Hold ``scope``'s key for the block: ABORTED while another call holds it, or with ``wait`` after it."""
        if not wait and scope in self._held:
            raise Aborted(f"idempotency_key: a {scope[0]} with this key is in flight; retry it")
        async with self._locks.hold("\x00".join(scope)):
            self._held.add(scope)
            try:
                yield
            finally:
                self._held.discard(scope)

    async def _stored(self, scope: Scope, hash_: str) -> TransferRow | None:
        """The key's row, or ``None``; :class:`KeyConflict` when it was written for another request."""
        row = await self.store.by_key(*scope)
        if row is not None and row.request_hash != hash_:
            raise KeyConflict()
        return row

    async def _write_pending(self, row: TransferRow) -> None:
        """Write a new PENDING row; a cancelled caller does not stop it (nor its count in the gauge)."""
        await asyncio.shield(self._insert_pending(row))

    async def _insert_pending(self, row: TransferRow) -> None:
        try:
            await self.store.write([insert_row(row)])
        except StoreUnavailable:
            if row.kind == TRANSFER:
                self.fraud.release(row.transfer_id, row.from_account_id)
            raise
        metrics.PENDING.inc()

    # -- accounts ---------------------------------------------------------------------------------------------------

    async def _accounts(self, *named: tuple[str, str]) -> list[banking_pb2.Account]:
        """GetAccount of each (field, account_id) side by side; NOT_FOUND naming the first field without one."""
        results = await asyncio.gather(*(self._ledger.get_account(account_id) for _, account_id in named),
                                       return_exceptions=True)
        for (field, account_id), result in zip(named, results, strict=True):
            if isinstance(result, NotFound):
                raise NotFound(f"{field}: no account {account_id}")
            if isinstance(result, BaseException):
                raise result
        return list(results)

    # -- OpenAccount, Deposit ---------------------------------------------------------------------------------------

    async def open_account(self, request: transfers_pb2.TransferServiceOpenAccountRequest
                           ) -> transfers_pb2.TransferServiceOpenAccountResponse:
        """OpenAccount (see the module docstring). INVALID_ARGUMENT, ALREADY_EXISTS (another owner or currency),
        :class:`.ledger.Unavailable`."""
        v = validation.open_account(request)
        account = await self._ledger.open_account(v.account_id, v.owner, v.currency_code)
        if v.amount_minor == 0:
            return transfers_pb2.TransferServiceOpenAccountResponse(account=account)
        deposit = transfers_pb2.DepositRequest(
            idempotency_key=open_deposit_key(v.account_id), account_id=v.account_id,
            amount=money_pb2.Money(currency_code=v.currency_code, amount_minor=v.amount_minor))
        with contextlib.suppress(KeyConflict):  # opened before with another initial deposit: returned as it is
            await self._deposit(validation.deposit(deposit), request_hash(deposit), account.currency_code)
        return transfers_pb2.TransferServiceOpenAccountResponse(account=await self._ledger.get_account(v.account_id))

    async def deposit(self, request: transfers_pb2.DepositRequest) -> transfers_pb2.DepositResponse:
        """Deposit (see the module docstring). INVALID_ARGUMENT (also ``amount`` in another currency than the
        account's), NOT_FOUND, FAILED_PRECONDITION (the key), :class:`.ledger.Unavailable`."""
        row = await self._deposit(validation.deposit(request), request_hash(request))
        return transfers_pb2.DepositResponse(entry=row.to_entry())

    async def _deposit(self, v: validation.Deposit, hash_: str, currency_code: str | None = None) -> TransferRow:
        """The deposit of ``v``, COMPLETED; ``currency_code`` the account's when known (else GetAccount asks)."""
        scope = (DEPOSIT, v.account_id, v.idempotency_key)
        row = await self._stored(scope, hash_)
        if row is not None and row.state == COMPLETED:
            metrics.REPLAYS.labels(DEPOSIT).inc()
            return row
        async with self._claim(scope, wait=True):
            row = await self._stored(scope, hash_)
            if row is None:
                if currency_code is None:
                    currency_code = (await self._accounts(("account_id", v.account_id)))[0].currency_code
                if v.currency_code != currency_code:
                    raise InvalidArgument("amount", f"{v.currency_code} is not the account's currency "
                                                    f"{currency_code}")
                row = TransferRow(ids.deposit_id(self._id_key, v.account_id, v.idempotency_key), DEPOSIT,
                                  v.idempotency_key, cash_account_id(v.currency_code), v.account_id, v.amount_minor,
                                  v.currency_code, DEPOSIT_MEMO, hash_, PENDING, 0, 0, self.now_ms(), 0)
                await self._write_pending(row)
            elif row.state == COMPLETED:  # a call we waited for decided it
                metrics.REPLAYS.labels(DEPOSIT).inc()
                return row
            return await self._finish(row)

    # -- Transfer ---------------------------------------------------------------------------------------------------

    async def transfer(self, request: transfers_pb2.TransferRequest) -> transfers_pb2.TransferResponse:
        """Transfer (see the module docstring): COMPLETED or DECLINED. INVALID_ARGUMENT, NOT_FOUND,
        FAILED_PRECONDITION (currencies, the key), ABORTED (the key in flight), :class:`.ledger.Unavailable` (the
        ledger or the store: retry with the same key)."""
        v = validation.transfer(request)
        hash_ = request_hash(request)
        scope = (TRANSFER, v.from_account_id, v.idempotency_key)
        row = await self._stored(scope, hash_)
        if row is None or row.state == PENDING:
            async with self._claim(scope, wait=False):
                row = await self._stored(scope, hash_)
                if row is None:
                    row = await self._new_transfer(v, hash_)
                elif row.state != PENDING:  # decided between the two reads
                    return self._replay(row)
                if row.state == PENDING:
                    row = await self._finish(row)
            return transfers_pb2.TransferResponse(transfer=row.to_proto())
        return self._replay(row)

    @staticmethod
    def _replay(row: TransferRow) -> transfers_pb2.TransferResponse:
        metrics.REPLAYS.labels(TRANSFER).inc()
        return transfers_pb2.TransferResponse(transfer=row.to_proto())

    async def _new_transfer(self, v: validation.Transfer, hash_: str) -> TransferRow:
        """The row of a new transfer: written DECLINED by a fraud rule, else PENDING (and recorded in the rules'
        windows)."""
        source, target = await self._accounts(("from_account_id", v.from_account_id),
                                              ("to_account_id", v.to_account_id))
        if source.currency_code != target.currency_code:
            raise FailedPrecondition(f"to_account_id: account {v.to_account_id} is in {target.currency_code}, "
                                     f"account {v.from_account_id} in {source.currency_code}")
        if v.currency_code != source.currency_code:
            raise InvalidArgument("amount", f"{v.currency_code} is not the accounts' currency {source.currency_code}")
        transfer_id = ids.transfer_id(self._id_key, v.from_account_id, v.idempotency_key)
        paid_before = (await self.store.has_paid(v.from_account_id, v.to_account_id)
                       if self.fraud.needs_payee_check(v.amount_minor) else True)
        now = self.now_ms()
        reason = self.fraud.check(transfer_id, v.from_account_id, v.amount_minor, now, paid_before)
        row = TransferRow(transfer_id, TRANSFER, v.idempotency_key, v.from_account_id, v.to_account_id,
                          v.amount_minor, v.currency_code, v.memo, hash_, PENDING, 0, 0, now, 0)
        if reason:
            row = replace(row, state=DECLINED, decline_reason=reason, decided_at_unix_ms=now)
            await self.store.write([insert_row(row)])
            metrics.TRANSFERS.labels("declined", reason_name(reason)).inc()
            return row
        await self._write_pending(row)
        return row

    async def _finish(self, row: TransferRow) -> TransferRow:
        """Post a PENDING row's entry and store the decision; the decided row. :class:`.ledger.Unavailable` (the row
        stays PENDING); a ledger refusal other than insufficient funds of a transfer is raised as it is (the row
        stays PENDING)."""
        try:
            entry = await self._ledger.post_entry(row.transfer_id, row.postings, row.currency_code, row.memo)
        except InsufficientFunds:
            if row.kind != TRANSFER:
                raise
            decided = replace(row, state=DECLINED, decline_reason=transfers_pb2.DECLINE_REASON_INSUFFICIENT_FUNDS,
                              decided_at_unix_ms=self.now_ms())
        else:
            decided = replace(row, state=COMPLETED, entry_sequence=entry.sequence,
                              decided_at_unix_ms=entry.posted_at_unix_ms or self.now_ms())
        await asyncio.shield(self._decide(decided))
        return decided

    async def _decide(self, decided: TransferRow) -> None:
        """Store a decision and count it; a cancelled caller does not stop it."""
        await self.store.write([decide(decided)])
        metrics.PENDING.dec()
        if decided.kind == DEPOSIT:
            metrics.DEPOSITS.inc()
        elif decided.state == COMPLETED:
            metrics.TRANSFERS.labels("completed", "none").inc()
        else:
            self.fraud.release(decided.transfer_id, decided.from_account_id)
            metrics.TRANSFERS.labels("declined", reason_name(decided.decline_reason)).inc()

    # -- GetTransfer, resumption ------------------------------------------------------------------------------------

    async def get_transfer(self, request: transfers_pb2.GetTransferRequest) -> transfers_pb2.GetTransferResponse:
        """GetTransfer: the transfer as decided. INVALID_ARGUMENT ``transfer_id``; NOT_FOUND (also while it is
        PENDING: its id is answered only once it is decided)."""
        transfer_id = validation.transfer_id(request.transfer_id)
        row = await self.store.get(transfer_id)
        if row is None or row.kind != TRANSFER or row.state == PENDING:
            raise NotFound(f"transfer_id: no transfer {transfer_id}")
        return transfers_pb2.GetTransferResponse(transfer=row.to_proto())

    async def resume(self, row: TransferRow) -> TransferRow | None:
        """Finish the PENDING ``row`` unless a call holds its key or it was decided since: the decided row, or
        ``None``. Errors as :meth:`_finish`."""
        if self.held(row.scope):
            return None
        async with self._claim(row.scope, wait=False):
            current = await self.store.get(row.transfer_id)
            if current is None or current.state != PENDING:
                return None
            return await self._finish(current)
