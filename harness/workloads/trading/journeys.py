"""The trading journeys (open-loop arrivals): market makers quoting and cancelling, takers trading, order status
queries, and market data clients joining.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data, low-latency | <10ms p99 latency, NASDAQ-scale"). The mix follows an exchange's message traffic: most
messages are market makers' limit orders and cancels, and only some orders trade (NASDAQ's record second, as its
INET page lists it: 1,134,640 messages, 581,696 orders and 193,350 executions: an execution per three orders, and
about as many messages again as orders, cancels mostly). Every order carries a fresh client_order_id and every
order-entry call is sent again unchanged on UNAVAILABLE, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (:data:`ORDER_RETRIED`,
:class:`OrderRetryParams`, :mod:`casemesh.harness.workloads.idempotent_retry`).
Prices come from the book as this process knows it (:mod:`.prices`), within the gateway's price band.

- ``quote`` (a market maker refreshing its quotes: most of the traffic): a maker rests a limit order 0 to
  ``ticks_away_max`` ticks behind the best price of a side (the thinner side of the book for ``thinner_side_p`` of
  quotes, else either), of ``lots_min`` to ``lots_max`` lots. A maker holding ``max_quotes_per_maker`` resting
  orders first cancels its oldest.
- ``cancel_replace`` (cancels are a large share of exchange traffic): a maker cancels one of its resting orders
  (chosen uniformly) and rests a new one on the same symbol and side at the book's current price (a maker with none
  only quotes). A cancel refused FAILED_PRECONDITION (the order filled meanwhile) is part of the game.
- ``take`` (marketable orders): a taker buys or sells ``lots_min`` to ``lots_max`` lots of a symbol, with a market
  order for ``market_p`` of them, else with a limit ``slippage_ticks`` ticks through the other side's best price;
  what a limit order leaves resting is cancelled at once (the contract has no immediate-or-cancel limit: a broker's
  router does this). Its first trade is awaited on the market data (``order_to_trade_visible``).
- ``query``: GetOrder of one of the process's newest orders (its ladder share included), checked against what was
  placed and what is known of it.
- ``subscribe`` (a market data client joining): StreamMarketData of ``symbols_min`` to ``symbols_max`` symbols at
  ``depth`` levels, watched for ``watch_s`` seconds after its first message; ``market_data_first_message`` is the
  time from the journey's intended start to that first message (a snapshot), or the stream's status code when none
  came within ``first_message_timeout_s``. Its trades are ``market_data_freshness`` samples and the session one
  ``market_data_sequence`` sample.

Checks (:mod:`.invariants`): every PlaceOrder and CancelOrder answer and every order read back is one
``order_integrity`` sample (``OK`` or ``DATA_LOSS``); an order the exchange acknowledged and then calls NOT_FOUND is a
``DATA_LOSS`` sample too. A journey ends OK when every answer came; with the last code when a call failed for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.trading.v1 import marketdata_pb2, orders_pb2, trading_pb2

from ..base import Caller, Params
from ..idempotent_retry import RetryParams, send
from .invariants import ORDER_INTEGRITY, answer_problems, cancel_problems, read_back_problems, record
from .market_data import DATA_LOSS, FIRST_MESSAGE, OK, SEQUENCE, StreamView
from .prices import BUY, SELL, marketable_price, passive_price, thinner_side
from .seeding import GATEWAY, MARKETDATA
from .traders import Account, OwnOrder, Trading

log = logging.getLogger("casemesh.workloads.trading")

T = trading_pb2

#: Codes after which an order-entry call is sent again: the default set without ABORTED, which orders.proto never
#: answers (it has no "a call with the same key is in flight" refusal: a retry is the same engine order).
ORDER_RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                           grpc.StatusCode.RESOURCE_EXHAUSTED})


class OrderRetryParams(RetryParams):
    """How a broker resends an order-entry call (PlaceOrder with the same client_order_id, CancelOrder and GetOrder of
    the same order): a trading client's defaults, 3 sends, 10 ms doubling to at most 100 ms, and no time bound (the
    attempts and the cap bound it). An order is worth resending within a fraction of a second, not after the market
    has moved on: its price was chosen against the book of that moment (the seed's "<10ms p99" acknowledgement), and a
    quote or a marketable order resent seconds later rests at or trades through a stale price, so a broker gives up
    quickly and decides again with fresh market data instead of waiting as a merchant's checkout would."""

    max_attempts: int = Field(default=3, ge=1, le=10, description="sends of one request at most, the first included")
    backoff_base_ms: float = Field(default=10.0, gt=0, le=60_000,
                                   description="the first retry's backoff ceiling, ms (full jitter: uniform 0 to it)")
    backoff_cap_ms: float = Field(default=100.0, gt=0, le=600_000,
                                  description="the largest backoff ceiling, ms (doubling per failure up to it)")
    retry_within_s: float | None = Field(default=None, gt=0, le=600,
                                         description="no retry starts later than this after the first send, s "
                                                     "(none: no time bound)")


class SizeParams(OrderRetryParams):
    """An order's size in lots (of the seed's ``lot_shares``)."""

    lots_min: int = Field(default=1, ge=1, le=1_000, description="smallest order, lots")
    lots_max: int = Field(default=5, ge=1, le=1_000, description="largest order, lots (uniform between)")

    @model_validator(mode="after")
    def _lots(self) -> SizeParams:
        if self.lots_min > self.lots_max:
            raise ValueError(f"lots_min ({self.lots_min}) must be at most lots_max ({self.lots_max})")
        return self


class QuoteParams(SizeParams):
    """A market maker's quote (``quote``, and the new order of ``cancel_replace``)."""

    ticks_away_max: int = Field(default=4, ge=0, le=1_000,
                                description="a quote rests 0 to this many ticks behind its side's best price")
    thinner_side_p: float = Field(default=0.7, ge=0, le=1,
                                  description="share of quotes on the side whose top levels hold fewer shares")


class TakeParams(SizeParams):
    """A taker's marketable order."""

    market_p: float = Field(default=0.3, ge=0, le=1, description="share of takes sent as market orders")
    slippage_ticks: int = Field(default=2, ge=0, le=1_000,
                                description="a marketable limit's ticks through the other side's best price")


class QueryParams(OrderRetryParams):
    """An order status query."""


class SubscribeParams(Params):
    """A market data client joining."""

    symbols_min: int = Field(default=1, ge=1, le=32, description="fewest symbols followed")
    symbols_max: int = Field(default=3, ge=1, le=32, description="most symbols followed (uniform between, at most the "
                                                                  "symbols traded)")
    depth: int = Field(default=5, ge=1, le=50, description="levels per side")
    watch_s: float = Field(default=5.0, ge=0, le=600, description="seconds watched after the first message")
    first_message_timeout_s: float = Field(default=2.0, gt=0, le=600,
                                           description="seconds the first message may take before the client gives up")

    @model_validator(mode="after")
    def _symbols(self) -> SubscribeParams:
        if self.symbols_min > self.symbols_max:
            raise ValueError(f"symbols_min ({self.symbols_min}) must be at most symbols_max ({self.symbols_max})")
        return self


def observer(call: Caller) -> Any:
    """``record``'s ``observe(measure, code)`` over a journey's caller (samples of latency 0: counts)."""
    return lambda measure, code: call.observe(measure, 0.0, code)


def lots(live: Trading, params: SizeParams, rng: random.Random) -> int:
    return rng.randint(params.lots_min, params.lots_max) * live.params.lot_shares


async def place(call: Caller, live: Trading, account: Account, symbol: str, side: int, order_type: int, price: int,
                quantity: int, params: OrderRetryParams,
                rng: random.Random) -> tuple[orders_pb2.PlaceOrderResponse, OwnOrder]:
    """PlaceOrder with a fresh client_order_id, retried; the answer checked (``order_integrity``) and tracked."""
    request = orders_pb2.PlaceOrderRequest(client_order_id=live.client_order_id(), account_id=account.account_id,
                                           symbol=symbol, side=side, type=order_type, price_minor=price,
                                           quantity=quantity)
    outcome = await send(call, GATEWAY, "PlaceOrder", request, params, rng, retried=ORDER_RETRIED, sleep=live.sleep)
    if outcome.error is not None:
        raise outcome.error
    answer = outcome.response
    # A retry's answer (more than one send) has no trades: the first send's, if any, are on the market data.
    record(observer(call), ORDER_INTEGRITY, answer_problems(request, answer.order, answer.trades, outcome.attempts > 1),
           f"PlaceOrder {request.account_id}/{request.client_order_id} ({answer.order.order_id})")
    top = live.top(symbol)
    for trade in answer.trades:
        top.trade(trade.sequence, trade.price_minor)
    return answer, live.placed(account, request, answer.order)


async def cancel(call: Caller, live: Trading, own: OwnOrder, params: OrderRetryParams, rng: random.Random) -> None:
    """CancelOrder of ``own``, retried. FAILED_PRECONDITION (it filled meanwhile) takes it off the books quietly;
    NOT_FOUND for an acknowledged order is a ``DATA_LOSS`` sample, then raised."""
    request = orders_pb2.OrderEntryServiceCancelOrderRequest(account_id=own.placed.account_id, order_id=own.order_id)
    known = own.known_filled
    outcome = await send(call, GATEWAY, "CancelOrder", request, params, rng, retried=ORDER_RETRIED, sleep=live.sleep)
    if (error := outcome.error) is not None:
        if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
            live.gone(own, T.ORDER_STATUS_FILLED)
            live.counts["cancel_filled"] += 1
            return
        if error.code() == grpc.StatusCode.NOT_FOUND:
            record(observer(call), ORDER_INTEGRITY, [f"CancelOrder: NOT_FOUND ({error.details()})"],
                   f"acknowledged order {own.order_id} of {own.placed.account_id}")
            live.gone(own, T.ORDER_STATUS_CANCELLED)
        raise error
    order = outcome.response.order
    record(observer(call), ORDER_INTEGRITY, cancel_problems(own.placed, own.order_id, known, order),
           f"CancelOrder {own.order_id}")
    live.update(own, order)
    live.counts["cancelled"] += 1


def quote_side(live: Trading, symbol: str, params: QuoteParams, rng: random.Random) -> int:
    """The side of a quote: the thinner one for ``thinner_side_p`` of quotes, else either."""
    if rng.random() < params.thinner_side_p:
        return thinner_side(live.top(symbol))
    return BUY if rng.random() < 0.5 else SELL


async def rest_quote(call: Caller, live: Trading, maker: Account, symbol: str, side: int, params: QuoteParams,
                     rng: random.Random) -> None:
    price = passive_price(live.top(symbol), side, rng.randint(0, params.ticks_away_max), live.params.trading_band_pct)
    await place(call, live, maker, symbol, side, T.ORDER_TYPE_LIMIT, price, lots(live, params, rng), params, rng)


async def quote(call: Caller, params: QuoteParams, live: Trading, rng: random.Random) -> None:
    """A market maker's quote (module docstring)."""
    maker = live.maker(rng)
    if len(maker.resting) >= live.params.max_quotes_per_maker:
        await cancel(call, live, maker.oldest(), params, rng)
    symbol = live.symbol(rng)
    await rest_quote(call, live, maker, symbol, quote_side(live, symbol, params, rng), params, rng)


async def cancel_replace(call: Caller, params: QuoteParams, live: Trading, rng: random.Random) -> None:
    """Cancel one of a maker's resting orders, rest a new one on its symbol and side (module docstring)."""
    maker = live.maker(rng)
    if maker.resting:
        own = maker.pick(rng)
        await cancel(call, live, own, params, rng)
        symbol, side = own.placed.symbol, own.placed.side
    else:
        symbol = live.symbol(rng)
        side = quote_side(live, symbol, params, rng)
    await rest_quote(call, live, maker, symbol, side, params, rng)


async def take(call: Caller, params: TakeParams, live: Trading, rng: random.Random) -> None:
    """A taker's marketable order (module docstring)."""
    taker = live.taker(rng)
    symbol = live.symbol(rng)
    side = BUY if rng.random() < 0.5 else SELL
    if rng.random() < params.market_p:
        order_type, price = T.ORDER_TYPE_MARKET, 0
    else:
        order_type = T.ORDER_TYPE_LIMIT
        price = marketable_price(live.top(symbol), side, params.slippage_ticks, live.params.trading_band_pct)
    answer, own = await place(call, live, taker, symbol, side, order_type, price, lots(live, params, rng), params, rng)
    if answer.trades:
        live.market.ledger.await_visible(answer.trades[0].trade_id, call.intended_at)
        live.counts["takes_traded"] += 1
    if own.resting:
        await cancel(call, live, own, params, rng)


async def query(call: Caller, params: QueryParams, live: Trading, rng: random.Random) -> None:
    """GetOrder of one of the newest own orders, checked (module docstring)."""
    own = live.recent_order(rng)
    if own is None:  # pragma: no cover - the ladder's share is there from the start
        return
    request = orders_pb2.OrderEntryServiceGetOrderRequest(account_id=own.placed.account_id, order_id=own.order_id)
    known = own.known_filled
    outcome = await send(call, GATEWAY, "GetOrder", request, params, rng, retried=ORDER_RETRIED, sleep=live.sleep)
    if (error := outcome.error) is not None:
        if error.code() == grpc.StatusCode.NOT_FOUND:
            record(observer(call), ORDER_INTEGRITY, [f"GetOrder: NOT_FOUND ({error.details()})"],
                   f"acknowledged order {own.order_id} of {own.placed.account_id}")
        raise error
    order = outcome.response.order
    record(observer(call), ORDER_INTEGRITY, read_back_problems(own.placed, own.order_id, known, order),
           f"GetOrder {own.order_id}")
    live.update(own, order)


async def subscribe(call: Caller, params: SubscribeParams, live: Trading, rng: random.Random) -> None:
    """A market data client joining (module docstring)."""
    count = min(rng.randint(params.symbols_min, params.symbols_max), len(live.symbols))
    symbols = rng.sample(live.symbols, count)
    market = live.market
    view = StreamView(symbols)
    call.begin()
    stream = market.streams.server_stream(MARKETDATA, "StreamMarketData", marketdata_pb2.StreamMarketDataRequest(
        symbols=symbols, depth=params.depth))
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(params.first_message_timeout_s) as deadline:
            async for message in stream:
                if view.messages == 0:
                    call.observe(FIRST_MESSAGE, live.clock() - call.intended_at, OK)
                    deadline.reschedule(loop.time() + params.watch_s)
                problem = market.receive(view, message, ledger=False, seen=False)
                if problem is not None and view.problems == 1:
                    log.warning("trading: a market data client of %s: %s", ",".join(symbols), problem)
    except TimeoutError:
        if view.messages == 0:
            call.observe(FIRST_MESSAGE, live.clock() - call.intended_at, grpc.StatusCode.DEADLINE_EXCEEDED.name)
            raise grpc.aio.AioRpcError(grpc.StatusCode.DEADLINE_EXCEEDED, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                       f"no market data within {params.first_message_timeout_s:g} s") from None
    except grpc.aio.AioRpcError as error:
        if view.messages == 0:
            call.observe(FIRST_MESSAGE, live.clock() - call.intended_at, error.code().name)
        raise
    finally:
        stream.cancel()
        if view.messages:
            call.observe(SEQUENCE, 0.0, DATA_LOSS if view.problems else OK)
