"""Per-code click counters: total, per country, latest click time.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt,
"Functional Requirements"): "Analytics: click counts, geographic data"; the
redirect path counts clicks asynchronously (``increment_clicks_async``), and the
shortener delivers them here in batches (casemesh.analytics.v1 RecordClicks).

Guarded by one ``aiorwlock.RWLock``: a batch is applied under the writer lock
in one step (no await inside), so a reader never sees half a batch; GetClickStats
reads share the reader lock. Memory grows with the number of distinct codes and
countries clicked (in-memory store, no eviction).
"""

from __future__ import annotations

from collections.abc import Iterable

import aiorwlock

#: Country bucket of clicks without a country code ("unknown", ISO 3166 user-assigned).
UNKNOWN_COUNTRY = "ZZ"


class _CodeStats:
    __slots__ = ("total", "by_country", "last_at_s")

    def __init__(self) -> None:
        self.total = 0
        self.by_country: dict[str, int] = {}
        self.last_at_s: float | None = None


class ClickCounters:
    """Click counters per short code (codes are not checked to exist)."""

    def __init__(self) -> None:
        self._lock = aiorwlock.RWLock()
        self._stats: dict[str, _CodeStats] = {}

    async def record(self, events: Iterable[tuple[str, float, str]]) -> int:
        """Count ``events`` of ``(code, at_s, country_code)``; returns how many were counted.

        ``at_s`` is the click time in Unix seconds; an empty ``country_code``
        counts under "ZZ". Events are read in full before anything is counted,
        so a malformed event leaves the counters unchanged. Validate first
        (``validation.validate_batch``): this does not check the values.
        """
        batch = [(code, float(at_s), country or UNKNOWN_COUNTRY) for code, at_s, country in events]
        async with self._lock.writer:
            for code, at_s, country in batch:
                stats = self._stats.get(code)
                if stats is None:
                    stats = self._stats[code] = _CodeStats()
                stats.total += 1
                stats.by_country[country] = stats.by_country.get(country, 0) + 1
                if stats.last_at_s is None or at_s > stats.last_at_s:
                    stats.last_at_s = at_s
        return len(batch)

    async def stats(self, code: str) -> tuple[int, dict[str, int], float | None]:
        """``(total, by_country, last_at_s)`` of ``code``: a copy; ``(0, {}, None)`` if never clicked.

        ``last_at_s`` is the latest click time (by click time, not arrival), Unix seconds.
        """
        async with self._lock.reader:
            stats = self._stats.get(code)
            if stats is None:
                return 0, {}, None
            return stats.total, dict(stats.by_country), stats.last_at_s
