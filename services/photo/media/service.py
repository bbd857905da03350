"""``casemesh.photo.v1.PhotoService`` (topology name ``photo-media``): photos' metadata and life cycle.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo
Storage". The mechanism (upload token, check, processing queue, sizes on
first request) is :mod:`.lifecycle`; the durable rows are :mod:`.store` over
:mod:`.journal`. The A/B switch is ``pregenerate_sizes``
(:class:`.settings.MediaSettings`): every size made on upload, as the seed
does, against every size made on its first request.

Status codes: INVALID_ARGUMENT naming the field; NOT_FOUND (unknown photo,
or still uploading for GetPhoto); FAILED_PRECONDITION (upload incomplete,
original not an image, photo rejected); UNAVAILABLE or DEADLINE_EXCEEDED
when idgen, the object store or the resizer fail; INTERNAL when the journal
cannot be written (nothing is acknowledged).

Metrics beyond the gRPC ones: ``casemesh_photo_renders_total{size,trigger}``
(trigger ``upload`` or ``first_request``), ``casemesh_photo_render_call_seconds{trigger}``
(RenderSizes as photo-media waits for it), ``casemesh_photo_processing_backlog``
(photos PROCESSING), ``casemesh_photo_ready_lag_seconds`` (create to READY),
``casemesh_photo_uploads_total{result}`` (``ready``, ``processing``, ``rejected``).
"""

from __future__ import annotations

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import Counter, Gauge, Histogram

from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.photo.v1 import media_pb2 as pb
from casemesh.photo.v1 import media_pb2_grpc as pb_grpc
from casemesh.photo.v1 import photo_pb2, resize_pb2_grpc
from casemesh.video.v1 import storage_pb2_grpc

from ...idgen.id_block import IdBlockLease, NoIdsLeased, no_id_status
from ...runtime import page_tokens
from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, InvalidArgument
from ...runtime.metrics import LATENCY_BUCKETS_S
from ...video.tokens import UploadTokenSigner
from ..sizes import (BY_NAME, BY_SIZE, DEFAULT_USER_PAGE_SIZE, MAX_RECENT_AUTHORS, MAX_RECENT_PHOTOS,
                     MAX_USER_PAGE_SIZE, SIZE_GENERATION, SIZES, photo_id, scaled)
from ..validation import (page_size, validate_caption, validate_file_size, validate_photo_id, validate_size,
                          validate_user_id)
from .journal import SizeRow
from .lifecycle import PhotoLifecycle
from .settings import MediaSettings
from .store import PROCESSING, READY, REJECTED, PhotoRecord, PhotoStore

NAME = "photo-media"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PhotoService"].full_name

RENDERS = Counter("casemesh_photo_renders", "Photo sizes made, by size and trigger (upload or first_request).",
                  ("size", "trigger"))
RENDER_CALL = Histogram("casemesh_photo_render_call_seconds",
                        "RenderSizes calls as photo-media waits for them, by trigger.", ("trigger",),
                        buckets=LATENCY_BUCKETS_S)
BACKLOG = Gauge("casemesh_photo_processing_backlog", "Photos PROCESSING: waiting for their pre-generated sizes.")
READY_LAG = Histogram("casemesh_photo_ready_lag_seconds", "Seconds from InitiatePhotoUpload to READY.",
                      buckets=LATENCY_BUCKETS_S)
UPLOADS = Counter("casemesh_photo_uploads", "Completed uploads by result (ready, processing, rejected).", ("result",))

_TRIGGER = {"upload": "upload", "request": "first_request"}
for _trigger in _TRIGGER.values():  # every series exists from the start, at 0
    RENDER_CALL.labels(_trigger)
    for _size in SIZES:
        RENDERS.labels(_size.name, _trigger)
for _result in ("ready", "processing", "rejected"):
    UPLOADS.labels(_result)


def size_ref(record: PhotoRecord, size: int) -> photo_pb2.SizeRef:
    """The SizeRef of ``size`` of a photo whose dimensions are known: ready (with bytes and hash) when stored."""
    entry = BY_SIZE[size]
    stored: SizeRow | None = record.sizes.get(size)
    ref = photo_pb2.SizeRef(size=size, object_id=record.photo_id, generation=SIZE_GENERATION, rendition=entry.rendition)
    if stored is not None:
        ref.ready = True
        ref.width_px, ref.height_px = stored.width_px, stored.height_px
        ref.size_bytes, ref.sha256_hex = stored.size_bytes, stored.sha256_hex
    else:
        ref.width_px, ref.height_px = scaled(record.row.width_px, record.row.height_px, entry.width_px)
    return ref


def photo_message(record: PhotoRecord) -> photo_pb2.Photo:
    """The contract's Photo of a record (sizes listed once the original's dimensions are known)."""
    row = record.row
    photo = photo_pb2.Photo(photo_id=row.photo_id, author_id=row.author_id, caption=row.caption, status=row.status,
                            width_px=row.width_px, height_px=row.height_px)
    photo.create_time.FromNanoseconds(row.create_time_ns)
    if row.status in (PROCESSING, READY):
        photo.sizes.extend(size_ref(record, s.size) for s in SIZES)
    return photo


class PhotoServicer(pb_grpc.PhotoServiceServicer):
    """Validates, then calls the :class:`PhotoLifecycle` or reads the :class:`PhotoStore`."""

    def __init__(self, lifecycle: PhotoLifecycle, ids: IdBlockLease) -> None:
        self._life = lifecycle
        self._store = lifecycle.store
        self._ids = ids

    async def InitiatePhotoUpload(self, request: pb.InitiatePhotoUploadRequest,
                                  context: grpc.aio.ServicerContext) -> pb.InitiatePhotoUploadResponse:
        author = validate_user_id("author_id", request.author_id)
        caption = validate_caption(request.caption)
        size = validate_file_size(request.file_size_bytes)
        try:
            snowflake = await self._ids.next_id()
        except (grpc.aio.AioRpcError, NoIdsLeased) as error:
            code, why = no_id_status(error)
            await context.abort(code, f"no photo id: {why}")
        try:
            upload = await self._life.initiate(author, caption, size, photo_id(snowflake))
        except Exception as error:  # noqa: BLE001 - OSError, sqlite3.Error: not durable, so not acknowledged
            await context.abort(grpc.StatusCode.INTERNAL, f"the photo journal could not be written: {error}")
        expire = Timestamp()
        expire.FromMilliseconds(upload.expire_at_ms)
        return pb.InitiatePhotoUploadResponse(photo_id=upload.record.photo_id, upload_token=upload.token,
                                              object_key=f"raw/{upload.record.photo_id}", expire_time=expire)

    async def CompletePhotoUpload(self, request: pb.CompletePhotoUploadRequest,
                                  context: grpc.aio.ServicerContext) -> pb.CompletePhotoUploadResponse:
        pid = validate_photo_id(request.photo_id)
        try:
            record = await self._life.complete(pid)
        except FailedPrecondition:
            if (found := self._store.get(pid)) is not None and found.status == REJECTED:
                UPLOADS.labels("rejected").inc()
            raise
        UPLOADS.labels("ready" if record.status == READY else "processing").inc()
        BACKLOG.set(self._life.backlog)
        return pb.CompletePhotoUploadResponse(photo=photo_message(record))

    async def GetPhoto(self, request: pb.GetPhotoRequest, context: grpc.aio.ServicerContext) -> pb.GetPhotoResponse:
        pid = validate_photo_id(request.photo_id)
        size = validate_size(request.size, allow_unspecified=True)
        if size == photo_pb2.PHOTO_SIZE_UNSPECIFIED:
            return pb.GetPhotoResponse(photo=photo_message(self._life.viewable(pid)))
        record, _, rendered_now = await self._life.size(pid, size)
        return pb.GetPhotoResponse(photo=photo_message(record), ref=size_ref(record, size), rendered_now=rendered_now)

    async def ListUserPhotos(self, request: pb.ListUserPhotosRequest,
                             context: grpc.aio.ServicerContext) -> pb.ListUserPhotosResponse:
        author = validate_user_id("author_id", request.author_id)
        size = page_size(request.page_size, default=DEFAULT_USER_PAGE_SIZE, most=MAX_USER_PAGE_SIZE)
        before = None
        if request.page_token:
            before = page_tokens.decode(request.page_token, "user-photos", author, {"b": str})["b"]
            validate_photo_id(before, "page_token")
        page = self._store.user_photos(author, before, size + 1)
        more = len(page) > size
        page = page[:size]
        token = page_tokens.encode("user-photos", author, {"b": page[-1].photo_id}) if more else ""
        return pb.ListUserPhotosResponse(photos=[photo_message(r) for r in page], next_page_token=token)

    async def ListRecentPhotos(self, request: pb.ListRecentPhotosRequest,
                               context: grpc.aio.ServicerContext) -> pb.ListRecentPhotosResponse:
        if len(request.author_ids) > MAX_RECENT_AUTHORS:
            raise InvalidArgument("author_ids", f"has {len(request.author_ids):,} authors; at most {MAX_RECENT_AUTHORS:,}")
        for i, author in enumerate(request.author_ids):
            validate_user_id(f"author_ids[{i}]", author)
        if not 1 <= request.limit <= MAX_RECENT_PHOTOS:
            raise InvalidArgument("limit", f"must be 1 to {MAX_RECENT_PHOTOS:,}, not {request.limit}")
        before = validate_photo_id(request.before_photo_id, "before_photo_id") if request.before_photo_id else None
        records = self._store.recent(list(request.author_ids), before, request.limit)
        return pb.ListRecentPhotosResponse(photos=[photo_message(r) for r in records])

    async def GetMediaStatus(self, request: pb.GetMediaStatusRequest,
                             context: grpc.aio.ServicerContext) -> pb.GetMediaStatusResponse:
        counts = self._life.counts
        BACKLOG.set(self._life.backlog)
        return pb.GetMediaStatusResponse(
            photos_ready=self._store.count(READY), photos_processing=self._store.count(PROCESSING),
            photos_rejected=self._store.count(REJECTED), renders_on_upload=counts.on_upload,
            renders_on_request=counts.on_request, rendered_bytes=counts.rendered_bytes)


def _rendered(sizes: list[int], trigger: str, seconds: float) -> None:
    for size in sizes:
        RENDERS.labels(BY_SIZE[size].name, _TRIGGER[trigger]).inc()
    RENDER_CALL.labels(_TRIGGER[trigger]).observe(seconds)


class MediaComponent:
    """The servicer, the photo store and its journal, the lifecycle (queue) and the Snowflake id lease."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, MediaSettings)
        idgen = idgen_pb2_grpc.IdGeneratorServiceStub(context.channel("idgen"))

        async def lease(count: int) -> list[tuple[int, int]]:
            response = await idgen.LeaseIds(idgen_pb2.LeaseIdsRequest(count=count, layout=idgen_pb2.ID_LAYOUT_SNOWFLAKE))
            return [(r.start, r.count) for r in response.ranges]

        self.store = PhotoStore(context.data_dir(NAME))
        self.ids = IdBlockLease(lease, block_size=settings.id_block_size, low_water=max(1, settings.id_block_size // 4))
        self.lifecycle = PhotoLifecycle(
            self.store, resize_pb2_grpc.ResizeServiceStub(context.channel("photo-resizer")),
            storage_pb2_grpc.ObjectStoreServiceStub(context.channel("video-storage")),
            UploadTokenSigner(context.upload_keys()), self.ids.next_id,
            pregenerate=[BY_NAME[name].size for name in settings.pregenerate_sizes],
            render_workers=settings.render_workers, render_timeout_s=settings.render_timeout_ms / 1000,
            token_ttl_s=settings.upload_token_ttl_s, on_render=_rendered, on_ready=self._ready)
        self.servicer = PhotoServicer(self.lifecycle, self.ids)

    def _ready(self, lag_s: float) -> None:
        READY_LAG.observe(lag_s)
        BACKLOG.set(self.lifecycle.backlog)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PhotoServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        queued = await self.store.load()
        await self.lifecycle.start(queued)
        BACKLOG.set(self.lifecycle.backlog)

    async def stop(self) -> None:
        await self.lifecycle.stop()
        await self.ids.aclose()
        await self.store.close()


async def build(context: RuntimeContext) -> MediaComponent:
    return MediaComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("idgen", "video-storage", "photo-resizer"), build=build,
    settings_model=MediaSettings,
    # Listing, metadata and sizes already made are served while the resizer is down.
    optional_dependencies=("photo-resizer",),
    access=Access(public={"InitiatePhotoUpload", "CompletePhotoUpload", "GetPhoto", "ListUserPhotos", "GetMediaStatus"},
                  internal={"ListRecentPhotos": ("photo-feed",)}),
)
