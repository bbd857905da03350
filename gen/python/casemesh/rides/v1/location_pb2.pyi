from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.rides.v1 import rides_pb2 as _rides_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReportLocationsRequest(_message.Message):
    __slots__ = ("driver_id", "point", "status", "heading_deg", "sent_at_unix_ms")
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADING_DEG_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    point: _geo_pb2.LatLng
    status: _rides_pb2.DriverStatus
    heading_deg: float
    sent_at_unix_ms: int
    def __init__(self, driver_id: _Optional[str] = ..., point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., status: _Optional[_Union[_rides_pb2.DriverStatus, str]] = ..., heading_deg: _Optional[float] = ..., sent_at_unix_ms: _Optional[int] = ...) -> None: ...

class ReportLocationsResponse(_message.Message):
    __slots__ = ("positions_received",)
    POSITIONS_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    positions_received: int
    def __init__(self, positions_received: _Optional[int] = ...) -> None: ...

class FindNearbyDriversRequest(_message.Message):
    __slots__ = ("point", "radius_m", "limit", "exclude_driver_ids")
    POINT_FIELD_NUMBER: _ClassVar[int]
    RADIUS_M_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_DRIVER_IDS_FIELD_NUMBER: _ClassVar[int]
    point: _geo_pb2.LatLng
    radius_m: float
    limit: int
    exclude_driver_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., radius_m: _Optional[float] = ..., limit: _Optional[int] = ..., exclude_driver_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class NearbyDriver(_message.Message):
    __slots__ = ("position", "distance_m")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    position: _rides_pb2.DriverPosition
    distance_m: float
    def __init__(self, position: _Optional[_Union[_rides_pb2.DriverPosition, _Mapping]] = ..., distance_m: _Optional[float] = ...) -> None: ...

class FindNearbyDriversResponse(_message.Message):
    __slots__ = ("drivers", "cells_searched")
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    CELLS_SEARCHED_FIELD_NUMBER: _ClassVar[int]
    drivers: _containers.RepeatedCompositeFieldContainer[NearbyDriver]
    cells_searched: int
    def __init__(self, drivers: _Optional[_Iterable[_Union[NearbyDriver, _Mapping]]] = ..., cells_searched: _Optional[int] = ...) -> None: ...

class CountAvailableDriversRequest(_message.Message):
    __slots__ = ("resolution",)
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    resolution: int
    def __init__(self, resolution: _Optional[int] = ...) -> None: ...

class CellCount(_message.Message):
    __slots__ = ("cell", "drivers")
    CELL_FIELD_NUMBER: _ClassVar[int]
    DRIVERS_FIELD_NUMBER: _ClassVar[int]
    cell: str
    drivers: int
    def __init__(self, cell: _Optional[str] = ..., drivers: _Optional[int] = ...) -> None: ...

class CountAvailableDriversResponse(_message.Message):
    __slots__ = ("cells", "total_drivers")
    CELLS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_DRIVERS_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[CellCount]
    total_drivers: int
    def __init__(self, cells: _Optional[_Iterable[_Union[CellCount, _Mapping]]] = ..., total_drivers: _Optional[int] = ...) -> None: ...

class GetDriverPositionRequest(_message.Message):
    __slots__ = ("driver_id",)
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    def __init__(self, driver_id: _Optional[str] = ...) -> None: ...

class GetDriverPositionResponse(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: _rides_pb2.DriverPosition
    def __init__(self, position: _Optional[_Union[_rides_pb2.DriverPosition, _Mapping]] = ...) -> None: ...

class TrackDriverRequest(_message.Message):
    __slots__ = ("driver_id",)
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    def __init__(self, driver_id: _Optional[str] = ...) -> None: ...

class TrackDriverResponse(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: _rides_pb2.DriverPosition
    def __init__(self, position: _Optional[_Union[_rides_pb2.DriverPosition, _Mapping]] = ...) -> None: ...
