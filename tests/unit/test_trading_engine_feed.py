"""services/trading/engine_feed.py: following MatchingEngineService.StreamEvents in order, through stream errors,
gaps, repeats, an engine restart and a failing handler, without inheriting a request's deadline.

The engine is :class:`FakeEngine`, a scripted MatchingEngineService served by a real grpc.aio server on
127.0.0.1:0 (the gateway's and market data's tests use it too): StreamEvents replays its event list from
``from_sequence`` and then waits for new events; each stream call takes the next :class:`Script` (break after N
events with a status code, skip a sequence, send one twice). SubmitOrder / CancelOrder / GetOrder keep the engine's
contract for ids (a held id returns the order as it is, a different order under it is FAILED_PRECONDITION) without
matching: accepted orders rest, market orders are cancelled at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

import grpc
import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge

from casemesh.services.runtime.channels import open_channel
from casemesh.services.runtime.deadlines import INBOUND_DEADLINE
from casemesh.services.runtime.topology import CallPolicy
from casemesh.services.trading.engine_feed import EngineFeed, FeedMetrics
from casemesh.trading.v1 import engine_pb2, engine_pb2_grpc, trading_pb2

WAIT_S = 10.0


async def until(predicate, timeout_s: float = WAIT_S) -> None:
    """Wait until ``predicate()`` is true (polling); fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


# ----------------------------------------------------------------------------- the fake engine


@dataclass
class Script:
    """What one StreamEvents call does beyond replaying the log: end with ``code`` after ``break_after`` events,
    leave out sequence ``skip``, send sequence ``repeat`` twice."""

    break_after: int | None = None
    code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    skip: int | None = None
    repeat: int | None = None


def order(order_id: str, *, account: str = "acct", symbol: str = "AAPL", side: int = trading_pb2.SIDE_BUY,
          price: int = 10_000, quantity: int = 100, type_: int = trading_pb2.ORDER_TYPE_LIMIT,
          client_order_id: str = "c1") -> trading_pb2.Order:
    return trading_pb2.Order(order_id=order_id, client_order_id=client_order_id, account_id=account, symbol=symbol,
                             side=side, type=type_, price_minor=price, quantity=quantity,
                             status=trading_pb2.ORDER_STATUS_NEW)


def trade(symbol: str, price: int, quantity: int, maker: str, taker: str,
          taker_side: int = trading_pb2.SIDE_BUY) -> trading_pb2.Trade:
    return trading_pb2.Trade(symbol=symbol, price_minor=price, quantity=quantity, maker_order_id=maker,
                             taker_order_id=taker, taker_side=taker_side)


class FakeEngine(engine_pb2_grpc.MatchingEngineServiceServicer):
    """A scripted MatchingEngineService (module docstring)."""

    def __init__(self) -> None:
        self.events: list[engine_pb2.EngineEvent] = []
        self.scripts: deque[Script] = deque()
        #: (from_sequence, seconds left of the call's deadline or None) of each StreamEvents call.
        self.stream_calls: list[tuple[int, float | None]] = []
        self.orders: dict[str, trading_pb2.Order] = {}
        self.submits: list[engine_pb2.SubmitOrderRequest] = []
        self.down = False
        self._changed = asyncio.Event()

    def publish(self, *, accepted: trading_pb2.Order | None = None, trade: trading_pb2.Trade | None = None,
                cancelled: trading_pb2.Order | None = None) -> engine_pb2.EngineEvent:
        """Append the next event of the log (exactly one kind given) and wake the streams."""
        sequence = len(self.events) + 1
        event = engine_pb2.EngineEvent(sequence=sequence, at_unix_ns=time.time_ns())
        if accepted is not None:
            event.accepted.CopyFrom(accepted)
            event.accepted.accepted_sequence = sequence
        elif trade is not None:
            event.trade.CopyFrom(trade)
            event.trade.sequence = sequence
            event.trade.trade_id = f"{trade.symbol}-{sequence}"
        else:
            event.cancelled.CopyFrom(cancelled)
        self.events.append(event)
        self._changed.set()
        self._changed = asyncio.Event()
        return event

    async def StreamEvents(self, request, context):
        self.stream_calls.append((request.from_sequence, context.time_remaining()))
        script = self.scripts.popleft() if self.scripts else Script()
        position, sent = request.from_sequence, 0
        while True:
            changed = self._changed
            while position <= len(self.events):
                if script.break_after is not None and sent >= script.break_after:
                    await context.abort(script.code, "scripted failure")
                event = self.events[position - 1]
                position += 1
                if event.sequence == script.skip:
                    continue
                yield engine_pb2.StreamEventsResponse(event=event)
                sent += 1
                if event.sequence == script.repeat:
                    yield engine_pb2.StreamEventsResponse(event=event)
            await changed.wait()

    async def _check_up(self, context) -> None:
        if self.down:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the log cannot be written")

    async def SubmitOrder(self, request, context):
        await self._check_up(context)
        self.submits.append(request)
        held = self.orders.get(request.order_id)
        fields = ("client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")
        if held is not None:
            if any(getattr(held, f) != getattr(request, f) for f in fields):
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION,
                                    f"order_id: {request.order_id} is held with a different order")
            return engine_pb2.SubmitOrderResponse(order=held)
        new = trading_pb2.Order(**{f: getattr(request, f) for f in fields}, order_id=request.order_id,
                                status=trading_pb2.ORDER_STATUS_NEW)
        event = self.publish(accepted=new)
        new.accepted_sequence = event.sequence
        if new.type == trading_pb2.ORDER_TYPE_MARKET:
            new.status = trading_pb2.ORDER_STATUS_CANCELLED
            self.publish(cancelled=new)
        self.orders[new.order_id] = new
        return engine_pb2.SubmitOrderResponse(order=new)

    async def CancelOrder(self, request, context):
        await self._check_up(context)
        held = self.orders.get(request.order_id)
        if held is None or held.account_id != request.account_id:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"order {request.order_id} not found")
        if held.status == trading_pb2.ORDER_STATUS_FILLED:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"order {request.order_id} is FILLED")
        if held.status != trading_pb2.ORDER_STATUS_CANCELLED:
            held.status = trading_pb2.ORDER_STATUS_CANCELLED
            self.publish(cancelled=held)
        return engine_pb2.CancelOrderResponse(order=held)

    async def GetOrder(self, request, context):
        await self._check_up(context)
        held = self.orders.get(request.order_id)
        if held is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"order {request.order_id} not found")
        return engine_pb2.GetOrderResponse(order=held)


class EngineServer:
    """A FakeEngine on a grpc.aio server at 127.0.0.1 (``address``); ``restart`` serves a new fake with the same
    log on the same port."""

    def __init__(self) -> None:
        self.fake = FakeEngine()
        self.server: grpc.aio.Server | None = None
        self.address = ""

    async def start(self, port: int = 0) -> None:
        self.server = grpc.aio.server()
        engine_pb2_grpc.add_MatchingEngineServiceServicer_to_server(self.fake, self.server)
        bound = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.address = f"127.0.0.1:{bound}"
        await self.server.start()

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(None)
            self.server = None

    async def restart(self) -> None:
        port = int(self.address.rsplit(":", 1)[1])
        await self.stop()
        events = self.fake.events
        self.fake = FakeEngine()
        self.fake.events = events
        await self.start(port)


@pytest.fixture
async def engine_server():
    server = EngineServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


# ----------------------------------------------------------------------------- the feed


def feed_metrics() -> FeedMetrics:
    registry = CollectorRegistry()
    return FeedMetrics(reconnects=Counter("feed_reconnects", "r", ["reason"], registry=registry),
                       sequence=Gauge("feed_sequence", "s", registry=registry),
                       lag_seconds=Gauge("feed_lag_seconds", "l", registry=registry))


def reconnects(metrics: FeedMetrics, reason: str) -> float:
    return metrics.reconnects.labels(reason)._value.get()


class Harness:
    """A feed over a channel to the engine server, recording the sequences its handler took."""

    def __init__(self, address: str, *, from_sequence: int = 1, fail_once_at: int | None = None,
                 policy: CallPolicy | None = None, renew_s: float = 86_400.0) -> None:
        self.channel = (open_channel(address, policy) if policy is not None
                        else grpc.aio.insecure_channel(address))
        self.seen: list[int] = []
        self._fail_once_at = fail_once_at
        self.metrics = feed_metrics()
        self.feed = EngineFeed(engine_pb2_grpc.MatchingEngineServiceStub(self.channel), self.handle, name="test",
                               metrics=self.metrics, from_sequence=from_sequence, initial_backoff_s=0.001,
                               max_backoff_s=0.01, renew_s=renew_s)

    def handle(self, event: engine_pb2.EngineEvent) -> None:
        if event.sequence == self._fail_once_at:
            self._fail_once_at = None
            raise RuntimeError("a handler bug")
        self.seen.append(event.sequence)

    async def close(self) -> None:
        await self.feed.stop()
        await self.channel.close()


def publish_orders(fake: FakeEngine, n: int) -> None:
    for i in range(n):
        fake.publish(accepted=order(f"o{i}"))


async def test_delivers_every_event_in_order_then_follows_new_ones(engine_server):
    fake = engine_server.fake
    publish_orders(fake, 3)
    h = Harness(engine_server.address)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 3)
        publish_orders(fake, 2)
        await until(lambda: h.feed.last_sequence == 5)
        assert h.seen == [1, 2, 3, 4, 5]
        assert h.metrics.sequence._value.get() == 5
        assert [c[0] for c in fake.stream_calls] == [1]
    finally:
        await h.close()


async def test_starts_from_the_sequence_given(engine_server):
    publish_orders(engine_server.fake, 5)
    h = Harness(engine_server.address, from_sequence=4)
    assert h.feed.last_sequence == 3
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 5)
        assert h.seen == [4, 5]
        assert engine_server.fake.stream_calls[0][0] == 4
    finally:
        await h.close()


def test_from_sequence_zero_is_refused():
    with pytest.raises(ValueError, match="from_sequence"):
        EngineFeed(None, lambda e: None, name="x", metrics=feed_metrics(), from_sequence=0)


@pytest.mark.parametrize("code", [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED,
                                  grpc.StatusCode.INTERNAL])
async def test_a_stream_error_reconnects_from_the_next_sequence(engine_server, code):
    fake = engine_server.fake
    publish_orders(fake, 5)
    fake.scripts.extend([Script(break_after=2, code=code), Script(break_after=0, code=code)])
    h = Harness(engine_server.address)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 5)
        assert h.seen == [1, 2, 3, 4, 5]
        assert [c[0] for c in fake.stream_calls] == [1, 3, 3]
        assert reconnects(h.metrics, code.name.lower()) == 2
    finally:
        await h.close()


async def test_a_gap_reconnects_from_the_missing_sequence(engine_server, caplog):
    fake = engine_server.fake
    publish_orders(fake, 5)
    fake.scripts.append(Script(skip=3))
    h = Harness(engine_server.address)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 5)
        assert h.seen == [1, 2, 3, 4, 5]
        assert [c[0] for c in fake.stream_calls] == [1, 3]
        assert reconnects(h.metrics, "gap") == 1
        assert "sent sequence 4 where 3 was due" in caplog.text
    finally:
        await h.close()


async def test_a_repeated_event_is_applied_once_and_reconnects(engine_server):
    fake = engine_server.fake
    publish_orders(fake, 4)
    fake.scripts.append(Script(repeat=2))
    h = Harness(engine_server.address)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 4)
        assert h.seen == [1, 2, 3, 4]
        assert [c[0] for c in fake.stream_calls] == [1, 3]
        assert reconnects(h.metrics, "duplicate") == 1
    finally:
        await h.close()


async def test_resumes_after_the_engine_restarts(engine_server):
    publish_orders(engine_server.fake, 3)
    h = Harness(engine_server.address)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 3)
        await engine_server.restart()
        publish_orders(engine_server.fake, 2)
        await until(lambda: h.feed.last_sequence == 5)
        assert h.seen == [1, 2, 3, 4, 5]
        assert engine_server.fake.stream_calls[-1][0] == 4
    finally:
        await h.close()


async def test_a_failing_handler_gets_the_event_again(engine_server, caplog):
    publish_orders(engine_server.fake, 4)
    h = Harness(engine_server.address, fail_once_at=2)
    h.feed.start()
    try:
        await until(lambda: h.feed.last_sequence == 4)
        assert h.seen == [1, 2, 3, 4]
        assert [c[0] for c in engine_server.fake.stream_calls] == [1, 2]
        assert reconnects(h.metrics, "handler_error") == 1
        assert "handling event 2 failed" in caplog.text
    finally:
        await h.close()


async def test_the_stream_has_its_own_long_deadline_not_the_channel_default_nor_the_request_s(engine_server):
    """Through a runtime channel (default timeout 500 ms) started inside a request with 50 ms left: the stream's
    deadline is the feed's renew_s."""
    publish_orders(engine_server.fake, 1)
    h = Harness(engine_server.address, policy=CallPolicy(timeout_ms=500))
    token = INBOUND_DEADLINE.set(time.monotonic() + 0.05)
    try:
        h.feed.start()
    finally:
        INBOUND_DEADLINE.reset(token)
    try:
        await until(lambda: h.feed.last_sequence == 1)
        _, remaining = engine_server.fake.stream_calls[0]
        assert remaining is not None and remaining > 3_600
    finally:
        await h.close()


async def test_a_stream_that_reaches_its_own_deadline_is_renewed_at_once(engine_server):
    fake = engine_server.fake
    publish_orders(fake, 1)
    h = Harness(engine_server.address, renew_s=0.2)
    h.feed.start()
    try:
        await until(lambda: len(fake.stream_calls) >= 3)
        publish_orders(fake, 1)
        await until(lambda: h.feed.last_sequence == 2)
        assert h.seen == [1, 2]
        assert reconnects(h.metrics, "renewed") >= 2
        assert reconnects(h.metrics, "deadline_exceeded") == 0
    finally:
        await h.close()


async def test_stop_ends_the_stream(engine_server):
    h = Harness(engine_server.address)
    h.feed.start()
    await until(lambda: len(engine_server.fake.stream_calls) == 1)
    await h.close()
    publish_orders(engine_server.fake, 1)
    await asyncio.sleep(0.05)
    assert h.seen == []
