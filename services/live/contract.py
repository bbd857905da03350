"""The live-streaming contract's rules that clients and servers both apply (part of the contract: protos/casemesh/live/v1).

Imported by the live services and by the live workload alike, and by
nothing else of either side; a client in another language applies the same
rules, which the protos quote in their field comments.

Limits:

- IDs (stream, user, client message): 1 to 64 characters of ``[A-Za-z0-9_-]``.
- ``MAX_TITLE_CHARS`` 140; ``MAX_CHAT_TEXT_CHARS`` 500 (Twitch's limit for a
  chat message); ``MAX_ROOM_MEMBERS`` 499 besides the broadcaster (the chat
  case study's 500-member groups, services/chat/contract.py).
- A chunk: 1 to ``MAX_CHUNK_BYTES`` bytes, 1 to ``MAX_CHUNK_DURATION_US`` µs.
- Part target 50 ms to 10 s, segment target 500 ms to 10 s, part <= segment.
- A blocked request (a playlist reload or a part not yet published) waits at
  most (the parts still to come before it + ``BLOCK_PART_TARGETS``) part
  target durations from its arrival: ``BLOCK_PART_TARGETS`` past the time the
  part was due when parts come on schedule (RFC 8216bis §6.2.5.2 lets a
  server answer 503 after 3 target durations; here DEADLINE_EXCEEDED).

The LL-HLS media playlist (RFC 8216bis, "HTTP Live Streaming 2nd Edition",
§4.4.3.7 EXT-X-PART-INF, §4.4.3.8 EXT-X-SERVER-CONTROL, §4.4.4.9 EXT-X-PART,
§4.4.5.3 EXT-X-PRELOAD-HINT), rendered by :func:`render_playlist` and read by
:func:`parse_playlist`::

    #EXTM3U
    #EXT-X-VERSION:9
    #EXT-X-TARGETDURATION:2
    #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600
    #EXT-X-PART-INF:PART-TARGET=0.200
    #EXT-X-MEDIA-SEQUENCE:41
    #EXTINF:2.000,
    seg-41.ts
    #EXT-X-PART:DURATION=0.200,URI="part-42-0.ts",INDEPENDENT=YES
    ...
    #EXTINF:2.000,
    seg-42.ts
    #EXT-X-PART:DURATION=0.200,URI="part-43-0.ts",INDEPENDENT=YES
    #EXT-X-PART:DURATION=0.200,URI="part-43-1.ts"
    #EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-43-2.ts"

Segments of the DVR window are listed whole; parts only for the segments
that end within ``PART_LIST_TARGET_DURATIONS`` target durations of the
playlist's end and for the open segment (§4.4.4.9: parts older than that
SHOULD be removed). PART-HOLD-BACK is 3 part targets (§4.4.3.8: at least
twice, SHOULD be three times). An ended stream's playlist carries
``#EXT-X-ENDLIST`` and no preload hint. Version 9: the minimum the
specification's LL-HLS examples use. The URIs map onto the edge's RPCs:
``part-{msn}-{index}.ts`` is GetPart, ``seg-{msn}.ts`` GetSegment. Parsing
reuses the video platform's HLS reader (services/video/playback/hls.py, the
``m3u8`` library in strict mode); errors raise
:class:`~services.video.playback.hls.PlaylistError`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..video.playback.hls import PlaylistError, load_playlist

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_TITLE_CHARS = 140
MAX_CHAT_TEXT_CHARS = 500
MAX_ROOM_MEMBERS = 499
MAX_CHUNK_BYTES = 1_048_576
MAX_CHUNK_DURATION_US = 1_000_000
MIN_PART_TARGET_MS, MAX_PART_TARGET_MS = 50, 10_000
MIN_SEGMENT_TARGET_MS, MAX_SEGMENT_TARGET_MS = 500, 10_000
BLOCK_PART_TARGETS = 3
PART_LIST_TARGET_DURATIONS = 3
PART_HOLD_BACK_PART_TARGETS = 3
ORIGIN_WATCH_MAX_LAG_PARTS = 256
EDGE_VIEWER_MAX_LAG_PARTS = 64
HLS_VERSION = 9

_PART_URI_RE = re.compile(r"part-(?P<msn>[0-9]+)-(?P<part>[0-9]+)\.ts")
_SEGMENT_URI_RE = re.compile(r"seg-(?P<msn>[0-9]+)\.ts")

__all__ = ["PlaylistError"]  # re-exported: what parse_playlist raises


def is_id(value: str) -> bool:
    """True when ``value`` is 1 to 64 characters of [A-Za-z0-9_-]."""
    return bool(ID_PATTERN.fullmatch(value))


def part_uri(media_sequence: int, part_index: int) -> str:
    """``part-{msn}-{index}.ts``: the URI of a part (GetPart)."""
    return f"part-{media_sequence}-{part_index}.ts"


def segment_uri(media_sequence: int) -> str:
    """``seg-{msn}.ts``: the URI of a whole segment (GetSegment)."""
    return f"seg-{media_sequence}.ts"


def parse_part_uri(uri: str) -> tuple[int, int]:
    """``(media sequence, part index)`` of ``part-{msn}-{index}.ts``; :class:`PlaylistError` for another shape."""
    match = _PART_URI_RE.fullmatch(uri)
    if match is None:
        raise PlaylistError(f"not a part URI: {uri!r}")
    return int(match["msn"]), int(match["part"])


def parse_segment_uri(uri: str) -> int:
    """The media sequence of ``seg-{msn}.ts``; :class:`PlaylistError` for another shape."""
    match = _SEGMENT_URI_RE.fullmatch(uri)
    if match is None:
        raise PlaylistError(f"not a segment URI: {uri!r}")
    return int(match["msn"])


def _seconds(duration_us: int) -> str:
    """Microseconds as decimal seconds with 3 decimals, rounded to the millisecond (``200000`` → ``0.200``)."""
    ms = (duration_us + 500) // 1000
    return f"{ms // 1000}.{ms % 1000:03d}"


# ----------------------------------------------------------------------------- the playlist's model


@dataclass(frozen=True)
class PlaylistPart:
    """One EXT-X-PART: its media sequence, index, duration (µs) and INDEPENDENT flag."""

    media_sequence: int
    part_index: int
    duration_us: int
    independent: bool


@dataclass(frozen=True)
class PlaylistSegment:
    """One segment line: media sequence, duration (µs) and the parts listed for it (may be empty)."""

    media_sequence: int
    duration_us: int
    parts: tuple[PlaylistPart, ...] = ()


@dataclass(frozen=True)
class LivePlaylist:
    """An LL-HLS media playlist.

    ``segments`` are the complete segments in order; ``open_parts`` the
    parts of the segment still being published (media sequence one past the
    last complete segment); ``preload_hint`` the ``(msn, part)`` of the next
    part (None once ended); ``part_target_ms`` and ``target_duration_s`` the
    EXT-X-PART-INF and EXT-X-TARGETDURATION values; ``part_hold_back_ms`` the
    EXT-X-SERVER-CONTROL PART-HOLD-BACK.
    """

    target_duration_s: int
    part_target_ms: int
    part_hold_back_ms: int
    can_block_reload: bool
    media_sequence: int
    segments: tuple[PlaylistSegment, ...]
    open_parts: tuple[PlaylistPart, ...] = ()
    preload_hint: tuple[int, int] | None = None
    ended: bool = False
    version: int = HLS_VERSION

    @property
    def last_part(self) -> tuple[int, int] | None:
        """``(msn, part)`` of the last part listed (None when no part is listed)."""
        if self.open_parts:
            last = self.open_parts[-1]
            return last.media_sequence, last.part_index
        for segment in reversed(self.segments):
            if segment.parts:
                return segment.parts[-1].media_sequence, segment.parts[-1].part_index
        return None


@dataclass
class PlaylistState:
    """What :func:`render_playlist` renders: the stream's targets, its DVR segments and its open segment's parts."""

    part_target_ms: int
    segment_target_ms: int
    segments: Sequence[PlaylistSegment] = field(default_factory=list)
    open_parts: Sequence[PlaylistPart] = field(default_factory=list)
    ended: bool = False


def render_playlist(state: PlaylistState) -> str:
    """The LL-HLS media playlist of ``state`` (grammar in the module docstring).

    EXT-X-TARGETDURATION is the longest segment, or the segment target when
    longer, rounded up to whole seconds (RFC 8216 §4.3.3.1). The preload hint
    names the next part: the one after the last open part, or part 0 of the
    next segment. ``ValueError`` when there is nothing to list (no segment and
    no part).
    """
    if not state.segments and not state.open_parts:
        raise ValueError("a live playlist needs at least one part")
    longest_us = max([s.duration_us for s in state.segments] + [state.segment_target_ms * 1000])
    target_s = max(1, math.ceil(longest_us / 1_000_000 - 1e-9))
    hold_back_us = state.part_target_ms * 1000 * PART_HOLD_BACK_PART_TARGETS
    first_msn = state.segments[0].media_sequence if state.segments else state.open_parts[0].media_sequence
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_s}",
        f"#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={_seconds(hold_back_us)}",
        f"#EXT-X-PART-INF:PART-TARGET={_seconds(state.part_target_ms * 1000)}",
        f"#EXT-X-MEDIA-SEQUENCE:{first_msn}",
    ]
    # Parts are listed for the segments ending within PART_LIST_TARGET_DURATIONS target durations of the end.
    window_us = PART_LIST_TARGET_DURATIONS * target_s * 1_000_000
    tail_us = sum(p.duration_us for p in state.open_parts)
    listed_from = len(state.segments)
    for index in range(len(state.segments) - 1, -1, -1):
        if tail_us >= window_us:
            break
        listed_from = index
        tail_us += state.segments[index].duration_us
    for index, segment in enumerate(state.segments):
        if index >= listed_from:
            lines.extend(_part_line(part) for part in segment.parts)
        lines.append(f"#EXTINF:{_seconds(segment.duration_us)},")
        lines.append(segment_uri(segment.media_sequence))
    lines.extend(_part_line(part) for part in state.open_parts)
    if state.ended:
        lines.append("#EXT-X-ENDLIST")
    else:
        if state.open_parts:
            last = state.open_parts[-1]
            hint = (last.media_sequence, last.part_index + 1)
        else:
            hint = (state.segments[-1].media_sequence + 1, 0)
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{part_uri(*hint)}"')
    return "\n".join(lines) + "\n"


def _part_line(part: PlaylistPart) -> str:
    independent = ",INDEPENDENT=YES" if part.independent else ""
    return f'#EXT-X-PART:DURATION={_seconds(part.duration_us)},URI="{part_uri(part.media_sequence, part.part_index)}"{independent}'


def _us(seconds: float) -> int:
    return round(float(seconds) * 1_000_000)


def _parts_of(entries, media_sequence: int) -> tuple[PlaylistPart, ...]:
    parts = []
    for entry in entries:
        msn, index = parse_part_uri(entry.uri)
        if msn != media_sequence:
            raise PlaylistError(f"part {entry.uri!r} is listed under segment {media_sequence}")
        if entry.duration is None:
            raise PlaylistError(f"part {entry.uri!r} has no DURATION")
        parts.append(PlaylistPart(msn, index, _us(entry.duration), entry.independent == "YES"))
    return tuple(parts)


def parse_playlist(text: str) -> LivePlaylist:
    """Parse an LL-HLS media playlist of the shape :func:`render_playlist` renders.

    :class:`PlaylistError` when it is not a media playlist, lacks
    EXT-X-TARGETDURATION, EXT-X-PART-INF or EXT-X-SERVER-CONTROL, has a URI
    of another shape, or lists a part under the wrong segment.
    """
    playlist = load_playlist(text)
    if playlist.is_variant:
        raise PlaylistError("a master playlist, not a media playlist")
    if playlist.target_duration is None:
        raise PlaylistError("#EXT-X-TARGETDURATION is missing")
    if getattr(playlist.part_inf, "part_target", None) is None:  # m3u8 gives {} when the tag is absent
        raise PlaylistError("#EXT-X-PART-INF is missing: not a low-latency playlist")
    control = playlist.server_control
    if control is None:
        raise PlaylistError("#EXT-X-SERVER-CONTROL is missing")
    media_sequence = int(playlist.media_sequence or 0)
    segments: list[PlaylistSegment] = []
    open_parts: tuple[PlaylistPart, ...] = ()
    for offset, entry in enumerate(playlist.segments):
        msn = media_sequence + offset
        if entry.uri is None:  # the open segment: parts only (m3u8 collects trailing parts into a segment without URI)
            open_parts = _parts_of(entry.parts, msn)
            continue
        if parse_segment_uri(entry.uri) != msn:
            raise PlaylistError(f"segment {entry.uri!r} is not media sequence {msn}")
        if entry.duration is None:
            raise PlaylistError(f"segment {entry.uri!r} has no #EXTINF duration")
        segments.append(PlaylistSegment(msn, _us(entry.duration), _parts_of(entry.parts, msn)))
    hint = None
    if playlist.preload_hint is not None and playlist.preload_hint.uri:
        hint = parse_part_uri(playlist.preload_hint.uri)
    hold_back = control.part_hold_back
    return LivePlaylist(
        target_duration_s=int(playlist.target_duration),
        part_target_ms=round(float(playlist.part_inf.part_target) * 1000),
        part_hold_back_ms=round(float(hold_back) * 1000) if hold_back is not None else 0,
        can_block_reload=control.can_block_reload == "YES",
        media_sequence=media_sequence,
        segments=tuple(segments),
        open_parts=open_parts,
        preload_hint=hint,
        ended=bool(playlist.is_endlist),
        version=int(playlist.version or 1),
    )
