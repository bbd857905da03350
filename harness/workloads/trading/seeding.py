"""The trading workload's parameters (instruments, the liquidity ladder, this load process's traders and market data
subscribers, the end-of-run checks) and its seeding through the public API.

Seed 001 #08 "Stock Trading" (shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching engine, order book,
market data, low-latency | <10ms p99 latency, NASDAQ-scale"). Seeding, unrecorded:

1. OrderEntryService.ListInstruments: the listed symbols, their ticks and reference prices; the run trades the first
   ``symbols`` of them (0: all, at most :data:`~casemesh.services.trading.contract.MAX_STREAM_SYMBOLS`, so one
   market data stream follows every one).
2. MarketDataService.GetTopOfBook of each: the book's centre, its last trade, else its reference price (what the
   gateway's price band is centred on).
3. The liquidity ladder: for each symbol a liquidity provider (account ``lp<run>-<SYMBOL>``) rests
   ``ladder_orders_per_level`` limit orders at each of ``ladder_levels`` prices a side, the best bid
   ``ladder_half_spread_ticks`` ticks below the centre and the best ask as many above, ``ladder_step_ticks`` ticks
   between levels, each of a uniform 1 to ``ladder_lots_max`` lots of ``lot_shares`` shares, so that the first taker
   of the run finds a two-sided book (:func:`ladder`). The first order goes alone (the gateway's way to the engine
   may still be connecting when the mesh has just started), then ``seed_concurrency`` at once.

Every seeding call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again, unchanged (an order with the same
client_order_id: the gateway makes that safe), 100 ms doubling to 2 s between, until :data:`SEED_RETRY_S` have
passed; any other refusal fails the seeding with its status.

What is drawn from the run's generator, in order: the run prefix (8 hex digits: ids of a data directory kept from an
earlier run never collide with this run's), then each ladder order's lots. The state (:class:`State`, pickled to
every load process) holds the instruments and the ladder's orders; each load process reads its share of them back
when it connects and checks them at the end of the run (:mod:`.traders`, :mod:`.end_checks`).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from pydantic import Field, model_validator

from casemesh.services.trading.contract import MAX_STREAM_DEPTH, MAX_STREAM_SYMBOLS
from casemesh.trading.v1 import marketdata_pb2, orders_pb2, trading_pb2

from ..base import Caller, Params
from .prices import BUY, SELL, Instrument, Top

ENGINE = "trading-engine"
GATEWAY = "trading-gateway"
MARKETDATA = "trading-marketdata"

#: Seconds a seeding call answered with one of :data:`RETRIED` is sent again for (a mesh that has just started).
SEED_RETRY_S = 20.0
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class SeedParams(Params):
    """Instruments, the ladder, each load process's traders and subscribers, and the end-of-run checks (defaults: the
    ``trading`` profile's)."""

    symbols: int = Field(default=0, ge=0, le=MAX_STREAM_SYMBOLS,
                         description="symbols traded: the first N listed (0: every listed one, at most 32)")
    lot_shares: int = Field(default=100, ge=1, le=10_000, description="shares of one lot (a US round lot: 100)")
    ladder_levels: int = Field(default=10, ge=0, le=500, description="ladder prices a side per symbol")
    ladder_orders_per_level: int = Field(default=3, ge=1, le=100, description="ladder orders at each price")
    ladder_half_spread_ticks: int = Field(default=1, ge=1, le=10_000,
                                          description="ticks from the centre to the ladder's best bid and best ask")
    ladder_step_ticks: int = Field(default=1, ge=1, le=10_000, description="ticks between two ladder prices")
    ladder_lots_max: int = Field(default=5, ge=1, le=1_000, description="a ladder order holds 1 to this many lots")
    seed_concurrency: int = Field(default=16, ge=1, le=256, description="PlaceOrder calls in flight while seeding")
    makers: int = Field(default=4, ge=1, le=1_000,
                        description="market maker accounts per load process (quote and cancel_replace journeys)")
    takers: int = Field(default=4, ge=1, le=1_000, description="taker accounts per load process (take journeys)")
    max_quotes_per_maker: int = Field(default=200, ge=1, le=100_000,
                                      description="resting quotes a maker keeps at most: at the limit it cancels its "
                                                  "oldest before quoting again (below the gateway's max_open_orders, "
                                                  "1,000)")
    subscribers: int = Field(default=3, ge=1, le=64,
                             description="market data streams per load process held for the whole run, each "
                                         "following every symbol")
    subscriber_depth: int = Field(default=5, ge=1, le=MAX_STREAM_DEPTH, description="levels per side they follow")
    price_band_pct: float = Field(default=10.0, gt=0, le=100,
                                  description="the gateway's price band around the last trade, % (trading-gateway's "
                                              "price_band_pct)")
    band_margin_pct: float = Field(default=2.0, ge=0, lt=100,
                                   description="prices stay this much inside the band, % (this view lags the "
                                               "gateway's)")
    ready_timeout_s: float = Field(default=10.0, gt=0, le=600,
                                   description="seconds the subscribers have for their first snapshots at connect")
    check_orders: int = Field(default=500, ge=0, le=1_000_000,
                              description="own orders read back (GetOrder) at the end of the run and checked against "
                                          "the trades the market data showed (0: none)")
    check_books: bool = Field(default=True,
                              description="at the end, check every book (GetBook with its orders) and compare it with "
                                          "the market data's top (load process 0)")
    check_concurrency: int = Field(default=16, ge=1, le=256, description="end-of-run check calls in flight")
    quiet_s: float = Field(default=0.5, gt=0, le=60,
                           description="at the end, the market data is caught up once nothing arrived for this long, s")
    settle_timeout_s: float = Field(default=5.0, gt=0, le=600,
                                    description="the longest wait for that quiet at the end, s")

    @model_validator(mode="after")
    def _band(self) -> SeedParams:
        if self.band_margin_pct >= self.price_band_pct:
            raise ValueError(f"band_margin_pct ({self.band_margin_pct:g}) must be below price_band_pct "
                             f"({self.price_band_pct:g})")
        return self

    @property
    def trading_band_pct(self) -> float:
        """The band the workload's prices keep to, %: the gateway's less the margin."""
        return self.price_band_pct - self.band_margin_pct


@dataclass(frozen=True)
class Placed:
    """An order as placed and acknowledged: its ids, what was asked, and the shares filled in its answer."""

    order_id: str
    client_order_id: str
    account_id: str
    symbol: str
    side: int
    type: int
    price_minor: int
    quantity: int
    filled_at_ack: int = 0


@dataclass
class State:
    """What the seeder made (picklable): the run's prefix, the traded instruments, the ladder's orders."""

    run: str
    instruments: list[Instrument]
    ladder: list[Placed]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def ladder_account(run: str, symbol: str) -> str:
    """The liquidity provider of ``symbol`` in run ``run``."""
    return f"lp{run}-{symbol}"


def ladder(run: str, top: Top, params: SeedParams, rng: random.Random) -> list[orders_pb2.PlaceOrderRequest]:
    """The ladder of one symbol (module docstring): bids below the centre and asks above, best first, inside the band
    (levels beyond it are left out)."""
    instrument = top.instrument
    tick = instrument.tick_minor
    centre = top.centre // tick * tick
    low, high = top.band(params.trading_band_pct)
    account = ladder_account(run, instrument.symbol)
    requests = []
    for level in range(params.ladder_levels):
        ticks = params.ladder_half_spread_ticks + level * params.ladder_step_ticks
        for side, price in ((BUY, centre - ticks * tick), (SELL, centre + ticks * tick)):
            if not low <= price <= high:
                continue
            for j in range(params.ladder_orders_per_level):
                requests.append(orders_pb2.PlaceOrderRequest(
                    client_order_id=f"ladder-{'b' if side == BUY else 's'}{level}-{j}", account_id=account,
                    symbol=instrument.symbol, side=side, type=trading_pb2.ORDER_TYPE_LIMIT, price_minor=price,
                    quantity=rng.randint(1, params.ladder_lots_max) * params.lot_shares))
    return requests


async def seed_call(call: Caller, service: str, method: str, request: object, *,
                    clock: Callable[[], float] = time.monotonic,
                    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> object:
    """One seeding call, sent again on :data:`RETRIED` (module docstring)."""
    give_up = clock() + SEED_RETRY_S
    for attempt in itertools.count():
        try:
            return await call(service, method, request)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or clock() >= give_up:
                raise
        await sleep(min(0.1 * 2 ** attempt, 2.0))
    raise AssertionError("unreachable")  # pragma: no cover


def placed(request: orders_pb2.PlaceOrderRequest, order: trading_pb2.Order) -> Placed:
    """What was placed, with the order id and the shares filled that its answer gave."""
    return Placed(order.order_id, request.client_order_id, request.account_id, request.symbol, request.side,
                  request.type, request.price_minor, request.quantity, order.filled_quantity)


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """List the instruments, find each book's centre, rest the ladder; returns the state."""
    run = run_prefix(rng)
    listed = (await seed_call(call, GATEWAY, "ListInstruments", orders_pb2.ListInstrumentsRequest())).instruments
    chosen = list(listed)[:params.symbols or MAX_STREAM_SYMBOLS]
    if not chosen:
        raise grpc.aio.AioRpcError(grpc.StatusCode.FAILED_PRECONDITION, grpc.aio.Metadata(), grpc.aio.Metadata(),
                                   "ListInstruments lists no instrument: nothing to trade")
    instruments = [Instrument(i.symbol, i.tick_minor, i.reference_price_minor, i.currency_code) for i in chosen]
    requests: list[orders_pb2.PlaceOrderRequest] = []
    for instrument in instruments:
        top = Top(instrument)
        answer = await seed_call(call, MARKETDATA, "GetTopOfBook",
                                 marketdata_pb2.GetTopOfBookRequest(symbol=instrument.symbol))
        if answer.HasField("last_trade"):
            top.trade(answer.last_trade.sequence, answer.last_trade.price_minor)
        requests += ladder(run, top, params, rng)
    limit = asyncio.Semaphore(params.seed_concurrency)

    async def place(request: orders_pb2.PlaceOrderRequest) -> Placed:
        async with limit:
            return placed(request, (await seed_call(call, GATEWAY, "PlaceOrder", request)).order)

    first = [await place(requests[0])] if requests else []
    return State(run=run, instruments=instruments,
                 ladder=first + list(await asyncio.gather(*(place(r) for r in requests[1:]))))
