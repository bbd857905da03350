from casemesh.live.v1 import live_pb2 as _live_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RegisterStreamRequest(_message.Message):
    __slots__ = ("stream_id", "broadcaster_id", "title", "part_target_ms", "segment_target_ms")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BROADCASTER_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    PART_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    broadcaster_id: str
    title: str
    part_target_ms: int
    segment_target_ms: int
    def __init__(self, stream_id: _Optional[str] = ..., broadcaster_id: _Optional[str] = ..., title: _Optional[str] = ..., part_target_ms: _Optional[int] = ..., segment_target_ms: _Optional[int] = ...) -> None: ...

class RegisterStreamResponse(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _live_pb2.StreamInfo
    def __init__(self, stream: _Optional[_Union[_live_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class AppendPartRequest(_message.Message):
    __slots__ = ("part",)
    PART_FIELD_NUMBER: _ClassVar[int]
    part: _live_pb2.Part
    def __init__(self, part: _Optional[_Union[_live_pb2.Part, _Mapping]] = ...) -> None: ...

class AppendPartResponse(_message.Message):
    __slots__ = ("duplicate", "next_chunk_sequence")
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHUNK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    duplicate: bool
    next_chunk_sequence: int
    def __init__(self, duplicate: _Optional[bool] = ..., next_chunk_sequence: _Optional[int] = ...) -> None: ...

class EndStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class EndStreamResponse(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _live_pb2.StreamInfo
    def __init__(self, stream: _Optional[_Union[_live_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class DescribeStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class DescribeStreamResponse(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _live_pb2.StreamInfo
    def __init__(self, stream: _Optional[_Union[_live_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class FetchPlaylistRequest(_message.Message):
    __slots__ = ("stream_id", "block")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    block: _live_pb2.PartRef
    def __init__(self, stream_id: _Optional[str] = ..., block: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ...) -> None: ...

class FetchPlaylistResponse(_message.Message):
    __slots__ = ("playlist", "last_part", "state")
    PLAYLIST_FIELD_NUMBER: _ClassVar[int]
    LAST_PART_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    playlist: str
    last_part: _live_pb2.PartRef
    state: _live_pb2.StreamState
    def __init__(self, playlist: _Optional[str] = ..., last_part: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ..., state: _Optional[_Union[_live_pb2.StreamState, str]] = ...) -> None: ...

class FetchPartRequest(_message.Message):
    __slots__ = ("stream_id", "ref")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    ref: _live_pb2.PartRef
    def __init__(self, stream_id: _Optional[str] = ..., ref: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ...) -> None: ...

class FetchPartResponse(_message.Message):
    __slots__ = ("part",)
    PART_FIELD_NUMBER: _ClassVar[int]
    part: _live_pb2.Part
    def __init__(self, part: _Optional[_Union[_live_pb2.Part, _Mapping]] = ...) -> None: ...

class FetchSegmentRequest(_message.Message):
    __slots__ = ("stream_id", "media_sequence")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    media_sequence: int
    def __init__(self, stream_id: _Optional[str] = ..., media_sequence: _Optional[int] = ...) -> None: ...

class FetchSegmentResponse(_message.Message):
    __slots__ = ("media_sequence", "duration_us", "first_chunk_sequence", "chunk_count", "data")
    MEDIA_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    FIRST_CHUNK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_COUNT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    media_sequence: int
    duration_us: int
    first_chunk_sequence: int
    chunk_count: int
    data: bytes
    def __init__(self, media_sequence: _Optional[int] = ..., duration_us: _Optional[int] = ..., first_chunk_sequence: _Optional[int] = ..., chunk_count: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class WatchPartsRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ..., **kwargs) -> None: ...

class WatchPartsResponse(_message.Message):
    __slots__ = ("part",)
    PART_FIELD_NUMBER: _ClassVar[int]
    part: _live_pb2.Part
    def __init__(self, part: _Optional[_Union[_live_pb2.Part, _Mapping]] = ...) -> None: ...
