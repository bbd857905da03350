"""live-ingest's packager without gRPC: part sizes within the part target, segments cut at keyframes, the parts-off
arm, the first-keyframe rule, and resuming from the origin's state (hypothesis: cutting a chunk stream at any point
and resuming from what the origin has gives the parts of an uninterrupted run)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from casemesh.services.live.ingest.packager import Chunk, PackagedPart, Packager
from casemesh.services.live.origin.store import PartRecord, StreamStore
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument

FRAME_US = 33_333  # 30 frames/s


def frames(count: int, *, gop: int = 60, start: int = 0, duration_us: int = FRAME_US) -> list[Chunk]:
    """``count`` chunks from ``start``, a keyframe every ``gop`` chunks (sequence 0 is one)."""
    return [Chunk(s, duration_us, s % gop == 0, bytes([s % 251]) * 3) for s in range(start, start + count)]


def package(packager: Packager, chunks: list[Chunk]) -> list[PackagedPart]:
    out: list[PackagedPart] = []
    for chunk in chunks:
        out.extend(packager.feed(chunk))
    return out


def check_stream(parts: list[PackagedPart]) -> None:
    """Parts are contiguous in chunks and refs; part 0 of every segment is independent."""
    expected_sequence, expected_ref = 0, (0, 0)
    for part in parts:
        assert part.ref == expected_ref
        assert part.first_chunk_sequence == expected_sequence
        if part.part_index == 0:
            assert part.independent
        expected_sequence += part.chunk_count
        expected_ref = (part.media_sequence + 1, 0) if part.ends_segment else (part.media_sequence, part.part_index + 1)


def test_parts_of_six_frames_and_segments_of_ten_parts():
    packager = Packager(200_000, 2_000_000)
    parts = package(packager, frames(600))
    check_stream(parts)
    # 600 frames = 10 segments of 60 frames; the 10th segment's last part waits for the next keyframe.
    complete = [p for p in parts if p.media_sequence < 9]
    assert all(p.chunk_count == 6 and p.duration_us == 6 * FRAME_US for p in complete)
    assert all(p.duration_us <= 200_000 for p in parts)
    by_segment: dict[int, list[PackagedPart]] = {}
    for part in parts:
        by_segment.setdefault(part.media_sequence, []).append(part)
    for msn in range(9):
        segment = by_segment[msn]
        assert [p.part_index for p in segment] == list(range(10))
        assert segment[-1].ends_segment and not any(p.ends_segment for p in segment[:-1])
        assert sum(p.chunk_count for p in segment) == 60
        assert segment[0].first_chunk_sequence % 60 == 0 and segment[0].independent
        assert not any(p.independent for p in segment[1:])
    assert len(by_segment[9]) == 9  # the held 10th part needs chunk 600 to know whether a keyframe follows
    assert packager.buffered_chunks == 6
    assert packager.committed_chunk_sequence == 594
    [last] = packager.end()
    assert last.ref == (9, 9) and last.ends_segment and last.chunk_count == 6
    assert packager.end() == []


def test_a_held_part_goes_out_when_the_next_chunk_is_not_a_keyframe():
    packager = Packager(200_000, 2_000_000)
    parts = package(packager, frames(61, gop=90))  # the keyframe comes only at 90
    assert [p.ref for p in parts][-1] == (0, 9) and not parts[-1].ends_segment
    parts += package(packager, frames(29, gop=90, start=61))
    parts += package(packager, frames(1, gop=90, start=90))  # keyframe at 3 s: the segment closes here
    check_stream(parts)
    assert parts[-1].ends_segment and parts[-1].media_sequence == 0
    assert sum(p.chunk_count for p in parts) == 90
    assert packager.next_part == (1, 0)


def test_a_keyframe_before_ninety_percent_does_not_cut():
    packager = Packager(200_000, 2_000_000)
    chunks = frames(200, gop=30)  # keyframes every second: segments are cut at 2 s (60 frames)
    parts = package(packager, chunks)
    check_stream(parts)
    segments = {p.media_sequence for p in parts if p.ends_segment}
    assert segments == {0, 1, 2}  # keyframes at 60, 120 and 180 cut; those at 30, 90 and 150 do not
    assert all(sum(p.chunk_count for p in parts if p.media_sequence == msn) == 60 for msn in segments)


def test_a_keyframe_mid_part_after_ninety_percent_cuts_a_short_part():
    packager = Packager(200_000, 2_000_000)
    chunks = [Chunk(s, FRAME_US, s in (0, 57), b"x") for s in range(60)]  # keyframe at 1.9 s
    parts = package(packager, chunks)
    check_stream(parts)
    ends = [p for p in parts if p.ends_segment]
    assert len(ends) == 1 and ends[0].first_chunk_sequence == 54 and ends[0].chunk_count == 3
    assert parts[-1].ref == (1, 0) or packager.next_part == (1, 0)


def test_variable_chunk_durations_never_pass_the_target_and_a_long_chunk_is_a_part_alone():
    packager = Packager(200_000, 2_000_000)
    chunks = [Chunk(0, 10_000, True, b"a"), Chunk(1, 150_000, False, b"b"), Chunk(2, 60_000, False, b"c"),
              Chunk(3, 450_000, False, b"d"), Chunk(4, 10_000, False, b"e")]
    parts = package(packager, chunks) + packager.end()
    check_stream(parts)
    assert [p.chunk_count for p in parts] == [2, 1, 1, 1]
    assert [p.duration_us for p in parts] == [160_000, 60_000, 450_000, 10_000]


def test_parts_off_is_one_part_per_segment():
    packager = Packager(2_000_000, 2_000_000)
    assert packager.parts_off
    parts = package(packager, frames(181))
    check_stream(parts)
    assert [p.ref for p in parts] == [(0, 0), (1, 0), (2, 0)]
    assert all(p.chunk_count == 60 and p.ends_segment and p.independent for p in parts)
    assert Packager(5_000_000, 2_000_000).parts_off


def test_the_first_chunk_must_be_a_keyframe_and_sequences_must_follow():
    packager = Packager(200_000, 2_000_000)
    with pytest.raises(FailedPrecondition):
        packager.feed(Chunk(0, FRAME_US, False, b"x"))
    with pytest.raises(InvalidArgument) as error:
        packager.feed(Chunk(1, FRAME_US, True, b"x"))
    assert error.value.field == "chunk.sequence"
    packager.feed(Chunk(0, FRAME_US, True, b"x"))
    with pytest.raises(InvalidArgument):
        packager.feed(Chunk(0, FRAME_US, True, b"x"))
    assert packager.next_chunk_sequence == 1
    # Resumed mid-stream, a non-keyframe chunk is fine.
    resumed = Packager(200_000, 2_000_000, next_chunk_sequence=6, next_part=(0, 1), open_segment_duration_us=199_998)
    assert resumed.feed(Chunk(6, FRAME_US, False, b"x")) == []


def _origin_state(parts: list[PackagedPart], part_target_ms: int, segment_target_ms: int) -> SimpleNamespace:
    """What the origin says after ``parts`` (a StreamInfo look-alike)."""
    next_ref, next_sequence, open_us = (0, 0), 0, 0
    for part in parts:
        next_sequence = part.first_chunk_sequence + part.chunk_count
        if part.ends_segment:
            next_ref, open_us = (part.media_sequence + 1, 0), 0
        else:
            next_ref, open_us = (part.media_sequence, part.part_index + 1), open_us + part.duration_us
    return SimpleNamespace(part_target_ms=part_target_ms, segment_target_ms=segment_target_ms,
                           next_chunk_sequence=next_sequence, open_segment_duration_us=open_us,
                           next_part=SimpleNamespace(media_sequence=next_ref[0], part_index=next_ref[1]))


chunk_streams = st.lists(
    st.tuples(st.sampled_from([16_683, 33_333, 33_334, 40_000, 120_000]), st.integers(0, 99)),
    min_size=1, max_size=240,
).map(lambda spec: [Chunk(i, d, i == 0 or k < 3, bytes([i % 256])) for i, (d, k) in enumerate(spec)])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=chunk_streams, cuts=st.lists(st.integers(0, 240), max_size=3),
       targets=st.sampled_from([(200, 2000), (100, 1000), (500, 2000), (2000, 2000), (1000, 4000)]))
def test_resuming_from_the_origin_state_gives_the_uninterrupted_parts(chunks, cuts, targets):
    part_ms, segment_ms = targets
    whole = Packager(part_ms * 1000, segment_ms * 1000)
    expected = package(whole, chunks) + whole.end()
    check_stream(expected)
    assert all(p.duration_us <= part_ms * 1000 or p.chunk_count == 1 for p in expected if not whole.parts_off)
    # Connections drop after chunk `cut` (their buffered chunks are lost) and resume from the origin's state.
    published: list[PackagedPart] = []
    packager = Packager(part_ms * 1000, segment_ms * 1000)
    position = 0
    for cut in sorted(c for c in cuts if c <= len(chunks)):
        while position < cut:
            published += packager.feed(chunks[position])
            position += 1
        packager = Packager.resume(_origin_state(published, part_ms, segment_ms))
        position = packager.next_chunk_sequence  # the broadcaster resends from there
    while position < len(chunks):
        published += packager.feed(chunks[position])
        position += 1
    published += packager.end()
    assert published == expected


async def test_resume_from_a_real_origin_store_continues_the_stream():
    store = StreamStore(dvr_window_s=60)
    store.register("s1", "b", "", 200, 2000)
    chunks = frames(300)
    packager = Packager.resume(store.describe("s1"))
    for chunk in chunks[:137]:
        for part in packager.feed(chunk):
            store.append(PartRecord("s1", *part.ref, part.duration_us, part.independent, part.first_chunk_sequence,
                                    part.chunk_count, part.data, part.ends_segment))
    view = store.describe("s1")
    assert view.next_chunk_sequence == 132  # chunks 132..136 were buffered and are lost with the connection
    packager = Packager.resume(view)
    for chunk in chunks[view.next_chunk_sequence:]:
        for part in packager.feed(chunk):
            store.append(PartRecord("s1", *part.ref, part.duration_us, part.independent, part.first_chunk_sequence,
                                    part.chunk_count, part.data, part.ends_segment))
    whole = Packager(200_000, 2_000_000)
    expected = package(whole, chunks)
    assert store.describe("s1").last_part == expected[-1].ref
    assert store.describe("s1").next_chunk_sequence == expected[-1].first_chunk_sequence + expected[-1].chunk_count
