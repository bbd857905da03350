"""HLS playlists (RFC 8216): render master and media playlists, and parse them back.

Pure functions, no gRPC and no service state: the PlaybackService renders
with them, the harness's player parses with them (importing this module pulls
in only ``m3u8``, the ladder and the generated messages).

What is rendered (seed 004, "CDN Cache Hit Rate": versioned manifest URLs,
``?gen=N``, so a re-transcode never serves a stale manifest):

Master playlist (RFC 8216 §4.3.4.2, §8.4)::

    #EXTM3U
    #EXT-X-VERSION:3
    #EXT-X-STREAM-INF:BANDWIDTH=500000,RESOLUTION=640x360
    360p/index.m3u8?gen=2
    #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720
    720p/index.m3u8?gen=2

Media (variant) playlist (RFC 8216 §4.3.3, §8.2)::

    #EXTM3U
    #EXT-X-VERSION:3
    #EXT-X-TARGETDURATION:2
    #EXT-X-MEDIA-SEQUENCE:0
    #EXT-X-PLAYLIST-TYPE:VOD
    #EXTINF:2.000,
    seg-00000.ts?gen=2
    #EXTINF:1.500,
    seg-00001.ts?gen=2
    #EXT-X-ENDLIST

Version 3 because ``#EXTINF`` carries decimal durations (§4.3.1.2, §7:
"floating-point EXTINF duration values" need version 3). The target duration
is the longest segment rounded up (§4.3.3.1 requires each EXTINF, rounded to
the nearest integer, to be <= it; the ceiling always satisfies that). The
playlist type is VOD and the list ends with ``#EXT-X-ENDLIST`` (§4.3.3.5,
§4.3.3.4): transcoded videos never change, a new transcode is a new
generation with new URLs. URIs are relative to the playlist's own URL
(§4.1): the master is ``/v/{video_id}/master.m3u8?gen=N``, so a variant is
``/v/{video_id}/{rendition}/index.m3u8?gen=N`` and a segment
``/v/{video_id}/{rendition}/seg-00000.ts?gen=N``. ``#EXT-X-STREAM-INF`` has no
CODECS attribute (§4.3.4.2 says SHOULD) and the master no
``#EXT-X-INDEPENDENT-SEGMENTS`` (§4.3.5.1): the segments are synthetic bytes,
not an encoding whose codecs or key frames could be vouched for.

Parsing uses the ``m3u8`` library (globocom/m3u8, strict mode) and then
checks what this module needs on top: the ``#EXTM3U`` header, a BANDWIDTH on
every variant, a duration on every segment, the target-duration rule.
Errors raise :class:`PlaylistError` (a ``ValueError``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import m3u8

from casemesh.video.v1 import video_pb2

from ..ladder import BY_NAME, BY_RENDITION

#: ``#EXT-X-VERSION`` of every playlist rendered here (decimal EXTINF needs 3).
HLS_VERSION = 3

_VARIANT_URI_RE = re.compile(r"(?P<rendition>[0-9A-Za-z]+)/index\.m3u8\?gen=(?P<gen>[0-9]+)")
_SEGMENT_URI_RE = re.compile(r"seg-(?P<index>[0-9]{5,})\.ts\?gen=(?P<gen>[0-9]+)")


class PlaylistError(ValueError):
    """A playlist that is not valid HLS, or not of the shape this module renders."""


# ----------------------------------------------------------------------------- URLs


def master_url(video_id: str, generation: int) -> str:
    """The master playlist URL, ``/v/{video_id}/master.m3u8?gen={generation}`` (playback.proto)."""
    return f"/v/{video_id}/master.m3u8?gen={generation}"


def variant_uri(rendition_name: str, generation: int) -> str:
    """A variant's URI relative to the master: ``{rendition}/index.m3u8?gen={generation}`` (``720p/index.m3u8?gen=2``)."""
    return f"{rendition_name}/index.m3u8?gen={generation}"


def segment_uri(index: int, generation: int) -> str:
    """A segment's URI relative to its variant: ``seg-{index:05d}.ts?gen={generation}``."""
    return f"seg-{index:05d}.ts?gen={generation}"


def parse_variant_uri(uri: str) -> tuple[int, int]:
    """``(Rendition enum value, generation)`` of a variant URI such as ``720p/index.m3u8?gen=2``.

    Raises :class:`PlaylistError` for another shape or an unknown rendition name.
    """
    match = _VARIANT_URI_RE.fullmatch(uri)
    if match is None or match["rendition"] not in BY_NAME:
        raise PlaylistError(f"not a variant URI of a known rendition: {uri!r}")
    return BY_NAME[match["rendition"]].rendition, int(match["gen"])


def parse_segment_uri(uri: str) -> tuple[int, int]:
    """``(segment index, generation)`` of a segment URI such as ``seg-00003.ts?gen=2``.

    Raises :class:`PlaylistError` for another shape.
    """
    match = _SEGMENT_URI_RE.fullmatch(uri)
    if match is None:
        raise PlaylistError(f"not a segment URI: {uri!r}")
    return int(match["index"]), int(match["gen"])


# ----------------------------------------------------------------------------- rendering


def segment_durations_ms(rendition: video_pb2.RenditionInfo, video_duration_s: float) -> list[int]:
    """Duration in milliseconds of each segment of ``rendition``.

    Every segment but the last lasts ``segment_duration_ms``; the last lasts
    what is left of ``video_duration_s`` (ladder.segment_sizes cuts segments
    the same way). When that remainder is not in (0, segment_duration_ms]
    (a duration that does not match the segment count), the last segment's
    duration is derived from its size instead: ``size x 8 / bandwidth``.
    ``ValueError`` when the rendition has no segments or a non-positive
    segment duration or bandwidth.
    """
    sizes = list(rendition.segment_size_bytes)
    full_ms = rendition.segment_duration_ms
    if not sizes or full_ms <= 0 or rendition.bandwidth_bps <= 0:
        raise ValueError("a rendition needs segments, a positive segment_duration_ms and bandwidth_bps")
    last_ms = round(video_duration_s * 1000) - (len(sizes) - 1) * full_ms
    if not 0 < last_ms <= full_ms:
        last_ms = min(max(round(sizes[-1] * 8000 / rendition.bandwidth_bps), 1), full_ms)
    return [full_ms] * (len(sizes) - 1) + [last_ms]


def render_master(renditions: Sequence[video_pb2.RenditionInfo], generation: int) -> str:
    """The master playlist of one generation: one ``#EXT-X-STREAM-INF`` per rendition, lowest BANDWIDTH first.

    BANDWIDTH is the rendition's peak bit rate in bit/s and RESOLUTION its
    frame ``WIDTHxHEIGHT`` in pixels (RFC 8216 §4.3.4.2); ties in bandwidth
    keep ladder order. ``ValueError`` for an empty list or a rendition not on
    the ladder.
    """
    if not renditions:
        raise ValueError("a master playlist needs at least one rendition")
    lines = ["#EXTM3U", f"#EXT-X-VERSION:{HLS_VERSION}"]
    for info in sorted(renditions, key=lambda r: (r.bandwidth_bps, r.rendition)):
        rung = BY_RENDITION.get(info.rendition)
        if rung is None:
            raise ValueError(f"rendition {info.rendition} is not on the ladder")
        lines.append(f"#EXT-X-STREAM-INF:BANDWIDTH={info.bandwidth_bps},RESOLUTION={info.width_px}x{info.height_px}")
        lines.append(variant_uri(rung.name, generation))
    return "\n".join(lines) + "\n"


def render_media(durations_ms: Sequence[int], generation: int) -> str:
    """The VOD media playlist of segments lasting ``durations_ms`` (milliseconds each, > 0), in order.

    ``#EXT-X-TARGETDURATION`` is the longest duration rounded up to whole
    seconds (RFC 8216 §4.3.3.1); ``#EXT-X-MEDIA-SEQUENCE:0`` (§4.3.3.2);
    ``#EXTINF:<seconds, 3 decimals>,`` before each segment URI (§4.3.2.1);
    ``#EXT-X-PLAYLIST-TYPE:VOD`` (§4.3.3.5) and ``#EXT-X-ENDLIST`` (§4.3.3.4).
    ``ValueError`` for no segments or a duration <= 0.
    """
    if not durations_ms:
        raise ValueError("a media playlist needs at least one segment")
    if min(durations_ms) <= 0:
        raise ValueError("segment durations must be > 0 ms")
    target_s = -(-max(durations_ms) // 1000)  # ceiling of the longest segment, integer arithmetic
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{HLS_VERSION}",
        f"#EXT-X-TARGETDURATION:{target_s}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for index, duration_ms in enumerate(durations_ms):
        lines.append(f"#EXTINF:{duration_ms // 1000}.{duration_ms % 1000:03d},")
        lines.append(segment_uri(index, generation))
    lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Variant:
    """One ``#EXT-X-STREAM-INF`` entry: its URI, BANDWIDTH (bit/s) and RESOLUTION (pixels; 0 when absent)."""

    uri: str
    bandwidth_bps: int
    width_px: int
    height_px: int


@dataclass(frozen=True)
class MasterPlaylist:
    """A parsed master playlist: ``version`` (``#EXT-X-VERSION``, 1 when absent) and its variants in file order."""

    version: int
    variants: tuple[Variant, ...]


@dataclass(frozen=True)
class Segment:
    """One media segment: its URI and ``#EXTINF`` duration in seconds."""

    uri: str
    duration_s: float


@dataclass(frozen=True)
class MediaPlaylist:
    """A parsed media playlist.

    ``target_duration_s`` (``#EXT-X-TARGETDURATION``), ``media_sequence``
    (``#EXT-X-MEDIA-SEQUENCE``, 0 when absent), ``playlist_type`` (``"vod"``,
    ``"event"`` or None), ``ended`` (``#EXT-X-ENDLIST`` present), ``version``
    and the segments in order.
    """

    version: int
    target_duration_s: int
    media_sequence: int
    playlist_type: str | None
    ended: bool
    segments: tuple[Segment, ...]

    @property
    def duration_s(self) -> float:
        """Sum of the segment durations in seconds."""
        return math.fsum(s.duration_s for s in self.segments)


def load_playlist(text: str) -> m3u8.M3U8:
    """Parse ``text`` with the m3u8 library in strict mode; :class:`PlaylistError` when it is not a playlist (also the live LL-HLS reader's first step, services/live/contract.py)."""
    if not text.startswith("#EXTM3U"):  # RFC 8216 §4.3.1.1: the first line MUST be #EXTM3U
        raise PlaylistError("a playlist must start with #EXTM3U")
    try:
        return m3u8.M3U8(text, strict=True)
    except Exception as exc:  # noqa: BLE001 - m3u8 raises ParseError, ValueError, KeyError, TypeError...
        raise PlaylistError(f"invalid playlist: {type(exc).__name__}: {exc}") from None


def parse_master(text: str) -> MasterPlaylist:
    """Parse a master playlist; :class:`PlaylistError` when it is not one or a variant lacks BANDWIDTH."""
    playlist = load_playlist(text)
    if not playlist.is_variant or not playlist.playlists:
        raise PlaylistError("not a master playlist (no #EXT-X-STREAM-INF)")
    variants = []
    for entry in playlist.playlists:
        info = entry.stream_info
        if not info.bandwidth:
            raise PlaylistError(f"variant {entry.uri!r} has no BANDWIDTH")  # §4.3.4.2: REQUIRED
        width, height = info.resolution or (0, 0)
        variants.append(Variant(entry.uri, int(info.bandwidth), int(width), int(height)))
    return MasterPlaylist(playlist.version or 1, tuple(variants))


def parse_media(text: str) -> MediaPlaylist:
    """Parse a media playlist.

    :class:`PlaylistError` when it is a master playlist, has no segments, no
    ``#EXT-X-TARGETDURATION``, or a segment whose duration rounded to the
    nearest integer exceeds the target duration (RFC 8216 §4.3.3.1).
    """
    playlist = load_playlist(text)
    if playlist.is_variant:
        raise PlaylistError("a master playlist, not a media playlist")
    if not playlist.segments:
        raise PlaylistError("a media playlist without segments")
    if playlist.target_duration is None:
        raise PlaylistError("#EXT-X-TARGETDURATION is missing")  # §4.3.3.1: REQUIRED
    target = int(playlist.target_duration)
    segments = []
    for segment in playlist.segments:
        if segment.duration is None:
            raise PlaylistError(f"segment {segment.uri!r} has no #EXTINF duration")
        if math.floor(segment.duration + 0.5) > target:  # rounded to the nearest integer, halves up
            raise PlaylistError(f"segment {segment.uri!r} lasts {segment.duration} s, more than the target duration {target} s")
        segments.append(Segment(segment.uri, float(segment.duration)))
    return MediaPlaylist(playlist.version or 1, target, int(playlist.media_sequence or 0),
                         playlist.playlist_type, bool(playlist.is_endlist), tuple(segments))
