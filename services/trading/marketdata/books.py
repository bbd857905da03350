"""The books market data publishes: aggregated price levels per symbol, rebuilt from the engine's event log.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). A market-by-price feed (NASDAQ TotalView's
aggregated view, top-of-book as in its Level 1 feed) built the way an ITCH consumer builds one: by applying the
exchange's sequenced order events to a copy of each book.

Per symbol (:class:`SymbolBook`): bids and asks as ``sortedcontainers.SortedDict`` price -> ``[shares, orders]``
(bids keyed to iterate highest first), each resting order's side, price and shares left (to take a fill or a cancel
off the right level), the last trade, and the sequence of the last event of the symbol. Events
(protos/casemesh/trading/v1/engine.proto ``EngineEvent``):

- ``accepted`` arrives as submitted, before its trades. The order is held aside as the *incoming* order, not in the
  book, while it can still trade: a limit order that does not cross the other side (a buy below the best ask, a sell
  above the best bid, or that side empty) rests at once; one that crosses rests once its trades have taken it out of
  crossing (the engine's price-time matching, services/trading/engine/book.py: the taker trades while it crosses) or
  is gone when filled. A market order never rests (its rest is cancelled by the next event). So the published book
  is never crossed, and each event's book is the engine's after that event;
- ``trade`` takes its shares off the maker's level (removing the maker when filled) and off the incoming order;
- ``cancelled`` takes the order's shares left off its level (or drops the incoming market order's rest).

Any other event of the symbol first settles a still-incoming order (rests a limit order's shares left), so the books
end right even if the engine's matching ever differed from the rule above. Unknown order ids are ignored: a bad event
never raises half-applied.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from itertools import islice

from sortedcontainers import SortedDict

from casemesh.trading.v1 import trading_pb2

BUY = trading_pb2.SIDE_BUY
LIMIT = trading_pb2.ORDER_TYPE_LIMIT

#: One side's top levels: ``((price_minor, shares, orders), ...)``, best first.
Levels = tuple[tuple[int, int, int], ...]


@dataclass(slots=True)
class _Incoming:
    """The order whose trades are being applied: not in the book yet (it may still trade)."""

    order_id: str
    side: int
    price: int
    left: int
    limit: bool


class SymbolBook:
    """One symbol's aggregated book (module docstring). ``sequence``: the last event of the symbol applied."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.sequence = 0
        self.last_trade: trading_pb2.Trade | None = None
        self.bids: SortedDict = SortedDict(operator.neg)  # price -> [shares, orders], highest first
        self.asks: SortedDict = SortedDict()  # lowest first
        self._resting: dict[str, list] = {}  # order_id -> [side, price, shares left]
        self._incoming: _Incoming | None = None

    # Reading.

    def top(self, depth: int) -> tuple[Levels, Levels]:
        """The best ``depth`` levels per side, ``(bids, asks)``, best first."""
        return (tuple((p, q, n) for p, (q, n) in islice(self.bids.items(), depth)),
                tuple((p, q, n) for p, (q, n) in islice(self.asks.items(), depth)))

    def best(self, side: int) -> tuple[int, int, int] | None:
        """The best level of ``side`` (SIDE_BUY: the bid) as ``(price_minor, shares, orders)``, or None."""
        levels = self.bids if side == BUY else self.asks
        if not levels:
            return None
        price, (shares, orders) = levels.peekitem(0)
        return price, shares, orders

    # Events.

    def accepted(self, order: trading_pb2.Order, sequence: int) -> None:
        self._settle()
        incoming = _Incoming(order.order_id, order.side, order.price_minor, order.quantity,
                             order.type == LIMIT)
        if incoming.limit and not self._crosses(incoming):
            self._rest(incoming)
        else:
            self._incoming = incoming
        self.sequence = sequence

    def trade(self, trade: trading_pb2.Trade, sequence: int) -> None:
        incoming = self._incoming
        if incoming is not None and incoming.order_id != trade.taker_order_id:
            self._settle()
            incoming = None
        self._take(trade.maker_order_id, trade.quantity)
        if incoming is not None:
            incoming.left -= trade.quantity
            if incoming.left <= 0:
                self._incoming = None
            elif incoming.limit and not self._crosses(incoming):
                self._incoming = None
                self._rest(incoming)
        else:
            self._take(trade.taker_order_id, trade.quantity)
        self.last_trade = trade
        self.sequence = sequence

    def cancelled(self, order: trading_pb2.Order, sequence: int) -> None:
        incoming = self._incoming
        if incoming is not None and incoming.order_id == order.order_id:
            self._incoming = None
        else:
            self._settle()
            resting = self._resting.get(order.order_id)
            if resting is not None:
                self._take(order.order_id, resting[2])
        self.sequence = sequence

    # Bookkeeping.

    def _crosses(self, order: _Incoming) -> bool:
        if order.side == BUY:
            return bool(self.asks) and self.asks.peekitem(0)[0] <= order.price
        return bool(self.bids) and self.bids.peekitem(0)[0] >= order.price

    def _settle(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is not None and incoming.limit and incoming.left > 0:
            self._rest(incoming)

    def _rest(self, order: _Incoming) -> None:
        levels = self.bids if order.side == BUY else self.asks
        level = levels.get(order.price)
        if level is None:
            levels[order.price] = [order.left, 1]
        else:
            level[0] += order.left
            level[1] += 1
        self._resting[order.order_id] = [order.side, order.price, order.left]

    def _take(self, order_id: str, shares: int) -> None:
        """Take ``shares`` off a resting order (out of the book when none is left)."""
        resting = self._resting.get(order_id)
        if resting is None:
            return
        side, price, left = resting
        shares = min(shares, left)
        levels = self.bids if side == BUY else self.asks
        level = levels[price]
        level[0] -= shares
        if shares == left:
            del self._resting[order_id]
            level[1] -= 1
            if level[1] == 0:
                del levels[price]
        else:
            resting[2] = left - shares


class Books:
    """Every symbol's :class:`SymbolBook`, created at its first event; ``sequence`` and ``at_unix_ns``: the last
    event applied (any symbol)."""

    def __init__(self) -> None:
        self.books: dict[str, SymbolBook] = {}
        self.sequence = 0
        self.at_unix_ns = 0

    def get(self, symbol: str) -> SymbolBook | None:
        return self.books.get(symbol)

    def apply(self, event) -> SymbolBook | None:
        """Apply one ``EngineEvent``; the book it changed (None for an event of no kind)."""
        kind = event.WhichOneof("kind")
        if kind is None:
            book = None
        else:
            data = getattr(event, kind)
            book = self.books.get(data.symbol)
            if book is None:
                book = self.books[data.symbol] = SymbolBook(data.symbol)
            getattr(book, kind)(data, event.sequence)
        self.sequence = event.sequence
        self.at_unix_ns = event.at_unix_ns
        return book
