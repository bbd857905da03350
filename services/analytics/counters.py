"""Per-code click counters: total, per country, latest click time; bounded in memory.

Source: URL-shortener case study (shared/seeds/000_69ff90d97cf45f9b.txt,
"Functional Requirements"): "Analytics: click counts, geographic data"; the
redirect path counts clicks asynchronously (``increment_clicks_async``), and the
shortener delivers them here in batches (casemesh.analytics.v1 RecordClicks).

Guarded by one ``aiorwlock.RWLock``: a batch is applied under the writer lock
in one step (no await inside), so a reader never sees half a batch; GetClickStats
reads share the reader lock.

Memory is bounded by ``max_counters``: every code held costs one counter (its
total) plus one per distinct country it was clicked from. When a batch takes
the total past the bound, the codes clicked least recently are evicted whole
(least recently *recorded*: reading a code's stats does not keep it) until it
fits again, and ``evicted_codes`` counts them. An evicted code that is
clicked again starts from zero. Why evict rather than refuse with
RESOURCE_EXHAUSTED: counts arrive asynchronously from the shortener's click
buffer, which retries a refused batch; refusing would stall that buffer and
then drop every new click, hot codes' included, so a flood of junk codes
would stop all counting. Evicting cold codes keeps the counts people look at
(popular, recent codes) exact and costs only the long tail's history, the
usual trade of an in-memory analytics store (a durable store of record is out
of scope here). A code clicked from one country costs about 380 bytes (190 per
counter; measured with tracemalloc on 500,000 codes), so the default 200,000
counters hold about 40 MB of Python objects at most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

import aiorwlock

#: Country bucket of clicks without a country code ("unknown", ISO 3166 user-assigned).
UNKNOWN_COUNTRY = "ZZ"
#: Default ``max_counters``: codes held plus their per-country counters.
DEFAULT_MAX_COUNTERS = 200_000


class _CodeStats:
    __slots__ = ("total", "by_country", "last_at_s")

    def __init__(self) -> None:
        self.total = 0
        self.by_country: dict[str, int] = {}
        self.last_at_s: float | None = None


class ClickCounters:
    """Click counters per short code (codes are not checked to exist), at most ``max_counters`` counters.

    ``max_counters`` (>= 2) counts one per code held plus one per (code,
    country) pair. ``on_evict(n)`` is called with the number of codes a batch
    evicted (e.g. to bump a Prometheus counter). Attributes: ``counters``
    (held now), ``evicted_codes`` (since start), ``len()`` (codes held).
    """

    def __init__(self, max_counters: int = DEFAULT_MAX_COUNTERS, on_evict: Callable[[int], None] | None = None) -> None:
        if max_counters < 2:
            raise ValueError(f"max_counters must be >= 2 (got {max_counters})")
        self.max_counters = max_counters
        self._on_evict = on_evict
        self._lock = aiorwlock.RWLock()
        self._stats: OrderedDict[str, _CodeStats] = OrderedDict()  # least recently recorded first
        self.counters = 0
        self.evicted_codes = 0

    def __len__(self) -> int:
        return len(self._stats)

    async def record(self, events: Iterable[tuple[str, float, str]]) -> int:
        """Count ``events`` of ``(code, at_s, country_code)``; returns how many were counted.

        ``at_s`` is the click time in Unix seconds; an empty ``country_code``
        counts under "ZZ". Events are read in full before anything is counted,
        so a malformed event leaves the counters unchanged. Validate first
        (``validation.validate_batch``): this does not check the values. Codes
        of this batch are the most recently used afterwards; older codes are
        evicted if the batch took the store past ``max_counters``.
        """
        batch = [(code, float(at_s), country or UNKNOWN_COUNTRY) for code, at_s, country in events]
        async with self._lock.writer:
            stats_by_code = self._stats
            for code, at_s, country in batch:
                stats = stats_by_code.get(code)
                if stats is None:
                    stats = stats_by_code[code] = _CodeStats()
                    self.counters += 1
                else:
                    stats_by_code.move_to_end(code)
                stats.total += 1
                before = stats.by_country.get(country)
                if before is None:
                    self.counters += 1
                stats.by_country[country] = (before or 0) + 1
                if stats.last_at_s is None or at_s > stats.last_at_s:
                    stats.last_at_s = at_s
            evicted = 0
            while self.counters > self.max_counters and len(stats_by_code) > 1:
                _, cold = stats_by_code.popitem(last=False)
                self.counters -= 1 + len(cold.by_country)
                evicted += 1
            if evicted:
                self.evicted_codes += evicted
                if self._on_evict is not None:
                    self._on_evict(evicted)
        return len(batch)

    async def stats(self, code: str) -> tuple[int, dict[str, int], float | None]:
        """``(total, by_country, last_at_s)`` of ``code``: a copy; ``(0, {}, None)`` if never clicked (or evicted).

        ``last_at_s`` is the latest click time (by click time, not arrival), Unix seconds.
        """
        async with self._lock.reader:
            stats = self._stats.get(code)
            if stats is None:
                return 0, {}, None
            return stats.total, dict(stats.by_country), stats.last_at_s
