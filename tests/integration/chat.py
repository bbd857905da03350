"""Shared by the chat integration tests: a device's Connect stream as a client app holds it, and the delivery checks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

import grpc

from casemesh.chat.v1 import gateway_pb2, gateway_pb2_grpc, message_pb2

from .waiting import WAIT_S, eventually  # noqa: F401 - re-exported to the tests

SERVICES = ["chat-messages", "chat-router", "chat-gateway-1", "chat-gateway-2"]
GATEWAYS = ["chat-gateway-1", "chat-gateway-2"]
DELIVERED = message_pb2.RECEIPT_STATE_DELIVERED
READ = message_pb2.RECEIPT_STATE_READ


class Device:
    """One device's Connect session: frames collected as they come; ``auto_ack`` acknowledges every message DELIVERED.

    Per session it checks the gateway's guarantee as frames arrive: within a
    conversation each message's sequence is the previous one's + 1 (in
    order, each once, no gap) — violations are collected in ``violations``.
    """

    def __init__(self, channel: grpc.aio.Channel, user: str, device: str = "phone", *, auto_ack: bool = True,
                 heartbeat: bool = True) -> None:
        self.stub = gateway_pb2_grpc.ChatGatewayServiceStub(channel)
        self.user = user
        self.device = device
        self.auto_ack = auto_ack
        self.heartbeat = heartbeat
        self.call = None
        self.connected: gateway_pb2.Connected | None = None
        self.messages: list[message_pb2.ChatMessage] = []
        self.sent: dict[str, gateway_pb2.Sent] = {}
        self.receipts: list[message_pb2.Receipt] = []
        self.rejected: list[gateway_pb2.Rejected] = []
        self.violations: list[str] = []
        self.code: grpc.StatusCode | None = None
        self.details = ""
        self._last: dict[str, int] = {}
        self._tasks: list[asyncio.Task] = []
        self._connected = asyncio.Event()
        self._done = asyncio.Event()
        self._write_lock = asyncio.Lock()  # grpc.aio takes one write at a time per call

    async def write(self, request: gateway_pb2.ConnectRequest) -> None:
        async with self._write_lock:
            await self.call.write(request)

    async def connect(self) -> gateway_pb2.Connected:
        """Open the stream, say hello, wait for ``connected`` (raises ``AssertionError`` with the status if it ended)."""
        self.call = self.stub.Connect()
        # Under the write lock, taken before anything else can run: a send from another task (the kill test's
        # senders write to the newest session as soon as it exists) waits for hello instead of going first, which
        # the gateway refuses (INVALID_ARGUMENT: the first frame must be hello).
        async with self._write_lock:
            await self.call.write(gateway_pb2.ConnectRequest(hello=gateway_pb2.Hello(user_id=self.user,
                                                                                     device_id=self.device)))
        self._tasks.append(asyncio.create_task(self._read()))
        waiter = asyncio.create_task(self._connected.wait())
        ended = asyncio.create_task(self._done.wait())
        await asyncio.wait({waiter, ended}, timeout=WAIT_S, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        ended.cancel()
        assert self.connected is not None, f"{self.user}/{self.device}: not connected ({self.code}: {self.details})"
        if self.heartbeat:
            self._tasks.append(asyncio.create_task(self._beat(self.connected.heartbeat_interval_ms / 3000)))
        return self.connected

    async def _beat(self, every_s: float) -> None:
        with contextlib.suppress(Exception):
            while not self._done.is_set():
                await asyncio.sleep(every_s)
                await self.write(gateway_pb2.ConnectRequest(heartbeat=gateway_pb2.Heartbeat()))

    async def _read(self) -> None:
        try:
            async for frame in self.call:
                kind = frame.WhichOneof("frame")
                if kind == "connected":
                    self.connected = frame.connected
                    self._connected.set()
                elif kind == "message":
                    self._on_message(frame.message)
                elif kind == "sent":
                    self.sent[frame.sent.client_message_id] = frame.sent
                elif kind == "receipt":
                    self.receipts.append(frame.receipt)
                elif kind == "rejected":
                    self.rejected.append(frame.rejected)
            self.code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            self.code, self.details = error.code(), error.details() or ""
        except asyncio.CancelledError:
            self.code = grpc.StatusCode.CANCELLED
        finally:
            self._done.set()

    def _on_message(self, m: message_pb2.ChatMessage) -> None:
        last = self._last.get(m.conversation_id)
        if last is not None and m.sequence != last + 1:
            self.violations.append(f"{self.user}/{self.device}: {m.conversation_id} #{m.sequence} after #{last}")
        self._last[m.conversation_id] = m.sequence
        self.messages.append(m)
        if self.auto_ack and not self._done.is_set():
            asyncio.get_running_loop().create_task(self._write_quietly(gateway_pb2.ConnectRequest(
                ack=gateway_pb2.Ack(conversation_id=m.conversation_id, up_to_sequence=m.sequence, state=DELIVERED))))

    async def _write_quietly(self, request: gateway_pb2.ConnectRequest) -> None:
        with contextlib.suppress(Exception):
            await self.write(request)

    async def send(self, conversation_id: str, body: bytes, client_message_id: str) -> None:
        await self.write(gateway_pb2.ConnectRequest(send=gateway_pb2.Send(
            client_message_id=client_message_id, conversation_id=conversation_id, body=body)))

    async def ack(self, conversation_id: str, up_to: int, state: int) -> None:
        await self.write(gateway_pb2.ConnectRequest(ack=gateway_pb2.Ack(
            conversation_id=conversation_id, up_to_sequence=up_to, state=state)))

    def seqs(self, conversation_id: str) -> list[int]:
        return [m.sequence for m in self.messages if m.conversation_id == conversation_id]

    @property
    def alive(self) -> bool:
        return not self._done.is_set()

    async def ended(self, timeout_s: float = WAIT_S) -> grpc.StatusCode:
        """Wait for the stream's status."""
        await asyncio.wait_for(self._done.wait(), timeout_s)
        return self.code

    async def close(self) -> grpc.StatusCode | None:
        """Half-close and wait for the status (OK), then stop the background tasks."""
        if self.call is not None and self.alive:
            with contextlib.suppress(Exception):
                async with self._write_lock:
                    await self.call.done_writing()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._done.wait(), WAIT_S)
        for task in self._tasks:
            task.cancel()
        if self.call is not None:
            self.call.cancel()
        return self.code


def per_conversation(messages) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for m in messages:
        out[m.conversation_id].append(m.sequence)
    return out
