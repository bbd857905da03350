"""The connected devices of one load process: one Connect stream per user, held open for the run.

A :class:`Clients` is what the chat workload's ``connect`` returns (the state
its journeys get). Each user of this process's share
(``users[index::count]``, :attr:`casemesh.harness.streams.Streams.share`) has
one device whose bidi stream goes to a connection server picked by user
(client-side load balancing over ``GATEWAYS``). Like a real client, a device:

- sends ``hello`` and waits for ``connected``;
- acknowledges every message it receives as DELIVERED at once;
- heartbeats (any frame keeps a session alive; idle devices send
  ``heartbeat`` every interval the server asked for);
- reconnects by itself when its stream ends unexpectedly (a connection server
  went away), to the next gateway, and resends its unconfirmed sends with the
  same ``client_message_id`` (the server stores each key once).

Measures (recorded for sends intended after the warm-up):

- ``delivery``: a one-to-one message's intended send (the arrival's intended
  start) → the recipient's stream has it. The sender's intended send time
  travels in the body's first 8 bytes (Unix ns, big-endian), so the
  recipient may be held by another worker process of the same machine;
- ``group_delivery``: the same for each member of a group who is online.

Stream integrity is checked as messages arrive: within one session the
messages of a conversation must come in increasing sequence. A message
that breaks it is recorded under its measure with status ``DATA_LOSS``
and logged; so is a message seen twice in one session.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import grpc

from casemesh.chat.v1 import gateway_pb2, message_pb2
from casemesh.services.chat.contract import HEARTBEAT_INTERVAL_MS

from ...streams import BidiStream, Streams
from .seeding import GATEWAYS, State

log = logging.getLogger("casemesh.workloads.chat")

#: Measures: a one-to-one message's intended send → the recipient's stream has it; the same per group member.
DELIVERY = "delivery"
GROUP_DELIVERY = "group_delivery"
#: The body's header: the intended send time, Unix ns, 8 bytes big-endian.
HEADER_BYTES = 8
#: Seconds a device waits for ``connected`` before giving up on a connection attempt.
CONNECT_TIMEOUT_S = 10.0
#: Seconds between a device's reconnection attempts after its stream ended unexpectedly.
RECONNECT_BACKOFF_S = 0.2
DEVICE_ID = "d1"


def encode_body(sent_wall_ns: int, size_bytes: int, rng: random.Random) -> bytes:
    """A body of ``size_bytes`` (at least the 8-byte header) carrying the intended send time."""
    return sent_wall_ns.to_bytes(HEADER_BYTES, "big") + rng.randbytes(max(size_bytes - HEADER_BYTES, 0))


def sent_wall_ns(body: bytes) -> int | None:
    """The intended send time of a body made by :func:`encode_body` (``None`` for a shorter body)."""
    return int.from_bytes(body[:HEADER_BYTES], "big") if len(body) >= HEADER_BYTES else None


def rpc_error(code: grpc.StatusCode, details: str) -> grpc.aio.AioRpcError:
    """A client-side error as a journey raises it (its code becomes the journey's status)."""
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


@dataclass(eq=False)
class Device:
    """One user's device: its stream, session and unconfirmed sends."""

    user: str
    gateway: int
    stream: BidiStream | None = None
    reader: asyncio.Task | None = None
    connected: asyncio.Future | None = None
    #: client_message_id → (future of its Sent frame, the Send frame) until confirmed.
    pending: dict[str, tuple[asyncio.Future, gateway_pb2.Send]] = field(default_factory=dict)
    #: Highest sequence seen per conversation in the current session.
    session_last: dict[str, int] = field(default_factory=dict)
    last_frame_at: float = 0.0
    sessions: int = 0


class Clients:
    """This process's devices (see the module docstring); journeys get it as their state."""

    def __init__(self, streams: Streams, state: State):
        self.streams = streams
        self.state = state
        index, count = streams.share
        self.local = state.users[index::count]
        # Devices spread over the gateways by the user's place among all users: the same gateway in every process.
        self.devices = {user: Device(user, i % len(GATEWAYS)) for i, user in list(enumerate(state.users))[index::count]}
        self._ids = itertools.count(1)
        self._prefix = f"w{index}-{random.Random().getrandbits(32):08x}-"
        self._closing = False
        self._heartbeat: asyncio.Task | None = None
        self._rng = random.Random(f"chat-bodies-{index}")
        self.heartbeat_interval_s = HEARTBEAT_INTERVAL_MS / 1000
        self.integrity_errors = 0
        self.reconnects = 0

    # connecting ------------------------------------------------------------------------------------------------

    async def connect_all(self, concurrency: int) -> None:
        """Connect every local device, ``concurrency`` at a time; raises the first failure."""
        limit = asyncio.Semaphore(concurrency)

        async def one(device: Device) -> None:
            async with limit:
                await self.connect(device, self.streams.open(GATEWAYS[device.gateway], "Connect"))

        await asyncio.gather(*(one(d) for d in self.devices.values()))
        self._heartbeat = asyncio.create_task(self._heartbeats(), name="chat-heartbeats")

    async def connect(self, device: Device, stream: BidiStream) -> gateway_pb2.Connected:
        """Say hello on ``stream``, start its reader, wait for ``connected``, resend unconfirmed sends."""
        device.stream = stream
        device.session_last = {}
        device.connected = asyncio.get_running_loop().create_future()
        device.sessions += 1
        stream.send(gateway_pb2.ConnectRequest(hello=gateway_pb2.Hello(user_id=device.user, device_id=DEVICE_ID)))
        device.reader = asyncio.create_task(self._read(device, stream), name=f"chat-reader-{device.user}")
        try:
            connected = await asyncio.wait_for(asyncio.shield(device.connected), CONNECT_TIMEOUT_S)
        except TimeoutError:
            stream.cancel()
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{device.user}: no connected frame within {CONNECT_TIMEOUT_S:g} s") from None
        self.heartbeat_interval_s = max(connected.heartbeat_interval_ms, 100) / 1000
        for _, send in list(device.pending.values()):
            stream.send(gateway_pb2.ConnectRequest(send=send))
        device.last_frame_at = time.perf_counter()
        return connected

    async def reconnect(self, device: Device, open_stream: Any) -> gateway_pb2.Connected:
        """Half-close the device's stream, wait for it to end, then connect through ``open_stream(gateway)``."""
        old = device.stream
        if old is not None and not old.ended:
            device.stream = None  # its reader must not reconnect by itself
            await old.close()
        self.reconnects += 1
        return await self.connect(device, open_stream(GATEWAYS[device.gateway]))

    async def _read(self, device: Device, stream: BidiStream) -> None:
        while (frame := await stream.recv()) is not None:
            kind = frame.WhichOneof("frame")
            if kind == "message":
                self._on_message(device, stream, frame.message)
            elif kind == "sent":
                waiting = device.pending.pop(frame.sent.client_message_id, None)
                if waiting is not None and not waiting[0].done():
                    waiting[0].set_result(frame.sent)
            elif kind == "rejected":
                rejected = frame.rejected
                waiting = device.pending.pop(rejected.client_message_id, None)
                if waiting is not None and not waiting[0].done():
                    waiting[0].set_exception(rpc_error(_status(rejected.code), f"{rejected.field}: {rejected.message}"))
                elif not rejected.client_message_id:
                    log.warning("%s: an ack was rejected: %s %s", device.user, rejected.field, rejected.message)
            elif kind == "connected" and device.connected is not None and not device.connected.done():
                device.connected.set_result(frame.connected)
        if device.connected is not None and not device.connected.done():
            device.connected.set_exception(rpc_error(grpc.StatusCode[stream.code or "CANCELLED"],
                                                     f"{device.user}: the stream ended before connected"))
        if not self._closing and device.stream is stream and stream.code not in ("OK", "CANCELLED"):
            asyncio.get_running_loop().create_task(self._recover(device, stream.code))

    async def _recover(self, device: Device, code: str | None) -> None:
        """Reconnect a device whose stream ended with ``code`` (e.g. UNAVAILABLE), trying the gateways in turn."""
        log.info("%s: stream ended %s, reconnecting", device.user, code)
        for attempt in range(20):
            if self._closing:
                return
            device.gateway = (device.gateway + 1) % len(GATEWAYS)
            try:
                await self.connect(device, self.streams.open(GATEWAYS[device.gateway], "Connect"))
                self.reconnects += 1
                return
            except grpc.aio.AioRpcError as error:
                log.info("%s: reconnect attempt %d to %s failed: %s", device.user, attempt + 1, GATEWAYS[device.gateway],
                         error.code().name)
                await asyncio.sleep(RECONNECT_BACKOFF_S * (attempt + 1))
        log.warning("%s: gave up reconnecting", device.user)

    def _on_message(self, device: Device, stream: BidiStream, message: message_pb2.ChatMessage) -> None:
        now_ns = time.time_ns()
        conversation, sequence = message.conversation_id, message.sequence
        stream.send(gateway_pb2.ConnectRequest(ack=gateway_pb2.Ack(
            conversation_id=conversation, up_to_sequence=sequence, state=message_pb2.RECEIPT_STATE_DELIVERED)))
        device.last_frame_at = time.perf_counter()
        in_order = sequence > device.session_last.get(conversation, 0)
        if in_order:
            device.session_last[conversation] = sequence
        if message.sender_id == device.user:
            return  # its own message, echoed from another device's send
        sent_ns = sent_wall_ns(message.body)
        if sent_ns is None:
            return
        measure = GROUP_DELIVERY if conversation.startswith("group:") else DELIVERY
        code = "OK"
        if not in_order:
            self.integrity_errors += 1
            code = "DATA_LOSS"
            log.warning("%s: %s sequence %d after %d in one session (out of order or duplicate)", device.user, conversation,
                        sequence, device.session_last.get(conversation, 0))
        self.streams.observe(measure, (now_ns - sent_ns) / 1e9, code, sent_at=self.streams.perf_at(sent_ns))

    async def _heartbeats(self) -> None:
        """Send ``heartbeat`` on every device idle for half an interval, spreading the sweep over the interval."""
        while not self._closing:
            devices = list(self.devices.values())
            pause = self.heartbeat_interval_s / 2 / max(len(devices), 1)
            for i, device in enumerate(devices):
                if self._closing:
                    return
                now = time.perf_counter()
                if device.stream is not None and not device.stream.ended and now - device.last_frame_at >= self.heartbeat_interval_s / 2:
                    device.stream.send(gateway_pb2.ConnectRequest(heartbeat=gateway_pb2.Heartbeat()))
                    device.last_frame_at = now
                if i % 50 == 49:
                    await asyncio.sleep(pause * 50)
            await asyncio.sleep(max(pause, 0.01))

    # sending ---------------------------------------------------------------------------------------------------

    async def send(self, device: Device, conversation: str, body: bytes, timeout_s: float) -> gateway_pb2.Sent:
        """Send ``body`` to ``conversation`` from ``device``; returns the ``sent`` frame (the "sent" receipt).

        Raises ``AioRpcError``: the ``rejected`` frame's code, or
        DEADLINE_EXCEEDED when no answer came within ``timeout_s``.
        """
        client_message_id = f"{self._prefix}{next(self._ids)}"
        send = gateway_pb2.Send(client_message_id=client_message_id, conversation_id=conversation, body=body)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        device.pending[client_message_id] = (future, send)
        if device.stream is not None and not device.stream.ended:
            device.stream.send(gateway_pb2.ConnectRequest(send=send))
            device.last_frame_at = time.perf_counter()
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, f"{client_message_id}: not confirmed within {timeout_s:g} s") from None
        finally:
            device.pending.pop(client_message_id, None)

    def body(self, intended_at: float, size_bytes: int) -> bytes:
        """A message body carrying the intended send time ``intended_at`` (perf_counter s)."""
        return encode_body(self.streams.wall_ns(intended_at), size_bytes, self._rng)

    # closing ---------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Half-close every stream (they end OK) and stop the readers."""
        self._closing = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        streams = [d.stream for d in self.devices.values() if d.stream is not None]
        limit = asyncio.Semaphore(256)

        async def close_one(stream: BidiStream) -> None:
            async with limit:
                await stream.close()

        await asyncio.gather(*(close_one(s) for s in streams), return_exceptions=True)
        readers = [d.reader for d in self.devices.values() if d.reader is not None]
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        if self.integrity_errors:
            log.warning("chat: %d messages came out of order or twice in one session", self.integrity_errors)


def _status(value: int) -> grpc.StatusCode:
    """A Rejected frame's code number as a ``grpc.StatusCode`` (UNKNOWN for an unknown number)."""
    return next((status for status in grpc.StatusCode if status.value[0] == value), grpc.StatusCode.UNKNOWN)
