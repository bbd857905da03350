"""Durable file primitives of the object store: atomic replace, positional write, fsync.

Blocking (plain ``os`` calls): run them in a worker thread
(``asyncio.to_thread``). "Durable" means fsynced: the file's data, and for
new or renamed entries the folder too, so they survive a crash or power loss.
"""

from __future__ import annotations

import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def fsync_dir(folder: Path) -> None:
    """fsync ``folder`` so entries created or renamed in it are durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync ``path``'s data and size."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` durably: readers see the old content or the new, never a mix.

    Writes ``PATH.tmp``, fsyncs it, renames it over ``path`` and fsyncs the folder.
    """
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def pwrite_all(path: Path, offset: int, data: bytes) -> None:
    """Write all of ``data`` at byte ``offset`` of ``path`` (created if missing); not fsynced."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.pwrite(fd, view, offset)
            view = view[written:]
            offset += written
    finally:
        os.close(fd)


def pread_range(path: Path, offset: int, length: int) -> bytes:
    """Up to ``length`` bytes of ``path`` from byte ``offset`` (fewer at the end of the file)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while length > 0:
            part = os.pread(fd, length, offset)
            if not part:
                break
            parts.append(part)
            offset += len(part)
            length -= len(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def remove_temporaries(root: Path) -> int:
    """Delete the ``*.tmp`` files interrupted atomic writes left under ``root``; returns how many."""
    removed = 0
    for path in Path(root).rglob(f"*{TMP_SUFFIX}"):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
