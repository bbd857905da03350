"""The view buffer: per-video counts, batched flushes, no event lost, overflow counted."""

import asyncio
from collections import Counter

import pytest

from casemesh.services.video.playback.view_buffer import RejectedBatch, ViewBuffer


class Catalog:
    """Records RecordViews batches; fails the first ``failures`` sends; ``gate`` holds sends in flight."""

    def __init__(self, failures=0):
        self.batches = []
        self.failures = failures
        self.calls = 0
        self.gate = None

    async def __call__(self, counts):
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(0)
        if self.failures:
            self.failures -= 1
            raise ConnectionError("catalogue unavailable")
        assert all(n >= 1 for n in counts.values())
        self.batches.append(dict(counts))

    @property
    def totals(self):
        total = Counter()
        for batch in self.batches:
            total.update(batch)
        return dict(total)


async def until(predicate, timeout_s=3.0):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_views_are_aggregated_per_video_and_flushed_on_the_interval():
    catalog = Catalog()
    events = []
    buf = ViewBuffer(catalog, flush_interval_s=0.05, on_event=lambda stage, n: events.append((stage, n)))
    await buf.start()
    for video in ["a", "b", "a", "a", "c"]:
        assert buf.add(video)
    assert (buf.pending, buf.videos) == (5, 3)
    await until(lambda: buf.flushed == 5)
    assert catalog.batches == [{"a": 3, "b": 1, "c": 1}]  # one RecordViews call for the interval
    assert buf.pending == 0
    await buf.stop()
    assert events.count(("buffered", 1)) == 5 and ("flushed", 5) in events


async def test_a_flush_is_split_into_batches_of_at_most_batch_max_videos():
    catalog = Catalog()
    buf = ViewBuffer(catalog, batch_max=3, flush_interval_s=60)
    for i in range(7):
        buf.add(f"v{i}")
        buf.add(f"v{i}")
    assert await buf.flush()
    assert [len(b) for b in catalog.batches] == [3, 3, 1]
    assert catalog.totals == {f"v{i}": 2 for i in range(7)}
    assert (buf.flushed, buf.pending) == (14, 0)


async def test_batch_max_distinct_videos_trigger_an_early_flush():
    catalog = Catalog()
    buf = ViewBuffer(catalog, batch_max=4, flush_interval_s=60)
    await buf.start()
    for i in range(4):
        buf.add(f"v{i}")
    await until(lambda: buf.flushed == 4)  # long before the 60 s tick
    await buf.stop()


async def test_no_view_is_lost_when_sends_fail_and_views_keep_arriving():
    catalog = Catalog(failures=2)
    buf = ViewBuffer(catalog, batch_max=2, flush_interval_s=0.02)
    await buf.start()
    sent = Counter()
    for i in range(200):
        video = f"v{i % 7}"
        assert buf.add(video)
        sent[video] += 1
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    await buf.stop()
    assert buf.send_failures == 2
    assert catalog.totals == dict(sent)
    assert (buf.buffered, buf.flushed, buf.pending, buf.dropped) == (200, 200, 0, 0)


async def test_views_arriving_during_a_send_are_kept_for_the_next_flush():
    catalog = Catalog()
    catalog.gate = asyncio.Event()
    buf = ViewBuffer(catalog, flush_interval_s=60)
    buf.add("a")
    flushing = asyncio.create_task(buf.flush())
    await asyncio.sleep(0.01)
    assert (buf.pending, buf.videos) == (1, 1)  # in flight
    buf.add("a")
    buf.add("b")
    assert (buf.pending, buf.videos) == (3, 2)  # "a" in flight and queued again: still one video
    catalog.gate.set()
    assert await flushing
    assert catalog.batches == [{"a": 1}]
    assert await buf.flush()
    assert catalog.batches == [{"a": 1}, {"a": 1, "b": 1}]


async def test_overflow_drops_new_videos_only_and_is_counted():
    catalog = Catalog()
    events = []
    buf = ViewBuffer(catalog, max_videos=2, batch_max=2, flush_interval_s=60, on_event=lambda s, n: events.append(s))
    assert buf.add("a") and buf.add("b")
    assert not buf.add("c")  # a third distinct video does not fit
    assert buf.add("a")  # a video already held always counts
    assert (buf.dropped, buf.pending, buf.videos) == (1, 3, 2)
    assert events.count("dropped") == 1
    assert await buf.flush()
    assert catalog.totals == {"a": 2, "b": 1}
    assert buf.add("c")  # room again after the flush


async def test_in_flight_videos_count_toward_the_bound_and_a_failed_send_requeues_within_it():
    catalog = Catalog(failures=1)
    catalog.gate = asyncio.Event()
    buf = ViewBuffer(catalog, max_videos=2, batch_max=2, flush_interval_s=60)
    buf.add("a")
    buf.add("b")
    flushing = asyncio.create_task(buf.flush())
    await asyncio.sleep(0.01)
    assert not buf.add("c")  # a and b are in flight: full
    assert buf.add("a")
    catalog.gate.set()
    assert not await flushing  # the send failed: a and b are back
    assert (buf.pending, buf.videos) == (3, 2)
    assert await buf.flush()
    assert catalog.totals == {"a": 2, "b": 1}


async def test_a_rejected_batch_is_not_retried_and_is_counted():
    calls = []

    async def refuse(counts):
        calls.append(counts)
        raise RejectedBatch("views: entry 0 has an empty video_id")

    buf = ViewBuffer(refuse, flush_interval_s=60)
    buf.add("a")
    assert await buf.flush()
    assert (buf.rejected, buf.pending, len(calls)) == (1, 0, 1)
    assert await buf.flush() and len(calls) == 1  # nothing left to send


async def test_stop_flushes_everything_and_reports_what_could_not_be_sent():
    catalog = Catalog()
    buf = ViewBuffer(catalog, flush_interval_s=60)
    await buf.start()
    for _ in range(3):
        buf.add("x")
    assert await buf.stop() == 0
    assert catalog.totals == {"x": 3}

    down = Catalog(failures=10)
    buf = ViewBuffer(down, flush_interval_s=60)
    buf.add("y")
    assert await buf.stop() == 1  # never started: stop() just flushes, which fails
    assert buf.pending == 1


async def test_cancelled_send_keeps_the_counts():
    catalog = Catalog()
    catalog.gate = asyncio.Event()
    buf = ViewBuffer(catalog, flush_interval_s=60)
    buf.add("a")
    flushing = asyncio.create_task(buf.flush())
    await asyncio.sleep(0.01)
    flushing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await flushing
    assert (buf.pending, buf.videos) == (1, 1)
    catalog.gate.set()
    assert await buf.flush() and catalog.totals == {"a": 1}


def test_invalid_parameters():
    async def send(counts):
        pass

    for kwargs in ({"batch_max": 0}, {"max_videos": 0}, {"flush_interval_s": 0}):
        with pytest.raises(ValueError):
            ViewBuffer(send, **kwargs)
