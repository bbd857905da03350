import datetime

from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PhotoSize(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHOTO_SIZE_UNSPECIFIED: _ClassVar[PhotoSize]
    PHOTO_SIZE_THUMBNAIL: _ClassVar[PhotoSize]
    PHOTO_SIZE_MEDIUM: _ClassVar[PhotoSize]
    PHOTO_SIZE_LARGE: _ClassVar[PhotoSize]

class PhotoStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PHOTO_STATUS_UNSPECIFIED: _ClassVar[PhotoStatus]
    PHOTO_STATUS_UPLOADING: _ClassVar[PhotoStatus]
    PHOTO_STATUS_PROCESSING: _ClassVar[PhotoStatus]
    PHOTO_STATUS_READY: _ClassVar[PhotoStatus]
    PHOTO_STATUS_REJECTED: _ClassVar[PhotoStatus]
PHOTO_SIZE_UNSPECIFIED: PhotoSize
PHOTO_SIZE_THUMBNAIL: PhotoSize
PHOTO_SIZE_MEDIUM: PhotoSize
PHOTO_SIZE_LARGE: PhotoSize
PHOTO_STATUS_UNSPECIFIED: PhotoStatus
PHOTO_STATUS_UPLOADING: PhotoStatus
PHOTO_STATUS_PROCESSING: PhotoStatus
PHOTO_STATUS_READY: PhotoStatus
PHOTO_STATUS_REJECTED: PhotoStatus

class SizeRef(_message.Message):
    __slots__ = ("size", "ready", "width_px", "height_px", "size_bytes", "sha256_hex", "object_id", "generation", "rendition")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_HEX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    size: PhotoSize
    ready: bool
    width_px: int
    height_px: int
    size_bytes: int
    sha256_hex: str
    object_id: str
    generation: int
    rendition: _video_pb2.Rendition
    def __init__(self, size: _Optional[_Union[PhotoSize, str]] = ..., ready: _Optional[bool] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., size_bytes: _Optional[int] = ..., sha256_hex: _Optional[str] = ..., object_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.Rendition, str]] = ...) -> None: ...

class Photo(_message.Message):
    __slots__ = ("photo_id", "author_id", "caption", "status", "create_time", "width_px", "height_px", "sizes")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    author_id: str
    caption: str
    status: PhotoStatus
    create_time: _timestamp_pb2.Timestamp
    width_px: int
    height_px: int
    sizes: _containers.RepeatedCompositeFieldContainer[SizeRef]
    def __init__(self, photo_id: _Optional[str] = ..., author_id: _Optional[str] = ..., caption: _Optional[str] = ..., status: _Optional[_Union[PhotoStatus, str]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ..., sizes: _Optional[_Iterable[_Union[SizeRef, _Mapping]]] = ...) -> None: ...
