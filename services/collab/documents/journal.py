"""The documents' durable log on disk: SQLite in WAL mode, one group commit per batch, fsynced before anyone is answered.

Seed 001 #06, "Collaborative Docs" (Google Docs; CRDT, 1M concurrent
editors): every edit is an operation appended to the document's history
before it is acknowledged, and a document is periodically checkpointed so
that loading it does not replay its whole history. Yjs' own persistence
layers do the same (y-leveldb, Hocuspocus' database extension: store each
update, merge them into one state now and then). Here one SQLite file,
``DATA_DIR/collab-documents/documents.sqlite3`` (opened by
:func:`~casemesh.services.runtime.sqlite_journal.open_durable`: WAL,
``synchronous=FULL``), holds three tables:

- ``documents``: one row per document (ID, title, creation time in ms);
- ``updates``: one row per accepted Yjs (v1) update: document, ``sequence``
  (from 1, no gaps per document), the update bytes as received, its
  ``origin`` tag and editor session, and when it was logged (Unix ns);
- ``snapshots``: a document's whole CRDT state at one sequence (one Yjs
  update for an empty ``Y.Doc``), plus the updates it held that still wait
  for a missing dependency (:func:`~.crdt.pack_updates`: each as a
  ``varUint`` length and its bytes; NULL when none), kept apart because a
  Yjs state encoding leaves them out.

A snapshot is written in the same transaction as the updates it covers and
deletes its document's updates up to its sequence and its older snapshots
(compaction), so a document is always its latest snapshot plus the updates
after it, whatever moment the process dies at. Commits are grouped: the store
calls :meth:`DocumentJournal.append` with everything that arrived while the
previous commit ran, one fsync for all of it. Blocking calls run in a worker
thread (one connection, one thread at a time), as chat-messages' journal does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...runtime.sqlite_journal import open_durable

FILE_NAME = "documents.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS documents (document_id TEXT PRIMARY KEY, title TEXT NOT NULL, "
    "created_at_unix_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS updates (document_id TEXT NOT NULL, sequence INTEGER NOT NULL, update_v1 BLOB NOT NULL, "
    "origin TEXT NOT NULL, session_id TEXT NOT NULL, applied_at_unix_ns INTEGER NOT NULL, "
    "PRIMARY KEY (document_id, sequence))",
    "CREATE TABLE IF NOT EXISTS snapshots (document_id TEXT NOT NULL, sequence INTEGER NOT NULL, state BLOB NOT NULL, "
    "pending BLOB, taken_at_unix_ms INTEGER NOT NULL, PRIMARY KEY (document_id, sequence))",
)


@dataclass(frozen=True, slots=True)
class DocumentRecord:
    """A document's metadata: its ID, title (1 to 200 characters) and creation time (Unix ms, server clock)."""

    document_id: str
    title: str
    created_at_unix_ms: int


@dataclass(frozen=True, slots=True)
class UpdateRecord:
    """One logged update: ``sequence`` in its document (from 1, no gaps), the Yjs (v1) ``update`` as received, the
    editor's ``origin`` tag and ``session_id`` (may be empty), and when it was logged (Unix ns, server clock)."""

    document_id: str
    sequence: int
    update: bytes
    origin: str
    session_id: str
    applied_at_unix_ns: int


@dataclass(frozen=True, slots=True)
class SnapshotRecord:
    """A document's whole state after update ``sequence``: ``state`` is one Yjs (v1) update for an empty document;
    ``pending`` the updates still waiting for a missing dependency then (:func:`~.crdt.pack_updates`; ``None``: none)."""

    document_id: str
    sequence: int
    state: bytes
    pending: bytes | None
    taken_at_unix_ms: int


@dataclass(slots=True)
class LoadedDocument:
    """What the log holds of one document: its record, its latest snapshot (if any) and the updates after it, in
    sequence order."""

    record: DocumentRecord
    snapshot: SnapshotRecord | None = None
    updates: list[UpdateRecord] = field(default_factory=list)

    @property
    def sequence(self) -> int:
        """The document's last sequence in the log (0: none yet)."""
        if self.updates:
            return self.updates[-1].sequence
        return self.snapshot.sequence if self.snapshot is not None else 0


class DocumentJournal:
    """The durable documents, update log and snapshots of one collab-documents process (one process per data folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE_NAME
        self._db = open_durable(self.path, _SCHEMA)

    def load(self) -> list[LoadedDocument]:
        """Every document (creation order) with its latest snapshot and the updates after it. Blocking.

        ``RuntimeError`` when a document's updates after its snapshot are not consecutive (a damaged log).
        """
        documents = {row[0]: LoadedDocument(DocumentRecord(*row)) for row in self._db.execute(
            "SELECT document_id, title, created_at_unix_ms FROM documents ORDER BY rowid")}
        for row in self._db.execute(
                "SELECT document_id, sequence, state, pending, taken_at_unix_ms FROM snapshots ORDER BY document_id, sequence"):
            loaded = documents.get(row[0])
            if loaded is not None:  # the latest wins (older ones are deleted with the commit that writes a new one)
                loaded.snapshot = SnapshotRecord(*row)
        for row in self._db.execute(
                "SELECT document_id, sequence, update_v1, origin, session_id, applied_at_unix_ns FROM updates "
                "ORDER BY document_id, sequence"):
            loaded = documents.get(row[0])
            if loaded is not None and (loaded.snapshot is None or row[1] > loaded.snapshot.sequence):
                loaded.updates.append(UpdateRecord(*row))
        for loaded in documents.values():
            _check_consecutive(loaded)
        return list(documents.values())

    def load_document(self, document_id: str) -> LoadedDocument | None:
        """One document as :meth:`load` returns it (``None`` when it is not in the log). Blocking."""
        row = self._db.execute("SELECT document_id, title, created_at_unix_ms FROM documents WHERE document_id = ?",
                               (document_id,)).fetchone()
        if row is None:
            return None
        loaded = LoadedDocument(DocumentRecord(*row))
        row = self._db.execute("SELECT document_id, sequence, state, pending, taken_at_unix_ms FROM snapshots "
                               "WHERE document_id = ? ORDER BY sequence DESC LIMIT 1", (document_id,)).fetchone()
        if row is not None:
            loaded.snapshot = SnapshotRecord(*row)
        after = loaded.snapshot.sequence if loaded.snapshot is not None else 0
        loaded.updates = [UpdateRecord(*r) for r in self._db.execute(
            "SELECT document_id, sequence, update_v1, origin, session_id, applied_at_unix_ns FROM updates "
            "WHERE document_id = ? AND sequence > ? ORDER BY sequence", (document_id, after))]
        _check_consecutive(loaded)
        return loaded

    def append(self, documents: list[DocumentRecord], updates: list[UpdateRecord], snapshots: list[SnapshotRecord]) -> None:
        """Commit new ``documents``, ``updates`` and ``snapshots`` (each compacting its document's log up to it) in one
        transaction, fsynced. Blocking.

        Raises (``sqlite3.Error``, ``OSError``) when the disk refuses; then nothing of the batch is written.
        """
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on an exception
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO documents VALUES (?, ?, ?)",
                                 [(d.document_id, d.title, d.created_at_unix_ms) for d in documents])
            self._db.executemany("INSERT INTO updates VALUES (?, ?, ?, ?, ?, ?)",
                                 [(u.document_id, u.sequence, u.update, u.origin, u.session_id, u.applied_at_unix_ns)
                                  for u in updates])
            for s in snapshots:
                self._db.execute("INSERT INTO snapshots VALUES (?, ?, ?, ?, ?)",
                                 (s.document_id, s.sequence, s.state, s.pending, s.taken_at_unix_ms))
                self._db.execute("DELETE FROM updates WHERE document_id = ? AND sequence <= ?", (s.document_id, s.sequence))
                self._db.execute("DELETE FROM snapshots WHERE document_id = ? AND sequence < ?", (s.document_id, s.sequence))

    def counts(self, document_id: str) -> tuple[int, int]:
        """``(logged updates, snapshots)`` of ``document_id`` (tests, diagnostics). Blocking."""
        updates = self._db.execute("SELECT count(*) FROM updates WHERE document_id = ?", (document_id,)).fetchone()[0]
        snapshots = self._db.execute("SELECT count(*) FROM snapshots WHERE document_id = ?", (document_id,)).fetchone()[0]
        return updates, snapshots

    def close(self) -> None:
        self._db.close()


def _check_consecutive(loaded: LoadedDocument) -> None:
    expected = loaded.snapshot.sequence + 1 if loaded.snapshot is not None else 1
    for update in loaded.updates:
        if update.sequence != expected:
            raise RuntimeError(f"document {loaded.record.document_id}: update {update.sequence} logged where "
                               f"{expected} was expected")
        expected += 1
