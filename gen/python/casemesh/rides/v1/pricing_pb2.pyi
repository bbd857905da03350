from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetQuoteRequest(_message.Message):
    __slots__ = ("rider_id", "pickup", "dropoff")
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    rider_id: str
    pickup: _geo_pb2.LatLng
    dropoff: _geo_pb2.LatLng
    def __init__(self, rider_id: _Optional[str] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("quote_id", "rider_id", "pickup", "dropoff", "fare", "surge_multiplier", "distance_m", "duration_s", "surge_cell", "expires_at_unix_ms")
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    FARE_FIELD_NUMBER: _ClassVar[int]
    SURGE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    SURGE_CELL_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    quote_id: str
    rider_id: str
    pickup: _geo_pb2.LatLng
    dropoff: _geo_pb2.LatLng
    fare: _money_pb2.Money
    surge_multiplier: float
    distance_m: float
    duration_s: float
    surge_cell: str
    expires_at_unix_ms: int
    def __init__(self, quote_id: _Optional[str] = ..., rider_id: _Optional[str] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., fare: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., surge_multiplier: _Optional[float] = ..., distance_m: _Optional[float] = ..., duration_s: _Optional[float] = ..., surge_cell: _Optional[str] = ..., expires_at_unix_ms: _Optional[int] = ...) -> None: ...

class GetQuoteResponse(_message.Message):
    __slots__ = ("quote",)
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    quote: Quote
    def __init__(self, quote: _Optional[_Union[Quote, _Mapping]] = ...) -> None: ...

class RedeemQuoteRequest(_message.Message):
    __slots__ = ("quote_id", "rider_id", "ride_id")
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    quote_id: str
    rider_id: str
    ride_id: str
    def __init__(self, quote_id: _Optional[str] = ..., rider_id: _Optional[str] = ..., ride_id: _Optional[str] = ...) -> None: ...

class RedeemQuoteResponse(_message.Message):
    __slots__ = ("quote",)
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    quote: Quote
    def __init__(self, quote: _Optional[_Union[Quote, _Mapping]] = ...) -> None: ...

class GetSurgeRequest(_message.Message):
    __slots__ = ("point",)
    POINT_FIELD_NUMBER: _ClassVar[int]
    point: _geo_pb2.LatLng
    def __init__(self, point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ...) -> None: ...

class SurgeCell(_message.Message):
    __slots__ = ("cell", "multiplier", "demand", "supply", "center")
    CELL_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    DEMAND_FIELD_NUMBER: _ClassVar[int]
    SUPPLY_FIELD_NUMBER: _ClassVar[int]
    CENTER_FIELD_NUMBER: _ClassVar[int]
    cell: str
    multiplier: float
    demand: int
    supply: int
    center: _geo_pb2.LatLng
    def __init__(self, cell: _Optional[str] = ..., multiplier: _Optional[float] = ..., demand: _Optional[int] = ..., supply: _Optional[int] = ..., center: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ...) -> None: ...

class GetSurgeResponse(_message.Message):
    __slots__ = ("cell", "computed_at_unix_ms")
    CELL_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    cell: SurgeCell
    computed_at_unix_ms: int
    def __init__(self, cell: _Optional[_Union[SurgeCell, _Mapping]] = ..., computed_at_unix_ms: _Optional[int] = ...) -> None: ...

class ListSurgeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSurgeResponse(_message.Message):
    __slots__ = ("cells", "computed_at_unix_ms", "resolution")
    CELLS_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    cells: _containers.RepeatedCompositeFieldContainer[SurgeCell]
    computed_at_unix_ms: int
    resolution: int
    def __init__(self, cells: _Optional[_Iterable[_Union[SurgeCell, _Mapping]]] = ..., computed_at_unix_ms: _Optional[int] = ..., resolution: _Optional[int] = ...) -> None: ...
