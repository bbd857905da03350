from casemesh.chat.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SendMessageRequest(_message.Message):
    __slots__ = ("sender_id", "client_message_id", "conversation_id", "body")
    SENDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    sender_id: str
    client_message_id: str
    conversation_id: str
    body: bytes
    def __init__(self, sender_id: _Optional[str] = ..., client_message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class SendMessageResponse(_message.Message):
    __slots__ = ("message", "duplicate")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    message: _message_pb2.ChatMessage
    duplicate: bool
    def __init__(self, message: _Optional[_Union[_message_pb2.ChatMessage, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "up_to_sequence", "state")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    up_to_sequence: int
    state: _message_pb2.ReceiptState
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., up_to_sequence: _Optional[int] = ..., state: _Optional[_Union[_message_pb2.ReceiptState, str]] = ...) -> None: ...

class AcknowledgeResponse(_message.Message):
    __slots__ = ("delivered_up_to", "read_up_to")
    DELIVERED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    READ_UP_TO_FIELD_NUMBER: _ClassVar[int]
    delivered_up_to: int
    read_up_to: int
    def __init__(self, delivered_up_to: _Optional[int] = ..., read_up_to: _Optional[int] = ...) -> None: ...

class SyncInboxRequest(_message.Message):
    __slots__ = ("user_id", "max_messages")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    max_messages: int
    def __init__(self, user_id: _Optional[str] = ..., max_messages: _Optional[int] = ...) -> None: ...

class SyncInboxResponse(_message.Message):
    __slots__ = ("messages", "cursors", "truncated")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    CURSORS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_message_pb2.ChatMessage]
    cursors: _containers.RepeatedCompositeFieldContainer[Cursor]
    truncated: bool
    def __init__(self, messages: _Optional[_Iterable[_Union[_message_pb2.ChatMessage, _Mapping]]] = ..., cursors: _Optional[_Iterable[_Union[Cursor, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...

class Cursor(_message.Message):
    __slots__ = ("conversation_id", "delivered_up_to", "read_up_to", "last_sequence")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_UP_TO_FIELD_NUMBER: _ClassVar[int]
    READ_UP_TO_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    delivered_up_to: int
    read_up_to: int
    last_sequence: int
    def __init__(self, conversation_id: _Optional[str] = ..., delivered_up_to: _Optional[int] = ..., read_up_to: _Optional[int] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class ListMessagesRequest(_message.Message):
    __slots__ = ("user_id", "conversation_id", "after_sequence", "page_size")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    conversation_id: str
    after_sequence: int
    page_size: int
    def __init__(self, user_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., after_sequence: _Optional[int] = ..., page_size: _Optional[int] = ...) -> None: ...

class ListMessagesResponse(_message.Message):
    __slots__ = ("messages", "last_sequence")
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[_message_pb2.ChatMessage]
    last_sequence: int
    def __init__(self, messages: _Optional[_Iterable[_Union[_message_pb2.ChatMessage, _Mapping]]] = ..., last_sequence: _Optional[int] = ...) -> None: ...

class CreateGroupRequest(_message.Message):
    __slots__ = ("creator_id", "member_ids", "title")
    CREATOR_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    creator_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    title: str
    def __init__(self, creator_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ...) -> None: ...

class CreateGroupResponse(_message.Message):
    __slots__ = ("conversation_id", "member_ids")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, conversation_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetConversationRequest(_message.Message):
    __slots__ = ("conversation_id",)
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    def __init__(self, conversation_id: _Optional[str] = ...) -> None: ...

class GetConversationResponse(_message.Message):
    __slots__ = ("conversation_id", "member_ids", "title", "last_sequence")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    LAST_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    member_ids: _containers.RepeatedScalarFieldContainer[str]
    title: str
    last_sequence: int
    def __init__(self, conversation_id: _Optional[str] = ..., member_ids: _Optional[_Iterable[str]] = ..., title: _Optional[str] = ..., last_sequence: _Optional[int] = ...) -> None: ...
