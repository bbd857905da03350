"""Shared by the live-streaming integration tests: the mesh, a broadcaster and two kinds of viewer, as clients write them.

:func:`live_mesh` serves the live services (live-ingest, live-origin, live-edge, live-chat) and the chat services their
chat rooms use, in the test's event loop. :class:`Broadcaster` publishes chunks over LiveIngestService.Publish (a
keyframe every ``keyframe_every`` chunks), reconnecting from GetStream's ``next_chunk_sequence`` when asked to;
:class:`StreamingViewer` holds LiveEdgeService.StreamParts and resumes after the last part it got; :class:`Continuity`
is the no-gap check both kinds of viewer apply (each part's first chunk follows the previous part's last one, each part
reference follows the previous one).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from casemesh.live.v1 import edge_pb2, edge_pb2_grpc, ingest_pb2, ingest_pb2_grpc, live_pb2
from casemesh.services.catalog import definitions
from casemesh.services.runtime.topology import Endpoint, ServerPolicy, Topology

from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests
from .conftest import RunningMesh, free_port, start_mesh

LIVE = ["live-ingest", "live-origin", "live-edge", "live-chat"]
CHAT = ["chat-messages", "chat-router", "chat-gateway-1", "chat-gateway-2"]
SERVICES = LIVE + CHAT
#: 30 frames/s (RFC 8216bis examples; Twitch's usual frame rate), 2 s between keyframes.
FRAME_US = 33_333
KEYFRAME_EVERY = 60


@contextlib.asynccontextmanager
async def live_mesh(data_dir: Path | str, settings: dict[str, dict[str, Any]] | None = None,
                    names: Sequence[str] = SERVICES) -> AsyncIterator[RunningMesh]:
    """The live services and the chat services served in this event loop on 127.0.0.1 (data in ``data_dir``)."""
    chosen = list(definitions(list(names)))
    topology = Topology(services={d.name: Endpoint(address=f"127.0.0.1:{free_port()}") for d in chosen},
                        data_dir=str(data_dir), settings=settings or {}, server=ServerPolicy(grace_s=1))
    running, stop, task = await start_mesh(chosen, topology)
    try:
        yield running
    finally:
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def create_stream(channel: grpc.aio.Channel, broadcaster: str, members: Sequence[str] = (),
                        title: str = "test") -> ingest_pb2.CreateStreamResponse:
    stub = ingest_pb2_grpc.LiveIngestServiceStub(channel)
    return await stub.CreateStream(ingest_pb2.CreateStreamRequest(
        broadcaster_id=broadcaster, title=title, chat_member_ids=list(members)), timeout=30)


def chunk(sequence: int, size: int = 200) -> ingest_pb2.PublishRequest:
    """Chunk ``sequence``: one frame of 33,333 µs, a keyframe every 60, ``size`` bytes starting with the sequence."""
    data = sequence.to_bytes(8, "big") + bytes(max(size - 8, 0))
    return ingest_pb2.PublishRequest(chunk=ingest_pb2.MediaChunk(
        sequence=sequence, duration_us=FRAME_US, keyframe=sequence % KEYFRAME_EVERY == 0, data=data))


class Broadcaster:
    """Publishes chunks ``0, 1, 2, ...`` of one stream, ``chunks_per_s`` a second (media time is the chunk count).

    :meth:`run` publishes until :meth:`stop`; on a stream error it (re)connects when ``reconnect`` is set: GetStream
    says which chunk to send next, and it sends again from there. ``sent_at[seq]`` is when chunk ``seq`` was last sent
    (loop time), ``ends`` the status codes of the connections that ended with an error.
    """

    def __init__(self, channel: grpc.aio.Channel, stream_id: str, key: str, *, chunks_per_s: float = 30.0,
                 reconnect: bool = True) -> None:
        self.stub = ingest_pb2_grpc.LiveIngestServiceStub(channel)
        self.stream_id = stream_id
        self.key = key
        self.chunks_per_s = chunks_per_s
        self.reconnect = reconnect
        self.next = 0
        self.sent_at: dict[int, float] = {}
        self.ends: list[grpc.StatusCode] = []
        self.connections = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def _frames(self, start: int) -> AsyncIterator[ingest_pb2.PublishRequest]:
        yield ingest_pb2.PublishRequest(start=ingest_pb2.PublishStart(stream_id=self.stream_id, stream_key=self.key))
        loop = asyncio.get_running_loop()
        self.next = start
        while not self._stop.is_set():
            self.sent_at[self.next] = loop.time()
            yield chunk(self.next)
            self.next += 1
            await asyncio.sleep(1 / self.chunks_per_s)

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                start = 0
                if self.connections:
                    info = await self.stub.GetStream(ingest_pb2.GetStreamRequest(stream_id=self.stream_id), timeout=5)
                    start = info.stream.next_chunk_sequence
                self.connections += 1
                await self.stub.Publish(self._frames(start))
                return
            except grpc.aio.AioRpcError as error:
                self.ends.append(error.code())
                if not self.reconnect:
                    return
                await asyncio.sleep(0.2)


@dataclass
class Continuity:
    """The no-gap check: parts must follow each other by reference and by chunk sequence, each once."""

    last_ref: tuple[int, int] | None = None
    last_ended_segment: bool = False
    next_chunk: int | None = None
    parts: int = 0
    violations: list[str] = field(default_factory=list)

    def add(self, part: live_pb2.Part) -> None:
        ref = (part.ref.media_sequence, part.ref.part_index)
        if self.last_ref is not None:
            expected = ((self.last_ref[0] + 1, 0) if self.last_ended_segment
                        else (self.last_ref[0], self.last_ref[1] + 1))
            if ref != expected:
                self.violations.append(f"part {ref} after {self.last_ref}: expected {expected}")
        if self.next_chunk is not None and part.first_chunk_sequence != self.next_chunk:
            self.violations.append(f"part {ref} starts at chunk {part.first_chunk_sequence}, expected {self.next_chunk}")
        if part.chunk_count < 1 or not part.data:
            self.violations.append(f"part {ref} is empty")
        self.last_ref, self.last_ended_segment = ref, part.ends_segment
        self.next_chunk = part.first_chunk_sequence + part.chunk_count
        self.parts += 1

    def resume_from(self) -> live_pb2.PartRef | None:
        """The part after the last one received (None before the first)."""
        if self.last_ref is None:
            return None
        if self.last_ended_segment:
            return live_pb2.PartRef(media_sequence=self.last_ref[0] + 1, part_index=0)
        return live_pb2.PartRef(media_sequence=self.last_ref[0], part_index=self.last_ref[1] + 1)


class StreamingViewer:
    """Holds LiveEdgeService.StreamParts, checking continuity; resumes after its last part when the stream ends badly.

    ``received_at[chunk_seq]`` is when the part holding that chunk arrived (loop time), for glass-to-glass checks;
    ``ends`` the codes of the streams that ended with an error.
    """

    def __init__(self, channel: grpc.aio.Channel, stream_id: str, start: live_pb2.PartRef | None = None, *,
                 resume: bool = True) -> None:
        self.stub = edge_pb2_grpc.LiveEdgeServiceStub(channel)
        self.stream_id = stream_id
        self.start = start
        self.resume = resume
        self.continuity = Continuity()
        self.received_at: dict[int, float] = {}
        self.ends: list[grpc.StatusCode] = []
        self.call: Any = None
        self._stop = False

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start = self.start
        while not self._stop:
            self.call = self.stub.StreamParts(edge_pb2.StreamPartsRequest(stream_id=self.stream_id, **{"from": start})
                                              if start is not None else
                                              edge_pb2.StreamPartsRequest(stream_id=self.stream_id))
            try:
                async for reply in self.call:
                    now = loop.time()
                    part = reply.part
                    self.continuity.add(part)
                    for seq in range(part.first_chunk_sequence, part.first_chunk_sequence + part.chunk_count):
                        self.received_at.setdefault(seq, now)
                return
            except asyncio.CancelledError:
                if self._stop:  # stop() cancelled the call; grpc.aio raises CancelledError for that
                    return
                raise
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.CANCELLED and self._stop:
                    return
                self.ends.append(error.code())
                if not self.resume:
                    return
                await asyncio.sleep(0.2)
                start = self.continuity.resume_from() or start

    def stop(self) -> None:
        self._stop = True
        if self.call is not None:
            self.call.cancel()
