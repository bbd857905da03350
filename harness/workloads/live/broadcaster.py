"""A broadcaster: one LiveIngestService.Publish client stream per stream, for the whole run, in real media time.

It sends ``start``, then chunk after chunk as its encoder makes them
(:class:`~.media.ChunkPlan`): chunk ``n`` is due at ``t0 + n / frame_rate``
on the monotonic clock, so a late send never shifts the ones after it. Each
chunk's capture time goes into the glass-to-glass ledger when it is made
(the capture instant, not the write: a chunk held up by a slow stream is
late by that much on every viewer's screen too).

It keeps the last ``resend_buffer_s`` of chunks. When its stream fails
(UNAVAILABLE: the ingest server went away; any other error alike), it asks
GetStream for ``next_chunk_sequence`` (one past the last chunk of the last
published part: the chunks of a part that never closed were lost with the
connection), publishes again from there out of its buffer (a chunk older
than the buffer is made again, counted in ``resend_misses``), then carries
on with the schedule, so the chunks due during the outage go out at once.
It retries after 100 ms doubling up to 2 s. At the end of the run it
half-closes without ``end``: the stream stays live, as a broadcaster's
dropped connection leaves it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import grpc

from casemesh.live.v1 import ingest_pb2

from .media import ChunkPlan, GlassToGlass
from .seeding import INGEST, StreamPlan

log = logging.getLogger("casemesh.workloads.live")

#: The Publish call's deadline: longer than any run (the stream is closed by the broadcaster, not by a deadline).
PUBLISH_TIMEOUT_S = 7 * 24 * 3600.0
#: Seconds to wait for the PublishResponse after the half-close.
CLOSE_TIMEOUT_S = 5.0
RECONNECT_BASE_S = 0.1
RECONNECT_MAX_S = 2.0


class Broadcaster:
    """One stream's broadcaster (see the module docstring); :meth:`run` until :meth:`stop`."""

    def __init__(self, stream: StreamPlan, chunks: ChunkPlan, ledger: GlassToGlass, streams: Any, *,
                 buffer_chunks: int, clock: Any = time.perf_counter):
        self.stream = stream
        self.chunks = chunks
        self.ledger = ledger
        self.streams = streams
        self.clock = clock
        self.buffer: collections.deque[ingest_pb2.MediaChunk] = collections.deque(maxlen=max(buffer_chunks, 1))
        #: The next chunk to send on the current connection, and the next one the encoder makes.
        self.next_sequence = 0
        self.generated = 0
        #: Monotonic instant of chunk 0's capture (set by :meth:`run`).
        self.t0 = 0.0
        self.closing = False
        self.sessions = 0
        self.reconnects = 0
        self.resent = 0
        self.resend_misses = 0
        #: Chunks sent on the current connection (a connection that carried one resets the reconnect backoff).
        self.session_chunks = 0
        self.last_error: str | None = None
        self.task: asyncio.Task | None = None
        self.started = asyncio.Event()

    # the encoder -----------------------------------------------------------------------------------------------

    def make(self, sequence: int) -> ingest_pb2.MediaChunk:
        """Chunk ``sequence`` as captured on the schedule (its bytes carry its capture time)."""
        captured_ns = self.streams.wall_ns(self.t0 + self.chunks.capture_offset_s(sequence))
        return ingest_pb2.MediaChunk(sequence=sequence, duration_us=self.chunks.duration_us(sequence),
                                     keyframe=self.chunks.keyframe(sequence), data=self.chunks.data(sequence, captured_ns))

    def chunk(self, sequence: int) -> ingest_pb2.MediaChunk:
        """Chunk ``sequence`` made before: from the resend buffer, else made again (a miss)."""
        buffer = self.buffer
        if buffer:
            position = sequence - buffer[0].sequence
            if 0 <= position < len(buffer):
                return buffer[position]
        self.resend_misses += 1
        return self.make(sequence)

    def due(self, sequence: int) -> float:
        """Monotonic instant chunk ``sequence`` is captured (and due to be sent)."""
        return self.t0 + self.chunks.capture_offset_s(sequence)

    async def frames(self) -> Any:
        """One connection's frames: ``start``, then chunks from :attr:`next_sequence`; returns (a half-close) once
        :attr:`closing`."""
        self.sessions += 1
        self.session_chunks = 0
        yield ingest_pb2.PublishRequest(start=ingest_pb2.PublishStart(
            stream_id=self.stream.stream_id, stream_key=self.stream.stream_key))
        while not self.closing:
            sequence = self.next_sequence
            if sequence < self.generated:
                chunk = self.chunk(sequence)
                self.resent += 1
            else:
                delay = self.due(sequence) - self.clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    if self.closing:
                        return
                chunk = self.make(sequence)
                self.buffer.append(chunk)
                self.generated = sequence + 1
                self.ledger.sent(self.stream.index, sequence, self.streams.wall_ns(self.due(sequence)))
            self.next_sequence = sequence + 1
            self.session_chunks += 1
            self.started.set()
            yield ingest_pb2.PublishRequest(chunk=chunk)

    # the connection --------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Publish until :meth:`stop`, reconnecting after failures (see the module docstring).

        The first connection too starts at GetStream's ``next_chunk_sequence``: a stream seeded once and published
        in several runs (``casemesh capacity``'s steps) goes on from where the last run left it, with chunk
        ``next_chunk_sequence`` captured now.
        """
        first = await self.next_chunk_sequence(1)
        if first is None:
            return
        self.next_sequence = self.generated = first
        self.t0 = self.clock() - self.chunks.capture_offset_s(first)
        failures = 0
        while not self.closing:
            try:
                await self.streams.call(INGEST, "Publish", self.frames(), timeout_s=PUBLISH_TIMEOUT_S)
                if self.closing:
                    return
                self.last_error = "OK"  # the server ended it without being asked: connect again
            except grpc.aio.AioRpcError as error:
                self.last_error = error.code().name
                if self.closing:
                    return
                log.info("%s: Publish ended %s at chunk %d: %s", self.stream.stream_id, self.last_error,
                         self.next_sequence, error.details())
                if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND,
                                    grpc.StatusCode.INVALID_ARGUMENT):
                    log.warning("%s: Publish refused %s: the broadcaster stops", self.stream.stream_id, self.last_error)
                    return
            failures = 1 if self.session_chunks else failures + 1  # the backoff restarts after a connection that worked
            await self.resync(failures)

    async def next_chunk_sequence(self, attempt: int, *, back_off: bool = False) -> int | None:
        """GetStream's ``next_chunk_sequence``, asked until the ingest answers (after 100 ms doubling to 2 s between
        tries, and before the first when ``back_off``); None once the run ends first."""
        while not self.closing:
            if back_off:
                await asyncio.sleep(min(RECONNECT_BASE_S * 2 ** min(attempt - 1, 10), RECONNECT_MAX_S))
            back_off = True
            try:
                response = await self.streams.call(INGEST, "GetStream", ingest_pb2.GetStreamRequest(stream_id=self.stream.stream_id))
            except grpc.aio.AioRpcError as error:
                attempt += 1
                log.info("%s: GetStream failed %s", self.stream.stream_id, error.code().name)
                continue
            return response.stream.next_chunk_sequence
        return None

    async def resync(self, failures: int) -> None:
        """After a failed connection: back off, then resume at GetStream's ``next_chunk_sequence``."""
        resume = await self.next_chunk_sequence(failures, back_off=True)
        if resume is None:
            return
        if resume > self.generated:  # pragma: no cover - the server holds chunks never sent: a contract breach
            log.warning("%s: next_chunk_sequence %d is past the %d chunks sent", self.stream.stream_id, resume, self.generated)
            resume = self.generated
        self.next_sequence = resume
        self.reconnects += 1

    def start(self) -> asyncio.Task:
        self.task = asyncio.get_running_loop().create_task(self.run(), name=f"live-broadcaster-{self.stream.index}")
        return self.task

    async def stop(self) -> None:
        """Half-close (no ``end``: the stream stays live) and wait for the PublishResponse."""
        self.closing = True
        task = self.task
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), CLOSE_TIMEOUT_S)
        except (TimeoutError, grpc.aio.AioRpcError):
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
