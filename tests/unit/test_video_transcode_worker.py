"""Transcode worker (services/video/transcode/worker.py) against fake stubs: determinism, heartbeat, failures, stop."""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest

from casemesh.services.video.ladder import LADDER, segment_sizes
from casemesh.services.video.transcode.worker import LeaseLost, TranscodeWorker, rendition_requests
from casemesh.video.v1 import storage_pb2, transcode_pb2

RAW = b"raw video bytes " * 100_000  # 1.6 MB: two ReadObject chunks


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


class FakeQueue:
    def __init__(self, jobs=(), extend_error: grpc.StatusCode | None = None):
        self.jobs = list(jobs)
        self.extend_error = extend_error
        self.extended: list[str] = []
        self.acked: list[tuple[str, str]] = []

    async def LeaseJob(self, request, timeout=None):
        if self.jobs:
            job = self.jobs.pop(0)
            return transcode_pb2.LeaseJobResponse(job=job, lease_id=f"lease-{job.job_id}")
        await asyncio.sleep(min(request.wait_ms / 1000, 0.05))
        return transcode_pb2.LeaseJobResponse()

    async def ExtendLease(self, request, timeout=None):
        self.extended.append(request.job_id)
        if self.extend_error is not None:
            raise rpc_error(self.extend_error, "lease no longer held")
        return transcode_pb2.ExtendLeaseResponse()

    async def AckJob(self, request, timeout=None):
        self.acked.append((request.job_id, request.lease_id))
        return transcode_pb2.AckJobResponse(first_ack=True)


class FakeStorage:
    def __init__(self, fail_put: bool = False):
        self.puts: list[storage_pb2.PutRenditionRequest] = []
        self.fail_put = fail_put

    async def _chunks(self, key):
        assert key == "raw/v1"
        for offset in range(0, len(RAW), 1 << 20):
            yield storage_pb2.ReadObjectResponse(offset_bytes=offset, data=RAW[offset:offset + (1 << 20)])

    def ReadObject(self, request, timeout=None):
        return self._chunks(request.key)

    async def PutRendition(self, request, timeout=None):
        if self.fail_put:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "storage down")
        self.puts.append(request)
        return storage_pb2.PutRenditionResponse(total_bytes=sum(request.rendition.segment_size_bytes))


class FakeCatalog:
    def __init__(self):
        self.published = []

    async def PublishVideo(self, request, timeout=None):
        self.published.append(request)


JOB = transcode_pb2.TranscodeJob(job_id="j1", video_id="v1", generation=2, raw_key="raw/v1", duration_s=5.0, attempt=1)


def worker_of(queue, storage, catalog, **overrides) -> TranscodeWorker:
    settings = dict(worker_id="w", concurrency=1, cost_ms_per_video_s=0.0, lease_ms=30_000, poll_wait_ms=50, retry_backoff_ms=10)
    settings.update(overrides)
    return TranscodeWorker(queue, storage, catalog, **settings)


def test_rendition_requests_follow_the_ladder_and_are_pure():
    sha = hashlib.sha256(RAW).hexdigest()
    requests = rendition_requests("v1", 2, 5.0, sha)
    assert [r.rendition.rendition for r in requests] == [r.rendition for r in LADDER]
    for request, rung in zip(requests, LADDER):
        assert list(request.rendition.segment_size_bytes) == segment_sizes(rung.bandwidth_bps, 5.0)
        assert len(request.content_seed) == 64 and request.generation == 2
    assert len({r.content_seed for r in requests}) == 3
    assert rendition_requests("v1", 2, 5.0, sha) == requests
    assert rendition_requests("v1", 3, 5.0, sha)[0].content_seed != requests[0].content_seed


async def test_same_job_twice_gives_identical_output():
    outputs = []
    for _ in range(2):
        queue, storage, catalog = FakeQueue(), FakeStorage(), FakeCatalog()
        await worker_of(queue, storage, catalog).process(JOB, "lease-1")
        assert queue.acked == [("j1", "lease-1")]
        outputs.append(([r.SerializeToString() for r in storage.puts], [p.SerializeToString() for p in catalog.published]))
    assert outputs[0] == outputs[1]
    puts, published = outputs[0]
    assert len(puts) == 3 and len(published) == 1
    expected = rendition_requests("v1", 2, 5.0, hashlib.sha256(RAW).hexdigest())
    assert puts == [r.SerializeToString() for r in expected]


async def test_long_job_extends_its_lease():
    queue, storage, catalog = FakeQueue(), FakeStorage(), FakeCatalog()
    worker = worker_of(queue, storage, catalog, lease_ms=150, cost_ms_per_video_s=80.0)  # 0.4 s of work
    await worker.process(JOB, "lease-1")
    assert len(queue.extended) >= 2 and queue.acked


async def test_lost_lease_abandons_the_job_without_ack():
    queue, storage, catalog = FakeQueue(extend_error=grpc.StatusCode.FAILED_PRECONDITION), FakeStorage(), FakeCatalog()
    worker = worker_of(queue, storage, catalog, lease_ms=150, cost_ms_per_video_s=1000.0)  # 5 s of work, cut short
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(worker.process(JOB, "lease-1"), 3)
    assert queue.acked == [] and catalog.published == []


async def test_slot_counts_outcomes_and_leaves_failed_jobs_unacknowledged():
    outcomes = []
    queue = FakeQueue(jobs=[JOB])
    worker = worker_of(queue, FakeStorage(fail_put=True), FakeCatalog(), on_outcome=lambda o, s: outcomes.append(o))
    await worker.start()
    for _ in range(100):
        if outcomes:
            break
        await asyncio.sleep(0.01)
    assert await worker.stop(grace_s=1) == 0
    assert outcomes == ["failed"] and queue.acked == []

    outcomes.clear()
    queue = FakeQueue(jobs=[JOB])
    worker = worker_of(queue, FakeStorage(), FakeCatalog(), on_outcome=lambda o, s: outcomes.append(o))
    await worker.start()
    for _ in range(100):
        if outcomes:
            break
        await asyncio.sleep(0.01)
    await worker.stop(grace_s=1)
    assert outcomes == ["completed"] and queue.acked == [("j1", "lease-j1")]


async def test_stop_abandons_jobs_that_outlive_the_grace():
    queue, storage, catalog = FakeQueue(jobs=[JOB]), FakeStorage(), FakeCatalog()
    worker = worker_of(queue, storage, catalog, concurrency=2, cost_ms_per_video_s=10_000.0)  # 50 s job
    await worker.start()
    for _ in range(100):
        if queue.jobs == [] and worker._busy:
            break
        await asyncio.sleep(0.01)
    assert await asyncio.wait_for(worker.stop(grace_s=0.1), 3) == 1
    assert queue.acked == [] and catalog.published == []
