from casemesh.food.v1 import food_pb2 as _food_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DispatchOrderRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...

class DispatchOrderResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReceiveAssignmentsRequest(_message.Message):
    __slots__ = ("courier_id",)
    COURIER_ID_FIELD_NUMBER: _ClassVar[int]
    courier_id: str
    def __init__(self, courier_id: _Optional[str] = ...) -> None: ...

class ReceiveAssignmentsResponse(_message.Message):
    __slots__ = ("batch_id", "orders")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    orders: _containers.RepeatedCompositeFieldContainer[_food_pb2.Order]
    def __init__(self, batch_id: _Optional[str] = ..., orders: _Optional[_Iterable[_Union[_food_pb2.Order, _Mapping]]] = ...) -> None: ...
