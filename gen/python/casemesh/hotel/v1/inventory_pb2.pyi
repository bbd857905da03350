from casemesh.hotel.v1 import hotel_pb2 as _hotel_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AddRoomTypeRequest(_message.Message):
    __slots__ = ("room_type",)
    ROOM_TYPE_FIELD_NUMBER: _ClassVar[int]
    room_type: _hotel_pb2.RoomType
    def __init__(self, room_type: _Optional[_Union[_hotel_pb2.RoomType, _Mapping]] = ...) -> None: ...

class AddRoomTypeResponse(_message.Message):
    __slots__ = ("room_type",)
    ROOM_TYPE_FIELD_NUMBER: _ClassVar[int]
    room_type: _hotel_pb2.RoomType
    def __init__(self, room_type: _Optional[_Union[_hotel_pb2.RoomType, _Mapping]] = ...) -> None: ...

class GetAvailabilityRequest(_message.Message):
    __slots__ = ("hotel_id", "room_type_id", "check_in", "nights")
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    def __init__(self, hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., check_in: _Optional[str] = ..., nights: _Optional[int] = ...) -> None: ...

class GetAvailabilityResponse(_message.Message):
    __slots__ = ("room_type", "nights")
    ROOM_TYPE_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    room_type: _hotel_pb2.RoomType
    nights: _containers.RepeatedCompositeFieldContainer[_hotel_pb2.NightAvailability]
    def __init__(self, room_type: _Optional[_Union[_hotel_pb2.RoomType, _Mapping]] = ..., nights: _Optional[_Iterable[_Union[_hotel_pb2.NightAvailability, _Mapping]]] = ...) -> None: ...

class HoldRoomsRequest(_message.Message):
    __slots__ = ("hold_id", "hotel_id", "room_type_id", "check_in", "nights", "rooms", "ttl_ms")
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    HOTEL_ID_FIELD_NUMBER: _ClassVar[int]
    ROOM_TYPE_ID_FIELD_NUMBER: _ClassVar[int]
    CHECK_IN_FIELD_NUMBER: _ClassVar[int]
    NIGHTS_FIELD_NUMBER: _ClassVar[int]
    ROOMS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    hotel_id: str
    room_type_id: str
    check_in: str
    nights: int
    rooms: int
    ttl_ms: int
    def __init__(self, hold_id: _Optional[str] = ..., hotel_id: _Optional[str] = ..., room_type_id: _Optional[str] = ..., check_in: _Optional[str] = ..., nights: _Optional[int] = ..., rooms: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class HoldRoomsResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: _hotel_pb2.Hold
    def __init__(self, hold: _Optional[_Union[_hotel_pb2.Hold, _Mapping]] = ...) -> None: ...

class ConfirmHoldRequest(_message.Message):
    __slots__ = ("hold_id",)
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    def __init__(self, hold_id: _Optional[str] = ...) -> None: ...

class ConfirmHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: _hotel_pb2.Hold
    def __init__(self, hold: _Optional[_Union[_hotel_pb2.Hold, _Mapping]] = ...) -> None: ...

class ReleaseHoldRequest(_message.Message):
    __slots__ = ("hold_id",)
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    def __init__(self, hold_id: _Optional[str] = ...) -> None: ...

class ReleaseHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: _hotel_pb2.Hold
    def __init__(self, hold: _Optional[_Union[_hotel_pb2.Hold, _Mapping]] = ...) -> None: ...

class GetHoldRequest(_message.Message):
    __slots__ = ("hold_id",)
    HOLD_ID_FIELD_NUMBER: _ClassVar[int]
    hold_id: str
    def __init__(self, hold_id: _Optional[str] = ...) -> None: ...

class GetHoldResponse(_message.Message):
    __slots__ = ("hold",)
    HOLD_FIELD_NUMBER: _ClassVar[int]
    hold: _hotel_pb2.Hold
    def __init__(self, hold: _Optional[_Union[_hotel_pb2.Hold, _Mapping]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("room_types", "room_nights", "booked_room_nights", "held_room_nights", "overbooked_room_nights", "violations")
    ROOM_TYPES_FIELD_NUMBER: _ClassVar[int]
    ROOM_NIGHTS_FIELD_NUMBER: _ClassVar[int]
    BOOKED_ROOM_NIGHTS_FIELD_NUMBER: _ClassVar[int]
    HELD_ROOM_NIGHTS_FIELD_NUMBER: _ClassVar[int]
    OVERBOOKED_ROOM_NIGHTS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    room_types: int
    room_nights: int
    booked_room_nights: int
    held_room_nights: int
    overbooked_room_nights: int
    violations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, room_types: _Optional[int] = ..., room_nights: _Optional[int] = ..., booked_room_nights: _Optional[int] = ..., held_room_nights: _Optional[int] = ..., overbooked_room_nights: _Optional[int] = ..., violations: _Optional[_Iterable[str]] = ...) -> None: ...
