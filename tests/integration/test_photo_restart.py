"""Killing photo-media or photo-resizer mid-burst loses no acknowledged photo: each ends READY with its three sizes.

A multi-process mesh (harness/mesh.py: one process per service, restarted by
the mesh's supervisor after a crash). photo-media renders with one queue
consumer and the resizer one render at a time, so a burst of uploads piles up
PROCESSING photos: photo-media is SIGKILLed with more than five of them in
its queue, and the restarted process must finish them from its journal.
Then the resizer is SIGKILLed while uploads keep coming: completes fail
UNAVAILABLE (the client retries them) and queued renders are retried until
it is back.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.photo.v1 import photo_pb2

from .photo_sharing import EDGE_SETTINGS, FAST_RECONNECT, READY, SIZE_VALUES, Client, check_size, colour, make_photo, size_of

SERVICES = ["idgen", "video-storage", "video-edge", "photo-resizer", "photo-media"]
SETTINGS = {"photo-media": {"render_workers": 1}, "photo-resizer": {"max_parallel_renders": 1}, "video-edge": EDGE_SETTINGS}
#: What a call may answer while a service is killed and restarted: the client retries it.
RESTARTING = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
#: How long a client keeps retrying one step of an upload (a restart on a loaded 2-core machine takes seconds).
RETRY_FOR_S = 120.0


async def wait_restarted(mesh: Mesh, name: str, old_pid: int) -> None:
    """Wait until the mesh's supervisor has restarted ``name`` (killed as ``old_pid``) and it reports SERVING."""
    deadline = time.monotonic() + RETRY_FOR_S
    while mesh.restarts[name] < 1 or mesh.pid(name) == old_pid:
        assert time.monotonic() < deadline, f"{name} was not restarted:\n{mesh.log_tail(name)}"
        await asyncio.sleep(0.2)


@dataclass(frozen=True)
class Acked:
    photo_id: str
    author: str
    index: int
    width_px: int
    height_px: int


class Uploader:
    """Uploads that retry each step on UNAVAILABLE / DEADLINE_EXCEEDED; keeps the acknowledged ones."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.acked: dict[str, Acked] = {}
        self.failures = 0

    async def _retry(self, call):
        deadline = time.monotonic() + RETRY_FOR_S
        while True:
            try:
                return await call()
            except grpc.aio.AioRpcError as error:
                if error.code() not in RESTARTING or time.monotonic() > deadline:
                    raise
                self.failures += 1
                await asyncio.sleep(0.1)

    async def upload(self, author: str, index: int, width_px: int, height_px: int) -> None:
        """One photo: Initiate (again, if its answer was lost: the lost one stays UPLOADING, never listed), the bytes,
        then Complete until acknowledged (it is idempotent)."""
        data = make_photo(index, width_px, height_px, quality=95)
        initiated = await self._retry(lambda: self.client.initiate(author, data))
        await self._retry(lambda: self.client.put(initiated.upload_token, data))
        photo = await self._retry(lambda: self.client.complete(initiated.photo_id))
        assert photo.status in (photo_pb2.PHOTO_STATUS_PROCESSING, READY) and photo.photo_id == initiated.photo_id
        self.acked[photo.photo_id] = Acked(photo.photo_id, author, index, width_px, height_px)


async def assert_all_ready(client: Client, acked: dict[str, Acked], authors: list[str]) -> None:
    """Every acknowledged photo is READY with three sizes that stream whole and match their refs; each author's
    listing holds exactly their acknowledged photos, once each, newest first."""
    await client.settle(timeout_s=RETRY_FOR_S)
    for author in authors:
        listed = [p.photo_id for p in await client.user_photos(author, page_size=7)]
        assert listed == sorted((a.photo_id for a in acked.values() if a.author == author), reverse=True), author
    for up in acked.values():
        photo = (await client.get(up.photo_id)).photo
        assert photo.status == READY and len(photo.sizes) == 3, photo
        for size in SIZE_VALUES:
            ref = size_of(photo, size)
            check_size(await client.fetch_size(ref), ref, (up.width_px, up.height_px), colour(up.index),
                       f"photo {up.index} ({up.photo_id}) {photo_pb2.PhotoSize.Name(size)}")


async def wait_for(condition, uploads: asyncio.Future, what: str) -> None:
    """Poll ``await condition()`` until it is true; fail if the uploads end first (raising their error) or after
    ``RETRY_FOR_S``."""
    deadline = time.monotonic() + RETRY_FOR_S
    while not await condition():
        if uploads.done():
            await uploads
            raise AssertionError(f"the uploads ended before {what}")
        assert time.monotonic() < deadline, f"not {what} after {RETRY_FOR_S:g} s"
        await asyncio.sleep(0.02)


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_photo_media_and_of_the_resizer_loses_no_acknowledged_photo(tmp_path):
    rng = random.Random(5)
    async with Mesh(SERVICES, tmp_path, settings=SETTINGS) as mesh:
        channels: list[grpc.aio.Channel] = []

        def channel(name: str) -> grpc.aio.Channel:
            channels.append(grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT))
            return channels[-1]

        client = Client(channel, SERVICES)
        uploads: asyncio.Future | None = None
        try:
            # (a) photo-media dies with more than five PROCESSING photos in its queue and uploads in flight; the
            # restarted process finishes the queue from its journal, and the clients' retried completes succeed.
            first = Uploader(client)
            authors_a = [f"a-{i}" for i in range(6)]
            work = iter([(authors_a[i % 6], i, rng.choice([1600, 2400]), rng.choice([1200, 1800])) for i in range(30)])

            async def uploading_a() -> None:
                for author, index, width, height in work:
                    await first.upload(author, index, width, height)

            uploads = asyncio.gather(*(uploading_a() for _ in range(10)))
            await wait_for(lambda: _processing_over(client, 5), uploads, "six photos were PROCESSING")
            old = mesh.pid("photo-media")
            os.kill(old, signal.SIGKILL)
            await uploads
            await wait_restarted(mesh, "photo-media", old)
            assert len(first.acked) == 30 and first.failures > 0
            await assert_all_ready(client, first.acked, authors_a)

            # (b) the resizer dies with renders queued while uploads keep coming: completes fail UNAVAILABLE and
            # are retried by the clients, queued renders by photo-media; sizes already made are served meanwhile.
            second = Uploader(client)
            authors_b = [f"b-{i}" for i in range(4)]
            indexes = iter(range(100, 1000))
            restarted = asyncio.Event()
            after_restart = 0

            async def uploading_b() -> None:
                nonlocal after_restart
                while not (restarted.is_set() and after_restart >= 8):
                    index = next(indexes)
                    await second.upload(authors_b[index % 4], index, rng.choice([1600, 2400]), 1200)
                    after_restart += restarted.is_set()

            uploads = asyncio.gather(*(uploading_b() for _ in range(8)))

            async def queue_busy() -> bool:
                return len(second.acked) >= 8 and await _processing_over(client, 2)

            await wait_for(queue_busy, uploads, "eight uploads acknowledged with three photos PROCESSING")
            old = mesh.pid("photo-resizer")
            os.kill(old, signal.SIGKILL)
            seen = next(iter(first.acked.values()))
            assert seen.photo_id in [p.photo_id for p in await client.user_photos(seen.author)]
            ref = (await client.get(seen.photo_id, photo_pb2.PHOTO_SIZE_MEDIUM)).ref
            check_size(await client.fetch_size(ref), ref, (seen.width_px, seen.height_px), colour(seen.index),
                       "a MEDIUM size while the resizer is down")
            await wait_restarted(mesh, "photo-resizer", old)
            restarted.set()
            await uploads
            assert second.failures > 0, "no complete met the dead resizer"
            await assert_all_ready(client, second.acked, authors_b)
            await assert_all_ready(client, first.acked, authors_a)  # phase (a)'s photos are as they were
            status = await client.status()
            assert status.photos_ready == len(first.acked) + len(second.acked) and status.photos_rejected == 0
        finally:
            if uploads is not None and not uploads.done():
                uploads.cancel()
                await asyncio.gather(uploads, return_exceptions=True)
            for open_channel in channels:
                await open_channel.close()


async def _processing_over(client: Client, count: int) -> bool:
    return (await client.status()).photos_processing > count
