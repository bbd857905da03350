"""``casemesh.video.v1.PlaybackService`` (topology name ``video-playback``): HLS playlists and view starts.

Seed 004, "Read plane": the Playback API serves the HLS manifests; "CDN
Cache Hit Rate": versioned manifest URLs (``?gen=N``) with a short TTL (60 s);
"View Count": view events buffered locally and flushed every 10 s.

- GetMasterPlaylist / GetVariantPlaylist: the video from
  ``CatalogService.GetVideo`` through a 60 s TTL cache (video_cache.py), the
  text from hls.py (RFC 8216); ``max_age_s`` is the TTL.
- Every successful GetMasterPlaylist is a view start, counted in the view
  buffer (view_buffer.py) and flushed to ``CatalogService.RecordViews``
  every ``view_flush_interval_s``, and once more at shutdown.

Status codes: INVALID_ARGUMENT naming ``video_id``, ``generation`` or
``rendition``; NOT_FOUND for an unknown video, generation or rendition;
FAILED_PRECONDITION when the video is not PUBLISHED; UNAVAILABLE (or
DEADLINE_EXCEEDED) when the catalogue cannot answer.

Metrics beyond the gRPC ones: ``casemesh_video_views_buffered`` (gauge: view
starts held, not yet delivered), ``casemesh_video_view_events_total{stage=
"buffered"|"flushed"}`` (shared with video-catalog, view_metrics.py),
``casemesh_video_view_buffer_dropped_total{reason="buffer_full"|"rejected"}``,
``casemesh_video_playback_cache_lookups_total{result="hit"|"miss"}``.
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from prometheus_client import Counter, Gauge

from casemesh.video.v1 import catalog_pb2, catalog_pb2_grpc
from casemesh.video.v1 import playback_pb2 as pb
from casemesh.video.v1 import playback_pb2_grpc as pb_grpc
from casemesh.video.v1 import video_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument, NotFound
from ..view_metrics import VIEW_EVENTS
from .playlists import Playlists
from .settings import PlaybackSettings
from .validation import validate_master_request, validate_variant_request
from .video_cache import VideoCache
from .view_buffer import RejectedBatch, ViewBuffer

log = logging.getLogger("casemesh.video.playback")

NAME = "video-playback"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PlaybackService"].full_name

VIEWS_BUFFERED = Gauge("casemesh_video_views_buffered", "View starts held by the view buffer, not yet delivered to the catalogue.")
VIEWS_DROPPED = Counter(
    "casemesh_video_view_buffer_dropped",
    "View starts lost by the view buffer: buffer_full (too many distinct videos held) or rejected (the catalogue refused the batch).",
    ["reason"],
)
CACHE_LOOKUPS = Counter("casemesh_video_playback_cache_lookups", "Video metadata cache lookups by result.", ["result"])

_STAGE_METRICS = {
    "buffered": VIEW_EVENTS.labels("buffered"),
    "flushed": VIEW_EVENTS.labels("flushed"),
    "dropped": VIEWS_DROPPED.labels("buffer_full"),
    "rejected": VIEWS_DROPPED.labels("rejected"),
}
_LOOKUPS = {True: CACHE_LOOKUPS.labels("hit"), False: CACHE_LOOKUPS.labels("miss")}


class PlaybackServicer(pb_grpc.PlaybackServiceServicer):
    """Validates, builds the playlist, counts the view start."""

    def __init__(self, playlists: Playlists, views: ViewBuffer, max_age_s: int) -> None:
        self._playlists = playlists
        self._views = views
        self._max_age_s = max_age_s

    async def GetMasterPlaylist(self, request: pb.GetMasterPlaylistRequest, context: grpc.aio.ServicerContext) -> pb.GetMasterPlaylistResponse:
        validate_master_request(request.video_id, request.generation)
        text, generation = await self._playlists.master(request.video_id, request.generation)
        self._views.add(request.video_id)
        return pb.GetMasterPlaylistResponse(playlist=text, generation=generation, max_age_s=self._max_age_s)

    async def GetVariantPlaylist(self, request: pb.GetVariantPlaylistRequest, context: grpc.aio.ServicerContext) -> pb.GetVariantPlaylistResponse:
        validate_variant_request(request.video_id, request.generation, request.rendition)
        text = await self._playlists.variant(request.video_id, request.generation, request.rendition)
        return pb.GetVariantPlaylistResponse(playlist=text, max_age_s=self._max_age_s)


class PlaybackComponent:
    """The servicer, the video cache and the view buffer with its flush loop."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = self.settings = context.settings(NAME, PlaybackSettings)
        catalog = catalog_pb2_grpc.CatalogServiceStub(context.channel("video-catalog"))
        flush_timeout_s = settings.view_flush_timeout_s

        async def get_video(video_id: str) -> video_pb2.Video:
            try:
                response = await catalog.GetVideo(catalog_pb2.GetVideoRequest(video_id=video_id))
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    raise NotFound(f"video {video_id!r} does not exist") from None
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    reason = (error.details() or "rejected by the catalogue").removeprefix("video_id: ")
                    raise InvalidArgument("video_id", reason) from None
                raise
            return response.video

        async def record_views(counts: dict[str, int]) -> None:
            request = catalog_pb2.RecordViewsRequest(
                views=[catalog_pb2.ViewCount(video_id=v, count=n) for v, n in counts.items()])
            try:
                await catalog.RecordViews(request, timeout=flush_timeout_s)
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    raise RejectedBatch(error.details()) from None
                raise

        self.videos = VideoCache(get_video, ttl_s=settings.manifest_ttl_s, max_entries=settings.video_cache_entries,
                                 on_lookup=lambda hit: _LOOKUPS[hit].inc())
        self.views = ViewBuffer(record_views, max_videos=settings.view_buffer_max, batch_max=settings.view_batch_max,
                                flush_interval_s=settings.view_flush_interval_s,
                                on_event=lambda stage, n: _STAGE_METRICS[stage].inc(n))
        VIEWS_BUFFERED.set_function(lambda: self.views.pending)
        self.servicer = PlaybackServicer(Playlists(self.videos), self.views, settings.manifest_ttl_s)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PlaybackServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        await self.views.start()

    async def stop(self) -> None:
        """Flush the buffered view starts to the catalogue (still serving: it stops after us), bounded in time."""
        try:
            unsent = await asyncio.wait_for(self.views.stop(), self.settings.view_flush_timeout_s * 2)
        except TimeoutError:
            unsent = self.views.pending
        if unsent:
            log.error("%d view starts could not be delivered to video-catalog at shutdown", unsent)


async def build(context: RuntimeContext) -> PlaybackComponent:
    return PlaybackComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("video-catalog",), build=build,
    settings_model=PlaybackSettings, access=Access(public={"GetMasterPlaylist", "GetVariantPlaylist"}),
)
