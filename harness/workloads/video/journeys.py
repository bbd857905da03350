"""The video workload's journeys: playback start, browsing, engagement and uploads.

``playback_start`` is the case study's headline journey (shared/seeds/004:
"Video playback must start within 2 seconds globally (p95)"): GetVideo →
GetMasterPlaylist (from the video's versioned manifest URL) → adaptive-bitrate
choice → GetVariantPlaylist → the first segment from the CDN edge
(EdgeService.StreamSegments). Its journey latency, from the intended start to
the last byte of the first segment, is the playback-start time.
"""

from __future__ import annotations

import random
import time

import grpc
from pydantic import Field

from casemesh.video.v1 import catalog_pb2, edge_pb2, playback_pb2, search_pb2

from ..base import Caller, Params
from .catalogue import VOCABULARY, State, upload_video, wait_published
from .player import ThroughputEstimates, first_segment, generation_of, master_variants, segment_index, select_variant

#: Name of the measure "CompleteUpload answered → video seen PUBLISHED" recorded by ``upload``.
UPLOAD_PUBLISH = "upload_publish"
#: Measures of ``playback_start``: the first segment's download time (s), split by the edge's cache
#: result, so the report shows the edge hit ratio (counts) and the miss penalty (percentiles).
FIRST_SEGMENT_HIT = "first_segment_edge_hit"
FIRST_SEGMENT_MISS = "first_segment_edge_miss"


class PlaybackParams(Params):
    """Which video (Zipf popularity) and how the player picks its variant."""

    zipf_exponent: float = Field(default=1.0, gt=0.0, le=5.0, description="Zipf exponent of video popularity")
    abr_safety: float = Field(default=0.8, gt=0.0, le=1.0, description="play the highest variant below this x measured throughput")
    initial_estimate_kbps: float = Field(default=5000.0, gt=0, description="throughput a viewer assumes before measuring (kbit/s)")
    estimate_weight: float = Field(default=0.5, gt=0.0, le=1.0, description="EWMA weight of a new throughput sample")


class PopularParams(Params):
    """A video chosen by Zipf popularity."""

    zipf_exponent: float = Field(default=1.0, gt=0.0, le=5.0)


class NoParams(Params):
    """A journey without parameters."""


class UploadParams(Params):
    """One upload, from InitiateUpload to seeing the video published."""

    raw_bytes: int = Field(default=1_048_576, ge=1, le=268_435_456, description="raw file size (bytes)")
    chunk_bytes: int = Field(default=262_144, ge=1, le=1_048_576, description="upload chunk size (bytes)")
    min_duration_s: float = Field(default=60.0, gt=0, le=43_200)
    max_duration_s: float = Field(default=540.0, gt=0, le=43_200)
    poll_interval_ms: float = Field(default=250.0, ge=10, le=10_000, description="GetVideo polling while waiting for publication")
    publish_timeout_s: float = Field(default=60.0, gt=0, le=3600)


async def playback_start(call: Caller, params: PlaybackParams, state: State, rng: random.Random) -> None:
    viewer = rng.randrange(len(state.viewers))
    if state.throughput is None:
        state.throughput = ThroughputEstimates(len(state.viewers), params.initial_estimate_kbps * 1000, params.estimate_weight)
    video = (await call("video-catalog", "GetVideo", catalog_pb2.GetVideoRequest(video_id=state.zipf_video(params.zipf_exponent, rng)))).video
    generation = generation_of(video.manifest_url)
    master = await call("video-playback", "GetMasterPlaylist", playback_pb2.GetMasterPlaylistRequest(video_id=video.video_id, generation=generation))
    variant = select_variant(master_variants(master.playlist), state.throughput.get(viewer), params.abr_safety)
    media = await call("video-playback", "GetVariantPlaylist", playback_pb2.GetVariantPlaylistRequest(
        video_id=video.video_id, generation=master.generation, rendition=variant.rendition))
    first_uri, _ = first_segment(media.playlist)  # ValueError (journey fails as UNKNOWN) when there is none
    start_index = segment_index(first_uri)
    started = time.perf_counter()
    received = 0
    cache_result = edge_pb2.CACHE_RESULT_UNSPECIFIED
    async for chunk in call.server_stream("video-edge", "StreamSegments", edge_pb2.StreamSegmentsRequest(
            video_id=video.video_id, generation=master.generation, rendition=variant.rendition, start_index=start_index, count=1)):
        received += len(chunk.data)
        cache_result = chunk.cache_result
    took_s = time.perf_counter() - started
    state.throughput.update(viewer, received, took_s)
    call.observe(FIRST_SEGMENT_HIT if cache_result == edge_pb2.CACHE_RESULT_HIT else FIRST_SEGMENT_MISS, took_s)


async def home_feed(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    await call("video-catalog", "GetHomeFeed", catalog_pb2.GetHomeFeedRequest(user_id=rng.choice(state.viewers), page_size=20))


async def search(call: Caller, params: NoParams, state: State, rng: random.Random) -> None:
    await call("video-search", "SearchVideos", search_pb2.SearchVideosRequest(query=rng.choice(VOCABULARY), page_size=20))


async def like(call: Caller, params: PopularParams, state: State, rng: random.Random) -> None:
    await call("video-catalog", "LikeVideo", catalog_pb2.LikeVideoRequest(
        video_id=state.zipf_video(params.zipf_exponent, rng), user_id=rng.choice(state.viewers)))


async def comment(call: Caller, params: PopularParams, state: State, rng: random.Random) -> None:
    video_id = state.zipf_video(params.zipf_exponent, rng)
    await call("video-catalog", "AddComment", catalog_pb2.AddCommentRequest(
        video_id=video_id, user_id=rng.choice(state.viewers), text=" ".join(rng.sample(VOCABULARY, 8))))
    await call("video-catalog", "ListComments", catalog_pb2.ListCommentsRequest(video_id=video_id, page_size=20))


async def upload(call: Caller, params: UploadParams, state: State, rng: random.Random) -> None:
    """Upload a video and wait until it is published; records ``upload_publish`` (complete → published)."""
    duration = rng.uniform(params.min_duration_s, max(params.min_duration_s, params.max_duration_s))
    video_id = await upload_video(call, rng.choice(state.channels), duration, params.raw_bytes, params.chunk_bytes, rng)
    completed = time.perf_counter()
    if await wait_published(call, video_id, params.publish_timeout_s, params.poll_interval_ms / 1000):
        call.observe(UPLOAD_PUBLISH, time.perf_counter() - completed)
    else:
        call.observe(UPLOAD_PUBLISH, time.perf_counter() - completed, "DEADLINE_EXCEEDED")
        raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   f"video {video_id} not published within {params.publish_timeout_s:g} s")



