from casemesh.video.v1 import video_pb2 as _video_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UploadObjectRequest(_message.Message):
    __slots__ = ("upload_token", "offset_bytes", "data")
    UPLOAD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    upload_token: str
    offset_bytes: int
    data: bytes
    def __init__(self, upload_token: _Optional[str] = ..., offset_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class UploadObjectResponse(_message.Message):
    __slots__ = ("key", "stored_bytes", "expected_size_bytes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    key: str
    stored_bytes: int
    expected_size_bytes: int
    def __init__(self, key: _Optional[str] = ..., stored_bytes: _Optional[int] = ..., expected_size_bytes: _Optional[int] = ...) -> None: ...

class GetUploadOffsetRequest(_message.Message):
    __slots__ = ("upload_token",)
    UPLOAD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    upload_token: str
    def __init__(self, upload_token: _Optional[str] = ...) -> None: ...

class GetUploadOffsetResponse(_message.Message):
    __slots__ = ("stored_bytes", "expected_size_bytes")
    STORED_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    stored_bytes: int
    expected_size_bytes: int
    def __init__(self, stored_bytes: _Optional[int] = ..., expected_size_bytes: _Optional[int] = ...) -> None: ...

class StatObjectRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class StatObjectResponse(_message.Message):
    __slots__ = ("size_bytes", "expected_size_bytes", "sha256_hex")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_HEX_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    expected_size_bytes: int
    sha256_hex: str
    def __init__(self, size_bytes: _Optional[int] = ..., expected_size_bytes: _Optional[int] = ..., sha256_hex: _Optional[str] = ...) -> None: ...

class ReadObjectRequest(_message.Message):
    __slots__ = ("key",)
    KEY_FIELD_NUMBER: _ClassVar[int]
    key: str
    def __init__(self, key: _Optional[str] = ...) -> None: ...

class ReadObjectResponse(_message.Message):
    __slots__ = ("offset_bytes", "data")
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    offset_bytes: int
    data: bytes
    def __init__(self, offset_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class PutRenditionRequest(_message.Message):
    __slots__ = ("video_id", "generation", "rendition", "content_seed", "segment_data")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SEED_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_DATA_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    rendition: _video_pb2.RenditionInfo
    content_seed: str
    segment_data: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.RenditionInfo, _Mapping]] = ..., content_seed: _Optional[str] = ..., segment_data: _Optional[_Iterable[bytes]] = ...) -> None: ...

class PutRenditionResponse(_message.Message):
    __slots__ = ("total_bytes",)
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    total_bytes: int
    def __init__(self, total_bytes: _Optional[int] = ...) -> None: ...

class GetRenditionRequest(_message.Message):
    __slots__ = ("video_id", "generation", "rendition")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    rendition: _video_pb2.Rendition
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.Rendition, str]] = ...) -> None: ...

class GetRenditionResponse(_message.Message):
    __slots__ = ("rendition", "content_seed")
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_SEED_FIELD_NUMBER: _ClassVar[int]
    rendition: _video_pb2.RenditionInfo
    content_seed: str
    def __init__(self, rendition: _Optional[_Union[_video_pb2.RenditionInfo, _Mapping]] = ..., content_seed: _Optional[str] = ...) -> None: ...

class GetSegmentRequest(_message.Message):
    __slots__ = ("video_id", "generation", "rendition", "index", "offset_bytes", "max_bytes")
    VIDEO_ID_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    RENDITION_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    OFFSET_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    video_id: str
    generation: int
    rendition: _video_pb2.Rendition
    index: int
    offset_bytes: int
    max_bytes: int
    def __init__(self, video_id: _Optional[str] = ..., generation: _Optional[int] = ..., rendition: _Optional[_Union[_video_pb2.Rendition, str]] = ..., index: _Optional[int] = ..., offset_bytes: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class GetSegmentResponse(_message.Message):
    __slots__ = ("data", "segment_size_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    segment_size_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., segment_size_bytes: _Optional[int] = ...) -> None: ...
