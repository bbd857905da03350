from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class LatLng(_message.Message):
    __slots__ = ("lat_deg", "lng_deg")
    LAT_DEG_FIELD_NUMBER: _ClassVar[int]
    LNG_DEG_FIELD_NUMBER: _ClassVar[int]
    lat_deg: float
    lng_deg: float
    def __init__(self, lat_deg: _Optional[float] = ..., lng_deg: _Optional[float] = ...) -> None: ...
