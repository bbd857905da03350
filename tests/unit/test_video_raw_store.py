"""The raw object store (services/video/storage/raw_store.py): append, resume, order, size, durability."""

from __future__ import annotations

import hashlib

import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.video.storage.raw_store import MAX_CHUNK_BYTES, RawObjectStore
from casemesh.services.video.tokens import UploadGrant, raw_key

DATA = bytes(range(256)) * 40  # 10,240 bytes


def grant(video_id: str = "v1", size: int = len(DATA)) -> UploadGrant:
    return UploadGrant(video_id, raw_key(video_id), size, 10**15)


async def upload(store: RawObjectStore, obj, data: bytes, start: int = 0, chunk: int = 3000) -> None:
    for offset in range(start, len(data), chunk):
        await store.append(obj, offset, data[offset:offset + chunk])
    await store.sync(obj)


async def test_append_in_order_then_stat_and_read(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant())
    await upload(store, obj, DATA)
    stat = await store.stat("v1")
    assert (stat.size_bytes, stat.expected_size_bytes, stat.complete) == (len(DATA), len(DATA), True)
    assert stat.sha256_hex == hashlib.sha256(DATA).hexdigest()
    chunks = [(offset, chunk) async for offset, chunk in store.read("v1", chunk_bytes=4096)]
    assert [o for o, _ in chunks] == [0, 4096, 8192]
    assert b"".join(c for _, c in chunks) == DATA


async def test_out_of_order_chunk_names_offset_and_expected_value(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant())
    await store.append(obj, 0, DATA[:100])
    with pytest.raises(InvalidArgument) as caught:
        await store.append(obj, 200, DATA[200:300])
    assert caught.value.field == "offset_bytes" and "expected offset 100" in caught.value.reason
    with pytest.raises(InvalidArgument) as caught:
        await store.append(obj, -1, DATA[:1])
    assert caught.value.field == "offset_bytes"


@pytest.mark.parametrize("data, reason", [(b"", "empty"), (b"x" * (MAX_CHUNK_BYTES + 1), "at most")])
async def test_bad_chunk_sizes_name_data(tmp_path, data, reason):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant(size=MAX_CHUNK_BYTES * 2))
    with pytest.raises(InvalidArgument, match=reason) as caught:
        await store.append(obj, 0, data)
    assert caught.value.field == "data"


async def test_chunk_beyond_declared_size_is_refused(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant(size=100))
    with pytest.raises(InvalidArgument, match="beyond the declared size of 100") as caught:
        await store.append(obj, 0, DATA[:101])
    assert caught.value.field == "data"
    assert store.offset(obj) == (0, 100)


async def test_complete_upload_refuses_more_chunks(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant(size=100))
    await upload(store, obj, DATA[:100])
    with pytest.raises(FailedPrecondition, match="already complete"):
        await store.append(obj, 100, b"x")


async def test_token_with_another_size_for_the_same_object_is_refused(tmp_path):
    store = RawObjectStore(tmp_path)
    await store.open(grant(size=100))
    with pytest.raises(FailedPrecondition, match="declared size of 100"):
        await store.open(grant(size=200))


async def test_unknown_object_is_not_found(tmp_path):
    store = RawObjectStore(tmp_path)
    with pytest.raises(NotFound):
        await store.stat("nope")
    with pytest.raises(NotFound):
        [c async for c in store.read("nope")]


async def test_acknowledged_bytes_survive_a_new_store_on_the_same_folder(tmp_path):
    first = RawObjectStore(tmp_path)
    obj = await first.open(grant())
    await upload(first, obj, DATA[:6000])  # half, synced: what UploadObject acknowledges

    second = RawObjectStore(tmp_path)  # a restarted process
    resumed = await second.open(grant())
    assert second.offset(resumed) == (6000, len(DATA))
    partial = await second.stat("v1")
    assert partial.sha256_hex == hashlib.sha256(DATA[:6000]).hexdigest() and not partial.complete
    with pytest.raises(InvalidArgument, match="expected offset 6000"):
        await second.append(resumed, 0, DATA[:10])
    await upload(second, resumed, DATA, start=6000)  # resume from the reported offset

    third = RawObjectStore(tmp_path)
    stat = await third.stat("v1")
    assert stat.complete and stat.sha256_hex == hashlib.sha256(DATA).hexdigest()
    assert b"".join([c async for _, c in third.read("v1")]) == DATA


async def test_sync_reports_new_bytes_once(tmp_path):
    store = RawObjectStore(tmp_path)
    obj = await store.open(grant())
    await store.append(obj, 0, DATA[:500])
    assert await store.sync(obj) == 500
    assert await store.sync(obj) == 0
