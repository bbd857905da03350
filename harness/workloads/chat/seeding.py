"""Seeding the chat workload through the public API: users, their contacts and their groups.

Users ``u00001`` ... each get ``contacts`` others to write to (a random
regular-ish graph: contact lists are symmetric); one-to-one conversations
need no creation (``dm:A:B``, casemesh.services.chat.contract). Groups are
created with MessageService.CreateGroup: ``groups`` groups of
``group_size`` members drawn at random (the seed allows up to 500: seed
000, "Group chats (up to 500 members)"). No message is seeded: every
conversation starts at sequence 1, so a client can check that it saw every
message of its conversations.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

from pydantic import Field, model_validator

from casemesh.chat.v1 import messages_pb2
from casemesh.services.chat.contract import MAX_GROUP_MEMBERS, dm_conversation_id

from ..base import Caller, Params

MESSAGES = "chat-messages"
ROUTER = "chat-router"
#: The connection servers a client may connect to (client-side load balancing by user).
GATEWAYS = ("chat-gateway-1", "chat-gateway-2")


class SeedParams(Params):
    """The users, their contacts and groups."""

    users: int = Field(default=1000, ge=2, le=100_000, description="users, each holding one connected device during the run")
    contacts: int = Field(default=8, ge=1, le=1000, description="one-to-one contacts per user (symmetric)")
    groups: int = Field(default=40, ge=0, le=10_000, description="group conversations")
    group_size: int = Field(default=20, ge=2, le=MAX_GROUP_MEMBERS,
                            description=f"members per group, the creator included (at most {MAX_GROUP_MEMBERS}: seed 000)")
    graph_seed: int = Field(default=1, ge=0, description="random seed of contacts and groups (same seed, same data)")
    concurrency: int = Field(default=32, ge=1, le=1024, description="seeding calls in flight")
    connect_concurrency: int = Field(default=64, ge=1, le=10_000,
                                     description="devices connecting at once when the run opens its streams (per load process)")

    @model_validator(mode="after")
    def _fits(self) -> SeedParams:
        if self.contacts >= self.users:
            raise ValueError(f"contacts ({self.contacts}) must be fewer than users ({self.users})")
        if self.group_size > self.users:
            raise ValueError(f"group_size ({self.group_size}) must be at most users ({self.users})")
        return self


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes)."""

    users: list[str]
    #: user → the one-to-one conversations they are in (with their contacts).
    dms: dict[str, list[str]]
    #: user → the groups they are in.
    user_groups: dict[str, list[str]] = field(default_factory=dict)
    #: group conversation → its members.
    groups: dict[str, list[str]] = field(default_factory=dict)

    def conversations_of(self, user: str) -> tuple[list[str], list[str]]:
        """``(dms, groups)`` of ``user``."""
        return self.dms.get(user, []), self.user_groups.get(user, [])


def contact_graph(users: list[str], contacts: int, rng: random.Random) -> dict[str, set[str]]:
    """Symmetric contact sets: each user adds ``contacts`` random others (so most have about 2 x ``contacts``)."""
    graph: dict[str, set[str]] = {u: set() for u in users}
    for user in users:
        for other in rng.sample(users, contacts + 1):
            if other != user and len(graph[user]) < contacts * 2:
                graph[user].add(other)
                graph[other].add(user)
    return graph


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create the groups (CreateGroup) and return the :class:`State`; contacts need no call."""
    graph_rng = random.Random(params.graph_seed)
    users = [f"u{i:05d}" for i in range(1, params.users + 1)]
    graph = contact_graph(users, params.contacts, graph_rng)
    dms = {u: sorted(dm_conversation_id(u, other) for other in graph[u]) for u in users}
    state = State(users=users, dms=dms)
    plans = [graph_rng.sample(users, params.group_size) for _ in range(params.groups)]
    limit = asyncio.Semaphore(params.concurrency)

    async def create(members: list[str], index: int) -> None:
        async with limit:
            response = await call(MESSAGES, "CreateGroup", messages_pb2.CreateGroupRequest(
                creator_id=members[0], member_ids=members[1:], title=f"group {index}"))
        state.groups[response.conversation_id] = list(response.member_ids)

    await asyncio.gather(*(create(members, i) for i, members in enumerate(plans)))
    for conversation, members in sorted(state.groups.items()):
        for member in members:
            state.user_groups.setdefault(member, []).append(conversation)
    return state
