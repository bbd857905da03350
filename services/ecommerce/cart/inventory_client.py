"""ecommerce-cart's calls to the inventory (``casemesh.ecommerce.v1.InventoryService`` Reserve and Release), as the
domain sees them.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 520 and 529: "Cart
Service: Redis for session, real-time inventory reservation", "Inventory reservation: Optimistic locking with TTL";
``reserve_stock(product_id, quantity, user_id, ttl=600)``, ``release_reservation``). :class:`InventoryClient` wraps
``inventory_pb2_grpc.InventoryServiceStub`` over the runtime's channel to ``ecommerce-inventory`` (which carries this
service's identity: Reserve and Release are internal to ecommerce-cart and ecommerce-orders), passes an explicit
``timeout=`` (``inventory_timeout_s``) on every call, always ``ttl_ms`` 0 (the inventory's ``reservation_ttl_s``),
and turns its errors into what the domain decides on:

- FAILED_PRECONDITION whose reason is ``contract.OUT_OF_STOCK`` → :class:`OutOfStock` (SetItem answers it as it is:
  "out_of_stock: ..."); any other (``reservation_committed``, ``reservation_released``, ...) →
  ``FailedPrecondition``; NOT_FOUND → ``NotFound``; INVALID_ARGUMENT → ``InvalidArgument`` (the inventory's field);
- anything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...) → :class:`InventoryUnavailable`: the
  inventory may or may not have done it.
"""

from __future__ import annotations

from typing import Protocol

import grpc

from casemesh.ecommerce.v1 import ecommerce_pb2, inventory_pb2, inventory_pb2_grpc

from ...runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from ..contract import OUT_OF_STOCK, failed_precondition_reason


class InventoryUnavailable(Unavailable):
    """The inventory did not answer: it may or may not have done it. UNAVAILABLE, the cart unchanged (retry)."""


class OutOfStock(FailedPrecondition):
    """The inventory had fewer units available than asked: nothing was held."""


class Inventory(Protocol):
    """The two InventoryService calls ecommerce-cart makes (errors as the module docstring says)."""

    async def reserve(self, reservation_id: str, product_id: str, quantity: int) -> ecommerce_pb2.Reservation: ...

    async def release(self, reservation_id: str) -> ecommerce_pb2.Reservation: ...


def _domain_error(error: grpc.aio.AioRpcError) -> Exception:
    code, details = error.code(), error.details() or ""
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return OutOfStock(details) if failed_precondition_reason(details) == OUT_OF_STOCK else FailedPrecondition(
            details)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(details)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        field, sep, reason = details.partition(": ")
        return InvalidArgument(field, reason) if sep else InvalidArgument("request", details)
    return InventoryUnavailable(f"ecommerce-inventory did not answer ({code.name}: {details}); the cart is "
                                "unchanged: retry")


class InventoryClient:
    """:class:`Inventory` over ``inventory_pb2_grpc.InventoryServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: inventory_pb2_grpc.InventoryServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def reserve(self, reservation_id: str, product_id: str, quantity: int) -> ecommerce_pb2.Reservation:
        try:
            return (await self._stub.Reserve(inventory_pb2.ReserveRequest(
                reservation_id=reservation_id, product_id=product_id, quantity=quantity, ttl_ms=0),
                timeout=self._timeout_s)).reservation
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error) from None

    async def release(self, reservation_id: str) -> ecommerce_pb2.Reservation:
        try:
            return (await self._stub.Release(inventory_pb2.ReleaseRequest(reservation_id=reservation_id),
                                             timeout=self._timeout_s)).reservation
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error) from None
