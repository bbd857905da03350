"""The playback read path: a published video's HLS master and variant playlists.

Seed 004, "Read plane": "Client -> ... Playback API -> Metadata DB / Cache ->
HLS manifest -> CDN segments". The video comes from the TTL cache
(video_cache.py), the text from hls.py. No gRPC here.

Errors: ``NotFound`` for an unknown video, a generation other than the
current one (only the current generation's renditions are in the
catalogue), or a rendition the video does not have; ``FailedPrecondition``
when the video is not PUBLISHED.
"""

from __future__ import annotations

from casemesh.video.v1 import video_pb2

from ...runtime.errors import FailedPrecondition, NotFound
from ..ladder import BY_RENDITION
from .hls import render_master, render_media, segment_durations_ms
from .video_cache import VideoCache


class Playlists:
    """Builds playlists from the cached video of a request's generation."""

    def __init__(self, videos: VideoCache) -> None:
        self.videos = videos

    async def published(self, video_id: str, generation: int) -> video_pb2.Video:
        """The PUBLISHED video at ``generation`` (0 = current); ``NotFound`` / ``FailedPrecondition`` otherwise."""
        video = await self.videos.get(video_id, generation)
        if video.status != video_pb2.VIDEO_STATUS_PUBLISHED:
            status = video_pb2.VideoStatus.Name(video.status)
            raise FailedPrecondition(f"video {video_id!r} is not published yet ({status})")
        if generation and generation != video.generation:
            raise NotFound(f"video {video_id!r} has no generation {generation} (the current one is {video.generation})")
        if not video.renditions:
            raise FailedPrecondition(f"video {video_id!r} is published without renditions")
        return video

    async def master(self, video_id: str, generation: int) -> tuple[str, int]:
        """``(master playlist text, its generation)`` of ``video_id``."""
        video = await self.published(video_id, generation)
        return render_master(video.renditions, video.generation), video.generation

    async def variant(self, video_id: str, generation: int, rendition: int) -> str:
        """The media playlist of one rendition of ``video_id`` at ``generation`` (>= 1)."""
        video = await self.published(video_id, generation)
        for info in video.renditions:
            if info.rendition == rendition:
                return render_media(segment_durations_ms(info, video.duration_s), video.generation)
        name = BY_RENDITION[rendition].name if rendition in BY_RENDITION else str(rendition)
        raise NotFound(f"video {video_id!r} generation {video.generation} has no {name} rendition")
