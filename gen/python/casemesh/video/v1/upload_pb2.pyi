import datetime

from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InitiateUploadRequest(_message.Message):
    __slots__ = ("channel_id", "title", "description", "tags", "duration_s", "file_size_bytes")
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    channel_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    duration_s: float
    file_size_bytes: int
    def __init__(self, channel_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., duration_s: _Optional[float] = ..., file_size_bytes: _Optional[int] = ...) -> None: ...

class InitiateUploadResponse(_message.Message):
    __slots__ = ("video_id", "upload_token", "object_key", "expire_time")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    upload_token: str
    object_key: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, video_id: _Optional[str] = ..., upload_token: _Optional[str] = ..., object_key: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompleteUploadRequest(_message.Message):
    __slots__ = ("video_id",)
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    def __init__(self, video_id: _Optional[str] = ...) -> None: ...

class CompleteUploadResponse(_message.Message):
    __slots__ = ("status", "job_id", "generation")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    status: _video_pb2.VideoStatus
    job_id: str
    generation: int
    def __init__(self, status: _Optional[_Union[_video_pb2.VideoStatus, str]] = ..., job_id: _Optional[str] = ..., generation: _Optional[int] = ...) -> None: ...
