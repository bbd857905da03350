"""The upload API's two steps, over the catalogue, the object store and the transcode queue.

Seed 004 ("Core API Surface", "Write plane"): ``initiate-upload`` takes the
metadata and answers with the video id and a pre-signed upload URL (here a
signed token, :mod:`..tokens`); the client puts the bytes to the object store
directly; the object store's "S3 event" puts a job on the transcode queue.
casemesh has no object-store events, so the client says when it is done
(CompleteUpload) and this module raises the event after checking that the
whole file is durably stored.

Steps and failure semantics (nothing is ever half-published: only a
transcode worker publishes, after every rendition is written):

InitiateUpload
    validate → ``CatalogService.CreateVideo`` (status UPLOADING) → sign a
    token for ``raw/{video_id}``, the declared size and ``now + token_ttl_s``.
CompleteUpload
    ``CatalogService.GetVideo`` (NOT_FOUND for an unknown id) →
    PUBLISHED already: return the job of its generation (EnqueueJob is
    idempotent) →
    otherwise ``ObjectStoreService.StatObject``: fewer bytes than declared is
    FAILED_PRECONDITION giving both sizes →
    ``CatalogService.MarkProcessing`` (idempotent: the same generation while
    PROCESSING) → ``TranscodeQueueService.EnqueueJob`` (idempotent per video
    and generation). A failure at any step leaves the video UPLOADING or
    PROCESSING, never PUBLISHED, and the same call can be retried: it neither
    bumps the generation twice nor queues a second job.

Dependencies are passed in as objects with the gRPC stubs' coroutine methods
(``GetVideo(request, timeout=...)``...), so tests can use fakes.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import grpc
from cachetools import LRUCache

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, dependency_error
from casemesh.video.v1 import catalog_pb2, storage_pb2, transcode_pb2, upload_pb2, video_pb2

from ..tokens import UploadGrant, UploadTokenSigner, raw_key
from .validation import validate_initiate, validate_video_id

#: Timeout of StatObject, in seconds: after a storage restart it may re-hash up to max_file_bytes.
STAT_TIMEOUT_S = 30.0
#: Declared sizes remembered for CompleteUpload's error message (not needed for correctness).
REMEMBERED_SIZES = 100_000


class UploadCoordinator:
    """InitiateUpload and CompleteUpload (see the module doc) for one upload service replica.

    ``catalog``, ``storage`` and ``queue`` have the methods of the
    CatalogService, ObjectStoreService and TranscodeQueueService stubs;
    ``signer`` signs tokens; ``max_file_bytes`` bounds ``file_size_bytes``;
    ``token_ttl_s`` is a token's lifetime in seconds; ``clock`` gives Unix
    seconds.
    """

    def __init__(self, catalog, storage, queue, signer: UploadTokenSigner, *, max_file_bytes: int,
                 token_ttl_s: float, clock: Callable[[], float] = time.time):
        self._catalog = catalog
        self._storage = storage
        self._queue = queue
        self._signer = signer
        self.max_file_bytes = max_file_bytes
        self.token_ttl_s = token_ttl_s
        self._clock = clock
        self._declared: LRUCache[str, int] = LRUCache(REMEMBERED_SIZES)

    async def initiate(self, request: upload_pb2.InitiateUploadRequest) -> upload_pb2.InitiateUploadResponse:
        """Create the video (UPLOADING) and sign its upload token; errors as InitiateUpload's."""
        validate_initiate(request, self.max_file_bytes)
        try:
            created = await self._catalog.CreateVideo(catalog_pb2.CreateVideoRequest(
                channel_id=request.channel_id, title=request.title, description=request.description,
                tags=request.tags, duration_s=request.duration_s))
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        video_id = created.video.video_id
        key = raw_key(video_id)
        expire_at_ms = int((self._clock() + self.token_ttl_s) * 1000)
        token = self._signer.sign(UploadGrant(video_id, key, request.file_size_bytes, expire_at_ms))
        self._declared[video_id] = request.file_size_bytes
        response = upload_pb2.InitiateUploadResponse(video_id=video_id, upload_token=token, object_key=key)
        response.expire_time.FromMilliseconds(expire_at_ms)
        return response

    async def complete(self, video_id: str) -> upload_pb2.CompleteUploadResponse:
        """Check the upload is whole, mark the video PROCESSING and queue its job; errors as CompleteUpload's."""
        validate_video_id(video_id)
        try:
            video = (await self._catalog.GetVideo(catalog_pb2.GetVideoRequest(video_id=video_id))).video
            if video.status == video_pb2.VIDEO_STATUS_PUBLISHED:
                job = await self._enqueue(video, video.generation)
                return upload_pb2.CompleteUploadResponse(status=video.status, job_id=job.job_id, generation=video.generation)
            await self._check_stored(video_id)
            marked = await self._catalog.MarkProcessing(catalog_pb2.MarkProcessingRequest(video_id=video_id))
            job = await self._enqueue(marked.video, marked.generation)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        return upload_pb2.CompleteUploadResponse(status=video_pb2.VIDEO_STATUS_PROCESSING, job_id=job.job_id,
                                                 generation=marked.generation)

    async def _check_stored(self, video_id: str) -> None:
        key = raw_key(video_id)
        try:
            stat = await self._storage.StatObject(storage_pb2.StatObjectRequest(key=key), timeout=STAT_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.NOT_FOUND:
                raise
            declared = self._declared.get(video_id)
            of = f"of {declared} declared bytes " if declared is not None else ""
            raise FailedPrecondition(f"{key}: 0 bytes {of}stored; upload the file before CompleteUpload") from None
        if stat.size_bytes < stat.expected_size_bytes:
            raise FailedPrecondition(f"{key}: {stat.size_bytes} of {stat.expected_size_bytes} declared bytes stored; "
                                     f"upload the remaining {stat.expected_size_bytes - stat.size_bytes} bytes "
                                     f"(resume at offset {stat.size_bytes}) before CompleteUpload")

    async def _enqueue(self, video: video_pb2.Video, generation: int) -> transcode_pb2.TranscodeJob:
        job = transcode_pb2.TranscodeJob(video_id=video.video_id, generation=generation, raw_key=raw_key(video.video_id),
                                         duration_s=video.duration_s)
        return (await self._queue.EnqueueJob(transcode_pb2.EnqueueJobRequest(job=job))).job
