from casemesh.hotel.v1 import hotel_pb2 as _hotel_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateBookingRequest(_message.Message):
    __slots__ = ("idempotency_key", "guest_id", "hotel_id", "room_type_id", "check_in", "nights", "rooms", "card_token")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    GUEST_ID_FIELD_NUMBER: _ClassVar[int]
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    CARD_TOKEN_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    guest_id: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    card_token: str
    def __init__(self, idempotency_key: _Optional[str] = ..., guest_id: _Optional[str] = ..., hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., check_in: _Optional[str] = ..., nights: _Optional[int] = ..., rooms: _Optional[int] = ..., card_token: _Optional[str] = ...) -> None: ...

class CreateBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: _hotel_pb2.Booking
    def __init__(self, booking: _Optional[_Union[_hotel_pb2.Booking, _Mapping]] = ...) -> None: ...

class GetBookingRequest(_message.Message):
    __slots__ = ("booking_id",)
    BOOKING_ID_FIELD_NUMBER: _ClassVar[int]
    booking_id: str
    def __init__(self, booking_id: _Optional[str] = ...) -> None: ...

class GetBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: _hotel_pb2.Booking
    def __init__(self, booking: _Optional[_Union[_hotel_pb2.Booking, _Mapping]] = ...) -> None: ...

class CancelBookingRequest(_message.Message):
    __slots__ = ("booking_id",)
    BOOKING_ID_FIELD_NUMBER: _ClassVar[int]
    booking_id: str
    def __init__(self, booking_id: _Optional[str] = ...) -> None: ...

class CancelBookingResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: _hotel_pb2.Booking
    def __init__(self, booking: _Optional[_Union[_hotel_pb2.Booking, _Mapping]] = ...) -> None: ...

class CheckInRequest(_message.Message):
    __slots__ = ("booking_id",)
    BOOKING_ID_FIELD_NUMBER: _ClassVar[int]
    booking_id: str
    def __init__(self, booking_id: _Optional[str] = ...) -> None: ...

class CheckInResponse(_message.Message):
    __slots__ = ("booking",)
    BOOKING_FIELD_NUMBER: _ClassVar[int]
    booking: _hotel_pb2.Booking
    def __init__(self, booking: _Optional[_Union[_hotel_pb2.Booking, _Mapping]] = ...) -> None: ...
