"""live-origin's domain without gRPC: append order and duplicates, the DVR window, blocking waits (woken, timed out,
ended, too far ahead), the cached playlist, segments, and part watchers (order, no gap, no duplicate, overflow, end,
shutdown), including watchers that join while parts are being appended."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from casemesh.services.live.contract import parse_playlist
from casemesh.services.live.ingest.packager import Chunk, Packager
from casemesh.services.live.origin.store import (
    OVERFLOW,
    SHUTDOWN,
    PartRecord,
    PartTimeout,
    StoreClosed,
    StoreObserver,
    StreamState,
    StreamStore,
    WatchEnded,
)
from casemesh.services.runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted

FRAME_US = 33_333
WAIT_S = 10.0  # generous: only a hang would reach it


class Counting(StoreObserver):
    def __init__(self) -> None:
        self.blocked_now = {"playlist": 0, "part": 0}
        self.renders = {True: 0, False: 0}
        self.dvr = 0
        self.dropped = 0

    def blocked(self, kind, delta):
        self.blocked_now[kind] += delta

    def playlist(self, cache_hit):
        self.renders[cache_hit] += 1

    def dvr_bytes(self, delta):
        self.dvr += delta

    def watcher_dropped(self):
        self.dropped += 1


class Broadcaster:
    """Packages 30 frames/s with a keyframe every 60 frames into a store's stream."""

    def __init__(self, store: StreamStore, stream_id: str, part_ms: int = 200, segment_ms: int = 2000) -> None:
        self.store = store
        self.stream_id = stream_id
        store.register(stream_id, "broadcaster", "title", part_ms, segment_ms)
        self.packager = Packager(part_ms * 1000, segment_ms * 1000)
        self.sequence = 0
        self.parts: list[PartRecord] = []

    def record(self, part) -> PartRecord:
        return PartRecord(self.stream_id, part.media_sequence, part.part_index, part.duration_us, part.independent,
                          part.first_chunk_sequence, part.chunk_count, part.data, part.ends_segment)

    def chunks(self, count: int) -> list[PartRecord]:
        """Feed ``count`` frames; append and return the parts they close."""
        out = []
        for _ in range(count):
            chunk = Chunk(self.sequence, FRAME_US, self.sequence % 60 == 0, self.sequence.to_bytes(4, "big"))
            self.sequence += 1
            for part in self.packager.feed(chunk):
                self.store.append(self.record(part))
                out.append(self.store.part(self.stream_id, part.ref))  # as stored: number, published_unix_ms
        self.parts += out
        return out

    def next_part(self) -> list[PartRecord]:
        """Feed frames until at least one part is appended."""
        while True:
            appended = self.chunks(1)
            if appended:
                return appended


def test_register_describe_and_errors():
    store = StreamStore()
    view = store.register("s", "b", "t", 200, 2000)
    assert view.state is StreamState.WAITING and view.last_part is None and view.next_part == (0, 0)
    with pytest.raises(AlreadyExists):
        store.register("s", "b", "t", 200, 2000)
    with pytest.raises(NotFound):
        store.describe("nope")
    with pytest.raises(FailedPrecondition):
        store.playlist("s")  # WAITING


def test_append_order_duplicates_and_state():
    store = StreamStore()
    b = Broadcaster(store, "s")
    [first] = b.next_part()
    view = store.describe("s")
    assert view.state is StreamState.LIVE and view.last_part == (0, 0) and view.next_part == (0, 1)
    assert view.next_chunk_sequence == 6 and view.open_segment_duration_us == 6 * FRAME_US
    assert first.published_unix_ms > 0
    # An identical retry of the last part: OK, duplicate, nothing changes.
    result = store.append(dataclasses.replace(first, published_unix_ms=0, number=0))
    assert result.duplicate and result.next_chunk_sequence == 6
    assert store.describe("s") == view
    # Out of order: a skipped index, a repeated older part, a wrong first chunk.
    with pytest.raises(FailedPrecondition, match="part 1 of segment 0"):
        store.append(dataclasses.replace(first, part_index=2, first_chunk_sequence=6))
    with pytest.raises(FailedPrecondition, match="chunk 6"):
        store.append(dataclasses.replace(first, part_index=1, first_chunk_sequence=7, independent=False))
    with pytest.raises(FailedPrecondition):  # part 0 of the next segment without ends_segment before it
        store.append(dataclasses.replace(first, media_sequence=1, part_index=0, first_chunk_sequence=6))
    with pytest.raises(NotFound):
        store.append(dataclasses.replace(first, stream_id="other"))
    b.chunks(60)
    assert store.describe("s").next_part == (1, 1)
    ended = store.end("s")
    assert ended.state is StreamState.ENDED and ended.open_segment_duration_us == 0
    with pytest.raises(FailedPrecondition, match="ended"):
        store.append(dataclasses.replace(b.parts[-1], part_index=1, first_chunk_sequence=ended.next_chunk_sequence))
    assert store.end("s").state is StreamState.ENDED  # idempotent


def test_part_zero_must_be_independent():
    store = StreamStore()
    store.register("s", "b", "", 200, 2000)
    part = PartRecord("s", 0, 0, 200_000, False, 0, 6, b"x" * 6, False)
    with pytest.raises(InvalidArgument) as error:
        store.append(part)
    assert error.value.field == "part.ref"


def test_dvr_window_trims_whole_old_segments_by_media_time():
    observer = Counting()
    store = StreamStore(dvr_window_s=5, observer=observer)
    b = Broadcaster(store, "s")
    b.chunks(30 * 20 + 1)  # 20 s of media, segments of 2 s
    view = store.describe("s")
    # The window is 5 s: segments ending before 20 - 5 = 15 s are gone (0..6 end at <= 14 s); 7 ends at 16 s.
    assert view.first_media_sequence == 7
    assert store.part("s", (7, 0)) is not None
    with pytest.raises(NotFound, match="DVR window"):
        store.part("s", (6, 9))
    with pytest.raises(NotFound):
        store.segment("s", 6)
    segment = store.segment("s", 8)
    assert segment.chunk_count == 60 and segment.first_chunk_sequence == 480 and segment.duration_us == 60 * FRAME_US
    assert segment.data == b"".join(s.to_bytes(4, "big") for s in range(480, 540))
    with pytest.raises(NotFound):  # the open segment is not complete
        store.segment("s", view.next_part[0])
    retained = sum(len(p.data) for p in b.parts if p.media_sequence >= 7)
    assert observer.dvr == retained


def test_dvr_keeps_the_last_complete_segment_and_the_open_one():
    store = StreamStore(dvr_window_s=1)
    b = Broadcaster(store, "s")
    b.chunks(30 * 10 + 7)
    view = store.describe("s")
    assert view.first_media_sequence == view.next_part[0] - 1  # the last complete segment, and the open one
    playlist = parse_playlist(store.playlist("s").text)
    assert [s.media_sequence for s in playlist.segments] == [view.first_media_sequence]


def test_refs_too_far_ahead_or_impossible_are_invalid():
    store = StreamStore()
    b = Broadcaster(store, "s")
    b.chunks(61)  # segment 0 complete, part (1, 0) held by the packager... next is (1, 0)
    last_msn = store.describe("s").last_part[0]
    with pytest.raises(InvalidArgument) as error:
        store.part("s", (last_msn + 3, 0), field="block")
    assert error.value.field == "block"
    assert store.part("s", (last_msn + 2, 0)) is None  # two segments ahead: allowed, waits
    with pytest.raises(InvalidArgument):
        store.part("s", (last_msn + 1, 23))  # 2000/200*2+2 = 22 is the highest possible index
    with pytest.raises(InvalidArgument):
        store.part("s", (-1, 0))
    with pytest.raises(NotFound):
        store.part("s", (0, 10))  # segment 0 is complete with 10 parts


async def test_a_blocked_wait_is_woken_by_the_part():
    observer = Counting()
    store = StreamStore(observer=observer)
    b = Broadcaster(store, "s")
    b.next_part()
    wanted = store.describe("s").next_part
    waiters = [asyncio.create_task(store.wait_for("s", wanted, kind="part")) for _ in range(50)]
    reload = asyncio.create_task(store.fetch_playlist("s", block=wanted))
    await asyncio.sleep(0)
    assert observer.blocked_now == {"playlist": 1, "part": 50}
    [published] = b.next_part()
    results = await asyncio.wait_for(asyncio.gather(*waiters), WAIT_S)
    assert all(r is published for r in results)
    rendered = await asyncio.wait_for(reload, WAIT_S)
    assert rendered.last_part == wanted
    assert observer.blocked_now == {"playlist": 0, "part": 0}
    # A published part is answered without waiting.
    assert (await store.wait_for("s", (0, 0))).ref == (0, 0)


async def test_a_wait_for_a_later_part_sleeps_through_earlier_ones():
    store = StreamStore()
    b = Broadcaster(store, "s")
    b.next_part()
    waiter = asyncio.create_task(store.wait_for("s", (1, 2)))
    for _ in range(10):
        b.next_part()
        await asyncio.sleep(0)
    assert not waiter.done()
    while store.describe("s").last_part != (1, 2):
        b.next_part()
    assert (await asyncio.wait_for(waiter, WAIT_S)).ref == (1, 2)


async def test_a_blocked_wait_times_out_when_the_stream_stalls():
    store = StreamStore()
    Broadcaster(store, "s", part_ms=50, segment_ms=500).next_part()
    wanted = store.describe("s").next_part
    assert store.block_limit_s("s", wanted) == pytest.approx((1 + 3) * 0.05)
    with pytest.raises(PartTimeout):
        await asyncio.wait_for(store.wait_for("s", wanted), WAIT_S)
    with pytest.raises(PartTimeout):  # the caller's own deadline is shorter
        await store.wait_for("s", wanted, timeout_s=0.0)
    # Further parts wait longer: (parts to wait for + 3) part targets.
    assert store.block_limit_s("s", (wanted[0], wanted[1] + 4)) == pytest.approx((5 + 3) * 0.05)


async def test_end_wakes_waiters_with_not_found_and_the_last_parts_stay_readable():
    store = StreamStore()
    b = Broadcaster(store, "s")
    b.next_part()
    wanted = store.describe("s").next_part
    waiters = [asyncio.create_task(store.wait_for("s", wanted)) for _ in range(5)]
    await asyncio.sleep(0)
    store.end("s")
    for waiter in waiters:
        with pytest.raises(NotFound, match="ended"):
            await asyncio.wait_for(waiter, WAIT_S)
    assert (await store.wait_for("s", (0, 0))).ref == (0, 0)
    rendered = store.playlist("s")
    assert rendered.state is StreamState.ENDED
    playlist = parse_playlist(rendered.text)
    assert playlist.ended and playlist.preload_hint is None
    assert [s.media_sequence for s in playlist.segments] == [0]  # EndStream completed the open segment


async def test_close_ends_waits_with_store_closed():
    store = StreamStore()
    Broadcaster(store, "s").next_part()
    waiter = asyncio.create_task(store.wait_for("s", store.describe("s").next_part))
    await asyncio.sleep(0)
    store.close()
    with pytest.raises(StoreClosed):
        await asyncio.wait_for(waiter, WAIT_S)
    with pytest.raises(StoreClosed):
        await store.wait_for("s", (0, 0))


def test_playlist_is_rendered_once_per_part():
    observer = Counting()
    store = StreamStore(observer=observer)
    b = Broadcaster(store, "s")
    b.chunks(30 * 5)
    first = store.playlist("s")
    for _ in range(10):
        assert store.playlist("s") is first
    assert observer.renders == {False: 1, True: 10}
    playlist = parse_playlist(first.text)
    view = store.describe("s")
    assert playlist.last_part == view.last_part == first.last_part
    assert playlist.preload_hint == view.next_part
    assert playlist.part_target_ms == 200 and not playlist.ended
    assert [s.media_sequence for s in playlist.segments] == [0, 1]
    b.next_part()
    assert store.playlist("s") is not first
    assert observer.renders[False] == 2


def _check_sequence(parts: list[PartRecord], start: PartRecord) -> None:
    """In order from ``start``, no gap, no duplicate (chunk sequences and part numbers both contiguous)."""
    expected_number, expected_chunk = start.number, start.first_chunk_sequence
    for part in parts:
        assert part.number == expected_number and part.first_chunk_sequence == expected_chunk
        expected_number += 1
        expected_chunk += part.chunk_count


async def _drain(watcher) -> list[PartRecord]:
    got = []
    while batch := await watcher.next():
        got.extend(batch)
    return got


async def test_watchers_joining_while_parts_are_appended_see_every_later_part_once():
    store = StreamStore()
    b = Broadcaster(store, "s")
    b.next_part()
    rng = random.Random(7)
    watchers, tasks = [], []
    for _ in range(40):
        start = None
        if rng.random() < 0.5:  # from a published part of the window, or the next one
            start = rng.choice([p.ref for p in b.parts] + [store.describe("s").next_part])
        watcher = store.watch("s", start)
        first_number = watcher.cursor
        watchers.append((watcher, first_number))
        tasks.append(asyncio.create_task(_drain(watcher)))
        for _ in range(rng.randint(0, 3)):
            b.next_part()
        await asyncio.sleep(0)
    b.chunks(100)
    store.end("s")
    results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    everything = {p.number: p for p in b.parts}
    for (watcher, first_number), got in zip(watchers, results, strict=True):
        assert got, "every watcher saw parts"
        _check_sequence(got, everything[first_number])
        assert got[-1] is b.parts[-1] if b.parts else True
        store.unwatch(watcher)


async def test_a_watcher_from_a_dvr_part_catches_up_beyond_the_lag_limit():
    store = StreamStore(dvr_window_s=60, watch_max_lag_parts=8)
    b = Broadcaster(store, "s")
    b.chunks(30 * 10)  # 50 parts in the window: the catch-up backlog is not lag
    watcher = store.watch("s", (0, 0))
    got = (await watcher.next(most=1000))
    assert [p.number for p in got] == list(range(len(b.parts)))


async def test_a_slow_watcher_is_dropped_with_overflow():
    observer = Counting()
    store = StreamStore(watch_max_lag_parts=8, observer=observer)
    b = Broadcaster(store, "s")
    b.next_part()
    slow = store.watch("s")
    fast = store.watch("s")
    for _ in range(8):
        b.next_part()
    assert len(await fast.next()) == 8
    assert slow.ended is None
    b.next_part()  # the 9th part not taken
    with pytest.raises(WatchEnded) as ended:
        await slow.next()
    assert ended.value.reason == OVERFLOW and observer.dropped == 1
    assert len(await fast.next()) == 1


async def test_watch_errors_and_shutdown():
    store = StreamStore(dvr_window_s=2)
    b = Broadcaster(store, "s")
    with pytest.raises(NotFound):
        store.watch("nope")
    b.chunks(30 * 10)
    with pytest.raises(NotFound):
        store.watch("s", (0, 0))  # out of the DVR window
    with pytest.raises(InvalidArgument) as error:
        nxt = store.describe("s").next_part
        store.watch("s", (nxt[0], nxt[1] + 1))
    assert error.value.field == "from"
    watcher = store.watch("s")
    task = asyncio.create_task(watcher.next())
    await asyncio.sleep(0)
    store.close()
    with pytest.raises(WatchEnded) as ended:
        await asyncio.wait_for(task, WAIT_S)
    assert ended.value.reason == SHUTDOWN


async def test_a_watcher_of_an_ended_stream_ends_after_the_last_part():
    store = StreamStore()
    b = Broadcaster(store, "s")
    b.chunks(100)
    store.end("s")
    watcher = store.watch("s", (0, 0))
    got = await _drain(watcher)
    assert got == b.parts
    assert await store.watch("s").next() == []


def test_max_streams_forgets_the_oldest_ended_stream():
    store = StreamStore(max_streams=2)
    store.register("a", "b", "", 200, 2000)
    store.register("b", "b", "", 200, 2000)
    with pytest.raises(ResourceExhausted):
        store.register("c", "b", "", 200, 2000)
    store.end("a")
    store.register("c", "b", "", 200, 2000)
    with pytest.raises(NotFound):
        store.describe("a")


async def test_the_open_segment_s_next_part_is_a_possible_request_however_far_apart_the_keyframes():
    """A broadcaster with a keyframe every 5 s at 200 ms parts: segment 0 grows past the usual part count (22), and
    its next part (the playlist's preload hint) is still a request the origin waits for, not an impossible index."""
    store = StreamStore()
    b = Broadcaster(store, "far")
    for sequence in range(149):  # frames 0..148: one keyframe, at 0; 24 parts of 6 frames close
        chunk = Chunk(sequence, FRAME_US, sequence == 0, sequence.to_bytes(4, "big"))
        for part in b.packager.feed(chunk):
            store.append(b.record(part))
    next_msn, next_index = store.describe("far").next_part
    assert next_msn == 0 and next_index > 22
    wanted = (0, next_index)
    waiting = asyncio.create_task(store.wait_for("far", wanted, kind="part"))
    await asyncio.sleep(0)
    assert not waiting.done()
    for sequence in range(149, 149 + 6):
        for part in b.packager.feed(Chunk(sequence, FRAME_US, False, sequence.to_bytes(4, "big"))):
            store.append(b.record(part))
    assert (await asyncio.wait_for(waiting, WAIT_S)).ref == wanted


def test_idle_streams_end_and_ended_ones_are_forgotten_a_dvr_window_later():
    """A broadcaster gone without `end` (or never come) does not keep its stream and its media for ever."""
    now = {"ms": 1_000_000}
    store = StreamStore(dvr_window_s=60, clock_ms=lambda: now["ms"])
    b = Broadcaster(store, "gone")
    b.chunks(30)  # some parts, then the broadcaster vanishes
    store.register("never", "caster", "", 200, 2000)  # a stream nobody ever published to
    watched = Broadcaster(store, "watched")
    watched.chunks(30)
    store.end("watched")
    watcher = store.watch("watched", (0, 0))
    now["ms"] += 89_000
    assert store.expire(90) == (0, 0)
    assert store.describe("gone").state is StreamState.LIVE
    now["ms"] += 1_000
    assert store.expire(90) == (2, 0)  # "gone" and "never" end; "watched" ended 90 s ago but is watched
    assert store.describe("gone").state is StreamState.ENDED and store.describe("never").state is StreamState.ENDED
    assert store.describe("watched").state is StreamState.ENDED
    store.unwatch(watcher)
    now["ms"] += 59_000
    assert store.expire(90) == (0, 1)  # "watched" unwatched now: forgotten; the others ended 59 s ago
    now["ms"] += 1_000
    assert store.expire(90) == (0, 2)
    assert len(store) == 0
    with pytest.raises(NotFound):
        store.describe("gone")
