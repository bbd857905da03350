"""HLS playlists (RFC 8216): rendered master and media playlists parse back to what was rendered."""

import pytest

from casemesh.services.video.ladder import LADDER, rendition_info
from casemesh.services.video.playback import hls
from casemesh.video.v1 import video_pb2 as pb


def ladder(duration_s=7.0):
    return [rendition_info(rung, duration_s) for rung in LADDER]


def test_master_lists_every_rendition_lowest_bandwidth_first_with_versioned_uris():
    renditions = list(reversed(ladder()))  # given highest first: the playlist still starts lowest
    text = hls.render_master(renditions, generation=3)
    assert text.startswith("#EXTM3U\n#EXT-X-VERSION:3\n")
    parsed = hls.parse_master(text)
    assert parsed.version == 3
    assert [(v.bandwidth_bps, v.width_px, v.height_px) for v in parsed.variants] == [
        (500_000, 640, 360), (2_500_000, 1280, 720), (5_000_000, 1920, 1080)]
    assert [v.uri for v in parsed.variants] == [
        "360p/index.m3u8?gen=3", "720p/index.m3u8?gen=3", "1080p/index.m3u8?gen=3"]
    assert [hls.parse_variant_uri(v.uri) for v in parsed.variants] == [
        (pb.RENDITION_360P, 3), (pb.RENDITION_720P, 3), (pb.RENDITION_1080P, 3)]
    assert "#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\n720p/index.m3u8?gen=3\n" in text


def test_master_of_a_subset_of_the_ladder():
    text = hls.render_master([rendition_info(LADDER[2], 4.0)], generation=1)
    assert [v.uri for v in hls.parse_master(text).variants] == ["1080p/index.m3u8?gen=1"]


def test_media_playlist_round_trip_with_a_short_last_segment():
    info = rendition_info(LADDER[1], 7.0)  # 2 + 2 + 2 + 1 s
    durations = hls.segment_durations_ms(info, 7.0)
    assert durations == [2000, 2000, 2000, 1000]
    text = hls.render_media(durations, generation=2)
    parsed = hls.parse_media(text)
    assert parsed.target_duration_s == 2
    assert parsed.media_sequence == 0
    assert parsed.playlist_type == "vod"
    assert parsed.ended
    assert parsed.version == 3
    assert [s.duration_s for s in parsed.segments] == [2.0, 2.0, 2.0, 1.0]
    assert parsed.duration_s == 7.0
    assert [s.uri for s in parsed.segments] == [f"seg-{i:05d}.ts?gen=2" for i in range(4)]
    assert [hls.parse_segment_uri(s.uri) for s in parsed.segments] == [(i, 2) for i in range(4)]
    for line in ("#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
                 "#EXTINF:1.000,", "#EXT-X-ENDLIST"):
        assert line in text.splitlines()
    assert text.splitlines()[-1] == "#EXT-X-ENDLIST"


@pytest.mark.parametrize(("durations", "target"), [
    ([2000, 2000], 2), ([2000, 2001], 3), ([1500], 2), ([999], 1), ([6000, 10], 6), ([1], 1)])
def test_target_duration_is_the_longest_segment_rounded_up(durations, target):
    parsed = hls.parse_media(hls.render_media(durations, generation=1))
    assert parsed.target_duration_s == target
    assert [round(s.duration_s * 1000) for s in parsed.segments] == durations


def test_fractional_durations_keep_millisecond_precision():
    text = hls.render_media([2000, 1234], generation=5)
    assert "#EXTINF:1.234," in text.splitlines()
    assert "#EXTINF:2.000," in text.splitlines()


def test_last_segment_duration_falls_back_to_its_size_when_the_video_duration_disagrees():
    info = rendition_info(LADDER[0], 3.0)  # sizes: 125,000 and 62,500 bytes at 500 kbit/s
    assert hls.segment_durations_ms(info, 3.0) == [2000, 1000]
    assert hls.segment_durations_ms(info, 99.0) == [2000, 1000]  # 99 s cannot be 2 segments: size decides


def test_rendering_rejects_empty_input():
    with pytest.raises(ValueError):
        hls.render_master([], 1)
    with pytest.raises(ValueError):
        hls.render_media([], 1)
    with pytest.raises(ValueError):
        hls.render_media([2000, 0], 1)
    with pytest.raises(ValueError):
        hls.segment_durations_ms(pb.RenditionInfo(rendition=pb.RENDITION_360P, bandwidth_bps=1, segment_duration_ms=2000), 1.0)


@pytest.mark.parametrize("text", [
    "", "garbage\n", "#EXTINF:2.0,\nseg.ts\n",  # no #EXTM3U first
    "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\nseg.ts\n",
])
def test_parser_rejects_invalid_playlists(text):
    with pytest.raises(hls.PlaylistError):
        hls.parse_media(text)


def test_parsers_reject_the_wrong_kind_and_rule_breaks():
    master = hls.render_master(ladder(), 1)
    media = hls.render_media([2000], 1)
    with pytest.raises(hls.PlaylistError, match="master"):
        hls.parse_media(master)
    with pytest.raises(hls.PlaylistError, match="not a master"):
        hls.parse_master(media)
    with pytest.raises(hls.PlaylistError, match="target duration"):
        hls.parse_media("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.5,\nseg-00000.ts?gen=1\n#EXT-X-ENDLIST\n")
    with pytest.raises(hls.PlaylistError, match="TARGETDURATION"):
        hls.parse_media("#EXTM3U\n#EXTINF:2.0,\nseg-00000.ts?gen=1\n#EXT-X-ENDLIST\n")
    with pytest.raises(hls.PlaylistError):
        hls.parse_master("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=640x360\n360p/index.m3u8?gen=1\n")


def test_uri_parsers_reject_other_shapes():
    for uri in ("480p/index.m3u8?gen=1", "720p/index.m3u8", "720p/index.m3u8?gen=x"):
        with pytest.raises(hls.PlaylistError):
            hls.parse_variant_uri(uri)
    for uri in ("seg-1.ts?gen=1", "seg-00001.ts", "x/seg-00001.ts?gen=1"):
        with pytest.raises(hls.PlaylistError):
            hls.parse_segment_uri(uri)
    assert hls.master_url("abc", 4) == "/v/abc/master.m3u8?gen=4"


def test_a_foreign_playlist_with_other_tags_still_parses():
    text = ("#EXTM3U\n#EXT-X-VERSION:4\n#EXT-X-INDEPENDENT-SEGMENTS\n"
            '#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.4d401f,mp4a.40.2"\n'
            "low/index.m3u8\n")
    parsed = hls.parse_master(text)
    assert parsed.variants[0].bandwidth_bps == 800_000
    assert (parsed.variants[0].width_px, parsed.variants[0].height_px) == (0, 0)  # no RESOLUTION
