"""The catalogue without gRPC: CreateProduct, GetProduct, ListProducts and SearchProducts.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 502, 513 and 519: "Product
catalog with search and filtering", "Latency: Sub-200ms for search", "Product Service: Catalog, search
(Elasticsearch)"); seed 001 #05 (shared/seeds/001_58dfc580020147d2.txt line 21: "10M products, Amazon-scale").

- CreateProduct (:mod:`.validation`, then :meth:`.store.ProductStore.create`): durable before it answers. An id that
  exists with the same fields (the creation time aside) returns the stored product (an identical retry); with other
  fields ALREADY_EXISTS naming ``product.product_id``; nothing is overwritten.
- GetProduct: NOT_FOUND naming ``product_id``.
- ListProducts: a category's products by product id, keyset-paged (the page token holds the last id returned, so a
  page never repeats nor skips a product while others are added).
- SearchProducts: the query's words (:mod:`.search`) against the FTS5 index, best BM25 first (:mod:`.store`),
  filtered by category and highest price; from/size paging as Elasticsearch's (the page token holds the offset of the
  next page, up to ``max_search_results``): a product added meanwhile may shift the ranks of a later page.

Page tokens are ``services/runtime/page_tokens.py``'s, tied to their listing (a category, or a search's words,
category and price bound): one from another request is INVALID_ARGUMENT naming ``page_token``. Errors are the
runtime's domain errors (services/runtime/errors.py), as protos/casemesh/ecommerce/v1/catalog.proto lists them per
RPC; :class:`.store.StoreUnavailable` is UNAVAILABLE.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from casemesh.ecommerce.v1 import catalog_pb2

from ...runtime import page_tokens
from ...runtime.errors import AlreadyExists, NotFound
from . import metrics, validation
from .search import match_expression
from .settings import CatalogSettings
from .store import ProductRecord, ProductStore

#: Page-token listings (page_tokens' KIND).
LIST_KIND = "products-by-category"
SEARCH_KIND = "product-search"


def search_scope(search: validation.Search) -> str:
    """What a search page token belongs to: the query's words (case-folded), the category and the price bound."""
    return "\x1f".join((" ".join(word.casefold() for word in search.words), search.category,
                        str(search.max_price_minor)))


class Catalog:
    """The catalogue's domain (see the module docstring) over ``store``. ``clock()`` is seconds since the Unix
    epoch."""

    def __init__(self, settings: CatalogSettings, store: ProductStore, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.store = store
        self._clock = clock
        self._weights = (settings.title_weight, settings.description_weight)

    def start(self) -> int:
        """Set the products gauge from the store; how many products there are."""
        count = self.store.count()
        metrics.PRODUCTS.set(count)
        return count

    async def create_product(self, request: catalog_pb2.CreateProductRequest) -> catalog_pb2.CreateProductResponse:
        """CreateProduct (see the module docstring)."""
        new = validation.create_product(request)
        record = ProductRecord(*new, created_at_unix_ms=int(self._clock() * 1000))
        stored = await self.store.create(record)
        if stored.created:
            metrics.CREATED.inc()
            metrics.PRODUCTS.inc()
        elif stored.product[:-1] != record[:-1]:
            raise AlreadyExists(f"product.product_id: {new.product_id!r} exists with other fields")
        return catalog_pb2.CreateProductResponse(product=stored.product.to_proto())

    def get_product(self, request: catalog_pb2.GetProductRequest) -> catalog_pb2.GetProductResponse:
        """GetProduct: the product, or NOT_FOUND naming ``product_id``."""
        product_id = validation.product_id(request.product_id)
        record = self.store.get(product_id)
        if record is None:
            raise NotFound(f"product_id: no product {product_id!r} in the catalogue")
        return catalog_pb2.GetProductResponse(product=record.to_proto())

    def list_products(self, request: catalog_pb2.ListProductsRequest) -> catalog_pb2.ListProductsResponse:
        """ListProducts: a page of a category, by product id."""
        page = validation.list_products(request)
        after = (page_tokens.decode(page.page_token, LIST_KIND, page.category, {"a": str})["a"]
                 if page.page_token else "")
        records = self.store.list_category(page.category, after, page.page_size + 1)
        response = catalog_pb2.ListProductsResponse(products=[r.to_proto() for r in records[:page.page_size]])
        if len(records) > page.page_size:
            response.next_page_token = page_tokens.encode(LIST_KIND, page.category,
                                                          {"a": records[page.page_size - 1].product_id})
        return response

    async def search_products(self, request: catalog_pb2.SearchProductsRequest) -> catalog_pb2.SearchProductsResponse:
        """SearchProducts: a page of the products matching every word (the last as a prefix), best BM25 first."""
        search = validation.search_products(request)
        scope = search_scope(search)
        offset = page_tokens.decode(search.page_token, SEARCH_KIND, scope, {"o": int})["o"] if search.page_token else 0
        limit = min(search.page_size, self.settings.max_search_results - offset)
        response = catalog_pb2.SearchProductsResponse()
        if limit > 0:
            started = time.perf_counter()
            hits = await self.store.search(match_expression(search.words), category=search.category,
                                           max_price_minor=search.max_price_minor, weights=self._weights,
                                           offset=offset, limit=limit + 1)
            metrics.SEARCH_SECONDS.observe(time.perf_counter() - started)
            response.hits.extend(catalog_pb2.SearchHit(product=hit.product.to_proto(), score=hit.score)
                                 for hit in hits[:limit])
            if len(hits) > limit and offset + limit < self.settings.max_search_results:
                response.next_page_token = page_tokens.encode(SEARCH_KIND, scope, {"o": offset + limit})
        metrics.SEARCHES.labels("hits" if response.hits else "no_hits").inc()
        metrics.SEARCH_HITS.observe(len(response.hits))
        return response

    async def close(self) -> None:
        """Close the store (the writes queued finish first)."""
        await self.store.close()
