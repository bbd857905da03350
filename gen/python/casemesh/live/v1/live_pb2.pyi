from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_UNSPECIFIED: _ClassVar[StreamState]
    STREAM_STATE_WAITING: _ClassVar[StreamState]
    STREAM_STATE_LIVE: _ClassVar[StreamState]
    STREAM_STATE_ENDED: _ClassVar[StreamState]
STREAM_STATE_UNSPECIFIED: StreamState
STREAM_STATE_WAITING: StreamState
STREAM_STATE_LIVE: StreamState
STREAM_STATE_ENDED: StreamState

class PartRef(_message.Message):
    __slots__ = ("media_sequence", "part_index")
    MEDIA_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    PART_INDEX_FIELD_NUMBER: _ClassVar[int]
    media_sequence: int
    part_index: int
    def __init__(self, media_sequence: _Optional[int] = ..., part_index: _Optional[int] = ...) -> None: ...

class Part(_message.Message):
    __slots__ = ("stream_id", "ref", "duration_us", "independent", "first_chunk_sequence", "chunk_count", "data", "ends_segment", "published_unix_ms")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    INDEPENDENT_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ENDS_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    ref: PartRef
    duration_us: int
    independent: bool
    first_chunk_sequence: int
    chunk_count: int
    data: bytes
    ends_segment: bool
    published_unix_ms: int
    def __init__(self, stream_id: _Optional[str] = ..., ref: _Optional[_Union[PartRef, _Mapping]] = ..., duration_us: _Optional[int] = ..., independent: _Optional[bool] = ..., first_chunk_sequence: _Optional[int] = ..., chunk_count: _Optional[int] = ..., data: _Optional[bytes] = ..., ends_segment: _Optional[bool] = ..., published_unix_ms: _Optional[int] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream_id", "broadcaster_id", "title", "state", "part_target_ms", "segment_target_ms", "next_chunk_sequence", "first_media_sequence", "last_part", "dvr_window_s", "next_part", "open_segment_duration_us")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BROADCASTER_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PART_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHUNK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FIRST_MEDIA_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    LAST_PART_FIELD_NUMBER: _ClassVar[int]
    DVR_WINDOW_S_FIELD_NUMBER: _ClassVar[int]
    NEXT_PART_FIELD_NUMBER: _ClassVar[int]
    OPEN_SEGMENT_DURATION_US_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    broadcaster_id: str
    title: str
    state: StreamState
    part_target_ms: int
    segment_target_ms: int
    next_chunk_sequence: int
    first_media_sequence: int
    last_part: PartRef
    dvr_window_s: int
    next_part: PartRef
    open_segment_duration_us: int
    def __init__(self, stream_id: _Optional[str] = ..., broadcaster_id: _Optional[str] = ..., title: _Optional[str] = ..., state: _Optional[_Union[StreamState, str]] = ..., part_target_ms: _Optional[int] = ..., segment_target_ms: _Optional[int] = ..., next_chunk_sequence: _Optional[int] = ..., first_media_sequence: _Optional[int] = ..., last_part: _Optional[_Union[PartRef, _Mapping]] = ..., dvr_window_s: _Optional[int] = ..., next_part: _Optional[_Union[PartRef, _Mapping]] = ..., open_segment_duration_us: _Optional[int] = ...) -> None: ...
