"""``casemesh.video.v1.EdgeService`` (topology name ``video-edge``): a CDN edge node with the WAN model.

Seed 004, "CDN Cache Hit Rate": immutable segments cached at the edge, the
origin (the object store) hit only on misses; "Read plane": "Client -> CDN
-> Origin (for cache misses only)". StreamSegments streams each requested
segment in chunks of ``chunk_bytes``: from the byte-bounded LRU cache, or on
a miss from ``ObjectStoreService.GetSegment`` (concurrent misses of one
segment coalesced into one fetch, read in ranges), paced by the WAN model (node.py, wan.py,
settings.py; docs/case-studies/video.md). Every chunk carries its segment's
``cache_result``.

Status codes: INVALID_ARGUMENT naming ``video_id``, ``generation``,
``rendition``, ``start_index`` or ``count``; NOT_FOUND when the origin has
no such segment; UNAVAILABLE when the origin cannot be reached (or
DEADLINE_EXCEEDED when the origin call ran out of time).

Metrics beyond the gRPC ones:
``casemesh_video_edge_cache_lookups_total{result="hit"|"miss"}``,
``casemesh_video_edge_cache_bytes`` (gauge), ``casemesh_video_edge_cache_evictions_total``,
``casemesh_video_edge_origin_fetch_seconds`` (histogram: round trip, link
queueing and transfer), ``casemesh_video_edge_coalesced_misses_total``,
``casemesh_video_edge_origin_link_backlog_seconds`` (gauge: booked transfer
time still ahead on the origin link), ``casemesh_video_edge_served_bytes_total{result="hit"|"miss"}``,
``casemesh_video_edge_buffer_bytes`` (gauge: the ``buffer_bytes`` budget in use),
``casemesh_video_edge_buffer_waits_total`` (fills and uncached streams that waited for it).

Memory stays within ``cache_bytes + buffer_bytes`` plus one chunk per stream,
however many streams miss at once: the origin is read in ranges of
``origin_chunk_bytes`` and no stream holds a whole segment (node.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from prometheus_client import Counter, Gauge, Histogram

from casemesh.video.v1 import edge_pb2 as pb
from casemesh.video.v1 import edge_pb2_grpc as pb_grpc
from casemesh.video.v1 import storage_pb2, storage_pb2_grpc, video_pb2

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition, StatelessComponent
from ...runtime.errors import NotFound
from ...runtime.metrics import LATENCY_BUCKETS_S
from .node import EdgeNode, SegmentKey
from .settings import EdgeSettings
from .validation import validate_stream_request

NAME = "video-edge"
FULL_NAME = pb.DESCRIPTOR.services_by_name["EdgeService"].full_name

CACHE_LOOKUPS = Counter("casemesh_video_edge_cache_lookups", "Edge segment cache lookups by result.", ["result"])
CACHE_BYTES = Gauge("casemesh_video_edge_cache_bytes", "Bytes of segments held in the edge cache.")
CACHE_EVICTIONS = Counter("casemesh_video_edge_cache_evictions", "Segments evicted from the edge cache to make room.")
ORIGIN_FETCH_SECONDS = Histogram(
    "casemesh_video_edge_origin_fetch_seconds",
    "Origin fetches of missed segments, in seconds: the origin round trip, queueing on the shared origin link and the transfer.",
    buckets=LATENCY_BUCKETS_S,
)
COALESCED = Counter("casemesh_video_edge_coalesced_misses", "Misses that joined an origin fetch of the same segment already in flight.")
LINK_BACKLOG = Gauge("casemesh_video_edge_origin_link_backlog_seconds", "Seconds of transfers still booked ahead on the edge-to-origin link.")
BUFFER_BYTES = Gauge("casemesh_video_edge_buffer_bytes", "Segment bytes held outside the cache (fills, uncached streams' ranges): the buffer_bytes budget in use.")
BUDGET_WAITS = Counter("casemesh_video_edge_buffer_waits", "Fills and uncached streams that waited for the buffer_bytes budget.")
SERVED_BYTES = Counter("casemesh_video_edge_served_bytes", "Segment bytes streamed to clients, by cache result.", ["result"])

_LOOKUPS = {True: CACHE_LOOKUPS.labels("hit"), False: CACHE_LOOKUPS.labels("miss")}
_SERVED = {True: SERVED_BYTES.labels("hit"), False: SERVED_BYTES.labels("miss")}
_RESULT = {True: pb.CACHE_RESULT_HIT, False: pb.CACHE_RESULT_MISS}


class EdgeServicer(pb_grpc.EdgeServiceServicer):
    """Validates a StreamSegments request and streams the node's chunks as messages."""

    def __init__(self, node: EdgeNode) -> None:
        self._node = node

    async def StreamSegments(self, request: pb.StreamSegmentsRequest,
                             context: grpc.aio.ServicerContext) -> AsyncIterator[pb.StreamSegmentsResponse]:
        validate_stream_request(request.video_id, request.generation, request.rendition, request.start_index, request.count)
        first = SegmentKey(request.video_id, request.generation, request.rendition, request.start_index)
        async for chunk in self._node.stream(first, request.count):
            _SERVED[chunk.hit].inc(len(chunk.data))
            yield pb.StreamSegmentsResponse(
                segment_index=chunk.segment_index, offset_bytes=chunk.offset_bytes, data=chunk.data,
                segment_size_bytes=chunk.segment_size_bytes, cache_result=_RESULT[chunk.hit],
            )


class StorageOrigin:
    """The edge's :class:`~.node.Origin` over ``ObjectStoreService.GetSegment`` ranges; NOT_FOUND becomes ``NotFound``.

    Each call has its own ``timeout_s``. Other origin errors propagate as
    ``grpc.aio.AioRpcError`` (the server interceptor answers UNAVAILABLE, or
    DEADLINE_EXCEEDED).
    """

    def __init__(self, storage: storage_pb2_grpc.ObjectStoreServiceStub, timeout_s: float) -> None:
        self._storage = storage
        self._timeout_s = timeout_s

    async def _get(self, key: SegmentKey, offset_bytes: int, max_bytes: int) -> storage_pb2.GetSegmentResponse:
        request = storage_pb2.GetSegmentRequest(video_id=key.video_id, generation=key.generation,
                                                rendition=key.rendition, index=key.index,
                                                offset_bytes=offset_bytes, max_bytes=max_bytes)
        try:
            return await self._storage.GetSegment(request, timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                rung = video_pb2.Rendition.Name(key.rendition)
                raise NotFound(f"no segment {key.index} of video {key.video_id!r} generation {key.generation} "
                               f"{rung} at the origin") from None
            raise

    async def size(self, key: SegmentKey) -> int:
        """The segment's size, from a 1-byte range read."""
        return (await self._get(key, 0, 1)).segment_size_bytes

    async def read(self, key: SegmentKey, offset_bytes: int, max_bytes: int) -> bytes:
        """Up to ``max_bytes`` bytes from ``offset_bytes``."""
        return (await self._get(key, offset_bytes, max_bytes)).data


async def build(context: RuntimeContext) -> StatelessComponent:
    settings = context.settings(NAME, EdgeSettings)
    storage = storage_pb2_grpc.ObjectStoreServiceStub(context.channel("video-storage"))
    node = EdgeNode(
        settings, StorageOrigin(storage, settings.origin_timeout_ms / 1000),
        on_lookup=lambda hit: _LOOKUPS[hit].inc(),
        on_evict=CACHE_EVICTIONS.inc,
        on_fetch=ORIGIN_FETCH_SECONDS.observe,
        on_coalesced=COALESCED.inc,
        on_budget_wait=BUDGET_WAITS.inc,
    )
    CACHE_BYTES.set_function(lambda: node.cache.size_bytes)
    LINK_BACKLOG.set_function(node.link.backlog_s)
    BUFFER_BYTES.set_function(lambda: node.budget.in_use)
    return StatelessComponent(EdgeServicer(node), pb_grpc.add_EdgeServiceServicer_to_server)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=("video-storage",), build=build,
    settings_model=EdgeSettings, access=Access(public={"StreamSegments"}),
)
