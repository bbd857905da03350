"""Rendition store and segment materialisation (services/video/storage/renditions.py, validation.py)."""

from __future__ import annotations

import hashlib
import time

import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime.secrets import MeshSecret, UPLOAD_TOKEN
from casemesh.services.video.ladder import LADDER, rendition_info, segment_sizes
from casemesh.services.video.storage import renditions as renditions_module
from casemesh.services.video.storage.raw_store import RawObjectStore
from casemesh.services.video.storage.renditions import (RenditionStore, StoredRendition, read_segment_range,
                                                        segment_bytes)
from casemesh.services.video.storage.service import ObjectStoreServicer
from casemesh.services.video.storage.validation import validate_put_rendition
from casemesh.services.video.tokens import UploadTokenSigner
from casemesh.video.v1 import storage_pb2, video_pb2

SEED = "ab" * 32
#: A photo size's bytes: not a repeated block, so a wrong offset or a mix of two files shows.
PHOTO = hashlib.shake_256(b"a photo size").digest(10_007)
OTHER_PHOTO = hashlib.shake_256(b"another photo size").digest(20_011)
PHOTO_ID = "p00000000000000000042"  # services/photo/sizes.py: "p" and 20 digits
MEDIUM = video_pb2.RENDITION_PHOTO_MEDIUM


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


# ----------------------------------------------------------------------------- photo sizes (RENDITION_PHOTO_*)


def _photo_info(data: bytes = PHOTO, rendition: int = MEDIUM, width: int = 640, height: int = 480,
                sizes: list[int] | None = None) -> video_pb2.RenditionInfo:
    return video_pb2.RenditionInfo(rendition=rendition, width_px=width, height_px=height,
                                   segment_size_bytes=[len(data)] if sizes is None else sizes)


def _photo(data: bytes = PHOTO, **info) -> StoredRendition:
    return StoredRendition(PHOTO_ID, 1, _photo_info(data, **info), "")


async def test_a_photo_size_serves_its_stored_bytes_in_ranges_and_after_a_restart(tmp_path):
    store = RenditionStore(tmp_path)
    await store.put(_rendition())  # a ladder rung alongside, unchanged by photo sizes
    assert await store.put(_photo(), PHOTO) == len(PHOTO)
    assert await store.segment(PHOTO_ID, 1, MEDIUM, 0) == PHOTO
    with pytest.raises(NotFound, match="no index 1"):
        await store.segment(PHOTO_ID, 1, MEDIUM, 1)
    with pytest.raises(NotFound, match="RENDITION_PHOTO_LARGE"):
        await store.get(PHOTO_ID, 1, video_pb2.RENDITION_PHOTO_LARGE)

    stored = await store.get(PHOTO_ID, 1, MEDIUM)
    assert stored.content_seed == "" and stored.info == _photo_info()
    assert stored.data_path == store.root / f"{PHOTO_ID}.g1.r{MEDIUM}.bin"
    assert stored.data_path.read_bytes() == PHOTO
    # the description is a PutRenditionRequest without the bytes: they are only in the .bin
    pb_file = store.root / f"{PHOTO_ID}.g1.r{MEDIUM}.pb"
    described = storage_pb2.PutRenditionRequest.FromString(pb_file.read_bytes())
    assert (described.video_id, described.generation, described.rendition) == (PHOTO_ID, 1, _photo_info())
    assert described.content_seed == "" and list(described.segment_data) == []
    assert PHOTO[:64] not in pb_file.read_bytes() and len(pb_file.read_bytes()) < 200
    assert sorted(p.name for p in store.root.iterdir()) == sorted(
        [pb_file.name, stored.data_path.name, f"v1.g1.r{video_pb2.RENDITION_1080P}.pb"])  # no .bin for a rung

    size = len(PHOTO)
    for offset, length in [(0, size), (0, 1), (100, 50), (4095, 4098), (size - 10, 100), (size - 1, 1), (size, 5)]:
        assert await read_segment_range(stored, 0, size, offset, length) == PHOTO[offset:offset + length]

    restarted = RenditionStore(tmp_path)
    assert await restarted.load() == 2
    again = await restarted.get(PHOTO_ID, 1, MEDIUM)
    assert again.info == _photo_info() and again.content_seed == "" and again.data_path == stored.data_path
    assert await restarted.segment(PHOTO_ID, 1, MEDIUM, 0) == PHOTO
    assert await read_segment_range(again, 0, size, size - 7, 1 << 20) == PHOTO[-7:]
    rung = await restarted.get("v1", 1, video_pb2.RENDITION_1080P)
    assert rung.content_seed == SEED and rung.data_path is None
    assert await restarted.segment("v1", 1, video_pb2.RENDITION_1080P, 3) == segment_bytes(SEED, 3, 625_000)


async def test_the_three_photo_sizes_of_a_photo_are_kept_apart(tmp_path):
    store = RenditionStore(tmp_path)
    sizes = (video_pb2.RENDITION_PHOTO_THUMBNAIL, video_pb2.RENDITION_PHOTO_MEDIUM, video_pb2.RENDITION_PHOTO_LARGE)
    contents = {r: hashlib.shake_256(str(r).encode()).digest(1000 + r) for r in sizes}
    for rendition, data in contents.items():
        await store.put(_photo(data, rendition=rendition), data)
    restarted = RenditionStore(tmp_path)
    assert await restarted.load() == 3
    for rendition, data in contents.items():
        assert await restarted.segment(PHOTO_ID, 1, rendition, 0) == data


async def test_a_crash_between_the_bytes_and_the_description_leaves_no_rendition(tmp_path, monkeypatch):
    real_write = renditions_module.write_atomically

    def crash_before_the_description(path, data):
        if path.suffix == ".pb":
            raise OSError("crash: the description was never written")
        real_write(path, data)

    monkeypatch.setattr(renditions_module, "write_atomically", crash_before_the_description)
    store = RenditionStore(tmp_path)
    with pytest.raises(OSError, match="crash"):
        await store.put(_photo(), PHOTO)
    assert (store.root / f"{PHOTO_ID}.g1.r{MEDIUM}.bin").read_bytes() == PHOTO  # orphaned bytes ...
    assert not (store.root / f"{PHOTO_ID}.g1.r{MEDIUM}.pb").exists()
    with pytest.raises(NotFound):  # ... but no rendition: not in this store,
        await store.get(PHOTO_ID, 1, MEDIUM)
    monkeypatch.undo()
    restarted = RenditionStore(tmp_path)
    assert await restarted.load() == 0  # nor after a restart
    with pytest.raises(NotFound):
        await restarted.get(PHOTO_ID, 1, MEDIUM)
    with pytest.raises(NotFound):
        await restarted.segment(PHOTO_ID, 1, MEDIUM, 0)


async def test_an_orphaned_bin_file_alone_is_no_rendition(tmp_path):
    root = RenditionStore(tmp_path).root
    (root / f"{PHOTO_ID}.g1.r{MEDIUM}.bin").write_bytes(PHOTO)
    restarted = RenditionStore(tmp_path)
    assert await restarted.load() == 0 and len(restarted) == 0
    with pytest.raises(NotFound):
        await restarted.segment(PHOTO_ID, 1, MEDIUM, 0)


async def test_a_photo_size_is_immutable_other_bytes_are_refused_and_the_old_ones_stay(tmp_path):
    store = RenditionStore(tmp_path)
    await store.put(_photo(), PHOTO)
    # GetSegment looks the rendition up (segment_size), then reads (read_segment_range) after other awaits
    stored, size = await store.segment_size(PHOTO_ID, 1, MEDIUM, 0)
    with pytest.raises(FailedPrecondition, match="immutable"):
        await store.put(_photo(OTHER_PHOTO), OTHER_PHOTO)
    assert await read_segment_range(stored, 0, size, 0, size) == PHOTO
    assert await store.segment(PHOTO_ID, 1, MEDIUM, 0) == PHOTO
    restarted = RenditionStore(tmp_path)
    await restarted.load()
    assert await restarted.segment(PHOTO_ID, 1, MEDIUM, 0) == PHOTO


async def test_putting_the_same_photo_size_again_changes_nothing(tmp_path, monkeypatch):
    store = RenditionStore(tmp_path)
    assert await store.put(_photo(), PHOTO) == len(PHOTO)
    writes = []
    monkeypatch.setattr(renditions_module, "write_atomically", lambda path, data: writes.append(path))
    assert await store.put(_photo(), PHOTO) == len(PHOTO)  # a retried render: same bytes, no rewrite
    assert writes == []
    assert await store.segment(PHOTO_ID, 1, MEDIUM, 0) == PHOTO


async def test_a_photo_size_whose_bytes_were_deleted_is_not_loaded(tmp_path):
    store = RenditionStore(tmp_path)
    await store.put(_photo(), PHOTO)
    next(store.root.glob("*.bin")).unlink()
    restarted = RenditionStore(tmp_path)
    await restarted.load()
    with pytest.raises(NotFound):
        await restarted.get(PHOTO_ID, 1, MEDIUM)


def _put_request(data: bytes = PHOTO, **change) -> storage_pb2.PutRenditionRequest:
    request = storage_pb2.PutRenditionRequest(video_id=PHOTO_ID, generation=1, rendition=_photo_info(data),
                                              segment_data=[data])
    for name, value in change.items():
        if name == "rendition":
            request.rendition.CopyFrom(value)
        elif name == "segment_data":
            del request.segment_data[:]
            request.segment_data.extend(value)
        else:
            setattr(request, name, value)
    return request


async def test_a_refused_put_rendition_leaves_the_stored_photo_size_unchanged(tmp_path):
    servicer = ObjectStoreServicer(RawObjectStore(tmp_path), RenditionStore(tmp_path),
                                   UploadTokenSigner(MeshSecret("test-secret-0123456789abcdef-0123456789")
                                                     .keyring(UPLOAD_TOKEN)))
    assert (await servicer.PutRendition(_put_request(), None)).total_bytes == len(PHOTO)
    other_info = _photo_info(OTHER_PHOTO)
    refused = [
        (_put_request(OTHER_PHOTO, content_seed=SEED), "content_seed"),
        (_put_request(OTHER_PHOTO, segment_data=[OTHER_PHOTO, OTHER_PHOTO]), "segment_data"),
        (_put_request(OTHER_PHOTO, segment_data=[OTHER_PHOTO[:-1]]), "segment_data[0]"),
        (_put_request(OTHER_PHOTO, rendition=_photo_info(OTHER_PHOTO, width=0)), "rendition.width_px"),
        (_put_request(OTHER_PHOTO, rendition=_photo_info(OTHER_PHOTO, height=0)), "rendition.height_px"),
        (_put_request(OTHER_PHOTO, segment_data=[]), "segment_data"),
    ]
    assert other_info.segment_size_bytes[0] != len(PHOTO)
    for request, field in refused:
        with pytest.raises(InvalidArgument) as caught:
            await servicer.PutRendition(request, None)
        assert caught.value.field == field, request.rendition
    described = await servicer.GetRendition(
        storage_pb2.GetRenditionRequest(video_id=PHOTO_ID, generation=1, rendition=MEDIUM), None)
    assert described.rendition == _photo_info() and described.content_seed == ""
    whole = await servicer.GetSegment(storage_pb2.GetSegmentRequest(video_id=PHOTO_ID, generation=1, rendition=MEDIUM,
                                                                    index=0), None)
    assert (whole.data, whole.segment_size_bytes) == (PHOTO, len(PHOTO))
    part = await servicer.GetSegment(storage_pb2.GetSegmentRequest(video_id=PHOTO_ID, generation=1, rendition=MEDIUM,
                                                                   index=0, offset_bytes=10_000, max_bytes=4096), None)
    assert (part.data, part.segment_size_bytes) == (PHOTO[10_000:], len(PHOTO))
    root = tmp_path / "renditions"
    assert (root / f"{PHOTO_ID}.g1.r{MEDIUM}.bin").read_bytes() == PHOTO
    assert sorted(p.suffix for p in root.iterdir()) == [".bin", ".pb"]  # no temporaries, nothing else


def _validate_photo(data=(PHOTO,), seed: str = "", **info) -> None:
    sizes = info.pop("sizes", [len(data[0])] if data else [len(PHOTO)])
    validate_put_rendition(PHOTO_ID, 1, _photo_info(PHOTO, sizes=sizes, **info), seed, list(data))


def test_a_valid_photo_size_passes_validation():
    for rendition in (video_pb2.RENDITION_PHOTO_THUMBNAIL, video_pb2.RENDITION_PHOTO_MEDIUM,
                      video_pb2.RENDITION_PHOTO_LARGE):
        _validate_photo(rendition=rendition)
    _validate_photo(data=[b"x"], width=1, height=1)  # 1 byte
    _validate_photo(data=[b"x" * (2 << 20)])  # 2 MiB
    validate_put_rendition("v1", 1, rendition_info(LADDER[0], 4.0), SEED)  # rungs keep their seed
    validate_put_rendition("v1", 1, rendition_info(LADDER[0], 4.0), SEED, [])


@pytest.mark.parametrize("change, field", [
    (dict(seed=SEED), "content_seed"),
    (dict(seed="x"), "content_seed"),
    (dict(data=[PHOTO, PHOTO], sizes=[len(PHOTO), len(PHOTO)]), "segment_data"),
    (dict(data=[PHOTO, PHOTO]), "segment_data"),
    (dict(data=[]), "segment_data"),
    (dict(data=[PHOTO], sizes=[len(PHOTO), 10]), "segment_data"),
    (dict(data=[PHOTO], sizes=[len(PHOTO) + 1]), "segment_data[0]"),
    (dict(data=[PHOTO[:-1]], sizes=[len(PHOTO)]), "segment_data[0]"),
    (dict(data=[b""], sizes=[1]), "segment_data[0]"),
    (dict(data=[b"x" * ((2 << 20) + 1)]), "segment_data[0]"),
    (dict(width=0), "rendition.width_px"),
    (dict(width=-640), "rendition.width_px"),
    (dict(height=0), "rendition.height_px"),
    (dict(sizes=[0]), "rendition.segment_size_bytes[0]"),
    (dict(sizes=[]), "rendition.segment_size_bytes"),
])
def test_photo_size_validation_names_the_field(change, field):
    with pytest.raises(InvalidArgument) as caught:
        _validate_photo(**change)
    assert caught.value.field == field


def test_photo_size_errors_say_what_is_wrong():
    with pytest.raises(InvalidArgument, match="must be empty for the photo size RENDITION_PHOTO_MEDIUM"):
        _validate_photo(seed=SEED)
    with pytest.raises(InvalidArgument, match="exactly one segment"):
        _validate_photo(data=[PHOTO, PHOTO])
    with pytest.raises(InvalidArgument, match="2097152 bytes"):
        _validate_photo(data=[b"x" * ((2 << 20) + 1)])
    with pytest.raises(InvalidArgument, match=f"is {len(PHOTO) - 1} bytes but .* says {len(PHOTO)}"):
        _validate_photo(data=[PHOTO[:-1]], sizes=[len(PHOTO)])


@pytest.mark.parametrize("rung", LADDER, ids=lambda r: r.name)
def test_a_ladder_rung_refuses_segment_data(rung):
    with pytest.raises(InvalidArgument, match="ladder rung") as caught:
        validate_put_rendition("v1", 1, rendition_info(rung, 4.0), SEED, [b"x"])
    assert caught.value.field == "segment_data"
    with pytest.raises(InvalidArgument) as caught:  # and still needs its seed
        validate_put_rendition("v1", 1, rendition_info(rung, 4.0), "", [])
    assert caught.value.field == "content_seed"
