"""The e-commerce workload's parameters (the catalogue, its stock, the shoppers' cards, a flash sale's deals, the
end-of-run checks) and its seeding through the public API: CatalogService.CreateProduct, InventoryService.Restock and
CardVaultService.TokenizeCard.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 502: "Product catalog with
search and filtering"; line 512: "Inventory counts must be accurate (no overselling)"; line 535: "Flash Sale Inventory
Reservation") and seed 001 #05 (shared/seeds/001_58dfc580020147d2.txt line 21: "Inventory management, shopping cart,
checkout, order fulfillment | 10M products, Amazon-scale"). What is made, every ID under the run's prefix
(``ec<run>``, 8 hex digits, the first draw of the run's generator):

- **the catalogue** (``ec<run>-p<i>``, ``products``): product ``i`` is in category ``i mod categories`` (of
  :data:`.catalogue.CATEGORIES`, so each has as many products), its title, description and price from
  :func:`.catalogue.make_product`, priced in ``currency``. Their order is their popularity (:mod:`.live`: Zipf over
  the rank). Each is created with CatalogService.CreateProduct as a merchant's listing tool does, then stocked with
  InventoryService.Restock (restock ID ``<product_id>-seed``, so a repeated seeding adds nothing): uniform
  ``stock_min`` .. ``stock_max`` units (a shop keeps most of its catalogue in stock), except ``low_stock_share`` of
  them, which have 1 .. ``low_stock_max`` units (nearly sold out: the everyday run meets ``out_of_stock`` there);
- **the flash sale's deals** (``ec<run>-deal<j>``, ``hot_products``, none by default): products of the first
  categories in turn, titled as any product with " - Lightning Deal" after it, at ``1 - hot_discount`` of the drawn
  price, each stocked with exactly ``hot_stock`` units: the few units many buyers want at once (seed line 511:
  "Handle 10x traffic during flash sales");
- **the shoppers' cards** (``customers``): one card each, tokenized with CardVaultService.TokenizeCard for the shop's
  merchant (:data:`casemesh.services.ecommerce.contract.MERCHANT_ID`: a token is valid for its merchant only), as a
  shop's payment page does. ``test_card_share`` of them are the payment contract's TEST_CARDS
  (:data:`casemesh.services.payments.contract.TEST_CARDS`, declined by every simulated issuer: their checkouts fail
  ``PAYMENT_DECLINED``), in turn; the others valid Visa numbers (leading 4, 16 digits, Luhn check digit:
  ``stdnum.luhn``) from a generator of their own, ``random.Random(f"casemesh-ecommerce-cards-{run}")``.

What is drawn, in order, from the run's generator: the run prefix; per product its text and price, then its stock;
per deal its text and price; per shopper whether its card is a test card. The calls go ``seed_concurrency`` in
flight; a call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again (creating a product again with the same fields
returns it, a restock ID is applied once, a card tokenized twice only has two tokens), up to :data:`SEED_ATTEMPTS`
times, 100 ms doubling between; any other refusal fails the seeding with its status.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
from casemesh.common.v1 import money_pb2
from casemesh.ecommerce.v1 import catalog_pb2, ecommerce_pb2, inventory_pb2
from casemesh.payments.v1 import vault_pb2
from casemesh.services.ecommerce.contract import (
    MAX_RESTOCK_QUANTITY,
    MERCHANT_ID,
    is_currency_code,
)
from casemesh.services.payments.contract import TEST_CARDS, is_card_number
from pydantic import Field, field_validator, model_validator
from stdnum import luhn

from ..base import Caller, Params
from .catalogue import CATEGORIES, ProductText, make_product

CATALOG = "ecommerce-catalog"
INVENTORY = "ecommerce-inventory"
CART = "ecommerce-cart"
ORDERS = "ecommerce-orders"
VAULT = "payments-vault"

#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class SeedParams(Params):
    """The shop's catalogue, stock, cards and deals, and the end-of-run checks (defaults: the ``ecommerce``
    profile's)."""

    currency: str = Field(default="USD", description="every price's currency (ISO 4217)")
    products: int = Field(default=3_000, ge=1, le=200_000, description="catalogue products")
    categories: int = Field(default=len(CATEGORIES), ge=1, le=len(CATEGORIES),
                            description="categories the products are spread over (the first of the 20)")
    stock_min: int = Field(default=1_000, ge=1, le=MAX_RESTOCK_QUANTITY, description="least stock of a product, units")
    stock_max: int = Field(default=10_000, ge=1, le=MAX_RESTOCK_QUANTITY, description="most stock of a product, units")
    low_stock_share: float = Field(default=0.02, ge=0, le=1, description="share of products nearly sold out")
    low_stock_max: int = Field(default=10, ge=1, le=MAX_RESTOCK_QUANTITY,
                               description="most stock of a nearly sold-out product, units (uniform from 1)")
    hot_products: int = Field(default=0, ge=0, le=100, description="the flash sale's deals (none: no flash sale)")
    hot_stock: int = Field(default=200, ge=1, le=MAX_RESTOCK_QUANTITY, description="units of each deal")
    hot_discount: float = Field(default=0.5, ge=0, lt=1, description="a deal's discount on its drawn price (share)")
    restock_hot_at_connect: bool = Field(default=True,
                                         description="when the load processes connect, restock each deal back to "
                                                     "hot_stock available units (each step of casemesh capacity "
                                                     "is a new sale)")
    customers: int = Field(default=2_000, ge=1, le=1_000_000,
                           description="shoppers' cards, tokenized for the shop's merchant (one per shopper)")
    test_card_share: float = Field(default=0.02, ge=0, le=1,
                                   description="share of shoppers whose card is a payment contract TEST_CARD (always "
                                               "declined)")
    seed_concurrency: int = Field(default=32, ge=1, le=256, description="seeding calls in flight")
    baseline_audit: bool = Field(default=True,
                                 description="audit the inventory when the load processes connect (not recorded): the "
                                             "end-of-run checks judge what this run changed")
    check_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                   description="deadline of one InventoryService.Audit call, s")
    check_attempts: int = Field(default=3, ge=1, le=10,
                                description="Audit calls at most (UNAVAILABLE or DEADLINE_EXCEEDED: sent again after "
                                            "1 s)")
    check_delay_s: float = Field(default=2.0, ge=0, le=600,
                                 description="with --workers, the seconds load process 0 waits after its own drain "
                                             "before its end-of-run checks (the others' last journeys)")
    read_back_concurrency: int = Field(default=16, ge=1, le=256,
                                       description="GetOrder calls in flight in the end-of-run read back")

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency_code(value):
            raise ValueError(f"{value!r} is not a currency code (three upper-case letters)")
        return value

    @model_validator(mode="after")
    def _stock(self) -> SeedParams:
        if self.stock_min > self.stock_max:
            raise ValueError(f"stock_min ({self.stock_min}) must be at most stock_max ({self.stock_max})")
        return self


@dataclass(frozen=True)
class Product:
    """A product the seeding made: its ID, category, title, noun (what shoppers search for), unit price (minor
    units) and the units it was stocked with."""

    product_id: str
    category: str
    title: str
    noun: str
    price_minor: int
    stock: int


@dataclass(frozen=True)
class Card:
    """A card as a shopper types it into the payment page: number, expiry (month 1-12, four-digit year), code."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the currency, the categories,
    the catalogue in popularity order, the deals, and the card tokens (``declining`` of them test cards)."""

    run: str
    currency: str
    categories: list[str]
    products: list[Product]
    hot: list[Product]
    cards: list[str]
    declining: int = 0

    @property
    def product_ids(self) -> list[str]:
        """Every product the run made, deals included."""
        return [p.product_id for p in (*self.products, *self.hot)]


@dataclass(frozen=True)
class Plan:
    """The seeding before its calls: the run prefix, the products, the deals and the shoppers' cards."""

    run: str
    products: list[tuple[Product, ProductText]]
    hot: list[tuple[Product, ProductText]]
    cards: list[Card]


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def card_numbers(run: str, count: int) -> list[str]:
    """``count`` distinct valid Visa numbers of run ``run`` (16 digits, leading 4, Luhn), none a test card."""
    rng = random.Random(f"casemesh-ecommerce-cards-{run}")
    numbers: dict[str, None] = {}
    while len(numbers) < count:
        body = "4" + "".join(rng.choice("0123456789") for _ in range(14))
        number = body + luhn.calc_check_digit(body)
        if number not in TEST_CARDS:
            numbers[number] = None
    assert all(is_card_number(n) for n in numbers)
    return list(numbers)


def _card(rng: random.Random, number: str, year: int) -> Card:
    return Card(number, rng.randint(1, 12), year + rng.randint(1, 4), f"{rng.randrange(1000):03d}")


def plan(params: SeedParams, rng: random.Random, now: datetime | None = None) -> Plan:
    """What to create, drawn in a fixed order (module docstring): no call."""
    run = run_prefix(rng)
    base = f"ec{run}"
    categories = CATEGORIES[:params.categories]
    products: list[tuple[Product, ProductText]] = []
    for i in range(params.products):
        text = make_product(rng, categories[i % len(categories)])
        low = rng.random() < params.low_stock_share
        stock = rng.randint(1, params.low_stock_max) if low else rng.randint(params.stock_min, params.stock_max)
        products.append((Product(f"{base}-p{i}", text.category, text.title, text.noun, text.price_minor, stock), text))
    hot: list[tuple[Product, ProductText]] = []
    for j in range(params.hot_products):
        text = make_product(rng, categories[j % len(categories)])
        price = max(1, round(text.price_minor * (1 - params.hot_discount)))
        text = ProductText(f"{text.title} - Lightning Deal", text.description, text.category, price, text.noun)
        hot.append((Product(f"{base}-deal{j}", text.category, text.title, text.noun, price, params.hot_stock), text))
    tests = [rng.random() < params.test_card_share for _ in range(params.customers)]
    year = (now or datetime.now(UTC)).year
    card_rng = random.Random(f"casemesh-ecommerce-expiry-{run}")
    pool = iter(card_numbers(run, tests.count(False)))
    declining = list(TEST_CARDS)
    cards: list[Card] = []
    used = 0
    for test in tests:
        number = declining[used % len(declining)] if test else next(pool)
        used += test
        cards.append(_card(card_rng, number, year))
    return Plan(run, products, hot, cards)


async def _send(call: Caller, service: str, method: str, request: Any) -> Any:
    """One seeding call, sent again on :data:`RETRIED` (module docstring)."""
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return await call(service, method, request)
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await asyncio.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


def product_message(product: Product, text: ProductText, currency: str) -> ecommerce_pb2.Product:
    """The catalogue's Product of ``product``."""
    return ecommerce_pb2.Product(product_id=product.product_id, title=text.title, description=text.description,
                                 category=text.category,
                                 price=money_pb2.Money(currency_code=currency, amount_minor=text.price_minor))


async def create(call: Caller, product: Product, text: ProductText, currency: str) -> None:
    """CreateProduct, then Restock with ``<product_id>-seed`` (retried as the module docstring says)."""
    await _send(call, CATALOG, "CreateProduct",
                catalog_pb2.CreateProductRequest(product=product_message(product, text, currency)))
    await _send(call, INVENTORY, "Restock", inventory_pb2.RestockRequest(
        restock_id=f"{product.product_id}-seed", product_id=product.product_id, quantity=product.stock))


async def tokenize(call: Caller, card: Card) -> str:
    """TokenizeCard of ``card`` for the shop's merchant; returns the token."""
    response = await _send(call, VAULT, "TokenizeCard", vault_pb2.TokenizeCardRequest(
        merchant_id=MERCHANT_ID, card_number=card.number, exp_month=card.exp_month, exp_year=card.exp_year,
        cvc=card.cvc))
    return response.card_token


async def _bounded(limit: asyncio.Semaphore, make: Callable[[], Awaitable[Any]]) -> Any:
    async with limit:
        return await make()


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Create and stock every product and deal, tokenize every card (``seed_concurrency`` in flight); the state."""
    made = plan(params, rng)
    limit = asyncio.Semaphore(params.seed_concurrency)
    await asyncio.gather(*(_bounded(limit, lambda p=p, t=t: create(call, p, t, params.currency))
                           for p, t in (*made.products, *made.hot)))
    tokens = await asyncio.gather(*(_bounded(limit, lambda c=c: tokenize(call, c)) for c in made.cards))
    return State(run=made.run, currency=params.currency, categories=[c.slug for c in CATEGORIES[:params.categories]],
                 products=[p for p, _ in made.products], hot=[p for p, _ in made.hot], cards=list(tokens),
                 declining=sum(c.number in TEST_CARDS for c in made.cards))
