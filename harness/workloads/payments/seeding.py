"""The payments workload's parameters (merchants, their customers and cards, the end-of-run settlement) and its
seeding through the public API (CardVaultService.TokenizeCard).

Seed 001 #25 "Payment Gateway" (shared/seeds/001_58dfc580020147d2.txt line 49: "PSP routing, fraud detection, PCI DSS
(HSM tokenization), settlement | 10K TPS, Stripe/Adyen"). Nothing about a merchant is created: a merchant is an id
that its payments carry (``pm<run>-m<i>``), with the currency it sells in (``currencies`` in turn: USD, EUR, GBP).
Each of its ``customers_per_merchant`` customers (``pm<run>-m<i>-u<j>``) holds one card, or two for
``two_card_share`` of them (a personal and a work card), each tokenized for that merchant (a token is valid for its
merchant only, vault.proto) as a merchant's payment page does: the card number goes to the vault, the token comes
back. The numbers are the run's pool (:func:`.cards.card_pool`: valid Luhn numbers from a generator seeded by the
run's prefix), except for ``test_card_share`` of customers, whose one card is one of the contract's TEST_CARDS
(:data:`casemesh.services.payments.contract.TEST_CARDS`: every simulated issuer declines it with its code), in turn.

What is drawn, in order, from the run's generator: the run prefix (its first draw, 8 hex digits, so a data directory
kept from an earlier run shares no merchant or customer with this one), then per customer whether it holds a test card
and how many cards; the pool's numbers and expiries from their own generator (:mod:`.cards`). Tokenization goes
``tokenize_concurrency`` calls in flight; a call answered UNAVAILABLE or DEADLINE_EXCEEDED is sent again (tokenizing a
card twice only makes a second token of the same card: vault.proto), up to :data:`SEED_ATTEMPTS` times, 100 ms doubling
between; any other refusal fails the seeding with its status.

A customer holds at most two cards: the fraud rules' ``card_testing`` counts the distinct cards of one customer, and a
real customer never looks like a bot (:mod:`.journeys` ``card_testing`` uses many).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

import grpc
from pydantic import Field, field_validator

from casemesh.payments.v1 import vault_pb2
from casemesh.services.payments.contract import is_currency_code

from ..base import Caller, Params
from .cards import CardPlan, card_pool, declining_cards

VAULT = "payments-vault"
GATEWAY = "payments-gateway"

#: Attempts of a seeding call answered with one of :data:`RETRIED` (the service busy or restarting).
SEED_ATTEMPTS = 5
RETRIED = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})


class SeedParams(Params):
    """Merchants, customers, cards, and the end-of-run settlement check (defaults: the ``payments`` profile's)."""

    merchants: int = Field(default=4, ge=1, le=1000, description="merchants taking payments (ids only: nothing to create)")
    currencies: tuple[str, ...] = Field(default=("USD", "EUR", "GBP"), min_length=1, max_length=16,
                                        description="merchant i sells in currencies[i % len(currencies)] (ISO 4217)")
    customers_per_merchant: int = Field(default=250, ge=1, le=100_000,
                                        description="customers of each merchant, each with one or two cards")
    two_card_share: float = Field(default=0.3, ge=0, le=1, description="share of customers holding two cards")
    test_card_share: float = Field(default=0.02, ge=0, le=1,
                                   description="share of customers whose one card is a contract TEST_CARD (always "
                                               "declined by the issuer, with its code)")
    tokenize_concurrency: int = Field(default=16, ge=1, le=256, description="TokenizeCard calls in flight while seeding")
    baseline_reconcile: bool = Field(default=True,
                                     description="reconcile once when the load processes connect (not recorded), so "
                                                 "the acquirers' batches at the end hold this run's money only")
    reconcile_timeout_s: float = Field(default=30.0, gt=0, le=600,
                                       description="deadline of one SettlementService.Reconcile call, s")
    reconcile_attempts: int = Field(default=3, ge=1, le=10,
                                    description="Reconcile calls at most (ABORTED or UNAVAILABLE: sent again after 1 s)")
    reconcile_delay_s: float = Field(default=2.0, ge=0, le=600,
                                     description="with --workers, the seconds load process 0 waits after its own "
                                                 "drain before reconciling (the others' last journeys)")

    @field_validator("currencies")
    @classmethod
    def _currencies(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for code in value:
            if not is_currency_code(code):
                raise ValueError(f"{code!r} is not a currency code (three upper-case letters)")
        return value


@dataclass(frozen=True)
class Merchant:
    """A merchant: its id and the currency it sells in."""

    merchant_id: str
    currency: str


@dataclass(frozen=True)
class Customer:
    """A merchant's customer and the tokens of its cards (for that merchant); ``test_card`` when its card always
    declines."""

    customer_id: str
    merchant_id: str
    currency: str
    tokens: tuple[str, ...]
    test_card: bool = False


@dataclass
class State:
    """What the seeder made (picklable: sent to worker processes): the run's prefix, the merchants, the customers."""

    run: str
    merchants: list[Merchant]
    customers: list[Customer]


@dataclass(frozen=True)
class CustomerPlan:
    """A customer before tokenization: its ids and its cards."""

    customer_id: str
    merchant: Merchant
    cards: tuple[CardPlan, ...]

    @property
    def test_card(self) -> bool:
        return any(c.test_card for c in self.cards)


def run_prefix(rng: random.Random) -> str:
    """The run's 8 hex digits, the first draw of the run's generator."""
    return f"{rng.getrandbits(32):08x}"


def plan(params: SeedParams, rng: random.Random) -> tuple[str, list[Merchant], list[CustomerPlan]]:
    """The run prefix, the merchants and the customers with their cards, drawn in a fixed order (module docstring):
    no call."""
    run = run_prefix(rng)
    merchants = [Merchant(f"pm{run}-m{i}", params.currencies[i % len(params.currencies)]) for i in range(params.merchants)]
    shapes: list[tuple[Merchant, int, bool]] = []
    for merchant in merchants:
        for _ in range(params.customers_per_merchant):
            test = rng.random() < params.test_card_share
            shapes.append((merchant, 1 if test or rng.random() >= params.two_card_share else 2, test))
    pool = iter(card_pool(run, sum(n for _, n, test in shapes if not test)))
    declining = declining_cards(random.Random(f"casemesh-payments-test-cards-{run}"))
    customers: list[CustomerPlan] = []
    tests = 0
    counts: dict[str, int] = {}
    for merchant, n, test in shapes:
        j = counts[merchant.merchant_id] = counts.get(merchant.merchant_id, -1) + 1
        if test:
            cards: tuple[CardPlan, ...] = (declining[tests % len(declining)],)
            tests += 1
        else:
            cards = tuple(next(pool) for _ in range(n))
        customers.append(CustomerPlan(f"{merchant.merchant_id}-u{j}", merchant, cards))
    return run, merchants, customers


async def tokenize(call: Caller, merchant_id: str, card: CardPlan) -> str:
    """TokenizeCard of ``card`` for ``merchant_id`` (retried as the module docstring says); returns the token."""
    request = vault_pb2.TokenizeCardRequest(merchant_id=merchant_id, card_number=card.number, exp_month=card.exp_month,
                                            exp_year=card.exp_year, cvc=card.cvc)
    for attempt in range(1, SEED_ATTEMPTS + 1):
        try:
            return (await call(VAULT, "TokenizeCard", request)).card_token
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRIED or attempt == SEED_ATTEMPTS:
                raise
        await asyncio.sleep(0.1 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")  # pragma: no cover


async def seed(call: Caller, params: SeedParams, rng: random.Random) -> State:
    """Tokenize every customer's cards for its merchant (``tokenize_concurrency`` in flight) and return the state."""
    run, merchants, plans = plan(params, rng)
    limit = asyncio.Semaphore(params.tokenize_concurrency)

    async def one(customer: CustomerPlan) -> Customer:
        tokens = []
        for card in customer.cards:
            async with limit:
                tokens.append(await tokenize(call, customer.merchant.merchant_id, card))
        return Customer(customer.customer_id, customer.merchant.merchant_id, customer.merchant.currency, tuple(tokens),
                        customer.test_card)

    customers = await asyncio.gather(*(one(c) for c in plans))
    return State(run=run, merchants=merchants, customers=list(customers))
