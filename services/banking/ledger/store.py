"""The ledger's write-ahead log: accounts, journal entries and their postings in one durable SQLite file.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39, "Online Banking | Double-entry ledger, ACID
transactions"): no acknowledged entry may be lost and none may be half written. One file,
``DATA_DIR/banking-ledger/ledger.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``: the write-ahead log is fsynced at every commit), holds three tables:

- ``accounts (account_id PK, kind, owner, currency, opened_at_unix_ms)``;
- ``entries (sequence INTEGER PK, entry_id UNIQUE, memo, posted_at_unix_ms)``: ``sequence`` is SQLite's rowid,
  assigned by the commit itself (the largest plus one), so sequences follow commit order without gaps even when a
  write fails;
- ``postings (sequence, account_id, amount_minor, PK (sequence, account_id))``: an entry's lines, in the order posted
  (rowid order), with an index ``(account_id, sequence, amount_minor)`` that serves both an account's statement and the
  balances' sums.

Balances are never stored: the ledger derives them from the postings when it starts (:meth:`LedgerStore.load`). The
schema refuses what no bug above it may write: a posting of 0, a posting to an account or entry that is not stored
(foreign keys on), an account twice in one entry, an entry ID twice. :meth:`LedgerStore.append` of an ID stored
already writes nothing and returns the stored entry (the unique index decides, inside the transaction).

Writes are group-committed, the group commit of databases' logs (as services/payments/gateway/store.py and
services/chat/messages/journal.py do): every write queued while a commit runs goes into the next single transaction,
one fsync for all, in one worker thread, and each writer's future is resolved once COMMIT has returned. A transaction
that fails is retried one write at a time (as services/food/orders/store.py ``_commit_each``), so a bad write fails
only itself. Reads (an entry by ID, a statement, the reconciliation's sums) run on a second, read-only connection in a
second thread, each in one read transaction (a consistent snapshot: WAL lets it read while the writer commits).

Every method raises :class:`StoreUnavailable` when the file cannot be read or written: nothing of that write changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...runtime.errors import Unavailable
from ...runtime.sqlite_journal import open_durable
from . import metrics
from .records import AccountRecord, EntryRecord, NewEntry, Posting

log = logging.getLogger("casemesh.banking.ledger.store")

#: The ledger's file under DATA_DIR/banking-ledger/.
FILE_NAME = "ledger.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY, kind INTEGER NOT NULL CHECK (kind IN (1, 2)), "
     "owner TEXT NOT NULL, currency TEXT NOT NULL, opened_at_unix_ms INTEGER NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS entries (sequence INTEGER PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE, "
     "memo TEXT NOT NULL, posted_at_unix_ms INTEGER NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS postings (sequence INTEGER NOT NULL REFERENCES entries (sequence), "
     "account_id TEXT NOT NULL REFERENCES accounts (account_id), amount_minor INTEGER NOT NULL "
     "CHECK (amount_minor <> 0), PRIMARY KEY (sequence, account_id))"),
    "CREATE INDEX IF NOT EXISTS postings_by_account ON postings (account_id, sequence, amount_minor)",
)
_ACCOUNT_COLUMNS = "account_id, kind, owner, currency, opened_at_unix_ms"


class StoreUnavailable(Unavailable):
    """The ledger's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of the
    write changed; the servicer answers UNAVAILABLE (retry)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """What the ledger derives its memory from: every account, the sum and count of each account's postings (minor
    units; accounts without postings absent), and the last sequence (0: no entry)."""

    accounts: list[AccountRecord]
    balances: dict[str, int]
    entry_counts: dict[str, int]
    last_sequence: int


@dataclass(frozen=True, slots=True)
class Audit:
    """The stored side of a reconciliation, read in one transaction, of the entries up to ``sequence``.

    ``accounts``: every stored account; ``entry_count``: entries; ``posting_sums``: account → (sum of its postings in
    minor units, postings); ``unbalanced``: (sequence, entry_id, currency, sum) of every entry whose postings of a
    currency do not sum to zero (postings to unknown accounts left out: they are ``orphans``); ``short``: (sequence, entry_id, postings) of entries
    with fewer than two postings; ``orphans``: (sequence, account_id) of postings whose entry or account is missing.
    """

    sequence: int
    accounts: dict[str, AccountRecord]
    entry_count: int
    posting_sums: dict[str, tuple[int, int]]
    unbalanced: list[tuple[int, str, str, int]]
    short: list[tuple[int, str, int]]
    orphans: list[tuple[int, str]]


Write = Callable[[sqlite3.Connection], Any]


def _insert_accounts(records: Sequence[AccountRecord]) -> Write:
    rows = [(r.account_id, r.kind, r.owner, r.currency_code, r.opened_at_unix_ms) for r in records]

    def write(db: sqlite3.Connection) -> None:
        db.executemany(f"INSERT INTO accounts ({_ACCOUNT_COLUMNS}) VALUES (?, ?, ?, ?, ?)", rows)

    return write


def _read_entries(db: sqlite3.Connection, where: str, params: tuple) -> list[EntryRecord]:
    """The entries matching SQL ``where`` (on table ``entries``), each with its postings in the order posted."""
    heads = db.execute(f"SELECT sequence, entry_id, memo, posted_at_unix_ms FROM entries WHERE {where}",
                       params).fetchall()
    if not heads:
        return []
    marks = ", ".join("?" * len(heads))
    postings: dict[int, list[Posting]] = {head[0]: [] for head in heads}
    for sequence, account_id, currency, amount in db.execute(
            "SELECT p.sequence, p.account_id, COALESCE(a.currency, ''), p.amount_minor FROM postings p "
            f"LEFT JOIN accounts a USING (account_id) WHERE p.sequence IN ({marks}) ORDER BY p.rowid",
            [head[0] for head in heads]):
        postings[sequence].append(Posting(account_id, currency, amount))
    return [EntryRecord(sequence, entry_id, tuple(postings[sequence]), memo, posted_at)
            for sequence, entry_id, memo, posted_at in heads]


def _insert_entry(entry: NewEntry) -> Write:
    def write(db: sqlite3.Connection) -> tuple[EntryRecord, bool]:
        posted_at = time.time_ns() // 1_000_000
        cursor = db.execute("INSERT INTO entries (entry_id, memo, posted_at_unix_ms) VALUES (?, ?, ?) "
                            "ON CONFLICT (entry_id) DO NOTHING", (entry.entry_id, entry.memo, posted_at))
        if cursor.rowcount == 0:  # posted before: nothing written, the stored entry instead
            return _read_entries(db, "entry_id = ?", (entry.entry_id,))[0], False
        sequence = cursor.lastrowid
        db.executemany("INSERT INTO postings (sequence, account_id, amount_minor) VALUES (?, ?, ?)",
                       [(sequence, p.account_id, p.amount_minor) for p in entry.postings])
        return EntryRecord(sequence, entry.entry_id, entry.postings, entry.memo, posted_at), True

    return write


class LedgerStore:
    """The ledger's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per group
    commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self.max_commit_writes = max_commit_writes
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only=ON")
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="banking-ledger-db")
        self._reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="banking-ledger-read")
        self._queue: list[tuple[Write, asyncio.Future[Any]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    # -- writes -------------------------------------------------------------------------------------------------------

    async def open_accounts(self, records: Sequence[AccountRecord]) -> None:
        """Insert ``records`` (one write: all or none), durable when it returns."""
        await self._write(_insert_accounts(records))

    async def append(self, entry: NewEntry) -> tuple[EntryRecord, bool]:
        """Commit ``entry`` with its postings (all or none); once durable, ``(the entry with its sequence and time,
        True)``; or ``(the stored entry, False)`` when its ``entry_id`` was posted before (nothing written: the
        unique index decides, in the same transaction).

        A cancelled caller does not stop the write: it completes or fails all the same.
        """
        return await self._write(_insert_entry(entry))

    async def _write(self, write: Write) -> Any:
        if self._closed:
            raise StoreUnavailable("the ledger store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="banking-ledger-commit")
        try:
            return await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the ledger schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the ledger store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the ledger store could not be written: {error}") from error

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[:self.max_commit_writes]
            del self._queue[:self.max_commit_writes]
            writes = [write for write, _ in batch]
            started = time.perf_counter()
            try:
                outcomes: list[tuple[Any, Exception | None]] = [
                    (result, None) for result in await loop.run_in_executor(self._writer_thread, self._commit, writes)]
            except Exception as error:  # noqa: BLE001 - every writer must get an answer, whatever failed
                if len(writes) == 1:
                    outcomes = [(None, error)]
                else:
                    outcomes = await loop.run_in_executor(self._writer_thread, self._commit_each, writes)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.ENTRIES_PER_COMMIT.observe(len(writes))
            for (_, future), (result, error) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(result)
                else:
                    future.set_exception(error)

    def _commit(self, writes: Iterable[Write]) -> list[Any]:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the ledger store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            results = [write(db) for write in writes]
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return results

    def _commit_each(self, writes: Iterable[Write]) -> list[tuple[Any, Exception | None]]:
        outcomes: list[tuple[Any, Exception | None]] = []
        for write in writes:
            try:
                outcomes.append((self._commit([write])[0], None))
            except Exception as error:  # noqa: BLE001 - the writer gets its own error
                outcomes.append((None, error))
        return outcomes

    # -- reads --------------------------------------------------------------------------------------------------------

    async def _read(self, function: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StoreUnavailable("the ledger store is closed")

        def in_snapshot() -> Any:
            db = self._reader
            if db is None:
                raise sqlite3.ProgrammingError("the ledger store is closed")
            db.execute("BEGIN")
            try:
                return function(db)
            finally:
                db.execute("COMMIT")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader_thread, in_snapshot)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the ledger store could not be read: {error}") from error

    async def load(self) -> Loaded:
        """Every account, each account's posting sum and count, and the last sequence."""
        def load(db: sqlite3.Connection) -> Loaded:
            accounts = [AccountRecord(*row) for row in db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts")]
            balances, counts = {}, {}
            for account_id, total, count in db.execute(
                    "SELECT account_id, SUM(amount_minor), COUNT(*) FROM postings GROUP BY account_id"):
                balances[account_id], counts[account_id] = total, count
            last = db.execute("SELECT COALESCE(MAX(sequence), 0) FROM entries").fetchone()[0]
            return Loaded(accounts, balances, counts, last)

        return await self._read(load)

    async def entry(self, entry_id: str) -> EntryRecord | None:
        """The committed entry ``entry_id`` with its postings, or ``None``."""
        found = await self._read(lambda db: _read_entries(db, "entry_id = ?", (entry_id,)))
        return found[0] if found else None

    async def account_entries(self, account_id: str, before_sequence: int | None, limit: int) -> list[EntryRecord]:
        """Up to ``limit`` entries that touched ``account_id``, newest first, with sequences below ``before_sequence``
        (``None``: from the newest), each with all its postings."""
        def read(db: sqlite3.Connection) -> list[EntryRecord]:
            bound = "AND sequence < ? " if before_sequence is not None else ""
            params = (account_id, before_sequence, limit) if before_sequence is not None else (account_id, limit)
            sequences = [row[0] for row in db.execute(
                f"SELECT sequence FROM postings WHERE account_id = ? {bound}ORDER BY sequence DESC LIMIT ?", params)]
            if not sequences:
                return []
            entries = _read_entries(db, f"sequence IN ({', '.join('?' * len(sequences))})", tuple(sequences))
            return sorted(entries, key=lambda e: e.sequence, reverse=True)

        return await self._read(read)

    async def audit(self, sequence: int) -> Audit:
        """The stored side of a reconciliation of the entries up to ``sequence``, in one read transaction (see
        :class:`Audit`)."""
        def audit(db: sqlite3.Connection) -> Audit:
            accounts = {row[0]: AccountRecord(*row) for row in db.execute(f"SELECT {_ACCOUNT_COLUMNS} FROM accounts")}
            entry_count = db.execute("SELECT COUNT(*) FROM entries WHERE sequence <= ?", (sequence,)).fetchone()[0]
            sums = {account_id: (total, count) for account_id, total, count in db.execute(
                "SELECT account_id, SUM(amount_minor), COUNT(*) FROM postings WHERE sequence <= ? "
                "GROUP BY account_id", (sequence,))}
            unbalanced = db.execute(
                "SELECT p.sequence, COALESCE(e.entry_id, ''), a.currency, SUM(p.amount_minor) FROM postings p "
                "LEFT JOIN entries e USING (sequence) JOIN accounts a USING (account_id) WHERE p.sequence <= ? "
                "GROUP BY p.sequence, a.currency HAVING SUM(p.amount_minor) <> 0 "
                "ORDER BY p.sequence", (sequence,)).fetchall()
            short = db.execute(
                "SELECT e.sequence, e.entry_id, COUNT(p.account_id) FROM entries e LEFT JOIN postings p "
                "USING (sequence) WHERE e.sequence <= ? GROUP BY e.sequence HAVING COUNT(p.account_id) < 2 "
                "ORDER BY e.sequence", (sequence,)).fetchall()
            orphans = db.execute(
                "SELECT p.sequence, p.account_id FROM postings p WHERE p.sequence <= ? AND ("
                "NOT EXISTS (SELECT 1 FROM entries e WHERE e.sequence = p.sequence) OR "
                "NOT EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = p.account_id)) ORDER BY p.sequence",
                (sequence,)).fetchall()
            return Audit(sequence, accounts, entry_count, sums, [tuple(r) for r in unbalanced],
                         [tuple(r) for r in short], [tuple(r) for r in orphans])

        return await self._read(audit)

    # -- lifecycle ------------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish the writes queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer
        loop = asyncio.get_running_loop()
        if self._db is not None:
            db, self._db = self._db, None
            await loop.run_in_executor(self._writer_thread, db.close)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await loop.run_in_executor(self._reader_thread, reader.close)
        self._writer_thread.shutdown(wait=False)
        self._reader_thread.shutdown(wait=False)
