from casemesh.common.v1 import geo_pb2 as _geo_pb2
from casemesh.common.v1 import money_pb2 as _money_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATE_UNSPECIFIED: _ClassVar[OrderState]
    ORDER_STATE_PLACED: _ClassVar[OrderState]
    ORDER_STATE_ASSIGNED: _ClassVar[OrderState]
    ORDER_STATE_PICKED_UP: _ClassVar[OrderState]
    ORDER_STATE_DELIVERED: _ClassVar[OrderState]
    ORDER_STATE_CANCELLED: _ClassVar[OrderState]

class CancelReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CANCEL_REASON_UNSPECIFIED: _ClassVar[CancelReason]
    CANCEL_REASON_CUSTOMER: _ClassVar[CancelReason]
    CANCEL_REASON_NO_COURIER: _ClassVar[CancelReason]
ORDER_STATE_UNSPECIFIED: OrderState
ORDER_STATE_PLACED: OrderState
ORDER_STATE_ASSIGNED: OrderState
ORDER_STATE_PICKED_UP: OrderState
ORDER_STATE_DELIVERED: OrderState
ORDER_STATE_CANCELLED: OrderState
CANCEL_REASON_UNSPECIFIED: CancelReason
CANCEL_REASON_CUSTOMER: CancelReason
CANCEL_REASON_NO_COURIER: CancelReason

class Order(_message.Message):
    __slots__ = ("order_id", "customer_id", "restaurant_id", "pickup", "dropoff", "items", "state", "cancel_reason", "courier_id", "batch_id", "delivery_fee", "surge_multiplier", "placed_at_unix_ms", "ready_at_unix_ms", "promised_at_unix_ms", "assigned_at_unix_ms", "picked_up_at_unix_ms", "delivered_at_unix_ms")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_ID_FIELD_NUMBER: _ClassVar[int]
    RESTAURANT_ID_FIELD_NUMBER: _ClassVar[int]
    PICKUP_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CANCEL_REASON_FIELD_NUMBER: _ClassVar[int]
    COURIER_ID_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FEE_FIELD_NUMBER: _ClassVar[int]
    SURGE_MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    PLACED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    READY_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PROMISED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    ASSIGNED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    PICKED_UP_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    DELIVERED_AT_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    customer_id: str
    restaurant_id: str
    pickup: _geo_pb2.LatLng
    dropoff: _geo_pb2.LatLng
    items: int
    state: OrderState
    cancel_reason: CancelReason
    courier_id: str
    batch_id: str
    delivery_fee: _money_pb2.Money
    surge_multiplier: float
    placed_at_unix_ms: int
    ready_at_unix_ms: int
    promised_at_unix_ms: int
    assigned_at_unix_ms: int
    picked_up_at_unix_ms: int
    delivered_at_unix_ms: int
    def __init__(self, order_id: _Optional[str] = ..., customer_id: _Optional[str] = ..., restaurant_id: _Optional[str] = ..., pickup: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., dropoff: _Optional[_Union[_geo_pb2.LatLng, _Mapping]] = ..., items: _Optional[int] = ..., state: _Optional[_Union[OrderState, str]] = ..., cancel_reason: _Optional[_Union[CancelReason, str]] = ..., courier_id: _Optional[str] = ..., batch_id: _Optional[str] = ..., delivery_fee: _Optional[_Union[_money_pb2.Money, _Mapping]] = ..., surge_multiplier: _Optional[float] = ..., placed_at_unix_ms: _Optional[int] = ..., ready_at_unix_ms: _Optional[int] = ..., promised_at_unix_ms: _Optional[int] = ..., assigned_at_unix_ms: _Optional[int] = ..., picked_up_at_unix_ms: _Optional[int] = ..., delivered_at_unix_ms: _Optional[int] = ...) -> None: ...
