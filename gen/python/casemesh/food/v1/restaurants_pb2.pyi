from casemesh.common.v1 import geo_pb2 as _geo_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Restaurant(_message.Message):
    __slots__ = ("restaurant_id", "name", "point", "prep_base_s", "prep_per_item_s", "kitchen_slots")
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    PREP_BASE_S_FIELD_NUMBER: _ClassVar[int]
    PREP_PER_ITEM_S_FIELD_NUMBER: _ClassVar[int]
    KITCHEN_SLOTS_FIELD_NUMBER: _ClassVar[int]
    restaurant_id: str
    name: str
    point: _geo_pb2.LatLng
    prep_base_s: float
    prep_per_item_s: float
    kitchen_slots: int
    def __init__(self, restaurant_id: _Optional[str] = ..., name: _Optional[str] = ..., point: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., prep_base_s: _Optional[float] = ..., prep_per_item_s: _Optional[float] = ..., kitchen_slots: _Optional[int] = ...) -> None: ...

class CreateRestaurantsRequest(_message.Message):
    __slots__ = ("restaurants",)
    RESTAURANTS_FIELD_NUMBER: _ClassVar[int]
    restaurants: _containers.RepeatedCompositeFieldContainer[Restaurant]
    def __init__(self, restaurants: _Optional[_Iterable[_Union[Restaurant, _Mapping]]] = ...) -> None: ...

class CreateRestaurantsResponse(_message.Message):
    __slots__ = ("created",)
    CREATED_FIELD_NUMBER: _ClassVar[int]
    created: int
    def __init__(self, created: _Optional[int] = ...) -> None: ...

class GetRestaurantRequest(_message.Message):
    __slots__ = ("restaurant_id",)
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    restaurant_id: str
    def __init__(self, restaurant_id: _Optional[str] = ...) -> None: ...

class GetRestaurantResponse(_message.Message):
    __slots__ = ("restaurant", "orders_preparing", "next_ready_at_unix_ms")
    RESTAURANT_FIELD_NUMBER: _ClassVar[int]
    ORDERS_PREPARING_FIELD_NUMBER: _ClassVar[int]
    NEXT_READY_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    restaurant: Restaurant
    orders_preparing: int
    next_ready_at_unix_ms: int
    def __init__(self, restaurant: _Optional[_Union[Restaurant, _Mapping]] = ..., orders_preparing: _Optional[int] = ..., next_ready_at_unix_ms: _Optional[int] = ...) -> None: ...

class PrepareOrderRequest(_message.Message):
    __slots__ = ("restaurant_id", "order_id", "items")
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    restaurant_id: str
    order_id: str
    items: int
    def __init__(self, restaurant_id: _Optional[str] = ..., order_id: _Optional[str] = ..., items: _Optional[int] = ...) -> None: ...

class PrepareOrderResponse(_message.Message):
    __slots__ = ("ready_at_unix_ms", "pickup")
    READY_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    ready_at_unix_ms: int
    pickup: _geo_pb2.LatLng
    def __init__(self, ready_at_unix_ms: _Optional[int] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ...) -> None: ...
