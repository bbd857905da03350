"""The trading workload without the real services: prices within the band and never crossing, the retry schedule,
the ladder and the seeding, the market data stream checks, the invariant checks given good and broken answers and
books, the journeys and the end-of-run checks against a fake exchange (in memory, price-time matching, a market data
fan-out) that can lose answers, hide a trade or corrupt a book, the harness's driver over real gRPC against it, the
profile and its SLOs, and that the workload imports only the contracts."""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.idempotent_retry import RETRIED, backoff_s, send
from casemesh.harness.workloads.trading import MEASURES, WORKLOAD, connect, disconnect
from casemesh.harness.workloads.trading.end_checks import finish
from casemesh.harness.workloads.trading.invariants import (
    BOOK_INTEGRITY,
    FILLS_MATCH_TRADES,
    ORDER_INTEGRITY,
    answer_problems,
    book_problems,
    cancel_problems,
    read_back_problems,
    status_problems,
    top_problems,
)
from casemesh.harness.workloads.trading.journeys import (
    ORDER_RETRIED,
    OrderRetryParams,
    QueryParams,
    QuoteParams,
    SubscribeParams,
    TakeParams,
    cancel,
    cancel_replace,
    query,
    quote,
    subscribe,
    take,
)
from casemesh.harness.workloads.trading.market_data import (
    DATA_LOSS,
    FIRST_MESSAGE,
    FRESHNESS,
    NOT_SEEN,
    OK,
    ORDER_TO_TRADE_VISIBLE,
    SEQUENCE,
    StreamView,
    SymbolView,
)
from casemesh.harness.workloads.trading.prices import (
    BUY,
    SELL,
    Instrument,
    Top,
    marketable_price,
    passive_price,
    thinner_side,
)
from casemesh.harness.workloads.trading.seeding import (
    SEED_RETRY_S,
    Placed,
    SeedParams,
    ladder,
    ladder_account,
    seed,
    seed_call,
)
from casemesh.harness.workloads.trading.traders import Trading
from casemesh.services.catalog import SERVICES
from casemesh.services.trading.contract import is_id, is_order_id
from casemesh.trading.v1 import engine_pb2, marketdata_pb2, orders_pb2, trading_pb2

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "trading"
TRADING_SERVICES = ("trading-engine", "trading-gateway", "trading-marketdata")
T = trading_pb2
LIMIT, MARKET = T.ORDER_TYPE_LIMIT, T.ORDER_TYPE_MARKET


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# prices ---------------------------------------------------------------------------------------------------------------

AAA = Instrument("AAA", 1, 10_000)
BBB = Instrument("BBB", 5, 50_000)


def test_the_band_is_centred_on_the_last_trade_else_the_reference():
    top = Top(AAA)
    assert top.band(10) == (9_000, 11_000)
    top.trade(5, 12_000)
    assert top.centre == 12_000 and top.band(8) == (11_040, 12_960)
    top.trade(3, 1)  # older than the last trade known: ignored
    assert top.last == 12_000
    assert Top(BBB).band(10) == (45_000, 55_000)


@settings(max_examples=300, deadline=None)
@given(bid=st.one_of(st.none(), st.integers(8_000, 12_000)), spread=st.integers(1, 300),
       ask_there=st.booleans(), last=st.one_of(st.none(), st.integers(9_000, 11_000)),
       ticks=st.integers(0, 20), side=st.sampled_from([BUY, SELL]), tick=st.sampled_from([1, 5, 25]))
def test_passive_prices_never_cross_and_every_price_is_on_the_tick_within_the_band(
        bid: int | None, spread: int, ask_there: bool, last: int | None, ticks: int, side: int, tick: int):
    top = Top(Instrument("X", tick, 10_000))
    bid = None if bid is None else bid // tick * tick
    ask = (bid + spread * tick if bid is not None else 10_000 + spread * tick) if ask_there else None
    top.depth(1, [(bid, 100)] if bid is not None else [], [(ask, 100)] if ask is not None else [])
    if last is not None:
        top.trade(1, last // tick * tick)
    low, high = top.band(8)
    price = passive_price(top, side, ticks, 8)
    assert price % tick == 0 and low <= price <= high
    # Passive: never at or through the other side's best when the band leaves room on this side of it.
    if side == BUY and top.ask is not None and top.ask - tick >= low:
        assert price < top.ask
    if side == SELL and top.bid is not None and top.bid + tick <= high:
        assert price > top.bid
    taker = marketable_price(top, side, ticks, 8)
    assert taker % tick == 0 and low <= taker <= high


def test_marketable_prices_go_through_the_other_side_and_makers_refill_the_thinner_side():
    top = Top(AAA)
    top.depth(2, [(9_990, 300), (9_989, 100)], [(10_010, 100)])
    assert marketable_price(top, BUY, 2, 8) == 10_012 and marketable_price(top, SELL, 2, 8) == 9_988
    assert passive_price(top, BUY, 0, 8) == 9_990 and passive_price(top, SELL, 3, 8) == 10_013
    assert thinner_side(top) == SELL  # 100 shares asked against 400 bid
    empty = Top(AAA)
    assert passive_price(empty, BUY, 0, 8) == 9_999 and passive_price(empty, SELL, 0, 8) == 10_001
    assert marketable_price(empty, BUY, 0, 8) == 10_000


# retries --------------------------------------------------------------------------------------------------------------

async def test_an_order_call_is_resent_quickly_on_transient_codes_and_a_final_one_ends_it():
    answers: list[Any] = [rpc_error(grpc.StatusCode.UNAVAILABLE), rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), "ok"]
    seen: list[Any] = []
    sleeps: list[float] = []

    async def call(service: str, method: str, request: Any) -> Any:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    params = OrderRetryParams()
    assert (params.max_attempts, params.backoff_base_ms, params.backoff_cap_ms, params.retry_within_s) == (
        3, 10.0, 100.0, None)  # a trading client's: 3 sends within a fraction of a second, no time bound
    request = orders_pb2.PlaceOrderRequest(client_order_id="c1")
    outcome = await send(call, "trading-gateway", "PlaceOrder", request, params, random.Random(1),
                         retried=ORDER_RETRIED, sleep=sleep)
    assert outcome.response == "ok" and outcome.attempts == 3 and all(r is request for r in seen)
    assert outcome.codes == ["UNAVAILABLE", "DEADLINE_EXCEEDED", "OK"]
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 0.01 and 0 <= sleeps[1] <= 0.02
    assert {c.name for c in ORDER_RETRIED} == {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}
    assert ORDER_RETRIED == RETRIED - {grpc.StatusCode.ABORTED}

    for code in (grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.ABORTED):  # final for an order call
        async def refused(service: str, method: str, request: Any, code: grpc.StatusCode = code) -> Any:
            raise rpc_error(code, "price_band")

        outcome = await send(refused, "s", "M", request, params, random.Random(1), retried=ORDER_RETRIED, sleep=sleep)
        assert outcome.error is not None and outcome.error.code() == code and outcome.attempts == 1
    assert len(sleeps) == 2

    async def down(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE)

    readings = iter(range(0, 100_000, 1_000))  # every reading 1,000 s later: no time bound stops the sends
    outcome = await send(down, "s", "M", request, params, random.Random(1), retried=ORDER_RETRIED,
                         clock=lambda: next(readings), sleep=sleep)
    assert outcome.codes == ["UNAVAILABLE"] * 3 and len(sleeps) == 4
    with pytest.raises(ValidationError, match="backoff_base_ms"):
        OrderRetryParams(backoff_base_ms=500, backoff_cap_ms=100)
    assert all(0 <= backoff_s(n, 0.01, 0.1, random.Random(n)) <= 0.1 for n in range(1, 40))


# the ladder -----------------------------------------------------------------------------------------------------------

def test_the_ladder_is_two_sided_around_the_centre_on_the_tick_and_inside_the_band():
    params = SeedParams(ladder_levels=10, ladder_orders_per_level=3, ladder_step_ticks=2)
    top = Top(BBB)
    requests = ladder("0badcafe", top, params, random.Random(1))
    assert len(requests) == 60 and len({r.client_order_id for r in requests}) == 60
    bids = sorted({r.price_minor for r in requests if r.side == BUY}, reverse=True)
    asks = sorted({r.price_minor for r in requests if r.side == SELL})
    assert bids[0] == 50_000 - 5 and asks[0] == 50_000 + 5 and bids[1] == bids[0] - 10 and len(bids) == len(asks) == 10
    for r in requests:
        assert r.account_id == ladder_account("0badcafe", "BBB") and is_id(r.account_id) and is_id(r.client_order_id)
        assert r.type == LIMIT and r.price_minor % 5 == 0 and r.quantity % 100 == 0 and 100 <= r.quantity <= 500
    narrow = ladder("0badcafe", Top(Instrument("CCC", 1, 100)), SeedParams(ladder_levels=50), random.Random(1))
    assert all(92 <= r.price_minor <= 108 for r in narrow)  # levels outside the band are left out
    with pytest.raises(ValidationError, match="band_margin_pct"):
        SeedParams(price_band_pct=2, band_margin_pct=2)


# the market data stream checks ------------------------------------------------------------------------------------------

def md(symbol: str, sequence: int, kind: str, *, bids=(), asks=(), trade: trading_pb2.Trade | None = None,
       at_ns: int = 0) -> marketdata_pb2.StreamMarketDataResponse:
    message = marketdata_pb2.StreamMarketDataResponse(symbol=symbol, sequence=sequence, engine_at_unix_ns=at_ns)
    if kind == "trade":
        message.trade.CopyFrom(trade or trading_pb2.Trade(symbol=symbol, sequence=sequence))
    else:
        depth = trading_pb2.BookLevel
        getattr(message, kind).CopyFrom(marketdata_pb2.BookDepth(
            bids=[depth(price_minor=p, quantity=q, order_count=n) for p, q, n in bids],
            asks=[depth(price_minor=p, quantity=q, order_count=n) for p, q, n in asks]))
    return message


def test_a_stream_in_order_has_no_problems_and_each_break_is_named():
    view = StreamView(["AAA", "BBB"])
    assert view.apply(md("AAA", 10, "snapshot", bids=[(99, 100, 1)])) is None
    assert not view.complete
    assert view.apply(md("BBB", 10, "snapshot")) is None and view.complete
    assert view.apply(md("AAA", 11, "trade")) is None
    assert view.apply(md("AAA", 11, "depth", asks=[(101, 100, 1)])) is None  # the trade's own depth update
    assert view.apply(md("AAA", 14, "depth")) is None and view.problems == 0
    assert view.books["AAA"] == SymbolView(14, "depth", (), ())
    assert "a depth at 14 after a depth at 14" in view.apply(md("AAA", 14, "depth"))
    assert "a trade at 12 after a depth at 14" in view.apply(md("AAA", 12, "trade"))
    assert "a second snapshot" in view.apply(md("BBB", 20, "snapshot"))
    assert "not asked for" in view.apply(md("CCC", 20, "depth"))
    fresh = StreamView(["AAA"])
    assert "first message is a trade" in fresh.apply(md("AAA", 3, "trade"))
    assert "without an update" in fresh.apply(marketdata_pb2.StreamMarketDataResponse(symbol="AAA", sequence=9))
    assert view.problems == 4 and fresh.problems == 2 and fresh.books["AAA"].sequence == 3


# the invariant checks -------------------------------------------------------------------------------------------------

def order(**fields: Any) -> trading_pb2.Order:
    base = {"order_id": "ord_" + "a" * 24, "client_order_id": "c1", "account_id": "acct", "symbol": "AAA",
            "side": BUY, "type": LIMIT, "price_minor": 10_000, "quantity": 300, "filled_quantity": 0,
            "status": T.ORDER_STATUS_NEW, "accepted_sequence": 7, "accepted_at_unix_ns": 1}
    base.update(fields)
    return trading_pb2.Order(**base)


def trade(sequence: int, price: int, quantity: int, *, taker: str = "ord_" + "a" * 24, side: int = BUY
          ) -> trading_pb2.Trade:
    return trading_pb2.Trade(trade_id=f"AAA-{sequence}", symbol="AAA", price_minor=price, quantity=quantity,
                             maker_order_id=f"ord_{'m' * 23}{'b' if sequence % 2 else 'c'}", taker_order_id=taker,
                             taker_side=side, sequence=sequence)


REQUEST = orders_pb2.PlaceOrderRequest(client_order_id="c1", account_id="acct", symbol="AAA", side=BUY, type=LIMIT,
                                       price_minor=10_000, quantity=300)


def test_a_consistent_answer_has_no_problems():
    filled = order(filled_quantity=300, status=T.ORDER_STATUS_FILLED)
    assert answer_problems(REQUEST, filled, [trade(8, 9_990, 100), trade(9, 9_995, 200)], False) == []
    assert answer_problems(REQUEST, order(filled_quantity=100, status=T.ORDER_STATUS_PARTIALLY_FILLED), [], True) == []
    assert answer_problems(REQUEST, order(), [], False) == []
    market = orders_pb2.PlaceOrderRequest(client_order_id="c1", account_id="acct", symbol="AAA", side=SELL,
                                          type=MARKET, quantity=300)
    rest_cancelled = order(side=SELL, type=MARKET, price_minor=0, filled_quantity=100, status=T.ORDER_STATUS_CANCELLED)
    assert answer_problems(market, rest_cancelled, [trade(8, 10_000, 100, side=SELL)], False) == []


def test_broken_answers_are_named():
    def problems(answer: trading_pb2.Order, trades: list, retried: bool = False) -> str:
        return "; ".join(answer_problems(REQUEST, answer, trades, retried))

    assert "price_minor 10001, asked 10000" in problems(order(price_minor=10_001), [])
    assert "status NEW with 100 of 300" in problems(order(filled_quantity=100), [trade(8, 9_990, 100)])
    assert "through the limit" in problems(order(filled_quantity=100, status=T.ORDER_STATUS_PARTIALLY_FILLED),
                                           [trade(8, 10_010, 100)])
    assert "price priority" in problems(order(filled_quantity=200, status=T.ORDER_STATUS_PARTIALLY_FILLED),
                                        [trade(8, 9_995, 100), trade(9, 9_990, 100)])
    # A retry's answer: the order as it is now without trades, or a first processing with all of them.
    assert problems(order(filled_quantity=100, status=T.ORDER_STATUS_PARTIALLY_FILLED), [trade(8, 9_990, 100)], True) == ""
    assert "200 shares filled, its trades 100" in problems(
        order(filled_quantity=200, status=T.ORDER_STATUS_PARTIALLY_FILLED), [trade(8, 9_990, 100)], True)
    assert "200 shares filled, its trades 100" in problems(
        order(filled_quantity=200, status=T.ORDER_STATUS_PARTIALLY_FILLED), [trade(8, 9_990, 100)])
    assert "not this order's" in problems(order(filled_quantity=100, status=T.ORDER_STATUS_PARTIALLY_FILLED),
                                          [trade(8, 9_990, 100, taker="ord_" + "z" * 24)])
    assert "not ord_" in problems(order(order_id="ord_1"), [])
    assert "market orders never rest" in "; ".join(status_problems(order(type=MARKET, price_minor=0)))
    assert "CANCELLED with 300 of 300" in "; ".join(status_problems(order(status=T.ORDER_STATUS_CANCELLED,
                                                                          filled_quantity=300)))
    placed = Placed("ord_" + "a" * 24, "c1", "acct", "AAA", BUY, LIMIT, 10_000, 300)
    assert cancel_problems(placed, placed.order_id, 0, order(status=T.ORDER_STATUS_CANCELLED)) == []
    assert "answered NEW" in "; ".join(cancel_problems(placed, placed.order_id, 0, order()))
    assert "a fill undone" in "; ".join(read_back_problems(placed, placed.order_id, 200, order(
        filled_quantity=100, status=T.ORDER_STATUS_PARTIALLY_FILLED)))


def book(bids: list[tuple[int, int, int]], asks: list[tuple[int, int, int]], bid_orders: list, ask_orders: list,
         sequence: int = 50) -> engine_pb2.GetBookResponse:
    level = trading_pb2.BookLevel
    return engine_pb2.GetBookResponse(
        sequence=sequence, bids=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in bids],
        asks=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in asks], bid_orders=bid_orders,
        ask_orders=ask_orders)


def resting(n: int, side: int, price: int, quantity: int, filled: int = 0, sequence: int | None = None
            ) -> trading_pb2.Order:
    return order(order_id=f"ord_{'r' * 23}{'abcdefgh'[n]}", side=side, price_minor=price, quantity=quantity,
                 filled_quantity=filled, accepted_sequence=sequence or n + 1,
                 status=T.ORDER_STATUS_PARTIALLY_FILLED if filled else T.ORDER_STATUS_NEW)


def test_a_consistent_book_passes_and_each_corruption_is_named():
    bids = [resting(0, BUY, 100, 300), resting(1, BUY, 100, 200, 50), resting(2, BUY, 99, 100)]
    asks = [resting(3, SELL, 101, 100), resting(4, SELL, 103, 400)]
    good = book([(100, 450, 2), (99, 100, 1)], [(101, 100, 1), (103, 400, 1)], bids, asks)
    assert book_problems("AAA", good) == []
    wrong_sum = book([(100, 500, 2), (99, 100, 1)], [(101, 100, 1), (103, 400, 1)], bids, asks)
    assert "not the sums of the resting orders at [100]" in "; ".join(book_problems("AAA", wrong_sum))
    out_of_priority = book([(100, 450, 2), (99, 100, 1)], [(101, 100, 1), (103, 400, 1)],
                           [bids[1], bids[0], bids[2]], asks)
    assert "out of price-time priority" in "; ".join(book_problems("AAA", out_of_priority))
    crossed = book([(102, 100, 1)], [(101, 100, 1)], [resting(0, BUY, 102, 100)], [asks[0]])
    assert "crossed" in "; ".join(book_problems("AAA", crossed))
    unsorted = book([(99, 100, 1), (100, 450, 2)], [(101, 100, 1), (103, 400, 1)], bids, asks)
    assert "not strictly falling" in "; ".join(book_problems("AAA", unsorted))
    view = SymbolView(40, "depth", ((100, 450, 2),), ((101, 100, 1),))
    assert top_problems(good, view, 1) == []
    assert "market data asks [101x100/1] at 40" in "; ".join(top_problems(good, view, 2))


# a fake exchange ------------------------------------------------------------------------------------------------------

def order_id_of(account: str, client_order_id: str) -> str:
    digest = hashlib.sha256(f"{account}/{client_order_id}".encode()).digest()
    return "ord_" + base64.b32encode(digest).decode().lower()[:24]


class FakeStream:
    """A StreamMarketData call: an async iterator of queued messages; ``cancel()`` ends it."""

    def __init__(self, exchange: FakeExchange, request: marketdata_pb2.StreamMarketDataRequest) -> None:
        self.exchange = exchange
        self.symbols = list(request.symbols)
        self.depth = request.depth
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.sent: dict[str, tuple] = {}
        self.cancelled = False
        for symbol in self.symbols:
            levels = exchange.top(symbol, self.depth)
            self.sent[symbol] = levels
            self.queue.put_nowait(exchange.message(symbol, exchange.sequence, "snapshot", levels))

    def __aiter__(self) -> FakeStream:
        return self

    async def __anext__(self) -> Any:
        item = await self.queue.get()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, grpc.aio.AioRpcError):
            raise item
        return item

    def cancel(self) -> None:
        self.cancelled = True
        self.exchange.streams.discard(self)
        self.queue.put_nowait(None)


class FakeExchange:
    """OrderEntryService, MarketDataService and MatchingEngineService.GetBook in memory, as the protos say: price-time
    matching, idempotent PlaceOrder per (account, client_order_id), a sequenced event for every acceptance, trade and
    cancel, and market data fanned out to the open streams (each trade, then the depth it changed, at its sequence).

    ``fail`` holds codes raised by the next calls of a method before any work; ``lose`` the methods whose next call
    is done and then answered UNAVAILABLE (a lost answer). ``hide_trades`` trades are left out of the market data;
    ``corrupt_book`` adds a share to GetBook's best bid level."""

    def __init__(self, instruments: tuple[Instrument, ...] = (AAA, BBB)) -> None:
        self.instruments = {i.symbol: i for i in instruments}
        self.sequence = 0
        self.orders: dict[str, trading_pb2.Order] = {}
        self.keys: dict[tuple[str, str], str] = {}
        self.bids: dict[str, list[str]] = {s: [] for s in self.instruments}
        self.asks: dict[str, list[str]] = {s: [] for s in self.instruments}
        self.last: dict[str, trading_pb2.Trade] = {}
        self.streams: set[FakeStream] = set()
        self.calls: Counter[str] = Counter()
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.lose: set[str] = set()
        self.hide_trades = 0
        self.corrupt_book = False
        self.trades = 0

    # market data -----------------------------------------------------------------------------------------------------

    def top(self, symbol: str, depth: int) -> tuple[tuple, tuple]:
        def side(ids: list[str]) -> tuple:
            levels: dict[int, list[int]] = {}
            for order_id in ids:
                o = self.orders[order_id]
                level = levels.setdefault(o.price_minor, [0, 0])
                level[0] += o.quantity - o.filled_quantity
                level[1] += 1
            return tuple((p, q, n) for p, (q, n) in list(levels.items())[:depth])
        return side(self.bids[symbol]), side(self.asks[symbol])

    def message(self, symbol: str, sequence: int, kind: str, levels: tuple | None = None,
                trade: trading_pb2.Trade | None = None) -> marketdata_pb2.StreamMarketDataResponse:
        message = marketdata_pb2.StreamMarketDataResponse(symbol=symbol, sequence=sequence,
                                                          engine_at_unix_ns=time.time_ns())
        if trade is not None:
            message.trade.CopyFrom(trade)
        else:
            bids, asks = levels
            level = trading_pb2.BookLevel
            getattr(message, kind).CopyFrom(marketdata_pb2.BookDepth(
                bids=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in bids],
                asks=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in asks]))
        return message

    def publish(self, symbol: str, trade: trading_pb2.Trade | None = None) -> None:
        for stream in list(self.streams):
            if symbol not in stream.symbols:
                continue
            if trade is not None:
                stream.queue.put_nowait(self.message(symbol, self.sequence, "trade", trade=trade))
            levels = self.top(symbol, stream.depth)
            if levels != stream.sent[symbol]:
                stream.sent[symbol] = levels
                stream.queue.put_nowait(self.message(symbol, self.sequence, "depth", levels))

    def stream(self, request: marketdata_pb2.StreamMarketDataRequest) -> FakeStream:
        self.calls["StreamMarketData"] += 1
        stream = FakeStream(self, request)
        self.streams.add(stream)
        return stream

    # matching --------------------------------------------------------------------------------------------------------

    def _book(self, symbol: str, side: int) -> list[str]:
        return self.bids[symbol] if side == BUY else self.asks[symbol]

    def _rest(self, o: trading_pb2.Order) -> None:
        ids = self._book(o.symbol, o.side)
        ids.append(o.order_id)
        sign = -1 if o.side == BUY else 1
        ids.sort(key=lambda i: (sign * self.orders[i].price_minor, self.orders[i].accepted_sequence))

    def _status(self, o: trading_pb2.Order) -> None:
        if o.status == T.ORDER_STATUS_CANCELLED:
            return
        o.status = (T.ORDER_STATUS_FILLED if o.filled_quantity == o.quantity else
                    T.ORDER_STATUS_PARTIALLY_FILLED if o.filled_quantity else T.ORDER_STATUS_NEW)

    def place(self, request: orders_pb2.PlaceOrderRequest) -> orders_pb2.PlaceOrderResponse:
        key = (request.account_id, request.client_order_id)
        if key in self.keys:
            return orders_pb2.PlaceOrderResponse(order=self.orders[self.keys[key]])
        if request.symbol not in self.instruments:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "symbol")
        instrument = self.instruments[request.symbol]
        if request.type == LIMIT:
            reference = self.last[request.symbol].price_minor if request.symbol in self.last else \
                instrument.reference_price_minor
            if request.price_minor % instrument.tick_minor or abs(request.price_minor - reference) > reference / 10:
                raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, f"price_band: {request.price_minor}")
        self.sequence += 1
        o = trading_pb2.Order(order_id=order_id_of(*key), client_order_id=request.client_order_id,
                              account_id=request.account_id, symbol=request.symbol, side=request.side,
                              type=request.type, price_minor=request.price_minor, quantity=request.quantity,
                              status=T.ORDER_STATUS_NEW, accepted_sequence=self.sequence,
                              accepted_at_unix_ns=time.time_ns())
        self.orders[o.order_id] = o
        self.keys[key] = o.order_id
        other = self._book(o.symbol, BUY if o.side == SELL else SELL)

        def crosses() -> bool:
            if o.filled_quantity == o.quantity or not other:
                return False
            maker_price = self.orders[other[0]].price_minor
            return o.type == MARKET or (maker_price <= o.price_minor if o.side == BUY else maker_price >= o.price_minor)

        trades = []
        while crosses():
            maker = self.orders[other[0]]
            shares = min(o.quantity - o.filled_quantity, maker.quantity - maker.filled_quantity)
            self.sequence += 1
            done = trading_pb2.Trade(trade_id=f"{o.symbol}-{self.sequence}", symbol=o.symbol,
                                     price_minor=maker.price_minor, quantity=shares, maker_order_id=maker.order_id,
                                     taker_order_id=o.order_id, taker_side=o.side, sequence=self.sequence,
                                     executed_at_unix_ns=time.time_ns())
            maker.filled_quantity += shares
            o.filled_quantity += shares
            self._status(maker)
            self._status(o)
            if maker.status == T.ORDER_STATUS_FILLED:
                other.pop(0)
            trades.append(done)
            self.last[o.symbol] = done
            self.trades += 1
            if not crosses() and o.type == LIMIT and o.filled_quantity < o.quantity:
                self._rest(o)  # rests in its last trade's event, as the market data's books apply it
            if self.hide_trades:
                self.hide_trades -= 1
            else:
                self.publish(o.symbol, done)
        if o.filled_quantity < o.quantity:
            if o.type == LIMIT:
                if not trades:
                    self._rest(o)
                    self.publish(o.symbol)
            else:
                self.sequence += 1
                o.status = T.ORDER_STATUS_CANCELLED
        return orders_pb2.PlaceOrderResponse(order=o, trades=trades)

    def cancel(self, request: orders_pb2.OrderEntryServiceCancelOrderRequest) -> Any:
        o = self.orders.get(request.order_id)
        if o is None or o.account_id != request.account_id:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "order_id")
        if o.status == T.ORDER_STATUS_FILLED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "filled")
        if o.status != T.ORDER_STATUS_CANCELLED:
            self.sequence += 1
            o.status = T.ORDER_STATUS_CANCELLED
            self._book(o.symbol, o.side).remove(o.order_id)
            self.publish(o.symbol)
        return orders_pb2.OrderEntryServiceCancelOrderResponse(order=o)

    def get_book(self, request: engine_pb2.GetBookRequest) -> engine_pb2.GetBookResponse:
        bids, asks = self.top(request.symbol, 10**6)
        if self.corrupt_book and bids:
            bids = ((bids[0][0], bids[0][1] + 1, bids[0][2]), *bids[1:])
        level = trading_pb2.BookLevel
        return engine_pb2.GetBookResponse(
            sequence=self.sequence, bids=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in bids],
            asks=[level(price_minor=p, quantity=q, order_count=n) for p, q, n in asks],
            bid_orders=[self.orders[i] for i in self.bids[request.symbol]],
            ask_orders=[self.orders[i] for i in self.asks[request.symbol]])

    def top_of_book(self, request: marketdata_pb2.GetTopOfBookRequest) -> marketdata_pb2.GetTopOfBookResponse:
        bids, asks = self.top(request.symbol, 1)
        answer = marketdata_pb2.GetTopOfBookResponse(sequence=self.sequence)
        if bids:
            answer.best_bid.CopyFrom(trading_pb2.BookLevel(price_minor=bids[0][0], quantity=bids[0][1],
                                                           order_count=bids[0][2]))
        if asks:
            answer.best_ask.CopyFrom(trading_pb2.BookLevel(price_minor=asks[0][0], quantity=asks[0][1],
                                                           order_count=asks[0][2]))
        if request.symbol in self.last:
            answer.last_trade.CopyFrom(self.last[request.symbol])
        return answer

    async def handle(self, method: str, request: Any) -> Any:
        self.calls[method] += 1
        await asyncio.sleep(0)
        if self.fail.get(method):
            raise rpc_error(self.fail[method].pop(0), "injected")
        if method == "ListInstruments":
            answer: Any = orders_pb2.ListInstrumentsResponse(instruments=[
                trading_pb2.Instrument(symbol=i.symbol, currency_code="USD", tick_minor=i.tick_minor,
                                       reference_price_minor=i.reference_price_minor)
                for i in self.instruments.values()])
        elif method == "PlaceOrder":
            answer = self.place(request)
        elif method == "CancelOrder":
            answer = self.cancel(request)
        elif method == "GetOrder":
            o = self.orders.get(request.order_id)
            if o is None or o.account_id != request.account_id:
                raise rpc_error(grpc.StatusCode.NOT_FOUND, "order_id")
            answer = orders_pb2.OrderEntryServiceGetOrderResponse(order=o)
        elif method == "GetBook":
            answer = self.get_book(request)
        elif method == "GetTopOfBook":
            answer = self.top_of_book(request)
        else:
            raise AssertionError(method)
        if method in self.lose:
            self.lose.discard(method)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "answer lost")
        return answer


class FakeStreams:
    """:class:`casemesh.harness.streams.Streams` over a fake exchange: unrecorded calls and streams, measures kept."""

    def __init__(self, exchange: FakeExchange, share: tuple[int, int] = (0, 1)) -> None:
        self.exchange = exchange
        self.share = share
        self.observed: list[tuple[str, float, str]] = []
        self._offset_ns = time.time_ns() - time.perf_counter_ns()

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        return await self.exchange.handle(method, request)

    def server_stream(self, service: str, method: str, request: Any) -> FakeStream:
        assert (service, method) == ("trading-marketdata", "StreamMarketData")
        return self.exchange.stream(request)

    def observe(self, name: str, latency_s: float, code: str = OK, *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))

    def perf_at(self, wall_ns: int) -> float:
        return (wall_ns - self._offset_ns) / 1e9

    def codes(self, name: str) -> Counter[str]:
        return Counter(code for n, _, code in self.observed if n == name)


class FakeCaller:
    """A journey's caller: unary calls to the exchange (recorded by method and code), measures kept."""

    def __init__(self, exchange: FakeExchange) -> None:
        self.exchange = exchange
        self.calls: list[tuple[str, str]] = []
        self.observed: list[tuple[str, float, str]] = []
        self.intended_at = time.perf_counter()

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        try:
            answer = await self.exchange.handle(method, request)
        except grpc.aio.AioRpcError as error:
            self.calls.append((method, error.code().name))
            raise
        self.calls.append((method, OK))
        return answer

    def begin(self) -> None:
        pass

    def observe(self, name: str, latency_s: float, code: str = OK) -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> Counter[str]:
        return Counter(code for n, _, code in self.observed if n == name)


SEED = SeedParams(ladder_levels=4, ladder_orders_per_level=2, makers=2, takers=2, subscribers=2, max_quotes_per_maker=6,
                  quiet_s=0.05, settle_timeout_s=1.0, ready_timeout_s=2.0, check_orders=1_000)


async def seeded(exchange: FakeExchange, params: SeedParams = SEED, share: tuple[int, int] = (0, 1)
                 ) -> tuple[Trading, FakeStreams]:
    state = await seed(FakeCaller(exchange), params, random.Random(5))
    streams = FakeStreams(exchange, share)
    live = await connect(streams, state, params, random.Random(6))
    return live, streams


async def test_seeding_rests_the_ladder_and_retries_a_lost_answer_with_the_same_client_order_id():
    exchange = FakeExchange()
    exchange.lose.add("PlaceOrder")
    exchange.fail["ListInstruments"] = [grpc.StatusCode.UNAVAILABLE]
    state = await seed(FakeCaller(exchange), SEED, random.Random(5))
    assert [i.symbol for i in state.instruments] == ["AAA", "BBB"] and state.instruments[1] == BBB
    assert len(state.ladder) == 2 * 4 * 2 * 2 == len(exchange.orders)  # the lost answer's retry made no second order
    assert exchange.calls["PlaceOrder"] == len(state.ladder) + 1 and exchange.calls["GetTopOfBook"] == 2
    assert all(is_order_id(p.order_id) and p.filled_at_ack == 0 for p in state.ladder)
    (best_bid,), (best_ask,) = exchange.top("AAA", 1)
    assert (best_bid[0], best_bid[2], best_ask[0], best_ask[2]) == (9_999, 2, 10_001, 2)
    again = await seed(FakeCaller(FakeExchange()), SEED, random.Random(5))
    assert again.run == state.run and [p.quantity for p in again.ladder] == [p.quantity for p in state.ladder]

    async def nothing(service: str, method: str, request: Any) -> Any:
        return orders_pb2.ListInstrumentsResponse()

    with pytest.raises(grpc.aio.AioRpcError, match="no instrument"):
        await seed(nothing, SEED, random.Random(5))


async def test_a_seeding_call_waits_out_a_mesh_that_is_still_connecting_but_not_for_ever():
    now = [0.0]
    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    async def down(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "circuit open to trading-engine")

    with pytest.raises(grpc.aio.AioRpcError):
        await seed_call(down, "trading-gateway", "PlaceOrder", None, clock=lambda: now[0], sleep=sleep)
    assert sleeps[:5] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6]) and max(sleeps) == 2.0
    assert SEED_RETRY_S <= now[0] <= SEED_RETRY_S + 2.0
    answers: list[Any] = [rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), "placed"]

    async def late(service: str, method: str, request: Any) -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert await seed_call(late, "s", "M", None, clock=lambda: now[0], sleep=sleep) == "placed"


async def test_connect_waits_for_every_snapshot_and_gives_up_on_a_silent_market_data_service():
    exchange = FakeExchange()
    live, _ = await seeded(exchange)
    try:
        assert all(s.ready.is_set() and s.view.complete for s in live.subscribers)
        assert live.top("AAA").bid == 9_999 and live.top("AAA").ask == 10_001 and live.top("BBB").bid == 49_995
        assert len(live.orders) == len(live.recent) == 32 and all(o.account is None for o in live.orders.values())
        assert all(is_id(a.account_id) for a in (*live.makers, *live.takers))
    finally:
        await live.stop()

    silent = FakeExchange()
    state = await seed(FakeCaller(silent), SEED, random.Random(5))

    class Mute(FakeStream):
        def __init__(self) -> None:  # no snapshot ever
            self.queue = asyncio.Queue()
            self.cancelled = False

        def cancel(self) -> None:
            self.queue.put_nowait(None)

    silent.stream = lambda request: Mute()  # type: ignore[method-assign]
    with pytest.raises(grpc.aio.AioRpcError, match="no snapshot of every symbol after 0.2 s"):
        await connect(FakeStreams(silent), state, SEED.model_copy(update={"ready_timeout_s": 0.2}), random.Random(1))


async def run_journeys(live: Trading, exchange: FakeExchange, n: int, rng: random.Random,
                       weights: tuple[int, ...] = (40, 35, 20, 4, 1)) -> FakeCaller:
    caller = FakeCaller(exchange)
    journeys = [(quote, QuoteParams()), (cancel_replace, QuoteParams()), (take, TakeParams()), (query, QueryParams()),
                (subscribe, SubscribeParams(watch_s=0.05))]
    for _ in range(n):
        journey, params = rng.choices(journeys, weights=weights)[0]
        await journey(caller, params, live, rng)
        await asyncio.sleep(0)
    return caller


async def test_the_journeys_keep_the_books_two_sided_and_every_check_passes_on_a_correct_exchange():
    exchange = FakeExchange()
    live, streams = await seeded(exchange)
    caller = await run_journeys(live, exchange, 400, random.Random(11), weights=(40, 35, 20, 4, 5))
    await disconnect(live)
    placed = [c for c in caller.calls if c[0] == "PlaceOrder"]
    assert len(placed) > 300 and all(code == OK for _, code in caller.calls if _ != "CancelOrder")
    assert caller.codes(ORDER_INTEGRITY)[OK] > 300 and caller.codes(ORDER_INTEGRITY)[DATA_LOSS] == 0
    assert exchange.trades > 30 and live.counts["takes_traded"] > 20
    # Every maker stays within its quota; a cancel/replace found something to cancel.
    assert all(len(m.resting) <= SEED.max_quotes_per_maker for m in live.makers) and live.counts["cancelled"] > 50
    for symbol in ("AAA", "BBB"):  # the books stay two-sided, near their price
        bids, asks = exchange.top(symbol, 1)
        reference = exchange.instruments[symbol].reference_price_minor
        assert bids and asks and abs(bids[0][0] - reference) < reference * 0.05
    assert streams.codes(BOOK_INTEGRITY) == {OK: 2}
    fills = streams.codes(FILLS_MATCH_TRADES)
    assert fills[OK] == len(live.orders) and not fills[DATA_LOSS]
    assert streams.codes(ORDER_INTEGRITY) == {OK: len(live.orders)}
    assert streams.codes(SEQUENCE) == {OK: SEED.subscribers} and caller.codes(SEQUENCE)[OK] > 0
    assert streams.codes(FRESHNESS)[OK] >= SEED.subscribers * exchange.trades
    visible = streams.codes(ORDER_TO_TRADE_VISIBLE)
    assert visible[OK] == live.counts["takes_traded"] and not visible[NOT_SEEN]
    assert caller.codes(FIRST_MESSAGE)[OK] > 0
    assert exchange.streams == set()  # every stream closed


async def test_a_second_connect_on_the_same_seed_reads_the_ladder_back_and_judges_only_what_it_saw():
    """``casemesh capacity`` seeds once and connects once per step: the second step's ladder orders were traded by the
    first step's takers, before its streams began."""
    exchange = FakeExchange()
    state = await seed(FakeCaller(exchange), SEED, random.Random(5))
    accounts: list[set[str]] = []
    for step in range(2):
        streams = FakeStreams(exchange)
        live = await connect(streams, state, SEED, random.Random(step))
        accounts.append({a.account_id for a in live.makers})
        if step == 1:
            assert sum(o.base_filled for o in live.orders.values()) > 0  # the first step's fills, read back
            assert accounts[0].isdisjoint(accounts[1])
        await run_journeys(live, exchange, 150, random.Random(20 + step), weights=(30, 20, 50, 0, 0))
        await disconnect(live)
        assert streams.codes(FILLS_MATCH_TRADES)[OK] == len(live.orders) and not streams.codes(FILLS_MATCH_TRADES)[
            DATA_LOSS]
    exchange.fail["GetOrder"] = [grpc.StatusCode.UNAVAILABLE] * 32
    streams = FakeStreams(exchange)
    live = await connect(streams, state, SEED, random.Random(3))
    assert not any(o.judged for o in live.orders.values() if o.account is None)
    await disconnect(live)
    assert streams.codes(FILLS_MATCH_TRADES) == {}  # no journey ran: only ladder orders, none judged


async def test_a_maker_at_its_limit_cancels_its_oldest_quote_first_and_a_filled_order_is_dropped_quietly():
    exchange = FakeExchange()
    live, _ = await seeded(exchange)
    try:
        caller = FakeCaller(exchange)
        rng = random.Random(3)
        live.makers[:] = live.makers[:1]
        for _ in range(SEED.max_quotes_per_maker):
            await quote(caller, QuoteParams(thinner_side_p=0), live, rng)
        maker = live.makers[0]
        oldest = maker.oldest()
        assert len(maker.resting) == SEED.max_quotes_per_maker
        await quote(caller, QuoteParams(), live, rng)
        assert oldest.order_id not in maker.resting and exchange.orders[oldest.order_id].status == T.ORDER_STATUS_CANCELLED
        assert len(maker.resting) == SEED.max_quotes_per_maker
        # The exchange filled one of its orders behind the process's back (no market data): the cancel is refused
        # FAILED_PRECONDITION, the order leaves the maker's books, the journey goes on.
        victim = maker.oldest()
        o = exchange.orders[victim.order_id]
        o.filled_quantity, o.status = o.quantity, T.ORDER_STATUS_FILLED
        exchange._book(o.symbol, o.side).remove(o.order_id)
        await cancel(caller, live, victim, QuoteParams(), rng)
        assert caller.calls[-1] == ("CancelOrder", "FAILED_PRECONDITION") and victim.order_id not in maker.resting
        assert victim.status == T.ORDER_STATUS_FILLED and not caller.codes(ORDER_INTEGRITY)[DATA_LOSS]
        await cancel_replace(caller, QuoteParams(), live, rng)
        assert [m for m, _ in caller.calls[-2:]] == ["CancelOrder", "PlaceOrder"]
    finally:
        await live.stop()


async def test_lost_answers_are_retried_without_trading_twice():
    exchange = FakeExchange()
    live, streams = await seeded(exchange)
    caller = FakeCaller(exchange)
    before = exchange.trades
    exchange.lose.add("PlaceOrder")
    await take(caller, TakeParams(market_p=1.0), live, random.Random(2))
    assert [c for c in caller.calls if c[0] == "PlaceOrder"] == [("PlaceOrder", "UNAVAILABLE"), ("PlaceOrder", OK)]
    traded = exchange.trades - before
    assert traded >= 1 and caller.codes(ORDER_INTEGRITY) == {OK: 1}  # a retry's answer: no trades, none twice
    live.makers[:] = live.makers[:1]
    for _ in range(3):
        await quote(caller, QuoteParams(), live, random.Random(4))
    exchange.fail["CancelOrder"] = [grpc.StatusCode.DEADLINE_EXCEEDED]
    await cancel_replace(caller, QuoteParams(), live, random.Random(4))
    assert [c for c in caller.calls if c[0] == "CancelOrder"] == [("CancelOrder", "DEADLINE_EXCEEDED"),
                                                                  ("CancelOrder", OK)]
    await disconnect(live)
    # The taker's trades came from its first send: the market data showed them, the fills match.
    assert streams.codes(FILLS_MATCH_TRADES)[DATA_LOSS] == 0 and streams.codes(FILLS_MATCH_TRADES)[OK] > 0
    assert not streams.codes(ORDER_TO_TRADE_VISIBLE)[NOT_SEEN]


async def test_a_trade_missing_from_the_market_data_and_a_corrupt_book_are_caught():
    exchange = FakeExchange()
    live, streams = await seeded(exchange)
    caller = FakeCaller(exchange)
    exchange.hide_trades = 1
    await take(caller, TakeParams(market_p=1.0, lots_min=5, lots_max=5), live, random.Random(2))
    exchange.corrupt_book = True
    await disconnect(live)
    assert streams.codes(FILLS_MATCH_TRADES)[DATA_LOSS] >= 2  # the taker and its maker
    assert streams.codes(BOOK_INTEGRITY)[DATA_LOSS] >= 1
    assert streams.codes(ORDER_TO_TRADE_VISIBLE)[NOT_SEEN] == 1  # its first trade never came


async def test_an_acknowledged_order_that_vanishes_is_data_loss():
    exchange = FakeExchange()
    live, _ = await seeded(exchange)
    caller = FakeCaller(exchange)
    await quote(caller, QuoteParams(), live, random.Random(1))
    own = live.makers[0].oldest() if live.makers[0].resting else live.makers[1].oldest()
    del exchange.orders[own.order_id]
    exchange._book(own.placed.symbol, own.placed.side).remove(own.order_id)
    live.recent.clear()
    live.recent.append(own)
    with pytest.raises(grpc.aio.AioRpcError):
        await query(caller, QueryParams(), live, random.Random(1))
    assert caller.codes(ORDER_INTEGRITY)[DATA_LOSS] == 1
    await live.stop()


async def test_a_stream_out_of_order_is_a_data_loss_session_and_several_processes_judge_only_finished_orders():
    exchange = FakeExchange()
    live, streams = await seeded(exchange, share=(1, 2))
    assert len(live.orders) == 16  # the second half of the ladder
    stream = next(iter(exchange.streams))
    stream.queue.put_nowait(exchange.message("AAA", 1, "depth", ((), ())))
    caller = await run_journeys(live, exchange, 60, random.Random(9))
    await finish(live)
    await live.stop()
    assert streams.codes(SEQUENCE)[DATA_LOSS] == 1 and streams.codes(SEQUENCE)[OK] == 1
    assert not streams.codes(BOOK_INTEGRITY)  # load process 1 leaves the books to process 0
    judged = streams.codes(FILLS_MATCH_TRADES)
    finished = sum(1 for o in live.orders.values() if o.account is not None and not o.resting)
    assert judged[OK] == finished and not judged[DATA_LOSS] and caller.codes(ORDER_INTEGRITY)[OK] > 0


async def test_a_client_joining_a_silent_market_data_service_records_the_timeout():
    exchange = FakeExchange()
    live, _ = await seeded(exchange)

    class Mute:
        def __aiter__(self) -> Mute:
            return self

        async def __anext__(self) -> Any:
            await asyncio.Event().wait()

        def cancel(self) -> None:
            pass

    live.market.streams.server_stream = lambda *args: Mute()  # type: ignore[method-assign]
    caller = FakeCaller(exchange)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await subscribe(caller, SubscribeParams(first_message_timeout_s=0.05), live, random.Random(1))
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert caller.codes(FIRST_MESSAGE) == {"DEADLINE_EXCEEDED": 1} and not caller.codes(SEQUENCE)
    await live.stop()


# the workload, the profile, the SLOs, the contracts -------------------------------------------------------------------

def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "trading" and set(WORKLOAD.services) == set(TRADING_SERVICES)
    assert list(WORKLOAD.journeys) == ["quote", "cancel_replace", "take", "query", "subscribe"]
    assert set(MEASURES) == {"market_data_freshness", "market_data_first_message", "order_to_trade_visible",
                             "order_integrity", "market_data_sequence", "book_integrity", "fills_match_trades"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.trading.v1.OrderEntryService/PlaceOrder", "casemesh.trading.v1.MarketDataService/StreamMarketData",
            "casemesh.trading.v1.MatchingEngineService/GetBook"} <= set(WORKLOAD.rpcs)


def _document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "trading.yaml").read_text())


def test_the_profile_s_blocks_are_valid_and_its_rate_is_about_200_orders_a_second():
    document = _document()
    ProfileDocument.model_validate(document)
    assert document["workload"] == "trading" and document["services"] == list(TRADING_SERVICES)
    seed_params = SeedParams.model_validate(document["seed"])
    models = {"quote": QuoteParams, "cancel_replace": QuoteParams, "take": TakeParams, "query": QueryParams,
              "subscribe": SubscribeParams}
    journeys = {j["name"]: models[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    orders = sum(weights[n] for n in ("quote", "cancel_replace", "take")) / sum(weights.values())
    assert 190 <= document["arrival"]["rate_per_s"] * orders <= 210
    assert weights["quote"] + weights["cancel_replace"] > 3 * weights["take"]  # mostly makers' messages
    settings_ = document["settings"]
    assert settings_["trading-engine"]["commit"] == "group"
    assert seed_params.price_band_pct == settings_["trading-gateway"]["price_band_pct"]
    assert seed_params.max_quotes_per_maker < settings_["trading-gateway"]["max_open_orders"]
    drain_s = document["request_timeout_ms"] / 1000 * 10 + 5
    retry = journeys["take"]
    assert 2 * retry.max_attempts * (document["request_timeout_ms"] / 1000 + retry.backoff_cap_ms / 1000) < drain_s
    assert journeys["subscribe"].first_message_timeout_s + journeys["subscribe"].watch_s < drain_s
    assert "seeds/001_58dfc580020147d2.txt line 22" in document["metadata"]["source"]
    assert "1,134,640" in document["metadata"]["scaling"] and "2,900 times fewer" in document["metadata"]["scaling"]


@pytest.mark.parametrize(("service", "module", "model"), [
    ("trading-engine", "casemesh.services.trading.engine.settings", "EngineSettings"),
    ("trading-gateway", "casemesh.services.trading.gateway.settings", "GatewaySettings"),
])
def test_the_profile_s_settings_fit_the_services_settings_models(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    if not hasattr(settings_module, model):
        pytest.skip(f"{module}.{model} is not there yet")
    getattr(settings_module, model).model_validate(_document()["settings"][service])


def test_the_seed_s_defaults_match_the_gateway_s():
    gateway = pytest.importorskip("casemesh.services.trading.gateway.settings")
    defaults = gateway.GatewaySettings()
    assert SeedParams().price_band_pct == defaults.price_band_pct
    assert SeedParams().max_quotes_per_maker < defaults.max_open_orders
    quantity = QuoteParams().lots_max * SeedParams().lot_shares
    assert quantity <= defaults.max_order_quantity
    assert max(i.reference_price_minor for i in defaults.instruments) * 1.1 * quantity < defaults.max_notional_minor
    assert len(defaults.instruments) == 8


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "trading.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {"trading-place-order-latency", "trading-place-order-availability",
                         "trading-market-data-freshness", "trading-market-data-first-message",
                         "trading-order-integrity", "trading-market-data-sequence", "trading-book-integrity",
                         "trading-fills-match-trades", "trading-place-order-latency-server",
                         "trading-place-order-availability-server", "trading-market-data-freshness-server"}
    latency = slos["trading-place-order-latency"]
    assert latency.target == 0.99 and latency.good.latency_le_ms == 10
    assert latency.good.rpc == "casemesh.trading.v1.OrderEntryService/PlaceOrder"
    assert slos["trading-market-data-freshness"].good.latency_le_ms == 50
    assert slos["trading-place-order-latency-server"].twin_of == "trading-place-order-latency"
    assert slos["trading-market-data-freshness-server"].twin_of == "trading-market-data-freshness"
    text = (PROFILES_DIR / "trading.slo.yaml").read_text()
    assert 'grpc_service="casemesh.trading.v1.OrderEntryService",grpc_method="PlaceOrder",le="0.01"' in text
    assert 'casemesh_trading_marketdata_publish_lag_seconds_bucket{le="0.05"}' in text
    assert "seeds/001_58dfc580020147d2.txt line 22" in text and "<10ms p99 latency" in text
    assert all(name.startswith("trading-") for name in slos)


def test_the_twins_thresholds_are_bucket_bounds():
    from casemesh.services.runtime.metrics import LATENCY_BUCKETS_S

    assert 0.01 in LATENCY_BUCKETS_S
    marketdata = pytest.importorskip("casemesh.services.trading.marketdata.metrics")
    assert 0.05 in marketdata.PUBLISH_LAG_BUCKETS


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_the_profile_loads_with_its_slos_once_registered(monkeypatch: pytest.MonkeyPatch):
    """The whole loader (workload, journeys, seed, SLOs) with the services registered in place: the services' settings
    keys are checked by the loader test below once the services are catalogued."""
    monkeypatch.setitem(workloads_module._MODULES, "trading", "trading")
    import casemesh.harness.profile as profile_module

    monkeypatch.setattr(profile_module, "SERVICES", {n: SimpleNamespace(settings_model=_AnySettings)
                                                     for n in TRADING_SERVICES})
    profile = load_profile("trading", known_services=TRADING_SERVICES)
    assert profile.workload is WORKLOAD and profile.arrival.rate_per_s == 210 and profile.request_timeout_ms == 1000
    assert [j.name for j in profile.journeys] == ["quote", "cancel_replace", "take", "query", "subscribe"]
    assert {"trading-place-order-latency", "trading-book-integrity"} <= {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in TRADING_SERVICES) or "trading" not in workloads_module.WORKLOAD_NAMES,
                    reason="the trading services are not catalogued yet (services/catalog.py)")
def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("trading")
    assert profile.seed.makers == 4 and profile.settings["trading-engine"]["commit"] == "group"
    assert "trading-place-order-latency" in {slo.name for slo in profile.slos}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.trading.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry"}, f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.trading import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services.')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([
        "casemesh.services.trading", "casemesh.services.trading.contract", "casemesh.services.runtime",
        "casemesh.services.runtime.errors", "casemesh.services.runtime.identifiers"]))


# the harness's driver over real gRPC, against the fake exchange ---------------------------------------------------------

def _servicers(exchange: FakeExchange) -> list[Any]:
    from casemesh.trading.v1 import engine_pb2_grpc, marketdata_pb2_grpc, orders_pb2_grpc

    async def handle(method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await exchange.handle(method, request)
        except grpc.aio.AioRpcError as error:
            await context.abort(error.code(), error.details() or "")

    class Gateway(orders_pb2_grpc.OrderEntryServiceServicer):
        async def PlaceOrder(self, request, context):
            return await handle("PlaceOrder", request, context)

        async def CancelOrder(self, request, context):
            return await handle("CancelOrder", request, context)

        async def GetOrder(self, request, context):
            return await handle("GetOrder", request, context)

        async def ListInstruments(self, request, context):
            return await handle("ListInstruments", request, context)

    class MarketData(marketdata_pb2_grpc.MarketDataServiceServicer):
        async def StreamMarketData(self, request, context):
            stream = exchange.stream(request)
            try:
                async for message in stream:
                    yield message
            finally:
                stream.cancel()

        async def GetTopOfBook(self, request, context):
            return await handle("GetTopOfBook", request, context)

    class Engine(engine_pb2_grpc.MatchingEngineServiceServicer):
        async def GetBook(self, request, context):
            return await handle("GetBook", request, context)

    return [(orders_pb2_grpc.add_OrderEntryServiceServicer_to_server, Gateway()),
            (marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server, MarketData()),
            (engine_pb2_grpc.add_MatchingEngineServiceServicer_to_server, Engine())]


async def test_the_driver_runs_every_journey_over_grpc_and_checks_the_books_at_the_end(monkeypatch: pytest.MonkeyPatch):
    import dataclasses

    import casemesh.harness.profile as profile_module
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    monkeypatch.setitem(workloads_module._MODULES, "trading", "trading")
    monkeypatch.setattr(profile_module, "SERVICES", {n: SimpleNamespace(settings_model=_AnySettings)
                                                     for n in TRADING_SERVICES})
    profile = with_overrides(load_profile("trading", known_services=TRADING_SERVICES), duration_s=1.5, warmup_s=0.2,
                             rate_scale=0.3)
    profile = dataclasses.replace(profile, seed=SEED.model_copy(update={"check_orders": 200}))
    exchange = FakeExchange()
    server = grpc.aio.server()
    for add, servicer in _servicers(exchange):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {name: channel for name in TRADING_SERVICES}, rng_seed=3)
        await driver.seed()
        assert len(driver.state.ladder) == 32
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    place = stats.rpc("casemesh.trading.v1.OrderEntryService/PlaceOrder")
    assert place.count() > 20 and place.count(["OK"]) == place.count()
    for name in ("quote", "cancel_replace", "take"):
        assert stats.journey(name).count(["OK"]) == stats.journey(name).count() > 0
    assert stats.journey(ORDER_INTEGRITY).count(["OK"]) == stats.journey(ORDER_INTEGRITY).count() > 20
    assert stats.journey(BOOK_INTEGRITY).count(["OK"]) == 2 == stats.journey(BOOK_INTEGRITY).count()
    fills = stats.journey(FILLS_MATCH_TRADES)
    assert fills.count(["OK"]) == fills.count() > 0
    assert stats.journey(FRESHNESS).count(["OK"]) > 0
    assert stats.journey(SEQUENCE).count(["OK"]) == stats.journey(SEQUENCE).count() >= SEED.subscribers
