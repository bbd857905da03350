"""Request validation shared by the chat servicers, rule for rule as protos/casemesh/chat/v1 says.

The rules themselves (the ID pattern, the conversation-ID grammar, the body
and group limits) are the contract's and live in :mod:`.contract`; this
module applies them to request fields. Every failure raises
``InvalidArgument(field, reason)`` with the proto field name passed in by the
caller (``sender_id``, ``send.body``, ``member_ids[3]``), so the server
answers ``INVALID_ARGUMENT`` with ``"FIELD: REASON"``. Validated in Python
rather than with protovalidate annotations (shared/NOTES.md).
"""

from __future__ import annotations

from collections.abc import Sequence

from casemesh.chat.v1 import message_pb2
from casemesh.services.runtime.errors import InvalidArgument

from .contract import MAX_BODY_BYTES, MAX_GROUP_MEMBERS, MAX_GROUP_TITLE_CHARS, ConversationRef, is_id, parse_conversation_id

#: SyncInboxRequest.max_messages: 1 to this.
MAX_SYNC_MESSAGES = 10_000
#: ListMessagesRequest.page_size: 0 means DEFAULT_PAGE_SIZE; at most MAX_PAGE_SIZE.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1_000
#: The receipt states a client may acknowledge (SENT is the server's own).
ACK_STATES = frozenset({message_pb2.RECEIPT_STATE_DELIVERED, message_pb2.RECEIPT_STATE_READ})


def validate_id(field: str, value: str) -> str:
    """``value`` when it is an ID of the contract (1 to 64 characters of [A-Za-z0-9_-]); else ``InvalidArgument(field)``."""
    if not value:
        raise InvalidArgument(field, "is required")
    if not is_id(value):
        raise InvalidArgument(field, "must be 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
    return value


def validate_conversation_id(field: str, value: str) -> ConversationRef:
    """The parsed ``dm:A:B`` / ``group:ID`` of ``value``; else ``InvalidArgument(field)`` saying what is wrong."""
    if not value:
        raise InvalidArgument(field, "is required (dm:A:B or group:ID)")
    try:
        return parse_conversation_id(value)
    except ValueError as error:
        raise InvalidArgument(field, str(error)) from None


def validate_body(field: str, body: bytes) -> bytes:
    """A message body: 1 to 65,536 bytes; else ``InvalidArgument(field)``."""
    if not body:
        raise InvalidArgument(field, "is required (1 to 65,536 bytes)")
    if len(body) > MAX_BODY_BYTES:
        raise InvalidArgument(field, f"is {len(body):,} bytes; at most {MAX_BODY_BYTES:,}")
    return body


def validate_ack_state(field: str, state: int) -> int:
    """RECEIPT_STATE_DELIVERED or RECEIPT_STATE_READ; else ``InvalidArgument(field)``."""
    if state not in ACK_STATES:
        name = message_pb2.ReceiptState.Name(state) if state in message_pb2.ReceiptState.values() else str(state)
        raise InvalidArgument(field, f"must be RECEIPT_STATE_DELIVERED or RECEIPT_STATE_READ, not {name}")
    return state


def validate_up_to_sequence(field: str, value: int) -> int:
    """An acknowledged sequence: at least 1 (whether it exists is the store's check)."""
    if value < 1:
        raise InvalidArgument(field, "must be at least 1 (the first message's sequence)")
    return value


def validate_max_messages(field: str, value: int) -> int:
    """SyncInbox's ``max_messages``: 1 to 10,000."""
    if not 1 <= value <= MAX_SYNC_MESSAGES:
        raise InvalidArgument(field, f"must be 1 to {MAX_SYNC_MESSAGES:,}, not {value}")
    return value


def page_size(field: str, value: int) -> int:
    """ListMessages' ``page_size``: 0 means 100; at most 1,000."""
    if not 0 <= value <= MAX_PAGE_SIZE:
        raise InvalidArgument(field, f"must be 0 (default {DEFAULT_PAGE_SIZE}) to {MAX_PAGE_SIZE:,}, not {value}")
    return value or DEFAULT_PAGE_SIZE


def validate_group_members(field: str, creator_id: str, member_ids: Sequence[str]) -> tuple[str, ...]:
    """A group's members, the creator first, then ``member_ids`` in order without duplicates or the creator.

    ``InvalidArgument(field[i])`` for a bad ID, ``InvalidArgument(field)``
    when more than 499 remain besides the creator (seed 000, "Group chats (up
    to 500 members)").
    """
    members = dict.fromkeys([creator_id])
    for i, member in enumerate(member_ids):
        validate_id(f"{field}[{i}]", member)
        members[member] = None
    if len(members) > MAX_GROUP_MEMBERS:
        raise InvalidArgument(field, f"names {len(members) - 1:,} members besides the creator; a group has at most "
                                     f"{MAX_GROUP_MEMBERS} members, the creator included")
    return tuple(members)


def validate_title(field: str, title: str) -> str:
    """A group title: up to 100 characters (code points); may be empty."""
    if len(title) > MAX_GROUP_TITLE_CHARS:
        raise InvalidArgument(field, f"is {len(title)} characters; at most {MAX_GROUP_TITLE_CHARS}")
    return title
