"""Killing live-ingest mid-broadcast, then live-edge mid-watch: no viewer misses or repeats a chunk.

CASE-STUDY.md point 5 for live streaming (seed 001 #12): the invariant is no gap in the media sequence a viewer
receives. The mesh runs as separate processes (harness Mesh). A broadcaster publishes in real time (30 chunks/s) while
three viewers hold StreamParts streams on the edge, one of them from the start of the DVR window.

- live-ingest gets SIGKILL: the broadcaster's Publish fails; it reconnects once the ingest server is back, asks
  GetStream where to resume (the origin's ``next_chunk_sequence``: the chunks of the part that never closed are sent
  again) and publishes on. The restarted ingest server rebuilds its packager from the origin's StreamInfo.
- live-edge gets SIGKILL: every viewer's stream fails; each reconnects once the edge is back and resumes from the part
  after the last one it received.

Afterwards every viewer's parts follow each other by reference and by chunk sequence (no gap, no duplicate), and the
viewer that started at the beginning holds every chunk from 0 to its last, each once.
"""

from __future__ import annotations

import asyncio
import signal

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.live.v1 import live_pb2

from .live import LIVE, Broadcaster, StreamingViewer, create_stream, eventually

#: Client channels reconnect quickly: a service is gone for a few seconds only.
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                  ("grpc.max_reconnect_backoff_ms", 1000))
#: The mesh without live-chat's rooms' consumers: live-ingest opens a room at CreateStream, so the chat services run too.
SERVICES = LIVE + ["chat-messages", "chat-router"]


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
async def test_sigkill_of_ingest_then_edge_leaves_no_gap_in_any_viewer(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in ("live-ingest", "live-edge")}
        tasks: list[asyncio.Task] = []
        viewers: list[StreamingViewer] = []
        broadcaster = None
        try:
            created = await create_stream(channels["live-ingest"], "restart-caster")
            stream_id = created.stream.stream_id
            broadcaster = Broadcaster(channels["live-ingest"], stream_id, created.stream_key)
            tasks.append(asyncio.create_task(broadcaster.run()))
            await eventually(lambda: broadcaster.next > 45, "a second and a half of media published")
            viewers = [StreamingViewer(channels["live-edge"], stream_id, live_pb2.PartRef(media_sequence=0, part_index=0)),
                       StreamingViewer(channels["live-edge"], stream_id),
                       StreamingViewer(channels["live-edge"], stream_id)]
            tasks += [asyncio.create_task(v.run()) for v in viewers]
            await eventually(lambda: all(v.continuity.parts >= 3 for v in viewers), "every viewer receiving parts")

            connections = broadcaster.connections
            assert mesh.kill("live-ingest", signal.SIGKILL) == -signal.SIGKILL
            await eventually(lambda: broadcaster.ends, "the broadcaster's connection to fail")
            await asyncio.sleep(0.5)
            await mesh.start_services(["live-ingest"])
            await eventually(lambda: broadcaster.connections > connections, "the broadcaster to reconnect")
            parts_then = [v.continuity.parts for v in viewers]
            await eventually(lambda: all(v.continuity.parts >= n + 10 for v, n in zip(viewers, parts_then)),
                             "ten more parts at every viewer after the ingest restart")

            assert mesh.kill("live-edge", signal.SIGKILL) == -signal.SIGKILL
            await eventually(lambda: all(v.ends for v in viewers), "every viewer's stream to fail")
            await mesh.start_services(["live-edge"])
            parts_then = [v.continuity.parts for v in viewers]
            await eventually(lambda: all(v.continuity.parts >= n + 10 for v, n in zip(viewers, parts_then)),
                             "ten more parts at every viewer after the edge restart")
        finally:
            if broadcaster is not None:
                broadcaster.stop()
            for v in viewers:
                v.stop()
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
            for channel in channels.values():
                await channel.close()
        for v in viewers:
            assert not v.continuity.violations, v.continuity.violations
        assert broadcaster.connections >= 2 and broadcaster.ends
        assert all(v.ends and set(v.ends) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL} for v in viewers), \
            [v.ends for v in viewers]
        from_start = viewers[0]
        assert sorted(from_start.received_at) == list(range(len(from_start.received_at)))  # chunk 0 on, each once
