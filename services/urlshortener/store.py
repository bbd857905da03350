"""In-memory URL store, sharded by short code, with optional expiry.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt):
"System Architecture" shows "DB Shard (Sharded by short_code)", and the "Key
Insight" is a read/write ratio of 100:1 or more. So records are spread over N
shards by a stable hash of the code (CRC-32, the same on every process and
run, unlike Python's salted ``hash``), and each shard has its own
readers-writer lock (``aiorwlock.RWLock``): many concurrent Resolve reads, an
exclusive writer only for Shorten, Delete and expiry clean-up, and writers on
one shard never block readers of another.

Expiry ("URL expiration (optional)") is checked on read: an expired record is
invisible at once and removed lazily by the read that finds it, or by
:meth:`UrlStore.purge_expired` from a periodic sweep.

All times are Unix seconds as ``float`` and are passed in by the caller
(``now_s``), so tests control the clock.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import aiorwlock

from casemesh.services.runtime.errors import AlreadyExists


@dataclass(frozen=True, slots=True)
class UrlRecord:
    """One short code and the URL it redirects to.

    ``created_at_s`` and ``expire_at_s`` are Unix seconds; ``expire_at_s`` is
    None for a code that never expires (``ttl_seconds == 0``).
    """

    code: str
    long_url: str
    created_at_s: float
    expire_at_s: float | None

    def expired(self, now_s: float) -> bool:
        """True once ``now_s`` reaches ``expire_at_s`` (the code stops resolving at that instant)."""
        return self.expire_at_s is not None and now_s >= self.expire_at_s


class _Shard:
    __slots__ = ("lock", "records")

    def __init__(self) -> None:
        self.lock = aiorwlock.RWLock()
        self.records: dict[str, UrlRecord] = {}


class UrlStore:
    """Map code -> :class:`UrlRecord` in ``shards`` independently locked shards.

    Single event loop (the locks bind to the first loop that uses them).
    Reads take a shard's reader lock, writes its writer lock; no method holds
    more than one shard lock at a time.
    """

    def __init__(self, shards: int = 16) -> None:
        if shards < 1:
            raise ValueError(f"shards must be at least 1 (got {shards})")
        self._shards = [_Shard() for _ in range(shards)]

    def _shard(self, code: str) -> _Shard:
        """Stable shard choice: CRC-32 of the UTF-8 code, modulo the shard count."""
        return self._shards[zlib.crc32(code.encode("utf-8")) % len(self._shards)]

    @property
    def shard_count(self) -> int:
        return len(self._shards)

    async def insert(self, record: UrlRecord, now_s: float) -> None:
        """Store ``record``; raises AlreadyExists when its code is held by a live record.

        A record whose code is held by an expired record replaces it, so an
        expired custom alias can be taken again.
        """
        shard = self._shard(record.code)
        async with shard.lock.writer:
            existing = shard.records.get(record.code)
            if existing is not None and not existing.expired(now_s):
                raise AlreadyExists(f"code {record.code!r} is already taken")
            shard.records[record.code] = record

    async def get(self, code: str, now_s: float) -> UrlRecord | None:
        """The live record of ``code``, or None when absent or expired (an expired one is removed)."""
        shard = self._shard(code)
        async with shard.lock.reader:
            record = shard.records.get(code)
        if record is None or not record.expired(now_s):
            return record
        async with shard.lock.writer:
            # Re-check under the writer lock: the record may have been replaced
            # by a new insert between the two lock sections.
            if shard.records.get(code) is record:
                del shard.records[code]
        return None

    async def delete(self, code: str, now_s: float) -> bool:
        """Remove ``code``; True when a live record was removed, False when absent or expired."""
        shard = self._shard(code)
        async with shard.lock.writer:
            record = shard.records.pop(code, None)
        return record is not None and not record.expired(now_s)

    async def purge_expired(self, now_s: float) -> int:
        """Remove every record expired at ``now_s``; returns how many were removed.

        Holds one shard's writer lock at a time, so a sweep pauses only a
        fraction of the reads.
        """
        removed = 0
        for shard in self._shards:
            async with shard.lock.writer:
                dead = [c for c, r in shard.records.items() if r.expired(now_s)]
                for code in dead:
                    del shard.records[code]
            removed += len(dead)
        return removed

    def __len__(self) -> int:
        """Records held: live ones plus expired ones not yet removed."""
        return sum(len(shard.records) for shard in self._shards)
