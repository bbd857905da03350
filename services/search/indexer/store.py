"""The document store: every indexed page in one durable SQLite file, group-committed.

Seed 000 "Search Engine (like Google)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 592-664: "Document Store: Raw
HTML storage"): the index shards live in memory and are rebuilt from this store (IndexerService.ScanShard), so no page
whose IndexPage was acknowledged may be lost. One file, ``DATA_DIR/search-indexer/pages.sqlite3``, opened by
``services/runtime/sqlite_journal.open_durable`` (WAL, ``synchronous=FULL``: the write-ahead log is fsynced at every
commit), holds two tables:

- ``pages (url PK, title, outlinks, body, indexed_at_unix_ms)``: ``outlinks`` a JSON array (self-links and repeats
  dropped); the body last, so that a scan reading only URLs does not load bodies spilled to overflow pages. A page is
  replaced in place (``INSERT ... ON CONFLICT (url) DO UPDATE``: its rowid stays), never deleted (a trigger refuses);
- ``meta (key PK, value)``: small records the indexer keeps across restarts (the last PageRank pass, the shards'
  ``shard_count``), as text.

Writes are group-committed, as services/hotel/inventory/store.py and services/banking/ledger/store.py do: every write
queued while a commit runs goes into the next single transaction, one fsync for all, in one worker thread; each write
runs in its own ``SAVEPOINT``, so a write that fails rolls back alone. Once COMMIT has returned, each committed write's
``apply`` callback runs on the event loop in commit order, before any writer resumes: the indexer's memory (page
count, link graph) follows the file's commit order, so two IndexPage calls of one URL leave the graph with the links
of the page the file holds.

Reads (a page, the count, the links at start, ScanShard's steps) run on a second, read-only connection in a second
thread, each in one read transaction (WAL lets it read while the writer commits). A scan reads the table in rowid
order in steps of ``step`` pages (their URLs only), keeps those of its shard (``contract.shard_of``, the one routing
rule) and then reads their full rows: its memory is one step's, whatever the store's size, and it holds no read
transaction open between steps.

Every method raises :class:`StoreUnavailable` when the file cannot be read or written: nothing of that write changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from ...runtime.errors import Unavailable
from ...runtime.sqlite_journal import open_durable
from ..contract import MAX_URL_CHARS, shard_of
from . import metrics
from .records import Page

log = logging.getLogger("casemesh.search.indexer.store")

T = TypeVar("T")

#: The store's file under DATA_DIR/search-indexer/.
FILE_NAME = "pages.sqlite3"
SCHEMA = (
    (f"CREATE TABLE IF NOT EXISTS pages (url TEXT PRIMARY KEY CHECK (length(url) BETWEEN 1 AND {MAX_URL_CHARS}), "
     "title TEXT NOT NULL, outlinks TEXT NOT NULL, body TEXT NOT NULL, indexed_at_unix_ms INTEGER NOT NULL)"),
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ("CREATE TRIGGER IF NOT EXISTS pages_kept BEFORE DELETE ON pages "
     "BEGIN SELECT RAISE(ABORT, 'pages_kept: a stored page is replaced, never deleted'); END"),
)
#: Rowids per ``IN (...)`` list of a scan step (well under SQLite's 32,766 host parameters).
_ROWIDS_PER_QUERY = 500

Write = Callable[[sqlite3.Connection], Any]


class StoreUnavailable(Unavailable):
    """The store's file could not be read or written (a disk or SQLite error, or the store is closed): nothing of the
    write changed; the servicer answers UNAVAILABLE (retry)."""


@dataclass(slots=True)
class _Queued:
    write: Write
    apply: Callable[[Any], None] | None
    future: asyncio.Future[Any]


def _page(url: str, title: str, body: str, outlinks: str) -> Page:
    return Page(url, title, body, tuple(json.loads(outlinks)))


def _put(page: Page) -> Write:
    def write(db: sqlite3.Connection) -> bool:
        stored = db.execute("SELECT 1 FROM pages WHERE url = ?", (page.url,)).fetchone()
        db.execute("INSERT INTO pages (url, title, outlinks, body, indexed_at_unix_ms) VALUES (?, ?, ?, ?, ?) "
                   "ON CONFLICT (url) DO UPDATE SET title = excluded.title, outlinks = excluded.outlinks, "
                   "body = excluded.body, indexed_at_unix_ms = excluded.indexed_at_unix_ms",
                   (page.url, page.title, json.dumps(page.outlinks), page.body, time.time_ns() // 1_000_000))
        return stored is None

    return write


def _set_meta(key: str, value: str) -> Write:
    def write(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                   (key, value))

    return write


def _scan_step(db: sqlite3.Connection, after: int, shard: int, shard_count: int,
               step: int) -> tuple[list[Page], int | None]:
    """The pages of ``shard`` among the ``step`` stored pages after rowid ``after``, and the last rowid read (``None``:
    the end of the table)."""
    rows = db.execute("SELECT rowid, url FROM pages WHERE rowid > ? ORDER BY rowid LIMIT ?", (after, step)).fetchall()
    if not rows:
        return [], None
    mine = [rowid for rowid, url in rows if shard_of(url, shard_count) == shard]
    pages: list[Page] = []
    for start in range(0, len(mine), _ROWIDS_PER_QUERY):
        part = mine[start:start + _ROWIDS_PER_QUERY]
        pages += [_page(*row) for row in db.execute(
            f"SELECT url, title, body, outlinks FROM pages WHERE rowid IN ({', '.join('?' * len(part))}) "
            "ORDER BY rowid", part)]
    return pages, rows[-1][0]


class PageStore:
    """The document store's SQLite file at ``path`` (see the module docstring); at most ``max_commit_writes`` writes per
    group commit. Raises ``sqlite3.Error`` when the file cannot be opened."""

    def __init__(self, path: Path, max_commit_writes: int = 256) -> None:
        self.path = path
        self.max_commit_writes = max_commit_writes
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA)
        self._reader: sqlite3.Connection | None = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._reader.execute("PRAGMA query_only=ON")
        self._writer_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-indexer-db")
        self._reader_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="search-indexer-read")
        self._queue: list[_Queued] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    # -- writes --------------------------------------------------------------------------------------------------------

    async def put(self, page: Page, apply: Callable[[bool], None] | None = None) -> bool:
        """Store ``page``, replacing the page of its URL; durable when it returns. True when the URL was new to the
        store. ``apply(created)`` runs on the event loop once committed, in commit order, before any writer of the
        batch resumes. A cancelled caller does not stop the write: it completes or fails all the same."""
        return await self._write(_put(page), apply)

    async def set_meta(self, key: str, value: str) -> None:
        """Store ``value`` under ``key`` in ``meta``; durable when it returns."""
        await self._write(_set_meta(key, value), None)

    async def _write(self, write: Write, apply: Callable[[Any], None] | None) -> Any:
        if self._closed:
            raise StoreUnavailable("the document store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(write, apply, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="search-indexer-commit")
        try:
            return await asyncio.shield(future)
        except sqlite3.IntegrityError as error:
            log.error("the document store's schema refused a write (a bug above the store): %s", error)
            raise StoreUnavailable(f"the document store refused a write: {error}") from error
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the document store could not be written: {error}") from error

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[:self.max_commit_writes]
            del self._queue[:self.max_commit_writes]
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._writer_thread, self._commit, [q.write for q in batch])
            except Exception as error:  # noqa: BLE001 - every writer must get an answer, whatever failed
                outcomes = [(False, error)] * len(batch)
            metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
            metrics.WRITES_PER_COMMIT.observe(len(batch))
            for queued, (ok, value) in zip(batch, outcomes, strict=True):
                if ok and queued.apply is not None:
                    try:
                        queued.apply(value)
                    except Exception as error:  # a bug in an apply fails its own writer only
                        log.exception("applying a committed write failed")
                        ok, value = False, error
                if queued.future.done():
                    continue
                if ok:
                    queued.future.set_result(value)
                else:
                    queued.future.set_exception(value)

    def _commit(self, writes: list[Write]) -> list[tuple[bool, Any]]:
        """Run ``writes`` in one transaction, each in its own savepoint; each one's ``(ok, result or exception)``."""
        db = self._db
        if db is None:
            raise sqlite3.ProgrammingError("the document store is closed")
        outcomes: list[tuple[bool, Any]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for write in writes:
                db.execute("SAVEPOINT one_write")
                try:
                    outcomes.append((True, write(db)))
                except Exception as error:  # noqa: BLE001 - the write is rolled back and fails alone
                    db.execute("ROLLBACK TO one_write")
                    outcomes.append((False, error))
                db.execute("RELEASE one_write")
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return outcomes

    # -- reads ---------------------------------------------------------------------------------------------------------

    async def _read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise StoreUnavailable("the document store is closed")

        def in_snapshot() -> T:
            db = self._reader
            if db is None:
                raise sqlite3.ProgrammingError("the document store is closed")
            db.execute("BEGIN")
            try:
                return function(db)
            finally:
                db.execute("COMMIT")

        try:
            return await asyncio.get_running_loop().run_in_executor(self._reader_thread, in_snapshot)
        except (sqlite3.Error, OSError) as error:
            raise StoreUnavailable(f"the document store could not be read: {error}") from error

    async def get(self, url: str) -> Page | None:
        """The stored page of ``url``, or ``None``."""
        def read(db: sqlite3.Connection) -> Page | None:
            row = db.execute("SELECT url, title, body, outlinks FROM pages WHERE url = ?", (url,)).fetchone()
            return _page(*row) if row is not None else None

        return await self._read(read)

    async def count(self) -> int:
        """Pages stored."""
        return await self._read(lambda db: db.execute("SELECT count(*) FROM pages").fetchone()[0])

    async def meta(self) -> dict[str, str]:
        """Every ``meta`` record."""
        return await self._read(lambda db: dict(db.execute("SELECT key, value FROM meta")))

    async def read_links(self, consume: Callable[[Iterable[tuple[str, tuple[str, ...]]]], T]) -> T:
        """``consume`` run in the reader thread over every stored page's ``(url, outlinks)``, in one read transaction
        (what the link graph is loaded from at start)."""
        def read(db: sqlite3.Connection) -> T:
            rows: Iterator[tuple[str, tuple[str, ...]]] = (
                (url, tuple(json.loads(outlinks))) for url, outlinks in db.execute("SELECT url, outlinks FROM pages"))
            return consume(rows)

        return await self._read(read)

    async def scan(self, shard: int, shard_count: int, step: int = 2_000) -> AsyncIterator[list[Page]]:
        """Every stored page of ``shard`` (``contract.shard_of(url, shard_count)``), in rowid order, a list per step of
        ``step`` stored pages (lists may be empty). A page stored or replaced during the scan is in it if the scan had
        not passed its row yet."""
        after: int | None = 0
        while after is not None:
            pages, after = await self._read(functools.partial(_scan_step, after=after, shard=shard,
                                                              shard_count=shard_count, step=step))
            if pages:
                yield pages

    # -- lifecycle -----------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Finish the writes queued, then close the file; calls after it raise :class:`StoreUnavailable`."""
        self._closed = True
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer
        loop = asyncio.get_running_loop()
        if self._db is not None:
            db, self._db = self._db, None
            await loop.run_in_executor(self._writer_thread, db.close)
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await loop.run_in_executor(self._reader_thread, reader.close)
        self._writer_thread.shutdown(wait=False)
        self._reader_thread.shutdown(wait=False)
