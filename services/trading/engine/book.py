"""One symbol's limit order book with price-time priority: the matching engine's core, pure domain (no I/O).

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). The matching rule is the standard price-time
(FIFO) priority of continuous limit order books, as NASDAQ, NYSE and LSE run them (Gould et al., "Limit order books",
Quantitative Finance 13(11), 2013, section 2.3):

- bids are kept highest price first, asks lowest price first (``sortedcontainers.SortedDict`` price → :class:`Level`);
  at one price, orders keep the order they were accepted in (a level is an insertion-ordered dict, order_id → order:
  FIFO, cancel by id in O(1));
- an incoming order (the taker) trades against the best opposite level while it crosses (a buy limit at or above the
  ask, a sell limit at or below the bid; a market order at any price), the earliest resting order (the maker) of the
  level first, each fill at the maker's price, partial fills on either side;
- what is left of a limit order rests in the book at its price, behind the orders already there; what is left of a
  market order is cancelled (it never rests).

Prices are integer minor units per share, quantities whole shares. Sides, types and statuses are the
``casemesh.trading.v1`` enum numbers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from itertools import islice

from sortedcontainers import SortedDict

from casemesh.trading.v1 import trading_pb2

BUY = trading_pb2.SIDE_BUY
SELL = trading_pb2.SIDE_SELL
LIMIT = trading_pb2.ORDER_TYPE_LIMIT
MARKET = trading_pb2.ORDER_TYPE_MARKET
NEW = trading_pb2.ORDER_STATUS_NEW
PARTIALLY_FILLED = trading_pb2.ORDER_STATUS_PARTIALLY_FILLED
FILLED = trading_pb2.ORDER_STATUS_FILLED
CANCELLED = trading_pb2.ORDER_STATUS_CANCELLED


class Order:
    """An order as the engine holds it (the fields of ``casemesh.trading.v1.Order``): ``price`` in minor units per
    share (0 for a market order), ``quantity`` and ``filled`` in shares, ``accepted_sequence`` its time priority,
    ``accepted_at_ns`` Unix time in nanoseconds."""

    __slots__ = (
        "accepted_at_ns",
        "accepted_sequence",
        "account_id",
        "client_order_id",
        "filled",
        "order_id",
        "price",
        "quantity",
        "side",
        "status",
        "symbol",
        "type",
    )

    def __init__(self, order_id: str, client_order_id: str, account_id: str, symbol: str, side: int, type_: int,
                 price: int, quantity: int, accepted_sequence: int, accepted_at_ns: int) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account_id = account_id
        self.symbol = symbol
        self.side = side
        self.type = type_
        self.price = price
        self.quantity = quantity
        self.filled = 0
        self.status = NEW
        self.accepted_sequence = accepted_sequence
        self.accepted_at_ns = accepted_at_ns

    @property
    def open_quantity(self) -> int:
        """Shares not filled yet."""
        return self.quantity - self.filled

    def fill(self, quantity: int) -> None:
        """``quantity`` more shares traded: PARTIALLY_FILLED, or FILLED when none is left."""
        self.filled += quantity
        self.status = FILLED if self.filled == self.quantity else PARTIALLY_FILLED

    def to_proto(self, into: trading_pb2.Order | None = None) -> trading_pb2.Order:
        """The order as ``casemesh.trading.v1.Order`` (written into ``into`` when given, e.g. a response's field)."""
        proto = trading_pb2.Order() if into is None else into
        proto.order_id = self.order_id
        proto.client_order_id = self.client_order_id
        proto.account_id = self.account_id
        proto.symbol = self.symbol
        proto.side = self.side
        proto.type = self.type
        proto.price_minor = self.price
        proto.quantity = self.quantity
        proto.filled_quantity = self.filled
        proto.status = self.status
        proto.accepted_sequence = self.accepted_sequence
        proto.accepted_at_unix_ns = self.accepted_at_ns
        return proto

    def __repr__(self) -> str:
        return (f"Order({self.order_id} {self.account_id} {self.symbol} side={self.side} type={self.type} "
                f"{self.filled}/{self.quantity}@{self.price} status={self.status} seq={self.accepted_sequence})")


class Level:
    """The orders resting at one price, earliest first (order_id → :class:`Order`), and their open shares.

    An ``OrderedDict`` rather than a plain dict: both keep insertion order and delete by key in O(1), but taking the
    first order of a plain dict after many deletions at its front walks the dead slots (O(deleted) per look), while
    an ``OrderedDict``'s linked list stays O(1) however deep the level is.
    """

    __slots__ = ("orders", "price", "quantity")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: OrderedDict[str, Order] = OrderedDict()
        self.quantity = 0


class OrderBook:
    """The limit order book of one symbol: bids and asks by price, FIFO at each price (see the module docstring).

    :meth:`match` trades an incoming order against the book, :meth:`rest` puts an order in it, :meth:`remove` takes
    one out (a cancel), :meth:`fill_resting` applies a recorded fill to a resting order (replay: the log's trades,
    never matched again). ``resting`` counts the orders in the book.
    """

    __slots__ = ("asks", "bids", "resting", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        #: price → Level; the best bid is the highest price (the last key).
        self.bids: SortedDict = SortedDict()
        #: price → Level; the best ask is the lowest price (the first key).
        self.asks: SortedDict = SortedDict()
        self.resting = 0

    def match(self, taker: Order) -> list[tuple[Order, int]]:
        """Trade ``taker`` against the other side while it crosses, best price first and FIFO at a price: returns
        the fills in the order they happened, ``(maker, shares)``, each at ``maker.price``.

        Both sides' ``filled`` and ``status`` are updated; fully filled makers leave the book (and empty levels with
        them). The taker is not put in the book: :meth:`rest` a limit order's rest, cancel a market order's.
        """
        if taker.side == BUY:
            levels, best, buying = self.asks, 0, True
        else:
            levels, best, buying = self.bids, -1, False
        market = taker.type == MARKET
        limit = taker.price
        remaining = taker.quantity - taker.filled
        fills: list[tuple[Order, int]] = []
        while remaining and levels:
            price, level = levels.peekitem(best)
            if not market and (price > limit if buying else price < limit):
                break
            orders = level.orders
            while remaining and orders:
                maker = next(iter(orders.values()))
                shares = min(maker.quantity - maker.filled, remaining)
                maker.fill(shares)
                remaining -= shares
                level.quantity -= shares
                fills.append((maker, shares))
                if maker.status == FILLED:
                    orders.popitem(last=False)
                    self.resting -= 1
            if not orders:
                del levels[price]
        if fills:
            taker.fill(taker.quantity - taker.filled - remaining)
        return fills

    def rest(self, order: Order) -> None:
        """Put ``order`` (a limit order with shares open) in the book, last at its price."""
        side = self.bids if order.side == BUY else self.asks
        level = side.get(order.price)
        if level is None:
            level = side[order.price] = Level(order.price)
        level.orders[order.order_id] = order
        level.quantity += order.quantity - order.filled
        self.resting += 1

    def remove(self, order: Order) -> None:
        """Take resting ``order`` out of the book (a cancel); its level goes when it was the last there."""
        side = self.bids if order.side == BUY else self.asks
        level = side[order.price]
        del level.orders[order.order_id]
        level.quantity -= order.quantity - order.filled
        self.resting -= 1
        if not level.orders:
            del side[order.price]

    def fill_resting(self, maker: Order, shares: int) -> None:
        """Apply a recorded fill of ``shares`` to resting ``maker`` (replay); a filled maker leaves the book."""
        side = self.bids if maker.side == BUY else self.asks
        level = side[maker.price]
        maker.fill(shares)
        level.quantity -= shares
        if maker.status == FILLED:
            del level.orders[maker.order_id]
            self.resting -= 1
            if not level.orders:
                del side[maker.price]

    def best_bid(self) -> Level | None:
        """The highest-priced bid level, or ``None``."""
        return self.bids.peekitem(-1)[1] if self.bids else None

    def best_ask(self) -> Level | None:
        """The lowest-priced ask level, or ``None``."""
        return self.asks.peekitem(0)[1] if self.asks else None

    def side_levels(self, side: int) -> Iterator[Level]:
        """The levels of ``side`` (BUY: bids, SELL: asks), best price first."""
        return reversed(self.bids.values()) if side == BUY else iter(self.asks.values())

    def levels(self, side: int, depth: int = 0) -> list[tuple[int, int, int]]:
        """The top ``depth`` levels of ``side`` (0: all), best first, as ``(price, shares, orders)``."""
        levels = self.side_levels(side)
        if depth:
            levels = islice(levels, depth)
        return [(level.price, level.quantity, len(level.orders)) for level in levels]

    def resting_orders(self, side: int) -> Iterator[Order]:
        """The orders resting on ``side`` in priority order: best price first, then earliest accepted."""
        for level in self.side_levels(side):
            yield from level.orders.values()
