"""ecommerce-cart's call to the catalogue (``casemesh.ecommerce.v1.CatalogService.GetProduct``), as the domain sees it.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 519-520: "Product
Service: Catalog", "Cart Service"). :class:`CatalogClient` wraps ``catalog_pb2_grpc.CatalogServiceStub`` over the
runtime's channel to ``ecommerce-catalog``, passes an explicit ``timeout=`` (``catalog_timeout_s``; the runtime
channel's default deadline is 500 ms) and turns its errors into what SetItem answers:

- NOT_FOUND → :class:`~services.runtime.errors.NotFound` naming ``product_id`` (SetItem's NOT_FOUND);
- INVALID_ARGUMENT → ``InvalidArgument`` with the catalogue's field (``product_id``: the cart validates it first);
- anything else (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...) → :class:`CatalogUnavailable`
  (UNAVAILABLE: nothing was changed, retry).
"""

from __future__ import annotations

from typing import Protocol

import grpc

from casemesh.ecommerce.v1 import catalog_pb2, catalog_pb2_grpc, ecommerce_pb2

from ...runtime.errors import InvalidArgument, NotFound, Unavailable


class CatalogUnavailable(Unavailable):
    """The catalogue did not answer: UNAVAILABLE, the cart unchanged (retry)."""


class Catalogue(Protocol):
    """The catalogue call ecommerce-cart makes (errors as the module docstring says)."""

    async def get_product(self, product_id: str) -> ecommerce_pb2.Product: ...


class CatalogClient:
    """:class:`Catalogue` over ``catalog_pb2_grpc.CatalogServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: catalog_pb2_grpc.CatalogServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def get_product(self, product_id: str) -> ecommerce_pb2.Product:
        try:
            response = await self._stub.GetProduct(catalog_pb2.GetProductRequest(product_id=product_id),
                                                   timeout=self._timeout_s)
        except grpc.aio.AioRpcError as error:
            code, details = error.code(), error.details() or ""
            if code == grpc.StatusCode.NOT_FOUND:
                raise NotFound(f"product_id: no product {product_id!r} in the catalogue") from None
            if code == grpc.StatusCode.INVALID_ARGUMENT:
                field, sep, reason = details.partition(": ")
                raise (InvalidArgument(field, reason) if sep else InvalidArgument("product_id", details)) from None
            raise CatalogUnavailable(f"ecommerce-catalog did not answer ({code.name}: {details}); the cart is "
                                     "unchanged: retry") from None
        return response.product
