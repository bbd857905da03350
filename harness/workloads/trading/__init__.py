"""The stock exchange workload (seed 001 #08 "Stock Trading", shared/seeds/001_58dfc580020147d2.txt line 22: "Order
matching engine, order book, market data, low-latency | <10ms p99 latency, NASDAQ-scale").

Seeding (:mod:`.seeding`) lists the instruments (OrderEntryService.ListInstruments) and rests a ladder of limit
orders on both sides of every book around its price, so takers have liquidity from the first second. Each load
process then holds a few MarketDataService.StreamMarketData streams of every symbol for the whole run
(:mod:`.market_data`), and open-loop arrivals are traders' journeys (:mod:`.journeys`): market makers' ``quote`` and
``cancel_replace`` (most of an exchange's messages), takers' marketable ``take`` orders, ``query`` (GetOrder), and
market data clients joining (``subscribe``). Every order carries a client_order_id and is retried with it
(:mod:`casemesh.harness.workloads.idempotent_retry`); prices follow the book as the process sees it, inside the
gateway's price band (:mod:`.prices`).

Measures: the driver records every RPC, OrderEntryService/PlaceOrder among them (the order acknowledgement: the
seed's "< 10 ms p99"); ``market_data_freshness`` (a trade's engine time to its arrival on a stream),
``market_data_first_message`` (a stream's time to its first message), ``order_to_trade_visible`` (a taker's order
sent to its trade on the market data); and the invariants ``order_integrity`` (every answer and read-back),
``market_data_sequence`` (every stream session), ``book_integrity`` and ``fills_match_trades`` (at the end:
:mod:`.end_checks`). The workload speaks only the contracts (protos/casemesh/trading/v1) and
casemesh.services.trading.contract.
"""

from __future__ import annotations

import logging
import random

from casemesh.trading.v1 import (
    engine_pb2,
    engine_pb2_grpc,
    marketdata_pb2,
    marketdata_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .end_checks import finish
from .invariants import BOOK_INTEGRITY, FILLS_MATCH_TRADES, ORDER_INTEGRITY
from .journeys import (
    QueryParams,
    QuoteParams,
    SubscribeParams,
    TakeParams,
    cancel_replace,
    query,
    quote,
    subscribe,
    take,
)
from .market_data import FIRST_MESSAGE, FRESHNESS, ORDER_TO_TRADE_VISIBLE, SEQUENCE
from .seeding import ENGINE, GATEWAY, MARKETDATA, SeedParams, State, seed
from .traders import Trading

log = logging.getLogger("casemesh.workloads.trading")

_SERVICES = {
    GATEWAY: (orders_pb2, "OrderEntryService", orders_pb2_grpc.OrderEntryServiceStub),
    MARKETDATA: (marketdata_pb2, "MarketDataService", marketdata_pb2_grpc.MarketDataServiceStub),
    ENGINE: (engine_pb2, "MatchingEngineService", engine_pb2_grpc.MatchingEngineServiceStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)

MEASURES = (FRESHNESS, FIRST_MESSAGE, ORDER_TO_TRADE_VISIBLE, ORDER_INTEGRITY, SEQUENCE, BOOK_INTEGRITY,
            FILLS_MATCH_TRADES)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Trading:
    """This process's traders and market data, once every held stream has its snapshots; ``rng`` is not used (the
    session's ids are drawn from the system's generator: a capacity step's connect must not repeat the last one's)."""
    live = Trading(streams, state, params)
    try:
        await live.start()
    except BaseException:
        await live.stop()
        raise
    return live


async def disconnect(live: Trading) -> None:
    """The end-of-run checks (:mod:`.end_checks`), then the held streams closed."""
    try:
        await finish(live)
    except Exception:  # a bug here must not lose the run's other results
        log.exception("trading: the end-of-run checks failed")
    finally:
        await live.stop()
        log.info("trading: %s; %d market data messages, %d trades on the first stream; subscriber sessions %s, "
                 "errors %s", dict(live.counts), live.market.messages, live.market.ledger.trades,
                 [s.sessions for s in live.subscribers], [dict(s.errors) for s in live.subscribers])


WORKLOAD = Workload(
    name="trading",
    description="Stock exchange (shared/seeds/001 #08 'Stock Trading', NASDAQ): market makers quoting and cancelling "
                "around a seeded ladder, takers trading against it, order queries, and market data streams held for "
                "the run, with the books and every order's fills checked at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=_ENTRYPOINTS.rpcs,
    journeys={
        j.name: j
        for j in (
            Journey("quote", "A market maker rests a limit order a few ticks behind the best price of a side (its "
                    "oldest quote cancelled first at its limit)", QuoteParams, quote),
            Journey("cancel_replace", "A market maker cancels one of its resting orders and rests a new one at the "
                    "book's current price", QuoteParams, cancel_replace),
            Journey("take", "A taker's market order or marketable limit (its rest cancelled at once); its first trade "
                    "awaited on the market data (order_to_trade_visible)", TakeParams, take),
            Journey("query", "GetOrder of one of the process's newest orders, checked", QueryParams, query),
            Journey("subscribe", "A market data client follows a few symbols for a few seconds "
                    "(market_data_first_message)", SubscribeParams, subscribe),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
