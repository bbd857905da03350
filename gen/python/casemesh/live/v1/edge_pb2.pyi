from casemesh.live.v1 import live_pb2 as _live_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetPlaylistRequest(_message.Message):
    __slots__ = ("stream_id", "block")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    block: _live_pb2.PartRef
    def __init__(self, stream_id: _Optional[str] = ..., block: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ...) -> None: ...

class GetPlaylistResponse(_message.Message):
    __slots__ = ("playlist", "last_part", "state")
    PLAYLIST_FIELD_NUMBER: _ClassVar[int]
    LAST_PART_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    playlist: str
    last_part: _live_pb2.PartRef
    state: _live_pb2.StreamState
    def __init__(self, playlist: _Optional[str] = ..., last_part: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ..., state: _Optional[_Union[_live_pb2.StreamState, str]] = ...) -> None: ...

class GetPartRequest(_message.Message):
    __slots__ = ("stream_id", "ref")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    ref: _live_pb2.PartRef
    def __init__(self, stream_id: _Optional[str] = ..., ref: _Optional[_Union[_live_pb2.PartRef, _Mapping]] = ...) -> None: ...

class GetPartResponse(_message.Message):
    __slots__ = ("part",)
    PART_FIELD_NUMBER: _ClassVar[int]
    part: _live_pb2.Part
    def __init__(self, part: _Optional[_Union[_live_pb2.Part, _Mapping]] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("stream_id", "media_sequence")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    MEDIA_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    media_sequence: int
    def __init__(self, stream_id: _Optional[str] = ..., media_sequence: _Optional[int] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
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

class StreamPartsRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ..., **kwargs) -> None: ...

class StreamPartsResponse(_message.Message):
    __slots__ = ("part",)
    PART_FIELD_NUMBER: _ClassVar[int]
    part: _live_pb2.Part
    def __init__(self, part: _Optional[_Union[_live_pb2.Part, _Mapping]] = ...) -> None: ...
