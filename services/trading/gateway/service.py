"""``casemesh.trading.v1.OrderEntryService`` (topology name ``trading-gateway``): the exchange's order gateway.

Seed 001 #08 (shared/seeds/001_58dfc580020147d2.txt line 22: "| 08 | Stock Trading | Order matching engine, order
book, market data, low-latency | <10ms p99 latency, NASDAQ-scale |"). What a broker connects to: pre-trade risk
checks, the exchange order id, and the matching engine (``trading-engine``). A thin servicer over
:class:`.orders.OrderGateway` (validation :mod:`.validation`, order ids :mod:`.order_ids`, risk :mod:`.risk`, engine
calls :mod:`.engine_client`). The risk state follows the engine's log from sequence 1 with an
:class:`~..engine_feed.EngineFeed` (the gateway's drop copy), started with the component.

RPCs and status codes (protos/casemesh/trading/v1/orders.proto), all public:

- PlaceOrder: INVALID_ARGUMENT naming ``client_order_id``, ``account_id``, ``symbol``, ``side``, ``type``,
  ``price_minor`` or ``quantity``; NOT_FOUND for a symbol not listed; FAILED_PRECONDITION ``price_band: ...``,
  ``max_notional: ...``, ``max_open_orders: ...`` or ``client_order_id: ...`` (used for a different order);
  UNAVAILABLE when the engine cannot be reached (retry with the same client_order_id). A retry returns the order as
  it is now and no trades.
- CancelOrder: INVALID_ARGUMENT naming ``account_id`` or ``order_id``; NOT_FOUND (another account's too);
  FAILED_PRECONDITION when the order is FILLED; UNAVAILABLE.
- GetOrder: INVALID_ARGUMENT naming ``account_id`` or ``order_id``; NOT_FOUND (another account's too); UNAVAILABLE.
- ListInstruments: no errors.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.GatewaySettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations


import grpc

from casemesh.trading.v1 import engine_pb2_grpc, orders_pb2, orders_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ..engine_feed import EngineFeed
from . import metrics
from .engine_client import ENGINE, EngineClient
from .order_ids import ORDER_ID_PURPOSE, OrderIds
from .orders import OrderGateway
from .risk import RiskState
from .settings import GatewaySettings

NAME = "trading-gateway"
FULL_NAME = orders_pb2.DESCRIPTOR.services_by_name["OrderEntryService"].full_name
#: Methods anyone may call (brokers, the harness).
PUBLIC_METHODS = frozenset({"PlaceOrder", "CancelOrder", "GetOrder", "ListInstruments"})



class OrderEntryServicer(orders_pb2_grpc.OrderEntryServiceServicer):
    """Calls :class:`.orders.OrderGateway` (which validates each request)."""

    def __init__(self, gateway: OrderGateway) -> None:
        self._gateway = gateway

    async def PlaceOrder(self, request: orders_pb2.PlaceOrderRequest,
                         context: grpc.aio.ServicerContext) -> orders_pb2.PlaceOrderResponse:
        return await self._gateway.place(request)

    async def CancelOrder(self, request: orders_pb2.OrderEntryServiceCancelOrderRequest,
                          context: grpc.aio.ServicerContext) -> orders_pb2.OrderEntryServiceCancelOrderResponse:
        return orders_pb2.OrderEntryServiceCancelOrderResponse(order=await self._gateway.cancel(request))

    async def GetOrder(self, request: orders_pb2.OrderEntryServiceGetOrderRequest,
                       context: grpc.aio.ServicerContext) -> orders_pb2.OrderEntryServiceGetOrderResponse:
        return orders_pb2.OrderEntryServiceGetOrderResponse(order=await self._gateway.get(request))

    async def ListInstruments(self, request: orders_pb2.ListInstrumentsRequest,
                              context: grpc.aio.ServicerContext) -> orders_pb2.ListInstrumentsResponse:
        return self._gateway.instruments()


class GatewayComponent:
    """The servicer over the gateway, its engine stub, and the drop copy feeding the risk state."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, GatewaySettings)
        stub = engine_pb2_grpc.MatchingEngineServiceStub(context.channel(ENGINE))
        risk = RiskState(settings.remembered_order_ids)
        self.gateway = OrderGateway(settings, EngineClient(stub, settings.engine_timeout_s), risk,
                                    OrderIds(context.secret.keyring(ORDER_ID_PURPOSE).current_key))
        self.feed = EngineFeed(stub, risk.apply, name=NAME, metrics=metrics.FEED,
                               initial_backoff_s=settings.feed_initial_backoff_s,
                               max_backoff_s=settings.feed_max_backoff_s, renew_s=settings.feed_renew_s)

    def register(self, server: grpc.aio.Server) -> None:
        orders_pb2_grpc.add_OrderEntryServiceServicer_to_server(OrderEntryServicer(self.gateway), server)

    async def start(self) -> None:
        metrics.started()
        self.feed.start()

    async def stop(self) -> None:
        await self.feed.stop()


async def build(context: RuntimeContext) -> GatewayComponent:
    return GatewayComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(ENGINE,), build=build, settings_model=GatewaySettings,
    access=Access(public=PUBLIC_METHODS),
)
