"""Shared by the photo-sharing integration tests: a client of the public API, synthetic photos, and checks of sizes.

A client does what harness/workloads/photo does: InitiatePhotoUpload, the
bytes straight to the object store (ObjectStoreService.UploadObject with the
upload token), CompletePhotoUpload; sizes stream from the CDN edge
(EdgeService.StreamSegments of the SizeRef's object id, generation and
rendition). Each test photo is a solid colour chosen from its index with one
thin line across it, so a size's mean colour tells which photo it came from.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import time
from collections.abc import Callable

import grpc
from PIL import Image, ImageDraw, ImageStat

from casemesh.photo.v1 import feed_pb2, feed_pb2_grpc, media_pb2, media_pb2_grpc, photo_pb2
from casemesh.services.photo.sizes import BY_SIZE
from casemesh.social.v1 import graph_pb2, graph_pb2_grpc
from casemesh.video.v1 import edge_pb2, edge_pb2_grpc, storage_pb2, storage_pb2_grpc

MEDIA, FEED, GRAPH, STORAGE, EDGE = "photo-media", "photo-feed", "social-graph", "video-storage", "video-edge"
SERVICES = [MEDIA, "photo-resizer", FEED, GRAPH, STORAGE, EDGE, "idgen"]
#: The CDN edge with a free WAN (no modelled round trips, unpaced links) and a small cache, so sizes get evicted.
EDGE_SETTINGS = {"client_rtt_ms": 0, "client_bandwidth_kbps": 0, "origin_rtt_ms": 0, "origin_bandwidth_mbps": 0,
                 "cache_bytes": 64 * 1024}
#: The store's largest UploadObject chunk.
CHUNK_BYTES = 1 << 20
#: Deadline of each call in these tests: generous, the machine is small and noisy.
TIMEOUT_S = 30.0
READY = photo_pb2.PHOTO_STATUS_READY
SIZE_VALUES = [s.size for s in BY_SIZE.values()]
#: Channel options of the tests' clients: reconnect within a second of a restarted service coming back.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))

_LEVELS = (20, 70, 120, 170, 220)


def colour(index: int) -> tuple[int, int, int]:
    """Photo ``index``'s colour: 125 colours whose channels differ by 50 (any two differ by 50 in a channel)."""
    index %= len(_LEVELS) ** 3
    return _LEVELS[index % 5], _LEVELS[index // 5 % 5], _LEVELS[index // 25 % 5]


def make_photo(index: int, width_px: int, height_px: int, quality: int = 85, fmt: str = "JPEG") -> bytes:
    """A ``width_px`` x ``height_px`` JPEG (or ``fmt``: "PNG") of :func:`colour` (``index``) with a thin line of the
    opposite colour."""
    fill = colour(index)
    image = Image.new("RGB", (width_px, height_px), fill)
    y = height_px // 3
    ImageDraw.Draw(image).line((0, y, width_px, y), fill=tuple(255 - c for c in fill), width=max(1, height_px // 100))
    out = io.BytesIO()
    image.save(out, fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return out.getvalue()


def upload_requests(token: str, data: bytes, chunk_bytes: int = CHUNK_BYTES, start: int = 0):
    """The UploadObject client stream of ``data[start:]``, in order, ``chunk_bytes`` (at most 1 MiB) at a time."""
    for offset in range(start, len(data), chunk_bytes):
        yield storage_pb2.UploadObjectRequest(upload_token=token, offset_bytes=offset, data=data[offset:offset + chunk_bytes])


def size_of(photo: photo_pb2.Photo, size: int) -> photo_pb2.SizeRef:
    """The photo's SizeRef of ``size`` (every READY or PROCESSING photo lists all three)."""
    return next(ref for ref in photo.sizes if ref.size == size)


def check_size(data: bytes, ref: photo_pb2.SizeRef, original: tuple[int, int], fill: tuple[int, int, int],
               what: str) -> None:
    """``data`` is a whole JPEG of the SizeRef's dimensions (those of the contract for a ``original`` (w, h)
    original), hashing to its sha256_hex, whose mean colour is ``fill`` (±10 per channel)."""
    width, height = original
    target = BY_SIZE[ref.size].width_px
    assert ref.ready and ref.size_bytes == len(data), f"{what}: {len(data)} bytes, the SizeRef says {ref.size_bytes}"
    assert hashlib.sha256(data).hexdigest() == ref.sha256_hex, f"{what}: bytes do not match the SizeRef's sha256"
    expected_w = min(target, width)
    assert ref.width_px == expected_w and abs(ref.height_px - round(height * expected_w / width)) <= 1, (
        f"{what}: SizeRef {ref.width_px}x{ref.height_px} for a {width}x{height} original at {target} px")
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG", what
    image.load()  # decodes fully: a truncated or corrupt JPEG raises here
    assert image.size == (ref.width_px, ref.height_px), f"{what}: image {image.size}, SizeRef {ref.width_px}x{ref.height_px}"
    mean = ImageStat.Stat(image.convert("RGB")).mean
    assert all(abs(m - f) <= 10 for m, f in zip(mean, fill, strict=True)), f"{what}: mean colour {mean}, photo's {fill}"


class Client:
    """Stubs of the services a photo-sharing client talks to; ``channel(name)`` opens a channel to one.

    ``services`` are the mesh's: without photo-feed and social-graph, ``feed`` and ``graph`` are None.
    """

    def __init__(self, channel: Callable[[str], grpc.aio.Channel], services: list[str] = SERVICES) -> None:
        self.media = media_pb2_grpc.PhotoServiceStub(channel(MEDIA))
        self.storage = storage_pb2_grpc.ObjectStoreServiceStub(channel(STORAGE))
        self.edge = edge_pb2_grpc.EdgeServiceStub(channel(EDGE))
        self.feed = feed_pb2_grpc.PhotoFeedServiceStub(channel(FEED)) if FEED in services else None
        self.graph = graph_pb2_grpc.SocialGraphServiceStub(channel(GRAPH)) if GRAPH in services else None

    async def follow_all(self, following: dict[str, set[str]]) -> None:
        """Each user follows their set (one FollowMany each)."""
        await asyncio.gather(*(self.graph.FollowMany(graph_pb2.FollowManyRequest(follower_id=u, followee_ids=sorted(vs)),
                                                     timeout=TIMEOUT_S) for u, vs in following.items() if vs))

    async def initiate(self, author: str, data: bytes, caption: str = "") -> media_pb2.InitiatePhotoUploadResponse:
        return await self.media.InitiatePhotoUpload(media_pb2.InitiatePhotoUploadRequest(
            author_id=author, caption=caption, file_size_bytes=len(data)), timeout=TIMEOUT_S)

    async def put(self, token: str, data: bytes, chunk_bytes: int = CHUNK_BYTES, start: int = 0) -> storage_pb2.UploadObjectResponse:
        """Upload ``data[start:]`` to the object store under ``token``."""
        return await self.storage.UploadObject(upload_requests(token, data, chunk_bytes, start), timeout=TIMEOUT_S)

    async def complete(self, photo_id: str) -> photo_pb2.Photo:
        response = await self.media.CompletePhotoUpload(media_pb2.CompletePhotoUploadRequest(photo_id=photo_id),
                                                        timeout=TIMEOUT_S)
        return response.photo

    async def upload(self, author: str, data: bytes, caption: str = "", chunk_bytes: int = CHUNK_BYTES) -> photo_pb2.Photo:
        """Initiate, upload (``chunk_bytes`` a chunk) and complete one photo: the Photo CompletePhotoUpload answers."""
        initiated = await self.initiate(author, data, caption)
        await self.put(initiated.upload_token, data, chunk_bytes)
        return await self.complete(initiated.photo_id)

    async def get(self, photo_id: str, size: int = photo_pb2.PHOTO_SIZE_UNSPECIFIED) -> media_pb2.GetPhotoResponse:
        return await self.media.GetPhoto(media_pb2.GetPhotoRequest(photo_id=photo_id, size=size), timeout=TIMEOUT_S)

    async def stream_size(self, ref: photo_pb2.SizeRef) -> tuple[bytes, set[int]]:
        """The size's bytes from the edge, concatenated, and the cache results its chunks carried."""
        call = self.edge.StreamSegments(edge_pb2.StreamSegmentsRequest(
            video_id=ref.object_id, generation=ref.generation, rendition=ref.rendition, start_index=0, count=1),
            timeout=TIMEOUT_S)
        chunks = [chunk async for chunk in call]
        assert [c.offset_bytes for c in chunks] == [sum(len(c.data) for c in chunks[:i]) for i in range(len(chunks))]
        return b"".join(c.data for c in chunks), {c.cache_result for c in chunks}

    async def fetch_size(self, ref: photo_pb2.SizeRef) -> bytes:
        """The size's bytes from the edge."""
        return (await self.stream_size(ref))[0]

    async def user_photos(self, author: str, page_size: int = 5) -> list[photo_pb2.Photo]:
        """Every page of the author's ListUserPhotos, in order."""
        photos, token = [], ""
        while True:
            page = await self.media.ListUserPhotos(media_pb2.ListUserPhotosRequest(
                author_id=author, page_size=page_size, page_token=token), timeout=TIMEOUT_S)
            photos.extend(page.photos)
            token = page.next_page_token
            if not token:
                return photos

    async def feed_all(self, user: str, page_size: int = 7) -> list[photo_pb2.Photo]:
        """Every page of the user's GetPhotoFeed, in order."""
        photos, token = [], ""
        while True:
            page = await self.feed.GetPhotoFeed(feed_pb2.GetPhotoFeedRequest(
                user_id=user, page_size=page_size, page_token=token), timeout=TIMEOUT_S)
            photos.extend(page.photos)
            token = page.next_page_token
            if not token:
                return photos

    async def status(self) -> media_pb2.GetMediaStatusResponse:
        return await self.media.GetMediaStatus(media_pb2.GetMediaStatusRequest(), timeout=TIMEOUT_S)

    async def settle(self, timeout_s: float = 90.0) -> media_pb2.GetMediaStatusResponse:
        """Poll GetMediaStatus until no photo is PROCESSING (a restarting service's UNAVAILABLE is waited out)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                status = await self.status()
                if status.photos_processing == 0:
                    return status
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                status = error
            assert time.monotonic() < deadline, f"photos still PROCESSING after {timeout_s:g} s: {status}"
            await asyncio.sleep(0.1)

