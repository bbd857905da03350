"""trading-gateway's input rules, as protos/casemesh/trading/v1/orders.proto states them.

Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the proto does
(``client_order_id``, ``price_minor``), the first bad one in the proto's field order; a well-formed symbol that is
not listed is :class:`~services.runtime.errors.NotFound`, checked once every field has its shape (the tick of
``price_minor`` needs the instrument, so it is checked last). The shared rules (symbols, order ids, price and
quantity bounds) are the contract's (:mod:`services.trading.contract`); ids are the runtime's
(services/runtime/identifiers.py: 1 to 64 characters of [A-Za-z0-9_-]).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from casemesh.trading.v1 import orders_pb2, trading_pb2

from ...runtime.errors import InvalidArgument, NotFound
from ...runtime.identifiers import required_id
from .. import contract
from .settings import InstrumentSettings

_SIDES = (trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL)
_TYPES = (trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET)


class PlaceOrder(NamedTuple):
    """A valid PlaceOrderRequest of a listed symbol (``price_minor`` 0 for a market order)."""

    client_order_id: str
    account_id: str
    instrument: InstrumentSettings
    side: int
    type: int
    price_minor: int
    quantity: int

    @property
    def symbol(self) -> str:
        return self.instrument.symbol


def symbol(value: str) -> str:
    """1 to 8 characters of [A-Z], naming ``symbol``."""
    if not value:
        raise InvalidArgument("symbol", "is required (1 to 8 characters of A-Z)")
    if not contract.is_symbol(value):
        raise InvalidArgument("symbol", f"{value!r} is not 1 to 8 characters of A-Z")
    return value


def order_id(value: str) -> str:
    """``ord_`` and 24 characters of [a-z2-7], naming ``order_id``."""
    if not value:
        raise InvalidArgument("order_id", "is required ('ord_' and 24 characters of a-z, 2-7)")
    if not contract.is_order_id(value):
        raise InvalidArgument("order_id", f"{value!r} is not 'ord_' and 24 characters of a-z, 2-7")
    return value


def place_order(request: orders_pb2.PlaceOrderRequest, instruments: Mapping[str, InstrumentSettings],
                max_quantity: int) -> PlaceOrder:
    """PlaceOrderRequest: ``client_order_id``, ``account_id``, ``symbol``, ``side``, ``type``, ``price_minor``
    (limit: 1 to 10^12; market: 0), ``quantity`` (1 to ``max_quantity``); NotFound for a symbol not in
    ``instruments``; then ``price_minor`` a multiple of the instrument's tick."""
    client_order_id = required_id("client_order_id", request.client_order_id)
    account_id = required_id("account_id", request.account_id)
    name = symbol(request.symbol)
    if request.side not in _SIDES:
        raise InvalidArgument("side", f"must be SIDE_BUY or SIDE_SELL, not {request.side}")
    if request.type not in _TYPES:
        raise InvalidArgument("type", f"must be ORDER_TYPE_LIMIT or ORDER_TYPE_MARKET, not {request.type}")
    price = request.price_minor
    if request.type == trading_pb2.ORDER_TYPE_MARKET:
        if price != 0:
            raise InvalidArgument("price_minor", f"must be 0 for a market order, not {price}")
    elif not 1 <= price <= contract.MAX_PRICE_MINOR:
        raise InvalidArgument("price_minor", f"{price} is not 1 to {contract.MAX_PRICE_MINOR:,} minor units")
    if not 1 <= request.quantity <= max_quantity:
        raise InvalidArgument("quantity", f"{request.quantity} is not 1 to {max_quantity:,} shares")
    instrument = instruments.get(name)
    if instrument is None:
        raise NotFound(f"symbol {name} is not listed (ListInstruments)")
    if price % instrument.tick_minor:
        raise InvalidArgument("price_minor", f"{price} is not a multiple of {name}'s tick, {instrument.tick_minor}")
    return PlaceOrder(client_order_id, account_id, instrument, request.side, request.type, price, request.quantity)


def cancel_order(request: orders_pb2.OrderEntryServiceCancelOrderRequest) -> tuple[str, str]:
    """OrderEntryServiceCancelOrderRequest: ``(account_id, order_id)``."""
    return required_id("account_id", request.account_id), order_id(request.order_id)


def get_order(request: orders_pb2.OrderEntryServiceGetOrderRequest) -> tuple[str, str]:
    """OrderEntryServiceGetOrderRequest: ``(account_id, order_id)``."""
    return required_id("account_id", request.account_id), order_id(request.order_id)
