"""Recording files: a header, the recorded calls and an end marker, varint length-delimited.

The messages are ``casemesh.harness.v1`` (protos/casemesh/harness/v1/recording.proto).
A file is a stream of ``RecordingEntry`` messages, each preceded by its size in
bytes as a base-128 varint (protobuf's "delimited" framing:
``google.protobuf.proto.serialize_length_prefixed`` here, ``writeDelimitedTo``
in Java). Entry 0 holds the ``RecordingHeader``; then one ``RecordedCall`` per
finished call, in completion order; and, when the recorder stopped cleanly, a
``RecordingEnd``. docs/recording.md documents the format for other languages.

:class:`RecordingWriter` writes a file entry by entry, flushing each, so a file
is readable while it grows and loses at most the entry being written when the
recorder is killed. :func:`iter_entries` reads a file incrementally;
:func:`read_recording` reads and checks a whole one. Every problem raises
:class:`RecordingError` naming the file, the entry index and its byte offset.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import grpc
from google.protobuf import proto
from google.protobuf.message import DecodeError

from casemesh.harness.v1 import recording_pb2 as pb

#: The version of the format this module writes and the only one it reads.
FORMAT_VERSION = 1
#: File name suffix used in docs and defaults (not required by the reader).
SUFFIX = ".cmrec"

RecordingEntry = pb.RecordingEntry
RecordingHeader = pb.RecordingHeader
RecordedCall = pb.RecordedCall
RecordedMessage = pb.RecordedMessage
RecordingEnd = pb.RecordingEnd
MetadataEntry = pb.MetadataEntry

_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}
#: Headers gRPC or HTTP/2 own: never recorded, never replayed (grpc refuses most of them as call metadata).
_RESERVED_KEYS = frozenset({"te", "content-type", "user-agent", "host", "connection", "accept-encoding", "content-encoding"})


class RecordingError(Exception):
    """A recording file cannot be read or is not a valid recording.

    ``path`` is the file, ``index`` the 0-based entry index and ``offset`` the
    byte offset where that entry starts (``None`` when the problem is not
    about one entry). ``str(error)`` reads ``FILE: entry N at byte B: MESSAGE``.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, *, index: int | None = None, offset: int | None = None):
        self.path = str(path)
        self.message = message
        self.index = index
        self.offset = offset
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"entry {self.index} at byte {self.offset}: " if self.index is not None else ""
        return f"{self.path}: {where}{self.message}"


def status_name(code: int) -> str:
    """The ``grpc.StatusCode`` name of a status code number (``5`` → ``NOT_FOUND``); ``CODE_<n>`` when unknown."""
    return _STATUS_NAMES.get(code, f"CODE_{code}")


def status_code(code: int) -> grpc.StatusCode:
    """The ``grpc.StatusCode`` of a status code number; ``UNKNOWN`` for numbers gRPC does not define."""
    return _STATUS_CODES.get(code, grpc.StatusCode.UNKNOWN)


def is_reserved_metadata(key: str) -> bool:
    """True for keys gRPC and HTTP/2 own (``:authority``, ``grpc-timeout``, ``user-agent``, ...), which are never recorded or replayed."""
    return key.startswith((":", "grpc-")) or key in _RESERVED_KEYS


def call_metadata(call: pb.RecordedCall) -> tuple[tuple[str, str | bytes], ...]:
    """The call's recorded metadata as grpc metadata: text values as ``str``, ``-bin`` values as ``bytes``."""
    return tuple(
        (entry.key, entry.value if entry.key.endswith("-bin") else entry.value.decode("ascii", "replace"))
        for entry in call.metadata
        if not is_reserved_metadata(entry.key)
    )


def new_header(*, upstream: str, listen: str, recorder: str, metadata_allow: list[str], response_data: bool,
               created: datetime | None = None) -> pb.RecordingHeader:
    """A header of the current format version, created now (UTC) unless ``created`` is given."""
    header = pb.RecordingHeader(
        format_version=FORMAT_VERSION,
        upstream_address=upstream,
        listen_address=listen,
        recorder=recorder,
        metadata_allow=metadata_allow,
        response_data_recorded=response_data,
    )
    header.create_time.FromDatetime(created or datetime.now(timezone.utc))
    return header


class RecordingWriter:
    """Writes one recording file: the header at once, then calls, then the end entry on :meth:`close`.

    Each entry is flushed to the operating system as it is written. Use as a
    context manager, or call :meth:`close`. ``OSError`` when the file cannot
    be created or written.
    """

    def __init__(self, path: str | os.PathLike[str], header: pb.RecordingHeader):
        self.path = Path(path)
        self.calls_written = 0
        self._file: BinaryIO | None = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._write(pb.RecordingEntry(header=header))

    def _write(self, entry: pb.RecordingEntry) -> None:
        if self._file is None:
            raise ValueError(f"{self.path}: the recording is closed")
        proto.serialize_length_prefixed(entry, self._file)
        self._file.flush()

    def write_call(self, call: pb.RecordedCall) -> None:
        """Append one finished call."""
        self._write(pb.RecordingEntry(call=call))
        self.calls_written += 1

    def close(self, *, duration_us: int | None = None, stop_reason: str = "") -> None:
        """Write the end entry (``duration_us`` from the recording's start, µs; ``stop_reason`` as in RecordingEnd) and close the file.

        With ``duration_us=None`` no end entry is written: the file then reads
        as cut short. Closing twice does nothing.
        """
        if self._file is None:
            return
        try:
            if duration_us is not None:
                self._write(pb.RecordingEntry(end=pb.RecordingEnd(call_count=self.calls_written, duration_us=duration_us, stop_reason=stop_reason)))
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bounded:
    """A reader that never asks for more than the file still holds, so a corrupt length cannot allocate gigabytes."""

    def __init__(self, file: BinaryIO, size: int):
        self._file = file
        self._size = size

    def read(self, n: int = -1) -> bytes:
        remaining = max(self._size - self._file.tell(), 0)
        return self._file.read(remaining if n is None or n < 0 else min(n, remaining))

    def tell(self) -> int:
        return self._file.tell()


def iter_entries(path: str | os.PathLike[str]) -> Iterator[tuple[int, int, pb.RecordingEntry]]:
    """``(index, byte offset, entry)`` for every entry of the file, read incrementally.

    Raises :class:`RecordingError` (with index and offset) for a truncated or
    undecodable entry, and for a file that cannot be opened.
    """
    try:
        file = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as error:
        raise RecordingError(path, f"cannot open: {error.strerror or error}") from None
    with file:
        size = os.fstat(file.fileno()).st_size
        reader = _Bounded(file, size)
        index = 0
        while True:
            offset = file.tell()
            try:
                entry = proto.parse_length_prefixed(pb.RecordingEntry, reader)
            except (ValueError, DecodeError) as error:
                if index == 0:
                    message = f"not a casemesh recording (its first entry does not decode: {error})"
                elif file.tell() >= size:
                    message = "the file ends inside this entry: it was cut short (a recorder killed mid-write leaves a partial last entry)"
                else:
                    message = f"corrupt entry: {error}"
                raise RecordingError(path, message, index=index, offset=offset) from None
            if entry is None:
                return
            yield index, offset, entry
            index += 1


@dataclass(frozen=True)
class Recording:
    """A whole recording, checked: its header, its calls sorted by start offset, and its end entry (``None`` when cut short)."""

    path: Path
    header: pb.RecordingHeader
    calls: tuple[pb.RecordedCall, ...]
    end: pb.RecordingEnd | None

    @property
    def created_at(self) -> datetime:
        """When recording started (UTC)."""
        return self.header.create_time.ToDatetime(tzinfo=timezone.utc)

    @property
    def span_us(self) -> int:
        """Time from the first call's start to the last call's start (µs); 0 with fewer than two calls."""
        return self.calls[-1].start_offset_us - self.calls[0].start_offset_us if len(self.calls) > 1 else 0

    @property
    def methods(self) -> list[str]:
        """Distinct full method names (``/package.Service/Method``) in order of first call."""
        return list(dict.fromkeys(c.method for c in self.calls))


def read_recording(path: str | os.PathLike[str]) -> Recording:
    """The recording at ``path``, checked entry by entry.

    Entry 0 must be a header of format version 1; every other entry a call
    (full method ``/package.Service/Method``, non-negative offsets, latency
    and timeout in µs, a status code of 0..16) except a final end entry.
    Raises :class:`RecordingError` naming the file, entry index and byte
    offset of the first problem.
    """
    header: pb.RecordingHeader | None = None
    calls: list[pb.RecordedCall] = []
    end: pb.RecordingEnd | None = None
    for index, offset, entry in iter_entries(path):
        kind = entry.WhichOneof("entry")

        def fail(message: str) -> RecordingError:
            return RecordingError(path, message, index=index, offset=offset)

        if index == 0:
            if kind != "header":
                raise fail(f"expected a RecordingHeader first, found {kind or 'an empty entry'}: not a casemesh recording")
            if entry.header.format_version != FORMAT_VERSION:
                raise fail(f"format version {entry.header.format_version} is not supported (this casemesh reads version {FORMAT_VERSION})")
            header = entry.header
        elif end is not None:
            raise fail(f"{kind or 'an empty entry'} after the end entry")
        elif kind == "call":
            problem = _call_problem(entry.call)
            if problem:
                raise fail(problem)
            calls.append(entry.call)
        elif kind == "end":
            end = entry.end
        else:
            raise fail(f"expected a call or the end entry, found {kind or 'an empty entry'}")
    if header is None:
        raise RecordingError(path, "the file is empty: not a casemesh recording")
    calls.sort(key=lambda c: c.start_offset_us)
    return Recording(path=Path(path), header=header, calls=tuple(calls), end=end)


def _call_problem(call: pb.RecordedCall) -> str | None:
    method = call.method
    service, sep, name = method[1:].partition("/")
    if not method.startswith("/") or not sep or not service or not name or "/" in name:
        return f"call method {method!r} is not a full method name /package.Service/Method"
    if call.start_offset_us < 0 or call.latency_us < 0 or call.timeout_us < 0:
        return f"call {method}: negative start_offset_us, latency_us or timeout_us"
    if call.status_code not in _STATUS_NAMES:
        return f"call {method}: status code {call.status_code} is not a gRPC status code (0..16)"
    if any(m.offset_us < 0 for m in (*call.requests, *call.responses)):
        return f"call {method}: a message has a negative offset_us"
    return None
