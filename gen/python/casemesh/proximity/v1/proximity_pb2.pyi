from casemesh.common.v1 import geo_pb2 as _geo_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EntityPosition(_message.Message):
    __slots__ = ("entity_id", "sequence", "point", "sent_at_unix_ms")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    sequence: int
    point: _geo_pb2.LatLng
    sent_at_unix_ms: int
    def __init__(self, entity_id: _Optional[str] = ..., sequence: _Optional[int] = ..., point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., sent_at_unix_ms: _Optional[int] = ...) -> None: ...
