"""One device's Connect session: the outbound queue and its single writer, the reader, sends, acks, sync and gap fills.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Real-time Messaging"
(``handle_connection``: authenticate, register the connection, loop over the
client's frames, ``send`` → store → "sent" receipt, ``ack``) and "Message
Delivery Flow" (sent → delivered → read). Life of a session
(:meth:`GatewaySession.run`, the Connect handler's body after ``hello``):

1. registered with chat-router (``register``; live pushes may start at once
   and are held back by the :class:`~.sequencer.Sequencer`);
2. MessageService.SyncInbox (``sync_batch`` messages and every cursor) sets
   each conversation's starting point; ``connected`` is the first frame
   (``pending_messages``: the offline queue's length, the sum over cursors of
   ``last_sequence - delivered_up_to``), then the synced messages, then the
   held-back pushes and receipts; the rest of the offline queue is paged by
   the gap fill (ListMessages after the last handed-out sequence, up to the
   cursor's ``last_sequence``) so the outbound queue never holds more than a
   page or two of it;
3. then, concurrently: live pushes (:meth:`deliver_message`,
   :meth:`deliver_receipt`, :meth:`replace`, called by Deliver), client
   frames (one reader task), sends (one worker: a device's sends are stored
   in the order it sent them), acks (one worker; acks waiting for it are
   coalesced per conversation and state, the highest sequence wins), gap
   fills (one task per conversation with a gap), the heartbeat watchdog.

Writes: every frame goes through one bounded queue (``outbound_queue_frames``)
that one writer, the handler itself, drains into the stream. A live push
never waits: when the queue is full, the session ends with
RESOURCE_EXHAUSTED (a slow consumer; deliveries to other sessions go on).
Sync and fill pages wait for room before they are fetched.

Ends (:meth:`end`, first one wins): OK on the client's half-close (after its
sends and acks were answered), DEADLINE_EXCEEDED after
``HEARTBEAT_TIMEOUT_INTERVALS`` intervals without a frame, ABORTED when
replaced, RESOURCE_EXHAUSTED for a slow consumer, UNAVAILABLE when the
gateway stops or a dependency fails (router at connect, sync, a gap that
cannot be filled), INVALID_ARGUMENT for an undecodable frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import grpc

from casemesh.chat.v1 import gateway_pb2 as pb
from casemesh.chat.v1 import message_pb2, messages_pb2

from ..contract import HEARTBEAT_TIMEOUT_INTERVALS, MAX_BODY_BYTES, is_id, parse_conversation_id
from .metrics import GatewayMetrics
from .sequencer import Sequencer
from .settings import GatewaySettings

log = logging.getLogger("casemesh.chat.gateway")

#: Codes a ``rejected`` frame may carry (gateway.proto, Rejected.code); anything else is reported as UNAVAILABLE.
REJECTED_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED,
                            grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE})
#: ListMessages codes that retrying cannot fix (the gap is abandoned instead).
NOT_RETRYABLE = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED})
#: Ack states a client may send.
ACK_STATES = frozenset({message_pb2.RECEIPT_STATE_DELIVERED, message_pb2.RECEIPT_STATE_READ})


class MessageClient(Protocol):
    """The MessageService calls a session makes (service.py binds them to the stub with deadlines)."""

    async def send(self, request: messages_pb2.SendMessageRequest) -> messages_pb2.SendMessageResponse: ...

    async def acknowledge(self, request: messages_pb2.AcknowledgeRequest) -> messages_pb2.AcknowledgeResponse: ...

    async def sync_inbox(self, request: messages_pb2.SyncInboxRequest) -> messages_pb2.SyncInboxResponse: ...

    async def list_messages(self, request: messages_pb2.ListMessagesRequest) -> messages_pb2.ListMessagesResponse: ...


@dataclass(frozen=True, slots=True)
class SessionEnd:
    """How a session ended: the stream's status ``code`` and ``message``, and the metrics ``reason``."""

    code: grpc.StatusCode
    message: str
    reason: str


def rejection(error: grpc.aio.AioRpcError, *, client_message_id: str = "", prefix: str) -> pb.ConnectResponse:
    """The ``rejected`` frame of a failed MessageService call: its code (UNAVAILABLE for codes the contract does not
    list), the field its INVALID_ARGUMENT named (as ``PREFIX.FIELD``), its message."""
    code = error.code() if error.code() in REJECTED_CODES else grpc.StatusCode.UNAVAILABLE
    details = error.details() or code.name
    field = ""
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        named, sep, _ = details.partition(": ")
        if sep and named and " " not in named:
            field = f"{prefix}.{named}"
    elif code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.PERMISSION_DENIED):
        field = f"{prefix}.conversation_id"
    return pb.ConnectResponse(rejected=pb.Rejected(client_message_id=client_message_id, code=code.value[0],
                                                   field=field, message=details))


def rejected(code: grpc.StatusCode, field: str, message: str, client_message_id: str = "") -> pb.ConnectResponse:
    """A ``rejected`` frame."""
    return pb.ConnectResponse(rejected=pb.Rejected(client_message_id=client_message_id, code=code.value[0],
                                                   field=field, message=message))


def check_send(send: pb.Send) -> pb.ConnectResponse | None:
    """The ``rejected`` frame of a ``send`` that breaks the contract's rules, else ``None``."""
    if not is_id(send.client_message_id):
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "send.client_message_id",
                        "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'", send.client_message_id)
    try:
        parse_conversation_id(send.conversation_id)
    except ValueError as error:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "send.conversation_id", str(error), send.client_message_id)
    if not 1 <= len(send.body) <= MAX_BODY_BYTES:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "send.body",
                        f"is {len(send.body):,} bytes; must be 1 to {MAX_BODY_BYTES:,}", send.client_message_id)
    return None


def check_ack(ack: pb.Ack) -> pb.ConnectResponse | None:
    """The ``rejected`` frame of an ``ack`` that breaks the contract's rules, else ``None``."""
    try:
        parse_conversation_id(ack.conversation_id)
    except ValueError as error:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "ack.conversation_id", str(error))
    if ack.up_to_sequence < 1:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "ack.up_to_sequence", "must be at least 1")
    if ack.state not in ACK_STATES:
        return rejected(grpc.StatusCode.INVALID_ARGUMENT, "ack.state", "must be RECEIPT_STATE_DELIVERED or RECEIPT_STATE_READ")
    return None


class GatewaySession:
    """One device's session on gateway ``gateway`` (module docstring).

    ``register()`` registers it with the router; ``on_end(session)`` is
    called once when it ends (the gateway forgets it and unregisters it).
    """

    def __init__(self, session_id: str, user_id: str, device_id: str, gateway: str, *, messages: MessageClient,
                 settings: GatewaySettings, metrics: GatewayMetrics, register: Callable[[], Awaitable[object]],
                 on_end: Callable[[GatewaySession], None]) -> None:
        self.session_id = session_id
        self.user_id = user_id
        self.device_id = device_id
        self.gateway = gateway
        self._messages = messages
        self._settings = settings
        self._metrics = metrics
        self._register = register
        self._on_end = on_end
        self.sequencer = Sequencer(pending_limit=settings.outbound_queue_frames, early_limit=settings.outbound_queue_frames)
        #: How the session ended (``None`` while it lasts).
        self.ended: SessionEnd | None = None
        self.last_frame = time.monotonic()
        self._outbox: deque[pb.ConnectResponse] = deque()
        self._limit = settings.outbound_queue_frames
        self._wake = asyncio.Event()
        self._space = asyncio.Event()
        self._writing = False
        self._aborted = False
        self._context: grpc.aio.ServicerContext | None = None
        self._tasks: set[asyncio.Task] = set()
        self._fills: dict[str, asyncio.Task] = {}
        self._sends: asyncio.Queue[pb.Send] = asyncio.Queue(settings.max_pending_sends)
        self._sending = 0
        self._acks: dict[tuple[str, int], int] = {}
        self._ack_wake = asyncio.Event()
        self._acking = 0
        self._idle = asyncio.Event()
        self._early_receipts: dict[tuple[str, str, int], message_pb2.Receipt] = {}
        self._offline_up_to: dict[str, int] = {}
        self._timeout_s = settings.call_timeout_ms / 1000

    # Ending.

    def end(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        """End the session (the first call wins): the writer stops and the stream ends with ``code``."""
        if self.ended is not None:
            return
        self.ended = SessionEnd(code, message, reason)
        self._wake.set()
        self._space.set()
        try:
            self._on_end(self)
        finally:
            if self._writing and self._context is not None and code != grpc.StatusCode.OK:
                # The writer is stuck in a write to a client that does not read: end the call from here.
                self._aborted = True
                self._spawn(self._abort_elsewhere(code, message), "abort")

    async def _abort_elsewhere(self, code: grpc.StatusCode, message: str) -> None:
        with contextlib.suppress(Exception):
            await self._context.abort(code, message)

    # The outbound queue.

    def _enqueue(self, frame: pb.ConnectResponse) -> bool:
        """Queue ``frame`` for the writer; a full queue ends the session (a slow consumer). ``False`` when not queued."""
        if self.ended is not None:
            return False
        if len(self._outbox) >= self._limit:
            self.end(grpc.StatusCode.RESOURCE_EXHAUSTED,
                     f"slow consumer: {self._limit} frames waiting to be written to this client", "slow_consumer")
            return False
        self._outbox.append(frame)
        self._wake.set()
        return True

    def _push_messages(self, messages: list) -> None:
        offline = 0
        for message in messages:
            if not self._enqueue(pb.ConnectResponse(message=message)):
                return
            if message.sequence <= self._offline_up_to.get(message.conversation_id, 0):
                offline += 1
            else:
                self._metrics.pushed_live(message.conversation_id, message.stored_at_unix_ms)
        if offline:
            self._metrics.offline.inc(offline)

    async def _room(self, frames: int) -> None:
        """Wait until ``frames`` more fit in the lower half of the outbound queue (pages are fetched only then)."""
        while self.ended is None and len(self._outbox) > max(0, self._limit // 2 - frames):
            self._space.clear()
            await self._space.wait()

    # Pushes from the router (Deliver): never wait.

    def deliver_message(self, message: message_pb2.ChatMessage) -> str:
        """A live message; returns the push outcome (``pushed``, ``held``, ``duplicate``)."""
        before = self.sequencer.duplicates
        out = self.sequencer.offer(message)
        self._count_duplicates(before)
        if out:
            self._push_messages(out)
            outcome = "pushed"
        elif self.sequencer.duplicates > before:
            outcome = "duplicate"
        else:
            outcome = "held"
        self._fill_if_needed(message.conversation_id)
        return outcome

    def deliver_receipt(self, receipt: message_pb2.Receipt) -> str:
        """A receipt for this user (held back until ``connected`` was queued)."""
        if self.sequencer.syncing:
            key = (receipt.conversation_id, receipt.user_id, receipt.state)
            known = self._early_receipts.get(key)
            if known is None or known.up_to_sequence < receipt.up_to_sequence:
                self._early_receipts[key] = receipt
            return "held"
        return "pushed" if self._enqueue(pb.ConnectResponse(receipt=receipt)) else "missing"

    def replace(self, by_session_id: str) -> None:
        """A newer session of the same device took over: end with ABORTED."""
        self.end(grpc.StatusCode.ABORTED, f"replaced by a newer session of this device ({by_session_id})", "replaced")

    def _count_duplicates(self, before: int) -> None:
        if self.sequencer.duplicates > before:
            self._metrics.duplicates.inc(self.sequencer.duplicates - before)

    # The handler's body.

    async def run(self, requests: AsyncIterator[pb.ConnectRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ConnectResponse]:
        """Register, sync, then write frames until the session ends; then end the call with the session's status."""
        self._context = context
        self._spawn(self._start(requests), "start")
        self._spawn(self._watch_heartbeats(), "heartbeats")
        try:
            while True:
                while self._outbox:
                    frame = self._outbox.popleft()
                    self._space.set()
                    self._writing = True
                    yield frame
                    self._writing = False
                    if self.ended is not None and self.ended.code != grpc.StatusCode.OK:
                        break
                if self.ended is not None:
                    break
                self._wake.clear()
                await self._wake.wait()
        finally:
            self._writing = False
            if self.ended is None:  # the client went away (the call was cancelled) or the server stopped it
                self.end(grpc.StatusCode.CANCELLED, "the call ended", "cancelled")
            for task in list(self._tasks):
                if task.get_name().endswith("abort"):
                    continue
                task.cancel()
        if self.ended.code != grpc.StatusCode.OK and not self._aborted:
            await context.abort(self.ended.code, self.ended.message)

    def _spawn(self, coro, what: str) -> asyncio.Task:
        task = asyncio.create_task(coro, name=f"{self.session_id}-{what}")
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("session %s: %s failed: %r", self.session_id, task.get_name(), error, exc_info=error)
            self.end(grpc.StatusCode.INTERNAL, f"the gateway failed: {error!r}", "error")

    async def _start(self, requests: AsyncIterator[pb.ConnectRequest]) -> None:
        try:
            await self._register()
        except grpc.aio.AioRpcError as error:
            self.end(grpc.StatusCode.UNAVAILABLE, f"chat-router could not register the session: {error.details()}",
                     "router_unavailable")
            return
        try:
            synced = await self._messages.sync_inbox(messages_pb2.SyncInboxRequest(
                user_id=self.user_id, max_messages=self._settings.sync_batch))
        except grpc.aio.AioRpcError as error:
            self.end(grpc.StatusCode.UNAVAILABLE, f"chat-messages could not read the offline queue: {error.details()}",
                     "sync_failed")
            return
        cursors = {c.conversation_id: (c.delivered_up_to, c.last_sequence) for c in synced.cursors}
        uncursored: dict[str, tuple[int, int]] = {}  # a conversation without a cursor starts before its first synced message
        for m in synced.messages:
            if m.conversation_id not in cursors:
                low, high = uncursored.get(m.conversation_id, (m.sequence, m.sequence))
                uncursored[m.conversation_id] = (min(low, m.sequence), max(high, m.sequence))
        cursors.update({c: (low - 1, high) for c, (low, high) in uncursored.items()})
        self._offline_up_to = {c: last for c, (_, last) in cursors.items()}
        pending = sum(max(0, last - delivered) for delivered, last in cursors.values())
        self.sequencer.begin(cursors)
        if not self._enqueue(pb.ConnectResponse(connected=pb.Connected(
                session_id=self.session_id, gateway=self.gateway,
                heartbeat_interval_ms=self._settings.heartbeat_interval_ms, pending_messages=pending))):
            return
        before = self.sequencer.duplicates
        self._push_messages(self.sequencer.apply(synced.messages))
        self._push_messages(self.sequencer.finish_sync())
        self._count_duplicates(before)
        receipts, self._early_receipts = self._early_receipts, {}
        for receipt in receipts.values():
            self._enqueue(pb.ConnectResponse(receipt=receipt))
        for conversation in self.sequencer.gaps():
            self._fill_if_needed(conversation)
        self._spawn(self._read(requests), "reader")
        self._spawn(self._send_worker(), "sender")
        self._spawn(self._ack_worker(), "acker")

    # Gap fills.

    def _fill_if_needed(self, conversation: str) -> None:
        if self.ended is None and conversation not in self._fills and self.sequencer.needs_fill(conversation):
            self._fills[conversation] = self._spawn(self._fill(conversation), f"fill-{conversation}")

    async def _fill(self, conversation: str) -> None:
        """Fetch ``conversation``'s missing messages (ListMessages after the last handed out) until none is missing."""
        failures = 0
        page = self._settings.fill_page_size
        try:
            while self.ended is None and self.sequencer.needs_fill(conversation):
                await self._room(page)
                if self.ended is not None:
                    return
                after = self.sequencer.next_expected(conversation) - 1
                wanted = min(page, self.sequencer.target(conversation) - after)
                try:
                    reply = await self._messages.list_messages(messages_pb2.ListMessagesRequest(
                        user_id=self.user_id, conversation_id=conversation, after_sequence=after, page_size=max(wanted, 1)))
                except grpc.aio.AioRpcError as error:
                    self._metrics.fill("failed")
                    if error.code() in NOT_RETRYABLE:
                        log.warning("session %s: %s cannot be read (%s: %s); its gap is abandoned", self.session_id,
                                    conversation, error.code().name, error.details())
                        self._metrics.fill("abandoned")
                        self.sequencer.abandon(conversation)
                        return
                    failures += 1
                    if failures >= self._settings.gap_fill_attempts:
                        self.end(grpc.StatusCode.UNAVAILABLE, f"messages {after + 1}.. of {conversation} could not be "
                                 f"fetched: {error.details()}", "gap_fill_failed")
                        return
                    await asyncio.sleep(min(0.05 * 2 ** failures, 1.0))
                    continue
                self._metrics.fill("ok")
                before = self.sequencer.duplicates
                self._push_messages(self.sequencer.apply(reply.messages))
                self._count_duplicates(before)
                if self.sequencer.next_expected(conversation) - 1 == after:  # nothing new yet (not visible yet?)
                    failures += 1
                    if failures >= self._settings.gap_fill_attempts:
                        self.end(grpc.StatusCode.UNAVAILABLE, f"messages {after + 1}.. of {conversation} are missing "
                                 f"from chat-messages", "gap_fill_failed")
                        return
                    await asyncio.sleep(min(0.05 * 2 ** failures, 1.0))
                else:
                    failures = 0
        finally:
            self._fills.pop(conversation, None)

    # Client frames.

    async def _read(self, requests: AsyncIterator[pb.ConnectRequest]) -> None:
        try:
            async for frame in requests:
                self.last_frame = time.monotonic()
                kind = frame.WhichOneof("frame")
                if kind == "send":
                    bad = check_send(frame.send)
                    if bad is not None:
                        self._enqueue(bad)
                    else:
                        try:
                            self._sends.put_nowait(frame.send)
                        except asyncio.QueueFull:
                            self._enqueue(rejected(grpc.StatusCode.RESOURCE_EXHAUSTED, "",
                                                   f"{self._settings.max_pending_sends} sends are waiting already; "
                                                   f"send again after their `sent` frames", frame.send.client_message_id))
                elif kind == "ack":
                    bad = check_ack(frame.ack)
                    if bad is not None:
                        self._enqueue(bad)
                    else:
                        key = (frame.ack.conversation_id, frame.ack.state)
                        self._acks[key] = max(self._acks.get(key, 0), frame.ack.up_to_sequence)
                        self._ack_wake.set()
                elif kind == "hello":
                    self._enqueue(rejected(grpc.StatusCode.INVALID_ARGUMENT, "hello", "the session is connected already"))
                # heartbeat (and frame kinds this gateway does not know): the time of the frame is all that counts
        except asyncio.CancelledError:
            raise
        except grpc.aio.AioRpcError as error:  # the request stream broke: the client is gone
            self.end(grpc.StatusCode.CANCELLED, f"the client's stream failed: {error.details()}", "cancelled")
            return
        except Exception as error:  # noqa: BLE001 - an undecodable frame (runtime decoding) ends the session, not the gateway
            self.end(grpc.StatusCode.INVALID_ARGUMENT, str(error), "bad_frame")
            return
        # The client half-closed: answer what it sent, then end with OK.
        while self.ended is None and (not self._sends.empty() or self._sending or self._acks or self._acking):
            self._idle.clear()
            await self._idle.wait()
        self.end(grpc.StatusCode.OK, "", "client_closed")

    async def _send_worker(self) -> None:
        """Store the device's sends one after another (their order is the device's), answering each."""
        while True:
            send = await self._sends.get()
            self._sending = 1
            try:
                try:
                    reply = await self._messages.send(messages_pb2.SendMessageRequest(
                        sender_id=self.user_id, client_message_id=send.client_message_id,
                        conversation_id=send.conversation_id, body=send.body))
                except grpc.aio.AioRpcError as error:
                    self._enqueue(rejection(error, client_message_id=send.client_message_id, prefix="send"))
                    continue
                stored = reply.message
                self._enqueue(pb.ConnectResponse(sent=pb.Sent(
                    client_message_id=send.client_message_id, message_id=stored.message_id,
                    conversation_id=stored.conversation_id, sequence=stored.sequence,
                    stored_at_unix_ms=stored.stored_at_unix_ms)))
            finally:
                self._sending = 0
                self._idle.set()

    async def _ack_worker(self) -> None:
        """Send the coalesced acks: one Acknowledge per (conversation, state) with the highest sequence acked."""
        while True:
            await self._ack_wake.wait()
            self._ack_wake.clear()
            batch, self._acks = self._acks, {}
            self._acking = len(batch)
            try:
                await asyncio.gather(*(self._acknowledge(c, state, seq) for (c, state), seq in batch.items()))
            finally:
                self._acking = 0
                self._idle.set()

    async def _acknowledge(self, conversation: str, state: int, up_to: int) -> None:
        try:
            await self._messages.acknowledge(messages_pb2.AcknowledgeRequest(
                user_id=self.user_id, conversation_id=conversation, up_to_sequence=up_to, state=state))
        except grpc.aio.AioRpcError as error:
            self._enqueue(rejection(error, prefix="ack"))

    async def _watch_heartbeats(self) -> None:
        interval_s = self._settings.heartbeat_interval_ms / 1000
        timeout_s = interval_s * HEARTBEAT_TIMEOUT_INTERVALS
        while self.ended is None:
            await asyncio.sleep(interval_s / 2)
            silent_s = time.monotonic() - self.last_frame
            if silent_s > timeout_s:
                self.end(grpc.StatusCode.DEADLINE_EXCEEDED,
                         f"no frame for {silent_s * 1000:.0f} ms ({HEARTBEAT_TIMEOUT_INTERVALS} heartbeat intervals of "
                         f"{self._settings.heartbeat_interval_ms} ms)", "heartbeat_timeout")
