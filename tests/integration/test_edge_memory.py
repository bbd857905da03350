"""Issue 11 item 7: the edge's and the origin's memory stay bounded under many concurrent distinct misses.

The attack the issue measured: 24 requests for distinct 16 MiB segments took
video-edge from 60 to 535 MiB RSS and video-storage to a 630 MiB peak, since
each stream held its whole segment (and each origin fetch built one). Here
video-storage and video-edge run as their own processes (the harness's
embedded mesh, 127.0.0.1), a rendition of 24 segments of 16 MiB is stored,
and 24 streams ask for one segment each at once, paced so that they overlap.
Both processes' RSS is sampled throughout; the edge must stay within its
cache (32 MiB) + byte budget (32 MiB) + a margin, the origin within its
segment budget + a margin, far below the 384 MiB the 24 segments weigh.
"""

from __future__ import annotations

import asyncio
import os
import time

import psutil
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.services.runtime.authorization import ALLOW_TEST_IDENTITY_ENV
from casemesh.video.v1 import edge_pb2, edge_pb2_grpc, storage_pb2, storage_pb2_grpc, video_pb2

from ..caller_identity import identified_channel

MIB = 1 << 20
SEGMENT = 16 * MIB
STREAMS = 24
#: Margin over the modelled bounds for the interpreter's own growth: gRPC buffers, allocator slack.
MARGIN = 96 * MIB

EDGE = {"cache_bytes": 32 * MIB, "buffer_bytes": 32 * MIB, "client_rtt_ms": 0, "origin_rtt_ms": 0,
        "origin_bandwidth_mbps": 0, "client_bandwidth_kbps": 64_000}  # 16 MiB in about 2 s per stream
STORAGE = {"segment_buffer_bytes": 32 * MIB}


class PeakRss:
    """Samples the RSS of processes every 20 ms in the background; ``peak[pid]`` is the largest seen."""

    def __init__(self, pids: dict[str, int]):
        self.processes = {name: psutil.Process(pid) for name, pid in pids.items()}
        self.peak = {name: 0 for name in pids}
        self._task: asyncio.Task | None = None

    def sample(self) -> dict[str, int]:
        now = {name: p.memory_info().rss for name, p in self.processes.items()}
        for name, rss in now.items():
            self.peak[name] = max(self.peak[name], rss)
        return now

    async def _run(self) -> None:
        while True:
            self.sample()
            await asyncio.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self._task.cancel()
        self.sample()


async def stream_one(edge: edge_pb2_grpc.EdgeServiceStub, index: int) -> tuple[int, bool]:
    """Bytes received for segment ``index`` and whether it was a miss; keeps no bytes."""
    received, miss = 0, False
    request = edge_pb2.StreamSegmentsRequest(video_id="big", generation=1, rendition=video_pb2.RENDITION_1080P,
                                             start_index=index, count=1)
    async for chunk in edge.StreamSegments(request, timeout=120):
        received += len(chunk.data)
        miss |= chunk.cache_result == edge_pb2.CACHE_RESULT_MISS
    return received, miss


@pytest.mark.slow
async def test_concurrent_distinct_misses_keep_edge_and_origin_rss_bounded(tmp_path):
    async with Mesh(["video-storage", "video-edge"], tmp_path, settings={"video-edge": EDGE, "video-storage": STORAGE},
                    env={ALLOW_TEST_IDENTITY_ENV: "1"}) as mesh:
        storage_address = mesh.topology.endpoint("video-storage").address
        async with identified_channel(storage_address, secret=mesh.secret) as channel:
            rendition = video_pb2.RenditionInfo(rendition=video_pb2.RENDITION_1080P, bandwidth_bps=5_000_000,
                                                width_px=1920, height_px=1080, segment_duration_ms=2000)
            rendition.segment_size_bytes.extend([SEGMENT] * STREAMS)
            await storage_pb2_grpc.ObjectStoreServiceStub(channel).PutRendition(storage_pb2.PutRenditionRequest(
                video_id="big", generation=1, rendition=rendition, content_seed="ab" * 32), timeout=10)

        async with identified_channel(mesh.topology.endpoint("video-edge").address, secret=mesh.secret,
                                      options=[("grpc.max_receive_message_length", 8 * MIB)]) as channel:
            edge = edge_pb2_grpc.EdgeServiceStub(channel)
            await stream_one(edge, 0)  # warm both processes up (imports, first buffers) before the baseline
            pids = {"edge": mesh.pid("video-edge"), "storage": mesh.pid("video-storage")}
            with PeakRss(pids) as rss:
                baseline = rss.sample()
                started = time.monotonic()
                results = await asyncio.gather(*(stream_one(edge, i) for i in range(1, STREAMS)),
                                               stream_one(edge, 0))
                took = time.monotonic() - started

    assert [received for received, _ in results] == [SEGMENT] * STREAMS
    assert sum(miss for _, miss in results) >= STREAMS - 3  # distinct segments: nearly all misses
    grew = {name: rss.peak[name] - baseline[name] for name in pids}
    print(f"\n{STREAMS} streams of 16 MiB in {took:.1f} s; baseline RSS MiB "
          f"{ {n: round(v / MIB) for n, v in baseline.items()} }, peak growth MiB { {n: round(v / MIB) for n, v in grew.items()} }")
    assert grew["edge"] <= EDGE["cache_bytes"] + EDGE["buffer_bytes"] + MARGIN, grew
    assert grew["storage"] <= STORAGE["segment_buffer_bytes"] + MARGIN, grew
