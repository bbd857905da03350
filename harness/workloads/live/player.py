"""What a viewer checks and how an LL-HLS player walks a stream: the no-gap invariant and the next part to fetch.

**No gap** (:class:`Continuity`): chunk sequences run from 0 without gaps
over a stream (live.proto, ``Part.first_chunk_sequence``), and parts follow
each other by reference: ``(msn, i + 1)``, or ``(msn + 1, 0)`` after a part
that ``ends_segment``. Every part a viewer receives must continue the one
before exactly: its first chunk is one past the previous part's last, and
its reference is the one after the previous part's. A part that skips ahead
is a **gap** (chunks the viewer never saw), one that goes back a
**duplicate**. A viewer that reconnects resumes from :attr:`Continuity.resume`,
the part after its last one, so a reconnect must not make a gap either.

**The LL-HLS player** (RFC 8216bis §6.2.5.2 and Apple's LL-HLS player
model): it loads the playlist once without blocking and starts at the live
edge, the last independent part listed (:func:`live_edge_start`: a viewer
can only start decoding at a keyframe); then for each next part it asks for
the part after the one it has (:func:`next_ref`: the next index, or part 0
of the next segment after a part that ended one, which is what the
playlist's EXT-X-PRELOAD-HINT names, :func:`listed_after`).
"""

from __future__ import annotations

from casemesh.services.live.contract import LivePlaylist

OK = "OK"
GAP = "GAP"
DUPLICATE = "DUPLICATE"


def next_ref(media_sequence: int, part_index: int, ends_segment: bool) -> tuple[int, int]:
    """The part after ``(media_sequence, part_index)``."""
    return (media_sequence + 1, 0) if ends_segment else (media_sequence, part_index + 1)


def _listed(playlist: LivePlaylist) -> list[tuple[int, int, bool]]:
    """Every part the playlist lists, in order: ``(msn, index, independent)``."""
    parts = [(p.media_sequence, p.part_index, p.independent) for s in playlist.segments for p in s.parts]
    parts.extend((p.media_sequence, p.part_index, p.independent) for p in playlist.open_parts)
    return parts


def live_edge_start(playlist: LivePlaylist) -> tuple[int, int]:
    """Where a new viewer starts: the last independent part listed; without one, the preload hint (the next part,
    which starts a segment when no part of the open segment is listed); ``ValueError`` for a playlist with
    neither (an ended stream without parts listed)."""
    for msn, index, independent in reversed(_listed(playlist)):
        if independent:
            return msn, index
    if playlist.preload_hint is not None:
        return playlist.preload_hint
    raise ValueError("the playlist lists no independent part and no preload hint")


def listed_after(playlist: LivePlaylist, ref: tuple[int, int]) -> tuple[int, int] | None:
    """The part after ``ref`` as the playlist says it: the next part listed; after the last one listed, the
    preload hint; part 0 of the next segment after the last part of a complete segment whose successor is not
    listed yet. ``None`` when the playlist cannot say (``ref`` not listed, or an ended stream's last part)."""
    listed = _listed(playlist)
    for position, (msn, index, _) in enumerate(listed):
        if (msn, index) != ref:
            continue
        if position + 1 < len(listed):
            return listed[position + 1][0], listed[position + 1][1]
        if playlist.preload_hint is not None:
            return playlist.preload_hint
        complete = any(s.media_sequence == msn for s in playlist.segments)
        return (msn + 1, 0) if complete and not playlist.ended else None
    return None


class Continuity:
    """One viewer's no-gap check over the parts it receives (see the module docstring)."""

    __slots__ = ("next_chunk", "next_part", "parts", "gaps", "duplicates", "missing_chunks")

    def __init__(self) -> None:
        #: The chunk sequence and part reference the next part must start at (``None`` before the first part).
        self.next_chunk: int | None = None
        self.next_part: tuple[int, int] | None = None
        self.parts = 0
        self.gaps = 0
        self.duplicates = 0
        self.missing_chunks = 0

    def check(self, media_sequence: int, part_index: int, first_chunk: int, chunk_count: int, ends_segment: bool) -> str:
        """Take one received part; returns OK, GAP or DUPLICATE (then counted). A duplicate that brings nothing new
        leaves the position as it was; a gap moves it past the part (the viewer plays on from there)."""
        expected_chunk, expected_part = self.next_chunk, self.next_part
        ref = (media_sequence, part_index)
        outcome = OK
        if expected_chunk is not None:
            if first_chunk > expected_chunk or (first_chunk == expected_chunk and expected_part is not None and ref > expected_part):
                outcome = GAP
                self.gaps += 1
                self.missing_chunks += max(first_chunk - expected_chunk, 0)
            elif first_chunk < expected_chunk or (expected_part is not None and ref < expected_part):
                outcome = DUPLICATE
                self.duplicates += 1
                if first_chunk + chunk_count <= expected_chunk:
                    return outcome
            elif expected_part is not None and ref != expected_part:  # pragma: no cover - ordered tuples: > or < above
                outcome = GAP
        self.parts += 1
        self.next_chunk = first_chunk + chunk_count
        self.next_part = next_ref(media_sequence, part_index, ends_segment)
        return outcome

    @property
    def resume(self) -> tuple[int, int] | None:
        """The part a reconnecting viewer asks for (``from``): the one after its last (``None`` before any part)."""
        return self.next_part

    @property
    def clean(self) -> bool:
        """No gap and no duplicate so far."""
        return not self.gaps and not self.duplicates
