"""The leased transcode queue (services/video/transcode/queue.py), on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.video.transcode.queue import TranscodeQueue


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def queue_of(clock: Clock, **kwargs) -> TranscodeQueue:
    return TranscodeQueue(clock=clock, **kwargs)


def test_enqueue_is_idempotent_per_video_and_generation(clock):
    queue = queue_of(clock)
    first = queue.enqueue("v1", 1, "raw/v1", 60.0)
    assert queue.enqueue("v1", 1, "raw/v1", 60.0) == first
    second = queue.enqueue("v1", 2, "raw/v1", 60.0)
    assert second.job_id != first.job_id
    assert queue.stats().ready == 2


def test_lease_hands_out_oldest_first_and_ack_finishes(clock):
    queue = queue_of(clock)
    a = queue.enqueue("a", 1, "raw/a", 1.0)
    b = queue.enqueue("b", 1, "raw/b", 1.0)
    lease = queue.try_lease("w", 30)
    assert lease.job.job_id == a.job_id and lease.job.attempt == 1
    assert (queue.stats().ready, queue.stats().leased) == (1, 1)
    assert queue.ack(a.job_id, lease.lease_id) is True
    assert queue.ack(a.job_id, lease.lease_id) is False  # duplicate ack accepted
    stats = queue.stats()
    assert (stats.ready, stats.leased, stats.done) == (1, 0, 1)
    assert queue.try_lease("w", 30).job.job_id == b.job_id
    assert queue.try_lease("w", 30) is None
    assert queue.enqueue("a", 1, "raw/a", 1.0).job_id == a.job_id  # done jobs are remembered
    assert queue.stats().ready == 0


def test_expired_lease_is_redelivered_with_the_next_attempt(clock):
    redelivered = []
    queue = queue_of(clock, on_redelivery=lambda: redelivered.append(1))
    job = queue.enqueue("v", 1, "raw/v", 1.0)
    first = queue.try_lease("w1", 10)
    clock.now += 9.9
    assert queue.try_lease("w2", 10) is None
    clock.now += 0.2
    second = queue.try_lease("w2", 10)
    assert second.job.job_id == job.job_id and second.job.attempt == 2 and second.lease_id != first.lease_id
    assert queue.stats().redeliveries == 1 and redelivered == [1]
    with pytest.raises(FailedPrecondition):
        queue.extend(job.job_id, first.lease_id, 10)  # the first delivery's lease is gone
    # The first worker finishing late still acknowledges the (identical) work; the second's ack is a duplicate.
    assert queue.ack(job.job_id, first.lease_id) is True
    assert queue.ack(job.job_id, second.lease_id) is False
    assert queue.stats().leased == 0


def test_extend_keeps_the_lease(clock):
    queue = queue_of(clock)
    job = queue.enqueue("v", 1, "raw/v", 1.0)
    lease = queue.try_lease("w", 10)
    for _ in range(5):
        clock.now += 8
        queue.extend(job.job_id, lease.lease_id, 10)
    assert queue.sweep() == 0 and queue.stats().leased == 1
    clock.now += 10
    assert queue.sweep() == 1 and queue.stats().ready == 1


def test_unknown_job_and_foreign_lease(clock):
    queue = queue_of(clock)
    job = queue.enqueue("v", 1, "raw/v", 1.0)
    queue.try_lease("w", 10)
    with pytest.raises(NotFound):
        queue.ack("0" * 32, "1" * 32)
    with pytest.raises(InvalidArgument) as caught:
        queue.ack(job.job_id, "1" * 32)
    assert caught.value.field == "lease_id"


def test_dead_letter_after_max_attempts_and_revival(clock):
    dead = []
    queue = queue_of(clock, max_attempts=2, on_dead_letter=dead.append)
    job = queue.enqueue("v", 1, "raw/v", 1.0)
    for _ in range(2):
        assert queue.try_lease("w", 1) is not None
        clock.now += 2
    assert queue.try_lease("w", 1) is None
    assert [j.job_id for j in dead] == [job.job_id]
    stats = queue.stats()
    assert (stats.ready, stats.leased, stats.dead, stats.redeliveries) == (0, 0, 1, 1)
    queue.enqueue("v", 1, "raw/v", 1.0)  # an explicit retry revives it
    assert queue.try_lease("w", 1).job.attempt == 1


def test_done_jobs_beyond_the_bound_are_forgotten(clock):
    queue = queue_of(clock, max_done_jobs=1)
    for name in ("a", "b"):
        job = queue.enqueue(name, 1, f"raw/{name}", 1.0)
        queue.ack(job.job_id, queue.try_lease("w", 10).lease_id)
    assert queue.enqueue("a", 1, "raw/a", 1.0).job_id != job.job_id
    assert queue.stats().ready == 1  # "a" forgotten: queued again (workers are idempotent)


async def test_long_poll_wakes_on_enqueue():
    queue = TranscodeQueue()
    waiter = asyncio.create_task(queue.lease("w", 10, wait_s=5))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    job = queue.enqueue("v", 1, "raw/v", 1.0)
    lease = await asyncio.wait_for(waiter, 2)
    assert lease.job.job_id == job.job_id


async def test_long_poll_wakes_on_lease_expiry_and_times_out_empty():
    queue = TranscodeQueue()
    queue.enqueue("v", 1, "raw/v", 1.0)
    first = await queue.lease("w1", 0.05, wait_s=0)
    second = await asyncio.wait_for(queue.lease("w2", 10, wait_s=5), 3)  # woken by the expiry, not the 5 s wait
    assert second.job.job_id == first.job.job_id and second.job.attempt == 2
    assert await queue.lease("w3", 10, wait_s=0.01) is None


async def test_close_releases_long_polls():
    queue = TranscodeQueue()
    waiter = asyncio.create_task(queue.lease("w", 10, wait_s=30))
    await asyncio.sleep(0.01)
    queue.close()
    assert await asyncio.wait_for(waiter, 2) is None
