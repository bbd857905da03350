"""The gateway's durable records: payments, attempts, idempotency keys, ledger entries, settlement batches.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway ... settlement") and seed 000 line
522 ("Payment Service: Idempotent APIs"): nothing the gateway told a merchant, and nothing it is about to ask an
acquirer, may be lost. One SQLite file, ``DATA_DIR/payments-gateway/gateway.sqlite``, opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): :meth:`GatewayStore.write` returns once
its statements are committed and fsynced. Concurrent writes are group-committed (one transaction, one fsync, for all
the writes waiting; a batch that fails is retried one write at a time, so one bad write fails only itself), all reads
and writes in one worker thread: the event loop never waits on the disk. A write of several statements is all or
none.

Tables:

- ``payments``: one row per payment (the fields of ``casemesh.payments.v1.Payment`` plus the card token, the customer
  and whether the Authorize asked for a capture);
- ``attempts``: one row per authorization attempt, ``reference`` = ``<payment_id>.<n>``, written SENT *before* the
  acquirer is called;
- ``idempotency_keys``: (merchant, operation, key) → the request's hash, IN_FLIGHT or DONE, the payment (and refund)
  it is about, the request itself (to finish it in the background) and, once DONE, the serialised answer;
- ``ledger_entries``: every capture and refund (kind, acquirer, reference, refund_reference, merchant, currency,
  amount, recorded_at), written before the acquirer is asked (``confirmed`` 0) and confirmed with its answer, with the
  settlement batch that settled it (``settled_batch``, empty until then);
- ``settlement_batches``: acquirer batches closed by a reconciliation, and the report that reconciled each (empty
  until one did); ``reconciliations``: one row per finished reconciliation (its start, for the "unsettled" rule).

The schema holds the invariants, so no bug above it can break them: CHECKs ``0 <= captured_minor <= amount_minor``
and ``0 <= refunded_minor <= captured_minor``, a known status, a decline reason exactly when DECLINED, an acquirer
only while an authorization is held or was captured; the partial unique index ``attempts_one_approved``: **at most one
APPROVED attempt per payment**; trigger ``attempts_moves``: an attempt only moves SENT → APPROVED / DECLINED /
FAILED / REVERSING and REVERSING → REVERSED (a reversed attempt never comes back); a DONE key always has its answer;
a ledger entry's amount is positive and a refund entry has its refund reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, field, fields
from pathlib import Path
from typing import Any

from casemesh.payments.v1 import payments_pb2

from ...runtime.sqlite_journal import open_durable
from ..contract import GATEWAY_ID_CHARS, MAX_AMOUNT_MINOR, PAYMENT_ID_PREFIX
from . import metrics
from .clients import Unavailable, money

log = logging.getLogger("casemesh.payments.gateway.store")

#: Most writes in one group commit.
MAX_COMMIT_WRITES = 256

PENDING = payments_pb2.PAYMENT_STATUS_PENDING
AUTHORIZED = payments_pb2.PAYMENT_STATUS_AUTHORIZED
CAPTURED = payments_pb2.PAYMENT_STATUS_CAPTURED
REFUNDED = payments_pb2.PAYMENT_STATUS_REFUNDED
DECLINED = payments_pb2.PAYMENT_STATUS_DECLINED
VOIDED = payments_pb2.PAYMENT_STATUS_VOIDED

SENT = payments_pb2.ATTEMPT_STATE_SENT
APPROVED = payments_pb2.ATTEMPT_STATE_APPROVED
ATTEMPT_DECLINED = payments_pb2.ATTEMPT_STATE_DECLINED
FAILED = payments_pb2.ATTEMPT_STATE_FAILED
REVERSING = payments_pb2.ATTEMPT_STATE_REVERSING
REVERSED = payments_pb2.ATTEMPT_STATE_REVERSED

IN_FLIGHT = "IN_FLIGHT"
DONE = "DONE"
CAPTURE = "capture"
REFUND = "refund"
#: The operations an idempotency key is scoped to.
KEY_OPERATIONS = ("authorize", "capture", "void", "refund")

#: Attempt moves the schema allows (old * 10 + new).
ATTEMPT_MOVES = tuple(old * 10 + new for old, new in (
    (SENT, APPROVED), (SENT, ATTEMPT_DECLINED), (SENT, FAILED), (SENT, REVERSING), (REVERSING, REVERSED)))


def _ints(values: Iterable[int]) -> str:
    return ", ".join(str(v) for v in sorted(values))


def _texts(values: Iterable[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


_HOLDING = _ints({AUTHORIZED, CAPTURED, REFUNDED})

SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS payments ("
    " payment_id TEXT PRIMARY KEY, merchant_id TEXT NOT NULL, currency_code TEXT NOT NULL,"
    " amount_minor INTEGER NOT NULL, captured_minor INTEGER NOT NULL, refunded_minor INTEGER NOT NULL,"
    " status INTEGER NOT NULL, decline_reason INTEGER NOT NULL, decline_code TEXT NOT NULL,"
    " card_brand INTEGER NOT NULL, card_last4 TEXT NOT NULL, card_exp_month INTEGER NOT NULL,"
    " card_exp_year INTEGER NOT NULL, card_fingerprint TEXT NOT NULL, acquirer TEXT NOT NULL,"
    " fraud_score INTEGER NOT NULL, description TEXT NOT NULL, customer_id TEXT NOT NULL, card_token TEXT NOT NULL,"
    " capture INTEGER NOT NULL, created_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL,"
    f" CHECK (payment_id LIKE '{PAYMENT_ID_PREFIX}%' AND length(payment_id) = "
    f"{len(PAYMENT_ID_PREFIX) + GATEWAY_ID_CHARS}),"
    f" CHECK (amount_minor BETWEEN 1 AND {MAX_AMOUNT_MINOR}),"
    " CHECK (captured_minor >= 0 AND captured_minor <= amount_minor),"
    " CHECK (refunded_minor >= 0 AND refunded_minor <= captured_minor),"
    f" CHECK (status IN ({_ints({PENDING, AUTHORIZED, CAPTURED, REFUNDED, DECLINED, VOIDED})})),"
    f" CHECK ((status = {DECLINED}) = (decline_reason <> 0)),"
    f" CHECK ((status IN ({_HOLDING})) = (acquirer <> '')),"
    f" CHECK ((status IN ({_ints({CAPTURED, REFUNDED})})) = (captured_minor > 0)),"
    f" CHECK ((status = {REFUNDED}) = (refunded_minor > 0 AND refunded_minor = captured_minor)),"
    " CHECK (fraud_score BETWEEN 0 AND 100))"),
    ("CREATE TABLE IF NOT EXISTS attempts ("
    " reference TEXT PRIMARY KEY, payment_id TEXT NOT NULL REFERENCES payments (payment_id), n INTEGER NOT NULL,"
    " acquirer TEXT NOT NULL, state INTEGER NOT NULL, created_at_unix_ms INTEGER NOT NULL,"
    " updated_at_unix_ms INTEGER NOT NULL,"
    " UNIQUE (payment_id, n), CHECK (n >= 1), CHECK (reference = payment_id || '.' || n),"
    f" CHECK (state IN ({_ints({SENT, APPROVED, ATTEMPT_DECLINED, FAILED, REVERSING, REVERSED})})))"),
    # At most one approved authorization per payment, whatever the code above does.
    f"CREATE UNIQUE INDEX IF NOT EXISTS attempts_one_approved ON attempts (payment_id) WHERE state = {APPROVED}",
    f"CREATE INDEX IF NOT EXISTS attempts_reversing ON attempts (reference) WHERE state = {REVERSING}",
    ("CREATE TRIGGER IF NOT EXISTS attempts_moves BEFORE UPDATE ON attempts "
    f"WHEN NEW.state <> OLD.state AND OLD.state * 10 + NEW.state NOT IN ({_ints(ATTEMPT_MOVES)}) "
    "BEGIN SELECT RAISE(ABORT, 'attempts_moves: an attempt moves only SENT > APPROVED, DECLINED, FAILED or "
    "REVERSING, and REVERSING > REVERSED'); END"),
    ("CREATE TABLE IF NOT EXISTS idempotency_keys ("
    " merchant_id TEXT NOT NULL, operation TEXT NOT NULL, idempotency_key TEXT NOT NULL,"
    " request_hash TEXT NOT NULL, state TEXT NOT NULL, payment_id TEXT NOT NULL, refund_id TEXT NOT NULL,"
    " request BLOB NOT NULL, response BLOB, created_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL,"
    " PRIMARY KEY (merchant_id, operation, idempotency_key),"
    f" CHECK (operation IN ({_texts(KEY_OPERATIONS)})),"
    f" CHECK (state IN ('{IN_FLIGHT}', '{DONE}')),"
    f" CHECK ((state = '{DONE}') = (response IS NOT NULL)),"
    " CHECK ((operation = 'refund') = (refund_id <> '')))"),
    "CREATE INDEX IF NOT EXISTS idempotency_keys_age ON idempotency_keys (created_at_unix_ms)",
    ("CREATE TABLE IF NOT EXISTS ledger_entries ("
    " kind TEXT NOT NULL, acquirer TEXT NOT NULL, reference TEXT NOT NULL, refund_reference TEXT NOT NULL,"
    " payment_id TEXT NOT NULL, merchant_id TEXT NOT NULL, currency_code TEXT NOT NULL,"
    " amount_minor INTEGER NOT NULL, confirmed INTEGER NOT NULL, recorded_at_unix_ms INTEGER NOT NULL,"
    " settled_batch TEXT NOT NULL,"
    " PRIMARY KEY (kind, reference, refund_reference),"
    f" CHECK (kind IN ('{CAPTURE}', '{REFUND}')),"
    f" CHECK ((kind = '{CAPTURE}') = (refund_reference = '')),"
    " CHECK (amount_minor > 0), CHECK (confirmed IN (0, 1)))"),
    "CREATE INDEX IF NOT EXISTS ledger_unsettled ON ledger_entries (recorded_at_unix_ms) WHERE settled_batch = ''",
    "CREATE INDEX IF NOT EXISTS ledger_payment ON ledger_entries (payment_id)",
    ("CREATE TABLE IF NOT EXISTS settlement_batches ("
    " acquirer TEXT NOT NULL, batch_id TEXT NOT NULL, closed_at_unix_ms INTEGER NOT NULL,"
    " report_id TEXT NOT NULL, PRIMARY KEY (acquirer, batch_id))"),
    ("CREATE TABLE IF NOT EXISTS reconciliations ("
    " report_id TEXT PRIMARY KEY, started_at_unix_ms INTEGER NOT NULL, finished_at_unix_ms INTEGER NOT NULL,"
    " discrepancies INTEGER NOT NULL, report_path TEXT NOT NULL)"),
)

Statement = tuple[str, tuple[Any, ...]]


def now_ms(clock=time.time) -> int:
    """``clock()`` (seconds since the Unix epoch) in whole milliseconds."""
    return int(clock() * 1000)


# -- records -----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One authorization attempt (a row of ``attempts``): ``state`` an ``AttemptState``, times in Unix ms."""

    reference: str
    payment_id: str
    n: int
    acquirer: str
    state: int
    created_at_unix_ms: int
    updated_at_unix_ms: int

    def to_proto(self) -> payments_pb2.Attempt:
        return payments_pb2.Attempt(acquirer=self.acquirer, reference=self.reference, state=self.state)


@dataclass(frozen=True, slots=True)
class PaymentRecord:
    """One payment (a row of ``payments``) with its attempts in order. Amounts in minor units of
    ``currency_code``; ``status`` a ``PaymentStatus``, ``decline_reason`` a ``DeclineReason``, ``card_brand`` a
    ``CardBrand``; ``capture`` whether the Authorize asked for a capture; times in Unix ms."""

    payment_id: str
    merchant_id: str
    currency_code: str
    amount_minor: int
    captured_minor: int
    refunded_minor: int
    status: int
    decline_reason: int
    decline_code: str
    card_brand: int
    card_last4: str
    card_exp_month: int
    card_exp_year: int
    card_fingerprint: str
    acquirer: str
    fraud_score: int
    description: str
    customer_id: str
    card_token: str
    capture: bool
    created_at_unix_ms: int
    updated_at_unix_ms: int
    attempts: tuple[AttemptRecord, ...] = field(default=(), compare=True)

    @property
    def approved(self) -> AttemptRecord | None:
        """The APPROVED attempt (the authorization held), if any."""
        return next((a for a in self.attempts if a.state == APPROVED), None)

    def to_proto(self) -> payments_pb2.Payment:
        """The ``casemesh.payments.v1.Payment`` of this record."""
        card = payments_pb2.Card(brand=self.card_brand, last4=self.card_last4, exp_month=self.card_exp_month,
                                 exp_year=self.card_exp_year, fingerprint=self.card_fingerprint)
        return payments_pb2.Payment(
            payment_id=self.payment_id, merchant_id=self.merchant_id,
            amount=money(self.currency_code, self.amount_minor), captured_minor=self.captured_minor,
            refunded_minor=self.refunded_minor, status=self.status, decline_reason=self.decline_reason,
            decline_code=self.decline_code, card=card, acquirer=self.acquirer,
            attempts=[a.to_proto() for a in self.attempts], fraud_score=self.fraud_score,
            description=self.description, created_at_unix_ms=self.created_at_unix_ms,
            updated_at_unix_ms=self.updated_at_unix_ms)


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One idempotency key (a row of ``idempotency_keys``): ``state`` IN_FLIGHT or DONE, ``request`` the serialised
    request, ``response`` the serialised answer once DONE; ``refund_id`` only for a refund."""

    merchant_id: str
    operation: str
    idempotency_key: str
    request_hash: str
    state: str
    payment_id: str
    refund_id: str
    request: bytes
    response: bytes | None
    created_at_unix_ms: int
    updated_at_unix_ms: int

    @property
    def scope(self) -> tuple[str, str, str]:
        """(merchant_id, operation, idempotency_key)."""
        return self.merchant_id, self.operation, self.idempotency_key


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """A capture or refund the gateway recorded (a row of ``ledger_entries``): amount in minor units of
    ``currency_code``; ``confirmed`` once the acquirer answered it; ``settled_batch`` the batch whose file settled it
    (empty until then)."""

    kind: str
    acquirer: str
    reference: str
    refund_reference: str
    payment_id: str
    merchant_id: str
    currency_code: str
    amount_minor: int
    confirmed: bool
    recorded_at_unix_ms: int
    settled_batch: str

    @property
    def key(self) -> tuple[str, str, str]:
        """(kind, reference, refund_reference): what a settlement line is matched on."""
        return self.kind, self.reference, self.refund_reference


def _columns(record_type) -> list[str]:
    return [f.name for f in fields(record_type) if f.name != "attempts"]


_PAYMENT_COLUMNS = _columns(PaymentRecord)
_ATTEMPT_COLUMNS = _columns(AttemptRecord)
_KEY_COLUMNS = _columns(KeyRecord)
_LEDGER_COLUMNS = _columns(LedgerEntry)
_PAYMENT_MUTABLE = [c for c in _PAYMENT_COLUMNS if c not in (
    "payment_id", "merchant_id", "currency_code", "amount_minor", "description", "customer_id", "card_token",
    "capture", "created_at_unix_ms")]


def _insert(table: str, columns: list[str], verb: str = "INSERT") -> str:
    return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _payment_row(payment: PaymentRecord) -> tuple:
    return tuple(getattr(payment, c) for c in _PAYMENT_COLUMNS)


# -- statements (a write is a list of them, all or none) ---------------------------------------------------------------

def insert_payment(payment: PaymentRecord) -> Statement:
    return _insert("payments", _PAYMENT_COLUMNS), _payment_row(payment)


def update_payment(payment: PaymentRecord) -> Statement:
    """Every field that changes over a payment's life (status, amounts, decline, card, acquirer, fraud score)."""
    sets = ", ".join(f"{c} = ?" for c in _PAYMENT_MUTABLE)
    return (f"UPDATE payments SET {sets} WHERE payment_id = ?",
            (*(getattr(payment, c) for c in _PAYMENT_MUTABLE), payment.payment_id))


def delete_payment(payment_id: str) -> Statement:
    """Only a payment without attempts (a request refused before any acquirer was asked)."""
    return (("DELETE FROM payments WHERE payment_id = ? AND NOT EXISTS "
            "(SELECT 1 FROM attempts WHERE attempts.payment_id = payments.payment_id)"), (payment_id,))


def insert_attempt(attempt: AttemptRecord) -> Statement:
    return _insert("attempts", _ATTEMPT_COLUMNS), astuple(attempt)


def set_attempt_state(reference: str, state: int, at_ms: int) -> Statement:
    return "UPDATE attempts SET state = ?, updated_at_unix_ms = ? WHERE reference = ?", (state, at_ms, reference)


def insert_key(key: KeyRecord) -> Statement:
    return _insert("idempotency_keys", _KEY_COLUMNS), astuple(key)


def key_done(scope: tuple[str, str, str], response: bytes, at_ms: int) -> Statement:
    return ((f"UPDATE idempotency_keys SET state = '{DONE}', response = ?, updated_at_unix_ms = ? "
            "WHERE merchant_id = ? AND operation = ? AND idempotency_key = ?"), (response, at_ms, *scope))


def delete_key(scope: tuple[str, str, str]) -> Statement:
    return ("DELETE FROM idempotency_keys WHERE merchant_id = ? AND operation = ? AND idempotency_key = ?", scope)


def insert_ledger_entry(entry: LedgerEntry) -> Statement:
    """Record a capture or refund before the acquirer is asked (a repeat of the same entry changes nothing)."""
    return _insert("ledger_entries", _LEDGER_COLUMNS, "INSERT OR IGNORE"), astuple(entry)


def confirm_ledger_entry(kind: str, reference: str, refund_reference: str) -> Statement:
    return ("UPDATE ledger_entries SET confirmed = 1 WHERE kind = ? AND reference = ? AND refund_reference = ?",
            (kind, reference, refund_reference))


def delete_ledger_intent(kind: str, reference: str, refund_reference: str) -> Statement:
    """Forget an entry the acquirer refused (only one not confirmed)."""
    return ("DELETE FROM ledger_entries WHERE kind = ? AND reference = ? AND refund_reference = ? AND confirmed = 0",
            (kind, reference, refund_reference))


def settle_ledger_entry(kind: str, reference: str, refund_reference: str, batch_id: str) -> Statement:
    return ("UPDATE ledger_entries SET settled_batch = ? WHERE kind = ? AND reference = ? AND refund_reference = ?",
            (batch_id, kind, reference, refund_reference))


def insert_batch(acquirer: str, batch_id: str, at_ms: int) -> Statement:
    return (("INSERT OR IGNORE INTO settlement_batches (acquirer, batch_id, closed_at_unix_ms, report_id) "
            "VALUES (?, ?, ?, '')"), (acquirer, batch_id, at_ms))


def batch_reconciled(acquirer: str, batch_id: str, report_id: str) -> Statement:
    return ("UPDATE settlement_batches SET report_id = ? WHERE acquirer = ? AND batch_id = ?",
            (report_id, acquirer, batch_id))


def insert_reconciliation(report_id: str, started_ms: int, finished_ms: int, discrepancies: int,
                          report_path: str) -> Statement:
    return (("INSERT INTO reconciliations (report_id, started_at_unix_ms, finished_at_unix_ms, discrepancies, "
            "report_path) VALUES (?, ?, ?, ?, ?)"), (report_id, started_ms, finished_ms, discrepancies, report_path))


class StoreUnavailable(Unavailable):
    """The store could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class GatewayStore:
    """The gateway's SQLite file at ``path`` (see the module docstring). Raises ``sqlite3.Error`` when it cannot be
    opened; every method raises :class:`StoreUnavailable` when the file cannot be read or written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="payments-gateway-db")
        self._queue: list[tuple[list[Statement], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------------------------

    async def _run(self, function, *args):
        if self._closed:
            raise StoreUnavailable("the gateway store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the gateway store could not be read: {error}") from error

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the gateway store is closed")
        return db.execute(sql, params).fetchall()

    async def write(self, statements: Sequence[Statement]) -> None:
        """Commit ``statements`` (one write: all or none) with the writes queued alongside, fsynced, then return.

        :class:`StoreUnavailable` when they could not be written (nothing of this write changed; a schema refusal,
        ``sqlite3.IntegrityError``, is a bug above the store and logged as one). A cancelled caller does not stop the
        write: it completes or fails all the same.
        """
        if self._closed:
            raise StoreUnavailable("the gateway store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((list(statements), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="payments-gateway-commit")
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the gateway schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the gateway store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the gateway store could not be written: {error}") from error

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
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the gateway store is closed")
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

    async def key(self, merchant_id: str, operation: str, idempotency_key: str) -> KeyRecord | None:
        """The key's record, or ``None``."""
        rows = await self._run(self._query, f"SELECT {', '.join(_KEY_COLUMNS)} FROM idempotency_keys "
                               "WHERE merchant_id = ? AND operation = ? AND idempotency_key = ?",
                               (merchant_id, operation, idempotency_key))
        return KeyRecord(*rows[0]) if rows else None

    async def stale_keys(self, before_ms: int, limit: int = 1_000) -> list[KeyRecord]:
        """IN_FLIGHT keys first used at or before ``before_ms`` (Unix ms) with work left, oldest first: every Capture, Void
        and Refund key; an Authorize key only while its payment has a SENT attempt or is no longer PENDING (a capture
        after the approval) — one whose attempts all ended waits for the merchant's retry."""
        columns = ", ".join(f"k.{c}" for c in _KEY_COLUMNS)
        rows = await self._run(self._query, f"SELECT {columns} FROM idempotency_keys k "
                               f"WHERE k.state = '{IN_FLIGHT}' AND k.created_at_unix_ms <= ? AND ("
                               "k.operation <> 'authorize'"
                               f" OR EXISTS (SELECT 1 FROM attempts a WHERE a.payment_id = k.payment_id"
                               f" AND a.state = {SENT})"
                               f" OR EXISTS (SELECT 1 FROM payments p WHERE p.payment_id = k.payment_id"
                               f" AND p.status <> {PENDING})) "
                               "ORDER BY k.created_at_unix_ms LIMIT ?", (before_ms, limit))
        return [KeyRecord(*row) for row in rows]

    def _payment(self, payment_id: str) -> PaymentRecord | None:
        rows = self._query(f"SELECT {', '.join(_PAYMENT_COLUMNS)} FROM payments WHERE payment_id = ?", (payment_id,))
        if not rows:
            return None
        attempts = tuple(AttemptRecord(*row) for row in self._query(
            f"SELECT {', '.join(_ATTEMPT_COLUMNS)} FROM attempts WHERE payment_id = ? ORDER BY n", (payment_id,)))
        values = list(rows[0])
        values[_PAYMENT_COLUMNS.index("capture")] = bool(values[_PAYMENT_COLUMNS.index("capture")])
        return PaymentRecord(*values, attempts=attempts)

    async def payment(self, payment_id: str) -> PaymentRecord | None:
        """The payment with its attempts, or ``None``."""
        return await self._run(self._payment, payment_id)

    async def payment_exists(self, payment_id: str) -> bool:
        return bool(await self._run(self._query, "SELECT 1 FROM payments WHERE payment_id = ?", (payment_id,)))

    async def refund_exists(self, refund_id: str) -> bool:
        return bool(await self._run(self._query, f"SELECT 1 FROM ledger_entries WHERE kind = '{REFUND}' "
                                    "AND refund_reference = ? UNION SELECT 1 FROM idempotency_keys "
                                    "WHERE refund_id = ?", (refund_id, refund_id)))

    async def reversing(self) -> list[AttemptRecord]:
        """Every attempt REVERSING, oldest first."""
        rows = await self._run(self._query, f"SELECT {', '.join(_ATTEMPT_COLUMNS)} FROM attempts "
                               "WHERE state = ? ORDER BY created_at_unix_ms", (REVERSING,))
        return [AttemptRecord(*row) for row in rows]

    @staticmethod
    def _entry(row: tuple) -> LedgerEntry:
        values = list(row)
        values[_LEDGER_COLUMNS.index("confirmed")] = bool(values[_LEDGER_COLUMNS.index("confirmed")])
        return LedgerEntry(*values)

    async def ledger_entry(self, kind: str, reference: str, refund_reference: str = "") -> LedgerEntry | None:
        rows = await self._run(self._query, f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM ledger_entries "
                               "WHERE kind = ? AND reference = ? AND refund_reference = ?",
                               (kind, reference, refund_reference))
        return self._entry(rows[0]) if rows else None

    async def ledger_entries(self, payment_id: str | None = None) -> list[LedgerEntry]:
        """The ledger entries of a payment (every entry when ``payment_id`` is ``None``), in the order recorded."""
        where, params = ("WHERE payment_id = ?", (payment_id,)) if payment_id is not None else ("", ())
        rows = await self._run(self._query, f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM ledger_entries {where} "
                               "ORDER BY recorded_at_unix_ms, rowid", params)
        return [self._entry(row) for row in rows]

    def _lookup(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], LedgerEntry]:
        found = {}
        sql = (f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM ledger_entries "
               "WHERE kind = ? AND reference = ? AND refund_reference = ?")
        for key in dict.fromkeys(keys):
            rows = self._query(sql, key)
            if rows:
                found[key] = self._entry(rows[0])
        return found

    async def lookup_entries(self, keys: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], LedgerEntry]:
        """The ledger entries of these (kind, reference, refund_reference) keys that exist."""
        return await self._run(self._lookup, keys)

    async def unsettled(self) -> list[LedgerEntry]:
        """Entries no settlement file has settled yet, oldest first."""
        rows = await self._run(self._query, f"SELECT {', '.join(_LEDGER_COLUMNS)} FROM ledger_entries "
                               "WHERE settled_batch = '' ORDER BY recorded_at_unix_ms, rowid")
        return [self._entry(row) for row in rows]

    async def unreconciled_batches(self) -> list[tuple[str, str]]:
        """(acquirer, batch_id) of batches closed but not reconciled (a reconciliation that failed after closing
        them), in the order closed."""
        return [tuple(row) for row in await self._run(
            self._query, "SELECT acquirer, batch_id FROM settlement_batches WHERE report_id = '' "
            "ORDER BY closed_at_unix_ms, rowid")]

    async def last_reconciliation(self) -> tuple[str, int] | None:
        """(report_id, started_at_unix_ms) of the latest finished reconciliation, or ``None``."""
        rows = await self._run(self._query, "SELECT report_id, started_at_unix_ms FROM reconciliations "
                               "ORDER BY started_at_unix_ms DESC LIMIT 1")
        return (rows[0][0], rows[0][1]) if rows else None

    async def prune_keys(self, before_ms: int) -> int:
        """Delete the idempotency keys first used before ``before_ms``; how many were deleted."""
        def prune() -> int:
            db = self._db
            if db is None:
                raise sqlite3.ProgrammingError("the gateway store is closed")
            db.execute("BEGIN IMMEDIATE")
            try:
                count = db.execute("DELETE FROM idempotency_keys WHERE created_at_unix_ms < ?", (before_ms,)).rowcount
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            return count

        return await self._run(prune)
