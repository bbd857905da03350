import datetime

from casemesh.photo.v1 import photo_pb2 as _photo_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InitiatePhotoUploadRequest(_message.Message):
    __slots__ = ("author_id", "caption", "file_size_bytes")
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    FILE_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    author_id: str
    caption: str
    file_size_bytes: int
    def __init__(self, author_id: _Optional[str] = ..., caption: _Optional[str] = ..., file_size_bytes: _Optional[int] = ...) -> None: ...

class InitiatePhotoUploadResponse(_message.Message):
    __slots__ = ("photo_id", "upload_token", "object_key", "expire_time")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OBJECT_KEY_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_TIME_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    upload_token: str
    object_key: str
    expire_time: _timestamp_pb2.Timestamp
    def __init__(self, photo_id: _Optional[str] = ..., upload_token: _Optional[str] = ..., object_key: _Optional[str] = ..., expire_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CompletePhotoUploadRequest(_message.Message):
    __slots__ = ("photo_id",)
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    def __init__(self, photo_id: _Optional[str] = ...) -> None: ...

class CompletePhotoUploadResponse(_message.Message):
    __slots__ = ("photo",)
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ...) -> None: ...

class GetPhotoRequest(_message.Message):
    __slots__ = ("photo_id", "size")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    SIZE_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    size: _photo_pb2.PhotoSize
    def __init__(self, photo_id: _Optional[str] = ..., size: _Optional[_Union[_photo_pb2.PhotoSize, str]] = ...) -> None: ...

class GetPhotoResponse(_message.Message):
    __slots__ = ("photo", "ref", "rendered_now")
    PHOTO_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    RENDERED_NOW_FIELD_NUMBER: _ClassVar[int]
    photo: _photo_pb2.Photo
    ref: _photo_pb2.SizeRef
    rendered_now: bool
    def __init__(self, photo: _Optional[_Union[_photo_pb2.Photo, _Mapping]] = ..., ref: _Optional[_Union[_photo_pb2.SizeRef, _Mapping]] = ..., rendered_now: _Optional[bool] = ...) -> None: ...

class ListUserPhotosRequest(_message.Message):
    __slots__ = ("author_id", "page_size", "page_token")
    AUTHOR_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    author_id: str
    page_size: int
    page_token: str
    def __init__(self, author_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListUserPhotosResponse(_message.Message):
    __slots__ = ("photos", "next_page_token")
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[_photo_pb2.Photo]
    next_page_token: str
    def __init__(self, photos: _Optional[_Iterable[_Union[_photo_pb2.Photo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRecentPhotosRequest(_message.Message):
    __slots__ = ("author_ids", "limit", "before_photo_id")
    AUTHOR_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    BEFORE_PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    author_ids: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    before_photo_id: str
    def __init__(self, author_ids: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ..., before_photo_id: _Optional[str] = ...) -> None: ...

class ListRecentPhotosResponse(_message.Message):
    __slots__ = ("photos",)
    PHOTOS_FIELD_NUMBER: _ClassVar[int]
    photos: _containers.RepeatedCompositeFieldContainer[_photo_pb2.Photo]
    def __init__(self, photos: _Optional[_Iterable[_Union[_photo_pb2.Photo, _Mapping]]] = ...) -> None: ...

class GetMediaStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMediaStatusResponse(_message.Message):
    __slots__ = ("photos_ready", "photos_processing", "photos_rejected", "renders_on_upload", "renders_on_request", "rendered_bytes")
    PHOTOS_READY_FIELD_NUMBER: _ClassVar[int]
    PHOTOS_PROCESSING_FIELD_NUMBER: _ClassVar[int]
    PHOTOS_REJECTED_FIELD_NUMBER: _ClassVar[int]
    RENDERS_ON_UPLOAD_FIELD_NUMBER: _ClassVar[int]
    RENDERS_ON_REQUEST_FIELD_NUMBER: _ClassVar[int]
    RENDERED_BYTES_FIELD_NUMBER: _ClassVar[int]
    photos_ready: int
    photos_processing: int
    photos_rejected: int
    renders_on_upload: int
    renders_on_request: int
    rendered_bytes: int
    def __init__(self, photos_ready: _Optional[int] = ..., photos_processing: _Optional[int] = ..., photos_rejected: _Optional[int] = ..., renders_on_upload: _Optional[int] = ..., renders_on_request: _Optional[int] = ..., rendered_bytes: _Optional[int] = ...) -> None: ...
