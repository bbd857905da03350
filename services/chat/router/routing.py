"""Routing: push one message or receipt to every connected device of some users, one Deliver call per gateway.

Seed 000 (shared/seeds/000_69ff90d97cf45f9b.txt), "Real-time Messaging",
``send_message``: "Try to deliver in real-time: if recipient_id in
self.connections ... else publish to Redis ``user:{recipient_id}``". Here
the :class:`~.presence.PresenceRegistry` says which gateway holds each of the
recipients' devices, and :class:`Router` makes one
``ChatDeliveryService.Deliver`` call per gateway (at most
:data:`MAX_PUSHES_PER_DELIVER` pushes each; gateways concurrently). A user
none of whose sessions took the item is reported offline: the message waits
in their offline queue (MessageService.SyncInbox) until a device connects.

- A session the gateway says it no longer holds (``missing_session_ids``) is
  dropped from the registry.
- A gateway that fails (unreachable, deadline) counts its users as offline;
  its sessions stay until its refreshes stop (the registry's timeout).

The Deliver call is injected (``deliver(gateway, DeliverRequest) ->
DeliverResponse``), so this is testable without gRPC.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from casemesh.chat.v1 import gateway_pb2, message_pb2

from .presence import PresenceRegistry, SessionEntry

log = logging.getLogger("casemesh.chat.router")

#: Most pushes in one Deliver call (gateway.proto: DeliverRequest.pushes, 1 to 1,000).
MAX_PUSHES_PER_DELIVER = 1_000

Deliver = Callable[[str, gateway_pb2.DeliverRequest], Awaitable[gateway_pb2.DeliverResponse]]


@dataclass(frozen=True, slots=True)
class GatewayOutcome:
    """One gateway's share of a route: ``pushed`` sessions took the item, ``missing`` were gone, ``failed`` (the call)."""

    gateway: str
    pushed: int
    missing: int
    failed: bool


@dataclass(frozen=True, slots=True)
class RouteOutcome:
    """The sessions the item was pushed to, the users with none, and each gateway's share."""

    delivered_sessions: int
    offline_user_ids: list[str]
    gateways: list[GatewayOutcome]


class Router:
    """Routes items to the sessions the ``registry`` knows, through ``deliver``."""

    def __init__(self, registry: PresenceRegistry, deliver: Deliver) -> None:
        self.registry = registry
        self._deliver = deliver

    async def route(self, user_ids: Sequence[str], message: message_pb2.ChatMessage | None = None,
                    receipt: message_pb2.Receipt | None = None) -> RouteOutcome:
        """Push ``message`` or ``receipt`` to every session of ``user_ids`` (module docstring)."""
        users = list(dict.fromkeys(user_ids))
        by_gateway = self.registry.sessions_of(users)
        results = await asyncio.gather(*(self._to_gateway(g, sessions, message, receipt)
                                         for g, sessions in by_gateway.items()))
        reached: set[str] = set()
        outcomes = []
        delivered = 0
        for gateway, (outcome, users_reached) in zip(by_gateway, results):
            outcomes.append(outcome)
            delivered += outcome.pushed
            reached |= users_reached
        return RouteOutcome(delivered, [u for u in users if u not in reached], outcomes)

    async def replaced(self, old: SessionEntry, by_session_id: str) -> bool:
        """Tell ``old``'s gateway that ``by_session_id`` replaced it (it ends ``old`` with ABORTED); ``True`` when told."""
        push = gateway_pb2.Push(session_id=old.session_id, replaced=gateway_pb2.Replaced(by_session_id=by_session_id))
        try:
            await self._deliver(old.gateway, gateway_pb2.DeliverRequest(pushes=[push]))
            return True
        except Exception as error:  # noqa: BLE001 - the gateway is down: its session is gone with it
            log.info("could not tell %s that session %s was replaced: %s", old.gateway, old.session_id, error)
            return False

    async def _to_gateway(self, gateway: str, sessions: list[SessionEntry], message, receipt) -> tuple[GatewayOutcome, set[str]]:
        users_of = {s.session_id: s.user_id for s in sessions}
        pushes = [gateway_pb2.Push(session_id=s.session_id, message=message) if message is not None
                  else gateway_pb2.Push(session_id=s.session_id, receipt=receipt) for s in sessions]
        chunks = [pushes[i:i + MAX_PUSHES_PER_DELIVER] for i in range(0, len(pushes), MAX_PUSHES_PER_DELIVER)]
        replies = await asyncio.gather(*(self._deliver(gateway, gateway_pb2.DeliverRequest(pushes=chunk)) for chunk in chunks),
                                       return_exceptions=True)
        missing: set[str] = set()
        failed_sessions: set[str] = set()
        failed = False
        for chunk, reply in zip(chunks, replies):
            if isinstance(reply, BaseException):
                if isinstance(reply, asyncio.CancelledError):
                    raise reply
                failed = True
                failed_sessions.update(p.session_id for p in chunk)
                log.debug("Deliver to %s failed: %s", gateway, reply)
            else:
                missing.update(s for s in reply.missing_session_ids if s in users_of)
        if missing:
            self.registry.drop(missing)
        took = [s for s in users_of if s not in missing and s not in failed_sessions]
        return GatewayOutcome(gateway, len(took), len(missing), failed), {users_of[s] for s in took}
