"""An edge node's segment path: cache lookup, coalesced origin fetch over the shared link, paced delivery.

Seed 004, "Read plane": "Client -> CDN -> Origin (for cache misses only)";
"CDN Cache Hit Rate": immutable segments cached at the edge. No gRPC here:
the origin is an injected :class:`Origin` (the service reads
``ObjectStoreService.GetSegment`` in ranges), so the timing model and the
memory bounds are testable alone.

Timeline of one ``StreamSegments`` call (the WAN model, wan.py; times from
the call's start ``t0``):

1. Segment lookup in the cache. A miss asks the origin for the segment's
   size (a 1-byte range: the real call, overlapping the modelled
   ``origin_rtt``), then books the transfer of its bytes over the shared
   origin link, queued FIFO behind the transfers already booked, and waits
   for the transfer's end. Concurrent misses of one segment share one fetch
   (coalescing), and the fetch fills the cache.
2. The first byte reaches the client ``client_rtt`` after the segment is at
   the edge (``t0`` on a hit, the fetch's end on a miss): the request's and
   the response's trip, paid once per stream.
3. Every chunk is then paced at the client bandwidth: chunk ``k`` is sent
   when ``start + (bytes up to and including k) x 8 / rate`` is reached,
   the arrival time of its last byte.
4. The stream's next segment is looked up when the previous one has been
   delivered (no read-ahead); a miss there stalls the schedule until its
   fetch ends.

Memory (issue 11, "bounded memory in streams"): segment bytes live in the
cache (at most ``cache_bytes``) or in the per-service byte budget
(``buffer_bytes``, :class:`~..byte_budget.ByteBudget`), never in a stream.

- A fill (the coalesced fetch of a missed, cacheable segment) reads the real
  bytes only once its modelled transfer has ended, holding the segment's
  size of the budget while it reads them in ``origin_chunk_bytes`` ranges and
  until they are in the cache.
- A stream holds no segment: it slices each chunk out of the cache as it
  sends it. When its segment is not in the cache (the cache is off, the
  segment is larger than the cache or than the budget, or it was evicted
  while being streamed) the stream reads it from the origin in
  ``origin_chunk_bytes`` ranges, one range at a time, holding one range of
  the budget while it does (an evicted segment is read on without a second
  modelled fetch: a real edge would have kept the object open).

So memory is ``cache_bytes`` + ``buffer_bytes`` + one chunk per stream
whatever the number of streams; past the budget, fills and uncached streams
wait their turn (first come, first served), which is the flow control.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from ..byte_budget import ByteBudget
from .cache import SegmentCache
from ...runtime.coalescing import SingleFlight
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


class Origin(Protocol):
    """Where missed segments come from (the object store).

    Both methods raise the origin's error (e.g. ``NotFound`` for a segment
    it does not have).
    """

    async def size(self, key: SegmentKey) -> int:
        """Size of segment ``key`` in bytes."""

    async def read(self, key: SegmentKey, offset_bytes: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes of segment ``key`` from ``offset_bytes`` (fewer only at its end)."""


class _SegmentReader:
    """One stream's source of one segment's bytes: the cache, else origin ranges (one range held at a time)."""

    __slots__ = ("_node", "_key", "size", "_range_start", "_range", "_held")

    def __init__(self, node: EdgeNode, key: SegmentKey, size: int) -> None:
        self._node = node
        self._key = key
        self.size = size
        self._range_start = 0
        self._range = b""
        self._held = 0

    async def piece(self, offset: int, length: int) -> bytes:
        """Bytes ``offset`` to ``offset + length`` (cut at the segment's end)."""
        node = self._node
        if not self._held:
            data = node.cache.read(self._key, offset, length)
            if data is not None:
                return data
            # A range always covers the chunk asked for, even with chunk_bytes above origin_chunk_bytes.
            want = min(max(node.settings.origin_chunk_bytes, length), self.size)
            await node.budget.acquire(want)  # from here on, this stream reads the origin
            self._held = want  # only once acquired: a stream cancelled while waiting gives back nothing
        end = min(offset + length, self.size)
        if not (self._range_start <= offset and end <= self._range_start + len(self._range)):
            self._range = b""  # drop the old range before fetching the next: one range held at a time
            self._range_start = offset
            self._range = await node.origin.read(self._key, offset, self._held)
            node.origin_range_reads += 1
        start = offset - self._range_start
        return self._range[start:start + end - offset]

    def close(self) -> None:
        self._range = b""
        if self._held:
            self._node.budget.release(self._held)
            self._held = 0


class EdgeNode:
    """Cache, coalescing, origin link, byte budget and pacing of one edge, from :class:`EdgeSettings`.

    ``origin`` serves missed segments; ``on_fetch(seconds)`` is called after
    each successful origin fetch with its duration (round trip, link
    queueing, transfer, and the real reads of a fill); ``on_coalesced()``
    when a miss joins a fetch already in flight; ``on_lookup(hit)`` /
    ``on_evict(n)`` come from the cache; ``on_budget_wait()`` when a fill or
    an uncached stream waits for the byte budget. ``clock`` (monotonic
    seconds) and ``sleep`` are injectable. Counters: ``origin_fetches``
    (modelled fetches), ``origin_range_reads`` (real range reads).
    """

    def __init__(
        self,
        settings: EdgeSettings,
        origin: Origin,
        *,
        on_lookup: Callable[[bool], None] | None = None,
        on_evict: Callable[[int], None] | None = None,
        on_fetch: Callable[[float], None] | None = None,
        on_coalesced: Callable[[], None] | None = None,
        on_budget_wait: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.settings = settings
        self.origin = origin
        self._on_fetch = on_fetch
        self._on_coalesced = on_coalesced
        self._clock = clock
        self._sleep = sleep
        self.cache = SegmentCache(settings.cache_bytes, on_lookup=on_lookup, on_evict=on_evict)
        self.budget = ByteBudget(settings.buffer_bytes, on_wait=on_budget_wait)
        self.link = OriginLink(settings.origin_bandwidth_mbps * 1_000_000, clock)
        self.flights: SingleFlight[SegmentKey, int] = SingleFlight()
        self.client_rtt_s = settings.client_rtt_ms / 1000
        self.origin_rtt_s = settings.origin_rtt_ms / 1000
        self.client_bps = settings.client_bandwidth_kbps * 1000
        self.origin_fetches = 0
        self.origin_range_reads = 0

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self._clock()
        if delay > 0:
            await self._sleep(delay)

    async def fetch_from_origin(self, key: SegmentKey) -> tuple[int, float]:
        """The modelled part of an origin fetch: the segment's size (a real call), the round trip, the link's queue
        and transfer; returns ``(size, started)`` once the transfer has ended."""
        started = self._clock()
        size = await self.origin.size(key)
        self.origin_fetches += 1
        _, end = self.link.reserve(size, ready_at=started + self.origin_rtt_s)
        await self._sleep_until(end)
        return size, started

    def _cacheable(self, size: int) -> bool:
        return self.cache.enabled and size <= self.cache.max_bytes and size <= self.budget.capacity_bytes

    async def _read_whole(self, key: SegmentKey, size: int) -> bytes:
        step = self.settings.origin_chunk_bytes
        parts = []
        for offset in range(0, size, step):
            part = await self.origin.read(key, offset, step)
            self.origin_range_reads += 1
            if not part:
                raise OSError(f"origin returned no bytes at offset {offset} of a {size}-byte segment")
            parts.append(part)
        return b"".join(parts)

    async def _fetch_and_fill(self, key: SegmentKey) -> int:
        size, started = await self.fetch_from_origin(key)
        if self._cacheable(size):
            async with self.budget.hold(size):
                self.cache.put(key, await self._read_whole(key, size))
        if self._on_fetch is not None:
            self._on_fetch(self._clock() - started)
        return size

    async def segment(self, key: SegmentKey) -> tuple[int, bool]:
        """``(size, hit)`` of ``key``: a cache hit, else a miss fetched from the origin (coalesced when the cache is
        on) and, when it fits, now in the cache. Holds no bytes: :meth:`stream` reads them chunk by chunk."""
        size = self.cache.lookup(key)
        if size is not None:
            return size, True
        if not self.cache.enabled:
            size, started = await self.fetch_from_origin(key)
            if self._on_fetch is not None:
                self._on_fetch(self._clock() - started)
            return size, False
        size, shared = await self.flights.do(key, lambda: self._fetch_and_fill(key))
        if shared and self._on_coalesced is not None:
            self._on_coalesced()
        return size, False

    async def stream(self, first: SegmentKey, count: int) -> AsyncIterator[Chunk]:
        """The chunks of ``count`` consecutive segments from ``first``, each released at its paced arrival time.

        Raises what the origin raises for a segment it does not have or
        cannot serve (after the earlier segments have been streamed).
        """
        chunk_bytes = self.settings.chunk_bytes
        started = self._clock()
        pacer = Pacer(self.client_bps, started)
        for i in range(count):
            key = first._replace(index=first.index + i)
            size, hit = await self.segment(key)
            if i == 0:
                pacer.hold_until((started if hit else self._clock()) + self.client_rtt_s)
            elif not hit:
                pacer.hold_until(self._clock())  # the stream stalled on the origin fetch
            reader = _SegmentReader(self, key, size)
            try:
                for offset in range(0, max(size, 1), chunk_bytes):
                    piece = await reader.piece(offset, chunk_bytes)
                    await self._sleep_until(pacer.advance(len(piece)))
                    yield Chunk(key.index, offset, piece, size, hit)
            finally:
                reader.close()
