"""What the exchange must never do, checked by the client side: pure checks of answers, orders read back and books.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data"): an exchange exists to match orders by price-time priority without ever losing an acknowledged order,
trading an order twice or showing a book that is not the one it matches against. Each function returns a list of
problems in words (empty: consistent); the journeys and the end-of-run checks (:mod:`.end_checks`) turn them into
samples with :func:`record`.

- **An answer is the order sent** (:func:`answer_problems`, every PlaceOrder answer): the order carries what was asked
  (client order id, account, symbol, side, type, price, quantity), an exchange order id (``ord_`` and 24 base32
  characters), an accepted sequence number, and a status its filled shares allow (:func:`status_problems`: NEW
  with none, PARTIALLY_FILLED with some, FILLED with all, CANCELLED with fewer than all; a market order never rests).
  Its trades are its own as the taker (symbol, taker id and side), each ``<symbol>-<sequence>`` with rising
  sequences, at prices no worse than its limit and, by price priority, never better than an earlier trade's (a buy
  pays the lowest asks first: prices never fall; a sell never rise), and add up to its filled shares: the engine
  answers the order as it was once matched. A retry's answer has no trades when the order was held already ("as it
  is now": its fills are the first send's, judged by ``fills_match_trades``), or all of them when the first send
  never reached the engine. That an order never trades twice is judged at the end, against the market data.
- **A cancel answer** (:func:`cancel_problems`): the same order, CANCELLED, with at least the shares already known
  filled.
- **An order read back** (:func:`read_back_problems`, GetOrder): the order placed, a consistent status, and never
  fewer filled shares than already known (fills are never undone).
- **A book** (:func:`book_problems`, MatchingEngineService.GetBook with its orders): bids strictly falling, asks
  strictly rising, not crossed (best bid below best ask); every resting order a live limit order of that book's side
  and symbol with shares left, in priority order (best price first, then the earliest ``accepted_sequence``), ids
  unique; and every level exactly the sum of the orders resting at its price (shares left, order count).
- **The market data's top equals the book's** (:func:`top_problems`): the levels a stream last sent for a symbol are
  the book's top levels, when both are at the same point of the log (:mod:`.end_checks` says when).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from casemesh.services.trading.contract import is_order_id, trade_id
from casemesh.trading.v1 import trading_pb2

from .market_data import DATA_LOSS, OK, Level, SymbolView, levels
from .prices import BUY, SELL

log = logging.getLogger("casemesh.workloads.trading")

#: The measure of answers and read-backs, and that of books.
ORDER_INTEGRITY = "order_integrity"
BOOK_INTEGRITY = "book_integrity"
FILLS_MATCH_TRADES = "fills_match_trades"

T = trading_pb2
RESTING = frozenset({T.ORDER_STATUS_NEW, T.ORDER_STATUS_PARTIALLY_FILLED})
TERMINAL = frozenset({T.ORDER_STATUS_FILLED, T.ORDER_STATUS_CANCELLED})
#: The fields an order must carry as asked (PlaceOrderRequest and Order share their names).
ASKED = ("client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")


def status_name(status: int) -> str:
    """``FILLED`` for ORDER_STATUS_FILLED (the number itself when unknown)."""
    try:
        return T.OrderStatus.Name(status).removeprefix("ORDER_STATUS_")
    except ValueError:
        return str(status)


def as_asked(asked: Any, order: trading_pb2.Order) -> list[str]:
    """Problems of ``order`` against what was asked (a PlaceOrderRequest, or the workload's record of one)."""
    return [f"{name} {getattr(order, name)!r}, asked {getattr(asked, name)!r}" for name in ASKED
            if getattr(order, name) != getattr(asked, name)]


def status_problems(order: trading_pb2.Order) -> list[str]:
    """Problems of an order's own fields: its id, its accepted sequence, its status against its filled shares."""
    problems = []
    if not is_order_id(order.order_id):
        problems.append(f"order id {order.order_id!r} is not ord_ and 24 characters of [a-z2-7]")
    if order.accepted_sequence <= 0:
        problems.append("no accepted_sequence")
    quantity, filled, status = order.quantity, order.filled_quantity, order.status
    if not 0 <= filled <= quantity:
        problems.append(f"{filled} of {quantity} shares filled")
    wrong = {
        T.ORDER_STATUS_NEW: filled != 0,
        T.ORDER_STATUS_PARTIALLY_FILLED: not 0 < filled < quantity,
        T.ORDER_STATUS_FILLED: filled != quantity,
        T.ORDER_STATUS_CANCELLED: filled >= quantity,
    }.get(status, True)
    if wrong:
        problems.append(f"status {status_name(status)} with {filled} of {quantity} shares filled")
    if order.type == T.ORDER_TYPE_MARKET and status in RESTING:
        problems.append(f"a market order {status_name(status)}: market orders never rest")
    return problems


def trade_problems(order: trading_pb2.Order, trades: Sequence[trading_pb2.Trade]) -> list[str]:
    """Problems of a taker's trades against its order (module docstring)."""
    problems = []
    previous: trading_pb2.Trade | None = None
    for trade in trades:
        where = f"trade {trade.trade_id}"
        if trade.symbol != order.symbol or trade.taker_order_id != order.order_id or trade.taker_side != order.side:
            problems.append(f"{where} is {trade.symbol} {trade.taker_order_id} side {trade.taker_side}, not this order's")
        if trade.maker_order_id == order.order_id:
            problems.append(f"{where} matched the order with itself")
        if trade.quantity <= 0:
            problems.append(f"{where} of {trade.quantity} shares")
        if trade.trade_id != trade_id(trade.symbol, trade.sequence):
            problems.append(f"{where} at sequence {trade.sequence} is not {trade_id(trade.symbol, trade.sequence)}")
        if order.type == T.ORDER_TYPE_LIMIT and (
                (order.side == BUY and trade.price_minor > order.price_minor)
                or (order.side == SELL and trade.price_minor < order.price_minor)):
            problems.append(f"{where} at {trade.price_minor}, through the limit {order.price_minor}")
        if previous is not None:
            if trade.sequence <= previous.sequence:
                problems.append(f"{where} at sequence {trade.sequence} after {previous.sequence}")
            if (order.side == BUY and trade.price_minor < previous.price_minor) or (
                    order.side == SELL and trade.price_minor > previous.price_minor):
                problems.append(f"{where} at {trade.price_minor} after a trade at {previous.price_minor}: a better "
                                "price was left for a worse one (price priority)")
        previous = trade
    return problems


def answer_problems(asked: Any, order: trading_pb2.Order, trades: Sequence[trading_pb2.Trade], retried: bool
                    ) -> list[str]:
    """Problems of a PlaceOrder answer (module docstring); ``retried``: the answer is a retry's."""
    problems = as_asked(asked, order) + status_problems(order) + trade_problems(order, trades)
    traded = sum(t.quantity for t in trades)
    if (trades or not retried) and traded != order.filled_quantity:
        problems.append(f"{order.filled_quantity} shares filled, its trades {traded}")
    return problems


def cancel_problems(asked: Any, order_id: str, known_filled: int, order: trading_pb2.Order) -> list[str]:
    """Problems of a CancelOrder answer for ``order_id``, of which ``known_filled`` shares were known filled."""
    problems = as_asked(asked, order) + status_problems(order)
    if order.order_id != order_id:
        problems.append(f"cancelling {order_id} answered {order.order_id}")
    if order.status != T.ORDER_STATUS_CANCELLED:
        problems.append(f"cancelled, answered {status_name(order.status)}")
    if order.filled_quantity < known_filled:
        problems.append(f"{order.filled_quantity} shares filled, {known_filled} already known")
    return problems


def read_back_problems(asked: Any, order_id: str, known_filled: int, order: trading_pb2.Order) -> list[str]:
    """Problems of an order read back (GetOrder) against what was placed and the shares already known filled."""
    problems = as_asked(asked, order) + status_problems(order)
    if order.order_id != order_id:
        problems.append(f"reading {order_id} returned {order.order_id}")
    if order.filled_quantity < known_filled:
        problems.append(f"{order.filled_quantity} shares filled, {known_filled} already known: a fill undone")
    return problems


def aggregate(orders: Iterable[trading_pb2.Order]) -> dict[int, tuple[int, int]]:
    """Resting orders by price: (shares left, order count)."""
    by_price: dict[int, tuple[int, int]] = {}
    for order in orders:
        shares, count = by_price.get(order.price_minor, (0, 0))
        by_price[order.price_minor] = (shares + order.quantity - order.filled_quantity, count + 1)
    return by_price


def _side_problems(symbol: str, side: int, book_levels: Sequence[trading_pb2.BookLevel],
                   orders: Sequence[trading_pb2.Order]) -> list[str]:
    name = "bid" if side == BUY else "ask"
    problems = []
    prices = [level.price_minor for level in book_levels]
    ordered = sorted(prices, reverse=side == BUY)
    if prices != ordered or len(set(prices)) != len(prices):
        problems.append(f"{name} levels not strictly {'falling' if side == BUY else 'rising'}: {prices}")
    for level in book_levels:
        if level.quantity <= 0 or level.order_count <= 0:
            problems.append(f"{name} level {level.price_minor} holds {level.quantity} shares in {level.order_count} "
                            "orders")
    for order in orders:
        if order.symbol != symbol or order.side != side or order.type != T.ORDER_TYPE_LIMIT \
                or order.status not in RESTING or order.filled_quantity >= order.quantity:
            problems.append(f"resting {name} {order.order_id}: {order.symbol} side {order.side} type {order.type} "
                            f"{status_name(order.status)} {order.filled_quantity}/{order.quantity}")
    keys = [(-o.price_minor if side == BUY else o.price_minor, o.accepted_sequence) for o in orders]
    if keys != sorted(keys):
        problems.append(f"resting {name}s out of price-time priority")
    expected = aggregate(orders)
    shown = {level.price_minor: (level.quantity, level.order_count) for level in book_levels}
    if shown != expected:
        wrong = sorted(p for p in set(shown) | set(expected) if shown.get(p) != expected.get(p))
        problems.append(f"{name} levels are not the sums of the resting orders at {wrong[:5]}: levels "
                        f"{[shown.get(p) for p in wrong[:5]]}, orders {[expected.get(p) for p in wrong[:5]]}")
    return problems


def book_problems(symbol: str, book: Any) -> list[str]:
    """Problems of a GetBookResponse of ``symbol`` asked with all levels and its orders (module docstring)."""
    problems = _side_problems(symbol, BUY, book.bids, book.bid_orders)
    problems += _side_problems(symbol, SELL, book.asks, book.ask_orders)
    if book.bids and book.asks and book.bids[0].price_minor >= book.asks[0].price_minor:
        problems.append(f"crossed: best bid {book.bids[0].price_minor} >= best ask {book.asks[0].price_minor}")
    ids = [o.order_id for o in (*book.bid_orders, *book.ask_orders)]
    if len(set(ids)) != len(ids):
        problems.append("an order rests twice")
    return problems


def top_problems(book: Any, view: SymbolView, depth: int) -> list[str]:
    """Problems of a stream's last levels of a symbol against the book's top ``depth`` levels (the same point of the
    log)."""
    problems = []
    for name, shown, actual in (("bids", view.bids, levels(book.bids[:depth])),
                                ("asks", view.asks, levels(book.asks[:depth]))):
        if shown != actual:
            problems.append(f"market data {name} {_short(shown)} at {view.sequence}, the book's {_short(actual)} at "
                            f"{book.sequence}")
    return problems


def _short(book_levels: tuple[Level, ...]) -> str:
    return "[" + ", ".join(f"{p}x{q}/{n}" for p, q, n in book_levels[:5]) + (", ...]" if len(book_levels) > 5 else "]")


def record(observe: Callable[[str, str], None], measure: str, problems: list[str], what: str) -> str:
    """One sample of ``measure``: OK without ``problems``, DATA_LOSS (and a warning naming ``what``) with; returns the
    code. ``observe(measure, code)`` records it."""
    if problems:
        log.warning("trading: %s broken for %s: %s", measure, what, "; ".join(problems))
        observe(measure, DATA_LOSS)
        return DATA_LOSS
    observe(measure, OK)
    return OK
