"""Request validation of casemesh.video.v1.SearchService, rule for rule as search.proto says.

Failures raise ``InvalidArgument(field, reason)`` → ``INVALID_ARGUMENT`` with
``"FIELD: REASON"``: ``query``, ``page_size``, ``page_token``, ``documents``
or ``documents[i].FIELD``. A bulk request is rejected whole: validate before
indexing anything.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from casemesh.services.runtime.errors import InvalidArgument
from casemesh.video.v1 import search_pb2

MAX_QUERY_CHARS = 200
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
#: Largest IndexVideos request, in documents (the catalogue sends at most 1,000 per call).
MAX_DOCUMENTS = 1000
MAX_TITLE_CHARS = 100
MAX_TAGS = 15
MAX_TAG_CHARS = 30

_VIDEO_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")


def _show(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[:limit] + "...")


def validate_query(query: str) -> None:
    """``query``: 1 to 200 characters, not blank."""
    if not query or not query.strip():
        raise InvalidArgument("query", "is required (1 to 200 characters, not blank)")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument("query", f"must be at most {MAX_QUERY_CHARS} characters (got {len(query)})")


def page_size(value: int) -> int:
    """``page_size``: 1 to 100, 0 meaning 20; returns the effective size."""
    if value == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument("page_size", f"must be 1 to {MAX_PAGE_SIZE}, or 0 for {DEFAULT_PAGE_SIZE} (got {value})")
    return value


def validate_document(document: search_pb2.VideoDocument, field: str) -> None:
    """One VideoDocument: ``video_id`` 1-32 of [A-Za-z0-9_-]; ``title`` 1-100 characters, not blank;
    at most 15 ``tags`` of 1-30 characters; ``publish_time_unix_s`` finite and >= 0 (0: unknown)."""
    if not _VIDEO_ID_RE.fullmatch(document.video_id):
        reason = "is required" if not document.video_id else (
            f"must be 1 to 32 characters of [A-Za-z0-9_-] (got {_show(document.video_id)})")
        raise InvalidArgument(f"{field}.video_id", reason)
    if not document.title.strip():
        raise InvalidArgument(f"{field}.title", "is required (1 to 100 characters, not blank)")
    if len(document.title) > MAX_TITLE_CHARS:
        raise InvalidArgument(f"{field}.title", f"must be at most {MAX_TITLE_CHARS} characters (got {len(document.title)})")
    if len(document.tags) > MAX_TAGS:
        raise InvalidArgument(f"{field}.tags", f"must hold at most {MAX_TAGS} tags (got {len(document.tags)})")
    for i, tag in enumerate(document.tags):
        if not 1 <= len(tag) <= MAX_TAG_CHARS:
            raise InvalidArgument(f"{field}.tags[{i}]", f"must be 1 to {MAX_TAG_CHARS} characters (got {_show(tag)})")
    if not math.isfinite(document.publish_time_unix_s) or document.publish_time_unix_s < 0:
        raise InvalidArgument(f"{field}.publish_time_unix_s", f"must be >= 0 (got {document.publish_time_unix_s})")


def validate_documents(documents: Sequence[search_pb2.VideoDocument]) -> None:
    """IndexVideosRequest ``documents``: 1 to 1,000 valid documents."""
    if not documents:
        raise InvalidArgument("documents", "must hold at least 1 document")
    if len(documents) > MAX_DOCUMENTS:
        raise InvalidArgument("documents", f"must hold at most {MAX_DOCUMENTS} documents (got {len(documents)})")
    for i, document in enumerate(documents):
        validate_document(document, f"documents[{i}]")
