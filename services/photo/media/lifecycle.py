"""A photo's life: upload, check, the processing queue, and sizes made on first request.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo Storage":
``uploadPhoto`` stores the original, inserts the photo row with ``status:
'processing'``, queues ``create-thumbnails`` and returns; the worker resizes
to 150, 640 and 1080 px and sets ``status: 'ready'``. Here:

InitiatePhotoUpload
    a Snowflake photo id (leased from idgen) → a durable UPLOADING row → an
    upload token for ``raw/{photo_id}`` (the video platform's signed grant,
    services/video/tokens.py), so the client puts the bytes straight to the
    object store ("S3 (writes)").
CompletePhotoUpload
    StatObject (the whole declared size must be stored) → ProbeOriginal (a
    JPEG or PNG within the pixel limit, else REJECTED for good) → PROCESSING
    and onto the queue when sizes are pre-generated, else READY at once.
    Concurrent completes of one photo share one check.
The queue
    ``render_workers`` consumers call RenderSizes(pre-generated sizes); on
    success the sizes and READY are committed together. A failed render is
    retried with backoff (0.05 s doubling to 2 s) and never dropped; the
    queue is the set of PROCESSING rows, so a restart re-queues them.
A size on first request (GetPhoto)
    a size not stored yet is rendered now; concurrent requests for it share
    one RenderSizes call (:class:`~casemesh.services.runtime.coalescing.SingleFlight`).

``resizer`` and ``storage`` have the ResizeService and ObjectStoreService
stubs' coroutine methods, so tests can pass fakes. Errors are the runtime's
domain errors (→ status codes); a dependency's other failures propagate as
``grpc.aio.AioRpcError`` (→ UNAVAILABLE or DEADLINE_EXCEEDED).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc

from casemesh.photo.v1 import resize_pb2
from casemesh.video.v1 import storage_pb2

from ...runtime.coalescing import SingleFlight
from ...runtime.errors import FailedPrecondition, NotFound, dependency_error
from ...video.tokens import UploadGrant, UploadTokenSigner
from ..sizes import object_key
from .journal import PhotoRow, SizeRow
from .store import PROCESSING, READY, REJECTED, UPLOADING, PhotoRecord, PhotoStore

log = logging.getLogger("casemesh.photo.media")

#: Timeout of StatObject and ProbeOriginal, in seconds (both read at most a 10 MiB original).
CHECK_TIMEOUT_S = 10.0
#: Backoff of a failed queue render, in seconds: first wait and most.
FIRST_BACKOFF_S = 0.05
MAX_BACKOFF_S = 2.0


@dataclass
class RenderCounts:
    """Sizes made since start: by trigger, and their JPEG bytes."""

    on_upload: int = 0
    on_request: int = 0
    rendered_bytes: int = 0


@dataclass(frozen=True)
class Upload:
    """What InitiatePhotoUpload answers: the new photo, its upload token and when it expires (Unix ms)."""

    record: PhotoRecord
    token: str
    expire_at_ms: int


def size_rows(photo_id: str, refs) -> list[SizeRow]:
    """The journal rows of RenderSizes' ready ``SizeRef`` messages."""
    return [SizeRow(photo_id, r.size, r.width_px, r.height_px, r.size_bytes, r.sha256_hex) for r in refs]


class PhotoLifecycle:
    """Upload, check, queue and render of one photo-media process (see the module doc).

    ``next_id()`` gives a Snowflake photo id (``sizes.photo_id`` of it);
    ``pregenerate`` lists the ``PhotoSize`` values made on upload;
    ``on_render(sizes, trigger, seconds)`` (one RenderSizes call: the ``PhotoSize`` values made, ``"upload"`` or
    ``"request"``, its duration) and ``on_ready(lag_s)`` feed metrics.
    Call :meth:`start` after ``store.load`` and :meth:`stop` at the end.
    """

    def __init__(self, store: PhotoStore, resizer, storage, signer: UploadTokenSigner,
                 next_id: Callable[[], object], *, pregenerate: list[int], render_workers: int,
                 render_timeout_s: float, token_ttl_s: float,
                 on_render: Callable[[list[int], str, float], None] = lambda sizes, trigger, seconds: None,
                 on_ready: Callable[[float], None] = lambda lag_s: None) -> None:
        self.store = store
        self._resizer = resizer
        self._storage = storage
        self._signer = signer
        self._next_id = next_id
        self.pregenerate = list(pregenerate)
        self._workers = render_workers
        self._render_timeout_s = render_timeout_s
        self._token_ttl_s = token_ttl_s
        self._on_render = on_render
        self._on_ready = on_ready
        self.counts = RenderCounts()
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task] = []
        self._completes: SingleFlight[str, PhotoRecord] = SingleFlight()
        self._renders: SingleFlight[tuple[str, int], SizeRow] = SingleFlight()

    @property
    def backlog(self) -> int:
        """Photos PROCESSING: queued or being rendered."""
        return self.store.count(PROCESSING)

    async def start(self, queued: list[str]) -> None:
        """Queue ``queued`` (the PROCESSING photos ``store.load`` found) and start the consumers."""
        for photo_id in queued:
            self._queue.put_nowait(photo_id)
        self._tasks = [asyncio.create_task(self._consume(), name=f"photo-render-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- upload -----------------------------------------------------------

    async def initiate(self, author_id: str, caption: str, file_size_bytes: int, photo_id: str) -> Upload:
        """Create the photo ``photo_id`` (UPLOADING) durably and sign its upload token. Inputs are validated."""
        now_ns = time.time_ns()
        record = await self.store.create(PhotoRow(photo_id, author_id, caption, now_ns, UPLOADING, file_size_bytes, 0, 0))
        expire_ms = now_ns // 1_000_000 + int(self._token_ttl_s * 1000)
        token = self._signer.sign(UploadGrant(photo_id, object_key(photo_id), file_size_bytes, expire_ms))
        return Upload(record, token, expire_ms)

    async def complete(self, photo_id: str) -> PhotoRecord:
        """CompletePhotoUpload (the module doc): the photo PROCESSING or READY, or ``FailedPrecondition``/``NotFound``."""
        record, _ = await self._completes.do(photo_id, lambda: self._complete(photo_id))
        return record

    async def _complete(self, photo_id: str) -> PhotoRecord:
        record = self.store.require(photo_id)
        if record.status in (PROCESSING, READY):
            return record
        if record.status == REJECTED:
            raise FailedPrecondition(f"photo {photo_id!r} was rejected: its original is not a usable image")
        key = object_key(photo_id)
        try:
            stat = await self._storage.StatObject(storage_pb2.StatObjectRequest(key=key), timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise FailedPrecondition(f"nothing is uploaded to {key} yet (0 of {record.row.declared_bytes} bytes)") from None
            raise dependency_error(error) from None
        if stat.size_bytes < record.row.declared_bytes:
            raise FailedPrecondition(f"the upload to {key} is incomplete: {stat.size_bytes} of "
                                     f"{record.row.declared_bytes} bytes stored (resume from GetUploadOffset)")
        try:
            probe = await self._resizer.ProbeOriginal(resize_pb2.ProbeOriginalRequest(photo_id=photo_id),
                                                      timeout=CHECK_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
                await self.store.transition(photo_id, REJECTED)
                raise FailedPrecondition(f"photo {photo_id!r} is rejected: {error.details()}") from None
            raise dependency_error(error) from None
        if not self.pregenerate:
            record = await self.store.transition(photo_id, READY, width_px=probe.width_px, height_px=probe.height_px)
            self._on_ready(0.0)
            return record
        record = await self.store.transition(photo_id, PROCESSING, width_px=probe.width_px, height_px=probe.height_px)
        self._queue.put_nowait(photo_id)
        return record

    # -- the queue --------------------------------------------------------

    async def _consume(self) -> None:
        while True:
            photo_id = await self._queue.get()
            backoff = FIRST_BACKOFF_S
            while True:
                try:
                    await self._process(photo_id)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as error:  # noqa: BLE001 - a dependency down, a journal error: retry, never drop
                    log.warning("render of photo %s failed (%s); retrying in %.2f s", photo_id, error, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _process(self, photo_id: str) -> None:
        record = self.store.get(photo_id)
        if record is None or record.status != PROCESSING:
            return
        missing = [s for s in self.pregenerate if s not in record.sizes]
        rows: list[SizeRow] = []
        if missing:
            try:
                rows = await self._render(photo_id, missing, "upload")
            except FailedPrecondition as error:  # the original went bad after the probe: nothing to serve
                log.error("photo %s rejected while processing: %s", photo_id, error)
                await self.store.transition(photo_id, REJECTED)
                return
        await self.store.transition(photo_id, READY, sizes=rows)
        self._on_ready(time.time() - record.row.create_time_ns / 1e9)

    async def _render(self, photo_id: str, sizes: list[int], trigger: str) -> list[SizeRow]:
        started = time.perf_counter()
        try:
            response = await self._resizer.RenderSizes(resize_pb2.RenderSizesRequest(photo_id=photo_id, sizes=sizes),
                                                       timeout=self._render_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        elapsed = time.perf_counter() - started
        rows = size_rows(photo_id, response.sizes)
        if trigger == "upload":
            self.counts.on_upload += len(rows)
        else:
            self.counts.on_request += len(rows)
        self.counts.rendered_bytes += sum(row.size_bytes for row in rows)
        self._on_render([row.size for row in rows], trigger, elapsed)
        return rows

    # -- reads ------------------------------------------------------------

    def viewable(self, photo_id: str) -> PhotoRecord:
        """The photo when it may be shown (PROCESSING or READY); ``NotFound`` (unknown, UPLOADING) or
        ``FailedPrecondition`` (REJECTED) otherwise."""
        record = self.store.require(photo_id)
        if record.status == UPLOADING:
            raise NotFound(f"photo {photo_id!r} is still uploading (call CompletePhotoUpload)")
        if record.status == REJECTED:
            raise FailedPrecondition(f"photo {photo_id!r} was rejected: its original is not a usable image")
        return record

    async def size(self, photo_id: str, size: int) -> tuple[PhotoRecord, SizeRow, bool]:
        """The photo, its stored ``size`` (rendered now when missing) and whether this call rendered it."""
        record = self.viewable(photo_id)
        stored = record.sizes.get(size)
        if stored is not None:
            return record, stored, False

        async def render() -> SizeRow:
            row = (await self._render(photo_id, [size], "request"))[0]
            await self.store.add_sizes(photo_id, [row])
            return row

        row, shared = await self._renders.do((photo_id, size), render)
        return self.store.require(photo_id), row, not shared
