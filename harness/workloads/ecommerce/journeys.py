"""The e-commerce journeys: shoppers browsing, searching, viewing products, buying and abandoning carts, in the
everyday shop and in a flash sale (open-loop arrivals).

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "massive read
traffic (browsing)", "Latency: Sub-200ms for search, 500ms for checkout", "Cart Service: Redis for session, real-time
inventory reservation", "Order Service: Saga pattern", "Payment Service: Idempotent APIs, retry with exponential
backoff", ``reserve_stock(..., ttl=600)`` "prevents cart abandonment lock-up"). Each journey is one visitor's session
(a new user ID: :meth:`.live.Shop.new_user`); what a step answers is what the next asks for.

- ``browse``: a category drawn by popularity (Zipf, ``category_zipf_exponent``), its pages (CatalogService.ListProducts,
  ``page_size`` each, 1 to ``pages_max`` of them following ``next_page_token``), and for ``open_p`` of sessions one
  product of the last page opened (GetProduct).
- ``search``: a shopper looks for a product drawn by popularity (Zipf over the catalogue, ``zipf_exponent``), typing
  1 to 3 words of its title (:func:`.catalogue.query_for`: the noun and up to two other words, the last sometimes a
  prefix), within its category for ``category_filter_p`` of searches and under a budget (the next 10.00 above its
  price) for ``max_price_p``: SearchProducts, ``page_size`` hits; for ``next_page_p`` of them the next page too.
- ``view_product``: a product drawn by popularity: GetProduct, then GetStock (the page's "in stock" line).
- ``buy``: the cart is filled (below), the shopper thinks (lognormal around ``think_median_s``, ``think_sigma``,
  at most ``think_max_s``: reading the cart, typing the address), reads the cart (CartService.GetCart) and checks out
  (CheckoutService.Checkout with a fresh idempotency key and a card drawn from the seeded ones), retried with the same
  key on UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED (exponential backoff, full jitter:
  :mod:`casemesh.harness.workloads.idempotent_retry`); ``double_submit_p`` of checkouts are a double click, the same
  request sent twice at once (the second answered ABORTED while the first is in flight, then retried), which must be
  one order. A checkout that fails (out of stock, an expired reservation, a declined card) is an answer.
- ``abandon``: the cart is filled, and the shopper leaves: the reservations stay HELD until their TTL runs out (the
  inventory's ``reservation_ttl_s``, the seed's 600 s): the flash sale's A/B.

Filling the cart (``target``): in the catalogue (``catalogue``), ``lines_min`` to ``lines_max`` times a search as
above, then the product looked for if it is on the first page, else the first hit not yet in the cart (none: the
shopper opens the product from its category: GetProduct); in a flash sale (``flash``), one of the deals, opened from
the sale's page (GetProduct, then GetStock: "N left"). Each line is CartService.SetItem of 1 to ``quantity_max``
units (uniform), retried on UNAVAILABLE (the cart is unchanged) like the checkout; ``out_of_stock`` (the units are not
available: the cart is unchanged) and the cart's other refusals are answers, and the shopper goes on with the other
lines. A cart left empty ends the session (OK: the shop answered).

Measures, besides the RPCs the driver records:

- ``search_time``: a results page as the shopper waits for it: the first SearchProducts of a session from the
  journey's intended start (the driver's send lag included, as for the RPC), a later one from its send; the code of
  the call;
- ``search_found``: one sample per search: ``FOUND`` when the product looked for is on the first page, ``OTHER`` when
  other products are, ``NONE`` when nothing is (the product's own title holds every word: a miss), ``WRONG`` when a
  hit does not hold every word of the query (the last as a prefix) or is outside the category or the budget asked;
  latency 0;
- ``cart_add``: one sample per line set: ``OK``, ``OUT_OF_STOCK`` (and the cart's other refusals by reason:
  ``CART_FULL``, ``CURRENCY_MISMATCH``), or the code of a SetItem that failed for good; latency the SetItem's, retries
  included;
- ``checkout_time``: the pay button: from Checkout's first send to its final answer, retries and a double click's
  second send included; ``OK`` for an answer (a CONFIRMED or a FAILED order), else the last attempt's code;
- ``checkout_outcome``: one sample per answered checkout: ``CONFIRMED`` or the failure reason (``OUT_OF_STOCK``,
  ``RESERVATION_EXPIRED``, ``PAYMENT_DECLINED``); latency 0;
- ``cart_honoured``: one sample per answered checkout whose card was not declined: ``OK`` when CONFIRMED, else the
  failure reason (``OUT_OF_STOCK``, ``RESERVATION_EXPIRED``: the shop took back units it had reserved for the
  shopper); a declined card is the issuer's answer, not judged; latency 0;
- ``no_oversell``, ``orders_consistent``, ``sell_through``: the end-of-run checks (:mod:`.end_checks`).

Every checkout is entered in the process's :class:`~.sales.Sales` book (what each product's committed units should
have grown by); an answered order is checked (:func:`~.sales.order_problems`: its lines are the cart's the shopper
read, its total its lines'; one key's answers are one order), problems going to the end-of-run
``orders_consistent`` sample. A journey ends OK when every call was answered (refusals included); with the last code
when a call failed for good.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from typing import Literal

import grpc
from casemesh.ecommerce.v1 import (
    cart_pb2,
    catalog_pb2,
    ecommerce_pb2,
    inventory_pb2,
    orders_pb2,
)
from casemesh.services.ecommerce.contract import (
    MAX_CART_LINES,
    MAX_LINE_QUANTITY,
    MAX_LIST_PAGE_SIZE,
    MAX_SEARCH_PAGE_SIZE,
    failed_precondition_reason,
)
from pydantic import Field, field_validator, model_validator

from ..base import Caller, Params
from ..idempotent_retry import Outcome, RetryParams, send
from .catalogue import holds_query, query_for
from .live import Shop
from .sales import Lines, answers_problems, lines_of, order_problems, outcome_code
from .seeding import CART, CATALOG, INVENTORY, ORDERS, Product

log = logging.getLogger("casemesh.workloads.ecommerce")

SEARCH_TIME = "search_time"
SEARCH_FOUND = "search_found"
CART_ADD = "cart_add"
CHECKOUT_TIME = "checkout_time"
CHECKOUT_OUTCOME = "checkout_outcome"
CART_HONOURED = "cart_honoured"
OK = "OK"
FOUND, OTHER, NONE, WRONG = "FOUND", "OTHER", "NONE", "WRONG"
OUT_OF_STOCK = "OUT_OF_STOCK"
CONFIRMED = "CONFIRMED"
PAYMENT_DECLINED = "PAYMENT_DECLINED"


class BrowseParams(Params):
    """A category browsed page by page (reads are not retried: the shopper reloads)."""

    category_zipf_exponent: float = Field(default=0.8, ge=0, le=5,
                                          description="popularity of categories: rank r weighs 1 / r**exponent")
    page_size: int = Field(default=20, ge=1, le=MAX_LIST_PAGE_SIZE, description="products per page")
    pages_max: int = Field(default=3, ge=1, le=50, description="most pages followed (uniform from 1)")
    open_p: float = Field(default=0.5, ge=0, le=1, description="share of sessions that open a product of the last page")


class QueryParams(Params):
    """What a shopper looks for and types (a base of the searching journeys' params)."""

    zipf_exponent: float = Field(default=1.0, ge=0, le=5,
                                 description="popularity of products: rank r of the seeded order weighs 1 / r**exponent")
    word_weights: tuple[float, ...] = Field(default=(0.35, 0.45, 0.20), min_length=1, max_length=5,
                                            description="weights of queries of 1, 2, 3 ... words")
    prefix_p: float = Field(default=0.3, ge=0, le=1,
                            description="share of queries whose last word is cut to a prefix (search as you type)")
    category_filter_p: float = Field(default=0.1, ge=0, le=1, description="share of searches within the category")
    max_price_p: float = Field(default=0.05, ge=0, le=1, description="share of searches under a price")
    page_size: int = Field(default=10, ge=1, le=MAX_SEARCH_PAGE_SIZE, description="hits per results page")

    @field_validator("word_weights")
    @classmethod
    def _weights(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(w < 0 for w in value) or not any(value):
            raise ValueError("weights must be >= 0 and not all 0")
        return value


class SearchParams(QueryParams):
    """A search."""

    next_page_p: float = Field(default=0.1, ge=0, le=1, description="share of searches that read the next page")


class ViewParams(Params):
    """A product page."""

    zipf_exponent: float = Field(default=1.0, ge=0, le=5, description="popularity of products (as the search's)")


class CartParams(QueryParams, RetryParams):
    """Filling a cart: where from, how many lines and units; the calls' retries."""

    target: Literal["catalogue", "flash"] = Field(default="catalogue",
                                                  description="catalogue: products found by search; flash: one of "
                                                              "the flash sale's deals")
    lines_min: int = Field(default=1, ge=1, le=MAX_CART_LINES, description="fewest products (catalogue)")
    lines_max: int = Field(default=3, ge=1, le=MAX_CART_LINES, description="most products (catalogue; uniform)")
    quantity_max: int = Field(default=2, ge=1, le=MAX_LINE_QUANTITY, description="most units of a line (uniform from 1)")

    @model_validator(mode="after")
    def _lines(self) -> CartParams:
        if self.lines_min > self.lines_max:
            raise ValueError(f"lines_min ({self.lines_min}) must be at most lines_max ({self.lines_max})")
        return self


class AbandonParams(CartParams):
    """A cart filled and left."""


class BuyParams(CartParams):
    """A cart filled, thought over and checked out."""

    think_median_s: float = Field(default=2.0, ge=0, le=600,
                                  description="median time between the last line and the checkout, s (lognormal)")
    think_sigma: float = Field(default=0.5, ge=0, le=5, description="the think time's lognormal sigma")
    think_max_s: float = Field(default=10.0, ge=0, le=600, description="longest think time, s")
    double_submit_p: float = Field(default=0.02, ge=0, le=1,
                                   description="share of checkouts sent twice at once (a double click)")


class FlashAbandonParams(AbandonParams):
    """``abandon`` in a flash sale: one deal, one unit (a deal's limit per customer)."""

    target: Literal["catalogue", "flash"] = Field(default="flash", description="where the cart is filled from")
    quantity_max: int = Field(default=1, ge=1, le=MAX_LINE_QUANTITY, description="most units of the deal")


class FlashBuyParams(BuyParams):
    """``buy`` in a flash sale: one deal, one unit; the think time before paying is the race against the TTL."""

    target: Literal["catalogue", "flash"] = Field(default="flash", description="where the cart is filled from")
    quantity_max: int = Field(default=1, ge=1, le=MAX_LINE_QUANTITY, description="most units of the deal")
    think_median_s: float = Field(default=3.0, ge=0, le=600,
                                  description="median time between the cart and the checkout, s (lognormal)")
    think_sigma: float = Field(default=0.7, ge=0, le=5, description="the think time's lognormal sigma")
    think_max_s: float = Field(default=15.0, ge=0, le=600, description="longest think time, s")


def draw_think_s(rng: random.Random, params: BuyParams) -> float:
    """A think time in seconds: lognormal around the median, at most the max (0 with a median of 0)."""
    if params.think_median_s <= 0:
        return 0.0
    return min(rng.lognormvariate(math.log(params.think_median_s), params.think_sigma), params.think_max_s)


def budget_minor(price_minor: int) -> int:
    """A shopper's price limit for a product: the next 10.00 above its price (minor units)."""
    return (price_minor // 1_000 + 1) * 1_000


def error_of(outcome: Outcome) -> grpc.aio.AioRpcError:
    assert outcome.error is not None
    return outcome.error


def found_code(target: Product, request: catalog_pb2.SearchProductsRequest,
               hits: list[catalog_pb2.SearchHit]) -> tuple[str, list[str]]:
    """The ``search_found`` code of a results page for ``target``, and the hits that break the request's rules."""
    wrong = [f"{h.product.product_id} ({h.product.title!r})" for h in hits
             if not holds_query(f"{h.product.title} {h.product.description}", request.query)
             or (request.category and h.product.category != request.category)
             or (request.max_price_minor and h.product.price.amount_minor > request.max_price_minor)]
    if wrong:
        return WRONG, wrong
    if not hits:
        return NONE, []
    return (FOUND if any(h.product.product_id == target.product_id for h in hits) else OTHER), []


async def find(call: Caller, shop: Shop, params: QueryParams, rng: random.Random,
               *, first: bool) -> tuple[Product, catalog_pb2.SearchProductsRequest, catalog_pb2.SearchProductsResponse]:
    """A search for a product drawn by popularity (module docstring): the product looked for, the request and the
    answer; records ``search_time`` and ``search_found``; raises the call's error."""
    target = shop.product(rng, params.zipf_exponent)
    request = catalog_pb2.SearchProductsRequest(
        query=query_for(rng, target.title, target.noun, params.word_weights, params.prefix_p),
        page_size=params.page_size)
    if rng.random() < params.category_filter_p:
        request.category = target.category
    if rng.random() < params.max_price_p:
        request.max_price_minor = budget_minor(target.price_minor)
    started = call.intended_at if first else shop.clock()
    try:
        response = await call(CATALOG, "SearchProducts", request)
    except grpc.aio.AioRpcError as error:
        call.observe(SEARCH_TIME, shop.clock() - started, error.code().name)
        raise
    call.observe(SEARCH_TIME, shop.clock() - started, OK)
    code, wrong = found_code(target, request, list(response.hits))
    if code == WRONG:
        log.warning("ecommerce: search %r (category %r, max price %d) answered hits that do not match: %s",
                    request.query, request.category, request.max_price_minor, ", ".join(wrong))
    call.observe(SEARCH_FOUND, 0.0, code)
    return target, request, response


async def browse(call: Caller, params: BrowseParams, shop: Shop, rng: random.Random) -> None:
    """A category's pages, then maybe one of its products (module docstring)."""
    category = shop.category(rng, params.category_zipf_exponent)
    token = ""
    products: list[ecommerce_pb2.Product] = []
    for _ in range(rng.randint(1, params.pages_max)):
        page = await call(CATALOG, "ListProducts", catalog_pb2.ListProductsRequest(
            category=category, page_size=params.page_size, page_token=token))
        products = list(page.products) or products
        token = page.next_page_token
        if not token:
            break
    if products and rng.random() < params.open_p:
        await call(CATALOG, "GetProduct", catalog_pb2.GetProductRequest(product_id=rng.choice(products).product_id))


async def search(call: Caller, params: SearchParams, shop: Shop, rng: random.Random) -> None:
    """A search, and for some the next page (module docstring)."""
    _, request, response = await find(call, shop, params, rng, first=True)
    if response.next_page_token and rng.random() < params.next_page_p:
        request.page_token = response.next_page_token
        await call(CATALOG, "SearchProducts", request)


async def view_product(call: Caller, params: ViewParams, shop: Shop, rng: random.Random) -> None:
    """A product page: the product, then its stock."""
    product = shop.product(rng, params.zipf_exponent)
    answer = (await call(CATALOG, "GetProduct", catalog_pb2.GetProductRequest(product_id=product.product_id))).product
    await call(INVENTORY, "GetStock", inventory_pb2.GetStockRequest(product_id=answer.product_id))


async def choose(call: Caller, shop: Shop, params: CartParams, rng: random.Random, first: bool,
                 chosen: set[str]) -> str:
    """The next product a shopper puts in the cart (module docstring, "Filling the cart")."""
    if params.target == "flash":
        deal = shop.deal(rng)
        await call(CATALOG, "GetProduct", catalog_pb2.GetProductRequest(product_id=deal.product_id))
        await call(INVENTORY, "GetStock", inventory_pb2.GetStockRequest(product_id=deal.product_id))
        return deal.product_id
    target, _, response = await find(call, shop, params, rng, first=first)
    ids = [h.product.product_id for h in response.hits]
    if target.product_id in ids and target.product_id not in chosen:
        return target.product_id
    fresh = [i for i in ids if i not in chosen]
    if fresh:
        return fresh[0]
    await call(CATALOG, "GetProduct", catalog_pb2.GetProductRequest(product_id=target.product_id))
    return target.product_id


def refusal_code(error: grpc.aio.AioRpcError) -> str:
    """``OUT_OF_STOCK`` (or another reason, upper-case) for a FAILED_PRECONDITION, else the status code's name."""
    if error.code() == grpc.StatusCode.FAILED_PRECONDITION:
        return (failed_precondition_reason(error.details() or "") or "failed_precondition").upper()
    return error.code().name


async def fill_cart(call: Caller, shop: Shop, params: CartParams, rng: random.Random, user: str) -> dict[str, int]:
    """Fill ``user``'s cart (module docstring); the lines the cart took, product → units. Records ``cart_add`` per
    line; raises the error of a call that failed for good."""
    lines = 1 if params.target == "flash" else rng.randint(params.lines_min, params.lines_max)
    added: dict[str, int] = {}
    for index in range(lines):
        product_id = await choose(call, shop, params, rng, index == 0, set(added))
        quantity = rng.randint(1, params.quantity_max)
        outcome = await send(call, CART, "SetItem", cart_pb2.SetItemRequest(
            user_id=user, product_id=product_id, quantity=quantity), params, rng, sleep=shop.sleep)
        if outcome.answered:
            added[product_id] = quantity
            call.observe(CART_ADD, outcome.elapsed_s, OK)
            continue
        error = error_of(outcome)
        call.observe(CART_ADD, outcome.elapsed_s, refusal_code(error))
        if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
            raise error
    return added


async def abandon(call: Caller, params: AbandonParams, shop: Shop, rng: random.Random) -> None:
    """A cart filled and left: its reservations stay HELD until their TTL (module docstring)."""
    await fill_cart(call, shop, params, rng, shop.new_user())


async def checkout(call: Caller, shop: Shop, params: BuyParams, rng: random.Random, user: str,
                   cart: Lines) -> list[Outcome]:
    """Checkout of ``user``'s ``cart`` with a fresh key, retried; a double click sends it twice at once. Entered in the
    sales book; records ``checkout_time``, ``checkout_outcome`` and ``cart_honoured``."""
    key = f"checkout-{uuid.uuid4().hex}"
    request = orders_pb2.CheckoutRequest(idempotency_key=key, user_id=user, card_token=shop.card(rng))
    products = [product for product, _ in cart]
    sends = 2 if rng.random() < params.double_submit_p else 1
    outcomes: list[Outcome] = []
    shop.sales.begin(products)
    started = shop.clock()
    try:
        outcomes = list(await asyncio.gather(*(send(call, ORDERS, "Checkout", request, params, rng, sleep=shop.sleep)
                                               for _ in range(sends))))
    finally:
        known = any(o.answered for o in outcomes) or (bool(outcomes) and all(o.known for o in outcomes))
        shop.sales.end(products, known)
    answered = [o for o in outcomes if o.answered]
    call.observe(CHECKOUT_TIME, shop.clock() - started, OK if answered else outcomes[-1].code)
    orders = [o.response.order for o in answered]
    if orders:
        problems = answers_problems(orders) + order_problems(orders[0], user, cart, shop.currency)
        if problems:
            log.warning("ecommerce: checkout %s answered an inconsistent order %s: %s", key, orders[0].order_id,
                        "; ".join(problems))
            shop.sales.problem(key, problems)
        if orders[0].status == ecommerce_pb2.ORDER_STATUS_CONFIRMED:
            shop.sales.confirmed(orders[0])
        code = outcome_code(orders[0])
        call.observe(CHECKOUT_OUTCOME, 0.0, code)
        if code != PAYMENT_DECLINED:
            call.observe(CART_HONOURED, 0.0, OK if code == CONFIRMED else code)
    return outcomes


async def buy(call: Caller, params: BuyParams, shop: Shop, rng: random.Random) -> None:
    """A cart filled, thought over, read and checked out (module docstring)."""
    user = shop.new_user()
    if not await fill_cart(call, shop, params, rng, user):
        return
    await shop.sleep(draw_think_s(rng, params))
    read = await send(call, CART, "GetCart", cart_pb2.GetCartRequest(user_id=user), params, rng, sleep=shop.sleep)
    if not read.answered:
        raise error_of(read)
    cart = lines_of(read.response.cart.lines)
    if not cart:
        log.warning("ecommerce: %s's cart is empty after lines were set", user)
        return
    outcomes = await checkout(call, shop, params, rng, user, cart)
    failed = [o for o in outcomes if not o.answered]
    if failed:  # no answer at all, or one of a double click's sends never got its answer
        raise error_of(failed[-1])
