from casemesh.chat.v1 import message_pb2 as _message_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterSessionRequest(_message.Message):
    __slots__ = ("user_id", "device_id", "session_id", "gateway")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    device_id: str
    session_id: str
    gateway: str
    def __init__(self, user_id: _Optional[str] = ..., device_id: _Optional[str] = ..., session_id: _Optional[str] = ..., gateway: _Optional[str] = ...) -> None: ...

class RegisterSessionResponse(_message.Message):
    __slots__ = ("replaced_session_id",)
    REPLACED_SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    replaced_session_id: str
    def __init__(self, replaced_session_id: _Optional[str] = ...) -> None: ...

class UnregisterSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class UnregisterSessionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RefreshSessionsRequest(_message.Message):
    __slots__ = ("gateway", "sessions")
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    gateway: str
    sessions: _containers.RepeatedCompositeFieldContainer[SessionInfo]
    def __init__(self, gateway: _Optional[str] = ..., sessions: _Optional[_Iterable[_Union[SessionInfo, _Mapping]]] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "user_id", "device_id")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    DEVICE_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    user_id: str
    device_id: str
    def __init__(self, session_id: _Optional[str] = ..., user_id: _Optional[str] = ..., device_id: _Optional[str] = ...) -> None: ...

class RefreshSessionsResponse(_message.Message):
    __slots__ = ("registered", "dropped")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    registered: int
    dropped: int
    def __init__(self, registered: _Optional[int] = ..., dropped: _Optional[int] = ...) -> None: ...

class GetPresenceRequest(_message.Message):
    __slots__ = ("user_ids",)
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPresenceResponse(_message.Message):
    __slots__ = ("presences",)
    PRESENCES_FIELD_NUMBER: _ClassVar[int]
    presences: _containers.RepeatedCompositeFieldContainer[Presence]
    def __init__(self, presences: _Optional[_Iterable[_Union[Presence, _Mapping]]] = ...) -> None: ...

class Presence(_message.Message):
    __slots__ = ("user_id", "online", "devices", "last_seen_unix_ms")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    ONLINE_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    online: bool
    devices: int
    last_seen_unix_ms: int
    def __init__(self, user_id: _Optional[str] = ..., online: _Optional[bool] = ..., devices: _Optional[int] = ..., last_seen_unix_ms: _Optional[int] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("user_ids", "message", "receipt")
    USER_IDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_FIELD_NUMBER: _ClassVar[int]
    user_ids: _containers.RepeatedScalarFieldContainer[str]
    message: _message_pb2.ChatMessage
    receipt: _message_pb2.Receipt
    def __init__(self, user_ids: _Optional[_Iterable[str]] = ..., message: _Optional[_Union[_message_pb2.ChatMessage, _Mapping]] = ..., receipt: _Optional[_Union[_message_pb2.Receipt, _Mapping]] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("delivered_sessions", "offline_user_ids")
    DELIVERED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    OFFLINE_USER_IDS_FIELD_NUMBER: _ClassVar[int]
    delivered_sessions: int
    offline_user_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, delivered_sessions: _Optional[int] = ..., offline_user_ids: _Optional[_Iterable[str]] = ...) -> None: ...
