"""The e-commerce workload without the shop's services: the catalogue text and its queries, the seed plan and seeding
through a fake shop, the journeys against the fake (searches that find, a cart refused out of stock, checkouts
confirmed, declined, retried with the same key, double-clicked, answered twice by a broken shop, of unknown outcome),
the end-of-run checks (a consistent shop, an oversold product, stock sold without an order, an order lost, each
capacity step judged from its own baseline, several load processes, the flash sale's units), the profiles and their
SLOs, that the workload imports only the contracts, and the driver over real gRPC against the fake."""

from __future__ import annotations

import ast
import asyncio
import base64
import dataclasses
import hashlib
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import (
    cart_pb2,
    catalog_pb2,
    ecommerce_pb2,
    inventory_pb2,
    orders_pb2,
)
from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.ecommerce import MEASURES, WORKLOAD
from casemesh.harness.workloads.ecommerce.catalogue import (
    CATEGORIES,
    holds_query,
    make_product,
    query_for,
    words,
)
from casemesh.harness.workloads.ecommerce.end_checks import (
    DATA_LOSS,
    NO_OVERSELL,
    ORDERS_CONSISTENT,
    SELL_THROUGH,
    STRANDED,
    UNSOLD,
    finish,
)
from casemesh.harness.workloads.ecommerce.journeys import (
    CART_ADD,
    CART_HONOURED,
    CHECKOUT_OUTCOME,
    CHECKOUT_TIME,
    SEARCH_FOUND,
    SEARCH_TIME,
    AbandonParams,
    BrowseParams,
    BuyParams,
    FlashAbandonParams,
    FlashBuyParams,
    SearchParams,
    ViewParams,
    abandon,
    browse,
    buy,
    draw_think_s,
    search,
    view_product,
)
from casemesh.harness.workloads.ecommerce.live import Shop
from casemesh.harness.workloads.ecommerce.seeding import SeedParams, State, plan, seed
from casemesh.services.catalog import SERVICES
from casemesh.services.ecommerce.contract import (
    MERCHANT_ID,
    is_category,
    is_id,
    is_order_id,
)
from casemesh.services.payments.contract import TEST_CARDS, is_card_number
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "ecommerce"
SHOP_SERVICES = ("ecommerce-inventory", "ecommerce-catalog", "ecommerce-cart", "ecommerce-orders", "payments-vault",
                 "payments-fraud", "payments-psp-a", "payments-psp-b", "payments-gateway")
E = ecommerce_pb2


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# the catalogue text ---------------------------------------------------------------------------------------------------

def test_the_catalogue_has_twenty_categories_of_valid_ids_and_products_within_the_contract():
    assert len(CATEGORIES) == 20 and len({c.slug for c in CATEGORIES}) == 20
    assert all(is_category(c.slug) for c in CATEGORIES)
    rng = random.Random(5)
    for category in CATEGORIES:
        product = make_product(rng, category)
        assert 1 <= len(product.title) <= 200 and len(product.description) <= 2_000
        assert 99 <= product.price_minor <= 100_000_000 and product.price_minor % 100 == 99
        assert set(words(product.noun)) <= set(words(product.title)) and product.category == category.slug


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32), weights=st.sampled_from([(1.0,), (0.35, 0.45, 0.2), (0, 0, 1)]),
       prefix_p=st.sampled_from([0.0, 0.5, 1.0]))
def test_a_query_drawn_for_a_product_always_matches_it(seed: int, weights: tuple[float, ...], prefix_p: float):
    rng = random.Random(seed)
    product = make_product(rng, rng.choice(CATEGORIES))
    query = query_for(rng, product.title, product.noun, weights, prefix_p)
    assert 1 <= len(words(query)) <= len(weights) + 1 and holds_query(product.title, query)
    assert words(product.noun)[-1][:3] in query  # the noun is always asked for


def test_the_match_rule_is_every_word_the_last_as_a_prefix():
    assert words("Wi-Fi 6E router, Black") == ["wi", "fi", "6e", "router", "black"]
    assert holds_query("Acme Wireless Headphones", "wireless head")
    assert not holds_query("Acme Wireless Headphones", "head wireless")  # only the last word is a prefix
    assert not holds_query("Acme Wireless Headphones", "acme speaker") and not holds_query("Acme", "!!")


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_seed_plan_is_deterministic_spreads_categories_and_draws_stock_deals_and_cards():
    params = SeedParams(products=2_000, customers=1_000, hot_products=2, hot_stock=50, low_stock_share=0.05)
    made = plan(params, random.Random(42))
    assert made == plan(params, random.Random(42)) and plan(params, random.Random(43)).run != made.run
    products = [p for p, _ in made.products]
    assert [p.product_id for p in products[:2]] == [f"ec{made.run}-p0", f"ec{made.run}-p1"]
    assert all(is_id(p.product_id) for p in products) and len({p.product_id for p in products}) == 2_000
    assert Counter(p.category for p in products) == {c.slug: 100 for c in CATEGORIES}
    low = [p for p in products if p.stock <= params.low_stock_max]
    assert 60 <= len(low) <= 140 and all(1_000 <= p.stock <= 10_000 for p in products if p not in low)
    deals = [p for p, _ in made.hot]
    assert [d.product_id for d in deals] == [f"ec{made.run}-deal0", f"ec{made.run}-deal1"]
    assert all(d.stock == 50 and d.title.endswith("Lightning Deal") for d in deals)
    assert [t.price_minor for _, t in made.hot] == [d.price_minor for d in deals]
    numbers = [c.number for c in made.cards]
    assert all(is_card_number(n) for n in numbers) and len(numbers) == 1_000
    tests = [n for n in numbers if n in TEST_CARDS]
    assert 5 <= len(tests) <= 40 and len(set(numbers) - set(TEST_CARDS)) == 1_000 - len(tests)
    with pytest.raises(ValidationError, match="stock_min"):
        SeedParams(stock_min=10, stock_max=5)
    with pytest.raises(ValidationError, match="currency code"):
        SeedParams(currency="usd")


async def test_seed_creates_stocks_and_tokenizes_through_the_public_api_and_retries_an_unavailable_service():
    shop = FakeShop()
    failures = [rpc_error(grpc.StatusCode.UNAVAILABLE, "restarting")]

    async def call(service: str, method: str, request: Any) -> Any:
        assert (service, method) in {("ecommerce-catalog", "CreateProduct"), ("ecommerce-inventory", "Restock"),
                                     ("payments-vault", "TokenizeCard")}
        if failures:
            raise failures.pop()
        return await shop.handle(method, request)

    params = SeedParams(products=60, categories=3, customers=30, hot_products=1, hot_stock=7, seed_concurrency=4)
    state = await seed(call, params, random.Random(7))
    assert isinstance(state, State) and len(state.products) == 60 and [d.stock for d in state.hot] == [7]
    assert state.categories == ["electronics", "computers", "phones"]
    assert set(shop.products) == set(state.product_ids)
    assert {p: shop.stocked[p] for p in state.product_ids} == {p.product_id: p.stock for p in (*state.products,
                                                                                                 *state.hot)}
    assert len(state.cards) == 30 and set(state.cards) <= set(shop.tokens)
    assert {shop.tokens[t][0] for t in state.cards} == {MERCHANT_ID}
    assert shop.restock_ids == {f"{p}-seed" for p in state.product_ids}

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "product.title")

    with pytest.raises(grpc.aio.AioRpcError):
        await seed(refused, params, random.Random(7))


# a fake shop: catalogue, inventory with TTLs, carts, the checkout saga, the vault ---------------------------------------

class FakeShop:
    """The shop's public contract in memory, with a hand-moved clock for reservation TTLs; knobs make it misbehave."""

    def __init__(self, *, ttl_s: float = 600.0) -> None:
        self.now = 1_000.0
        self.ttl_s = ttl_s
        self.products: dict[str, E.Product] = {}
        self.stocked: Counter[str] = Counter()
        self.committed: Counter[str] = Counter()
        self.restock_ids: set[str] = set()
        self.reservations: dict[str, list[Any]] = {}  # id -> [product, quantity, status, expires_at]
        self.carts: dict[str, dict[str, tuple[int, str]]] = {}
        self.orders: dict[str, E.Order] = {}
        self.keys: dict[str, str] = {}
        self.in_flight: set[str] = set()
        self.tokens: dict[str, tuple[str, str]] = {}
        self.violations: list[str] = []
        # misbehaviours
        self.checkout_delay_s = 0.0
        self.unavailable_checkouts = 0  # answer this many Checkouts UNAVAILABLE after doing them
        self.lose_answers = 0  # do the checkout, then answer UNAVAILABLE, this many times
        self.two_orders = False  # a retry makes a second order
        self.commit_without_order = False  # commit one unit more than the order's
        self.forget_orders = False  # GetOrder finds nothing
        self.calls: Counter[str] = Counter()

    # inventory
    def _expire(self) -> None:
        for reservation in self.reservations.values():
            if reservation[2] == E.RESERVATION_STATUS_HELD and reservation[3] <= self.now:
                reservation[2] = E.RESERVATION_STATUS_EXPIRED

    def held(self, product: str) -> int:
        self._expire()
        return sum(r[1] for r in self.reservations.values() if r[0] == product and r[2] == E.RESERVATION_STATUS_HELD)

    def level(self, product: str) -> E.StockLevel:
        held = self.held(product)
        return E.StockLevel(product_id=product, stocked=self.stocked[product], held=held,
                            committed=self.committed[product],
                            available=self.stocked[product] - held - self.committed[product])

    def reserve(self, rid: str, product: str, quantity: int) -> bool:
        self._expire()
        current = self.reservations.get(rid)
        if current is not None and current[2] == E.RESERVATION_STATUS_HELD:
            current[3] = self.now + self.ttl_s
            return True
        if current is not None and current[2] == E.RESERVATION_STATUS_COMMITTED:
            return False
        if self.level(product).available < quantity:
            return False
        self.reservations[rid] = [product, quantity, E.RESERVATION_STATUS_HELD, self.now + self.ttl_s]
        return True

    # the contract
    async def handle(self, method: str, request: Any) -> Any:
        self.calls[method] += 1
        return await getattr(self, method)(request)

    async def CreateProduct(self, request: catalog_pb2.CreateProductRequest) -> Any:
        product = E.Product()
        product.CopyFrom(request.product)
        product.created_at_unix_ms = 1
        self.products[product.product_id] = product
        return catalog_pb2.CreateProductResponse(product=product)

    async def GetProduct(self, request: catalog_pb2.GetProductRequest) -> Any:
        if request.product_id not in self.products:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, request.product_id)
        return catalog_pb2.GetProductResponse(product=self.products[request.product_id])

    async def ListProducts(self, request: catalog_pb2.ListProductsRequest) -> Any:
        ids = sorted(p for p, product in self.products.items() if product.category == request.category)
        start = int(request.page_token or 0)
        size = request.page_size or 20
        token = str(start + size) if start + size < len(ids) else ""
        return catalog_pb2.ListProductsResponse(products=[self.products[i] for i in ids[start:start + size]],
                                                next_page_token=token)

    async def SearchProducts(self, request: catalog_pb2.SearchProductsRequest) -> Any:
        hits = [p for p in self.products.values() if holds_query(f"{p.title} {p.description}", request.query)
                and (not request.category or p.category == request.category)
                and (not request.max_price_minor or p.price.amount_minor <= request.max_price_minor)]
        hits.sort(key=lambda p: (len(p.title), p.product_id))
        start = int(request.page_token or 0)
        size = request.page_size or 10
        token = str(start + size) if start + size < len(hits) else ""
        return catalog_pb2.SearchProductsResponse(
            hits=[catalog_pb2.SearchHit(product=p, score=1.0) for p in hits[start:start + size]], next_page_token=token)

    async def Restock(self, request: inventory_pb2.RestockRequest) -> Any:
        if request.restock_id not in self.restock_ids:
            self.restock_ids.add(request.restock_id)
            self.stocked[request.product_id] += request.quantity
        return inventory_pb2.RestockResponse(stock=self.level(request.product_id))

    async def GetStock(self, request: inventory_pb2.GetStockRequest) -> Any:
        return inventory_pb2.GetStockResponse(stock=self.level(request.product_id))

    async def Audit(self, request: inventory_pb2.AuditRequest) -> Any:
        return inventory_pb2.AuditResponse(stock=[self.level(p) for p in sorted(self.stocked)],
                                           violations=self.violations)

    async def TokenizeCard(self, request: Any) -> Any:
        from casemesh.payments.v1 import vault_pb2

        token = "tok_" + hashlib.sha256(f"{request.card_number}{len(self.tokens)}".encode()).hexdigest()[:24]
        self.tokens[token] = (request.merchant_id, request.card_number)
        return vault_pb2.TokenizeCardResponse(card_token=token)

    async def SetItem(self, request: cart_pb2.SetItemRequest) -> Any:
        if request.product_id not in self.products:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, request.product_id)
        cart = self.carts.setdefault(request.user_id, {})
        rid = "rsv_" + base64.b32encode(hashlib.sha256(
            f"{request.user_id}/{request.product_id}/{request.quantity}".encode()).digest()[:15]).decode().lower()
        if not self.reserve(rid, request.product_id, request.quantity):
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "out_of_stock: not enough units")
        old = cart.get(request.product_id)
        if old is not None and old[1] != rid:
            self.reservations[old[1]][2] = E.RESERVATION_STATUS_RELEASED
        cart[request.product_id] = (request.quantity, rid)
        return cart_pb2.SetItemResponse(cart=self.cart(request.user_id))

    def cart(self, user: str) -> E.Cart:
        lines = [E.CartLine(product_id=p, quantity=q, reservation_id=r, unit_price=self.products[p].price)
                 for p, (q, r) in self.carts.get(user, {}).items()]
        return E.Cart(user_id=user, lines=lines)

    async def GetCart(self, request: cart_pb2.GetCartRequest) -> Any:
        return cart_pb2.GetCartResponse(cart=self.cart(request.user_id))

    async def Checkout(self, request: orders_pb2.CheckoutRequest) -> Any:
        key = f"{request.user_id}/{request.idempotency_key}"
        if key in self.in_flight:
            raise rpc_error(grpc.StatusCode.ABORTED, "a checkout with this key is in flight")
        if key in self.keys and self.two_orders:  # a broken shop: a retry makes another order
            order = E.Order()
            order.CopyFrom(self.orders[self.keys[key]])
            order.order_id = "ord_" + "b" * 23 + "a"
            self.orders[order.order_id] = order
        elif key in self.keys:
            order = self.orders[self.keys[key]]
        else:
            self.in_flight.add(key)
            try:
                await asyncio.sleep(self.checkout_delay_s)
                order = self.saga(request, len(self.orders))
            finally:
                self.in_flight.discard(key)
            self.keys[key] = order.order_id
            self.orders[order.order_id] = order
        if self.lose_answers:
            self.lose_answers -= 1
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "the answer was lost")
        return orders_pb2.CheckoutResponse(order=order)

    def saga(self, request: orders_pb2.CheckoutRequest, number: int) -> E.Order:
        cart = self.carts.get(request.user_id, {})
        if not cart:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "empty_cart: nothing to buy")
        order_id = "ord_" + base64.b32encode(hashlib.sha256(f"{request.idempotency_key}{number}".encode())
                                             .digest()[:15]).decode().lower()
        lines = [E.OrderLine(product_id=p, quantity=q, unit_price=self.products[p].price, reservation_id=r)
                 for p, (q, r) in cart.items()]
        total = sum(line.quantity * line.unit_price.amount_minor for line in lines)
        order = E.Order(order_id=order_id, user_id=request.user_id, lines=lines, created_at_unix_ms=1,
                        decided_at_unix_ms=2, total=money_pb2.Money(currency_code="USD", amount_minor=total))
        held = all(self.reserve(r, p, q) for p, (q, r) in cart.items())
        if not held:
            for _, r in cart.values():
                if r in self.reservations and self.reservations[r][2] == E.RESERVATION_STATUS_HELD:
                    self.reservations[r][2] = E.RESERVATION_STATUS_RELEASED
            order.status, order.failure_reason = E.ORDER_STATUS_FAILED, E.ORDER_FAILURE_OUT_OF_STOCK
            return order
        if self.tokens.get(request.card_token, ("", ""))[1] in TEST_CARDS:
            for _, r in cart.values():
                self.reservations[r][2] = E.RESERVATION_STATUS_RELEASED
            order.status, order.failure_reason = E.ORDER_STATUS_FAILED, E.ORDER_FAILURE_PAYMENT_DECLINED
            return order
        for p, (q, r) in cart.items():
            self.reservations[r][2] = E.RESERVATION_STATUS_COMMITTED
            self.committed[p] += q + (1 if self.commit_without_order else 0)
        order.status, order.payment_id = E.ORDER_STATUS_CONFIRMED, "pay_" + "a" * 24
        self.carts[request.user_id] = {}
        return order

    async def GetOrder(self, request: orders_pb2.GetOrderRequest) -> Any:
        if self.forget_orders or request.order_id not in self.orders:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, request.order_id)
        return orders_pb2.GetOrderResponse(order=self.orders[request.order_id])


class FakeStreams:
    """What ``connect`` gets (Streams): the unrecorded call and the end-of-run samples."""

    def __init__(self, shop: FakeShop, share: tuple[int, int] = (0, 1)) -> None:
        self.shop = shop
        self.share = share
        self.samples: list[tuple[str, str]] = []

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        return await self.shop.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.samples.append((name, code))

    def codes(self, name: str) -> Counter[str]:
        return Counter(code for measure, code in self.samples if measure == name)


class FakeCaller:
    """A journey's Caller over the fake shop: records RPCs and measures."""

    def __init__(self, shop: FakeShop) -> None:
        self.shop = shop
        self.rpcs: list[tuple[str, str]] = []
        self.measures: list[tuple[str, str]] = []
        self.intended_at = 0.0

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        self.rpcs.append((service, method))
        return await self.shop.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        assert latency_s >= 0
        self.measures.append((name, code))

    def codes(self, name: str) -> Counter[str]:
        return Counter(code for measure, code in self.measures if measure == name)


async def no_sleep(_: float) -> None:
    await asyncio.sleep(0)


async def opened(shop: FakeShop | None = None, *, share: tuple[int, int] = (0, 1), **seed_params: Any,
                 ) -> tuple[FakeShop, Shop, FakeStreams]:
    """A seeded fake shop and a connected Shop."""
    shop = shop or FakeShop()
    params = SeedParams(**{"products": 120, "categories": 4, "customers": 20, "test_card_share": 0.0,
                           "stock_min": 50, "stock_max": 100, "low_stock_share": 0.0, **seed_params})
    state = await seed(lambda s, m, r: shop.handle(m, r), params, random.Random(11))
    streams = FakeStreams(shop, share)
    live = Shop(streams, state, params, sleep=no_sleep)
    await live.take_baseline()
    return shop, live, streams


def declining_only(live: Shop, shop: FakeShop) -> None:
    live.state.cards = [t for t, (_, number) in shop.tokens.items() if number in TEST_CARDS] or live.state.cards


# journeys ---------------------------------------------------------------------------------------------------------------

async def test_a_search_finds_the_product_looked_for_and_reads_the_next_page_sometimes():
    shop, live, _ = await opened()
    call = FakeCaller(shop)
    params = SearchParams(next_page_p=1.0, word_weights=(1.0,), prefix_p=0.0, page_size=1)
    for seed_ in range(30):
        await search(call, params, live, random.Random(seed_))
    assert call.codes(SEARCH_TIME) == {"OK": 30}
    found = call.codes(SEARCH_FOUND)
    assert sum(found.values()) == 30 and set(found) <= {"FOUND", "OTHER"} and found["FOUND"] > 0
    assert call.rpcs.count(("ecommerce-catalog", "SearchProducts")) > 30  # some had a next page


async def test_a_search_answered_with_hits_that_do_not_match_is_wrong_and_no_hits_is_none():
    shop, live, _ = await opened()
    call = FakeCaller(shop)
    original = shop.SearchProducts

    async def wrong(request: Any) -> Any:
        return catalog_pb2.SearchProductsResponse(hits=[catalog_pb2.SearchHit(product=E.Product(
            product_id="x", title="Nothing Alike", category="books"))])

    shop.SearchProducts = wrong  # type: ignore[method-assign]
    await search(call, SearchParams(), live, random.Random(1))

    async def empty(request: Any) -> Any:
        return catalog_pb2.SearchProductsResponse()

    shop.SearchProducts = empty  # type: ignore[method-assign]
    await search(call, SearchParams(), live, random.Random(2))
    shop.SearchProducts = original  # type: ignore[method-assign]
    assert call.measures.count((SEARCH_FOUND, "WRONG")) == 1 and call.measures.count((SEARCH_FOUND, "NONE")) == 1


async def test_browse_follows_the_category_s_pages_and_view_reads_product_then_stock():
    shop, live, _ = await opened()
    call = FakeCaller(shop)
    await browse(call, BrowseParams(page_size=5, pages_max=50, open_p=1.0), live, random.Random(3))
    pages = call.rpcs.count(("ecommerce-catalog", "ListProducts"))
    assert 1 <= pages <= 6 and call.rpcs[-1] == ("ecommerce-catalog", "GetProduct")  # 30 products a category
    call = FakeCaller(shop)
    await view_product(call, ViewParams(), live, random.Random(4))
    assert call.rpcs == [("ecommerce-catalog", "GetProduct"), ("ecommerce-inventory", "GetStock")]


async def test_a_buy_fills_the_cart_from_searches_checks_out_and_books_the_order():
    shop, live, streams = await opened()
    call = FakeCaller(shop)
    for seed_ in range(10):
        await buy(call, BuyParams(lines_min=2, lines_max=3, think_median_s=1.0, double_submit_p=0.0), live,
                  random.Random(seed_))
    assert call.codes(CHECKOUT_OUTCOME) == {"CONFIRMED": 10} and call.codes(CART_HONOURED) == {"OK": 10}
    assert call.codes(CHECKOUT_TIME) == {"OK": 10} and sum(call.codes(CART_ADD).values()) >= 20
    assert len(live.sales.orders) == 10 and all(is_order_id(o) for o in live.sales.orders)
    assert dict(live.sales.units) == {p: c for p, c in shop.committed.items() if c}
    assert not live.sales.problems and not live.sales.open and not live.sales.unknown
    await finish(live)
    assert streams.codes(NO_OVERSELL) == {"OK": 1} and streams.codes(ORDERS_CONSISTENT) == {"OK": 1}
    assert not streams.codes(SELL_THROUGH)  # no flash sale


async def test_a_declined_card_is_an_answer_and_not_judged_as_the_shop_s():
    shop, live, _ = await opened(test_card_share=0.5)
    declining_only(live, shop)
    call = FakeCaller(shop)
    await buy(call, BuyParams(double_submit_p=0.0), live, random.Random(1))
    assert call.codes(CHECKOUT_OUTCOME) == {"PAYMENT_DECLINED": 1} and not call.codes(CART_HONOURED)
    assert not live.sales.orders and not sum(shop.committed.values())


async def test_a_line_out_of_stock_is_refused_and_the_shopper_goes_on():
    shop, live, _ = await opened(products=4, categories=1)
    for product in live.state.products:  # every unit sold already
        shop.committed[product.product_id] = shop.stocked[product.product_id]
    call = FakeCaller(shop)
    await buy(call, BuyParams(lines_min=2, lines_max=2), live, random.Random(2))
    assert call.codes(CART_ADD) == {"OUT_OF_STOCK": 2} and not call.codes(CHECKOUT_TIME)
    assert ("ecommerce-orders", "Checkout") not in call.rpcs


async def test_a_lost_answer_is_retried_with_the_same_key_and_finds_the_same_order():
    shop, live, _ = await opened()
    shop.lose_answers = 1
    call = FakeCaller(shop)
    await buy(call, BuyParams(double_submit_p=0.0, think_median_s=0.0), live, random.Random(5))
    assert call.rpcs.count(("ecommerce-orders", "Checkout")) == 2 and len(shop.orders) == 1
    assert call.codes(CHECKOUT_OUTCOME) == {"CONFIRMED": 1} and len(live.sales.orders) == 1


async def test_a_double_click_is_one_order_and_a_shop_that_makes_two_is_caught():
    shop, live, streams = await opened()
    shop.checkout_delay_s = 0.01
    live.sleep = asyncio.sleep  # the backoff between the second click's sends is real: the first is in flight
    call = FakeCaller(shop)
    await buy(call, BuyParams(double_submit_p=1.0, think_median_s=0.0, backoff_base_ms=5, backoff_cap_ms=20,
                              max_attempts=10), live, random.Random(6))
    assert call.rpcs.count(("ecommerce-orders", "Checkout")) >= 3 and len(shop.orders) == 1  # ABORTED, then found
    assert not live.sales.problems
    shop.two_orders = True
    await buy(call, BuyParams(double_submit_p=1.0, think_median_s=0.0, backoff_base_ms=5, backoff_cap_ms=20,
                              max_attempts=10), live, random.Random(7))
    assert any("2 orders" in p for p in live.sales.problems)
    await finish(live)
    assert streams.codes(ORDERS_CONSISTENT) == {DATA_LOSS: 1}


async def test_a_checkout_without_an_answer_fails_with_its_code_and_leaves_its_products_uncertain():
    shop, live, streams = await opened()
    shop.lose_answers = 100
    call = FakeCaller(shop)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await buy(call, BuyParams(double_submit_p=0.0, max_attempts=2, backoff_base_ms=1, backoff_cap_ms=1), live,
                  random.Random(8))
    assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and call.codes(CHECKOUT_TIME) == {"UNAVAILABLE": 1}
    sold = {p for p, c in shop.committed.items() if c}
    assert sold and all(live.sales.uncertain(p) for p in sold) and not live.sales.orders
    await finish(live)  # the units sold without an order the shopper saw are not blamed: their outcome is unknown
    assert streams.codes(ORDERS_CONSISTENT) == {"OK": 1}


async def test_an_abandoned_cart_holds_its_units_until_the_ttl():
    shop, live, _ = await opened(FakeShop(ttl_s=5))
    call = FakeCaller(shop)
    await abandon(call, AbandonParams(lines_min=1, lines_max=1, quantity_max=1), live, random.Random(9))
    held = [p for p in shop.stocked if shop.held(p)]
    assert len(held) == 1 and call.codes(CART_ADD) == {"OK": 1}
    shop.now += 6
    assert not shop.held(held[0])


def test_think_times_are_lognormal_and_capped():
    params = BuyParams(think_median_s=2.0, think_sigma=0.5, think_max_s=4.0)
    draws = sorted(draw_think_s(random.Random(i), params) for i in range(2_000))
    assert 1.8 < draws[1_000] < 2.2 and draws[-1] == 4.0 and draws[0] > 0
    assert draw_think_s(random.Random(1), BuyParams(think_median_s=0)) == 0.0


# the end-of-run checks ---------------------------------------------------------------------------------------------------

async def test_an_oversold_product_or_a_new_audit_violation_is_data_loss_and_an_old_one_is_not():
    shop, live, streams = await opened()
    shop.violations = ["an earlier run's"]
    _, live, streams = await opened(shop)
    await finish(live)
    assert streams.codes(NO_OVERSELL) == {"OK": 1}
    product = live.state.products[0].product_id
    shop.committed[product] = shop.stocked[product] + 1
    streams.samples.clear()
    await finish(live)
    assert streams.codes(NO_OVERSELL) == {DATA_LOSS: 1}


async def test_stock_sold_without_an_order_seen_or_an_order_lost_is_data_loss():
    shop, live, streams = await opened()
    shop.commit_without_order = True
    await buy(FakeCaller(shop), BuyParams(double_submit_p=0.0), live, random.Random(1))
    await finish(live)
    assert streams.codes(ORDERS_CONSISTENT) == {DATA_LOSS: 1}
    shop, live, streams = await opened()
    await buy(FakeCaller(shop), BuyParams(double_submit_p=0.0), live, random.Random(1))
    shop.forget_orders = True
    await finish(live)
    assert streams.codes(ORDERS_CONSISTENT) == {DATA_LOSS: 1}


async def test_each_capacity_step_is_judged_from_the_inventory_at_its_connect():
    shop, live, _ = await opened()
    await buy(FakeCaller(shop), BuyParams(double_submit_p=0.0), live, random.Random(1))  # step 1 sold some
    streams = FakeStreams(shop)
    step = Shop(streams, live.state, live.params, sleep=no_sleep)
    await step.take_baseline()
    await buy(FakeCaller(shop), BuyParams(double_submit_p=0.0), step, random.Random(2))
    await finish(step)
    assert streams.codes(ORDERS_CONSISTENT) == {"OK": 1} and len(step.sales.orders) == 1


async def test_with_several_load_processes_only_process_0_checks_and_without_the_comparison():
    shop, live, streams = await opened(share=(1, 2))
    await finish(live)
    assert not streams.samples
    shop.commit_without_order = True
    shop, live, streams = await opened(shop, share=(0, 2), check_delay_s=0)
    await buy(FakeCaller(shop), BuyParams(double_submit_p=0.0), live, random.Random(1))
    await finish(live)
    assert streams.codes(ORDERS_CONSISTENT) == {"OK": 1}  # another process may have sold it


async def test_an_audit_that_cannot_run_records_its_code():
    shop, live, streams = await opened()

    async def down(request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, "down")

    shop.Audit = down  # type: ignore[method-assign]
    await finish(live)
    assert streams.codes(NO_OVERSELL) == {"UNAVAILABLE": 1} and streams.codes(ORDERS_CONSISTENT) == {"UNAVAILABLE": 1}


async def test_a_flash_sale_s_units_end_sold_stranded_in_abandoned_carts_or_unsold():
    shop, live, streams = await opened(FakeShop(ttl_s=600), hot_products=1, hot_stock=10)
    deal = live.state.hot[0].product_id
    rng = random.Random(3)
    for _ in range(3):
        await abandon(FakeCaller(shop), FlashAbandonParams(), live, rng)
    for _ in range(5):
        await buy(FakeCaller(shop), FlashBuyParams(think_median_s=0.0, double_submit_p=0.0), live, rng)
    refused = FakeCaller(shop)
    for _ in range(4):
        await buy(refused, FlashBuyParams(think_median_s=0.0), live, rng)
    assert refused.codes(CART_ADD) == {"OUT_OF_STOCK": 2, "OK": 2}
    await finish(live)
    assert streams.codes(SELL_THROUGH) == {"OK": 7, STRANDED: 3} and shop.committed[deal] == 7
    # The next capacity step is a new sale: the deal is restocked to 10 available units at connect.
    streams = FakeStreams(shop)
    step = Shop(streams, live.state, live.params, sleep=no_sleep)
    await step.take_baseline()
    assert shop.level(deal).available == 10
    shop.now += 601  # the abandoned carts' units come back
    await finish(step)
    assert streams.codes(SELL_THROUGH) == {UNSOLD: 13}


async def test_with_a_short_ttl_a_slow_buyer_loses_the_unit_and_the_abandoned_ones_come_back():
    shop, live, _ = await opened(FakeShop(ttl_s=5), hot_products=1, hot_stock=1)
    slow = FakeCaller(shop)
    sleeping = asyncio.Event()

    async def think(seconds: float) -> None:  # while the slow buyer thinks, its hold runs out and a fast one buys
        shop.now += seconds
        sleeping.set()
        await asyncio.sleep(0.01)

    live.sleep = think
    task = asyncio.create_task(buy(slow, FlashBuyParams(think_median_s=6.0, think_sigma=0.0, double_submit_p=0.0),
                                   live, random.Random(1)))
    await sleeping.wait()
    live.sleep = no_sleep
    fast = FakeCaller(shop)
    await buy(fast, FlashBuyParams(think_median_s=0.0, double_submit_p=0.0), live, random.Random(2))
    await task
    assert fast.codes(CART_HONOURED) == {"OK": 1} and slow.codes(CART_HONOURED) == {"OUT_OF_STOCK": 1}


# the workload, its profiles and SLOs ---------------------------------------------------------------------------------------

def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "ecommerce"
    assert WORKLOAD.services == ("ecommerce-catalog", "ecommerce-inventory", "ecommerce-cart", "ecommerce-orders",
                                 "payments-vault")
    assert list(WORKLOAD.journeys) == ["browse", "search", "view_product", "buy", "abandon", "flash_buy",
                                       "flash_abandon"]
    assert set(MEASURES) == {"search_time", "search_found", "cart_add", "checkout_time", "checkout_outcome",
                             "cart_honoured", "no_oversell", "orders_consistent", "sell_through"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)
    assert {"casemesh.ecommerce.v1.CatalogService/SearchProducts", "casemesh.ecommerce.v1.CheckoutService/Checkout",
            "casemesh.ecommerce.v1.InventoryService/Audit", "casemesh.payments.v1.CardVaultService/TokenizeCard"} \
        <= set(WORKLOAD.rpcs)
    assert "ecommerce" in workloads_module.WORKLOAD_NAMES and workloads_module.get_workload("ecommerce") is WORKLOAD


def _document(name: str) -> dict:
    return yaml.safe_load((PROFILES_DIR / f"{name}.yaml").read_text())


def _journeys(document: dict) -> dict[str, Any]:
    return {j["name"]: WORKLOAD.journeys[j["name"]].params_model.model_validate(j.get("params", {}))
            for j in document["journeys"]}


def test_the_everyday_profile_is_read_heavy_at_the_documented_rate():
    document = _document("ecommerce")
    ProfileDocument.model_validate(document)
    assert document["workload"] == "ecommerce" and tuple(document["services"]) == SHOP_SERVICES
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params.products == 3_000 and seed_params.hot_products == 0 and seed_params.customers == 2_000
    journeys = _journeys(document)
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    rate, total = document["arrival"]["rate_per_s"], sum(weights.values())
    assert total == pytest.approx(100) and rate == 200
    assert rate * weights["buy"] / total == pytest.approx(11)  # 11 checkouts a second
    assert weights["abandon"] / (weights["abandon"] + weights["buy"]) == pytest.approx(0.7, abs=0.01)
    assert (weights["browse"] + weights["search"] + weights["view_product"]) / total == pytest.approx(0.82)
    buy_ = journeys["buy"]
    timeout_s = document["request_timeout_ms"] / 1000
    assert buy_.think_max_s + buy_.retry_within_s + timeout_s * 2 < timeout_s * 10 + 5  # the drain outlasts a buy
    assert document["settings"] == {"ecommerce-inventory": {"reservation_ttl_s": 600}}
    metadata = document["metadata"]
    assert "002_faaedd8518faeebd.txt line 419" in metadata["source"] and "10M products" in metadata["source"]
    assert "90 times fewer" in metadata["scaling"] and "3,300 times" in metadata["scaling"]


def test_the_flash_sale_is_ten_times_the_traffic_with_few_units_and_abandoned_carts():
    document = _document("ecommerce-flash-sale")
    ProfileDocument.model_validate(document)
    arrival = document["arrival"]
    assert arrival["process"] == "spike" and arrival["rate_per_s"] == 10 * arrival["baseline_rate_per_s"]
    assert arrival["at_s"] == document["warmup_s"]  # the sale opens when the measured window does
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params.hot_products == 1 and seed_params.hot_stock == 200 and seed_params.restock_hot_at_connect
    journeys = _journeys(document)
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    assert journeys["flash_buy"].target == journeys["flash_abandon"].target == "flash"
    assert journeys["flash_buy"].quantity_max == 1 and journeys["flash_abandon"].quantity_max == 1
    flash = weights["flash_buy"] + weights["flash_abandon"]
    assert weights["flash_abandon"] / flash == pytest.approx(0.3) and flash / sum(weights.values()) == 0.5
    everyday = {j["name"]: j["weight"] for j in _document("ecommerce")["journeys"]}
    assert {n: weights[n] * 2 for n in everyday} == everyday  # the other half: the everyday mix
    buyers = flash / sum(weights.values()) * (arrival["rate_per_s"] * arrival["duration_s"])
    assert buyers / seed_params.hot_stock == pytest.approx(15, abs=1)  # in the rush alone
    think = journeys["flash_buy"]
    slow = [draw_think_s(random.Random(i), think) > 5 for i in range(4_000)]
    assert 0.18 < sum(slow) / len(slow) < 0.28  # 23% of the deal's buyers outthink a 5 s TTL
    assert document["slos"] == ["ecommerce.slo.yaml", "ecommerce-flash-sale.slo.yaml"]


@pytest.mark.parametrize(("service", "module", "model"), [
    ("ecommerce-inventory", "casemesh.services.ecommerce.inventory.settings", "InventorySettings"),
])
def test_the_profiles_settings_fit_the_services_settings_models(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    for name in ("ecommerce", "ecommerce-flash-sale"):
        validated = getattr(settings_module, model).model_validate(_document(name)["settings"][service])
        assert validated == getattr(settings_module, model)()  # the seed's TTL, written out


def test_the_slo_files_load_against_the_workload():
    journeys = [*WORKLOAD.journeys, *WORKLOAD.measures]
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "ecommerce.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=journeys)}
    assert set(slos) == {"ecommerce-search-latency", "ecommerce-checkout-latency", "ecommerce-availability",
                         "ecommerce-cart-honoured", "ecommerce-no-oversell", "ecommerce-orders-consistent",
                         "ecommerce-search-latency-server", "ecommerce-checkout-latency-server",
                         "ecommerce-availability-server"}
    assert slos["ecommerce-search-latency"].good.latency_le_ms == 200 and slos["ecommerce-search-latency"].target == 0.99
    assert slos["ecommerce-checkout-latency"].good.latency_le_ms == 500
    assert slos["ecommerce-availability"].target == 0.9999
    for name in ("ecommerce-search-latency", "ecommerce-checkout-latency", "ecommerce-availability"):
        assert slos[f"{name}-server"].twin_of == name
    text = (PROFILES_DIR / "ecommerce.slo.yaml").read_text()
    assert 'grpc_service="casemesh.ecommerce.v1.CatalogService",grpc_method="SearchProducts",le="0.2"' in text
    assert 'grpc_service="casemesh.ecommerce.v1.CheckoutService",grpc_method="Checkout",le="0.5"' in text
    assert "line 513" in text and "line 510" in text and "line 512" in text
    flash = load_slos(PROFILES_DIR / "ecommerce-flash-sale.slo.yaml", rpcs=WORKLOAD.rpcs, journeys=journeys)
    assert [s.name for s in flash] == ["ecommerce-flash-sell-through"] and flash[0].target == 0.9


def test_the_slo_names_are_the_shop_s_own():
    def names(path: Path) -> set[str]:
        return {document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text())}

    ours = names(PROFILES_DIR / "ecommerce.slo.yaml") | names(PROFILES_DIR / "ecommerce-flash-sale.slo.yaml")
    others = set().union(*(names(p) for p in PROFILES_DIR.glob("*.slo.yaml") if not p.name.startswith("ecommerce")))
    assert all(name.startswith("ecommerce-") for name in ours) and not ours & others


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop's services as the profile loader's catalogue sees them, whether or not services/catalog.py lists them
    yet (their settings keys are checked above)."""
    import casemesh.harness.profile as profile_module

    known = {**profile_module.SERVICES, **{n: SimpleNamespace(settings_model=_AnySettings) for n in SHOP_SERVICES}}
    monkeypatch.setattr(profile_module, "SERVICES", known)


@pytest.mark.parametrize("name", ["ecommerce", "ecommerce-flash-sale"])
def test_the_profiles_load_with_their_slos(monkeypatch: pytest.MonkeyPatch, name: str):
    _registered(monkeypatch)
    profile = load_profile(name, known_services=SHOP_SERVICES)
    assert profile.workload is WORKLOAD and profile.request_timeout_ms == 3000
    assert {"ecommerce-search-latency", "ecommerce-checkout-latency", "ecommerce-no-oversell"} <= \
        {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in SHOP_SERVICES),
                    reason="the shop's services are not registered yet (services/catalog.py)")
def test_the_shipped_profiles_load_with_their_slos():
    assert load_profile("ecommerce").seed.products == 3_000
    flash = load_profile("ecommerce-flash-sale")
    assert flash.seed.hot_stock == 200 and "ecommerce-flash-sell-through" in {slo.name for slo in flash.slos}


#: What the workload may import of casemesh.services: the two contracts (and what they import).
ALLOWED_SERVICE_MODULES = {"casemesh.services", "casemesh.services.ecommerce", "casemesh.services.ecommerce.contract",
                           "casemesh.services.payments", "casemesh.services.payments.contract",
                           "casemesh.services.runtime", "casemesh.services.runtime.identifiers",
                           "casemesh.services.runtime.errors"}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name in {"casemesh.services.ecommerce.contract", "casemesh.services.payments.contract"}, \
                        f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry"}, f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.ecommerce import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(ast.literal_eval(done.stdout.strip()))
    assert "casemesh.services.ecommerce.contract" in loaded and loaded <= ALLOWED_SERVICE_MODULES, loaded


# the harness's driver over real gRPC, against the fake shop -------------------------------------------------------------

def _servicers(fake: FakeShop) -> list[Any]:
    from casemesh.ecommerce.v1 import (
        cart_pb2_grpc,
        catalog_pb2_grpc,
        inventory_pb2_grpc,
        orders_pb2_grpc,
    )
    from casemesh.payments.v1 import vault_pb2_grpc

    def forward(name: str) -> Any:
        async def method(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await fake.handle(name, request)
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details() or "")
        return method

    def servicer(base: type, methods: tuple[str, ...]) -> Any:
        return type(base.__name__, (base,), {m: forward(m) for m in methods})()

    return [
        (catalog_pb2_grpc.add_CatalogServiceServicer_to_server, servicer(
            catalog_pb2_grpc.CatalogServiceServicer, ("CreateProduct", "GetProduct", "ListProducts",
                                                      "SearchProducts"))),
        (inventory_pb2_grpc.add_InventoryServiceServicer_to_server, servicer(
            inventory_pb2_grpc.InventoryServiceServicer, ("Restock", "GetStock", "Audit"))),
        (cart_pb2_grpc.add_CartServiceServicer_to_server, servicer(cart_pb2_grpc.CartServiceServicer,
                                                                   ("SetItem", "GetCart"))),
        (orders_pb2_grpc.add_CheckoutServiceServicer_to_server, servicer(orders_pb2_grpc.CheckoutServiceServicer,
                                                                         ("Checkout", "GetOrder"))),
        (vault_pb2_grpc.add_CardVaultServiceServicer_to_server, servicer(vault_pb2_grpc.CardVaultServiceServicer,
                                                                         ("TokenizeCard",))),
    ]


async def test_the_driver_runs_every_journey_over_grpc_and_checks_the_shop_at_the_end(monkeypatch: pytest.MonkeyPatch):
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    _registered(monkeypatch)
    profile = with_overrides(load_profile("ecommerce-flash-sale", known_services=SHOP_SERVICES), duration_s=3,
                             warmup_s=0.2)
    profile = dataclasses.replace(profile, seed=SeedParams(products=200, categories=5, customers=50, hot_products=1,
                                                           hot_stock=20, stock_min=100, stock_max=200))
    quick = {"flash_buy": FlashBuyParams(think_median_s=0.05, think_max_s=0.2),
             "buy": BuyParams(think_median_s=0.05, think_max_s=0.2)}
    journeys = tuple(dataclasses.replace(j, params=quick.get(j.name, j.params)) for j in profile.journeys)
    profile = dataclasses.replace(profile, journeys=journeys)
    fake = FakeShop()
    server = grpc.aio.server()
    for add, servicer in _servicers(fake):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {name: channel for name in WORKLOAD.services}, rng_seed=3)
        await driver.seed()
        assert isinstance(driver.state, State) and len(driver.state.products) == 200
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    searches = stats.rpc("casemesh.ecommerce.v1.CatalogService/SearchProducts")
    assert searches.count() > 5 and searches.count(["OK"]) == searches.count()
    for journey in ("browse", "search", "view_product", "flash_buy", SEARCH_TIME, CHECKOUT_TIME):
        assert stats.journey(journey).count() > 0
        assert stats.journey(journey).count(["OK"]) == stats.journey(journey).count(), journey
    assert stats.journey(NO_OVERSELL).count(["OK"]) == 1 == stats.journey(ORDERS_CONSISTENT).count(["OK"])
    assert stats.journey(SELL_THROUGH).count() == 20
