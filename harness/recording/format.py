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
:func:`read_recording` reads and checks a whole one, entry by entry (known
fields only, times within :data:`MAX_TIME_US` and within the recorded duration,
calls in completion order up to :data:`COMPLETION_SLACK_US`, message sizes that
match their bytes and stay within :data:`MAX_MESSAGE_BYTES`, legal metadata).
Every problem raises :class:`RecordingError` naming the file, the entry index,
its byte offset and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

import grpc
from google.protobuf import proto
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from casemesh.harness.v1 import recording_pb2 as pb

from ..phases import PHASE_KEY, SEED

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
#: Longest time a recording may span (µs, 7 days): a start offset, latency, deadline, message offset or duration
#: beyond it is corrupt (a flipped bit in a varint), not a replay to schedule.
MAX_TIME_US = 7 * 86_400 * 1_000_000
#: Largest message a recording may hold (bytes): gRPC's own limit, a message length is a signed 32-bit number.
MAX_MESSAGE_BYTES = 2**31 - 1
#: How much earlier a call may end than one written before it (µs). Calls are written as they end, so their end
#: times (start_offset_us + latency_us) never go back in a file casemesh wrote; 1 s leaves room for other writers'
#: clocks. A message's offset may exceed its call's latency by as much.
COMPLETION_SLACK_US = 1_000_000
_CALL_ENDS = frozenset(pb.CallEnd.values())
#: gRPC metadata keys: lower-case letters, digits, '-', '_' and '.' (the gRPC over HTTP/2 spec's Header-Name).
_METADATA_KEY = re.compile(r"[0-9a-z_.-]+")
#: Headers gRPC or HTTP/2 own: never recorded, never replayed (grpc refuses most of them as call metadata).
_RESERVED_KEYS = frozenset({"te", "content-type", "user-agent", "host", "connection", "accept-encoding", "content-encoding"})


class RecordingError(Exception):
    """A recording file cannot be read or is not a valid recording.

    ``path`` is the file, ``index`` the 0-based entry index and ``offset`` the
    byte offset where that entry starts (``None`` when the problem is not
    about one entry), ``field`` the offending field of that entry
    (``call.start_offset_us``, ``call.requests[2].size_bytes``; ``None`` when
    the entry as a whole is wrong). ``str(error)`` reads
    ``FILE: entry N at byte B: FIELD: MESSAGE``.
    """

    def __init__(self, path: str | os.PathLike[str], message: str, *, index: int | None = None, offset: int | None = None,
                 field: str | None = None):
        self.path = str(path)
        self.message = message
        self.index = index
        self.offset = offset
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"entry {self.index} at byte {self.offset}: " if self.index is not None else ""
        what = f"{self.field}: " if self.field else ""
        return f"{self.path}: {where}{what}{self.message}"


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


_SEED_BYTES = SEED.encode()


def is_seed(call: pb.RecordedCall) -> bool:
    """Whether ``call`` was one of the harness's seeding calls (``casemesh-phase: seed``, harness/phases.py)."""
    return any(entry.key == PHASE_KEY and entry.value == _SEED_BYTES for entry in call.metadata)


def without_seed(recording: Recording) -> tuple[Recording, int]:
    """``(recording without its seeding calls, how many were left out)``."""
    kept = tuple(call for call in recording.calls if not is_seed(call))
    return replace(recording, calls=kept), len(recording.calls) - len(kept)


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

    Entry 0 must be a header of format version 1 with a valid ``create_time``;
    every other entry a call except a final end entry. Each call must have a
    full method ``/package.Service/Method``; offsets, latency and timeout in
    µs from 0 to :data:`MAX_TIME_US`; a status code of 0..16 and a known
    ``ended_by``; messages whose offsets fall within the call (up to
    :data:`COMPLETION_SLACK_US` after its latency), whose ``size_bytes`` is
    at most :data:`MAX_MESSAGE_BYTES` and equals the length of their bytes
    (always recorded for requests, for responses when recorded); metadata
    keys that gRPC accepts and printable ASCII values for keys not ending in
    ``-bin``. Calls are written as they end, so a call may not end more than
    :data:`COMPLETION_SLACK_US` before one written earlier. The end entry's
    ``call_count`` must match the calls and its ``duration_us`` cover every
    call's start and end. No entry may hold fields this format version does
    not define (a corrupt byte often decodes as one).

    Raises :class:`RecordingError` naming the file, entry index, byte offset
    and field of the first problem.
    """
    header: pb.RecordingHeader | None = None
    calls: list[pb.RecordedCall] = []
    #: (index, byte offset) of every call entry, in file order, for problems found once the end entry is known.
    where: list[tuple[int, int]] = []
    end: pb.RecordingEnd | None = None
    latest_end_us, latest_index = -1, 0
    for index, offset, entry in iter_entries(path):
        kind = entry.WhichOneof("entry")

        def fail(message: str, field: str | None = None) -> RecordingError:
            return RecordingError(path, message, index=index, offset=offset, field=field)

        size = entry.ByteSize()
        entry.DiscardUnknownFields()
        if entry.ByteSize() != size:  # it held fields of no known number: find the first (rare, so read the entry again)
            unknown = _unknown_field(_entry_at(path, offset), "")
            where_unknown, number = unknown if unknown is not None else ("", 0)
            raise fail(f"field number {number} is not part of format version {FORMAT_VERSION}: the entry is corrupt", where_unknown or None)
        if index == 0:
            if kind != "header":
                raise fail(f"expected a RecordingHeader first, found {kind or 'an empty entry'}: not a casemesh recording")
            if entry.header.format_version != FORMAT_VERSION:
                raise fail(f"format version {entry.header.format_version} is not supported (this casemesh reads version {FORMAT_VERSION})")
            try:
                entry.header.create_time.ToDatetime()
            except (ValueError, OverflowError) as error:
                raise fail(f"not a valid time: {error}", "header.create_time") from None
            header = entry.header
        elif end is not None:
            raise fail(f"{kind or 'an empty entry'} after the end entry")
        elif kind == "call":
            call = entry.call
            problem = _call_problem(call)
            if problem:
                raise fail(problem[1], problem[0])
            ends_us = call.start_offset_us + call.latency_us
            if ends_us < latest_end_us - COMPLETION_SLACK_US:
                raise fail(f"this call ends at {_seconds(ends_us)} (start_offset_us + latency_us), {_seconds(latest_end_us - ends_us)} "
                           f"before the call of entry {latest_index}, which was written earlier: calls are written as they end, "
                           "so one of the two is corrupt", "call.start_offset_us")
            if ends_us > latest_end_us:
                latest_end_us, latest_index = ends_us, index
            calls.append(call)
            where.append((index, offset))
        elif kind == "end":
            end = entry.end
            if not 0 <= end.duration_us <= MAX_TIME_US:
                raise fail(_time_problem(end.duration_us) or "", "end.duration_us")
            if end.call_count != len(calls):
                raise fail(f"{end.call_count:,} calls, but the file holds {len(calls):,}", "end.call_count")
            for call, (call_index, call_offset) in zip(calls, where):
                if call.start_offset_us + call.latency_us > end.duration_us + COMPLETION_SLACK_US:
                    field = "start_offset_us" if call.start_offset_us > end.duration_us else "latency_us"
                    raise RecordingError(path, f"this call ends at {_seconds(call.start_offset_us + call.latency_us)}, after the recording "
                                               f"ended at {_seconds(end.duration_us)} (end.duration_us of entry {index})",
                                         index=call_index, offset=call_offset, field=f"call.{field}")
        else:
            raise fail(f"expected a call or the end entry, found {kind or 'an empty entry'}")
    if header is None:
        raise RecordingError(path, "the file is empty: not a casemesh recording")
    calls.sort(key=lambda c: c.start_offset_us)
    return Recording(path=Path(path), header=header, calls=tuple(calls), end=end)


def _seconds(us: int) -> str:
    """``1,234.567890 s`` for a time in µs."""
    return f"{us / 1e6:,.6f} s"


def _time_problem(value_us: int) -> str | None:
    """Why a time in µs is impossible in a recording (negative, or beyond :data:`MAX_TIME_US`), or ``None``."""
    if value_us < 0:
        return f"negative ({value_us:,} µs)"
    if value_us > MAX_TIME_US:
        return (f"{value_us:,} µs ({value_us / 86_400e6:,.1f} days) is beyond {MAX_TIME_US:,} µs (7 days), the longest a recording "
                "may span: the file is corrupt")
    return None


def _call_problem(call: pb.RecordedCall) -> tuple[str, str] | None:
    """``(field, message)`` of the first problem of a recorded call, or ``None``."""
    method = call.method
    service, sep, name = method[1:].partition("/")
    if not method.startswith("/") or not sep or not service or not name or "/" in name:
        return "call.method", f"{method!r} is not a full method name /package.Service/Method"
    if not (0 <= call.start_offset_us <= MAX_TIME_US and 0 <= call.latency_us <= MAX_TIME_US and 0 <= call.timeout_us <= MAX_TIME_US):
        for field in ("start_offset_us", "latency_us", "timeout_us"):
            problem = _time_problem(getattr(call, field))
            if problem:
                return f"call.{field}", problem
    if call.status_code not in _STATUS_NAMES:
        return "call.status_code", f"{call.status_code} is not a gRPC status code (0..16)"
    if call.ended_by not in _CALL_ENDS:
        return "call.ended_by", f"{call.ended_by} is not a CallEnd value (0..3)"
    latest_us = call.latency_us + COMPLETION_SLACK_US
    for side, messages, data_optional in (("requests", call.requests, False), ("responses", call.responses, True)):
        for i, message in enumerate(messages):
            offset_us, size, data = message.offset_us, message.size_bytes, message.data
            if 0 <= offset_us <= latest_us and size <= MAX_MESSAGE_BYTES and (len(data) == size or (data_optional and not data)):
                continue  # the common case, checked at once
            at = f"call.{side}[{i}]"
            problem = _time_problem(offset_us)
            if problem:
                return f"{at}.offset_us", problem
            if offset_us > latest_us:
                return f"{at}.offset_us", (f"{_seconds(offset_us)} after the call's start, but the call ended "
                                           f"{_seconds(call.latency_us)} after it (latency_us)")
            if size > MAX_MESSAGE_BYTES:
                return f"{at}.size_bytes", f"{size:,} bytes is more than a gRPC message can hold ({MAX_MESSAGE_BYTES:,})"
            if (data or not data_optional) and len(data) != size:
                return f"{at}.size_bytes", f"{size:,}, but the message's data holds {len(data):,} bytes"
    for i, item in enumerate(call.metadata):
        if not _METADATA_KEY.fullmatch(item.key):
            return f"call.metadata[{i}].key", f"{item.key!r} is not a gRPC metadata key (lower-case letters, digits, '-', '_', '.')"
        if not item.key.endswith("-bin") and not (item.value.isascii() and item.value.decode("ascii").isprintable()):
            return f"call.metadata[{i}].value", f"the value of {item.key!r} is not printable ASCII (only keys ending in -bin hold bytes)"
    return None


def _entry_at(path: str | os.PathLike[str], offset: int) -> pb.RecordingEntry:
    """The entry at byte ``offset`` of the file, read again (it decoded once already)."""
    with open(path, "rb") as file:
        file.seek(offset)
        entry = proto.parse_length_prefixed(pb.RecordingEntry, _Bounded(file, os.fstat(file.fileno()).st_size))
    return entry if entry is not None else pb.RecordingEntry()


def _unknown_field(message: Message, at: str) -> tuple[str, int] | None:
    """``(where, field number)`` of the first field ``message`` (or a message in it) holds that its type does not define."""
    for field in UnknownFieldSet(message):
        return at, field.field_number
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        name = f"{at}.{descriptor.name}" if at else descriptor.name
        if descriptor.is_repeated:
            for i, item in enumerate(value):
                found = _unknown_field(item, f"{name}[{i}]")
                if found:
                    return found
        else:
            found = _unknown_field(value, name)
            if found:
                return found
    return None
