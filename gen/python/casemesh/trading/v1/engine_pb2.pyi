from casemesh.trading.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubmitOrderRequest(_message.Message):
    __slots__ = ("order_id", "client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: _trading_pb2.Side
    type: _trading_pb2.OrderType
    price_minor: int
    quantity: int
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_trading_pb2.Side, str]] = ..., type: _Optional[_Union[_trading_pb2.OrderType, str]] = ..., price_minor: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("order", "trades")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    trades: _containers.RepeatedCompositeFieldContainer[_trading_pb2.Trade]
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[_trading_pb2.Trade, _Mapping]]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id", "account_id")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    account_id: str
    def __init__(self, order_id: _Optional[str] = ..., account_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ...) -> None: ...

class GetBookRequest(_message.Message):
    __slots__ = ("symbol", "depth", "include_orders")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_ORDERS_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    depth: int
    include_orders: bool
    def __init__(self, symbol: _Optional[str] = ..., depth: _Optional[int] = ..., include_orders: _Optional[bool] = ...) -> None: ...

class GetBookResponse(_message.Message):
    __slots__ = ("sequence", "bids", "asks", "bid_orders", "ask_orders")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    BID_ORDERS_FIELD_NUMBER: _ClassVar[int]
    ASK_ORDERS_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    bids: _containers.RepeatedCompositeFieldContainer[_trading_pb2.BookLevel]
    asks: _containers.RepeatedCompositeFieldContainer[_trading_pb2.BookLevel]
    bid_orders: _containers.RepeatedCompositeFieldContainer[_trading_pb2.Order]
    ask_orders: _containers.RepeatedCompositeFieldContainer[_trading_pb2.Order]
    def __init__(self, sequence: _Optional[int] = ..., bids: _Optional[_Iterable[_Union[_trading_pb2.BookLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[_trading_pb2.BookLevel, _Mapping]]] = ..., bid_orders: _Optional[_Iterable[_Union[_trading_pb2.Order, _Mapping]]] = ..., ask_orders: _Optional[_Iterable[_Union[_trading_pb2.Order, _Mapping]]] = ...) -> None: ...

class StreamEventsRequest(_message.Message):
    __slots__ = ("from_sequence",)
    FROM_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    from_sequence: int
    def __init__(self, from_sequence: _Optional[int] = ...) -> None: ...

class StreamEventsResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: EngineEvent
    def __init__(self, event: _Optional[_Union[EngineEvent, _Mapping]] = ...) -> None: ...

class EngineEvent(_message.Message):
    __slots__ = ("sequence", "at_unix_ns", "accepted", "trade", "cancelled")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    TRADE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    at_unix_ns: int
    accepted: _trading_pb2.Order
    trade: _trading_pb2.Trade
    cancelled: _trading_pb2.Order
    def __init__(self, sequence: _Optional[int] = ..., at_unix_ns: _Optional[int] = ..., accepted: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ..., trade: _Optional[_Union[_trading_pb2.Trade, _Mapping]] = ..., cancelled: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ...) -> None: ...
