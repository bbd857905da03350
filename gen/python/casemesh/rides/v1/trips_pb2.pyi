from casemesh.rides.v1 import rides_pb2 as _rides_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TripEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRIP_EVENT_UNSPECIFIED: _ClassVar[TripEvent]
    TRIP_EVENT_DEPART: _ClassVar[TripEvent]
    TRIP_EVENT_PICK_UP: _ClassVar[TripEvent]
    TRIP_EVENT_DROP_OFF: _ClassVar[TripEvent]
TRIP_EVENT_UNSPECIFIED: TripEvent
TRIP_EVENT_DEPART: TripEvent
TRIP_EVENT_PICK_UP: TripEvent
TRIP_EVENT_DROP_OFF: TripEvent

class RequestRideRequest(_message.Message):
    __slots__ = ("rider_id", "quote_id", "client_request_id")
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    rider_id: str
    quote_id: str
    client_request_id: str
    def __init__(self, rider_id: _Optional[str] = ..., quote_id: _Optional[str] = ..., client_request_id: _Optional[str] = ...) -> None: ...

class RequestRideResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class GetRideRequest(_message.Message):
    __slots__ = ("ride_id",)
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    def __init__(self, ride_id: _Optional[str] = ...) -> None: ...

class GetRideResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class WatchRideRequest(_message.Message):
    __slots__ = ("ride_id", "rider_id")
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    rider_id: str
    def __init__(self, ride_id: _Optional[str] = ..., rider_id: _Optional[str] = ...) -> None: ...

class WatchRideResponse(_message.Message):
    __slots__ = ("ride", "driver_position")
    RIDE_FIELD_NUMBER: _ClassVar[int]
    DRIVER_POSITION_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    driver_position: _rides_pb2.DriverPosition
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ..., driver_position: _Optional[_Union[_rides_pb2.DriverPosition, _Mapping]] = ...) -> None: ...

class CancelRideRequest(_message.Message):
    __slots__ = ("ride_id", "rider_id")
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    rider_id: str
    def __init__(self, ride_id: _Optional[str] = ..., rider_id: _Optional[str] = ...) -> None: ...

class CancelRideResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class UpdateTripRequest(_message.Message):
    __slots__ = ("ride_id", "driver_id", "event")
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    driver_id: str
    event: TripEvent
    def __init__(self, ride_id: _Optional[str] = ..., driver_id: _Optional[str] = ..., event: _Optional[_Union[TripEvent, str]] = ...) -> None: ...

class UpdateTripResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class GetDriverRideRequest(_message.Message):
    __slots__ = ("driver_id",)
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    def __init__(self, driver_id: _Optional[str] = ...) -> None: ...

class GetDriverRideResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class AssignDriverRequest(_message.Message):
    __slots__ = ("ride_id", "driver_id")
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    driver_id: str
    def __init__(self, ride_id: _Optional[str] = ..., driver_id: _Optional[str] = ...) -> None: ...

class AssignDriverResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class ListOpenRidesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListOpenRidesResponse(_message.Message):
    __slots__ = ("rides",)
    RIDES_FIELD_NUMBER: _ClassVar[int]
    rides: _containers.RepeatedCompositeFieldContainer[_rides_pb2.Ride]
    def __init__(self, rides: _Optional[_Iterable[_Union[_rides_pb2.Ride, _Mapping]]] = ...) -> None: ...

class ReleaseRideRequest(_message.Message):
    __slots__ = ("ride_id",)
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    def __init__(self, ride_id: _Optional[str] = ...) -> None: ...

class ReleaseRideResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...
