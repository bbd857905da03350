"""Places, durable in SQLite: the one record of every place (seed 001 #29, shared/seeds/001_58dfc580020147d2.txt
line 51, "Proximity Service ... 100M places, Yelp/Uber": the places are the business data, the indexes are rebuilt
from them).

An SQLite file (``DATA_DIR/proximity-places/places.sqlite``) opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): :meth:`PlaceStore.insert` and
:meth:`PlaceStore.delete` return once their rows are committed and fsynced, so a place the service acknowledged
survives a crash. Concurrent writes are group-committed (one transaction, one fsync, for every write queued, up to
``commit_batch`` places, a write never split), in one worker thread: the event loop never waits on the disk. When a
group's transaction fails, each write of it is committed alone, so one failing write fails only its own caller and
a write is always all or nothing.

The store keeps nothing in memory and decides nothing: the caller (:class:`..catalog.Places`) checks existence and
serialises the writes of each place id. :meth:`PlaceStore.load` reads every row (at start).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from casemesh.proximity.v1 import places_pb2

from ...geo.validation import latlng
from ...runtime.sqlite_journal import open_durable
from . import metrics

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS places ("
    " place_id TEXT PRIMARY KEY, name TEXT NOT NULL, category INTEGER NOT NULL, lat_deg REAL NOT NULL,"
    " lng_deg REAL NOT NULL, rating_tenths INTEGER NOT NULL,"
    " CHECK (category > 0), CHECK (rating_tenths BETWEEN 0 AND 50), CHECK (length(name) >= 1)"
    ") WITHOUT ROWID",
)


class PlaceRecord(NamedTuple):
    """One place, as stored (a row of ``places``; the fields of ``casemesh.proximity.v1.Place``): the point in
    degrees, ``category`` a ``PlaceCategory`` value (not UNSPECIFIED), the rating in tenths of a star (0 to 50).
    Two records are equal when every field is (an identical retry)."""

    place_id: str
    name: str
    category: int
    lat_deg: float
    lng_deg: float
    rating_tenths: int

    def to_proto(self) -> places_pb2.Place:
        """The ``casemesh.proximity.v1.Place`` of this record."""
        return places_pb2.Place(place_id=self.place_id, name=self.name, category=self.category,
                                point=latlng(self.lat_deg, self.lng_deg), rating_tenths=self.rating_tenths)


_COLUMNS = ", ".join(PlaceRecord._fields)
_INSERT = f"INSERT INTO places ({_COLUMNS}) VALUES ({', '.join('?' * len(PlaceRecord._fields))})"
_DELETE = "DELETE FROM places WHERE place_id = ?"


class StoreUnavailable(Exception):
    """The places could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry later."""


class _Write(NamedTuple):
    """One caller's write: rows to insert, ids to delete, and the future its caller awaits."""

    inserts: Sequence[PlaceRecord]
    deletes: Sequence[str]
    future: asyncio.Future[None]

    @property
    def size(self) -> int:
        return len(self.inserts) + len(self.deletes)


class PlaceStore:
    """Every place, in an SQLite file at ``path`` (``None``: nothing on disk, for unit tests of the domain).

    ``commit_batch``: most places in one group commit. Raises ``sqlite3.Error`` when the file cannot be opened.
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
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="proximity-places-db")

    async def load(self) -> list[PlaceRecord]:
        """Every stored place (in id order); ``[]`` without a file. :class:`StoreUnavailable` when it cannot be read."""
        if self._executor is None:
            return []
        try:
            self._check_open()
            return await asyncio.get_running_loop().run_in_executor(self._executor, self._select_all)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the places could not be read: {error}") from error

    def _select_all(self) -> list[PlaceRecord]:
        assert self._db is not None  # noqa: S101 - only called with a database
        make = PlaceRecord._make
        return [make(row) for row in self._db.execute(f"SELECT {_COLUMNS} FROM places ORDER BY place_id")]

    async def insert(self, places: Sequence[PlaceRecord]) -> None:
        """Store ``places`` (none of them stored yet) in one transaction, on disk (fsync) when this returns.
        :class:`StoreUnavailable` when they cannot be written: then none is."""
        await self._write(places, ())

    async def delete(self, place_id: str) -> None:
        """Remove the place, on disk (fsync) when this returns. :class:`StoreUnavailable` when it cannot be written."""
        await self._write((), (place_id,))

    async def _write(self, inserts: Sequence[PlaceRecord], deletes: Sequence[str]) -> None:
        if self._executor is None:
            return
        try:
            self._check_open()
        except sqlite3.Error as error:
            raise StoreUnavailable(f"the places could not be written: {error}") from error
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(inserts, deletes, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="proximity-places-commit")
        try:
            await future
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the places could not be written: {error}") from error

    def _next_group(self) -> list[_Write]:
        """The writes of the next group commit: the oldest queued, then more while they fit in ``commit_batch``."""
        size = self._queue[0].size
        end = 1
        while end < len(self._queue) and size + self._queue[end].size <= self.commit_batch:
            size += self._queue[end].size
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
            raise sqlite3.ProgrammingError("the place store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in group:
                if write.inserts:
                    db.executemany(_INSERT, write.inserts)
                if write.deletes:
                    db.executemany(_DELETE, ((place_id,) for place_id in write.deletes))
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
            raise sqlite3.ProgrammingError("the place store is closed")

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
