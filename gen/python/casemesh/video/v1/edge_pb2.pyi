from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheResult(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CACHE_RESULT_UNSPECIFIED: _ClassVar[CacheResult]
    CACHE_RESULT_HIT: _ClassVar[CacheResult]
    CACHE_RESULT_MISS: _ClassVar[CacheResult]
CACHE_RESULT_UNSPECIFIED: CacheResult
CACHE_RESULT_HIT: CacheResult
CACHE_RESULT_MISS: CacheResult

class StreamSegmentsRequest(_message.Message):
    __slots__ = ("video_id", "generation", "rendition", "start_index", "count")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    START_INDEX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    rendition: _video_pb2.Rendition
    start_index: int
    count: int
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.Rendition, str]] = ..., start_index: _Optional[int] = ..., count: _Optional[int] = ...) -> None: ...

class StreamSegmentsResponse(_message.Message):
    __slots__ = ("segment_index", "offset_bytes", "data", "segment_size_bytes", "cache_result")
    SEGMENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CACHE_RESULT_FIELD_NUMBER: _ClassVar[int]
    segment_index: int
    offset_bytes: int
    data: bytes
    segment_size_bytes: int
    cache_result: CacheResult
    def __init__(self, segment_index: _Optional[int] = ..., offset_bytes: _Optional[int] = ..., data: _Optional[bytes] = ..., segment_size_bytes: _Optional[int] = ..., cache_result: _Optional[_Union[CacheResult, str]] = ...) -> None: ...
