from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from casemesh.rides.v1 import rides_pb2 as _rides_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartMatchingRequest(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class StartMatchingResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveOffersRequest(_message.Message):
    __slots__ = ("driver_id",)
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    def __init__(self, driver_id: _Optional[str] = ...) -> None: ...

class Offer(_message.Message):
    __slots__ = ("offer_id", "ride_id", "pickup", "dropoff", "fare", "pickup_distance_m", "pickup_eta_s", "expires_at_unix_ms", "phase")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    FARE_FIELD_NUMBER: _ClassVar[int]
    PICKUP_DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    PICKUP_ETA_S_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PHASE_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    ride_id: str
    pickup: _geo_pb2.LatLng
    dropoff: _geo_pb2.LatLng
    fare: _money_pb2.Money
    pickup_distance_m: float
    pickup_eta_s: float
    expires_at_unix_ms: int
    phase: int
    def __init__(self, offer_id: _Optional[str] = ..., ride_id: _Optional[str] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., fare: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., pickup_distance_m: _Optional[float] = ..., pickup_eta_s: _Optional[float] = ..., expires_at_unix_ms: _Optional[int] = ..., phase: _Optional[int] = ...) -> None: ...

class OfferWithdrawal(_message.Message):
    __slots__ = ("offer_id", "ride_id", "reason")
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    RIDE_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    offer_id: str
    ride_id: str
    reason: str
    def __init__(self, offer_id: _Optional[str] = ..., ride_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReceiveOffersResponse(_message.Message):
    __slots__ = ("offer", "withdrawal")
    OFFER_FIELD_NUMBER: _ClassVar[int]
    WITHDRAWAL_FIELD_NUMBER: _ClassVar[int]
    offer: Offer
    withdrawal: OfferWithdrawal
    def __init__(self, offer: _Optional[_Union[Offer, _Mapping]] = ..., withdrawal: _Optional[_Union[OfferWithdrawal, _Mapping]] = ...) -> None: ...

class AcceptOfferRequest(_message.Message):
    __slots__ = ("driver_id", "offer_id")
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    offer_id: str
    def __init__(self, driver_id: _Optional[str] = ..., offer_id: _Optional[str] = ...) -> None: ...

class AcceptOfferResponse(_message.Message):
    __slots__ = ("ride",)
    RIDE_FIELD_NUMBER: _ClassVar[int]
    ride: _rides_pb2.Ride
    def __init__(self, ride: _Optional[_Union[_rides_pb2.Ride, _Mapping]] = ...) -> None: ...

class DeclineOfferRequest(_message.Message):
    __slots__ = ("driver_id", "offer_id")
    DRIVER_ID_FIELD_NUMBER: _ClassVar[int]
    OFFER_ID_FIELD_NUMBER: _ClassVar[int]
    driver_id: str
    offer_id: str
    def __init__(self, driver_id: _Optional[str] = ..., offer_id: _Optional[str] = ...) -> None: ...

class DeclineOfferResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
