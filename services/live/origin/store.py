"""The live origin's domain without gRPC: streams, their DVR window of parts, blocking waits and part watchers.

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming |
LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers".
:class:`StreamStore` is what LiveOriginService (:mod:`.service`) serves:

- **Append** (:meth:`StreamStore.append`): parts come in order, the next
  index of the open segment or part 0 of the next segment after a part that
  ``ends_segment``; the part's first chunk sequence must be the stream's
  ``next_chunk_sequence``; a retry identical to the last part appended is
  answered ``duplicate`` (the ingest server retries an append whose answer
  it lost). The first part moves the stream WAITING → LIVE.
- **DVR window** (``dvr_window_s``): whole segments that ended more than the
  window before the stream's media end (media time, the sum of part
  durations) are dropped, keeping at least the last complete segment and
  the open one.
- **Blocking** (RFC 8216bis §6.2.5.2, blocking playlist reload; the preload
  hint's part, §4.4.5.3): :meth:`StreamStore.wait_for` returns when a part
  exists. Waiters of a stream share one future, replaced at every publish
  (and resolved at EndStream and shutdown), and re-check after each wake:
  one wake-up per waiter per part, no per-waiter bookkeeping. A wait lasts
  at most (parts between the last published part and the one asked +
  :data:`~services.live.contract.BLOCK_PART_TARGETS`) × the part target,
  then :class:`PartTimeout` (DEADLINE_EXCEEDED; §6.2.5.2 lets a server
  answer 503 after three target durations). A ref more than two segments
  past the last published one (§6.2.5.2: "MUST return ... 400" for an
  ``_HLS_msn`` more than two segments ahead), or with a part index no
  segment can reach, is ``InvalidArgument``; a part older than the DVR
  window, or one an ended stream will never have, ``NotFound``.
- **Playlist** (:meth:`StreamStore.playlist`): rendered with
  :func:`services.live.contract.render_playlist` and cached per (last part,
  ended): N blocked reloads woken by one part render it once.
- **Watchers** (:meth:`StreamStore.watch`): a cursor over the stream's
  parts, in order without gaps or duplicates, from a part of the DVR window
  or from the next part published; a watcher more than
  :data:`~services.live.contract.ORIGIN_WATCH_MAX_LAG_PARTS` parts behind
  the parts published since it started (or behind the DVR window) ends with
  :class:`WatchEnded` (:data:`OVERFLOW`: RESOURCE_EXHAUSTED); after the last
  part of an ended stream :meth:`PartWatcher.next` returns an empty list
  (the RPC ends OK); at shutdown :data:`SHUTDOWN` (UNAVAILABLE).

Not durable (origin.proto): a restarted origin has no streams.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ...runtime.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted
from ..contract import (
    BLOCK_PART_TARGETS,
    ORIGIN_WATCH_MAX_LAG_PARTS,
    PlaylistPart,
    PlaylistSegment,
    PlaylistState,
    render_playlist,
)

OVERFLOW = "overflow"
SHUTDOWN = "shutdown"

Ref = tuple[int, int]  # (media sequence, part index)


class StreamState(Enum):
    """A stream's state (``casemesh.live.v1.StreamState``)."""

    WAITING = 1
    LIVE = 2
    ENDED = 3


class PartTimeout(Exception):
    """A blocked request's part was not published in time (the stream stalled) → ``DEADLINE_EXCEEDED``."""


class StoreClosed(Exception):
    """The origin is shutting down → ``UNAVAILABLE``."""


class WatchEnded(Exception):
    """A watch is over: ``reason`` :data:`OVERFLOW` (``RESOURCE_EXHAUSTED``) or :data:`SHUTDOWN` (``UNAVAILABLE``)."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class PartRecord:
    """One published part (``casemesh.live.v1.Part``); ``number`` is its ordinal in the stream (0, 1, 2, ...)."""

    stream_id: str
    media_sequence: int
    part_index: int
    duration_us: int
    independent: bool
    first_chunk_sequence: int
    chunk_count: int
    data: bytes
    ends_segment: bool
    published_unix_ms: int = 0
    number: int = 0

    @property
    def ref(self) -> Ref:
        return self.media_sequence, self.part_index

    def same_content(self, other: PartRecord) -> bool:
        """True when ``other`` carries the same part (a retry): everything but the origin's own fields."""
        return (self.ref == other.ref and self.duration_us == other.duration_us
                and self.independent == other.independent and self.first_chunk_sequence == other.first_chunk_sequence
                and self.chunk_count == other.chunk_count and self.ends_segment == other.ends_segment
                and self.data == other.data)


@dataclass(frozen=True, slots=True)
class StreamView:
    """A stream's state as ``casemesh.live.v1.StreamInfo`` says it (``last_part`` None while WAITING)."""

    stream_id: str
    broadcaster_id: str
    title: str
    state: StreamState
    part_target_ms: int
    segment_target_ms: int
    next_chunk_sequence: int
    first_media_sequence: int
    last_part: Ref | None
    dvr_window_s: int
    next_part: Ref
    open_segment_duration_us: int


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What :meth:`StreamStore.append` did: ``duplicate`` for a retry of the last part; the next chunk sequence."""

    duplicate: bool
    next_chunk_sequence: int


@dataclass(frozen=True, slots=True)
class RenderedPlaylist:
    """A rendered LL-HLS media playlist, the last part it lists and the stream's state when it was rendered."""

    text: str
    last_part: Ref
    state: StreamState


@dataclass(frozen=True, slots=True)
class SegmentData:
    """A complete segment: media sequence, duration (µs), first chunk, chunk count and its parts' bytes."""

    media_sequence: int
    duration_us: int
    first_chunk_sequence: int
    chunk_count: int
    data: bytes


class StoreObserver:
    """What the store reports (no-ops here; :class:`~.metrics.OriginMetrics` exports them)."""

    def appended(self, size_bytes: int, duplicate: bool) -> None: ...

    def blocked(self, kind: str, delta: int) -> None: ...

    def block_waited(self, kind: str, seconds: float) -> None: ...

    def watchers(self, delta: int) -> None: ...

    def watcher_dropped(self) -> None: ...

    def dvr_bytes(self, delta: int) -> None: ...

    def stream_state(self, old: StreamState | None, new: StreamState | None) -> None: ...

    def playlist(self, cache_hit: bool) -> None: ...


@dataclass(slots=True)
class _Segment:
    media_sequence: int
    start_us: int  # media time of its first part
    parts: list[PartRecord] = field(default_factory=list)
    duration_us: int = 0
    complete: bool = False
    listed: PlaylistSegment | None = None  # its playlist line, made once when complete


class _Stream:
    __slots__ = ("stream_id", "broadcaster_id", "title", "state", "part_target_ms", "segment_target_ms",
                 "segments", "parts", "first_number", "next_number", "next_part", "next_chunk_sequence",
                 "media_end_us", "data_bytes", "published", "watchers", "cache", "max_part_index",
                 "parts_per_segment", "active_ms")

    def __init__(self, stream_id: str, broadcaster_id: str, title: str, part_target_ms: int,
                 segment_target_ms: int) -> None:
        self.stream_id = stream_id
        self.broadcaster_id = broadcaster_id
        self.title = title
        self.state = StreamState.WAITING
        #: When it was registered, last had a part appended, or ended (the store's clock, ms): for :meth:`StreamStore.expire`.
        self.active_ms = 0
        self.part_target_ms = part_target_ms
        self.segment_target_ms = segment_target_ms
        self.segments: deque[_Segment] = deque()  # the DVR window; only the last may be incomplete
        self.parts: deque[PartRecord] = deque()  # the same parts in order: parts[i].number == first_number + i
        self.first_number = 0
        self.next_number = 0
        self.next_part: Ref = (0, 0)
        self.next_chunk_sequence = 0
        self.media_end_us = 0
        self.data_bytes = 0
        self.published: asyncio.Future | None = None  # resolved (and dropped) at the next publish, end or close
        self.watchers: set[PartWatcher] = set()
        self.cache: tuple[tuple[Ref, bool], RenderedPlaylist] | None = None
        #: The highest part index a request may name in a segment not yet open (segments close at a keyframe after
        #: ~the target; a keyframe interval of twice the target still fits); the open segment's next part plus as
        #: many again (the open segment of a stream with rarer keyframes grows on); a larger index is impossible.
        self.parts_per_segment = max(1, math.ceil(segment_target_ms / part_target_ms))
        self.max_part_index = (segment_target_ms // part_target_ms) * 2 + 2

    @property
    def open_segment(self) -> _Segment | None:
        if self.segments and not self.segments[-1].complete:
            return self.segments[-1]
        return None

    @property
    def last_part(self) -> PartRecord | None:
        return self.parts[-1] if self.parts else None

    def wake(self) -> None:
        """Resolve the shared future: every waiter and watcher re-checks."""
        future, self.published = self.published, None
        if future is not None and not future.done():
            future.set_result(None)

    def changed(self) -> asyncio.Future:
        """The future resolved at the next publish, end or shutdown."""
        if self.published is None:
            self.published = asyncio.get_running_loop().create_future()
        return self.published


class PartWatcher:
    """One WatchParts subscription: a cursor over its stream's parts (:meth:`next`)."""

    def __init__(self, store: StreamStore, stream: _Stream, cursor: int, max_lag_parts: int) -> None:
        self._store = store
        self._stream = stream
        self.cursor = cursor  # number of the next part to hand out
        self._live_from = stream.next_number  # lag counts the parts published after the watch began
        self._max_lag = max_lag_parts
        self.ended: WatchEnded | None = None

    @property
    def stream_id(self) -> str:
        return self._stream.stream_id

    @property
    def lag(self) -> int:
        """Parts published since the watch began and not yet handed out."""
        return self._stream.next_number - max(self.cursor, self._live_from)

    def _check(self) -> None:
        stream = self._stream
        if self.ended is None and (self.lag > self._max_lag or self.cursor < stream.first_number):
            self.ended = WatchEnded(OVERFLOW, f"the watcher fell more than {self._max_lag} parts behind stream "
                                              f"{stream.stream_id!r}; watch again from the last part received")
            self._store._observer.watcher_dropped()

    async def next(self, most: int = 32) -> list[PartRecord]:
        """The next parts in order (1 to ``most``), waiting for one; ``[]`` once the stream ended and every part was
        handed out; :class:`WatchEnded` when dropped or at shutdown."""
        stream = self._stream
        while True:
            if self.ended is not None:
                raise self.ended
            if self._store.closed:
                raise WatchEnded(SHUTDOWN, "the origin is shutting down; watch again from the last part received")
            if self.cursor < stream.next_number:
                start = self.cursor - stream.first_number
                count = min(most, stream.next_number - self.cursor)
                batch = [stream.parts[start + i] for i in range(count)]
                self.cursor += count
                return batch
            if stream.state is StreamState.ENDED:
                return []
            await asyncio.shield(stream.changed())


class StreamStore:
    """Every stream of the origin, in memory (module docstring).

    ``dvr_window_s`` is the DVR window; ``max_streams`` the most streams
    held (when full, the oldest ENDED stream is forgotten to make room);
    ``watch_max_lag_parts`` how far a watcher may fall behind; ``clock_ms``
    gives ``published_unix_ms``.
    """

    def __init__(self, *, dvr_window_s: int = 60, max_streams: int = 10_000,
                 watch_max_lag_parts: int = ORIGIN_WATCH_MAX_LAG_PARTS, observer: StoreObserver | None = None,
                 clock_ms: Callable[[], int] | None = None) -> None:
        self.dvr_window_s = dvr_window_s
        self.max_streams = max_streams
        self._window_us = dvr_window_s * 1_000_000
        self._watch_max_lag = watch_max_lag_parts
        self._observer = observer or StoreObserver()
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._streams: dict[str, _Stream] = {}
        self.closed = False

    def __len__(self) -> int:
        return len(self._streams)

    def _get(self, stream_id: str) -> _Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise NotFound(f"no stream {stream_id!r}")
        return stream

    # -- streams ----------------------------------------------------------------------------------------------------

    def register(self, stream_id: str, broadcaster_id: str, title: str, part_target_ms: int,
                 segment_target_ms: int) -> StreamView:
        """A new WAITING stream (arguments validated by the caller); ``AlreadyExists`` for an id in use,
        ``ResourceExhausted`` when ``max_streams`` are held and none has ended."""
        if stream_id in self._streams:
            raise AlreadyExists(f"stream {stream_id!r} exists already")
        if not 0 < part_target_ms <= segment_target_ms:
            raise ValueError("need 0 < part_target_ms <= segment_target_ms")
        if len(self._streams) >= self.max_streams:
            self._forget_oldest_ended()
        stream = self._streams[stream_id] = _Stream(stream_id, broadcaster_id, title, part_target_ms,
                                                    segment_target_ms)
        stream.active_ms = self._clock_ms()
        self._observer.stream_state(None, stream.state)
        return self._view(stream)

    def _forget_oldest_ended(self) -> None:
        for old in self._streams.values():  # registration order
            if old.state is StreamState.ENDED and not old.watchers:
                self._forget(old)
                return
        raise ResourceExhausted(f"the origin holds {self.max_streams:,} streams, none of them ended")

    def _forget(self, stream: _Stream) -> None:
        del self._streams[stream.stream_id]
        self._observer.stream_state(stream.state, None)
        self._observer.dvr_bytes(-stream.data_bytes)
        stream.wake()  # blocked requests re-check: NotFound

    def expire(self, idle_end_s: float) -> tuple[int, int]:
        """End every stream idle (no part appended, or none since it was registered) for ``idle_end_s`` seconds, and
        forget every ended stream nobody watches whose end is a DVR window old; returns ``(ended, forgotten)``.

        A broadcaster that went away without ``end`` (or never came) would otherwise keep its stream LIVE, with a
        DVR window of media, for as long as the origin runs.
        """
        now = self._clock_ms()
        ended = forgotten = 0
        for stream in list(self._streams.values()):
            idle_ms = now - stream.active_ms
            if stream.state is not StreamState.ENDED:
                if idle_ms >= idle_end_s * 1000:
                    self.end(stream.stream_id)
                    ended += 1
            elif not stream.watchers and idle_ms >= self.dvr_window_s * 1000:
                self._forget(stream)
                forgotten += 1
        return ended, forgotten

    def describe(self, stream_id: str) -> StreamView:
        """The stream's state; ``NotFound``."""
        return self._view(self._get(stream_id))

    def _view(self, stream: _Stream) -> StreamView:
        last = stream.last_part
        open_segment = stream.open_segment
        return StreamView(
            stream_id=stream.stream_id, broadcaster_id=stream.broadcaster_id, title=stream.title, state=stream.state,
            part_target_ms=stream.part_target_ms, segment_target_ms=stream.segment_target_ms,
            next_chunk_sequence=stream.next_chunk_sequence,
            first_media_sequence=stream.segments[0].media_sequence if stream.segments else stream.next_part[0],
            last_part=last.ref if last is not None else None, dvr_window_s=self.dvr_window_s,
            next_part=stream.next_part,
            open_segment_duration_us=open_segment.duration_us if open_segment is not None else 0)

    def end(self, stream_id: str) -> StreamView:
        """Mark the stream ENDED (idempotent): its open segment is complete; waiters and watchers re-check."""
        stream = self._get(stream_id)
        if stream.state is not StreamState.ENDED:
            self._observer.stream_state(stream.state, StreamState.ENDED)
            stream.state = StreamState.ENDED
            stream.active_ms = self._clock_ms()
            open_segment = stream.open_segment
            if open_segment is not None:
                self._complete(open_segment)
            stream.wake()
        return self._view(stream)

    # -- append -----------------------------------------------------------------------------------------------------

    def append(self, part: PartRecord) -> AppendResult:
        """Publish ``part`` (fields validated by the caller) and wake its waiters; rules in the module docstring.

        ``NotFound`` for an unknown stream; ``FailedPrecondition`` when the
        stream ended or the part (or its first chunk) is not the next one;
        ``InvalidArgument`` (``part.ref``) for a segment's first part that
        is not independent.
        """
        stream = self._get(part.stream_id)
        last = stream.last_part
        if last is not None and last.same_content(part):
            self._observer.appended(len(part.data), True)
            return AppendResult(True, stream.next_chunk_sequence)
        if stream.state is StreamState.ENDED:
            raise FailedPrecondition(f"stream {stream.stream_id!r} has ended")
        if part.ref != stream.next_part:
            msn, index = stream.next_part
            raise FailedPrecondition(f"part {part.media_sequence}/{part.part_index} is not the next one: the stream "
                                     f"expects part {index} of segment {msn}")
        if part.first_chunk_sequence != stream.next_chunk_sequence:
            raise FailedPrecondition(f"the part's first chunk is {part.first_chunk_sequence}; the stream expects "
                                     f"chunk {stream.next_chunk_sequence}")
        if part.part_index == 0 and not part.independent:
            raise InvalidArgument("part.ref", "part 0 of a segment must be independent (start with a keyframe)")
        record = PartRecord(
            stream_id=part.stream_id, media_sequence=part.media_sequence, part_index=part.part_index,
            duration_us=part.duration_us, independent=part.independent,
            first_chunk_sequence=part.first_chunk_sequence, chunk_count=part.chunk_count, data=part.data,
            ends_segment=part.ends_segment, published_unix_ms=self._clock_ms(), number=stream.next_number)
        stream.active_ms = record.published_unix_ms
        segment = stream.open_segment
        if segment is None:
            segment = _Segment(part.media_sequence, stream.media_end_us)
            stream.segments.append(segment)
        segment.parts.append(record)
        segment.duration_us += record.duration_us
        stream.parts.append(record)
        stream.next_number += 1
        stream.media_end_us += record.duration_us
        stream.next_chunk_sequence = record.first_chunk_sequence + record.chunk_count
        stream.data_bytes += len(record.data)
        self._observer.dvr_bytes(len(record.data))
        if record.ends_segment:
            self._complete(segment)
            stream.next_part = (record.media_sequence + 1, 0)
        else:
            stream.next_part = (record.media_sequence, record.part_index + 1)
        if stream.state is StreamState.WAITING:
            self._observer.stream_state(stream.state, StreamState.LIVE)
            stream.state = StreamState.LIVE
        self._trim(stream)
        for watcher in list(stream.watchers):
            watcher._check()
        stream.wake()
        self._observer.appended(len(record.data), False)
        return AppendResult(False, stream.next_chunk_sequence)

    @staticmethod
    def _complete(segment: _Segment) -> None:
        segment.complete = True
        segment.listed = PlaylistSegment(segment.media_sequence, segment.duration_us, tuple(
            PlaylistPart(p.media_sequence, p.part_index, p.duration_us, p.independent) for p in segment.parts))

    def _trim(self, stream: _Stream) -> None:
        """Drop whole segments that ended before the DVR window (media time), keeping the last complete one."""
        horizon_us = stream.media_end_us - self._window_us
        segments = stream.segments
        while len(segments) >= 2 and segments[1].complete and segments[0].start_us + segments[0].duration_us < horizon_us:
            dropped = segments.popleft()
            size = 0
            for _ in dropped.parts:
                size += len(stream.parts.popleft().data)
            stream.first_number += len(dropped.parts)
            stream.data_bytes -= size
            self._observer.dvr_bytes(-size)

    # -- reads ------------------------------------------------------------------------------------------------------

    def _locate(self, stream: _Stream, ref: Ref, field: str) -> PartRecord | None:
        """The published part ``ref``, or None when it may still come; ``NotFound`` / ``InvalidArgument`` as documented."""
        msn, index = ref
        if msn < 0 or index < 0:
            raise InvalidArgument(field, "media_sequence and part_index must be >= 0")
        segments = stream.segments
        if segments:
            first = segments[0].media_sequence
            if msn < first:
                raise NotFound(f"part {index} of segment {msn} left the DVR window of stream {stream.stream_id!r} "
                               f"(its first segment is {first})")
            offset = msn - first
            if offset < len(segments):
                segment = segments[offset]
                if index < len(segment.parts):
                    return segment.parts[index]
                if segment.complete:
                    ended = " (the stream has ended)" if stream.state is StreamState.ENDED else ""
                    raise NotFound(f"segment {msn} of stream {stream.stream_id!r} has {len(segment.parts)} parts; "
                                   f"there is no part {index}{ended}")
        if stream.state is StreamState.ENDED:
            raise NotFound(f"stream {stream.stream_id!r} has ended; it has no part {index} of segment {msn}")
        next_msn, next_index = stream.next_part
        published_msn = next_msn if next_index > 0 else next_msn - 1
        if msn > published_msn + 2:
            raise InvalidArgument(field, f"segment {msn} is more than two segments past the last published one "
                                         f"({published_msn})")
        # The open segment can grow past the usual part count (a broadcaster whose keyframes are further apart than
        # the segment target): a part up to max_part_index beyond its next one is still a possible request.
        limit = stream.max_part_index + (next_index if msn == next_msn else 0)
        if index > limit:
            raise InvalidArgument(field, f"part index {index} is past the {limit + 1} parts segment {msn} of this "
                                         f"stream can have")
        return None

    def _parts_until(self, stream: _Stream, ref: Ref) -> int:
        """How many parts must be published for ``ref`` to exist (estimated past the open segment)."""
        next_msn, next_index = stream.next_part
        msn, index = ref
        if msn == next_msn:
            return index - next_index + 1
        per = stream.parts_per_segment
        return max(per - next_index, 0) + (msn - next_msn - 1) * per + index + 1

    def block_limit_s(self, stream_id: str, ref: Ref) -> float:
        """How long a request for the unpublished ``ref`` may wait, in seconds."""
        stream = self._get(stream_id)
        return (max(self._parts_until(stream, ref), 1) + BLOCK_PART_TARGETS) * stream.part_target_ms / 1000

    def part(self, stream_id: str, ref: Ref, field: str = "ref") -> PartRecord | None:
        """The part if published, None if it may still come (errors as :meth:`wait_for`, without waiting)."""
        return self._locate(self._get(stream_id), ref, field)

    async def wait_for(self, stream_id: str, ref: Ref, timeout_s: float | None = None, *, field: str = "ref",
                       kind: str = "part") -> PartRecord:
        """The part ``ref``, waiting until it is published (module docstring for the limit).

        ``timeout_s`` shortens the wait (the caller's deadline). ``NotFound``
        for an unknown stream, a part out of the DVR window, or one the
        stream ended without; ``InvalidArgument`` naming ``field`` for a ref
        too far ahead or impossible; :class:`PartTimeout` when the wait runs
        out; :class:`StoreClosed` at shutdown. ``kind`` labels the metrics
        (``playlist`` or ``part``).
        """
        if self.closed:
            raise StoreClosed("the origin is shutting down")
        stream = self._get(stream_id)
        found = self._locate(stream, ref, field)
        if found is not None:
            return found
        loop = asyncio.get_running_loop()
        limit_s = (self._parts_until(stream, ref) + BLOCK_PART_TARGETS) * stream.part_target_ms / 1000
        if timeout_s is not None:
            limit_s = min(limit_s, timeout_s)
        started = loop.time()
        deadline = started + limit_s
        observer = self._observer
        observer.blocked(kind, 1)
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        await asyncio.shield(stream.changed())
                except TimeoutError:
                    raise PartTimeout(f"part {ref[1]} of segment {ref[0]} of stream {stream_id!r} was not published "
                                      f"within {limit_s * 1000:.0f} ms") from None
                if self.closed:
                    raise StoreClosed("the origin is shutting down")
                found = self._locate(stream, ref, field)
                if found is not None:
                    return found
        finally:
            observer.blocked(kind, -1)
            observer.block_waited(kind, loop.time() - started)

    def playlist(self, stream_id: str) -> RenderedPlaylist:
        """The stream's LL-HLS playlist (cached per last part and ended); ``FailedPrecondition`` while WAITING."""
        stream = self._get(stream_id)
        last = stream.last_part
        if last is None:
            if stream.state is StreamState.ENDED:
                raise NotFound(f"stream {stream_id!r} ended without publishing a part")
            raise FailedPrecondition(f"stream {stream_id!r} has no part yet (WAITING)")
        key = (last.ref, stream.state is StreamState.ENDED)
        cached = stream.cache
        if cached is not None and cached[0] == key:
            self._observer.playlist(True)
            return cached[1]
        open_segment = stream.open_segment
        complete = [s.listed for s in stream.segments if s.complete]
        open_parts = ([PlaylistPart(p.media_sequence, p.part_index, p.duration_us, p.independent)
                       for p in open_segment.parts] if open_segment is not None else [])
        text = render_playlist(PlaylistState(part_target_ms=stream.part_target_ms,
                                             segment_target_ms=stream.segment_target_ms, segments=complete,
                                             open_parts=open_parts, ended=key[1]))
        rendered = RenderedPlaylist(text, last.ref, stream.state)
        stream.cache = (key, rendered)
        self._observer.playlist(False)
        return rendered

    async def fetch_playlist(self, stream_id: str, block: Ref | None = None,
                             timeout_s: float | None = None) -> RenderedPlaylist:
        """:meth:`playlist`, after waiting for ``block`` when given (a blocking playlist reload)."""
        if block is not None:
            await self.wait_for(stream_id, block, timeout_s, field="block", kind="playlist")
        return self.playlist(stream_id)

    def segment(self, stream_id: str, media_sequence: int) -> SegmentData:
        """A complete segment of the DVR window; ``NotFound`` otherwise."""
        stream = self._get(stream_id)
        segments = stream.segments
        if segments:
            offset = media_sequence - segments[0].media_sequence
            if 0 <= offset < len(segments) and segments[offset].complete:
                segment = segments[offset]
                first = segment.parts[0]
                return SegmentData(media_sequence, segment.duration_us, first.first_chunk_sequence,
                                   sum(p.chunk_count for p in segment.parts),
                                   b"".join(p.data for p in segment.parts))
        raise NotFound(f"stream {stream_id!r} has no complete segment {media_sequence} in its DVR window")

    # -- watchers ---------------------------------------------------------------------------------------------------

    def watch(self, stream_id: str, start: Ref | None = None, field: str = "from") -> PartWatcher:
        """A watcher from part ``start`` (in the DVR window, or the next part to be published) or, None, from the
        next part published. ``NotFound`` for an unknown stream or a part out of the window or never to be;
        ``InvalidArgument`` naming ``field`` for a part past the next one."""
        if self.closed:
            raise StoreClosed("the origin is shutting down")
        stream = self._get(stream_id)
        cursor = stream.next_number
        if start is not None and start != stream.next_part:
            found = self._locate(stream, start, field)
            if found is None:
                raise InvalidArgument(field, f"part {start[1]} of segment {start[0]} is not published yet; the next "
                                             f"part is {stream.next_part[1]} of segment {stream.next_part[0]}")
            cursor = found.number
        watcher = PartWatcher(self, stream, cursor, self._watch_max_lag)
        stream.watchers.add(watcher)
        self._observer.watchers(1)
        return watcher

    def unwatch(self, watcher: PartWatcher) -> None:
        """Forget ``watcher`` (idempotent)."""
        stream = self._streams.get(watcher.stream_id)
        if stream is not None and watcher in stream.watchers:
            stream.watchers.discard(watcher)
            self._observer.watchers(-1)

    def close(self) -> None:
        """Shutdown: every blocked wait raises :class:`StoreClosed`, every watcher :class:`WatchEnded` (SHUTDOWN)."""
        self.closed = True
        for stream in self._streams.values():
            stream.wake()
