"""Stream → chat room: durable in a small SQLite table, members in memory.

A stream's chat room is a chat group of the chat case study
(``casemesh.chat.v1.MessageService.CreateGroup``); this store keeps which
group belongs to which stream, and the group's members (so a non-member's
message is refused with PERMISSION_DENIED before it is moderated or sent).

Durable (CASE-STUDY.md point 2): :meth:`RoomStore.add` returns only once the
row is committed in ``rooms.sqlite`` under the service's data folder, in WAL
mode with ``synchronous=FULL`` (``services/runtime/sqlite_journal.open_durable``:
fsync at every commit), so a room OpenRoom acknowledged survives a restart
of live-chat; every row is loaded into memory when the store opens. Writes
run one at a time in a worker thread (the event loop never waits on the
disk). ``path=None`` keeps everything in memory (unit tests).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ...runtime.sqlite_journal import open_durable

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rooms (stream_id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL, "
    "broadcaster_id TEXT NOT NULL, members TEXT NOT NULL, opened_at_unix_ms INTEGER NOT NULL)",
)


@dataclass(frozen=True)
class Room:
    """A stream's room: its chat conversation (``group:ID``) and members (the broadcaster first)."""

    stream_id: str
    conversation_id: str
    broadcaster_id: str
    members: frozenset[str]


class RoomExists(Exception):
    """The stream has a room already (or one being opened)."""


class RoomStore:
    """stream id → :class:`Room`, in memory and (``path`` set) in SQLite."""

    def __init__(self, path: Path | None) -> None:
        self._db: sqlite3.Connection | None = open_durable(path, SCHEMA) if path is not None else None
        self._rooms: dict[str, Room] = {}
        self._opening: set[str] = set()
        self._lock = asyncio.Lock()
        if self._db is not None:
            for stream_id, conversation_id, broadcaster_id, members in self._db.execute(
                    "SELECT stream_id, conversation_id, broadcaster_id, members FROM rooms"):
                self._rooms[stream_id] = Room(stream_id, conversation_id, broadcaster_id, frozenset(json.loads(members)))

    def __len__(self) -> int:
        return len(self._rooms)

    def get(self, stream_id: str) -> Room | None:
        return self._rooms.get(stream_id)

    def reserve(self, stream_id: str) -> None:
        """Claim ``stream_id`` for a room being opened; :class:`RoomExists` when it has one or one is being opened."""
        if stream_id in self._rooms or stream_id in self._opening:
            raise RoomExists(stream_id)
        self._opening.add(stream_id)

    def release(self, stream_id: str) -> None:
        """Give up a claim (the room could not be opened)."""
        self._opening.discard(stream_id)

    async def add(self, room: Room, opened_at_unix_ms: int) -> None:
        """Store ``room`` (claimed with :meth:`reserve`) durably, then make it visible. ``sqlite3.Error``/``OSError``
        when it cannot be written (nothing is stored; the claim is released)."""
        try:
            if self._db is not None:
                members = json.dumps(sorted(room.members))
                async with self._lock:
                    await asyncio.to_thread(self._insert, room, members, opened_at_unix_ms)
            self._rooms[room.stream_id] = room
        finally:
            self._opening.discard(room.stream_id)

    def _insert(self, room: Room, members: str, opened_at_unix_ms: int) -> None:
        assert self._db is not None  # noqa: S101 - only called with a database
        self._db.execute("BEGIN")
        try:
            self._db.execute("INSERT INTO rooms VALUES (?, ?, ?, ?, ?)",
                             (room.stream_id, room.conversation_id, room.broadcaster_id, members, opened_at_unix_ms))
            self._db.execute("COMMIT")  # synchronous=FULL: fsynced here
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
