"""View counts (seed 004, "View Count"): batches aggregated, applied by snapshots; none lost, staleness bounded."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from casemesh.services.video.catalog.videos import VideoStore
from casemesh.services.video.catalog.views import ViewCounter
from casemesh.services.video.ladder import LADDER, rendition_info


class Clock:
    def __init__(self, now: float = 100.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def snapshotted_metric() -> float:
    return REGISTRY.get_sample_value("casemesh_video_view_events_total", {"stage": "snapshotted"}) or 0.0


async def published_video(store: VideoStore) -> str:
    video = await store.create("chan", "title", "", [], 4.0)
    await store.mark_processing(video.video_id)
    await store.publish(video.video_id, 1, [rendition_info(LADDER[0], 4.0)])
    return video.video_id


async def views_of(store: VideoStore, video_id: str) -> int:
    return (await store.get(video_id)).view_count


async def test_batches_are_invisible_until_the_snapshot_applies_them_all_at_once():
    store = VideoStore()
    a, b = await published_video(store), await published_video(store)
    counter = ViewCounter(store, interval_s=30)
    before = snapshotted_metric()
    assert await counter.record([(a, 3), (b, 1)]) == (4, 0)
    assert await counter.record([(a, 2)]) == (2, 0)
    assert counter.pending == 6
    assert (await views_of(store, a), await views_of(store, b)) == (0, 0)
    assert await counter.snapshot() == 6
    assert (await views_of(store, a), await views_of(store, b)) == (5, 1)
    assert counter.pending == 0 and counter.snapshotted == 6
    assert snapshotted_metric() - before == 6
    assert await counter.snapshot() == 0  # nothing pending: no write


async def test_unknown_videos_are_dropped_and_counted():
    store = VideoStore()
    a = await published_video(store)
    counter = ViewCounter(store)
    dropped_before = REGISTRY.get_sample_value("casemesh_video_view_events_total", {"stage": "dropped"}) or 0.0
    assert await counter.record([(a, 2), ("ghost", 7)]) == (2, 7)
    assert counter.dropped == 7
    assert REGISTRY.get_sample_value("casemesh_video_view_events_total", {"stage": "dropped"}) - dropped_before == 7
    await counter.snapshot()
    assert await views_of(store, a) == 2


async def test_staleness_is_bounded_by_the_snapshot_interval_on_a_stepped_clock():
    store = VideoStore()
    a = await published_video(store)
    clock = Clock(100.0)
    counter = ViewCounter(store, interval_s=30, clock=clock)  # first snapshot due at 130
    clock.now = 101.0
    await counter.record([(a, 1)])
    clock.now = 129.9
    assert not await counter.tick()
    assert await views_of(store, a) == 0
    clock.now = 130.0
    assert await counter.tick()
    assert await views_of(store, a) == 1  # 29 s after it arrived: within the 30 s bound
    # The next one is due one interval after that snapshot.
    await counter.record([(a, 4)])
    clock.now = 159.0
    assert not await counter.tick()
    clock.now = 160.0
    assert await counter.tick()
    assert await views_of(store, a) == 5


async def test_no_view_is_lost_when_a_snapshot_fails_or_views_arrive_during_it():
    store = VideoStore()
    a = await published_video(store)
    counter = ViewCounter(store)
    await counter.record([(a, 10)])
    real_add = store.add_views

    async def failing(batch):
        raise RuntimeError("store unavailable")

    store.add_views = failing
    with pytest.raises(RuntimeError):
        await counter.snapshot()
    assert counter.pending == 10  # merged back

    gate = asyncio.Event()

    async def slow(batch):
        await gate.wait()
        return await real_add(batch)

    store.add_views = slow
    snapshot = asyncio.create_task(counter.snapshot())
    await asyncio.sleep(0)
    await counter.record([(a, 5)])  # arrives while the snapshot waits for the store
    gate.set()
    assert await snapshot == 10
    store.add_views = real_add
    assert counter.pending == 5
    assert await counter.snapshot() == 5
    assert await views_of(store, a) == 15


async def test_a_cancelled_snapshot_keeps_its_views():
    store = VideoStore()
    a = await published_video(store)
    counter = ViewCounter(store)
    await counter.record([(a, 3)])
    async with store.lock.writer:  # the snapshot cannot get the writer lock
        task = asyncio.create_task(counter.snapshot())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert counter.pending == 3
    await counter.snapshot()
    assert await views_of(store, a) == 3


async def test_the_loop_snapshots_periodically():
    store = VideoStore()
    a = await published_video(store)
    counter = ViewCounter(store, interval_s=0.05)
    await counter.start()
    try:
        await counter.record([(a, 2)])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0  # generous for a loaded machine; typically 50 ms
        while await views_of(store, a) < 2:
            assert loop.time() < deadline, "snapshot loop did not apply the views"
            await asyncio.sleep(0.01)
    finally:
        await counter.stop()


async def test_stop_applies_what_is_pending_in_a_final_snapshot():
    store = VideoStore()
    a = await published_video(store)
    counter = ViewCounter(store, interval_s=3600)
    await counter.start()
    await counter.record([(a, 7)])
    assert await counter.stop() == 7
    assert await views_of(store, a) == 7


def test_interval_must_be_positive():
    with pytest.raises(ValueError):
        ViewCounter(VideoStore(), interval_s=0)
