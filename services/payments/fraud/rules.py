"""The fraud rules: a weighted score over sliding windows of each card's and each customer's recent payments.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49, "Payment Gateway": "fraud detection"). The gateway asks
before it sends a payment to an acquirer; :class:`FraudRules` answers with a score from 0 to 100, the rules that
fired and a decision, in the manner of a processor's rule engine (Stripe Radar's rules, Adyen's RevenueProtect risk
rules: velocity, card testing, amount against the card's own history), here with four rules and fixed weights
(:mod:`.settings` gives them, their defaults and why):

1. ``card_velocity``: more than ``card_velocity_max`` payments on the card within the window (this one included);
2. ``card_testing``: the customer used at least ``card_testing_min_cards`` distinct cards within the window (this
   one included; a payment without ``customer_id`` has no customer window and never fires it);
3. ``amount_spike``: the amount is over ``amount_spike_factor`` × the mean of the card's earlier payments in the
   window in the same currency, once there are ``amount_spike_min_history`` of them;
4. ``large_first_payment``: the card has no earlier payment in the window and the amount is at least
   ``large_first_payment_minor``.

The score is the sum of the weights of the rules that fired, capped at 100; at or above ``block_threshold`` the
decision is BLOCK, at or above ``review_threshold`` REVIEW, else ALLOW. Every payment scored is then counted into its
windows, whatever the decision (a blocked attempt is still an attempt on the card).

The windows are in memory only (the proto says so: a restart forgets them and scores leniently until they refill),
bounded: a window is a ``deque`` of ``(time, ...)`` pruned from the left when its payments are older than
``window_s`` or exceed ``max_events_per_window``, with running aggregates (per currency count and sum for the card,
per card counts for the customer) kept as payments enter and leave, so a score costs O(1) amortised; the windows
live in ``cachetools.TTLCache`` maps (a window dropped ``window_s`` after its last payment, least recently used out
beyond ``max_tracked_cards`` / ``max_tracked_customers``).

Idempotent per ``payment_id``: the answers live in a TTL cache (``answer_ttl_s``, ``answer_cache_size``); a repeat
gets the first answer and counts nothing into the windows twice.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from typing import NamedTuple

from cachetools import TTLCache

from casemesh.payments.v1 import fraud_pb2

from . import metrics
from .settings import MAX_SCORE, RULES, FraudSettings

CARD_VELOCITY, CARD_TESTING, AMOUNT_SPIKE, LARGE_FIRST_PAYMENT = RULES
#: Decision name (metrics label) → the proto's FraudDecision.
DECISIONS: dict[str, int] = {
    "allow": fraud_pb2.FRAUD_DECISION_ALLOW,
    "review": fraud_pb2.FRAUD_DECISION_REVIEW,
    "block": fraud_pb2.FRAUD_DECISION_BLOCK,
}


class Payment(NamedTuple):
    """What the rules see of a payment (a valid ScorePaymentRequest): ``customer_id`` may be ``""`` (none);
    ``amount_minor`` in minor units of ``currency_code``."""

    payment_id: str
    merchant_id: str
    card_fingerprint: str
    customer_id: str
    amount_minor: int
    currency_code: str


class Verdict(NamedTuple):
    """An answer: ``score`` 0 to 100, ``decision`` (``allow``, ``review``, ``block``), the ``rules`` that fired in
    :data:`~.settings.RULES` order."""

    score: int
    decision: str
    rules: tuple[str, ...]

    def to_proto(self) -> fraud_pb2.ScorePaymentResponse:
        """The ScorePaymentResponse of this verdict."""
        return fraud_pb2.ScorePaymentResponse(score=self.score, decision=DECISIONS[self.decision],
                                              rules=list(self.rules))


class CardWindow:
    """One card's payments in the window: ``(time_s, amount_minor, currency_code)`` oldest first, and per currency
    ``[count, sum of amounts]`` of them."""

    __slots__ = ("events", "totals")

    def __init__(self) -> None:
        self.events: deque[tuple[float, int, str]] = deque()
        self.totals: dict[str, list[int]] = {}

    def prune(self, horizon: float, cap: int) -> None:
        """Drop payments at or before ``horizon`` and the oldest beyond ``cap - 1`` (room for one more)."""
        events = self.events
        while events and (events[0][0] <= horizon or len(events) >= cap):
            _, amount, currency = events.popleft()
            total = self.totals[currency]
            total[0] -= 1
            total[1] -= amount
            if total[0] == 0:
                del self.totals[currency]

    def add(self, at: float, amount_minor: int, currency_code: str) -> None:
        self.events.append((at, amount_minor, currency_code))
        total = self.totals.setdefault(currency_code, [0, 0])
        total[0] += 1
        total[1] += amount_minor

    def history(self, currency_code: str) -> tuple[int, int]:
        """``(count, sum)`` of the payments in ``currency_code``."""
        count, amount = self.totals.get(currency_code, (0, 0))
        return count, amount

    def __len__(self) -> int:
        return len(self.events)


class CustomerWindow:
    """One customer's payments in the window: ``(time_s, card_fingerprint)`` oldest first, and the count per card."""

    __slots__ = ("cards", "events")

    def __init__(self) -> None:
        self.events: deque[tuple[float, str]] = deque()
        self.cards: Counter[str] = Counter()

    def prune(self, horizon: float, cap: int) -> None:
        """Drop payments at or before ``horizon`` and the oldest beyond ``cap - 1`` (room for one more)."""
        events = self.events
        while events and (events[0][0] <= horizon or len(events) >= cap):
            _, card = events.popleft()
            self.cards[card] -= 1
            if not self.cards[card]:
                del self.cards[card]

    def add(self, at: float, card_fingerprint: str) -> None:
        self.events.append((at, card_fingerprint))
        self.cards[card_fingerprint] += 1

    def distinct_with(self, card_fingerprint: str) -> int:
        """Distinct cards in the window, counting ``card_fingerprint`` in."""
        return len(self.cards) + (card_fingerprint not in self.cards)


class FraudRules:
    """The rules of the module docstring under ``settings``; ``clock()`` is a monotonic time in seconds
    (injectable for tests). Not thread-safe: one event loop calls it (each call runs to its end without awaiting)."""

    def __init__(self, settings: FraudSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._cards: TTLCache[str, CardWindow] = TTLCache(settings.max_tracked_cards, settings.window_s, timer=clock)
        self._customers: TTLCache[tuple[str, str], CustomerWindow] = TTLCache(
            settings.max_tracked_customers, settings.window_s, timer=clock)
        self._answers: TTLCache[str, Verdict] = TTLCache(settings.answer_cache_size, settings.answer_ttl_s,
                                                         timer=clock)
        self._weights = {rule: settings.weight(rule) for rule in RULES}

    @property
    def tracked(self) -> tuple[int, int]:
        """``(cards, customers)`` whose windows are kept (expired ones may linger until the next write)."""
        return len(self._cards), len(self._customers)

    def decide(self, score: int) -> str:
        """``block``, ``review`` or ``allow`` for ``score`` under the thresholds."""
        if score >= self.settings.block_threshold:
            return "block"
        if score >= self.settings.review_threshold:
            return "review"
        return "allow"

    def score_of(self, rules: tuple[str, ...]) -> int:
        """The sum of the weights of ``rules``, capped at 100."""
        return min(MAX_SCORE, sum(self._weights[rule] for rule in rules))

    def score(self, payment: Payment) -> Verdict:
        """Score ``payment`` and count it into its windows; a ``payment_id`` scored before gets its first answer and
        is counted nothing twice."""
        answer = self._answers.get(payment.payment_id)
        if answer is not None:
            metrics.repeated()
            return answer
        settings = self.settings
        now = self._clock()
        horizon = now - settings.window_s
        cap = settings.max_events_per_window

        card = self._cards.get(payment.card_fingerprint)
        if card is None:
            card = CardWindow()
        card.prune(horizon, cap)
        customer: CustomerWindow | None = None
        if payment.customer_id:
            customer_key = (payment.merchant_id, payment.customer_id)
            customer = self._customers.get(customer_key)
            if customer is None:
                customer = CustomerWindow()
            customer.prune(horizon, cap)

        fired: list[str] = []
        if len(card) + 1 > settings.card_velocity_max:
            fired.append(CARD_VELOCITY)
        if customer is not None and customer.distinct_with(payment.card_fingerprint) >= settings.card_testing_min_cards:
            fired.append(CARD_TESTING)
        count, total = card.history(payment.currency_code)
        # amount > factor × (total / count), without dividing.
        if count >= settings.amount_spike_min_history and payment.amount_minor * count > settings.amount_spike_factor * total:
            fired.append(AMOUNT_SPIKE)
        if not len(card) and payment.amount_minor >= settings.large_first_payment_minor:
            fired.append(LARGE_FIRST_PAYMENT)

        rules = tuple(fired)
        score = self.score_of(rules)
        verdict = Verdict(score, self.decide(score), rules)

        card.add(now, payment.amount_minor, payment.currency_code)
        self._cards[payment.card_fingerprint] = card  # (re)sets its expiry: window_s after its last payment
        if customer is not None:
            customer.add(now, payment.card_fingerprint)
            self._customers[customer_key] = customer
        self._answers[payment.payment_id] = verdict
        metrics.scored(verdict.decision, score, rules)
        return verdict
