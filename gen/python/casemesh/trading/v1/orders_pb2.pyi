from casemesh.trading.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlaceOrderRequest(_message.Message):
    __slots__ = ("client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    account_id: str
    symbol: str
    side: _trading_pb2.Side
    type: _trading_pb2.OrderType
    price_minor: int
    quantity: int
    def __init__(self, client_order_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_trading_pb2.Side, str]] = ..., type: _Optional[_Union[_trading_pb2.OrderType, str]] = ..., price_minor: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class PlaceOrderResponse(_message.Message):
    __slots__ = ("order", "trades")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    trades: _containers.RepeatedCompositeFieldContainer[_trading_pb2.Trade]
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[_trading_pb2.Trade, _Mapping]]] = ...) -> None: ...

class OrderEntryServiceCancelOrderRequest(_message.Message):
    __slots__ = ("account_id", "order_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    order_id: str
    def __init__(self, account_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class OrderEntryServiceCancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ...) -> None: ...

class OrderEntryServiceGetOrderRequest(_message.Message):
    __slots__ = ("account_id", "order_id")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    order_id: str
    def __init__(self, account_id: _Optional[str] = ..., order_id: _Optional[str] = ...) -> None: ...

class OrderEntryServiceGetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _trading_pb2.Order
    def __init__(self, order: _Optional[_Union[_trading_pb2.Order, _Mapping]] = ...) -> None: ...

class ListInstrumentsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListInstrumentsResponse(_message.Message):
    __slots__ = ("instruments",)
    INSTRUMENTS_FIELD_NUMBER: _ClassVar[int]
    instruments: _containers.RepeatedCompositeFieldContainer[_trading_pb2.Instrument]
    def __init__(self, instruments: _Optional[_Iterable[_Union[_trading_pb2.Instrument, _Mapping]]] = ...) -> None: ...
