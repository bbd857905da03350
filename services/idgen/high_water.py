"""Durable high-water marks: a restarted ID service never hands out an ID twice.

Ticket-server style (Flickr's ticket servers, code.flickr.net, "Ticket
Servers: Distributed Unique Primary Keys on the Cheap", 2010: the counter lives
in a store that survives a restart). Before a lease is returned, the highest
value it used is covered by a mark written to disk and fsynced; on start the
generator resumes above the mark. A lease may reserve ``reserve`` values
beyond what it used, so that the following leases need no write (the hi/lo
trade: fewer fsyncs, a gap of at most ``reserve`` after a crash).

- Counter layout: the mark is the highest counter ID covered; a restart
  starts at ``mark + 1``.
- Snowflake layout: the mark is the highest timestamp (ms since the casemesh
  epoch) covered; a restart hands out IDs with later timestamps only
  (:meth:`SnowflakeGenerator.resume_after`), whatever the clock says.

One mark file per layout in the service's data folder
(``DATA_DIR/idgen/counter.mark``, ``DATA_DIR/idgen/snowflake-WORKER.mark``):
one decimal integer and a newline, replaced atomically (written to a
temporary file, fsynced, renamed over the old one, folder fsynced). Run one
idgen process per data folder.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ..video.storage.files import write_atomically


class MarkFileError(ValueError):
    """The mark file exists but does not hold a non-negative integer; the message names the file."""


class HighWaterMark:
    """A non-negative integer kept durably in one file."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> int | None:
        """The stored mark, ``None`` when the file does not exist; ``MarkFileError`` when it is not an integer."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            value = int(text.strip())
        except ValueError:
            raise MarkFileError(f"{self.path}: expected one non-negative integer, got {text[:40]!r}") from None
        if value < 0:
            raise MarkFileError(f"{self.path}: expected one non-negative integer, got {value}")
        return value

    def store(self, value: int) -> None:
        """Replace the mark with ``value`` durably (fsynced before returning). Blocking: run in a thread."""
        write_atomically(self.path, f"{value}\n".encode())


class _Generator(Protocol):
    def lease(self, count: int) -> list[tuple[int, int]]: ...


class DurableLeases:
    """Leases of ``generator`` that are durable before they are returned.

    ``top(ranges)`` is the value a lease must have covered (the last counter
    ID, or the last Snowflake ID's timestamp); ``ceiling`` is what the mark
    covers now (the loaded mark, or -1); ``limit`` caps a new mark (the
    layout's largest value). When a lease's top is above the ceiling, the mark
    becomes ``min(top + reserve, limit)`` and is fsynced (in a worker thread)
    before the lease returns. Leases are serialised by a lock, so none returns
    IDs that a pending write has not yet covered.

    ``lease`` raises what the generator raises (``ResourceExhausted``,
    ``ValueError``) and ``OSError`` when the mark cannot be written; the IDs of
    such a lease are never handed out (they are skipped, not reused).
    ``writes`` counts the marks written.
    """

    def __init__(self, generator: _Generator, mark: HighWaterMark, *, top: Callable[[list[tuple[int, int]]], int],
                 ceiling: int, reserve: int, limit: int):
        if reserve < 0:
            raise ValueError(f"reserve must be at least 0 (got {reserve})")
        self.generator = generator
        self.mark = mark
        self._top = top
        self.ceiling = ceiling
        self._reserve = reserve
        self._limit = limit
        self._lock = asyncio.Lock()
        self.writes = 0

    async def lease(self, count: int) -> list[tuple[int, int]]:
        """``count`` IDs as runs ``[(start, n), ...]``, covered by the durable mark."""
        async with self._lock:
            ranges = self.generator.lease(count)
            top = self._top(ranges)
            if top > self.ceiling:
                new = min(top + self._reserve, self._limit)
                await asyncio.to_thread(self.mark.store, new)
                self.ceiling = new
                self.writes += 1
            return ranges
