"""Rides: durable in SQLite, the open ones (and recent finished ones) in memory.

The seeds' "PostgreSQL (Trips)" (seed 003, shared/seeds/003_1dfe16d8ccfde9ed.txt,
"Uber Ride Matching", Architecture): the one record of every ride. Here an
SQLite file (``DATA_DIR/rides-trips/rides.sqlite``) opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``):
:meth:`RideStore.put` returns once the row is committed and fsynced, so a
change the trip service acknowledged survives a crash. Concurrent puts are
group-committed (one transaction, one fsync, for all rows waiting), in one
worker thread: the event loop never waits on the disk.

The schema holds the invariants too, so no bug above it can break them:

- ``rides_one_active_per_driver``: a partial UNIQUE index on ``driver_id``
  over MATCHED, EN_ROUTE and IN_PROGRESS rides (a driver holds at most one
  active ride: no double booking);
- ``rides_one_open_per_rider``: a partial UNIQUE index on ``rider_id`` over
  REQUESTED and active rides (one open ride per rider);
- ``UNIQUE (rider_id, client_request_id)``: one ride per request (idempotent
  RequestRide);
- CHECKs: a known state; a driver exactly when the state needs one.

In memory: every open ride (loaded from the file when the store opens, so a
restart keeps everything acknowledged), a bounded LRU of finished ones
(``terminal_cache_size``), the REQUESTED rides in request order (ListOpenRides),
and who holds which open ride (rider → ride, driver → ride). :meth:`put`
claims those holdings *before* it writes, so two rides can never be written
for one driver or one rider at once: the second put fails at once
(:class:`DriverBusy`, :class:`RiderBusy`) and the unique indexes are the
backstop. Readers see a change only after it is on disk.

One put at a time per ride: the caller serialises them (the trip service's
per-ride lock, services/runtime/keyed_locks.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import astuple, dataclass, fields
from pathlib import Path

from cachetools import LRUCache

from casemesh.common.v1 import money_pb2
from casemesh.rides.v1 import rides_pb2

from ...runtime.sqlite_journal import open_durable
from ..validation import latlng
from . import metrics
from .machine import ACTIVE, OPEN, REQUESTED, STATES, TERMINAL

log = logging.getLogger("casemesh.rides.trips.store")

#: Most rows in one group commit.
MAX_COMMIT_ROWS = 512


def _states(states: Iterable[int]) -> str:
    return ", ".join(str(s) for s in sorted(states))


SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rides ("
    " ride_id TEXT PRIMARY KEY, rider_id TEXT NOT NULL, client_request_id TEXT NOT NULL, quote_id TEXT NOT NULL,"
    " pickup_lat_deg REAL NOT NULL, pickup_lng_deg REAL NOT NULL, dropoff_lat_deg REAL NOT NULL,"
    " dropoff_lng_deg REAL NOT NULL, fare_currency_code TEXT NOT NULL, fare_amount_minor INTEGER NOT NULL,"
    " surge_multiplier REAL NOT NULL, state INTEGER NOT NULL, driver_id TEXT NOT NULL,"
    " requested_at_unix_ms INTEGER NOT NULL, matched_at_unix_ms INTEGER NOT NULL,"
    " updated_at_unix_ms INTEGER NOT NULL, cancel_reason INTEGER NOT NULL,"
    " UNIQUE (rider_id, client_request_id),"
    f" CHECK (state IN ({_states(STATES)})),"
    f" CHECK (state NOT IN ({_states({*ACTIVE, rides_pb2.RIDE_STATE_COMPLETED})}) OR driver_id <> ''),"
    f" CHECK (state <> {REQUESTED} OR driver_id = ''))",
    f"CREATE UNIQUE INDEX IF NOT EXISTS rides_one_active_per_driver ON rides (driver_id) "
    f"WHERE state IN ({_states(ACTIVE)})",
    f"CREATE UNIQUE INDEX IF NOT EXISTS rides_one_open_per_rider ON rides (rider_id) WHERE state IN ({_states(OPEN)})",
)


@dataclass(frozen=True, slots=True)
class RideRecord:
    """One ride, as stored (a row of ``rides``; the fields of ``casemesh.rides.v1.Ride`` plus the request id).

    Points in degrees, the fare in minor units of ``fare_currency_code``,
    times in ms since the Unix epoch; ``driver_id`` is ``""`` until a driver
    wins the ride; ``cancel_reason`` is a ``CancelReason`` (0 unless
    CANCELLED).
    """

    ride_id: str
    rider_id: str
    client_request_id: str
    quote_id: str
    pickup_lat_deg: float
    pickup_lng_deg: float
    dropoff_lat_deg: float
    dropoff_lng_deg: float
    fare_currency_code: str
    fare_amount_minor: int
    surge_multiplier: float
    state: int
    driver_id: str
    requested_at_unix_ms: int
    matched_at_unix_ms: int
    updated_at_unix_ms: int
    cancel_reason: int

    def to_proto(self) -> rides_pb2.Ride:
        """The ``casemesh.rides.v1.Ride`` of this record."""
        return rides_pb2.Ride(
            ride_id=self.ride_id, rider_id=self.rider_id, pickup=latlng(self.pickup_lat_deg, self.pickup_lng_deg),
            dropoff=latlng(self.dropoff_lat_deg, self.dropoff_lng_deg),
            fare=money_pb2.Money(currency_code=self.fare_currency_code, amount_minor=self.fare_amount_minor),
            surge_multiplier=self.surge_multiplier, state=self.state, driver_id=self.driver_id,
            requested_at_unix_ms=self.requested_at_unix_ms, matched_at_unix_ms=self.matched_at_unix_ms,
            updated_at_unix_ms=self.updated_at_unix_ms, cancel_reason=self.cancel_reason, quote_id=self.quote_id)


_COLUMNS = ", ".join(f.name for f in fields(RideRecord))
_UPSERT = (f"INSERT INTO rides ({_COLUMNS}) VALUES ({', '.join('?' * len(fields(RideRecord)))}) "
           "ON CONFLICT (ride_id) DO UPDATE SET state = excluded.state, driver_id = excluded.driver_id, "
           "matched_at_unix_ms = excluded.matched_at_unix_ms, updated_at_unix_ms = excluded.updated_at_unix_ms, "
           "cancel_reason = excluded.cancel_reason")


class DriverBusy(Exception):
    """The driver holds another active ride (``ride_id``): FAILED_PRECONDITION."""

    def __init__(self, driver_id: str, ride_id: str) -> None:
        self.ride_id = ride_id
        super().__init__(f"driver {driver_id} holds another active ride ({ride_id})")


class RiderBusy(Exception):
    """The rider has another open ride (``ride_id``): FAILED_PRECONDITION."""

    def __init__(self, rider_id: str, ride_id: str) -> None:
        self.ride_id = ride_id
        super().__init__(f"rider {rider_id} has an open ride already ({ride_id})")


class StoreUnavailable(Exception):
    """The ride could not be read or written (a disk or SQLite error): nothing changed; UNAVAILABLE, retry later."""


class RideStore:
    """Rides by id: open ones in memory, finished ones in an LRU, all of them (``path`` set) in SQLite.

    ``path=None`` keeps everything in memory (unit tests of the trip
    service). ``on_change(ride)`` (settable) is called once a put is on disk
    (the trip service's notifications and metrics); it runs even when the
    caller of :meth:`put` was cancelled meanwhile. Raises ``sqlite3.Error`` when the
    file cannot be opened or read.
    """

    def __init__(self, path: Path | None, terminal_cache_size: int = 10_000,
                 on_change: Callable[[RideRecord], None] | None = None) -> None:
        self.on_change = on_change
        self._db: sqlite3.Connection | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._rides: dict[str, RideRecord] = {}  # open rides
        self._finished: LRUCache[str, RideRecord] | None = (
            LRUCache(maxsize=terminal_cache_size) if terminal_cache_size > 0 else None)
        self._requested: dict[str, RideRecord] = {}  # REQUESTED, oldest first
        self._rider_open: dict[str, str] = {}  # rider → open ride (claimed before the write)
        self._driver_active: dict[str, str] = {}  # driver → active ride (claimed before the write)
        self._queue: list[tuple[tuple, asyncio.Future[None]]] = []
        self._closed = False
        self._writer: asyncio.Task[None] | None = None
        if path is not None:
            self._db = open_durable(path, SCHEMA)
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rides-trips-db")
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM rides WHERE state IN ({_states(OPEN)}) "
                                    "ORDER BY requested_at_unix_ms, ride_id").fetchall()
            for row in rows:
                self._remember(RideRecord(*row))

    # -- reads ------------------------------------------------------------------------------------------------------

    def cached(self, ride_id: str) -> RideRecord | None:
        """The ride if it is in memory (open, or a recent finished one), without touching the disk."""
        ride = self._rides.get(ride_id)
        if ride is None and self._finished is not None:
            ride = self._finished.get(ride_id)
        return ride

    async def get(self, ride_id: str) -> RideRecord | None:
        """The ride, from memory or else the file; ``None`` when there is none. :class:`StoreUnavailable` when the
        file cannot be read."""
        ride = self.cached(ride_id)
        if ride is not None or self._executor is None:
            return ride
        try:
            self._check_open()
            row = await asyncio.get_running_loop().run_in_executor(self._executor, self._select, ride_id)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"ride {ride_id} could not be read: {error}") from error
        if row is None:
            return None
        ride = RideRecord(*row)
        if self._finished is not None and ride.state in TERMINAL:
            self._finished[ride_id] = ride
        return ride

    def _select(self, ride_id: str) -> tuple | None:
        assert self._db is not None  # noqa: S101 - only called with a database
        return self._db.execute(f"SELECT {_COLUMNS} FROM rides WHERE ride_id = ?", (ride_id,)).fetchone()

    def open_ride_of_rider(self, rider_id: str) -> RideRecord | None:
        """The rider's open ride (REQUESTED or active), if any."""
        ride_id = self._rider_open.get(rider_id)
        return self._rides.get(ride_id) if ride_id is not None else None

    def active_ride_of_driver(self, driver_id: str) -> RideRecord | None:
        """The driver's active ride (MATCHED, EN_ROUTE or IN_PROGRESS), if any."""
        ride_id = self._driver_active.get(driver_id)
        return self._rides.get(ride_id) if ride_id is not None else None

    def requested(self, limit: int) -> list[RideRecord]:
        """At most ``limit`` REQUESTED rides, oldest first."""
        return list(itertools.islice(self._requested.values(), limit))

    @property
    def open_count(self) -> int:
        """Rides not over (REQUESTED or active)."""
        return len(self._rides)

    # -- writes -----------------------------------------------------------------------------------------------------

    async def put(self, ride: RideRecord) -> None:
        """Store ``ride`` (new, or the next state of a stored one) on disk, then make it visible.

        :class:`DriverBusy` / :class:`RiderBusy` (nothing written) when it
        would give its driver a second active ride or its rider a second
        open one; :class:`StoreUnavailable` when it cannot be written
        (nothing changed). Cancelling the caller does not stop a write under
        way: it completes (or fails) and is applied all the same.
        """
        claims = self._claim(ride)
        await asyncio.shield(asyncio.ensure_future(self._write_and_apply(ride, claims)))

    def _claim(self, ride: RideRecord) -> list[tuple[dict[str, str], str]]:
        """Claim the rider's open ride and the driver's active ride for ``ride`` (the ones it did not hold yet)."""
        wanted: list[tuple[dict[str, str], str]] = []
        if ride.state in OPEN:
            holder = self._rider_open.get(ride.rider_id)
            if holder is not None and holder != ride.ride_id:
                raise RiderBusy(ride.rider_id, holder)
            if holder is None:
                wanted.append((self._rider_open, ride.rider_id))
        if ride.state in ACTIVE:
            holder = self._driver_active.get(ride.driver_id)
            if holder is not None and holder != ride.ride_id:
                raise DriverBusy(ride.driver_id, holder)
            if holder is None:
                wanted.append((self._driver_active, ride.driver_id))
        for holdings, key in wanted:
            holdings[key] = ride.ride_id
        return wanted

    async def _write_and_apply(self, ride: RideRecord, claims: list[tuple[dict[str, str], str]]) -> None:
        try:
            await self._write(astuple(ride))
        except BaseException as error:
            for holdings, key in claims:
                if holdings.get(key) == ride.ride_id:
                    del holdings[key]
            if isinstance(error, (sqlite3.Error, OSError)):
                raise StoreUnavailable(f"ride {ride.ride_id} could not be written: {error}") from error
            raise
        self._remember(ride)
        if self.on_change is not None:
            self.on_change(ride)

    def _remember(self, ride: RideRecord) -> None:
        """Make ``ride`` (on disk) the visible one, and release what it no longer holds."""
        ride_id = ride.ride_id
        if ride.state in OPEN:
            self._rides[ride_id] = ride
            self._rider_open[ride.rider_id] = ride_id
        else:
            self._rides.pop(ride_id, None)
            if self._rider_open.get(ride.rider_id) == ride_id:
                del self._rider_open[ride.rider_id]
            if self._finished is not None:
                self._finished[ride_id] = ride
        if ride.state in ACTIVE:
            self._driver_active[ride.driver_id] = ride_id
        elif ride.driver_id and self._driver_active.get(ride.driver_id) == ride_id:
            del self._driver_active[ride.driver_id]
        if ride.state == REQUESTED:
            self._requested[ride_id] = ride
        else:
            self._requested.pop(ride_id, None)

    async def _write(self, row: tuple) -> None:
        """Queue ``row`` for the next group commit and wait until it is on disk (``sqlite3.Error`` or ``OSError``
        when it is not)."""
        if self._executor is None:
            return
        self._check_open()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((row, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._commit_queued(), name="rides-trips-commit")
        await future

    async def _commit_queued(self) -> None:
        """Commit what is queued, one transaction per batch; when a batch fails, each row alone (so one bad row fails
        only its own put)."""
        loop = asyncio.get_running_loop()
        while self._queue:
            batch, self._queue = self._queue[:MAX_COMMIT_ROWS], self._queue[MAX_COMMIT_ROWS:]
            rows = [row for row, _ in batch]
            started = time.perf_counter()
            try:
                await loop.run_in_executor(self._executor, self._commit, rows)
                errors: list[BaseException | None] = [None] * len(rows)
            except (sqlite3.Error, OSError) as error:
                if len(rows) == 1:
                    errors = [error]
                else:
                    errors = await loop.run_in_executor(self._executor, self._commit_each, rows)
            metrics.WRITE_SECONDS.observe(time.perf_counter() - started)
            for (_, future), error in zip(batch, errors, strict=True):
                if future.done():
                    continue
                if error is None:
                    future.set_result(None)
                else:
                    future.set_exception(error)

    def _commit(self, rows: list[tuple]) -> None:
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the ride store is closed")
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(_UPSERT, rows)
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _commit_each(self, rows: list[tuple]) -> list[BaseException | None]:
        errors: list[BaseException | None] = []
        for row in rows:
            try:
                self._commit([row])
                errors.append(None)
            except (sqlite3.Error, OSError) as error:
                errors.append(error)
        return errors

    def _check_open(self) -> None:
        if self._closed:
            raise sqlite3.ProgrammingError("the ride store is closed")

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


