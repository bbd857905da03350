"""Photos' metadata on disk: SQLite in WAL mode, each change committed (fsynced) before its call answers.

Seed 003 ("Instagram Photo Storage") keeps a photo row (``status:
'processing'``, then ``'ready'``) next to the object store. Here one SQLite
file (``DATA_DIR/photo-media/photos.sqlite3``, the standard library's
``sqlite3`` with ``journal_mode=WAL`` and ``synchronous=FULL``) holds a row
per photo and a row per stored size. The photos still PROCESSING are the
queue of sizes to make on upload: a restarted service finds them here.

Blocking calls: run them in one worker thread at a time (the store does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ...runtime.sqlite_journal import open_durable

FILE_NAME = "photos.sqlite3"
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS photos (photo_id TEXT PRIMARY KEY, author_id TEXT NOT NULL, caption TEXT NOT NULL, "
    "create_time_ns INTEGER NOT NULL, status INTEGER NOT NULL, declared_bytes INTEGER NOT NULL, "
    "width_px INTEGER NOT NULL, height_px INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS photo_sizes (photo_id TEXT NOT NULL, size INTEGER NOT NULL, width_px INTEGER NOT NULL, "
    "height_px INTEGER NOT NULL, size_bytes INTEGER NOT NULL, sha256_hex TEXT NOT NULL, PRIMARY KEY (photo_id, size))",
)


@dataclass(frozen=True)
class PhotoRow:
    """One photo: id, author, caption, create time (ns since the epoch), ``PhotoStatus`` value, declared original
    size (bytes) and the original's dimensions (px; 0 before the upload is complete)."""

    photo_id: str
    author_id: str
    caption: str
    create_time_ns: int
    status: int
    declared_bytes: int
    width_px: int
    height_px: int


@dataclass(frozen=True)
class SizeRow:
    """One stored size of a photo: ``PhotoSize`` value, dimensions (px), JPEG bytes and their SHA-256 (hex)."""

    photo_id: str
    size: int
    width_px: int
    height_px: int
    size_bytes: int
    sha256_hex: str


class PhotoJournal:
    """The durable photo rows of one photo-media process (one process per data folder)."""

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / FILE_NAME
        self._db = open_durable(self.path, _SCHEMA)

    def load(self) -> tuple[list[PhotoRow], list[SizeRow]]:
        """Every photo row, oldest first, and every size row. Blocking."""
        photos = [PhotoRow(*row) for row in self._db.execute(
            "SELECT photo_id, author_id, caption, create_time_ns, status, declared_bytes, width_px, height_px "
            "FROM photos ORDER BY photo_id")]
        sizes = [SizeRow(*row) for row in self._db.execute(
            "SELECT photo_id, size, width_px, height_px, size_bytes, sha256_hex FROM photo_sizes")]
        return photos, sizes

    def write(self, photo: PhotoRow | None = None, sizes: list[SizeRow] = ()) -> None:
        """Insert or replace ``photo`` and ``sizes`` in one transaction, fsynced. Blocking."""
        with self._db:  # BEGIN ... COMMIT, or ROLLBACK on an exception
            self._db.execute("BEGIN")
            if photo is not None:
                self._db.execute("INSERT OR REPLACE INTO photos VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                 (photo.photo_id, photo.author_id, photo.caption, photo.create_time_ns, photo.status,
                                  photo.declared_bytes, photo.width_px, photo.height_px))
            self._db.executemany("INSERT OR REPLACE INTO photo_sizes VALUES (?, ?, ?, ?, ?, ?)",
                                 [(s.photo_id, s.size, s.width_px, s.height_px, s.size_bytes, s.sha256_hex)
                                  for s in sizes])

    def close(self) -> None:
        self._db.close()
