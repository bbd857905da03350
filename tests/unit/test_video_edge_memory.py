"""Bounded memory in the edge's streams (issue 11 item 7) and the byte budget behind it, without gRPC."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.services.video.byte_budget import ByteBudget
from casemesh.services.video.edge.node import EdgeNode, SegmentKey
from casemesh.services.video.edge.settings import EdgeSettings

MIB = 1 << 20


# ----------------------------------------------------------------------------- byte budget


async def test_budget_holds_at_most_its_capacity_and_serves_waiters_in_order():
    waited = []
    budget = ByteBudget(100, on_wait=lambda: waited.append(1))
    await budget.acquire(60)
    order = []

    async def take(name, n):
        await budget.acquire(n)
        order.append(name)

    big = asyncio.create_task(take("big", 70))
    await asyncio.sleep(0)
    small = asyncio.create_task(take("small", 10))  # would fit now, but waits behind "big" (no starvation)
    await asyncio.sleep(0)
    assert order == [] and budget.in_use == 60 and budget.waits == len(waited) == 2
    budget.release(60)
    await asyncio.gather(big, small)
    assert order == ["big", "small"] and budget.in_use == 80


async def test_a_cancelled_waiter_leaves_nothing_held_and_lets_others_in():
    budget = ByteBudget(100)
    await budget.acquire(90)
    stuck = asyncio.create_task(budget.acquire(50))
    await asyncio.sleep(0)
    behind = asyncio.create_task(budget.acquire(10))
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    await asyncio.wait_for(behind, 1)
    assert budget.in_use == 100
    with pytest.raises(ValueError):
        await budget.acquire(101)


async def test_hold_releases_on_error():
    budget = ByteBudget(10)
    with pytest.raises(RuntimeError):
        async with budget.hold(10):
            raise RuntimeError("boom")
    assert budget.in_use == 0


# ----------------------------------------------------------------------------- edge node


class Origin:
    """Distinct segments of ``size`` bytes whose content depends on index and offset; tracks bytes outstanding."""

    def __init__(self, size):
        self.segment_bytes = size
        self.sizes = 0
        self.reads = []

    async def size(self, key):
        self.sizes += 1
        await asyncio.sleep(0)
        return self.segment_bytes

    async def read(self, key, offset, max_bytes):
        self.reads.append(max_bytes)
        await asyncio.sleep(0)
        return content(key.index, offset, min(max_bytes, self.segment_bytes - offset))


_PATTERN = bytes(range(251))


def content(index, offset, length):
    """Bytes that differ by segment and by position (a 251-byte cycle, shifted per segment)."""
    skip = (index * 7 + offset) % 251
    return (_PATTERN * (-(-(length + skip) // 251)))[skip:skip + length]


def fast(**overrides):
    base = dict(client_rtt_ms=0, client_bandwidth_kbps=0, origin_rtt_ms=0, origin_bandwidth_mbps=0,
                chunk_bytes=64 * 1024, origin_chunk_bytes=256 * 1024, buffer_bytes=16 * MIB)
    return EdgeSettings(**{**base, **overrides})


async def drain(node, index, watch):
    """Stream segment ``index`` slowly (yielding between chunks), recording the budget in use as it goes."""
    got = []
    async for chunk in node.stream(SegmentKey("v", 1, 3, index), 1):
        got.append(chunk.data)
        watch.append((node.budget.in_use, node.cache.size_bytes))
        await asyncio.sleep(0)
    return b"".join(got)


async def test_many_concurrent_distinct_misses_stay_within_cache_plus_budget():
    size = 3 * MIB
    origin = Origin(size)
    node = EdgeNode(fast(cache_bytes=8 * MIB, buffer_bytes=16 * MIB), origin)
    watch = []
    results = await asyncio.gather(*(drain(node, i, watch) for i in range(24)))  # 72 MiB asked for at once
    assert all(data == content(i, 0, size) for i, data in enumerate(results))
    assert max(in_use for in_use, _ in watch) <= 16 * MIB
    assert max(cached for _, cached in watch) <= 8 * MIB
    assert node.budget.in_use == 0 and origin.sizes == 24
    assert max(origin.reads) == 256 * 1024  # the origin is read in ranges, never a whole segment


async def test_cache_off_streams_from_the_origin_one_range_at_a_time():
    origin = Origin(MIB)
    node = EdgeNode(fast(cache_bytes=0), origin)
    watch = []
    results = await asyncio.gather(*(drain(node, i, watch) for i in range(40)))
    assert all(data == content(i, 0, MIB) for i, data in enumerate(results))
    assert max(in_use for in_use, _ in watch) <= 16 * MIB  # 40 streams x 256 KiB would be 10 MiB: within budget
    assert len(origin.reads) == 40 * 4 and node.budget.in_use == 0


async def test_a_segment_evicted_while_streamed_is_read_on_from_the_origin():
    origin = Origin(2 * MIB)
    node = EdgeNode(fast(cache_bytes=2 * MIB), origin)
    stream = node.stream(SegmentKey("v", 1, 3, 0), 1)
    first = await anext(stream)
    assert not first.hit and len(node.cache) == 1
    await drain(node, 1, [])  # fills the cache with segment 1: segment 0 is evicted mid-stream
    assert SegmentKey("v", 1, 3, 0) not in node.cache
    rest = [chunk.data async for chunk in stream]
    assert first.data + b"".join(rest) == content(0, 0, 2 * MIB)
    assert node.budget.in_use == 0


async def test_a_cancelled_stream_gives_its_budget_back():
    node = EdgeNode(fast(cache_bytes=0), Origin(MIB))
    stream = node.stream(SegmentKey("v", 1, 3, 0), 1)
    await anext(stream)
    assert node.budget.in_use == 256 * 1024
    await stream.aclose()
    assert node.budget.in_use == 0


async def test_a_stream_cancelled_while_waiting_for_the_budget_gives_back_nothing():
    node = EdgeNode(fast(cache_bytes=0, buffer_bytes=16 * MIB, origin_chunk_bytes=4 * MIB), Origin(8 * MIB))
    holders = [node.stream(SegmentKey("v", 1, 3, i), 1) for i in range(4)]
    for stream in holders:
        await anext(stream)  # four streams hold 4 MiB each: the budget is full
    waiting = asyncio.create_task(anext(node.stream(SegmentKey("v", 1, 3, 9), 1)))
    await asyncio.sleep(0.05)
    assert not waiting.done() and node.budget.in_use == 16 * MIB
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    for stream in holders:
        await stream.aclose()
    assert node.budget.in_use == 0


@pytest.mark.parametrize("chunk, origin_chunk", [(1 * MIB, 256 * 1024), (64 * 1024, 100_000), (4096, 4096)])
async def test_uncached_streams_deliver_every_byte_whatever_the_chunk_and_range_sizes(chunk, origin_chunk):
    size = 1_000_003
    node = EdgeNode(fast(cache_bytes=0, chunk_bytes=chunk, origin_chunk_bytes=origin_chunk), Origin(size))
    chunks = [c async for c in node.stream(SegmentKey("v", 1, 3, 5), 1)]
    assert b"".join(c.data for c in chunks) == content(5, 0, size)
    assert [c.offset_bytes for c in chunks] == list(range(0, size, chunk))
    assert node.budget.in_use == 0
