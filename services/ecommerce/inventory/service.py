"""``casemesh.ecommerce.v1.InventoryService`` (topology name ``ecommerce-inventory``): the shop's stock and the
reservations on it.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 512: "Consistency: Inventory
counts must be accurate (no overselling)"; line 529: "Inventory reservation: Optimistic locking with TTL"; line 541:
``reserve_stock(product_id, quantity, user_id, ttl=600)``). A thin servicer over :class:`.inventory.Inventory` (the
durable file :mod:`.store`, the TTL's deadlines and sweeper :mod:`.expiry`); input rules in :mod:`.validation`. Calls
no other service.

RPCs and status codes (protos/casemesh/ecommerce/v1/inventory.proto):

- Restock (public): INVALID_ARGUMENT naming ``restock_id``, ``product_id`` or ``quantity``; FAILED_PRECONDITION
  ``key_reused: ...`` when the ``restock_id`` was used for another product or quantity; UNAVAILABLE when the file
  cannot be written (nothing added).
- GetStock (public): INVALID_ARGUMENT naming ``product_id``.
- Reserve (internal, callers ``ecommerce-cart`` and ``ecommerce-orders``): INVALID_ARGUMENT naming
  ``reservation_id``, ``product_id``, ``quantity`` or ``ttl_ms``; FAILED_PRECONDITION ``out_of_stock: ...``,
  ``reservation_released: ...`` or ``key_reused: ...``; UNAVAILABLE when the file cannot be written (nothing held).
- Commit (internal, caller ``ecommerce-orders``): INVALID_ARGUMENT naming ``reservation_id``; NOT_FOUND;
  FAILED_PRECONDITION ``reservation_expired: ...`` or ``reservation_released: ...``; UNAVAILABLE (still HELD).
- Release (internal, callers ``ecommerce-cart`` and ``ecommerce-orders``): INVALID_ARGUMENT naming
  ``reservation_id``; NOT_FOUND; FAILED_PRECONDITION ``reservation_committed: ...``; UNAVAILABLE (still HELD).
- GetReservation (public): INVALID_ARGUMENT naming ``reservation_id``; NOT_FOUND.
- Audit (public): none.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.InventorySettings` (the A/B knob ``reservation_ttl_s``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import grpc

from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2, inventory_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation
from .expiry import Sweeper
from .inventory import Inventory
from .records import Reservation, StockLevel
from .settings import InventorySettings
from .store import FILE_NAME, InventoryStore

NAME = "ecommerce-inventory"
CART = "ecommerce-cart"
ORDERS = "ecommerce-orders"
INVENTORY_FULL_NAME = inventory_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
#: Methods anyone may call (the merchant's Restock, the reads).
PUBLIC_METHODS = frozenset({"Restock", "GetStock", "GetReservation", "Audit"})
#: Internal methods and their callers.
INTERNAL_METHODS = {"Reserve": (CART, ORDERS), "Release": (CART, ORDERS), "Commit": (ORDERS,)}


def stock_message(level: StockLevel) -> ecommerce_pb2.StockLevel:
    return ecommerce_pb2.StockLevel(product_id=level.product_id, stocked=level.stocked, held=level.held,
                                    committed=level.committed, available=level.available)


def reservation_message(reservation: Reservation) -> ecommerce_pb2.Reservation:
    return ecommerce_pb2.Reservation(
        reservation_id=reservation.reservation_id, product_id=reservation.product_id, quantity=reservation.quantity,
        status=reservation.status, expires_at_unix_ms=reservation.expires_at_unix_ms)


class InventoryServicer(inventory_pb2_grpc.InventoryServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`.inventory.Inventory`."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    async def Restock(self, request: inventory_pb2.RestockRequest,
                      context: grpc.aio.ServicerContext) -> inventory_pb2.RestockResponse:
        level = await self._inventory.restock(validation.restock(request))
        return inventory_pb2.RestockResponse(stock=stock_message(level))

    async def GetStock(self, request: inventory_pb2.GetStockRequest,
                       context: grpc.aio.ServicerContext) -> inventory_pb2.GetStockResponse:
        level = await self._inventory.stock(validation.product_id(request.product_id))
        return inventory_pb2.GetStockResponse(stock=stock_message(level))

    async def Reserve(self, request: inventory_pb2.ReserveRequest,
                      context: grpc.aio.ServicerContext) -> inventory_pb2.ReserveResponse:
        reservation = await self._inventory.reserve(validation.reserve(request))
        return inventory_pb2.ReserveResponse(reservation=reservation_message(reservation))

    async def Commit(self, request: inventory_pb2.CommitRequest,
                     context: grpc.aio.ServicerContext) -> inventory_pb2.CommitResponse:
        reservation = await self._inventory.commit(validation.reservation_id(request.reservation_id))
        return inventory_pb2.CommitResponse(reservation=reservation_message(reservation))

    async def Release(self, request: inventory_pb2.ReleaseRequest,
                      context: grpc.aio.ServicerContext) -> inventory_pb2.ReleaseResponse:
        reservation = await self._inventory.release(validation.reservation_id(request.reservation_id))
        return inventory_pb2.ReleaseResponse(reservation=reservation_message(reservation))

    async def GetReservation(self, request: inventory_pb2.GetReservationRequest,
                             context: grpc.aio.ServicerContext) -> inventory_pb2.GetReservationResponse:
        reservation = await self._inventory.reservation(validation.reservation_id(request.reservation_id))
        return inventory_pb2.GetReservationResponse(reservation=reservation_message(reservation))

    async def Audit(self, request: inventory_pb2.AuditRequest,
                    context: grpc.aio.ServicerContext) -> inventory_pb2.AuditResponse:
        report = await self._inventory.audit()
        return inventory_pb2.AuditResponse(
            stock=[stock_message(level) for level in report.stock], held_reservations=report.held_reservations,
            expired_reservations=report.expired_reservations, violations=report.violations)


class InventoryComponent:
    """The servicer over the inventory and its file (``DATA_DIR/ecommerce-inventory/inventory.sqlite3``), and the
    sweeper that expires reservations every ``sweep_interval_ms``."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, InventorySettings)
        store = InventoryStore(context.data_dir(NAME) / FILE_NAME, settings.max_commit_writes)
        self.inventory = Inventory(store, settings)
        self.sweeper = Sweeper(self.inventory.sweep, settings.sweep_interval_ms)

    def register(self, server: grpc.aio.Server) -> None:
        inventory_pb2_grpc.add_InventoryServiceServicer_to_server(InventoryServicer(self.inventory), server)

    async def start(self) -> None:
        await self.inventory.start()
        self.sweeper.start()

    async def stop(self) -> None:
        await self.sweeper.stop()
        await self.inventory.close()


async def build(context: RuntimeContext) -> InventoryComponent:
    return InventoryComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(INVENTORY_FULL_NAME,), dependencies=(), build=build, settings_model=InventorySettings,
    access=Access(public=PUBLIC_METHODS, internal=INTERNAL_METHODS),
)
