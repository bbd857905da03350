from casemesh.chat.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConnectRequest(_message.Message):
    __slots__ = ("hello", "send", "ack", "heartbeat")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    SEND_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    send: Send
    ack: Ack
    heartbeat: Heartbeat
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., send: _Optional[_Union[Send, _Mapping]] = ..., ack: _Optional[_Union[Ack, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("user_id", "device_id")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class Send(_message.Message):
    __slots__ = ("client_message_id", "conversation_id", "body")
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    client_message_id: str
    conversation_id: str
    body: bytes
    def __init__(self, client_message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class Ack(_message.Message):
    __slots__ = ("conversation_id", "up_to_sequence", "state")
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    UP_TO_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    conversation_id: str
    up_to_sequence: int
    state: _message_pb2.ReceiptState
    def __init__(self, conversation_id: _Optional[str] = ..., up_to_sequence: _Optional[int] = ..., state: _Optional[_Union[_message_pb2.ReceiptState, str]] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ConnectResponse(_message.Message):
    __slots__ = ("connected", "sent", "message", "receipt", "rejected")
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    SENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    connected: Connected
    sent: Sent
    message: _message_pb2.ChatMessage
    receipt: _message_pb2.Receipt
    rejected: Rejected
    def __init__(self, connected: _Optional[_Union[Connected, _Mapping]] = ..., sent: _Optional[_Union[Sent, _Mapping]] = ..., message: _Optional[_Union[_message_pb2.ChatMessage, _Mapping]] = ..., receipt: _Optional[_Union[_message_pb2.Receipt, _Mapping]] = ..., rejected: _Optional[_Union[Rejected, _Mapping]] = ...) -> None: ...

class Connected(_message.Message):
    __slots__ = ("session_id", "gateway", "heartbeat_interval_ms", "pending_messages")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    PENDING_MESSAGES_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    gateway: str
    heartbeat_interval_ms: int
    pending_messages: int
    def __init__(self, session_id: _Optional[str] = ..., gateway: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., pending_messages: _Optional[int] = ...) -> None: ...

class Sent(_message.Message):
    __slots__ = ("client_message_id", "message_id", "conversation_id", "sequence", "stored_at_unix_ms")
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    client_message_id: str
    message_id: str
    conversation_id: str
    sequence: int
    stored_at_unix_ms: int
    def __init__(self, client_message_id: _Optional[str] = ..., message_id: _Optional[str] = ..., conversation_id: _Optional[str] = ..., sequence: _Optional[int] = ..., stored_at_unix_ms: _Optional[int] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("client_message_id", "code", "field", "message")
    CLIENT_MESSAGE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    client_message_id: str
    code: int
    field: str
    message: str
    def __init__(self, client_message_id: _Optional[str] = ..., code: _Optional[int] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DeliverRequest(_message.Message):
    __slots__ = ("pushes",)
    PUSHES_FIELD_NUMBER: _ClassVar[int]
    pushes: _containers.RepeatedCompositeFieldContainer[Push]
    def __init__(self, pushes: _Optional[_Iterable[_Union[Push, _Mapping]]] = ...) -> None: ...

class Push(_message.Message):
    __slots__ = ("session_id", "message", "receipt", "replaced")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    REPLACED_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    message: _message_pb2.ChatMessage
    receipt: _message_pb2.Receipt
    replaced: Replaced
    def __init__(self, session_id: _Optional[str] = ..., message: _Optional[_Union[_message_pb2.ChatMessage, _Mapping]] = ..., receipt: _Optional[_Union[_message_pb2.Receipt, _Mapping]] = ..., replaced: _Optional[_Union[Replaced, _Mapping]] = ...) -> None: ...

class Replaced(_message.Message):
    __slots__ = ("by_session_id",)
    BY_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    by_session_id: str
    def __init__(self, by_session_id: _Optional[str] = ...) -> None: ...

class DeliverResponse(_message.Message):
    __slots__ = ("missing_session_ids",)
    MISSING_SESSION_IDS_FIELD_NUMBER: _ClassVar[int]
    missing_session_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, missing_session_ids: _Optional[_Iterable[str]] = ...) -> None: ...
