"""The review queue's file: its tasks and the verdicts' outbox in one durable SQLite file,
``DATA_DIR/moderation-review/review.sqlite3``, group-committed.

Seed 001 #26 (shared/seeds/001_58dfc580020147d2.txt line 50: "human review"): an item the pipeline handed over, and a
reviewer's verdict, must survive a restart, or an item would wait in review forever. The file
(``services/runtime/sqlite_journal.open_durable``: WAL, ``synchronous=FULL``) holds:

- ``tasks (task_id PK, item_id, kind, text, violation_probability, appeal_reason, enqueued_at_unix_ms,
  due_at_unix_ms, status, claims, lease_token, reviewer_id, lease_expires_at_unix_ms, verdict, verdict_seq,
  completed_at_unix_ms)``, ``UNIQUE (item_id, kind)`` (the file itself refuses a second task of one item and kind:
  Enqueue's idempotency). ``status`` is ``open``, ``claimed`` (the lease's token, reviewer and expiry are the last
  claim's; an expired lease is not written, the task is open again in memory and after a restart) or ``completed``
  (kept: a repeated Enqueue or CompleteTask is answered from it);
- ``verdicts (seq PK AUTOINCREMENT, task_id, item_id, kind, verdict, reviewer_id, note, completed_at_unix_ms)``: the
  outbox. ``AUTOINCREMENT``: a seq is never reused, even once every verdict was acknowledged and deleted (the
  pipeline's cursor is a seq).

Completing a task writes its verdict and marks the task completed in one transaction. Writes go through the shared
:class:`~services.runtime.group_commit.GroupCommit`; every method raises :class:`StoreUnavailable` when the file
cannot be read or written (nothing of that write changed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from ...runtime.errors import Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

#: The queue's file under DATA_DIR/moderation-review/.
FILE_NAME = "review.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS tasks (task_id TEXT PRIMARY KEY, item_id TEXT NOT NULL, "
     "kind TEXT NOT NULL CHECK (kind IN ('first', 'appeal')), text TEXT NOT NULL, "
     "violation_probability REAL NOT NULL, appeal_reason TEXT NOT NULL, enqueued_at_unix_ms INTEGER NOT NULL, "
     "due_at_unix_ms INTEGER NOT NULL, status TEXT NOT NULL CHECK (status IN ('open', 'claimed', 'completed')), "
     "claims INTEGER NOT NULL DEFAULT 0, lease_token TEXT NOT NULL DEFAULT '', reviewer_id TEXT NOT NULL DEFAULT '', "
     "lease_expires_at_unix_ms INTEGER NOT NULL DEFAULT 0, verdict TEXT CHECK (verdict IN ('approve', 'remove')), "
     "verdict_seq INTEGER, completed_at_unix_ms INTEGER, UNIQUE (item_id, kind))"),
    "CREATE INDEX IF NOT EXISTS tasks_not_completed ON tasks (status) WHERE status != 'completed'",
    ("CREATE TABLE IF NOT EXISTS verdicts (seq INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT NOT NULL, "
     "item_id TEXT NOT NULL, kind TEXT NOT NULL, verdict TEXT NOT NULL CHECK (verdict IN ('approve', 'remove')), "
     "reviewer_id TEXT NOT NULL, note TEXT NOT NULL, completed_at_unix_ms INTEGER NOT NULL)"),
)
_TASK_COLUMNS = ("task_id, item_id, kind, text, violation_probability, appeal_reason, enqueued_at_unix_ms, "
                 "due_at_unix_ms, status, claims, lease_token, reviewer_id, lease_expires_at_unix_ms")
_VERDICT_COLUMNS = "seq, task_id, item_id, kind, verdict, reviewer_id, note, completed_at_unix_ms"

T = TypeVar("T")


class StoreUnavailable(Unavailable):
    """The queue's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of the
    write changed; the servicer answers UNAVAILABLE (retry)."""


class TaskRow(NamedTuple):
    """A task as stored (times in Unix milliseconds; the lease fields are the last claim's)."""

    task_id: str
    item_id: str
    kind: str
    text: str
    violation_probability: float
    appeal_reason: str
    enqueued_at_unix_ms: int
    due_at_unix_ms: int
    status: str = "open"
    claims: int = 0
    lease_token: str = ""
    reviewer_id: str = ""
    lease_expires_at_unix_ms: int = 0


class VerdictRow(NamedTuple):
    """A verdict of the outbox (ReviewVerdict)."""

    seq: int
    task_id: str
    item_id: str
    kind: str
    verdict: str
    reviewer_id: str
    note: str
    completed_at_unix_ms: int


class Completion(NamedTuple):
    """How a completed task was completed: under which lease token, by whom, with which verdict, at which seq."""

    lease_token: str
    reviewer_id: str
    verdict: str
    verdict_seq: int


class ReviewStore:
    """The SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per group commit.
    Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self._commit = GroupCommit(open_durable(path, SCHEMA), name="moderation-review",
                                   max_writes=max_commit_writes, commit_seconds=metrics.COMMIT_SECONDS,
                                   writes_per_commit=metrics.WRITES_PER_COMMIT)

    async def _write(self, fn: Callable[[sqlite3.Connection], T], apply: Callable[[T], None] | None = None) -> T:
        try:
            return await self._commit.write(fn, apply)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the review queue's file could not be written: {error}") from error

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._commit.run(fn)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the review queue's file could not be read: {error}") from error

    async def load(self) -> tuple[list[TaskRow], list[VerdictRow]]:
        """The tasks not completed (oldest first) and the verdicts not acknowledged (by seq): the rebuild at start."""
        def read(db: sqlite3.Connection) -> tuple[list[TaskRow], list[VerdictRow]]:
            tasks = [TaskRow(*row) for row in db.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE status != 'completed' "
                "ORDER BY enqueued_at_unix_ms, rowid")]
            verdicts = [VerdictRow(*row) for row in db.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts ORDER BY seq")]
            return tasks, verdicts
        return await self._read(read)

    async def insert(self, row: TaskRow, apply: Callable[[TaskRow], None]) -> TaskRow:
        """Write the new task ``row`` unless the file holds a task of its item and kind already; the stored task (``row``
        or the earlier one), durable when this returns, ``apply`` run with it once committed."""
        def write(db: sqlite3.Connection) -> TaskRow:
            db.execute(f"INSERT INTO tasks ({_TASK_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                       "ON CONFLICT (item_id, kind) DO NOTHING", row)
            return TaskRow(*db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE item_id = ? AND kind = ?",
                                       (row.item_id, row.kind)).fetchone())
        return await self._write(write, apply)

    async def claim(self, task_id: str, lease_token: str, reviewer_id: str, lease_expires_at_unix_ms: int,
                    claims: int) -> None:
        """Record a lease of the task (not completed); durable when this returns."""
        def write(db: sqlite3.Connection) -> None:
            changed = db.execute(
                "UPDATE tasks SET status = 'claimed', lease_token = ?, reviewer_id = ?, lease_expires_at_unix_ms = ?, "
                "claims = ? WHERE task_id = ? AND status != 'completed'",
                (lease_token, reviewer_id, lease_expires_at_unix_ms, claims, task_id)).rowcount
            if changed != 1:
                raise StoreUnavailable(f"task {task_id} is not in the file, or completed (memory disagrees)")
        await self._write(write)

    async def complete(self, task_id: str, lease_token: str, reviewer_id: str, verdict: str, note: str,
                       completed_at_unix_ms: int, apply: Callable[[VerdictRow], None]) -> VerdictRow:
        """Write the verdict to the outbox and mark the task (claimed under ``lease_token``) completed, in one
        transaction; the verdict with its seq, durable when this returns, ``apply`` run with it once committed."""
        def write(db: sqlite3.Connection) -> VerdictRow:
            found = db.execute("SELECT item_id, kind FROM tasks WHERE task_id = ? AND status = 'claimed' "
                               "AND lease_token = ?", (task_id, lease_token)).fetchone()
            if found is None:
                raise StoreUnavailable(f"task {task_id} is not claimed under this lease in the file (memory disagrees)")
            item_id, kind = found
            seq = db.execute("INSERT INTO verdicts (task_id, item_id, kind, verdict, reviewer_id, note, "
                             "completed_at_unix_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (task_id, item_id, kind, verdict, reviewer_id, note, completed_at_unix_ms)).lastrowid
            assert seq is not None
            db.execute("UPDATE tasks SET status = 'completed', verdict = ?, verdict_seq = ?, completed_at_unix_ms = ? "
                       "WHERE task_id = ?", (verdict, seq, completed_at_unix_ms, task_id))
            return VerdictRow(seq, task_id, item_id, kind, verdict, reviewer_id, note, completed_at_unix_ms)
        return await self._write(write, apply)

    async def completion(self, task_id: str) -> tuple[bool, Completion | None]:
        """Whether the file holds task ``task_id``, and how it was completed (``None``: it is not)."""
        def read(db: sqlite3.Connection) -> tuple[bool, Completion | None]:
            row = db.execute("SELECT status, lease_token, reviewer_id, verdict, verdict_seq FROM tasks "
                             "WHERE task_id = ?", (task_id,)).fetchone()
            if row is None:
                return False, None
            status, *rest = row
            return True, (Completion(*rest) if status == "completed" else None)
        return await self._read(read)

    async def acknowledge(self, after_seq: int, apply: Callable[[Any], None]) -> int:
        """Delete the verdicts at or before ``after_seq``; how many, ``apply`` run once committed."""
        def write(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM verdicts WHERE seq <= ?", (after_seq,)).rowcount
        return await self._write(write, apply)

    async def close(self) -> None:
        """Finish the queued writes, then close the file."""
        await self._commit.close()
