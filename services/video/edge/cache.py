"""The edge's segment cache: least recently used segments evicted first, bounded in bytes.

Seed 004, "CDN Cache Hit Rate": segments are immutable once transcoded
("Cache-Control: max-age=31536000, immutable"), so a cached segment never
goes stale and needs no TTL; the cache's only limit is its size, as on a real
edge node whose disk or memory holds so many bytes, not so many objects.
``cachetools.LRUCache(maxsize, getsizeof=len)`` does the byte accounting and
LRU eviction; this class adds the hit/miss and eviction counts and the
"cache off" setting (``max_bytes = 0``).

Synchronous on purpose (no ``await`` inside): on one event loop each call is
atomic, no lock is needed. Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from cachetools import LRUCache


class _EvictionCountingLRU(LRUCache):
    """``LRUCache`` sized by ``len(value)`` that reports each eviction (cachetools' documented ``popitem`` hook)."""

    def __init__(self, maxsize: int, on_evict: Callable[[Hashable, bytes], None]):
        super().__init__(maxsize=maxsize, getsizeof=len)
        self._on_evict = on_evict

    def popitem(self):  # called by LRUCache only to make room
        key, value = super().popitem()
        self._on_evict(key, value)
        return key, value


class SegmentCache:
    """segment key -> segment bytes, at most ``max_bytes`` bytes in all; ``max_bytes = 0`` turns it off.

    Counters (ints): ``hits``, ``misses``, ``evictions`` (segments pushed out
    to make room), ``evicted_bytes``, ``rejected`` (segments larger than the
    whole cache, not stored). ``on_lookup(hit)`` and ``on_evict(count)`` are
    called as they happen (e.g. to bump Prometheus counters).
    """

    def __init__(self, max_bytes: int, on_lookup: Callable[[bool], None] | None = None,
                 on_evict: Callable[[int], None] | None = None) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 (got {max_bytes})")
        self.max_bytes = max_bytes
        self.on_lookup = on_lookup
        self.on_evict = on_evict
        self._lru = _EvictionCountingLRU(max_bytes, self._evicted) if max_bytes else None
        self.hits = 0
        self.misses = 0
        self.evictions = 0
        self.evicted_bytes = 0
        self.rejected = 0

    @property
    def enabled(self) -> bool:
        """False when ``max_bytes`` is 0: every lookup misses and nothing is stored."""
        return self._lru is not None

    @property
    def size_bytes(self) -> int:
        """Bytes held (the sum of the cached segments' lengths)."""
        return int(self._lru.currsize) if self._lru is not None else 0

    def __len__(self) -> int:
        return len(self._lru) if self._lru is not None else 0

    def __contains__(self, key: Hashable) -> bool:
        """Whether ``key`` is cached (does not count as a lookup, does not touch the LRU order)."""
        return self._lru is not None and key in self._lru

    def get(self, key: Hashable) -> bytes | None:
        """The cached bytes of ``key`` (now the most recently used), or None on a miss; counted."""
        data = self._lru.get(key) if self._lru is not None else None
        hit = data is not None
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self.on_lookup is not None:
            self.on_lookup(hit)
        return data

    def lookup(self, key: Hashable) -> int | None:
        """The size in bytes of cached ``key`` (now the most recently used), or None on a miss; counted like :meth:`get`."""
        data = self.get(key)
        return None if data is None else len(data)

    def read(self, key: Hashable, offset: int, length: int) -> bytes | None:
        """A copy of bytes ``offset`` to ``offset + length`` of cached ``key`` (cut at its end), or None when it is not
        cached. Not counted as a lookup; marks ``key`` the most recently used (a segment being streamed is in use)."""
        if self._lru is None:
            return None
        data = self._lru.get(key)
        return None if data is None else data[offset:offset + length]

    def put(self, key: Hashable, data: bytes) -> bool:
        """Store ``data`` under ``key``, evicting least recently used segments until it fits.

        False (nothing stored or evicted) when the cache is off or ``data`` is
        larger than ``max_bytes``.
        """
        if self._lru is None:
            return False
        if len(data) > self.max_bytes:
            self.rejected += 1
            return False
        self._lru[key] = data
        return True

    def _evicted(self, key: Hashable, data: bytes) -> None:
        self.evictions += 1
        self.evicted_bytes += len(data)
        if self.on_evict is not None:
            self.on_evict(1)
