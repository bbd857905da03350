"""The chat contract's rules that clients and servers both apply (part of the contract: protos/casemesh/chat/v1).

The protos quote each rule in their field comments; a client in another
language applies the same ones. This module is imported by the chat services
and by the chat workload alike, and by nothing else of either side.

- User, device, session and client-message IDs: 1 to 64 characters of
  ``[A-Za-z0-9_-]`` (:data:`ID_PATTERN`).
- Conversation IDs: ``dm:A:B`` for the one-to-one conversation of users A and
  B with A < B in byte order (:func:`dm_conversation_id`), ``group:ID`` for a
  group (:func:`group_conversation_id`); :func:`parse_conversation_id` reads
  either.
- ``MAX_BODY_BYTES``: a message body is 1 to 65,536 bytes (the seed's average
  message is 100 bytes: seed 000, "Storage per day").
- ``MAX_GROUP_MEMBERS``: 500 members per group, the creator included (seed
  000, "Group chats (up to 500 members)").
- ``MAX_GROUP_TITLE_CHARS``: 100.
- ``HEARTBEAT_INTERVAL_MS``: the default interval a client heartbeats at
  when it has nothing else to send, 30 s (a keepalive below the 60 s or
  more that NATs and load balancers keep idle connections for; 1,000 idle
  devices cost a connection server 33 frames/s); a session silent for
  ``HEARTBEAT_TIMEOUT_INTERVALS`` intervals is ended (presence "from
  heartbeats with a timeout").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_BODY_BYTES = 65_536
MAX_GROUP_MEMBERS = 500
MAX_GROUP_TITLE_CHARS = 100
HEARTBEAT_INTERVAL_MS = 30_000
HEARTBEAT_TIMEOUT_INTERVALS = 3

DM_PREFIX = "dm:"
GROUP_PREFIX = "group:"


@dataclass(frozen=True)
class ConversationRef:
    """A parsed conversation ID: ``kind`` is ``"dm"`` (``members`` the two users, sorted) or ``"group"`` (``group_id``)."""

    kind: str
    members: tuple[str, ...] = ()
    group_id: str = ""


def is_id(value: str) -> bool:
    """True when ``value`` is 1 to 64 characters of [A-Za-z0-9_-]."""
    return bool(ID_PATTERN.fullmatch(value))


def dm_conversation_id(a: str, b: str) -> str:
    """``dm:A:B`` of users ``a`` and ``b`` (either order); ``ValueError`` for a bad ID or ``a == b``."""
    if not (is_id(a) and is_id(b)):
        raise ValueError(f"user IDs must be 1 to 64 characters of [A-Za-z0-9_-]: {a!r}, {b!r}")
    if a == b:
        raise ValueError(f"a one-to-one conversation needs two different users, not {a!r} twice")
    low, high = sorted((a, b))
    return f"{DM_PREFIX}{low}:{high}"


def group_conversation_id(group_id: str) -> str:
    """``group:ID``; ``ValueError`` for a bad ID."""
    if not is_id(group_id):
        raise ValueError(f"a group ID must be 1 to 64 characters of [A-Za-z0-9_-], not {group_id!r}")
    return f"{GROUP_PREFIX}{group_id}"


def parse_conversation_id(value: str) -> ConversationRef:
    """The :class:`ConversationRef` of ``value``; ``ValueError`` saying what is wrong with it."""
    if value.startswith(DM_PREFIX):
        a, sep, b = value[len(DM_PREFIX):].partition(":")
        if not sep or not is_id(a) or not is_id(b):
            raise ValueError("a one-to-one conversation ID is dm:A:B with two user IDs")
        if not a < b:
            raise ValueError("in dm:A:B the user IDs must be different and A < B (byte order)")
        return ConversationRef("dm", members=(a, b))
    if value.startswith(GROUP_PREFIX):
        group_id = value[len(GROUP_PREFIX):]
        if not is_id(group_id):
            raise ValueError("a group conversation ID is group:ID with ID 1 to 64 characters of [A-Za-z0-9_-]")
        return ConversationRef("group", group_id=group_id)
    raise ValueError("a conversation ID starts with dm: or group:")
