"""The inventory's durable state: restocks and reservations in one SQLite file, fsynced before any answer.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 512: "Consistency:
Inventory counts must be accurate (no overselling)"; line 573: ``confirm_reservation`` "Persist to database"): no
acknowledged reservation, commit or restock may be lost, or a unit could be sold twice after a crash. One file,
``DATA_DIR/ecommerce-inventory/inventory.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``: the write-ahead log is fsynced at every commit), holds two tables:

- ``restocks (restock_id PK, product_id, quantity, restocked_at_unix_ms)``: every Restock applied;
- ``reservations (reservation_id PK, product_id, quantity, status, expires_at_unix_ms, updated_at_unix_ms)``: every
  reservation's latest state (an upsert per change: status and expiry time; product and quantity never change).

Stock levels are never stored: the inventory derives them when it starts (:meth:`InventoryStore.load`): stocked is
the sum of the restocks, held and committed the sums of the HELD and COMMITTED reservations.

Writes are group-committed, the group commit of databases' logs (as services/banking/ledger/store.py): every write
queued while a commit runs goes into the next single transaction, one fsync for all, in one worker thread, and each
writer's future is resolved once COMMIT has returned. Writes commit in the order they were queued (a write queued
before another is in the same transaction or an earlier one): :meth:`InventoryStore.write_reservations` queues at
once, when called, so the inventory orders its writes without awaiting. A transaction that fails is retried one
write at a time, in order, so a bad write fails only itself.

Every method raises :class:`StoreUnavailable` when the file cannot be read or written: nothing of that write changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...runtime.errors import Unavailable
from ...runtime.sqlite_journal import open_durable
from . import metrics
from .records import Reservation, Restock

log = logging.getLogger("casemesh.ecommerce.inventory.store")

#: The inventory's file under DATA_DIR/ecommerce-inventory/.
FILE_NAME = "inventory.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS restocks (restock_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, "
     "quantity INTEGER NOT NULL CHECK (quantity > 0), restocked_at_unix_ms INTEGER NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS reservations (reservation_id TEXT PRIMARY KEY, product_id TEXT NOT NULL, "
     "quantity INTEGER NOT NULL CHECK (quantity > 0), status INTEGER NOT NULL CHECK (status IN (1, 2, 3, 4)), "
     "expires_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL)"),
)
_UPSERT = ("INSERT INTO reservations (reservation_id, product_id, quantity, status, expires_at_unix_ms, "
           "updated_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (reservation_id) DO UPDATE SET "
           "status = excluded.status, expires_at_unix_ms = excluded.expires_at_unix_ms, "
           "updated_at_unix_ms = excluded.updated_at_unix_ms")


class StoreUnavailable(Unavailable):
    """The inventory's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of
    the write changed; the servicer answers UNAVAILABLE (retry)."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """Everything stored: every restock and every reservation (in its latest state)."""

    restocks: list[Restock]
    reservations: list[Reservation]


Write = Callable[[sqlite3.Connection], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class InventoryStore:
    """The inventory's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self.max_commit_writes = max_commit_writes
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecommerce-inventory-db")
        self._queue: list[tuple[Write, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    # -- writes -------------------------------------------------------------------------------------------------------

    def write_reservations(self, records: Sequence[Reservation]) -> Coroutine[Any, Any, None]:
        """Queue the upsert of ``records`` (one write: all or none) now, in call order, and return the wait for it
        (await it: durable when it returns). Raises :class:`StoreUnavailable` at once when the store is closed.

        A cancelled waiter does not stop the write: it completes or fails all the same.
        """
        now = _now_ms()
        rows = [(r.reservation_id, r.product_id, r.quantity, r.status, r.expires_at_unix_ms, now) for r in records]

        def write(db: sqlite3.Connection) -> None:
            db.executemany(_UPSERT, rows)

        return self._wait(self._queued(write))

    async def add_restock(self, restock: Restock) -> None:
        """Insert ``restock``, durable when it returns (its ``restock_id`` must not be stored: the schema refuses)."""
        row = (restock.restock_id, restock.product_id, restock.quantity, _now_ms())

        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO restocks (restock_id, product_id, quantity, restocked_at_unix_ms) "
                       "VALUES (?, ?, ?, ?)", row)

        await self._wait(self._queued(write))

    def _queued(self, write: Write) -> asyncio.Future[None]:
        if self._closed:
            raise StoreUnavailable("the inventory store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((write, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="ecommerce-inventory-commit")
        return future

    @staticmethod
    async def _wait(future: asyncio.Future[None]) -> None:
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the inventory schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the inventory store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the inventory store could not be written: {error}") from error

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[:self.max_commit_writes]
            del self._queue[:self.max_commit_writes]
            writes = [write for write, _ in batch]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._thread, self._commit, writes)
                errors: list[Exception | None] = [None] * len(writes)
            except Exception as error:  # noqa: BLE001 - every writer must get an answer, whatever failed
                errors = [error] if len(writes) == 1 else await loop.run_in_executor(
                    self._thread, self._commit_each, writes)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.WRITES_PER_COMMIT.observe(len(writes))
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _commit(self, writes: Iterable[Write]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the inventory store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                write(db)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, writes: Iterable[Write]) -> list[Exception | None]:
        errors: list[Exception | None] = []
        for write in writes:
            try:
                self._commit([write])
                errors.append(None)
            except Exception as error:  # noqa: BLE001 - the writer gets its own error
                errors.append(error)
        return errors

    # -- reads --------------------------------------------------------------------------------------------------------

    async def load(self) -> Loaded:
        """Every restock and every reservation, read in one transaction on the writer's thread."""
        def load() -> Loaded:
            db = self._db
            if db is None:
                raise sqlite3.ProgrammingError("the inventory store is closed")
            db.execute("BEGIN")
            try:
                restocks = [Restock(*row) for row in db.execute(
                    "SELECT restock_id, product_id, quantity FROM restocks ORDER BY rowid")]
                reservations = [Reservation(*row) for row in db.execute(
                    "SELECT reservation_id, product_id, quantity, status, expires_at_unix_ms FROM reservations "
                    "ORDER BY rowid")]
            finally:
                db.execute("COMMIT")
            return Loaded(restocks, reservations)

        if self._closed:
            raise StoreUnavailable("the inventory store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, load)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the inventory store could not be read: {error}") from error

    # -- lifecycle ----------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish the writes queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)
