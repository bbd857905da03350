"""ecommerce-catalog (services/ecommerce/catalog) without gRPC: validation per field, the FTS5 MATCH expression built
from the query's words (never user syntax: hostile queries never fail), BM25 ranking (higher score first, the title
weighted above the description), every word and the last as a prefix, case and diacritics folded, the category and
price filters, search and category paging (no product twice, tokens tied to their request, the result window),
idempotent creation, concurrent creates of one id, durability across a restart, and the metrics.

The domain runs over a real :class:`ProductStore` in a temporary folder (SQLite is the mechanism under test); gRPC
and the status codes are in tests/unit/test_ecommerce_catalog_grpc.py.
"""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import catalog_pb2, ecommerce_pb2
from casemesh.services.ecommerce import contract
from casemesh.services.ecommerce.catalog import search
from casemesh.services.ecommerce.catalog.catalog import Catalog
from casemesh.services.ecommerce.catalog.settings import CatalogSettings
from casemesh.services.ecommerce.catalog.store import ProductRecord, ProductStore, StoreUnavailable
from casemesh.services.runtime import page_tokens
from casemesh.services.runtime.errors import AlreadyExists, InvalidArgument, NotFound

CP = catalog_pb2


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def product(product_id: str = "p1", title: str = "Blue kettle", description: str = "Boils water fast",
            category: str = "kitchen", amount: int = 2_500, currency: str = "USD") -> ecommerce_pb2.Product:
    return ecommerce_pb2.Product(product_id=product_id, title=title, description=description, category=category,
                                 price=money_pb2.Money(currency_code=currency, amount_minor=amount))


def create(**fields) -> CP.CreateProductRequest:
    return CP.CreateProductRequest(product=product(**fields))


def search_request(query: str, **fields) -> CP.SearchProductsRequest:
    return CP.SearchProductsRequest(query=query, **fields)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


@pytest.fixture
async def catalog(tmp_path):
    store = ProductStore(tmp_path / "catalog.sqlite3")
    catalog = Catalog(CatalogSettings(), store, clock=Clock())
    catalog.start()
    try:
        yield catalog
    finally:
        await catalog.close()


async def ids(catalog: Catalog, query: str, **fields) -> list[str]:
    return [hit.product.product_id for hit in (await catalog.search_products(search_request(query, **fields))).hits]


# ----------------------------------------------------------------------------- the MATCH expression


def test_words_and_match_expression():
    assert search.words("Wi-Fi 6E router") == ["Wi", "Fi", "6E", "router"]
    assert search.words("café_crème, naïve!") == ["café", "crème", "naïve"]
    assert search.words('" * AND ( ) ^ : -') == ["AND"]
    assert search.words("*-\"") == []
    assert search.match_expression(["usb", "cab"]) == '"usb" AND "cab"*'
    assert search.match_expression(["AND"]) == '"AND"*'
    with pytest.raises(ValueError):
        search.match_expression([])


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("fields", "field"), [
    ({"product_id": ""}, "product.product_id"),
    ({"product_id": "a b"}, "product.product_id"),
    ({"product_id": "x" * 65}, "product.product_id"),
    ({"title": ""}, "product.title"),
    ({"title": "t" * 201}, "product.title"),
    ({"description": "d" * 2_001}, "product.description"),
    ({"category": ""}, "product.category"),
    ({"category": "Books"}, "product.category"),
    ({"currency": "usd"}, "product.price.currency_code"),
    ({"amount": 0}, "product.price.amount_minor"),
    ({"amount": contract.MAX_PRICE_MINOR + 1}, "product.price.amount_minor"),
])
async def test_create_product_names_the_bad_field(catalog, fields, field):
    with pytest.raises(InvalidArgument) as error:
        await catalog.create_product(create(**fields))
    assert error.value.field == field
    assert catalog.store.count() == 0


async def test_the_edges_of_the_rules_are_accepted(catalog):
    await catalog.create_product(create(product_id="x" * 64, title="t" * 200, description="d" * 2_000,
                                        category="c" * 64, amount=contract.MAX_PRICE_MINOR))
    await catalog.create_product(create(product_id="p2", description="", amount=1, category="home-garden-2"))
    assert catalog.store.count() == 2


@pytest.mark.parametrize(("request_", "field"), [
    (search_request(""), "query"),
    (search_request("q" * 201), "query"),
    (search_request("*** --- \"\""), "query"),
    (search_request("kettle", category="Kitchen"), "category"),
    (search_request("kettle", max_price_minor=-1), "max_price_minor"),
    (search_request("kettle", page_size=51), "page_size"),
    (search_request("kettle", page_size=-1), "page_size"),
    (search_request("kettle", page_token="garbage!"), "page_token"),
])
async def test_search_names_the_bad_field(catalog, request_, field):
    with pytest.raises(InvalidArgument) as error:
        await catalog.search_products(request_)
    assert error.value.field == field


@pytest.mark.parametrize(("request_", "field"), [
    (CP.ListProductsRequest(category=""), "category"),
    (CP.ListProductsRequest(category="a_b"), "category"),
    (CP.ListProductsRequest(category="kitchen", page_size=101), "page_size"),
    (CP.ListProductsRequest(category="kitchen", page_token="%%%"), "page_token"),
])
def test_list_names_the_bad_field(catalog, request_, field):
    with pytest.raises(InvalidArgument) as error:
        catalog.list_products(request_)
    assert error.value.field == field


def test_get_product(catalog):
    with pytest.raises(InvalidArgument) as error:
        catalog.get_product(CP.GetProductRequest(product_id=""))
    assert error.value.field == "product_id"
    with pytest.raises(NotFound, match="^product_id: "):
        catalog.get_product(CP.GetProductRequest(product_id="nope"))


def test_settings_refuse_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError):
        CatalogSettings(bogus=1)
    with pytest.raises(ValidationError):
        CatalogSettings(title_weight=0)
    assert CatalogSettings().max_search_results == 10_000


# ----------------------------------------------------------------------------- creation


async def test_create_is_idempotent_and_never_overwrites(catalog):
    created = sample("casemesh_ecommerce_catalog_created_total")
    first = (await catalog.create_product(create())).product
    assert first.created_at_unix_ms > 0 and first.price.amount_minor == 2_500
    again = (await catalog.create_product(create())).product
    assert again == first  # the identical retry returns the stored product, its creation time too
    with pytest.raises(AlreadyExists, match="^product.product_id: "):
        await catalog.create_product(create(amount=2_600))
    assert catalog.get_product(CP.GetProductRequest(product_id="p1")).product == first
    assert sample("casemesh_ecommerce_catalog_created_total") == created + 1
    assert sample("casemesh_ecommerce_catalog_products") == 1


async def test_concurrent_creates_of_one_id_store_one(catalog):
    answers = await asyncio.gather(*(catalog.create_product(create(title=f"Kettle {n % 2}")) for n in range(20)),
                                   return_exceptions=True)
    stored = catalog.get_product(CP.GetProductRequest(product_id="p1")).product
    for answer in answers:
        if isinstance(answer, AlreadyExists):
            continue
        assert answer.product == stored
    assert sum(isinstance(a, AlreadyExists) for a in answers) == 10
    assert catalog.store.count() == 1
    assert await ids(catalog, stored.title) == ["p1"]


async def test_products_and_their_index_survive_a_restart(tmp_path):
    path = tmp_path / "catalog.sqlite3"
    catalog = Catalog(CatalogSettings(), ProductStore(path), clock=Clock())
    await asyncio.gather(*(catalog.create_product(create(product_id=f"p{n}", title=f"Lamp {n}")) for n in range(30)))
    stored = catalog.get_product(CP.GetProductRequest(product_id="p7")).product
    await catalog.close()
    with pytest.raises(StoreUnavailable):
        catalog.get_product(CP.GetProductRequest(product_id="p7"))
    with pytest.raises(StoreUnavailable):
        await catalog.create_product(create(product_id="late"))

    reopened = Catalog(CatalogSettings(), ProductStore(path), clock=Clock())
    try:
        assert reopened.start() == 30 and sample("casemesh_ecommerce_catalog_products") == 30
        assert reopened.get_product(CP.GetProductRequest(product_id="p7")).product == stored
        assert await ids(reopened, "lamp 7") == ["p7"]
        assert len(await ids(reopened, "lamp", page_size=50)) == 30
    finally:
        await reopened.close()


async def test_the_schema_keeps_the_index_in_step(catalog):
    await catalog.create_product(create())
    db = sqlite3.connect(catalog.store.path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="products_unchanged"):
            db.execute("UPDATE products SET title = 'x'")
        with pytest.raises(sqlite3.IntegrityError, match="products_kept"):
            db.execute("DELETE FROM products")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO products (product_id, title, description, category, currency_code, amount_minor,"
                       " created_at_unix_ms) VALUES ('q', 't', '', 'c', 'USD', 0, 1)")
    finally:
        db.close()


# ----------------------------------------------------------------------------- search


async def seed(catalog: Catalog, products: list[ecommerce_pb2.Product]) -> None:
    for p in products:
        await catalog.create_product(CP.CreateProductRequest(product=p))


async def test_every_word_matches_the_last_as_a_prefix(catalog):
    await seed(catalog, [
        product("kettle", "Electric kettle", "Stainless steel, boils a litre in three minutes"),
        product("cable", "USB-C cable", "Braided charging cable, two metres", category="electronics"),
        product("charger", "USB charger", "Wall charger with two ports", category="electronics"),
        product("cafe", "Café crème cups", "Porcelain cups for CAFÉ au lait"),
    ])
    assert await ids(catalog, "usb cab") == ["cable"]
    assert sorted(await ids(catalog, "usb")) == ["cable", "charger"]
    assert await ids(catalog, "usb kettle") == []  # every word must match
    assert await ids(catalog, "kett") == ["kettle"]  # the last word as a prefix
    assert await ids(catalog, "kett electric") == []  # ... only the last one
    assert await ids(catalog, "CAFE creme") == ["cafe"]  # case and diacritics folded
    assert await ids(catalog, "café") == ["cafe"]
    assert await ids(catalog, "two ports", category="electronics") == ["charger"]


async def test_bm25_ranks_best_first_and_the_title_weighs_more(catalog):
    await seed(catalog, [
        product("desc", "Garden hose", "Pairs with any lamp stand and lamp shade"),
        product("title", "Desk lamp", "Bright and adjustable"),
        product("both", "Lamp lamp", "A lamp of lamps"),
        product("none", "Chair", "Oak"),
    ])
    hits = (await catalog.search_products(search_request("lamp"))).hits
    assert [hit.product.product_id for hit in hits] == ["both", "title", "desc"]
    scores = [hit.score for hit in hits]
    assert all(score > 0 for score in scores) and scores == sorted(scores, reverse=True)


async def test_weights_are_a_setting(tmp_path):
    catalog = Catalog(CatalogSettings(title_weight=0.1, description_weight=10), ProductStore(tmp_path / "c.sqlite3"))
    try:
        await seed(catalog, [product("title", "Desk lamp", "Bright"),
                             product("desc", "Garden hose", "Pairs with any lamp stand")])
        assert await ids(catalog, "lamp") == ["desc", "title"]
    finally:
        await catalog.close()


async def test_category_and_price_filters(catalog):
    await seed(catalog, [product(f"p{n}", f"Red mug {n}", "Ceramic", category="kitchen" if n % 2 else "office",
                                 amount=100 * (n + 1)) for n in range(10)])
    assert sorted(await ids(catalog, "mug", category="kitchen")) == ["p1", "p3", "p5", "p7", "p9"]
    assert sorted(await ids(catalog, "mug", max_price_minor=300)) == ["p0", "p1", "p2"]
    assert sorted(await ids(catalog, "mug", max_price_minor=300, category="office")) == ["p0", "p2"]
    assert await ids(catalog, "mug", category="garden") == []
    assert len(await ids(catalog, "mug", max_price_minor=0)) == 10  # 0: no bound


@pytest.mark.parametrize("query", [
    '"', '""', "AND", "OR", "NOT", "NEAR", "NEAR(red mug)", "red AND", "red OR mug", "*", "red*", "^red", "title:red",
    "description:red", "{title description}:red", "red -mug", "red + mug", "(red", "red)", "'red'", "red\\", "a\x00b",
    "\u0301", "mug \u0301",
])
async def test_queries_are_never_fts5_syntax(catalog, query):
    await seed(catalog, [product("mug", "Red mug", "and or not near title")])
    try:
        response = await catalog.search_products(search_request(query))
    except InvalidArgument as error:  # no letter or digit at all
        assert error.field == "query" and not search.words(query)
        return
    assert [hit.product.product_id for hit in response.hits] in ([], ["mug"])


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.text(min_size=1, max_size=40))
async def test_no_query_makes_the_search_fail(catalog, query):
    if not catalog.store.count():
        await seed(catalog, [product("mug", "Red mug", "Ceramic and glazed")])
    try:
        await catalog.search_products(search_request(query))
    except InvalidArgument as error:
        assert error.field == "query" and not search.words(query)


async def test_search_pages_cover_every_hit_once(catalog):
    await asyncio.gather(*(catalog.create_product(create(product_id=f"p{n:02}", title=f"Oak table {'oak ' * (n % 4)}",
                                                          description=f"seats {n}")) for n in range(23)))
    seen: list[str] = []
    scores: list[float] = []
    token = ""
    pages = 0
    while True:
        response = await catalog.search_products(search_request("oak tab", page_size=5, page_token=token))
        seen += [hit.product.product_id for hit in response.hits]
        scores += [hit.score for hit in response.hits]
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert pages == 5 and sorted(seen) == [f"p{n:02}" for n in range(23)]
    assert scores == sorted(scores, reverse=True)
    # default page size 10
    first = await catalog.search_products(search_request("oak"))
    assert len(first.hits) == contract.DEFAULT_SEARCH_PAGE_SIZE and first.next_page_token
    # a token belongs to its request: another query, category or price bound refuses it
    for other in (search_request("oak chair", page_token=first.next_page_token),
                  search_request("oak", category="kitchen", page_token=first.next_page_token),
                  search_request("oak", max_price_minor=5, page_token=first.next_page_token)):
        with pytest.raises(InvalidArgument) as error:
            await catalog.search_products(other)
        assert error.value.field == "page_token"
    # ... but not its case
    assert (await catalog.search_products(search_request("OAK", page_token=first.next_page_token))).hits


async def test_the_result_window_ends_the_paging(tmp_path):
    catalog = Catalog(CatalogSettings(max_search_results=7), ProductStore(tmp_path / "c.sqlite3"))
    try:
        await seed(catalog, [product(f"p{n}", "Wool sock", "warm") for n in range(12)])
        first = await catalog.search_products(search_request("sock", page_size=5))
        second = await catalog.search_products(search_request("sock", page_size=5, page_token=first.next_page_token))
        assert (len(first.hits), len(second.hits), second.next_page_token) == (5, 2, "")
        beyond = page_tokens.encode("product-search", "sock\x1f\x1f0", {"o": 50})
        assert not (await catalog.search_products(search_request("sock", page_token=beyond))).hits
    finally:
        await catalog.close()


async def test_search_metrics(catalog):
    await seed(catalog, [product()])
    hits, misses = (sample("casemesh_ecommerce_catalog_searches_total", {"outcome": o}) for o in ("hits", "no_hits"))
    observed = sample("casemesh_ecommerce_catalog_search_hits_count")
    await catalog.search_products(search_request("kettle"))
    await catalog.search_products(search_request("zebra"))
    assert sample("casemesh_ecommerce_catalog_searches_total", {"outcome": "hits"}) == hits + 1
    assert sample("casemesh_ecommerce_catalog_searches_total", {"outcome": "no_hits"}) == misses + 1
    assert sample("casemesh_ecommerce_catalog_search_hits_count") == observed + 2
    assert sample("casemesh_ecommerce_catalog_search_seconds_count") >= 2


# ----------------------------------------------------------------------------- category pages


async def test_list_products_pages_by_id(catalog):
    await seed(catalog, [product(f"p{n:02}", category="books" if n % 3 else "toys") for n in range(36)])
    books = [f"p{n:02}" for n in range(36) if n % 3]
    seen: list[str] = []
    token = ""
    while True:
        response = catalog.list_products(CP.ListProductsRequest(category="books", page_size=4, page_token=token))
        seen += [p.product_id for p in response.products]
        token = response.next_page_token
        if not token:
            break
    assert seen == books
    first = catalog.list_products(CP.ListProductsRequest(category="books"))
    assert len(first.products) == contract.DEFAULT_LIST_PAGE_SIZE
    # exactly a page left: no empty last page
    assert not catalog.list_products(CP.ListProductsRequest(category="toys", page_size=12)).next_page_token
    with pytest.raises(InvalidArgument) as error:
        catalog.list_products(CP.ListProductsRequest(category="toys", page_token=first.next_page_token))
    assert error.value.field == "page_token"
    assert not catalog.list_products(CP.ListProductsRequest(category="garden")).products


def test_a_record_is_its_proto():
    record = ProductRecord("p", "t", "d", "c", "EUR", 5, 7)
    assert record.to_proto() == ecommerce_pb2.Product(product_id="p", title="t", description="d", category="c",
                                                      price=money_pb2.Money(currency_code="EUR", amount_minor=5),
                                                      created_at_unix_ms=7)
