"""Per-method authorization against issue 12's attacks: internal RPCs from callers they do not allow do no harm.

One in-process mesh (analytics and the video plane's internal services) is
shared by the module. Each attack is sent as an anonymous client (no
identity) and as a genuine mesh service that the method does not allow
(``video-edge``'s caller token); both get PERMISSION_DENIED, counted under the
method, and the state the attack aimed at is unchanged. The tests' own
identity (tests/caller_identity.py) sets the scene and checks the state.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import grpc
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from prometheus_client import REGISTRY

from casemesh.analytics.v1 import analytics_pb2, analytics_pb2_grpc
from casemesh.idgen.v1 import idgen_pb2, idgen_pb2_grpc
from casemesh.services.catalog import definitions
from casemesh.services.runtime.identity import TEST_IDENTITY, service_identity
from casemesh.services.runtime.secrets import PUBLIC_DEV_SECRET, SERVICE_TOKEN, Keyring, MeshSecret, derive_key, key_id
from casemesh.video.v1 import catalog_pb2, catalog_pb2_grpc, search_pb2, search_pb2_grpc, storage_pb2, storage_pb2_grpc
from casemesh.video.v1 import transcode_pb2, transcode_pb2_grpc, video_pb2

from ..caller_identity import TEST_SECRET, identified_channel
from .conftest import loopback_topology, start_mesh

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICES = ["analytics", "video-storage", "video-transcode", "video-catalog", "video-search"]
EDGE = service_identity("video-edge")  # a real mesh identity, allowed none of the methods attacked here


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def mesh(tmp_path_factory):
    topology = loopback_topology(SERVICES, tmp_path_factory.mktemp("authz-data"))
    running, stop, task = await start_mesh(definitions(SERVICES), topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


def handled(service: str, method: str, code: str, kind: str = "unary") -> float:
    labels = {"grpc_type": kind, "grpc_service": service, "grpc_method": method, "grpc_code": code}
    return REGISTRY.get_sample_value("grpc_server_handled_total", labels) or 0.0


def denied(service: str, method: str, caller: str) -> float:
    labels = {"grpc_service": service, "grpc_method": method, "caller": caller}
    return REGISTRY.get_sample_value("casemesh_server_denied_total", labels) or 0.0


async def attackers(mesh, name: str):
    """(label, channel) of an anonymous client and of video-edge's identity, to ``name``."""
    return [("anonymous", mesh.anonymous_channel(name), "none"),
            ("video-edge", identified_channel(mesh.address(name), TEST_SECRET, EDGE), EDGE)]


async def assert_denied(mesh, name: str, service: str, method: str, call, kind: str = "unary") -> None:
    """``call(channel)`` from each attacker ends PERMISSION_DENIED naming the method and caller, counted twice over."""
    for who, channel, caller in await attackers(mesh, name):
        before, before_denied = handled(service, method, "PermissionDenied", kind), denied(service, method, caller)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(channel)
        await channel.close()
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, (who, refused.value)
        details = refused.value.details()
        assert f"{service}/{method}" in details and (caller in details if caller != "none" else "unidentified" in details)
        assert handled(service, method, "PermissionDenied", kind) - before == 1, who
        assert denied(service, method, caller) - before_denied == 1, who


async def test_a_video_cannot_be_republished_by_a_stranger(mesh):
    """PutRendition then PublishVideo at generation 101 (issue 12): denied; the video stays as it was."""
    catalog = catalog_pb2_grpc.CatalogServiceStub(mesh.channel("video-catalog"))
    video = (await catalog.CreateVideo(catalog_pb2.CreateVideoRequest(channel_id="victim", title="mine", duration_s=4))).video
    rendition = video_pb2.RenditionInfo(rendition=video_pb2.RENDITION_360P, segment_size_bytes=[1000])
    put = storage_pb2.PutRenditionRequest(video_id=video.video_id, generation=101, rendition=rendition, content_seed="ab" * 32)
    await assert_denied(mesh, "video-storage", "casemesh.video.v1.ObjectStoreService", "PutRendition",
                        lambda ch: storage_pb2_grpc.ObjectStoreServiceStub(ch).PutRendition(put, timeout=10))
    publish = catalog_pb2.PublishVideoRequest(video_id=video.video_id, generation=101, renditions=[rendition])
    await assert_denied(mesh, "video-catalog", "casemesh.video.v1.CatalogService", "PublishVideo",
                        lambda ch: catalog_pb2_grpc.CatalogServiceStub(ch).PublishVideo(publish, timeout=10))
    after = (await catalog.GetVideo(catalog_pb2.GetVideoRequest(video_id=video.video_id))).video
    assert after.status == video_pb2.VIDEO_STATUS_UPLOADING and after.generation == video.generation
    storage = storage_pb2_grpc.ObjectStoreServiceStub(mesh.channel("video-storage"))
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await storage.GetRendition(storage_pb2.GetRenditionRequest(
            video_id=video.video_id, generation=101, rendition=video_pb2.RENDITION_360P))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_raw_uploads_cannot_be_read_without_being_the_transcoder(mesh):
    """ReadObject (a server stream) on anyone's raw upload: denied before a byte is read."""
    async def read(channel):
        async for _ in storage_pb2_grpc.ObjectStoreServiceStub(channel).ReadObject(
                storage_pb2.ReadObjectRequest(key="raw/someone-else"), timeout=10):
            pass

    await assert_denied(mesh, "video-storage", "casemesh.video.v1.ObjectStoreService", "ReadObject", read, "server_stream")


async def test_the_transcode_queue_cannot_be_stalled_or_its_jobs_stranded(mesh):
    """EnqueueJob with duration_s=1e308, and LeaseJob + AckJob of a real job (issue 12): denied; the queue unchanged."""
    queue = transcode_pb2_grpc.TranscodeQueueServiceStub(mesh.channel("video-transcode"))
    job = transcode_pb2.TranscodeJob(video_id="victim-1", generation=1, raw_key="raw/victim-1", duration_s=2.0)
    await queue.EnqueueJob(transcode_pb2.EnqueueJobRequest(job=job))  # as the upload service would
    stall = transcode_pb2.EnqueueJobRequest(job=transcode_pb2.TranscodeJob(
        video_id="stall", generation=1, raw_key="raw/stall", duration_s=1e308))
    service = "casemesh.video.v1.TranscodeQueueService"
    await assert_denied(mesh, "video-transcode", service, "EnqueueJob",
                        lambda ch: transcode_pb2_grpc.TranscodeQueueServiceStub(ch).EnqueueJob(stall, timeout=10))
    await assert_denied(mesh, "video-transcode", service, "LeaseJob",
                        lambda ch: transcode_pb2_grpc.TranscodeQueueServiceStub(ch).LeaseJob(
                            transcode_pb2.LeaseJobRequest(worker_id="thief", lease_ms=60_000), timeout=10))
    await assert_denied(mesh, "video-transcode", service, "AckJob",
                        lambda ch: transcode_pb2_grpc.TranscodeQueueServiceStub(ch).AckJob(
                            transcode_pb2.AckJobRequest(job_id="any", lease_id="any"), timeout=10))
    stats = await queue.GetQueueStats(transcode_pb2.GetQueueStatsRequest())
    assert (stats.ready, stats.leased, stats.done) == (1, 0, 0)  # the real job waits for a real worker


async def test_clicks_cannot_be_faked_nor_search_results_rewritten(mesh):
    """RecordClicks (urlshortener's only) and IndexVideos (the catalogue's only): denied; nothing recorded or indexed."""
    clicks = analytics_pb2.RecordClicksRequest(events=[
        analytics_pb2.ClickEvent(code="victimc", click_time=Timestamp(seconds=1_700_000_000)) for _ in range(50)])
    await assert_denied(mesh, "analytics", "casemesh.analytics.v1.AnalyticsService", "RecordClicks",
                        lambda ch: analytics_pb2_grpc.AnalyticsServiceStub(ch).RecordClicks(clicks, timeout=10))
    stats = await analytics_pb2_grpc.AnalyticsServiceStub(mesh.channel("analytics")).GetClickStats(
        analytics_pb2.GetClickStatsRequest(code="victimc"))
    assert stats.total_clicks == 0

    fake = search_pb2.IndexVideosRequest(documents=[search_pb2.VideoDocument(video_id="fake", title="zyzzyva scam")])
    await assert_denied(mesh, "video-search", "casemesh.video.v1.SearchService", "IndexVideos",
                        lambda ch: search_pb2_grpc.SearchServiceStub(ch).IndexVideos(fake, timeout=10))
    found = await search_pb2_grpc.SearchServiceStub(mesh.anonymous_channel("video-search")).SearchVideos(
        search_pb2.SearchVideosRequest(query="zyzzyva"))  # public: anyone may search
    assert found.total_hits == 0


async def test_a_forged_caller_token_is_unauthenticated_and_public_methods_need_none(mesh):
    """A token signed with another secret (or the old public constant) proves nothing: UNAUTHENTICATED, counted as invalid."""
    service, method = "casemesh.analytics.v1.AnalyticsService", "GetClickStats"
    before = denied(service, method, "invalid")
    public_key = derive_key(PUBLIC_DEV_SECRET, SERVICE_TOKEN)  # MeshSecret itself refuses the constant
    for keys in (MeshSecret.generate().keyring(SERVICE_TOKEN), Keyring(key_id(public_key), public_key, {key_id(public_key): public_key})):
        async with identified_channel(mesh.address("analytics"), keys, service_identity("urlshortener")) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await analytics_pb2_grpc.AnalyticsServiceStub(channel).GetClickStats(
                    analytics_pb2.GetClickStatsRequest(code="abc"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "unknown or retired key" in refused.value.details()
    assert denied(service, method, "invalid") - before == 2
    # Public methods ignore identity altogether.
    videos = await catalog_pb2_grpc.CatalogServiceStub(mesh.anonymous_channel("video-catalog")).ListChannelVideos(
        catalog_pb2.ListChannelVideosRequest(channel_id="nobody"))
    assert list(videos.videos) == []


async def test_an_upload_token_self_minted_with_the_old_public_constant_is_refused(mesh):
    """Issue 12: a token signed with ``casemesh-dev-upload-token-secret`` wrote 4 MiB for a video never created."""
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = b64(json.dumps({"v": "ghost", "k": "raw/ghost", "s": 1 << 40, "e": int((time.time() + 3600) * 1000)}).encode())
    old = f"v1.{payload}.{b64(hmac.new(PUBLIC_DEV_SECRET.encode(), b'casemesh-upload-v1.' + payload.encode(), hashlib.sha256).digest())}"
    storage = storage_pb2_grpc.ObjectStoreServiceStub(mesh.anonymous_channel("video-storage"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await storage.UploadObject(iter([storage_pb2.UploadObjectRequest(upload_token=old, offset_bytes=0, data=b"x" * 1024)]),
                                   timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await storage.GetUploadOffset(storage_pb2.GetUploadOffsetRequest(upload_token=old), timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_test_identity_is_refused_unless_the_server_opts_in(tmp_path):
    """Servers never accept the test identity by default; the real caller's identity still works."""
    from casemesh.services.runtime.server import serve

    topology = loopback_topology(["idgen"], tmp_path)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(definitions(["idgen"]), topology, stop=stop, on_ready=lambda ports: ready.set(),
                                     secret=TEST_SECRET, allow_test_identity=False))
    await asyncio.wait_for(ready.wait(), 15)
    address = topology.endpoint("idgen").address
    request = idgen_pb2.LeaseIdsRequest(count=1, layout=idgen_pb2.ID_LAYOUT_COUNTER)
    try:
        async with identified_channel(address, TEST_SECRET, TEST_IDENTITY) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await idgen_pb2_grpc.IdGeneratorServiceStub(channel).LeaseIds(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED and TEST_IDENTITY in refused.value.details()
        async with identified_channel(address, TEST_SECRET, service_identity("urlshortener")) as channel:
            assert (await idgen_pb2_grpc.IdGeneratorServiceStub(channel).LeaseIds(request, timeout=10)).ranges
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
