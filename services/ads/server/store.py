"""ads-server's event log: every impression served and every click, in a durable SQLite file, group-committed.

Seed 001 #15 (shared/seeds/001_58dfc580020147d2.txt line 40, "Ad Serving"): an impression is written (fsynced) before
Decide answers with it, so a served ad is never lost and a repeated Decide finds it. One file,
``DATA_DIR/ads-server/events.sqlite3`` (``services/runtime/sqlite_journal.open_durable``), holds:

- ``impressions (impression_id PK, user_key, campaign_id, reservation_id, charge_id, headline, landing_url,
  currency_code, cpm_minor, candidates, bidders, served_at_unix_ms)``: the request's ID, the user's pseudonymous key,
  the winner, the IDs of its frequency reservation and its charge, the creative and price served, and the auction's
  sizes;
- ``clicks (impression_id PK, clicked_at_unix_ms)``: the first click of each impression.

Writes go through the shared :class:`~services.runtime.group_commit.GroupCommit`; reads of an impression by ID (a
repeated Decide or a click whose impression is no longer in memory) on a second, read-only connection in its own
thread. Every method raises :class:`~services.runtime.errors.Unavailable` when the file cannot be read or written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, TypeVar

from ...runtime.errors import NotFound, Unavailable
from ...runtime.group_commit import GroupCommit
from ...runtime.sqlite_journal import open_durable
from . import metrics

#: The log's file under DATA_DIR/ads-server/.
FILE_NAME = "events.sqlite3"
SCHEMA = (
    ("CREATE TABLE IF NOT EXISTS impressions (impression_id TEXT PRIMARY KEY, user_key TEXT NOT NULL, "
     "campaign_id TEXT NOT NULL, reservation_id TEXT NOT NULL, charge_id TEXT NOT NULL, headline TEXT NOT NULL, "
     "landing_url TEXT NOT NULL, currency_code TEXT NOT NULL, cpm_minor INTEGER NOT NULL, "
     "candidates INTEGER NOT NULL, bidders INTEGER NOT NULL, served_at_unix_ms INTEGER NOT NULL)"),
    ("CREATE TABLE IF NOT EXISTS clicks (impression_id TEXT PRIMARY KEY REFERENCES impressions (impression_id), "
     "clicked_at_unix_ms INTEGER NOT NULL)"),
)
T = TypeVar("T")


class Impression(NamedTuple):
    """One impression served (a row of ``impressions``)."""

    impression_id: str
    user_key: str
    campaign_id: str
    reservation_id: str
    charge_id: str
    headline: str
    landing_url: str
    currency_code: str
    cpm_minor: int
    candidates: int
    bidders: int
    served_at_unix_ms: int


_COLUMNS = ", ".join(Impression._fields)


class EventLog:
    """The SQLite file at ``path``. Raises ``sqlite3.Error`` when it cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self._commit = GroupCommit(open_durable(path, SCHEMA), name="ads-server", max_writes=max_commit_writes,
                                   commit_seconds=metrics.COMMIT_SECONDS,
                                   writes_per_commit=metrics.WRITES_PER_COMMIT)
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False,
                                                                  isolation_level=None)
        self._reader.execute("PRAGMA query_only=ON")
        self._reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ads-server-read")

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._commit.write(fn)
        except (sqlite3.Error, OSError) as error:
            raise Unavailable(f"the event log could not be written: {error}") from error

    async def record_impression(self, impression: Impression) -> Impression:
        """Write ``impression`` durably; when its ID is stored already, nothing is written and the stored one is
        returned."""
        def write(db: sqlite3.Connection) -> Impression:
            cursor = db.execute(f"INSERT INTO impressions ({_COLUMNS}) VALUES ({', '.join('?' * len(impression))}) "
                                "ON CONFLICT (impression_id) DO NOTHING", impression)
            if cursor.rowcount == 0:
                return Impression(*db.execute(f"SELECT {_COLUMNS} FROM impressions WHERE impression_id = ?",
                                              (impression.impression_id,)).fetchone())
            return impression
        return await self._write(write)

    async def record_click(self, impression_id: str, now_ms: int) -> bool:
        """Write the first click of ``impression_id`` durably: True; False when it was recorded already. Raises
        ``NotFound`` when no impression has that ID."""
        def write(db: sqlite3.Connection) -> bool:
            if db.execute("SELECT 1 FROM impressions WHERE impression_id = ?", (impression_id,)).fetchone() is None:
                raise NotFound(f"impression_id: no impression {impression_id} was served")
            return db.execute("INSERT INTO clicks (impression_id, clicked_at_unix_ms) VALUES (?, ?) "
                              "ON CONFLICT (impression_id) DO NOTHING", (impression_id, now_ms)).rowcount == 1
        return await self._write(write)

    async def impression(self, impression_id: str) -> Impression | None:
        """The impression served with ID ``impression_id``, or ``None``."""
        def read() -> Impression | None:
            db = self._reader
            if db is None:
                raise Unavailable("the event log is closed")
            row = db.execute(f"SELECT {_COLUMNS} FROM impressions WHERE impression_id = ?",
                             (impression_id,)).fetchone()
            return Impression(*row) if row is not None else None
        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader_thread, read)
        except (sqlite3.Error, OSError) as error:
            raise Unavailable(f"the event log could not be read: {error}") from error

    async def close(self) -> None:
        await self._commit.close()
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await asyncio.get_running_loop().run_in_executor(self._reader_thread, reader.close)
        self._reader_thread.shutdown(wait=False)
