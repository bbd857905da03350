"""Transcode workers: lease a job, read the raw upload, write every rendition, publish, acknowledge.

Seed 004 ("Transcode Pipeline Reliability"): "a pool of stateless transcode
workers consumes jobs. Each worker downloads the raw source, runs FFmpeg to
produce HLS segments at three resolutions, and uploads them back to S3. The
worker then publishes a transcode.completed event that the metadata service
consumes to flip the video status from processing to published." And:
"Workers must be idempotent — re-transcoding and overwriting S3 output is
safe".

One job, while a heartbeat extends its lease every ``lease_ms / 3``:

1. ``ObjectStoreService.ReadObject`` the raw bytes and SHA-256 them (real I/O
   and hashing, off the event loop);
2. wait ``duration_s x cost_ms_per_video_s`` (encoding itself is out of
   scope, issue 3: its cost is modelled as time);
3. ``PutRendition`` each rung of :mod:`..ladder`, with a content seed derived
   from the raw SHA-256, the rendition and the generation
   (:func:`rendition_requests`: the same job always writes the same bytes);
4. ``CatalogService.PublishVideo`` the generation's renditions (the
   "transcode.completed" event; idempotent per generation);
5. ``TranscodeQueueService.AckJob``.

A failure at any step (or a lost lease) abandons the job without an
acknowledgement: its lease expires and the queue delivers it again, to this
worker or another. Completed steps are simply redone (the outputs are
identical and replaced atomically). ``concurrency`` slots each run this loop.

Stopping (:meth:`TranscodeWorker.stop`): slots stop leasing at once; jobs in
progress get ``grace_s`` to finish and are then cancelled, unacknowledged,
so their leases expire and the queue redelivers them. A killed worker is the
same case without the grace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable

import grpc

from casemesh.video.v1 import catalog_pb2, storage_pb2, transcode_pb2

from ..ladder import LADDER, Rung, rendition_info

log = logging.getLogger(__name__)

#: Timeout of the worker's unary calls (PutRendition, PublishVideo, ExtendLease, AckJob), in seconds.
RPC_TIMEOUT_S = 10.0
#: Timeout of reading one raw object (ReadObject, up to 4 GiB over loopback), in seconds.
READ_TIMEOUT_S = 600.0
#: LeaseJob's timeout beyond its long-poll wait, in seconds.
LEASE_CALL_SLACK_S = 5.0


def content_seed(raw_sha256_hex: str, rung: Rung, generation: int) -> str:
    """The rendition's content seed: SHA-256 (lowercase hex) of ``"{raw sha256}:{rung name}:{generation}"``."""
    return hashlib.sha256(f"{raw_sha256_hex}:{rung.name}:{generation}".encode("ascii")).hexdigest()


def rendition_requests(video_id: str, generation: int, duration_s: float, raw_sha256_hex: str) -> list[storage_pb2.PutRenditionRequest]:
    """The PutRendition requests of one job, lowest rung first: a pure function of its arguments."""
    return [
        storage_pb2.PutRenditionRequest(video_id=video_id, generation=generation, rendition=rendition_info(rung, duration_s),
                                        content_seed=content_seed(raw_sha256_hex, rung, generation))
        for rung in LADDER
    ]


class LeaseLost(Exception):
    """The queue refused to extend the lease: the job is being redelivered, stop working on it."""


class TranscodeWorker:
    """``concurrency`` slots leasing from ``queue``, reading from ``storage`` and publishing to ``catalog``.

    ``queue``, ``storage`` and ``catalog`` have the methods of the
    TranscodeQueueService, ObjectStoreService and CatalogService stubs.
    ``cost_ms_per_video_s``: modelled transcode time per second of video (ms);
    ``lease_ms``: visibility timeout asked for; ``poll_wait_ms``: LeaseJob's
    long-poll wait; ``retry_backoff_ms``: pause after a failed job or an
    unreachable queue. ``on_outcome(outcome, seconds)`` is called per job
    with ``"completed"`` or ``"failed"`` and the seconds since it was leased.
    """

    def __init__(self, queue, storage, catalog, *, worker_id: str, concurrency: int, cost_ms_per_video_s: float,
                 lease_ms: int, poll_wait_ms: int, retry_backoff_ms: int,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 on_outcome: Callable[[str, float], None] = lambda outcome, seconds: None):
        self._queue = queue
        self._storage = storage
        self._catalog = catalog
        self.worker_id = worker_id
        self.concurrency = concurrency
        self.cost_ms_per_video_s = cost_ms_per_video_s
        self.lease_ms = lease_ms
        self.poll_wait_ms = poll_wait_ms
        self.retry_backoff_s = retry_backoff_ms / 1000
        self._sleep = sleep
        self._on_outcome = on_outcome
        self._slots: dict[int, asyncio.Task] = {}
        self._busy: set[int] = set()
        self._stopping = False
        self.completed = 0
        self.failed = 0

    # -- one job -------------------------------------------------------------------------------

    async def _read_and_hash(self, raw_key: str) -> tuple[str, int]:
        """SHA-256 (hex) and size of the raw object, hashed off the event loop."""
        hasher = hashlib.sha256()
        size = 0
        async for chunk in self._storage.ReadObject(storage_pb2.ReadObjectRequest(key=raw_key), timeout=READ_TIMEOUT_S):
            await asyncio.to_thread(hasher.update, chunk.data)
            size += len(chunk.data)
        return hasher.hexdigest(), size

    async def transcode(self, job: transcode_pb2.TranscodeJob) -> list[storage_pb2.PutRenditionRequest]:
        """Steps 1 to 4 of the module doc for ``job``; returns the renditions written."""
        raw_sha256, size = await self._read_and_hash(job.raw_key)
        await self._sleep(job.duration_s * self.cost_ms_per_video_s / 1000)
        requests = rendition_requests(job.video_id, job.generation, job.duration_s, raw_sha256)
        for request in requests:
            await self._storage.PutRendition(request, timeout=RPC_TIMEOUT_S)
        await self._catalog.PublishVideo(catalog_pb2.PublishVideoRequest(
            video_id=job.video_id, generation=job.generation, renditions=[r.rendition for r in requests]), timeout=RPC_TIMEOUT_S)
        log.info("transcoded video %s generation %d (attempt %d, %d raw bytes, sha256 %s…)",
                 job.video_id, job.generation, job.attempt, size, raw_sha256[:12])
        return requests

    async def _heartbeat(self, job_id: str, lease_id: str, work: asyncio.Task, lost: asyncio.Event) -> None:
        """Extend the lease every ``lease_ms / 3`` until ``work`` ends; set ``lost`` and cancel it if the lease is lost."""
        interval = self.lease_ms / 3000
        while not work.done():
            await asyncio.sleep(interval)
            if work.done():
                return
            try:
                await self._queue.ExtendLease(transcode_pb2.ExtendLeaseRequest(
                    job_id=job_id, lease_id=lease_id, lease_ms=self.lease_ms), timeout=RPC_TIMEOUT_S)
            except grpc.aio.AioRpcError as error:
                if error.code() in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND):
                    log.warning("lease of job %s lost (%s); abandoning it", job_id, error.details())
                    lost.set()
                    work.cancel()
                    return
                log.warning("extending the lease of job %s failed (%s); will retry", job_id, error.code().name)

    async def process(self, job: transcode_pb2.TranscodeJob, lease_id: str) -> None:
        """Transcode ``job`` under a heartbeat, then acknowledge it.

        Raises on failure, with nothing acknowledged: the dependency's
        ``AioRpcError``, or :class:`LeaseLost` when the queue refused to extend the lease.
        """
        lost = asyncio.Event()
        work = asyncio.create_task(self.transcode(job), name=f"transcode-{job.job_id}")
        heartbeat = asyncio.create_task(self._heartbeat(job.job_id, lease_id, work, lost), name=f"heartbeat-{job.job_id}")
        try:
            try:
                await work
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if lost.is_set() and not (current and current.cancelling()):  # cancelled by the heartbeat alone
                    raise LeaseLost(job.job_id) from None
                raise
        finally:
            heartbeat.cancel()
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
        await self._queue.AckJob(transcode_pb2.AckJobRequest(job_id=job.job_id, lease_id=lease_id), timeout=RPC_TIMEOUT_S)

    # -- the slots -----------------------------------------------------------------------------

    async def _slot(self, slot: int) -> None:
        lease_timeout_s = self.poll_wait_ms / 1000 + LEASE_CALL_SLACK_S
        while not self._stopping:
            try:
                leased = await self._queue.LeaseJob(transcode_pb2.LeaseJobRequest(
                    worker_id=self.worker_id, lease_ms=self.lease_ms, wait_ms=self.poll_wait_ms), timeout=lease_timeout_s)
            except grpc.aio.AioRpcError as error:
                log.warning("LeaseJob failed (%s: %s); retrying in %.1f s", error.code().name, error.details(), self.retry_backoff_s)
                await asyncio.sleep(self.retry_backoff_s)
                continue
            except Exception:  # noqa: BLE001 - a bug must not silently end the slot
                log.exception("LeaseJob failed; retrying in %.1f s", self.retry_backoff_s)
                await asyncio.sleep(self.retry_backoff_s)
                continue
            if not leased.HasField("job"):
                if self.poll_wait_ms == 0:  # short polling: do not spin
                    await asyncio.sleep(max(self.retry_backoff_s, 0.05))
                continue
            self._busy.add(slot)
            started = time.perf_counter()
            try:
                await self.process(leased.job, leased.lease_id)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure: leave the job to redelivery, go on
                self.failed += 1
                self._on_outcome("failed", time.perf_counter() - started)
                detail = f"{error.code().name}: {error.details()}" if isinstance(error, grpc.aio.AioRpcError) else repr(error)
                log.warning("job %s (video %s, attempt %d) failed, left for redelivery: %s",
                            leased.job.job_id, leased.job.video_id, leased.job.attempt, detail)
                await asyncio.sleep(self.retry_backoff_s)
            else:
                self.completed += 1
                self._on_outcome("completed", time.perf_counter() - started)
            finally:
                self._busy.discard(slot)

    async def start(self) -> None:
        """Start the ``concurrency`` slots on the running loop."""
        self._stopping = False
        for slot in range(self.concurrency):
            self._slots[slot] = asyncio.create_task(self._slot(slot), name=f"transcoder-slot-{slot}")

    async def stop(self, grace_s: float) -> int:
        """Stop leasing; give jobs in progress ``grace_s`` seconds, then abandon them. Returns the jobs abandoned."""
        self._stopping = True
        for slot, task in self._slots.items():
            if slot not in self._busy:
                task.cancel()  # idle: cut its long poll short
        tasks = list(self._slots.values())
        self._slots.clear()
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=grace_s)
        abandoned = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if abandoned:
            log.warning("abandoned %d transcode job(s) at shutdown; the queue redelivers them when their leases expire", abandoned)
        return abandoned
