"""payments-fraud (services/payments/fraud): each rule fires at its edge and not before, the score's cap, thresholds to
decisions, idempotent repeats, windows that expire with the clock, bounded memory, a hypothesis property against a
naive model of the windows, validation naming each field, and ScorePayment over real gRPC with the runtime's
authorization (payments-gateway only).
"""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import grpc
import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import fraud_pb2, fraud_pb2_grpc
from casemesh.services.payments.fraud import validation
from casemesh.services.payments.fraud.rules import FraudRules, Payment, Verdict
from casemesh.services.payments.fraud.service import DEFINITION, GATEWAY_CALLERS
from casemesh.services.payments.fraud.settings import RULES, FraudSettings
from casemesh.services.runtime.authorization import Authorizer, DeniedMetrics
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import InvalidArgument
from casemesh.services.runtime.identity import CallerIdentifier, TokenVerifier, service_identity
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.secrets import SERVICE_TOKEN
from casemesh.services.runtime.topology import Endpoint, Topology
from tests.caller_identity import TEST_SECRET, identified_channel

WAIT_S = 10.0
CARDS = [f"{i:x}" * 64 for i in range(1, 10)]  # "111…", "222…": 64 lower-case hex characters each
A, B, C, D = CARDS[:4]


class Clock:
    """A monotonic clock that moves only when told (seconds)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


_ids = itertools.count(1)


def payment(card: str = A, customer: str = "", amount: int = 1_000, currency: str = "USD", merchant: str = "m1",
            payment_id: str | None = None) -> Payment:
    return Payment(payment_id or f"pay_{next(_ids):024d}", merchant, card, customer, amount, currency)


def make(clock: Clock | None = None, **settings) -> tuple[FraudRules, Clock]:
    clock = clock or Clock()
    return FraudRules(FraudSettings(**settings), clock=clock), clock


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# ----------------------------------------------------------------------------- each rule at its edge


def test_card_velocity_fires_on_the_sixth_payment_in_the_window():
    rules, clock = make()
    for _ in range(5):
        assert rules.score(payment(A, "c1")) == Verdict(0, "allow", ())
        clock.advance(1)
    assert rules.score(payment(A, "c1")) == Verdict(40, "allow", ("card_velocity",))
    assert rules.score(payment(B, "c1")).rules == ()  # another card: its own window


def test_card_velocity_counts_the_card_across_merchants_and_customers():
    rules, _ = make()
    for i in range(5):
        assert rules.score(payment(A, f"c{i}", merchant=f"m{i}")).rules == ()
    assert rules.score(payment(A)).rules == ("card_velocity",)


def test_card_testing_fires_on_the_third_distinct_card_of_a_customer():
    rules, _ = make()
    assert rules.score(payment(A, "c1")).rules == ()
    assert rules.score(payment(B, "c1")).rules == ()
    assert rules.score(payment(A, "c1")).rules == ()  # the same two cards again
    assert rules.score(payment(C, "c1")) == Verdict(80, "block", ("card_testing",))
    assert rules.score(payment(D, "c1", merchant="m2")).rules == ()  # m2's c1 is another customer
    for card in (A, B, C, D):
        assert rules.score(payment(card)).rules == ()  # no customer: no customer window
    rules, _ = make(card_testing_min_cards=4)
    assert [rules.score(payment(card, "c1")).rules for card in (A, B, C, D)] == [(), (), (), ("card_testing",)]


def test_amount_spike_fires_over_the_factor_once_the_card_has_history():
    rules, _ = make()
    for _ in range(3):
        rules.score(payment(A, amount=1_000))
    assert rules.score(payment(A, amount=5_000)).rules == ()  # exactly 5 × the mean: not over it
    for _ in range(3):
        rules.score(payment(B, amount=1_000))
    assert rules.score(payment(B, amount=5_001)) == Verdict(30, "allow", ("amount_spike",))
    for _ in range(2):
        rules.score(payment(C, amount=1_000))
    assert rules.score(payment(C, amount=40_000)).rules == ()  # two earlier payments: no baseline yet


def test_amount_spike_compares_within_a_currency_and_uses_the_mean():
    rules, _ = make()
    for amount in (100, 200, 300):
        rules.score(payment(A, amount=amount, currency="EUR"))
    assert rules.score(payment(A, amount=40_000, currency="USD")).rules == ()  # no USD history
    assert rules.score(payment(A, amount=1_000, currency="EUR")).rules == ()  # mean 200: 5 × 200 is not exceeded
    rules2, _ = make()
    for amount in (100, 200, 300):
        rules2.score(payment(B, amount=amount, currency="EUR"))
    assert rules2.score(payment(B, amount=1_001, currency="EUR")).rules == ("amount_spike",)


def test_large_first_payment_fires_at_the_threshold_on_a_new_card_only():
    rules, _ = make()
    assert rules.score(payment(A, amount=49_999)).rules == ()
    assert rules.score(payment(B, amount=50_000)) == Verdict(30, "allow", ("large_first_payment",))
    assert rules.score(payment(B, amount=50_000)).rules == ()  # not its first payment any more
    assert rules.score(payment(A, amount=100_000)).rules == ()  # A paid before (49,999: history of 1, no spike)


# ----------------------------------------------------------------------------- score, cap and decisions


def test_the_score_is_capped_at_100_and_rules_come_in_order():
    rules, _ = make()
    for card in (B, C):
        rules.score(payment(card, "c1"))
    for _ in range(5):
        rules.score(payment(A, "c1", amount=100))
    verdict = rules.score(payment(A, "c1", amount=1_000))  # 6th on A, 3rd card of c1, 10 × A's mean
    assert verdict == Verdict(100, "block", ("card_velocity", "card_testing", "amount_spike"))  # 40 + 80 + 30, capped
    assert rules.score_of(RULES) == 100
    heavy, _ = make(card_velocity_weight=100, card_testing_weight=100, amount_spike_weight=100,
                    large_first_payment_weight=100)
    assert heavy.score_of(("card_velocity",)) == 100 and heavy.score_of(()) == 0


@pytest.mark.parametrize("score, decision", [(0, "allow"), (49, "allow"), (50, "review"), (79, "review"),
                                             (80, "block"), (100, "block")])
def test_default_thresholds(score, decision):
    assert make()[0].decide(score) == decision


def test_configured_thresholds_and_blocking_off():
    rules, _ = make(review_threshold=30, block_threshold=40)
    assert [rules.decide(s) for s in (29, 30, 39, 40)] == ["allow", "review", "review", "block"]
    never, _ = make(block_threshold=101)
    assert never.decide(100) == "review"
    quiet, _ = make(review_threshold=101, block_threshold=101)
    assert quiet.decide(100) == "allow"


def test_two_rules_review_or_block_with_the_default_weights():
    rules, _ = make()
    pairs = {("card_velocity", "amount_spike"): "review", ("amount_spike", "large_first_payment"): "review",
             ("card_velocity", "card_testing"): "block", ("card_testing", "amount_spike"): "block"}
    for fired, decision in pairs.items():
        assert rules.decide(rules.score_of(fired)) == decision
    # Alone, every rule but card_testing stays below the block threshold; card testing is blocked on its own.
    assert [rules.decide(rules.score_of((rule,))) for rule in RULES] == ["allow", "block", "allow", "allow"]


# ----------------------------------------------------------------------------- idempotency


def test_a_repeated_payment_id_gets_the_first_answer_and_counts_nothing_twice():
    rules, clock = make()
    allow_before = sample("casemesh_payments_fraud_decisions_total", {"decision": "allow"})
    repeats_before = sample("casemesh_payments_fraud_repeats_total")
    first = payment(A, "c1", payment_id="pay_" + "a" * 24)
    assert rules.score(first) == Verdict(0, "allow", ())
    for _ in range(9):
        clock.advance(1)
        assert rules.score(first) == Verdict(0, "allow", ())
    # Another card with the same id: still the first answer (and nothing counted for C or c1).
    assert rules.score(first._replace(card_fingerprint=C, amount_minor=90_000)) == Verdict(0, "allow", ())
    for _ in range(4):  # 2nd to 5th payment on A
        assert rules.score(payment(A, "c1")).rules == ()
    assert rules.score(payment(A, "c1")).rules == ("card_velocity",)  # the 6th: the repeats counted once
    assert rules.score(payment(B, "c1")).rules == ()  # c1's 2nd card: C was not counted
    assert sample("casemesh_payments_fraud_decisions_total", {"decision": "allow"}) == allow_before + 7
    assert sample("casemesh_payments_fraud_repeats_total") == repeats_before + 10


def test_an_answer_leaves_the_cache_after_its_ttl():
    rules, clock = make(answer_ttl_s=30, window_s=600)
    first = payment(A, payment_id="pay_" + "b" * 24)
    rules.score(first)
    clock.advance(29)
    rules.score(first)
    clock.advance(1)
    rules.score(first)  # scored again: a second payment on A
    for _ in range(3):
        rules.score(payment(A))
    assert rules.score(payment(A)).rules == ("card_velocity",)


# ----------------------------------------------------------------------------- windows


def test_windows_expire_with_the_clock():
    rules, clock = make(window_s=600)
    for _ in range(5):
        rules.score(payment(A, "c1", amount=1_000))
    rules.score(payment(B, "c1"))
    clock.advance(599)
    assert rules.score(payment(A, "c2")).rules == ("card_velocity",)  # the first five are still in
    clock.advance(1)  # the first five and c1's B are 600 s old: out
    assert rules.score(payment(A, "c2", amount=60_000)).rules == ()  # only the one at 599 s is left: not first either
    rules2, clock2 = make(window_s=600)
    for _ in range(5):
        rules2.score(payment(A, "c1", amount=1_000))
    rules2.score(payment(B, "c1"))
    clock2.advance(600)
    assert rules2.score(payment(A, "c1", amount=60_000)).rules == ("large_first_payment",)  # A forgotten: first again
    assert rules2.score(payment(C, "c1")).rules == ()  # c1's B forgotten: two cards, not three
    assert rules2.tracked == (2, 1)  # B's window dropped; A and C kept, c1 kept


def test_the_windows_slide():
    rules, clock = make(window_s=10)
    for _ in range(5):
        rules.score(payment(A))
        clock.advance(3)  # payments at 0, 3, 6, 9, 12; now 15
    assert rules.score(payment(A)).rules == ()  # at 15: 6, 9, 12 and this one are in (0 and 3 out)
    assert rules.score(payment(A)).rules == ()  # 5 in the window
    assert rules.score(payment(A)).rules == ("card_velocity",)  # 6


def test_memory_is_bounded():
    rules, _ = make(max_tracked_cards=3, max_tracked_customers=2, max_events_per_window=7)
    for card in CARDS:
        for customer in ("c1", "c2", "c3", "c4"):
            rules.score(payment(card, customer))
    cards, customers = rules.tracked
    assert cards <= 3 and customers <= 2
    for _ in range(100):
        verdict = rules.score(payment(A, "c9"))
    assert verdict.rules == ("card_velocity",)  # the cap keeps 6 earlier payments: still more than 5
    assert len(rules._cards[A]) <= 7


def test_settings_are_checked():
    with pytest.raises(ValidationError):
        FraudSettings(review_threshold=90, block_threshold=80)
    with pytest.raises(ValidationError):
        FraudSettings(max_events_per_window=5)  # card_velocity_max 5 needs room for 6
    with pytest.raises(ValidationError):
        FraudSettings(window=10)
    with pytest.raises(ValidationError):
        FraudSettings(card_velocity_weight=101)
    defaults = FraudSettings()
    assert (defaults.window_s, defaults.card_velocity_max, defaults.card_testing_min_cards,
            defaults.amount_spike_factor, defaults.large_first_payment_minor) == (600, 5, 3, 5, 50_000)
    assert [defaults.weight(rule) for rule in RULES] == [40, 80, 30, 30]
    assert (defaults.review_threshold, defaults.block_threshold) == (50, 80)


# ----------------------------------------------------------------------------- the property


@dataclass
class NaiveModel:
    """The rules recomputed from every payment ever scored (no windows, no aggregates, no caches)."""

    settings: FraudSettings
    events: list[tuple[float, Payment]] = field(default_factory=list)
    answers: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def score(self, now: float, p: Payment) -> tuple[str, ...]:
        if p.payment_id in self.answers:
            return self.answers[p.payment_id]
        s = self.settings
        recent = [e for t, e in self.events if t > now - s.window_s]
        card = [e for e in recent if e.card_fingerprint == p.card_fingerprint]
        fired = []
        if len(card) + 1 > s.card_velocity_max:
            fired.append("card_velocity")
        if p.customer_id:
            cards = {e.card_fingerprint for e in recent
                     if (e.merchant_id, e.customer_id) == (p.merchant_id, p.customer_id)} | {p.card_fingerprint}
            if len(cards) >= s.card_testing_min_cards:
                fired.append("card_testing")
        same = [e.amount_minor for e in card if e.currency_code == p.currency_code]
        if len(same) >= s.amount_spike_min_history and (
                p.amount_minor > Fraction(s.amount_spike_factor) * Fraction(sum(same), len(same))):
            fired.append("amount_spike")
        if not card and p.amount_minor >= s.large_first_payment_minor:
            fired.append("large_first_payment")
        self.events.append((now, p))
        self.answers[p.payment_id] = tuple(fired)
        return tuple(fired)


weights = st.integers(min_value=0, max_value=100)
steps = st.lists(st.tuples(
    st.integers(min_value=0, max_value=4),  # seconds to advance
    st.integers(min_value=0, max_value=3),  # card
    st.sampled_from(["", "c1", "c2"]),  # customer
    st.sampled_from(["m1", "m2"]),
    st.sampled_from([1, 100, 999, 1_000, 5_000, 5_001, 49_999, 50_000, 100_000_000]),
    st.sampled_from(["USD", "EUR"]),
    st.integers(min_value=0, max_value=40),  # payment id (repeats likely)
), max_size=60)


@hypothesis_settings(max_examples=150, deadline=None)
@given(weights, weights, weights, weights, st.integers(min_value=1, max_value=101),
       st.integers(min_value=0, max_value=100), steps)
def test_the_score_is_the_capped_sum_of_the_rules_listed(w1, w2, w3, w4, block, review_gap, script):
    review = max(1, block - review_gap)
    config = FraudSettings(window_s=10, card_velocity_max=3, card_testing_min_cards=2, amount_spike_min_history=2,
                           card_velocity_weight=w1, card_testing_weight=w2, amount_spike_weight=w3,
                           large_first_payment_weight=w4, review_threshold=review, block_threshold=block)
    clock = Clock(0.0)
    rules = FraudRules(config, clock=clock)
    model = NaiveModel(config)
    for advance, card, customer, merchant, amount, currency, pid in script:
        clock.advance(advance)
        p = Payment(f"pay_{pid:024d}", merchant, CARDS[card], customer, amount, currency)
        verdict = rules.score(p)
        assert 0 <= verdict.score <= 100
        assert verdict.score == min(100, sum(config.weight(rule) for rule in verdict.rules))
        assert list(verdict.rules) == [rule for rule in RULES if rule in verdict.rules]
        expected = "block" if verdict.score >= block else "review" if verdict.score >= review else "allow"
        assert verdict.decision == expected
        assert verdict.rules == model.score(clock.now, p)


# ----------------------------------------------------------------------------- validation


def request(**changes) -> fraud_pb2.ScorePaymentRequest:
    fields = {"payment_id": "pay_" + "a" * 24, "merchant_id": "m1", "card_fingerprint": A, "customer_id": "c1",
              "amount": money_pb2.Money(currency_code="USD", amount_minor=1_000), **changes}
    if fields["amount"] is None:
        del fields["amount"]
    return fraud_pb2.ScorePaymentRequest(**fields)


@pytest.mark.parametrize("changes, name", [
    ({"payment_id": ""}, "payment_id"),
    ({"payment_id": "pay_" + "a" * 23}, "payment_id"),
    ({"payment_id": "re_" + "a" * 24}, "payment_id"),
    ({"payment_id": "pay_" + "A" * 24}, "payment_id"),
    ({"merchant_id": ""}, "merchant_id"),
    ({"merchant_id": "m 1"}, "merchant_id"),
    ({"card_fingerprint": ""}, "card_fingerprint"),
    ({"card_fingerprint": "A" * 64}, "card_fingerprint"),  # upper-case hex
    ({"card_fingerprint": "a" * 63}, "card_fingerprint"),
    ({"card_fingerprint": "a" * 65}, "card_fingerprint"),
    ({"card_fingerprint": "g" * 64}, "card_fingerprint"),
    ({"customer_id": "c/1"}, "customer_id"),
    ({"customer_id": "c" * 65}, "customer_id"),
    ({"amount": None}, "amount"),
    ({"amount": money_pb2.Money(currency_code="usd", amount_minor=1)}, "amount.currency_code"),
    ({"amount": money_pb2.Money(amount_minor=1)}, "amount.currency_code"),
    ({"amount": money_pb2.Money(currency_code="USD")}, "amount.amount_minor"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=-5)}, "amount.amount_minor"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=100_000_001)}, "amount.amount_minor"),
])
def test_validation_names_the_field(changes, name):
    with pytest.raises(InvalidArgument) as error:
        validation.score_payment(request(**changes))
    assert error.value.field == name and str(error.value).startswith(f"{name}: ")


def test_validation_accepts_a_good_request_and_no_customer():
    assert validation.score_payment(request()) == Payment("pay_" + "a" * 24, "m1", A, "c1", 1_000, "USD")
    assert validation.score_payment(request(customer_id="")).customer_id == ""
    edge = money_pb2.Money(currency_code="JPY", amount_minor=100_000_000)
    assert validation.score_payment(request(amount=edge)).amount_minor == 100_000_000


def test_definition():
    assert DEFINITION.name == "payments-fraud" and DEFINITION.dependencies == ()
    assert GATEWAY_CALLERS == ("payments-gateway",)
    assert DEFINITION.access.public == frozenset()
    assert DEFINITION.access.internal == {"ScorePayment": GATEWAY_CALLERS}
    assert DEFINITION.settings_model is FraudSettings


# ----------------------------------------------------------------------------- over gRPC


@contextlib.asynccontextmanager
async def served(tmp_path: Path, settings: dict | None = None):
    """payments-fraud built by its DEFINITION on a loopback server with the runtime's interceptor and authorization
    (the tests' mesh secret); yields its address."""
    topology = Topology(services={"payments-fraud": Endpoint(address="127.0.0.1:1")}, data_dir=str(tmp_path),
                        settings={"payments-fraud": settings or {}})
    component = await DEFINITION.build(RuntimeContext(topology, secret=TEST_SECRET).for_service("payments-fraud"))
    authorizer = Authorizer([DEFINITION], CallerIdentifier(TokenVerifier(TEST_SECRET.keyring(SERVICE_TOKEN))),
                            metrics=DeniedMetrics(CollectorRegistry()))
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()),
                                                             authorizer=authorizer)])
    component.register(server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    await component.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)
        await component.stop()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_over_grpc_with_authorization(tmp_path):
    async with served(tmp_path, {"card_testing_min_cards": 2}) as address:
        channels = [identified_channel(address, TEST_SECRET, service_identity("payments-gateway")),
                    identified_channel(address, TEST_SECRET, service_identity("payments-vault")),
                    grpc.aio.insecure_channel(address)]
        try:
            gateway, vault, anonymous = (fraud_pb2_grpc.FraudServiceStub(channel) for channel in channels)
            first = await gateway.ScorePayment(request(amount=money_pb2.Money(currency_code="USD",
                                                                              amount_minor=50_000)), timeout=WAIT_S)
            assert (first.score, first.decision, list(first.rules)) == (
                30, fraud_pb2.FRAUD_DECISION_ALLOW, ["large_first_payment"])
            assert await gateway.ScorePayment(request(), timeout=WAIT_S) == first  # the same payment_id
            second = await gateway.ScorePayment(request(payment_id="pay_" + "b" * 24, card_fingerprint=B),
                                                timeout=WAIT_S)
            assert (second.score, second.decision, list(second.rules)) == (
                80, fraud_pb2.FRAUD_DECISION_BLOCK, ["card_testing"])  # the topology's settings apply
            code, details = await _code(gateway.ScorePayment(request(card_fingerprint="A" * 64), timeout=WAIT_S))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("card_fingerprint: ")
            for stub in (vault, anonymous):
                code, _ = await _code(stub.ScorePayment(request(), timeout=WAIT_S))
                assert code == grpc.StatusCode.PERMISSION_DENIED
        finally:
            for channel in channels:
                await channel.close()
