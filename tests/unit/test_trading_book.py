"""The limit order book of services/trading/engine/book.py: price-time priority (best price first, FIFO at a price),
fills at the maker's price, partial fills on both sides, a limit order's rest resting and a market order's never,
cancel by id, aggregated levels and resting orders in priority order, and the replay helpers."""

from __future__ import annotations

import pytest

from casemesh.services.trading.engine.book import (
    BUY,
    CANCELLED,
    FILLED,
    LIMIT,
    MARKET,
    NEW,
    PARTIALLY_FILLED,
    SELL,
    Order,
    OrderBook,
)

_sequence = 0


def order(side: int, price: int, quantity: int, name: str = "", kind: int = LIMIT, account: str = "a") -> Order:
    global _sequence
    _sequence += 1
    return Order(name or f"o{_sequence}", f"c{_sequence}", account, "ABC", side, kind, price, quantity, _sequence, 0)


def submit(book: OrderBook, taker: Order) -> list[tuple[str, int, int]]:
    """Match ``taker``, rest a limit order's rest (as the engine does); fills as (maker id, shares, price)."""
    fills = book.match(taker)
    if taker.filled < taker.quantity and taker.type == LIMIT:
        book.rest(taker)
    elif taker.filled < taker.quantity:
        taker.status = CANCELLED
    return [(maker.order_id, shares, maker.price) for maker, shares in fills]


def test_no_cross_rests_both_sides_and_levels_aggregate():
    book = OrderBook("ABC")
    for side, price, quantity in ((BUY, 99, 10), (BUY, 99, 5), (BUY, 98, 7), (SELL, 101, 3), (SELL, 102, 4),
                                  (SELL, 101, 2)):
        assert submit(book, order(side, price, quantity)) == []
    assert book.levels(BUY) == [(99, 15, 2), (98, 7, 1)]
    assert book.levels(SELL) == [(101, 5, 2), (102, 4, 1)]
    assert book.levels(BUY, 1) == [(99, 15, 2)]
    assert book.levels(SELL, 5) == [(101, 5, 2), (102, 4, 1)]
    assert book.resting == 6
    assert book.best_bid().price == 99 and book.best_ask().price == 101
    assert [o.quantity for o in book.resting_orders(BUY)] == [10, 5, 7]
    assert [o.quantity for o in book.resting_orders(SELL)] == [3, 2, 4]


def test_fifo_at_a_level_and_fills_at_the_makers_price():
    book = OrderBook("ABC")
    first, second, third = order(SELL, 100, 5, "first"), order(SELL, 100, 5, "second"), order(SELL, 99, 2, "third")
    for maker in (first, second, third):
        submit(book, maker)
    taker = order(BUY, 105, 9, "taker")
    # the best price (99) first, then at 100 the earlier order first; every fill at the maker's price
    assert submit(book, taker) == [("third", 2, 99), ("first", 5, 100), ("second", 2, 100)]
    assert (taker.filled, taker.status) == (9, FILLED)
    assert (first.status, third.status) == (FILLED, FILLED)
    assert (second.filled, second.status) == (2, PARTIALLY_FILLED)
    assert book.levels(SELL) == [(100, 3, 1)]
    assert book.levels(BUY) == []
    assert book.resting == 1


def test_partial_fill_of_the_taker_rests_its_rest_at_its_limit():
    book = OrderBook("ABC")
    submit(book, order(BUY, 100, 4, "bid"))
    taker = order(SELL, 100, 10, "taker")
    assert submit(book, taker) == [("bid", 4, 100)]
    assert (taker.filled, taker.status) == (4, PARTIALLY_FILLED)
    assert book.levels(SELL) == [(100, 6, 1)] and book.levels(BUY) == []
    # a later buy at a better price still trades at the resting (maker's) price
    late = order(BUY, 103, 1, "late")
    assert submit(book, late) == [("taker", 1, 100)]
    assert book.levels(SELL) == [(100, 5, 1)]


def test_limit_stops_at_its_price():
    book = OrderBook("ABC")
    for price in (101, 102, 103):
        submit(book, order(SELL, price, 1, f"ask{price}"))
    taker = order(BUY, 102, 5, "taker")
    assert submit(book, taker) == [("ask101", 1, 101), ("ask102", 1, 102)]
    assert book.levels(BUY) == [(102, 3, 1)] and book.levels(SELL) == [(103, 1, 1)]
    seller = order(SELL, 103, 1, "seller")  # does not cross the 102 bid
    assert submit(book, seller) == []
    assert book.levels(SELL) == [(103, 2, 2)]


def test_market_order_sweeps_levels_and_its_rest_is_cancelled():
    book = OrderBook("ABC")
    submit(book, order(BUY, 100, 3, "b100"))
    submit(book, order(BUY, 90, 2, "b90"))
    market = order(SELL, 0, 10, "market", kind=MARKET)
    assert submit(book, market) == [("b100", 3, 100), ("b90", 2, 90)]
    assert (market.filled, market.status) == (5, CANCELLED)
    assert book.levels(BUY) == [] and book.levels(SELL) == [] and book.resting == 0
    empty = order(BUY, 0, 1, "empty", kind=MARKET)  # an empty other side: nothing trades
    assert submit(book, empty) == []
    assert (empty.filled, empty.status) == (0, CANCELLED)


def test_market_order_filled_exactly():
    book = OrderBook("ABC")
    submit(book, order(SELL, 100, 3, "a"))
    market = order(BUY, 0, 3, "m", kind=MARKET)
    assert submit(book, market) == [("a", 3, 100)]
    assert market.status == FILLED and book.resting == 0


def test_cancel_removes_by_id_and_keeps_the_others_priority():
    book = OrderBook("ABC")
    a, b, c = order(BUY, 100, 1, "a"), order(BUY, 100, 2, "b"), order(BUY, 100, 3, "c")
    for resting in (a, b, c):
        submit(book, resting)
    book.remove(b)
    assert book.levels(BUY) == [(100, 4, 2)]
    assert [o.order_id for o in book.resting_orders(BUY)] == ["a", "c"]
    assert submit(book, order(SELL, 100, 2)) == [("a", 1, 100), ("c", 1, 100)]
    book.remove(c)  # partially filled: its open shares leave the level, and the empty level goes
    assert book.levels(BUY) == [] and book.resting == 0 and not book.bids
    with pytest.raises(KeyError):
        book.remove(c)


def test_fill_resting_applies_a_recorded_fill():
    book = OrderBook("ABC")
    maker = order(SELL, 100, 5, "maker")
    book.rest(maker)
    book.fill_resting(maker, 2)
    assert (maker.filled, maker.status) == (2, PARTIALLY_FILLED)
    assert book.levels(SELL) == [(100, 3, 1)]
    book.fill_resting(maker, 3)
    assert maker.status == FILLED and book.levels(SELL) == [] and book.resting == 0


def test_order_to_proto():
    resting = order(BUY, 100, 5, "x", account="acct")
    proto = resting.to_proto()
    assert (proto.order_id, proto.account_id, proto.symbol, proto.side, proto.type, proto.price_minor,
            proto.quantity, proto.filled_quantity, proto.status, proto.accepted_sequence) == (
        "x", "acct", "ABC", BUY, LIMIT, 100, 5, 0, NEW, resting.accepted_sequence)
    assert resting.open_quantity == 5


def test_a_deep_level_is_consumed_in_order():
    book = OrderBook("ABC")
    makers = [order(SELL, 100, 1, f"m{i}") for i in range(2_000)]
    for maker in makers:
        book.rest(maker)
    for maker in makers[:1_500:3]:  # cancels in the middle keep the rest in order
        book.remove(maker)
    taker = order(BUY, 100, 2_000, "taker")
    fills = submit(book, taker)
    assert [maker_id for maker_id, _, _ in fills] == [m.order_id for i, m in enumerate(makers)
                                                     if not (i < 1_500 and i % 3 == 0)]
    assert book.levels(BUY) == [(100, 500, 1)]
