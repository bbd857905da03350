"""``casemesh.ecommerce.v1.CartService`` (topology name ``ecommerce-cart``).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 520: "Cart Service: Redis
for session, real-time inventory reservation"). A thin servicer over the domain, :class:`.carts.Carts` (validation
:mod:`.validation`), which calls ``ecommerce-catalog`` (GetProduct, :mod:`.catalog_client`) and
``ecommerce-inventory`` (Reserve and Release, internal to this service's identity, which the runtime's channel
carries: :mod:`.inventory_client`), each with an explicit deadline (:mod:`.settings`). Carts are in memory (the
seed's Redis sessions); the default topology serves this service in the catalogue's process.

RPCs and status codes (protos/casemesh/ecommerce/v1/cart.proto); SetItem and GetCart are public, ClearLines is
internal to ``ecommerce-orders``:

- SetItem: INVALID_ARGUMENT naming ``user_id``, ``product_id`` or ``quantity``; NOT_FOUND naming ``product_id``;
  FAILED_PRECONDITION "out_of_stock: ..." (the cart unchanged), "cart_full: ..." or "currency_mismatch: ...";
  UNAVAILABLE when the catalogue or the inventory did not answer (the cart unchanged: retry).
- GetCart: INVALID_ARGUMENT naming ``user_id``.
- ClearLines: INVALID_ARGUMENT naming ``user_id`` or ``reservation_ids`` (``reservation_ids[N]`` for a bad ID).

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.CartSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import grpc

from casemesh.ecommerce.v1 import cart_pb2, cart_pb2_grpc, catalog_pb2_grpc, inventory_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .carts import Carts
from .catalog_client import CatalogClient
from .inventory_client import InventoryClient
from .settings import CartSettings

NAME = "ecommerce-cart"
CATALOG = "ecommerce-catalog"
INVENTORY = "ecommerce-inventory"
ORDERS = "ecommerce-orders"
FULL_NAME = cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name
#: The buyers' methods.
PUBLIC_METHODS = frozenset({"SetItem", "GetCart"})
#: Internal methods and their callers: the checkout saga clears the lines its order took.
INTERNAL_METHODS = {"ClearLines": (ORDERS,)}


class CartServicer(cart_pb2_grpc.CartServiceServicer):
    """Calls :class:`.carts.Carts` (which validates each request: :mod:`.validation`)."""

    def __init__(self, carts: Carts) -> None:
        self._carts = carts

    async def SetItem(self, request: cart_pb2.SetItemRequest,
                      context: grpc.aio.ServicerContext) -> cart_pb2.SetItemResponse:
        return await self._carts.set_item(request)

    async def GetCart(self, request: cart_pb2.GetCartRequest,
                      context: grpc.aio.ServicerContext) -> cart_pb2.GetCartResponse:
        return self._carts.get_cart(request)

    async def ClearLines(self, request: cart_pb2.ClearLinesRequest,
                         context: grpc.aio.ServicerContext) -> cart_pb2.ClearLinesResponse:
        return await self._carts.clear_lines(request)


class CartComponent:
    """The servicer over the carts (in memory) and the stubs of the catalogue and the inventory."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, CartSettings)
        catalogue = CatalogClient(catalog_pb2_grpc.CatalogServiceStub(context.channel(CATALOG)),
                                  settings.catalog_timeout_s)
        inventory = InventoryClient(inventory_pb2_grpc.InventoryServiceStub(context.channel(INVENTORY)),
                                    settings.inventory_timeout_s)
        self.carts = Carts(catalogue, inventory)

    def register(self, server: grpc.aio.Server) -> None:
        cart_pb2_grpc.add_CartServiceServicer_to_server(CartServicer(self.carts), server)

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        await self.carts.close()


async def build(context: RuntimeContext) -> CartComponent:
    return CartComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(CATALOG, INVENTORY), build=build, settings_model=CartSettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
