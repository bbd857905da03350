"""A live edge node: coalesced origin requests, the part cache, one shared origin subscription per stream, WAN pacing.

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming":
"LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers".
The mechanism: **the origin sees about one request per part per edge,
whatever the number of viewers.** An LL-HLS audience is synchronised by
construction: every player of a stream asks for the same next part (the
preload hint) or the same blocking playlist reload (``_HLS_msn``,
``_HLS_part``, RFC 8216bis §6.2.5.2) at the same moment, and each such
request blocks until the part is published. An edge that forwarded them
would send the origin one request per viewer per part (a thundering herd
every 200 ms); this one

- **coalesces** identical concurrent origin requests
  (``runtime/coalescing.SingleFlight``, keyed by ``(stream, block ref)`` for
  playlists, ``(stream, msn, part)`` for parts, ``(stream, msn)`` for
  segments): N viewers blocked on the same part share one origin call;
- **caches** published parts and complete segments (they never change:
  ``video/edge/cache.SegmentCache``, the byte-bounded LRU), so later
  requests and DVR viewers are hits;
- **fans out** one origin ``WatchParts`` subscription per stream
  (:class:`StreamFeed`) to every StreamParts viewer of the stream on this
  edge: started with the first viewer, closed ``subscription_grace_ms``
  after the last one left, the parts it brings also fill the cache.

No gRPC here: the origin is an injected :class:`LiveOrigin` (service.py wraps
``LiveOriginService``), so the mechanism is testable alone.

StreamParts (:meth:`LiveEdgeNode.stream_parts`). Each stream's feed keeps a
ring of its ``ring_parts`` most recent parts, numbered by position. A
viewer is a cursor into that ring, not a copy: its per-viewer queue is the
parts between its cursor and the ring's end, and its length is the viewer's
lag, bounded by ``EDGE_VIEWER_MAX_LAG_PARTS`` (64, services/live/contract.py):
a live viewer further behind is dropped with RESOURCE_EXHAUSTED (it resumes
with ``from``) instead of being buffered without limit. Where a viewer
starts:

- ``from`` unset: at the latest independent part in the ring (a player
  needs a keyframe to start decoding), or the next part when there is none;
- ``from`` set: a viewer *catching up*, which moves by part reference
  (``next_ref``: the next index, or part 0 of the next segment after a part
  that ``ends_segment``), reading each part from the ring, else the cache,
  else the origin (``FetchPart``, coalesced and cached, so DVR viewers at the
  same position share it). It joins the live fan-out when its next part is
  in the ring within the lag limit, or is the feed's next part. The check
  and the switch happen without an ``await`` on one event loop, so a joining
  viewer sees no gap and no duplicate. A ``from`` outside the DVR window
  is the origin's NOT_FOUND.

The feed accepts parts in order only: a repeat (ref at or before the last
one received) is dropped, a skip is treated as a failure of the
subscription. A failed subscription (the origin restarted, the stream's
deadline, a skip, the origin dropping this edge as slow) is reopened with
``WatchParts(from = last part received)`` (the repeat of that part is
dropped), so viewers see no gap; after ``resubscribe_attempts`` failures in
a row without a new part the stream's viewers end UNAVAILABLE (they resume
with ``from``). An ended stream's subscription ends OK and its viewers end
OK once they have sent the last part. On shutdown (:meth:`LiveEdgeNode.close`)
every viewer ends UNAVAILABLE.

The WAN model (video/edge/wan.py, its :class:`Pacer`; times from the call's
start ``t0``): a reply reaches the client at ``max(t0 + rtt, ready + rtt/2)
+ bytes × 8 / bandwidth``, where ``ready`` is when the edge had it (``t0``
on a hit, when the origin answered on a miss or a blocked request: the
request's trip was paid while blocked, the answer's trip after). A
StreamParts viewer's parts go on one schedule: the first byte not before
``t0 + rtt``, each part not before half a round trip after it reached the
edge, then paced at the client bandwidth. The edge sleeps until each time so
the client sees it.

Origin calls made for coalesced requests run in a context of their own: the
shared call is bounded by ``origin_timeout_ms``, not by the deadline of the
viewer that happened to arrive first (services/runtime/deadlines.py); each
viewer still waits only as long as its own deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from casemesh.live.v1 import live_pb2, origin_pb2

from ...runtime.coalescing import SingleFlight
from ...runtime.errors import InvalidArgument, NotFound, ResourceExhausted
from ...video.edge.cache import SegmentCache
from ...video.edge.wan import Pacer
from ..contract import EDGE_VIEWER_MAX_LAG_PARTS
from .metrics import EdgeMetrics
from .settings import LiveEdgeSettings

log = logging.getLogger("casemesh.live.edge")

#: A part reference: ``(media_sequence, part_index)``; tuples order as the stream does.
Ref = tuple[int, int]
T = TypeVar("T")


class Unavailable(Exception):
    """The edge cannot serve the call now (the origin subscription is lost, the edge shuts down) → ``UNAVAILABLE``."""


class _Gap(Exception):
    """The origin subscription skipped a part."""


def ref_of(part: live_pb2.Part) -> Ref:
    """``(media_sequence, part_index)`` of ``part``."""
    return part.ref.media_sequence, part.ref.part_index


def next_ref(part: live_pb2.Part) -> Ref:
    """The part after ``part``: part 0 of the next segment when it ``ends_segment``, else the next index."""
    msn, index = ref_of(part)
    return (msn + 1, 0) if part.ends_segment else (msn, index + 1)


class LiveOrigin(Protocol):
    """The origin (``LiveOriginService``). Errors: ``NotFound``, ``FailedPrecondition``, ``InvalidArgument`` for the
    origin's statuses of those names; anything else (an ``AioRpcError``) means unreachable, or a deadline."""

    async def playlist(self, stream_id: str, block: Ref | None) -> origin_pb2.FetchPlaylistResponse:
        """FetchPlaylist (blocking until ``block`` is published when set)."""

    async def part(self, stream_id: str, ref: Ref) -> live_pb2.Part:
        """FetchPart (blocking for a part not yet published)."""

    async def segment(self, stream_id: str, media_sequence: int) -> origin_pb2.FetchSegmentResponse:
        """FetchSegment."""

    async def describe(self, stream_id: str) -> live_pb2.StreamInfo:
        """DescribeStream."""

    def watch(self, stream_id: str, from_ref: Ref | None) -> AsyncIterator[live_pb2.Part]:
        """WatchParts: the parts from ``from_ref`` (None: the next published) in order; ends after an ended stream's
        last part. Closing the iterator (``aclose``) cancels the call."""


class _Cached:
    """A cached message and its size in bytes (``SegmentCache`` sizes values by ``len``)."""

    __slots__ = ("message", "size")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.size = message.ByteSize()

    def __len__(self) -> int:
        return self.size


@dataclass(slots=True)
class _Entry:
    """A ring entry: the part and when it reached the edge (monotonic clock seconds)."""

    part: live_pb2.Part
    received_at: float


class _Viewer:
    """One StreamParts call: its cursor (``pos``, the ring position of the next part to send), live or catching up."""

    __slots__ = ("pos", "live", "error")

    def __init__(self) -> None:
        self.pos = 0
        self.live = False
        self.error: BaseException | None = None


class StreamFeed:
    """One stream's origin subscription on this edge, its ring of recent parts and its viewers (module docstring)."""

    def __init__(self, node: LiveEdgeNode, stream_id: str) -> None:
        self.node = node
        self.stream_id = stream_id
        self.ring: deque[_Entry] = deque()
        #: Position of ``ring[0]``; ``next_pos`` is the position the next part received gets.
        self.base = 0
        self.next_pos = 0
        self._positions: dict[Ref, int] = {}
        self.last_part: live_pb2.Part | None = None
        self.ended = False
        self.error: BaseException | None = None
        self.closed = False
        self.viewers: set[_Viewer] = set()
        self.received = 0
        self.subscriptions = 0
        self._wake = asyncio.Event()
        self._linger: asyncio.TimerHandle | None = None
        self._task: asyncio.Task | None = None
        self._stream: AsyncIterator[live_pb2.Part] | None = None

    def start(self) -> None:
        # A context of its own: the subscription is shared by many viewers and must not inherit the first one's
        # inbound deadline (services/runtime/deadlines.py) or trace.
        self._task = asyncio.create_task(self._run(), name=f"live-watch-{self.stream_id}", context=contextvars.Context())
        self.node.metrics.subscriptions(1)

    @property
    def next_expected(self) -> Ref | None:
        """The reference of the next part the subscription will bring (None before the first)."""
        return None if self.last_part is None else next_ref(self.last_part)

    def position(self, ref: Ref) -> int | None:
        """The ring position of part ``ref``, or None when it is not in the ring."""
        return self._positions.get(ref)

    def entry(self, pos: int) -> _Entry:
        return self.ring[pos - self.base]

    def live_start(self) -> int:
        """Where a viewer without ``from`` starts: the latest independent part within the lag limit, else the next."""
        oldest = max(self.base, self.next_pos - EDGE_VIEWER_MAX_LAG_PARTS)
        for pos in range(self.next_pos - 1, oldest - 1, -1):
            if self.entry(pos).part.independent:
                return pos
        return self.next_pos

    async def changed(self, event: asyncio.Event) -> None:
        """Wait until ``event`` (the :attr:`wake_event` read before the caller's checks) is set."""
        await event.wait()

    @property
    def wake_event(self) -> asyncio.Event:
        return self._wake

    def _wake_all(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    # Viewers.

    def join(self, viewer: _Viewer) -> None:
        self.viewers.add(viewer)
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None

    def leave(self, viewer: _Viewer) -> None:
        self.viewers.discard(viewer)
        if not self.viewers and not self.closed and self._linger is None:
            grace_s = self.node.settings.subscription_grace_ms / 1000
            if grace_s <= 0 or self.error is not None:
                self.close(None)
            else:
                self._linger = asyncio.get_running_loop().call_later(grace_s, self._linger_over)

    def _linger_over(self) -> None:
        self._linger = None
        if not self.viewers:
            self.close(None)

    # The subscription.

    async def _run(self) -> None:
        node = self.node
        settings = node.settings
        failures = 0
        while not self.closed:
            from_ref = None if self.last_part is None else ref_of(self.last_part)
            node.origin_calls["watch"] += 1
            node.metrics.origin_request("watch")
            self.subscriptions += 1
            try:
                self._stream = node.origin.watch(self.stream_id, from_ref)
                async for part in self._stream:
                    if self._accept(part):
                        failures = 0
                    if self.closed:
                        return
                self._end()
                return
            except asyncio.CancelledError:
                raise
            except (NotFound, InvalidArgument) as error:
                if self.last_part is None:  # the stream is unknown (or ``from`` refused): nothing to resume
                    self._fail(error, "not_found")
                    return
                problem: BaseException = error
            except Exception as error:  # noqa: BLE001 - unreachable, deadline, a skip: reopen from the last part
                problem = error
            finally:
                await self._close_stream()
            failures += 1
            if failures > settings.resubscribe_attempts:
                self._fail(Unavailable(
                    f"the edge lost the origin subscription of stream {self.stream_id} ({_describe(problem)}); "
                    f"resume with `from` the part after the last one received"), "origin_lost")
                return
            log.info("live-edge: the origin subscription of %s failed (%s); reopening from %s",
                     self.stream_id, _describe(problem), from_ref if self.last_part is None else ref_of(self.last_part))
            node.metrics.resubscribed()
            node.resubscribes += 1
            backoff_s = settings.resubscribe_backoff_ms / 1000 * 2 ** (failures - 1)
            if backoff_s > 0:
                await asyncio.sleep(backoff_s)

    async def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()

    def _accept(self, part: live_pb2.Part) -> bool:
        """Add ``part`` to the ring and fan it out; False for a repeat; :class:`_Gap` for a skip."""
        ref = ref_of(part)
        last = self.last_part
        if last is not None:
            if ref <= ref_of(last):
                return False
            expected = next_ref(last)
            if ref != expected:
                raise _Gap(f"the subscription skipped from part {ref_of(last)} to {ref} (expected {expected})")
        node = self.node
        self.ring.append(_Entry(part, node.clock()))
        self._positions[ref] = self.next_pos
        self.next_pos += 1
        while len(self.ring) > node.settings.ring_parts:
            old = self.ring.popleft()
            del self._positions[ref_of(old.part)]
            self.base += 1
        self.last_part = part
        self.received += 1
        node.cache.put(("part", self.stream_id, *ref), _Cached(part))
        width = 0
        limit = EDGE_VIEWER_MAX_LAG_PARTS
        for viewer in list(self.viewers):
            if not viewer.live or viewer.error is not None:
                continue
            if self.next_pos - viewer.pos > limit:
                viewer.error = ResourceExhausted(
                    f"this viewer fell more than {limit} parts behind stream {self.stream_id} on this edge; resume "
                    f"with `from` the part after the last one received")
                node.metrics.dropped("slow")
                self.viewers.discard(viewer)
            else:
                width += 1
        node.metrics.fanout(width)
        self._wake_all()
        return True

    def _end(self) -> None:
        """The stream ended (the subscription ended OK): viewers end once they sent the last part."""
        self.ended = True
        self._wake_all()

    def _fail(self, error: BaseException, reason: str) -> None:
        """The subscription is lost for good: its viewers end with ``error``; the node forgets the feed."""
        if self.error is not None or self.closed:
            return
        self.error = error
        for _viewer in list(self.viewers):
            self.node.metrics.dropped(reason)
        self._wake_all()
        self.node._forget(self)
        if not self.viewers:
            self.close(None)

    def close(self, error: BaseException | None) -> None:
        """Stop the subscription (no viewer left after the grace, or shutdown: ``error`` ends the viewers left)."""
        if self.closed:
            return
        self.closed = True
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        if error is not None and self.error is None:
            self.error = error
            for _viewer in list(self.viewers):
                self.node.metrics.dropped("shutdown")
        if self._task is not None and self._task is not asyncio.current_task():
            self._task.cancel()
        self.node.metrics.subscriptions(-1)
        self._wake_all()
        self.node._forget(self)

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


def _describe(error: BaseException) -> str:
    code = getattr(error, "code", None)
    if callable(code):
        try:
            return f"{code().name}: {error.details()}"  # type: ignore[attr-defined]
        except Exception:  # noqa: BLE001 - not an AioRpcError after all
            pass
    return f"{type(error).__name__}: {error}"


class LiveEdgeNode:
    """Coalescing, cache, shared subscriptions and pacing of one live edge, from :class:`LiveEdgeSettings`.

    ``origin`` is the :class:`LiveOrigin`; ``metrics`` the Prometheus side;
    ``clock`` (monotonic seconds) and ``sleep`` are injectable. Counters for
    tests and logs: ``origin_calls`` (a ``collections.Counter`` by kind),
    ``resubscribes``.
    """

    def __init__(self, settings: LiveEdgeSettings, origin: LiveOrigin, *, metrics: EdgeMetrics | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.origin = origin
        self.metrics = metrics or EdgeMetrics()
        self.clock = clock
        self._sleep = sleep
        self.cache = SegmentCache(settings.cache_bytes, on_lookup=self.metrics.lookup)
        self.flights: SingleFlight[Hashable, Any] = SingleFlight()
        self.client_rtt_s = settings.client_rtt_ms / 1000
        self.client_bps = settings.client_bandwidth_kbps * 1000
        self.origin_calls: Counter[str] = Counter()
        self.resubscribes = 0
        self._feeds: dict[str, StreamFeed] = {}
        self._closing: set[StreamFeed] = set()
        self._closed = False
        self._stopping: asyncio.Future[None] | None = None

    # Coalescing and pacing.

    async def _origin_call(self, kind: str, key: Hashable, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` to the origin, shared with the identical calls in flight when coalescing is on."""
        async def counted() -> T:
            self.origin_calls[kind] += 1
            self.metrics.origin_request(kind)
            return await call()

        if not self.settings.coalesce_requests:
            return await counted()

        def detached() -> asyncio.Task[T]:
            # Its own context: bounded by origin_timeout_ms, not by the first caller's deadline.
            return asyncio.get_running_loop().create_task(counted(), context=contextvars.Context())

        result, shared = await self.flights.do(key, detached)
        if shared:
            self.metrics.coalesced(kind)
        return result

    async def _sleep_until(self, deadline: float) -> None:
        delay = deadline - self.clock()
        if delay > 0:
            await self._sleep(delay)

    async def _deliver(self, started: float, ready: float, size_bytes: int) -> None:
        """Wait until a reply of ``size_bytes`` the edge had at ``ready`` has reached the client (module docstring)."""
        pacer = Pacer(self.client_bps, started + self.client_rtt_s)
        pacer.hold_until(ready + self.client_rtt_s / 2)
        await self._sleep_until(pacer.advance(size_bytes))

    def _cached(self, key: Hashable) -> Any | None:
        found = self.cache.get(key)
        return None if found is None else found.message

    # Unary requests.

    async def playlist(self, stream_id: str, block: Ref | None) -> origin_pb2.FetchPlaylistResponse:
        """The stream's playlist from the origin (a blocking reload when ``block`` is set), coalesced, WAN-paced."""
        started = self.clock()
        reply = await self._origin_call("playlist", ("playlist", stream_id, block),
                                        lambda: self.origin.playlist(stream_id, block))
        await self._deliver(started, self.clock(), reply.ByteSize())
        return reply

    async def fetch_part(self, stream_id: str, ref: Ref) -> live_pb2.Part:
        """Part ``ref``: the cache, else the origin (coalesced, blocking for a part not yet published), then cached.

        Not paced: :meth:`part` and :meth:`stream_parts` pace it.
        """
        key = ("part", stream_id, *ref)
        part = self._cached(key)
        if part is not None:
            return part

        async def fetch() -> live_pb2.Part:
            fetched = await self.origin.part(stream_id, ref)
            self.cache.put(key, _Cached(fetched))
            return fetched

        return await self._origin_call("part", key, fetch)

    async def part(self, stream_id: str, ref: Ref) -> live_pb2.Part:
        """GetPart: :meth:`fetch_part`, WAN-paced."""
        started = self.clock()
        part = await self.fetch_part(stream_id, ref)
        await self._deliver(started, self.clock(), part.ByteSize())
        return part

    async def segment(self, stream_id: str, media_sequence: int) -> origin_pb2.FetchSegmentResponse:
        """GetSegment: the cache, else the origin (coalesced), then cached; WAN-paced."""
        started = self.clock()
        key = ("segment", stream_id, media_sequence)
        reply = self._cached(key)
        if reply is None:
            async def fetch() -> origin_pb2.FetchSegmentResponse:
                fetched = await self.origin.segment(stream_id, media_sequence)
                self.cache.put(key, _Cached(fetched))
                return fetched

            reply = await self._origin_call("segment", key, fetch)
        await self._deliver(started, self.clock(), reply.ByteSize())
        return reply

    # StreamParts.

    def _feed(self, stream_id: str) -> StreamFeed:
        feed = self._feeds.get(stream_id)
        if feed is None:
            feed = self._feeds[stream_id] = StreamFeed(self, stream_id)
            feed.start()
        return feed

    def feed_of(self, stream_id: str) -> StreamFeed | None:
        """The stream's feed on this edge, if any (tests, metrics)."""
        return self._feeds.get(stream_id)

    def _forget(self, feed: StreamFeed) -> None:
        if self._feeds.get(feed.stream_id) is feed:
            del self._feeds[feed.stream_id]
        if feed._task is not None and not feed._task.done():
            self._closing.add(feed)
            feed._task.add_done_callback(lambda _: self._closing.discard(feed))

    async def stream_parts(self, stream_id: str, from_ref: Ref | None = None) -> AsyncIterator[live_pb2.Part]:
        """StreamParts: the stream's parts in order without gaps, from ``from_ref`` or the live edge (module docstring).

        Each part is yielded once it has reached the client under the WAN
        model. Ends when an ended stream's last part was sent. Raises
        ``NotFound`` (unknown stream, ``from_ref`` outside the DVR window),
        ``ResourceExhausted`` (the viewer fell too far behind),
        :class:`Unavailable` (subscription lost, shutdown) or the origin's
        errors while catching up.
        """
        if self._closed:
            raise Unavailable("the edge is shutting down; resume from the last part received on another edge")
        started = self.clock()
        feed = self._feed(stream_id)
        viewer = _Viewer()
        feed.join(viewer)
        self.metrics.viewers(1)
        pacer = Pacer(self.client_bps, started + self.client_rtt_s)
        half_rtt = self.client_rtt_s / 2
        cursor = from_ref
        sent: live_pb2.Part | None = None
        limit = EDGE_VIEWER_MAX_LAG_PARTS
        try:
            if from_ref is None:
                viewer.pos = feed.live_start()
                viewer.live = True
            while True:
                if viewer.error is not None:
                    raise viewer.error
                if feed.closed and feed.error is not None:  # shutdown: at once, not after the ring's parts
                    raise feed.error
                event = feed.wake_event
                if viewer.live:
                    if viewer.pos < feed.next_pos:
                        if viewer.pos < feed.base:  # cannot happen with ring_parts > the lag limit; never skip
                            raise ResourceExhausted(f"this viewer fell out of stream {stream_id}'s ring on this edge; "
                                                    f"resume with `from`")
                        entry = feed.entry(viewer.pos)
                        viewer.pos += 1
                        part, ready = entry.part, entry.received_at
                    elif feed.error is not None:
                        raise feed.error
                    elif feed.ended:
                        return
                    else:
                        await feed.changed(event)
                        continue
                else:
                    pos = feed.position(cursor)
                    if pos is None and cursor == feed.next_expected:
                        pos = feed.next_pos
                    if pos is not None and feed.next_pos - pos <= limit:
                        viewer.pos = pos  # joins the live fan-out here: no await since the check, no gap, no repeat
                        viewer.live = True
                        continue
                    if pos is not None:  # in the ring but too far behind to go live yet: read it from the ring
                        entry = feed.entry(pos)
                        part, ready = entry.part, entry.received_at
                    else:
                        try:
                            part = await self._catch_up(stream_id, cursor)
                        except NotFound:
                            if sent is not None and await self._ended_after(stream_id, sent):
                                return
                            raise
                        ready = self.clock()
                    cursor = next_ref(part)
                pacer.hold_until(ready + half_rtt)
                await self._sleep_until(pacer.advance(part.ByteSize()))
                if viewer.error is not None:
                    raise viewer.error
                sent = part
                yield part
        finally:
            feed.leave(viewer)
            self.metrics.viewers(-1)

    async def _catch_up(self, stream_id: str, ref: Ref) -> live_pb2.Part:
        """:meth:`fetch_part` for a catching-up viewer, given up with :class:`Unavailable` when the edge shuts down."""
        if self._stopping is None:
            self._stopping = asyncio.get_running_loop().create_future()
        fetch = asyncio.ensure_future(self.fetch_part(stream_id, ref))
        try:
            await asyncio.wait((fetch, self._stopping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not fetch.done():
                fetch.cancel()  # this viewer's wait only: the shared origin call goes on (SingleFlight shields it)
        if fetch.done() and not fetch.cancelled():
            return fetch.result()
        raise Unavailable("the edge is shutting down; resume from the last part received on another edge")

    async def _ended_after(self, stream_id: str, last_sent: live_pb2.Part) -> bool:
        """Whether the stream has ended and ``last_sent`` was its last part (a catching-up viewer is done)."""
        feed = self._feeds.get(stream_id)
        if feed is not None and feed.ended and feed.last_part is not None:
            return ref_of(feed.last_part) == ref_of(last_sent)
        self.origin_calls["describe"] += 1
        self.metrics.origin_request("describe")
        info = await self.origin.describe(stream_id)
        return (info.state == live_pb2.STREAM_STATE_ENDED and info.HasField("last_part")
                and (info.last_part.media_sequence, info.last_part.part_index) == ref_of(last_sent))

    async def close(self) -> None:
        """Shutdown: every stream's viewers end UNAVAILABLE, every subscription is closed."""
        self._closed = True
        if self._stopping is not None and not self._stopping.done():
            self._stopping.set_result(None)
        error = Unavailable("the edge is shutting down; resume from the last part received on another edge")
        for feed in list(self._feeds.values()):
            feed.close(error)
        closing = list(self._closing)
        if closing:
            await asyncio.wait([asyncio.ensure_future(f.wait_closed()) for f in closing], timeout=5)
