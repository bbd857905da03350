"""Orders: durable in SQLite, the open ones (and recent finished ones) in memory.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38, "Food Delivery", 10M orders/day): an order must not
be lost once the customer was told it is placed, nor given to two couriers. Here an SQLite file
(``DATA_DIR/food-orders/orders.sqlite``) opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``): :meth:`OrderStore.put` returns once its rows are committed and fsynced, so a change the order
service acknowledged survives a crash. Concurrent puts are group-committed (one transaction, one fsync, for all the
puts waiting), in one worker thread: the event loop never waits on the disk. A put of several rows (an
AssignCourier of a batch) is all or none.

The schema holds the invariants too, so no bug above it can break them:

- ``UNIQUE (customer_id, client_request_id)``: one order per request (idempotent PlaceOrder);
- CHECKs: a known state and cancel reason (a reason exactly when CANCELLED); no courier or batch while PLACED, both
  (and ``assigned_at``) from ASSIGNED on; ``picked_up_at`` exactly when PICKED_UP or DELIVERED, ``delivered_at``
  exactly when DELIVERED; 1 to 50 items; an ``ord-`` id of 30 characters, a ``bat-`` batch id of 30;
- trigger ``orders_moves``: a state changes only along the machine's moves (:data:`.machine.MOVES`): nothing goes
  back to PLACED;
- trigger ``orders_one_courier``: once an order has a courier and a batch, they never change. With the two above:
  **no order is dispatched twice**, whatever the code above does;
- triggers ``orders_one_batch_insert`` / ``orders_one_batch_update``: a courier's active orders (ASSIGNED,
  PICKED_UP) are all in one batch, and a batch's active orders all have one courier;
- trigger ``orders_batch_join``: an order joins a batch (PLACED → ASSIGNED) only while no order of the batch is
  PICKED_UP and the batch holds fewer than :data:`~services.food.contract.MAX_ASSIGN_ORDERS` active orders.

In memory: every open order (PLACED, ASSIGNED, PICKED_UP; loaded from the file when the store opens, so a restart keeps
everything acknowledged), a bounded LRU of finished ones (``terminal_cache_size``), the PLACED orders oldest first
(ListOpenOrders; its ASSIGNED ones, for dispatch's recovery, a scan of the open orders), and the active batches (batch →
its active orders, courier → its batch). :meth:`put` claims the courier's batch *before* it writes, so two batches can
never be written for one courier at once: the second put fails at once (:class:`CourierBusy`) and the triggers are the
backstop. Readers see a change only after it is on disk.

One put at a time per order: the caller serialises them (the order service's per-order and per-courier locks,
services/runtime/keyed_locks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from cachetools import LRUCache

from casemesh.common.v1 import geo_pb2, money_pb2
from casemesh.food.v1 import food_pb2

from ...runtime.sqlite_journal import open_durable
from ..contract import MAX_ASSIGN_ORDERS, MAX_ITEMS
from . import metrics
from .machine import ACTIVE, ASSIGNED, CANCELLED, DELIVERED, MOVES, OPEN, PICKED_UP, PLACED, STATES, TERMINAL

log = logging.getLogger("casemesh.food.orders.store")

#: Most puts in one group commit.
MAX_COMMIT_PUTS = 256


def _states(states: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(states))


_ACTIVE = _states(ACTIVE)
_MOVES = _states(old * 10 + new for old, new in MOVES)
_REASONS = _states(food_pb2.CancelReason.values())
#: The condition of a courier's second batch, or a batch's second courier, for the row NEW (active).
_SECOND_BATCH = (
    f"NEW.state IN ({_ACTIVE}) AND ("
    f"EXISTS (SELECT 1 FROM orders o WHERE o.courier_id = NEW.courier_id AND o.state IN ({_ACTIVE})"
    f" AND o.batch_id <> NEW.batch_id AND o.order_id <> NEW.order_id)"
    f" OR EXISTS (SELECT 1 FROM orders o WHERE o.batch_id = NEW.batch_id AND o.state IN ({_ACTIVE})"
    f" AND o.courier_id <> NEW.courier_id AND o.order_id <> NEW.order_id))")


def _trigger(name: str, when: str, condition: str, message: str) -> str:
    return (f"CREATE TRIGGER IF NOT EXISTS {name} BEFORE {when} ON orders WHEN {condition} "
            f"BEGIN SELECT RAISE(ABORT, '{name}: {message}'); END")


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS orders ("
    " order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, client_request_id TEXT NOT NULL,"
    " restaurant_id TEXT NOT NULL, pickup_lat_deg REAL NOT NULL, pickup_lng_deg REAL NOT NULL,"
    " dropoff_lat_deg REAL NOT NULL, dropoff_lng_deg REAL NOT NULL, items INTEGER NOT NULL, state INTEGER NOT NULL,"
    " cancel_reason INTEGER NOT NULL, courier_id TEXT NOT NULL, batch_id TEXT NOT NULL,"
    " fee_currency_code TEXT NOT NULL, fee_amount_minor INTEGER NOT NULL, surge_multiplier REAL NOT NULL,"
    " placed_at_unix_ms INTEGER NOT NULL, ready_at_unix_ms INTEGER NOT NULL, promised_at_unix_ms INTEGER NOT NULL,"
    " assigned_at_unix_ms INTEGER NOT NULL, picked_up_at_unix_ms INTEGER NOT NULL,"
    " delivered_at_unix_ms INTEGER NOT NULL, updated_at_unix_ms INTEGER NOT NULL,"
    " UNIQUE (customer_id, client_request_id),"
    " CHECK (order_id LIKE 'ord-%' AND length(order_id) = 30),"
    f" CHECK (state IN ({_states(STATES)})),"
    f" CHECK (cancel_reason IN ({_REASONS}) AND ((state = {CANCELLED}) = (cancel_reason <> 0))),"
    f" CHECK (items BETWEEN 1 AND {MAX_ITEMS}),"
    " CHECK (fee_amount_minor >= 0 AND surge_multiplier >= 1),"
    " CHECK ((courier_id = '') = (batch_id = '') AND (courier_id = '') = (assigned_at_unix_ms = 0)),"
    " CHECK (batch_id = '' OR (batch_id LIKE 'bat-%' AND length(batch_id) = 30)),"
    f" CHECK (state <> {PLACED} OR courier_id = ''),"
    f" CHECK (state NOT IN ({_states({ASSIGNED, PICKED_UP, DELIVERED})}) OR courier_id <> ''),"
    f" CHECK ((state IN ({_states({PICKED_UP, DELIVERED})})) = (picked_up_at_unix_ms > 0)),"
    f" CHECK ((state = {DELIVERED}) = (delivered_at_unix_ms > 0)))",
    f"CREATE INDEX IF NOT EXISTS orders_open ON orders (placed_at_unix_ms) WHERE state IN ({_states(OPEN)})",
    f"CREATE INDEX IF NOT EXISTS orders_active_courier ON orders (courier_id) WHERE state IN ({_ACTIVE})",
    f"CREATE INDEX IF NOT EXISTS orders_active_batch ON orders (batch_id) WHERE state IN ({_ACTIVE})",
    _trigger("orders_moves", "UPDATE", f"NEW.state <> OLD.state AND OLD.state * 10 + NEW.state NOT IN ({_MOVES})",
             "an order moves only PLACED > ASSIGNED > PICKED_UP > DELIVERED, or to CANCELLED before pickup"),
    _trigger("orders_one_courier", "UPDATE",
             "OLD.courier_id <> '' AND (NEW.courier_id <> OLD.courier_id OR NEW.batch_id <> OLD.batch_id)",
             "an assigned order keeps its courier and batch: no order is dispatched twice"),
    _trigger("orders_one_batch_insert", "INSERT", _SECOND_BATCH,
             "a courier holds one batch at a time, and a batch has one courier"),
    _trigger("orders_one_batch_update", "UPDATE", _SECOND_BATCH,
             "a courier holds one batch at a time, and a batch has one courier"),
    _trigger("orders_batch_join", "UPDATE",
             f"OLD.state = {PLACED} AND NEW.state = {ASSIGNED} AND ("
             f"EXISTS (SELECT 1 FROM orders o WHERE o.batch_id = NEW.batch_id AND o.state = {PICKED_UP}"
             f" AND o.order_id <> NEW.order_id)"
             f" OR (SELECT count(*) FROM orders o WHERE o.batch_id = NEW.batch_id AND o.state IN ({_ACTIVE})"
             f" AND o.order_id <> NEW.order_id) >= {MAX_ASSIGN_ORDERS})",
             "an order joins a batch only before its pickup and while it is not full"),
)


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One order, as stored (a row of ``orders``; the fields of ``casemesh.food.v1.Order`` plus the request id and
    the time of the last change).

    Points in degrees, the fee in minor units of ``fee_currency_code``, times in ms since the Unix epoch (0: not
    yet); ``courier_id`` and ``batch_id`` are ``""`` until assigned; ``cancel_reason`` is a ``CancelReason`` (0
    unless CANCELLED).
    """

    order_id: str
    customer_id: str
    client_request_id: str
    restaurant_id: str
    pickup_lat_deg: float
    pickup_lng_deg: float
    dropoff_lat_deg: float
    dropoff_lng_deg: float
    items: int
    state: int
    cancel_reason: int
    courier_id: str
    batch_id: str
    fee_currency_code: str
    fee_amount_minor: int
    surge_multiplier: float
    placed_at_unix_ms: int
    ready_at_unix_ms: int
    promised_at_unix_ms: int
    assigned_at_unix_ms: int
    picked_up_at_unix_ms: int
    delivered_at_unix_ms: int
    updated_at_unix_ms: int

    @property
    def pickup(self) -> tuple[float, float]:
        """The restaurant, (lat_deg, lng_deg)."""
        return self.pickup_lat_deg, self.pickup_lng_deg

    def to_proto(self) -> food_pb2.Order:
        """The ``casemesh.food.v1.Order`` of this record."""
        return food_pb2.Order(
            order_id=self.order_id, customer_id=self.customer_id, restaurant_id=self.restaurant_id,
            pickup=geo_pb2.LatLng(lat_deg=self.pickup_lat_deg, lng_deg=self.pickup_lng_deg),
            dropoff=geo_pb2.LatLng(lat_deg=self.dropoff_lat_deg, lng_deg=self.dropoff_lng_deg), items=self.items,
            state=self.state, cancel_reason=self.cancel_reason, courier_id=self.courier_id, batch_id=self.batch_id,
            delivery_fee=money_pb2.Money(currency_code=self.fee_currency_code, amount_minor=self.fee_amount_minor),
            surge_multiplier=self.surge_multiplier, placed_at_unix_ms=self.placed_at_unix_ms,
            ready_at_unix_ms=self.ready_at_unix_ms, promised_at_unix_ms=self.promised_at_unix_ms,
            assigned_at_unix_ms=self.assigned_at_unix_ms, picked_up_at_unix_ms=self.picked_up_at_unix_ms,
            delivered_at_unix_ms=self.delivered_at_unix_ms)


_COLUMNS = ", ".join(f.name for f in fields(OrderRecord))
_UPSERT = (f"INSERT INTO orders ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(OrderRecord)))}) "
           "ON CONFLICT (order_id) DO UPDATE SET state = excluded.state, cancel_reason = excluded.cancel_reason, "
           "courier_id = excluded.courier_id, batch_id = excluded.batch_id, "
           "assigned_at_unix_ms = excluded.assigned_at_unix_ms, picked_up_at_unix_ms = excluded.picked_up_at_unix_ms, "
           "delivered_at_unix_ms = excluded.delivered_at_unix_ms, updated_at_unix_ms = excluded.updated_at_unix_ms")


class CourierBusy(Exception):
    """The courier holds another batch (``batch_id``), or the batch is another courier's: FAILED_PRECONDITION."""

    def __init__(self, message: str, batch_id: str) -> None:
        self.batch_id = batch_id
        super().__init__(message)


class StoreUnavailable(Exception):
    """The order could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry later."""


class OrderStore:
    """Orders by id: open ones in memory, finished ones in an LRU, all of them (``path`` set) in SQLite.

    ``path=None`` keeps everything in memory (unit tests of the order service). ``on_change(order)`` (settable) is
    called for each row once a put is on disk (the order service's notifications and metrics); it runs even when the
    caller of :meth:`put` was cancelled meanwhile. Raises ``sqlite3.Error`` when the file cannot be opened or read.
    """

    def __init__(self, path: Path | None, terminal_cache_size: int = 10_000,
                 on_change: Callable[[OrderRecord], None] | None = None) -> None:
        self.on_change = on_change
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._open: dict[str, OrderRecord] = {}
        self._finished: LRUCache[str, OrderRecord] | None = (
            LRUCache(maxsize=terminal_cache_size) if terminal_cache_size > 0 else None)
        self._placed: dict[str, OrderRecord] = {}  # PLACED, oldest first
        self._batches: dict[str, set[str]] = {}  # batch → its active orders
        self._batch_courier: dict[str, str] = {}  # batch → courier (claimed before the write)
        self._courier_batch: dict[str, str] = {}  # courier → its active batch (claimed before the write)
        self._queue: list[tuple[list[tuple], asyncio.Future[None]]] = []
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        if path is not None:
            self._db = open_durable(path, SCHEMA)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="food-orders-db")
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM orders WHERE state IN ({_states(OPEN)}) "
                                    "ORDER BY placed_at_unix_ms, order_id").fetchall()
            for row in rows:
                self._remember(OrderRecord(*row))

    # -- reads ------------------------------------------------------------------------------------------------------

    def cached(self, order_id: str) -> OrderRecord | None:
        """The order if it is in memory (open, or a recent finished one), without touching the disk."""
        order = self._open.get(order_id)
        if order is None and self._finished is not None:
            order = self._finished.get(order_id)
        return order

    async def get(self, order_id: str) -> OrderRecord | None:
        """The order, from memory or else the file; ``None`` when there is none. :class:`StoreUnavailable` when the
        file cannot be read."""
        order = self.cached(order_id)
        if order is not None or self._executor is None:
            return order
        try:
            self._check_open()
            row = await asyncio.get_running_loop().run_in_executor(self._executor, self._select, order_id)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"order {order_id} could not be read: {error}") from error
        if row is None:
            return None
        order = OrderRecord(*row)
        if self._finished is not None and order.state in TERMINAL:
            self._finished[order_id] = order
        return order

    def _select(self, order_id: str) -> tuple | None:
        assert self._db is not None  # noqa: S101 - only called with a database
        return self._db.execute(f"SELECT {_COLUMNS} FROM orders WHERE order_id = ?", (order_id,)).fetchone()

    def open_orders(self) -> list[OrderRecord]:
        """Every open order (PLACED, ASSIGNED, PICKED_UP)."""
        return list(self._open.values())

    def placed(self, limit: int) -> list[OrderRecord]:
        """At most ``limit`` PLACED orders, oldest first."""
        return list(itertools.islice(self._placed.values(), limit))

    def assigned(self, limit: int) -> list[OrderRecord]:
        """At most ``limit`` ASSIGNED orders (not yet picked up), oldest first (a scan of the open orders: for
        dispatch's recovery, not a hot path)."""
        return list(itertools.islice((o for o in self._open.values() if o.state == ASSIGNED), limit))

    def batch(self, batch_id: str) -> tuple[str, list[OrderRecord]] | None:
        """An active batch's courier and active orders (ASSIGNED, PICKED_UP); ``None`` when none is active."""
        members = self._batches.get(batch_id)
        if not members:
            return None
        return self._batch_courier[batch_id], [self._open[order_id] for order_id in sorted(members)]

    def batch_of_courier(self, courier_id: str) -> str | None:
        """The courier's active batch id (claimed or on disk), if any."""
        return self._courier_batch.get(courier_id)

    @property
    def open_count(self) -> int:
        """Orders not over (PLACED, ASSIGNED, PICKED_UP)."""
        return len(self._open)

    # -- writes -----------------------------------------------------------------------------------------------------

    async def put(self, orders: Sequence[OrderRecord]) -> None:
        """Store ``orders`` (new ones, or the next state of stored ones) on disk, all or none, then make them visible.

        :class:`CourierBusy` (nothing written) when an active order would give its courier a second batch or its
        batch a second courier; :class:`StoreUnavailable` when they cannot be written (nothing changed). Cancelling
        the caller does not stop a write under way: it completes (or fails) and is applied all the same.
        """
        claims = self._claim(orders)
        await asyncio.shield(asyncio.ensure_future(self._write_and_apply(list(orders), claims)))

    def _claim(self, orders: Sequence[OrderRecord]) -> list[tuple[str, str]]:
        """Claim courier → batch and batch → courier for the active orders (the ones not held yet)."""
        wanted: dict[str, str] = {}
        for order in orders:
            if order.state not in ACTIVE:
                continue
            held = self._courier_batch.get(order.courier_id, wanted.get(order.courier_id))
            if held is not None and held != order.batch_id:
                raise CourierBusy(f"courier {order.courier_id} holds another batch ({held})", held)
            owner = self._batch_courier.get(order.batch_id)
            if owner is not None and owner != order.courier_id:
                raise CourierBusy(f"batch {order.batch_id} is another courier's", order.batch_id)
            if held is None:
                wanted[order.courier_id] = order.batch_id
        for courier_id, batch_id in wanted.items():
            self._courier_batch[courier_id] = batch_id
            self._batch_courier[batch_id] = courier_id
        return list(wanted.items())

    def _release(self, claims: list[tuple[str, str]]) -> None:
        """Drop the claims of a failed put whose batch has no order on disk."""
        for courier_id, batch_id in claims:
            if batch_id not in self._batches:
                if self._courier_batch.get(courier_id) == batch_id:
                    del self._courier_batch[courier_id]
                if self._batch_courier.get(batch_id) == courier_id:
                    del self._batch_courier[batch_id]

    async def _write_and_apply(self, orders: list[OrderRecord], claims: list[tuple[str, str]]) -> None:
        try:
            await self._write([astuple(order) for order in orders])
        except BaseException as error:
            self._release(claims)
            if isinstance(error, sqlite3.IntegrityError):
                log.error("the orders schema refused a write (a bug above the store): %s", error)
            if isinstance(error, (sqlite3.Error, OSError)):
                ids = ", ".join(order.order_id for order in orders)
                raise StoreUnavailable(f"order {ids} could not be written: {error}") from error
            raise
        for order in orders:
            self._remember(order)
        if self.on_change is not None:
            for order in orders:
                self.on_change(order)

    def _remember(self, order: OrderRecord) -> None:
        """Make ``order`` (on disk) the visible one, and release what it no longer holds."""
        order_id = order.order_id
        if order.state in OPEN:
            self._open[order_id] = order
        else:
            self._open.pop(order_id, None)
            if self._finished is not None:
                self._finished[order_id] = order
        if order.state == PLACED:
            self._placed[order_id] = order
        else:
            self._placed.pop(order_id, None)
        if order.state in ACTIVE:
            self._batches.setdefault(order.batch_id, set()).add(order_id)
            self._courier_batch[order.courier_id] = order.batch_id
            self._batch_courier[order.batch_id] = order.courier_id
        elif order.batch_id:
            members = self._batches.get(order.batch_id)
            if members is not None:
                members.discard(order_id)
                if not members:
                    del self._batches[order.batch_id]
                    if self._courier_batch.get(order.courier_id) == order.batch_id:
                        del self._courier_batch[order.courier_id]
                    if self._batch_courier.get(order.batch_id) == order.courier_id:
                        del self._batch_courier[order.batch_id]

    async def _write(self, rows: list[tuple]) -> None:
        """Queue ``rows`` (one put) for the next group commit and wait until they are on disk (``sqlite3.Error`` or
        ``OSError`` when they are not)."""
        if self._executor is None:
            return
        self._check_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((rows, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="food-orders-commit")
        await future

    async def _commit_queued(self) -> None:
        """Commit what is queued, one transaction per batch of puts; when a batch fails, each put alone (so one bad
        put fails only itself)."""
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_COMMIT_PUTS], self._queue[MAX_COMMIT_PUTS:]
            puts = [rows for rows, _ in batch]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self._commit, puts)
                errors: list[BaseException | None] = [None] * len(puts)
            except (sqlite3.Error, OSError) as error:
                if len(puts) == 1:
                    errors = [error]
                else:
                    errors = await loop.run_in_executor(self._executor, self._commit_each, puts)
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _commit(self, puts: list[list[tuple]]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the order store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            for rows in puts:
                db.executemany(_UPSERT, rows)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, puts: list[list[tuple]]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for rows in puts:
            try:
                self._commit([rows])
                errors.append(None)
            except (sqlite3.Error, OSError) as error:
                errors.append(error)
        return errors

    def _check_open(self) -> None:
        if self._closed:
            raise sqlite3.ProgrammingError("the order store is closed")

    async def close(self) -> None:
        """Finish the writes queued, then close the file; reads and writes after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
