"""The matching engine's sequenced, durable event log: ``DATA_DIR/trading-engine/events.log``.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). Every change of the books is an event
(``casemesh.trading.v1.EngineEvent``) with the next sequence number; record ``n`` of the file is the event with
sequence ``n``. The engine acknowledges an order only once its events are on disk, and rebuilds its books from this
file when it starts (the journal-and-replay design of the LMAX exchange, Fowler, "The LMAX Architecture", 2011).

Record format: a 4-byte big-endian payload length, the 4-byte big-endian CRC-32 (``zlib.crc32``) of the payload, the
payload (one serialized ``EngineEvent``). :meth:`Journal.recover` reads the file from the start and checks every
record; at the first torn one (a crash in the middle of a write) or corrupt one (bad CRC, impossible length) it
truncates the file there (a warning names the byte offset) and yields the good ones before it, for replay.

Commit modes (``settings.commit``, :mod:`.settings`):

- ``group``: :meth:`Journal.append` frames an order's events and adds them to an in-memory buffer; one writer thread
  repeatedly takes everything buffered, writes it with one ``os.write`` and one ``os.fdatasync``, then hands the
  batch back to the event loop (``call_soon_threadsafe``), which acknowledges it (group commit);
- ``per_order``: :meth:`Journal.append` writes and ``fdatasync``-s the order's events at once, on the calling (the
  matching) thread, and acknowledges them before it returns.

Either way ``on_commit(tokens, events, seconds)`` runs on the event loop once a batch is durable, batches in the
order they were appended, and ``on_failure(tokens, error)`` when it could not be written: the journal is then failed
for good (nothing after the failed batch is ever written, so the file never has a gap), and the engine must be
restarted, which replays what reached the disk.

Catch-up reads (:meth:`Journal.read`, for StreamEvents): the newest ``recent_events`` durable payloads are kept in a
ring in memory; older ones are read back from the file, starting from a sparse index (the byte offset of every
``index_every``-th record).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...runtime.errors import Unavailable

log = logging.getLogger("casemesh.trading.engine.journal")

FILE_NAME = "events.log"
#: Length and CRC-32 of the payload, both 4-byte big-endian.
HEADER = struct.Struct(">II")
HEADER_BYTES = HEADER.size
#: A record longer than this is corruption: an EngineEvent is at most a few hundred bytes.
MAX_PAYLOAD_BYTES = 64 * 1024
#: Bytes read at a time when the file is scanned at start, and at most when it is read back.
READ_CHUNK_BYTES = 4 * 1024 * 1024
#: A read-back reads about this many bytes per record it still needs (an event is 80 to 250 bytes), at least
#: MIN_READ_BYTES (so every read holds a whole record); a record cut at the end of a read is read again with the next.
TYPICAL_RECORD_BYTES = 160
MIN_READ_BYTES = HEADER_BYTES + MAX_PAYLOAD_BYTES
#: The commit modes.
GROUP = "group"
PER_ORDER = "per_order"

OnCommit = Callable[[list[Any], int, float], None]
OnFailure = Callable[[list[Any], "JournalFailed"], None]


class JournalFailed(Unavailable):
    """The log could not be written (or read back): nothing appended since its last durable batch is acknowledged;
    the engine answers UNAVAILABLE until it is restarted."""


class Journal:
    """The event log in ``folder`` (``events.log``), committing in ``commit`` mode (``group`` or ``per_order``).

    Use: :meth:`recover` (consume it all: the durable payloads in sequence order), then :meth:`start` on the event
    loop, then :meth:`append` from it; :meth:`read` serves catch-up reads; :meth:`close` flushes what is buffered.
    ``durable_sequence`` is the sequence number of the last durable event (the record count of the file).
    """

    def __init__(self, folder: Path, *, commit: str = GROUP, recent_events: int = 100_000,
                 index_every: int = 1_000) -> None:
        if commit not in (GROUP, PER_ORDER):
            raise ValueError(f"commit must be {GROUP!r} or {PER_ORDER!r}, not {commit!r}")
        self.path = Path(folder) / FILE_NAME
        self.commit = commit
        self._index_every = index_every
        #: Byte offset of record k * index_every + 1, for k = 0, 1, ...
        self._index: list[int] = []
        #: The newest durable payloads: sequence s at s % len(ring).
        self._ring: list[bytes | None] = [None] * recent_events
        self.durable_sequence = 0
        self._durable_end = 0
        #: Records appended (durable or not) and the file's size once they are written.
        self._appended = 0
        self._end = 0
        self._next_indexed = 1
        self._fd = -1
        self._recovered = False
        self.failed: JournalFailed | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_commit: OnCommit | None = None
        self._on_failure: OnFailure | None = None
        self._cond = threading.Condition()
        self._buffer: list[tuple[bytes, list[bytes], Any]] = []
        self._closing = False
        self._writer: threading.Thread | None = None

    # -- opening and replay -------------------------------------------------------------------------------------------

    def recover(self) -> Iterator[bytes]:
        """Open (create) the file and yield every good record's payload in order; at the first torn or corrupt record,
        truncate the file there (logged with its byte offset). Builds the sparse index and the ring on the way."""
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if created:
            _fsync_dir(self.path.parent)
        fd, unpack_from, crc32 = self._fd, HEADER.unpack_from, zlib.crc32
        ring, ring_size, every, index = self._ring, len(self._ring), self._index_every, self._index
        count = 0
        base = 0  # file offset of buf[0]
        buf = b""
        pos = 0
        bad: str | None = None
        while bad is None:
            chunk = os.read(fd, READ_CHUNK_BYTES)
            if not chunk:
                break
            buf = buf[pos:] + chunk
            base += pos
            pos = 0
            end = len(buf)
            while pos + HEADER_BYTES <= end:
                length, crc = unpack_from(buf, pos)
                if not 0 < length <= MAX_PAYLOAD_BYTES:
                    bad = f"an impossible length ({length} bytes)"
                    break
                stop = pos + HEADER_BYTES + length
                if stop > end:
                    break
                payload = buf[pos + HEADER_BYTES:stop]
                if crc32(payload) != crc:
                    bad = "a bad CRC"
                    break
                if count % every == 0:
                    index.append(base + pos)
                count += 1
                ring[count % ring_size] = payload
                yield payload
                pos = stop
        good_end = base + pos
        size = os.fstat(fd).st_size
        if good_end < size:
            log.warning("%s: record %d at byte offset %d has %s; truncating %d bytes from there (a write torn by a "
                        "crash, or corruption)", self.path, count + 1, good_end, bad or "been torn (cut short)",
                        size - good_end)
            os.ftruncate(fd, good_end)
            os.fsync(fd)
        self.durable_sequence = self._appended = count
        self._durable_end = self._end = good_end
        self._next_indexed = len(index) * every + 1
        self._recovered = True

    def start(self, loop: asyncio.AbstractEventLoop, on_commit: OnCommit, on_failure: OnFailure) -> None:
        """Commit from now on, calling ``on_commit`` / ``on_failure`` on ``loop`` (after :meth:`recover`)."""
        if not self._recovered:
            raise RuntimeError("Journal.recover() must run to its end before start()")
        self._loop, self._on_commit, self._on_failure = loop, on_commit, on_failure
        if self.commit == GROUP:
            self._writer = threading.Thread(target=self._write_batches, name="trading-engine-journal", daemon=True)
            self._writer.start()

    # -- appending ----------------------------------------------------------------------------------------------------

    def append(self, payloads: list[bytes], token: Any) -> None:
        """Append the events ``payloads`` (the next sequence numbers, in order) as one unit; ``token`` comes back in
        ``on_commit`` once they are durable (or in ``on_failure``). In ``per_order`` mode this writes and flushes
        before it returns. After a failure nothing more is written: ``on_failure`` gets ``token`` at once."""
        if self.failed is not None:
            self._on_failure([token], self.failed)
            return
        crc32, pack = zlib.crc32, HEADER.pack
        data = b"".join([pack(len(p), crc32(p)) + p for p in payloads])
        first = self._appended + 1
        self._appended += len(payloads)
        if self._next_indexed <= self._appended:
            offset, every = self._end, self._index_every
            for sequence, payload in enumerate(payloads, first):
                if sequence == self._next_indexed:
                    self._index.append(offset)
                    self._next_indexed += every
                offset += HEADER_BYTES + len(payload)
        self._end += len(data)
        entry = (data, payloads, token)
        if self.commit == GROUP:
            with self._cond:
                self._buffer.append(entry)
                self._cond.notify()
            return
        started = time.perf_counter()
        try:
            self._write(data)
        except OSError as error:
            self.failed = self._failure(error)
            self._fail([entry])
            return
        self._committed([entry], time.perf_counter() - started)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        os.fdatasync(self._fd)

    def _write_batches(self) -> None:
        """The writer thread (group mode): everything buffered, one write, one fdatasync, back to the loop."""
        loop = self._loop
        while True:
            with self._cond:
                while not self._buffer and not self._closing:
                    self._cond.wait()
                batch, self._buffer = self._buffer, []
            if not batch:
                return
            if self.failed is None:
                started = time.perf_counter()
                try:
                    self._write(b"".join([entry[0] for entry in batch]))
                except OSError as error:
                    self.failed = self._failure(error)
                else:
                    loop.call_soon_threadsafe(self._committed, batch, time.perf_counter() - started)
                    continue
            loop.call_soon_threadsafe(self._fail, batch)

    def _committed(self, batch: list[tuple[bytes, list[bytes], Any]], seconds: float) -> None:
        """On the loop: ``batch`` is durable: into the ring, then ``on_commit``."""
        ring = self._ring
        ring_size = len(ring)
        sequence = first = self.durable_sequence
        written = 0
        tokens = []
        for data, payloads, token in batch:
            for payload in payloads:
                sequence += 1
                ring[sequence % ring_size] = payload
            written += len(data)
            tokens.append(token)
        self.durable_sequence = sequence
        self._durable_end += written
        self._on_commit(tokens, sequence - first, seconds)

    def _failure(self, error: OSError) -> JournalFailed:
        failed = JournalFailed(f"the event log {self.path} could not be written ({error}); nothing after sequence "
                               f"{self.durable_sequence} is acknowledged; restart the engine")
        failed.__cause__ = error
        return failed

    def _fail(self, batch: list[tuple[bytes, list[bytes], Any]]) -> None:
        """On the loop: ``batch`` was not written (the journal is failed for good: ``self.failed``)."""
        self._on_failure([entry[2] for entry in batch], self.failed)

    # -- reading back -------------------------------------------------------------------------------------------------

    async def read(self, first: int, limit: int) -> list[bytes]:
        """Up to ``limit`` durable payloads from sequence ``first`` on (empty when ``first`` is not durable yet): from
        the ring when ``first`` is recent, else from the file (in a worker thread)."""
        last = min(self.durable_sequence, first + limit - 1)
        if first > last:
            return []
        ring = self._ring
        ring_size = len(ring)
        if first > self.durable_sequence - ring_size:
            return [ring[sequence % ring_size] for sequence in range(first, last + 1)]
        slot = (first - 1) // self._index_every
        return await asyncio.to_thread(self._read_file, self._index[slot], slot * self._index_every + 1, first, last,
                                       self._durable_end)

    def _read_file(self, offset: int, sequence: int, first: int, last: int, end: int) -> list[bytes]:
        """Payloads ``first``..``last`` read from the file, starting at record ``sequence`` at byte ``offset``."""
        unpack_from, crc32 = HEADER.unpack_from, zlib.crc32
        found: list[bytes] = []
        with open(self.path, "rb", buffering=0) as file:
            while sequence <= last and offset < end:
                wanted = max(MIN_READ_BYTES, min(READ_CHUNK_BYTES, (last - sequence + 1) * TYPICAL_RECORD_BYTES))
                buf = os.pread(file.fileno(), min(wanted, end - offset), offset)
                pos = 0
                while sequence <= last and pos + HEADER_BYTES <= len(buf):
                    length, crc = unpack_from(buf, pos)
                    stop = pos + HEADER_BYTES + length
                    if stop > len(buf):
                        break
                    if sequence >= first:
                        payload = buf[pos + HEADER_BYTES:stop]
                        if crc32(payload) != crc:
                            raise JournalFailed(f"{self.path}: record {sequence} at byte offset {offset + pos} no "
                                                "longer matches its CRC")
                        found.append(payload)
                    sequence += 1
                    pos = stop
                if pos == 0:
                    raise JournalFailed(f"{self.path}: no whole record at byte offset {offset}")
                offset += pos
        return found

    # -- closing ------------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Write what is buffered (its ``on_commit`` runs), stop the writer thread and close the file."""
        if self._writer is not None:
            with self._cond:
                self._closing = True
                self._cond.notify()
            await asyncio.to_thread(self._writer.join)
            self._writer = None
            await asyncio.sleep(0)  # the writer's last call_soon_threadsafe callbacks run before the file closes
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
