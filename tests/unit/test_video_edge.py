"""The CDN edge without gRPC: byte-bounded LRU cache, origin link FIFO, pacing schedule, coalescing, timeline."""

import asyncio
import heapq
import itertools

import grpc
import pytest

from casemesh.services.runtime.errors import InvalidArgument, NotFound
from casemesh.services.video.edge.cache import SegmentCache
from casemesh.services.runtime.coalescing import SingleFlight
from casemesh.services.video.edge.node import EdgeNode, SegmentKey
from casemesh.services.video.edge.service import StorageOrigin
from casemesh.services.video.edge.settings import EdgeSettings
from casemesh.services.video.edge.validation import validate_stream_request
from casemesh.services.video.edge.wan import OriginLink, Pacer
from casemesh.video.v1 import storage_pb2, video_pb2


class FakeClock:
    """Virtual time: ``sleep`` waits until :meth:`run` advances the clock to the sleeper's deadline.

    :meth:`run` lets the tasks run until they are all asleep, then jumps to the
    earliest deadline, so concurrent sleepers overlap as in real time.
    """

    def __init__(self, now=100.0):
        self.now = now
        self.sleeps = []
        self._sleepers = []
        self._order = itertools.count()

    def __call__(self):
        return self.now

    async def sleep(self, seconds):
        self.sleeps.append(seconds)
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def run(self, *coros):
        tasks = [asyncio.ensure_future(c) for c in coros]
        while not all(t.done() for t in tasks):
            for _ in range(50):  # let every task run until it sleeps or ends
                await asyncio.sleep(0)
            if self._sleepers:
                deadline, _, future = heapq.heappop(self._sleepers)
                self.now = max(self.now, deadline)
                future.set_result(None)
        return await asyncio.gather(*tasks)


# ----------------------------------------------------------------------------- cache


def test_cache_evicts_least_recently_used_segments_by_bytes():
    evicted = []
    cache = SegmentCache(1000, on_evict=evicted.append)
    assert cache.put("a", b"a" * 400) and cache.put("b", b"b" * 400)
    assert cache.size_bytes == 800 and len(cache) == 2
    assert cache.get("a") == b"a" * 400  # a is now the most recently used
    assert cache.put("c", b"c" * 300)  # 1,100 > 1,000: b (least recent) goes, not a
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.size_bytes == 700
    assert (cache.evictions, cache.evicted_bytes, evicted) == (1, 400, [1])
    assert cache.put("d", b"d" * 1000)  # needs the whole cache: everything else goes
    assert (len(cache), cache.size_bytes, cache.evictions) == (1, 1000, 3)


def test_cache_counts_hits_and_misses_and_refuses_oversized_segments():
    lookups = []
    cache = SegmentCache(100, on_lookup=lookups.append)
    assert cache.get("x") is None
    cache.put("x", b"1" * 10)
    assert cache.get("x") == b"1" * 10
    assert not cache.put("big", b"2" * 101)  # larger than the cache: not stored, nothing evicted
    assert "x" in cache and cache.rejected == 1 and cache.evictions == 0
    assert (cache.hits, cache.misses, lookups) == (1, 1, [False, True])


def test_cache_size_zero_is_off():
    cache = SegmentCache(0)
    assert not cache.enabled
    assert not cache.put("a", b"x")
    assert cache.get("a") is None and cache.misses == 1
    assert (len(cache), cache.size_bytes) == (0, 0)
    with pytest.raises(ValueError):
        SegmentCache(-1)


def test_replacing_a_key_keeps_the_byte_accounting_exact():
    cache = SegmentCache(1000)
    cache.put("a", b"x" * 600)
    cache.put("a", b"y" * 200)
    assert cache.size_bytes == 200 and cache.get("a") == b"y" * 200


# ----------------------------------------------------------------------------- origin link


def test_origin_link_books_transfers_fifo_after_the_previous_one_ends():
    clock = FakeClock(now=10.0)
    link = OriginLink(8_000_000, clock)  # 1 MB/s: 1,000,000 bytes take 1 s
    assert link.transfer_s(500_000) == 0.5
    assert link.reserve(1_000_000) == (10.0, 11.0)
    assert link.reserve(500_000) == (11.0, 11.5)  # queued behind the first
    assert link.reserve(250_000, ready_at=12.0) == (12.0, 12.25)  # ready after the link frees: starts when ready
    assert link.backlog_s() == pytest.approx(2.25)
    clock.now = 20.0  # idle link
    assert link.backlog_s() == 0
    assert link.reserve(1_000_000, ready_at=19.0) == (20.0, 21.0)  # never starts in the past
    assert (link.reservations, link.reserved_bytes) == (4, 2_750_000)


def test_origin_link_bandwidth_zero_is_unlimited():
    clock = FakeClock(now=5.0)
    link = OriginLink(0, clock)
    assert link.reserve(10**9) == (5.0, 5.0)
    assert link.reserve(10**9, ready_at=5.08) == (5.08, 5.08)
    assert link.backlog_s() == 0


# ----------------------------------------------------------------------------- pacing


def test_pacer_deadlines_are_absolute_so_rounding_does_not_accumulate():
    pacer = Pacer(8_000_000, start=0.0)  # 1 byte per microsecond
    deadlines = [pacer.advance(65_536) for _ in range(19)] + [pacer.advance(1_250_000 - 19 * 65_536)]
    assert deadlines[0] == pytest.approx(0.065536)
    assert deadlines[-1] == pytest.approx(1.25, abs=1e-12)  # the 1080p segment: 1.25 MB at 8,000 kbit/s
    assert pacer.sent_bytes == 1_250_000


def test_pacer_holds_for_stalls_and_never_goes_back():
    pacer = Pacer(1_000_000, start=1.0)
    assert pacer.hold_until(1.04) == 1.04
    assert pacer.advance(12_500) == pytest.approx(1.14)
    assert pacer.hold_until(1.0) == pytest.approx(1.14)  # earlier: no effect
    assert pacer.hold_until(2.0) == 2.0
    assert pacer.advance(125_000) == pytest.approx(3.0)


def test_unpaced_stream_only_waits_for_holds():
    pacer = Pacer(0, start=3.0)
    assert pacer.advance(10**9) == 3.0
    pacer.hold_until(3.5)
    assert pacer.advance(1) == 3.5


# ----------------------------------------------------------------------------- coalescing


async def test_concurrent_callers_share_one_call():
    flights = SingleFlight()
    gate = asyncio.Event()
    calls = []

    async def call():
        calls.append(1)
        await gate.wait()
        return b"segment"

    tasks = [asyncio.create_task(flights.do("k", call)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert flights.in_flight("k") and len(calls) == 1
    gate.set()
    results = await asyncio.gather(*tasks)
    assert [r[0] for r in results] == [b"segment"] * 5
    assert sorted(r[1] for r in results) == [False, True, True, True, True]
    assert flights.shared == 4 and len(flights) == 0
    assert (await flights.do("k", call))[1] is False and len(calls) == 2  # nothing kept once it ended


async def test_a_cancelled_caller_does_not_cancel_the_shared_call_and_errors_reach_everyone():
    flights = SingleFlight()
    gate = asyncio.Event()

    async def call():
        await gate.wait()
        raise NotFound("no such segment")

    first = asyncio.create_task(flights.do("k", call))
    second = asyncio.create_task(flights.do("k", call))
    await asyncio.sleep(0.01)
    first.cancel()
    await asyncio.sleep(0.01)
    assert flights.in_flight("k")
    gate.set()
    with pytest.raises(NotFound):
        await second
    with pytest.raises(asyncio.CancelledError):
        await first


# ----------------------------------------------------------------------------- the node's timeline


def settings(**overrides):
    base = dict(cache_bytes=10_000_000, chunk_bytes=65_536, client_rtt_ms=40, client_bandwidth_kbps=8_000,
                origin_rtt_ms=80, origin_bandwidth_mbps=200)
    return EdgeSettings(**{**base, **overrides})


class Origin:
    """Segments of ``size`` bytes for indexes < ``segments``; counts fetches (size lookups) and range reads;
    ``gate`` holds the fetches."""

    def __init__(self, size=1_250_000, segments=10):
        self.segment_bytes = size
        self.segments = segments
        self.fetches = []
        self.reads = []
        self.gate = None

    async def size(self, key):
        self.fetches.append(key)
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if key.index >= self.segments:
            raise NotFound(f"segment {key.index}")
        return self.segment_bytes

    async def read(self, key, offset, max_bytes):
        self.reads.append((key.index, offset, max_bytes))
        await asyncio.sleep(0)
        return bytes([key.index % 256]) * min(max_bytes, self.segment_bytes - offset)


KEY = SegmentKey("vid1", 1, 3, 0)


async def collect(node, key=KEY, count=1):
    return [chunk async for chunk in node.stream(key, count)]


async def test_a_hit_streams_after_one_round_trip_paced_at_the_client_bandwidth():
    clock = FakeClock(now=0.0)
    node = EdgeNode(settings(), Origin(), clock=clock, sleep=clock.sleep)
    await clock.run(collect(node))  # miss: fills the cache
    start = clock.now
    [chunks] = await clock.run(collect(node))
    assert all(c.hit for c in chunks)
    assert sum(len(c.data) for c in chunks) == 1_250_000 and len(chunks) == 20
    assert [c.offset_bytes for c in chunks] == list(range(0, 1_250_000, 65_536))
    # 40 ms round trip, then 1.25 MB at 8,000 kbit/s = 1.25 s
    assert clock.now - start == pytest.approx(0.040 + 1.25)
    assert clock.sleeps[-20] == pytest.approx(0.040 + 65_536 * 8 / 8e6)  # first chunk: RTT + its own transfer


async def test_a_miss_adds_the_origin_round_trip_and_the_link_transfer():
    clock = FakeClock(now=0.0)
    fetched = []
    node = EdgeNode(settings(), Origin(), clock=clock, sleep=clock.sleep, on_fetch=fetched.append)
    [chunks] = await clock.run(collect(node))
    assert all(not c.hit for c in chunks)
    # origin: 80 ms round trip + 1.25 MB over 200 Mbit/s (50 ms); then 40 ms client RTT + 1.25 s
    assert fetched == [pytest.approx(0.130)]
    assert clock.now == pytest.approx(0.130 + 0.040 + 1.25)
    assert node.cache.size_bytes == 1_250_000


async def test_misses_queue_on_the_shared_origin_link():
    clock = FakeClock(now=0.0)
    fetched = []
    node = EdgeNode(settings(client_bandwidth_kbps=0, client_rtt_ms=0), Origin(), clock=clock, sleep=clock.sleep,
                    on_fetch=fetched.append)
    # three different segments missed at once: transfers of 50 ms each, one after the other
    await clock.run(*(collect(node, KEY._replace(index=i)) for i in range(3)))
    assert fetched == [pytest.approx(0.130), pytest.approx(0.180), pytest.approx(0.230)]


async def test_multi_segment_stream_is_one_schedule_and_stalls_on_a_later_miss():
    clock = FakeClock(now=0.0)
    node = EdgeNode(settings(origin_bandwidth_mbps=0, origin_rtt_ms=100), Origin(size=100_000), clock=clock,
                    sleep=clock.sleep)
    await clock.run(collect(node))  # segment 0 cached
    start = clock.now
    [chunks] = await clock.run(collect(node, count=2))  # segment 0 hit, segment 1 miss
    assert [(c.segment_index, c.hit) for c in chunks][0] == (0, True)
    assert {c.segment_index: c.hit for c in chunks} == {0: True, 1: False}
    # 40 ms RTT + 0.1 s for segment 0; then the 100 ms origin fetch stalls; then 0.1 s for segment 1
    assert clock.now - start == pytest.approx(0.040 + 0.1 + 0.1 + 0.1)


async def test_cache_off_always_misses_and_does_not_coalesce():
    origin = Origin(size=1000)
    node = EdgeNode(settings(cache_bytes=0, client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0,
                             origin_bandwidth_mbps=0), origin)
    for _ in range(2):
        chunks = await collect(node)
        assert [c.hit for c in chunks] == [False]
    await asyncio.gather(*(collect(node) for _ in range(3)))
    assert len(origin.fetches) == 5 and node.cache.misses == 5


async def test_concurrent_misses_of_one_segment_share_one_origin_fetch():
    origin = Origin(size=5000)
    origin.gate = asyncio.Event()
    coalesced = []
    node = EdgeNode(settings(client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0, origin_bandwidth_mbps=0),
                    origin, on_coalesced=lambda: coalesced.append(1))
    streams = [asyncio.create_task(collect(node)) for _ in range(4)]
    await asyncio.sleep(0.01)
    origin.gate.set()
    results = await asyncio.gather(*streams)
    assert len(origin.fetches) == 1 and len(coalesced) == 3
    assert all(len(r) == 1 and not r[0].hit and len(r[0].data) == 5000 for r in results)
    assert (await collect(node))[0].hit


async def test_origin_not_found_reaches_the_stream_and_is_not_cached():
    origin = Origin(size=1000, segments=1)
    node = EdgeNode(settings(client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0), origin)
    chunks = []
    with pytest.raises(NotFound):
        async for chunk in node.stream(KEY, 2):  # segment 0 exists, segment 1 does not
            chunks.append(chunk)
    assert [c.segment_index for c in chunks] == [0]
    with pytest.raises(NotFound):
        await collect(node, KEY._replace(index=1))
    assert len(node.cache) == 1


async def test_chunks_split_segments_at_chunk_bytes():
    node = EdgeNode(settings(chunk_bytes=1024, client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0),
                    Origin(size=2500))
    chunks = await collect(node)
    assert [(c.offset_bytes, len(c.data), c.segment_size_bytes) for c in chunks] == [
        (0, 1024, 2500), (1024, 1024, 2500), (2048, 452, 2500)]


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError):
        EdgeSettings(cache_size=1)
    with pytest.raises(ValueError):
        EdgeSettings(client_bandwidth_kbps=-1)
    with pytest.raises(ValueError):
        EdgeSettings(chunk_bytes=8 * 1024 * 1024)
    defaults = EdgeSettings()
    assert (defaults.chunk_bytes, defaults.client_rtt_ms, defaults.client_bandwidth_kbps, defaults.origin_rtt_ms,
            defaults.origin_bandwidth_mbps) == (65_536, 40, 8_000, 80, 200)


# ----------------------------------------------------------------------------- photo sizes through the edge

PHOTO_ID = "p00000000000000000042"  # services/photo/sizes.py: "p" and 20 digits; generation 1, segment 0


def test_stream_requests_accept_the_photo_sizes_and_still_refuse_unknown_renditions():
    for rendition in (video_pb2.RENDITION_PHOTO_THUMBNAIL, video_pb2.RENDITION_PHOTO_MEDIUM,
                      video_pb2.RENDITION_PHOTO_LARGE, video_pb2.RENDITION_360P, video_pb2.RENDITION_1080P):
        validate_stream_request(PHOTO_ID, 1, rendition, 0, 1)
    for rendition in (video_pb2.RENDITION_UNSPECIFIED, 7, 99, -1):
        with pytest.raises(InvalidArgument) as caught:
            validate_stream_request(PHOTO_ID, 1, rendition, 0, 1)
        assert caught.value.field == "rendition"
    with pytest.raises(InvalidArgument) as caught:
        validate_stream_request(PHOTO_ID, 0, video_pb2.RENDITION_PHOTO_MEDIUM, 0, 1)
    assert caught.value.field == "generation"


class FakeStorage:
    """ObjectStoreService's GetSegment over one stored segment; ``code`` makes every call fail with that status."""

    def __init__(self, data=b"", code=None):
        self.data = data
        self.code = code
        self.requests = []

    async def GetSegment(self, request, timeout=None):
        self.requests.append((request, timeout))
        if self.code is not None:
            raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="from the fake")
        end = len(self.data) if request.max_bytes == 0 else request.offset_bytes + request.max_bytes
        return storage_pb2.GetSegmentResponse(data=self.data[request.offset_bytes:end],
                                              segment_size_bytes=len(self.data))


async def test_origin_not_found_of_a_photo_size_is_not_found_naming_the_rendition():
    origin = StorageOrigin(FakeStorage(code=grpc.StatusCode.NOT_FOUND), timeout_s=2.5)
    key = SegmentKey(PHOTO_ID, 1, video_pb2.RENDITION_PHOTO_MEDIUM, 0)
    for call in (origin.size(key), origin.read(key, 0, 1024)):
        with pytest.raises(NotFound, match="RENDITION_PHOTO_MEDIUM") as caught:
            await call
        assert PHOTO_ID in str(caught.value)
    with pytest.raises(NotFound, match="RENDITION_720P"):  # ladder rungs are named as before
        await origin.size(SegmentKey("vid1", 2, video_pb2.RENDITION_720P, 5))


async def test_other_origin_errors_of_a_photo_size_propagate():
    origin = StorageOrigin(FakeStorage(code=grpc.StatusCode.UNAVAILABLE), timeout_s=2.5)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await origin.size(SegmentKey(PHOTO_ID, 1, video_pb2.RENDITION_PHOTO_LARGE, 0))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_edge_streams_a_photo_size_from_the_object_store_and_then_from_its_cache():
    photo = bytes(range(256)) * 10 + b"end"
    storage = FakeStorage(photo)
    node = EdgeNode(settings(chunk_bytes=1024, client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0),
                    StorageOrigin(storage, timeout_s=2.5))
    key = SegmentKey(PHOTO_ID, 1, video_pb2.RENDITION_PHOTO_THUMBNAIL, 0)
    first = await collect(node, key)
    assert b"".join(c.data for c in first) == photo and not any(c.hit for c in first)
    assert {(r.video_id, r.generation, r.rendition, r.index) for r, _ in storage.requests} == {
        (PHOTO_ID, 1, video_pb2.RENDITION_PHOTO_THUMBNAIL, 0)}
    assert all(timeout == 2.5 for _, timeout in storage.requests)
    fetched = len(storage.requests)
    again = await collect(node, key)
    assert b"".join(c.data for c in again) == photo and all(c.hit for c in again)
    assert len(storage.requests) == fetched  # a hit never reaches the origin
    storage.code = grpc.StatusCode.NOT_FOUND
    with pytest.raises(NotFound, match="RENDITION_PHOTO_LARGE"):
        await collect(node, key._replace(rendition=video_pb2.RENDITION_PHOTO_LARGE))
