"""The harness's video player: ABR choice, versioned manifest URLs, playlist reading, throughput estimates."""

from __future__ import annotations

import pytest

from casemesh.harness.workloads.video.player import (ThroughputEstimates, Variant, first_segment, generation_of,
                                                     master_variants, segment_index, select_variant)
from casemesh.video.v1 import video_pb2

MASTER = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-STREAM-INF:BANDWIDTH=5000000,RESOLUTION=1920x1080
1080p/index.m3u8?gen=2
#EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360
360p/index.m3u8?gen=2
#EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720
720p/index.m3u8?gen=2
"""

LADDER = [Variant(500_000, "360p", video_pb2.RENDITION_360P, "a"), Variant(2_500_000, "720p", video_pb2.RENDITION_720P, "b"),
          Variant(5_000_000, "1080p", video_pb2.RENDITION_1080P, "c")]


def test_master_variants_are_read_back_lowest_first_with_their_renditions():
    variants = master_variants(MASTER)
    assert [(v.bandwidth_bps, v.name, v.rendition) for v in variants] == [
        (500_000, "360p", video_pb2.RENDITION_360P), (2_500_000, "720p", video_pb2.RENDITION_720P),
        (5_000_000, "1080p", video_pb2.RENDITION_1080P)]


def test_a_media_playlist_is_not_a_master_playlist():
    with pytest.raises(ValueError, match="not a master playlist"):
        master_variants("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg-00000.ts?gen=1\n#EXT-X-ENDLIST\n")


def test_first_segment_and_count_of_a_media_playlist():
    playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg-00000.ts?gen=4\n#EXTINF:1.5,\nseg-00001.ts?gen=4\n#EXT-X-ENDLIST\n"
    assert first_segment(playlist) == ("seg-00000.ts?gen=4", 2)
    assert segment_index("seg-00007.ts?gen=2") == 7
    with pytest.raises(ValueError):
        first_segment("#EXTM3U\n#EXT-X-ENDLIST\n")
    with pytest.raises(ValueError):
        first_segment("seg-00000.ts\n")
    with pytest.raises(ValueError):
        segment_index("index.m3u8")


@pytest.mark.parametrize(("throughput_bps", "expected"), [
    (10_000_000, "1080p"),   # 0.8 x 10 M = 8 M > 5 M
    (6_250_000, "720p"),     # 0.8 x 6.25 M = 5 M: not *below* 5 M
    (6_300_000, "1080p"),
    (3_200_000, "720p"),     # 2.56 M > 2.5 M
    (3_125_000, "360p"),     # exactly 2.5 M: not below
    (100_000, "360p"),       # nothing fits: the lowest
])
def test_abr_plays_the_highest_variant_below_80_percent_of_throughput(throughput_bps, expected):
    assert select_variant(LADDER, throughput_bps, 0.8).name == expected


def test_generation_comes_from_the_versioned_manifest_url():
    assert generation_of("/v/abc/master.m3u8?gen=3") == 3
    assert generation_of("/v/abc/master.m3u8?x=1&gen=12") == 12
    with pytest.raises(ValueError):
        generation_of("/v/abc/master.m3u8")


def test_throughput_estimate_starts_at_the_initial_value_and_moves_by_ewma():
    estimates = ThroughputEstimates(2, initial_bps=5_000_000, weight=0.5)
    estimates.update(0, 1_000_000, 1.0)        # 8 Mbit/s sample
    assert estimates.get(0) == pytest.approx(6_500_000)
    assert estimates.get(1) == 5_000_000
    estimates.update(1, 0, 1.0)                # empty downloads are ignored
    assert estimates.get(1) == 5_000_000
