"""Comments of videos, newest first, paged by cursor (seed 004: "Users can like, comment, and subscribe").

Each comment gets a sequence number from one store-wide counter; a video's
comments are kept in that order, so a page is a slice found by bisection and
the cursor is the last sequence number shown (keyset paging: comments added
while a client pages never shift or repeat what it sees). Behind its own
``aiorwlock.RWLock``: listing shares the reader lock, adding takes the writer
lock. The caller checks that the video exists and is PUBLISHED.

Comment ids are 16 URL-safe random characters. Times are Unix seconds from an
injectable clock. Memory grows with comments (in-memory, no eviction).
"""

from __future__ import annotations

import secrets
import time
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass

import aiorwlock

from casemesh.video.v1 import catalog_pb2 as pb


@dataclass(frozen=True, slots=True)
class CommentRecord:
    """One comment: its store-wide sequence number, id, video, author, text and time (Unix seconds)."""

    seq: int
    comment_id: str
    video_id: str
    user_id: str
    text: str
    create_time_s: float

    def to_proto(self) -> pb.Comment:
        comment = pb.Comment(comment_id=self.comment_id, video_id=self.video_id, user_id=self.user_id, text=self.text)
        comment.create_time.FromNanoseconds(int(self.create_time_s * 1e9))
        return comment


class CommentStore:
    """Comments per video id. Single event loop."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._lock = aiorwlock.RWLock()
        self._clock = clock
        self._by_video: dict[str, list[CommentRecord]] = {}
        self._seq = 0

    async def add(self, video_id: str, user_id: str, text: str) -> pb.Comment:
        """Store a comment (validated by the caller) and return it."""
        async with self._lock.writer:
            self._seq += 1
            record = CommentRecord(self._seq, secrets.token_urlsafe(12), video_id, user_id, text, self._clock())
            self._by_video.setdefault(video_id, []).append(record)
            return record.to_proto()

    async def page(self, video_id: str, before_seq: int | None, size: int) -> tuple[list[pb.Comment], int | None]:
        """Up to ``size`` comments of ``video_id`` older than ``before_seq`` (all when None), newest first.

        Returns ``(comments, next before_seq or None on the last page)``.
        """
        async with self._lock.reader:
            comments = self._by_video.get(video_id, [])
            end = len(comments) if before_seq is None else bisect_left(comments, before_seq, key=lambda c: c.seq)
            start = max(end - size, 0)
            page = comments[start:end][::-1]
            return [c.to_proto() for c in page], (page[-1].seq if start > 0 else None)

    async def count(self, video_id: str) -> int:
        """Comments of ``video_id``."""
        async with self._lock.reader:
            return len(self._by_video.get(video_id, ()))
