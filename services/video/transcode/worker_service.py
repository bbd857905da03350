"""``video-transcoder``: the transcode worker process (no gRPC API of its own).

The runtime still gives it a server with the health service and reflection,
so the harness can wait for it like any service; the work is
:class:`.worker.TranscodeWorker` (seed 004, "Transcode Pipeline
Reliability"). On shutdown it stops leasing and gives jobs in progress the
topology's ``server.grace_s`` to finish; the rest are abandoned to
redelivery.

Metrics: ``casemesh_video_transcode_jobs_total{outcome="completed"|"failed"}``
and ``casemesh_video_transcode_seconds`` (histogram: from lease to
acknowledgement or failure, in seconds).
"""

from __future__ import annotations

import os
import socket

import grpc
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field

from casemesh.video.v1 import catalog_pb2_grpc, storage_pb2_grpc, transcode_pb2_grpc

from ...runtime.component import RuntimeContext, ServiceDefinition
from .validation import MAX_LEASE_MS, MAX_WAIT_MS, MIN_LEASE_MS
from .worker import TranscodeWorker

NAME = "video-transcoder"

JOBS = Counter("casemesh_video_transcode_jobs", "Transcode jobs handled by this worker, by outcome.", ["outcome"])
SECONDS = Histogram("casemesh_video_transcode_seconds", "Time from leasing a transcode job to its acknowledgement or failure.",
                    buckets=(0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0))


class TranscoderSettings(BaseModel):
    """``settings.video-transcoder`` of the topology.

    - ``concurrency``: jobs transcoded at once by this process (default 2, 1 to 64).
    - ``cost_ms_per_video_s``: modelled transcode time per second of video,
      in milliseconds (default 20: a 5-minute video takes 6 s; >= 0).
    - ``lease_ms``: visibility timeout asked of the queue, in milliseconds
      (default 30,000; 100 to 600,000); extended every ``lease_ms / 3``
      while a job runs, so it bounds how long a crashed worker's job waits.
    - ``poll_wait_ms``: LeaseJob long-poll wait, in milliseconds (default 1,000; 0 to 30,000).
    - ``retry_backoff_ms``: pause after a failed job or an unreachable queue,
      in milliseconds (default 500; 0 to 60,000).
    - ``worker_id``: name given to the queue (1 to 64 characters; default
      ``transcoder-HOST-PID``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    concurrency: int = Field(default=2, ge=1, le=64)
    cost_ms_per_video_s: float = Field(default=20.0, ge=0, le=60_000)
    lease_ms: int = Field(default=30_000, ge=MIN_LEASE_MS, le=MAX_LEASE_MS)
    poll_wait_ms: int = Field(default=1000, ge=0, le=MAX_WAIT_MS)
    retry_backoff_ms: int = Field(default=500, ge=0, le=60_000)
    worker_id: str = Field(default="", max_length=64)

    def effective_worker_id(self) -> str:
        """``worker_id``, or ``transcoder-HOST-PID`` (cut to 64 characters) when empty."""
        return self.worker_id or f"transcoder-{socket.gethostname()}-{os.getpid()}"[:64]


class TranscoderComponent:
    """The worker's slots between ``start`` and ``stop``; registers no servicer."""

    def __init__(self, context: RuntimeContext):
        settings = context.settings(NAME, TranscoderSettings)
        self.grace_s = context.topology.server.grace_s

        def observe(outcome: str, seconds: float) -> None:
            JOBS.labels(outcome).inc()
            SECONDS.observe(seconds)

        self.worker = TranscodeWorker(
            transcode_pb2_grpc.TranscodeQueueServiceStub(context.channel("video-transcode")),
            storage_pb2_grpc.ObjectStoreServiceStub(context.channel("video-storage")),
            catalog_pb2_grpc.CatalogServiceStub(context.channel("video-catalog")),
            worker_id=settings.effective_worker_id(), concurrency=settings.concurrency,
            cost_ms_per_video_s=settings.cost_ms_per_video_s, lease_ms=settings.lease_ms,
            poll_wait_ms=settings.poll_wait_ms, retry_backoff_ms=settings.retry_backoff_ms, on_outcome=observe,
        )
        for outcome in ("completed", "failed"):
            JOBS.labels(outcome)

    def register(self, server: grpc.aio.Server) -> None:
        pass

    async def start(self) -> None:
        await self.worker.start()

    async def stop(self) -> None:
        await self.worker.stop(self.grace_s)


async def build(context: RuntimeContext) -> TranscoderComponent:
    return TranscoderComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(), dependencies=("video-transcode", "video-storage", "video-catalog"),
    build=build, settings_model=TranscoderSettings,
)
