from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReceiptState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RECEIPT_STATE_UNSPECIFIED: _ClassVar[ReceiptState]
    RECEIPT_STATE_SENT: _ClassVar[ReceiptState]
    RECEIPT_STATE_DELIVERED: _ClassVar[ReceiptState]
    RECEIPT_STATE_READ: _ClassVar[ReceiptState]
RECEIPT_STATE_UNSPECIFIED: ReceiptState
RECEIPT_STATE_SENT: ReceiptState
RECEIPT_STATE_DELIVERED: ReceiptState
RECEIPT_STATE_READ: ReceiptState

class ChatMessage(_message.Message):
    __slots__ = ("conversation_id", "sequence", "message_id", "client_message_id", "sender_id", "body", "stored_at_unix_ms")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    sequence: int
    message_id: str
    client_message_id: str
    sender_id: str
    body: bytes
    stored_at_unix_ms: int
    def __init__(self, conversation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., message_id: _Optional[str] = ..., client_message_id: _Optional[str] = ..., sender_id: _Optional[str] = ..., body: _Optional[bytes] = ..., stored_at_unix_ms: _Optional[int] = ...) -> None: ...

class Receipt(_message.Message):
    __slots__ = ("conversation_id", "user_id", "state", "up_to_sequence", "at_unix_ms")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    user_id: str
    state: ReceiptState
    up_to_sequence: int
    at_unix_ms: int
    def __init__(self, conversation_id: _Optional[str] = ..., user_id: _Optional[str] = ..., state: _Optional[_Union[ReceiptState, str]] = ..., up_to_sequence: _Optional[int] = ..., at_unix_ms: _Optional[int] = ...) -> None: ...
