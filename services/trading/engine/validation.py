"""trading-engine's input rules, as protos/casemesh/trading/v1/engine.proto states them (seed 001 #08,
shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order book, ...").

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the proto does
(``order_id``, ``price_minor``, ``depth``), the first bad one in the proto's field order. The rules shared with
clients (symbols, ids, order ids, price and quantity bounds, book depth) are the contract's
(:mod:`services.trading.contract`). Checks that need the engine's state (``from_sequence`` beyond the next sequence
number, an order_id held with another order) are the engine's.
"""

from __future__ import annotations

from casemesh.trading.v1 import engine_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import ID_RULE
from .. import contract
from .book import BUY, LIMIT, MARKET, SELL

__all__ = ["NewOrder", "account_id", "depth", "order_id", "submit_order", "symbol"]

_ORDER_ID_RULE = f"{contract.ORDER_ID_PREFIX!r} and {contract.ORDER_ID_CHARS} characters of [a-z2-7]"
_SYMBOL_RULE = f"1 to {contract.MAX_SYMBOL_CHARS} characters of A-Z"
_order_id_match = contract.ORDER_ID_RE.fullmatch
_id_match = contract.ID_RE.fullmatch
_symbol_match = contract.SYMBOL_RE.fullmatch
_SIDES = (BUY, SELL)
_TYPES = (LIMIT, MARKET)

#: A valid SubmitOrderRequest: (order_id, client_order_id, account_id, symbol, side, type, price_minor, quantity).
NewOrder = tuple[str, str, str, str, int, int, int, int]


def order_id(value: str) -> str:
    """``ord_`` and 24 characters of [a-z2-7], naming ``order_id``."""
    if _order_id_match(value) is None:
        raise InvalidArgument("order_id", f"{'must be' if value else 'is required:'} {_ORDER_ID_RULE}")
    return value


def _id(field: str, value: str) -> str:
    if _id_match(value) is None:
        raise InvalidArgument(field, f"{'must be' if value else 'is required:'} {ID_RULE}")
    return value


def account_id(value: str) -> str:
    """1 to 64 characters of [A-Za-z0-9_-], naming ``account_id``."""
    return _id("account_id", value)


def symbol(value: str) -> str:
    """1 to 8 characters of [A-Z], naming ``symbol``."""
    if _symbol_match(value) is None:
        raise InvalidArgument("symbol", f"{'must be' if value else 'is required:'} {_SYMBOL_RULE}")
    return value


def submit_order(request: engine_pb2.SubmitOrderRequest) -> NewOrder:
    """SubmitOrderRequest: ``order_id``, ``client_order_id``, ``account_id``, ``symbol``, ``side`` (SIDE_BUY or
    SIDE_SELL), ``type`` (ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET), ``price_minor`` (a limit order 1 to 10^12 minor
    units per share, a market order 0), ``quantity`` (1 to 10^9 shares)."""
    new = (request.order_id, request.client_order_id, request.account_id, request.symbol, request.side, request.type,
           request.price_minor, request.quantity)
    if _order_id_match(new[0]) is None:
        order_id(new[0])
    if _id_match(new[1]) is None:
        _id("client_order_id", new[1])
    if _id_match(new[2]) is None:
        _id("account_id", new[2])
    if _symbol_match(new[3]) is None:
        symbol(new[3])
    if new[4] not in _SIDES:
        raise InvalidArgument("side", f"must be SIDE_BUY or SIDE_SELL, not {new[4]}")
    if new[5] not in _TYPES:
        raise InvalidArgument("type", f"must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET, not {new[5]}")
    price = new[6]
    if new[5] == LIMIT:
        if not 0 < price <= contract.MAX_PRICE_MINOR:
            raise InvalidArgument("price_minor", f"{price} is not 1 to {contract.MAX_PRICE_MINOR:,} minor units per "
                                                 "share (a limit order)")
    elif price:
        raise InvalidArgument("price_minor", f"must be 0 for a market order, not {price}")
    if not 0 < new[7] <= contract.MAX_QUANTITY:
        raise InvalidArgument("quantity", f"{new[7]} is not 1 to {contract.MAX_QUANTITY:,} shares")
    return new


def depth(value: int) -> int:
    """GetBook's ``depth``: 0 (every level) to 1,000."""
    if value > contract.MAX_BOOK_DEPTH:
        raise InvalidArgument("depth", f"{value} is more than {contract.MAX_BOOK_DEPTH:,} levels (0: all)")
    return value
