"""Stock trading through real gRPC: many brokers' orders, retried with their client order IDs, while the matching
engine is SIGKILLed and restarted; afterwards the rebuilt order book equals the live one and every fill adds up.

CASE-STUDY.md point 5 for stock trading (seed 001 #08, shared/seeds/001_58dfc580020147d2.txt line 22: "Order matching
engine, order book, market data"; the issue: "a sequenced, durable event log from which the book can be rebuilt after
a crash", "the rebuilt order book equals the live one"). Brokers place limit orders around a mid price (some
crossing, so they trade), market orders and cancels, retrying on UNAVAILABLE and DEADLINE_EXCEEDED with the same
client order ID as the contract allows. The engine is killed mid-run and restarted; then, once the run is over, every
book is read (GetBook with every resting order), the engine is killed again and restarted, and every book must read
back the same. Every acknowledged order is still there, at least as filled as acknowledged; the engine's event log
(StreamEvents from sequence 1) has no gap, and each order's filled quantity is the sum of its trades in it; the market
data service, which followed the engine across both restarts, shows the same best bid and ask as the engine.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict

import grpc
import pytest

from casemesh.harness.mesh import Mesh
from casemesh.services.runtime.identity import service_identity
from casemesh.trading.v1 import (
    engine_pb2, engine_pb2_grpc, marketdata_pb2, marketdata_pb2_grpc, orders_pb2, orders_pb2_grpc, trading_pb2,
)

from ..caller_identity import identified_channel
from .waiting import eventually

SERVICES = ["trading-engine", "trading-gateway", "trading-marketdata"]
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
CLIENTS, ORDERS_EACH = 16, 30


async def _retried(call, request, rng: random.Random):
    """Send ``request`` until it has a final answer, retrying the same request with jittered backoff."""
    for attempt in range(200):
        try:
            return await call(request, timeout=5)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(1.0, 0.05 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request}")


async def _books(engine: engine_pb2_grpc.MatchingEngineServiceStub, symbols: list[str]) -> dict[str, tuple]:
    books = {}
    for symbol in symbols:
        book = await engine.GetBook(engine_pb2.GetBookRequest(symbol=symbol, include_orders=True), timeout=10)
        books[symbol] = (book.sequence, list(book.bids), list(book.asks), list(book.bid_orders), list(book.ask_orders))
    return books


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_the_rebuilt_book_equals_the_live_one_across_engine_kills(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None) as mesh:
        channels = {name: grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)
                    for name in SERVICES}
        gateway = orders_pb2_grpc.OrderEntryServiceStub(channels["trading-gateway"])
        engine = engine_pb2_grpc.MatchingEngineServiceStub(channels["trading-engine"])
        marketdata = marketdata_pb2_grpc.MarketDataServiceStub(channels["trading-marketdata"])
        feed_channel = identified_channel(mesh.topology.endpoint("trading-engine").address, mesh.secret,
                                          identity=service_identity("trading-marketdata"), options=FAST_RECONNECT)
        # GetOrder is the order gateway's (an internal method): the test reads orders back as the gateway would.
        gateway_channel = identified_channel(mesh.topology.endpoint("trading-engine").address, mesh.secret,
                                             identity=service_identity("trading-gateway"), options=FAST_RECONNECT)
        orders_of = engine_pb2_grpc.MatchingEngineServiceStub(gateway_channel)
        acked: dict[str, trading_pb2.Order] = {}  # order id → the order as acknowledged (its latest answer)
        placed = 0
        try:
            instruments = (await gateway.ListInstruments(orders_pb2.ListInstrumentsRequest(), timeout=10)).instruments
            listed = list(instruments[:3])
            symbols = [i.symbol for i in listed]

            async def client(n: int) -> None:
                nonlocal placed
                rng = random.Random(n)
                mine: list[str] = []
                for i in range(ORDERS_EACH):
                    instrument = rng.choice(listed)
                    roll = rng.random()
                    if roll < 0.15 and mine:
                        order_id = mine.pop(rng.randrange(len(mine)))
                        try:
                            answer = await _retried(gateway.CancelOrder, orders_pb2.OrderEntryServiceCancelOrderRequest(
                                account_id=f"broker-{n}", order_id=order_id), rng)
                            acked[order_id] = answer.order
                        except grpc.aio.AioRpcError as error:
                            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error  # filled meanwhile
                        continue
                    side = rng.choice((trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL))
                    market = roll > 0.93
                    offset = rng.randint(-5, 5) * instrument.tick_minor  # around the reference: many cross
                    request = orders_pb2.PlaceOrderRequest(
                        client_order_id=f"c{n}-{i}", account_id=f"broker-{n}", symbol=instrument.symbol, side=side,
                        type=trading_pb2.ORDER_TYPE_MARKET if market else trading_pb2.ORDER_TYPE_LIMIT,
                        price_minor=0 if market else instrument.reference_price_minor + offset,
                        quantity=rng.randint(1, 20) * 10)
                    answer = await _retried(gateway.PlaceOrder, request, rng)
                    acked[answer.order.order_id] = answer.order
                    placed += 1
                    if answer.order.status in (trading_pb2.ORDER_STATUS_NEW, trading_pb2.ORDER_STATUS_PARTIALLY_FILLED):
                        mine.append(answer.order.order_id)
                    await asyncio.sleep(rng.uniform(0, 0.02))

            clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
            await eventually(lambda: placed >= 120, "120 orders acknowledged before the engine's kill", 60)
            assert mesh.kill("trading-engine", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["trading-engine"])
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            assert placed > CLIENTS * ORDERS_EACH // 2, placed

            # The live books, then the same books rebuilt from the log by a restarted engine.
            live = await _books(engine, symbols)
            assert any(book[3] or book[4] for book in live.values()), live
            assert mesh.kill("trading-engine", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["trading-engine"])
            rebuilt = await _books(engine, symbols)
            assert rebuilt == live

            # Every acknowledged order survived, at least as filled as it was acknowledged.
            for order_id, order in acked.items():
                now = (await orders_of.GetOrder(engine_pb2.GetOrderRequest(order_id=order_id), timeout=10)).order
                assert now.filled_quantity >= order.filled_quantity, (order, now)
                assert (now.account_id, now.symbol, now.side, now.quantity) == (
                    order.account_id, order.symbol, order.side, order.quantity)

            # The log has no gap, and each order's filled quantity is the sum of its trades in it.
            feed = engine_pb2_grpc.MatchingEngineServiceStub(feed_channel)
            last = max(book[0] for book in rebuilt.values())
            fills: dict[str, int] = defaultdict(int)
            orders: dict[str, trading_pb2.Order] = {}
            sequence = 0
            stream = feed.StreamEvents(engine_pb2.StreamEventsRequest(from_sequence=1))
            async for message in stream:
                event = message.event
                assert event.sequence == sequence + 1, (sequence, event)
                sequence = event.sequence
                kind = event.WhichOneof("kind")
                if kind == "accepted":
                    orders[event.accepted.order_id] = event.accepted
                elif kind == "trade":
                    fills[event.trade.maker_order_id] += event.trade.quantity
                    fills[event.trade.taker_order_id] += event.trade.quantity
                if sequence >= last:
                    break
            stream.cancel()
            assert set(acked) <= set(orders)
            for order_id in orders:
                now = (await orders_of.GetOrder(engine_pb2.GetOrderRequest(order_id=order_id), timeout=10)).order
                assert now.filled_quantity == fills[order_id] <= now.quantity, (now, fills[order_id])

            # Market data followed the engine across both restarts: the same best bid and ask.
            def best(levels):
                return (levels[0].price_minor, levels[0].quantity) if levels else None

            async def same_top() -> bool:
                for symbol, (_, bids, asks, _, _) in rebuilt.items():
                    top = await marketdata.GetTopOfBook(marketdata_pb2.GetTopOfBookRequest(symbol=symbol), timeout=10)
                    mine = ((top.best_bid.price_minor, top.best_bid.quantity) if top.HasField("best_bid") else None,
                            (top.best_ask.price_minor, top.best_ask.quantity) if top.HasField("best_ask") else None)
                    if mine != (best(bids), best(asks)):
                        return False
                return True

            for _ in range(300):
                if await same_top():
                    break
                await asyncio.sleep(0.1)
            assert await same_top()
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            for channel in (*channels.values(), feed_channel, gateway_channel):
                await channel.close()
