"""The chat workload's journeys: sending messages on the connected streams, reconnecting, history, presence.

Every journey acts as one of this process's connected devices
(:class:`.clients.Clients`), picked uniformly. The seed gives no mix; this
one follows seed 000's functional requirements in the order they dominate a
messaging system's traffic: sends (1:1 and group), then reconnects
(connection churn as an arrival process), then history sync and presence.
"""

from __future__ import annotations

import random

from pydantic import Field

from casemesh.chat.v1 import messages_pb2, router_pb2
from casemesh.services.chat.contract import parse_conversation_id

from ..base import Caller, Params
from .clients import HEADER_BYTES, Clients
from .seeding import MESSAGES, ROUTER

#: The seed's average message (seed 000, "Storage per day": "Average message: 100 bytes").
SEED_MESSAGE_BYTES = 100


class SendParams(Params):
    """A message and where it goes."""

    body_bytes: int = Field(default=SEED_MESSAGE_BYTES, ge=HEADER_BYTES, le=65_536,
                            description="body size in bytes (seed 000: 100 on average); the first 8 carry the send time")
    group_share: float = Field(default=0.1, ge=0.0, le=1.0,
                               description="share of sends that go to one of the sender's groups (if any) instead of a contact")
    timeout_s: float = Field(default=5.0, gt=0, le=600, description="give up (DEADLINE_EXCEEDED) without the sent receipt by then")


class NoParams(Params):
    """A journey without parameters."""


class HistoryParams(Params):
    """One page of a conversation's history."""

    page_size: int = Field(default=50, ge=1, le=1000, description="messages per page")


async def send_message(call: Caller, params: SendParams, clients: Clients, rng: random.Random) -> None:
    """A device sends a message to a contact or a group; the journey ends at the ``sent`` receipt (stored durably).

    The recipients' streams record ``delivery`` / ``group_delivery`` when it arrives.
    """
    device = clients.devices[rng.choice(clients.local)]
    dms, groups = clients.state.conversations_of(device.user)
    conversation = rng.choice(groups) if groups and (not dms or rng.random() < params.group_share) else rng.choice(dms)
    call.begin()  # the send lag of a frame, as of an RPC
    await clients.send(device, conversation, clients.body(call.intended_at, params.body_bytes), params.timeout_s)


async def reconnect(call: Caller, params: NoParams, clients: Clients, rng: random.Random) -> None:
    """A device drops its connection and connects again (connection churn); ends at the new ``connected`` frame.

    The new session first gets whatever the device had not acknowledged (the offline queue).
    """
    device = clients.devices[rng.choice(clients.local)]
    await clients.reconnect(device, lambda gateway: call.bidi_stream(gateway, "Connect"))


async def history(call: Caller, params: HistoryParams, clients: Clients, rng: random.Random) -> None:
    """A device reads the first page of one of its conversations (history sync of a new device)."""
    user = rng.choice(clients.local)
    dms, groups = clients.state.conversations_of(user)
    await call(MESSAGES, "ListMessages", messages_pb2.ListMessagesRequest(
        user_id=user, conversation_id=rng.choice(dms + groups), page_size=params.page_size))


async def presence(call: Caller, params: NoParams, clients: Clients, rng: random.Random) -> None:
    """A device looks up whether its contacts are online and when they were last seen."""
    user = rng.choice(clients.local)
    contacts = [next(m for m in parse_conversation_id(c).members if m != user) for c in clients.state.dms[user]]
    await call(ROUTER, "GetPresence", router_pb2.GetPresenceRequest(user_ids=contacts[:500]))
