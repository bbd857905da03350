"""Seeding the video workload: a catalogue uploaded through the real upload plane, and the viewers.

Every seeded video goes through the same path a user's upload takes
(InitiateUpload → ObjectStoreService.UploadObject as a client stream of chunks
→ CompleteUpload → transcode queue → workers → PublishVideo), so a run starts
from a catalogue the services built themselves. Seeding waits until every
video is PUBLISHED (bounded by ``publish_timeout_s``).

Scaling (documented in docs/case-studies/video.md): the seed's videos average 300 s
("5 B view-seconds/day ÷ average video length 300 s"); durations here are
uniform in [``min_duration_s``, ``max_duration_s``] (mean 300 s by default).
Raw uploads are small (``raw_bytes``, 256 KiB by default, against the seed's
500 MB average): the bytes are real and durable, but one laptop cannot hold a
benchmark's worth of full-size sources. Rendition sizes follow the ladder's
bitrates and the duration, not the raw size.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from casemesh.video.v1 import catalog_pb2, storage_pb2, upload_pb2, video_pb2

from ...errors import HarnessError
from ..base import Caller, Params, UnrecordedCaller
from .player import ThroughputEstimates

#: Words titles and tags are made of (search queries draw from the same list).
VOCABULARY = (
    "cooking", "travel", "music", "guitar", "piano", "gaming", "speedrun", "review", "unboxing", "tutorial",
    "python", "grpc", "design", "systems", "science", "space", "rocket", "history", "football", "tennis",
    "yoga", "fitness", "garden", "coffee", "baking", "camera", "drone", "mountain", "ocean", "city",
    "news", "podcast", "comedy", "sketch", "animation", "retro", "vlog", "diy", "woodwork", "cars",
)


class SeedParams(Params):
    """The catalogue and audience created before load."""

    videos: int = Field(default=120, ge=1, le=10_000, description="videos uploaded and published before load")
    channels: int = Field(default=20, ge=1, le=10_000, description="uploading channels (videos are dealt round-robin)")
    viewers: int = Field(default=1000, ge=1, le=1_000_000, description="distinct viewers (user ids) of the journeys")
    subscriptions_per_viewer: int = Field(default=3, ge=0, le=100, description="channels each viewer subscribes to (Zipf-popular channels)")
    min_duration_s: float = Field(default=60.0, gt=0, le=43_200)
    max_duration_s: float = Field(default=540.0, gt=0, le=43_200)
    raw_bytes: int = Field(default=262_144, ge=1, le=268_435_456, description="raw upload size per video (bytes)")
    chunk_bytes: int = Field(default=65_536, ge=1, le=1_048_576, description="upload chunk size (bytes)")
    concurrency: int = Field(default=8, ge=1, le=256, description="uploads in flight while seeding")
    publish_timeout_s: float = Field(default=180.0, gt=0, le=3600, description="how long seeding waits for every video to be published")

    @model_validator(mode="after")
    def _durations(self) -> SeedParams:
        if self.max_duration_s < self.min_duration_s:
            raise ValueError("max_duration_s must be >= min_duration_s")
        return self


@dataclass
class State:
    """The seeded catalogue: video ids by popularity rank, channels, viewers and their throughput estimates."""

    video_ids: list[str]
    channels: list[str]
    viewers: list[str]
    throughput: ThroughputEstimates | None = None
    _cdfs: dict[float, list[float]] = field(default_factory=dict)

    def zipf_video(self, exponent: float, rng: random.Random) -> str:
        """A video id drawn by Zipf popularity over ranks (rank r with weight 1/r^exponent)."""
        cdf = self._cdfs.get(exponent)
        if cdf is None:
            cdf = self._cdfs[exponent] = list(itertools.accumulate(1.0 / (r**exponent) for r in range(1, len(self.video_ids) + 1)))
        return self.video_ids[min(bisect.bisect_left(cdf, rng.random() * cdf[-1]), len(self.video_ids) - 1)]


def title_and_tags(rng: random.Random) -> tuple[str, list[str]]:
    """A title of three vocabulary words and three tags."""
    words = rng.sample(VOCABULARY, 3)
    return f"{words[0].capitalize()} {words[1]} {words[2]} #{rng.randrange(1000)}", rng.sample(VOCABULARY, 3)


def upload_chunks(token: str, size: int, chunk: int, rng: random.Random) -> Iterator[storage_pb2.UploadObjectRequest]:
    """The UploadObject client stream of a ``size``-byte raw file, in order, ``chunk`` bytes at a time."""
    payload = rng.randbytes(min(chunk, size))
    for offset in range(0, size, chunk):
        n = min(chunk, size - offset)
        yield storage_pb2.UploadObjectRequest(upload_token=token, offset_bytes=offset, data=payload[:n])


async def upload_video(call: Caller, channel: str, duration_s: float, raw_bytes: int, chunk_bytes: int,
                       rng: random.Random) -> str:
    """Initiate, stream and complete one upload; returns the video id (published later by the workers)."""
    title, tags = title_and_tags(rng)
    initiated = await call("video-upload", "InitiateUpload", upload_pb2.InitiateUploadRequest(
        channel_id=channel, title=title, description=f"A video about {' and '.join(tags)}.", tags=tags,
        duration_s=duration_s, file_size_bytes=raw_bytes))
    await call.client_stream("video-storage", "UploadObject", upload_chunks(initiated.upload_token, raw_bytes, chunk_bytes, rng))
    await call("video-upload", "CompleteUpload", upload_pb2.CompleteUploadRequest(video_id=initiated.video_id))
    return initiated.video_id


async def wait_published(call: Caller, video_id: str, timeout_s: float, poll_s: float) -> bool:
    """Poll GetVideo until the video is PUBLISHED; ``False`` when ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = await call("video-catalog", "GetVideo", catalog_pb2.GetVideoRequest(video_id=video_id))
        if response.video.status == video_pb2.VIDEO_STATUS_PUBLISHED:
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(poll_s)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Upload ``params.videos`` videos, wait until all are published, subscribe the viewers; raises ``HarnessError`` on timeout."""
    caller = UnrecordedCaller(call)
    channels = [f"channel-{i:04d}" for i in range(params.channels)]
    viewers = [f"viewer-{i:06d}" for i in range(params.viewers)]
    video_ids: list[str] = [""] * params.videos
    indexes = iter(range(params.videos))

    async def uploader() -> None:
        for i in indexes:
            duration = rng.uniform(params.min_duration_s, params.max_duration_s)
            video_ids[i] = await upload_video(caller, channels[i % len(channels)], duration, params.raw_bytes, params.chunk_bytes, rng)

    await asyncio.gather(*(uploader() for _ in range(min(params.concurrency, params.videos))))
    pending = iter(video_ids)
    unpublished: list[str] = []

    async def waiter() -> None:
        for video_id in pending:
            if not await wait_published(caller, video_id, params.publish_timeout_s, 0.2):
                unpublished.append(video_id)

    await asyncio.gather(*(waiter() for _ in range(min(params.concurrency, params.videos))))
    if unpublished:
        raise HarnessError(f"{len(unpublished)} of {params.videos} seeded videos were not published within "
                           f"{params.publish_timeout_s:g} s (is video-transcoder running? see its log)")
    channel_weights = list(itertools.accumulate(1.0 / r for r in range(1, len(channels) + 1)))
    subscriptions = iter((viewer, channel) for viewer in viewers
                         for channel in {rng.choices(channels, cum_weights=channel_weights)[0]
                                         for _ in range(params.subscriptions_per_viewer)})

    async def subscriber() -> None:
        for viewer, channel in subscriptions:
            await caller("video-catalog", "Subscribe", catalog_pb2.SubscribeRequest(user_id=viewer, channel_id=channel))

    await asyncio.gather(*(subscriber() for _ in range(params.concurrency)))
    return State(video_ids=video_ids, channels=channels, viewers=viewers)
