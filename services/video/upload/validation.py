"""Request validation of casemesh.video.v1.UploadService, rule for rule as upload.proto says.

Every failure raises ``InvalidArgument(field, reason)`` with the proto field
path (``title``, ``tags[2]``, ``file_size_bytes``), so the servicer answers
``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. Fields are checked in proto
order; the first broken rule is reported. The metadata rules are
CreateVideo's too (the catalogue checks them again).
"""

from __future__ import annotations

import math
import re

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.video.v1 import upload_pb2

from ..limits import MAX_DURATION_S
from ..tokens import VIDEO_ID_RE

MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_CHARS = 5000
MAX_TAGS = 15
MAX_TAG_CHARS = 30
_CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_initiate(request: upload_pb2.InitiateUploadRequest, max_file_bytes: int) -> None:
    """InitiateUploadRequest.

    ``channel_id`` 1-64 of [A-Za-z0-9_-]; ``title`` 1-100 characters, not
    blank; ``description`` at most 5,000 characters; ``tags`` at most 15,
    each 1-30 characters without whitespace; ``duration_s`` > 0, finite, at
    most 43,200; ``file_size_bytes`` > 0 and at most ``max_file_bytes``.
    """
    if not request.channel_id:
        raise InvalidArgument("channel_id", "is required")
    if not _CHANNEL_RE.fullmatch(request.channel_id):
        raise InvalidArgument("channel_id", f"must be 1 to 64 characters of [A-Za-z0-9_-] (got {_show(request.channel_id)})")
    if not request.title.strip():
        raise InvalidArgument("title", f"is required (1 to {MAX_TITLE_CHARS} characters, not blank)")
    if len(request.title) > MAX_TITLE_CHARS:
        raise InvalidArgument("title", f"must be at most {MAX_TITLE_CHARS} characters (got {len(request.title)})")
    if len(request.description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument("description", f"must be at most {MAX_DESCRIPTION_CHARS} characters (got {len(request.description)})")
    if len(request.tags) > MAX_TAGS:
        raise InvalidArgument("tags", f"must hold at most {MAX_TAGS} tags (got {len(request.tags)})")
    for i, tag in enumerate(request.tags):
        if not 1 <= len(tag) <= MAX_TAG_CHARS or any(ch.isspace() for ch in tag):
            raise InvalidArgument(f"tags[{i}]", f"must be 1 to {MAX_TAG_CHARS} characters without whitespace (got {_show(tag)})")
    duration = request.duration_s
    if not math.isfinite(duration) or not 0 < duration <= MAX_DURATION_S:
        raise InvalidArgument("duration_s", f"must be > 0 and at most {MAX_DURATION_S:.0f} seconds (got {duration})")
    size = request.file_size_bytes
    if size <= 0:
        raise InvalidArgument("file_size_bytes", f"must be > 0 (got {size})")
    if size > max_file_bytes:
        raise InvalidArgument("file_size_bytes", f"must be at most {max_file_bytes} bytes, this service's limit (got {size})")


def validate_video_id(video_id: str) -> None:
    """``video_id`` (CompleteUploadRequest): required, 1 to 32 characters of [A-Za-z0-9_-]."""
    if not video_id:
        raise InvalidArgument("video_id", "is required")
    if not VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidArgument("video_id", f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(video_id)})")
