"""The chat workload (WhatsApp; shared/seeds/000 "Chat System (like WhatsApp)", 003 "WhatsApp Messaging", 001 #01).

Every user holds one connected device (a ChatGatewayService.Connect bidi
stream) for the whole run: a population of long-lived streams
(casemesh.harness.streams). The open-loop arrivals send messages on them,
reconnect devices (churn), read history and look up presence.
"""

from __future__ import annotations

import random

from casemesh.chat.v1 import gateway_pb2, gateway_pb2_grpc, messages_pb2, messages_pb2_grpc, router_pb2, router_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .clients import DELIVERY, GROUP_DELIVERY, Clients
from .journeys import HistoryParams, NoParams, SendParams, history, presence, reconnect, send_message
from .seeding import GATEWAYS, MESSAGES, ROUTER, SeedParams, State, seed

_SERVICES = {
    **{gateway: (gateway_pb2, "ChatGatewayService", gateway_pb2_grpc.ChatGatewayServiceStub) for gateway in GATEWAYS},
    MESSAGES: (messages_pb2, "MessageService", messages_pb2_grpc.MessageServiceStub),
    ROUTER: (router_pb2, "PresenceService", router_pb2_grpc.PresenceServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Clients:
    """Connect this process's share of the users (one device each); the journeys get the :class:`Clients`."""
    clients = Clients(streams, state)
    try:
        await clients.connect_all(params.connect_concurrency)
    except BaseException:
        await clients.close()
        raise
    return clients


async def disconnect(clients: Clients) -> None:
    """Close every device's stream."""
    await clients.close()


WORKLOAD = Workload(
    name="chat",
    description="Chat (shared/seeds/000, 003 'WhatsApp'): connected devices on bidi streams, 1:1 and group messages, churn",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("send_message", "Send a message to a contact or a group on the device's stream; ends at the sent receipt",
                    SendParams, send_message),
            Journey("reconnect", "Drop the device's connection and connect again (churn); ends at the connected frame",
                    NoParams, reconnect),
            Journey("history", "Read the first page of one of the device's conversations (ListMessages)", HistoryParams, history),
            Journey("presence", "Look up the contacts' presence (GetPresence)", NoParams, presence),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=(DELIVERY, GROUP_DELIVERY),
    connect=connect,
    disconnect=disconnect,
)
