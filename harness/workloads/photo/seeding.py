"""Seeding the photo workload through the public API: the follow graph, then every user's first photos.

1. The follow graph is the social workload's (:func:`..social.graph.follow_graph`:
   power-law follower counts); each user's followees go in one
   SocialGraphService.FollowMany call to the shared social graph.
2. A pool of synthetic JPEGs is made (:mod:`.images`); every user uploads
   ``photos_per_user`` of them: PhotoService.InitiatePhotoUpload, the bytes
   to ObjectStoreService.UploadObject with the token, CompletePhotoUpload.
3. Seeding waits until GetMediaStatus shows no photo PROCESSING, so the load
   starts from a settled catalogue (with pre-generation on, every size exists).
4. With ``aged`` (the default), every size of every seeded photo is asked for
   once (GetPhoto): the catalogue is as it is once its photos have been seen,
   so with sizes made on first request only photos uploaded during the load
   pay their first views. ``aged: false`` is a young catalogue, never viewed.

The state the journeys share: a :class:`~..population.Population` of users
(authors drawn with weight sqrt(1 + followers), as in the social workload),
the readers (users who follow someone), the seeded photo ids in a random
popularity order (Zipf over it), the newest photos, and the image pool.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import Field

from casemesh.photo.v1 import media_pb2
from casemesh.services.photo.sizes import SIZES
from casemesh.video.v1 import storage_pb2

from ...errors import HarnessError
from ..base import Caller, Params, UnrecordedCaller
from ..population import Population
from ..social.seeding import seed_follow_graph
from .images import jpeg_pool

MEDIA = "photo-media"
FEED = "photo-feed"
GRAPH = "social-graph"
STORAGE = "video-storage"
EDGE = "video-edge"
#: UploadObject chunk size in bytes (the store's largest chunk, 1 MiB).
CHUNK_BYTES = 1 << 20


class SeedParams(Params):
    """The users, their follow graph, their first photos and the image pool."""

    users: int = Field(default=400, ge=2, le=100_000, description="users in the follow graph")
    follower_exponent: float = Field(default=2.276, gt=1.5, le=4.0,
                                     description="power-law exponent of follower counts (as the social workload)")
    follower_scale: float = Field(default=4.0, gt=0, le=1000, description="scale of follower counts (mean about 4.6 x this)")
    graph_seed: int = Field(default=42, ge=0, description="random seed of the graph (same seed, same graph)")
    photos_per_user: int = Field(default=1, ge=0, le=50, description="photos each user uploads before load")
    image_pool: int = Field(default=16, ge=1, le=256, description="distinct synthetic JPEGs uploads reuse")
    image_width_px: int = Field(default=1280, ge=16, le=8000, description="width of the synthetic originals")
    image_height_px: int = Field(default=960, ge=16, le=8000, description="height of the synthetic originals")
    zipf_exponent: float = Field(default=1.0, ge=0.0, le=3.0,
                                 description="popularity skew of photo views (rank r viewed in proportion to 1/r^s)")
    aged: bool = Field(default=True, description="ask for every size of every seeded photo once before load "
                                                 "(a catalogue already viewed); false: a young, never viewed catalogue")
    concurrency: int = Field(default=16, ge=1, le=256, description="seeding calls in flight")
    settle_timeout_s: float = Field(default=180.0, gt=0, le=3600,
                                    description="how long seeding waits for the processing queue to drain")


@dataclass
class User:
    """One simulated user's own state."""

    user_id: str
    following: set[str] = field(default_factory=set)
    followers: set[str] = field(default_factory=set)


@dataclass
class State:
    """What the journeys share."""

    authors: Population[User]
    users: dict[str, User]
    readers: list[str]
    #: Seeded photo ids in popularity order (rank 1 first) and their cumulative Zipf weights.
    popular: list[str]
    cumulative: list[float]
    images: list[bytes]
    #: Newest photo ids uploaded by anyone.
    recent: deque = field(default_factory=lambda: deque(maxlen=50))
    #: Authors with at least one photo (profile grids show theirs).
    with_photos: list[str] = field(default_factory=list)


def upload_chunks(token: str, data: bytes) -> Iterator[storage_pb2.UploadObjectRequest]:
    """The UploadObject client stream of ``data``, in order, 1 MiB at a time."""
    for offset in range(0, len(data), CHUNK_BYTES):
        yield storage_pb2.UploadObjectRequest(upload_token=token, offset_bytes=offset,
                                              data=data[offset:offset + CHUNK_BYTES])


async def upload_photo(call: Caller, author: str, data: bytes, caption: str) -> media_pb2.CompletePhotoUploadResponse:
    """Initiate, upload and complete one photo; returns CompletePhotoUpload's answer (PROCESSING or READY)."""
    initiated = await call(MEDIA, "InitiatePhotoUpload", media_pb2.InitiatePhotoUploadRequest(
        author_id=author, caption=caption, file_size_bytes=len(data)))
    await call.client_stream(STORAGE, "UploadObject", upload_chunks(initiated.upload_token, data))
    return await call(MEDIA, "CompletePhotoUpload", media_pb2.CompletePhotoUploadRequest(photo_id=initiated.photo_id))


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Follow the graph, upload the first photos, wait for processing; ``HarnessError`` on timeout."""
    caller = UnrecordedCaller(call)
    authors = await seed_follow_graph(caller, users=params.users, follower_exponent=params.follower_exponent,
                                      follower_scale=params.follower_scale, graph_seed=params.graph_seed,
                                      concurrency=params.concurrency, make_state=User)
    users = authors.state
    ids = authors.ids

    images = await asyncio.to_thread(jpeg_pool, params.image_pool, params.image_width_px, params.image_height_px,
                                     random.Random(rng.random()))
    uploads = iter([(author, n) for n in range(params.photos_per_user) for author in ids])
    photo_ids: list[str] = []

    async def uploader() -> None:
        for author, n in uploads:
            done = await upload_photo(caller, author, images[(len(photo_ids) + n) % len(images)], f"photo {n} of {author}")
            photo_ids.append(done.photo.photo_id)

    await asyncio.gather(*(uploader() for _ in range(params.concurrency)))
    await wait_processed(caller, params.settle_timeout_s)
    if params.aged:
        views = iter([(photo_id, size.size) for photo_id in photo_ids for size in SIZES])

        async def viewer() -> None:
            for photo_id, size in views:
                await caller(MEDIA, "GetPhoto", media_pb2.GetPhotoRequest(photo_id=photo_id, size=size))

        await asyncio.gather(*(viewer() for _ in range(params.concurrency)))
    popular = sorted(photo_ids)
    rng.shuffle(popular)
    cumulative = list(itertools.accumulate(1 / (rank ** params.zipf_exponent) for rank in range(1, len(popular) + 1)))
    recent: deque = deque(sorted(photo_ids)[-50:], maxlen=50)
    return State(authors=authors, users=users, readers=[u for u in ids if users[u].following], popular=popular,
                 cumulative=cumulative, images=images, recent=recent,
                 with_photos=ids if params.photos_per_user else [])


async def wait_processed(call: Caller, timeout_s: float) -> None:
    """Poll GetMediaStatus until no photo is PROCESSING; ``HarnessError`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        status = await call(MEDIA, "GetMediaStatus", media_pb2.GetMediaStatusRequest())
        if status.photos_processing == 0:
            return
        if time.monotonic() > deadline:
            raise HarnessError(f"{status.photos_processing} photos were still PROCESSING {timeout_s:g} s after seeding "
                               "(see photo-media's and photo-resizer's logs)")
        await asyncio.sleep(0.1)
