"""services/live/contract.py: the LL-HLS playlist renders and parses back (round trip), parts are listed only near
the live edge, the preload hint names the next part, an ended playlist has ENDLIST and no hint, and bad playlists
are refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casemesh.services.live.contract import (
    HLS_VERSION,
    PART_LIST_TARGET_DURATIONS,
    PlaylistError,
    PlaylistPart,
    PlaylistSegment,
    PlaylistState,
    is_id,
    parse_part_uri,
    parse_playlist,
    parse_segment_uri,
    part_uri,
    render_playlist,
    segment_uri,
)


def segment(msn: int, parts: int = 10, part_us: int = 200_000) -> PlaylistSegment:
    return PlaylistSegment(msn, parts * part_us, tuple(PlaylistPart(msn, i, part_us, i == 0) for i in range(parts)))


def open_parts(msn: int, count: int, part_us: int = 200_000) -> tuple[PlaylistPart, ...]:
    return tuple(PlaylistPart(msn, i, part_us, i == 0) for i in range(count))


def test_round_trip_of_a_live_playlist():
    state = PlaylistState(200, 2000, [segment(m) for m in range(41, 46)], open_parts(46, 3))
    text = render_playlist(state)
    assert text.startswith("#EXTM3U\n") and text.endswith("\n")
    playlist = parse_playlist(text)
    assert playlist.version == HLS_VERSION
    assert playlist.target_duration_s == 2 and playlist.part_target_ms == 200
    assert playlist.part_hold_back_ms == 600 and playlist.can_block_reload
    assert playlist.media_sequence == 41
    assert [s.media_sequence for s in playlist.segments] == [41, 42, 43, 44, 45]
    assert all(s.duration_us == 2_000_000 for s in playlist.segments)
    assert playlist.open_parts == open_parts(46, 3)
    assert playlist.preload_hint == (46, 3)
    assert playlist.last_part == (46, 2)
    assert not playlist.ended


def test_parts_are_listed_only_for_the_last_target_durations():
    state = PlaylistState(200, 2000, [segment(m) for m in range(0, 10)], open_parts(10, 1))
    playlist = parse_playlist(render_playlist(state))
    listed = [s.media_sequence for s in playlist.segments if s.parts]
    # 3 target durations (6 s) from the end: the open part (0.2 s) plus the last 3 segments (6 s) reach it.
    assert listed == [7, 8, 9]
    assert PART_LIST_TARGET_DURATIONS == 3
    for s in playlist.segments:
        if s.parts:
            assert s.parts == segment(s.media_sequence).parts


def test_preload_hint_after_a_segment_boundary_and_endlist():
    state = PlaylistState(200, 2000, [segment(0), segment(1)])
    playlist = parse_playlist(render_playlist(state))
    assert playlist.open_parts == () and playlist.preload_hint == (2, 0) and playlist.last_part == (1, 9)
    ended = parse_playlist(render_playlist(PlaylistState(200, 2000, [segment(0), segment(1)], ended=True)))
    assert ended.ended and ended.preload_hint is None
    assert "#EXT-X-ENDLIST" in render_playlist(PlaylistState(200, 2000, [segment(0)], ended=True))
    assert "PRELOAD-HINT" not in render_playlist(PlaylistState(200, 2000, [segment(0)], ended=True))


def test_target_duration_covers_the_longest_segment():
    long = PlaylistSegment(0, 3_100_000, ())
    playlist = parse_playlist(render_playlist(PlaylistState(200, 2000, [long], open_parts(1, 1))))
    assert playlist.target_duration_s == 4
    assert parse_playlist(render_playlist(PlaylistState(200, 2000, [], open_parts(0, 2)))).media_sequence == 0


def test_parts_off_playlist_has_one_part_per_segment():
    segments = [PlaylistSegment(m, 2_000_000, (PlaylistPart(m, 0, 2_000_000, True),)) for m in range(3)]
    playlist = parse_playlist(render_playlist(PlaylistState(2000, 2000, segments)))
    assert playlist.part_target_ms == 2000 and playlist.part_hold_back_ms == 6000
    assert playlist.preload_hint == (3, 0)


def test_render_needs_a_part():
    with pytest.raises(ValueError):
        render_playlist(PlaylistState(200, 2000))


GOOD = render_playlist(PlaylistState(200, 2000, [segment(0)], open_parts(1, 1)))


def test_a_playlist_without_part_inf_is_refused():
    with pytest.raises(PlaylistError):
        parse_playlist(GOOD.replace("#EXT-X-PART-INF:PART-TARGET=0.200\n", ""))


def test_bad_playlists_are_refused():
    good = GOOD
    with pytest.raises(PlaylistError, match="SERVER-CONTROL"):
        parse_playlist(good.replace("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600\n", ""))
    with pytest.raises(PlaylistError):
        parse_playlist(good.replace("seg-0.ts", "seg-5.ts"))
    with pytest.raises(PlaylistError):
        parse_playlist(good.replace('URI="part-1-0.ts"', 'URI="part-0-0.ts"'))  # listed under the wrong segment
    with pytest.raises(PlaylistError):
        parse_playlist(good.replace('URI="part-1-0.ts"', 'URI="media/x.ts"'))


def test_uris_and_ids():
    assert part_uri(4, 2) == "part-4-2.ts" and parse_part_uri("part-4-2.ts") == (4, 2)
    assert segment_uri(7) == "seg-7.ts" and parse_segment_uri("seg-7.ts") == 7
    with pytest.raises(PlaylistError):
        parse_part_uri("seg-7.ts")
    with pytest.raises(PlaylistError):
        parse_segment_uri("part-1-1.ts")
    assert is_id("a-Z_09") and is_id("x" * 64)
    assert not is_id("") and not is_id("x" * 65) and not is_id("a b") and not is_id("é")


@settings(max_examples=60, deadline=None)
@given(first=st.integers(0, 10_000), complete=st.integers(0, 12), parts_per=st.integers(1, 12),
       open_count=st.integers(0, 12), part_ms=st.sampled_from([50, 100, 200, 333, 500, 1000]),
       ended=st.booleans())
def test_render_parse_round_trip(first, complete, parts_per, open_count, part_ms, ended):
    if complete == 0 and open_count == 0:
        open_count = 1
    part_us = part_ms * 1000
    segments = [segment(first + i, parts_per, part_us) for i in range(complete)]
    state = PlaylistState(part_ms, max(2000, part_ms), segments, open_parts(first + complete, open_count, part_us),
                          ended=ended)
    playlist = parse_playlist(render_playlist(state))
    assert playlist.media_sequence == first
    assert [(s.media_sequence, s.duration_us) for s in playlist.segments] == [
        (s.media_sequence, s.duration_us) for s in segments]
    for parsed, original in zip(playlist.segments, segments, strict=True):
        assert parsed.parts in ((), original.parts)
    if segments:
        assert playlist.segments[-1].parts == segments[-1].parts or open_count * part_us >= 3 * playlist.target_duration_s * 1_000_000
    assert playlist.open_parts == state.open_parts
    assert playlist.ended == ended
    if ended:
        assert playlist.preload_hint is None
    elif open_count:
        assert playlist.preload_hint == (first + complete, open_count)
    else:
        assert playlist.preload_hint == (first + complete, 0)
