"""One simulated acquirer's ledger: authorizations, captures, refunds and settlement batches, durable in SQLite.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": PSP routing, settlement) and seed
000 line 522 ("Payment Service: Idempotent APIs, retry with exponential backoff"): the gateway retries every call
with the same ``reference`` (``refund_reference``), so every write here is keyed by it and a repeat finds what the
first call stored. The file is ``DATA_DIR/<acquirer>/ledger.sqlite``, opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): every operation returns once it is
committed and fsynced, so what the acquirer answered survives a crash of the process or the machine.

Every ledger operation (:meth:`AcquirerStore.authorize`, :meth:`~AcquirerStore.capture`,
:meth:`~AcquirerStore.refund`, :meth:`~AcquirerStore.void`, :meth:`~AcquirerStore.close_batch`) is a function that
reads the rows it needs, decides, and writes, run in the store's one worker thread (the event loop never waits on the
disk). Operations queued meanwhile are group-committed: one transaction and one fsync for all of them, each inside
its own SAVEPOINT, so one that fails (a domain error, a refused write) rolls back alone and the others commit. They
run one after the other, in the order they were queued: two operations on one reference never interleave (a Void and
a Capture of one authorization, two refunds of one capture), and no capture or refund slips into a batch while it is
being closed.

Tables (the schema holds the invariants, so no bug above it can break them):

- ``authorizations`` (``reference`` primary key, one row per reference): ``psp_reference`` (unique), ``state`` (an
  ``AuthorizationState``), ``merchant_id``, ``currency``, ``amount_minor``, ``decline_code``, ``captured_minor``,
  ``refunded_minor``, the capture's fee, batch, line sequence and booking time. CHECKs: ``0 <= refunded_minor <=
  captured_minor <= amount_minor``; a decline code exactly when DECLINED; ``captured_minor > 0`` exactly when
  CAPTURED, and then a batch, a line and a booking time; a tombstone (a Void of a reference never seen: no merchant,
  currency or amount) only VOIDED. Triggers: ``authorizations_moves`` (a state changes only APPROVED → CAPTURED or
  APPROVED → VOIDED: a VOIDED row, tombstone or released, never becomes APPROVED or CAPTURED, and a DECLINED or
  CAPTURED one never changes state), ``authorizations_fixed`` (what was authorised never changes),
  ``authorizations_one_capture`` (a capture, once booked, never changes), ``authorizations_capture_open_batch`` (a
  capture is booked into the open batch only), ``authorizations_refunds_counted`` (``refunded_minor`` is always the
  sum of the authorization's refunds), ``authorizations_new`` (a new row is APPROVED, DECLINED or a tombstone),
  ``authorizations_kept`` (no row is deleted).
- ``refunds`` (``refund_reference`` primary key): ``reference``, ``amount_minor`` (1 or more),
  ``refunded_after_minor`` (the authorization's refunds once this one counted: its answer), ``batch_id``, line
  sequence and booking time. Triggers: a refund only of a CAPTURED authorization, with ``refunded_after_minor`` its
  refunds so far plus this one (so, with the CHECK above, **refunds never exceed the capture**), into the open batch
  only; refunds are never changed or deleted.
- ``batches`` (``batch_id`` = ``<acquirer>-<sequence, 6 digits>``): ``state`` open or closed, ``opened_at``, and
  once closed ``closed_at``, the settlement file (relative to the acquirer's folder) and its line count. At most one
  open batch (a partial unique index); a closed batch never changes; none is deleted.

A batch is closed in one operation: its lines are read, the settlement file written (:func:`.settlement.write_file`:
temporary file, fsync, rename, fsync of the folder), the batch marked closed and the next one opened, then the
transaction commits. A crash before the commit leaves the batch open (a file of it, if written, is rewritten by the
next close and never served before: GetSettlementFile refuses an open batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import acquirer_pb2

from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from ...runtime.sqlite_journal import open_durable
from ..contract import MAX_AMOUNT_MINOR
from . import settlement
from .settlement import CAPTURE, REFUND, SettlementLine

log = logging.getLogger("casemesh.payments.acquirer.store")

T = TypeVar("T")

APPROVED = acquirer_pb2.AUTHORIZATION_STATE_APPROVED
DECLINED = acquirer_pb2.AUTHORIZATION_STATE_DECLINED
CAPTURED = acquirer_pb2.AUTHORIZATION_STATE_CAPTURED
VOIDED = acquirer_pb2.AUTHORIZATION_STATE_VOIDED
STATES = (APPROVED, DECLINED, CAPTURED, VOIDED)
#: Most operations in one group commit.
MAX_COMMIT_OPERATIONS = 256
OPEN = "open"
CLOSED = "closed"
#: The settlement files' folder, inside the acquirer's data folder.
SETTLEMENT_FOLDER = "settlement"
LEDGER_FILE = "ledger.sqlite"
#: Characters of a psp_reference after its prefix.
PSP_REFERENCE_CHARS = 20


def state_name(state: int) -> str:
    """``APPROVED``, ``DECLINED``, ``CAPTURED`` or ``VOIDED``."""
    return acquirer_pb2.AuthorizationState.Name(state).removeprefix("AUTHORIZATION_STATE_")


def short_name(acquirer: str) -> str:
    """The acquirer's short name, the prefix of its psp references: ``payments-psp-a`` → ``psp-a``."""
    return acquirer.removeprefix("payments-")


def batch_id_for(acquirer: str, sequence: int) -> str:
    """``<acquirer>-<sequence, at least 6 digits>``: ``payments-psp-a-000001``."""
    return f"{acquirer}-{sequence:06d}"


def schema(acquirer: str) -> tuple[str, ...]:
    """The ledger's schema for acquirer ``acquirer`` (its batch ids and psp references carry its name)."""
    prefix = short_name(acquirer)
    moves = ", ".join(str(old * 10 + new) for old, new in ((APPROVED, CAPTURED), (APPROVED, VOIDED)))

    def trigger(name: str, when: str, table: str, condition: str, message: str) -> str:
        return (f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {when} ON {table} "
                f"{'WHEN ' + condition + ' ' if condition else ''}BEGIN SELECT RAISE(ABORT, '{name}: {message}'); END")

    open_batch = f"EXISTS (SELECT 1 FROM batches b WHERE b.batch_id = NEW.{{}} AND b.state = '{OPEN}')"
    return (
        ("CREATE TABLE IF NOT EXISTS batches ("
        " batch_id TEXT PRIMARY KEY, sequence INTEGER NOT NULL UNIQUE, state TEXT NOT NULL,"
        " opened_at_unix_ms INTEGER NOT NULL, closed_at_unix_ms INTEGER, file TEXT, lines INTEGER,"
        f" CHECK (sequence >= 1 AND batch_id = '{acquirer}-' || printf('%06d', sequence)),"
        f" CHECK (state IN ('{OPEN}', '{CLOSED}')),"
        f" CHECK ((state = '{CLOSED}') = (closed_at_unix_ms IS NOT NULL)),"
        f" CHECK ((state = '{CLOSED}') = (file IS NOT NULL)),"
        f" CHECK ((state = '{CLOSED}') = (lines IS NOT NULL) AND coalesce(lines, 0) >= 0))"),
        f"CREATE UNIQUE INDEX IF NOT EXISTS batches_one_open ON batches (state) WHERE state = '{OPEN}'",
        trigger("batches_closed_final", "UPDATE", "batches", f"OLD.state = '{CLOSED}'",
                "a closed batch never changes"),
        trigger("batches_kept", "DELETE", "batches", "", "a batch is never deleted"),
        ("CREATE TABLE IF NOT EXISTS authorizations ("
        " reference TEXT PRIMARY KEY, psp_reference TEXT NOT NULL UNIQUE, state INTEGER NOT NULL,"
        " merchant_id TEXT NOT NULL, currency TEXT NOT NULL, amount_minor INTEGER NOT NULL,"
        " decline_code TEXT NOT NULL, captured_minor INTEGER NOT NULL, refunded_minor INTEGER NOT NULL,"
        " capture_fee_minor INTEGER NOT NULL, capture_batch TEXT REFERENCES batches (batch_id),"
        " capture_line INTEGER UNIQUE, captured_at_unix_ms INTEGER NOT NULL,"
        " created_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL,"
        " CHECK (length(reference) BETWEEN 1 AND 64),"
        f" CHECK (psp_reference LIKE '{prefix}!_%' ESCAPE '!'"
        f" AND length(psp_reference) = {len(prefix) + 1 + PSP_REFERENCE_CHARS}),"
        f" CHECK (state IN ({', '.join(str(s) for s in STATES)})),"
        " CHECK ((currency = '') = (merchant_id = '') AND (currency = '') = (amount_minor = 0)),"
        f" CHECK (currency <> '' OR state = {VOIDED}),"
        f" CHECK (amount_minor BETWEEN 0 AND {MAX_AMOUNT_MINOR}),"
        f" CHECK ((state = {DECLINED}) = (decline_code <> '')),"
        " CHECK (captured_minor >= 0 AND captured_minor <= amount_minor),"
        " CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor),"
        f" CHECK ((state = {CAPTURED}) = (captured_minor > 0)),"
        " CHECK ((captured_minor > 0) = (capture_batch IS NOT NULL)),"
        " CHECK ((captured_minor > 0) = (capture_line IS NOT NULL)),"
        " CHECK ((captured_minor > 0) = (captured_at_unix_ms > 0)),"
        " CHECK (capture_fee_minor >= 0 AND (captured_minor > 0 OR capture_fee_minor = 0)))"),
        ("CREATE INDEX IF NOT EXISTS authorizations_batch ON authorizations (capture_batch) "
        "WHERE capture_batch IS NOT NULL"),
        trigger("authorizations_new", "INSERT", "authorizations",
                f"NEW.state NOT IN ({APPROVED}, {DECLINED}, {VOIDED}) OR NEW.captured_minor <> 0"
                f" OR NEW.refunded_minor <> 0 OR (NEW.state = {VOIDED} AND NEW.currency <> '')",
                "a new authorization is approved, declined, or a tombstone (voided before it arrived)"),
        trigger("authorizations_moves", "UPDATE", "authorizations",
                f"NEW.state <> OLD.state AND OLD.state * 10 + NEW.state NOT IN ({moves})",
                "an authorization moves only APPROVED > CAPTURED or APPROVED > VOIDED: a voided one is never "
                "approved or captured"),
        trigger("authorizations_fixed", "UPDATE", "authorizations",
                "NEW.reference <> OLD.reference OR NEW.psp_reference <> OLD.psp_reference"
                " OR NEW.merchant_id <> OLD.merchant_id OR NEW.currency <> OLD.currency"
                " OR NEW.amount_minor <> OLD.amount_minor OR NEW.decline_code <> OLD.decline_code"
                " OR NEW.created_at_unix_ms <> OLD.created_at_unix_ms",
                "what was authorised never changes"),
        trigger("authorizations_one_capture", "UPDATE", "authorizations",
                "OLD.captured_minor > 0 AND (NEW.captured_minor <> OLD.captured_minor"
                " OR NEW.capture_batch IS NOT OLD.capture_batch OR NEW.capture_line IS NOT OLD.capture_line"
                " OR NEW.capture_fee_minor <> OLD.capture_fee_minor"
                " OR NEW.captured_at_unix_ms <> OLD.captured_at_unix_ms)",
                "a capture, once booked, never changes"),
        trigger("authorizations_capture_open_batch", "UPDATE", "authorizations",
                f"OLD.capture_batch IS NULL AND NEW.capture_batch IS NOT NULL AND NOT "
                f"{open_batch.format('capture_batch')}",
                "a capture is booked into the open batch only"),
        trigger("authorizations_refunds_counted", "UPDATE", "authorizations",
                "NEW.refunded_minor <> (SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r"
                " WHERE r.reference = NEW.reference)",
                "refunded_minor is the sum of the refunds"),
        trigger("authorizations_kept", "DELETE", "authorizations", "", "an authorization is never deleted"),
        ("CREATE TABLE IF NOT EXISTS refunds ("
        " refund_reference TEXT PRIMARY KEY, reference TEXT NOT NULL REFERENCES authorizations (reference),"
        " amount_minor INTEGER NOT NULL, refunded_after_minor INTEGER NOT NULL,"
        " batch_id TEXT NOT NULL REFERENCES batches (batch_id), line INTEGER NOT NULL UNIQUE,"
        " booked_at_unix_ms INTEGER NOT NULL,"
        " CHECK (length(refund_reference) BETWEEN 1 AND 64),"
        f" CHECK (amount_minor BETWEEN 1 AND {MAX_AMOUNT_MINOR}),"
        " CHECK (booked_at_unix_ms > 0))"),
        "CREATE INDEX IF NOT EXISTS refunds_batch ON refunds (batch_id)",
        "CREATE INDEX IF NOT EXISTS refunds_reference ON refunds (reference)",
        trigger("refunds_of_a_capture", "INSERT", "refunds",
                f"NOT EXISTS (SELECT 1 FROM authorizations a WHERE a.reference = NEW.reference AND a.state = {CAPTURED}"
                " AND NEW.refunded_after_minor = a.refunded_minor + NEW.amount_minor"
                " AND NEW.refunded_after_minor <= a.captured_minor)",
                "a refund is of a captured authorization, and refunds never exceed the capture"),
        trigger("refunds_open_batch", "INSERT", "refunds", f"NOT {open_batch.format('batch_id')}",
                "a refund is booked into the open batch only"),
        trigger("refunds_fixed", "UPDATE", "refunds", "", "a refund never changes"),
        trigger("refunds_kept", "DELETE", "refunds", "", "a refund is never deleted"),
    )


@dataclass(frozen=True, slots=True)
class AuthorizationRecord:
    """One reference as the ledger holds it (a row of ``authorizations``).

    Amounts in minor units of ``currency``; times in ms since the Unix epoch (0: not yet). A tombstone (a Void of a
    reference never seen) is VOIDED with ``merchant_id``, ``currency`` empty and ``amount_minor`` 0.
    ``capture_batch`` and ``capture_line`` are ``None`` until captured.
    """

    reference: str
    psp_reference: str
    state: int
    merchant_id: str
    currency: str
    amount_minor: int
    decline_code: str
    captured_minor: int
    refunded_minor: int
    capture_fee_minor: int
    capture_batch: str | None
    capture_line: int | None
    captured_at_unix_ms: int
    created_at_unix_ms: int
    updated_at_unix_ms: int

    @property
    def tombstone(self) -> bool:
        """True for a reference voided before any authorization of it arrived."""
        return self.currency == ""

    def to_proto(self, **changes: Any) -> acquirer_pb2.Authorization:
        """The ``Authorization`` as it stands (``changes`` override fields of the message: a first answer)."""
        fields_ = {"reference": self.reference, "psp_reference": self.psp_reference, "state": self.state,
                   "captured_minor": self.captured_minor, "refunded_minor": self.refunded_minor,
                   "decline_code": self.decline_code}
        if not self.tombstone:
            fields_["amount"] = money_pb2.Money(currency_code=self.currency, amount_minor=self.amount_minor)
        fields_.update(changes)
        return acquirer_pb2.Authorization(**fields_)


@dataclass(frozen=True, slots=True)
class RefundRecord:
    """One refund (a row of ``refunds``): minor units; ``refunded_after_minor`` is the authorization's refunds once
    this one counted."""

    refund_reference: str
    reference: str
    amount_minor: int
    refunded_after_minor: int
    batch_id: str
    line: int
    booked_at_unix_ms: int


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """One settlement batch (a row of ``batches``): ``file`` (relative to the acquirer's folder), ``lines`` and
    ``closed_at_unix_ms`` are ``None`` while it is open."""

    batch_id: str
    sequence: int
    state: str
    opened_at_unix_ms: int
    closed_at_unix_ms: int | None
    file: str | None
    lines: int | None


def _columns(record: type) -> str:
    return ", ".join(f.name for f in fields(record))


_AUTHORIZATION_COLUMNS = _columns(AuthorizationRecord)
_REFUND_COLUMNS = _columns(RefundRecord)
_BATCH_COLUMNS = _columns(BatchRecord)
_INSERT_AUTHORIZATION = (f"INSERT INTO authorizations ({_AUTHORIZATION_COLUMNS}) "
                         f"VALUES ({', '.join('?' * len(fields(AuthorizationRecord)))})")
_UPDATE_AUTHORIZATION = (
    "UPDATE authorizations SET state = ?, captured_minor = ?, refunded_minor = ?, capture_fee_minor = ?, "
    "capture_batch = ?, capture_line = ?, captured_at_unix_ms = ?, updated_at_unix_ms = ? WHERE reference = ?")
_INSERT_REFUND = f"INSERT INTO refunds ({_REFUND_COLUMNS}) VALUES ({', '.join('?' * len(fields(RefundRecord)))})"
_INSERT_BATCH = f"INSERT INTO batches ({_BATCH_COLUMNS}) VALUES ({', '.join('?' * len(fields(BatchRecord)))})"
#: A batch's settlement lines, in booking order: its captures and its refunds.
_LINES = (
    f"SELECT reference, psp_reference, '{CAPTURE}', '', merchant_id, currency, captured_minor, capture_fee_minor,"
    " captured_at_unix_ms, capture_line AS line FROM authorizations WHERE capture_batch = ?1"
    f" UNION ALL SELECT r.reference, a.psp_reference, '{REFUND}', r.refund_reference, a.merchant_id, a.currency,"
    " r.amount_minor, 0, r.booked_at_unix_ms, r.line FROM refunds r JOIN authorizations a USING (reference)"
    " WHERE r.batch_id = ?1 ORDER BY line")


class StoreUnavailable(Exception):
    """The ledger could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class AcquirerStore:
    """The ledger of acquirer ``acquirer`` in ``folder`` (``ledger.sqlite`` and ``settlement/``), opened (created
    if needed) at construction; a first batch is opened when there is none. ``clock()`` is the time in seconds since
    the Unix epoch (booking times). ``on_commit(seconds)`` is told the duration of each group commit.

    Raises ``sqlite3.Error`` when the file cannot be opened. Its operations raise the runtime's domain errors
    (:class:`NotFound`, :class:`FailedPrecondition`, :class:`InvalidArgument`) as documented on each, and
    :class:`StoreUnavailable` when the ledger cannot be read or written (nothing changed). An operation once called
    runs to its end even when its caller is cancelled meanwhile.
    """

    def __init__(self, acquirer: str, folder: Path, *, clock: Callable[[], float] = time.time,
                 on_commit: Callable[[float], None] | None = None) -> None:
        self.acquirer = acquirer
        self.folder = folder
        self.settlement_folder = folder / SETTLEMENT_FOLDER
        self._clock = clock
        self._on_commit = on_commit
        folder.mkdir(parents=True, exist_ok=True)
        if not self.settlement_folder.exists():
            self.settlement_folder.mkdir()
            settlement.fsync_folder(folder)
        self._db: sqlite3.Connection | None = open_durable(folder / LEDGER_FILE, schema(acquirer))
        self._db.execute("PRAGMA foreign_keys = ON")
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{acquirer}-ledger")
        self._queue: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        db = self._db
        last_line = db.execute("SELECT max(coalesce((SELECT max(capture_line) FROM authorizations), 0),"
                               " coalesce((SELECT max(line) FROM refunds), 0))").fetchone()[0]
        self._next_line = last_line + 1  # only the worker thread uses it (after this)
        if db.execute(f"SELECT 1 FROM batches WHERE state = '{OPEN}'").fetchone() is None:
            db.execute("BEGIN IMMEDIATE")
            try:
                self._open_next_batch(db)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    # -- reads ------------------------------------------------------------------------------------------------------

    async def get(self, reference: str) -> AuthorizationRecord | None:
        """The reference's record, or ``None`` when the acquirer never saw it."""
        return await self._read(lambda db: self._authorization(db, reference))

    async def get_refund(self, refund_reference: str) -> RefundRecord | None:
        """The refund, or ``None``."""
        return await self._read(lambda db: self._refund(db, refund_reference))

    async def open_batch(self) -> BatchRecord:
        """The open batch."""
        return await self._read(self._open_batch)

    async def batch(self, batch_id: str) -> BatchRecord | None:
        """The batch, or ``None`` when there is none of that id."""
        return await self._read(lambda db: self._batch(db, batch_id))

    async def lines(self, batch_id: str) -> list[SettlementLine]:
        """The settlement lines of a batch (open or closed) as the ledger holds them, in booking order."""
        return await self._read(lambda db: self._lines(db, batch_id))

    async def counts(self) -> dict[str, int]:
        """Rows per authorization state name (and ``tombstones`` among the VOIDED), refunds, closed batches."""

        def count(db: sqlite3.Connection) -> dict[str, int]:
            result = {state_name(state): 0 for state in STATES}
            for state, n in db.execute("SELECT state, count(*) FROM authorizations GROUP BY state"):
                result[state_name(state)] = n
            result["tombstones"] = db.execute("SELECT count(*) FROM authorizations WHERE currency = ''").fetchone()[0]
            result["refunds"] = db.execute("SELECT count(*) FROM refunds").fetchone()[0]
            result["closed_batches"] = db.execute(
                f"SELECT count(*) FROM batches WHERE state = '{CLOSED}'").fetchone()[0]
            return result

        return await self._read(count)

    async def settlement_file(self, batch_id: str) -> list[SettlementLine]:
        """The lines of closed batch ``batch_id``, read from its settlement file.

        :class:`NotFound` for an unknown batch, :class:`FailedPrecondition` for the open one. A file that is missing,
        unreadable or not of its batch's line count is written again from the ledger (logged), and those lines
        returned; :class:`StoreUnavailable` when neither works.
        """
        batch = await self.batch(batch_id)
        if batch is None:
            raise NotFound(f"batch_id: no batch {batch_id} at {self.acquirer}")
        if batch.state == OPEN:
            raise FailedPrecondition(f"batch {batch_id} is the open one: close it first (CloseBatch)")
        assert batch.file is not None
        path = self.folder / batch.file
        try:
            lines = await asyncio.to_thread(settlement.read_file, path)
            if len(lines) == batch.lines:
                return lines
            problem = f"has {len(lines)} lines, not {batch.lines}"
        except (OSError, ValueError) as error:
            problem = f"cannot be read ({error})"
        log.warning("%s: the settlement file of batch %s %s; writing it again from the ledger", self.acquirer,
                    batch_id, problem)

        def rewrite(db: sqlite3.Connection) -> list[SettlementLine]:
            lines = self._lines(db, batch_id)
            settlement.write_file(path, lines)
            return lines

        return await self._read(rewrite)

    # -- ledger operations ------------------------------------------------------------------------------------------

    async def authorize(self, record: AuthorizationRecord) -> tuple[AuthorizationRecord, bool]:
        """Store a new authorization (APPROVED or DECLINED) unless its reference is known already: returns the stored
        record and whether it is this one (``False``: the reference was there, a repeat or a tombstone, unchanged)."""

        def operation(db: sqlite3.Connection) -> tuple[AuthorizationRecord, bool]:
            stored = self._authorization(db, record.reference)
            if stored is not None:
                return stored, False
            now = self._now_ms()
            created = replace(record, created_at_unix_ms=now, updated_at_unix_ms=now)
            db.execute(_INSERT_AUTHORIZATION, astuple(created))
            return created, True

        return await self._run(operation)

    async def capture(self, reference: str, amount_minor: int,
                      fee: Callable[[int], int]) -> tuple[AuthorizationRecord, bool]:
        """Capture ``amount_minor`` (0: all of it) of an APPROVED authorization into the open batch, with the fee
        ``fee(amount)``. Returns the record and whether it was captured now (``False``: a repeat, captured already
        with that amount).

        :class:`NotFound` for an unknown reference; :class:`InvalidArgument` naming ``amount_minor`` when it exceeds
        the authorised amount; :class:`FailedPrecondition` when it was declined, voided, or captured with another
        amount.
        """

        def operation(db: sqlite3.Connection) -> tuple[AuthorizationRecord, bool]:
            stored = self._known(db, reference)
            if stored.state == VOIDED:
                raise FailedPrecondition(f"reference {reference} was voided: nothing to capture")
            if stored.state == DECLINED:
                raise FailedPrecondition(f"reference {reference} was declined ({stored.decline_code}): nothing to "
                                         "capture")
            if amount_minor > stored.amount_minor:
                raise InvalidArgument("amount_minor", f"{amount_minor} exceeds the authorised {stored.amount_minor} "
                                                      f"{stored.currency}")
            wanted = amount_minor or stored.amount_minor
            if stored.state == CAPTURED:
                if stored.captured_minor == wanted:
                    return stored, False
                raise FailedPrecondition(f"reference {reference} was captured with another amount "
                                         f"({stored.captured_minor} {stored.currency}, not {wanted})")
            now = self._now_ms()
            captured = replace(stored, state=CAPTURED, captured_minor=wanted, capture_fee_minor=fee(wanted),
                               capture_batch=self._open_batch(db).batch_id, capture_line=self._take_line(),
                               captured_at_unix_ms=now, updated_at_unix_ms=now)
            self._update(db, captured)
            return captured, True

        return await self._run(operation)

    async def refund(self, reference: str, refund_reference: str,
                     amount_minor: int) -> tuple[AuthorizationRecord, RefundRecord, bool]:
        """Refund ``amount_minor`` of a CAPTURED authorization into the open batch, as ``refund_reference``. Returns
        the authorization, the refund, and whether it was booked now (``False``: a repeat of that refund).

        :class:`FailedPrecondition` when ``refund_reference`` was used for another refund (another reference or
        amount), when the authorization is not captured, or when its refunds would exceed the capture;
        :class:`NotFound` for an unknown reference.
        """

        def operation(db: sqlite3.Connection) -> tuple[AuthorizationRecord, RefundRecord, bool]:
            earlier = self._refund(db, refund_reference)
            if earlier is not None:
                if (earlier.reference, earlier.amount_minor) != (reference, amount_minor):
                    raise FailedPrecondition(
                        f"refund_reference: {refund_reference} was used for another refund ({earlier.amount_minor} "
                        f"of {earlier.reference}, not {amount_minor} of {reference})")
                return self._known(db, reference), earlier, False
            stored = self._known(db, reference)
            if stored.state != CAPTURED:
                raise FailedPrecondition(f"reference {reference} is not captured ({state_name(stored.state)}): "
                                         "nothing to refund")
            refunded = stored.refunded_minor + amount_minor
            if refunded > stored.captured_minor:
                raise FailedPrecondition(
                    f"refunds would exceed the capture of {reference}: {stored.refunded_minor} of "
                    f"{stored.captured_minor} {stored.currency} refunded already, {amount_minor} more asked")
            now = self._now_ms()
            booked = RefundRecord(refund_reference, reference, amount_minor, refunded,
                                  self._open_batch(db).batch_id, self._take_line(), now)
            db.execute(_INSERT_REFUND, astuple(booked))
            updated = replace(stored, refunded_minor=refunded, updated_at_unix_ms=now)
            self._update(db, updated)
            return updated, booked, True

        return await self._run(operation)

    async def void(self, reference: str, psp_reference: str) -> tuple[AuthorizationRecord, str]:
        """Void a reference. Returns the record and what happened: ``release`` (APPROVED → VOIDED), ``tombstone``
        (never seen: recorded VOIDED as ``psp_reference``, so a late authorization is refused), ``repeat`` (VOIDED
        already), ``declined`` (DECLINED: nothing held, nothing changed).

        :class:`FailedPrecondition` when it was captured.
        """

        def operation(db: sqlite3.Connection) -> tuple[AuthorizationRecord, str]:
            stored = self._authorization(db, reference)
            now = self._now_ms()
            if stored is None:
                tombstone = AuthorizationRecord(reference, psp_reference, VOIDED, "", "", 0, "", 0, 0, 0, None, None,
                                                0, now, now)
                db.execute(_INSERT_AUTHORIZATION, astuple(tombstone))
                return tombstone, "tombstone"
            if stored.state == APPROVED:
                released = replace(stored, state=VOIDED, updated_at_unix_ms=now)
                self._update(db, released)
                return released, "release"
            if stored.state == CAPTURED:
                raise FailedPrecondition(f"reference {reference} was captured: it cannot be voided (refund it)")
            return stored, "repeat" if stored.state == VOIDED else "declined"

        return await self._run(operation)

    async def close_batch(self) -> tuple[BatchRecord, list[SettlementLine]]:
        """Close the open batch: write its settlement file (atomically, fsynced), mark it closed, open the next.
        Returns the closed batch and its lines. :class:`StoreUnavailable` when the file or the ledger cannot be
        written (the batch stays open)."""

        def operation(db: sqlite3.Connection) -> tuple[BatchRecord, list[SettlementLine]]:
            batch = self._open_batch(db)
            lines = self._lines(db, batch.batch_id)
            file = f"{SETTLEMENT_FOLDER}/{batch.batch_id}.csv"
            settlement.write_file(self.folder / file, lines)
            closed = replace(batch, state=CLOSED, closed_at_unix_ms=self._now_ms(), file=file, lines=len(lines))
            db.execute("UPDATE batches SET state = ?, closed_at_unix_ms = ?, file = ?, lines = ? WHERE batch_id = ?",
                       (closed.state, closed.closed_at_unix_ms, closed.file, closed.lines, closed.batch_id))
            self._open_next_batch(db)
            return closed, lines

        return await self._run(operation)

    # -- in the worker thread ---------------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _take_line(self) -> int:
        line = self._next_line
        self._next_line += 1
        return line

    @staticmethod
    def _authorization(db: sqlite3.Connection, reference: str) -> AuthorizationRecord | None:
        row = db.execute(f"SELECT {_AUTHORIZATION_COLUMNS} FROM authorizations WHERE reference = ?",
                         (reference,)).fetchone()
        return AuthorizationRecord(*row) if row is not None else None

    def _known(self, db: sqlite3.Connection, reference: str) -> AuthorizationRecord:
        stored = self._authorization(db, reference)
        if stored is None:
            raise NotFound(f"reference: {self.acquirer} has no authorization {reference}")
        return stored

    @staticmethod
    def _refund(db: sqlite3.Connection, refund_reference: str) -> RefundRecord | None:
        row = db.execute(f"SELECT {_REFUND_COLUMNS} FROM refunds WHERE refund_reference = ?",
                         (refund_reference,)).fetchone()
        return RefundRecord(*row) if row is not None else None

    @staticmethod
    def _batch(db: sqlite3.Connection, batch_id: str) -> BatchRecord | None:
        row = db.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE batch_id = ?", (batch_id,)).fetchone()
        return BatchRecord(*row) if row is not None else None

    @staticmethod
    def _open_batch(db: sqlite3.Connection) -> BatchRecord:
        row = db.execute(f"SELECT {_BATCH_COLUMNS} FROM batches WHERE state = '{OPEN}'").fetchone()
        if row is None:  # pragma: no cover - the store opens one at start and at every close
            raise sqlite3.IntegrityError("the ledger has no open batch")
        return BatchRecord(*row)

    def _open_next_batch(self, db: sqlite3.Connection) -> BatchRecord:
        sequence = db.execute("SELECT coalesce(max(sequence), 0) + 1 FROM batches").fetchone()[0]
        batch = BatchRecord(batch_id_for(self.acquirer, sequence), sequence, OPEN, self._now_ms(), None, None, None)
        db.execute(_INSERT_BATCH, astuple(batch))
        return batch

    @staticmethod
    def _lines(db: sqlite3.Connection, batch_id: str) -> list[SettlementLine]:
        return [SettlementLine(*row[:-1]) for row in db.execute(_LINES, (batch_id,))]

    @staticmethod
    def _update(db: sqlite3.Connection, record: AuthorizationRecord) -> None:
        db.execute(_UPDATE_AUTHORIZATION, (
            record.state, record.captured_minor, record.refunded_minor, record.capture_fee_minor,
            record.capture_batch, record.capture_line, record.captured_at_unix_ms, record.updated_at_unix_ms,
            record.reference))

    # -- the worker: reads, group commits ---------------------------------------------------------------------------

    async def _read(self, read: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``read(db)`` in the worker thread, between two commits (it sees committed rows only)."""
        self._check_open()

        def run() -> T:
            if self._db is None:
                raise sqlite3.ProgrammingError(f"the ledger of {self.acquirer} is closed")
            return read(self._db)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, run)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the ledger of {self.acquirer} could not be read: {error}") from error

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Queue ``operation`` for the next group commit and wait until it is on disk; its result, or its error."""
        self._check_open()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name=f"{self.acquirer}-ledger-commit")
        return await asyncio.shield(future)

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_COMMIT_OPERATIONS], self._queue[MAX_COMMIT_OPERATIONS:]
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._executor, self._commit, [op for op, _ in batch])
            except (sqlite3.Error, OSError) as error:
                failure = StoreUnavailable(f"the ledger of {self.acquirer} could not be written: {error}; nothing "
                                           "changed")
                outcomes = [(False, failure)] * len(batch)
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as error:
                outcomes = [(False, error)] * len(batch)
            if self._on_commit is not None:
                self._on_commit(time.perf_counter() - started)
            for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)

    def _commit(self, operations: list[Callable[[sqlite3.Connection], Any]]) -> list[tuple[bool, Any]]:
        """One transaction (one fsync) of ``operations``, each in its own savepoint: a failed one rolls back alone."""
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError(f"the ledger of {self.acquirer} is closed")
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for operation in operations:
                db.execute("SAVEPOINT operation")
                try:
                    value = operation(db)
                except Exception as error:
                    db.execute("ROLLBACK TO operation")
                    db.execute("RELEASE operation")
                    outcomes.append((False, self._failure(error)))
                else:
                    db.execute("RELEASE operation")
                    outcomes.append((True, value))
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    def _failure(self, error: Exception) -> Exception:
        """What the caller of a failed operation gets: domain errors as they are; a write the schema refused (a bug
        above the ledger: logged) FAILED_PRECONDITION; another disk or SQLite error :class:`StoreUnavailable`."""
        if isinstance(error, sqlite3.IntegrityError):
            log.error("%s: the ledger's schema refused a write (a bug above the store): %s", self.acquirer, error)
            return FailedPrecondition(f"the ledger refused the change: {error}")
        if isinstance(error, (sqlite3.Error, OSError)):
            return StoreUnavailable(f"the ledger of {self.acquirer} could not be written: {error}; nothing changed")
        return error

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable(f"the ledger of {self.acquirer} is closed")

    async def close(self) -> None:
        """Finish the operations queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        self._executor.shutdown(wait=False)
