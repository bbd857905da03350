"""Request validation of casemesh.video.v1.CatalogService, rule for rule as the .proto says.

The rules live in the comments of protos/casemesh/video/v1/catalog.proto and
video.proto (validated here in Python rather than with protovalidate
annotations, see shared/NOTES.md). Every failure raises
``InvalidArgument(field, reason)`` with the proto field path (``title``,
``tags[2]``, ``renditions[0].segment_size_bytes``), so the server answers
``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. Validators check fields in
proto order and stop at the first broken rule.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.video.v1 import video_pb2

from ..ladder import BY_RENDITION
from ..limits import MAX_DURATION_S, MAX_SEGMENTS

#: Ids of users and channels: 1 to 64 characters of [A-Za-z0-9_-].
_NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
#: Video ids: URL-safe, at most 32 characters (video.proto, ``Video.video_id``).
_VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")

MAX_TITLE_CHARS = 100
MAX_DESCRIPTION_CHARS = 5000
MAX_TAGS = 15
MAX_TAG_CHARS = 30
MAX_COMMENT_CHARS = 10_000
#: Page sizes: 1 to 100; 0 means the default.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
#: Largest RecordViews batch, in entries (a playback flush carries one entry per video viewed).
MAX_VIEW_ENTRIES = 10_000
#: Largest count of one RecordViews entry (a 10 s flush of the seed's 193k view starts/s is about 2 million).
MAX_VIEWS_PER_ENTRY = 1_000_000_000


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_video_id(video_id: str, field: str = "video_id") -> None:
    """A video id: required, 1 to 32 URL-safe characters [A-Za-z0-9_-]."""
    if not video_id:
        raise InvalidArgument(field, "is required")
    if not _VIDEO_ID_RE.fullmatch(video_id):
        raise InvalidArgument(field, f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(video_id)})")


def validate_name(value: str, field: str) -> None:
    """A user or channel id (``user_id``, ``channel_id``): required, 1 to 64 characters of [A-Za-z0-9_-]."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not _NAME_RE.fullmatch(value):
        raise InvalidArgument(field, f"must be 1 to 64 characters of [A-Za-z0-9_-] (got {_show(value)})")


def page_size(value: int) -> int:
    """``page_size``: 1 to 100, 0 meaning 20; returns the effective size."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE} (got {value})")
    return value


def validate_create(channel_id: str, title: str, description: str, tags: Sequence[str], duration_s: float) -> None:
    """CreateVideoRequest, with InitiateUpload's rules.

    ``channel_id`` 1-64 of [A-Za-z0-9_-]; ``title`` 1-100 characters, not
    blank; ``description`` at most 5,000 characters; ``tags`` at most 15, each
    1-30 characters without whitespace; ``duration_s`` > 0 and at most 43,200.
    """
    validate_name(channel_id, "channel_id")
    if not title or not title.strip():
        raise InvalidArgument("title", "is required (1 to 100 characters, not blank)")
    if len(title) > MAX_TITLE_CHARS:
        raise InvalidArgument("title", f"must be at most {MAX_TITLE_CHARS} characters (got {len(title)})")
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise InvalidArgument("description", f"must be at most {MAX_DESCRIPTION_CHARS} characters (got {len(description)})")
    if len(tags) > MAX_TAGS:
        raise InvalidArgument("tags", f"must hold at most {MAX_TAGS} tags (got {len(tags)})")
    for i, tag in enumerate(tags):
        if not 1 <= len(tag) <= MAX_TAG_CHARS or any(ch.isspace() for ch in tag):
            raise InvalidArgument(f"tags[{i}]", f"must be 1 to {MAX_TAG_CHARS} characters without whitespace (got {_show(tag)})")
    if not math.isfinite(duration_s) or not 0 < duration_s <= MAX_DURATION_S:
        raise InvalidArgument("duration_s", f"must be > 0 and at most {MAX_DURATION_S:.0f} seconds (got {duration_s})")


def validate_rendition(info: video_pb2.RenditionInfo, field: str) -> None:
    """One RenditionInfo: a ladder rung, positive bit rate, frame size and segment duration, 1+ positive segment sizes."""
    if info.rendition not in BY_RENDITION:  # photo sizes are stored renditions, but not playable ones
        raise InvalidArgument(f"{field}.rendition", f"must be a rendition of the ladder (got {info.rendition})")
    if info.bandwidth_bps <= 0:
        raise InvalidArgument(f"{field}.bandwidth_bps", f"must be > 0 (got {info.bandwidth_bps})")
    if info.width_px <= 0 or info.height_px <= 0:
        which = "width_px" if info.width_px <= 0 else "height_px"
        raise InvalidArgument(f"{field}.{which}", f"must be > 0 (got {getattr(info, which)})")
    if info.segment_duration_ms <= 0:
        raise InvalidArgument(f"{field}.segment_duration_ms", f"must be > 0 (got {info.segment_duration_ms})")
    sizes = info.segment_size_bytes
    if not 1 <= len(sizes) <= MAX_SEGMENTS:
        raise InvalidArgument(f"{field}.segment_size_bytes", f"must hold 1 to {MAX_SEGMENTS} sizes (got {len(sizes)})")
    if min(sizes) <= 0:
        raise InvalidArgument(f"{field}.segment_size_bytes", "every size must be > 0")


def validate_publish(video_id: str, generation: int, renditions: Sequence[video_pb2.RenditionInfo]) -> None:
    """PublishVideoRequest: ``video_id``; ``generation`` >= 1; 1+ ``renditions``, valid, no rung twice."""
    validate_video_id(video_id)
    if generation < 1:
        raise InvalidArgument("generation", f"must be >= 1 (got {generation})")
    if not renditions:
        raise InvalidArgument("renditions", "must hold at least 1 rendition")
    seen: set[int] = set()
    for i, info in enumerate(renditions):
        validate_rendition(info, f"renditions[{i}]")
        if info.rendition in seen:
            raise InvalidArgument(f"renditions[{i}].rendition", f"{video_pb2.Rendition.Name(info.rendition)} is listed twice")
        seen.add(info.rendition)


def validate_comment(video_id: str, user_id: str, text: str) -> None:
    """AddCommentRequest: ``video_id``; ``user_id``; ``text`` 1 to 10,000 characters, not blank."""
    validate_video_id(video_id)
    validate_name(user_id, "user_id")
    if not text or not text.strip():
        raise InvalidArgument("text", "is required (1 to 10,000 characters, not blank)")
    if len(text) > MAX_COMMENT_CHARS:
        raise InvalidArgument("text", f"must be at most {MAX_COMMENT_CHARS} characters (got {len(text)})")


def validate_views(views: Sequence[tuple[str, int]]) -> None:
    """RecordViewsRequest ``views`` as ``(video_id, count)``: 1 to 10,000 entries, each with a video id (1 to 32
    characters of [A-Za-z0-9_-]) and a count of 1 to 1,000,000,000 (so no batch can overflow an int64 counter).

    The whole field is named (``views``) as the contract says, with the
    entry's index in the reason.
    """
    if not views:
        raise InvalidArgument("views", "must hold at least 1 entry")
    if len(views) > MAX_VIEW_ENTRIES:
        raise InvalidArgument("views", f"must hold at most {MAX_VIEW_ENTRIES} entries (got {len(views)})")
    for i, (video_id, count) in enumerate(views):
        if not video_id:
            raise InvalidArgument("views", f"entry {i} has an empty video_id")
        if not _VIDEO_ID_RE.fullmatch(video_id):
            raise InvalidArgument("views", f"entry {i} has video_id {_show(video_id)}; video ids are 1 to 32 "
                                           "characters of [A-Za-z0-9_-]")
        if not 1 <= count <= MAX_VIEWS_PER_ENTRY:
            raise InvalidArgument("views", f"entry {i} ({_show(video_id)}) has count {count}; counts must be "
                                           f"1 to {MAX_VIEWS_PER_ENTRY}")
