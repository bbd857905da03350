"""A photo's life in photo-media (services/photo/media/lifecycle.py) against fake resizer and object store stubs:
the upload check, the processing queue (retries, restart) and sizes made on first request."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import threading

import grpc
import pytest

from casemesh.photo.v1 import photo_pb2, resize_pb2
from casemesh.services.photo.media import lifecycle as lifecycle_module
from casemesh.services.photo.media.lifecycle import PhotoLifecycle
from casemesh.services.photo.media.store import PROCESSING, READY, REJECTED, UPLOADING, PhotoStore
from casemesh.services.photo.sizes import BY_SIZE, object_key, photo_id, scaled
from casemesh.services.runtime.errors import FailedPrecondition, NotFound
from casemesh.services.runtime.secrets import UPLOAD_TOKEN, MeshSecret
from casemesh.services.video.tokens import UploadTokenSigner
from casemesh.video.v1 import storage_pb2

THUMBNAIL, MEDIUM, LARGE = photo_pb2.PHOTO_SIZE_THUMBNAIL, photo_pb2.PHOTO_SIZE_MEDIUM, photo_pb2.PHOTO_SIZE_LARGE
ALL = [THUMBNAIL, MEDIUM, LARGE]
SIGNER = UploadTokenSigner(MeshSecret("unit-test-secret-0123456789abcdef-0123").keyring(UPLOAD_TOKEN))
DECLARED = 250_000


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeStorage:
    """ObjectStoreService.StatObject over a dict of key -> stored bytes."""

    def __init__(self, delay_s: float = 0.0):
        self.objects: dict[str, int] = {}
        self.stat_calls = 0
        self.delay_s = delay_s

    async def StatObject(self, request, timeout=None):
        self.stat_calls += 1
        await asyncio.sleep(self.delay_s)
        if request.key not in self.objects:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"no object {request.key}")
        return storage_pb2.StatObjectResponse(size_bytes=self.objects[request.key],
                                              expected_size_bytes=self.objects[request.key])


class FakeResizer:
    """ResizeService: ProbeOriginal answers ``dims`` (or ``probe_error``); RenderSizes answers ready SizeRefs after
    raising the codes in ``render_failures`` one per call, and waits for ``gate`` when set."""

    def __init__(self, dims: tuple[int, int] = (4000, 3000), delay_s: float = 0.0):
        self.dims = dims
        self.probe_error: grpc.aio.AioRpcError | None = None
        self.render_failures: list[grpc.StatusCode] = []
        self.probe_calls: list[str] = []
        self.render_calls: list[tuple[str, list[int]]] = []
        self.gate: asyncio.Event | None = None
        self.delay_s = delay_s

    async def ProbeOriginal(self, request, timeout=None):
        self.probe_calls.append(request.photo_id)
        await asyncio.sleep(self.delay_s)
        if self.probe_error is not None:
            raise self.probe_error
        return resize_pb2.ProbeOriginalResponse(format="JPEG", width_px=self.dims[0], height_px=self.dims[1])

    async def RenderSizes(self, request, timeout=None):
        self.render_calls.append((request.photo_id, list(request.sizes)))
        if self.gate is not None:
            await self.gate.wait()
        await asyncio.sleep(self.delay_s)
        if self.render_failures:
            raise rpc_error(self.render_failures.pop(0), "resizer down")
        return resize_pb2.RenderSizesResponse(sizes=[ref(request.photo_id, s, self.dims) for s in request.sizes])


def ref(pid: str, size: int, dims: tuple[int, int]) -> photo_pb2.SizeRef:
    width, height = scaled(*dims, BY_SIZE[size].width_px)
    return photo_pb2.SizeRef(size=size, ready=True, width_px=width, height_px=height, size_bytes=1000 * size,
                             sha256_hex=hashlib.sha256(f"{pid}/{size}".encode()).hexdigest(), object_id=pid,
                             generation=1, rendition=BY_SIZE[size].rendition)


class Harness:
    """Builds lifecycles over stores in one folder; stops and closes them all at the end."""

    def __init__(self, folder):
        self.folder = folder
        self.lifecycles: list[PhotoLifecycle] = []
        self.stores: list[PhotoStore] = []
        self.numbers = itertools.count(1)

    async def open(self, resizer, storage, *, pregenerate=ALL, workers: int = 2) -> tuple[PhotoLifecycle, list[str]]:
        store = PhotoStore(self.folder)
        self.stores.append(store)
        queued = await store.load()
        self.ready_lags: list[float] = []
        lifecycle = PhotoLifecycle(store, resizer, storage, SIGNER, lambda: next(self.numbers), pregenerate=pregenerate,
                                   render_workers=workers, render_timeout_s=1.0, token_ttl_s=60,
                                   on_ready=self.ready_lags.append)
        self.lifecycles.append(lifecycle)
        return lifecycle, queued

    async def start(self, resizer, storage, **kwargs) -> PhotoLifecycle:
        lifecycle, queued = await self.open(resizer, storage, **kwargs)
        await lifecycle.start(queued)
        return lifecycle

    async def close(self) -> None:
        for lifecycle in self.lifecycles:
            await lifecycle.stop()
        for store in self.stores:  # as MediaComponent.stop: waits for a change in flight, then closes
            await store.close()


@pytest.fixture
async def harness(tmp_path):
    harness = Harness(tmp_path)
    yield harness
    await harness.close()


async def uploaded(lifecycle: PhotoLifecycle, storage: FakeStorage, n: int, *, stored: int | None = DECLARED,
                   author: str = "alice") -> str:
    """A photo initiated with DECLARED bytes and ``stored`` of them in the object store (None: no object)."""
    upload = await lifecycle.initiate(author, f"caption {n}", DECLARED, photo_id(n))
    assert upload.record.status == UPLOADING and upload.token
    if stored is not None:
        storage.objects[object_key(photo_id(n))] = stored
    return photo_id(n)


async def until(condition, timeout_s: float = 3.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def on_disk(harness: Harness, pid: str) -> int:
    """The photo's status in the journal, read by a fresh connection."""
    photos, _ = harness.stores[-1].journal.load()
    return next(row.status for row in photos if row.photo_id == pid)


# -- CompletePhotoUpload -----------------------------------------------------

async def test_incomplete_upload_is_refused_with_both_sizes(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1, stored=100_000)
    with pytest.raises(FailedPrecondition) as caught:
        await lifecycle.complete(pid)
    assert "100000" in str(caught.value) and str(DECLARED) in str(caught.value)
    assert lifecycle.store.require(pid).status == UPLOADING and on_disk(harness, pid) == UPLOADING
    assert resizer.probe_calls == []
    storage.objects[object_key(pid)] = DECLARED  # the client resumes and finishes: complete works now
    assert (await lifecycle.complete(pid)).status == PROCESSING


async def test_nothing_uploaded_is_refused(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1, stored=None)
    with pytest.raises(FailedPrecondition, match=f"0 of {DECLARED}"):
        await lifecycle.complete(pid)
    assert lifecycle.store.require(pid).status == UPLOADING and resizer.probe_calls == []


async def test_complete_unknown_photo_is_not_found(harness):
    lifecycle = await harness.start(FakeResizer(), FakeStorage())
    with pytest.raises(NotFound):
        await lifecycle.complete(photo_id(404))


async def test_unusable_original_is_rejected_for_good(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    resizer.probe_error = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not a JPEG or PNG image")
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    with pytest.raises(FailedPrecondition, match="not a JPEG or PNG"):
        await lifecycle.complete(pid)
    assert lifecycle.store.require(pid).status == REJECTED and on_disk(harness, pid) == REJECTED
    assert lifecycle.store.count(REJECTED) == 1
    resizer.probe_error = None  # even a working resizer does not bring it back
    with pytest.raises(FailedPrecondition, match="rejected"):
        await lifecycle.complete(pid)
    assert resizer.probe_calls == [pid] and storage.stat_calls == 1
    assert resizer.render_calls == [] and lifecycle.store.user_photos("alice", None, 10) == []


async def test_complete_with_every_size_pregenerated(harness):
    storage, resizer = FakeStorage(), FakeResizer(dims=(4000, 3000))
    resizer.gate = asyncio.Event()  # hold the render to see PROCESSING first
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    record = await lifecycle.complete(pid)
    assert record.status == PROCESSING and (record.row.width_px, record.row.height_px) == (4000, 3000)
    assert on_disk(harness, pid) == PROCESSING and lifecycle.backlog == 1
    assert lifecycle.store.user_photos("alice", None, 10) == []  # not listed before READY
    resizer.gate.set()
    await until(lambda: lifecycle.store.require(pid).status == READY)
    record = lifecycle.store.require(pid)
    assert sorted(record.sizes) == ALL and on_disk(harness, pid) == READY
    assert record.sizes[THUMBNAIL].width_px == 150 and record.sizes[LARGE].height_px == 810
    assert resizer.render_calls == [(pid, ALL)]
    assert lifecycle.counts.on_upload == 3 and lifecycle.counts.on_request == 0
    assert lifecycle.counts.rendered_bytes == 6000
    assert lifecycle.backlog == 0 and len(harness.ready_lags) == 1
    assert [r.photo_id for r in lifecycle.store.user_photos("alice", None, 10)] == [pid]
    assert (await lifecycle.complete(pid)).status == READY  # idempotent
    assert storage.stat_calls == 1 and len(resizer.probe_calls) == 1


async def test_complete_with_nothing_pregenerated_is_ready_at_once(harness):
    storage, resizer = FakeStorage(), FakeResizer(dims=(800, 600))
    lifecycle = await harness.start(resizer, storage, pregenerate=[])
    pid = await uploaded(lifecycle, storage, 1)
    record = await lifecycle.complete(pid)
    assert record.status == READY and record.sizes == {} and (record.row.width_px, record.row.height_px) == (800, 600)
    assert on_disk(harness, pid) == READY and lifecycle.backlog == 0
    await asyncio.sleep(0.05)
    assert resizer.render_calls == [] and lifecycle.counts.on_upload == 0
    assert [r.photo_id for r in lifecycle.store.user_photos("alice", None, 10)] == [pid]


async def test_concurrent_completes_share_one_check(harness):
    storage, resizer = FakeStorage(delay_s=0.02), FakeResizer(delay_s=0.02)
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    records = await asyncio.gather(*(lifecycle.complete(pid) for _ in range(8)))
    assert {r.status for r in records} == {PROCESSING}
    assert storage.stat_calls == 1 and resizer.probe_calls == [pid]
    await until(lambda: lifecycle.store.require(pid).status == READY)
    await asyncio.sleep(0.05)
    assert resizer.render_calls == [(pid, ALL)]  # queued once


async def test_concurrent_failing_completes_share_one_failure(harness):
    storage, resizer = FakeStorage(delay_s=0.02), FakeResizer()
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1, stored=10)
    results = await asyncio.gather(*(lifecycle.complete(pid) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, FailedPrecondition) for r in results) and storage.stat_calls == 1


# -- the queue ---------------------------------------------------------------

async def test_queue_retries_a_failing_render(harness, monkeypatch):
    monkeypatch.setattr(lifecycle_module, "FIRST_BACKOFF_S", 0.001)
    storage, resizer = FakeStorage(), FakeResizer()
    resizer.render_failures = [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE]
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    assert (await lifecycle.complete(pid)).status == PROCESSING
    await until(lambda: lifecycle.store.require(pid).status == READY)
    assert resizer.render_calls == [(pid, ALL)] * 3
    assert sorted(lifecycle.store.require(pid).sizes) == ALL
    assert lifecycle.counts.on_upload == 3  # failed attempts made nothing


async def test_queue_renders_only_the_configured_sizes(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage, pregenerate=[MEDIUM])
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    await until(lambda: lifecycle.store.require(pid).status == READY)
    assert resizer.render_calls == [(pid, [MEDIUM])] and sorted(lifecycle.store.require(pid).sizes) == [MEDIUM]


async def test_render_rejection_in_the_queue_rejects_the_photo(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    resizer.render_failures = [grpc.StatusCode.FAILED_PRECONDITION]
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    await until(lambda: lifecycle.store.require(pid).status == REJECTED)
    assert on_disk(harness, pid) == REJECTED and lifecycle.backlog == 0 and len(resizer.render_calls) == 1


async def test_restart_finishes_processing_photos(harness, monkeypatch):
    monkeypatch.setattr(lifecycle_module, "FIRST_BACKOFF_S", 0.001)
    storage, down = FakeStorage(), FakeResizer()
    down.render_failures = [grpc.StatusCode.UNAVAILABLE] * 10_000  # the resizer stays down until the crash
    first = await harness.start(down, storage)
    pids = [await uploaded(first, storage, n, author=a) for n, a in ((1, "alice"), (2, "bob"), (3, "alice"))]
    for pid in pids:
        assert (await first.complete(pid)).status == PROCESSING
    await until(lambda: len(down.render_calls) >= 6)
    await first.stop()  # the process dies: its store is dropped without a close

    resizer = FakeResizer()
    second, queued = await harness.open(resizer, storage)
    assert queued == pids and second.backlog == 3
    await second.start(queued)
    await until(lambda: second.backlog == 0)
    assert all(second.store.require(pid).status == READY for pid in pids)
    assert all(sorted(second.store.require(pid).sizes) == ALL for pid in pids)
    assert sorted(call[0] for call in resizer.render_calls) == pids
    assert [r.photo_id for r in second.store.user_photos("alice", None, 10)] == [pids[2], pids[0]]
    assert [on_disk(harness, pid) for pid in pids] == [READY] * 3


# -- sizes on first request --------------------------------------------------

async def test_concurrent_requests_for_a_missing_size_share_one_render(harness):
    storage, resizer = FakeStorage(), FakeResizer(dims=(1200, 900), delay_s=0.02)
    lifecycle = await harness.start(resizer, storage, pregenerate=[])
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    results = await asyncio.gather(*(lifecycle.size(pid, MEDIUM) for _ in range(10)))
    assert resizer.render_calls == [(pid, [MEDIUM])]
    assert sum(rendered for _, _, rendered in results) == 1
    rows = {row for _, row, _ in results}
    assert len(rows) == 1 and (rows.pop().width_px, results[0][1].height_px) == (640, 480)
    assert lifecycle.counts.on_request == 1 and lifecycle.counts.on_upload == 0
    assert all(MEDIUM in record.sizes for record, _, _ in results)
    assert [s.size for s in harness.stores[-1].journal.load()[1]] == [MEDIUM]  # durable
    record, row, rendered = await lifecycle.size(pid, MEDIUM)  # now stored
    assert not rendered and row.size == MEDIUM and len(resizer.render_calls) == 1


async def test_a_stored_size_is_not_rendered_again(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage)
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    await until(lambda: lifecycle.store.require(pid).status == READY)
    calls = len(resizer.render_calls)
    for size in ALL:
        record, row, rendered = await lifecycle.size(pid, size)
        assert not rendered and row == record.sizes[size]
    assert len(resizer.render_calls) == calls and lifecycle.counts.on_request == 0


async def test_size_of_an_uploading_photo_is_not_found(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage, pregenerate=[])
    pid = await uploaded(lifecycle, storage, 1)
    with pytest.raises(NotFound, match="uploading"):
        await lifecycle.size(pid, THUMBNAIL)
    with pytest.raises(NotFound):
        await lifecycle.size(photo_id(99), THUMBNAIL)
    assert resizer.render_calls == []


async def test_size_of_a_rejected_photo_is_failed_precondition(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    resizer.probe_error = rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "too many pixels")
    lifecycle = await harness.start(resizer, storage, pregenerate=[])
    pid = await uploaded(lifecycle, storage, 1)
    with pytest.raises(FailedPrecondition):
        await lifecycle.complete(pid)
    with pytest.raises(FailedPrecondition, match="rejected"):
        await lifecycle.size(pid, LARGE)
    assert resizer.render_calls == []


async def test_a_failed_render_on_request_stores_nothing_and_is_retried_by_the_next_request(harness):
    storage, resizer = FakeStorage(), FakeResizer(delay_s=0.01)
    lifecycle = await harness.start(resizer, storage, pregenerate=[])
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    resizer.render_failures = [grpc.StatusCode.UNAVAILABLE]
    results = await asyncio.gather(*(lifecycle.size(pid, THUMBNAIL) for _ in range(4)), return_exceptions=True)
    assert all(isinstance(r, grpc.aio.AioRpcError) and r.code() == grpc.StatusCode.UNAVAILABLE for r in results)
    assert len(resizer.render_calls) == 1 and lifecycle.store.require(pid).sizes == {}
    _, row, rendered = await lifecycle.size(pid, THUMBNAIL)
    assert rendered and row.size == THUMBNAIL and len(resizer.render_calls) == 2


async def test_closing_the_store_after_stop_waits_for_the_queues_last_write(harness):
    storage, resizer = FakeStorage(), FakeResizer()
    lifecycle = await harness.start(resizer, storage)
    journal = lifecycle.store.journal
    real_write = journal.write
    entered, release = threading.Event(), threading.Event()
    running = threading.Event()

    def write(photo=None, sizes=()):
        if photo is not None and photo.status == READY:  # the queue's commit: slow disk
            running.set()
            entered.set()
            release.wait(5)
        try:
            real_write(photo, sizes)
        finally:
            running.clear()

    journal.write = write
    pid = await uploaded(lifecycle, storage, 1)
    await lifecycle.complete(pid)
    await asyncio.to_thread(entered.wait, 5)
    await lifecycle.stop()  # MediaComponent.stop: lifecycle.stop(), ids.aclose(), then store.close()
    closing = asyncio.create_task(lifecycle.store.close())
    await asyncio.sleep(0.2)
    assert running.is_set() and not closing.done()  # the READY commit still runs: the journal stays open
    release.set()
    await closing
    assert not running.is_set()
    reopened = PhotoStore(harness.folder)
    harness.stores.append(reopened)
    await reopened.load()
    assert reopened.require(pid).status == READY  # the cancelled consumer's commit completed
