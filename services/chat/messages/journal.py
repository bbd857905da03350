"""The message log on disk: SQLite in WAL mode, one group commit per batch, fsynced before anyone is answered.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)", "Real-time Messaging": ``# Persist to database`` before the
sender gets the "sent" receipt; seed 003 (shared/seeds/003_1dfe16d8ccfde9ed.txt),
"WhatsApp Messaging": ``INSERT INTO messages ...`` (Cassandra) before the
push. Here one SQLite file, ``DATA_DIR/chat-messages/messages.sqlite3``,
holds three tables:

- ``messages``: one row per stored message, ``position`` (the global log
  order, from 1; the message ID is its 16-hex-digit form) and the
  per-conversation ``sequence`` (unique with the conversation);
- ``groups``: one row per group (members comma-joined, the creator first;
  IDs never contain a comma);
- ``cursors``: each user's progress per conversation, upserted with
  ``max`` so that a cursor only moves forward, on disk as in memory.

``journal_mode=WAL`` and ``synchronous=FULL`` fsync the write-ahead log at
every commit, so a committed row survives a crash of the process or of the
machine. Commits are grouped: :meth:`MessageJournal.append` is called with
everything that arrived while the previous commit ran (the group commit of
databases' WALs), so at high send rates one fsync covers many messages.
Blocking calls run in a worker thread (one connection, one thread at a time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...runtime.sqlite_journal import open_durable

FILE_NAME = "messages.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS messages (position INTEGER PRIMARY KEY, conversation_id TEXT NOT NULL, "
    "sequence INTEGER NOT NULL, sender_id TEXT NOT NULL, client_message_id TEXT NOT NULL, body BLOB NOT NULL, "
    "stored_at_unix_ms INTEGER NOT NULL, UNIQUE (conversation_id, sequence))",
    "CREATE TABLE IF NOT EXISTS groups (group_id TEXT PRIMARY KEY, title TEXT NOT NULL, members TEXT NOT NULL, "
    "created_at_unix_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (user_id TEXT NOT NULL, conversation_id TEXT NOT NULL, "
    "delivered_up_to INTEGER NOT NULL, read_up_to INTEGER NOT NULL, PRIMARY KEY (user_id, conversation_id))",
)
_UPSERT_CURSOR = (
    "INSERT INTO cursors VALUES (?, ?, ?, ?) ON CONFLICT (user_id, conversation_id) DO UPDATE SET "
    "delivered_up_to = max(delivered_up_to, excluded.delivered_up_to), read_up_to = max(read_up_to, excluded.read_up_to)"
)


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One stored message: ``position`` in the whole log (from 1), ``sequence`` in its conversation (from 1, no gaps).

    ``body`` is opaque bytes (1 to 65,536); ``stored_at_unix_ms`` the commit time (server clock, ms).
    """

    position: int
    conversation_id: str
    sequence: int
    sender_id: str
    client_message_id: str
    body: bytes
    stored_at_unix_ms: int

    @property
    def message_id(self) -> str:
        """The contract's message ID: the log position as 16 hex digits (unique across all conversations)."""
        return f"{self.position:016x}"


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """A group: its ID (``group:ID`` is its conversation), title (≤ 100 characters), members (creator first, ≤ 500)."""

    group_id: str
    title: str
    members: tuple[str, ...]
    created_at_unix_ms: int


@dataclass(frozen=True, slots=True)
class CursorRecord:
    """A user's progress in a conversation: delivered and read up to these sequences (read ≤ delivered)."""

    user_id: str
    conversation_id: str
    delivered_up_to: int
    read_up_to: int


class MessageJournal:
    """The durable message log, groups and cursors of one MessageService (one process per data folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._db = open_durable(self.path, _SCHEMA)

    def load(self) -> tuple[list[GroupRecord], list[StoredMessage], list[CursorRecord]]:
        """Every group (creation order), every message (log order) and every cursor. Blocking."""
        groups = [GroupRecord(gid, title, tuple(members.split(",")), at) for gid, title, members, at in self._db.execute(
            "SELECT group_id, title, members, created_at_unix_ms FROM groups ORDER BY rowid")]
        messages = [StoredMessage(*row) for row in self._db.execute(
            "SELECT position, conversation_id, sequence, sender_id, client_message_id, body, stored_at_unix_ms "
            "FROM messages ORDER BY position")]
        cursors = [CursorRecord(*row) for row in self._db.execute(
            "SELECT user_id, conversation_id, delivered_up_to, read_up_to FROM cursors")]
        return groups, messages, cursors

    def append(self, messages: list[StoredMessage], groups: list[GroupRecord], cursors: list[CursorRecord]) -> None:
        """Commit ``messages``, ``groups`` and cursor advances in one transaction, fsynced. Blocking.

        Raises (``sqlite3.Error``, ``OSError``) when the disk refuses; then nothing of the batch is written.
        """
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on an exception
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO groups VALUES (?, ?, ?, ?)",
                                 [(g.group_id, g.title, ",".join(g.members), g.created_at_unix_ms) for g in groups])
            self._db.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, ?)",
                                 [(m.position, m.conversation_id, m.sequence, m.sender_id, m.client_message_id, m.body,
                                   m.stored_at_unix_ms) for m in messages])
            self._db.executemany(_UPSERT_CURSOR, [(c.user_id, c.conversation_id, c.delivered_up_to, c.read_up_to)
                                                  for c in cursors])

    def close(self) -> None:
        self._db.close()
