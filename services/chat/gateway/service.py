"""``casemesh.chat.v1.ChatGatewayService`` and ``ChatDeliveryService``: a connection server (topology names ``chat-gateway-N``).

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)": "Each user maintains WebSocket connection; need 500K+ servers
for connections", and "Real-time Messaging" (the seed's ``ChatServer``: one
connection per user, ``send`` → store → "sent" receipt, pushes from other
servers through Redis pub/sub). Here a device holds one bidi
``Connect`` stream (:mod:`.session`); the gateway registers it with
chat-router (the connection registry), which pushes messages and receipts
for it through ``ChatDeliveryService.Deliver``; messages are stored and read
through chat-messages (MessageService). The mesh runs several gateways, one
per topology name (:func:`definition`: ``chat-gateway-1``,
``chat-gateway-2``); a client may connect to any.

Connect (public): the first frame must be ``hello`` (else INVALID_ARGUMENT
naming ``hello.user_id`` or ``hello.device_id``); RESOURCE_EXHAUSTED beyond
``max_sessions``; then the session's own statuses (:mod:`.session`). The
Connect streams live in ChatGatewayService, apart from the unary Deliver
(ChatDeliveryService), and that service gets
:data:`~.settings.CONNECT_STREAM_SLOTS` admission slots by default
(``ServiceDefinition.default_limits``), so that connected devices do not use
up the slots that bound the unary work (services/runtime/admission.py).

Deliver (internal, chat-router only): INVALID_ARGUMENT naming ``pushes``
(empty or more than 1,000), ``pushes[i].session_id`` or ``pushes[i].item``
(nothing applied then); sessions not held here are listed in
``missing_session_ids``. It never waits on a client (:mod:`.session`).

Every ``refresh_interval_ms`` the gateway sends chat-router all its sessions
(RefreshSessions): its heartbeat, and how a restarted router learns them
again. On shutdown (component stop) every session ends with UNAVAILABLE (the
client reconnects, to any gateway). Settings: :class:`.settings.GatewaySettings`
(per gateway). Metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

import grpc

from casemesh.chat.v1 import gateway_pb2 as pb
from casemesh.chat.v1 import gateway_pb2_grpc as pb_grpc
from casemesh.chat.v1 import messages_pb2, messages_pb2_grpc, router_pb2, router_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument, ResourceExhausted
from ..contract import HEARTBEAT_TIMEOUT_INTERVALS, is_id
from .metrics import GatewayMetrics
from .session import GatewaySession
from .settings import CONNECT_STREAM_SLOTS, GatewaySettings

log = logging.getLogger("casemesh.chat.gateway")

CONNECT_SERVICE = pb.DESCRIPTOR.services_by_name["ChatGatewayService"].full_name
DELIVERY_SERVICE = pb.DESCRIPTOR.services_by_name["ChatDeliveryService"].full_name
ROUTER = "chat-router"
MESSAGES = "chat-messages"
#: Deliver: most pushes in one call (gateway.proto).
MAX_PUSHES = 1_000


def gateway_name(shard: int) -> str:
    """The topology name of gateway ``shard`` (``chat-gateway-1``)."""
    return f"chat-gateway-{shard}"


class _Messages:
    """MessageService calls with the gateway's deadline (the session's :class:`~.session.MessageClient`)."""

    def __init__(self, stub: messages_pb2_grpc.MessageServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def send(self, request: messages_pb2.SendMessageRequest) -> messages_pb2.SendMessageResponse:
        return await self._stub.SendMessage(request, timeout=self._timeout_s)

    async def acknowledge(self, request: messages_pb2.AcknowledgeRequest) -> messages_pb2.AcknowledgeResponse:
        return await self._stub.Acknowledge(request, timeout=self._timeout_s)

    async def sync_inbox(self, request: messages_pb2.SyncInboxRequest) -> messages_pb2.SyncInboxResponse:
        return await self._stub.SyncInbox(request, timeout=self._timeout_s)

    async def list_messages(self, request: messages_pb2.ListMessagesRequest) -> messages_pb2.ListMessagesResponse:
        return await self._stub.ListMessages(request, timeout=self._timeout_s)


class SessionTable:
    """The sessions one gateway holds, by session ID (at most ``max_sessions``)."""

    def __init__(self, max_sessions: int, metrics: GatewayMetrics) -> None:
        self.max_sessions = max_sessions
        self._sessions: dict[str, GatewaySession] = {}
        self._metrics = metrics

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str) -> GatewaySession | None:
        return self._sessions.get(session_id)

    def values(self) -> list[GatewaySession]:
        return list(self._sessions.values())

    def add(self, session: GatewaySession) -> None:
        if len(self._sessions) >= self.max_sessions:
            raise ResourceExhausted(f"this gateway holds {self.max_sessions:,} sessions already; connect to another one")
        self._sessions[session.session_id] = session
        self._metrics.open.set(len(self._sessions))

    def remove(self, session: GatewaySession) -> None:
        if self._sessions.get(session.session_id) is session:
            del self._sessions[session.session_id]
            self._metrics.open.set(len(self._sessions))


class GatewayServicer(pb_grpc.ChatGatewayServiceServicer):
    """Connect: reads ``hello``, then hands the stream to a :class:`~.session.GatewaySession`."""

    def __init__(self, component: GatewayComponent) -> None:
        self._c = component

    async def Connect(self, request_iterator: AsyncIterator[pb.ConnectRequest], context: grpc.aio.ServicerContext) -> AsyncIterator[pb.ConnectResponse]:
        c = self._c
        if c.stopping:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{c.name} is shutting down; connect to another gateway")
        timeout_s = c.settings.heartbeat_interval_ms * HEARTBEAT_TIMEOUT_INTERVALS / 1000
        try:
            first = await asyncio.wait_for(anext(request_iterator, None), timeout_s)
        except TimeoutError:
            await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, f"no hello within {timeout_s * 1000:.0f} ms")
        if first is None or first.WhichOneof("frame") != "hello":
            raise InvalidArgument("hello.user_id", "the first frame must be hello (with user_id and device_id)")
        hello = first.hello
        for field, value in (("hello.user_id", hello.user_id), ("hello.device_id", hello.device_id)):
            if not value:
                raise InvalidArgument(field, "is required")
            if not is_id(value):
                raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
        session = c.open_session(hello.user_id, hello.device_id)
        async for frame in session.run(request_iterator, context):
            yield frame


class DeliveryServicer(pb_grpc.ChatDeliveryServiceServicer):
    """Deliver: hands each push to its session's queue, never waiting on a client."""

    def __init__(self, component: GatewayComponent) -> None:
        self._c = component

    async def Deliver(self, request: pb.DeliverRequest, context: grpc.aio.ServicerContext) -> pb.DeliverResponse:
        pushes = request.pushes
        if not pushes:
            raise InvalidArgument("pushes", "is required (1 to 1,000 pushes)")
        if len(pushes) > MAX_PUSHES:
            raise InvalidArgument("pushes", f"has {len(pushes):,} pushes; at most {MAX_PUSHES:,}")
        kinds = []
        for i, push in enumerate(pushes):
            if not is_id(push.session_id):
                raise InvalidArgument(f"pushes[{i}].session_id", "must be a session ID (1 to 64 characters of A-Z, a-z, 0-9, '_' or '-')")
            kind = push.WhichOneof("item")
            if kind is None:
                raise InvalidArgument(f"pushes[{i}].item", "is required: a message, a receipt or replaced")
            kinds.append(kind)
        metrics = self._c.metrics
        missing = []
        for push, kind in zip(pushes, kinds):
            session = self._c.table.get(push.session_id)
            if session is None or session.ended is not None:
                missing.append(push.session_id)
                metrics.push(kind, "missing")
                continue
            if kind == "message":
                metrics.push(kind, session.deliver_message(push.message))
            elif kind == "receipt":
                metrics.push(kind, session.deliver_receipt(push.receipt))
            else:
                session.replace(push.replaced.by_session_id)
                metrics.push(kind, "pushed")
        return pb.DeliverResponse(missing_session_ids=missing)


class GatewayComponent:
    """One gateway: its sessions, the stubs to chat-router and chat-messages, the refresh loop."""

    def __init__(self, name: str, context: RuntimeContext) -> None:
        self.name = name
        self.settings = context.settings(name, GatewaySettings)
        self.metrics = GatewayMetrics(name)
        self.table = SessionTable(self.settings.max_sessions, self.metrics)
        timeout_s = self.settings.call_timeout_ms / 1000
        self._timeout_s = timeout_s
        self._router = router_pb2_grpc.PresenceServiceStub(context.channel(ROUTER))
        self._messages = _Messages(messages_pb2_grpc.MessageServiceStub(context.channel(MESSAGES)), timeout_s)
        self.connect = GatewayServicer(self)
        self.delivery = DeliveryServicer(self)
        self.stopping = False
        self._background: set[asyncio.Task] = set()
        self._refresher: asyncio.Task | None = None

    def open_session(self, user_id: str, device_id: str) -> GatewaySession:
        """A new session, in the table before it is registered (a push for it must find it)."""
        session_id = f"{self.name}-{secrets.token_hex(8)}"

        async def register() -> None:
            await self._router.RegisterSession(router_pb2.RegisterSessionRequest(
                user_id=user_id, device_id=device_id, session_id=session_id, gateway=self.name), timeout=self._timeout_s)

        session = GatewaySession(session_id, user_id, device_id, self.name, messages=self._messages,
                                 settings=self.settings, metrics=self.metrics, register=register, on_end=self._ended)
        self.table.add(session)
        return session

    def _ended(self, session: GatewaySession) -> None:
        self.table.remove(session)
        self.metrics.ended(session.ended.reason)
        if session.ended.reason != "replaced":  # a replaced session is gone from the router already
            self._in_background(self._unregister(session.session_id), f"unregister-{session.session_id}")

    async def _unregister(self, session_id: str) -> None:
        try:
            await self._router.UnregisterSession(router_pb2.UnregisterSessionRequest(session_id=session_id),
                                                 timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:  # the next refresh leaves it out, which drops it
            log.info("%s: could not unregister session %s: %s", self.name, session_id, error.details())

    def _in_background(self, coro, name: str) -> None:
        task = asyncio.create_task(coro, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def refresh(self) -> router_pb2.RefreshSessionsResponse:
        """Send chat-router every session this gateway holds."""
        request = router_pb2.RefreshSessionsRequest(gateway=self.name)
        for s in self.table.values():
            request.sessions.add(session_id=s.session_id, user_id=s.user_id, device_id=s.device_id)
        return await self._router.RefreshSessions(request, timeout=self._timeout_s)

    async def _refresh_loop(self) -> None:
        interval_s = self.settings.refresh_interval_ms / 1000
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.refresh()
            except grpc.aio.AioRpcError as error:
                log.warning("%s: RefreshSessions failed: %s %s", self.name, error.code().name, error.details())

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_ChatGatewayServiceServicer_to_server(self.connect, server)
        pb_grpc.add_ChatDeliveryServiceServicer_to_server(self.delivery, server)

    async def start(self) -> None:
        self._refresher = asyncio.create_task(self._refresh_loop(), name=f"{self.name}-refresh")

    async def stop(self) -> None:
        """End every session with UNAVAILABLE (they reconnect elsewhere), stop refreshing, wait for the unregisters."""
        self.stopping = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for session in self.table.values():
            session.end(grpc.StatusCode.UNAVAILABLE, f"{self.name} is shutting down; reconnect to any gateway", "shutdown")
        await asyncio.sleep(0)  # the handlers write their statuses
        if self._background:
            await asyncio.wait(set(self._background), timeout=self._timeout_s)


def definition(shard: int) -> ServiceDefinition:
    """The :class:`ServiceDefinition` of gateway ``shard`` (topology name ``chat-gateway-SHARD``)."""
    name = gateway_name(shard)

    async def build(context: RuntimeContext) -> GatewayComponent:
        return GatewayComponent(name, context)

    return ServiceDefinition(
        name=name, grpc_services=(CONNECT_SERVICE, DELIVERY_SERVICE), dependencies=(ROUTER, MESSAGES), build=build,
        settings_model=GatewaySettings,
        access=Access(public={"Connect"}, internal={"Deliver": (ROUTER,)}),
        # Connect streams last as long as the device is online: their own slots, not the 256 of unary work.
        default_limits={CONNECT_SERVICE: CONNECT_STREAM_SLOTS},
    )


GATEWAY_1 = definition(1)
GATEWAY_2 = definition(2)
