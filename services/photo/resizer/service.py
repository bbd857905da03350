"""``casemesh.photo.v1.ResizeService`` (topology name ``photo-resizer``): makes and stores the photo sizes.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo Storage":
the ``create-thumbnails`` job, ``createThumbnails(photoId, originalKey)``:
download the original, resize it to widths 150, 640 and 1080 (``fit:
'inside'``, JPEG quality 80) and put each size back into object storage.
Stateless and internal: only ``photo-media`` calls it.

- ProbeOriginal reads ``raw/{photo_id}`` from the object store
  (``ObjectStoreService.ReadObject``) and reads its header
  (:func:`.imaging.probe`): format and displayed dimensions.
- RenderSizes reads the original, makes the sizes asked for
  (:func:`.imaging.render`, in a worker thread; at most
  ``max_parallel_renders`` calls at once per process) and stores each as a
  one-segment rendition of the photo id, generation 1
  (``ObjectStoreService.PutRendition`` with ``segment_data``, the sizes
  written concurrently, fsynced by the store) before it answers ready
  ``SizeRef``\\ s. Idempotent: a size's bytes depend only on the original's
  bytes and the size.

Status codes: INVALID_ARGUMENT naming ``photo_id`` or ``sizes`` /
``sizes[i]``; NOT_FOUND when no original is stored; FAILED_PRECONDITION when
the original is not a JPEG or PNG image, has more than ``max_image_pixels``
pixels, does not decode, is larger than 10 MiB, or would make a size the
store cannot keep (over 2 MiB, or over 65,535 pixels a side); UNAVAILABLE
(DEADLINE_EXCEEDED for a deadline) when the object store fails.

Metrics beyond the gRPC ones:
``casemesh_photo_render_seconds{size}`` (histogram, seconds): the Pillow
work of one RenderSizes call (decode, resample, encode, hash of every size it
asks for, measured in the worker thread, not counting the wait for a render
slot), labelled with the largest size it asks for: a call making all three
sizes is one observation under ``large``, an on-demand thumbnail one under
``thumbnail``; ``casemesh_photo_rendered_bytes_total{size}`` (counter):
JPEG bytes made, per size.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import grpc
from prometheus_client import Counter, Histogram

from casemesh.photo.v1 import photo_pb2
from casemesh.photo.v1 import resize_pb2 as pb
from casemesh.photo.v1 import resize_pb2_grpc as pb_grpc
from casemesh.video.v1 import storage_pb2, storage_pb2_grpc, video_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ...runtime.errors import FailedPrecondition, NotFound
from ...runtime.metrics import LATENCY_BUCKETS_S
from ..sizes import BY_SIZE, MAX_UPLOAD_BYTES, SIZE_GENERATION, SIZES, Size, object_key
from ..validation import validate_photo_id, validate_sizes
from .imaging import ImageRejected, Rendered, probe, render
from .settings import ResizerSettings

NAME = "photo-resizer"
FULL_NAME = pb.DESCRIPTOR.services_by_name["ResizeService"].full_name

RENDER_SECONDS = Histogram(
    "casemesh_photo_render_seconds",
    "Pillow work (decode, resample, encode) of one RenderSizes call, labelled with the largest size it makes.",
    ["size"], buckets=LATENCY_BUCKETS_S)
RENDERED_BYTES = Counter("casemesh_photo_rendered_bytes", "JPEG bytes of the photo sizes made, per size.", ["size"])
for _size in SIZES:
    RENDER_SECONDS.labels(_size.name)
    RENDERED_BYTES.labels(_size.name)


def _timed_render(data: bytes, widths: list[int], max_pixels: int) -> tuple[list[Rendered], float]:
    started = time.perf_counter()
    rendered = render(data, widths, max_pixels)
    return rendered, time.perf_counter() - started


class ResizeServicer(pb_grpc.ResizeServiceServicer):
    """Reads originals from ``storage`` (an ObjectStoreService stub), probes and renders them, stores the sizes."""

    def __init__(self, storage: storage_pb2_grpc.ObjectStoreServiceStub, settings: ResizerSettings) -> None:
        self._storage = storage
        self._max_pixels = settings.max_image_pixels
        self._timeout_s = settings.storage_timeout_ms / 1000
        self._renders = asyncio.Semaphore(settings.max_parallel_renders)

    async def _read_original(self, photo_id: str) -> bytes:
        """The original's bytes (``raw/{photo_id}``); ``NotFound`` when none is stored."""
        key = object_key(photo_id)
        chunks: list[bytes] = []
        total = 0
        call = self._storage.ReadObject(storage_pb2.ReadObjectRequest(key=key), timeout=self._timeout_s)
        try:
            async for chunk in call:
                total += len(chunk.data)
                if total > MAX_UPLOAD_BYTES:
                    raise FailedPrecondition(f"photo {photo_id}: the original is larger than {MAX_UPLOAD_BYTES:,} bytes")
                chunks.append(chunk.data)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"photo {photo_id} has no original stored ({key})") from None
            raise
        finally:
            call.cancel()  # no-op once the stream has ended
        return b"".join(chunks)

    async def ProbeOriginal(self, request: pb.ProbeOriginalRequest, context: grpc.aio.ServicerContext) -> pb.ProbeOriginalResponse:
        photo_id = validate_photo_id(request.photo_id)
        data = await self._read_original(photo_id)
        try:
            found = await asyncio.to_thread(probe, data, self._max_pixels)
        except ImageRejected as error:
            raise FailedPrecondition(f"photo {photo_id}: the original {error.reason}") from None
        return pb.ProbeOriginalResponse(format=found.format, width_px=found.width_px, height_px=found.height_px)

    async def _render(self, photo_id: str, data: bytes, sizes: Sequence[Size]) -> list[Rendered]:
        async with self._renders:
            try:
                rendered, seconds = await asyncio.to_thread(_timed_render, data, [s.width_px for s in sizes], self._max_pixels)
            except ImageRejected as error:
                raise FailedPrecondition(f"photo {photo_id}: the original {error.reason}") from None
        RENDER_SECONDS.labels(max(sizes, key=lambda s: s.width_px).name).observe(seconds)
        for size, made in zip(sizes, rendered, strict=True):
            RENDERED_BYTES.labels(size.name).inc(len(made.data))
        return rendered

    async def _store(self, photo_id: str, size: Size, made: Rendered) -> None:
        info = video_pb2.RenditionInfo(rendition=size.rendition, width_px=made.width_px, height_px=made.height_px,
                                       segment_size_bytes=[len(made.data)], bandwidth_bps=0, segment_duration_ms=0)
        await self._storage.PutRendition(storage_pb2.PutRenditionRequest(
            video_id=photo_id, generation=SIZE_GENERATION, rendition=info, segment_data=[made.data]), timeout=self._timeout_s)

    async def RenderSizes(self, request: pb.RenderSizesRequest, context: grpc.aio.ServicerContext) -> pb.RenderSizesResponse:
        photo_id = validate_photo_id(request.photo_id)
        sizes = [BY_SIZE[s] for s in validate_sizes(request.sizes)]
        data = await self._read_original(photo_id)
        rendered = await self._render(photo_id, data, sizes)
        outcomes = await asyncio.gather(*(self._store(photo_id, size, made) for size, made in zip(sizes, rendered, strict=True)),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return pb.RenderSizesResponse(sizes=[
            photo_pb2.SizeRef(size=size.size, ready=True, width_px=made.width_px, height_px=made.height_px,
                              size_bytes=len(made.data), sha256_hex=made.sha256_hex, object_id=photo_id,
                              generation=SIZE_GENERATION, rendition=size.rendition)
            for size, made in zip(sizes, rendered, strict=True)
        ])


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, ResizerSettings)
    storage = storage_pb2_grpc.ObjectStoreServiceStub(context.channel("video-storage"))
    return StatelessComponent(ResizeServicer(storage, settings), pb_grpc.add_ResizeServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("video-storage",), build=build,
    settings_model=ResizerSettings,
    access=Access(internal={"ProbeOriginal": ("photo-media",), "RenderSizes": ("photo-media",)}),
)
