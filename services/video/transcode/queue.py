"""The transcode work queue: leases with a visibility timeout, at-least-once delivery.

Seed 004 ("Transcode Pipeline Reliability"): jobs go on a queue ("Kafka /
SQS"), "a pool of stateless transcode workers consumes jobs", and
"at-least-once delivery ... means a worker can crash mid-job and the message
is redelivered". This is the SQS model:

- :meth:`TranscodeQueue.enqueue` adds a job, idempotently per (video id,
  generation): a retried CompleteUpload gets the existing job back.
- :meth:`TranscodeQueue.lease` hands the oldest ready job to a worker for a
  visibility timeout (``lease_s``), waiting up to ``wait_s`` for one (long
  poll; waiters are woken by every enqueue and expiry).
- A lease not extended (:meth:`extend`) or acknowledged (:meth:`ack`) in
  time expires: the job is ready again, first in line (oldest first), and its
  next delivery has ``attempt + 1``. Expiry is checked on demand by every
  call and by a periodic :meth:`sweep`, so no job waits for a sweep.
- After ``max_attempts`` deliveries whose leases all expired, a job is
  dead-lettered (the SQS redrive policy): kept, no longer delivered, logged.
  Enqueuing it again revives it with a fresh attempt count.
- An acknowledgement from any delivery of a job counts (an earlier worker
  that finishes after its lease expired did the same, deterministic work);
  later acknowledgements answer ``first_ack=False``.

Acknowledged jobs are remembered (for idempotent enqueues) up to
``max_done_jobs``, oldest evicted first; a job enqueued again after its
record was evicted runs again, harmlessly (workers are idempotent).

In memory, single event loop, no locks needed: every method runs to
completion without awaiting, except :meth:`lease`'s wait. All times are
``clock()`` seconds (monotonic by default; tests pass their own clock).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound

log = logging.getLogger(__name__)

READY, LEASED, DONE, DEAD = "ready", "leased", "done", "dead"


@dataclass(frozen=True, slots=True)
class Job:
    """A transcode job as delivered: ``attempt`` is 1 on first delivery, +1 on each redelivery."""

    job_id: str
    video_id: str
    generation: int
    raw_key: str
    duration_s: float
    attempt: int = 0


@dataclass(frozen=True, slots=True)
class Lease:
    """One delivery: the job (with its attempt) and the ``lease_id`` that ExtendLease and AckJob need."""

    job: Job
    lease_id: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Jobs by state, and deliveries after an expired lease (counters since start)."""

    ready: int
    leased: int
    done: int
    dead: int
    redeliveries: int


class _Entry:
    __slots__ = ("job", "seq", "state", "deliveries", "lease_id", "expires_at", "lease_ids")

    def __init__(self, job: Job, seq: int):
        self.job = job
        self.seq = seq
        self.state = READY
        self.deliveries = 0
        self.lease_id = ""
        self.expires_at = 0.0
        self.lease_ids: set[str] = set()


class TranscodeQueue:
    """In-memory leased queue (see the module doc).

    ``on_change()`` is called after every change of the ready or leased
    counts; ``on_redelivery()`` when an expired lease makes a job ready again;
    ``on_dead_letter(job)`` when a job is dead-lettered.
    """

    def __init__(self, *, max_attempts: int = 10, max_done_jobs: int = 100_000,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[], None] = lambda: None,
                 on_redelivery: Callable[[], None] = lambda: None,
                 on_dead_letter: Callable[[Job], None] = lambda job: None):
        if max_attempts < 1 or max_done_jobs < 0:
            raise ValueError("max_attempts must be >= 1 and max_done_jobs >= 0")
        self.max_attempts = max_attempts
        self.max_done_jobs = max_done_jobs
        self._clock = clock
        self._on_change = on_change
        self._on_redelivery = on_redelivery
        self._on_dead_letter = on_dead_letter
        self._entries: dict[str, _Entry] = {}
        self._by_key: dict[tuple[str, int], str] = {}
        self._ready: list[tuple[int, str]] = []  # heap of (seq, job_id); stale entries skipped on pop
        self._expiries: list[tuple[float, str, str]] = []  # heap of (expires_at, job_id, lease_id); stale skipped
        self._done_order: OrderedDict[str, None] = OrderedDict()
        self._seq = itertools.count()
        self._wakeup = asyncio.Event()
        self._closed = False
        self.ready_count = 0
        self.leased_count = 0
        self.done_total = 0
        self.dead_count = 0
        self.redeliveries = 0

    # -- state changes -------------------------------------------------------------------------

    def _changed(self) -> None:
        """Wake every long poll (they re-check) and report the new counts."""
        self._wakeup.set()
        self._wakeup = asyncio.Event()
        self._on_change()

    def _make_ready(self, entry: _Entry) -> None:
        entry.state = READY
        entry.lease_id = ""
        heapq.heappush(self._ready, (entry.seq, entry.job.job_id))
        self.ready_count += 1

    def sweep(self) -> int:
        """Make every job whose lease expired by now ready again (or dead-letter it); returns how many expired."""
        now = self._clock()
        expired = 0
        while self._expiries and self._expiries[0][0] <= now:
            _, job_id, lease_id = heapq.heappop(self._expiries)
            entry = self._entries.get(job_id)
            if entry is None or entry.state != LEASED or entry.lease_id != lease_id or entry.expires_at > now:
                continue  # acknowledged, extended (a newer heap item exists) or already handled
            expired += 1
            self.leased_count -= 1
            if entry.deliveries >= self.max_attempts:
                entry.state = DEAD
                entry.lease_id = ""
                self.dead_count += 1
                log.warning("transcode job %s (video %s generation %d) dead-lettered after %d deliveries",
                            job_id, entry.job.video_id, entry.job.generation, entry.deliveries)
                self._on_dead_letter(entry.job)
            else:
                self._make_ready(entry)
                self.redeliveries += 1
                self._on_redelivery()
        if expired:
            self._changed()
        return expired

    def next_expiry_in(self) -> float | None:
        """Seconds until the earliest lease may expire (``None`` when nothing is leased)."""
        if not self._expiries:
            return None
        return max(self._expiries[0][0] - self._clock(), 0.0)

    # -- operations ----------------------------------------------------------------------------

    def enqueue(self, video_id: str, generation: int, raw_key: str, duration_s: float) -> Job:
        """Queue a job; the existing job when (``video_id``, ``generation``) is queued already (a dead one is revived)."""
        self.sweep()
        existing = self._by_key.get((video_id, generation))
        if existing is not None:
            entry = self._entries[existing]
            if entry.state == DEAD:
                self.dead_count -= 1
                entry.deliveries = 0
                self._make_ready(entry)
                self._changed()
            return entry.job
        job = Job(uuid.uuid4().hex, video_id, generation, raw_key, duration_s)
        entry = _Entry(job, next(self._seq))
        self._entries[job.job_id] = entry
        self._by_key[(video_id, generation)] = job.job_id
        self._make_ready(entry)
        self._changed()
        return job

    def try_lease(self, worker_id: str, lease_s: float) -> Lease | None:
        """Lease the oldest ready job to ``worker_id`` for ``lease_s`` seconds, or ``None`` when none is ready."""
        self.sweep()
        while self._ready:
            _, job_id = heapq.heappop(self._ready)
            entry = self._entries.get(job_id)
            if entry is None or entry.state != READY:
                continue
            self.ready_count -= 1
            self.leased_count += 1
            entry.state = LEASED
            entry.deliveries += 1
            entry.lease_id = uuid.uuid4().hex
            entry.lease_ids.add(entry.lease_id)
            entry.expires_at = self._clock() + lease_s
            heapq.heappush(self._expiries, (entry.expires_at, job_id, entry.lease_id))
            log.debug("job %s leased to %s (attempt %d)", job_id, worker_id, entry.deliveries)
            self._changed()
            return Lease(replace(entry.job, attempt=entry.deliveries), entry.lease_id, entry.expires_at)
        return None

    async def lease(self, worker_id: str, lease_s: float, wait_s: float) -> Lease | None:
        """Like :meth:`try_lease`, but wait up to ``wait_s`` seconds for a job (long poll); ``None`` if none came."""
        deadline = time.monotonic() + wait_s
        while True:
            leased = self.try_lease(worker_id, lease_s)
            if leased is not None or self._closed:
                return leased
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            expiry = self.next_expiry_in()
            wakeup = self._wakeup
            try:
                await asyncio.wait_for(wakeup.wait(), remaining if expiry is None else min(remaining, expiry + 0.001))
            except TimeoutError:
                pass

    def _leased_entry(self, job_id: str, lease_id: str) -> _Entry:
        entry = self._entries.get(job_id)
        if entry is None:
            raise NotFound(f"no transcode job {job_id!r}")
        if lease_id not in entry.lease_ids:
            raise InvalidArgument("lease_id", f"is not a delivery of job {job_id}")
        return entry

    def extend(self, job_id: str, lease_id: str, lease_s: float) -> float:
        """Extend the lease ``lease_id`` to ``lease_s`` seconds from now; returns the new expiry (``clock()`` s).

        ``NotFound`` for an unknown job, ``InvalidArgument`` naming
        ``lease_id`` when it was never a delivery of this job,
        ``FailedPrecondition`` when that lease has expired or was superseded
        (the job may be with another worker, or done).
        """
        self.sweep()
        entry = self._leased_entry(job_id, lease_id)
        if entry.state != LEASED or entry.lease_id != lease_id:
            raise FailedPrecondition(f"lease {lease_id} of job {job_id} is no longer held (job is {entry.state})")
        entry.expires_at = self._clock() + lease_s
        heapq.heappush(self._expiries, (entry.expires_at, job_id, lease_id))
        return entry.expires_at

    def ack(self, job_id: str, lease_id: str) -> bool:
        """Mark the job done; ``True`` on its first acknowledgement, ``False`` when it was done already.

        Any delivery's ``lease_id`` is accepted (see the module doc).
        ``NotFound`` for an unknown job, ``InvalidArgument`` naming
        ``lease_id`` when it was never a delivery of this job.
        """
        self.sweep()
        entry = self._leased_entry(job_id, lease_id)
        if entry.state == DONE:
            return False
        if entry.state == READY:
            self.ready_count -= 1
        elif entry.state == LEASED:
            self.leased_count -= 1
        elif entry.state == DEAD:
            self.dead_count -= 1
        entry.state = DONE
        entry.lease_id = ""
        self.done_total += 1
        self._done_order[job_id] = None
        while len(self._done_order) > self.max_done_jobs:
            old, _ = self._done_order.popitem(last=False)
            gone = self._entries.pop(old)
            self._by_key.pop((gone.job.video_id, gone.job.generation), None)
        self._changed()
        return True

    def stats(self) -> QueueStats:
        """Counts by state after expiring due leases."""
        self.sweep()
        return QueueStats(self.ready_count, self.leased_count, self.done_total, self.dead_count, self.redeliveries)

    def close(self) -> None:
        """Shutting down: every waiting and future long poll returns at once (no job)."""
        self._closed = True
        self._changed()
