"""Bounded LRU cache of resolved codes, in front of the store.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt):
"Design for read-heavy workloads with aggressive caching"; ``redirect()``
checks the cache first ("fast path") and fills it on a miss; the architecture
puts a cache cluster in front of the sharded DB. Here the cache is per process,
bounded by entry count (``cachetools.LRUCache``: the least recently used entry
is evicted), and counts hits and misses for the metrics.

Expiry needs no TTL in the cache: entries are whole :class:`UrlRecord` values,
and a record past its ``expire_at_s`` is treated as a miss and evicted.

Synchronous on purpose: there is no ``await`` inside, so on the single event
loop each call is atomic and no lock is needed. Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable

from cachetools import LRUCache

from .store import UrlRecord


class ResolveCache:
    """code -> :class:`UrlRecord`, at most ``max_entries`` entries, least recently used evicted.

    ``hits`` / ``misses`` count :meth:`get` outcomes; ``on_lookup(hit)`` is
    called after each (e.g. to bump Prometheus counters).

    Fill race: a Resolve that read the store before a concurrent Delete must
    not put the deleted record back. Take :meth:`token` before reading the
    store and pass it to :meth:`put`; the put is skipped if any
    :meth:`invalidate` happened in between.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        on_lookup: Callable[[bool], None] | None = None,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1 (got {max_entries})")
        self._lru: LRUCache[str, UrlRecord] = LRUCache(maxsize=max_entries)
        self.on_lookup = on_lookup
        self.hits = 0
        self.misses = 0
        self._invalidations = 0

    @property
    def max_entries(self) -> int:
        return int(self._lru.maxsize)

    def __len__(self) -> int:
        return len(self._lru)

    def get(self, code: str, now_s: float) -> UrlRecord | None:
        """The cached live record of ``code`` (marked most recently used), or None on a miss.

        An expired entry counts as a miss and is evicted. ``now_s``: Unix seconds.
        """
        record = self._lru.get(code)
        if record is not None and record.expired(now_s):
            del self._lru[code]
            record = None
        hit = record is not None
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self.on_lookup is not None:
            self.on_lookup(hit)
        return record

    def token(self) -> int:
        """Invalidation counter to pass to :meth:`put` (see the class docstring)."""
        return self._invalidations

    def put(self, record: UrlRecord, token: int | None = None) -> bool:
        """Cache ``record`` under its code; may evict the least recently used entry.

        With ``token`` (from :meth:`token`), the put is skipped and False
        returned when an invalidation happened since the token was taken.
        """
        if token is not None and token != self._invalidations:
            return False
        self._lru[record.code] = record
        return True

    def invalidate(self, code: str) -> None:
        """Drop ``code`` (Delete: the code stops resolving at once)."""
        self._invalidations += 1
        self._lru.pop(code, None)
