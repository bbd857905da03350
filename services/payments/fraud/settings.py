"""Settings of ``payments-fraud`` (topology ``settings.payments-fraud``); unknown keys are refused.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": "fraud detection", 10K TPS). The
seed names the mechanism and gives no figure for it: the defaults below are this case study's choices, each with its
reason. Times are real seconds: a profile that runs its customers faster than real time (a time-compressed workload)
divides ``window_s`` (and ``answer_ttl_s``) by the same factor.

The windows (per card fingerprint, across merchants: a card is one card wherever it is used; per customer, within
its merchant: ``customer_id`` is the merchant's own id):

- ``window_s`` 600: the rules look at the last 10 minutes, the span of a card-testing run or a burst of
  velocity fraud (a script tries its cards within minutes), while a real cardholder rarely pays twice in it.

The rules, in the order they are listed in an answer, with their weights:

- ``card_velocity`` (``card_velocity_weight`` 40): more than ``card_velocity_max`` 5 payments on one card within the
  window, the payment being scored included (the 6th fires). Five payments in ten minutes is already unusual for a
  person, so alone it scores 40, below the review threshold: it flags only together with another rule.
- ``card_testing`` (``card_testing_weight`` 80): the customer used at least ``card_testing_min_cards`` 3 distinct
  cards within the window, this one included (a customer whose first card fails tries a second; a third is the
  pattern of someone testing stolen numbers). Alone it reaches the block threshold: card testing is the one pattern
  gateways block outright rather than send to review, since every try that reaches an issuer costs the merchant a
  fee and tells the tester which numbers work.
- ``amount_spike`` (``amount_spike_weight`` 30): the amount is over ``amount_spike_factor`` 5 times the mean of the
  card's earlier payments in the same currency within the window, once it has ``amount_spike_min_history`` 3 of them
  (too few payments make no baseline).
- ``large_first_payment`` (``large_first_payment_weight`` 30): the card's first payment within the window is at
  least ``large_first_payment_minor`` 50,000 minor units (500.00 of a two-decimal currency; a fraudster cashes a new
  card at once, an honest first payment is usually smaller). Counted in minor units whatever the currency.

The decision (``score`` is the sum of the weights of the rules that fired, capped at 100):

- ``review_threshold`` 50 and ``block_threshold`` 80: at or above 80 BLOCK, at or above 50 REVIEW, else ALLOW. With
  the weights above card testing alone blocks (80), every other rule alone is allowed (40, 30 or 30), and two of those
  together are reviewed (60, 70). ``block_threshold`` 101 never
  blocks (every score is at most 100): the switch that turns blocking off while still scoring.

Bounded memory:

- ``max_tracked_cards`` 100,000 and ``max_tracked_customers`` 100,000: windows kept (least recently used out when
  full; a window is dropped ``window_s`` after its last payment, when all its payments are out of it anyway). At the
  seed's 10K TPS scaled to one machine (a few hundred payments a second) 10 minutes hold about 100,000 payments.
- ``max_events_per_window`` 1,000: payments one window keeps (oldest out first): far above every rule's threshold,
  so a card under a flood stays at the cap instead of growing without bound.
- ``answer_ttl_s`` 3,600 and ``answer_cache_size`` 200,000: answers kept per ``payment_id``, so a retry of the same
  payment (the gateway resuming it, seed 000 line 522 "Idempotent APIs, retry with exponential backoff") gets the
  first answer and counts nothing twice. A retry after the answer left the cache is scored and counted again.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The rules, in the order an answer lists them.
RULES = ("card_velocity", "card_testing", "amount_spike", "large_first_payment")
#: The highest score (the sum of the rules that fired is capped at it).
MAX_SCORE = 100


class FraudSettings(BaseModel):
    """payments-fraud's knobs; every field optional (defaults and their reasons in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_s: float = Field(default=600.0, gt=0, le=86_400, description=(
        "Seconds a payment counts in its card's and its customer's windows."))
    card_velocity_max: int = Field(default=5, ge=1, le=10_000, description=(
        "card_velocity fires when the card has more than this many payments in the window (this one included)."))
    card_testing_min_cards: int = Field(default=3, ge=2, le=10_000, description=(
        "card_testing fires when the customer used at least this many distinct cards in the window (this one "
        "included)."))
    amount_spike_factor: float = Field(default=5.0, gt=1, le=1_000, description=(
        "amount_spike fires when the amount is over this many times the mean of the card's earlier payments (same "
        "currency, in the window)."))
    amount_spike_min_history: int = Field(default=3, ge=1, le=10_000, description=(
        "Earlier payments of the card (same currency, in the window) amount_spike needs before it may fire."))
    large_first_payment_minor: int = Field(default=50_000, ge=1, le=100_000_000, description=(
        "large_first_payment fires when the card's first payment in the window is at least this many minor units."))
    card_velocity_weight: int = Field(default=40, ge=0, le=MAX_SCORE, description="Points of card_velocity.")
    card_testing_weight: int = Field(default=80, ge=0, le=MAX_SCORE, description="Points of card_testing.")
    amount_spike_weight: int = Field(default=30, ge=0, le=MAX_SCORE, description="Points of amount_spike.")
    large_first_payment_weight: int = Field(default=30, ge=0, le=MAX_SCORE, description=(
        "Points of large_first_payment."))
    review_threshold: int = Field(default=50, ge=1, le=MAX_SCORE + 1, description=(
        "A score at or above it (and below block_threshold) is REVIEW; 101: never."))
    block_threshold: int = Field(default=80, ge=1, le=MAX_SCORE + 1, description=(
        "A score at or above it is BLOCK; 101: never (scores only)."))
    max_tracked_cards: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Card windows kept (least recently used out)."))
    max_tracked_customers: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Customer windows kept (least recently used out)."))
    max_events_per_window: int = Field(default=1_000, ge=2, le=1_000_000, description=(
        "Payments one window keeps (oldest out first)."))
    answer_ttl_s: float = Field(default=3_600.0, gt=0, le=7 * 86_400, description=(
        "Seconds an answer is kept for a repeat of its payment_id."))
    answer_cache_size: int = Field(default=200_000, ge=1, le=10_000_000, description=(
        "Answers kept for repeats (least recently used out)."))

    @model_validator(mode="after")
    def _check(self) -> FraudSettings:
        if self.review_threshold > self.block_threshold:
            raise ValueError("review_threshold must be at most block_threshold")
        needed = max(self.card_velocity_max + 1, self.card_testing_min_cards, self.amount_spike_min_history)
        if self.max_events_per_window < needed:
            raise ValueError(f"max_events_per_window must be at least {needed} (card_velocity_max + 1, "
                             "card_testing_min_cards and amount_spike_min_history), or the rules could never fire")
        return self

    def weight(self, rule: str) -> int:
        """The points of ``rule`` (one of :data:`RULES`)."""
        return getattr(self, f"{rule}_weight")
