"""An edge node's segment path: cache lookup, coalesced origin fetch over the shared link, paced delivery.

Seed 004, "Read plane": "Client -> CDN -> Origin (for cache misses only)";
"CDN Cache Hit Rate": immutable segments cached at the edge. No gRPC here:
the origin is an injected ``fetch(key) -> bytes`` (the service passes
``ObjectStoreService.GetSegment``), so the timing model is testable alone.

Timeline of one ``StreamSegments`` call (the WAN model, wan.py; times from
the call's start ``t0``):

1. Segment lookup in the cache. A miss fetches from the origin: the real
   call, then ``origin_rtt`` (overlapping the real call's own time), then
   the bytes' transfer over the shared origin link, queued FIFO behind the
   transfers already booked. Concurrent misses of one segment share one
   fetch (coalescing), and the fetch fills the cache.
2. The first byte reaches the client ``client_rtt`` after the segment is at
   the edge (``t0`` on a hit, the fetch's end on a miss): the request's and
   the response's trip, paid once per stream.
3. Every chunk is then paced at the client bandwidth: chunk ``k`` is sent
   when ``start + (bytes up to and including k) x 8 / rate`` is reached,
   the arrival time of its last byte.
4. The stream's next segment is looked up when the previous one has been
   delivered (no read-ahead); a miss there stalls the schedule until its
   fetch ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from .cache import SegmentCache
from .coalescing import SingleFlight
from .settings import EdgeSettings
from .wan import OriginLink, Pacer


class SegmentKey(NamedTuple):
    """One segment: video id, transcode generation, Rendition enum value, zero-based index."""

    video_id: str
    generation: int
    rendition: int
    index: int


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a segment as streamed: its index, offset and bytes, the whole segment's size, hit or miss."""

    segment_index: int
    offset_bytes: int
    data: bytes
    segment_size_bytes: int
    hit: bool


Fetch = Callable[[SegmentKey], Awaitable[bytes]]


class EdgeNode:
    """Cache, coalescing, origin link and pacing of one edge, from :class:`EdgeSettings`.

    ``fetch(key)`` reads a segment from the origin (raising the origin's
    error, e.g. ``NotFound``); ``on_fetch(seconds)`` is called after each
    successful origin fetch with its modelled duration (round trip, link
    queueing and transfer); ``on_coalesced()`` when a miss joins a fetch
    already in flight; ``on_lookup(hit)`` / ``on_evict(n)`` come from the
    cache. ``clock`` (monotonic seconds) and ``sleep`` are injectable.
    """

    def __init__(
        self,
        settings: EdgeSettings,
        fetch: Fetch,
        *,
        on_lookup: Callable[[bool], None] | None = None,
        on_evict: Callable[[int], None] | None = None,
        on_fetch: Callable[[float], None] | None = None,
        on_coalesced: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self._fetch_origin = fetch
        self._on_fetch = on_fetch
        self._on_coalesced = on_coalesced
        self._clock = clock
        self._sleep = sleep
        self.cache = SegmentCache(settings.cache_bytes, on_lookup=on_lookup, on_evict=on_evict)
        self.link = OriginLink(settings.origin_bandwidth_mbps * 1_000_000, clock)
        self.flights: SingleFlight[SegmentKey, bytes] = SingleFlight()
        self.client_rtt_s = settings.client_rtt_ms / 1000
        self.origin_rtt_s = settings.origin_rtt_ms / 1000
        self.client_bps = settings.client_bandwidth_kbps * 1000
        self.origin_fetches = 0

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            await self._sleep(delay)

    async def fetch_from_origin(self, key: SegmentKey) -> bytes:
        """One origin fetch with the WAN model: the real call, the round trip, the shared link's queue and transfer."""
        started = self._clock()
        data = await self._fetch_origin(key)
        self.origin_fetches += 1
        _, end = self.link.reserve(len(data), ready_at=started + self.origin_rtt_s)
        await self._sleep_until(end)
        if self._on_fetch is not None:
            self._on_fetch(self._clock() - started)
        return data

    async def _fetch_and_fill(self, key: SegmentKey) -> bytes:
        data = await self.fetch_from_origin(key)
        self.cache.put(key, data)
        return data

    async def segment(self, key: SegmentKey) -> tuple[bytes, bool]:
        """``(bytes, hit)`` of ``key``: from the cache, else from the origin (coalesced when the cache is on)."""
        data = self.cache.get(key)
        if data is not None:
            return data, True
        if not self.cache.enabled:
            return await self.fetch_from_origin(key), False
        data, shared = await self.flights.do(key, lambda: self._fetch_and_fill(key))
        if shared and self._on_coalesced is not None:
            self._on_coalesced()
        return data, False

    async def stream(self, first: SegmentKey, count: int) -> AsyncIterator[Chunk]:
        """The chunks of ``count`` consecutive segments from ``first``, each released at its paced arrival time.

        Raises what ``fetch`` raises for a segment the origin does not have or
        cannot serve (after the earlier segments have been streamed).
        """
        chunk_bytes = self.settings.chunk_bytes
        started = self._clock()
        pacer = Pacer(self.client_bps, started)
        for i in range(count):
            key = first._replace(index=first.index + i)
            data, hit = await self.segment(key)
            if i == 0:
                pacer.hold_until((started if hit else self._clock()) + self.client_rtt_s)
            elif not hit:
                pacer.hold_until(self._clock())  # the stream stalled on the origin fetch
            size = len(data)
            for offset in range(0, max(size, 1), chunk_bytes):
                piece = data[offset:offset + chunk_bytes]
                await self._sleep_until(pacer.advance(len(piece)))
                yield Chunk(key.index, offset, piece, size, hit)
