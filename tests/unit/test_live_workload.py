"""The live workload's pure logic: the chunk schedule, the no-gap check, glass-to-glass matching, the LL-HLS player's
next part, chat tokens and moderation checks, the broadcaster's resend, and the profile's validation."""

from __future__ import annotations

import asyncio
import random
import textwrap
import time

import grpc
import pytest
from pydantic import ValidationError

from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import KNOWN_SERVICES, load_profile
from casemesh.harness.workloads import get_workload
from casemesh.harness.workloads.live.broadcaster import Broadcaster
from casemesh.harness.workloads.live.chat import RateLimitCheck, carries_banned, compose, parse_token, post_id_prefix
from casemesh.harness.workloads.live.media import HEADER_BYTES, ChunkPlan, GlassToGlass, chunk_headers, first_capture_ns
from casemesh.harness.workloads.live.player import DUPLICATE, GAP, OK, Continuity, listed_after, live_edge_start, next_ref
from casemesh.harness.workloads.live.seeding import LLHLS, STREAMING, SeedParams, StreamPlan, plan
from casemesh.harness.workloads.live.viewers import CONTINUITY, GLASS_TO_GLASS, Audience, Viewer
from casemesh.live.v1 import ingest_pb2, live_pb2
from casemesh.services.live.contract import (
    MAX_CHUNK_BYTES,
    PlaylistPart,
    PlaylistSegment,
    PlaylistState,
    parse_playlist,
    render_playlist,
)

LIVE_SERVICES = set(KNOWN_SERVICES) | {"live-ingest", "live-origin", "live-edge", "live-chat"}


# the chunk schedule ---------------------------------------------------------------------------------------------------

def test_chunks_are_frames_of_30_per_second_with_a_keyframe_every_2_s():
    chunks = ChunkPlan()
    assert chunks.gop == 60
    assert [s for s in range(200) if chunks.keyframe(s)] == [0, 60, 120, 180]
    assert {chunks.duration_us(s) for s in range(300)} == {33_333, 33_334}
    for second in range(5):  # no drift in media time: every 30 chunks are exactly one second
        assert sum(chunks.duration_us(s) for s in range(second * 30, second * 30 + 30)) == 1_000_000
    assert chunks.capture_offset_s(30_000) == 1000.0  # one schedule from chunk 0: no accumulated error
    assert chunks.capture_offset_s(1) == pytest.approx(1 / 30)


def test_chunk_sizes_follow_the_bitrate_with_bigger_keyframes():
    chunks = ChunkPlan(bitrate_kbps=500)
    gop_bytes = sum(chunks.size(s) for s in range(chunks.gop))
    assert gop_bytes == pytest.approx(500_000 / 8 * 2, rel=0.01)  # 2 s at 500 kbit/s
    assert chunks.keyframe_bytes == pytest.approx(4 * chunks.delta_bytes, abs=2)
    assert 1900 < chunks.delta_bytes < 2000
    data = chunks.data(61, 123_456_789)
    assert len(data) == chunks.size(61) and first_capture_ns(data, 61) == 123_456_789 and first_capture_ns(data, 60) is None


def test_a_part_s_bytes_are_walked_chunk_by_chunk():
    chunks = ChunkPlan()
    data = b"".join(chunks.data(s, 1000 + s) for s in range(58, 64))
    assert chunk_headers(data, 58, 6) == [1058, 1059, 1060, 1061, 1062, 1063]
    assert chunk_headers(data, 57, 6) is None  # not the chunks it says
    assert chunk_headers(data, 58, 5) is None  # bytes left over
    assert chunk_headers(data[:-1], 58, 6) is None
    assert chunk_headers(b"x" * HEADER_BYTES, 0, 1) is None


def test_seed_params_refuse_a_fractional_gop_an_oversized_keyframe_and_bad_words():
    with pytest.raises(ValidationError, match="whole number of chunks"):
        SeedParams(frame_rate=30, keyframe_interval_s=0.51)
    with pytest.raises(ValidationError, match=f"{MAX_CHUNK_BYTES:,}"):
        SeedParams(bitrate_kbps=100_000, keyframe_size_factor=100, keyframe_interval_s=10)
    with pytest.raises(ValidationError, match="header"):
        SeedParams(bitrate_kbps=1)
    with pytest.raises(ValidationError, match="lower-case"):
        SeedParams(banned_words=["Scam Coin"])
    with pytest.raises(ValidationError, match="chatters"):
        SeedParams(chatters=499)
    with pytest.raises(ValidationError, match="llhls_reload"):
        SeedParams(llhls_reload="never")


class FakeStreams:
    """What the live population needs of casemesh.harness.streams.Streams, recording what it observes."""

    share = (0, 1)

    def __init__(self) -> None:
        self.observed: list[tuple[str, float, str]] = []
        self.calls: list[tuple[str, str, object]] = []

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def wall_ns(self, at: float) -> int:
        return int(at * 1e9)

    def perf_at(self, wall_ns: int) -> float:
        return wall_ns / 1e9

    def codes(self, name: str) -> list[str]:
        return [code for measured, _, code in self.observed if measured == name]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _take(generator, n: int) -> list:
    frames = []
    async for frame in generator:
        frames.append(frame)
        if len(frames) == n:
            break
    return frames


def test_the_broadcaster_paces_off_one_schedule_and_resends_from_its_buffer(monkeypatch):
    clock = FakeClock()
    slept: list[float] = []

    async def sleep(delay: float) -> None:  # a fake clock: sleeping moves it
        slept.append(delay)
        clock.now += delay

    monkeypatch.setattr(asyncio, "sleep", sleep)
    streams = FakeStreams()
    ledger = GlassToGlass(1, capacity=64)
    broadcaster = Broadcaster(StreamPlan(0, "b", [], stream_id="s1", stream_key="k"), ChunkPlan(), ledger, streams,
                              buffer_chunks=10, clock=clock)
    broadcaster.t0 = clock.now

    async def scenario() -> None:
        frames = await _take(broadcaster.frames(), 1 + 20)
        assert frames[0].WhichOneof("frame") == "start" and frames[0].start.stream_key == "k"
        chunks = [f.chunk for f in frames[1:]]
        assert [c.sequence for c in chunks] == list(range(20))
        assert chunks[0].keyframe and not any(c.keyframe for c in chunks[1:])
        assert [c.duration_us for c in chunks[:3]] == [33_333, 33_333, 33_334]
        # Chunk n goes out at t0 + n/30 exactly, however late the previous sends were.
        assert clock.now == pytest.approx(broadcaster.t0 + 19 / 30)
        clock.now += 0.5  # a stall: the next chunks are due already and go out without sleeping
        before = len(slept)
        late = await _take(broadcaster.frames(), 1 + 5)
        assert [f.chunk.sequence for f in late[1:]] == [20, 21, 22, 23, 24] and len(slept) == before
        # The ingest had published up to chunk 17: resend 17.. from the buffer (same bytes), then go on.
        broadcaster.next_sequence = 17
        again = await _take(broadcaster.frames(), 1 + 10)
        assert [f.chunk.sequence for f in again[1:]] == list(range(17, 27))
        assert again[1].chunk.data == chunks[17].data and broadcaster.resent == 8 and broadcaster.resend_misses == 0
        # Older than the buffer (10 chunks): made again, counted as a miss, with the same bytes.
        broadcaster.next_sequence = 2
        old = await _take(broadcaster.frames(), 2)
        assert old[1].chunk.data == chunks[2].data and broadcaster.resend_misses == 1

    asyncio.run(scenario())
    # The ledger has the capture times, first one kept on resend.
    assert ledger.received(0, 0, 1, b"") == [int(broadcaster.t0 * 1e9)]


def test_a_broadcaster_reconnects_at_next_chunk_sequence_after_an_error(monkeypatch):
    async def sleep(delay: float) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", sleep)

    class IngestStreams(FakeStreams):
        def __init__(self, broadcaster_ref):
            super().__init__()
            self.publishes = 0
            self.ref = broadcaster_ref

        async def call(self, service, method, request, *, timeout_s=None):
            self.calls.append((service, method, request))
            if method == "GetStream":  # a new stream first, then where the origin stands after the failure
                return ingest_pb2.GetStreamResponse(stream=live_pb2.StreamInfo(
                    next_chunk_sequence=6 if self.publishes else 0))
            self.publishes += 1
            sent = [frame async for frame in _limited(request, 1 + 9)]
            if self.publishes == 1:
                assert [f.chunk.sequence for f in sent[1:]] == list(range(9))
                raise grpc.aio.AioRpcError(grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "gone")
            assert [f.chunk.sequence for f in sent[1:]] == list(range(6, 15))
            self.ref[0].closing = True
            return ingest_pb2.PublishResponse()

    async def _limited(generator, n):
        count = 0
        async for frame in generator:
            yield frame
            count += 1
            if count == n:
                return

    holder: list = [None]
    streams = IngestStreams(holder)
    broadcaster = Broadcaster(StreamPlan(0, "b", [], stream_id="s1", stream_key="k"), ChunkPlan(), GlassToGlass(1),
                              streams, buffer_chunks=30)
    holder[0] = broadcaster
    asyncio.run(broadcaster.run())
    assert streams.publishes == 2 and broadcaster.reconnects == 1 and broadcaster.last_error == "UNAVAILABLE"
    assert [m for _, m, _ in streams.calls] == ["GetStream", "Publish", "GetStream", "Publish"]


def test_a_broadcaster_goes_on_from_where_an_earlier_run_left_the_stream(monkeypatch):
    """casemesh capacity seeds once and runs many steps: each step's first Publish starts at next_chunk_sequence,
    captured now (not at chunk 0 of a schedule that began long ago)."""

    class IngestStreams(FakeStreams):
        def __init__(self, broadcaster_ref):
            super().__init__()
            self.ref = broadcaster_ref

        async def call(self, service, method, request, *, timeout_s=None):
            self.calls.append((service, method, request))
            if method == "GetStream":
                return ingest_pb2.GetStreamResponse(stream=live_pb2.StreamInfo(next_chunk_sequence=1302))
            sent = []
            async for frame in request:
                sent.append(frame)
                if len(sent) == 3:
                    break
            assert [f.chunk.sequence for f in sent[1:]] == [1302, 1303]
            assert sent[1].chunk.keyframe == (1302 % 60 == 0)
            self.ref[0].closing = True
            return ingest_pb2.PublishResponse()

    holder: list = [None]
    streams = IngestStreams(holder)
    broadcaster = Broadcaster(StreamPlan(0, "b", [], stream_id="s1", stream_key="k"), ChunkPlan(), GlassToGlass(1),
                              streams, buffer_chunks=30)
    holder[0] = broadcaster
    asyncio.run(broadcaster.run())
    assert broadcaster.generated >= 1303 and broadcaster.resend_misses == 0


# the no-gap check -----------------------------------------------------------------------------------------------------

def test_parts_that_continue_exactly_are_ok_across_segments():
    continuity = Continuity()
    assert continuity.check(4, 0, 240, 6, False) == OK
    assert continuity.check(4, 1, 246, 6, False) == OK
    assert continuity.check(4, 2, 252, 8, True) == OK  # the segment's last part
    assert continuity.resume == (5, 0)
    assert continuity.check(5, 0, 260, 6, False) == OK
    assert continuity.clean and continuity.parts == 4 and continuity.next_chunk == 266


def test_a_skipped_part_is_a_gap_and_a_repeated_one_a_duplicate():
    continuity = Continuity()
    continuity.check(4, 0, 240, 6, False)
    assert continuity.check(4, 2, 252, 6, False) == GAP  # 4-1 (chunks 246..251) never came
    assert continuity.gaps == 1 and continuity.missing_chunks == 6
    assert continuity.check(4, 2, 252, 6, False) == DUPLICATE  # the same part again: position unchanged
    assert continuity.duplicates == 1 and continuity.next_chunk == 258 and continuity.resume == (4, 3)
    assert continuity.check(4, 3, 258, 6, False) == OK
    assert not continuity.clean


def test_refs_must_be_consecutive_even_when_chunks_are():
    continuity = Continuity()
    continuity.check(4, 0, 240, 6, False)
    assert continuity.check(4, 2, 246, 6, False) == GAP  # chunks continue, but part 4-1 was skipped
    continuity = Continuity()
    continuity.check(4, 0, 240, 6, True)
    assert continuity.check(4, 1, 246, 6, False) != OK  # 4-0 ended the segment: 5-0 comes next, not 4-1
    assert not continuity.clean


def test_a_viewer_that_resumes_from_the_part_after_its_last_sees_no_gap():
    continuity = Continuity()
    for index in range(3):
        continuity.check(7, index, 420 + 6 * index, 6, False)
    resume = continuity.resume
    assert resume == (7, 3)
    # The edge went away; the new stream starts at `from` = resume, as the contract says.
    assert continuity.check(*resume, 438, 6, False) == OK and continuity.clean
    # A stream that (wrongly) starts at the live edge instead leaves a gap.
    assert continuity.check(7, 9, 474, 6, False) == GAP


# glass to glass -------------------------------------------------------------------------------------------------------

def test_glass_to_glass_is_taken_once_per_chunk_at_its_first_receipt():
    ledger = GlassToGlass(2, capacity=16)
    for sequence in range(12):
        ledger.sent(0, sequence, 1_000 + sequence)
    assert ledger.received(0, 0, 6, b"") == [1000, 1001, 1002, 1003, 1004, 1005]
    assert ledger.received(0, 0, 6, b"") == []  # a second viewer: not measured again
    assert ledger.received(0, 4, 4, b"") == [1006, 1007]  # overlapping: only the chunks new here
    ledger.sent(0, 3, 9_999)  # a resend keeps nothing new
    assert ledger.received(0, 3, 1, b"") == []
    assert ledger.received(1, 0, 1, ChunkPlan().data(0, 77)) == [77]  # the other stream is its own


def test_glass_to_glass_reads_a_remote_broadcaster_s_times_from_the_part_and_stays_bounded():
    chunks = ChunkPlan()
    ledger = GlassToGlass(1, capacity=8)
    data = b"".join(chunks.data(s, 5_000 + s) for s in range(20, 26))
    reads = []

    def lazy() -> bytes:
        reads.append(1)
        return data

    assert ledger.received(0, 20, 6, lazy) == [5020, 5021, 5022, 5023, 5024, 5025] and reads == [1]
    assert ledger.received(0, 20, 6, lazy) == [] and reads == [1]  # nothing new: the bytes are not touched
    ledger.received(0, 26, 8, b"".join(chunks.data(s, 1) for s in range(26, 34)))
    assert ledger.received(0, 20, 6, data) == []  # older than the ring now: never measured (a DVR replay)
    assert all(len(ring) == 8 for ring in ledger._seqs)
    assert ledger.received(0, 40, 1, b"garbage") == []  # unreadable bytes and no local record: no sample


def test_the_audience_records_glass_to_glass_and_gaps_as_parts_arrive():
    streams = FakeStreams()
    state = plan(SeedParams(streams=1, viewers=2, chatters=0, spammer=False), "0000abcd")
    state.streams[0].stream_id = "s1"
    audience = Audience(streams, state, GlassToGlass(1), latency_sample=0.0, reload="segment")
    chunks = ChunkPlan()
    now_ns = time.time_ns()

    def part(msn: int, index: int, first: int) -> live_pb2.Part:
        return live_pb2.Part(stream_id="s1", ref=live_pb2.PartRef(media_sequence=msn, part_index=index), first_chunk_sequence=first,
                             chunk_count=6, data=b"".join(chunks.data(s, now_ns - 300_000_000) for s in range(first, first + 6)))

    a, b = audience.local
    assert audience.receive(a, 0, part(0, 0, 0)) == OK
    assert audience.receive(b, 0, part(0, 0, 0)) == OK
    assert audience.receive(b, 0, part(0, 2, 12)) == GAP
    g2g = [latency for name, latency, _ in streams.observed if name == GLASS_TO_GLASS]
    assert len(g2g) == 12 and all(0.29 < latency < 5 for latency in g2g)
    assert streams.codes(CONTINUITY) == ["DATA_LOSS"]
    assert audience.left(a) == "OK" and audience.left(b) == "DATA_LOSS"
    assert audience.left(Viewer(state.viewers[0], "s1")) == "UNAVAILABLE"  # never got a part


# the LL-HLS player ----------------------------------------------------------------------------------------------------

def _part(msn: int, index: int, independent: bool = False) -> PlaylistPart:
    return PlaylistPart(msn, index, 200_000, independent)


def _playlist(*, open_parts: int, ended: bool = False):
    segments = [PlaylistSegment(msn, 2_000_000, tuple(_part(msn, i, i in (0, 5)) for i in range(10))) for msn in range(40, 44)]
    opened = [_part(44, i, i in (0, 5)) for i in range(open_parts)]
    return parse_playlist(render_playlist(PlaylistState(200, 2000, segments, opened, ended)))


def test_a_new_player_starts_at_the_last_independent_part():
    assert live_edge_start(_playlist(open_parts=3)) == (44, 0)
    assert live_edge_start(_playlist(open_parts=7)) == (44, 5)
    assert live_edge_start(_playlist(open_parts=0)) == (43, 5)


def test_without_an_independent_part_listed_a_player_starts_at_the_preload_hint():
    state = PlaylistState(200, 2000, [PlaylistSegment(9, 2_000_000)], [_part(10, 0), _part(10, 1)])
    playlist = parse_playlist(render_playlist(state))
    assert live_edge_start(playlist) == (10, 2)


def test_the_next_part_follows_the_listing_and_the_preload_hint():
    playlist = _playlist(open_parts=3)
    assert listed_after(playlist, (43, 3)) == (43, 4)
    assert listed_after(playlist, (43, 9)) == (44, 0)  # across the segment boundary
    assert listed_after(playlist, (44, 2)) == (44, 3) == playlist.preload_hint  # the last listed: the hint
    assert listed_after(_playlist(open_parts=0), (43, 9)) == (44, 0)  # a closed segment's last part
    assert listed_after(playlist, (12, 0)) is None  # not listed
    assert listed_after(_playlist(open_parts=3, ended=True), (44, 2)) is None  # the end
    assert next_ref(43, 9, True) == (44, 0) and next_ref(43, 3, False) == (43, 4)


def test_next_ref_walks_the_same_parts_as_the_playlist():
    playlist = _playlist(open_parts=5)
    ref = (41, 0)
    walked = [ref]
    while ref != (44, 4):
        ref = next_ref(*ref, ends_segment=ref[1] == 9)
        assert ref == listed_after(playlist, walked[-1])
        walked.append(ref)
    assert len(walked) == 35
    assert listed_after(playlist, walked[-1]) == playlist.preload_hint == (44, 5)


# chat -----------------------------------------------------------------------------------------------------------------

def test_a_post_carries_its_id_and_send_time_and_its_banned_word_as_a_word():
    post_id = post_id_prefix("0000abcd", 0) + "7"  # as Chatters.next_message_id makes them
    text = compose(post_id, 1_700_000_000_123_456_789, ["gg", "nice"], "scamcoin", random.Random(1))
    assert parse_token(text) == (post_id, 1_700_000_000_123_456_789)
    assert post_id_prefix("0000abcd", 0) != post_id_prefix("0000abcd", 0)  # a new connection, new ids
    assert carries_banned(text, frozenset({"scamcoin"}))
    assert not carries_banned(compose(post_id_prefix("0000abcd", 0) + "8", 1, ["gg"]), frozenset({"scamcoin"}))
    assert carries_banned("buy SCAMCOIN now", frozenset({"scamcoin"}))
    assert not carries_banned("scamcoins are a word of their own", frozenset({"scamcoin"}))
    assert parse_token("hello there") is None


def test_the_rate_limit_check_flags_an_acceptance_over_the_limit_only():
    check = RateLimitCheck(limit=3, window_s=30)
    assert [check.outcome(t, True) for t in (0.0, 1.0, 2.0)] == ["OK"] * 3
    assert check.outcome(3.0, False) == "OK"  # refused past the limit: expected
    assert check.outcome(4.0, True) == "DATA_LOSS" and check.breaches == 1
    assert check.outcome(40.0, True) == "OK"  # the window moved on


# seeding and the profile ----------------------------------------------------------------------------------------------

def test_the_plan_splits_viewers_by_kind_and_puts_the_spammer_in_the_first_room():
    state = plan(SeedParams(streams=2, viewers=5, llhls_fraction=0.4, chatters=3), "0000abcd")
    assert [v.kind for v in state.viewers if v.stream == 0] == [LLHLS, LLHLS, STREAMING, STREAMING, STREAMING]
    assert [v.index for v in state.viewers] == list(range(10))
    assert state.streams[0].spammer == "lv0000abcd-s0-spam" and state.streams[1].spammer is None
    assert state.chatters[:3] == ["lv0000abcd-s0-c0", "lv0000abcd-s0-c1", "lv0000abcd-s0-c2"]
    assert state.chatter_stream["lv0000abcd-s1-c2"] == 1


def test_the_workload_declares_its_services_and_measures():
    workload = get_workload("live")
    assert set(workload.services) == {"live-ingest", "live-edge", "live-chat", "chat-gateway-1", "chat-gateway-2"}
    assert {"glass_to_glass", "time_to_first_part", "chat_delivery", "continuity", "moderation"} <= set(workload.measures)
    assert "casemesh.live.v1.LiveEdgeService/GetPart" in workload.rpcs


def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("live", known_services=LIVE_SERVICES)
    assert profile.seed.streams == 2 and profile.seed.banned_words == ["scamcoin"]
    names = {slo.name for slo in profile.slos}
    assert {"glass-to-glass", "time-to-first-part", "chat-delivery", "continuity", "moderation"} <= names


def _profile(tmp_path, seed: str, journeys: str = "  - {name: join, weight: 1}\n") -> str:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""\
        apiVersion: casemesh.dev/v1
        kind: Profile
        metadata: {name: p}
        workload: live
        services: [live-ingest, live-origin, live-edge, live-chat, chat-gateway-1, chat-gateway-2, chat-router, chat-messages]
        seed:
        """) + seed + "arrival: {process: poisson, rate_per_s: 1}\nduration_s: 5\njourneys:\n" + journeys)
    return str(path)


def test_a_bad_workload_option_names_file_line_and_field(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_profile(_profile(tmp_path, "  streams: 2\n  llhls_fraction: 1.5\n"), known_services=LIVE_SERVICES)
    error = caught.value
    assert "p.yaml" in str(error) and "llhls_fraction" in str(error) and error.line == 8
    with pytest.raises(ConfigError, match="frame_rat"):
        load_profile(_profile(tmp_path, "  frame_rat: 30\n"), known_services=LIVE_SERVICES)
    with pytest.raises(ConfigError, match="watch_s"):
        load_profile(_profile(tmp_path, "  streams: 1\n", "  - {name: join, weight: 1, params: {watch_s: 0}}\n"),
                     known_services=LIVE_SERVICES)
