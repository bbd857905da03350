"""ecommerce-orders' durable records: every order and where its saga stands, written before each next step.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern for distributed transactions"): an order the buyer was told about, or one whose saga began, is never lost,
and a crash at any point leaves enough on disk to finish or compensate it. One SQLite file,
``DATA_DIR/ecommerce-orders/orders.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``): :meth:`OrderStore.write` returns once its statements are committed and fsynced. Concurrent writes
are group-committed (one transaction, one fsync, for all the writes waiting; a batch that fails is retried one write at
a time, so one bad write fails only itself), all reads and writes in one worker thread: the event loop never waits on
the disk (the pattern of services/banking/transfers/store.py).

Table ``orders``, one row per order (:class:`OrderRow`): the buyer, the idempotency key and the card token of the
request, the cart's lines when the checkout began (JSON: product, units, unit price in minor units, reservation id),
the currency and total (minor units), ``state`` PENDING → CONFIRMED or FAILED, and while PENDING the saga's ``step``
(:data:`STEPS`: the furthest step reached), a ``failure_reason`` (an ``OrderFailure``) once it is being compensated,
the gateway's ``payment_id`` once Authorize answered, ``held_until_unix_ms`` (the earliest end of the checkout's holds),
and the times (Unix ms; ``decided_at_unix_ms`` 0 while PENDING).

Table ``claims``, reservation id → the order that took it, for PENDING and CONFIRMED orders (a FAILED order's claims
are deleted with its decision): a reservation belongs to at most one live order (primary key), so two checkouts of one
cart with different keys, or a cart line left behind by a lost ClearLines, never sell the same units twice.

The schema holds the invariants, so no bug above it can break them: one order per (buyer, key); a total of at least
one minor unit; a failure reason when FAILED and none when CONFIRMED; a payment id from the ``commit`` step on and when
CONFIRMED; a decision time exactly when decided; and triggers: a decided order never changes again, an order's request
(buyer, key, card token, lines, total, creation time) never changes, and no order is ever deleted (a sale's record).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import ecommerce_pb2

from ...runtime.sqlite_journal import open_durable
from . import metrics
from .calls import Unavailable

log = logging.getLogger("casemesh.ecommerce.orders.store")

#: Most writes in one group commit.
MAX_COMMIT_WRITES = 256

PENDING = "PENDING"
CONFIRMED = "CONFIRMED"
FAILED = "FAILED"
#: The saga's steps, in order: the lines are recorded (hold them again next); every line is held for the order (pay
#: next); the payment is authorised (commit next); every line is committed (capture next).
RESERVE, PAY, COMMIT, CAPTURE = "reserve", "pay", "commit", "capture"
STEPS = (RESERVE, PAY, COMMIT, CAPTURE)
_STATUS = {PENDING: ecommerce_pb2.ORDER_STATUS_PENDING, CONFIRMED: ecommerce_pb2.ORDER_STATUS_CONFIRMED,
           FAILED: ecommerce_pb2.ORDER_STATUS_FAILED}

_ROW_CHECKS = (
    f" CHECK (state IN ('{PENDING}', '{CONFIRMED}', '{FAILED}')),"
    f" CHECK (step IN ({', '.join(repr(step) for step in STEPS)})),"
    " CHECK (total_minor >= 1),"
    f" CHECK (state <> '{FAILED}' OR failure_reason <> 0),"
    f" CHECK (state <> '{CONFIRMED}' OR (failure_reason = 0 AND step = '{CAPTURE}')),"
    f" CHECK (step NOT IN ('{COMMIT}', '{CAPTURE}') OR payment_id <> ''),"
    f" CHECK ((state = '{PENDING}') = (decided_at_unix_ms = 0))"
)
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS orders ("
     " order_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, card_token TEXT NOT NULL,"
     " lines TEXT NOT NULL, currency_code TEXT NOT NULL, total_minor INTEGER NOT NULL, state TEXT NOT NULL,"
     " step TEXT NOT NULL, failure_reason INTEGER NOT NULL, payment_id TEXT NOT NULL,"
     " held_until_unix_ms INTEGER NOT NULL, created_at_unix_ms INTEGER NOT NULL,"
     f" decided_at_unix_ms INTEGER NOT NULL,{_ROW_CHECKS})"),
    "CREATE UNIQUE INDEX IF NOT EXISTS orders_key ON orders (user_id, idempotency_key)",
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders (user_id, created_at_unix_ms, order_id)",
    f"CREATE INDEX IF NOT EXISTS orders_pending ON orders (created_at_unix_ms) WHERE state = '{PENDING}'",
    ("CREATE TABLE IF NOT EXISTS claims (reservation_id TEXT PRIMARY KEY,"
     " order_id TEXT NOT NULL REFERENCES orders (order_id))"),
    "CREATE INDEX IF NOT EXISTS claims_order ON claims (order_id)",
    ("CREATE TRIGGER IF NOT EXISTS orders_decided BEFORE UPDATE ON orders "
     f"WHEN OLD.state <> '{PENDING}' "
     "BEGIN SELECT RAISE(ABORT, 'orders_decided: a decided order never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS orders_request BEFORE UPDATE OF order_id, user_id, idempotency_key, card_token, "
     "lines, currency_code, total_minor, created_at_unix_ms ON orders "
     "BEGIN SELECT RAISE(ABORT, 'orders_request: an order''s request never changes'); END"),
    ("CREATE TRIGGER IF NOT EXISTS orders_kept BEFORE DELETE ON orders "
     "BEGIN SELECT RAISE(ABORT, 'orders_kept: an order is never deleted'); END"),
)

Statement = tuple[str, tuple[Any, ...]]


class Line(NamedTuple):
    """One line of an order: ``quantity`` units of ``product_id`` at ``unit_price_minor`` each, held by
    ``reservation_id``."""

    product_id: str
    quantity: int
    unit_price_minor: int
    reservation_id: str


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order (a row of ``orders``; see the module docstring). Money in minor units of ``currency_code``;
    ``failure_reason`` an ``OrderFailure``; times in Unix ms."""

    order_id: str
    user_id: str
    idempotency_key: str
    card_token: str
    lines: tuple[Line, ...]
    currency_code: str
    total_minor: int
    state: str
    step: str
    failure_reason: int
    payment_id: str
    held_until_unix_ms: int
    created_at_unix_ms: int
    decided_at_unix_ms: int

    @property
    def compensating(self) -> bool:
        """PENDING with a failure reason: the saga is undoing what it did."""
        return self.state == PENDING and self.failure_reason != 0

    @property
    def reservation_ids(self) -> list[str]:
        """The lines' reservation ids, in line order."""
        return [line.reservation_id for line in self.lines]

    def to_proto(self) -> ecommerce_pb2.Order:
        """The ``casemesh.ecommerce.v1.Order`` of the row (a PENDING one's failure reason is not shown)."""
        return ecommerce_pb2.Order(
            order_id=self.order_id, user_id=self.user_id, status=_STATUS[self.state],
            lines=[ecommerce_pb2.OrderLine(product_id=line.product_id, quantity=line.quantity,
                                           unit_price=money_pb2.Money(currency_code=self.currency_code,
                                                                      amount_minor=line.unit_price_minor),
                                           reservation_id=line.reservation_id) for line in self.lines],
            total=money_pb2.Money(currency_code=self.currency_code, amount_minor=self.total_minor),
            failure_reason=self.failure_reason if self.state == FAILED else 0, payment_id=self.payment_id,
            created_at_unix_ms=self.created_at_unix_ms, decided_at_unix_ms=self.decided_at_unix_ms)


_COLUMNS = [f.name for f in fields(OrderRow)]
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM orders"
_LINES = _COLUMNS.index("lines")


def _to_db(row: OrderRow) -> tuple[Any, ...]:
    values = [getattr(row, name) for name in _COLUMNS]
    values[_LINES] = json.dumps([list(line) for line in row.lines], separators=(",", ":"))
    return tuple(values)


def _from_db(values: tuple[Any, ...]) -> OrderRow:
    values = list(values)
    values[_LINES] = tuple(Line(*line) for line in json.loads(values[_LINES]))
    return OrderRow(*values)


def insert_order(row: OrderRow) -> list[Statement]:
    """A new PENDING order and its claims on its lines' reservations."""
    return [(f"INSERT INTO orders ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", _to_db(row)),
            *(("INSERT INTO claims (reservation_id, order_id) VALUES (?, ?)", (reservation_id, row.order_id))
              for reservation_id in row.reservation_ids)]


def progress(row: OrderRow) -> list[Statement]:
    """Store where a PENDING order's saga stands (``row``'s step, failure reason, payment id and hold)."""
    return [((f"UPDATE orders SET step = ?, failure_reason = ?, payment_id = ?, held_until_unix_ms = ? "
             f"WHERE order_id = ? AND state = '{PENDING}'"),
             (row.step, row.failure_reason, row.payment_id, row.held_until_unix_ms, row.order_id))]


def decide(row: OrderRow) -> list[Statement]:
    """Store a PENDING order's decision (``row`` decided); a FAILED order's claims go with it."""
    statements = [((f"UPDATE orders SET state = ?, step = ?, failure_reason = ?, payment_id = ?, "
                   f"decided_at_unix_ms = ? WHERE order_id = ? AND state = '{PENDING}'"),
                   (row.state, row.step, row.failure_reason, row.payment_id, row.decided_at_unix_ms, row.order_id))]
    if row.state == FAILED:
        statements.append(("DELETE FROM claims WHERE order_id = ?", (row.order_id,)))
    return statements


class StoreUnavailable(Unavailable):
    """The store could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry."""


class OrderStore:
    """The SQLite file at ``path`` (see the module docstring). Raises ``sqlite3.Error`` when it cannot be opened; every
    method raises :class:`StoreUnavailable` when the file cannot be read or written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ecommerce-orders-db")
        self._queue: list[tuple[list[Statement], asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    # -- plumbing ---------------------------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the orders store is closed")
        return self._db

    async def _run(self, function, *args):
        if self._closed:
            raise StoreUnavailable("the orders store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the orders store could not be read: {error}") from error

    def _query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._connection().execute(sql, params).fetchall()

    async def _rows(self, where: str, params: tuple = ()) -> list[OrderRow]:
        return [_from_db(row) for row in await self._run(self._query, f"{_SELECT} {where}", params)]

    async def write(self, statements: Sequence[Statement]) -> None:
        """Commit ``statements`` (one write: all or none) with the writes queued alongside, fsynced, then return.

        :class:`StoreUnavailable` when they could not be written (nothing of this write changed; a schema refusal,
        ``sqlite3.IntegrityError``, is a bug above the store and logged as one). A cancelled caller does not stop the
        write: it completes or fails all the same.
        """
        if self._closed:
            raise StoreUnavailable("the orders store is closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((list(statements), future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="ecommerce-orders-commit")
        try:
            await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the orders schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the orders store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the orders store could not be written: {error}") from error

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

    async def get(self, order_id: str) -> OrderRow | None:
        """The order ``order_id``, or ``None``."""
        rows = await self._rows("WHERE order_id = ?", (order_id,))
        return rows[0] if rows else None

    async def by_key(self, user_id: str, idempotency_key: str) -> OrderRow | None:
        """The order of a buyer's idempotency key, or ``None``."""
        rows = await self._rows("WHERE user_id = ? AND idempotency_key = ?", (user_id, idempotency_key))
        return rows[0] if rows else None

    async def pending(self, before_ms: int, limit: int = 1_000) -> list[OrderRow]:
        """PENDING orders created at or before ``before_ms`` (Unix ms), oldest first."""
        return await self._rows(f"WHERE state = '{PENDING}' AND created_at_unix_ms <= ? "
                                "ORDER BY created_at_unix_ms LIMIT ?", (before_ms, limit))

    async def count_pending(self) -> int:
        """How many orders are PENDING."""
        return (await self._run(self._query, f"SELECT count(*) FROM orders WHERE state = '{PENDING}'"))[0][0]

    async def claims(self, reservation_ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Reservation id → (order id, its state) of those of ``reservation_ids`` a live order took."""
        ids = list(reservation_ids)
        if not ids:
            return {}
        rows = await self._run(self._query, (
            "SELECT claims.reservation_id, orders.order_id, orders.state FROM claims JOIN orders USING (order_id) "
            f"WHERE claims.reservation_id IN ({', '.join('?' * len(ids))})"), tuple(ids))
        return {reservation_id: (order_id, state) for reservation_id, order_id, state in rows}

    async def by_user(self, user_id: str, limit: int, before: tuple[int, str] | None = None) -> list[OrderRow]:
        """Up to ``limit`` of a buyer's orders, newest first (creation time, then order id, both descending), after
        the cursor ``before`` ((created_at_unix_ms, order_id) of the previous page's last order) when given."""
        if before is None:
            return await self._rows("WHERE user_id = ? ORDER BY created_at_unix_ms DESC, order_id DESC LIMIT ?",
                                    (user_id, limit))
        return await self._rows("WHERE user_id = ? AND (created_at_unix_ms, order_id) < (?, ?) "
                                "ORDER BY created_at_unix_ms DESC, order_id DESC LIMIT ?",
                                (user_id, *before, limit))
