from casemesh.ecommerce.v1 import ecommerce_pb2 as _ecommerce_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RestockRequest(_message.Message):
    __slots__ = ("restock_id", "product_id", "quantity")
    RESTOCK_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    restock_id: str
    product_id: str
    quantity: int
    def __init__(self, restock_id: _Optional[str] = ..., product_id: _Optional[str] = ..., quantity: _Optional[int] = ...) -> None: ...

class RestockResponse(_message.Message):
    __slots__ = ("stock",)
    STOCK_FIELD_NUMBER: _ClassVar[int]
    stock: _ecommerce_pb2.StockLevel
    def __init__(self, stock: _Optional[_Union[_ecommerce_pb2.StockLevel, _Mapping]] = ...) -> None: ...

class GetStockRequest(_message.Message):
    __slots__ = ("product_id",)
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    product_id: str
    def __init__(self, product_id: _Optional[str] = ...) -> None: ...

class GetStockResponse(_message.Message):
    __slots__ = ("stock",)
    STOCK_FIELD_NUMBER: _ClassVar[int]
    stock: _ecommerce_pb2.StockLevel
    def __init__(self, stock: _Optional[_Union[_ecommerce_pb2.StockLevel, _Mapping]] = ...) -> None: ...

class ReserveRequest(_message.Message):
    __slots__ = ("reservation_id", "product_id", "quantity", "ttl_ms")
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    PRODUCT_ID_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    product_id: str
    quantity: int
    ttl_ms: int
    def __init__(self, reservation_id: _Optional[str] = ..., product_id: _Optional[str] = ..., quantity: _Optional[int] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class ReserveResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: _ecommerce_pb2.Reservation
    def __init__(self, reservation: _Optional[_Union[_ecommerce_pb2.Reservation, _Mapping]] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: _ecommerce_pb2.Reservation
    def __init__(self, reservation: _Optional[_Union[_ecommerce_pb2.Reservation, _Mapping]] = ...) -> None: ...

class ReleaseRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class ReleaseResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: _ecommerce_pb2.Reservation
    def __init__(self, reservation: _Optional[_Union[_ecommerce_pb2.Reservation, _Mapping]] = ...) -> None: ...

class GetReservationRequest(_message.Message):
    __slots__ = ("reservation_id",)
    RESERVATION_ID_FIELD_NUMBER: _ClassVar[int]
    reservation_id: str
    def __init__(self, reservation_id: _Optional[str] = ...) -> None: ...

class GetReservationResponse(_message.Message):
    __slots__ = ("reservation",)
    RESERVATION_FIELD_NUMBER: _ClassVar[int]
    reservation: _ecommerce_pb2.Reservation
    def __init__(self, reservation: _Optional[_Union[_ecommerce_pb2.Reservation, _Mapping]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("stock", "held_reservations", "expired_reservations", "violations")
    STOCK_FIELD_NUMBER: _ClassVar[int]
    HELD_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_RESERVATIONS_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    stock: _containers.RepeatedCompositeFieldContainer[_ecommerce_pb2.StockLevel]
    held_reservations: int
    expired_reservations: int
    violations: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stock: _Optional[_Iterable[_Union[_ecommerce_pb2.StockLevel, _Mapping]]] = ..., held_reservations: _Optional[int] = ..., expired_reservations: _Optional[int] = ..., violations: _Optional[_Iterable[str]] = ...) -> None: ...
