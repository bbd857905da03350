"""The process-wide host clock: when each host may next be fetched, and which host with work comes next.

Seed 001 #28 (shared/seeds/001_58dfc580020147d2.txt line 34: "Web Crawler | URL frontier, robots.txt, politeness");
seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt, "Search Engine": "Web Crawler: Distributed crawlers with politeness
policies"). The rule (protos/casemesh/crawler/v1/crawler.proto): a host is fetched at most once per interval, the
interval (``politeness_interval_ms``, or the host's robots.txt Crawl-delay when longer) counted from the END of the
previous fetch of the host, by any crawl of the process. One fetch of a host is in flight at a time, and the next
may start ``interval`` after it ended, so the gap between two requests' arrivals at the host, which the synthetic
web's referee measures, is never shorter than the interval (a request arrives after it is sent, and the previous one
arrived before its answer came back).

The clock is the "back queue" selector of Mercator's frontier (Heydon and Najork, "Mercator: A Scalable, Extensible
Web Crawler", 1999; Manning et al., "Introduction to Information Retrieval", 20.2.3): a heap of the hosts that have
URLs waiting, keyed by their next-allowed time; a fetcher takes the host at its top once that time has come, and
sleeps until then otherwise.

A new process knows nothing of its predecessor's fetches: every host's first next-allowed time is the process's
start plus the longest interval a host can have (``restart_wait_s``: the setting, or the longest Crawl-delay the
crawler honours). A restarted crawler therefore waits once, and politeness holds across the restart.

Times are the caller's monotonic clock (the event loop's ``loop.time()``), in seconds; the class never reads a
clock itself, so it is tested with made-up times.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass


@dataclass
class _Host:
    next_allowed: float
    interval: float
    in_flight: bool = False
    queued: bool = False


class HostClock:
    """Next-allowed times of hosts (from ``start`` + ``restart_wait_s`` for a host never fetched) and the heap of
    hosts with work.

    A host is in one of three states: idle, queued (it has work: in the heap until its time comes) or in flight
    (a fetcher took it: :meth:`pop_ready`, until :meth:`release`).
    """

    def __init__(self, interval_s: float, restart_wait_s: float, start: float) -> None:
        self._interval = interval_s
        self._first_allowed = start + max(interval_s, restart_wait_s)
        self._hosts: dict[str, _Host] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self._first_allowed, self._interval)
        return state

    def interval(self, host: str) -> float:
        """``host``'s interval in seconds: the setting, or its Crawl-delay when longer."""
        return self._host(host).interval

    def next_allowed(self, host: str) -> float:
        """The earliest time ``host``'s next fetch may start."""
        return self._host(host).next_allowed

    def set_crawl_delay(self, host: str, delay_s: float | None) -> None:
        """Obey ``host``'s robots.txt Crawl-delay (seconds): its interval becomes the longer of the setting and the
        delay. Never shortens it (another crawl may have read a longer delay)."""
        if delay_s is not None:
            state = self._host(host)
            state.interval = max(state.interval, delay_s)

    def want(self, host: str) -> bool:
        """``host`` has work: queue it, unless it is queued or in flight already. True when it was queued now."""
        state = self._host(host)
        if state.queued or state.in_flight:
            return False
        state.queued = True
        heapq.heappush(self._heap, (state.next_allowed, next(self._order), host))
        return True

    def pop_ready(self, now: float) -> str | None:
        """The queued host with the earliest next-allowed time when that time is ``now`` or before, now in flight;
        ``None`` when no queued host may be fetched yet."""
        if not self._heap or self._heap[0][0] > now:
            return None
        _, _, host = heapq.heappop(self._heap)
        state = self._hosts[host]
        state.queued, state.in_flight = False, True
        return host

    def wait_s(self, now: float) -> float | None:
        """Seconds from ``now`` until the first queued host may be fetched (0 when one may now); ``None`` when no
        host is queued."""
        return max(0.0, self._heap[0][0] - now) if self._heap else None

    def unused(self, host: str) -> None:
        """The host :meth:`pop_ready` gave had nothing to fetch after all: idle again, its time unchanged."""
        self._hosts[host].in_flight = False

    def release(self, host: str, end: float) -> None:
        """The fetch of ``host`` ended at ``end``: it may next start at ``end`` + its interval; idle."""
        state = self._hosts[host]
        state.in_flight = False
        state.next_allowed = end + state.interval

    @property
    def queued(self) -> int:
        """Hosts with work waiting for their next-allowed time (or for a free fetcher)."""
        return len(self._heap)
