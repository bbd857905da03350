"""ecommerce-orders' calls to the inventory (``casemesh.ecommerce.v1.InventoryService``, ``ecommerce-inventory``).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Inventory
reservation: Optimistic locking with TTL", ``reserve_stock(product_id, quantity, user_id, ttl=600)``,
confirm_reservation, release_reservation). Reserve, Commit and Release are internal to ``ecommerce-cart`` and
``ecommerce-orders`` (the runtime's channel carries this service's identity); Restock is public (a failed order's
committed units given back). Each is idempotent by its id: Reserve of a HELD reservation extends it, of an EXPIRED one
holds it anew, of a COMMITTED one returns it; Commit of a COMMITTED one returns it; Release of a RELEASED or EXPIRED
one returns it; a Restock id applied once adds nothing more. Deadlines, retries and errors: :mod:`.calls` (the
inventory's FAILED_PRECONDITION reasons ``out_of_stock``, ``reservation_expired``, ``reservation_released``,
``reservation_committed`` are :attr:`.calls.Refused.reason`).
"""

from __future__ import annotations

from typing import Protocol

from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2, inventory_pb2_grpc

from .calls import CallPolicy


class Inventory(Protocol):
    """The InventoryService calls the saga makes (:class:`.calls.Refused`, :class:`.calls.DependencyUnavailable`).
    ``ttl_ms``: 0 for the inventory's default."""

    async def reserve(self, reservation_id: str, product_id: str, quantity: int,
                      ttl_ms: int) -> ecommerce_pb2.Reservation: ...

    async def commit(self, reservation_id: str) -> ecommerce_pb2.Reservation: ...

    async def release(self, reservation_id: str) -> ecommerce_pb2.Reservation: ...

    async def restock(self, restock_id: str, product_id: str, quantity: int) -> ecommerce_pb2.StockLevel: ...


class InventoryClient:
    """:class:`Inventory` over ``inventory_pb2_grpc.InventoryServiceStub``."""

    def __init__(self, stub: inventory_pb2_grpc.InventoryServiceStub, policy: CallPolicy) -> None:
        self._stub = stub
        self._policy = policy

    async def reserve(self, reservation_id: str, product_id: str, quantity: int,
                      ttl_ms: int) -> ecommerce_pb2.Reservation:
        return (await self._policy.call("Reserve", self._stub.Reserve, inventory_pb2.ReserveRequest(
            reservation_id=reservation_id, product_id=product_id, quantity=quantity, ttl_ms=ttl_ms))).reservation

    async def commit(self, reservation_id: str) -> ecommerce_pb2.Reservation:
        return (await self._policy.call("Commit", self._stub.Commit, inventory_pb2.CommitRequest(
            reservation_id=reservation_id))).reservation

    async def release(self, reservation_id: str) -> ecommerce_pb2.Reservation:
        return (await self._policy.call("Release", self._stub.Release, inventory_pb2.ReleaseRequest(
            reservation_id=reservation_id))).reservation

    async def restock(self, restock_id: str, product_id: str, quantity: int) -> ecommerce_pb2.StockLevel:
        return (await self._policy.call("Restock", self._stub.Restock, inventory_pb2.RestockRequest(
            restock_id=restock_id, product_id=product_id, quantity=quantity))).stock
