"""trading-marketdata's input rules, as protos/casemesh/trading/v1/marketdata.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field (``symbols``, ``symbols[2]``,
``depth``, ``symbol``); the shared rules are the contract's (:mod:`services.trading.contract`: symbols, 1 to
:data:`~..contract.MAX_STREAM_SYMBOLS` per stream, depth 1 to :data:`~..contract.MAX_STREAM_DEPTH`). Any well-formed
symbol may be followed: an unlisted one has an empty book.
"""

from __future__ import annotations

from casemesh.trading.v1 import marketdata_pb2

from ...runtime.errors import InvalidArgument
from .. import contract

_SYMBOL_RULE = "1 to 8 characters of A-Z"


def symbol(value: str, field: str = "symbol") -> str:
    """1 to 8 characters of [A-Z], naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_SYMBOL_RULE})")
    if not contract.is_symbol(value):
        raise InvalidArgument(field, f"{value!r} is not {_SYMBOL_RULE}")
    return value


def stream_market_data(request: marketdata_pb2.StreamMarketDataRequest) -> tuple[list[str], int]:
    """StreamMarketDataRequest: ``(symbols, depth)``: 1 to 32 distinct symbols, depth 1 to 50."""
    symbols = list(request.symbols)
    if not 1 <= len(symbols) <= contract.MAX_STREAM_SYMBOLS:
        raise InvalidArgument("symbols", f"has {len(symbols)} symbols; 1 to {contract.MAX_STREAM_SYMBOLS} are needed")
    seen: set[str] = set()
    for i, value in enumerate(symbols):
        symbol(value, f"symbols[{i}]")
        if value in seen:
            raise InvalidArgument(f"symbols[{i}]", f"{value} repeats an earlier symbol")
        seen.add(value)
    if not 1 <= request.depth <= contract.MAX_STREAM_DEPTH:
        raise InvalidArgument("depth", f"{request.depth} is not 1 to {contract.MAX_STREAM_DEPTH} levels")
    return symbols, request.depth


def get_top_of_book(request: marketdata_pb2.GetTopOfBookRequest) -> str:
    """GetTopOfBookRequest: ``symbol``."""
    return symbol(request.symbol)
