import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClickEvent(_message.Message):
    __slots__ = ("code", "click_time", "country_code")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CLICK_TIME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    click_time: _timestamp_pb2.Timestamp
    country_code: str
    def __init__(self, code: _Optional[str] = ..., click_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., country_code: _Optional[str] = ...) -> None: ...

class RecordClicksRequest(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[ClickEvent]
    def __init__(self, events: _Optional[_Iterable[_Union[ClickEvent, _Mapping]]] = ...) -> None: ...

class RecordClicksResponse(_message.Message):
    __slots__ = ("accepted_count",)
    ACCEPTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    accepted_count: int
    def __init__(self, accepted_count: _Optional[int] = ...) -> None: ...

class GetClickStatsRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class GetClickStatsResponse(_message.Message):
    __slots__ = ("total_clicks", "clicks_by_country", "last_click_time")
    class ClicksByCountryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    TOTAL_CLICKS_FIELD_NUMBER: _ClassVar[int]
    CLICKS_BY_COUNTRY_FIELD_NUMBER: _ClassVar[int]
    LAST_CLICK_TIME_FIELD_NUMBER: _ClassVar[int]
    total_clicks: int
    clicks_by_country: _containers.ScalarMap[str, int]
    last_click_time: _timestamp_pb2.Timestamp
    def __init__(self, total_clicks: _Optional[int] = ..., clicks_by_country: _Optional[_Mapping[str, int]] = ..., last_click_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
