"""Rendition store and segment materialisation (services/video/storage/renditions.py, validation.py)."""

from __future__ import annotations

import time

import pytest

from casemesh.services.runtime.errors import InvalidArgument, NotFound
from casemesh.services.video.ladder import LADDER, rendition_info, segment_sizes
from casemesh.services.video.storage.renditions import RenditionStore, StoredRendition, segment_bytes
from casemesh.services.video.storage.validation import validate_put_rendition
from casemesh.video.v1 import video_pb2

SEED = "ab" * 32


def test_segment_bytes_have_the_size_and_are_deterministic():
    for size in (1, 4095, 4096, 4097, 1_250_000):
        data = segment_bytes(SEED, 3, size)
        assert len(data) == size
        assert segment_bytes(SEED, 3, size) == data
    assert segment_bytes(SEED, 3, 5000) != segment_bytes(SEED, 4, 5000)
    assert segment_bytes(SEED, 3, 5000) != segment_bytes("cd" * 32, 3, 5000)


def test_segment_bytes_are_cheap():
    started = time.perf_counter()
    for index in range(100):
        segment_bytes(SEED, index, 1_250_000)  # 100 1080p segments
    assert time.perf_counter() - started < 2.0  # ~10 ms here; generous for a loaded machine


def _rendition(video_id: str = "v1", generation: int = 1, rung=LADDER[2], duration_s: float = 7.0, seed: str = SEED):
    return StoredRendition(video_id, generation, rendition_info(rung, duration_s), seed)


async def test_put_get_segment_and_replace(tmp_path):
    store = RenditionStore(tmp_path)
    total = await store.put(_rendition())
    sizes = segment_sizes(LADDER[2].bandwidth_bps, 7.0)
    assert total == sum(sizes) and sizes == [1_250_000] * 3 + [625_000]
    got = await store.get("v1", 1, video_pb2.RENDITION_1080P)
    assert list(got.info.segment_size_bytes) == sizes and got.content_seed == SEED
    assert len(await store.segment("v1", 1, video_pb2.RENDITION_1080P, 3)) == 625_000
    with pytest.raises(NotFound, match="no index 4"):
        await store.segment("v1", 1, video_pb2.RENDITION_1080P, 4)
    with pytest.raises(NotFound):
        await store.get("v1", 2, video_pb2.RENDITION_1080P)
    await store.put(_rendition(seed="cd" * 32, duration_s=2.0))  # replaced as a whole
    got = await store.get("v1", 1, video_pb2.RENDITION_1080P)
    assert got.content_seed == "cd" * 32 and list(got.info.segment_size_bytes) == [1_250_000]


async def test_renditions_are_reloaded_by_a_new_store(tmp_path):
    first = RenditionStore(tmp_path)
    for rung in LADDER:
        await first.put(_rendition(rung=rung))
    second = RenditionStore(tmp_path)
    assert await second.load() == 3
    for rung in LADDER:
        assert (await second.get("v1", 1, rung.rendition)).info == rendition_info(rung, 7.0)
    assert await second.segment("v1", 1, LADDER[0].rendition, 0) == await first.segment("v1", 1, LADDER[0].rendition, 0)


@pytest.mark.parametrize("change, field", [
    (dict(video_id=""), "video_id"),
    (dict(video_id="a/b"), "video_id"),
    (dict(generation=0), "generation"),
    (dict(rendition=video_pb2.RENDITION_UNSPECIFIED), "rendition.rendition"),
    (dict(sizes=[]), "rendition.segment_size_bytes"),
    (dict(sizes=[10, 0]), "rendition.segment_size_bytes[1]"),
    (dict(sizes=[(16 << 20) + 1]), "rendition.segment_size_bytes[0]"),
    (dict(seed="AB" * 32), "content_seed"),
    (dict(seed="ab"), "content_seed"),
])
def test_put_rendition_validation_names_the_field(change, field):
    info = rendition_info(LADDER[0], 4.0)
    if "rendition" in change:
        info.rendition = change["rendition"]
    if "sizes" in change:
        del info.segment_size_bytes[:]
        info.segment_size_bytes.extend(change["sizes"])
    with pytest.raises(InvalidArgument) as caught:
        validate_put_rendition(change.get("video_id", "v1"), change.get("generation", 1), info, change.get("seed", SEED))
    assert caught.value.field == field
