"""``casemesh.video.v1.TranscodeQueueService`` (topology name ``video-transcode``): the transcode work queue.

Seed 004 ("Transcode Pipeline Reliability"): a queue ("Kafka / SQS") between
the upload API and a pool of transcode workers, with at-least-once delivery.
The queue itself is :mod:`.queue` (leases, long poll, redelivery, dead
letters); this module adapts it to gRPC and exports its gauges.

Metrics beyond the gRPC ones: ``casemesh_video_transcode_queue_depth``
(gauge: jobs ready), ``casemesh_video_transcode_jobs_in_flight`` (gauge: jobs
leased), ``casemesh_video_transcode_redeliveries_total`` (deliveries after an
expired lease), ``casemesh_video_transcode_dead_letters_total`` (jobs given up
after ``max_attempts`` expired leases).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field

from casemesh.video.v1 import transcode_pb2 as pb
from casemesh.video.v1 import transcode_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .queue import Job, TranscodeQueue
from .validation import validate_enqueue, validate_job_ref, validate_lease_job, validate_lease_ms

log = logging.getLogger("casemesh.video.transcode")

NAME = "video-transcode"
FULL_NAME = pb.DESCRIPTOR.services_by_name["TranscodeQueueService"].full_name

QUEUE_DEPTH = Gauge("casemesh_video_transcode_queue_depth", "Transcode jobs ready for a worker.")
IN_FLIGHT = Gauge("casemesh_video_transcode_jobs_in_flight", "Transcode jobs leased to a worker.")
REDELIVERIES = Counter("casemesh_video_transcode_redeliveries", "Transcode job deliveries after an expired lease.")
DEAD_LETTERS = Counter("casemesh_video_transcode_dead_letters", "Transcode jobs given up after max_attempts expired leases.")

#: Time kept back from a LeaseJob's deadline so the empty answer arrives before the caller gives up, in seconds.
DEADLINE_MARGIN_S = 0.05


class TranscodeQueueSettings(BaseModel):
    """``settings.video-transcode`` of the topology.

    - ``max_attempts``: deliveries of a job whose leases all expired before it
      is dead-lettered (default 10, 1 to 1,000).
    - ``max_done_jobs``: acknowledged jobs remembered so a repeated EnqueueJob
      returns them (default 100,000; older ones are forgotten first).
    - ``sweep_interval_ms``: how often expired leases are returned to the
      queue in the background, in milliseconds (default 200; every call also
      checks on demand).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_attempts: int = Field(default=10, ge=1, le=1000)
    max_done_jobs: int = Field(default=100_000, ge=0)
    sweep_interval_ms: int = Field(default=200, ge=10, le=60_000)


def job_message(job: Job) -> pb.TranscodeJob:
    """The protobuf of a queue :class:`Job`."""
    return pb.TranscodeJob(job_id=job.job_id, video_id=job.video_id, generation=job.generation,
                           raw_key=job.raw_key, duration_s=job.duration_s, attempt=job.attempt)


class TranscodeQueueServicer(pb_grpc.TranscodeQueueServiceServicer):
    """Validates requests and calls the queue."""

    def __init__(self, queue: TranscodeQueue):
        self._queue = queue

    async def EnqueueJob(self, request: pb.EnqueueJobRequest, context: grpc.aio.ServicerContext) -> pb.EnqueueJobResponse:
        job = request.job
        validate_enqueue(job)
        return pb.EnqueueJobResponse(job=job_message(self._queue.enqueue(job.video_id, job.generation, job.raw_key, job.duration_s)))

    async def LeaseJob(self, request: pb.LeaseJobRequest, context: grpc.aio.ServicerContext) -> pb.LeaseJobResponse:
        validate_lease_job(request.worker_id, request.lease_ms, request.wait_ms)
        wait_s = request.wait_ms / 1000
        remaining = context.time_remaining()
        if remaining is not None:  # answer (empty) before the caller's deadline rather than time out
            wait_s = max(min(wait_s, remaining - DEADLINE_MARGIN_S), 0.0)
        lease = await self._queue.lease(request.worker_id, request.lease_ms / 1000, wait_s)
        if lease is None:
            return pb.LeaseJobResponse()
        return pb.LeaseJobResponse(job=job_message(lease.job), lease_id=lease.lease_id)

    async def ExtendLease(self, request: pb.ExtendLeaseRequest, context: grpc.aio.ServicerContext) -> pb.ExtendLeaseResponse:
        validate_job_ref(request.job_id, request.lease_id)
        validate_lease_ms(request.lease_ms)
        self._queue.extend(request.job_id, request.lease_id, request.lease_ms / 1000)
        return pb.ExtendLeaseResponse()

    async def AckJob(self, request: pb.AckJobRequest, context: grpc.aio.ServicerContext) -> pb.AckJobResponse:
        validate_job_ref(request.job_id, request.lease_id)
        return pb.AckJobResponse(first_ack=self._queue.ack(request.job_id, request.lease_id))

    async def GetQueueStats(self, request: pb.GetQueueStatsRequest, context: grpc.aio.ServicerContext) -> pb.GetQueueStatsResponse:
        stats = self._queue.stats()
        return pb.GetQueueStatsResponse(ready=stats.ready, leased=stats.leased, done=stats.done, redeliveries=stats.redeliveries)


class TranscodeQueueComponent:
    """The queue, its servicer and the background sweep of expired leases."""

    def __init__(self, settings: TranscodeQueueSettings):
        self.sweep_interval_s = settings.sweep_interval_ms / 1000

        def gauges() -> None:
            QUEUE_DEPTH.set(self.queue.ready_count)
            IN_FLIGHT.set(self.queue.leased_count)

        self.queue = TranscodeQueue(max_attempts=settings.max_attempts, max_done_jobs=settings.max_done_jobs,
                                    on_change=gauges, on_redelivery=REDELIVERIES.inc,
                                    on_dead_letter=lambda job: DEAD_LETTERS.inc())
        self.servicer = TranscodeQueueServicer(self.queue)
        self._sweeper: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_TranscodeQueueServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        QUEUE_DEPTH.set(0)
        IN_FLIGHT.set(0)
        self._sweeper = asyncio.create_task(self._sweep(), name="transcode-lease-sweep")

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            try:
                self.queue.sweep()
            except Exception:  # noqa: BLE001 - keep sweeping; calls also sweep on demand
                log.exception("lease sweep failed")

    async def stop(self) -> None:
        self.queue.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper


async def build(context: RuntimeContext) -> TranscodeQueueComponent:
    return TranscodeQueueComponent(context.settings(NAME, TranscodeQueueSettings))


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=TranscodeQueueSettings,
    access=Access(internal={
        "EnqueueJob": ("video-upload",),
        "LeaseJob": ("video-transcoder",), "ExtendLease": ("video-transcoder",), "AckJob": ("video-transcoder",),
        "GetQueueStats": ("video-upload", "video-transcoder"),
    }),
)
