from casemesh.live.v1 import live_pb2 as _live_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateStreamRequest(_message.Message):
    __slots__ = ("broadcaster_id", "title", "chat_member_ids")
    BROADCASTER_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    CHAT_MEMBER_IDS_FIELD_NUMBER: _ClassVar[int]
    broadcaster_id: str
    title: str
    chat_member_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, broadcaster_id: _Optional[str] = ..., title: _Optional[str] = ..., chat_member_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateStreamResponse(_message.Message):
    __slots__ = ("stream", "stream_key", "chat_conversation_id")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    STREAM_KEY_FIELD_NUMBER: _ClassVar[int]
    CHAT_CONVERSATION_ID_FIELD_NUMBER: _ClassVar[int]
    stream: _live_pb2.StreamInfo
    stream_key: str
    chat_conversation_id: str
    def __init__(self, stream: _Optional[_Union[_live_pb2.StreamInfo, _Mapping]] = ..., stream_key: _Optional[str] = ..., chat_conversation_id: _Optional[str] = ...) -> None: ...

class GetStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class GetStreamResponse(_message.Message):
    __slots__ = ("stream",)
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: _live_pb2.StreamInfo
    def __init__(self, stream: _Optional[_Union[_live_pb2.StreamInfo, _Mapping]] = ...) -> None: ...

class PublishRequest(_message.Message):
    __slots__ = ("start", "chunk", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: PublishStart
    chunk: MediaChunk
    end: PublishEnd
    def __init__(self, start: _Optional[_Union[PublishStart, _Mapping]] = ..., chunk: _Optional[_Union[MediaChunk, _Mapping]] = ..., end: _Optional[_Union[PublishEnd, _Mapping]] = ...) -> None: ...

class PublishStart(_message.Message):
    __slots__ = ("stream_id", "stream_key")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_KEY_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    stream_key: str
    def __init__(self, stream_id: _Optional[str] = ..., stream_key: _Optional[str] = ...) -> None: ...

class MediaChunk(_message.Message):
    __slots__ = ("sequence", "duration_us", "keyframe", "data")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    DURATION_US_FIELD_NUMBER: _ClassVar[int]
    KEYFRAME_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    duration_us: int
    keyframe: bool
    data: bytes
    def __init__(self, sequence: _Optional[int] = ..., duration_us: _Optional[int] = ..., keyframe: _Optional[bool] = ..., data: _Optional[bytes] = ...) -> None: ...

class PublishEnd(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PublishResponse(_message.Message):
    __slots__ = ("chunks_received", "parts_published", "next_chunk_sequence", "state")
    CHUNKS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    PARTS_PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    NEXT_CHUNK_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    chunks_received: int
    parts_published: int
    next_chunk_sequence: int
    state: _live_pb2.StreamState
    def __init__(self, chunks_received: _Optional[int] = ..., parts_published: _Optional[int] = ..., next_chunk_sequence: _Optional[int] = ..., state: _Optional[_Union[_live_pb2.StreamState, str]] = ...) -> None: ...
