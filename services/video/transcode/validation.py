"""Request validation of casemesh.video.v1.TranscodeQueueService, rule for rule as transcode.proto says.

Every failure raises ``InvalidArgument(field, reason)`` with the proto field
path (``job.video_id``, ``lease_ms``), so the servicer answers
``INVALID_ARGUMENT`` with ``"FIELD: REASON"``.
"""

from __future__ import annotations

import math
import re

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.video.v1 import transcode_pb2

from ..limits import MAX_DURATION_S
from ..tokens import VIDEO_ID_RE, raw_key

#: Visibility timeout bounds, in milliseconds (LeaseJob, ExtendLease).
MIN_LEASE_MS, MAX_LEASE_MS = 100, 600_000
#: Longest long-poll wait, in milliseconds.
MAX_WAIT_MS = 30_000
_ID_RE = re.compile(r"[0-9a-f]{32}")
#: Longest ``job.job_id`` EnqueueJob accepts (the field is ignored there: the queue assigns ids).
MAX_IGNORED_ID_CHARS = 64


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_enqueue(job: transcode_pb2.TranscodeJob) -> None:
    """EnqueueJobRequest.job: a video id, ``generation`` >= 1, ``raw_key`` = ``raw/{video_id}``,
    ``duration_s`` finite, > 0 and at most 43,200 (12 h, UploadService's limit: a larger one would make a
    worker build an unbounded segment list and stall the queue). ``job_id`` (at most 64 characters) and
    ``attempt`` are ignored."""
    if len(job.job_id) > MAX_IGNORED_ID_CHARS:  # ignored, but not unbounded
        raise InvalidArgument("job.job_id", f"is assigned by the queue; at most {MAX_IGNORED_ID_CHARS} characters (got {len(job.job_id)})")
    if not job.video_id:
        raise InvalidArgument("job.video_id", "is required")
    if not VIDEO_ID_RE.fullmatch(job.video_id):
        raise InvalidArgument("job.video_id", f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(job.video_id)})")
    if job.generation < 1:
        raise InvalidArgument("job.generation", f"must be >= 1 (got {job.generation})")
    if job.raw_key != raw_key(job.video_id):
        raise InvalidArgument("job.raw_key", f"must be {raw_key(job.video_id)!r} (got {_show(job.raw_key)})")
    if not math.isfinite(job.duration_s) or not 0 < job.duration_s <= MAX_DURATION_S:
        raise InvalidArgument("job.duration_s", f"must be > 0 and at most {MAX_DURATION_S:.0f} seconds (got {job.duration_s})")


def validate_lease_ms(lease_ms: int) -> None:
    """``lease_ms``: 100 to 600,000."""
    if not MIN_LEASE_MS <= lease_ms <= MAX_LEASE_MS:
        raise InvalidArgument("lease_ms", f"must be {MIN_LEASE_MS} to {MAX_LEASE_MS} ms (got {lease_ms})")


def validate_lease_job(worker_id: str, lease_ms: int, wait_ms: int) -> None:
    """LeaseJobRequest: ``worker_id`` 1-64 characters; ``lease_ms`` 100-600,000; ``wait_ms`` 0-30,000."""
    if not 1 <= len(worker_id) <= 64:
        raise InvalidArgument("worker_id", f"must be 1 to 64 characters (got {len(worker_id)})")
    validate_lease_ms(lease_ms)
    if not 0 <= wait_ms <= MAX_WAIT_MS:
        raise InvalidArgument("wait_ms", f"must be 0 to {MAX_WAIT_MS} ms (got {wait_ms})")


def validate_job_ref(job_id: str, lease_id: str) -> None:
    """``job_id`` and ``lease_id`` (ExtendLease, AckJob): required, as the queue issued them (32 hex characters)."""
    for field, value in (("job_id", job_id), ("lease_id", lease_id)):
        if not value:
            raise InvalidArgument(field, "is required")
        if not _ID_RE.fullmatch(value):
            raise InvalidArgument(field, f"must be an id this queue issued, 32 hex characters (got {_show(value)})")
