"""The restaurants: durable in SQLite, every one in memory, created in idempotent all-or-nothing batches.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38): "| 13 | Food Delivery | Regional dispatch, ML ETA,
adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |": the restaurants whose kitchens every order
goes through (:mod:`.kitchens`).

:class:`RestaurantStore`: an SQLite file (``DATA_DIR/food-restaurants/restaurants.sqlite``) opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``). :meth:`RestaurantStore.insert` returns
once its rows are committed and fsynced, so a restaurant the service acknowledged survives a crash. Concurrent inserts
are group-committed (one transaction, one fsync, for every insert queued, up to ``commit_batch`` restaurants, an
insert never split), in one worker thread: the event loop never waits on the disk. When a group's transaction fails,
each insert of it is committed alone, so one failing insert fails only its own caller and an insert is always all or
nothing. The schema holds the contract's ranges as CHECKs (a backstop: validation refuses them first). The store
keeps nothing in memory and decides nothing.

:class:`Restaurants` (the catalog, as services/proximity/places/catalog.py): every restaurant by id, loaded from the
store at start (:meth:`Restaurants.load`). :meth:`Restaurants.create` is durable first, then visible: the map changes
only after the rows are on disk, so a restaurant GetRestaurant returned survives a crash, and a failed write leaves
nothing. A restaurant whose id exists with exactly the same fields counts as created before (an identical retry:
``created`` 0); one with other fields makes the whole batch ALREADY_EXISTS, nothing stored. The writes of one
restaurant id are serialised (a create waits for any write in flight on an id it names, then checks, then writes), so
concurrent creates of one id never both store it. A write whose caller is cancelled still completes and is applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from casemesh.food.v1 import restaurants_pb2

from ...geo.validation import latlng
from ...runtime.errors import AlreadyExists, NotFound, ResourceExhausted
from ...runtime.sqlite_journal import open_durable
from .. import contract
from . import metrics
from .settings import RestaurantsSettings

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS restaurants ("
    " restaurant_id TEXT PRIMARY KEY, name TEXT NOT NULL, lat_deg REAL NOT NULL, lng_deg REAL NOT NULL,"
    " prep_base_s REAL NOT NULL, prep_per_item_s REAL NOT NULL, kitchen_slots INTEGER NOT NULL,"
    " CHECK (length(name) >= 1),"
    f" CHECK (prep_base_s BETWEEN 1 AND {contract.MAX_PREP_BASE_S}),"
    f" CHECK (prep_per_item_s BETWEEN 0 AND {contract.MAX_PREP_PER_ITEM_S}),"
    f" CHECK (kitchen_slots BETWEEN 1 AND {contract.MAX_KITCHEN_SLOTS})"
    ") WITHOUT ROWID",
)


class RestaurantRecord(NamedTuple):
    """One restaurant, as stored (a row of ``restaurants``; the fields of ``casemesh.food.v1.Restaurant``): the
    point in degrees, preparation times in seconds, ``kitchen_slots`` orders prepared at once. Two records are equal
    when every field is (an identical retry)."""

    restaurant_id: str
    name: str
    lat_deg: float
    lng_deg: float
    prep_base_s: float
    prep_per_item_s: float
    kitchen_slots: int

    def prep_s(self, items: int) -> float:
        """The nominal preparation time of an order of ``items`` items, seconds: ``prep_base_s + prep_per_item_s ×
        items``."""
        return self.prep_base_s + self.prep_per_item_s * items

    def to_proto(self) -> restaurants_pb2.Restaurant:
        """The ``casemesh.food.v1.Restaurant`` of this record."""
        return restaurants_pb2.Restaurant(
            restaurant_id=self.restaurant_id, name=self.name, point=latlng(self.lat_deg, self.lng_deg),
            prep_base_s=self.prep_base_s, prep_per_item_s=self.prep_per_item_s, kitchen_slots=self.kitchen_slots)


_COLUMNS = ", ".join(RestaurantRecord._fields)
_INSERT = f"INSERT INTO restaurants ({_COLUMNS}) VALUES ({', '.join('?' * len(RestaurantRecord._fields))})"


class StoreUnavailable(Exception):
    """The restaurants could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry
    later."""


class _Write(NamedTuple):
    """One caller's insert and the future its caller awaits."""

    rows: Sequence[RestaurantRecord]
    future: asyncio.Future[None]


class RestaurantStore:
    """Every restaurant, in an SQLite file at ``path`` (``None``: nothing on disk, for unit tests of the domain).

    ``commit_batch``: most restaurants in one group commit. Raises ``sqlite3.Error`` when the file cannot be opened.
    """

    def __init__(self, path: Path | None, commit_batch: int = 2_000) -> None:
        self.path = path
        self.commit_batch = commit_batch
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._queue: list[_Write] = []
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        if path is not None:
            self._db = open_durable(path, SCHEMA)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="food-restaurants-db")

    async def load(self) -> list[RestaurantRecord]:
        """Every stored restaurant (in id order); ``[]`` without a file. :class:`StoreUnavailable` when it cannot be
        read."""
        if self._executor is None:
            return []
        try:
            self._check_open()
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._select_all)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the restaurants could not be read: {error}") from error

    def _select_all(self) -> list[RestaurantRecord]:
        assert self._db is not None  # noqa: S101 - only called with a database
        make = RestaurantRecord._make
        return [make(row) for row in
                self._db.execute(f"SELECT {_COLUMNS} FROM restaurants ORDER BY restaurant_id")]

    async def insert(self, rows: Sequence[RestaurantRecord]) -> None:
        """Store ``rows`` (none of them stored yet) in one transaction, on disk (fsync) when this returns.
        :class:`StoreUnavailable` when they cannot be written: then none is."""
        if self._executor is None:
            return
        try:
            self._check_open()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the restaurants could not be written: {error}") from error
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(rows, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="food-restaurants-commit")
        try:
            await future
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the restaurants could not be written: {error}") from error

    def _next_group(self) -> list[_Write]:
        """The inserts of the next group commit: the oldest queued, then more while they fit in ``commit_batch``."""
        size = len(self._queue[0].rows)
        end = 1
        while end < len(self._queue) and size + len(self._queue[end].rows) <= self.commit_batch:
            size += len(self._queue[end].rows)
            end += 1
        group, self._queue = self._queue[:end], self._queue[end:]
        return group

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            group = self._next_group()
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self._commit, group)
                errors: list[BaseException | None] = [None] * len(group)
            except (sqlite3.Error, OSError) as error:
                if len(group) == 1:
                    errors = [error]
                else:
                    errors = await loop.run_in_executor(self._executor, self._commit_each, group)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            for write, error in zip(group, errors, strict=True):
                if write.future.done():
                    continue
                if error is None:
                    write.future.set_result(None)
                else:
                    write.future.set_exception(error)

    def _commit(self, group: Sequence[_Write]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the restaurant store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in group:
                db.executemany(_INSERT, write.rows)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, group: Sequence[_Write]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for write in group:
            try:
                self._commit([write])
                errors.append(None)
            except (sqlite3.Error, OSError) as error:
                errors.append(error)
        return errors

    def _check_open(self) -> None:
        if self._closed:
            raise sqlite3.ProgrammingError("the restaurant store is closed")

    async def close(self) -> None:
        """Finish the inserts queued, then close the file; reads and writes after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._writer is not None:
            with contextlib.suppress(Exception):
                await self._writer
        if self._db is not None:
            db, self._db = self._db, None
            await asyncio.get_running_loop().run_in_executor(self._executor, db.close)
        if self._executor is not None:
            self._executor.shutdown(wait=False)


class Restaurants:
    """Every restaurant by id, durable in ``store``. Call :meth:`load` once before serving.

    Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`StoreUnavailable` (UNAVAILABLE):
    see each method.
    """

    def __init__(self, settings: RestaurantsSettings, store: RestaurantStore) -> None:
        self.settings = settings
        self.store = store
        self._restaurants: dict[str, RestaurantRecord] = {}
        #: Restaurant id → the write in flight on it (done once that write is applied or failed).
        self._busy: dict[str, asyncio.Future[None]] = {}
        self._creating = 0  # restaurants being created (counted against max_restaurants)

    def __len__(self) -> int:
        return len(self._restaurants)

    async def load(self) -> int:
        """Read every restaurant from the store; returns how many. :class:`StoreUnavailable` when the file cannot be
        read."""
        started = time.perf_counter()
        records = await self.store.load()
        self._restaurants.update((record.restaurant_id, record) for record in records)
        metrics.RESTAURANTS.set(len(self._restaurants))
        metrics.LOAD_SECONDS.set(time.perf_counter() - started)
        return len(records)

    def get(self, restaurant_id: str) -> RestaurantRecord:
        """The restaurant; :class:`NotFound` when there is none."""
        record = self._restaurants.get(restaurant_id)
        if record is None:
            raise NotFound(f"no restaurant {restaurant_id}")
        return record

    async def _settle(self, restaurant_ids: Iterable[str]) -> None:
        """Wait until no write is in flight on any of ``restaurant_ids``."""
        while True:
            pending = {self._busy[rid] for rid in restaurant_ids if rid in self._busy}
            if not pending:
                return
            await asyncio.wait(pending)

    async def create(self, restaurants: Sequence[RestaurantRecord]) -> int:
        """Store ``restaurants`` (valid, each id once: validation.create) all or none; returns how many were new (a
        restaurant whose id exists with exactly the same fields counts as created before).

        :class:`AlreadyExists` naming the first restaurant id that exists with other fields,
        :class:`ResourceExhausted` when the new restaurants would exceed ``max_restaurants``,
        :class:`StoreUnavailable` when they cannot be written: nothing stored in every case.
        """
        await self._settle([record.restaurant_id for record in restaurants])
        new: list[RestaurantRecord] = []
        for record in restaurants:  # no await from here to the claim: the checks hold until the write
            existing = self._restaurants.get(record.restaurant_id)
            if existing is None:
                new.append(record)
            elif existing != record:
                raise AlreadyExists(f"restaurant {record.restaurant_id} exists with other fields")
        if not new:
            return 0
        stored = len(self._restaurants)
        if stored + self._creating + len(new) > self.settings.max_restaurants:
            raise ResourceExhausted(f"storing {len(new):,} more restaurants would exceed max_restaurants "
                                    f"({self.settings.max_restaurants:,}; {stored:,} stored)")
        new_ids = [record.restaurant_id for record in new]
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for rid in new_ids:
            self._busy[rid] = done
        self._creating += len(new)
        await _finish(self._create(new, done))
        return len(new)

    async def _create(self, new: list[RestaurantRecord], done: asyncio.Future[None]) -> None:
        try:
            await self.store.insert(new)
            metrics.CREATED.inc(len(new))
            self._restaurants.update((record.restaurant_id, record) for record in new)
            metrics.RESTAURANTS.set(len(self._restaurants))
        finally:
            self._creating -= len(new)
            for record in new:
                if self._busy.get(record.restaurant_id) is done:
                    del self._busy[record.restaurant_id]
            done.set_result(None)

    async def close(self) -> None:
        """Let the writes under way finish, then close the store."""
        if self._busy:
            await asyncio.wait(set(self._busy.values()))
        await self.store.close()


def _retrieve(task: asyncio.Task) -> None:
    if not task.cancelled():
        task.exception()  # a write whose caller was cancelled: its error was the caller's to see


async def _finish(work) -> None:
    """Run ``work`` (a write and its application) to its end even if the caller is cancelled meanwhile."""
    task = asyncio.ensure_future(work)
    task.add_done_callback(_retrieve)
    await asyncio.shield(task)
