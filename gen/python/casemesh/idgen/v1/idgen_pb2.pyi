from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IdLayout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ID_LAYOUT_UNSPECIFIED: _ClassVar[IdLayout]
    ID_LAYOUT_COUNTER: _ClassVar[IdLayout]
    ID_LAYOUT_SNOWFLAKE: _ClassVar[IdLayout]
ID_LAYOUT_UNSPECIFIED: IdLayout
ID_LAYOUT_COUNTER: IdLayout
ID_LAYOUT_SNOWFLAKE: IdLayout

class LeaseIdsRequest(_message.Message):
    __slots__ = ("count", "layout")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    count: int
    layout: IdLayout
    def __init__(self, count: _Optional[int] = ..., layout: _Optional[_Union[IdLayout, str]] = ...) -> None: ...

class IdRange(_message.Message):
    __slots__ = ("start", "count")
    START_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    start: int
    count: int
    def __init__(self, start: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class LeaseIdsResponse(_message.Message):
    __slots__ = ("ranges", "layout", "worker_id")
    RANGES_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    ranges: _containers.RepeatedCompositeFieldContainer[IdRange]
    layout: IdLayout
    worker_id: int
    def __init__(self, ranges: _Optional[_Iterable[_Union[IdRange, _Mapping]]] = ..., layout: _Optional[_Union[IdLayout, str]] = ..., worker_id: _Optional[int] = ...) -> None: ...
