"""``casemesh.live.v1.LiveEdgeService`` (topology name ``live-edge``): a CDN edge for LL-HLS live streams.

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming":
"LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers".
Built on the video edge's code (its WAN model, services/video/edge/wan.py,
and its byte-bounded LRU, services/video/edge/cache.py). The mechanism, in
:mod:`.node`: the origin (``live-origin``, LiveOriginService) sees about one
request per part per edge whatever the number of viewers: identical
blocking requests are coalesced, published parts and segments cached, and
each stream's StreamParts viewers here share one origin WatchParts
subscription. A/B switches: ``coalesce_requests`` and ``cache_bytes``
(``casemesh run PROFILE --set live-edge.coalesce_requests=false``).

Status codes (edge.proto):

- GetPlaylist: INVALID_ARGUMENT naming ``stream_id`` or ``block.*``; then
  the origin's NOT_FOUND, FAILED_PRECONDITION (no part yet),
  INVALID_ARGUMENT (a ``block`` the stream cannot have) and
  DEADLINE_EXCEEDED (the stream stalled) passed through; UNAVAILABLE when the
  origin cannot be reached (``services/runtime/errors.dependency_error`` and
  the server interceptor).
- GetPart: INVALID_ARGUMENT naming ``stream_id`` or ``ref`` (unset) /
  ``ref.*``; the origin's NOT_FOUND, DEADLINE_EXCEEDED; UNAVAILABLE.
- GetSegment: INVALID_ARGUMENT naming ``stream_id`` or ``media_sequence``;
  the origin's NOT_FOUND; UNAVAILABLE.
- StreamParts: INVALID_ARGUMENT naming ``stream_id`` or ``from.*``;
  NOT_FOUND for an unknown stream or a ``from`` outside the DVR window;
  RESOURCE_EXHAUSTED when the viewer fell more than 64 parts behind;
  UNAVAILABLE when the origin subscription is lost and cannot be reopened,
  or the edge shuts down (resume with ``from``); OK after an ended stream's
  last part.

Metrics: :mod:`.metrics` (``casemesh_live_edge_*``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import grpc

from casemesh.live.v1 import edge_pb2 as pb
from casemesh.live.v1 import edge_pb2_grpc as pb_grpc
from casemesh.live.v1 import live_pb2, origin_pb2, origin_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import dependency_error
from .metrics import CACHE_BYTES, EdgeMetrics
from .node import LiveEdgeNode, Ref, Unavailable
from .settings import EDGE_SLOTS, LiveEdgeSettings
from .validation import (
    validate_media_sequence,
    validate_optional_ref,
    validate_required_ref,
    validate_stream_id,
)

NAME = "live-edge"
ORIGIN = "live-origin"
FULL_NAME = pb.DESCRIPTOR.services_by_name["LiveEdgeService"].full_name


def _part_ref(ref: Ref) -> live_pb2.PartRef:
    return live_pb2.PartRef(media_sequence=ref[0], part_index=ref[1])


class OriginClient:
    """The node's :class:`~.node.LiveOrigin` over ``LiveOriginService``.

    Unary calls have ``timeout_s`` each; the WatchParts stream
    ``watch_timeout_s``. NOT_FOUND, FAILED_PRECONDITION and INVALID_ARGUMENT
    become the runtime's domain errors (passed through to the viewer);
    anything else stays an ``AioRpcError`` (UNAVAILABLE, or DEADLINE_EXCEEDED).
    """

    def __init__(self, stub: origin_pb2_grpc.LiveOriginServiceStub, timeout_s: float, watch_timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s
        self._watch_timeout_s = watch_timeout_s

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None

    async def playlist(self, stream_id: str, block: Ref | None) -> origin_pb2.FetchPlaylistResponse:
        request = origin_pb2.FetchPlaylistRequest(stream_id=stream_id)
        if block is not None:
            request.block.CopyFrom(_part_ref(block))
        return await self._call(self._stub.FetchPlaylist, request)

    async def part(self, stream_id: str, ref: Ref) -> live_pb2.Part:
        request = origin_pb2.FetchPartRequest(stream_id=stream_id, ref=_part_ref(ref))
        return (await self._call(self._stub.FetchPart, request)).part

    async def segment(self, stream_id: str, media_sequence: int) -> origin_pb2.FetchSegmentResponse:
        request = origin_pb2.FetchSegmentRequest(stream_id=stream_id, media_sequence=media_sequence)
        return await self._call(self._stub.FetchSegment, request)

    async def describe(self, stream_id: str) -> live_pb2.StreamInfo:
        request = origin_pb2.DescribeStreamRequest(stream_id=stream_id)
        return (await self._call(self._stub.DescribeStream, request)).stream

    async def watch(self, stream_id: str, from_ref: Ref | None) -> AsyncIterator[live_pb2.Part]:
        request = origin_pb2.WatchPartsRequest(stream_id=stream_id)
        if from_ref is not None:
            getattr(request, "from").CopyFrom(_part_ref(from_ref))
        call = self._stub.WatchParts(request, timeout=self._watch_timeout_s)
        try:
            async for response in call:
                yield response.part
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        finally:
            call.cancel()


class LiveEdgeServicer(pb_grpc.LiveEdgeServiceServicer):
    """Validates each request and calls the :class:`~.node.LiveEdgeNode`."""

    def __init__(self, node: LiveEdgeNode) -> None:
        self._node = node

    async def GetPlaylist(self, request: pb.GetPlaylistRequest, context: grpc.aio.ServicerContext) -> pb.GetPlaylistResponse:
        stream_id = validate_stream_id(request.stream_id)
        block = validate_optional_ref("block", request, "block")
        reply = await self._node.playlist(stream_id, block)
        response = pb.GetPlaylistResponse(playlist=reply.playlist, state=reply.state)
        if reply.HasField("last_part"):
            response.last_part.CopyFrom(reply.last_part)
        return response

    async def GetPart(self, request: pb.GetPartRequest, context: grpc.aio.ServicerContext) -> pb.GetPartResponse:
        stream_id = validate_stream_id(request.stream_id)
        ref = validate_required_ref("ref", request, "ref")
        return pb.GetPartResponse(part=await self._node.part(stream_id, ref))

    async def GetSegment(self, request: pb.GetSegmentRequest, context: grpc.aio.ServicerContext) -> pb.GetSegmentResponse:
        stream_id = validate_stream_id(request.stream_id)
        media_sequence = validate_media_sequence("media_sequence", request.media_sequence)
        reply = await self._node.segment(stream_id, media_sequence)
        return pb.GetSegmentResponse(media_sequence=reply.media_sequence, duration_us=reply.duration_us,
                                     first_chunk_sequence=reply.first_chunk_sequence, chunk_count=reply.chunk_count,
                                     data=reply.data)

    async def StreamParts(self, request: pb.StreamPartsRequest,
                          context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamPartsResponse]:
        stream_id = validate_stream_id(request.stream_id)
        from_ref = validate_optional_ref("from", request, "from")
        metrics = self._node.metrics
        try:
            async with contextlib.aclosing(self._node.stream_parts(stream_id, from_ref)) as parts:
                async for part in parts:
                    yield pb.StreamPartsResponse(part=part)
                    # Written: the server-side twin of the glass-to-glass SLO.
                    published_ms = part.published_unix_ms
                    metrics.sent(time.time() - published_ms / 1000 if published_ms > 0 else None)
        except Unavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))


class LiveEdgeComponent:
    """The servicer over the node; on stop every StreamParts viewer ends UNAVAILABLE."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, LiveEdgeSettings)
        stub = origin_pb2_grpc.LiveOriginServiceStub(context.channel(ORIGIN))
        origin = OriginClient(stub, self.settings.origin_timeout_ms / 1000, self.settings.watch_max_duration_s)
        self.node = LiveEdgeNode(self.settings, origin, metrics=EdgeMetrics())
        CACHE_BYTES.set_function(lambda: self.node.cache.size_bytes)
        self.servicer = LiveEdgeServicer(self.node)

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_LiveEdgeServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.node.close()


async def build(context: RuntimeContext) -> LiveEdgeComponent:
    return LiveEdgeComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(ORIGIN,), build=build, settings_model=LiveEdgeSettings,
    access=Access(public={"GetPlaylist", "GetPart", "GetSegment", "StreamParts"}),
    # StreamParts streams and blocked reloads are long-lived and cheap: their own slots, not the unary default.
    default_limits={FULL_NAME: EDGE_SLOTS},
)
