"""``casemesh.live.v1.LiveOriginService`` (topology name ``live-origin``).

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming |
LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers":
the origin holds each stream's parts and segments for its DVR window,
renders the LL-HLS media playlist (RFC 8216bis; grammar in
services/live/contract.py) and answers blocking requests (RFC 8216bis
§6.2.5.2 blocking playlist reload, §4.4.5.3 preload hint) once their part is
published. Edges subscribe with WatchParts, so the origin's load grows with
the number of edges, not of viewers. A thin servicer over
:class:`~.store.StreamStore` (the mechanism and its limits are documented
there). Internal: only ``live-ingest`` (RegisterStream, AppendPart,
EndStream, DescribeStream) and ``live-edge`` (the reads) may call it.

Status codes, as protos/casemesh/live/v1/origin.proto says:

- INVALID_ARGUMENT naming the field: ``stream_id``, ``broadcaster_id``,
  ``title``, ``part_target_ms``, ``segment_target_ms``, ``part.stream_id``,
  ``part.ref`` (negative, or part 0 of a segment not independent),
  ``part.duration_us``, ``part.chunk_count``, ``part.data``, ``block`` /
  ``ref`` (negative, more than two segments past the last published one, or
  a part index no segment can reach), ``media_sequence``, ``from`` (negative
  or not published yet and not the next part);
- NOT_FOUND: an unknown stream; a part or segment out of the DVR window; a
  part an ended stream will never have (blocked requests for it are woken
  at EndStream); a segment not complete;
- ALREADY_EXISTS: RegisterStream of a stream id in use;
- FAILED_PRECONDITION: AppendPart to an ended stream, or of a part (or first
  chunk) that is not the next one (an identical retry of the last part is
  OK with ``duplicate``); FetchPlaylist while the stream is WAITING;
- DEADLINE_EXCEEDED: a blocked request whose part was not published within
  (parts to wait for + 3) part targets;
- RESOURCE_EXHAUSTED: RegisterStream when ``max_streams`` are held and none
  has ended; a WatchParts whose watcher fell more than 256 parts behind;
- UNAVAILABLE: blocked requests and WatchParts at shutdown.

WatchParts streams and blocked requests are long-lived: LiveOriginService
gets :data:`STREAM_SLOTS` admission slots by default
(``ServiceDefinition.default_limits``), WatchParts at most
:data:`WATCH_SLOTS` of them. Settings: :class:`.settings.OriginSettings`;
metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from casemesh.live.v1 import live_pb2, origin_pb2, origin_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument
from . import validation as check
from .metrics import OriginMetrics
from .settings import OriginSettings
from .store import OVERFLOW, PartRecord, PartTimeout, StoreClosed, StreamStore, StreamView, WatchEnded

log = logging.getLogger("casemesh.live.origin")

NAME = "live-origin"
ORIGIN_SERVICE = origin_pb2.DESCRIPTOR.services_by_name["LiveOriginService"].full_name
INGEST = "live-ingest"
EDGE = "live-edge"
#: Admission slots of LiveOriginService (blocked requests and WatchParts streams last up to seconds, or a stream's
#: life); WatchParts may take at most WATCH_SLOTS of them.
STREAM_SLOTS = 20_000
WATCH_SLOTS = 10_000
#: How much of the caller's deadline a blocked request leaves for the answer to travel back.
DEADLINE_MARGIN_S = 0.02
#: How often idle streams are looked for, seconds (at most ``idle_end_s``).
EXPIRY_CHECK_S = 5.0


def stream_info(view: StreamView) -> live_pb2.StreamInfo:
    """The wire shape of a :class:`~.store.StreamView`."""
    info = live_pb2.StreamInfo(
        stream_id=view.stream_id, broadcaster_id=view.broadcaster_id, title=view.title, state=view.state.value,
        part_target_ms=view.part_target_ms, segment_target_ms=view.segment_target_ms,
        next_chunk_sequence=view.next_chunk_sequence, first_media_sequence=view.first_media_sequence,
        dvr_window_s=view.dvr_window_s,
        next_part=live_pb2.PartRef(media_sequence=view.next_part[0], part_index=view.next_part[1]),
        open_segment_duration_us=view.open_segment_duration_us)
    if view.last_part is not None:
        info.last_part.media_sequence, info.last_part.part_index = view.last_part
    return info


def part_message(record: PartRecord) -> live_pb2.Part:
    """The wire shape of a published part."""
    return live_pb2.Part(
        stream_id=record.stream_id,
        ref=live_pb2.PartRef(media_sequence=record.media_sequence, part_index=record.part_index),
        duration_us=record.duration_us, independent=record.independent,
        first_chunk_sequence=record.first_chunk_sequence, chunk_count=record.chunk_count, data=record.data,
        ends_segment=record.ends_segment, published_unix_ms=record.published_unix_ms)


def _time_left(context: grpc.aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining - DEADLINE_MARGIN_S, 0.0)


class OriginServicer(origin_pb2_grpc.LiveOriginServiceServicer):
    """Validate, call the :class:`~.store.StreamStore`, map its waits' outcomes."""

    def __init__(self, store: StreamStore) -> None:
        self._store = store

    async def RegisterStream(self, request: origin_pb2.RegisterStreamRequest,
                             context: grpc.aio.ServicerContext) -> origin_pb2.RegisterStreamResponse:
        stream_id = check.required_id("stream_id", request.stream_id)
        broadcaster_id = check.required_id("broadcaster_id", request.broadcaster_id)
        title = check.title(request.title)
        part_ms, segment_ms = check.targets(request.part_target_ms, request.segment_target_ms)
        view = self._store.register(stream_id, broadcaster_id, title, part_ms, segment_ms)
        return origin_pb2.RegisterStreamResponse(stream=stream_info(view))

    async def AppendPart(self, request: origin_pb2.AppendPartRequest,
                         context: grpc.aio.ServicerContext) -> origin_pb2.AppendPartResponse:
        if not request.HasField("part"):
            raise InvalidArgument("part.stream_id", "part is required")
        result = self._store.append(check.part(request.part))
        return origin_pb2.AppendPartResponse(duplicate=result.duplicate,
                                             next_chunk_sequence=result.next_chunk_sequence)

    async def EndStream(self, request: origin_pb2.EndStreamRequest,
                        context: grpc.aio.ServicerContext) -> origin_pb2.EndStreamResponse:
        view = self._store.end(check.required_id("stream_id", request.stream_id))
        return origin_pb2.EndStreamResponse(stream=stream_info(view))

    async def DescribeStream(self, request: origin_pb2.DescribeStreamRequest,
                             context: grpc.aio.ServicerContext) -> origin_pb2.DescribeStreamResponse:
        view = self._store.describe(check.required_id("stream_id", request.stream_id))
        return origin_pb2.DescribeStreamResponse(stream=stream_info(view))

    async def FetchPlaylist(self, request: origin_pb2.FetchPlaylistRequest,
                            context: grpc.aio.ServicerContext) -> origin_pb2.FetchPlaylistResponse:
        stream_id = check.required_id("stream_id", request.stream_id)
        block = check.optional_ref("block", request, "block")
        try:
            rendered = await self._store.fetch_playlist(stream_id, block, _time_left(context))
        except PartTimeout as error:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(error))
        except StoreClosed as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        return origin_pb2.FetchPlaylistResponse(
            playlist=rendered.text, state=rendered.state.value,
            last_part=live_pb2.PartRef(media_sequence=rendered.last_part[0], part_index=rendered.last_part[1]))

    async def FetchPart(self, request: origin_pb2.FetchPartRequest,
                        context: grpc.aio.ServicerContext) -> origin_pb2.FetchPartResponse:
        stream_id = check.required_id("stream_id", request.stream_id)
        if not request.HasField("ref"):
            raise InvalidArgument("ref", "is required")
        ref = check.ref("ref", request.ref)
        try:
            record = await self._store.wait_for(stream_id, ref, _time_left(context), field="ref", kind="part")
        except PartTimeout as error:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, str(error))
        except StoreClosed as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        return origin_pb2.FetchPartResponse(part=part_message(record))

    async def FetchSegment(self, request: origin_pb2.FetchSegmentRequest,
                           context: grpc.aio.ServicerContext) -> origin_pb2.FetchSegmentResponse:
        stream_id = check.required_id("stream_id", request.stream_id)
        if request.media_sequence < 0:
            raise InvalidArgument("media_sequence", f"is {request.media_sequence}; must be >= 0")
        segment = self._store.segment(stream_id, request.media_sequence)
        return origin_pb2.FetchSegmentResponse(
            media_sequence=segment.media_sequence, duration_us=segment.duration_us,
            first_chunk_sequence=segment.first_chunk_sequence, chunk_count=segment.chunk_count, data=segment.data)

    async def WatchParts(self, request: origin_pb2.WatchPartsRequest,
                         context: grpc.aio.ServicerContext) -> AsyncIterator[origin_pb2.WatchPartsResponse]:
        stream_id = check.required_id("stream_id", request.stream_id)
        start = check.optional_ref("from", request, "from")
        try:
            watcher = self._store.watch(stream_id, start)
        except StoreClosed as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        try:
            while True:
                try:
                    batch = await watcher.next()
                except WatchEnded as ended:
                    code = grpc.StatusCode.RESOURCE_EXHAUSTED if ended.reason == OVERFLOW else grpc.StatusCode.UNAVAILABLE
                    await context.abort(code, str(ended))
                if not batch:
                    return  # the stream ended and every part was sent: OK
                for record in batch:
                    yield origin_pb2.WatchPartsResponse(part=part_message(record))
        finally:
            self._store.unwatch(watcher)


class OriginComponent:
    """The servicer over one :class:`~.store.StreamStore`."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, OriginSettings)
        self.store = StreamStore(dvr_window_s=self.settings.dvr_window_s, max_streams=self.settings.max_streams,
                                 observer=OriginMetrics())
        self.servicer = OriginServicer(self.store)
        self._expiry: asyncio.Task | None = None

    def register(self, server: grpc.aio.Server) -> None:
        origin_pb2_grpc.add_LiveOriginServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        if self.settings.idle_end_s > 0:
            self._expiry = asyncio.get_running_loop().create_task(self._expire_idle(), name="live-origin-expiry")

    async def _expire_idle(self) -> None:
        """Every few seconds: end idle streams, forget old ended ones (:meth:`~.store.StreamStore.expire`)."""
        every_s = min(EXPIRY_CHECK_S, self.settings.idle_end_s)
        while True:
            await asyncio.sleep(every_s)
            ended, forgotten = self.store.expire(self.settings.idle_end_s)
            if ended or forgotten:
                log.info("ended %d idle streams, forgot %d ended ones", ended, forgotten)

    async def stop(self) -> None:
        """End every blocked request and WatchParts with UNAVAILABLE (not durable: the streams are gone)."""
        if self._expiry is not None:
            self._expiry.cancel()
        self.store.close()


async def build(context: RuntimeContext) -> OriginComponent:
    return OriginComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(ORIGIN_SERVICE,), dependencies=(), build=build, settings_model=OriginSettings,
    access=Access(internal={
        **{method: (INGEST,) for method in ("RegisterStream", "AppendPart", "EndStream")},
        "DescribeStream": (INGEST, EDGE),
        **{method: (EDGE,) for method in ("FetchPlaylist", "FetchPart", "FetchSegment", "WatchParts")},
    }),
    # Blocked requests and WatchParts streams are long-lived: their own slots, not the 256 of unary work.
    default_limits={ORIGIN_SERVICE: STREAM_SLOTS, f"{ORIGIN_SERVICE}/WatchParts": WATCH_SLOTS},
)
