from casemesh.trading.v1 import trading_pb2 as _trading_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamMarketDataRequest(_message.Message):
    __slots__ = ("symbols", "depth")
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    depth: int
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., depth: _Optional[int] = ...) -> None: ...

class StreamMarketDataResponse(_message.Message):
    __slots__ = ("symbol", "sequence", "engine_at_unix_ns", "snapshot", "trade", "depth")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_AT_UNIX_NS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    TRADE_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    sequence: int
    engine_at_unix_ns: int
    snapshot: BookDepth
    trade: _trading_pb2.Trade
    depth: BookDepth
    def __init__(self, symbol: _Optional[str] = ..., sequence: _Optional[int] = ..., engine_at_unix_ns: _Optional[int] = ..., snapshot: _Optional[_Union[BookDepth, _Mapping]] = ..., trade: _Optional[_Union[_trading_pb2.Trade, _Mapping]] = ..., depth: _Optional[_Union[BookDepth, _Mapping]] = ...) -> None: ...

class BookDepth(_message.Message):
    __slots__ = ("bids", "asks")
    BIDS_FIELD_NUMBER: _ClassVar[int]
    ASKS_FIELD_NUMBER: _ClassVar[int]
    bids: _containers.RepeatedCompositeFieldContainer[_trading_pb2.BookLevel]
    asks: _containers.RepeatedCompositeFieldContainer[_trading_pb2.BookLevel]
    def __init__(self, bids: _Optional[_Iterable[_Union[_trading_pb2.BookLevel, _Mapping]]] = ..., asks: _Optional[_Iterable[_Union[_trading_pb2.BookLevel, _Mapping]]] = ...) -> None: ...

class GetTopOfBookRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetTopOfBookResponse(_message.Message):
    __slots__ = ("sequence", "best_bid", "best_ask", "last_trade")
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    BEST_BID_FIELD_NUMBER: _ClassVar[int]
    BEST_ASK_FIELD_NUMBER: _ClassVar[int]
    LAST_TRADE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    best_bid: _trading_pb2.BookLevel
    best_ask: _trading_pb2.BookLevel
    last_trade: _trading_pb2.Trade
    def __init__(self, sequence: _Optional[int] = ..., best_bid: _Optional[_Union[_trading_pb2.BookLevel, _Mapping]] = ..., best_ask: _Optional[_Union[_trading_pb2.BookLevel, _Mapping]] = ..., last_trade: _Optional[_Union[_trading_pb2.Trade, _Mapping]] = ...) -> None: ...
