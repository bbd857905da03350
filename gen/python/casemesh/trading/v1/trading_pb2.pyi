from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Side(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIDE_UNSPECIFIED: _ClassVar[Side]
    SIDE_BUY: _ClassVar[Side]
    SIDE_SELL: _ClassVar[Side]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELLED: _ClassVar[OrderStatus]
SIDE_UNSPECIFIED: Side
SIDE_BUY: Side
SIDE_SELL: Side
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELLED: OrderStatus

class Order(_message.Message):
    __slots__ = ("order_id", "client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity", "filled_quantity", "status", "accepted_sequence", "accepted_at_unix_ns")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    FILLED_QUANTITY_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: Side
    type: OrderType
    price_minor: int
    quantity: int
    filled_quantity: int
    status: OrderStatus
    accepted_sequence: int
    accepted_at_unix_ns: int
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., account_id: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[Side, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., price_minor: _Optional[int] = ..., quantity: _Optional[int] = ..., filled_quantity: _Optional[int] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., accepted_sequence: _Optional[int] = ..., accepted_at_unix_ns: _Optional[int] = ...) -> None: ...

class Trade(_message.Message):
    __slots__ = ("trade_id", "symbol", "price_minor", "quantity", "maker_order_id", "taker_order_id", "taker_side", "sequence", "executed_at_unix_ns")
    TRADE_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    MAKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAKER_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAKER_SIDE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    EXECUTED_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    trade_id: str
    symbol: str
    price_minor: int
    quantity: int
    maker_order_id: str
    taker_order_id: str
    taker_side: Side
    sequence: int
    executed_at_unix_ns: int
    def __init__(self, trade_id: _Optional[str] = ..., symbol: _Optional[str] = ..., price_minor: _Optional[int] = ..., quantity: _Optional[int] = ..., maker_order_id: _Optional[str] = ..., taker_order_id: _Optional[str] = ..., taker_side: _Optional[_Union[Side, str]] = ..., sequence: _Optional[int] = ..., executed_at_unix_ns: _Optional[int] = ...) -> None: ...

class BookLevel(_message.Message):
    __slots__ = ("price_minor", "quantity", "order_count")
    PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    ORDER_COUNT_FIELD_NUMBER: _ClassVar[int]
    price_minor: int
    quantity: int
    order_count: int
    def __init__(self, price_minor: _Optional[int] = ..., quantity: _Optional[int] = ..., order_count: _Optional[int] = ...) -> None: ...

class Instrument(_message.Message):
    __slots__ = ("symbol", "currency_code", "tick_minor", "reference_price_minor")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_CODE_FIELD_NUMBER: _ClassVar[int]
    TICK_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    currency_code: str
    tick_minor: int
    reference_price_minor: int
    def __init__(self, symbol: _Optional[str] = ..., currency_code: _Optional[str] = ..., tick_minor: _Optional[int] = ..., reference_price_minor: _Optional[int] = ...) -> None: ...
