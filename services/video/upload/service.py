"""``casemesh.video.v1.UploadService`` (topology name ``video-upload``): the upload API, metadata only.

Seed 004 ("Core API Surface"): the app server "only handles metadata; the raw
bytes go straight from the client to S3" through a pre-signed URL. Here:
InitiateUpload creates the video in ``video-catalog`` and signs an upload
token that ``video-storage`` accepts; CompleteUpload checks the bytes are all
stored, marks the video PROCESSING and queues the transcode job on
``video-transcode``. The steps and their failure semantics are in
:mod:`.coordinator`.
"""

from __future__ import annotations

import grpc
from pydantic import BaseModel, ConfigDict, Field

from casemesh.video.v1 import catalog_pb2_grpc, storage_pb2_grpc, transcode_pb2_grpc
from casemesh.video.v1 import upload_pb2 as pb
from casemesh.video.v1 import upload_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ..limits import DEFAULT_MAX_FILE_BYTES, MAX_FILE_BYTES_LIMIT
from ..tokens import UploadTokenSigner
from .coordinator import UploadCoordinator

NAME = "video-upload"
FULL_NAME = pb.DESCRIPTOR.services_by_name["UploadService"].full_name


class UploadSettings(BaseModel):
    """``settings.video-upload`` of the topology.

    - ``max_file_bytes``: largest ``file_size_bytes`` InitiateUpload accepts
      (default 256 MiB = 268,435,456; 1 to 4 GiB, the seed's "up to 4 GB";
      services/video/limits.py). ``settings.video-storage.max_object_bytes``
      caps every write with the same default: raise both together.
    - ``token_ttl_s``: how long an upload token is accepted, in seconds
      (default 3,600; > 0, at most 7 days).

    Upload tokens are signed with the mesh secret's ``upload-token`` key
    (``..tokens``; docs/security.md, "Secrets"): there is no secret setting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_file_bytes: int = Field(default=DEFAULT_MAX_FILE_BYTES, ge=1, le=MAX_FILE_BYTES_LIMIT)
    token_ttl_s: float = Field(default=3600.0, gt=0, le=7 * 86400)


class UploadServicer(pb_grpc.UploadServiceServicer):
    """Thin adapter: the coordinator validates and does the work; errors map to codes in the interceptor."""

    def __init__(self, coordinator: UploadCoordinator):
        self._coordinator = coordinator

    async def InitiateUpload(self, request: pb.InitiateUploadRequest, context: grpc.aio.ServicerContext) -> pb.InitiateUploadResponse:
        return await self._coordinator.initiate(request)

    async def CompleteUpload(self, request: pb.CompleteUploadRequest, context: grpc.aio.ServicerContext) -> pb.CompleteUploadResponse:
        return await self._coordinator.complete(request.video_id)


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, UploadSettings)
    coordinator = UploadCoordinator(
        catalog_pb2_grpc.CatalogServiceStub(context.channel("video-catalog")),
        storage_pb2_grpc.ObjectStoreServiceStub(context.channel("video-storage")),
        transcode_pb2_grpc.TranscodeQueueServiceStub(context.channel("video-transcode")),
        UploadTokenSigner(context.upload_keys()),
        max_file_bytes=settings.max_file_bytes, token_ttl_s=settings.token_ttl_s,
    )
    return StatelessComponent(UploadServicer(coordinator), pb_grpc.add_UploadServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("video-catalog", "video-storage", "video-transcode"),
    build=build, settings_model=UploadSettings,
    access=Access(public={"InitiateUpload", "CompleteUpload"}),
)
