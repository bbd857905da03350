from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncRequest(_message.Message):
    __slots__ = ("document_id", "state_vector")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_VECTOR_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    state_vector: bytes
    def __init__(self, document_id: _Optional[str] = ..., state_vector: _Optional[bytes] = ...) -> None: ...

class SyncResponse(_message.Message):
    __slots__ = ("update", "sequence", "awareness")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AWARENESS_FIELD_NUMBER: _ClassVar[int]
    update: bytes
    sequence: int
    awareness: bytes
    def __init__(self, update: _Optional[bytes] = ..., sequence: _Optional[int] = ..., awareness: _Optional[bytes] = ...) -> None: ...

class ApplyUpdateRequest(_message.Message):
    __slots__ = ("document_id", "update", "origin", "session_id")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    update: bytes
    origin: str
    session_id: str
    def __init__(self, document_id: _Optional[str] = ..., update: _Optional[bytes] = ..., origin: _Optional[str] = ..., session_id: _Optional[str] = ...) -> None: ...

class ApplyUpdateResponse(_message.Message):
    __slots__ = ("sequence", "duplicate")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    duplicate: bool
    def __init__(self, sequence: _Optional[int] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class ApplyAwarenessRequest(_message.Message):
    __slots__ = ("document_id", "update", "session_id")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    update: bytes
    session_id: str
    def __init__(self, document_id: _Optional[str] = ..., update: _Optional[bytes] = ..., session_id: _Optional[str] = ...) -> None: ...

class ApplyAwarenessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("document_id", "watcher")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    WATCHER_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    watcher: str
    def __init__(self, document_id: _Optional[str] = ..., watcher: _Optional[str] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("started", "update", "awareness")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    AWARENESS_FIELD_NUMBER: _ClassVar[int]
    started: WatchStarted
    update: AppliedUpdate
    awareness: AwarenessChange
    def __init__(self, started: _Optional[_Union[WatchStarted, _Mapping]] = ..., update: _Optional[_Union[AppliedUpdate, _Mapping]] = ..., awareness: _Optional[_Union[AwarenessChange, _Mapping]] = ...) -> None: ...

class WatchStarted(_message.Message):
    __slots__ = ("sequence",)
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    def __init__(self, sequence: _Optional[int] = ...) -> None: ...

class AppliedUpdate(_message.Message):
    __slots__ = ("sequence", "update", "origin", "session_id", "applied_at_unix_ns")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    APPLIED_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    update: bytes
    origin: str
    session_id: str
    applied_at_unix_ns: int
    def __init__(self, sequence: _Optional[int] = ..., update: _Optional[bytes] = ..., origin: _Optional[str] = ..., session_id: _Optional[str] = ..., applied_at_unix_ns: _Optional[int] = ...) -> None: ...

class AwarenessChange(_message.Message):
    __slots__ = ("update", "session_id")
    UPDATE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    update: bytes
    session_id: str
    def __init__(self, update: _Optional[bytes] = ..., session_id: _Optional[str] = ...) -> None: ...
