from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.food.v1 import food_pb2 as _food_pb2
from casemesh.rides.v1 import rides_pb2 as _rides_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CourierEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COURIER_EVENT_UNSPECIFIED: _ClassVar[CourierEvent]
    COURIER_EVENT_PICK_UP: _ClassVar[CourierEvent]
    COURIER_EVENT_DELIVER: _ClassVar[CourierEvent]
COURIER_EVENT_UNSPECIFIED: CourierEvent
COURIER_EVENT_PICK_UP: CourierEvent
COURIER_EVENT_DELIVER: CourierEvent

class PlaceOrderRequest(_message.Message):
    __slots__ = ("customer_id", "client_request_id", "restaurant_id", "dropoff", "items")
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    customer_id: str
    client_request_id: str
    restaurant_id: str
    dropoff: _geo_pb2.LatLng
    items: int
    def __init__(self, customer_id: _Optional[str] = ..., client_request_id: _Optional[str] = ..., restaurant_id: _Optional[str] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., items: _Optional[int] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...

class WatchOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class WatchOrderResponse(_message.Message):
    __slots__ = ("order", "courier_position")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    COURIER_POSITION_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    courier_position: _rides_pb2.DriverPosition
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ..., courier_position: _Optional[_Union[_rides_pb2.DriverPosition, _Mapping]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id", "customer_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    customer_id: str
    def __init__(self, order_id: _Optional[str] = ..., customer_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...

class UpdateOrderRequest(_message.Message):
    __slots__ = ("order_id", "courier_id", "event")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    COURIER_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    courier_id: str
    event: CourierEvent
    def __init__(self, order_id: _Optional[str] = ..., courier_id: _Optional[str] = ..., event: _Optional[_Union[CourierEvent, str]] = ...) -> None: ...

class UpdateOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...

class GetSurgeRequest(_message.Message):
    __slots__ = ("point",)
    POINT_FIELD_NUMBER: _ClassVar[int]
    point: _geo_pb2.LatLng
    def __init__(self, point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ...) -> None: ...

class GetSurgeResponse(_message.Message):
    __slots__ = ("surge_multiplier", "region")
    SURGE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    surge_multiplier: float
    region: str
    def __init__(self, surge_multiplier: _Optional[float] = ..., region: _Optional[str] = ...) -> None: ...

class AssignCourierRequest(_message.Message):
    __slots__ = ("order_ids", "courier_id", "batch_id")
    ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    COURIER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    order_ids: _containers.RepeatedScalarFieldContainer[str]
    courier_id: str
    batch_id: str
    def __init__(self, order_ids: _Optional[_Iterable[str]] = ..., courier_id: _Optional[str] = ..., batch_id: _Optional[str] = ...) -> None: ...

class AssignCourierResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_food_pb2.Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[_food_pb2.Order, _Mapping]]] = ...) -> None: ...

class ListOpenOrdersRequest(_message.Message):
    __slots__ = ("limit", "include_assigned")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ASSIGNED_FIELD_NUMBER: _ClassVar[int]
    limit: int
    include_assigned: bool
    def __init__(self, limit: _Optional[int] = ..., include_assigned: _Optional[bool] = ...) -> None: ...

class ListOpenOrdersResponse(_message.Message):
    __slots__ = ("orders",)
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_food_pb2.Order]
    def __init__(self, orders: _Optional[_Iterable[_Union[_food_pb2.Order, _Mapping]]] = ...) -> None: ...

class ReleaseOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class ReleaseOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _food_pb2.Order
    def __init__(self, order: _Optional[_Union[_food_pb2.Order, _Mapping]] = ...) -> None: ...
