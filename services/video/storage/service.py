"""``casemesh.video.v1.ObjectStoreService`` (topology name ``video-storage``): the platform's object store.

Mechanisms (shared/seeds/004_718541f717f7b956.txt):
- "direct PUT (pre-signed)": clients stream raw bytes here with the upload
  token ``video-upload`` signed (:mod:`..tokens`); the token is verified on
  every call, no call back to the upload service.
- "no data loss SLA": raw bytes are appended in order and fsynced before
  UploadObject answers; uploads resume from GetUploadOffset after a broken
  stream or a restart (:mod:`.raw_store`).
- "Transcoded videos back to S3" / segments "immutable once transcoded":
  renditions are stored as descriptions and served segment by segment as the
  CDN edge's origin (:mod:`.renditions`).
- Photo sharing (seed 003, "Instagram": "S3 (writes) + CDN (reads)"): the
  same store keeps photo originals (``raw/{photo_id}``) and each resized
  photo as a one-segment rendition of real bytes, served by the same edge.

Metrics beyond the gRPC ones: ``casemesh_video_upload_bytes_total`` (raw bytes
made durable by UploadObject), ``casemesh_video_storage_segment_budget_waits_total``
(GetSegment reads that waited for the ``segment_buffer_bytes`` budget).

Memory is bounded per call: UploadObject chunks are at most 1 MiB, ReadObject
streams 1 MiB chunks under gRPC flow control, and GetSegment materialises only
the range asked for (the edge asks for 256 KiB at a time), all GetSegment
calls together at most ``segment_buffer_bytes``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from casemesh.video.v1 import storage_pb2 as pb
from casemesh.video.v1 import storage_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument, Unauthenticated
from ..byte_budget import ByteBudget
from ..limits import DEFAULT_MAX_FILE_BYTES, MAX_FILE_BYTES_LIMIT, MAX_SEGMENT_BYTES
from ..tokens import UploadTokenSigner
from .files import remove_temporaries
from .raw_store import MAX_CHUNK_BYTES, RawObjectStore
from .renditions import RenditionStore, StoredRendition, read_segment_range
from .validation import (validate_put_rendition, validate_rendition_ref, validate_segment_index,
                         validate_segment_range, validate_upload_token_size, video_id_of_key)

log = logging.getLogger("casemesh.video.storage")

NAME = "video-storage"
FULL_NAME = pb.DESCRIPTOR.services_by_name["ObjectStoreService"].full_name

#: Default ``segment_buffer_bytes``: segment bytes GetSegment calls materialise at once (64 MiB).
DEFAULT_SEGMENT_BUFFER_BYTES = 64 << 20

UPLOAD_BYTES = Counter("casemesh_video_upload_bytes", "Raw upload bytes made durable (fsynced) by UploadObject.")
SEGMENT_BUDGET_WAITS = Counter("casemesh_video_storage_segment_budget_waits",
                               "GetSegment reads that waited for the segment_buffer_bytes budget.")


class StorageSettings(BaseModel):
    """``settings.video-storage`` of the topology.

    Upload tokens are verified with the mesh secret's ``upload-token`` keys
    (``..tokens``; docs/security.md, "Secrets"): there is no secret setting.

    ``max_object_bytes``: largest raw object, in bytes, enforced on every
    UploadObject chunk whatever the token declares (default 256 MiB, 1 to
    4 GiB; services/video/limits.py). Keep it >= ``settings.video-upload.max_file_bytes``.

    ``segment_buffer_bytes``: the byte budget of GetSegment: at most this
    many bytes of segments are materialised by calls in flight at once;
    further reads wait their turn, first come first served (default 64 MiB,
    at least 16 MiB, the largest segment). The edge reads 256 KiB ranges, so
    it rarely waits; a whole 16 MiB segment takes a quarter of it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_object_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, ge=1, le=MAX_FILE_BYTES_LIMIT)
    segment_buffer_bytes: int = Field(default=DEFAULT_SEGMENT_BUFFER_BYTES, ge=MAX_SEGMENT_BYTES, le=16 << 30)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ObjectStoreServicer(pb_grpc.ObjectStoreServiceServicer):
    """Validates requests, checks tokens, and calls the raw and rendition stores."""

    def __init__(self, raw: RawObjectStore, renditions: RenditionStore, tokens: UploadTokenSigner,
                 segment_budget: ByteBudget | None = None):
        self._raw = raw
        self._renditions = renditions
        self._tokens = tokens
        self._segment_budget = segment_budget or ByteBudget(DEFAULT_SEGMENT_BUFFER_BYTES)

    async def UploadObject(self, request_iterator: AsyncIterator[pb.UploadObjectRequest],
                           context: grpc.aio.ServicerContext) -> pb.UploadObjectResponse:
        token = None
        obj = None
        try:
            async for chunk in request_iterator:
                if obj is None:
                    token = chunk.upload_token
                    validate_upload_token_size(token)
                    grant = self._tokens.verify(token, _now_ms())
                    obj = await self._raw.open(grant)
                elif chunk.upload_token != token:
                    raise InvalidArgument("upload_token", "must be the same on every chunk of a stream")
                await self._raw.append(obj, chunk.offset_bytes, chunk.data)
            if obj is None:
                raise Unauthenticated("upload_token is missing: the stream carried no chunk")
        finally:
            if obj is not None:  # acknowledged or not, what was written is made durable now
                UPLOAD_BYTES.inc(await self._raw.sync(obj))
        stored, expected = self._raw.offset(obj)
        return pb.UploadObjectResponse(key=obj.key, stored_bytes=stored, expected_size_bytes=expected)

    async def GetUploadOffset(self, request: pb.GetUploadOffsetRequest, context: grpc.aio.ServicerContext) -> pb.GetUploadOffsetResponse:
        validate_upload_token_size(request.upload_token)
        grant = self._tokens.verify(request.upload_token, _now_ms())
        stored, expected = self._raw.offset(await self._raw.open(grant))
        return pb.GetUploadOffsetResponse(stored_bytes=stored, expected_size_bytes=expected)

    async def StatObject(self, request: pb.StatObjectRequest, context: grpc.aio.ServicerContext) -> pb.StatObjectResponse:
        stat = await self._raw.stat(video_id_of_key(request.key))
        return pb.StatObjectResponse(size_bytes=stat.size_bytes, expected_size_bytes=stat.expected_size_bytes,
                                     sha256_hex=stat.sha256_hex)

    async def ReadObject(self, request: pb.ReadObjectRequest, context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ReadObjectResponse]:
        async with contextlib.aclosing(self._raw.read(video_id_of_key(request.key), MAX_CHUNK_BYTES)) as chunks:
            async for offset, data in chunks:  # closed (file and all) at once if the reader goes away
                yield pb.ReadObjectResponse(offset_bytes=offset, data=data)

    async def PutRendition(self, request: pb.PutRenditionRequest, context: grpc.aio.ServicerContext) -> pb.PutRenditionResponse:
        validate_put_rendition(request.video_id, request.generation, request.rendition, request.content_seed,
                               request.segment_data)
        total = await self._renditions.put(
            StoredRendition(request.video_id, request.generation, request.rendition, request.content_seed),
            request.segment_data[0] if request.segment_data else None)
        return pb.PutRenditionResponse(total_bytes=total)

    async def GetRendition(self, request: pb.GetRenditionRequest, context: grpc.aio.ServicerContext) -> pb.GetRenditionResponse:
        validate_rendition_ref(request.video_id, request.generation, request.rendition)
        stored = await self._renditions.get(request.video_id, request.generation, request.rendition)
        return pb.GetRenditionResponse(rendition=stored.info, content_seed=stored.content_seed)

    async def GetSegment(self, request: pb.GetSegmentRequest, context: grpc.aio.ServicerContext) -> pb.GetSegmentResponse:
        validate_rendition_ref(request.video_id, request.generation, request.rendition)
        validate_segment_index(request.index)
        validate_segment_range(request.offset_bytes, request.max_bytes)
        stored, size = await self._renditions.segment_size(request.video_id, request.generation, request.rendition,
                                                           request.index)
        if request.offset_bytes >= size:
            raise InvalidArgument("offset_bytes", f"must be below the segment's size of {size} bytes (got {request.offset_bytes})")
        length = min(request.max_bytes or size, size - request.offset_bytes)
        async with self._segment_budget.hold(length):  # waits while other reads hold the budget
            data = await read_segment_range(stored, request.index, size, request.offset_bytes, length)
            return pb.GetSegmentResponse(data=data, segment_size_bytes=size)


class StorageComponent:
    """The object store over ``data_dir("video-storage")``; :meth:`start` reloads the rendition journal."""

    def __init__(self, context: RuntimeContext):
        settings = context.settings(NAME, StorageSettings)
        root = context.data_dir(NAME)
        remove_temporaries(root)
        self.raw = RawObjectStore(root, settings.max_object_bytes)
        self.renditions = RenditionStore(root)
        self.servicer = ObjectStoreServicer(self.raw, self.renditions,
                                            UploadTokenSigner(context.upload_keys()),
                                            ByteBudget(settings.segment_buffer_bytes, on_wait=SEGMENT_BUDGET_WAITS.inc))

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_ObjectStoreServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        loaded = await self.renditions.load()
        if loaded:
            log.info("reloaded %d renditions from %s", loaded, self.renditions.root)

    async def stop(self) -> None:
        pass


async def build(context: RuntimeContext) -> StorageComponent:
    return StorageComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=StorageSettings,
    # Uploads are public (each call carries an upload token); the rest serves the mesh.
    access=Access(public={"UploadObject", "GetUploadOffset"}, internal={
        "StatObject": ("video-upload", "photo-media"),
        "ReadObject": ("video-transcoder", "photo-resizer"),
        "PutRendition": ("video-transcoder", "photo-resizer"),
        "GetRendition": ("video-playback", "video-edge"),
        "GetSegment": ("video-edge",),
    }),
)
