from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.proximity.v1 import proximity_pb2 as _proximity_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamPositionsRequest(_message.Message):
    __slots__ = ("batch_id", "positions")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    positions: _containers.RepeatedCompositeFieldContainer[_proximity_pb2.EntityPosition]
    def __init__(self, batch_id: _Optional[int] = ..., positions: _Optional[_Iterable[_Union[_proximity_pb2.EntityPosition, _Mapping]]] = ...) -> None: ...

class StreamPositionsResponse(_message.Message):
    __slots__ = ("batch_id", "applied", "stale")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    batch_id: int
    applied: int
    stale: int
    def __init__(self, batch_id: _Optional[int] = ..., applied: _Optional[int] = ..., stale: _Optional[int] = ...) -> None: ...

class GetPositionRequest(_message.Message):
    __slots__ = ("entity_id",)
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    def __init__(self, entity_id: _Optional[str] = ...) -> None: ...

class GetPositionResponse(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: _proximity_pb2.EntityPosition
    def __init__(self, position: _Optional[_Union[_proximity_pb2.EntityPosition, _Mapping]] = ...) -> None: ...

class FindNearbyEntitiesRequest(_message.Message):
    __slots__ = ("center", "radius_m", "limit")
    CENTER_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    center: _geo_pb2.LatLng
    radius_m: float
    limit: int
    def __init__(self, center: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., radius_m: _Optional[float] = ..., limit: _Optional[int] = ...) -> None: ...

class NearbyEntity(_message.Message):
    __slots__ = ("position", "distance_m")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    position: _proximity_pb2.EntityPosition
    distance_m: float
    def __init__(self, position: _Optional[_Union[_proximity_pb2.EntityPosition, _Mapping]] = ..., distance_m: _Optional[float] = ...) -> None: ...

class FindNearbyEntitiesResponse(_message.Message):
    __slots__ = ("entities", "cells_searched")
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    CELLS_SEARCHED_FIELD_NUMBER: _ClassVar[int]
    entities: _containers.RepeatedCompositeFieldContainer[NearbyEntity]
    cells_searched: int
    def __init__(self, entities: _Optional[_Iterable[_Union[NearbyEntity, _Mapping]]] = ..., cells_searched: _Optional[int] = ...) -> None: ...
