"""PostEntry's isolation: two-phase locking per account, one global lock, or none (the case study's A/B switch).

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39, "Online Banking | Double-entry ledger, ACID
transactions"): the I of ACID. An entry checks the balances it debits, then commits, then applies: if another entry
debiting the same account checks in between, both see the old balance and both may pass, overdrawing it (the lost
update). Two-phase locking (Eswaran, Gray, Lorie, Traiger, "The Notions of Consistency and Predicate Locks in a
Database System", CACM 1976; strict 2PL as in Bernstein, Hadzilacos, Goodman, "Concurrency Control and Recovery in
Database Systems", 1987, ch. 3) takes every lock before the check and releases them only after the entry is durable
and applied. The modes (setting ``locking``, :class:`.settings.Locking`):

- ``account``: one ``asyncio.Lock`` per account (services/runtime/keyed_locks.py), taken in sorted order so that two
  entries never wait for each other in a cycle (no deadlock). The ledger locks the **customer accounts an entry
  debits**: those are the only balances a check reads. A credit only raises a balance and a bank cash account has no
  floor, so those postings commute with any concurrent entry and cannot invalidate its check (the escrow observation:
  P. O'Neil, "The Escrow Transactional Method", ACM TODS 1986); deposits thus never queue on ``cash-USD``. Entries
  debiting different accounts run side by side and share group commits; entries debiting one hot account queue.
- ``global``: one lock around every entry: serial execution, one commit (one fsync) at a time.
- ``none``: no lock. **Unsafe**: concurrent debits of one account can overdraw it. Kept only to show what isolation
  prevents (Reconcile then reports the account below zero).

Whatever the mode, every change (an entry from its check to its apply, an account opening from its write to its
apply) holds the reader side of one ``aiorwlock.RWLock`` and Reconcile takes its writer side
(:meth:`EntryLocks.quiesced`) for the instant it copies the balances: it never sees an entry committed but not yet
applied. An entry takes its account (or global) lock first and the reader side last, so Reconcile waits only for the
entries already past their locks, never for the queue behind a hot account.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable

import aiorwlock

from ...runtime.keyed_locks import KeyedLocks
from . import metrics
from .settings import Locking


class EntryLocks:
    """The locks of one ledger in mode ``mode``."""

    def __init__(self, mode: Locking) -> None:
        self.mode = Locking(mode)
        self._accounts = KeyedLocks()
        self._serial = asyncio.Lock()
        self._changes = aiorwlock.RWLock(fast=True)

    @contextlib.asynccontextmanager
    async def entry(self, debited: Iterable[str]) -> AsyncIterator[None]:
        """Hold an entry's locks for the ``async with`` block: in ``account`` mode those of the ``debited`` customer
        accounts (sorted), in ``global`` mode the one lock, in ``none`` mode nothing; and in every mode the reader side
        of the change lock. The wait is observed in ``casemesh_banking_ledger_lock_wait_seconds``."""
        started = time.perf_counter()
        async with contextlib.AsyncExitStack() as stack:
            if self.mode is Locking.ACCOUNT:
                await stack.enter_async_context(self._accounts.hold_all(debited))
            elif self.mode is Locking.GLOBAL:
                await stack.enter_async_context(self._serial)
            await stack.enter_async_context(self._changes.reader_lock)
            metrics.LOCK_WAIT_SECONDS.labels(self.mode.value).observe(time.perf_counter() - started)
            yield

    @contextlib.asynccontextmanager
    async def change(self) -> AsyncIterator[None]:
        """Hold the reader side of the change lock (an account opening, from its write to its apply)."""
        async with self._changes.reader_lock:
            yield

    @contextlib.asynccontextmanager
    async def quiesced(self) -> AsyncIterator[None]:
        """Hold the writer side: no change is between its write and its apply for the ``async with`` block."""
        async with self._changes.writer_lock:
            yield
