"""The upload API's steps (services/video/upload/coordinator.py) against fake catalogue, store and queue."""

from __future__ import annotations

import grpc
import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime.secrets import UPLOAD_TOKEN, MeshSecret
from casemesh.services.video.tokens import UploadTokenSigner
from casemesh.services.video.upload.coordinator import UploadCoordinator
from casemesh.video.v1 import catalog_pb2, storage_pb2, transcode_pb2, upload_pb2, video_pb2

SECRET = MeshSecret("unit-test-secret-0123456789abcdef-0123").keyring(UPLOAD_TOKEN)


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeCatalog:
    def __init__(self):
        self.videos: dict[str, video_pb2.Video] = {}

    async def CreateVideo(self, request, timeout=None):
        video = video_pb2.Video(video_id=f"vid{len(self.videos)}", channel_id=request.channel_id, title=request.title,
                                duration_s=request.duration_s, status=video_pb2.VIDEO_STATUS_UPLOADING)
        self.videos[video.video_id] = video
        return catalog_pb2.CreateVideoResponse(video=video)

    async def GetVideo(self, request, timeout=None):
        if request.video_id not in self.videos:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"no video {request.video_id}")
        return catalog_pb2.GetVideoResponse(video=self.videos[request.video_id])

    async def MarkProcessing(self, request, timeout=None):
        video = self.videos[request.video_id]
        if video.status == video_pb2.VIDEO_STATUS_UPLOADING:
            video.status = video_pb2.VIDEO_STATUS_PROCESSING
            video.generation += 1
        return catalog_pb2.MarkProcessingResponse(video=video, generation=video.generation)


class FakeStorage:
    def __init__(self):
        self.objects: dict[str, tuple[int, int]] = {}

    async def StatObject(self, request, timeout=None):
        if request.key not in self.objects:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"no object {request.key}")
        size, expected = self.objects[request.key]
        return storage_pb2.StatObjectResponse(size_bytes=size, expected_size_bytes=expected, sha256_hex="0" * 64)


class FakeQueue:
    def __init__(self):
        self.jobs: dict[tuple[str, int], transcode_pb2.TranscodeJob] = {}
        self.fail = False

    async def EnqueueJob(self, request, timeout=None):
        if self.fail:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "queue down")
        key = (request.job.video_id, request.job.generation)
        if key not in self.jobs:
            job = transcode_pb2.TranscodeJob()
            job.CopyFrom(request.job)
            job.job_id = f"job{len(self.jobs)}"
            self.jobs[key] = job
        return transcode_pb2.EnqueueJobResponse(job=self.jobs[key])


@pytest.fixture
def parts():
    catalog, storage, queue = FakeCatalog(), FakeStorage(), FakeQueue()
    coordinator = UploadCoordinator(catalog, storage, queue, UploadTokenSigner(SECRET), max_file_bytes=1000,
                                    token_ttl_s=60, clock=lambda: 1_700_000_000.0)
    return coordinator, catalog, storage, queue


def request(**changes) -> upload_pb2.InitiateUploadRequest:
    fields = dict(channel_id="chan_1", title="A title", description="d", tags=["cats", "music"], duration_s=30.0, file_size_bytes=500)
    fields.update(changes)
    return upload_pb2.InitiateUploadRequest(**fields)


async def test_initiate_creates_the_video_and_signs_a_token(parts):
    coordinator, catalog, _, _ = parts
    response = await coordinator.initiate(request())
    assert response.video_id in catalog.videos and response.object_key == f"raw/{response.video_id}"
    assert response.expire_time.ToMilliseconds() == 1_700_000_060_000
    grant = UploadTokenSigner(SECRET).verify(response.upload_token, now_ms=1_700_000_000_000)
    assert (grant.video_id, grant.key, grant.size_bytes) == (response.video_id, response.object_key, 500)


@pytest.mark.parametrize("changes, field", [
    (dict(channel_id=""), "channel_id"),
    (dict(channel_id="bad id"), "channel_id"),
    (dict(title=""), "title"),
    (dict(title="   "), "title"),
    (dict(title="x" * 101), "title"),
    (dict(description="x" * 5001), "description"),
    (dict(tags=["t"] * 16), "tags"),
    (dict(tags=["ok", "has space"]), "tags[1]"),
    (dict(duration_s=0), "duration_s"),
    (dict(duration_s=float("nan")), "duration_s"),
    (dict(duration_s=43_201), "duration_s"),
    (dict(file_size_bytes=-5), "file_size_bytes"),
    (dict(file_size_bytes=0), "file_size_bytes"),
    (dict(file_size_bytes=1001), "file_size_bytes"),
])
async def test_initiate_validation_names_the_field_and_creates_nothing(parts, changes, field):
    coordinator, catalog, _, _ = parts
    with pytest.raises(InvalidArgument) as caught:
        await coordinator.initiate(request(**changes))
    assert caught.value.field == field
    assert catalog.videos == {}


async def test_complete_checks_bytes_marks_processing_and_queues_once(parts):
    coordinator, catalog, storage, queue = parts
    video_id = (await coordinator.initiate(request())).video_id
    with pytest.raises(FailedPrecondition, match="0 bytes of 500 declared bytes"):
        await coordinator.complete(video_id)
    storage.objects[f"raw/{video_id}"] = (200, 500)
    with pytest.raises(FailedPrecondition, match="200 of 500"):
        await coordinator.complete(video_id)
    assert catalog.videos[video_id].status == video_pb2.VIDEO_STATUS_UPLOADING and queue.jobs == {}

    storage.objects[f"raw/{video_id}"] = (500, 500)
    done = await coordinator.complete(video_id)
    assert (done.status, done.generation) == (video_pb2.VIDEO_STATUS_PROCESSING, 1)
    again = await coordinator.complete(video_id)  # a retried call: same job, same generation
    assert (again.job_id, again.generation) == (done.job_id, 1)
    assert list(queue.jobs) == [(video_id, 1)]
    job = queue.jobs[(video_id, 1)]
    assert (job.raw_key, job.duration_s) == (f"raw/{video_id}", 30.0)

    catalog.videos[video_id].status = video_pb2.VIDEO_STATUS_PUBLISHED
    published = await coordinator.complete(video_id)
    assert (published.status, published.job_id, published.generation) == (video_pb2.VIDEO_STATUS_PUBLISHED, done.job_id, 1)


async def test_failed_enqueue_leaves_the_video_unpublished_and_retry_works(parts):
    coordinator, catalog, storage, queue = parts
    video_id = (await coordinator.initiate(request())).video_id
    storage.objects[f"raw/{video_id}"] = (500, 500)
    queue.fail = True
    with pytest.raises(grpc.aio.AioRpcError):  # the interceptor answers UNAVAILABLE
        await coordinator.complete(video_id)
    assert catalog.videos[video_id].status == video_pb2.VIDEO_STATUS_PROCESSING
    queue.fail = False
    done = await coordinator.complete(video_id)
    assert done.generation == 1 and len(queue.jobs) == 1


async def test_complete_unknown_or_invalid_video(parts):
    coordinator, *_ = parts
    with pytest.raises(NotFound):
        await coordinator.complete("nope")
    with pytest.raises(InvalidArgument) as caught:
        await coordinator.complete("no/slash")
    assert caught.value.field == "video_id"
