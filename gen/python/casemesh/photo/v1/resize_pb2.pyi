from casemesh.photo.v1 import photo_pb2 as _photo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProbeOriginalRequest(_message.Message):
    __slots__ = ("photo_id",)
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    def __init__(self, photo_id: _Optional[str] = ...) -> None: ...

class ProbeOriginalResponse(_message.Message):
    __slots__ = ("format", "width_px", "height_px")
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_PX_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_PX_FIELD_NUMBER: _ClassVar[int]
    format: str
    width_px: int
    height_px: int
    def __init__(self, format: _Optional[str] = ..., width_px: _Optional[int] = ..., height_px: _Optional[int] = ...) -> None: ...

class RenderSizesRequest(_message.Message):
    __slots__ = ("photo_id", "sizes")
    PHOTO_ID_FIELD_NUMBER: _ClassVar[int]
    SIZES_FIELD_NUMBER: _ClassVar[int]
    photo_id: str
    sizes: _containers.RepeatedScalarFieldContainer[_photo_pb2.PhotoSize]
    def __init__(self, photo_id: _Optional[str] = ..., sizes: _Optional[_Iterable[_Union[_photo_pb2.PhotoSize, str]]] = ...) -> None: ...

class RenderSizesResponse(_message.Message):
    __slots__ = ("sizes",)
    SIZES_FIELD_NUMBER: _ClassVar[int]
    sizes: _containers.RepeatedCompositeFieldContainer[_photo_pb2.SizeRef]
    def __init__(self, sizes: _Optional[_Iterable[_Union[_photo_pb2.SizeRef, _Mapping]]] = ...) -> None: ...
