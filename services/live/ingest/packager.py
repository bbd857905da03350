"""The LL-HLS packager of the ingest server: media chunks in, parts and segments out (seed 001 #12, "RTMP ingest").

A plain class without gRPC or I/O (:class:`Packager`), so that it is
unit-testable and so that a restarted ingest server resumes exactly where
the origin stands (:meth:`Packager.resume` from the origin's ``StreamInfo``).

Rules (RFC 8216bis, "HTTP Live Streaming 2nd Edition"):

- **Parts** (§4.4.4.9 EXT-X-PART): a part closes as soon as adding another
  chunk of the same duration as its last one would take it past the part
  target, and before a chunk that would take it past the target. So a part
  never lasts longer than EXT-X-PART-INF PART-TARGET (§4.4.3.7: "MUST be
  less than or equal to the Part Target Duration") when frame durations are
  constant; a single chunk longer than the target is a part by itself.
- **Segments**: a segment closes at a keyframe chunk once the open segment
  has lasted at least :data:`SEGMENT_CUT_FRACTION` (90 %) of the segment
  target (a broadcaster's keyframe interval normally equals the segment
  target, and 60 frames of 33,333 µs are 1,999,980 µs, just short of 2 s).
  The part before the keyframe closes with ``ends_segment``; the keyframe
  starts part 0 of the next segment, which is therefore INDEPENDENT=YES.
- **A part that may end its segment is held for one chunk**: a complete part
  that takes the open segment to 90 % of the target is appended only when
  the next chunk shows whether a keyframe (a new segment) follows, because
  the origin needs ``ends_segment`` on the part itself (LiveOriginService.
  AppendPart: part 0 of msn+1 comes only after a part that ends msn). That
  costs one chunk duration (33 ms at 30 frames/s) on the last part or two of
  each segment, nothing on the others.
- **Parts off** (the case study's A/B arm): when the part target is at
  least the segment target, a stream has one part per segment: the part is
  the whole segment and closes at the keyframe, as plain HLS publishes.
- A stream's very first chunk must be a keyframe (FAILED_PRECONDITION).

:meth:`Packager.end` closes what is buffered as a final part ending its
segment (PublishEnd). A connection that drops without ``end`` loses its
buffered chunks: the broadcaster sends them again from the origin's
``next_chunk_sequence``, and a packager resumed from the origin's state cuts
exactly the parts an uninterrupted one would have (tested with hypothesis in
tests/unit/test_live_packager.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from ...runtime.errors import FailedPrecondition, InvalidArgument

#: A segment closes at the first keyframe once it has lasted this fraction of the segment target.
SEGMENT_CUT_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class Chunk:
    """One media chunk (about a video frame): its sequence, duration in µs, keyframe flag and bytes."""

    sequence: int
    duration_us: int
    keyframe: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class PackagedPart:
    """A closed part, ready for LiveOriginService.AppendPart (the fields of ``casemesh.live.v1.Part``)."""

    media_sequence: int
    part_index: int
    duration_us: int
    independent: bool
    first_chunk_sequence: int
    chunk_count: int
    data: bytes
    ends_segment: bool

    @property
    def ref(self) -> tuple[int, int]:
        """``(media sequence, part index)``."""
        return self.media_sequence, self.part_index


class Packager:
    """Cuts one stream's chunks into parts and segments (rules in the module docstring).

    ``part_target_us`` and ``segment_target_us`` are the stream's targets;
    ``next_chunk_sequence``, ``next_part`` (``(msn, index)``) and
    ``open_segment_duration_us`` the origin's state (all zero for a new
    stream). Not thread-safe; one packager per Publish connection.
    """

    def __init__(self, part_target_us: int, segment_target_us: int, *, next_chunk_sequence: int = 0,
                 next_part: tuple[int, int] = (0, 0), open_segment_duration_us: int = 0) -> None:
        if part_target_us <= 0 or segment_target_us <= 0:
            raise ValueError("part and segment targets must be positive")
        self.part_target_us = part_target_us
        self.segment_target_us = segment_target_us
        #: One part per segment (plain HLS): the A/B arm.
        self.parts_off = part_target_us >= segment_target_us
        self._cut_us = SEGMENT_CUT_FRACTION * segment_target_us
        self._msn, self._index = next_part
        self._committed_sequence = next_chunk_sequence  # one past the last chunk of the last part handed out
        self._segment_us = open_segment_duration_us  # the open segment's parts handed out so far
        self._open: list[Chunk] = []  # the part being filled
        self._open_us = 0
        self._held: list[Chunk] | None = None  # a complete part that may end its segment: decided by the next chunk
        self._held_us = 0

    @classmethod
    def resume(cls, stream) -> Packager:
        """A packager continuing where the origin's ``StreamInfo`` (proto or :class:`~..origin.store.StreamView`) stands."""
        ref = stream.next_part
        next_part = ref if isinstance(ref, tuple) else (ref.media_sequence, ref.part_index)
        return cls(stream.part_target_ms * 1000, stream.segment_target_ms * 1000,
                   next_chunk_sequence=stream.next_chunk_sequence, next_part=next_part,
                   open_segment_duration_us=stream.open_segment_duration_us)

    # -- state ------------------------------------------------------------------------------------------------------

    @property
    def next_chunk_sequence(self) -> int:
        """The sequence the next fed chunk must carry."""
        return self._committed_sequence + len(self._open) + (len(self._held) if self._held else 0)

    @property
    def committed_chunk_sequence(self) -> int:
        """One past the last chunk of the last part handed out (what the origin will expect after those parts)."""
        return self._committed_sequence

    @property
    def buffered_chunks(self) -> int:
        """Chunks received but in no part handed out yet (lost if the connection drops: they are sent again)."""
        return len(self._open) + (len(self._held) if self._held else 0)

    @property
    def next_part(self) -> tuple[int, int]:
        """``(msn, index)`` of the next part handed out."""
        return self._msn, self._index

    # -- packaging --------------------------------------------------------------------------------------------------

    def feed(self, chunk: Chunk) -> list[PackagedPart]:
        """Take the next chunk; the parts it closes, in order (0 to 2 of them).

        ``InvalidArgument`` (``chunk.sequence``) when it is not the next
        sequence; ``FailedPrecondition`` when it is the stream's first chunk
        and not a keyframe. A refused chunk changes nothing.
        """
        expected = self.next_chunk_sequence
        if chunk.sequence != expected:
            raise InvalidArgument("chunk.sequence", f"is {chunk.sequence}; the next chunk is {expected}")
        if expected == 0 and not chunk.keyframe:
            raise FailedPrecondition("a stream's first chunk (sequence 0) must be a keyframe")
        out: list[PackagedPart] = []
        if self._held is not None:
            # The held part took the segment past the cut: a keyframe now starts the next segment.
            held, self._held = self._held, None
            out.append(self._close(held, self._held_us, ends_segment=chunk.keyframe))
        elif self._open and chunk.keyframe and self._segment_us + self._open_us >= self._cut_us:
            out.append(self._close(self._open, self._open_us, ends_segment=True))
            self._open, self._open_us = [], 0
        elif self._open and not self.parts_off and self._open_us + chunk.duration_us > self.part_target_us:
            out.append(self._close(self._open, self._open_us, ends_segment=False))  # the chunk would not fit
            self._open, self._open_us = [], 0
        self._open.append(chunk)
        self._open_us += chunk.duration_us
        if not self.parts_off and self._open_us + chunk.duration_us > self.part_target_us:
            # Full: one more chunk like this one would pass the part target.
            if self._segment_us + self._open_us >= self._cut_us:
                self._held, self._held_us = self._open, self._open_us  # may end its segment: wait for the next chunk
            else:
                out.append(self._close(self._open, self._open_us, ends_segment=False))
            self._open, self._open_us = [], 0
        return out

    def end(self) -> list[PackagedPart]:
        """The broadcast ends: what is buffered as a final part ending its segment (empty list when nothing is)."""
        chunks, duration = (self._held, self._held_us) if self._held is not None else (self._open, self._open_us)
        self._held, self._open, self._open_us = None, [], 0
        if not chunks:
            return []
        return [self._close(chunks, duration, ends_segment=True)]

    def _close(self, chunks: list[Chunk], duration_us: int, *, ends_segment: bool) -> PackagedPart:
        part = PackagedPart(
            media_sequence=self._msn, part_index=self._index, duration_us=duration_us,
            independent=chunks[0].keyframe, first_chunk_sequence=chunks[0].sequence, chunk_count=len(chunks),
            data=b"".join(c.data for c in chunks), ends_segment=ends_segment)
        self._committed_sequence = chunks[-1].sequence + 1
        if ends_segment:
            self._msn, self._index, self._segment_us = self._msn + 1, 0, 0
        else:
            self._index += 1
            self._segment_us += duration_us
        return part
