"""The geofence service's SQLite file: fences, entity states and the event log (blocking calls, one thread each).

Seed 001 #29 (shared/seeds/001_58dfc580020147d2.txt line 51), "Proximity Service | ... geofencing". The file
(``DATA_DIR/proximity-geofence/geofences.sqlite``) is opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``): :meth:`GeofenceStore.commit` returns
once the transaction is fsynced, so what the service acknowledged survives a crash of the process or the machine.
One commit writes the entity states and the events of one or more EvaluatePositions batches (and fence changes)
together: after a crash either all of a batch is there or none of it, so a resent batch is either stale (nothing
repeated) or evaluated afresh (nothing lost).

Tables:

- ``fences``: every fence, with its ``generation`` (UNIQUE: a deleted fence's generation is never given again, see
  ``meta``);
- ``entities``: each entity's last applied ``last_sequence`` and the fences it is ``inside`` (JSON
  ``[[fence_id, generation], ...]``);
- ``events``: the event log, ``sequence`` its primary key (consecutive numbers: a commit that would write one twice
  fails), with ``UNIQUE (entity_id, entity_sequence, fence_id)``: one position gives at most one event per fence,
  so no bug above the file can write an event twice;
- ``meta``: ``last_sequence`` (the newest event's number, kept even when retention trims every event) and
  ``fence_generation`` (the last generation given).

The writer connection is used by one worker thread, the reader connection (reads of the event log by watchers
catching up; WAL lets it read while the writer writes) by another.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...runtime.sqlite_journal import open_durable
from .evaluator import ENTER, EXIT, EntityState, FenceEvent, Position
from .fences import Fence

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS fences ("
    " fence_id TEXT PRIMARY KEY, name TEXT NOT NULL, lat_deg REAL NOT NULL, lng_deg REAL NOT NULL,"
    " radius_m REAL NOT NULL, generation INTEGER NOT NULL UNIQUE)",
    "CREATE TABLE IF NOT EXISTS entities ("
    " entity_id TEXT PRIMARY KEY, last_sequence INTEGER NOT NULL CHECK (last_sequence >= 1),"
    " inside TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS events ("
    " sequence INTEGER PRIMARY KEY CHECK (sequence >= 1), fence_id TEXT NOT NULL,"
    f" transition INTEGER NOT NULL CHECK (transition IN ({ENTER}, {EXIT})), entity_id TEXT NOT NULL,"
    " entity_sequence INTEGER NOT NULL, lat_deg REAL NOT NULL, lng_deg REAL NOT NULL,"
    " sent_at_unix_ms INTEGER NOT NULL, recorded_at_unix_ms INTEGER NOT NULL,"
    " UNIQUE (entity_id, entity_sequence, fence_id))",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
)

_EVENT_COLUMNS = ("sequence, fence_id, transition, entity_id, entity_sequence, lat_deg, lng_deg, sent_at_unix_ms, "
                  "recorded_at_unix_ms")
_INSERT_EVENT = f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPSERT_ENTITY = ("INSERT INTO entities (entity_id, last_sequence, inside) VALUES (?, ?, ?) "
                  "ON CONFLICT (entity_id) DO UPDATE SET last_sequence = excluded.last_sequence, "
                  "inside = excluded.inside")
_UPSERT_FENCE = ("INSERT INTO fences (fence_id, name, lat_deg, lng_deg, radius_m, generation) "
                 "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (fence_id) DO UPDATE SET name = excluded.name, "
                 "lat_deg = excluded.lat_deg, lng_deg = excluded.lng_deg, radius_m = excluded.radius_m, "
                 "generation = excluded.generation")
_RAISE_META = ("INSERT INTO meta (key, value) VALUES (?, ?) "
               "ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)")
_FENCE_COLUMNS = "fence_id, name, lat_deg, lng_deg, radius_m, generation"


@dataclass(slots=True)
class Change:
    """What one request writes: entity ``states`` and ``events`` (an EvaluatePositions batch), or one fence put
    (``fence_put``, a CreateFence) or removed (``fence_delete``, a DeleteFence)."""

    states: dict[str, EntityState] = field(default_factory=dict)
    events: Sequence[FenceEvent] = ()
    fence_put: Fence | None = None
    fence_delete: str | None = None


@dataclass(slots=True)
class Snapshot:
    """What the file holds: the fences, the entities' states, the newest event's sequence (0: none ever), the oldest
    event kept (``last_sequence + 1`` when none is), the last fence generation given."""

    fences: list[Fence]
    entities: dict[str, EntityState]
    last_sequence: int
    oldest_sequence: int
    fence_generation: int


@dataclass(slots=True)
class Resync:
    """The file's version of some entities and fences (``None``: not there) and the events after a sequence, read
    after a commit that failed (it may have reached the file all the same)."""

    entities: dict[str, EntityState | None]
    fences: dict[str, Fence | None]
    events: list[FenceEvent]
    fence_generation: int


def encode_inside(inside: Iterable[tuple[str, int]]) -> str:
    """The ``inside`` column of a state's fences."""
    return json.dumps([[fence_id, generation] for fence_id, generation in inside], separators=(",", ":"))


def decode_inside(text: str) -> tuple[tuple[str, int], ...]:
    """The fences of an ``inside`` column, sorted by fence id."""
    return tuple(sorted((str(fence_id), int(generation)) for fence_id, generation in json.loads(text)))


def _event(row: tuple) -> FenceEvent:
    sequence, fence_id, transition, entity_id, entity_sequence, lat, lng, sent_at, recorded_at = row
    return FenceEvent(sequence, fence_id, transition, Position(entity_id, entity_sequence, lat, lng, sent_at),
                      recorded_at)


def _event_row(event: FenceEvent) -> tuple:
    p = event.position
    return (event.sequence, event.fence_id, event.transition, p.entity_id, p.sequence, p.lat_deg, p.lng_deg,
            p.sent_at_unix_ms, event.recorded_at_unix_ms)


def _fence_row(fence: Fence) -> tuple:
    return fence.fence_id, fence.name, fence.lat_deg, fence.lng_deg, fence.radius_m, fence.generation


class GeofenceStore:
    """The SQLite file at ``path`` (created if missing). Blocking: :meth:`load`, :meth:`commit`, :meth:`trim`,
    :meth:`resync` and :meth:`close` from one thread, :meth:`read_events` from one other. Raises ``sqlite3.Error``
    (or ``OSError``) when the file cannot be opened, read or written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only=ON")

    def _writer(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.ProgrammingError("the geofence store is closed")
        return self._db

    def load(self) -> Snapshot:
        """Everything needed in memory at start (:class:`Snapshot`)."""
        db = self._writer()
        fences = [Fence(*row) for row in db.execute(f"SELECT {_FENCE_COLUMNS} FROM fences")]
        entities = {entity_id: EntityState(last, decode_inside(inside))
                    for entity_id, last, inside in db.execute("SELECT entity_id, last_sequence, inside FROM entities")}
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        newest, oldest = db.execute("SELECT max(sequence), min(sequence) FROM events").fetchone()
        last = max(meta.get("last_sequence", 0), newest or 0)
        return Snapshot(fences, entities, last, oldest if oldest is not None else last + 1,
                        max(meta.get("fence_generation", 0), max((f.generation for f in fences), default=0)))

    def commit(self, changes: Sequence[Change]) -> None:
        """Write ``changes`` in order in one transaction, fsynced before returning; nothing of them when it raises."""
        db = self._writer()
        states: dict[str, EntityState] = {}
        events: list[tuple] = []
        fence_generation = 0
        db.execute("BEGIN IMMEDIATE")
        try:
            for change in changes:
                if change.fence_put is not None:
                    db.execute(_UPSERT_FENCE, _fence_row(change.fence_put))
                    fence_generation = max(fence_generation, change.fence_put.generation)
                if change.fence_delete is not None:
                    db.execute("DELETE FROM fences WHERE fence_id = ?", (change.fence_delete,))
                states.update(change.states)  # a later batch's state of an entity wins
                events.extend(_event_row(event) for event in change.events)
            if states:
                db.executemany(_UPSERT_ENTITY, [(entity_id, state.last_sequence, encode_inside(state.inside))
                                                for entity_id, state in states.items()])
            if events:
                db.executemany(_INSERT_EVENT, events)
                db.execute(_RAISE_META, ("last_sequence", events[-1][0]))
            if fence_generation:
                db.execute(_RAISE_META, ("fence_generation", fence_generation))
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def read_events(self, after_sequence: int, up_to_sequence: int, limit: int) -> list[FenceEvent]:
        """At most ``limit`` events with ``after_sequence`` < sequence <= ``up_to_sequence``, in sequence order (the
        reader connection's thread)."""
        if self._reader is None:
            raise sqlite3.ProgrammingError("the geofence store is closed")
        rows = self._reader.execute(f"SELECT {_EVENT_COLUMNS} FROM events WHERE sequence > ? AND sequence <= ? "
                                    "ORDER BY sequence LIMIT ?", (after_sequence, up_to_sequence, limit)).fetchall()
        return [_event(row) for row in rows]

    def resync(self, entity_ids: Iterable[str], fence_ids: Iterable[str], after_sequence: int) -> Resync:
        """The file's state of ``entity_ids`` and ``fence_ids`` and its events after ``after_sequence``."""
        db = self._writer()
        entities: dict[str, EntityState | None] = {}
        for entity_id in entity_ids:
            row = db.execute("SELECT last_sequence, inside FROM entities WHERE entity_id = ?", (entity_id,)).fetchone()
            entities[entity_id] = EntityState(row[0], decode_inside(row[1])) if row is not None else None
        fences: dict[str, Fence | None] = {}
        for fence_id in fence_ids:
            row = db.execute(f"SELECT {_FENCE_COLUMNS} FROM fences WHERE fence_id = ?", (fence_id,)).fetchone()
            fences[fence_id] = Fence(*row) if row is not None else None
        events = [_event(row) for row in db.execute(
            f"SELECT {_EVENT_COLUMNS} FROM events WHERE sequence > ? ORDER BY sequence", (after_sequence,))]
        row = db.execute("SELECT value FROM meta WHERE key = 'fence_generation'").fetchone()
        return Resync(entities, fences, events, row[0] if row is not None else 0)

    def trim(self, below_sequence: int, limit: int) -> int:
        """Delete at most ``limit`` of the oldest events whose sequence is below ``below_sequence``; returns how
        many (0: none left to delete)."""
        db = self._writer()
        db.execute("BEGIN IMMEDIATE")
        try:
            cursor = db.execute("DELETE FROM events WHERE sequence IN (SELECT sequence FROM events WHERE sequence < ? "
                                "ORDER BY sequence LIMIT ?)", (below_sequence, limit))
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return cursor.rowcount

    def close_reader(self) -> None:
        """Close the reader connection (its thread)."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            reader.close()

    def close(self) -> None:
        """Close the writer connection (the writer's thread); later calls raise ``sqlite3.ProgrammingError``."""
        if self._db is not None:
            db, self._db = self._db, None
            db.close()
