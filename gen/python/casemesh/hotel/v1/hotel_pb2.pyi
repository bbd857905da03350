from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HoldStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOLD_STATUS_UNSPECIFIED: _ClassVar[HoldStatus]
    HOLD_STATUS_HELD: _ClassVar[HoldStatus]
    HOLD_STATUS_CONFIRMED: _ClassVar[HoldStatus]
    HOLD_STATUS_RELEASED: _ClassVar[HoldStatus]
    HOLD_STATUS_EXPIRED: _ClassVar[HoldStatus]

class BookingStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOKING_STATUS_UNSPECIFIED: _ClassVar[BookingStatus]
    BOOKING_STATUS_PENDING: _ClassVar[BookingStatus]
    BOOKING_STATUS_CONFIRMED: _ClassVar[BookingStatus]
    BOOKING_STATUS_FAILED: _ClassVar[BookingStatus]
    BOOKING_STATUS_CANCELLED: _ClassVar[BookingStatus]
    BOOKING_STATUS_CHECKED_IN: _ClassVar[BookingStatus]

class BookingFailure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOKING_FAILURE_UNSPECIFIED: _ClassVar[BookingFailure]
    BOOKING_FAILURE_NO_AVAILABILITY: _ClassVar[BookingFailure]
    BOOKING_FAILURE_PAYMENT_DECLINED: _ClassVar[BookingFailure]
    BOOKING_FAILURE_CONTENTION: _ClassVar[BookingFailure]
HOLD_STATUS_UNSPECIFIED: HoldStatus
HOLD_STATUS_HELD: HoldStatus
HOLD_STATUS_CONFIRMED: HoldStatus
HOLD_STATUS_RELEASED: HoldStatus
HOLD_STATUS_EXPIRED: HoldStatus
BOOKING_STATUS_UNSPECIFIED: BookingStatus
BOOKING_STATUS_PENDING: BookingStatus
BOOKING_STATUS_CONFIRMED: BookingStatus
BOOKING_STATUS_FAILED: BookingStatus
BOOKING_STATUS_CANCELLED: BookingStatus
BOOKING_STATUS_CHECKED_IN: BookingStatus
BOOKING_FAILURE_UNSPECIFIED: BookingFailure
BOOKING_FAILURE_NO_AVAILABILITY: BookingFailure
BOOKING_FAILURE_PAYMENT_DECLINED: BookingFailure
BOOKING_FAILURE_CONTENTION: BookingFailure

class RoomType(_message.Message):
    __slots__ = ("hotel_id", "room_type_id", "name", "rooms", "nightly_rate")
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    NIGHTLY_RATE_FIELD_NUMBER: _ClassVar[int]
    hotel_id: str
    room_type_id: str
    name: str
    rooms: int
    nightly_rate: _money_pb2.Money
    def __init__(self, hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., name: _Optional[str] = ..., rooms: _Optional[int] = ..., nightly_rate: _Optional[_Union[_money_pb2.Money, _Mapping]] = ...) -> None: ...

class NightAvailability(_message.Message):
    __slots__ = ("night", "sellable", "booked", "held", "available", "version")
    NIGHT_FIELD_NUMBER: _ClassVar[int]
    SELLABLE_FIELD_NUMBER: _ClassVar[int]
    BOOKED_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    night: str
    sellable: int
    booked: int
    held: int
    available: int
    version: int
    def __init__(self, night: _Optional[str] = ..., sellable: _Optional[int] = ..., booked: _Optional[int] = ..., held: _Optional[int] = ..., available: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class Hold(_message.Message):
    __slots__ = ("hold_id", "hotel_id", "room_type_id", "check_in", "nights", "rooms", "status", "expires_at_unix_ms")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    status: HoldStatus
    expires_at_unix_ms: int
    def __init__(self, hold_id: _Optional[str] = ..., hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., check_in: _Optional[str] = ..., nights: _Optional[int] = ..., rooms: _Optional[int] = ..., status: _Optional[_Union[HoldStatus, str]] = ..., expires_at_unix_ms: _Optional[int] = ...) -> None: ...

class Booking(_message.Message):
    __slots__ = ("booking_id", "guest_id", "hotel_id", "room_type_id", "check_in", "nights", "rooms", "total", "status", "failure_reason", "hold_id", "payment_id", "conflict_retries", "created_at_unix_ms")
    BOOKING_ID_FIELD_NUMBER: _ClassVar[int]
    GUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_REASON_FIELD_NUMBER: _ClassVar[int]
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONFLICT_RETRIES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    booking_id: str
    guest_id: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    total: _money_pb2.Money
    status: BookingStatus
    failure_reason: BookingFailure
    hold_id: str
    payment_id: str
    conflict_retries: int
    created_at_unix_ms: int
    def __init__(self, booking_id: _Optional[str] = ..., guest_id: _Optional[str] = ..., hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., check_in: _Optional[str] = ..., nights: _Optional[int] = ..., rooms: _Optional[int] = ..., total: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., status: _Optional[_Union[BookingStatus, str]] = ..., failure_reason: _Optional[_Union[BookingFailure, str]] = ..., hold_id: _Optional[str] = ..., payment_id: _Optional[str] = ..., conflict_retries: _Optional[int] = ..., created_at_unix_ms: _Optional[int] = ...) -> None: ...
