import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShortenRequest(_message.Message):
    __slots__ = ("long_url", "custom_alias", "ttl_seconds")
    LONG_URL_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_ALIAS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    long_url: str
    custom_alias: str
    ttl_seconds: int
    def __init__(self, long_url: _Optional[str] = ..., custom_alias: _Optional[str] = ..., ttl_seconds: _Optional[int] = ...) -> None: ...

class ShortenResponse(_message.Message):
    __slots__ = ("code", "expire_time")
    CODE_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    code: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, code: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveRequest(_message.Message):
    __slots__ = ("code", "country_code")
    CODE_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    country_code: str
    def __init__(self, code: _Optional[str] = ..., country_code: _Optional[str] = ...) -> None: ...

class ResolveResponse(_message.Message):
    __slots__ = ("long_url",)
    LONG_URL_FIELD_NUMBER: _ClassVar[int]
    long_url: str
    def __init__(self, long_url: _Optional[str] = ...) -> None: ...

class GetStatsRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
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

class DeleteRequest(_message.Message):
    __slots__ = ("code",)
    CODE_FIELD_NUMBER: _ClassVar[int]
    code: str
    def __init__(self, code: _Optional[str] = ...) -> None: ...

class DeleteResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
