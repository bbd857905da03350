"""ads-frequency's counter (services/ads/frequency/counter.py) over its real SQLite log, with an injected clock: the
sliding window, the cap checked and recorded in one step under concurrency, idempotency by impression ID, Release, a
failed write that leaves nothing reserved, the rebuild at start, and the memory bound (pruning on touch and by the
sweeper)."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.services.ads.frequency.counter import Cap, FrequencyCounter
from casemesh.services.ads.frequency.store import FILE_NAME, FrequencyStore
from casemesh.services.runtime.errors import FailedPrecondition, Unavailable

DAY_S = 86_400


class Clock:
    def __init__(self, now_ms: int = 1_800_000_000_000) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


async def _counter(tmp_path, clock: Clock, max_window_s: int = 30 * DAY_S) -> FrequencyCounter:
    counter = FrequencyCounter(FrequencyStore(tmp_path / FILE_NAME), max_window_s, clock)
    await counter.start()
    return counter


async def test_the_sliding_window(tmp_path):
    clock = Clock()
    counter = await _counter(tmp_path, clock)
    cap = Cap(2, 60)
    try:
        assert await counter.reserve("i1", "u", "c", cap) == 1
        clock.advance(30)
        assert await counter.reserve("i2", "u", "c", cap) == 2
        with pytest.raises(FailedPrecondition, match="^frequency_capped: "):
            await counter.reserve("i3", "u", "c", cap)
        assert counter.counts("u", [("c", cap), ("d", cap), ("c", Cap(2, 10))]) == [2, 0, 1]
        clock.advance(29.999)
        with pytest.raises(FailedPrecondition):
            await counter.reserve("i3", "u", "c", cap)
        clock.advance(0.001)  # i1 is 60 s old: out of the window
        assert counter.counts("u", [("c", cap)]) == [1]
        assert await counter.reserve("i3", "u", "c", cap) == 2
        assert await counter.reserve("i4", "v", "c", cap) == 1  # another user
        assert await counter.reserve("i5", "u", "d", cap) == 1  # another campaign
        # idempotent by impression ID, even once capped
        assert await counter.reserve("i3", "u", "c", cap) == 2
        with pytest.raises(FailedPrecondition, match="^key_reused: "):
            await counter.reserve("i3", "u", "d", cap)
    finally:
        await counter.close()


async def test_release_and_the_rebuild_at_start(tmp_path):
    clock = Clock()
    counter = await _counter(tmp_path, clock)
    cap = Cap(2, DAY_S)
    await counter.reserve("i1", "u", "c", cap)
    await counter.reserve("i2", "u", "c", cap)
    assert await counter.release("i2") is True
    assert await counter.release("i2") is False and await counter.release("nope") is False
    assert counter.counts("u", [("c", cap)]) == [1]
    assert await counter.reserve("i2", "u", "c", cap) == 2  # a released ID may be reserved again
    clock.advance(10)
    await counter.reserve("i3", "u", "d", cap)
    await counter.close()

    clock.advance(DAY_S - 5)  # i1 and i2 are out of their day's window, not of the longest window
    again = await _counter(tmp_path, clock)
    try:
        assert again.reservations == 3 and again.users == 1
        assert again.counts("u", [("c", cap), ("d", cap)]) == [0, 1]
        assert await again.reserve("i3", "u", "d", cap) == 1  # the first answer, from the file
        assert again.reservations == 1  # c's old impressions pruned on touch
    finally:
        await again.close()


async def test_concurrent_reserves_never_exceed_the_cap(tmp_path):
    clock = Clock()
    counter = await _counter(tmp_path, clock)
    cap = Cap(3, 3600)
    try:
        outcomes = await asyncio.gather(*(counter.reserve(f"i{n}", "u", "c", cap) for n in range(50)),
                                        return_exceptions=True)
        assert sorted(o for o in outcomes if isinstance(o, int)) == [1, 2, 3]
        assert all(isinstance(o, FailedPrecondition) for o in outcomes if not isinstance(o, int))
        # duplicates of one ID in flight together: one reservation, one answer
        counts = await asyncio.gather(*(counter.reserve("same", "u", "d", cap) for _ in range(10)))
        assert counts == [1] * 10 and counter.counts("u", [("d", cap)]) == [1]
    finally:
        await counter.close()


async def test_a_failed_write_reserves_nothing(tmp_path):
    clock = Clock()
    store = FrequencyStore(tmp_path / FILE_NAME)
    counter = FrequencyCounter(store, 30 * DAY_S, clock)
    await counter.start()
    cap = Cap(1, 3600)

    async def failing(row):
        raise Unavailable("disk full")

    real_insert = store.insert
    store.insert = failing
    try:
        first = asyncio.create_task(counter.reserve("i1", "u", "c", cap))
        await asyncio.sleep(0)
        assert counter.counts("u", [("c", cap)]) == [1]  # counted while the write is in flight
        with pytest.raises(Unavailable):
            await first
        assert counter.counts("u", [("c", cap)]) == [0] and counter.reservations == 0 and counter.users == 0
        store.insert = real_insert
        assert await counter.reserve("i1", "u", "c", cap) == 1
    finally:
        await counter.close()


async def test_memory_is_bounded_by_the_windows(tmp_path):
    clock = Clock()
    counter = await _counter(tmp_path, clock, max_window_s=DAY_S)
    try:
        for n in range(20):
            await counter.reserve(f"a{n}", f"user{n}", "c", Cap(5, 60))
        await counter.reserve("old", "someone", "d", Cap(5, DAY_S))
        assert counter.users == 21 and counter.reservations == 21
        clock.advance(61)
        assert await counter.sweep() == 0  # nothing older than a day in the file yet
        assert counter.users == 1 and counter.reservations == 1  # the 60 s windows are over
        clock.advance(DAY_S)
        assert await counter.sweep() == 21  # rows older than max_window_s leave the file
        assert counter.users == 0 and counter.reservations == 0
    finally:
        await counter.close()
    again = await _counter(tmp_path, clock, max_window_s=DAY_S)
    try:
        assert again.reservations == 0
    finally:
        await again.close()
