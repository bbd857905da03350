"""The photo workload's journeys: the feed, opening a photo, a profile grid, uploads (with visibility), follows.

Seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt), "Instagram Photo
Storage": "Load photo < 200ms", "Availability: 99.9%", "Feed (photos from
followed users)", "Multiple resolutions". Journey-defined measures:

- ``photo_load``: one image on screen, from the first call for it (GetPhoto
  when its size is not known to be ready, else the edge stream) to its last
  byte from the CDN edge (EdgeService.StreamSegments). Split, for the
  report, into ``photo_load_edge_hit`` / ``photo_load_edge_miss`` by the
  edge's cache result, and ``photo_load_rendered`` when the size was made
  for this request (the cost of not pre-generating it).
- ``photo_visible``: after CompletePhotoUpload answers, a sampled follower
  re-reads their feed until the photo is in it (the processing queue's delay
  when sizes are pre-generated).

Every image's bytes are checked: as long as the SizeRef says, with JPEG's
start and end markers. Journeys never decode images (that would load the
load generator, not the system).
"""

from __future__ import annotations

import asyncio
import bisect
import random
import time

import grpc
from pydantic import Field

from casemesh.photo.v1 import feed_pb2, media_pb2, photo_pb2
from casemesh.video.v1 import edge_pb2

from ..base import Caller, Params
from .images import looks_like_jpeg
from .seeding import EDGE, FEED, MEDIA, State, upload_photo

PHOTO_LOAD = "photo_load"
PHOTO_LOAD_HIT = "photo_load_edge_hit"
PHOTO_LOAD_MISS = "photo_load_edge_miss"
PHOTO_LOAD_RENDERED = "photo_load_rendered"
PHOTO_VISIBLE = "photo_visible"
MEASURES = (PHOTO_LOAD, PHOTO_LOAD_HIT, PHOTO_LOAD_MISS, PHOTO_LOAD_RENDERED, PHOTO_VISIBLE)


class FeedParams(Params):
    """One feed page and the images a user sees of it."""

    page_size: int = Field(default=12, ge=1, le=50, description="photos per feed page")
    images: int = Field(default=3, ge=0, le=12, description="MEDIUM images loaded from the page (those on screen)")


class LoadParams(Params):
    """Opening one photo."""

    recent_share: float = Field(default=0.3, ge=0.0, le=1.0,
                                description="share of opens that pick one of the 50 newest photos (else Zipf over the seeded ones)")
    large_share: float = Field(default=0.2, ge=0.0, le=1.0, description="share of opens at LARGE (else MEDIUM)")


class GridParams(Params):
    """A profile grid."""

    photos: int = Field(default=9, ge=1, le=60, description="THUMBNAILs in the grid (a 3 x 3 first screen)")


class UploadParams(Params):
    """An upload, and how its visibility in a follower's feed is measured."""

    visible_share: float = Field(default=1.0, ge=0.0, le=1.0, description="share of uploads whose photo_visible is measured")
    poll_interval_ms: float = Field(default=100.0, ge=5, le=10_000, description="the follower's feed re-read interval")
    visible_timeout_s: float = Field(default=20.0, gt=0, le=600, description="give up (DEADLINE_EXCEEDED) after this long")


async def load_image(call: Caller, photo_id: str, size: int, ref: photo_pb2.SizeRef | None) -> None:
    """Load one image (``photo_load``): GetPhoto unless ``ref`` is ready, then the edge stream to the last byte."""
    started = time.perf_counter()
    rendered = False
    try:
        if ref is None or not ref.ready:
            got = await call(MEDIA, "GetPhoto", media_pb2.GetPhotoRequest(photo_id=photo_id, size=size))
            ref, rendered = got.ref, got.rendered_now
        received = 0
        last = b""
        cache_result = edge_pb2.CACHE_RESULT_UNSPECIFIED
        async for chunk in call.server_stream(EDGE, "StreamSegments", edge_pb2.StreamSegmentsRequest(
                video_id=ref.object_id, generation=ref.generation, rendition=ref.rendition, start_index=0, count=1)):
            if not received:
                first = chunk.data[:2]
            received += len(chunk.data)
            last = chunk.data[-2:] if len(chunk.data) >= 2 else last + chunk.data
            cache_result = chunk.cache_result
        if received != ref.size_bytes or not looks_like_jpeg(first + last):
            raise grpc.aio.AioRpcError(grpc.StatusCode.DATA_LOSS, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"{photo_id} {photo_pb2.PhotoSize.Name(size)}: {received} bytes from the edge, "
                                       f"the SizeRef says {ref.size_bytes}, or not a whole JPEG")
    except grpc.aio.AioRpcError as error:
        call.observe(PHOTO_LOAD, time.perf_counter() - started, error.code().name)
        raise
    took = time.perf_counter() - started
    call.observe(PHOTO_LOAD, took)
    call.observe(PHOTO_LOAD_HIT if cache_result == edge_pb2.CACHE_RESULT_HIT else PHOTO_LOAD_MISS, took)
    if rendered:
        call.observe(PHOTO_LOAD_RENDERED, took)


def _size_ref(photo: photo_pb2.Photo, size: int) -> photo_pb2.SizeRef | None:
    return next((r for r in photo.sizes if r.size == size), None)


async def feed(call: Caller, params: FeedParams, state: State, rng: random.Random) -> None:
    """A reader's feed page, then the first ``images`` photos at MEDIUM, loaded concurrently."""
    page = await call(FEED, "GetPhotoFeed", feed_pb2.GetPhotoFeedRequest(user_id=rng.choice(state.readers),
                                                                         page_size=params.page_size))
    shown = page.photos[:params.images]
    await asyncio.gather(*(load_image(call, p.photo_id, photo_pb2.PHOTO_SIZE_MEDIUM,
                                      _size_ref(p, photo_pb2.PHOTO_SIZE_MEDIUM)) for p in shown))


async def load_photo(call: Caller, params: LoadParams, state: State, rng: random.Random) -> None:
    """Open one photo (a shared link): a new one or a popular one, at MEDIUM or LARGE."""
    if state.recent and rng.random() < params.recent_share:
        photo_id = rng.choice(state.recent)
    elif state.popular:
        photo_id = state.popular[min(bisect.bisect_right(state.cumulative, rng.random() * state.cumulative[-1]),
                                     len(state.popular) - 1)]
    else:
        return
    size = photo_pb2.PHOTO_SIZE_LARGE if rng.random() < params.large_share else photo_pb2.PHOTO_SIZE_MEDIUM
    await load_image(call, photo_id, size, None)


async def profile_grid(call: Caller, params: GridParams, state: State, rng: random.Random) -> None:
    """A user's profile: their newest photos, each as a THUMBNAIL, loaded concurrently."""
    if not state.with_photos:
        return
    page = await call(MEDIA, "ListUserPhotos", media_pb2.ListUserPhotosRequest(
        author_id=state.authors.pick(rng), page_size=params.photos))
    await asyncio.gather(*(load_image(call, p.photo_id, photo_pb2.PHOTO_SIZE_THUMBNAIL,
                                      _size_ref(p, photo_pb2.PHOTO_SIZE_THUMBNAIL)) for p in page.photos))


async def upload(call: Caller, params: UploadParams, state: State, rng: random.Random) -> None:
    """Upload a photo by a weighted author; then, for a share of uploads, ``photo_visible`` at a random follower."""
    author = state.authors.pick(rng)
    done = await upload_photo(call, author, rng.choice(state.images), "")
    completed = time.perf_counter()
    photo_id = done.photo.photo_id
    state.recent.append(photo_id)
    followers = state.users[author].followers
    if not followers or rng.random() >= params.visible_share:
        return
    reader = rng.choice(sorted(followers))
    request = feed_pb2.GetPhotoFeedRequest(user_id=reader, page_size=12)
    deadline = completed + params.visible_timeout_s
    while True:
        page = await call(FEED, "GetPhotoFeed", request)
        if any(p.photo_id == photo_id for p in page.photos):
            call.observe(PHOTO_VISIBLE, time.perf_counter() - completed)
            return
        if time.perf_counter() >= deadline:
            call.observe(PHOTO_VISIBLE, time.perf_counter() - completed, "DEADLINE_EXCEEDED")
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"photo {photo_id} of {author} not in {reader}'s feed within {params.visible_timeout_s:g} s")
        await asyncio.sleep(params.poll_interval_ms / 1000)
