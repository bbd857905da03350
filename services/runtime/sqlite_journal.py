"""A durable SQLite file for a service's log: WAL mode, fsynced at every commit.

The services that must not lose what they acknowledged (social-tweets' tweet
log, photo-media's photo rows, chat-messages' message log) each keep one
SQLite file (the standard library's ``sqlite3``) under the topology's data
folder. :func:`open_durable` opens it the one way they all need: autocommit
off to the caller (``isolation_level=None``: the caller issues ``BEGIN`` /
``COMMIT`` around a group commit), ``journal_mode=WAL`` and
``synchronous=FULL`` (SQLite fsyncs the write-ahead log at every commit, so
a committed row survives a crash of the process or the machine), usable from
the one worker thread that runs the blocking calls.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path


def open_durable(path: Path, schema: Iterable[str]) -> sqlite3.Connection:
    """Open (creating it if needed) the SQLite file at ``path`` in WAL mode with full fsync, and apply ``schema``
    (``CREATE ... IF NOT EXISTS`` statements). Raises ``sqlite3.Error`` when the file cannot be opened."""
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    for statement in schema:
        db.execute(statement)
    return db
