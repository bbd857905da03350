"""The live workload's media model, as a client sees it: the chunk schedule, the chunk bytes, glass-to-glass matching.

Nothing here calls a service; it is the pure logic the broadcasters and
viewers share (unit-tested without gRPC).

**The chunk schedule** (:class:`ChunkPlan`): a broadcaster sends one chunk
per video frame, ``frame_rate`` a second. Chunk ``n`` is captured at
``t0 + n / frame_rate`` (one monotonic schedule from the stream's start:
no drift however late a send was), lasts ``floor((n+1) x 10^6 / fps) -
floor(n x 10^6 / fps)`` µs (33,333 or 33,334 at 30/s: 30 chunks make
exactly one second of media), and is a keyframe when ``n`` is a multiple of
``frame_rate x keyframe_interval_s`` (the first chunk is one, as the
contract requires). Sizes follow the bitrate: a group of pictures carries
``bitrate_kbps x keyframe_interval_s`` kilobits, its keyframe
``keyframe_size_factor`` times a delta frame (500 kbit/s at 30/s: 2,083
bytes a chunk on average; 1,984 per delta frame and 7,937 per keyframe at
the default factor 4).

**The chunk bytes** carry a 20-byte header (:data:`HEADER`): the chunk's
sequence, its capture time (Unix ns) and its size, then filler. A part's
bytes are its chunks concatenated in order (live.proto, ``Part.data``), so a
viewer can walk them (:func:`chunk_headers`) and learn every chunk's capture
time even when the broadcaster runs in another worker process.

**Glass to glass** (:class:`GlassToGlass`): the capture time of each chunk
→ the first time any viewer of this process receives the part holding it,
once per chunk. A bounded ring per stream (``capacity`` chunks, indexed by
sequence) holds what the local broadcaster sent and which chunks were
received already; a chunk older than the ring is never measured (a DVR
viewer replaying old parts does not count as a first receipt).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

#: A chunk's header: sequence (int64), capture time in Unix ns (int64), the chunk's size in bytes (uint32); big-endian.
HEADER = struct.Struct(">qqI")
HEADER_BYTES = HEADER.size
#: Filler after the header (sliced per chunk; the media bytes are opaque to every service).
_FILLER = bytes(range(256)) * 4096


@dataclass(frozen=True)
class ChunkPlan:
    """A broadcaster's encoder: frame rate, keyframe interval, bitrate (see the module docstring)."""

    frame_rate: int = 30
    keyframe_interval_s: float = 2.0
    bitrate_kbps: int = 500
    keyframe_size_factor: float = 4.0

    @property
    def gop(self) -> int:
        """Chunks per group of pictures (keyframe to keyframe)."""
        return max(1, round(self.frame_rate * self.keyframe_interval_s))

    @property
    def delta_bytes(self) -> int:
        """Size of a delta frame's chunk: the GOP's bits spread over ``gop - 1 + keyframe_size_factor`` frame units."""
        gop_bytes = self.bitrate_kbps * 1000 / 8 * self.gop / self.frame_rate
        return max(HEADER_BYTES, round(gop_bytes / (self.gop - 1 + self.keyframe_size_factor)))

    @property
    def keyframe_bytes(self) -> int:
        return max(HEADER_BYTES, round(self.delta_bytes * self.keyframe_size_factor))

    def keyframe(self, sequence: int) -> bool:
        return sequence % self.gop == 0

    def size(self, sequence: int) -> int:
        return self.keyframe_bytes if self.keyframe(sequence) else self.delta_bytes

    def duration_us(self, sequence: int) -> int:
        """33,333 or 33,334 at 30/s: the chunks of any second of media sum to exactly 10^6 µs."""
        return (sequence + 1) * 1_000_000 // self.frame_rate - sequence * 1_000_000 // self.frame_rate

    def capture_offset_s(self, sequence: int) -> float:
        """When chunk ``sequence`` is captured, in seconds after the stream's first chunk (no accumulated error)."""
        return sequence / self.frame_rate

    def data(self, sequence: int, captured_wall_ns: int) -> bytes:
        """The chunk's bytes: the header, then filler up to its size."""
        size = self.size(sequence)
        return HEADER.pack(sequence, captured_wall_ns, size) + _FILLER[: size - HEADER_BYTES]


def chunk_headers(data: bytes, first: int, count: int) -> list[int] | None:
    """The capture times (Unix ns) of the ``count`` chunks of a part starting at chunk ``first``, walked through its
    bytes; ``None`` when the bytes are not such chunks in that order (another client's media, or corrupt)."""
    times: list[int] = []
    position, end = 0, len(data)
    for k in range(count):
        if position + HEADER_BYTES > end:
            return None
        sequence, captured_ns, size = HEADER.unpack_from(data, position)
        if sequence != first + k or size < HEADER_BYTES:
            return None
        times.append(captured_ns)
        position += size
    return times if position == end else None


def first_capture_ns(data: bytes, first: int) -> int | None:
    """The capture time of a part's first chunk (its header only), ``None`` when the bytes do not start with it."""
    if len(data) < HEADER_BYTES:
        return None
    sequence, captured_ns, _ = HEADER.unpack_from(data, 0)
    return captured_ns if sequence == first else None


class GlassToGlass:
    """First receipts of chunks per stream, in a bounded ring (see the module docstring)."""

    __slots__ = ("capacity", "_seqs", "_sent", "_taken")

    def __init__(self, streams: int, capacity: int = 4096):
        self.capacity = capacity
        self._seqs = [[-1] * capacity for _ in range(streams)]
        self._sent = [[0] * capacity for _ in range(streams)]
        self._taken = [[False] * capacity for _ in range(streams)]

    def sent(self, stream: int, sequence: int, captured_wall_ns: int) -> None:
        """The local broadcaster of ``stream`` sent chunk ``sequence`` (a resend keeps the first capture time)."""
        i = sequence % self.capacity
        seqs = self._seqs[stream]
        if seqs[i] == sequence:
            return
        seqs[i] = sequence
        self._sent[stream][i] = captured_wall_ns
        self._taken[stream][i] = False

    def received(self, stream: int, first: int, count: int, data: bytes | Callable[[], bytes]) -> list[int]:
        """A viewer received the part of chunks ``first`` ... ``first + count - 1``: the capture times (Unix ns) of
        those received here for the first time (empty when all were received before, or are older than the ring).
        The local broadcaster's record gives the time; for a broadcaster in another process the part's bytes do
        (``data``, or a function returning them: only called then)."""
        capacity = self.capacity
        seqs, sent, taken = self._seqs[stream], self._sent[stream], self._taken[stream]
        new: list[tuple[int, int]] = []  # (chunk index in the part, capture ns or 0)
        for k in range(count):
            sequence = first + k
            i = sequence % capacity
            held = seqs[i]
            if held == sequence:
                if taken[i]:
                    continue
                taken[i] = True
                new.append((k, sent[i]))
            elif held < sequence:  # a slot of an older chunk (or empty): this one is new here
                seqs[i], sent[i], taken[i] = sequence, 0, True
                new.append((k, 0))
            # held > sequence: older than the ring, never measured
        if not new:
            return []
        if any(ns == 0 for _, ns in new):
            headers = chunk_headers(data() if callable(data) else data, first, count)
            if headers is None:
                return [ns for _, ns in new if ns]
            return [ns or headers[k] for k, ns in new]
        return [ns for _, ns in new]
