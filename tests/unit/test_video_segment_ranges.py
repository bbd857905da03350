"""Ranged segment reads of the object store (GetSegment's offset_bytes/max_bytes) and their validation."""

from __future__ import annotations

import hashlib

import pytest

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.video.storage.files import pread_range
from casemesh.services.video.storage.renditions import (RenditionStore, StoredRendition, read_segment_range,
                                                        segment_bytes, segment_range)
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


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 2 << 20])
async def test_a_photo_size_range_is_the_slice_of_its_stored_bytes(tmp_path, size):
    data = hashlib.shake_256(b"photo").digest(size)
    store = RenditionStore(tmp_path)
    info = video_pb2.RenditionInfo(rendition=video_pb2.RENDITION_PHOTO_LARGE, width_px=1080, height_px=720,
                                   segment_size_bytes=[size])
    await store.put(StoredRendition("p1", 1, info, ""), data)
    stored, listed = await store.segment_size("p1", 1, video_pb2.RENDITION_PHOTO_LARGE, 0)
    assert listed == size
    for offset, length in [(0, size), (0, 1), (1, 4096), (4095, 3), (size - 1, 10), (size // 2, 262_144), (size, 5),
                           (0, size + 1000)]:
        assert await read_segment_range(stored, 0, size, offset, length) == data[offset:offset + length]


def test_pread_range_reads_up_to_the_end_of_the_file(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"0123456789")
    assert pread_range(path, 0, 10) == b"0123456789"
    assert pread_range(path, 3, 4) == b"3456"
    assert pread_range(path, 8, 100) == b"89"
    assert pread_range(path, 10, 5) == b"" and pread_range(path, 50, 5) == b""
    assert pread_range(path, 2, 0) == b""
