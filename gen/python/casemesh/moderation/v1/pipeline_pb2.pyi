from casemesh.moderation.v1 import moderation_pb2 as _moderation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitItemRequest(_message.Message):
    __slots__ = ("item_id", "author_id", "text")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    author_id: str
    text: str
    def __init__(self, item_id: _Optional[str] = ..., author_id: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class SubmitItemResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: _moderation_pb2.Item
    def __init__(self, item: _Optional[_Union[_moderation_pb2.Item, _Mapping]] = ...) -> None: ...

class GetItemRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    def __init__(self, item_id: _Optional[str] = ...) -> None: ...

class GetItemResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: _moderation_pb2.Item
    def __init__(self, item: _Optional[_Union[_moderation_pb2.Item, _Mapping]] = ...) -> None: ...

class AwaitDecisionRequest(_message.Message):
    __slots__ = ("item_id", "timeout_ms")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    timeout_ms: int
    def __init__(self, item_id: _Optional[str] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class AwaitDecisionResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: _moderation_pb2.Item
    def __init__(self, item: _Optional[_Union[_moderation_pb2.Item, _Mapping]] = ...) -> None: ...

class AppealDecisionRequest(_message.Message):
    __slots__ = ("item_id", "author_id", "reason")
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    author_id: str
    reason: str
    def __init__(self, item_id: _Optional[str] = ..., author_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AppealDecisionResponse(_message.Message):
    __slots__ = ("item",)
    ITEM_FIELD_NUMBER: _ClassVar[int]
    item: _moderation_pb2.Item
    def __init__(self, item: _Optional[_Union[_moderation_pb2.Item, _Mapping]] = ...) -> None: ...

class ListAuditLogRequest(_message.Message):
    __slots__ = ("item_id",)
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    item_id: str
    def __init__(self, item_id: _Optional[str] = ...) -> None: ...

class ListAuditLogResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_moderation_pb2.AuditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[_moderation_pb2.AuditEntry, _Mapping]]] = ...) -> None: ...
