"""``casemesh.ecommerce.v1.CheckoutService`` (topology name ``ecommerce-orders``).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Latency: ... 500ms
for checkout", "Order Service: Saga pattern for distributed transactions", "Consistency: Inventory counts must be
accurate (no overselling)"); seed 001 #05 (shared/seeds/001_58dfc580020147d2.txt line 21: "| 05 | E-Commerce |
Inventory management, shopping cart, checkout, order fulfillment |"); seed 003 "Amazon E-commerce"
(shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1270-1290: processOrder with compensating transactions). A thin servicer
over the domain, :class:`.orders.Orders` (idempotency keys and claims on the cart's lines), whose saga
(:mod:`.saga`) holds the stock, authorises the payment, commits the stock and captures, compensating in reverse on a
failure; the durable records are :mod:`.store`, the background recovery :mod:`.recovery`. Calls out, each with an
explicit deadline and bounded retries of UNAVAILABLE (:mod:`.calls`), over the runtime's channels, which carry this
service's identity: ``ecommerce-cart`` GetCart (public) and ClearLines (internal to this service);
``ecommerce-inventory`` Reserve, Commit, Release (internal) and Restock (public); ``payments-gateway`` Authorize,
Capture, Void (public), as merchant ``contract.MERCHANT_ID``.

RPCs and status codes (protos/casemesh/ecommerce/v1/orders.proto), all public:

- Checkout: INVALID_ARGUMENT naming ``idempotency_key``, ``user_id`` or ``card_token``; FAILED_PRECONDITION
  ``empty_cart: ...`` or ``key_reused: ...``; ABORTED while a call with the same key (or another checkout of the
  same cart lines) is in flight; UNAVAILABLE when a step could not reach its service (the order stays PENDING). A
  failed checkout is an answer: the order FAILED with its reason.
- GetOrder: INVALID_ARGUMENT naming ``order_id``; NOT_FOUND; UNAVAILABLE when the store cannot be read.
- ListOrders: INVALID_ARGUMENT naming ``user_id``, ``page_size`` or ``page_token``; UNAVAILABLE.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.OrderSettings` (the A/B knob ``checkout_hold_ms``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc

from casemesh.ecommerce.v1 import (
    cart_pb2_grpc,
    inventory_pb2_grpc,
    orders_pb2,
    orders_pb2_grpc,
)
from casemesh.payments.v1 import gateway_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .calls import CallPolicy
from .cart import CartClient
from .gateway import GatewayClient
from .ids import ID_KEY_PURPOSE
from .inventory import InventoryClient
from .orders import Orders
from .recovery import Recovery
from .settings import OrderSettings
from .store import OrderStore

log = logging.getLogger("casemesh.ecommerce.orders.service")

NAME = "ecommerce-orders"
CART = "ecommerce-cart"
INVENTORY = "ecommerce-inventory"
GATEWAY = "payments-gateway"
FULL_NAME = orders_pb2.DESCRIPTOR.services_by_name["CheckoutService"].full_name
#: The service's SQLite file, under DATA_DIR/ecommerce-orders/.
DB_FILE = "orders.sqlite3"
#: Every method: the shop's buyers (their apps) call them.
PUBLIC_METHODS = frozenset({"Checkout", "GetOrder", "ListOrders"})


class CheckoutServicer(orders_pb2_grpc.CheckoutServiceServicer):
    """Calls :class:`.orders.Orders` (which validates each request: :mod:`.validation`)."""

    def __init__(self, orders: Orders) -> None:
        self._orders = orders

    async def Checkout(self, request: orders_pb2.CheckoutRequest,
                       context: grpc.aio.ServicerContext) -> orders_pb2.CheckoutResponse:
        return await self._orders.checkout(request)

    async def GetOrder(self, request: orders_pb2.GetOrderRequest,
                       context: grpc.aio.ServicerContext) -> orders_pb2.GetOrderResponse:
        return await self._orders.get_order(request)

    async def ListOrders(self, request: orders_pb2.ListOrdersRequest,
                         context: grpc.aio.ServicerContext) -> orders_pb2.ListOrdersResponse:
        return await self._orders.list_orders(request)


class OrdersComponent:
    """The servicer over the store (``DATA_DIR/ecommerce-orders/orders.sqlite3``), the three services' clients, and
    the background recovery."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, OrderSettings)

        def policy(timeout_s: float) -> CallPolicy:
            return CallPolicy(timeout_s, settings.call_attempts, settings.retry_backoff_s)

        store = OrderStore(context.data_dir(NAME) / DB_FILE)
        cart = CartClient(cart_pb2_grpc.CartServiceStub(context.channel(CART)), policy(settings.cart_timeout_s))
        inventory = InventoryClient(inventory_pb2_grpc.InventoryServiceStub(context.channel(INVENTORY)),
                                    policy(settings.inventory_timeout_s))
        gateway = GatewayClient(gateway_pb2_grpc.PaymentGatewayServiceStub(context.channel(GATEWAY)),
                                policy(settings.gateway_timeout_s))
        self.orders = Orders(settings, store, cart, inventory, gateway,
                             id_key=context.secret.keyring(ID_KEY_PURPOSE).current_key)
        self.recovery = Recovery(self.orders)

    def register(self, server: grpc.aio.Server) -> None:
        orders_pb2_grpc.add_CheckoutServiceServicer_to_server(CheckoutServicer(self.orders), server)

    async def start(self) -> None:
        pending = await self.orders.start()
        if pending:
            log.info("%s: %d orders PENDING; the recovery finishes or compensates them", NAME, pending)
        self.recovery.start()

    async def stop(self) -> None:
        await self.recovery.stop()
        await self.orders.close()


async def build(context: RuntimeContext) -> OrdersComponent:
    return OrdersComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(CART, INVENTORY, GATEWAY), build=build,
    settings_model=OrderSettings, access=Access(public=PUBLIC_METHODS),
)
