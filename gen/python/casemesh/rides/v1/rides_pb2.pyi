from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RideState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RIDE_STATE_UNSPECIFIED: _ClassVar[RideState]
    RIDE_STATE_REQUESTED: _ClassVar[RideState]
    RIDE_STATE_MATCHED: _ClassVar[RideState]
    RIDE_STATE_EN_ROUTE: _ClassVar[RideState]
    RIDE_STATE_IN_PROGRESS: _ClassVar[RideState]
    RIDE_STATE_COMPLETED: _ClassVar[RideState]
    RIDE_STATE_CANCELLED: _ClassVar[RideState]

class CancelReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCEL_REASON_UNSPECIFIED: _ClassVar[CancelReason]
    CANCEL_REASON_RIDER: _ClassVar[CancelReason]
    CANCEL_REASON_NO_DRIVER: _ClassVar[CancelReason]

class DriverStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIVER_STATUS_UNSPECIFIED: _ClassVar[DriverStatus]
    DRIVER_STATUS_AVAILABLE: _ClassVar[DriverStatus]
    DRIVER_STATUS_BUSY: _ClassVar[DriverStatus]
    DRIVER_STATUS_OFFLINE: _ClassVar[DriverStatus]
RIDE_STATE_UNSPECIFIED: RideState
RIDE_STATE_REQUESTED: RideState
RIDE_STATE_MATCHED: RideState
RIDE_STATE_EN_ROUTE: RideState
RIDE_STATE_IN_PROGRESS: RideState
RIDE_STATE_COMPLETED: RideState
RIDE_STATE_CANCELLED: RideState
CANCEL_REASON_UNSPECIFIED: CancelReason
CANCEL_REASON_RIDER: CancelReason
CANCEL_REASON_NO_DRIVER: CancelReason
DRIVER_STATUS_UNSPECIFIED: DriverStatus
DRIVER_STATUS_AVAILABLE: DriverStatus
DRIVER_STATUS_BUSY: DriverStatus
DRIVER_STATUS_OFFLINE: DriverStatus

class Ride(_message.Message):
    __slots__ = ("ride_id", "rider_id", "pickup", "dropoff", "fare", "surge_multiplier", "state", "driver_id", "requested_at_unix_ms", "matched_at_unix_ms", "updated_at_unix_ms", "cancel_reason", "quote_id")
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    RIDER_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    FARE_FIELD_NUMBER: _ClassVar[int]
    SURGE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    MATCHED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    ride_id: str
    rider_id: str
    pickup: _geo_pb2.LatLng
    dropoff: _geo_pb2.LatLng
    fare: _money_pb2.Money
    surge_multiplier: float
    state: RideState
    driver_id: str
    requested_at_unix_ms: int
    matched_at_unix_ms: int
    updated_at_unix_ms: int
    cancel_reason: CancelReason
    quote_id: str
    def __init__(self, ride_id: _Optional[str] = ..., rider_id: _Optional[str] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., fare: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., surge_multiplier: _Optional[float] = ..., state: _Optional[_Union[RideState, str]] = ..., driver_id: _Optional[str] = ..., requested_at_unix_ms: _Optional[int] = ..., matched_at_unix_ms: _Optional[int] = ..., updated_at_unix_ms: _Optional[int] = ..., cancel_reason: _Optional[_Union[CancelReason, str]] = ..., quote_id: _Optional[str] = ...) -> None: ...

class DriverPosition(_message.Message):
    __slots__ = ("driver_id", "point", "status", "heading_deg", "sent_at_unix_ms", "received_at_unix_ms")
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADING_DEG_FIELD_NUMBER: _ClassVar[int]
    SENT_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    point: _geo_pb2.LatLng
    status: DriverStatus
    heading_deg: float
    sent_at_unix_ms: int
    received_at_unix_ms: int
    def __init__(self, driver_id: _Optional[str] = ..., point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., status: _Optional[_Union[DriverStatus, str]] = ..., heading_deg: _Optional[float] = ..., sent_at_unix_ms: _Optional[int] = ..., received_at_unix_ms: _Optional[int] = ...) -> None: ...
