"""A short-TTL cache of published videos in front of ``CatalogService.GetVideo``.

Seed 004, "CDN Cache Hit Rate": "The manifest itself should have a short TTL
(60 s) while the segments have a year-long TTL", and "Version your manifest
URLs (...?gen=3) so that re-transcodes do not serve stale manifests". The
playlists are built from the video's renditions, so the video is what is
cached, for ``ttl_s`` seconds (``cachetools.TTLCache``, bounded in entries).

The generation in a request picks the version: a request for a generation
newer than the cached one refreshes the entry at once (the new URLs work as
soon as the catalogue has published them, without waiting out the TTL);
generation 0 ("current") takes the cached entry. Only PUBLISHED videos are
cached, so a video becomes playable at its first request after publishing.
Concurrent misses of one video share one GetVideo call (coalescing).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from casemesh.video.v1 import video_pb2

from ...runtime.coalescing import SingleFlight

#: ``fetch(video_id)``: the catalogue's Video, or raise ``NotFound``.
FetchVideo = Callable[[str], Awaitable[video_pb2.Video]]


class VideoCache:
    """video id -> published ``Video``, each kept ``ttl_s`` seconds, at most ``max_entries``.

    ``hits``/``misses`` count :meth:`get` outcomes; ``on_lookup(hit)`` is
    called after each. ``clock`` (monotonic seconds) is injectable for tests.
    """

    def __init__(self, fetch: FetchVideo, ttl_s: float = 60.0, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic,
                 on_lookup: Callable[[bool], None] | None = None) -> None:
        if ttl_s <= 0 or max_entries < 1:
            raise ValueError("ttl_s must be > 0 and max_entries >= 1")
        self._fetch = fetch
        self._videos: TTLCache[str, video_pb2.Video] = TTLCache(maxsize=max_entries, ttl=ttl_s, timer=clock)
        self._flights: SingleFlight[str, video_pb2.Video] = SingleFlight()
        self.on_lookup = on_lookup
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._videos)

    async def get(self, video_id: str, generation: int = 0) -> video_pb2.Video:
        """The video, from the cache when it holds generation ``generation`` or newer, else from the catalogue.

        ``generation`` 0 accepts any cached generation. The returned video may
        be of another generation or not PUBLISHED: the caller decides. Raises
        what ``fetch`` raises (``NotFound`` for an unknown video).
        """
        video = self._videos.get(video_id)
        hit = video is not None and video.generation >= generation
        if hit:
            self.hits += 1
        else:
            self.misses += 1
        if self.on_lookup is not None:
            self.on_lookup(hit)
        if hit:
            return video
        video, shared = await self._flights.do(video_id, lambda: self._load(video_id))
        if shared and video.generation < generation:
            video = await self._load(video_id)  # the shared call began before that generation was published
        return video

    async def _load(self, video_id: str) -> video_pb2.Video:
        video = await self._fetch(video_id)
        if video.status == video_pb2.VIDEO_STATUS_PUBLISHED:
            self._videos[video_id] = video
        else:
            self._videos.pop(video_id, None)
        return video
