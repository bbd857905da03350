"""Every fill respects price-time priority: hypothesis drives the matching engine (services/trading/engine) with
random sequences of limit orders, market orders, cancels and retries over one symbol, small price and quantity
ranges (so orders cross, queue at one price and fill partially), and checks each answer, every trade and the final
book against a deliberately simple reference matcher written here: a flat list of resting orders, and for each
incoming order, repeatedly, the best counter-order by sort key (price, acceptance order). Then a new engine on the
same log must rebuild exactly the same book and orders (replay applies the recorded trades, never re-matches)."""

from __future__ import annotations

import asyncio
import base64
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from casemesh.services.runtime.errors import FailedPrecondition
from casemesh.services.trading.engine.engine import MatchingEngine
from casemesh.services.trading.engine.settings import EngineSettings
from casemesh.trading.v1 import engine_pb2, trading_pb2

BUY, SELL = trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL
LIMIT, MARKET = trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET
FILLED, CANCELLED = trading_pb2.ORDER_STATUS_FILLED, trading_pb2.ORDER_STATUS_CANCELLED
SYMBOL = "XYZ"


def order_id(number: int) -> str:
    return "ord_" + base64.b32encode(number.to_bytes(15, "big")).decode().lower()


@dataclass
class RefOrder:
    order_id: str
    side: int
    price: int
    quantity: int
    accepted: int  # acceptance order: the time priority
    filled: int = 0
    cancelled: bool = False

    @property
    def open(self) -> int:
        return self.quantity - self.filled

    def status(self) -> int:
        if self.cancelled:
            return CANCELLED
        if self.filled == self.quantity:
            return FILLED
        return trading_pb2.ORDER_STATUS_PARTIALLY_FILLED if self.filled else trading_pb2.ORDER_STATUS_NEW


class ReferenceMatcher:
    """A flat list of resting orders; an incoming order trades, again and again, with the best counter-order: the
    lowest (price, accepted) ask for a buy, the highest price then lowest accepted bid for a sell, while it crosses."""

    def __init__(self) -> None:
        self.resting: list[RefOrder] = []
        self.orders: dict[str, RefOrder] = {}
        self.accepted = 0

    def submit(self, oid: str, side: int, kind: int, price: int, quantity: int) -> list[tuple[str, int, int]]:
        self.accepted += 1
        taker = RefOrder(oid, side, price, quantity, self.accepted)
        self.orders[oid] = taker
        fills = []
        while taker.open:
            if side == BUY:
                counter = [o for o in self.resting if o.side == SELL and (kind == MARKET or o.price <= price)]
                best = min(counter, key=lambda o: (o.price, o.accepted), default=None)
            else:
                counter = [o for o in self.resting if o.side == BUY and (kind == MARKET or o.price >= price)]
                best = min(counter, key=lambda o: (-o.price, o.accepted), default=None)
            if best is None:
                break
            shares = min(best.open, taker.open)
            best.filled += shares
            taker.filled += shares
            fills.append((best.order_id, best.price, shares))
            if not best.open:
                self.resting.remove(best)
        if taker.open:
            if kind == LIMIT:
                self.resting.append(taker)
            else:
                taker.cancelled = True
        return fills

    def cancel(self, oid: str) -> None:
        ref = self.orders[oid]
        ref.cancelled = True
        self.resting.remove(ref)

    def book(self, side: int) -> list[tuple[str, int]]:
        """Resting orders of ``side`` in priority order: (order_id, open shares)."""
        orders = [o for o in self.resting if o.side == side]
        orders.sort(key=(lambda o: (-o.price, o.accepted)) if side == BUY else (lambda o: (o.price, o.accepted)))
        return [(o.order_id, o.open) for o in orders]

    def levels(self, side: int) -> list[tuple[int, int, int]]:
        levels: dict[int, list[int]] = {}
        for o in self.resting:
            if o.side == side:
                level = levels.setdefault(o.price, [0, 0])
                level[0] += o.open
                level[1] += 1
        return [(price, q, n) for price, (q, n) in sorted(levels.items(), reverse=side == BUY)]


limit_orders = st.tuples(st.just("limit"), st.sampled_from((BUY, SELL)), st.integers(95, 105), st.integers(1, 10))
market_orders = st.tuples(st.just("market"), st.sampled_from((BUY, SELL)), st.just(0), st.integers(1, 15))
cancels = st.tuples(st.just("cancel"), st.integers(0, 60))
retries = st.tuples(st.just("retry"), st.integers(0, 60))
operations = st.lists(st.one_of(limit_orders, limit_orders, limit_orders, market_orders, cancels, retries),
                      max_size=60)


def snapshot(engine: MatchingEngine) -> tuple:
    book = engine.books.get(SYMBOL)
    orders = {oid: (o.filled, o.status, o.accepted_sequence) for oid, o in engine.orders.items()}
    if book is None:
        return [], [], orders
    return ([(o.order_id, o.open_quantity) for o in book.resting_orders(BUY)],
            [(o.order_id, o.open_quantity) for o in book.resting_orders(SELL)], orders)


async def run(ops: list[tuple], folder: Path) -> None:
    engine = MatchingEngine(folder, EngineSettings(commit="per_order", gc_freeze_orders=0))
    await engine.open()
    reference = ReferenceMatcher()
    submitted: list[tuple[str, engine_pb2.SubmitOrderRequest]] = []
    sequence = 0
    for op in ops:
        if op[0] in ("limit", "market"):
            _, side, price, quantity = op
            kind = LIMIT if op[0] == "limit" else MARKET
            oid = order_id(len(submitted) + 1)
            request = engine_pb2.SubmitOrderRequest(order_id=oid, client_order_id=f"c{len(submitted)}",
                                                    account_id="acct", symbol=SYMBOL, side=side, type=kind,
                                                    price_minor=price, quantity=quantity)
            submitted.append((oid, request))
            answer = engine.submit(request)
            await answer.durable
            expected = reference.submit(oid, side, kind, price, quantity)
            trades = list(answer.response.trades)
            assert [(t.maker_order_id, t.price_minor, t.quantity) for t in trades] == expected
            sequence += 1  # the accepted event
            for trade in trades:
                sequence += 1
                assert (trade.sequence, trade.trade_id, trade.taker_order_id, trade.taker_side, trade.symbol) == (
                    sequence, f"{SYMBOL}-{sequence}", oid, side, SYMBOL)
            ref = reference.orders[oid]
            got = answer.response.order
            assert (got.filled_quantity, got.status) == (ref.filled, ref.status())
            if kind == MARKET and ref.open:
                sequence += 1  # the market order's rest, cancelled
        elif submitted:
            oid, request = submitted[op[1] % len(submitted)]
            ref = reference.orders[oid]
            if op[0] == "retry":
                again = engine.submit(request)
                await again.durable
                assert not again.response.trades
                assert (again.response.order.filled_quantity, again.response.order.status) == (ref.filled,
                                                                                              ref.status())
            elif ref.status() == FILLED:
                with pytest.raises(FailedPrecondition):
                    engine.cancel(oid, "acct")
            else:
                was_cancelled = ref.cancelled
                cancelled = engine.cancel(oid, "acct")
                await cancelled.durable
                if not was_cancelled:
                    reference.cancel(oid)
                    sequence += 1
                assert (cancelled.order.status, cancelled.order.filled_quantity) == (CANCELLED, ref.filled)
        assert engine.sequence == sequence
    book = await engine.get_book(SYMBOL, 0, include_orders=True)
    for side, levels, orders in ((BUY, book.bids, book.bid_orders), (SELL, book.asks, book.ask_orders)):
        assert [(o.order_id, o.quantity - o.filled_quantity) for o in orders] == reference.book(side)
        assert [(level.price_minor, level.quantity, level.order_count) for level in levels] == reference.levels(side)
    for oid, ref in reference.orders.items():
        held = engine.orders[oid]
        assert (held.filled, held.status) == (ref.filled, ref.status())
    before = snapshot(engine)
    await engine.close()

    rebuilt = MatchingEngine(folder, EngineSettings(gc_freeze_orders=0))
    await rebuilt.open()
    try:
        assert rebuilt.sequence == sequence
        assert snapshot(rebuilt) == before
    finally:
        await rebuilt.close()


@hypothesis_settings(max_examples=150, deadline=None)
@given(operations)
def test_every_fill_respects_price_time_priority(ops):
    with tempfile.TemporaryDirectory(prefix="trading-matching-") as folder:
        asyncio.run(run(ops, Path(folder)))


def test_reference_matcher_itself():
    """The reference on a hand-checked case: best price first, then time, at the maker's price."""
    reference = ReferenceMatcher()
    reference.submit("a", SELL, LIMIT, 101, 5)
    reference.submit("b", SELL, LIMIT, 100, 5)
    reference.submit("c", SELL, LIMIT, 100, 5)
    assert reference.submit("d", BUY, LIMIT, 101, 12) == [("b", 100, 5), ("c", 100, 5), ("a", 101, 2)]
    assert reference.book(SELL) == [("a", 3)]
    assert reference.submit("e", BUY, MARKET, 0, 9) == [("a", 101, 3)]
    assert reference.orders["e"].status() == CANCELLED
