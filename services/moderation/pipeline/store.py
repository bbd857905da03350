"""The pipeline's file: every item, every change of an item's state, and how far the reviewers' verdicts were applied,
in one durable SQLite file, ``DATA_DIR/moderation-pipeline/items.sqlite3``, group-committed.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "Content Moderation | ... confidence routing, human
review"): an acknowledged item is never lost between stages. The file (``services/runtime/sqlite_journal.open_durable``:
WAL, ``synchronous=FULL``) holds three tables:

- ``items (item_id PK, author_id, text, state, decided_by, probability, model_version, submitted_at_unix_ms,
  routed_at_unix_ms, decided_at_unix_ms, appealed, appealed_at_unix_ms, appeal_reason, review_enqueued)``: an item
  and where it is; ``state`` and ``decided_by`` are the proto's ``ItemState`` and ``DecidedBy`` numbers;
  ``review_enqueued`` is 1 once the review service accepted the item's current task (IN_REVIEW: its first review;
  IN_APPEAL: its appeal), 0 while it still has to be sent (the outbox the re-sender drains);
- ``audit (seq PK AUTOINCREMENT, item_id, at_unix_ms, event, state_after, actor, probability, note)``: one row per
  change of state (the proto's ``AuditEvent`` and ``ItemState`` numbers); ``seq`` only grows (AUTOINCREMENT: never
  reused, not even after a deletion);
- ``verdict_cursor (last_seq)``, one row: the last verdict of the review service's outbox applied here (PullVerdicts'
  ``after_seq``).

Every change of an item is its row's UPDATE, guarded by the state it expects (``WHERE state = ?``), and its audit row,
in one write (one savepoint of one transaction): the file never holds a state without its audit entry or the reverse.
A verdict batch's changes and the cursor move in one write too: a verdict is applied exactly once, whatever the
process does when.

Writes go through the shared :class:`~services.runtime.group_commit.GroupCommit`. Every method raises
:class:`StoreUnavailable` when the file cannot be written or read: nothing of that write changed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from casemesh.moderation.v1 import moderation_pb2

from ...runtime.errors import Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

T = TypeVar("T")

#: The pipeline's file under DATA_DIR/moderation-pipeline/.
FILE_NAME = "items.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS items (item_id TEXT PRIMARY KEY, author_id TEXT NOT NULL, text TEXT NOT NULL, "
     "state INTEGER NOT NULL, decided_by INTEGER NOT NULL DEFAULT 0, probability REAL NOT NULL DEFAULT 0, "
     "model_version TEXT NOT NULL DEFAULT '', submitted_at_unix_ms INTEGER NOT NULL, "
     "routed_at_unix_ms INTEGER NOT NULL DEFAULT 0, decided_at_unix_ms INTEGER NOT NULL DEFAULT 0, "
     "appealed INTEGER NOT NULL DEFAULT 0, appealed_at_unix_ms INTEGER NOT NULL DEFAULT 0, "
     "appeal_reason TEXT NOT NULL DEFAULT '', review_enqueued INTEGER NOT NULL DEFAULT 0)"),
    ("CREATE TABLE IF NOT EXISTS audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, item_id TEXT NOT NULL, "
     "at_unix_ms INTEGER NOT NULL, event INTEGER NOT NULL, state_after INTEGER NOT NULL, actor TEXT NOT NULL, "
     "probability REAL NOT NULL, note TEXT NOT NULL)"),
    "CREATE INDEX IF NOT EXISTS audit_by_item ON audit (item_id, seq)",
    "CREATE TABLE IF NOT EXISTS verdict_cursor (id INTEGER PRIMARY KEY CHECK (id = 1), last_seq INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO verdict_cursor (id, last_seq) VALUES (1, 0)",
)
_ITEM_COLUMNS = ("item_id", "author_id", "text", "state", "decided_by", "probability", "model_version",
                 "submitted_at_unix_ms", "routed_at_unix_ms", "decided_at_unix_ms", "appealed", "appealed_at_unix_ms",
                 "appeal_reason", "review_enqueued")
#: Columns a change of state may set (never the item's ID, author, text or submission time).
_CHANGEABLE = frozenset(_ITEM_COLUMNS[3:])
_AUDIT_COLUMNS = "item_id, at_unix_ms, event, state_after, actor, probability, note"


class StoreUnavailable(Unavailable):
    """The pipeline's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of
    the write changed; the servicer answers UNAVAILABLE (retry), the background stages try again."""


class StaleState(Exception):
    """The item is not in the state a change expected (another change came first): nothing was written."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One change of an item's state (proto ``AuditEntry``; ``event`` and ``state_after`` its enum numbers)."""

    seq: int
    item_id: str
    at_unix_ms: int
    event: int
    state_after: int
    actor: str
    probability: float
    note: str


@dataclass(slots=True)
class Item:
    """An item and where it is (the ``items`` row), with its audit entries in ``seq`` order (memory only)."""

    item_id: str
    author_id: str
    text: str
    state: int
    decided_by: int = 0
    probability: float = 0.0
    model_version: str = ""
    submitted_at_unix_ms: int = 0
    routed_at_unix_ms: int = 0
    decided_at_unix_ms: int = 0
    appealed: bool = False
    appealed_at_unix_ms: int = 0
    appeal_reason: str = ""
    review_enqueued: bool = False
    audit: list[AuditEntry] = field(default_factory=list)

    def row(self) -> tuple[Any, ...]:
        return tuple(int(v) if isinstance(v, bool) else v for v in (getattr(self, c) for c in _ITEM_COLUMNS))


@dataclass(frozen=True, slots=True)
class Change:
    """A change of one item's state: its row's new column values (``changes``), allowed only while the row is in
    ``expected_state`` (and not appealed, when ``not_appealed``), and the audit entry that records it (its ``seq``
    is given by the file)."""

    item_id: str
    expected_state: int
    changes: dict[str, Any]
    at_unix_ms: int
    event: int
    actor: str
    probability: float = 0.0
    note: str = ""
    not_appealed: bool = False

    def entry(self, seq: int) -> AuditEntry:
        return AuditEntry(seq, self.item_id, self.at_unix_ms, self.event, self.changes["state"], self.actor,
                          self.probability, self.note)


@dataclass(frozen=True, slots=True)
class Loaded:
    """The file's content at start: every item (with its audit entries) and the verdict cursor."""

    items: dict[str, Item]
    verdict_cursor: int


def _load(db: sqlite3.Connection) -> Loaded:
    items = {row[0]: Item(*row[:10], bool(row[10]), row[11], row[12], bool(row[13]))
             for row in db.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM items")}
    for row in db.execute(f"SELECT seq, {_AUDIT_COLUMNS} FROM audit ORDER BY seq"):
        item = items.get(row[1])
        if item is not None:
            item.audit.append(AuditEntry(*row))
    (cursor,) = db.execute("SELECT last_seq FROM verdict_cursor WHERE id = 1").fetchone()
    return Loaded(items, cursor)


def _audit(db: sqlite3.Connection, item_id: str, at: int, event: int, state_after: int, actor: str,
           probability: float, note: str) -> int:
    cursor = db.execute(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (item_id, at, event, state_after, actor, probability, note))
    return int(cursor.lastrowid)


def _change(db: sqlite3.Connection, change: Change) -> int | None:
    """Apply ``change`` (its UPDATE and audit row); its audit seq, ``None`` when the row is not in the expected state
    (nothing written)."""
    unknown = set(change.changes) - _CHANGEABLE
    if unknown or "state" not in change.changes:
        raise ValueError(f"a change sets the state and nothing but {sorted(_CHANGEABLE)}; not {sorted(unknown)}")
    columns = list(change.changes)
    values = [int(v) if isinstance(v, bool) else v for v in change.changes.values()]
    guard = " AND appealed = 0" if change.not_appealed else ""
    cursor = db.execute(f"UPDATE items SET {', '.join(f'{c} = ?' for c in columns)} "
                        f"WHERE item_id = ? AND state = ?{guard}", (*values, change.item_id, change.expected_state))
    if cursor.rowcount == 0:
        return None
    return _audit(db, change.item_id, change.at_unix_ms, change.event, change.changes["state"], change.actor,
                  change.probability, change.note)


class ItemStore:
    """The pipeline's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self._log = GroupCommit(open_durable(path, SCHEMA), name="moderation-pipeline", max_writes=max_commit_writes,
                                commit_seconds=metrics.COMMIT_SECONDS, writes_per_commit=metrics.WRITES_PER_COMMIT)

    async def load(self) -> Loaded:
        """Every item with its audit entries, and the verdict cursor."""
        try:
            return await self._log.run(_load)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the pipeline's file could not be read: {error}") from error

    async def _write(self, fn: Callable[[sqlite3.Connection], T], apply: Callable[[T], None] | None) -> T:
        try:
            return await self._log.write(fn, apply)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the pipeline's file could not be written: {error}") from error

    async def insert(self, item: Item, apply: Callable[[AuditEntry], None]) -> AuditEntry:
        """Write the new ``item`` and its SUBMITTED entry (actor: its author) in one write; durable when this returns
        the entry, ``apply(entry)`` run once committed. Raises :class:`StaleState` when the ID is in the file already
        (nothing written)."""
        at, event = item.submitted_at_unix_ms, moderation_pb2.AUDIT_EVENT_SUBMITTED

        def write(db: sqlite3.Connection) -> AuditEntry:
            cursor = db.execute(f"INSERT INTO items ({', '.join(_ITEM_COLUMNS)}) VALUES "
                                f"({', '.join('?' * len(_ITEM_COLUMNS))}) ON CONFLICT (item_id) DO NOTHING",
                                item.row())
            if cursor.rowcount == 0:
                raise StaleState(f"item {item.item_id} is in the file already")
            seq = _audit(db, item.item_id, at, event, item.state, item.author_id, 0.0, "")
            return AuditEntry(seq, item.item_id, at, event, item.state, item.author_id, 0.0, "")

        return await self._write(write, apply)

    async def change(self, change: Change, apply: Callable[[AuditEntry], None]) -> AuditEntry:
        """Apply ``change`` in one write; durable when this returns its audit entry, ``apply(entry)`` run once
        committed. Raises :class:`StaleState` when the row is not in the expected state (nothing written)."""

        def write(db: sqlite3.Connection) -> AuditEntry:
            seq = _change(db, change)
            if seq is None:
                raise StaleState(f"item {change.item_id} is not in state {change.expected_state}")
            return change.entry(seq)

        return await self._write(write, apply)

    async def apply_verdicts(self, changes: Sequence[Change | None], cursor: int,
                             apply: Callable[[list[AuditEntry | None]], None]) -> list[AuditEntry | None]:
        """Apply ``changes`` (``None``: a verdict with nothing to change) and move the verdict cursor to ``cursor``
        (never back), all in one write; each change's audit entry, ``None`` for one whose row was not in the expected
        state (applied already: skipped). Durable when this returns; ``apply(entries)`` run once committed."""

        def write(db: sqlite3.Connection) -> list[AuditEntry | None]:
            entries: list[AuditEntry | None] = []
            for change in changes:
                seq = None if change is None else _change(db, change)
                entries.append(None if seq is None or change is None else change.entry(seq))
            db.execute("UPDATE verdict_cursor SET last_seq = max(last_seq, ?) WHERE id = 1", (cursor,))
            return entries

        return await self._write(write, apply)

    async def mark_enqueued(self, item_id: str, state: int, apply: Callable[[bool], None]) -> bool:
        """Record that the review service accepted the item's task while it is in ``state``; whether the row was in
        that state (else nothing written: the item moved on meanwhile)."""

        def write(db: sqlite3.Connection) -> bool:
            return db.execute("UPDATE items SET review_enqueued = 1 WHERE item_id = ? AND state = ?",
                              (item_id, state)).rowcount > 0

        return await self._write(write, apply)

    async def close(self) -> None:
        """Finish the queued writes, then close the file."""
        await self._log.close()

