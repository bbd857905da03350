"""trading-marketdata (services/trading/marketdata): books rebuilt from engine events (against a naive price-time
matching model, with hypothesis), the publisher's snapshot / trade / depth fan-out and its slow-subscriber drop as
plain domain tests; and the component over gRPC following the scripted MatchingEngineService of
tests/unit/test_trading_engine_feed.py (a real grpc.aio server on 127.0.0.1:0): snapshot first, then trades and
depth changes in sequence order, GetTopOfBook, bad requests, a slow subscriber ended RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import itertools

import grpc
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology
from casemesh.services.trading.marketdata import service, validation
from casemesh.services.trading.marketdata.books import Books, SymbolBook
from casemesh.services.trading.marketdata.publisher import Publisher, SubscriberEnded
from casemesh.services.trading.marketdata.settings import MarketDataSettings
from casemesh.trading.v1 import engine_pb2, marketdata_pb2, marketdata_pb2_grpc, trading_pb2

from .test_trading_engine_feed import WAIT_S, EngineServer, order, trade, until

BUY, SELL = trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL
LIMIT, MARKET = trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


class Log:
    """Engine events numbered 1, 2, 3, ... (at_unix_ns = 1000 x sequence)."""

    def __init__(self) -> None:
        self.events: list[engine_pb2.EngineEvent] = []

    def add(self, **kind) -> engine_pb2.EngineEvent:
        sequence = len(self.events) + 1
        event = engine_pb2.EngineEvent(sequence=sequence, at_unix_ns=1000 * sequence, **kind)
        self.events.append(event)
        return event


# ----------------------------------------------------------------------------- books


def test_resting_orders_aggregate_by_price_best_first():
    book = SymbolBook("AAPL")
    for i, (side, price, qty) in enumerate([(BUY, 100, 10), (BUY, 101, 5), (BUY, 100, 7), (SELL, 103, 4),
                                            (SELL, 102, 6), (SELL, 103, 1)]):
        book.accepted(order(f"o{i}", side=side, price=price, quantity=qty), i + 1)
    assert book.top(5) == (((101, 5, 1), (100, 17, 2)), ((102, 6, 1), (103, 5, 2)))
    assert book.top(1) == (((101, 5, 1),), ((102, 6, 1),))
    assert book.best(BUY) == (101, 5, 1) and book.best(SELL) == (102, 6, 1)
    assert book.sequence == 6
    book.cancelled(order("o0"), 7)
    assert book.top(5)[0] == ((101, 5, 1), (100, 7, 1))
    book.cancelled(order("unknown"), 8)
    assert book.sequence == 8


def test_a_crossing_limit_order_rests_only_after_its_trades():
    book = SymbolBook("AAPL")
    book.accepted(order("s1", side=SELL, price=101, quantity=5), 1)
    book.accepted(order("s2", side=SELL, price=102, quantity=5), 2)
    book.accepted(order("b", side=BUY, price=102, quantity=12), 3)
    assert book.top(5) == ((), ((101, 5, 1), (102, 5, 1)))  # not crossed: the buy is incoming
    book.trade(trade("AAPL", 101, 5, "s1", "b"), 4)
    assert book.top(5) == ((), ((102, 5, 1),))
    book.trade(trade("AAPL", 102, 5, "s2", "b"), 5)
    assert book.top(5) == (((102, 2, 1),), ())  # the rest rests once nothing crosses
    assert book.last_trade.price_minor == 102 and book.sequence == 5


def test_a_market_order_never_rests():
    book = SymbolBook("AAPL")
    book.accepted(order("s1", side=SELL, price=101, quantity=5), 1)
    book.accepted(order("m", side=BUY, type_=MARKET, price=0, quantity=8), 2)
    book.trade(trade("AAPL", 101, 5, "s1", "m"), 3)
    book.cancelled(order("m", type_=MARKET, price=0), 4)
    assert book.top(5) == ((), ())
    book.accepted(order("m2", side=SELL, type_=MARKET, price=0, quantity=8), 5)
    book.cancelled(order("m2", type_=MARKET, price=0), 6)
    assert book.top(5) == ((), ())


def test_books_apply_events_by_symbol():
    books, log = Books(), Log()
    assert books.apply(log.add(accepted=order("a", symbol="AAPL"))).symbol == "AAPL"
    assert books.apply(log.add(accepted=order("m", symbol="MSFT", side=SELL, price=500))).symbol == "MSFT"
    assert (books.sequence, books.at_unix_ns) == (2, 2000)
    assert books.get("AAPL").sequence == 1 and books.get("MSFT").sequence == 2 and books.get("X") is None


class NaiveEngine:
    """Price-time matching over plain lists, emitting the engine's events: the reference the books are checked by."""

    def __init__(self) -> None:
        self.log = Log()
        self.resting: list[list] = []  # [order_id, side, price, left, sequence]
        self.ids = itertools.count()

    def submit(self, side: int, type_: int, price: int, quantity: int) -> None:
        oid = f"o{next(self.ids)}"
        accepted = self.log.add(accepted=order(oid, side=side, type_=type_, price=price, quantity=quantity))
        left = quantity
        while left:
            makers = [r for r in self.resting if r[1] != side and (type_ == MARKET or (
                r[2] <= price if side == BUY else r[2] >= price))]
            if not makers:
                break
            maker = min(makers, key=lambda r: (r[2] if side == BUY else -r[2], r[4]))
            shares = min(left, maker[3])
            self.log.add(trade=trade("AAPL", maker[2], shares, maker[0], oid, side))
            maker[3] -= shares
            left -= shares
            if not maker[3]:
                self.resting.remove(maker)
        if left and type_ == LIMIT:
            self.resting.append([oid, side, price, left, accepted.sequence])
        elif left:
            self.log.add(cancelled=order(oid, side=side, type_=type_, price=0, quantity=quantity))

    def cancel(self, index: int) -> None:
        if self.resting:
            oid = self.resting.pop(index % len(self.resting))[0]
            self.log.add(cancelled=order(oid))

    def levels(self, side: int) -> tuple:
        prices = sorted({r[2] for r in self.resting if r[1] == side}, reverse=side == BUY)
        return tuple((p, sum(r[3] for r in self.resting if r[1] == side and r[2] == p),
                      sum(1 for r in self.resting if r[1] == side and r[2] == p)) for p in prices)


#: Prices in a narrow band so that orders cross often; limit orders outnumber market orders and cancels.
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("limit"), st.sampled_from([BUY, SELL]), st.integers(98, 102), st.integers(1, 20)),
    st.tuples(st.just("limit"), st.sampled_from([BUY, SELL]), st.integers(98, 102), st.integers(1, 20)),
    st.tuples(st.just("market"), st.sampled_from([BUY, SELL]), st.just(0), st.integers(1, 30)),
    st.tuples(st.just("cancel"), st.integers(0, 50), st.just(0), st.just(0)),
), min_size=5, max_size=60)


@hypothesis_settings(max_examples=60, deadline=None)
@given(ACTIONS)
def test_books_match_a_naive_price_time_engine_and_are_never_crossed(actions):
    engine, book = NaiveEngine(), SymbolBook("AAPL")
    applied = 0
    for kind, a, price, quantity in actions:
        if kind == "cancel":
            engine.cancel(a)
        else:
            engine.submit(a, LIMIT if kind == "limit" else MARKET, price, quantity)
        for event in engine.log.events[applied:]:
            getattr(book, event.WhichOneof("kind"))(getattr(event, event.WhichOneof("kind")), event.sequence)
            bid, ask = book.best(BUY), book.best(SELL)
            assert bid is None or ask is None or bid[0] < ask[0]
        applied = len(engine.log.events)
        assert book.top(1_000) == (engine.levels(BUY), engine.levels(SELL))


# ----------------------------------------------------------------------------- the publisher


def drain(subscriber) -> list[marketdata_pb2.StreamMarketDataResponse]:
    messages = []
    while subscriber._messages:
        messages.append(subscriber._messages.popleft())
    return messages


def kinds(messages) -> list[tuple[str, str, int]]:
    return [(m.symbol, m.WhichOneof("update"), m.sequence) for m in messages]


def test_subscribe_sends_a_snapshot_per_symbol_then_trades_and_depth_changes():
    publisher, log = Publisher(100), Log()
    publisher.on_event(log.add(accepted=order("s1", side=SELL, price=101, quantity=5)))
    publisher.on_event(log.add(accepted=order("s2", side=SELL, price=102, quantity=5)))
    sub = publisher.subscribe(["AAPL", "MSFT"], 1)
    snapshots = drain(sub)
    assert kinds(snapshots) == [("AAPL", "snapshot", 2), ("MSFT", "snapshot", 2)]
    assert [(lv.price_minor, lv.quantity, lv.order_count) for lv in snapshots[0].snapshot.asks] == [(101, 5, 1)]
    assert snapshots[0].engine_at_unix_ns == 2000 and not snapshots[1].snapshot.asks
    publisher.on_event(log.add(accepted=order("s3", side=SELL, price=102, quantity=1)))  # below the top 1: nothing
    assert drain(sub) == []
    publisher.on_event(log.add(accepted=order("b", side=BUY, price=101, quantity=2)))  # incoming: no change yet
    assert drain(sub) == []
    publisher.on_event(log.add(trade=trade("AAPL", 101, 2, "s1", "b")))
    messages = drain(sub)
    assert kinds(messages) == [("AAPL", "trade", 5), ("AAPL", "depth", 5)]
    assert messages[0].trade.price_minor == 101 and messages[0].engine_at_unix_ns == 5000
    assert [(lv.price_minor, lv.quantity) for lv in messages[1].depth.asks] == [(101, 3)]
    publisher.on_event(log.add(accepted=order("m", symbol="MSFT", side=BUY, price=400)))
    assert kinds(drain(sub)) == [("MSFT", "depth", 6)]


def test_an_event_touches_only_its_symbol_s_subscribers_and_groups_share_messages():
    publisher, log = Publisher(100), Log()
    aapl_1, aapl_1b, aapl_5 = (publisher.subscribe(["AAPL"], 1), publisher.subscribe(["AAPL"], 1),
                               publisher.subscribe(["AAPL"], 5))
    msft = publisher.subscribe(["MSFT"], 1)
    for s in (aapl_1, aapl_1b, aapl_5, msft):
        drain(s)
    publisher.on_event(log.add(accepted=order("a", price=100)))
    publisher.on_event(log.add(accepted=order("b", price=99)))
    one, one_b, five = drain(aapl_1), drain(aapl_1b), drain(aapl_5)
    assert kinds(one) == [("AAPL", "depth", 1)] and one[0] is one_b[0]
    assert kinds(five) == [("AAPL", "depth", 1), ("AAPL", "depth", 2)]
    assert drain(msft) == []
    publisher.unsubscribe(aapl_1)
    publisher.unsubscribe(aapl_1)  # idempotent
    publisher.unsubscribe(aapl_1b)
    assert set(publisher._index["AAPL"]) == {5}
    publisher.unsubscribe(aapl_5)
    assert "AAPL" not in publisher._index


def test_a_subscriber_that_falls_behind_is_ended_and_the_others_go_on():
    publisher, log = Publisher(3), Log()
    slow, fast = publisher.subscribe(["AAPL"], 1), publisher.subscribe(["AAPL"], 1)
    dropped = sample("casemesh_trading_marketdata_dropped_subscribers_total")
    drain(fast)
    for price in (100, 101, 102):
        publisher.on_event(log.add(accepted=order(f"o{price}", price=price)))
        drain(fast)
    assert slow.ended is not None and slow.ended.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert slow not in publisher.subscribers and fast in publisher.subscribers
    assert sample("casemesh_trading_marketdata_dropped_subscribers_total") == dropped + 1
    publisher.on_event(log.add(accepted=order("o103", price=103)))
    assert kinds(drain(fast)) == [("AAPL", "depth", 4)]


async def test_next_waits_for_a_message_and_raises_once_ended():
    publisher, log = Publisher(10), Log()
    sub = publisher.subscribe(["AAPL"], 1)
    assert (await sub.next()).HasField("snapshot")
    waiting = asyncio.ensure_future(sub.next())
    await asyncio.sleep(0)
    publisher.on_event(log.add(accepted=order("a", price=100)))
    assert (await asyncio.wait_for(waiting, WAIT_S)).HasField("depth")
    publisher.end_all(grpc.StatusCode.UNAVAILABLE, "shutting down")
    with pytest.raises(SubscriberEnded):
        await sub.next()


# ----------------------------------------------------------------------------- settings and validation


def test_settings():
    assert MarketDataSettings().subscriber_queue_size == 10_000
    for bad in ({"subscriber_queue_size": 31}, {"feed_initial_backoff_s": 3, "feed_max_backoff_s": 1}, {"x": 1}):
        with pytest.raises(ValidationError):
            MarketDataSettings.model_validate(bad)


@pytest.mark.parametrize(("symbols", "depth", "field"), [
    ([], 5, "symbols"),
    ([f"S{chr(65 + i // 26)}{chr(65 + i % 26)}" for i in range(33)], 5, "symbols"),
    (["AAPL", "aapl"], 5, "symbols[1]"),
    (["AAPL", ""], 5, "symbols[1]"),
    (["AAPL", "MSFT", "AAPL"], 5, "symbols[2]"),
    (["AAPL"], 0, "depth"),
    (["AAPL"], 51, "depth"),
])
def test_stream_validation_names_the_field(symbols, depth, field):
    with pytest.raises(InvalidArgument) as error:
        validation.stream_market_data(marketdata_pb2.StreamMarketDataRequest(symbols=symbols, depth=depth))
    assert error.value.field == field


def test_stream_validation_accepts_32_symbols_and_depth_50():
    symbols = [f"S{chr(65 + i)}" for i in range(26)] + [f"T{chr(65 + i)}" for i in range(6)]
    assert validation.stream_market_data(marketdata_pb2.StreamMarketDataRequest(symbols=symbols, depth=50)) == (
        symbols, 50)


# ----------------------------------------------------------------------------- over gRPC


def test_definition():
    d = service.DEFINITION
    assert d.name == "trading-marketdata"
    assert d.grpc_services == ("casemesh.trading.v1.MarketDataService",)
    assert d.dependencies == ("trading-engine",)
    assert d.access.public == {"StreamMarketData", "GetTopOfBook"} and not d.access.internal
    assert d.settings_model is MarketDataSettings
    assert d.default_limits["casemesh.trading.v1.MarketDataService/StreamMarketData"] >= 1_000


class Mesh:
    """The fake engine, the market data component following it (started), its servicer on a server with the
    runtime's interceptor, and a stub."""

    def __init__(self) -> None:
        self.engine = EngineServer()

    async def open(self, **settings) -> Mesh:
        await self.engine.start()
        topology = Topology(services={"trading-marketdata": Endpoint(address="127.0.0.1:1"),
                                      "trading-engine": Endpoint(address=self.engine.address)},
                            settings={"trading-marketdata": {"feed_initial_backoff_s": 0.001,
                                                             "feed_max_backoff_s": 0.01, **settings}})
        self.context = RuntimeContext(topology)
        self.component = await service.DEFINITION.build(self.context.for_service(service.NAME))
        await self.component.start()
        self.server = grpc.aio.server(interceptors=[ServerInterceptor(
            metrics=RpcMetrics("server", registry=CollectorRegistry()))])
        self.component.register(self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        await self.server.start()
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stub = marketdata_pb2_grpc.MarketDataServiceStub(self.channel)
        return self

    @property
    def fake(self):
        return self.engine.fake

    async def caught_up(self) -> None:
        await until(lambda: self.component.feed.last_sequence == len(self.fake.events))

    async def close(self) -> None:
        await self.channel.close()
        await self.component.stop()
        await self.server.stop(None)
        await self.context.close()
        await self.engine.stop()


@pytest.fixture
async def mesh():
    m = await Mesh().open()
    try:
        yield m
    finally:
        await m.close()


async def read(stream, n: int) -> list[marketdata_pb2.StreamMarketDataResponse]:
    return [await asyncio.wait_for(stream.read(), WAIT_S) for _ in range(n)]


async def test_stream_sends_snapshots_then_trades_and_depth_in_sequence_order(mesh):
    fake = mesh.fake
    fake.publish(accepted=order("s1", side=SELL, price=101, quantity=5))
    fake.publish(accepted=order("b1", side=BUY, price=99, quantity=3))
    await mesh.caught_up()
    stream = mesh.stub.StreamMarketData(marketdata_pb2.StreamMarketDataRequest(symbols=["AAPL", "MSFT"], depth=2),
                                        timeout=WAIT_S)
    snapshots = await read(stream, 2)
    assert kinds(snapshots) == [("AAPL", "snapshot", 2), ("MSFT", "snapshot", 2)]
    aapl = snapshots[0].snapshot
    assert [(lv.price_minor, lv.quantity, lv.order_count) for lv in aapl.bids] == [(99, 3, 1)]
    assert [(lv.price_minor, lv.quantity, lv.order_count) for lv in aapl.asks] == [(101, 5, 1)]
    assert snapshots[0].engine_at_unix_ns == fake.events[1].at_unix_ns
    fake.publish(accepted=order("b2", side=BUY, price=101, quantity=2))
    fake.publish(trade=trade("AAPL", 101, 2, "s1", "b2"))
    fake.publish(accepted=order("m1", symbol="MSFT", side=SELL, price=41_000, quantity=1))
    fake.publish(cancelled=order("b1"))
    messages = await read(stream, 4)
    assert kinds(messages) == [("AAPL", "trade", 4), ("AAPL", "depth", 4), ("MSFT", "depth", 5),
                               ("AAPL", "depth", 6)]
    assert messages[0].trade.trade_id == "AAPL-4" and messages[0].engine_at_unix_ns == fake.events[3].at_unix_ns
    assert [(lv.price_minor, lv.quantity) for lv in messages[1].depth.asks] == [(101, 3)]
    assert not messages[3].depth.bids
    stream.cancel()
    assert sample("casemesh_trading_marketdata_messages_sent_total", {"kind": "snapshot"}) >= 2
    assert sample("casemesh_trading_marketdata_publish_lag_seconds_count") >= 3
    assert sample("casemesh_trading_marketdata_feed_sequence") == 6
    await until(lambda: sample("casemesh_trading_marketdata_subscribers") == 0)


async def test_get_top_of_book(mesh):
    empty = await mesh.stub.GetTopOfBook(marketdata_pb2.GetTopOfBookRequest(symbol="AAPL"), timeout=WAIT_S)
    assert empty == marketdata_pb2.GetTopOfBookResponse()
    mesh.fake.publish(accepted=order("s1", side=SELL, price=101, quantity=5))
    mesh.fake.publish(accepted=order("s2", side=SELL, price=101, quantity=1))
    mesh.fake.publish(accepted=order("b1", side=BUY, price=101, quantity=2))
    mesh.fake.publish(trade=trade("AAPL", 101, 2, "s1", "b1"))
    mesh.fake.publish(accepted=order("x", symbol="MSFT", price=1))
    await mesh.caught_up()
    top = await mesh.stub.GetTopOfBook(marketdata_pb2.GetTopOfBookRequest(symbol="AAPL"), timeout=WAIT_S)
    assert top.sequence == 4 and not top.HasField("best_bid")
    assert (top.best_ask.price_minor, top.best_ask.quantity, top.best_ask.order_count) == (101, 4, 2)
    assert top.last_trade.trade_id == "AAPL-4"
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await mesh.stub.GetTopOfBook(marketdata_pb2.GetTopOfBookRequest(symbol="aapl"), timeout=WAIT_S)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error.value.details().startswith("symbol: ")


async def test_a_bad_stream_request_is_invalid_argument(mesh):
    stream = mesh.stub.StreamMarketData(marketdata_pb2.StreamMarketDataRequest(symbols=["AAPL", "AAPL"], depth=1),
                                        timeout=WAIT_S)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stream.read()
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details().startswith("symbols[1]: ")


async def test_a_slow_subscriber_is_ended_resource_exhausted():
    publisher = Publisher(32)
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    marketdata_pb2_grpc.add_MarketDataServiceServicer_to_server(service.MarketDataServicer(publisher), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        stream = marketdata_pb2_grpc.MarketDataServiceStub(channel).StreamMarketData(
            marketdata_pb2.StreamMarketDataRequest(symbols=["AAPL"], depth=50), timeout=WAIT_S)
        assert (await stream.read()).HasField("snapshot")
        await until(lambda: len(publisher.subscribers) == 1)
        dropped = sample("casemesh_trading_marketdata_dropped_subscribers_total")
        log = Log()
        for price in range(100, 140):  # 40 depth changes while the stream cannot run: more than its queue holds
            publisher.on_event(log.add(accepted=order(f"o{price}", price=price)))
        assert not publisher.subscribers
        assert sample("casemesh_trading_marketdata_dropped_subscribers_total") == dropped + 1
        with pytest.raises(grpc.aio.AioRpcError) as error:
            while True:
                await asyncio.wait_for(stream.read(), WAIT_S)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "reconnect" in error.value.details()
    finally:
        await channel.close()
        await server.stop(None)


async def test_stop_ends_the_streams_unavailable():
    mesh = await Mesh().open()
    try:
        stream = mesh.stub.StreamMarketData(marketdata_pb2.StreamMarketDataRequest(symbols=["AAPL"], depth=1),
                                            timeout=WAIT_S)
        await read(stream, 1)
        await mesh.component.stop()
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await asyncio.wait_for(stream.read(), WAIT_S)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await mesh.close()
