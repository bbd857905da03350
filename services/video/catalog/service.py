"""``casemesh.video.v1.CatalogService`` (topology name ``video-catalog``): the video platform's metadata service.

Seed 004 (shared/seeds/004_718541f717f7b956.txt): the "Metadata DB" with the
social graph. What each mechanism is and where it comes from:

- videos, life-cycle, generations and versioned manifest URLs, likes:
  ``videos.VideoStore`` ("Transcode Pipeline Reliability", "CDN Cache Hit Rate");
- comments: ``comments.CommentStore``; subscriptions (strongly consistent):
  ``subscriptions.SubscriptionStore`` ("Clarify Requirements");
- home feed, fan-out on read then trending: ``feed`` ("Feed Generation");
- view counts, batches aggregated and applied by periodic snapshots:
  ``views.ViewCounter`` ("View Count — Eventual Consistency Done Right");
- search freshness, publish events batched to SearchService.IndexVideos:
  ``indexer.SearchIndexer`` ("Search Freshness").

The servicer validates (``validation``), calls the domain, and lets the
runtime map domain errors to status codes: ``InvalidArgument`` →
INVALID_ARGUMENT naming the field, ``NotFound`` → NOT_FOUND,
``FailedPrecondition`` → FAILED_PRECONDITION (likes and comments on a video
that is not PUBLISHED; publishing a video still UPLOADING).

Lists (ListChannelVideos, GetHomeFeed) return videos without ``renditions``
(the list view, as Google AIP-157's BASIC view); GetVideo returns them.

Settings: :class:`settings.CatalogSettings`. Metrics beyond the gRPC ones:
``casemesh_video_view_events_total{stage="snapshotted"|"dropped"}``,
``casemesh_video_catalog_index_documents_total{outcome="sent"|"dropped"}``.
"""

from __future__ import annotations

import logging

import grpc
from prometheus_client import Counter

from casemesh.video.v1 import catalog_pb2 as pb
from casemesh.video.v1 import catalog_pb2_grpc as pb_grpc
from casemesh.video.v1 import search_pb2, search_pb2_grpc, video_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument
from ...runtime import page_tokens
from .comments import CommentStore
from .feed import FeedCursor
from .indexer import SearchIndexer
from .settings import CatalogSettings
from .subscriptions import SubscriptionStore
from .validation import (
    page_size,
    validate_comment,
    validate_create,
    validate_name,
    validate_publish,
    validate_video_id,
    validate_views,
)
from .videos import VideoStore
from .views import ViewCounter

log = logging.getLogger("casemesh.video.catalog")

NAME = "video-catalog"
FULL_NAME = pb.DESCRIPTOR.services_by_name["CatalogService"].full_name

INDEX_DOCUMENTS = Counter(
    "casemesh_video_catalog_index_documents",
    "Published videos sent to video-search (outcome=sent) or given up (outcome=dropped: queue full or a permanent error).",
    ["outcome"],
)

#: Status codes after which an IndexVideos batch is retried (the others would fail again).
RETRYABLE_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                             grpc.StatusCode.RESOURCE_EXHAUSTED})


def retryable(exc: BaseException) -> bool:
    """Whether a failed IndexVideos call is worth retrying: a transient status, or no status (connection trouble)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code() in RETRYABLE_CODES
    return isinstance(exc, (OSError, TimeoutError))


def search_document(video: video_pb2.Video) -> search_pb2.VideoDocument:
    """The search document of a published ``Video``: id, title, tags and publish time (Unix seconds)."""
    publish_s = video.publish_time.seconds + video.publish_time.nanos / 1e9
    return search_pb2.VideoDocument(video_id=video.video_id, title=video.title, tags=video.tags,
                                    publish_time_unix_s=publish_s)


class CatalogServicer(pb_grpc.CatalogServiceServicer):
    """Validates requests and runs the catalogue's domain operations."""

    def __init__(self, videos: VideoStore, comments: CommentStore, subscriptions: SubscriptionStore,
                 views: ViewCounter, indexer: SearchIndexer, settings: CatalogSettings):
        self._videos = videos
        self._comments = comments
        self._subscriptions = subscriptions
        self._views = views
        self._indexer = indexer
        self._settings = settings

    async def GetVideo(self, request: pb.GetVideoRequest, context: grpc.aio.ServicerContext) -> pb.GetVideoResponse:
        validate_video_id(request.video_id)
        return pb.GetVideoResponse(video=await self._videos.get(request.video_id))

    async def LikeVideo(self, request: pb.LikeVideoRequest, context: grpc.aio.ServicerContext) -> pb.LikeVideoResponse:
        validate_video_id(request.video_id)
        validate_name(request.user_id, "user_id")
        return pb.LikeVideoResponse(like_count=await self._videos.like(request.video_id, request.user_id))

    async def AddComment(self, request: pb.AddCommentRequest, context: grpc.aio.ServicerContext) -> pb.AddCommentResponse:
        validate_comment(request.video_id, request.user_id, request.text)
        await self._videos.require_published(request.video_id)
        return pb.AddCommentResponse(comment=await self._comments.add(request.video_id, request.user_id, request.text))

    async def ListComments(self, request: pb.ListCommentsRequest, context: grpc.aio.ServicerContext) -> pb.ListCommentsResponse:
        validate_video_id(request.video_id)
        size = page_size(request.page_size)
        before = None
        if request.page_token:
            before = page_tokens.decode(request.page_token, "comments", request.video_id, {"before": int})["before"]
        await self._videos.exists(request.video_id)
        comments, next_before = await self._comments.page(request.video_id, before, size)
        token = page_tokens.encode("comments", request.video_id, {"before": next_before}) if next_before else ""
        return pb.ListCommentsResponse(comments=comments, next_page_token=token)

    async def Subscribe(self, request: pb.SubscribeRequest, context: grpc.aio.ServicerContext) -> pb.SubscribeResponse:
        validate_name(request.user_id, "user_id")
        validate_name(request.channel_id, "channel_id")
        count = await self._subscriptions.subscribe(request.user_id, request.channel_id)
        return pb.SubscribeResponse(subscriber_count=count)

    async def Unsubscribe(self, request: pb.UnsubscribeRequest, context: grpc.aio.ServicerContext) -> pb.UnsubscribeResponse:
        validate_name(request.user_id, "user_id")
        validate_name(request.channel_id, "channel_id")
        count = await self._subscriptions.unsubscribe(request.user_id, request.channel_id)
        return pb.UnsubscribeResponse(subscriber_count=count)

    async def ListChannelVideos(self, request: pb.ListChannelVideosRequest,
                                context: grpc.aio.ServicerContext) -> pb.ListChannelVideosResponse:
        validate_name(request.channel_id, "channel_id")
        size = page_size(request.page_size)
        before = None
        if request.page_token:
            before = page_tokens.decode(request.page_token, "channel", request.channel_id, {"before": int})["before"]
        videos, next_before = await self._videos.channel_page(request.channel_id, before, size)
        token = page_tokens.encode("channel", request.channel_id, {"before": next_before}) if next_before else ""
        return pb.ListChannelVideosResponse(videos=videos, next_page_token=token)

    async def GetHomeFeed(self, request: pb.GetHomeFeedRequest, context: grpc.aio.ServicerContext) -> pb.GetHomeFeedResponse:
        validate_name(request.user_id, "user_id")
        size = page_size(request.page_size)
        cursor = None
        if request.page_token:
            position = page_tokens.decode(request.page_token, "feed", request.user_id,
                                          {"part": str, "seq": int, "views": int})
            if position["part"] not in ("s", "t"):
                raise InvalidArgument("page_token", "is not a valid page token (unknown feed part)")
            cursor = FeedCursor(position["part"], position["seq"], position["views"])
        channels = await self._subscriptions.channels(request.user_id)
        videos, next_cursor = await self._videos.feed_page(channels, cursor, size, self._settings.feed_videos_per_channel)
        token = ""
        if next_cursor is not None:
            token = page_tokens.encode("feed", request.user_id, {"part": next_cursor.part, "seq": next_cursor.seq,
                                                                 "views": next_cursor.views})
        return pb.GetHomeFeedResponse(videos=videos, next_page_token=token)

    async def CreateVideo(self, request: pb.CreateVideoRequest, context: grpc.aio.ServicerContext) -> pb.CreateVideoResponse:
        validate_create(request.channel_id, request.title, request.description, request.tags, request.duration_s)
        video = await self._videos.create(request.channel_id, request.title, request.description, request.tags,
                                          request.duration_s)
        return pb.CreateVideoResponse(video=video)

    async def MarkProcessing(self, request: pb.MarkProcessingRequest,
                             context: grpc.aio.ServicerContext) -> pb.MarkProcessingResponse:
        validate_video_id(request.video_id)
        video, generation = await self._videos.mark_processing(request.video_id)
        return pb.MarkProcessingResponse(video=video, generation=generation)

    async def PublishVideo(self, request: pb.PublishVideoRequest, context: grpc.aio.ServicerContext) -> pb.PublishVideoResponse:
        validate_publish(request.video_id, request.generation, request.renditions)
        published = await self._videos.publish(request.video_id, request.generation, request.renditions)
        if published.first_publication:
            self._indexer.add(search_document(published.video))  # returns at once; the indexer sends it
        return pb.PublishVideoResponse(video=published.video)

    async def RecordViews(self, request: pb.RecordViewsRequest, context: grpc.aio.ServicerContext) -> pb.RecordViewsResponse:
        entries = [(view.video_id, view.count) for view in request.views]
        validate_views(entries)
        accepted, dropped = await self._views.record(entries)
        return pb.RecordViewsResponse(accepted=accepted, dropped=dropped)


class CatalogComponent:
    """The servicer plus its background work: the view snapshot loop and the search indexer."""

    def __init__(self, context: RuntimeContext, settings: CatalogSettings):
        self.settings = settings
        search = search_pb2_grpc.SearchServiceStub(context.channel("video-search"))
        timeout_s = settings.index_call_timeout_ms / 1000

        async def send(batch: list[search_pb2.VideoDocument]) -> None:
            await search.IndexVideos(search_pb2.IndexVideosRequest(documents=batch), timeout=timeout_s)

        self.videos = VideoStore(trending_size=settings.trending_size)
        self.comments = CommentStore()
        self.subscriptions = SubscriptionStore()
        self.views = ViewCounter(self.videos, settings.view_snapshot_interval_s)
        self.indexer = SearchIndexer(
            send, interval_s=settings.index_batch_interval_ms / 1000, batch_size=settings.index_batch_size,
            max_pending=settings.index_max_pending, max_backoff_s=settings.index_max_backoff_ms / 1000,
            retryable=retryable, on_sent=INDEX_DOCUMENTS.labels("sent").inc,
            on_dropped=INDEX_DOCUMENTS.labels("dropped").inc,
        )
        self.servicer = CatalogServicer(self.videos, self.comments, self.subscriptions, self.views, self.indexer, settings)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_CatalogServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.views.start()
        await self.indexer.start()

    async def stop(self) -> None:
        """Apply pending views in a final snapshot and flush pending documents to video-search (still serving)."""
        try:
            applied = await self.views.stop()
            if applied:
                log.info("final view snapshot applied %d views", applied)
        finally:
            await self.indexer.stop(self.settings.index_stop_timeout_s)


async def build(context: RuntimeContext) -> CatalogComponent:
    return CatalogComponent(context, context.settings(NAME, CatalogSettings))


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("video-search",), build=build, settings_model=CatalogSettings,
    access=Access(
        public={"GetVideo", "LikeVideo", "AddComment", "ListComments", "Subscribe", "Unsubscribe",
                "ListChannelVideos", "GetHomeFeed"},
        # The write plane: a video is created and marked by the upload API, published by a transcode worker.
        internal={"CreateVideo": ("video-upload",), "MarkProcessing": ("video-upload",),
                  "PublishVideo": ("video-transcoder",), "RecordViews": ("video-playback",)}),
)
