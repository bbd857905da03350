"""The contract's messages (casemesh.chat.v1) of the store's records: ChatMessage, Receipt, receipt states."""

from __future__ import annotations

from casemesh.chat.v1 import message_pb2

from .journal import StoredMessage
from .store import DELIVERED, READ, ReceiptEvent

#: Receipt state of the contract → the store's name, and back.
STATE_NAMES = {message_pb2.RECEIPT_STATE_DELIVERED: DELIVERED, message_pb2.RECEIPT_STATE_READ: READ}
STATE_VALUES = {name: value for value, name in STATE_NAMES.items()}


def chat_message(message: StoredMessage) -> message_pb2.ChatMessage:
    """The ChatMessage of a stored message."""
    return message_pb2.ChatMessage(
        conversation_id=message.conversation_id, sequence=message.sequence, message_id=message.message_id,
        client_message_id=message.client_message_id, sender_id=message.sender_id, body=message.body,
        stored_at_unix_ms=message.stored_at_unix_ms)


def receipt(event: ReceiptEvent) -> message_pb2.Receipt:
    """The Receipt of a committed cursor advance."""
    return message_pb2.Receipt(conversation_id=event.conversation_id, user_id=event.user_id,
                               state=STATE_VALUES[event.state], up_to_sequence=event.up_to_sequence,
                               at_unix_ms=event.at_unix_ms)
