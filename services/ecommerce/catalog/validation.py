"""ecommerce-catalog's input rules, as protos/casemesh/ecommerce/v1/catalog.proto states them.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 502: "Product catalog with
search and filtering"). Each check raises :class:`~services.runtime.errors.InvalidArgument` naming the field as the
proto's comments do (``product.product_id``, ``product.price.amount_minor``, ``query``, ``page_size``), the first bad
one in the proto's field order. The shared rules are the contract's (:mod:`services.ecommerce.contract`: ids,
categories, currencies, prices, lengths, page sizes). Page tokens are checked where they are decoded
(:mod:`.catalog`, ``services/runtime/page_tokens.py``), naming ``page_token``.
"""

from __future__ import annotations

from typing import NamedTuple

from casemesh.ecommerce.v1 import catalog_pb2

from ...runtime.errors import InvalidArgument
from ...runtime.identifiers import required_id
from .. import contract
from .search import words

_CATEGORY_RULE = "1 to 64 characters of a-z, 0-9 or '-'"


class NewProduct(NamedTuple):
    """A valid CreateProductRequest's product (price in minor units of ``currency_code``)."""

    product_id: str
    title: str
    description: str
    category: str
    currency_code: str
    amount_minor: int


class ListPage(NamedTuple):
    """A valid ListProductsRequest (``page_size`` with the default applied; ``page_token`` still opaque)."""

    category: str
    page_size: int
    page_token: str


class Search(NamedTuple):
    """A valid SearchProductsRequest: the query's ``words`` (at least one), ``category`` (empty: every one),
    ``max_price_minor`` (0: no bound), ``page_size`` with the default applied, ``page_token`` still opaque."""

    words: list[str]
    category: str
    max_price_minor: int
    page_size: int
    page_token: str


def category(field: str, value: str) -> str:
    """A category: 1 to 64 characters of ``[a-z0-9-]``, naming ``field``."""
    if not value:
        raise InvalidArgument(field, f"is required ({_CATEGORY_RULE})")
    if not contract.is_category(value):
        raise InvalidArgument(field, f"must be {_CATEGORY_RULE}")
    return value


def page_size(value: int, largest: int, default: int) -> int:
    """``page_size``: 0 (→ ``default``) to ``largest``."""
    if not 0 <= value <= largest:
        raise InvalidArgument("page_size", f"{value} is not 0 to {largest}")
    return value or default


def create_product(request: catalog_pb2.CreateProductRequest) -> NewProduct:
    """CreateProductRequest: ``product.product_id``, ``product.title`` (1 to 200 characters),
    ``product.description`` (up to 2,000), ``product.category``, ``product.price.currency_code`` (three upper-case
    letters), ``product.price.amount_minor`` (1 to 100,000,000); ``created_at_unix_ms`` is ignored."""
    product = request.product
    product_id = required_id("product.product_id", product.product_id)
    if not 1 <= len(product.title) <= contract.TITLE_MAX_CHARS:
        raise InvalidArgument("product.title", f"has {len(product.title)} characters; 1 to "
                                               f"{contract.TITLE_MAX_CHARS}")
    if len(product.description) > contract.DESCRIPTION_MAX_CHARS:
        raise InvalidArgument("product.description", f"has {len(product.description)} characters; at most "
                                                     f"{contract.DESCRIPTION_MAX_CHARS:,}")
    category("product.category", product.category)
    price = product.price
    if not contract.is_currency_code(price.currency_code):
        raise InvalidArgument("product.price.currency_code", f"{price.currency_code!r} is not three upper-case "
                                                             "letters (ISO 4217)")
    if not 1 <= price.amount_minor <= contract.MAX_PRICE_MINOR:
        raise InvalidArgument("product.price.amount_minor", f"{price.amount_minor} is not 1 to "
                                                            f"{contract.MAX_PRICE_MINOR:,}")
    return NewProduct(product_id, product.title, product.description, product.category, price.currency_code,
                      price.amount_minor)


def product_id(value: str) -> str:
    """GetProductRequest's ``product_id``."""
    return required_id("product_id", value)


def list_products(request: catalog_pb2.ListProductsRequest) -> ListPage:
    """ListProductsRequest: ``category``, ``page_size`` (0 to 100; 0: 20)."""
    return ListPage(category("category", request.category),
                    page_size(request.page_size, contract.MAX_LIST_PAGE_SIZE, contract.DEFAULT_LIST_PAGE_SIZE),
                    request.page_token)


def search_products(request: catalog_pb2.SearchProductsRequest) -> Search:
    """SearchProductsRequest: ``query`` (1 to 200 characters with at least one letter or digit), ``category`` (empty,
    or a category), ``max_price_minor`` (0 or more), ``page_size`` (0 to 50; 0: 10)."""
    query = request.query
    if not query:
        raise InvalidArgument("query", f"is required (1 to {contract.QUERY_MAX_CHARS} characters)")
    if len(query) > contract.QUERY_MAX_CHARS:
        raise InvalidArgument("query", f"has {len(query)} characters; at most {contract.QUERY_MAX_CHARS}")
    query_words = words(query)
    if not query_words:
        raise InvalidArgument("query", "has no letter or digit to search for")
    if request.category:
        category("category", request.category)
    if request.max_price_minor < 0:
        raise InvalidArgument("max_price_minor", f"{request.max_price_minor} is negative (0: no bound)")
    return Search(query_words, request.category, request.max_price_minor,
                  page_size(request.page_size, contract.MAX_SEARCH_PAGE_SIZE, contract.DEFAULT_SEARCH_PAGE_SIZE),
                  request.page_token)
