"""One shared group-commit writer for a service's durable SQLite log (the group commit of databases' logs).

A store opens its file with :func:`services.runtime.sqlite_journal.open_durable` (WAL, ``synchronous=FULL``) and hands
the connection to a :class:`GroupCommit`, which drives it from one worker thread:

- every write queued while a commit runs goes into the next single transaction (``BEGIN IMMEDIATE`` ... ``COMMIT``,
  one fsync for all of them), at most ``max_writes`` per transaction;
- each write runs inside its own ``SAVEPOINT``: a write that raises is rolled back alone, and its exception reaches
  its caller unchanged (the others of the batch commit);
- after ``COMMIT`` has returned, each committed write's ``apply(result)`` runs on the event loop, in commit order,
  before any caller of the batch resumes: memory that ``apply`` updates is never ahead of the file;
- when ``BEGIN`` or ``COMMIT`` fails (a full disk, an I/O error, a deferred constraint), the transaction is rolled back
  (nothing of the batch is written) and every write of the batch raises :class:`~.errors.Unavailable`, the cause
  chained; ``apply`` is run for none of them.

A caller that is cancelled while its write is queued or committing does not stop it: the write completes or fails all
the same (and ``apply`` runs if it commits). :meth:`GroupCommit.run` runs a read or a startup load on the same thread
(between two commits, so it sees only committed writes). After :meth:`GroupCommit.close` every call raises
:class:`~.errors.Unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from prometheus_client import Histogram

from .errors import Unavailable

__all__ = ["GroupCommit"]

log = logging.getLogger("casemesh.runtime.group_commit")

T = TypeVar("T")


@dataclass(slots=True)
class _Queued:
    fn: Callable[[sqlite3.Connection], Any]
    apply: Callable[[Any], None] | None
    future: asyncio.Future[Any]


class _Failed:
    """A write's exception, as the worker thread hands it back (a result may itself be an exception object)."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class GroupCommit:
    """One SQLite connection (open_durable) driven by one worker thread: writes queued while a commit runs go into
    the next single transaction (one fsync for all), each inside its own SAVEPOINT so a write that raises rolls
    back alone and its exception reaches its caller; after COMMIT, each committed write's `apply(result)` runs on
    the event loop in commit order before any caller resumes. Raises runtime.errors.Unavailable (store
    unavailable) for every write of a batch whose COMMIT failed.

    ``name`` names the store in messages and the worker thread; ``commit_seconds`` (one transaction, fsync included)
    and ``writes_per_commit`` are the owner's histograms, observed at every commit when given."""

    def __init__(self, db: sqlite3.Connection, *, name: str, max_writes: int = 256,
                 commit_seconds: Histogram | None = None, writes_per_commit: Histogram | None = None) -> None:
        if max_writes < 1:
            raise ValueError("max_writes must be at least 1")
        self.name = name
        self.max_writes = max_writes
        self._db: sqlite3.Connection | None = db
        self._commit_seconds = commit_seconds
        self._writes_per_commit = writes_per_commit
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{name}-db")
        self._queue: list[_Queued] = []
        self._committer: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    async def write(self, fn: Callable[[sqlite3.Connection], T], apply: Callable[[T], None] | None = None) -> T:
        """Run ``fn(db)`` in the next group commit, inside its own savepoint; durable when this returns ``fn``'s
        result, ``apply(result)`` run on the event loop once committed, before any caller of the batch resumes.

        Raises what ``fn`` raised (nothing of it written, ``apply`` not run), or :class:`Unavailable` (the batch's
        transaction failed: nothing of it written; or the store is closed)."""
        if self._closed:
            raise Unavailable(f"the {self.name} store is closed")
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(fn, apply, future))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name=f"{self.name}-commit")
        return await asyncio.shield(future)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(db)`` on the worker thread between two commits (a read, or the load at start); returns its result.
        Raises what ``fn`` raised, :class:`Unavailable` when the store is closed."""
        if self._closed:
            raise Unavailable(f"the {self.name} store is closed")

        def call() -> T:
            db = self._db
            if db is None:
                raise Unavailable(f"the {self.name} store is closed")
            return fn(db)

        return await asyncio.get_running_loop().run_in_executor(self._thread, call)

    async def close(self) -> None:
        """Wait for the queued writes, then close the connection; later calls raise :class:`Unavailable`."""
        if self._closed:
            return
        self._closed = True
        while self._committer is not None and not self._committer.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(self._committer)
        db, self._db = self._db, None
        if db is not None:
            await asyncio.get_running_loop().run_in_executor(self._thread, db.close)
        self._thread.shutdown(wait=False)

    # -- the committer -------------------------------------------------------------------------------------------------

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            batch = self._queue[:self.max_writes]
            del self._queue[:self.max_writes]
            started = time.perf_counter()
            try:
                outcomes = await loop.run_in_executor(self._thread, self._commit, [q.fn for q in batch])
            except Exception as error:  # noqa: BLE001 - every writer must get an answer, whatever failed
                log.error("a group commit of %s failed: %s", self.name, error)
                unavailable = Unavailable(f"the {self.name} store could not be written: {error}")
                unavailable.__cause__ = error
                outcomes = [_Failed(unavailable)] * len(batch)
            else:
                if self._commit_seconds is not None:
                    self._commit_seconds.observe(time.perf_counter() - started)
                if self._writes_per_commit is not None:
                    self._writes_per_commit.observe(len(batch))
            for queued, outcome in zip(batch, outcomes, strict=True):
                if not isinstance(outcome, _Failed) and queued.apply is not None:
                    try:
                        queued.apply(outcome)
                    except Exception as error:  # a bug in an apply fails its own writer only
                        log.exception("applying a committed write of %s failed", self.name)
                        outcome = _Failed(error)
                if queued.future.done():
                    continue
                if isinstance(outcome, _Failed):
                    queued.future.set_exception(outcome.error)
                else:
                    queued.future.set_result(outcome)

    def _commit(self, writes: list[Callable[[sqlite3.Connection], Any]]) -> list[Any]:
        """Run ``writes`` in one transaction, each in its own savepoint; each one's result or :class:`_Failed`."""
        db = self._db
        if db is None:
            raise Unavailable(f"the {self.name} store is closed")
        outcomes: list[Any] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for fn in writes:
                db.execute("SAVEPOINT one_write")
                try:
                    outcomes.append(fn(db))
                except Exception as error:  # noqa: BLE001 - the write is rolled back and fails alone
                    db.execute("ROLLBACK TO one_write")
                    outcomes.append(_Failed(error))
                db.execute("RELEASE one_write")
            db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            raise
        return outcomes
