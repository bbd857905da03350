"""banking-transfers' durable records: one row per transfer and per deposit, written before the ledger is asked.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "Online Banking | Double-entry ledger, ACID
transactions, fraud detection"): nothing the service told a customer, and nothing it is about to post, may be lost.
One SQLite file, ``DATA_DIR/banking-transfers/transfers.sqlite3``, opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): :meth:`TransferStore.write` returns once
its statements are committed and fsynced. Concurrent writes are group-committed (one transaction, one fsync, for all
the writes waiting; a batch that fails is retried one write at a time, so one bad write fails only itself), all reads
and writes in one worker thread: the event loop never waits on the disk.

Table ``transfers``, one row per call that moves money (:class:`TransferRow`): ``kind`` ``transfer`` (id ``tr_…``)
or ``deposit`` (id ``dep_…``, from the bank's cash account), the idempotency key and the SHA-256 of the request
without it (``request_hash``), the accounts, amount (minor units), currency and memo, ``state`` PENDING → COMPLETED
(with the ledger's ``entry_sequence``) or DECLINED (with its ``decline_reason``, a ``DeclineReason``), and the times
(Unix ms; ``decided_at_unix_ms`` 0 while PENDING). A transfer refused by a fraud rule is written DECLINED at once.

The schema holds the invariants, so no bug above it can break them: one row per (source account, key) of a transfer
and per (account, key) of a deposit (partial unique indexes: the scope of an idempotency key); an amount of 1 to
``MAX_AMOUNT_MINOR``; a decline reason exactly when DECLINED, an entry sequence exactly when COMPLETED, a decision
time exactly when decided; a deposit is never DECLINED; and triggers: a decided row never changes again, a row's
request (accounts, amount, memo, key, hash) never changes, and no row is ever deleted (a financial record).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Any

from casemesh.banking.v1 import banking_pb2, transfers_pb2
from casemesh.common.v1 import money_pb2

from ...runtime.sqlite_journal import open_durable
from ..contract import MAX_AMOUNT_MINOR
from . import metrics
from .ids import DEPOSIT_ID_PREFIX, TRANSFER_ID_PREFIX
from .ledger import Unavailable, journal_entry

log = logging.getLogger("casemesh.banking.transfers.store")

#: Most writes in one group commit.
MAX_COMMIT_WRITES = 256

TRANSFER = "transfer"
DEPOSIT = "deposit"
PENDING = "PENDING"
COMPLETED = "COMPLETED"
DECLINED = "DECLINED"
#: A deposit's memo in the ledger.
DEPOSIT_MEMO = "deposit"

_ROW_CHECKS = (
    f" CHECK (kind IN ('{TRANSFER}', '{DEPOSIT}')),"
    f" CHECK ((kind = '{TRANSFER}') = (substr(transfer_id, 1, {len(TRANSFER_ID_PREFIX)}) = '{TRANSFER_ID_PREFIX}')),"
    f" CHECK ((kind = '{DEPOSIT}') = (substr(transfer_id, 1, {len(DEPOSIT_ID_PREFIX)}) = '{DEPOSIT_ID_PREFIX}')),"
    f" CHECK (amount_minor BETWEEN 1 AND {MAX_AMOUNT_MINOR}),"
    " CHECK (from_account_id <> to_account_id),"
    f" CHECK (state IN ('{PENDING}', '{COMPLETED}', '{DECLINED}')),"
    f" CHECK ((state = '{DECLINED}') = (decline_reason <> 0)),"
    f" CHECK ((state = '{COMPLETED}') = (entry_sequence > 0)),"
    f" CHECK ((state = '{PENDING}') = (decided_at_unix_ms = 0)),"
    f" CHECK (kind = '{TRANSFER}' OR state <> '{DECLINED}')"
)
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS transfers ("
     " transfer_id TEXT PRIMARY KEY, kind TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
     " from_account_id TEXT NOT NULL, to_account_id TEXT NOT NULL, amount_minor INTEGER NOT NULL,"
     " currency_code TEXT NOT NULL, memo TEXT NOT NULL, request_hash TEXT NOT NULL, state TEXT NOT NULL,"
     " decline_reason INTEGER NOT NULL, entry_sequence INTEGER NOT NULL, created_at_unix_ms INTEGER NOT NULL,"
     f" decided_at_unix_ms INTEGER NOT NULL,{_ROW_CHECKS})"),
    # The scope of an idempotency key: the source account of a transfer, the account of a deposit.
    (f"CREATE UNIQUE INDEX IF NOT EXISTS transfers_key ON transfers (from_account_id, idempotency_key) "
     f"WHERE kind = '{TRANSFER}'"),
    (f"CREATE UNIQUE INDEX IF NOT EXISTS deposits_key ON transfers (to_account_id, idempotency_key) "
     f"WHERE kind = '{DEPOSIT}'"),
    f"CREATE INDEX IF NOT EXISTS transfers_pending ON transfers (created_at_unix_ms) WHERE state = '{PENDING}'",
    f"CREATE INDEX IF NOT EXISTS transfers_recent ON transfers (created_at_unix_ms) WHERE kind = '{TRANSFER}'",
    (f"CREATE INDEX IF NOT EXISTS transfers_payees ON transfers (from_account_id, to_account_id) "
     f"WHERE kind = '{TRANSFER}' AND state = '{COMPLETED}'"),
    ("CREATE TRIGGER IF NOT EXISTS transfers_decided BEFORE UPDATE ON transfers "
     f"WHEN OLD.state <> '{PENDING}' "
     "BEGIN SELECT RAISE(ABORT, 'transfers_decided: a decided transfer never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS transfers_request BEFORE UPDATE OF transfer_id, kind, idempotency_key, "
     "from_account_id, to_account_id, amount_minor, currency_code, memo, request_hash, created_at_unix_ms "
     "ON transfers BEGIN SELECT RAISE(ABORT, 'transfers_request: a transfer''s request never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS transfers_kept BEFORE DELETE ON transfers "
     "BEGIN SELECT RAISE(ABORT, 'transfers_kept: a transfer is never deleted'); END"),
)

Statement = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class TransferRow:
    """One transfer or deposit (a row of ``transfers``; see the module docstring). Amount in minor units of
    ``currency_code``; ``decline_reason`` a ``DeclineReason``; times in Unix ms."""

    transfer_id: str
    kind: str
    idempotency_key: str
    from_account_id: str
    to_account_id: str
    amount_minor: int
    currency_code: str
    memo: str
    request_hash: str
    state: str
    decline_reason: int
    entry_sequence: int
    created_at_unix_ms: int
    decided_at_unix_ms: int

    @property
    def scope(self) -> tuple[str, str, str]:
        """The idempotency key's scope: (:data:`TRANSFER`, source account, key) or (:data:`DEPOSIT`, account, key)."""
        return self.kind, self.from_account_id if self.kind == TRANSFER else self.to_account_id, self.idempotency_key

    @property
    def postings(self) -> tuple[tuple[str, int], tuple[str, int]]:
        """The journal entry's postings: the amount out of ``from_account_id``, into ``to_account_id``."""
        return (self.from_account_id, -self.amount_minor), (self.to_account_id, self.amount_minor)

    def to_proto(self) -> transfers_pb2.Transfer:
        """The ``casemesh.banking.v1.Transfer`` of a decided transfer."""
        return transfers_pb2.Transfer(
            transfer_id=self.transfer_id, from_account_id=self.from_account_id, to_account_id=self.to_account_id,
            amount=money_pb2.Money(currency_code=self.currency_code, amount_minor=self.amount_minor), memo=self.memo,
            status=(transfers_pb2.TRANSFER_STATUS_COMPLETED if self.state == COMPLETED
                    else transfers_pb2.TRANSFER_STATUS_DECLINED),
            decline_reason=self.decline_reason, entry_sequence=self.entry_sequence,
            decided_at_unix_ms=self.decided_at_unix_ms)

    def to_entry(self) -> banking_pb2.JournalEntry:
        """The journal entry of a COMPLETED row, as the ledger holds it."""
        return journal_entry(self.transfer_id, self.postings, self.currency_code, self.memo, self.entry_sequence,
                             self.decided_at_unix_ms)


_COLUMNS = [f.name for f in fields(TransferRow)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM transfers"


def insert_row(row: TransferRow) -> Statement:
    """A new row (PENDING, or DECLINED by a fraud rule)."""
    return f"INSERT INTO transfers ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", astuple(row)


def decide(row: TransferRow) -> Statement:
    """Store the decision of a PENDING row (``row`` decided: its state, reason, entry sequence and time)."""
    return ((f"UPDATE transfers SET state = ?, decline_reason = ?, entry_sequence = ?, decided_at_unix_ms = ? "
             f"WHERE transfer_id = ? AND state = '{PENDING}'"),
            (row.state, row.decline_reason, row.entry_sequence, row.decided_at_unix_ms, row.transfer_id))


class StoreUnavailable(Unavailable):
    """The store could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class TransferStore:
    """The SQLite file at ``path`` (see the module docstring). Raises ``sqlite3.Error`` when it cannot be opened; every
    method raises :class:`StoreUnavailable` when the file cannot be read or written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="banking-transfers-db")
        self._queue: list[tuple[list[Statement], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the transfers store is closed")
        return self._db

    async def _run(self, function, *args):
        if self._closed:
            raise StoreUnavailable("the transfers store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the transfers store could not be read: {error}") from error

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._connection().execute(sql, params).fetchall()

    async def _rows(self, where: str, params: tuple = ()) -> list[TransferRow]:
        return [TransferRow(*row) for row in await self._run(self._query, f"{_SELECT} {where}", params)]

    async def write(self, statements: Sequence[Statement]) -> None:
        """Commit ``statements`` (one write: all or none) with the writes queued alongside, fsynced, then return.

        :class:`StoreUnavailable` when they could not be written (nothing of this write changed; a schema refusal,
        ``sqlite3.IntegrityError``, is a bug above the store and logged as one). A cancelled caller does not stop the
        write: it completes or fails all the same.
        """
        if self._closed:
            raise StoreUnavailable("the transfers store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((list(statements), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="banking-transfers-commit")
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the transfers schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the transfers store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the transfers store could not be written: {error}") from error

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_COMMIT_WRITES], self._queue[MAX_COMMIT_WRITES:]
            writes = [statements for statements, _ in batch]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self._commit, writes)
                errors: list[BaseException | None] = [None] * len(writes)
            except (sqlite3.Error, OSError) as error:
                if len(writes) == 1:
                    errors = [error]
                else:
                    errors = await loop.run_in_executor(self._executor, self._commit_each, writes)
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _commit(self, writes: list[list[Statement]]) -> None:
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            for statements in writes:
                for sql, params in statements:
                    db.execute(sql, params)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, writes: list[list[Statement]]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for statements in writes:
            try:
                self._commit([statements])
                errors.append(None)
            except (sqlite3.Error, OSError) as error:
                errors.append(error)
        return errors

    async def close(self) -> None:
        """Finish the writes queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)

    # -- reads --------------------------------------------------------------------------------------------------------

    async def get(self, transfer_id: str) -> TransferRow | None:
        """The row of ``transfer_id`` (a transfer or a deposit), or ``None``."""
        rows = await self._rows("WHERE transfer_id = ?", (transfer_id,))
        return rows[0] if rows else None

    async def by_key(self, kind: str, account_id: str, idempotency_key: str) -> TransferRow | None:
        """The row of an idempotency key: (:data:`TRANSFER`, source account, key) or (:data:`DEPOSIT`, account, key)."""
        column = "from_account_id" if kind == TRANSFER else "to_account_id"
        rows = await self._rows(f"WHERE kind = ? AND {column} = ? AND idempotency_key = ?",
                                (kind, account_id, idempotency_key))
        return rows[0] if rows else None

    async def pending(self, before_ms: int, limit: int = 1_000) -> list[TransferRow]:
        """PENDING rows created at or before ``before_ms`` (Unix ms), oldest first."""
        return await self._rows(f"WHERE state = '{PENDING}' AND created_at_unix_ms <= ? "
                                "ORDER BY created_at_unix_ms LIMIT ?", (before_ms, limit))

    async def count_pending(self) -> int:
        """How many rows are PENDING."""
        return (await self._run(self._query, f"SELECT count(*) FROM transfers WHERE state = '{PENDING}'"))[0][0]

    async def outgoing_since(self, since_ms: int) -> list[TransferRow]:
        """Transfers COMPLETED or PENDING created at or after ``since_ms`` (Unix ms), oldest first: what the fraud
        rules' windows hold."""
        return await self._rows(f"WHERE kind = '{TRANSFER}' AND state IN ('{PENDING}', '{COMPLETED}') "
                                "AND created_at_unix_ms >= ? ORDER BY created_at_unix_ms", (since_ms,))

    async def has_paid(self, from_account_id: str, to_account_id: str) -> bool:
        """Whether a transfer from ``from_account_id`` to ``to_account_id`` ever COMPLETED."""
        return bool(await self._run(self._query, f"SELECT 1 FROM transfers WHERE kind = '{TRANSFER}' AND "
                                    f"state = '{COMPLETED}' AND from_account_id = ? AND to_account_id = ? LIMIT 1",
                                    (from_account_id, to_account_id)))
