"""``casemesh.live.v1.LiveIngestService`` (topology name ``live-ingest``).

Seed 001 #12 (shared/seeds/001_58dfc580020147d2.txt), "Live Streaming |
LL-HLS/WebRTC, RTMP ingest, chat moderation, DVR | 1M concurrent viewers":
the ingest server takes a broadcaster's media in (the seed's RTMP ingest; a
client stream of chunks here), packages it into LL-HLS parts and segments
(:mod:`.packager`; RFC 8216bis §4.4.4.9) and appends each part to the origin
as it closes (LiveOriginService.AppendPart), where blocked players and edge
watchers are waiting for it.

- CreateStream (public): a new stream id (22 random characters of
  [A-Za-z0-9_-]), RegisterStream at the origin with this server's targets
  (settings: ``part_target_ms``, the A/B switch, and ``segment_target_ms``),
  then LiveChatService.OpenRoom (live-chat). The stream key is an HMAC of
  the stream id under the mesh secret's ``live-stream-key`` key
  (:class:`StreamKeys`): stateless, so it survives a restart of the ingest
  server and is checked by any ingest server of the mesh.
- GetStream (public): the origin's DescribeStream.
- Publish (public): :class:`Publisher`. ``start`` first, then chunks from
  the origin's ``next_chunk_sequence``; each part the packager closes is
  appended to the origin before the next chunk is read (retried once, with
  the same part, after UNAVAILABLE or DEADLINE_EXCEEDED: the origin answers
  ``duplicate`` when it had applied it). ``end`` appends what is buffered as
  a final part ending its segment and ends the stream at the origin. A
  half-close without ``end`` drops the buffered incomplete part (the
  broadcaster sends those chunks again on reconnect). One Publish per
  stream: a newer one takes over once the older has finished its append in
  flight; the older ends ABORTED.

Status codes, as protos/casemesh/live/v1/ingest.proto says:

- INVALID_ARGUMENT naming ``broadcaster_id``, ``title``,
  ``chat_member_ids[i]`` / ``chat_member_ids`` (CreateStream),
  ``stream_id`` (GetStream), ``start.stream_id`` (also: the first frame is
  not ``start``), ``start`` (a second start), ``chunk.sequence`` (not the
  next one, after the connection's first chunk), ``chunk.duration_us``,
  ``chunk.data``;
- PERMISSION_DENIED: a wrong ``start.stream_key``;
- NOT_FOUND: an unknown stream (GetStream, Publish);
- FAILED_PRECONDITION: Publish to an ended stream; a connection's first
  chunk that is not ``next_chunk_sequence`` (the message says which is); a
  stream's first chunk that is not a keyframe; the origin refusing a part
  (it moved on without this connection);
- ABORTED: another Publish of the same stream took over;
- DEADLINE_EXCEEDED: no ``start`` within ``start_timeout_ms``; an origin
  call that ran out of time (twice, for an append);
- RESOURCE_EXHAUSTED: more than ``max_publishers`` Publish connections;
- UNAVAILABLE: the origin or live-chat cannot be reached; the server shuts
  down (reconnect and resume from GetStream's ``next_chunk_sequence``).

A crash inside one request ends that request (UNKNOWN, logged by the
runtime's interceptor); the server goes on. Settings:
:class:`.settings.IngestSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator

import grpc

from casemesh.live.v1 import chat_pb2, chat_pb2_grpc, ingest_pb2, ingest_pb2_grpc, live_pb2, origin_pb2, origin_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, dependency_error
from ...runtime.secrets import Keyring
from . import validation as check
from .metrics import IngestMetrics
from .packager import Chunk, PackagedPart, Packager
from .settings import PUBLISH_STREAM_SLOTS, IngestSettings

log = logging.getLogger("casemesh.live.ingest")

NAME = "live-ingest"
ORIGIN = "live-origin"
CHAT = "live-chat"
INGEST_SERVICE = ingest_pb2.DESCRIPTOR.services_by_name["LiveIngestService"].full_name
#: The mesh secret's purpose whose key signs stream keys (services/runtime/secrets.py).
STREAM_KEY_PURPOSE = "live-stream-key"
UNARY_SLOTS = 256
_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class StreamKeys:
    """Stream keys: HMAC-SHA256 of the stream id under the ``live-stream-key`` key, 43 characters of urlsafe base64.

    Stateless (nothing stored): any ingest server of the mesh, restarted or
    not, checks a key. A key made under a previous mesh secret still in the
    keyring is accepted (rotation).
    """

    _DOMAIN = b"casemesh/live/stream-key/v1:"

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring

    @classmethod
    def _mac(cls, key: bytes, stream_id: str) -> str:
        digest = hmac.new(key, cls._DOMAIN + stream_id.encode("ascii"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")

    def key_for(self, stream_id: str) -> str:
        """The stream key of ``stream_id``."""
        return self._mac(self._keyring.current_key, stream_id)

    def check(self, stream_id: str, given: str) -> bool:
        """True when ``given`` is ``stream_id``'s key under a key of the keyring (constant-time comparisons)."""
        given_bytes = given.encode("utf-8", "surrogatepass")
        matched = False
        for key in self._keyring.keys.values():
            matched |= hmac.compare_digest(self._mac(key, stream_id).encode("ascii"), given_bytes)
        return matched


def new_stream_id() -> str:
    """22 random characters of [A-Za-z0-9_-] (128 bits)."""
    return secrets.token_urlsafe(16)


def _part_message(stream_id: str, part: PackagedPart) -> live_pb2.Part:
    return live_pb2.Part(
        stream_id=stream_id, ref=live_pb2.PartRef(media_sequence=part.media_sequence, part_index=part.part_index),
        duration_us=part.duration_us, independent=part.independent, first_chunk_sequence=part.first_chunk_sequence,
        chunk_count=part.chunk_count, data=part.data, ends_segment=part.ends_segment)


class PublishEnded(Exception):
    """A Publish must end with ``code`` (taken over: ABORTED; shutdown: UNAVAILABLE)."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


class Publisher:
    """One Publish connection of one stream: its packager, and whether it may be interrupted.

    The handler's task is cancelled to end the connection only while it
    waits for a frame (``reading``); during an append the request to stop is
    noticed when the append returns, so that a takeover never races two
    appenders at the origin. ``done`` is set when the handler has finished.
    """

    def __init__(self, stream_id: str) -> None:
        self.stream_id = stream_id
        self.task = asyncio.current_task()
        self.reading = False
        self.stop: PublishEnded | None = None
        self.done = asyncio.Event()
        self.chunks = 0
        self.parts = 0

    def end(self, reason: PublishEnded) -> None:
        """Ask the connection to end with ``reason`` (the first reason wins)."""
        if self.stop is None:
            self.stop = reason
            if self.reading and self.task is not None:
                self.task.cancel()

    def check(self) -> None:
        if self.stop is not None:
            raise self.stop


class IngestServicer(ingest_pb2_grpc.LiveIngestServiceServicer):
    """CreateStream, GetStream and Publish."""

    def __init__(self, component: IngestComponent) -> None:
        self._c = component

    async def CreateStream(self, request: ingest_pb2.CreateStreamRequest,
                           context: grpc.aio.ServicerContext) -> ingest_pb2.CreateStreamResponse:
        c = self._c
        broadcaster_id = check.required_id("broadcaster_id", request.broadcaster_id)
        title = check.title(request.title)
        members = check.chat_members(request.chat_member_ids, broadcaster_id)
        settings = c.settings
        stream_id = new_stream_id()
        registered = await c.origin.RegisterStream(origin_pb2.RegisterStreamRequest(
            stream_id=stream_id, broadcaster_id=broadcaster_id, title=title,
            part_target_ms=settings.stream_part_target_ms, segment_target_ms=settings.segment_target_ms),
            timeout=c.origin_timeout_s)
        room = await c.chat.OpenRoom(chat_pb2.OpenRoomRequest(stream_id=stream_id, broadcaster_id=broadcaster_id,
                                                              member_ids=members), timeout=c.chat_timeout_s)
        c.metrics.created.inc()
        return ingest_pb2.CreateStreamResponse(stream=registered.stream, stream_key=c.keys.key_for(stream_id),
                                               chat_conversation_id=room.conversation_id)

    async def GetStream(self, request: ingest_pb2.GetStreamRequest,
                        context: grpc.aio.ServicerContext) -> ingest_pb2.GetStreamResponse:
        stream_id = check.required_id("stream_id", request.stream_id)
        info = await self._c.describe(stream_id)
        return ingest_pb2.GetStreamResponse(stream=info)

    async def Publish(self, request_iterator: AsyncIterator[ingest_pb2.PublishRequest],
                      context: grpc.aio.ServicerContext) -> ingest_pb2.PublishResponse:
        c = self._c

        async def refuse(status: grpc.StatusCode, message: str) -> None:
            c.metrics.ended(status.name)
            await context.abort(status, message)

        if c.stopping:
            await refuse(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect")
        timeout_s = c.settings.start_timeout_ms / 1000
        try:
            first = await asyncio.wait_for(anext(request_iterator, None), timeout_s)
        except TimeoutError:
            await refuse(grpc.StatusCode.DEADLINE_EXCEEDED, f"no start frame within {timeout_s * 1000:.0f} ms")
        try:
            if first is None or first.WhichOneof("frame") != "start":
                raise InvalidArgument("start.stream_id", "the first frame must be start (stream_id and stream_key)")
            stream_id = check.required_id("start.stream_id", first.start.stream_id)
            if not c.keys.check(stream_id, first.start.stream_key):
                await refuse(grpc.StatusCode.PERMISSION_DENIED, f"wrong stream key for stream {stream_id!r}")
            publisher = await c.take_over(stream_id)
        except (InvalidArgument, ResourceExhausted) as error:
            c.metrics.ended(_code_name(error))
            raise
        code = "UNKNOWN"
        try:
            response = await c.run(publisher, request_iterator)
            code = "OK"
            return response
        except PublishEnded as ended:
            code = ended.code.name
            await context.abort(ended.code, str(ended))
        except asyncio.CancelledError:
            if publisher.stop is None:
                code = "CANCELLED"
                raise
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()  # our own cancel (taken over, or shutdown while waiting for a frame): consumed here
            code = publisher.stop.code.name
            await context.abort(publisher.stop.code, str(publisher.stop))
        except grpc.aio.AioRpcError as error:
            mapped = dependency_error(error)
            code = _code_name(mapped)
            raise mapped from None
        except Exception as error:
            code = _code_name(error)
            raise
        finally:
            c.release(publisher)
            c.metrics.ended(code)


def _code_name(error: BaseException) -> str:
    """The status code name an error ends a Publish with (for the metrics)."""
    if isinstance(error, grpc.aio.AioRpcError):
        return "DEADLINE_EXCEEDED" if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED else "UNAVAILABLE"
    for kind, name in ((InvalidArgument, "INVALID_ARGUMENT"), (FailedPrecondition, "FAILED_PRECONDITION"),
                       (NotFound, "NOT_FOUND"), (ResourceExhausted, "RESOURCE_EXHAUSTED")):
        if isinstance(error, kind):
            return name
    return "UNKNOWN"


class IngestComponent:
    """One ingest server: its publishers (one per stream), stubs to live-origin and live-chat, the stream keys."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, IngestSettings)
        self.metrics = IngestMetrics()
        self.keys = StreamKeys(context.secret.keyring(STREAM_KEY_PURPOSE))
        self.origin = origin_pb2_grpc.LiveOriginServiceStub(context.channel(ORIGIN))
        self.chat = chat_pb2_grpc.LiveChatServiceStub(context.channel(CHAT))
        self.origin_timeout_s = self.settings.origin_timeout_ms / 1000
        self.chat_timeout_s = self.settings.chat_timeout_ms / 1000
        self.publishers: dict[str, Publisher] = {}
        self.open_count = 0
        self.stopping = False
        self.servicer = IngestServicer(self)

    # -- publishers -------------------------------------------------------------------------------------------------

    async def take_over(self, stream_id: str) -> Publisher:
        """This connection's :class:`Publisher`: an older one of the stream ends ABORTED, once its append is done."""
        if self.open_count >= self.settings.max_publishers:
            raise ResourceExhausted(f"this ingest server holds {self.settings.max_publishers:,} publishers already")
        publisher = Publisher(stream_id)
        self.open_count += 1
        self.metrics.publishers.inc()
        try:
            while (older := self.publishers.get(stream_id)) is not None:
                older.end(PublishEnded(grpc.StatusCode.ABORTED, f"another Publish of stream {stream_id!r} took over"))
                await older.done.wait()
            self.publishers[stream_id] = publisher
            if self.stopping:  # stop() took its list while this one waited for the older one: end it the same way
                publisher.end(PublishEnded(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect and "
                                                                        f"resume from GetStream's next_chunk_sequence"))
        except BaseException:
            self._count_closed()
            publisher.done.set()
            raise
        return publisher

    def release(self, publisher: Publisher) -> None:
        if self.publishers.get(publisher.stream_id) is publisher:
            del self.publishers[publisher.stream_id]
        self._count_closed()
        publisher.done.set()

    def _count_closed(self) -> None:
        self.open_count -= 1
        self.metrics.publishers.dec()

    # -- origin calls -----------------------------------------------------------------------------------------------

    async def describe(self, stream_id: str) -> live_pb2.StreamInfo:
        try:
            response = await self.origin.DescribeStream(origin_pb2.DescribeStreamRequest(stream_id=stream_id),
                                                        timeout=self.origin_timeout_s)
        except grpc.aio.AioRpcError as error:
            raise dependency_error(error) from None
        return response.stream

    async def _append(self, stream_id: str, part: PackagedPart) -> None:
        """AppendPart, retried once with the same part after UNAVAILABLE or DEADLINE_EXCEEDED."""
        request = origin_pb2.AppendPartRequest(part=_part_message(stream_id, part))
        started = time.perf_counter()
        try:
            response = await self.origin.AppendPart(request, timeout=self.origin_timeout_s)
        except grpc.aio.AioRpcError as error:
            if error.code() not in _RETRYABLE:
                raise
            response = await self.origin.AppendPart(request, timeout=self.origin_timeout_s)
        self.metrics.append_seconds.observe(time.perf_counter() - started)
        self.metrics.parts[response.duplicate].inc()

    # -- one connection ---------------------------------------------------------------------------------------------

    async def run(self, publisher: Publisher, frames: AsyncIterator[ingest_pb2.PublishRequest]) -> ingest_pb2.PublishResponse:
        """Package and append ``frames`` (after ``start``) until ``end`` or half-close."""
        stream_id = publisher.stream_id
        info = await self.describe(stream_id)
        if info.state == live_pb2.STREAM_STATE_ENDED:
            raise FailedPrecondition(f"stream {stream_id!r} has ended")
        packager = Packager.resume(info)
        arrivals: deque[tuple[int, float]] = deque()  # (chunk sequence, arrival) of chunks in no appended part yet
        metrics = self.metrics
        while True:
            publisher.check()
            publisher.reading = True
            try:
                frame = await anext(frames, None)
            finally:
                publisher.reading = False
            publisher.check()
            kind = frame.WhichOneof("frame") if frame is not None else None
            if kind == "chunk":
                chunk: Chunk = check.chunk(frame.chunk)
                arrived = time.perf_counter()
                metrics.chunks.inc()
                metrics.chunk_bytes.inc(len(chunk.data))
                if publisher.chunks == 0 and chunk.sequence != packager.next_chunk_sequence:
                    raise FailedPrecondition(f"the first chunk of this connection is {chunk.sequence}; the stream "
                                             f"expects chunk {packager.next_chunk_sequence} (GetStream's "
                                             f"next_chunk_sequence)")
                parts = packager.feed(chunk)
                publisher.chunks += 1
                arrivals.append((chunk.sequence, arrived))
                for part in parts:
                    await self._append(stream_id, part)
                    publisher.parts += 1
                    self._delivered(arrivals, part.first_chunk_sequence + part.chunk_count)
            elif kind == "end":
                for part in packager.end():
                    await self._append(stream_id, part)
                    publisher.parts += 1
                    self._delivered(arrivals, part.first_chunk_sequence + part.chunk_count)
                ended = await self.origin.EndStream(origin_pb2.EndStreamRequest(stream_id=stream_id),
                                                    timeout=self.origin_timeout_s)
                return self._summary(publisher, packager, ended.stream.state)
            elif kind is None:
                break  # half-close without end: the buffered chunks are dropped, the stream stays live
            else:
                raise InvalidArgument("start", "only the first frame of a connection may be start")
        live = publisher.parts > 0 or info.state == live_pb2.STREAM_STATE_LIVE
        return self._summary(publisher, packager, live_pb2.STREAM_STATE_LIVE if live else info.state)

    @staticmethod
    def _summary(publisher: Publisher, packager: Packager, state: int) -> ingest_pb2.PublishResponse:
        return ingest_pb2.PublishResponse(chunks_received=publisher.chunks, parts_published=publisher.parts,
                                          next_chunk_sequence=packager.committed_chunk_sequence, state=state)

    def _delivered(self, arrivals: deque[tuple[int, float]], until_sequence: int) -> None:
        now = time.perf_counter()
        observe = self.metrics.packaging_delay.observe
        while arrivals and arrivals[0][0] < until_sequence:
            observe(now - arrivals.popleft()[1])

    # -- component --------------------------------------------------------------------------------------------------

    def register(self, server: grpc.aio.Server) -> None:
        ingest_pb2_grpc.add_LiveIngestServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        """End every Publish with UNAVAILABLE (broadcasters reconnect, to any ingest server) and wait for them."""
        self.stopping = True
        publishers = list(self.publishers.values())
        for publisher in publishers:
            publisher.end(PublishEnded(grpc.StatusCode.UNAVAILABLE, f"{NAME} is shutting down; reconnect and "
                                                                    f"resume from GetStream's next_chunk_sequence"))
        if publishers:
            await asyncio.wait([asyncio.ensure_future(p.done.wait()) for p in publishers],
                               timeout=2 * self.origin_timeout_s + 1)


async def build(context: RuntimeContext) -> IngestComponent:
    return IngestComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(INGEST_SERVICE,), dependencies=(ORIGIN, CHAT), build=build,
    settings_model=IngestSettings,
    access=Access(public={"CreateStream", "GetStream", "Publish"}),
    # Publish streams last as long as a broadcast: their own slots, not the 256 of unary work.
    default_limits={INGEST_SERVICE: PUBLISH_STREAM_SLOTS + UNARY_SLOTS,
                    f"{INGEST_SERVICE}/Publish": PUBLISH_STREAM_SLOTS},
)
