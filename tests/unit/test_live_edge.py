"""The live edge (services/live/edge) without the real origin: a fake origin object, the node, and the servicer over gRPC.

The mechanism: N concurrent identical blocking requests cost the origin one call; StreamParts viewers of a stream share
one origin subscription and get its parts in order, without gap or duplicate, when joining mid-stream with ``from``
(from the ring or, older, from the origin) and across a failed subscription (reopened from the last part received); a
viewer more than 64 parts behind is dropped with RESOURCE_EXHAUSTED; a lost subscription or shutdown ends viewers
UNAVAILABLE. The WAN model is off (rtt 0, bandwidth 0) so nothing here depends on timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter

import grpc
import pytest
from prometheus_client import CollectorRegistry

from casemesh.live.v1 import edge_pb2, edge_pb2_grpc, live_pb2, origin_pb2
from casemesh.services.live.contract import EDGE_VIEWER_MAX_LAG_PARTS
from casemesh.services.live.edge.node import LiveEdgeNode, Unavailable, ref_of
from casemesh.services.live.edge.service import LiveEdgeServicer
from casemesh.services.live.edge.settings import LiveEdgeSettings
from casemesh.services.runtime.errors import NotFound, ResourceExhausted
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

WAIT_S = 10.0
STREAM = "s1"
PARTS_PER_SEGMENT = 4


def make_part(index: int) -> live_pb2.Part:
    """Part number ``index`` of the stream (segments of 4 parts, the first of each independent)."""
    msn, part_index = divmod(index, PARTS_PER_SEGMENT)
    return live_pb2.Part(
        stream_id=STREAM, ref=live_pb2.PartRef(media_sequence=msn, part_index=part_index), duration_us=200_000,
        independent=part_index == 0, first_chunk_sequence=index * 6, chunk_count=6, data=bytes([index % 256]) * 100,
        ends_segment=part_index == PARTS_PER_SEGMENT - 1, published_unix_ms=int(time.time() * 1000))


def number(part: live_pb2.Part) -> int:
    msn, index = ref_of(part)
    return msn * PARTS_PER_SEGMENT + index


class FakeOrigin:
    """LiveOrigin of one stream ``s1``: ``publish`` appends parts; blocking calls wait for them; ``fail_watch_after``
    makes the next WatchParts streams fail (ConnectionError) after so many parts."""

    def __init__(self) -> None:
        self.parts: list[live_pb2.Part] = []
        self.ended = False
        self.calls: Counter[str] = Counter()
        self.watch_from: list[tuple[int, int] | None] = []
        self.part_refs: Counter[tuple[int, int]] = Counter()
        self.fail_watch_after: list[int] = []
        self._changed = asyncio.Event()

    def publish(self, count: int = 1) -> None:
        for _ in range(count):
            self.parts.append(make_part(len(self.parts)))
        self._wake()

    def end(self) -> None:
        self.ended = True
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _check(self, stream_id: str) -> None:
        if stream_id != STREAM:
            raise NotFound(f"no stream {stream_id!r}")

    async def _wait_for(self, index: int) -> live_pb2.Part:
        while len(self.parts) <= index:
            if self.ended:
                raise NotFound(f"part {index} will never come")
            await self._changed.wait()
        return self.parts[index]

    async def playlist(self, stream_id, block):
        self.calls["playlist"] += 1
        self._check(stream_id)
        if block is not None:
            await self._wait_for(block[0] * PARTS_PER_SEGMENT + block[1])
        last = self.parts[-1]
        return origin_pb2.FetchPlaylistResponse(playlist="#EXTM3U\n", last_part=last.ref, state=live_pb2.STREAM_STATE_LIVE)

    async def part(self, stream_id, ref):
        self.calls["part"] += 1
        self.part_refs[ref] += 1
        self._check(stream_id)
        return await self._wait_for(ref[0] * PARTS_PER_SEGMENT + ref[1])

    async def segment(self, stream_id, media_sequence):
        self.calls["segment"] += 1
        self._check(stream_id)
        parts = self.parts[media_sequence * PARTS_PER_SEGMENT:(media_sequence + 1) * PARTS_PER_SEGMENT]
        if len(parts) < PARTS_PER_SEGMENT:
            raise NotFound(f"segment {media_sequence} is not complete")
        return origin_pb2.FetchSegmentResponse(media_sequence=media_sequence, data=b"".join(p.data for p in parts))

    async def describe(self, stream_id):
        self.calls["describe"] += 1
        self._check(stream_id)
        info = live_pb2.StreamInfo(stream_id=stream_id, state=live_pb2.STREAM_STATE_ENDED if self.ended
                                   else live_pb2.STREAM_STATE_LIVE)
        if self.parts:
            info.last_part.CopyFrom(self.parts[-1].ref)
        return info

    async def watch(self, stream_id, from_ref):
        self.calls["watch"] += 1
        self.watch_from.append(from_ref)
        self._check(stream_id)
        fail_after = self.fail_watch_after.pop(0) if self.fail_watch_after else None
        index = len(self.parts) if from_ref is None else from_ref[0] * PARTS_PER_SEGMENT + from_ref[1]
        if index > len(self.parts):
            raise NotFound(f"part {from_ref} is outside the DVR window")
        sent = 0
        while True:
            while index < len(self.parts):
                if fail_after is not None and sent >= fail_after:
                    raise ConnectionError("origin restarted")
                yield self.parts[index]
                index += 1
                sent += 1
            if self.ended:
                return
            await self._changed.wait()


async def publish_paced(origin: FakeOrigin, node: LiveEdgeNode, count: int) -> None:
    """Publish ``count`` parts one at a time, letting the feed and its viewers run in between (a real origin's parts
    come one gRPC message at a time; a burst of more than 64 at once would rightly drop every viewer)."""
    for _ in range(count):
        origin.publish()
        target = len(origin.parts)
        await eventually(lambda: node.feed_of(STREAM) is None or node.feed_of(STREAM).last_part is not None
                         and number(node.feed_of(STREAM).last_part) + 1 >= target, "the feed to receive the part")
        for _ in range(3):
            await asyncio.sleep(0)


def make_node(origin: FakeOrigin, **overrides) -> LiveEdgeNode:
    settings = LiveEdgeSettings(**{"client_rtt_ms": 0, "client_bandwidth_kbps": 0, "subscription_grace_ms": 0,
                                   "resubscribe_backoff_ms": 0, **overrides})
    return LiveEdgeNode(settings, origin)


async def eventually(check, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.001)


async def collect(node: LiveEdgeNode, count: int, from_ref=None) -> list[int]:
    """The numbers of the first ``count`` parts StreamParts yields."""
    got = []
    async with contextlib.aclosing(node.stream_parts(STREAM, from_ref)) as parts:
        async for part in parts:
            got.append(number(part))
            if len(got) == count:
                break
    return got


def contiguous(numbers: list[int]) -> bool:
    return numbers == list(range(numbers[0], numbers[0] + len(numbers)))


# ----------------------------------------------------------------------------- coalescing


async def test_concurrent_blocking_part_requests_cost_the_origin_one_call():
    origin = FakeOrigin()
    origin.publish(3)
    node = make_node(origin)
    tasks = [asyncio.create_task(node.part(STREAM, (0, 3))) for _ in range(50)]  # the preload hint, not published
    await eventually(lambda: origin.calls["part"] == 1, "the origin call")
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in tasks)
    origin.publish()
    parts = await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    assert {number(p) for p in parts} == {3}
    assert origin.calls["part"] == 1
    assert node.flights.shared == 49
    # Published parts never change: later requests are cache hits.
    await node.part(STREAM, (0, 3))
    assert origin.calls["part"] == 1


async def test_concurrent_blocking_playlist_reloads_cost_one_call_per_block():
    origin = FakeOrigin()
    origin.publish(2)
    node = make_node(origin)
    tasks = [asyncio.create_task(node.playlist(STREAM, (0, 2))) for _ in range(20)]
    tasks += [asyncio.create_task(node.playlist(STREAM, (0, 3))) for _ in range(20)]
    await eventually(lambda: origin.calls["playlist"] == 2, "two origin calls")
    origin.publish(2)
    replies = await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)
    assert all(r.playlist.startswith("#EXTM3U") for r in replies)
    assert origin.calls["playlist"] == 2


async def test_without_coalescing_every_request_reaches_the_origin():
    origin = FakeOrigin()
    origin.publish(1)
    node = make_node(origin, coalesce_requests=False, cache_bytes=0)
    tasks = [asyncio.create_task(node.part(STREAM, (0, 1))) for _ in range(10)]
    await eventually(lambda: origin.calls["part"] == 10, "ten origin calls")
    origin.publish()
    await asyncio.wait_for(asyncio.gather(*tasks), WAIT_S)


async def test_origin_errors_pass_through():
    origin = FakeOrigin()
    node = make_node(origin)
    with pytest.raises(NotFound):
        await node.part("other", (0, 0))
    with pytest.raises(NotFound):
        await node.segment(STREAM, 0)


# ----------------------------------------------------------------------------- fan-out


async def test_viewers_share_one_subscription_and_get_every_part_in_order():
    origin = FakeOrigin()
    node = make_node(origin)
    viewers = [asyncio.create_task(collect(node, 12)) for _ in range(5)]
    await eventually(lambda: origin.calls["watch"] == 1 and node.feed_of(STREAM) is not None
                     and len(node.feed_of(STREAM).viewers) == 5, "the viewers to join")
    for _ in range(12):
        origin.publish()
        await asyncio.sleep(0)
    results = await asyncio.wait_for(asyncio.gather(*viewers), WAIT_S)
    for got in results:
        assert got == list(range(12))
    assert origin.calls["watch"] == 1
    assert origin.calls["part"] == 0


async def test_a_viewer_without_from_starts_at_the_latest_independent_part():
    origin = FakeOrigin()
    node = make_node(origin, subscription_grace_ms=60_000)  # the second viewer reuses the lingering subscription
    first = asyncio.create_task(collect(node, 7))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the first viewer")
    origin.publish(7)  # parts 0..6: the latest independent is 4 (segment 1, part 0)
    await asyncio.wait_for(first, WAIT_S)
    await eventually(lambda: node.feed_of(STREAM).received == 7, "the feed")
    second = asyncio.create_task(collect(node, 4))
    await eventually(lambda: len(node.feed_of(STREAM).viewers) == 1, "the second viewer")
    origin.publish(2)
    assert await asyncio.wait_for(second, WAIT_S) == [4, 5, 6, 7]
    assert origin.calls["watch"] == 1
    await node.close()


@pytest.mark.parametrize("cache_bytes", [0, 64 * 1024 * 1024])
async def test_joining_mid_stream_with_from_has_no_gap_and_no_duplicate(cache_bytes):
    origin = FakeOrigin()
    node = make_node(origin, ring_parts=EDGE_VIEWER_MAX_LAG_PARTS + 1, cache_bytes=cache_bytes)
    live = asyncio.create_task(collect(node, 150))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the live viewer")
    await publish_paced(origin, node, 100)  # the ring keeps 65 of them: parts 35..99
    joiners = [
        asyncio.create_task(collect(node, 150 - 90, from_ref=(90 // 4, 90 % 4))),  # in the ring
        asyncio.create_task(collect(node, 150 - 50, from_ref=(50 // 4, 50 % 4))),  # in the ring, beyond the lag limit
        asyncio.create_task(collect(node, 150 - 2, from_ref=(0, 2))),  # older than the ring: from the origin
    ]
    for _ in range(50):  # publishing goes on while they catch up
        origin.publish()
        await asyncio.sleep(0)
    assert await asyncio.wait_for(live, WAIT_S) == list(range(150))
    results = await asyncio.wait_for(asyncio.gather(*joiners), WAIT_S)
    assert results[0] == list(range(90, 150))
    assert results[1] == list(range(50, 150))
    assert results[2] == list(range(2, 150))
    assert origin.calls["watch"] == 1
    if cache_bytes:  # the subscription filled the cache: parts that left the ring are hits
        assert origin.calls["part"] == 0
    else:  # from the origin: parts that had left the ring when the viewer got to them, each once
        assert origin.calls["part"] > 0
        assert max(origin.part_refs.values()) == 1
        assert min(origin.part_refs) == (0, 2)


async def test_a_viewer_more_than_64_parts_behind_is_dropped_and_the_others_go_on():
    origin = FakeOrigin()
    node = make_node(origin)
    slow = node.stream_parts(STREAM)
    fast = asyncio.create_task(collect(node, EDGE_VIEWER_MAX_LAG_PARTS + 10))
    first = asyncio.create_task(anext(slow))
    await eventually(lambda: node.feed_of(STREAM) is not None and len(node.feed_of(STREAM).viewers) == 2, "viewers")
    origin.publish()
    assert number(await asyncio.wait_for(first, WAIT_S)) == 0
    await publish_paced(origin, node, EDGE_VIEWER_MAX_LAG_PARTS + 9)  # the slow viewer does not read
    assert await asyncio.wait_for(fast, WAIT_S) == list(range(EDGE_VIEWER_MAX_LAG_PARTS + 10))
    with pytest.raises(ResourceExhausted):
        while True:
            await asyncio.wait_for(anext(slow), WAIT_S)
    await slow.aclose()


async def test_a_failed_subscription_is_reopened_from_the_last_part_without_gap_or_duplicate():
    origin = FakeOrigin()
    origin.fail_watch_after = [5, 3]  # the first two subscriptions fail
    node = make_node(origin)
    viewer = asyncio.create_task(collect(node, 20))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the viewer")
    for _ in range(20):
        origin.publish()
        await asyncio.sleep(0)
    assert await asyncio.wait_for(viewer, WAIT_S) == list(range(20))
    assert origin.calls["watch"] == 3
    assert node.resubscribes == 2
    assert origin.watch_from[0] is None
    assert origin.watch_from[1] == (1, 0)  # part 4, the last received before the failure: its repeat is dropped


async def test_a_subscription_that_cannot_be_reopened_ends_its_viewers_unavailable():
    origin = FakeOrigin()
    origin.fail_watch_after = [1, 0, 0]
    node = make_node(origin, resubscribe_attempts=2)
    stream = node.stream_parts(STREAM)
    first = asyncio.create_task(anext(stream))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the viewer")
    origin.publish(3)
    assert number(await asyncio.wait_for(first, WAIT_S)) == 0
    with pytest.raises(Unavailable):
        while True:
            await asyncio.wait_for(anext(stream), WAIT_S)
    await stream.aclose()
    assert origin.calls["watch"] == 3
    assert node.feed_of(STREAM) is None  # forgotten: the next viewer subscribes again


async def test_an_ended_stream_ends_its_viewers_ok_after_the_last_part():
    origin = FakeOrigin()
    node = make_node(origin)
    viewer = asyncio.create_task(collect(node, 1000))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the viewer")
    origin.publish(6)
    origin.end()
    assert await asyncio.wait_for(viewer, WAIT_S) == list(range(6))
    # A DVR viewer of the ended stream catches up from the origin and ends OK too.
    node2 = make_node(origin)
    assert await asyncio.wait_for(collect(node2, 1000, from_ref=(0, 1)), WAIT_S) == list(range(1, 6))


async def test_unknown_stream_and_a_part_the_stream_will_never_have_are_not_found():
    origin = FakeOrigin()
    node = make_node(origin)
    with pytest.raises(NotFound):
        await asyncio.wait_for(_first(node, "nope"), WAIT_S)
    origin.publish(2)
    origin.end()
    with pytest.raises(NotFound):
        await asyncio.wait_for(_first(node, STREAM, (5, 0)), WAIT_S)


async def _first(node: LiveEdgeNode, stream_id: str, from_ref=None):
    async with contextlib.aclosing(node.stream_parts(stream_id, from_ref)) as parts:
        async for part in parts:
            return part


async def test_shutdown_ends_viewers_unavailable():
    origin = FakeOrigin()
    node = make_node(origin)
    stream = node.stream_parts(STREAM)
    nxt = asyncio.create_task(anext(stream))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the viewer")
    await node.close()
    with pytest.raises(Unavailable):
        await asyncio.wait_for(nxt, WAIT_S)
    await stream.aclose()


async def test_the_subscription_closes_after_the_last_viewer_leaves():
    origin = FakeOrigin()
    node = make_node(origin, subscription_grace_ms=0)
    viewer = asyncio.create_task(collect(node, 2))
    await eventually(lambda: node.feed_of(STREAM) is not None and node.feed_of(STREAM).viewers, "the viewer")
    origin.publish(2)
    await asyncio.wait_for(viewer, WAIT_S)
    await eventually(lambda: node.feed_of(STREAM) is None, "the feed to close")


# ----------------------------------------------------------------------------- over gRPC: status codes


@pytest.fixture
async def edge():
    origin = FakeOrigin()
    node = make_node(origin)
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))])
    edge_pb2_grpc.add_LiveEdgeServiceServicer_to_server(LiveEdgeServicer(node), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield origin, node, edge_pb2_grpc.LiveEdgeServiceStub(channel)
    finally:
        await channel.close()
        await node.close()
        await server.stop(None)


async def test_grpc_status_codes(edge):
    origin, node, stub = edge
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.GetPart(edge_pb2.GetPartRequest(stream_id="bad id!", ref=live_pb2.PartRef()), timeout=WAIT_S)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad.value.details().startswith("stream_id")
    with pytest.raises(grpc.aio.AioRpcError) as no_ref:
        await stub.GetPart(edge_pb2.GetPartRequest(stream_id=STREAM), timeout=WAIT_S)
    assert no_ref.value.code() == grpc.StatusCode.INVALID_ARGUMENT and no_ref.value.details().startswith("ref")
    with pytest.raises(grpc.aio.AioRpcError) as negative:
        await stub.GetPlaylist(edge_pb2.GetPlaylistRequest(stream_id=STREAM, block=live_pb2.PartRef(media_sequence=-1)),
                               timeout=WAIT_S)
    assert negative.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert negative.value.details().startswith("block.media_sequence")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.GetSegment(edge_pb2.GetSegmentRequest(stream_id="other", media_sequence=0), timeout=WAIT_S)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND

    origin.publish(4)
    reply = await stub.GetPart(edge_pb2.GetPartRequest(stream_id=STREAM, ref=live_pb2.PartRef(part_index=2)),
                               timeout=WAIT_S)
    assert number(reply.part) == 2
    segment = await stub.GetSegment(edge_pb2.GetSegmentRequest(stream_id=STREAM, media_sequence=0), timeout=WAIT_S)
    assert len(segment.data) == 400

    call = stub.StreamParts(edge_pb2.StreamPartsRequest(**{"stream_id": STREAM, "from": live_pb2.PartRef(part_index=1)}),
                            timeout=WAIT_S)
    got = [number((await call.read()).part) for _ in range(3)]
    assert got == [1, 2, 3]
    await node.close()  # shutdown: the stream ends UNAVAILABLE
    with pytest.raises(grpc.aio.AioRpcError) as ended:
        while True:
            response = await call.read()
            if response is grpc.aio.EOF:
                break
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
