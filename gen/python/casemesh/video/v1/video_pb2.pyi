import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class VideoStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VIDEO_STATUS_UNSPECIFIED: _ClassVar[VideoStatus]
    VIDEO_STATUS_UPLOADING: _ClassVar[VideoStatus]
    VIDEO_STATUS_PROCESSING: _ClassVar[VideoStatus]
    VIDEO_STATUS_PUBLISHED: _ClassVar[VideoStatus]

class Rendition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RENDITION_UNSPECIFIED: _ClassVar[Rendition]
    RENDITION_360P: _ClassVar[Rendition]
    RENDITION_720P: _ClassVar[Rendition]
    RENDITION_1080P: _ClassVar[Rendition]
    RENDITION_PHOTO_THUMBNAIL: _ClassVar[Rendition]
    RENDITION_PHOTO_MEDIUM: _ClassVar[Rendition]
    RENDITION_PHOTO_LARGE: _ClassVar[Rendition]
VIDEO_STATUS_UNSPECIFIED: VideoStatus
VIDEO_STATUS_UPLOADING: VideoStatus
VIDEO_STATUS_PROCESSING: VideoStatus
VIDEO_STATUS_PUBLISHED: VideoStatus
RENDITION_UNSPECIFIED: Rendition
RENDITION_360P: Rendition
RENDITION_720P: Rendition
RENDITION_1080P: Rendition
RENDITION_PHOTO_THUMBNAIL: Rendition
RENDITION_PHOTO_MEDIUM: Rendition
RENDITION_PHOTO_LARGE: Rendition

class RenditionInfo(_message.Message):
    __slots__ = ("rendition", "bandwidth_bps", "width_px", "height_px", "segment_duration_ms", "segment_size_bytes")
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_BPS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    rendition: Rendition
    bandwidth_bps: int
    width_px: int
    height_px: int
    segment_duration_ms: int
    segment_size_bytes: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, rendition: _Optional[_Union[Rendition, str]] = ..., bandwidth_bps: _Optional[int] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., segment_duration_ms: _Optional[int] = ..., segment_size_bytes: _Optional[_Iterable[int]] = ...) -> None: ...

class Video(_message.Message):
    __slots__ = ("video_id", "channel_id", "title", "description", "tags", "duration_s", "status", "generation", "manifest_url", "like_count", "view_count", "create_time", "publish_time", "renditions")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_URL_FIELD_NUMBER: _ClassVar[int]
    LIKE_COUNT_FIELD_NUMBER: _ClassVar[int]
    VIEW_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    PUBLISH_TIME_FIELD_NUMBER: _ClassVar[int]
    RENDITIONS_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    channel_id: str
    title: str
    description: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    duration_s: float
    status: VideoStatus
    generation: int
    manifest_url: str
    like_count: int
    view_count: int
    create_time: _timestamp_pb2.Timestamp
    publish_time: _timestamp_pb2.Timestamp
    renditions: _containers.RepeatedCompositeFieldContainer[RenditionInfo]
    def __init__(self, video_id: _Optional[str] = ..., channel_id: _Optional[str] = ..., title: _Optional[str] = ..., description: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., duration_s: _Optional[float] = ..., status: _Optional[_Union[VideoStatus, str]] = ..., generation: _Optional[int] = ..., manifest_url: _Optional[str] = ..., like_count: _Optional[int] = ..., view_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., publish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., renditions: _Optional[_Iterable[_Union[RenditionInfo, _Mapping]]] = ...) -> None: ...
