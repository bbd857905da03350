"""The inventory's log: room types, room-nights and holds in one durable SQLite file, group-committed.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23, "Hotel Reservation | Pessimistic locking, overbooking
prevention"): no acknowledged hold, confirmation or release may be lost, and none may be half written (a hold takes
its rooms on every night of its stay or on none). One file, ``DATA_DIR/hotel-inventory/inventory.sqlite3``, opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``: the write-ahead log is fsynced at every
commit), holds three tables:

- ``room_types (hotel_id, room_type_id, name, rooms, currency_code, rate_minor, PK (hotel_id, room_type_id))``;
- ``nights (hotel_id, room_type_id, night, booked, held, version, PK (hotel_id, room_type_id, night))``: a room-night's
  rooms booked and held and its version, bumped by every write that changes it. Rows are made lazily by the first
  write of a night (a night never written has 0 booked, 0 held, version 0); the schema refuses a negative count;
- ``holds (hold_id PK, hotel_id, room_type_id, check_in, nights, rooms, status, expires_at_unix_ms,
  updated_at_unix_ms)``, with a partial index of the HELD and CONFIRMED ones (those the inventory loads at start).

A write (:class:`~.records.Change`) is the hold's row and the rows of its nights, all or none; a night's row is
changed by deltas (``booked = booked + ?``), made by the first write of the night, one version per write. Writes are
group-committed, the group commit of databases' logs (as services/banking/ledger/store.py): every write queued while a
commit runs goes into the next single transaction, one fsync for all, in one worker thread. Each write runs inside its
own ``SAVEPOINT`` of that transaction, so a write that is refused rolls back alone:

- a night with an ``expected_version`` is written with ``UPDATE ... WHERE version = ?`` (``INSERT ... ON CONFLICT DO
  NOTHING`` for version 0); a row count of 0 (another write of the same batch or of an earlier one moved it) rolls the
  write back and fails it with :class:`VersionConflict` (the optimistic lock mode's check, seed 003
  shared/seeds/003_1dfe16d8ccfde9ed.txt line 1250: "Attempt update with version check");
- a change of a stored hold is ``UPDATE holds ... WHERE status = <the status it was read in>``: a hold whose status
  moved meanwhile (a concurrent expiry) fails the write with :class:`StatusConflict`;
- a new hold whose ID is stored already writes nothing and fails with :class:`KnownHold` carrying the stored hold (the
  primary key decides, inside the transaction).

Once COMMIT has returned, the committer runs each committed write's ``apply`` callback on the event loop, in commit
order and before any writer resumes: the inventory's memory is always exactly the file as of some commit, never ahead
of it. Reads (a hold by ID, the audit's snapshot) run on a second, read-only connection in a second thread, each in
one read transaction.

Every method raises :class:`StoreUnavailable` when the file cannot be read or written: nothing of that write changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from ...runtime.errors import Aborted, Unavailable
from ...runtime.sqlite_journal import open_durable
from . import metrics
from .records import Change, HoldRecord, NightChange, NightKey, RoomTypeRecord, Stay

log = logging.getLogger("casemesh.hotel.inventory.store")

#: The inventory's file under DATA_DIR/hotel-inventory/.
FILE_NAME = "inventory.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS room_types (hotel_id TEXT NOT NULL, room_type_id TEXT NOT NULL, name TEXT NOT NULL, "
     "rooms INTEGER NOT NULL CHECK (rooms > 0), currency_code TEXT NOT NULL, rate_minor INTEGER NOT NULL "
     "CHECK (rate_minor > 0), PRIMARY KEY (hotel_id, room_type_id))"),
    ("CREATE TABLE IF NOT EXISTS nights (hotel_id TEXT NOT NULL, room_type_id TEXT NOT NULL, night TEXT NOT NULL, "
     "booked INTEGER NOT NULL CHECK (booked >= 0), held INTEGER NOT NULL CHECK (held >= 0), "
     "version INTEGER NOT NULL CHECK (version > 0), PRIMARY KEY (hotel_id, room_type_id, night), "
     "FOREIGN KEY (hotel_id, room_type_id) REFERENCES room_types (hotel_id, room_type_id))"),
    ("CREATE TABLE IF NOT EXISTS holds (hold_id TEXT PRIMARY KEY, hotel_id TEXT NOT NULL, room_type_id TEXT NOT NULL, "
     "check_in TEXT NOT NULL, nights INTEGER NOT NULL CHECK (nights > 0), rooms INTEGER NOT NULL CHECK (rooms > 0), "
     "status INTEGER NOT NULL CHECK (status IN (1, 2, 3, 4)), expires_at_unix_ms INTEGER NOT NULL, "
     "updated_at_unix_ms INTEGER NOT NULL, "
     "FOREIGN KEY (hotel_id, room_type_id) REFERENCES room_types (hotel_id, room_type_id))"),
    "CREATE INDEX IF NOT EXISTS active_holds ON holds (status) WHERE status IN (1, 2)",
)
_HOLD_COLUMNS = "hold_id, hotel_id, room_type_id, check_in, nights, rooms, status, expires_at_unix_ms"
_ACTIVE = "status IN (1, 2)"


class StoreUnavailable(Unavailable):
    """The inventory's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of
    the write changed; the servicer answers UNAVAILABLE (retry)."""


class VersionConflict(Aborted):
    """A room-night's version in the file is not the one the write expected: nothing of the write was written."""


class StatusConflict(Exception):
    """A stored hold's status in the file is not the one the write expected (it moved meanwhile): nothing of the write
    was written; the inventory reads the hold again and decides again."""


class KnownHold(Exception):
    """A new hold's ID is stored already: nothing was written; ``stored`` is the stored hold."""

    def __init__(self, stored: HoldRecord) -> None:
        super().__init__(f"hold {stored.hold_id} is stored already")
        self.stored = stored


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The inventory as of one commit: every room type, every room-night row (key → (booked, held, version)) and every
    HELD or CONFIRMED hold."""

    room_types: list[RoomTypeRecord]
    nights: dict[NightKey, tuple[int, int, int]]
    holds: list[HoldRecord]


Write = Callable[[sqlite3.Connection], Any]


def _hold_record(row: tuple) -> HoldRecord:
    hold_id, hotel_id, room_type_id, check_in, nights, rooms, status, expires_at = row
    return HoldRecord(hold_id, Stay(hotel_id, room_type_id, date.fromisoformat(check_in), nights, rooms), status,
                      expires_at)


def _read_hold(db: sqlite3.Connection, hold_id: str) -> HoldRecord | None:
    row = db.execute(f"SELECT {_HOLD_COLUMNS} FROM holds WHERE hold_id = ?", (hold_id,)).fetchone()
    return _hold_record(row) if row is not None else None


def _write_night(db: sqlite3.Connection, change: NightChange) -> None:
    hotel_id, room_type_id, night = change.key
    key = (hotel_id, room_type_id, night.isoformat())
    if change.expected_version is None:  # (not an upsert: SQLite checks the row to insert before the conflict)
        cursor = db.execute("UPDATE nights SET booked = booked + ?, held = held + ?, version = version + 1 "
                            "WHERE hotel_id = ? AND room_type_id = ? AND night = ?",
                            (change.booked_delta, change.held_delta, *key))
        if cursor.rowcount == 0:
            db.execute("INSERT INTO nights (hotel_id, room_type_id, night, booked, held, version) "
                       "VALUES (?, ?, ?, ?, ?, 1)", (*key, change.booked_delta, change.held_delta))
        return
    if change.expected_version == 0:
        cursor = db.execute("INSERT INTO nights (hotel_id, room_type_id, night, booked, held, version) "
                            "VALUES (?, ?, ?, ?, ?, 1) ON CONFLICT (hotel_id, room_type_id, night) DO NOTHING",
                            (*key, change.booked_delta, change.held_delta))
    else:
        cursor = db.execute("UPDATE nights SET booked = booked + ?, held = held + ?, version = version + 1 "
                            "WHERE hotel_id = ? AND room_type_id = ? AND night = ? AND version = ?",
                            (change.booked_delta, change.held_delta, *key, change.expected_version))
    if cursor.rowcount == 0:
        raise VersionConflict(f"night {night.isoformat()} of {hotel_id}/{room_type_id} moved past version "
                              f"{change.expected_version} before this hold's write: nothing held, retry")


def _write_change(change: Change) -> Write:
    hold, stay = change.hold, change.hold.stay

    def write(db: sqlite3.Connection) -> None:
        now = time.time_ns() // 1_000_000
        if change.previous_status is None:
            cursor = db.execute(
                f"INSERT INTO holds ({_HOLD_COLUMNS}, updated_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (hold_id) DO NOTHING",
                (hold.hold_id, stay.hotel_id, stay.room_type_id, stay.check_in.isoformat(), stay.nights, stay.rooms,
                 hold.status, hold.expires_at_unix_ms, now))
            if cursor.rowcount == 0:
                stored = _read_hold(db, hold.hold_id)
                assert stored is not None
                raise KnownHold(stored)
        else:
            cursor = db.execute("UPDATE holds SET status = ?, expires_at_unix_ms = ?, updated_at_unix_ms = ? "
                                "WHERE hold_id = ? AND status = ?",
                                (hold.status, hold.expires_at_unix_ms, now, hold.hold_id, change.previous_status))
            if cursor.rowcount == 0:
                raise StatusConflict(f"hold {hold.hold_id} is no longer in status {change.previous_status}")
        for night in change.nights:
            _write_night(db, night)

    return write


def _insert_room_type(record: RoomTypeRecord) -> Write:
    def write(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO room_types (hotel_id, room_type_id, name, rooms, currency_code, rate_minor) "
                   "VALUES (?, ?, ?, ?, ?, ?)", (record.hotel_id, record.room_type_id, record.name, record.rooms,
                                                 record.currency_code, record.rate_minor))

    return write


def _snapshot(db: sqlite3.Connection) -> Snapshot:
    room_types = [RoomTypeRecord(*row) for row in db.execute(
        "SELECT hotel_id, room_type_id, name, rooms, currency_code, rate_minor FROM room_types")]
    nights = {(hotel_id, room_type_id, date.fromisoformat(night)): (booked, held, version)
              for hotel_id, room_type_id, night, booked, held, version in db.execute(
                  "SELECT hotel_id, room_type_id, night, booked, held, version FROM nights")}
    holds = [_hold_record(row) for row in db.execute(f"SELECT {_HOLD_COLUMNS} FROM holds WHERE {_ACTIVE}")]
    return Snapshot(room_types, nights, holds)


@dataclass(slots=True)
class _Queued:
    write: Write
    apply: Callable[[], None] | None
    future: asyncio.Future[Any]


class InventoryStore:
    """The inventory's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self.max_commit_writes = max_commit_writes
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._db.execute("PRAGMA foreign_keys=ON")
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only=ON")
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotel-inventory-db")
        self._reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotel-inventory-read")
        self._queue: list[_Queued] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    # -- writes --------------------------------------------------------------------------------------------------------

    async def add_room_type(self, record: RoomTypeRecord, apply: Callable[[], None]) -> None:
        """Insert ``record``; durable when it returns, ``apply`` run once committed."""
        await self._write(_insert_room_type(record), apply)

    async def commit(self, change: Change, apply: Callable[[], None]) -> None:
        """Write ``change`` (all or none); durable when it returns, ``apply`` run on the event loop once committed, in
        commit order, before any writer of the batch resumes.

        Raises :class:`VersionConflict`, :class:`StatusConflict` or :class:`KnownHold` (nothing written, ``apply`` not
        run), :class:`StoreUnavailable`. A cancelled caller does not stop the write: it completes or fails all the
        same (and ``apply`` runs when it commits).
        """
        await self._write(_write_change(change), apply)

    async def _write(self, write: Write, apply: Callable[[], None] | None) -> None:
        if self._closed:
            raise StoreUnavailable("the inventory store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(write, apply, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="hotel-inventory-commit")
        started = time.perf_counter()
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the inventory schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the inventory store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the inventory store could not be written: {error}") from error
        finally:
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[:self.max_commit_writes]
            del self._queue[:self.max_commit_writes]
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._writer_thread, self._commit, [q.write for q in batch])
            except Exception as error:  # noqa: BLE001 - every writer must get an answer, whatever failed
                outcomes = [error] * len(batch)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.WRITES_PER_COMMIT.observe(len(batch))
            for queued, outcome in zip(batch, outcomes, strict=True):
                if outcome is None and queued.apply is not None:
                    try:
                        queued.apply()
                    except Exception as error:  # a bug in an apply fails its own writer only
                        log.exception("applying a committed write failed")
                        outcome = error
                if queued.future.done():
                    continue
                if outcome is None:
                    queued.future.set_result(None)
                else:
                    queued.future.set_exception(outcome)

    def _commit(self, writes: list[Write]) -> list[Exception | None]:
        """Run ``writes`` in one transaction, each in its own savepoint; each one's outcome (``None``: written)."""
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the inventory store is closed")
        outcomes: list[Exception | None] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                db.execute("SAVEPOINT one_write")
                try:
                    write(db)
                except Exception as error:  # noqa: BLE001 - the write is rolled back and fails alone
                    db.execute("ROLLBACK TO one_write")
                    outcomes.append(error)
                else:
                    outcomes.append(None)
                db.execute("RELEASE one_write")
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    # -- reads ---------------------------------------------------------------------------------------------------------

    async def _read(self, function: Callable[[sqlite3.Connection], Any]) -> Any:
        if self._closed:
            raise StoreUnavailable("the inventory store is closed")

        def in_snapshot() -> Any:
            db = self._reader
            if db is None:
                raise sqlite3.ProgrammingError("the inventory store is closed")
            db.execute("BEGIN")
            try:
                return function(db)
            finally:
                db.execute("COMMIT")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader_thread, in_snapshot)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the inventory store could not be read: {error}") from error

    async def snapshot(self) -> Snapshot:
        """Every room type, room-night row and HELD or CONFIRMED hold, in one read transaction (what the inventory
        loads at start, and what the audit checks)."""
        return await self._read(_snapshot)

    async def hold(self, hold_id: str) -> HoldRecord | None:
        """The stored hold ``hold_id``, or ``None``."""
        return await self._read(lambda db: _read_hold(db, hold_id))

    # -- lifecycle -----------------------------------------------------------------------------------------------------

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
