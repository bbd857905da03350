"""trading-gateway (services/trading/gateway): order ids, validation, the risk state and its checks as plain domain
tests; the gateway's retry and refusal paths over an in-memory engine; and the whole component over gRPC against the
scripted MatchingEngineService of tests/unit/test_trading_engine_feed.py (a real grpc.aio server on 127.0.0.1:0):
the engine gets the derived order id, a retry skips the risk checks, each check refuses with its name, engine
failures map to the contract's codes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import grpc
import pytest
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.secrets import MeshSecret, derive_key
from casemesh.services.runtime.topology import Endpoint, Topology
from casemesh.services.trading import contract
from casemesh.services.trading.gateway import service, validation
from casemesh.services.trading.gateway.engine_client import EngineUnavailable
from casemesh.services.trading.gateway.order_ids import ORDER_ID_PURPOSE, OrderIds
from casemesh.services.trading.gateway.orders import OrderGateway
from casemesh.services.trading.gateway.risk import Refused, RiskState, check
from casemesh.services.trading.gateway.settings import DEFAULT_INSTRUMENTS, GatewaySettings, InstrumentSettings
from casemesh.trading.v1 import engine_pb2, orders_pb2, orders_pb2_grpc, trading_pb2

from .test_trading_engine_feed import WAIT_S, EngineServer, order, trade, until

BUY, SELL = trading_pb2.SIDE_BUY, trading_pb2.SIDE_SELL
LIMIT, MARKET = trading_pb2.ORDER_TYPE_LIMIT, trading_pb2.ORDER_TYPE_MARKET
SECRET = "0123456789abcdef0123456789abcdef-trading-tests"
KEY = derive_key(SECRET, "trading-order-id")
AAPL_REF = 22_950


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def place_request(**changes) -> orders_pb2.PlaceOrderRequest:
    fields = {"client_order_id": "c1", "account_id": "acct", "symbol": "AAPL", "side": BUY, "type": LIMIT,
              "price_minor": AAPL_REF, "quantity": 100}
    fields.update(changes)
    return orders_pb2.PlaceOrderRequest(**fields)


def event(sequence: int, **kind) -> engine_pb2.EngineEvent:
    return engine_pb2.EngineEvent(sequence=sequence, **kind)


# ----------------------------------------------------------------------------- order ids


def test_order_ids_are_ord_and_24_base32_characters_of_the_hmac():
    ids = OrderIds(KEY)
    got = ids.order_id("acct", "c1")
    digest = hmac.new(KEY, b"acct\x00c1", hashlib.sha256).digest()
    assert got == "ord_" + base64.b32encode(digest).decode().lower()[:24]
    assert contract.is_order_id(got)


def test_order_ids_are_the_same_for_a_retry_and_differ_otherwise():
    ids = OrderIds(KEY)
    assert ids.order_id("acct", "c1") == ids.order_id("acct", "c1") == OrderIds(KEY).order_id("acct", "c1")
    assert ids.order_id("acct", "c1") != ids.order_id("acct", "c2")
    assert ids.order_id("acct", "c1") != ids.order_id("acct2", "c1")
    assert ids.order_id("ab", "c") != ids.order_id("a", "bc")  # the separator
    assert ids.order_id("acct", "c1") != OrderIds(derive_key(SECRET, "other")).order_id("acct", "c1")


async def test_the_component_derives_order_ids_from_the_mesh_secret():
    topology = Topology(services={"trading-gateway": Endpoint(address="127.0.0.1:1"),
                                  "trading-engine": Endpoint(address="127.0.0.1:2")})
    context = RuntimeContext(topology, secret=MeshSecret(SECRET))
    try:
        component = service.GatewayComponent(context.for_service(service.NAME))
        assert component.gateway._ids.order_id("a", "b") == OrderIds(KEY).order_id("a", "b")
        assert ORDER_ID_PURPOSE == "trading-order-id"
    finally:
        await context.close()


# ----------------------------------------------------------------------------- settings and validation


def test_default_settings():
    s = GatewaySettings()
    assert [i.symbol for i in s.instruments] == ["AAPL", "AMZN", "AVGO", "GOOGL", "META", "MSFT", "NVDA", "TSLA"]
    assert all(i.tick_minor == 1 and i.currency_code == "USD" and 1_000 < i.reference_price_minor < 100_000
               for i in s.instruments)
    assert (s.price_band_pct, s.max_order_quantity, s.max_notional_minor, s.max_open_orders,
            s.engine_timeout_s) == (10, 100_000, 10**10, 1_000, 1.0)


@pytest.mark.parametrize("settings", [
    {"instruments": [{"symbol": "AAPL", "reference_price_minor": 100}] * 2},
    {"instruments": [{"symbol": "aapl", "reference_price_minor": 100}]},
    {"instruments": [{"symbol": "AAPL", "reference_price_minor": 101, "tick_minor": 5}]},
    {"instruments": []},
    {"max_order_quantity": contract.MAX_QUANTITY + 1},
    {"feed_initial_backoff_s": 5, "feed_max_backoff_s": 1},
    {"unknown": 1},
])
def test_bad_settings_are_refused(settings):
    with pytest.raises(ValidationError):
        GatewaySettings.model_validate(settings)


INSTRUMENTS = {i.symbol: i for i in (*DEFAULT_INSTRUMENTS,
                                     InstrumentSettings(symbol="TICK", tick_minor=5, reference_price_minor=1_000))}


@pytest.mark.parametrize(("changes", "field"), [
    ({"client_order_id": ""}, "client_order_id"),
    ({"client_order_id": "a b"}, "client_order_id"),
    ({"account_id": ""}, "account_id"),
    ({"account_id": "x" * 65}, "account_id"),
    ({"symbol": ""}, "symbol"),
    ({"symbol": "aapl"}, "symbol"),
    ({"symbol": "ABCDEFGHI"}, "symbol"),
    ({"side": 0}, "side"),
    ({"side": 7}, "side"),
    ({"type": 0}, "type"),
    ({"price_minor": 0}, "price_minor"),
    ({"price_minor": -5}, "price_minor"),
    ({"price_minor": contract.MAX_PRICE_MINOR + 1}, "price_minor"),
    ({"type": MARKET, "price_minor": 100}, "price_minor"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": 100_001}, "quantity"),
    ({"symbol": "TICK", "price_minor": 1_002}, "price_minor"),
])
def test_place_order_validation_names_the_field(changes, field):
    with pytest.raises(InvalidArgument) as error:
        validation.place_order(place_request(**changes), INSTRUMENTS, 100_000)
    assert error.value.field == field


def test_place_order_validation_accepts_and_finds_the_instrument():
    v = validation.place_order(place_request(symbol="TICK", price_minor=1_005), INSTRUMENTS, 100_000)
    assert v.instrument.tick_minor == 5 and v.symbol == "TICK" and v.price_minor == 1_005
    m = validation.place_order(place_request(type=MARKET, price_minor=0), INSTRUMENTS, 100_000)
    assert m.type == MARKET and m.price_minor == 0


def test_an_unlisted_symbol_is_not_found():
    with pytest.raises(NotFound, match="ZZZ is not listed"):
        validation.place_order(place_request(symbol="ZZZ"), INSTRUMENTS, 100_000)


@pytest.mark.parametrize(("request_", "field"), [
    (orders_pb2.OrderEntryServiceGetOrderRequest(account_id="", order_id="ord_" + "a" * 24), "account_id"),
    (orders_pb2.OrderEntryServiceGetOrderRequest(account_id="a", order_id=""), "order_id"),
    (orders_pb2.OrderEntryServiceGetOrderRequest(account_id="a", order_id="ord_" + "1" * 24), "order_id"),
    (orders_pb2.OrderEntryServiceGetOrderRequest(account_id="a", order_id="ord_" + "a" * 23), "order_id"),
])
def test_get_order_validation(request_, field):
    with pytest.raises(InvalidArgument) as error:
        validation.get_order(request_)
    assert error.value.field == field


# ----------------------------------------------------------------------------- the risk state and checks


def valid(**changes) -> validation.PlaceOrder:
    return validation.place_order(place_request(**changes), INSTRUMENTS, 100_000)


def refused_by(order_: validation.PlaceOrder, state: RiskState, settings: GatewaySettings) -> str | None:
    try:
        check(order_, state, settings)
    except Refused as refused:
        assert str(refused).startswith(f"{refused.check}: ")
        assert isinstance(refused, FailedPrecondition)
        return refused.check
    return None


def test_price_band_around_the_reference_price_until_the_first_trade():
    state, settings = RiskState(100), GatewaySettings()
    band = AAPL_REF // 10  # 2,295: exactly 10 % is inside
    assert refused_by(valid(price_minor=AAPL_REF + band), state, settings) is None
    assert refused_by(valid(price_minor=AAPL_REF - band), state, settings) is None
    assert refused_by(valid(price_minor=AAPL_REF + band + 1), state, settings) == "price_band"
    assert refused_by(valid(price_minor=AAPL_REF - band - 1, side=SELL), state, settings) == "price_band"
    assert refused_by(valid(type=MARKET, price_minor=0), state, settings) is None


def test_price_band_follows_the_last_trade():
    state, settings = RiskState(100), GatewaySettings()
    state.apply(event(1, trade=trade("AAPL", 30_000, 10, "m", "t")))
    assert state.reference_price("AAPL", AAPL_REF) == 30_000
    assert refused_by(valid(price_minor=32_000), state, settings) is None  # > 10 % above 22,950, within 30,000's
    assert refused_by(valid(price_minor=AAPL_REF), state, settings) == "price_band"
    assert state.reference_price("MSFT", 41_500) == 41_500


def test_max_notional_values_market_orders_at_the_reference():
    state = RiskState(100)
    settings = GatewaySettings(max_notional_minor=AAPL_REF * 100)
    assert refused_by(valid(quantity=100), state, settings) is None
    assert refused_by(valid(quantity=101), state, settings) == "max_notional"
    assert refused_by(valid(quantity=101, price_minor=AAPL_REF - 300), state, settings) is None
    assert refused_by(valid(type=MARKET, price_minor=0, quantity=101), state, settings) == "max_notional"
    state.apply(event(1, trade=trade("AAPL", AAPL_REF - 300, 1, "m", "t")))
    assert refused_by(valid(type=MARKET, price_minor=0, quantity=101), state, settings) is None


def test_price_band_is_checked_before_max_notional():
    settings = GatewaySettings(max_notional_minor=1)
    assert refused_by(valid(price_minor=AAPL_REF * 2), RiskState(100), settings) == "price_band"


def test_open_orders_follow_the_log():
    state, settings = RiskState(100), GatewaySettings(max_open_orders=2)
    state.apply(event(1, accepted=order("o1", price=AAPL_REF, quantity=100)))
    state.apply(event(2, accepted=order("o2", price=AAPL_REF, quantity=50, side=SELL, account="other")))
    state.apply(event(3, accepted=order("o3", price=AAPL_REF + 1, quantity=10)))
    assert state.open_orders("acct") == 2 and state.open_orders("other") == 1
    assert refused_by(valid(), state, settings) == "max_open_orders"
    state.apply(event(4, trade=trade("AAPL", AAPL_REF, 40, "o2", "o3")))  # o3 (taker) filled, o2 partly
    assert state.open_orders("acct") == 1 and state.open_orders("other") == 1
    assert refused_by(valid(), state, settings) is None
    state.apply(event(5, trade=trade("AAPL", AAPL_REF, 10, "o2", "x")))  # o2 filled
    state.apply(event(6, cancelled=order("o1")))
    assert state.open_orders("acct") == 0 and state.open_orders("other") == 0
    assert state.sequence == 6
    assert all(state.seen(o) for o in ("o1", "o2", "o3")) and not state.seen("x")


def test_market_orders_never_count_as_open():
    state = RiskState(100)
    state.apply(event(1, accepted=order("m1", type_=MARKET, price=0)))
    assert state.open_orders("acct") == 0 and state.seen("m1")
    state.apply(event(2, cancelled=order("m1", type_=MARKET, price=0)))
    assert state.open_orders("acct") == 0


def test_in_flight_orders_count_against_max_open_orders():
    state, settings = RiskState(100), GatewaySettings(max_open_orders=1)
    state.reserve("acct")
    assert refused_by(valid(), state, settings) == "max_open_orders"
    state.release("acct")
    assert state.open_orders("acct") == 0


def test_an_answer_ahead_of_the_log_counts_until_the_log_takes_over():
    state = RiskState(100)
    placed = order("o1", quantity=100)
    placed.accepted_sequence = 1
    state.placed(placed)
    assert state.open_orders("acct") == 1 and state.seen("o1")
    # The log then shows it accepted and filled: nothing stale is left.
    state.apply(event(1, accepted=order("o1", quantity=100)))
    state.apply(event(2, trade=trade("AAPL", 10_000, 100, "o1", "t")))
    assert state.open_orders("acct") == 0
    # An answer the log has passed already changes nothing.
    state.placed(placed)
    assert state.open_orders("acct") == 0
    filled = order("o2")
    filled.accepted_sequence, filled.status = 9, trading_pb2.ORDER_STATUS_FILLED
    state.placed(filled)
    assert state.open_orders("acct") == 0


def test_seen_order_ids_are_bounded_newest_kept():
    state = RiskState(2)
    for i in range(1, 4):
        state.apply(event(i, accepted=order(f"o{i}", type_=MARKET, price=0)))
    assert [state.seen(f"o{i}") for i in range(1, 4)] == [False, True, True]


# ----------------------------------------------------------------------------- the gateway over an in-memory engine


class MemoryEngine:
    """The gateway's Engine protocol in memory, keeping the engine's id contract; ``down`` fails every call."""

    FIELDS = ("client_order_id", "account_id", "symbol", "side", "type", "price_minor", "quantity")

    def __init__(self) -> None:
        self.orders: dict[str, trading_pb2.Order] = {}
        self.submits = 0
        self.down = False

    def _up(self) -> None:
        if self.down:
            raise EngineUnavailable("trading-engine could not answer; retry")

    async def submit(self, request):
        self._up()
        self.submits += 1
        held = self.orders.get(request.order_id)
        if held is not None:
            if any(getattr(held, f) != getattr(request, f) for f in self.FIELDS):
                raise FailedPrecondition(f"order_id: {request.order_id} is held with a different order")
            return engine_pb2.SubmitOrderResponse(order=held)
        new = trading_pb2.Order(**{f: getattr(request, f) for f in self.FIELDS}, order_id=request.order_id,
                                status=trading_pb2.ORDER_STATUS_NEW, accepted_sequence=len(self.orders) + 1)
        self.orders[new.order_id] = new
        return engine_pb2.SubmitOrderResponse(order=new, trades=[trade("AAPL", 1, 1, "m", new.order_id)])

    async def cancel(self, order_id, account_id):
        self._up()
        held = self.orders.get(order_id)
        if held is None or held.account_id != account_id:
            raise NotFound(f"order {order_id} not found")
        held.status = trading_pb2.ORDER_STATUS_CANCELLED
        return held

    async def get(self, order_id):
        self._up()
        if order_id not in self.orders:
            raise NotFound(f"order {order_id} not found")
        return self.orders[order_id]


def memory_gateway(**settings) -> tuple[OrderGateway, MemoryEngine]:
    engine = MemoryEngine()
    s = GatewaySettings(**settings)
    return OrderGateway(s, engine, RiskState(s.remembered_order_ids), OrderIds(KEY)), engine


async def test_a_retry_skips_the_risk_checks_and_gets_the_order_without_trades():
    gateway, engine = memory_gateway(max_open_orders=1)
    first = await gateway.place(place_request())
    assert first.order.order_id == OrderIds(KEY).order_id("acct", "c1") and len(first.trades) == 1
    retry = await gateway.place(place_request())
    assert retry.order == first.order and not retry.trades
    with pytest.raises(Refused, match="^max_open_orders: "):
        await gateway.place(place_request(client_order_id="c2"))
    assert engine.submits == 2


async def test_a_retry_the_risk_state_does_not_know_is_answered_if_the_engine_holds_it():
    """Another gateway (or this one, restarted, its drop copy behind) placed it: the check now refuses it (its own
    order counts against max_open_orders), but the engine holds it, so the retry gets it."""
    gateway, engine = memory_gateway(max_open_orders=1)
    first = await gateway.place(place_request())
    restarted = OrderGateway(gateway.settings, engine, RiskState(1), OrderIds(KEY))
    restarted.risk.apply(event(1, accepted=first.order))
    restarted.risk.apply(event(2, accepted=order("m", type_=MARKET, price=0)))  # first's id is forgotten
    assert not restarted.risk.seen(first.order.order_id) and restarted.risk.open_orders("acct") == 1
    replays = sample("casemesh_trading_gateway_orders_total", {"outcome": "replayed"})
    replay = await restarted.place(place_request())
    assert replay.order == first.order and not replay.trades
    assert sample("casemesh_trading_gateway_orders_total", {"outcome": "replayed"}) == replays + 1
    with pytest.raises(Refused, match="^max_open_orders: "):
        await restarted.place(place_request(client_order_id="c2"))


async def test_a_client_order_id_reused_for_another_order_is_a_conflict():
    gateway, _ = memory_gateway()
    await gateway.place(place_request())
    conflicts = sample("casemesh_trading_gateway_orders_total", {"outcome": "conflict"})
    with pytest.raises(FailedPrecondition, match="^client_order_id: c1 of account acct was used for a different"):
        await gateway.place(place_request(quantity=5))
    assert sample("casemesh_trading_gateway_orders_total", {"outcome": "conflict"}) == conflicts + 1


async def test_engine_unavailable_passes_through_and_is_counted():
    gateway, engine = memory_gateway()
    engine.down = True
    before = sample("casemesh_trading_gateway_orders_total", {"outcome": "unavailable"})
    with pytest.raises(EngineUnavailable):
        await gateway.place(place_request())
    assert sample("casemesh_trading_gateway_orders_total", {"outcome": "unavailable"}) == before + 1
    assert gateway.risk.open_orders("acct") == 0  # the in-flight reservation was released


async def test_get_order_of_another_account_is_not_found():
    gateway, _ = memory_gateway()
    placed = (await gateway.place(place_request())).order
    got = await gateway.get(orders_pb2.OrderEntryServiceGetOrderRequest(account_id="acct", order_id=placed.order_id))
    assert got == placed
    with pytest.raises(NotFound) as other:
        await gateway.get(orders_pb2.OrderEntryServiceGetOrderRequest(account_id="b", order_id=placed.order_id))
    with pytest.raises(NotFound) as unknown:
        await gateway.get(orders_pb2.OrderEntryServiceGetOrderRequest(account_id="b", order_id="ord_" + "a" * 24))
    assert str(other.value).replace(placed.order_id, "X") == str(unknown.value).replace("ord_" + "a" * 24, "X")


def test_list_instruments_in_symbol_order():
    gateway, _ = memory_gateway(instruments=[{"symbol": "ZZ", "reference_price_minor": 5},
                                             {"symbol": "AA", "reference_price_minor": 10, "tick_minor": 5}])
    listed = gateway.instruments().instruments
    assert [(i.symbol, i.currency_code, i.tick_minor, i.reference_price_minor) for i in listed] == [
        ("AA", "USD", 5, 10), ("ZZ", "USD", 1, 5)]


# ----------------------------------------------------------------------------- over gRPC


class Mesh:
    """The fake engine on its server, the gateway component (its real engine client and drop copy) on another,
    with the runtime's server interceptor; ``stub`` calls the gateway."""

    def __init__(self, engine: EngineServer, context: RuntimeContext, component: service.GatewayComponent,
                 server: grpc.aio.Server, channel: grpc.aio.Channel) -> None:
        self.engine = engine
        self.context = context
        self.component = component
        self.server = server
        self.channel = channel
        self.stub = orders_pb2_grpc.OrderEntryServiceStub(channel)

    @property
    def fake(self):
        return self.engine.fake

    async def caught_up(self) -> None:
        await until(lambda: self.component.gateway.risk.sequence == len(self.fake.events))

    async def close(self) -> None:
        await self.channel.close()
        await self.server.stop(None)
        await self.component.stop()
        await self.context.close()
        await self.engine.stop()


async def open_mesh(**settings) -> Mesh:
    engine = EngineServer()
    await engine.start()
    topology = Topology(services={"trading-gateway": Endpoint(address="127.0.0.1:1"),
                                  "trading-engine": Endpoint(address=engine.address)},
                        settings={"trading-gateway": {"feed_initial_backoff_s": 0.001, "feed_max_backoff_s": 0.01,
                                                      **settings}})
    context = RuntimeContext(topology, secret=MeshSecret(SECRET))
    component = await service.DEFINITION.build(context.for_service(service.NAME))
    await component.start()
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    component.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return Mesh(engine, context, component, server, grpc.aio.insecure_channel(f"127.0.0.1:{port}"))


@pytest.fixture
async def mesh_with():
    """``await mesh_with(**settings)``: a mesh with those gateway settings, closed after the test."""
    opened: list[Mesh] = []

    async def make(**settings) -> Mesh:
        opened.append(await open_mesh(**settings))
        return opened[-1]

    try:
        yield make
    finally:
        for m in opened:
            await m.close()


@pytest.fixture
async def mesh(mesh_with):
    return await mesh_with()


async def status_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


def test_definition():
    d = service.DEFINITION
    assert d.name == "trading-gateway"
    assert d.grpc_services == ("casemesh.trading.v1.OrderEntryService",)
    assert d.dependencies == ("trading-engine",)
    assert d.access.public == {"PlaceOrder", "CancelOrder", "GetOrder", "ListInstruments"}
    assert not d.access.internal
    assert d.settings_model is GatewaySettings


async def test_place_order_sends_the_derived_order_id_to_the_engine(mesh):
    placed = await mesh.stub.PlaceOrder(place_request(quantity=250), timeout=WAIT_S)
    expected = OrderIds(KEY).order_id("acct", "c1")
    (submitted,) = mesh.fake.submits
    assert submitted == engine_pb2.SubmitOrderRequest(
        order_id=expected, client_order_id="c1", account_id="acct", symbol="AAPL", side=BUY, type=LIMIT,
        price_minor=AAPL_REF, quantity=250)
    assert placed.order == mesh.fake.orders[expected]
    assert sample("casemesh_trading_gateway_engine_call_seconds_count", {"method": "SubmitOrder"}) >= 1
    await mesh.caught_up()
    assert sample("casemesh_trading_gateway_feed_sequence") == len(mesh.fake.events)


async def test_a_retry_seen_on_the_log_skips_the_risk_checks(mesh_with):
    mesh = await mesh_with(max_open_orders=1)
    first = await mesh.stub.PlaceOrder(place_request(), timeout=WAIT_S)
    await mesh.caught_up()
    replays = sample("casemesh_trading_gateway_orders_total", {"outcome": "replayed"})
    retry = await mesh.stub.PlaceOrder(place_request(), timeout=WAIT_S)
    assert retry.order == first.order and not retry.trades
    assert len(mesh.fake.orders) == 1 and len(mesh.fake.submits) == 2
    assert sample("casemesh_trading_gateway_orders_total", {"outcome": "replayed"}) == replays + 1
    refusals = sample("casemesh_trading_gateway_risk_refusals_total", {"check": "max_open_orders"})
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(client_order_id="c2"), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("max_open_orders: ")
    assert sample("casemesh_trading_gateway_risk_refusals_total", {"check": "max_open_orders"}) == refusals + 1
    assert len(mesh.fake.submits) == 2
    # Its cancel on the log frees the slot.
    await mesh.stub.CancelOrder(orders_pb2.OrderEntryServiceCancelOrderRequest(
        account_id="acct", order_id=first.order.order_id), timeout=WAIT_S)
    await mesh.caught_up()
    await mesh.stub.PlaceOrder(place_request(client_order_id="c2"), timeout=WAIT_S)


async def test_price_band_follows_the_last_trade_on_the_log(mesh):
    refusals = sample("casemesh_trading_gateway_risk_refusals_total", {"check": "price_band"})
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(price_minor=26_000), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("price_band: ")
    assert sample("casemesh_trading_gateway_risk_refusals_total", {"check": "price_band"}) == refusals + 1
    mesh.fake.publish(trade=trade("AAPL", 26_000, 10, "m", "t"))  # the band is now 23,400 to 28,600
    await mesh.caught_up()
    await mesh.stub.PlaceOrder(place_request(price_minor=26_000), timeout=WAIT_S)
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(client_order_id="c2", price_minor=AAPL_REF),
                                                         timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("price_band: ")
    # Market orders are not price-checked.
    await mesh.stub.PlaceOrder(place_request(client_order_id="c3", type=MARKET, price_minor=0), timeout=WAIT_S)


async def test_max_notional_refuses_by_name(mesh_with):
    mesh = await mesh_with(max_notional_minor=1_000_000)
    refusals = sample("casemesh_trading_gateway_risk_refusals_total", {"check": "max_notional"})
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(quantity=44), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("max_notional: ")
    code, _ = await status_of(mesh.stub.PlaceOrder(place_request(type=MARKET, price_minor=0, quantity=44),
                                                   timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert sample("casemesh_trading_gateway_risk_refusals_total", {"check": "max_notional"}) == refusals + 2
    await mesh.stub.PlaceOrder(place_request(quantity=43), timeout=WAIT_S)
    assert len(mesh.fake.submits) == 1


async def test_bad_requests_over_grpc(mesh_with):
    mesh = await mesh_with(instruments=[{"symbol": "AAPL", "reference_price_minor": AAPL_REF},
                                        {"symbol": "TICK", "tick_minor": 5, "reference_price_minor": 1_000}])
    invalid = sample("casemesh_trading_gateway_orders_total", {"outcome": "invalid"})
    for changes, field in [({"client_order_id": ""}, "client_order_id"), ({"side": 0}, "side"),
                           ({"symbol": "TICK", "price_minor": 1_001}, "price_minor"),
                           ({"quantity": 100_001}, "quantity")]:
        code, details = await status_of(mesh.stub.PlaceOrder(place_request(**changes), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith(f"{field}: "), details
    code, _ = await status_of(mesh.stub.PlaceOrder(place_request(symbol="MSFT"), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    assert sample("casemesh_trading_gateway_orders_total", {"outcome": "invalid"}) == invalid + 5
    code, details = await status_of(mesh.stub.GetOrder(orders_pb2.OrderEntryServiceGetOrderRequest(
        account_id="acct", order_id="nope"), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("order_id: ")
    assert not mesh.fake.submits
    listed = await mesh.stub.ListInstruments(orders_pb2.ListInstrumentsRequest(), timeout=WAIT_S)
    assert [i.symbol for i in listed.instruments] == ["AAPL", "TICK"]


async def test_engine_failures_map_to_the_contract_s_codes(mesh):
    first = await mesh.stub.PlaceOrder(place_request(), timeout=WAIT_S)
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(quantity=7), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("client_order_id: ")
    mesh.fake.down = True
    code, details = await status_of(mesh.stub.PlaceOrder(place_request(client_order_id="c9"), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "retry with the same client_order_id" in details
    code, _ = await status_of(mesh.stub.GetOrder(orders_pb2.OrderEntryServiceGetOrderRequest(
        account_id="acct", order_id=first.order.order_id), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
    mesh.fake.down = False
    # The retry after UNAVAILABLE is the same engine order as the attempt would have been.
    again = await mesh.stub.PlaceOrder(place_request(client_order_id="c9"), timeout=WAIT_S)
    assert again.order.order_id == OrderIds(KEY).order_id("acct", "c9")


async def test_get_and_cancel_orders_of_the_account_only(mesh):
    placed = (await mesh.stub.PlaceOrder(place_request(), timeout=WAIT_S)).order
    got = await mesh.stub.GetOrder(orders_pb2.OrderEntryServiceGetOrderRequest(
        account_id="acct", order_id=placed.order_id), timeout=WAIT_S)
    assert got.order == placed
    for account in ("intruder",):
        code, _ = await status_of(mesh.stub.GetOrder(orders_pb2.OrderEntryServiceGetOrderRequest(
            account_id=account, order_id=placed.order_id), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, _ = await status_of(mesh.stub.CancelOrder(orders_pb2.OrderEntryServiceCancelOrderRequest(
            account_id=account, order_id=placed.order_id), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await status_of(mesh.stub.GetOrder(orders_pb2.OrderEntryServiceGetOrderRequest(
        account_id="acct", order_id="ord_" + "b" * 24), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    cancelled = await mesh.stub.CancelOrder(orders_pb2.OrderEntryServiceCancelOrderRequest(
        account_id="acct", order_id=placed.order_id), timeout=WAIT_S)
    assert cancelled.order.status == trading_pb2.ORDER_STATUS_CANCELLED
    mesh.fake.orders[placed.order_id].status = trading_pb2.ORDER_STATUS_FILLED
    code, _ = await status_of(mesh.stub.CancelOrder(orders_pb2.OrderEntryServiceCancelOrderRequest(
        account_id="acct", order_id=placed.order_id), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
