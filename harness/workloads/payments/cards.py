"""The payments workload's cards: a pool of valid card numbers generated per run, the contract's test cards, and the
fresh numbers of a card-testing bot (pure functions, no I/O).

Seed 001 #25 "Payment Gateway" (shared/seeds/001_58dfc580020147d2.txt line 49: "PSP routing, fraud detection, PCI DSS
(HSM tokenization), settlement | 10K TPS, Stripe/Adyen"). Customers' cards are tokenized through
CardVaultService.TokenizeCard before the run (:mod:`.seeding`); the numbers are made here:

- **The run's pool** (:func:`card_pool`): ``size`` distinct numbers drawn from a generator of their own,
  ``random.Random(f"casemesh-payments-cards-{run}")``, where ``run`` is the run's prefix (the first draw of the run's
  seeded generator, ``casemesh run --seed``): the same seed gives the same cards, and the pool does not depend on how
  many other draws seeding makes. Brands by share (:data:`BRANDS`, roughly the US card-not-present mix): Visa 55%
  (16 digits, leading 4), Mastercard 35% (16 digits, leading 51-55 or 2221-2720), Amex 10% (15 digits, leading 34 or
  37); the digits after the network's prefix are uniform, the last one the Luhn check digit
  (``stdnum.luhn.calc_check_digit``, ISO/IEC 7812), so :func:`casemesh.services.payments.contract.is_card_number`
  holds for every one. A number equal to one of :data:`~casemesh.services.payments.contract.TEST_CARDS` is drawn
  again. Expiry: a uniform month, 1 to 5 years after ``now``'s year; security code 3 digits (4 for Amex).
- **Test cards** (:func:`declining_cards`): the contract's numbers that every simulated issuer declines with their code
  (Stripe's test numbers), given an expiry and a code like any card, for a small share of customers: their checkouts
  exercise declines.
- **A bot's cards** (:func:`card_number`): fresh numbers from the journey's generator, each tried once (card
  testing: stolen numbers checked with small payments).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime

from stdnum import luhn

from casemesh.services.payments.contract import TEST_CARDS, card_brand, is_card_number

#: (brand, IIN prefixes to draw from, length in digits, share of the pool).
BRANDS: tuple[tuple[str, tuple[str, ...], int, float], ...] = (
    ("visa", ("4",), 16, 0.55),
    ("mastercard", ("51", "52", "53", "54", "55", "2221", "2300", "2500", "2720"), 16, 0.35),
    ("amex", ("34", "37"), 15, 0.10),
)
#: Years after the current one a pool card expires: uniform 1 to this.
MAX_YEARS_AHEAD = 5


@dataclass(frozen=True)
class CardPlan:
    """A card as a customer types it into the merchant's page: number, expiry (month 1-12, four-digit year), code."""

    number: str
    exp_month: int
    exp_year: int
    cvc: str

    @property
    def brand(self) -> str:
        """``visa``, ``mastercard``, ``amex`` or ``other`` (the contract's rule)."""
        return card_brand(self.number)

    @property
    def test_card(self) -> bool:
        """True for one of the contract's TEST_CARDS (always declined)."""
        return self.number in TEST_CARDS


def pool_rng(run: str) -> random.Random:
    """The generator of run ``run``'s card pool (module docstring)."""
    return random.Random(f"casemesh-payments-cards-{run}")


def card_number(rng: random.Random, brand: str | None = None) -> str:
    """A valid number of ``brand`` (drawn by share when ``None``) that is not a test card."""
    entry = _brand(rng) if brand is None else next((b for b in BRANDS if b[0] == brand), None)
    if entry is None:
        raise ValueError(f"unknown brand {brand!r}; known: {', '.join(b[0] for b in BRANDS)}")
    _, prefixes, length, _ = entry
    while True:
        prefix = rng.choice(prefixes)
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        number = body + luhn.calc_check_digit(body)
        if number not in TEST_CARDS:
            return number


def _brand(rng: random.Random) -> tuple[str, tuple[str, ...], int, float]:
    return rng.choices(BRANDS, weights=[b[3] for b in BRANDS])[0]


def card(rng: random.Random, number: str, now: datetime | None = None) -> CardPlan:
    """``number`` with an expiry 1 to :data:`MAX_YEARS_AHEAD` years after ``now``'s year and a code, from ``rng``."""
    year = (now or datetime.now(UTC)).year
    digits = 4 if card_brand(number) == "amex" else 3
    return CardPlan(number=number, exp_month=rng.randint(1, 12), exp_year=year + rng.randint(1, MAX_YEARS_AHEAD),
                    cvc="".join(rng.choice("0123456789") for _ in range(digits)))


def card_pool(run: str, size: int, now: datetime | None = None) -> list[CardPlan]:
    """``size`` distinct valid cards of run ``run``, none a test card (module docstring)."""
    rng = pool_rng(run)
    seen: set[str] = set()
    pool: list[CardPlan] = []
    while len(pool) < size:
        number = card_number(rng)
        if number in seen:
            continue
        seen.add(number)
        pool.append(card(rng, number, now))
    assert all(is_card_number(c.number) for c in pool)
    return pool


def declining_cards(rng: random.Random, now: datetime | None = None) -> list[CardPlan]:
    """The contract's TEST_CARDS (in its order) as cards with an expiry and a code drawn from ``rng``."""
    return [card(rng, number, now) for number in TEST_CARDS]

