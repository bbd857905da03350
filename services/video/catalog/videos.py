"""The video catalogue: metadata, life-cycle, generations, likes, view counts, channel timelines.

Seed 004 keeps video metadata in a "Metadata DB" read far more than written
("video metadata is read-heavy, write-light"), so the store sits behind one
readers-writer lock (``aiorwlock.RWLock``): GetVideo, lists and feeds share the
reader lock; writes (create, life-cycle changes, likes, a view snapshot) take
the writer lock for one synchronous step each, so a reader never sees half a
change.

Life-cycle (video.proto ``VideoStatus``)::

    CreateVideo ──► UPLOADING ──MarkProcessing──► PROCESSING ──PublishVideo(g)──► PUBLISHED
                                (reserves generation 1)                 (generation g)

- ``MarkProcessing`` is idempotent: it reserves ``generation + 1`` once (when
  the upload completes) and afterwards returns the reserved generation, so a
  retried CompleteUpload never queues a second transcode.
- ``PublishVideo(g)`` is idempotent per generation (seed 004, "Transcode
  Pipeline Reliability": at-least-once delivery, "workers must be
  idempotent"): ``g`` equal to the current generation changes nothing, an
  older ``g`` is ignored, a newer ``g`` (a re-transcode, e.g. a job queued for
  ``generation + 1``) replaces the renditions and bumps the generation, which
  changes the manifest URL ``/v/{id}/master.m3u8?gen={g}`` (seed 004, "CDN
  Cache Hit Rate": "Version your manifest URLs ... so that re-transcodes do
  not serve stale manifests"). Publishing a video still UPLOADING is refused
  (``FailedPrecondition``): its raw bytes are not complete.
- Likes: one per user (a set of user ids); the count updates at once.
- View counts are written only by :meth:`VideoStore.add_views`, the snapshot
  step of ``views.ViewCounter`` (eventually consistent, seed 004 "View Count").

Ids are 11 URL-safe characters (``secrets.token_urlsafe(8)``: 64 random
bits, the length of a YouTube id). Times are Unix seconds from an injectable
clock. Memory grows with videos and likes (in-memory store, no eviction).
"""

from __future__ import annotations

import heapq
import secrets
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import aiorwlock

from casemesh.services.runtime.errors import FailedPrecondition, NotFound
from casemesh.video.v1 import video_pb2 as pb

from .feed import FeedCursor, feed_page, trending_key

#: Largest value of an int64 counter (``Video.view_count``): counts saturate there instead of failing to serialize.
INT64_MAX = 2**63 - 1
#: Attempts at a fresh random id before giving up (a collision of 64 random bits is already unlikely).
MAX_ID_ATTEMPTS = 8


def new_video_id() -> str:
    """A random URL-safe id of 11 characters (64 bits)."""
    return secrets.token_urlsafe(8)


def manifest_url(video_id: str, generation: int) -> str:
    """The master playlist URL of a generation: ``/v/{video_id}/master.m3u8?gen={generation}``."""
    return f"/v/{video_id}/master.m3u8?gen={generation}"


@dataclass(eq=False, slots=True)
class VideoRecord:
    """One video as stored. ``publish_seq`` orders first publications (0 until published)."""

    video_id: str
    channel_id: str
    title: str
    description: str
    tags: tuple[str, ...]
    duration_s: float
    create_time_s: float
    status: int = pb.VIDEO_STATUS_UPLOADING
    generation: int = 0
    reserved_generation: int = 0
    renditions: tuple[pb.RenditionInfo, ...] = ()
    publish_time_s: float | None = None
    publish_seq: int = 0
    view_count: int = 0
    likers: set[str] = field(default_factory=set)
    _full: pb.Video | None = None
    _summary: pb.Video | None = None

    @property
    def like_count(self) -> int:
        return len(self.likers)

    def _templates(self) -> tuple[pb.Video, pb.Video]:
        """Cached messages without the counters (rebuilt after a life-cycle change)."""
        if self._full is None or self._summary is None:
            summary = pb.Video(
                video_id=self.video_id, channel_id=self.channel_id, title=self.title, description=self.description,
                tags=self.tags, duration_s=self.duration_s, status=self.status, generation=self.generation,
                manifest_url=manifest_url(self.video_id, self.generation) if self.status == pb.VIDEO_STATUS_PUBLISHED else "",
            )
            summary.create_time.FromNanoseconds(int(self.create_time_s * 1e9))
            if self.publish_time_s is not None:
                summary.publish_time.FromNanoseconds(int(self.publish_time_s * 1e9))
            full = pb.Video()
            full.CopyFrom(summary)
            full.renditions.extend(self.renditions)
            self._full, self._summary = full, summary
        return self._full, self._summary

    def changed(self) -> None:
        """Drop the cached messages after a change of anything but the counters."""
        self._full = self._summary = None

    def to_proto(self, full: bool = True) -> pb.Video:
        """A new ``Video`` message; ``full=False`` leaves out ``renditions`` (the list view)."""
        full_template, summary_template = self._templates()
        video = pb.Video()
        video.CopyFrom(full_template if full else summary_template)
        video.like_count = self.like_count
        video.view_count = self.view_count
        return video


@dataclass(frozen=True, slots=True)
class Published:
    """What PublishVideo changed: the video after the call and whether this call published it first."""

    video: pb.Video
    first_publication: bool


class VideoStore:
    """Videos by id, each channel's published timeline, and the trending list.

    Single event loop. Every public method is a coroutine that holds the
    store's reader or writer lock for one synchronous step. Errors:
    :class:`NotFound` for an unknown id, :class:`FailedPrecondition` for an
    action that needs a PUBLISHED video (or, for publish, a complete upload).
    """

    def __init__(self, trending_size: int = 100, clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = new_video_id):
        self.lock = aiorwlock.RWLock()
        self.trending_size = trending_size
        self._clock = clock
        self._new_id = new_id
        self._videos: dict[str, VideoRecord] = {}
        self._timelines: dict[str, list[VideoRecord]] = {}  # channel -> published videos, oldest first
        self._published: list[VideoRecord] = []
        self._publish_seq = 0
        self._trending: list[VideoRecord] | None = None  # None: recompute on next read

    def _get(self, video_id: str) -> VideoRecord:
        record = self._videos.get(video_id)
        if record is None:
            raise NotFound(f"video {video_id!r} does not exist")
        return record

    @staticmethod
    def _require_published(record: VideoRecord) -> None:
        if record.status != pb.VIDEO_STATUS_PUBLISHED:
            raise FailedPrecondition(
                f"video {record.video_id!r} is {pb.VideoStatus.Name(record.status)}, not PUBLISHED yet")

    async def create(self, channel_id: str, title: str, description: str, tags: Sequence[str],
                     duration_s: float) -> pb.Video:
        """Register a video in UPLOADING status with a fresh id; returns it (validate first)."""
        async with self.lock.writer:
            for _ in range(MAX_ID_ATTEMPTS):
                video_id = self._new_id()
                if video_id not in self._videos:
                    break
            else:
                raise RuntimeError(f"{MAX_ID_ATTEMPTS} random video ids in a row were taken")
            record = VideoRecord(video_id, channel_id, title, description, tuple(tags), duration_s, self._clock())
            self._videos[video_id] = record
            return record.to_proto()

    async def mark_processing(self, video_id: str) -> tuple[pb.Video, int]:
        """UPLOADING → PROCESSING, reserving generation ``generation + 1``; returns ``(video, reserved generation)``.

        Idempotent: once reserved, every call returns the same generation and
        changes nothing (also after the video is PUBLISHED). ``NotFound``.
        """
        async with self.lock.writer:
            record = self._get(video_id)
            if record.status == pb.VIDEO_STATUS_UPLOADING:
                record.status = pb.VIDEO_STATUS_PROCESSING
                record.reserved_generation = max(record.reserved_generation, record.generation + 1)
                record.changed()
            return record.to_proto(), record.reserved_generation

    async def publish(self, video_id: str, generation: int, renditions: Sequence[pb.RenditionInfo]) -> Published:
        """Record generation ``generation``'s renditions and make the video PUBLISHED.

        Idempotent per generation: a generation not newer than the current one
        changes nothing (``first_publication`` False). A newer one replaces the
        renditions and the manifest URL. ``NotFound``; ``FailedPrecondition``
        while the video is UPLOADING. Validate first.
        """
        async with self.lock.writer:
            record = self._get(video_id)
            if record.status == pb.VIDEO_STATUS_UPLOADING:
                raise FailedPrecondition(f"video {video_id!r} is still UPLOADING: complete the upload first")
            if generation <= record.generation:
                return Published(record.to_proto(), False)
            first = record.status != pb.VIDEO_STATUS_PUBLISHED
            copies = []
            for info in renditions:
                copy = pb.RenditionInfo()
                copy.CopyFrom(info)
                copies.append(copy)
            record.renditions = tuple(sorted(copies, key=lambda info: info.bandwidth_bps))
            record.generation = generation
            record.reserved_generation = max(record.reserved_generation, generation)
            record.status = pb.VIDEO_STATUS_PUBLISHED
            if first:
                self._publish_seq += 1
                record.publish_seq = self._publish_seq
                record.publish_time_s = self._clock()
                self._timelines.setdefault(record.channel_id, []).append(record)
                self._published.append(record)
                self._trending = None
            record.changed()
            return Published(record.to_proto(), first)

    async def get(self, video_id: str) -> pb.Video:
        """The video, any status, with renditions. ``NotFound``."""
        async with self.lock.reader:
            return self._get(video_id).to_proto()

    async def require_published(self, video_id: str) -> None:
        """Nothing when the video is PUBLISHED; ``NotFound`` or ``FailedPrecondition`` otherwise."""
        async with self.lock.reader:
            self._require_published(self._get(video_id))

    async def exists(self, video_id: str) -> None:
        """Nothing when the video exists (any status); ``NotFound`` otherwise."""
        async with self.lock.reader:
            self._get(video_id)

    async def like(self, video_id: str, user_id: str) -> int:
        """Record ``user_id``'s like (once per user); returns the like count. ``NotFound``, ``FailedPrecondition``."""
        async with self.lock.writer:
            record = self._get(video_id)
            self._require_published(record)
            record.likers.add(user_id)
            return record.like_count

    async def known(self, video_ids: Iterable[str]) -> set[str]:
        """The ids among ``video_ids`` that name a video (any status)."""
        async with self.lock.reader:
            return {video_id for video_id in video_ids if video_id in self._videos}

    async def add_views(self, counts: dict[str, int]) -> int:
        """Add ``{video_id: views}`` to the visible view counts in one step; returns the views applied.

        The snapshot step of the view pipeline: readers see all of a snapshot
        or none of it. Unknown ids are skipped (not counted).
        """
        applied = 0
        async with self.lock.writer:
            for video_id, views in counts.items():
                record = self._videos.get(video_id)
                if record is not None:
                    record.view_count = min(record.view_count + views, INT64_MAX)
                    applied += views
            if applied:
                self._trending = None
        return applied

    async def channel_page(self, channel_id: str, before_seq: int | None, size: int) -> tuple[list[pb.Video], int | None]:
        """Up to ``size`` of a channel's published videos, newest first, published before ``before_seq``.

        Returns ``(videos, next before_seq or None)``; videos without renditions.
        """
        async with self.lock.reader:
            timeline = self._timelines.get(channel_id, [])
            end = len(timeline) if before_seq is None else bisect_left(timeline, before_seq, key=lambda r: r.publish_seq)
            start = max(end - size, 0)
            page = timeline[start:end][::-1]
            videos = [record.to_proto(full=False) for record in page]
            return videos, (page[-1].publish_seq if start > 0 else None)

    def _trending_list(self) -> list[VideoRecord]:
        # Filled lazily under the reader lock: safe on one event loop, as nothing awaits in between.
        if self._trending is None:
            self._trending = heapq.nlargest(self.trending_size, self._published, key=trending_key)
        return self._trending

    async def trending(self) -> list[pb.Video]:
        """The trending list: the ``trending_size`` most viewed published videos, newest first on ties."""
        async with self.lock.reader:
            return [record.to_proto(full=False) for record in self._trending_list()]

    async def feed_page(self, channel_ids: Iterable[str], cursor: FeedCursor | None, size: int,
                        per_channel: int) -> tuple[list[pb.Video], FeedCursor | None]:
        """One home-feed page for the subscriptions ``channel_ids`` (see ``feed.feed_page``); videos without renditions."""
        async with self.lock.reader:
            timelines = [self._timelines[c] for c in channel_ids if c in self._timelines]
            items, next_cursor = feed_page(timelines, self._trending_list(), cursor, size, per_channel)
            return [record.to_proto(full=False) for record in items], next_cursor

    def __len__(self) -> int:
        """Videos stored, any status."""
        return len(self._videos)
