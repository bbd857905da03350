"""Photos by id and each author's READY photos in time order: the in-memory view of :mod:`.journal`.

Every change is committed to the journal (fsynced) first and applied in
memory after, under one ``asyncio.Lock``: a crash loses no acknowledged
change, and the view never runs ahead of the disk. A change runs as a task
of its own, shielded from its caller: a caller that is cancelled (a client
gone mid-fsync) neither releases the lock while the write still runs nor
leaves a committed change out of memory. :meth:`PhotoStore.close` waits for
changes in flight before it closes the journal. Photo ids are ``p`` and
20 digits of a Snowflake ID (services/photo/sizes.py), so string order is
time order; each author's READY ids are a ``sortedcontainers.SortedList``,
and :meth:`PhotoStore.recent` merges authors lazily (``heapq.merge``),
newest first, the feed's fan-out on read.

Single event loop. Status values are ``casemesh.photo.v1.PhotoStatus``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from sortedcontainers import SortedList

from casemesh.photo.v1 import photo_pb2

from ...runtime.errors import NotFound
from .journal import PhotoJournal, PhotoRow, SizeRow

UPLOADING = photo_pb2.PHOTO_STATUS_UPLOADING
PROCESSING = photo_pb2.PHOTO_STATUS_PROCESSING
READY = photo_pb2.PHOTO_STATUS_READY
REJECTED = photo_pb2.PHOTO_STATUS_REJECTED


@dataclass
class PhotoRecord:
    """A photo as the service holds it: its row and its stored sizes by ``PhotoSize`` value."""

    row: PhotoRow
    sizes: dict[int, SizeRow] = field(default_factory=dict)

    @property
    def photo_id(self) -> str:
        return self.row.photo_id

    @property
    def status(self) -> int:
        return self.row.status


class PhotoStore:
    """The photos of one photo-media process over a :class:`PhotoJournal` in ``folder``. Call :meth:`load` first."""

    def __init__(self, folder: Path) -> None:
        self.journal = PhotoJournal(folder)
        self._lock = asyncio.Lock()
        self._photos: dict[str, PhotoRecord] = {}
        self._by_author: dict[str, SortedList] = {}
        self._counts = dict.fromkeys((UPLOADING, PROCESSING, READY, REJECTED), 0)
        self._changes: set[asyncio.Task] = set()

    def count(self, status: int) -> int:
        """Photos with ``status``."""
        return self._counts[status]

    async def load(self) -> list[str]:
        """Read the journal into memory; returns the ids of photos still PROCESSING (the queue), oldest first."""
        photos, sizes = await asyncio.to_thread(self.journal.load)
        async with self._lock:
            for row in photos:
                self._apply(PhotoRecord(row))
            for size in sizes:
                record = self._photos.get(size.photo_id)
                if record is not None:
                    record.sizes[size.size] = size
        return [row.photo_id for row in photos if row.status == PROCESSING]

    def get(self, photo_id: str) -> PhotoRecord | None:
        """The photo, or None."""
        return self._photos.get(photo_id)

    def require(self, photo_id: str) -> PhotoRecord:
        """The photo; ``NotFound`` naming it otherwise."""
        record = self._photos.get(photo_id)
        if record is None:
            raise NotFound(f"no photo {photo_id!r}")
        return record

    async def create(self, row: PhotoRow) -> PhotoRecord:
        """Store a new photo (UPLOADING) durably."""

        async def change() -> PhotoRecord:
            await asyncio.to_thread(self.journal.write, row)
            return self._apply(PhotoRecord(row))

        return await self._change(change)

    async def transition(self, photo_id: str, status: int, *, width_px: int | None = None, height_px: int | None = None,
                         sizes: Sequence[SizeRow] = ()) -> PhotoRecord:
        """Set the photo's ``status`` (and the original's dimensions), and add ``sizes``, in one durable commit."""

        async def change() -> PhotoRecord:
            record = self.require(photo_id)
            row = replace(record.row, status=status,
                          width_px=record.row.width_px if width_px is None else width_px,
                          height_px=record.row.height_px if height_px is None else height_px)
            await asyncio.to_thread(self.journal.write, row, list(sizes))
            return self._apply(PhotoRecord(row, {**record.sizes, **{s.size: s for s in sizes}}))

        return await self._change(change)

    async def add_sizes(self, photo_id: str, sizes: Sequence[SizeRow]) -> PhotoRecord:
        """Record stored ``sizes`` of the photo durably (its status unchanged)."""

        async def change() -> PhotoRecord:
            record = self.require(photo_id)
            await asyncio.to_thread(self.journal.write, None, list(sizes))
            record.sizes.update({s.size: s for s in sizes})
            return record

        return await self._change(change)

    async def _change(self, change: Callable[[], Awaitable[PhotoRecord]]) -> PhotoRecord:
        async def locked() -> PhotoRecord:
            async with self._lock:
                return await change()

        task = asyncio.ensure_future(locked())
        self._changes.add(task)
        task.add_done_callback(self._changes.discard)
        return await asyncio.shield(task)

    async def close(self) -> None:
        """Wait for the changes in flight (their writes included), then close the journal."""
        while self._changes:
            await asyncio.gather(*self._changes, return_exceptions=True)
        self.journal.close()

    def _apply(self, record: PhotoRecord) -> PhotoRecord:
        old = self._photos.get(record.photo_id)
        if old is not None:
            self._counts[old.status] -= 1
            if old.status == READY:
                self._by_author[old.row.author_id].discard(old.photo_id)
        self._photos[record.photo_id] = record
        self._counts[record.status] += 1
        if record.status == READY:
            self._by_author.setdefault(record.row.author_id, SortedList()).add(record.photo_id)
        return record

    def _newest(self, author_id: str, before: str | None) -> Iterator[str]:
        ids = self._by_author.get(author_id)
        if not ids:
            return iter(())
        end = len(ids) if before is None else ids.bisect_left(before)
        return (ids[i] for i in range(end - 1, -1, -1))

    def user_photos(self, author_id: str, before: str | None, limit: int) -> list[PhotoRecord]:
        """Up to ``limit`` READY photos of ``author_id`` older than ``before`` (all when None), newest first."""
        return [self._photos[i] for i in itertools.islice(self._newest(author_id, before), limit)]

    def recent(self, author_ids: Sequence[str], before: str | None, limit: int) -> list[PhotoRecord]:
        """Up to ``limit`` READY photos of any of ``author_ids`` older than ``before``, newest first (duplicate
        authors count once). Costs O(limit x log authors) after one bisect per author."""
        streams = [self._newest(a, before) for a in dict.fromkeys(author_ids)]
        merged = heapq.merge(*streams, reverse=True)
        return [self._photos[i] for i in itertools.islice(merged, limit)]
