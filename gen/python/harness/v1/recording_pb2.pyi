import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CallEnd(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALL_END_UNSPECIFIED: _ClassVar[CallEnd]
    CALL_END_CLIENT_CANCELLED: _ClassVar[CallEnd]
    CALL_END_DEADLINE_EXCEEDED: _ClassVar[CallEnd]
    CALL_END_RECORDER: _ClassVar[CallEnd]
CALL_END_UNSPECIFIED: CallEnd
CALL_END_CLIENT_CANCELLED: CallEnd
CALL_END_DEADLINE_EXCEEDED: CallEnd
CALL_END_RECORDER: CallEnd

class RecordingEntry(_message.Message):
    __slots__ = ("header", "call", "end")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CALL_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    header: RecordingHeader
    call: RecordedCall
    end: RecordingEnd
    def __init__(self, header: _Optional[_Union[RecordingHeader, _Mapping]] = ..., call: _Optional[_Union[RecordedCall, _Mapping]] = ..., end: _Optional[_Union[RecordingEnd, _Mapping]] = ...) -> None: ...

class RecordingHeader(_message.Message):
    __slots__ = ("format_version", "create_time", "upstream_address", "listen_address", "recorder", "metadata_allow", "response_data_recorded")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LISTEN_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RECORDER_FIELD_NUMBER: _ClassVar[int]
    METADATA_ALLOW_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_DATA_RECORDED_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    create_time: _timestamp_pb2.Timestamp
    upstream_address: str
    listen_address: str
    recorder: str
    metadata_allow: _containers.RepeatedScalarFieldContainer[str]
    response_data_recorded: bool
    def __init__(self, format_version: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., upstream_address: _Optional[str] = ..., listen_address: _Optional[str] = ..., recorder: _Optional[str] = ..., metadata_allow: _Optional[_Iterable[str]] = ..., response_data_recorded: _Optional[bool] = ...) -> None: ...

class RecordedCall(_message.Message):
    __slots__ = ("start_offset_us", "method", "requests", "responses", "metadata", "timeout_us", "status_code", "status_message", "latency_us", "ended_by")
    START_OFFSET_US_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_US_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_US_FIELD_NUMBER: _ClassVar[int]
    ENDED_BY_FIELD_NUMBER: _ClassVar[int]
    start_offset_us: int
    method: str
    requests: _containers.RepeatedCompositeFieldContainer[RecordedMessage]
    responses: _containers.RepeatedCompositeFieldContainer[RecordedMessage]
    metadata: _containers.RepeatedCompositeFieldContainer[MetadataEntry]
    timeout_us: int
    status_code: int
    status_message: str
    latency_us: int
    ended_by: CallEnd
    def __init__(self, start_offset_us: _Optional[int] = ..., method: _Optional[str] = ..., requests: _Optional[_Iterable[_Union[RecordedMessage, _Mapping]]] = ..., responses: _Optional[_Iterable[_Union[RecordedMessage, _Mapping]]] = ..., metadata: _Optional[_Iterable[_Union[MetadataEntry, _Mapping]]] = ..., timeout_us: _Optional[int] = ..., status_code: _Optional[int] = ..., status_message: _Optional[str] = ..., latency_us: _Optional[int] = ..., ended_by: _Optional[_Union[CallEnd, str]] = ...) -> None: ...

class RecordedMessage(_message.Message):
    __slots__ = ("offset_us", "size_bytes", "data")
    OFFSET_US_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset_us: int
    size_bytes: int
    data: bytes
    def __init__(self, offset_us: _Optional[int] = ..., size_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class MetadataEntry(_message.Message):
    __slots__ = ("key", "value")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: str
    value: bytes
    def __init__(self, key: _Optional[str] = ..., value: _Optional[bytes] = ...) -> None: ...

class RecordingEnd(_message.Message):
    __slots__ = ("call_count", "duration_us", "stop_reason")
    CALL_COUNT_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    call_count: int
    duration_us: int
    stop_reason: str
    def __init__(self, call_count: _Optional[int] = ..., duration_us: _Optional[int] = ..., stop_reason: _Optional[str] = ...) -> None: ...
