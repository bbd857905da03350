"""Ranged segment reads of the object store (GetSegment's offset_bytes/max_bytes) and their validation."""

from __future__ import annotations

import pytest

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.video.storage.renditions import segment_bytes, segment_range
from casemesh.services.video.storage.validation import validate_put_rendition, validate_segment_range
from casemesh.video.v1 import video_pb2

SEED = "ab" * 32


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 1_250_000])
def test_a_range_is_the_same_bytes_as_the_slice_of_the_whole_segment(size):
    whole = segment_bytes(SEED, 3, size)
    assert len(whole) == size
    for offset, length in [(0, size), (0, 1), (1, 4096), (4095, 3), (size - 1, 10), (size // 2, 262_144), (size, 5)]:
        assert segment_range(SEED, 3, size, offset, length) == whole[offset:offset + length]


def test_range_validation_names_the_field():
    validate_segment_range(0, 0)
    validate_segment_range(10, 4 << 20)
    for offset, max_bytes, field in [(-1, 0, "offset_bytes"), (0, -1, "max_bytes"), (0, (4 << 20) + 1, "max_bytes")]:
        with pytest.raises(InvalidArgument) as caught:
            validate_segment_range(offset, max_bytes)
        assert caught.value.field == field


def test_put_rendition_bounds_the_segment_list():
    info = video_pb2.RenditionInfo(rendition=video_pb2.RENDITION_360P)
    info.segment_size_bytes.extend([1000] * 100_001)
    with pytest.raises(InvalidArgument, match="at most 100000 segments") as caught:
        validate_put_rendition("v", 1, info, "0" * 64)
    assert caught.value.field == "rendition.segment_size_bytes"
