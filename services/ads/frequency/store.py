"""The frequency service's log: one row per reserved impression in a durable SQLite file, group-committed.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40: "frequency caps"): an acknowledged reservation must
survive a crash, or a restarted service would let a user see a campaign beyond its cap. One file,
``DATA_DIR/ads-frequency/impressions.sqlite3``, opened by ``services/runtime/sqlite_journal.open_durable`` (WAL,
``synchronous=FULL``), holds ``impressions (impression_id PK, user_key, campaign_id, reserved_at_unix_ms, count)``
with an index by time (the load at start and the prune). Writes go through the shared
:class:`~services.runtime.group_commit.GroupCommit` (one transaction and one fsync for every write queued meanwhile).
Every method raises :class:`~services.runtime.errors.Unavailable` when the file cannot be read or written (nothing of
that write changed).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, TypeVar

from ...runtime.errors import Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

#: The log's file under DATA_DIR/ads-frequency/.
FILE_NAME = "impressions.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS impressions (impression_id TEXT PRIMARY KEY, user_key TEXT NOT NULL, "
     "campaign_id TEXT NOT NULL, reserved_at_unix_ms INTEGER NOT NULL, count INTEGER NOT NULL CHECK (count > 0))"),
    "CREATE INDEX IF NOT EXISTS impressions_by_time ON impressions (reserved_at_unix_ms)",
)

T = TypeVar("T")


class Row(NamedTuple):
    """One reserved impression: who saw which campaign when, and the user's count with it (Reserve's answer)."""

    impression_id: str
    user_key: str
    campaign_id: str
    reserved_at_unix_ms: int
    count: int


class FrequencyStore:
    """The SQLite file at ``path``; at most ``max_commit_writes`` writes per group commit. Raises ``sqlite3.Error``
    when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self._commit = GroupCommit(open_durable(path, SCHEMA), name="ads-frequency", max_writes=max_commit_writes,
                                   commit_seconds=metrics.COMMIT_SECONDS,
                                   writes_per_commit=metrics.WRITES_PER_COMMIT)

    async def _write(self, fn: Callable[[sqlite3.Connection], T],
                     apply: Callable[[T], None] | None = None) -> T:
        try:
            return await self._commit.write(fn, apply)
        except (sqlite3.Error, OSError) as error:
            raise Unavailable(f"the frequency log could not be written: {error}") from error

    async def load(self, since_unix_ms: int) -> list[Row]:
        """Every reservation at or after ``since_unix_ms``, oldest first (the rebuild at start)."""
        def read(db: sqlite3.Connection) -> list[Row]:
            return [Row(*row) for row in db.execute(
                "SELECT impression_id, user_key, campaign_id, reserved_at_unix_ms, count FROM impressions "
                "WHERE reserved_at_unix_ms >= ? ORDER BY reserved_at_unix_ms, impression_id", (since_unix_ms,))]
        try:
            return await self._commit.run(read)
        except (sqlite3.Error, OSError) as error:
            raise Unavailable(f"the frequency log could not be read: {error}") from error

    async def insert(self, row: Row) -> None:
        """Write ``row`` durably. An older row of the same ID (one that left every window, forgotten by memory) is
        replaced."""
        def write(db: sqlite3.Connection) -> None:
            db.execute("INSERT INTO impressions (impression_id, user_key, campaign_id, reserved_at_unix_ms, count) "
                       "VALUES (?, ?, ?, ?, ?) ON CONFLICT (impression_id) DO UPDATE SET user_key = excluded.user_key, "
                       "campaign_id = excluded.campaign_id, reserved_at_unix_ms = excluded.reserved_at_unix_ms, "
                       "count = excluded.count", row)
        await self._write(write)

    async def delete(self, impression_id: str, apply: Callable[[None], None]) -> None:
        """Delete the reservation ``impression_id`` durably; ``apply`` runs once committed, before this returns."""
        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM impressions WHERE impression_id = ?", (impression_id,))
        await self._write(write, apply)

    async def prune(self, before_unix_ms: int) -> int:
        """Delete the reservations older than ``before_unix_ms``; how many."""
        def write(db: sqlite3.Connection) -> int:
            return db.execute("DELETE FROM impressions WHERE reserved_at_unix_ms < ?", (before_unix_ms,)).rowcount
        return await self._write(write)

    async def close(self) -> None:
        """Finish the queued writes, then close the file."""
        await self._commit.close()
