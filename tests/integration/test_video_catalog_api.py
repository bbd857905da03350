"""video-catalog and video-search through real gRPC, in-process on 127.0.0.1 (short intervals)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from prometheus_client import REGISTRY

from casemesh.services.catalog import definitions
from casemesh.services.runtime.server import shutdown_order
from casemesh.services.video.ladder import LADDER, rendition_info
from casemesh.video.v1 import catalog_pb2 as pb
from casemesh.video.v1 import catalog_pb2_grpc as pb_grpc
from casemesh.video.v1 import search_pb2, search_pb2_grpc
from casemesh.video.v1 import video_pb2

from .conftest import loopback_topology, start_mesh

NAMES = ["video-catalog", "video-search"]
SETTINGS = {"video-catalog": {"view_snapshot_interval_s": 0.2, "index_batch_interval_ms": 50}}


async def _serve(settings):
    chosen = definitions(NAMES)
    return await start_mesh(chosen, loopback_topology(NAMES, settings=settings))


@pytest.fixture
async def video_mesh():
    running, stop, task = await _serve(SETTINGS)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


@pytest.fixture
def catalog(video_mesh):
    return pb_grpc.CatalogServiceStub(video_mesh.channel("video-catalog"))


@pytest.fixture
def search(video_mesh):
    return search_pb2_grpc.SearchServiceStub(video_mesh.channel("video-search"))


async def _status(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value.code(), caught.value.details()


async def poll(fetch, done, timeout_s: float = 3.0):
    """Call ``fetch()`` until ``done(result)``; at most ``timeout_s`` (bounded wait, no fixed sleeps)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await fetch()
        if done(result):
            return result
        assert loop.time() < deadline, f"not reached within {timeout_s} s: {result}"
        await asyncio.sleep(0.02)


async def publish_new(catalog, channel="creator", title="Tuscan pasta cooking", tags=("food", "italy"), duration_s=9.0):
    created = (await catalog.CreateVideo(pb.CreateVideoRequest(
        channel_id=channel, title=title, description="d", tags=tags, duration_s=duration_s))).video
    marked = await catalog.MarkProcessing(pb.MarkProcessingRequest(video_id=created.video_id))
    renditions = [rendition_info(rung, duration_s) for rung in LADDER]
    published = await catalog.PublishVideo(pb.PublishVideoRequest(
        video_id=created.video_id, generation=marked.generation, renditions=renditions))
    return created, marked, published.video


async def test_publish_flow_manifest_search_and_feed(catalog, search):
    await catalog.Subscribe(pb.SubscribeRequest(user_id="fan", channel_id="creator"))
    created, marked, video = await publish_new(catalog)
    assert created.status == video_pb2.VIDEO_STATUS_UPLOADING and created.manifest_url == ""
    assert marked.video.status == video_pb2.VIDEO_STATUS_PROCESSING and marked.generation == 1

    got = (await catalog.GetVideo(pb.GetVideoRequest(video_id=created.video_id))).video
    assert got.status == video_pb2.VIDEO_STATUS_PUBLISHED
    assert got.manifest_url == f"/v/{created.video_id}/master.m3u8?gen=1"
    assert [r.rendition for r in got.renditions] == [r.rendition for r in LADDER]
    assert got.HasField("publish_time")

    # Searchable within a bounded wait (index batches every 50 ms here; the seed asks for ~1 s).
    found = await poll(lambda: search.SearchVideos(search_pb2.SearchVideosRequest(query="pasta ITALY")),
                       lambda r: r.total_hits >= 1)
    assert [h.video_id for h in found.hits] == [created.video_id]
    assert found.hits[0].title == "Tuscan pasta cooking" and found.hits[0].score > 0
    assert (await search.SearchVideos(search_pb2.SearchVideosRequest(query="pasta sushi"))).total_hits == 0

    feed = await catalog.GetHomeFeed(pb.GetHomeFeedRequest(user_id="fan"))
    assert feed.videos[0].video_id == created.video_id
    assert feed.videos[0].manifest_url.endswith("?gen=1")

    # A redelivered publish changes nothing; a re-transcode bumps the manifest URL.
    again = await catalog.PublishVideo(pb.PublishVideoRequest(
        video_id=created.video_id, generation=1, renditions=[rendition_info(LADDER[0], 9.0)]))
    assert again.video.generation == 1 and len(again.video.renditions) == 3
    second = await catalog.PublishVideo(pb.PublishVideoRequest(
        video_id=created.video_id, generation=2, renditions=[rendition_info(LADDER[0], 9.0)]))
    assert second.video.manifest_url == f"/v/{created.video_id}/master.m3u8?gen=2"


async def test_views_appear_after_the_snapshot(catalog):
    _, _, video = await publish_new(catalog, title="views video")
    response = await catalog.RecordViews(pb.RecordViewsRequest(views=[
        pb.ViewCount(video_id=video.video_id, count=5), pb.ViewCount(video_id="unknown-id", count=2)]))
    assert (response.accepted, response.dropped) == (5, 2)
    counted = await poll(lambda: catalog.GetVideo(pb.GetVideoRequest(video_id=video.video_id)),
                         lambda r: r.video.view_count == 5)
    assert counted.video.view_count == 5


async def test_likes_comments_and_channel_listing(catalog):
    _, _, video = await publish_new(catalog, channel="chef", title="first")
    _, _, newer = await publish_new(catalog, channel="chef", title="second")
    for user in ("u1", "u1", "u2"):
        liked = await catalog.LikeVideo(pb.LikeVideoRequest(video_id=video.video_id, user_id=user))
    assert liked.like_count == 2
    for i in range(3):
        await catalog.AddComment(pb.AddCommentRequest(video_id=video.video_id, user_id="u1", text=f"c{i}"))
    page = await catalog.ListComments(pb.ListCommentsRequest(video_id=video.video_id, page_size=2))
    rest = await catalog.ListComments(pb.ListCommentsRequest(video_id=video.video_id, page_size=2,
                                                             page_token=page.next_page_token))
    assert [c.text for c in page.comments] + [c.text for c in rest.comments] == ["c2", "c1", "c0"]
    assert rest.next_page_token == ""
    listed = await catalog.ListChannelVideos(pb.ListChannelVideosRequest(channel_id="chef"))
    assert [v.video_id for v in listed.videos] == [newer.video_id, video.video_id]
    assert (await catalog.Unsubscribe(pb.UnsubscribeRequest(user_id="u1", channel_id="chef"))).subscriber_count == 0


async def test_errors_name_the_field_and_use_the_right_codes(catalog, search):
    draft = (await catalog.CreateVideo(pb.CreateVideoRequest(channel_id="c", title="t", duration_s=1.0))).video
    cases = [
        (catalog.GetVideo(pb.GetVideoRequest()), grpc.StatusCode.INVALID_ARGUMENT, "video_id"),
        (catalog.GetVideo(pb.GetVideoRequest(video_id="nope")), grpc.StatusCode.NOT_FOUND, "nope"),
        (catalog.CreateVideo(pb.CreateVideoRequest(channel_id="c", title="", duration_s=1.0)),
         grpc.StatusCode.INVALID_ARGUMENT, "title"),
        (catalog.CreateVideo(pb.CreateVideoRequest(channel_id="c", title="t", duration_s=-1)),
         grpc.StatusCode.INVALID_ARGUMENT, "duration_s"),
        (catalog.LikeVideo(pb.LikeVideoRequest(video_id=draft.video_id, user_id="u")),
         grpc.StatusCode.FAILED_PRECONDITION, "UPLOADING"),
        (catalog.LikeVideo(pb.LikeVideoRequest(video_id=draft.video_id, user_id="bad user")),
         grpc.StatusCode.INVALID_ARGUMENT, "user_id"),
        (catalog.AddComment(pb.AddCommentRequest(video_id=draft.video_id, user_id="u", text="hi")),
         grpc.StatusCode.FAILED_PRECONDITION, "PUBLISHED"),
        (catalog.ListComments(pb.ListCommentsRequest(video_id=draft.video_id, page_token="garbage!")),
         grpc.StatusCode.INVALID_ARGUMENT, "page_token"),
        (catalog.ListComments(pb.ListCommentsRequest(video_id="nope")), grpc.StatusCode.NOT_FOUND, "nope"),
        (catalog.GetHomeFeed(pb.GetHomeFeedRequest(user_id="u", page_size=101)),
         grpc.StatusCode.INVALID_ARGUMENT, "page_size"),
        (catalog.Subscribe(pb.SubscribeRequest(user_id="u")), grpc.StatusCode.INVALID_ARGUMENT, "channel_id"),
        (catalog.PublishVideo(pb.PublishVideoRequest(video_id=draft.video_id, generation=1)),
         grpc.StatusCode.INVALID_ARGUMENT, "renditions"),
        (catalog.PublishVideo(pb.PublishVideoRequest(video_id=draft.video_id, generation=1,
                                                     renditions=[rendition_info(LADDER[0], 1.0)])),
         grpc.StatusCode.FAILED_PRECONDITION, "UPLOADING"),
        (catalog.RecordViews(pb.RecordViewsRequest(views=[pb.ViewCount(video_id="x", count=0)])),
         grpc.StatusCode.INVALID_ARGUMENT, "views"),
        (search.SearchVideos(search_pb2.SearchVideosRequest(query="")), grpc.StatusCode.INVALID_ARGUMENT, "query"),
        (search.SearchVideos(search_pb2.SearchVideosRequest(query="x", page_token="zz")),
         grpc.StatusCode.INVALID_ARGUMENT, "page_token"),
        (search.IndexVideos(search_pb2.IndexVideosRequest(documents=[search_pb2.VideoDocument(video_id="a")])),
         grpc.StatusCode.INVALID_ARGUMENT, "documents[0].title"),
    ]
    for call, code, fragment in cases:
        got_code, details = await _status(call)
        assert (got_code, fragment in details) == (code, True), (code, fragment, details)
    # A feed token is tied to its user.
    for i in range(3):
        await publish_new(catalog, channel=f"ch{i}", title=f"t{i}")
    feed = await catalog.GetHomeFeed(pb.GetHomeFeedRequest(user_id="alice", page_size=1))
    assert feed.next_page_token
    code, details = await _status(catalog.GetHomeFeed(pb.GetHomeFeedRequest(user_id="bob", page_token=feed.next_page_token)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in details


def _indexed_total() -> float:
    return REGISTRY.get_sample_value("casemesh_video_search_documents_indexed_total") or 0.0


async def test_shutdown_flushes_pending_documents_to_a_live_search_service():
    assert [d.name for d in shutdown_order(definitions(NAMES))] == NAMES  # the catalogue stops first
    running, stop, task = await _serve({"video-catalog": {"index_batch_interval_ms": 60_000,
                                                          "view_snapshot_interval_s": 3600}})
    try:
        catalog = pb_grpc.CatalogServiceStub(running.channel("video-catalog"))
        before = _indexed_total()
        await publish_new(catalog, title="sent at once")
        await poll(lambda: asyncio.sleep(0, _indexed_total()), lambda total: total - before >= 1)
        await publish_new(catalog, title="held for a minute")  # the next IndexVideos call is a minute away
        assert _indexed_total() - before == 1
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)
    assert _indexed_total() - before == 2
