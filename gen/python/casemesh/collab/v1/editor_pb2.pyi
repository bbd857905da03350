from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EditRequest(_message.Message):
    __slots__ = ("join", "update", "awareness", "heartbeat")
    JOIN_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    AWARENESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    join: Join
    update: LocalUpdate
    awareness: AwarenessUpdate
    heartbeat: Heartbeat
    def __init__(self, join: _Optional[_Union[Join, _Mapping]] = ..., update: _Optional[_Union[LocalUpdate, _Mapping]] = ..., awareness: _Optional[_Union[AwarenessUpdate, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Join(_message.Message):
    __slots__ = ("document_id", "user_id", "state_vector")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_VECTOR_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    user_id: str
    state_vector: bytes
    def __init__(self, document_id: _Optional[str] = ..., user_id: _Optional[str] = ..., state_vector: _Optional[bytes] = ...) -> None: ...

class LocalUpdate(_message.Message):
    __slots__ = ("client_update_id", "update", "origin")
    CLIENT_UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    client_update_id: int
    update: bytes
    origin: str
    def __init__(self, client_update_id: _Optional[int] = ..., update: _Optional[bytes] = ..., origin: _Optional[str] = ...) -> None: ...

class AwarenessUpdate(_message.Message):
    __slots__ = ("update",)
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    update: bytes
    def __init__(self, update: _Optional[bytes] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("joined", "remote", "ack", "awareness", "rejected")
    JOINED_FIELD_NUMBER: _ClassVar[int]
    REMOTE_FIELD_NUMBER: _ClassVar[int]
    ACK_FIELD_NUMBER: _ClassVar[int]
    AWARENESS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    joined: Joined
    remote: RemoteUpdate
    ack: UpdateAck
    awareness: AwarenessUpdate
    rejected: Rejected
    def __init__(self, joined: _Optional[_Union[Joined, _Mapping]] = ..., remote: _Optional[_Union[RemoteUpdate, _Mapping]] = ..., ack: _Optional[_Union[UpdateAck, _Mapping]] = ..., awareness: _Optional[_Union[AwarenessUpdate, _Mapping]] = ..., rejected: _Optional[_Union[Rejected, _Mapping]] = ...) -> None: ...

class Joined(_message.Message):
    __slots__ = ("session_id", "editor_server", "sync_update", "sequence", "awareness", "heartbeat_interval_ms")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EDITOR_SERVER_FIELD_NUMBER: _ClassVar[int]
    SYNC_UPDATE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AWARENESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    editor_server: str
    sync_update: bytes
    sequence: int
    awareness: bytes
    heartbeat_interval_ms: int
    def __init__(self, session_id: _Optional[str] = ..., editor_server: _Optional[str] = ..., sync_update: _Optional[bytes] = ..., sequence: _Optional[int] = ..., awareness: _Optional[bytes] = ..., heartbeat_interval_ms: _Optional[int] = ...) -> None: ...

class RemoteUpdate(_message.Message):
    __slots__ = ("update", "sequence", "origins")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ORIGINS_FIELD_NUMBER: _ClassVar[int]
    update: bytes
    sequence: int
    origins: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, update: _Optional[bytes] = ..., sequence: _Optional[int] = ..., origins: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateAck(_message.Message):
    __slots__ = ("client_update_id", "sequence", "duplicate")
    CLIENT_UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    client_update_id: int
    sequence: int
    duplicate: bool
    def __init__(self, client_update_id: _Optional[int] = ..., sequence: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class Rejected(_message.Message):
    __slots__ = ("client_update_id", "code", "field", "message")
    CLIENT_UPDATE_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    client_update_id: int
    code: int
    field: str
    message: str
    def __init__(self, client_update_id: _Optional[int] = ..., code: _Optional[int] = ..., field: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...
