"""``casemesh.chat.v1.PresenceService`` (topology name ``chat-router``): presence and routing of the chat system.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Chat System (like
WhatsApp)", "Real-time Messaging": the connection registry
(``self.connections``) and the Redis pub/sub between chat servers; seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "WhatsApp Messaging": online status
and message routing. The registry is :class:`.presence.PresenceRegistry`
(in memory: after a restart the gateways register their sessions again with
their next RefreshSessions), the routing :class:`.routing.Router`.

Callers: the gateways (``chat-gateway-1``, ``chat-gateway-2``) register,
unregister and refresh their sessions; ``chat-messages`` routes stored
messages and receipts; anyone may ask for presence (GetPresence).

Status codes: INVALID_ARGUMENT naming the field (``user_id``, ``device_id``,
``session_id``, ``gateway`` (also when it is not a gateway of the topology),
``sessions``, ``user_ids``, ``item``). Route never fails because a gateway
does: its users are reported offline. Settings:
:class:`.settings.RouterSettings`. Metrics beyond the gRPC ones:
``casemesh_chat_presence_sessions`` (gauge), ``casemesh_chat_presence_expiries_total``
(sessions dropped by the timeout sweep), ``casemesh_chat_presence_dropped_total{reason}``
(``missing``: a gateway no longer held it; ``refresh``: its gateway's refresh
left it out), ``casemesh_chat_presence_replaced_total``,
``casemesh_chat_deliver_calls_total{gateway, outcome}`` and
``casemesh_chat_deliver_recipients_total{gateway}`` (sessions pushed to),
``casemesh_chat_route_offline_users_total``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from prometheus_client import Counter, Gauge

from casemesh.chat.v1 import gateway_pb2, gateway_pb2_grpc
from casemesh.chat.v1 import router_pb2 as pb
from casemesh.chat.v1 import router_pb2_grpc as pb_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import InvalidArgument
from ..contract import is_id
from .presence import PresenceRegistry, SessionEntry
from .routing import Router, RouteOutcome
from .settings import RouterSettings

log = logging.getLogger("casemesh.chat.router")

NAME = "chat-router"
FULL_NAME = pb.DESCRIPTOR.services_by_name["PresenceService"].full_name
#: The connection servers' topology names (services/chat/gateway/service.py), the routes' destinations.
GATEWAYS = ("chat-gateway-1", "chat-gateway-2")
#: The service that routes stored messages and receipts.
MESSAGES = "chat-messages"

#: RefreshSessions: most sessions in one refresh (router.proto).
MAX_REFRESH_SESSIONS = 100_000
#: GetPresence and Route: most users in one call (router.proto; a group's 500 members).
MAX_USERS = 500

SESSIONS = Gauge("casemesh_chat_presence_sessions", "Sessions (connected devices) the router knows.")
EXPIRIES = Counter("casemesh_chat_presence_expiries",
                   "Sessions dropped because their gateway stopped refreshing them (session_timeout_ms).")
DROPPED = Counter("casemesh_chat_presence_dropped",
                  "Sessions dropped because their gateway no longer held them (missing: a Deliver said so; "
                  "refresh: its RefreshSessions left them out).", ("reason",))
REPLACED = Counter("casemesh_chat_presence_replaced", "Sessions replaced by a newer session of the same device.")
DELIVER_CALLS = Counter("casemesh_chat_deliver_calls", "Deliver calls to a gateway by outcome (ok, failed).",
                        ("gateway", "outcome"))
DELIVER_RECIPIENTS = Counter("casemesh_chat_deliver_recipients", "Sessions an item was pushed to, per gateway.",
                             ("gateway",))
OFFLINE_USERS = Counter("casemesh_chat_route_offline_users", "Route recipients with no session that took the item.")


def require_id(field: str, value: str) -> str:
    """``value`` when it is 1 to 64 characters of [A-Za-z0-9_-]; else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not is_id(value):
        raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


def require_users(user_ids, *, field: str = "user_ids") -> list[str]:
    """1 to :data:`MAX_USERS` valid user IDs (duplicates kept once, in order); else ``InvalidArgument``."""
    if not user_ids:
        raise InvalidArgument(field, "is required (at least one user ID)")
    if len(user_ids) > MAX_USERS:
        raise InvalidArgument(field, f"has {len(user_ids):,} user IDs; at most {MAX_USERS}")
    for i, user_id in enumerate(user_ids):
        require_id(f"{field}[{i}]", user_id)
    return list(user_ids)


class PresenceServicer(pb_grpc.PresenceServiceServicer):
    """Validates, then updates or reads the registry, or routes."""

    def __init__(self, registry: PresenceRegistry, router: Router, gateways: tuple[str, ...]) -> None:
        self._registry = registry
        self._router = router
        self._gateways = gateways
        self._notices: set[asyncio.Task] = set()

    def _gateway(self, value: str) -> str:
        require_id("gateway", value)
        if value not in self._gateways:
            raise InvalidArgument("gateway", f"{value!r} is not a gateway of this mesh (known: {', '.join(self._gateways) or 'none'})")
        return value

    def _tell_replaced(self, old: SessionEntry, by_session_id: str) -> None:
        """Tell ``old``'s gateway in the background: the new session's RegisterSession does not wait for the old gateway."""
        REPLACED.inc()
        task = asyncio.create_task(self._router.replaced(old, by_session_id), name=f"chat-router-replaced-{old.session_id}")
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def RegisterSession(self, request: pb.RegisterSessionRequest, context: grpc.aio.ServicerContext) -> pb.RegisterSessionResponse:
        user = require_id("user_id", request.user_id)
        device = require_id("device_id", request.device_id)
        session = require_id("session_id", request.session_id)
        gateway = self._gateway(request.gateway)
        replaced = self._registry.register(user, device, session, gateway)
        SESSIONS.set(len(self._registry))
        if replaced is None:
            return pb.RegisterSessionResponse()
        self._tell_replaced(replaced, session)
        return pb.RegisterSessionResponse(replaced_session_id=replaced.session_id)

    async def UnregisterSession(self, request: pb.UnregisterSessionRequest, context: grpc.aio.ServicerContext) -> pb.UnregisterSessionResponse:
        self._registry.unregister(require_id("session_id", request.session_id))
        SESSIONS.set(len(self._registry))
        return pb.UnregisterSessionResponse()

    async def RefreshSessions(self, request: pb.RefreshSessionsRequest, context: grpc.aio.ServicerContext) -> pb.RefreshSessionsResponse:
        gateway = self._gateway(request.gateway)
        if len(request.sessions) > MAX_REFRESH_SESSIONS:
            raise InvalidArgument("sessions", f"has {len(request.sessions):,} sessions; at most {MAX_REFRESH_SESSIONS:,}")
        listed = []
        for i, s in enumerate(request.sessions):
            listed.append((require_id(f"sessions[{i}].session_id", s.session_id), require_id(f"sessions[{i}].user_id", s.user_id),
                           require_id(f"sessions[{i}].device_id", s.device_id)))
        outcome = self._registry.refresh(gateway, listed)
        if outcome.dropped:
            DROPPED.labels("refresh").inc(len(outcome.dropped))
        for entry, kept in outcome.superseded:
            self._tell_replaced(entry, kept)
        SESSIONS.set(len(self._registry))
        return pb.RefreshSessionsResponse(registered=outcome.registered, dropped=len(outcome.dropped))

    async def GetPresence(self, request: pb.GetPresenceRequest, context: grpc.aio.ServicerContext) -> pb.GetPresenceResponse:
        users = require_users(request.user_ids)
        response = pb.GetPresenceResponse()
        for user in users:
            p = self._registry.presence(user)
            response.presences.add(user_id=user, online=p.online, devices=p.devices, last_seen_unix_ms=p.last_seen_unix_ms)
        return response

    async def Route(self, request: pb.RouteRequest, context: grpc.aio.ServicerContext) -> pb.RouteResponse:
        users = require_users(request.user_ids)
        item = request.WhichOneof("item")
        if item is None:
            raise InvalidArgument("item", "is required: a message or a receipt")
        outcome = await self._router.route(users, message=request.message if item == "message" else None,
                                           receipt=request.receipt if item == "receipt" else None)
        _observe(outcome)
        SESSIONS.set(len(self._registry))
        return pb.RouteResponse(delivered_sessions=outcome.delivered_sessions, offline_user_ids=outcome.offline_user_ids)

    async def drain_notices(self) -> None:
        """Wait for the replaced-session notices still being sent."""
        if self._notices:
            await asyncio.gather(*self._notices, return_exceptions=True)


def _observe(outcome: RouteOutcome) -> None:
    for g in outcome.gateways:
        DELIVER_CALLS.labels(g.gateway, "failed" if g.failed else "ok").inc()
        if g.pushed:
            DELIVER_RECIPIENTS.labels(g.gateway).inc(g.pushed)
        if g.missing:
            DROPPED.labels("missing").inc(g.missing)
    if outcome.offline_user_ids:
        OFFLINE_USERS.inc(len(outcome.offline_user_ids))


class RouterComponent:
    """The registry, the router with a Deliver stub per gateway of the topology, and the timeout sweep."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, RouterSettings)
        self.registry = PresenceRegistry(self.settings.session_timeout_ms)
        self.gateways = tuple(g for g in GATEWAYS if g in context.topology.services)
        self._stubs = {g: gateway_pb2_grpc.ChatDeliveryServiceStub(context.channel(g)) for g in self.gateways}
        self._timeout_s = self.settings.deliver_timeout_ms / 1000
        self.router = Router(self.registry, self._deliver)
        self.servicer = PresenceServicer(self.registry, self.router, self.gateways)
        self._sweeper: asyncio.Task | None = None

    async def _deliver(self, gateway: str, request: gateway_pb2.DeliverRequest) -> gateway_pb2.DeliverResponse:
        return await self._stubs[gateway].Deliver(request, timeout=self._timeout_s)

    async def _sweep(self) -> None:
        """Drop expired sessions every quarter of the timeout."""
        interval_s = self.settings.session_timeout_ms / 4000
        while True:
            await asyncio.sleep(interval_s)
            expired = self.registry.expire()
            if expired:
                EXPIRIES.inc(len(expired))
                SESSIONS.set(len(self.registry))
                log.info("%d sessions expired (their gateways stopped refreshing them): %s", len(expired),
                         ", ".join(sorted({e.gateway for e in expired})))

    def register(self, server: grpc.aio.Server) -> None:
        pb_grpc.add_PresenceServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep(), name="chat-router-sweep")

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        await self.servicer.drain_notices()


async def build(context: RuntimeContext) -> RouterComponent:
    return RouterComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=GATEWAYS, build=build, settings_model=RouterSettings,
    # A gateway that is down only takes its own sessions offline; the router serves the others.
    optional_dependencies=GATEWAYS,
    access=Access(public={"GetPresence"},
                  internal={"RegisterSession": GATEWAYS, "UnregisterSession": GATEWAYS, "RefreshSessions": GATEWAYS,
                            "Route": (MESSAGES,)}),
)
