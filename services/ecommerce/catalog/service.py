"""``casemesh.ecommerce.v1.CatalogService`` (topology name ``ecommerce-catalog``).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 513 and 519: "Latency:
Sub-200ms for search", "Product Service: Catalog, search (Elasticsearch)"). A thin servicer over the domain,
:class:`.catalog.Catalog` (validation :mod:`.validation`, the query's MATCH expression :mod:`.search`, the SQLite file
with its FTS5 index :mod:`.store`, ``DATA_DIR/ecommerce-catalog/catalog.sqlite3``). It calls no other service;
ecommerce-cart (served in the same process by the default topology) calls its GetProduct.

RPCs and status codes (protos/casemesh/ecommerce/v1/catalog.proto), all public (CreateProduct is the merchant's):

- CreateProduct: INVALID_ARGUMENT naming ``product.product_id``, ``product.title``, ``product.description``,
  ``product.category``, ``product.price.currency_code`` or ``product.price.amount_minor``; ALREADY_EXISTS naming
  ``product.product_id`` (taken with other fields); UNAVAILABLE when the file cannot be written (retry: an identical
  retry returns the product).
- GetProduct: INVALID_ARGUMENT naming ``product_id``; NOT_FOUND naming ``product_id``.
- ListProducts: INVALID_ARGUMENT naming ``category``, ``page_size`` or ``page_token``.
- SearchProducts: INVALID_ARGUMENT naming ``query``, ``category``, ``max_price_minor``, ``page_size`` or
  ``page_token``.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.CatalogSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc

from casemesh.ecommerce.v1 import catalog_pb2, catalog_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from .catalog import Catalog
from .settings import CatalogSettings
from .store import ProductStore

log = logging.getLogger("casemesh.ecommerce.catalog.service")

NAME = "ecommerce-catalog"
FULL_NAME = catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name
#: The catalogue's SQLite file, under DATA_DIR/ecommerce-catalog/.
DB_FILE = "catalog.sqlite3"
#: Every method: shoppers browse and search, the merchant creates products.
PUBLIC_METHODS = frozenset({"CreateProduct", "GetProduct", "ListProducts", "SearchProducts"})


class CatalogServicer(catalog_pb2_grpc.CatalogServiceServicer):
    """Calls :class:`.catalog.Catalog` (which validates each request: :mod:`.validation`)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog

    async def CreateProduct(self, request: catalog_pb2.CreateProductRequest,
                            context: grpc.aio.ServicerContext) -> catalog_pb2.CreateProductResponse:
        return await self._catalog.create_product(request)

    async def GetProduct(self, request: catalog_pb2.GetProductRequest,
                         context: grpc.aio.ServicerContext) -> catalog_pb2.GetProductResponse:
        return self._catalog.get_product(request)

    async def ListProducts(self, request: catalog_pb2.ListProductsRequest,
                           context: grpc.aio.ServicerContext) -> catalog_pb2.ListProductsResponse:
        return self._catalog.list_products(request)

    async def SearchProducts(self, request: catalog_pb2.SearchProductsRequest,
                             context: grpc.aio.ServicerContext) -> catalog_pb2.SearchProductsResponse:
        return await self._catalog.search_products(request)


class CatalogComponent:
    """The servicer over the store (``DATA_DIR/ecommerce-catalog/catalog.sqlite3``)."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, CatalogSettings)
        store = ProductStore(context.data_dir(NAME) / DB_FILE, settings.commit_batch)
        self.catalog = Catalog(settings, store)

    def register(self, server: grpc.aio.Server) -> None:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogServicer(self.catalog), server)

    async def start(self) -> None:
        log.info("%s: %d products in the catalogue", NAME, self.catalog.start())

    async def stop(self) -> None:
        await self.catalog.close()


async def build(context: RuntimeContext) -> CatalogComponent:
    return CatalogComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=CatalogSettings,
    access=Access(public=PUBLIC_METHODS),
)
