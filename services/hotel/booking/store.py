"""hotel-booking's durable records: one row per booking, each saga step written before the next is taken.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | Pessimistic locking, overbooking
prevention, payment auth/capture"): a booking a guest was told about, and every hold or payment the saga asked for,
must survive a crash, so that the saga can finish or compensate it. One SQLite file,
``DATA_DIR/hotel-booking/bookings.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``): :meth:`BookingStore.write` returns once its statements are committed and fsynced. Concurrent
writes are group-committed (one transaction, one fsync, for all the writes waiting; a batch that fails is retried one
write at a time, so one bad write fails only itself), all reads and writes in one worker thread: the event loop never
waits on the disk.

Table ``bookings``, one row per booking (:class:`BookingRow`): the guest's idempotency key and the SHA-256 of the
request without it (``request_hash``), the stay (hotel, room type, ``check_in`` "YYYY-MM-DD", nights, rooms), the
card token, the total (minor units of ``currency_code``), the inventory's ``hold_id``, the gateway's ``payment_id``
(empty until it answered), ``conflict_retries``, the times (Unix ms), and where the booking is: ``status`` and the
``step`` it takes next (:mod:`.saga` runs them):

- PENDING with step ``hold`` → ``authorize`` → ``confirm`` → CONFIRMED; or, compensating, ``release`` (the hold is
  released: a declined payment) or ``void`` (the authorisation is voided: the hold expired) → FAILED, with its
  ``failure_reason`` (a ``BookingFailure``) recorded when the compensation starts;
- CONFIRMED with step ``""``, or an intent being carried out: ``cancel`` (→ CANCELLED) or ``check_in`` (→
  CHECKED_IN);
- FAILED, CANCELLED and CHECKED_IN are final (step ``""``).

The schema holds the invariants, so no bug above it can break them: one row per (guest, key) (a unique index: the
scope of an idempotency key); a step that belongs to the status; a failure reason exactly when FAILED or compensating;
a payment id on every booking that is or was CONFIRMED, and before a ``confirm`` or ``void`` step; and triggers: a
final row never changes, a CONFIRMED one only becomes CANCELLED through the ``cancel`` step or CHECKED_IN through the
``check_in`` step (so a checked-in booking was never cancelled and the reverse), a row's request never changes, and no
row is ever deleted.
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

from casemesh.common.v1 import money_pb2
from casemesh.hotel.v1 import hotel_pb2

from ...runtime.sqlite_journal import open_durable
from ..contract import MAX_NIGHTS, MAX_ROOMS_PER_STAY
from . import metrics
from .calls import Unavailable

log = logging.getLogger("casemesh.hotel.booking.store")

#: Most writes in one group commit.
MAX_COMMIT_WRITES = 256

PENDING, CONFIRMED, FAILED, CANCELLED, CHECKED_IN = "PENDING", "CONFIRMED", "FAILED", "CANCELLED", "CHECKED_IN"
#: Statuses that never change again.
FINAL = (FAILED, CANCELLED, CHECKED_IN)
#: PENDING steps: the saga's, then its compensations.
HOLD, AUTHORIZE, CONFIRM, RELEASE, VOID = "hold", "authorize", "confirm", "release", "void"
#: CONFIRMED steps: nothing to do, or an intent being carried out.
NO_STEP, CANCEL, CHECK_IN = "", "cancel", "check_in"

STATUS_PROTO = {PENDING: hotel_pb2.BOOKING_STATUS_PENDING, CONFIRMED: hotel_pb2.BOOKING_STATUS_CONFIRMED,
                FAILED: hotel_pb2.BOOKING_STATUS_FAILED, CANCELLED: hotel_pb2.BOOKING_STATUS_CANCELLED,
                CHECKED_IN: hotel_pb2.BOOKING_STATUS_CHECKED_IN}


def _in(*values: str) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


_ROW_CHECKS = (
    f" CHECK (status IN {_in(*STATUS_PROTO)}),"
    f" CHECK ((status = '{PENDING}') = (step IN {_in(HOLD, AUTHORIZE, CONFIRM, RELEASE, VOID)})),"
    f" CHECK (status <> '{CONFIRMED}' OR step IN {_in(NO_STEP, CANCEL, CHECK_IN)}),"
    f" CHECK (status NOT IN {_in(*FINAL)} OR step = '{NO_STEP}'),"
    f" CHECK ((failure_reason <> 0) = (status = '{FAILED}' OR step IN {_in(RELEASE, VOID)})),"
    f" CHECK (status NOT IN {_in(CONFIRMED, CANCELLED, CHECKED_IN)} OR payment_id <> ''),"
    f" CHECK (step NOT IN {_in(CONFIRM, VOID)} OR payment_id <> ''),"
    f" CHECK (nights BETWEEN 1 AND {MAX_NIGHTS}), CHECK (rooms BETWEEN 1 AND {MAX_ROOMS_PER_STAY}),"
    " CHECK (total_minor >= 1), CHECK (conflict_retries >= 0)"
)
_REQUEST_COLUMNS = ("booking_id, guest_id, idempotency_key, request_hash, hotel_id, room_type_id, check_in, nights, "
                    "rooms, card_token, currency_code, total_minor, hold_id, created_at_unix_ms")
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS bookings ("
     " booking_id TEXT PRIMARY KEY, guest_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
     " request_hash TEXT NOT NULL, hotel_id TEXT NOT NULL, room_type_id TEXT NOT NULL, check_in TEXT NOT NULL,"
     " nights INTEGER NOT NULL, rooms INTEGER NOT NULL, card_token TEXT NOT NULL, currency_code TEXT NOT NULL,"
     " total_minor INTEGER NOT NULL, hold_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL, step TEXT NOT NULL,"
     " failure_reason INTEGER NOT NULL, payment_id TEXT NOT NULL, conflict_retries INTEGER NOT NULL,"
     f" created_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL,{_ROW_CHECKS})"),
    # The scope of an idempotency key: the guest.
    "CREATE UNIQUE INDEX IF NOT EXISTS bookings_key ON bookings (guest_id, idempotency_key)",
    # Unfinished: PENDING (always with a step) or CONFIRMED with an intent.
    f"CREATE INDEX IF NOT EXISTS bookings_unfinished ON bookings (updated_at_unix_ms) WHERE step <> '{NO_STEP}'",
    ("CREATE TRIGGER IF NOT EXISTS bookings_final BEFORE UPDATE ON bookings "
     f"WHEN OLD.status IN {_in(*FINAL)} "
     "BEGIN SELECT RAISE(ABORT, 'bookings_final: a failed, cancelled or checked-in booking never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS bookings_confirmed BEFORE UPDATE ON bookings "
     f"WHEN OLD.status = '{CONFIRMED}' AND NOT (NEW.status = '{CONFIRMED}' "
     f"OR (NEW.status = '{CANCELLED}' AND OLD.step = '{CANCEL}') "
     f"OR (NEW.status = '{CHECKED_IN}' AND OLD.step = '{CHECK_IN}')) "
     "BEGIN SELECT RAISE(ABORT, 'bookings_confirmed: a confirmed booking is cancelled or checked in through its "
     "intent only'); END"),
    ("CREATE TRIGGER IF NOT EXISTS bookings_intent BEFORE UPDATE ON bookings "
     f"WHEN OLD.status = '{CONFIRMED}' AND NEW.status = '{CONFIRMED}' AND OLD.step <> '{NO_STEP}' "
     f"AND NEW.step <> OLD.step AND NOT (OLD.step = '{CHECK_IN}' AND NEW.step = '{NO_STEP}') "
     "BEGIN SELECT RAISE(ABORT, 'bookings_intent: a cancellation is never undone or turned into a check-in'); END"),
    (f"CREATE TRIGGER IF NOT EXISTS bookings_request BEFORE UPDATE OF {_REQUEST_COLUMNS} "
     "ON bookings BEGIN SELECT RAISE(ABORT, 'bookings_request: a booking''s request never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS bookings_kept BEFORE DELETE ON bookings "
     "BEGIN SELECT RAISE(ABORT, 'bookings_kept: a booking is never deleted'); END"),
)

Statement = tuple[str, tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class BookingRow:
    """One booking (a row of ``bookings``; see the module docstring). ``check_in`` "YYYY-MM-DD"; the total in minor
    units of ``currency_code``; ``failure_reason`` a ``BookingFailure``; times in Unix ms."""

    booking_id: str
    guest_id: str
    idempotency_key: str
    request_hash: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    card_token: str
    currency_code: str
    total_minor: int
    hold_id: str
    status: str
    step: str
    failure_reason: int
    payment_id: str
    conflict_retries: int
    created_at_unix_ms: int
    updated_at_unix_ms: int

    @property
    def total(self) -> money_pb2.Money:
        """The stay's total as Money."""
        return money_pb2.Money(currency_code=self.currency_code, amount_minor=self.total_minor)

    def to_proto(self) -> hotel_pb2.Booking:
        """The ``casemesh.hotel.v1.Booking`` (``failure_reason`` only when FAILED)."""
        return hotel_pb2.Booking(
            booking_id=self.booking_id, guest_id=self.guest_id, hotel_id=self.hotel_id,
            room_type_id=self.room_type_id, check_in=self.check_in, nights=self.nights, rooms=self.rooms,
            total=self.total, status=STATUS_PROTO[self.status],
            failure_reason=self.failure_reason if self.status == FAILED else hotel_pb2.BOOKING_FAILURE_UNSPECIFIED,
            hold_id=self.hold_id, payment_id=self.payment_id, conflict_retries=self.conflict_retries,
            created_at_unix_ms=self.created_at_unix_ms)


_COLUMNS = [f.name for f in fields(BookingRow)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM bookings"


def insert_row(row: BookingRow) -> Statement:
    """A new row (PENDING, or FAILED at once)."""
    return f"INSERT INTO bookings ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", astuple(row)


def update_row(row: BookingRow) -> Statement:
    """Store where ``row`` is now: its status, step, failure reason, payment id, conflict retries and update time."""
    return (("UPDATE bookings SET status = ?, step = ?, failure_reason = ?, payment_id = ?, conflict_retries = ?, "
             "updated_at_unix_ms = ? WHERE booking_id = ?"),
            (row.status, row.step, row.failure_reason, row.payment_id, row.conflict_retries, row.updated_at_unix_ms,
             row.booking_id))


class StoreUnavailable(Unavailable):
    """The store could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class BookingStore:
    """The SQLite file at ``path`` (see the module docstring). Raises ``sqlite3.Error`` when it cannot be opened; every
    method raises :class:`StoreUnavailable` when the file cannot be read or written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hotel-booking-db")
        self._queue: list[tuple[list[Statement], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the bookings store is closed")
        return self._db

    async def _run(self, function, *args):
        if self._closed:
            raise StoreUnavailable("the bookings store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the bookings store could not be read: {error}") from error

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._connection().execute(sql, params).fetchall()

    async def _rows(self, where: str, params: tuple = ()) -> list[BookingRow]:
        return [BookingRow(*row) for row in await self._run(self._query, f"{_SELECT} {where}", params)]

    async def write(self, statements: Sequence[Statement]) -> None:
        """Commit ``statements`` (one write: all or none) with the writes queued alongside, fsynced, then return.

        :class:`StoreUnavailable` when they could not be written (nothing of this write changed; a schema refusal,
        ``sqlite3.IntegrityError``, is a bug above the store and logged as one). A cancelled caller does not stop the
        write: it completes or fails all the same.
        """
        if self._closed:
            raise StoreUnavailable("the bookings store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((list(statements), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="hotel-booking-commit")
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the bookings schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the bookings store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the bookings store could not be written: {error}") from error

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

    async def get(self, booking_id: str) -> BookingRow | None:
        """The row of ``booking_id``, or ``None``."""
        rows = await self._rows("WHERE booking_id = ?", (booking_id,))
        return rows[0] if rows else None

    async def by_key(self, guest_id: str, idempotency_key: str) -> BookingRow | None:
        """The row of the guest's idempotency key, or ``None``."""
        rows = await self._rows("WHERE guest_id = ? AND idempotency_key = ?", (guest_id, idempotency_key))
        return rows[0] if rows else None

    async def unfinished(self, before_ms: int, limit: int = 1_000) -> list[BookingRow]:
        """Rows PENDING or CONFIRMED with an intent, last written at or before ``before_ms`` (Unix ms), oldest
        first."""
        return await self._rows(f"WHERE step <> '{NO_STEP}' AND updated_at_unix_ms <= ? "
                                "ORDER BY updated_at_unix_ms LIMIT ?", (before_ms, limit))

    async def count_pending(self) -> int:
        """How many rows are PENDING."""
        return (await self._run(self._query, f"SELECT count(*) FROM bookings WHERE status = '{PENDING}'"))[0][0]
