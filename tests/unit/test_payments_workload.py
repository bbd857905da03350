"""The payments workload without a mesh: the run's card pool (valid Luhn numbers, deterministic from the run's seed),
seeding through a fake vault, the retry schedule (same key, exponential backoff with full jitter, bounded), the
no-double-charge checks given fake answers, the journeys against a fake gateway (retries, double clicks, holds,
refunds, a card-testing bot, a gateway that double charges), the end-of-run settlement check, the profile and its
SLOs, and that the workload imports only the contracts."""

from __future__ import annotations

import ast
import asyncio
import hashlib
import itertools
import random
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, ValidationError
from stdnum import luhn

from casemesh.common.v1 import money_pb2
from casemesh.harness import workloads as workloads_module
from casemesh.harness.profile import PROFILES_DIR, ProfileDocument, load_profile
from casemesh.harness.slo import load_slos
from casemesh.harness.workloads.idempotent_retry import RETRIED, RetryParams, backoff_ceiling_s, backoff_s, send
from casemesh.harness.workloads.payments import MEASURES, WORKLOAD, connect, disconnect
from casemesh.harness.workloads.payments.cards import BRANDS, card_number, card_pool, declining_cards
from casemesh.harness.workloads.payments.invariants import (
    DATA_LOSS,
    OK,
    SINGLE_CHARGE,
    Expected,
    Tally,
    check_payment,
    record,
    same_payment,
)
from casemesh.harness.workloads.payments.journeys import (
    ALLOWED,
    APPROVED,
    CARD_TESTING_BLOCKED,
    CHECKOUT_OUTCOME,
    CHECKOUT_TIME,
    CardTestingParams,
    CheckoutParams,
    HoldParams,
    RefundParams,
    card_testing,
    checkout,
    draw_amount,
    hold_then_capture,
    refund,
    refund_plan,
)
from casemesh.harness.workloads.payments.live import SETTLEMENT, GatewayStub, Payments
from casemesh.harness.workloads.payments.seeding import SeedParams, plan, seed
from casemesh.payments.v1 import gateway_pb2, payments_pb2, settlement_pb2, vault_pb2
from casemesh.services.catalog import SERVICES
from casemesh.services.payments.contract import TEST_CARDS, card_brand, is_card_number, is_gateway_id, is_id

WORKLOAD_DIR = Path(__file__).resolve().parents[2] / "harness" / "workloads" / "payments"
PAYMENTS_SERVICES = ("payments-vault", "payments-fraud", "payments-psp-a", "payments-psp-b", "payments-gateway")
S = payments_pb2
NOW = datetime(2026, 3, 1, tzinfo=UTC)


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details)


# cards ----------------------------------------------------------------------------------------------------------------

def test_the_card_pool_is_luhn_valid_distinct_and_deterministic_from_the_run():
    pool = card_pool("0badcafe", 2_000, NOW)
    numbers = [c.number for c in pool]
    assert len(set(numbers)) == 2_000
    for c in pool:
        assert is_card_number(c.number) and luhn.is_valid(c.number) and c.number not in TEST_CARDS
        assert len(c.number) == (15 if c.brand == "amex" else 16) and len(c.cvc) == (4 if c.brand == "amex" else 3)
        assert 1 <= c.exp_month <= 12 and NOW.year + 1 <= c.exp_year <= NOW.year + 5 and not c.test_card
    brands = {b: sum(c.brand == b for c in pool) / len(pool) for b, *_ in BRANDS}
    assert brands["visa"] == pytest.approx(0.55, abs=0.05) and brands["mastercard"] == pytest.approx(0.35, abs=0.05)
    assert brands["amex"] == pytest.approx(0.10, abs=0.03)
    assert card_pool("0badcafe", 2_000, NOW) == pool  # the run's seed fixes the pool
    assert card_pool("0badcafe", 50, NOW) == pool[:50]
    assert not set(numbers) & {c.number for c in card_pool("0badcaff", 2_000, NOW)}


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32), brand=st.sampled_from([None, "visa", "mastercard", "amex"]))
def test_every_generated_number_passes_the_contract(seed: int, brand: str | None):
    number = card_number(random.Random(seed), brand)
    assert is_card_number(number) and number not in TEST_CARDS
    if brand is not None:
        assert card_brand(number) == brand
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert not is_card_number(wrong)  # one wrong digit breaks the check digit


def test_the_declining_cards_are_the_contract_s_test_cards():
    cards = declining_cards(random.Random(1), NOW)
    assert [c.number for c in cards] == list(TEST_CARDS) and all(c.test_card and c.exp_year > NOW.year for c in cards)
    with pytest.raises(ValueError, match="unknown brand"):
        card_number(random.Random(1), "diners")


# seeding --------------------------------------------------------------------------------------------------------------

def test_the_seed_plan_is_deterministic_with_valid_ids_and_wallets_of_one_or_two_cards():
    params = SeedParams(merchants=3, customers_per_merchant=400, test_card_share=0.05)
    run, merchants, customers = plan(params, random.Random(42))
    assert (run, merchants, customers) == plan(params, random.Random(42))
    assert plan(params, random.Random(43))[0] != run
    assert [m.merchant_id for m in merchants] == [f"pm{run}-m{i}" for i in range(3)]
    assert [m.currency for m in merchants] == ["USD", "EUR", "GBP"]
    assert len(customers) == 1_200 and len({c.customer_id for c in customers}) == 1_200
    assert all(is_id(c.customer_id) and c.customer_id.startswith(c.merchant.merchant_id) for c in customers)
    tests = [c for c in customers if c.test_card]
    assert 30 <= len(tests) <= 95 and all(len(c.cards) == 1 for c in tests)
    assert {c.cards[0].number for c in tests} == set(TEST_CARDS)
    others = [c for c in customers if not c.test_card]
    assert {len(c.cards) for c in others} == {1, 2}
    assert 0.2 < sum(len(c.cards) == 2 for c in others) / len(others) < 0.4
    numbers = [card.number for c in others for card in c.cards]
    assert len(set(numbers)) == len(numbers) and all(is_card_number(n) for n in numbers)  # one card, one person
    with pytest.raises(ValidationError, match="currency code"):
        SeedParams(currencies=("usd",))


async def test_seed_tokenizes_every_card_for_its_merchant_and_retries_an_unavailable_vault():
    requests: list[vault_pb2.TokenizeCardRequest] = []
    failures = [rpc_error(grpc.StatusCode.UNAVAILABLE, "restarting")]
    count = itertools.count()

    async def call(service: str, method: str, request: Any) -> Any:
        assert (service, method) == ("payments-vault", "TokenizeCard")
        requests.append(request)
        if failures:
            raise failures.pop()
        return vault_pb2.TokenizeCardResponse(card_token=f"tok_{next(count):024d}")

    params = SeedParams(merchants=2, customers_per_merchant=20, tokenize_concurrency=4)
    state = await seed(call, params, random.Random(7))
    _, _, plans = plan(params, random.Random(7))
    assert len(requests) == sum(len(p.cards) for p in plans) + 1  # the one retry
    assert [(c.customer_id, c.merchant_id, len(c.tokens)) for c in state.customers] == \
        [(p.customer_id, p.merchant.merchant_id, len(p.cards)) for p in plans]
    tokens = [t for c in state.customers for t in c.tokens]
    assert len(set(tokens)) == len(tokens) and all(is_gateway_id(t, "tok_") for t in tokens)
    by_number = {r.card_number: r for r in requests}
    for p in plans:
        for card in p.cards:
            assert by_number[card.number].merchant_id == p.merchant.merchant_id
            assert by_number[card.number].cvc == card.cvc

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.INVALID_ARGUMENT, "card_number")

    with pytest.raises(grpc.aio.AioRpcError):
        await seed(refused, params, random.Random(7))


# the retry schedule ---------------------------------------------------------------------------------------------------

def test_the_backoff_ceiling_doubles_from_the_base_up_to_the_cap():
    assert [backoff_ceiling_s(n, 0.1, 2.0) for n in range(1, 8)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0])
    assert backoff_ceiling_s(500, 0.1, 2.0) == 2.0


@settings(max_examples=200, deadline=None)
@given(failures=st.integers(1, 40), base=st.floats(0.001, 5), cap=st.floats(0.001, 60), seed=st.integers(0, 999))
def test_full_jitter_draws_between_zero_and_the_ceiling(failures: int, base: float, cap: float, seed: int):
    assert 0 <= backoff_s(failures, base, cap, random.Random(seed)) <= min(cap, base * 2 ** (failures - 1)) + 1e-12


def test_full_jitter_spreads_the_pauses_over_the_whole_interval():
    rng = random.Random(3)
    draws = [backoff_s(3, 0.1, 2.0, rng) for _ in range(4_000)]
    assert max(draws) <= 0.4 and min(draws) < 0.01 and sum(draws) / len(draws) == pytest.approx(0.2, abs=0.01)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


async def test_send_retries_the_same_request_on_transient_codes_and_stops_at_an_answer():
    answers: list[Any] = [rpc_error(grpc.StatusCode.UNAVAILABLE), rpc_error(grpc.StatusCode.ABORTED),
                          rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED), "answer"]
    seen: list[Any] = []

    async def call(service: str, method: str, request: Any) -> Any:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    clock = FakeClock()
    request = gateway_pb2.AuthorizeRequest(idempotency_key="checkout-1", merchant_id="m")
    outcome = await send(call, "payments-gateway", "Authorize", request, RetryParams(), random.Random(1),
                         clock=clock, sleep=clock.sleep)
    assert outcome.answered and outcome.response == "answer" and outcome.code == "OK" and outcome.known
    assert outcome.codes == ["UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED", "OK"] and outcome.attempts == 4
    assert all(r is request for r in seen)  # the same request: the same idempotency key
    assert len(clock.sleeps) == 3 and all(0 <= s <= c for s, c in zip(clock.sleeps, (0.1, 0.2, 0.4), strict=True))
    assert outcome.elapsed_s == pytest.approx(sum(clock.sleeps))
    assert {c.name for c in RETRIED} == {"UNAVAILABLE", "ABORTED", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"}


async def test_send_is_bounded_in_attempts_and_in_time_and_does_not_retry_a_refusal():
    async def down(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.UNAVAILABLE)

    clock = FakeClock()
    outcome = await send(down, "s", "M", None, RetryParams(max_attempts=3), random.Random(2), clock=clock,
                         sleep=clock.sleep)
    assert outcome.codes == ["UNAVAILABLE"] * 3 and not outcome.answered and not outcome.known
    assert outcome.code == "UNAVAILABLE" and len(clock.sleeps) == 2
    clock = FakeClock()
    slow = RetryParams(max_attempts=10, backoff_base_ms=1_000, backoff_cap_ms=60_000, retry_within_s=3)
    outcome = await send(down, "s", "M", None, slow, random.Random(2), clock=clock, sleep=clock.sleep)
    assert clock.now - 100.0 <= 3 + 1e-9 and outcome.attempts < 10  # no retry starts after retry_within_s

    async def refused(service: str, method: str, request: Any) -> Any:
        raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "idempotency_key: used for a different request")

    clock = FakeClock()
    outcome = await send(refused, "s", "M", None, RetryParams(), random.Random(2), clock=clock, sleep=clock.sleep)
    assert outcome.codes == ["FAILED_PRECONDITION"] and clock.sleeps == [] and outcome.known
    with pytest.raises(ValidationError, match="backoff_base_ms"):
        RetryParams(backoff_base_ms=5_000, backoff_cap_ms=1_000)


# the invariant checks ---------------------------------------------------------------------------------------------------

def _payment(status: int = S.PAYMENT_STATUS_CAPTURED, amount: int = 1_000, captured: int = 1_000, refunded: int = 0,
             attempts: tuple[tuple[str, int], ...] = (("payments-psp-a", S.ATTEMPT_STATE_APPROVED),),
             acquirer: str = "payments-psp-a", payment_id: str = "pay_" + "a" * 24) -> payments_pb2.Payment:
    return payments_pb2.Payment(
        payment_id=payment_id, merchant_id="m1", amount=money_pb2.Money(currency_code="USD", amount_minor=amount),
        captured_minor=captured, refunded_minor=refunded, status=status, acquirer=acquirer,
        attempts=[payments_pb2.Attempt(acquirer=a, reference=f"{payment_id}.{i}", state=s)
                  for i, (a, s) in enumerate(attempts, 1)])


SALE = Expected("m1", 1_000, "USD", S.PAYMENT_STATUS_CAPTURED, 1_000)


def test_a_consistent_payment_has_no_problems():
    assert check_payment(SALE, _payment(), "pay_" + "a" * 24) == []
    failed_over = _payment(attempts=(("payments-psp-a", S.ATTEMPT_STATE_REVERSED),
                                     ("payments-psp-b", S.ATTEMPT_STATE_APPROVED)), acquirer="payments-psp-b")
    assert check_payment(SALE, failed_over, "pay_" + "a" * 24) == []
    declined = _payment(S.PAYMENT_STATUS_DECLINED, captured=0, acquirer="",
                        attempts=(("payments-psp-a", S.ATTEMPT_STATE_REVERSING), ("payments-psp-b", S.ATTEMPT_STATE_DECLINED)))
    assert check_payment(Expected("m1", 1_000, "USD", S.PAYMENT_STATUS_DECLINED), declined, "pay_" + "a" * 24) == []
    assert same_payment(["pay_x", "pay_x", "pay_x"]) == []


def test_a_double_charge_is_flagged():
    key_id = "pay_" + "a" * 24
    both = _payment(attempts=(("payments-psp-a", S.ATTEMPT_STATE_APPROVED), ("payments-psp-b", S.ATTEMPT_STATE_APPROVED)))
    assert any("2 approved authorizations" in p for p in check_payment(SALE, both, key_id))
    twice = _payment(captured=2_000)
    problems = check_payment(SALE, twice, key_id)
    assert any("captured 2000, the client captured 1000" in p for p in problems)
    assert any("above the 1000 authorised" in p for p in problems)
    assert same_payment(["pay_x", "pay_y"]) == ["one key answered with 2 payments: pay_x, pay_y"]
    declined_but_held = _payment(S.PAYMENT_STATUS_DECLINED, captured=0)
    assert any("DECLINED with an approved" in p
               for p in check_payment(Expected("m1", 1_000, "USD", S.PAYMENT_STATUS_DECLINED), declined_but_held, key_id))
    held_nowhere = _payment(attempts=(("payments-psp-a", S.ATTEMPT_STATE_REVERSING),))
    assert any("without an approved" in p for p in check_payment(SALE, held_nowhere, key_id))
    elsewhere = _payment(acquirer="payments-psp-b")
    assert any("held at 'payments-psp-b' but approved at 'payments-psp-a'" in p
               for p in check_payment(SALE, elsewhere, key_id))
    over_refunded = _payment(S.PAYMENT_STATUS_REFUNDED, refunded=1_500)
    assert any("above the 1000 captured" in p
               for p in check_payment(Expected("m1", 1_000, "USD", S.PAYMENT_STATUS_REFUNDED, 1_000, 1_000),
                                      over_refunded, key_id))
    other = _payment(payment_id="pay_" + "b" * 24)
    assert any("GetPayment returned" in p for p in check_payment(SALE, other, key_id))
    caller = FakeCaller(FakeGateway())
    assert record(caller, "k1", key_id, ["boom"]) == DATA_LOSS and record(caller, "k2", key_id, []) == OK
    assert caller.codes(SINGLE_CHARGE) == [DATA_LOSS, OK]


def test_the_tally_nets_captures_and_refunds_and_knows_when_it_is_uncertain():
    tally = Tally()
    tally.begin()
    tally.capture("USD", 1_000)
    tally.refund("USD", 400)
    tally.capture("EUR", 50)
    tally.refund("EUR", 50)
    assert tally.uncertain
    tally.end(True)
    assert not tally.uncertain and tally.net() == {"USD": 600}
    tally.begin()
    tally.end(False)
    assert tally.uncertain


# the journeys against a fake gateway ------------------------------------------------------------------------------------

class FakeGateway:
    """PaymentGatewayService (and CardVaultService.TokenizeCard) in memory, idempotent per (merchant, operation, key) as
    gateway.proto says: a repeat returns the stored answer, a repeat while in flight is ABORTED. ``fail`` holds codes
    raised by the next calls of a method; ``lose`` the methods whose next call is processed and then answered
    UNAVAILABLE (a lost answer). ``idempotent=False`` makes a new payment for every call (a double charge);
    ``double_approve`` approves at both acquirers. The fraud rules block a customer's payment once it has used
    ``block_after`` distinct cards; tokens in ``declining`` are declined by the issuer."""

    def __init__(self, *, idempotent: bool = True, double_approve: bool = False, block_after: int | None = None,
                 declining: frozenset[str] = frozenset(), in_flight_s: float = 0.003) -> None:
        self.idempotent = idempotent
        self.double_approve = double_approve
        self.block_after = block_after
        self.declining = declining
        self.in_flight_s = in_flight_s
        self.payments: dict[str, payments_pb2.Payment] = {}
        self.answers: dict[tuple[str, str, str], Any] = {}
        self.in_flight: set[tuple[str, str, str]] = set()
        self.cards: dict[str, set[str]] = {}
        self.fail: dict[str, list[grpc.StatusCode]] = {}
        self.lose: set[str] = set()
        self.calls: list[tuple[str, Any]] = []
        self.tokens = itertools.count()
        self.refunds = itertools.count()
        self.created = itertools.count()

    async def handle(self, method: str, request: Any) -> Any:
        self.calls.append((method, request))
        codes = self.fail.get(method)
        if codes:
            raise rpc_error(codes.pop(0), "injected")
        if method == "TokenizeCard":
            assert is_card_number(request.card_number)
            return vault_pb2.TokenizeCardResponse(card_token=f"tok_{next(self.tokens):024d}")
        if method == "GetPayment":
            return gateway_pb2.GetPaymentResponse(payment=self.payments[request.payment_id])
        key = (request.merchant_id, method, request.idempotency_key)
        if self.idempotent:
            if key in self.in_flight:
                raise rpc_error(grpc.StatusCode.ABORTED, "in flight")
            if key in self.answers:
                return self.answers[key]
        self.in_flight.add(key)
        try:
            await asyncio.sleep(self.in_flight_s)
            answer = getattr(self, f"_{method.lower()}")(request)
        finally:
            self.in_flight.discard(key)
        self.answers[key] = answer
        if method in self.lose:
            self.lose.discard(method)
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "answer lost")
        return answer

    def net(self) -> dict[str, int]:
        """Per currency, captured less refunded over every payment: what the acquirers' files would settle."""
        net: dict[str, int] = {}
        for payment in self.payments.values():
            currency = payment.amount.currency_code
            net[currency] = net.get(currency, 0) + payment.captured_minor - payment.refunded_minor
        return net

    def _payment_id(self, request: gateway_pb2.AuthorizeRequest) -> str:
        seed = request.idempotency_key if self.idempotent else f"{request.idempotency_key}/{next(self.created)}"
        return "pay_" + hashlib.sha256(f"{request.merchant_id}/{seed}".encode()).hexdigest()[:24]

    def _authorize(self, request: gateway_pb2.AuthorizeRequest) -> gateway_pb2.AuthorizeResponse:
        payment_id = self._payment_id(request)
        payment = payments_pb2.Payment(payment_id=payment_id, merchant_id=request.merchant_id, amount=request.amount)
        cards = self.cards.setdefault(request.customer_id, set())
        cards.add(request.card_token)
        if self.block_after is not None and len(cards) > self.block_after:
            payment.status, payment.decline_reason, payment.decline_code = (
                S.PAYMENT_STATUS_DECLINED, S.DECLINE_REASON_FRAUD, "fraud_blocked")
        elif request.card_token in self.declining:
            payment.status, payment.decline_reason, payment.decline_code = (
                S.PAYMENT_STATUS_DECLINED, S.DECLINE_REASON_ISSUER, "card_declined")
            payment.attempts.add(acquirer="payments-psp-a", reference=f"{payment_id}.1", state=S.ATTEMPT_STATE_DECLINED)
        else:
            payment.attempts.add(acquirer="payments-psp-a", reference=f"{payment_id}.1", state=S.ATTEMPT_STATE_APPROVED)
            if self.double_approve:
                payment.attempts.add(acquirer="payments-psp-b", reference=f"{payment_id}.2",
                                     state=S.ATTEMPT_STATE_APPROVED)
            payment.acquirer = "payments-psp-a"
            payment.status = S.PAYMENT_STATUS_CAPTURED if request.capture else S.PAYMENT_STATUS_AUTHORIZED
            payment.captured_minor = request.amount.amount_minor if request.capture else 0
        self.payments[payment_id] = payment
        return gateway_pb2.AuthorizeResponse(payment=payment)

    def _capture(self, request: gateway_pb2.CaptureRequest) -> gateway_pb2.CaptureResponse:
        payment = self.payments[request.payment_id]
        if payment.status != S.PAYMENT_STATUS_AUTHORIZED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not AUTHORIZED")
        payment.captured_minor = request.amount_minor or payment.amount.amount_minor
        payment.status = S.PAYMENT_STATUS_CAPTURED
        return gateway_pb2.CaptureResponse(payment=payment)

    def _void(self, request: gateway_pb2.VoidRequest) -> gateway_pb2.VoidResponse:
        payment = self.payments[request.payment_id]
        payment.status, payment.acquirer = S.PAYMENT_STATUS_VOIDED, ""
        return gateway_pb2.VoidResponse(payment=payment)

    def _refund(self, request: gateway_pb2.RefundRequest) -> gateway_pb2.RefundResponse:
        payment = self.payments[request.payment_id]
        amount = request.amount_minor or payment.captured_minor - payment.refunded_minor
        payment.refunded_minor += amount
        if payment.refunded_minor == payment.captured_minor:
            payment.status = S.PAYMENT_STATUS_REFUNDED
        return gateway_pb2.RefundResponse(refund_id=f"re_{next(self.refunds):024d}", payment=payment,
                                          amount=money_pb2.Money(currency_code=payment.amount.currency_code,
                                                                 amount_minor=amount))


class FakeCaller:
    """A journey's Caller over a :class:`FakeGateway`: calls and measures recorded."""

    def __init__(self, gateway: FakeGateway) -> None:
        self.gateway = gateway
        self.requests: list[tuple[str, str, Any]] = []
        self.observed: list[tuple[str, float, str]] = []
        self._intended = time.perf_counter()

    @property
    def intended_at(self) -> float:
        return self._intended

    async def __call__(self, service: str, method: str, request: Any) -> Any:
        self.requests.append((service, method, request))
        return await self.gateway.handle(method, request)

    def observe(self, name: str, latency_s: float, code: str = "OK") -> None:
        self.observed.append((name, latency_s, code))

    def codes(self, name: str) -> list[str]:
        return [c for n, _, c in self.observed if n == name]

    def methods(self) -> list[str]:
        return [m for _, m, _ in self.requests]


class FakeStreams:
    """What ``connect`` gets: share, unrecorded calls (Reconcile answers by list), observed measures."""

    def __init__(self, reconciles: list[Any] | None = None, share: tuple[int, int] = (0, 1)) -> None:
        self.share = share
        self.reconciles = list(reconciles or [])
        self.calls: list[tuple[str, str, float | None]] = []
        self.observed: list[tuple[str, float, str]] = []

    async def call(self, service: str, method: str, request: Any, *, timeout_s: float | None = None) -> Any:
        self.calls.append((service, method, timeout_s))
        answer = self.reconciles.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def observe(self, name: str, latency_s: float, code: str = "OK", *, sent_at: float) -> None:
        self.observed.append((name, latency_s, code))


async def no_wait(seconds: float) -> None:
    """Backoffs, stays and refund delays in tests: any pause is 2 ms (longer than none, so a double click's retry
    comes after the first send's 3 ms in flight only on its later attempts)."""
    await asyncio.sleep(0.002 if seconds > 0 else 0)


def _live(streams: FakeStreams | None = None, customers_per_merchant: int = 30, **seed: Any) -> Payments:
    params = SeedParams(merchants=2, customers_per_merchant=customers_per_merchant, **seed)
    run, merchants, plans = plan(params, random.Random(5))
    from casemesh.harness.workloads.payments.seeding import Customer, State

    tokens = itertools.count()
    customers = [Customer(p.customer_id, p.merchant.merchant_id, p.merchant.currency,
                          tuple(f"tok_{next(tokens):024d}" for _ in p.cards), p.test_card) for p in plans]
    return Payments(streams or FakeStreams(), State(run, merchants, customers), params, sleep=no_wait)


async def test_a_checkout_is_one_captured_payment_checked_consistent():
    gateway = FakeGateway()
    caller = FakeCaller(gateway)
    live = _live()
    await checkout(caller, CheckoutParams(double_submit_p=0.0), live, random.Random(1))
    assert caller.methods() == ["Authorize", "GetPayment"]
    request = caller.requests[0][2]
    assert request.capture and request.idempotency_key.startswith("checkout-") and is_id(request.customer_id)
    customer = next(c for c in live.state.customers if c.customer_id == request.customer_id)
    assert request.merchant_id == customer.merchant_id and request.card_token in customer.tokens
    assert request.amount.currency_code == customer.currency and 100 <= request.amount.amount_minor <= 500_000
    assert caller.codes(CHECKOUT_TIME) == [OK] and caller.codes(CHECKOUT_OUTCOME) == [APPROVED]
    assert caller.codes(SINGLE_CHARGE) == [OK]
    assert live.tally.net() == {customer.currency: request.amount.amount_minor} and not live.tally.uncertain


async def test_a_retry_after_a_lost_answer_reuses_the_key_and_finds_the_same_payment():
    gateway = FakeGateway()
    gateway.fail["Authorize"] = [grpc.StatusCode.UNAVAILABLE]
    gateway.lose.add("Authorize")  # the second send is charged, its answer lost: the third gets the stored answer
    caller = FakeCaller(gateway)
    await checkout(caller, CheckoutParams(double_submit_p=0.0), _live(), random.Random(2))
    keys = [r.idempotency_key for _, m, r in caller.requests if m == "Authorize"]
    assert len(keys) == 3 and len(set(keys)) == 1 and len(gateway.payments) == 1
    assert caller.codes(CHECKOUT_TIME) == [OK] and caller.codes(SINGLE_CHARGE) == [OK]


async def test_a_double_click_comes_back_as_one_payment():
    gateway = FakeGateway()
    caller = FakeCaller(gateway)
    await checkout(caller, CheckoutParams(double_submit_p=1.0), _live(), random.Random(3))
    authorizes = [r for _, m, r in caller.requests if m == "Authorize"]
    assert len(authorizes) >= 3 and len({r.idempotency_key for r in authorizes}) == 1  # ABORTED, then retried
    assert len(gateway.payments) == 1 and caller.codes(SINGLE_CHARGE) == [OK]


async def test_a_gateway_that_double_charges_is_caught():
    caller = FakeCaller(FakeGateway(idempotent=False))
    await checkout(caller, CheckoutParams(double_submit_p=1.0), _live(), random.Random(3))
    assert caller.codes(SINGLE_CHARGE) == [DATA_LOSS]
    twice = FakeCaller(FakeGateway(double_approve=True))
    await checkout(twice, CheckoutParams(double_submit_p=0.0), _live(), random.Random(4))
    assert twice.codes(SINGLE_CHARGE) == [DATA_LOSS]

    class CapturesHolds(FakeGateway):  # a hold the gateway captured at once: money the client did not ask to move
        def _authorize(self, request: gateway_pb2.AuthorizeRequest) -> gateway_pb2.AuthorizeResponse:
            request.capture = True
            return super()._authorize(request)

    hold = FakeCaller(CapturesHolds())
    await hold_then_capture(hold, HoldParams(), _live(), random.Random(5))
    assert hold.methods() == ["Authorize", "GetPayment"] and hold.codes(SINGLE_CHARGE) == [DATA_LOSS]


async def test_a_declined_checkout_is_an_answer_with_its_reason():
    live = _live()
    gateway = FakeGateway(declining=frozenset(t for c in live.state.customers for t in c.tokens))
    caller = FakeCaller(gateway)
    await checkout(caller, CheckoutParams(double_submit_p=0.0), live, random.Random(5))
    assert caller.codes(CHECKOUT_TIME) == [OK] and caller.codes(CHECKOUT_OUTCOME) == ["CARD_DECLINED"]
    assert caller.codes(SINGLE_CHARGE) == [OK] and live.tally.net() == {}


async def test_a_checkout_without_an_answer_fails_with_the_last_code_and_leaves_the_tally_uncertain():
    gateway = FakeGateway()
    gateway.fail["Authorize"] = [grpc.StatusCode.UNAVAILABLE] * 10
    caller = FakeCaller(gateway)
    live = _live()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await checkout(caller, CheckoutParams(double_submit_p=0.0, max_attempts=3), live, random.Random(6))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caller.methods() == ["Authorize"] * 3
    assert caller.codes(CHECKOUT_TIME) == ["UNAVAILABLE"] and caller.codes(SINGLE_CHARGE) == []
    assert live.tally.uncertain


async def test_a_hold_is_captured_in_part_or_in_full_or_voided_and_checked():
    seen: dict[str, int] = {}
    for i in range(12):
        gateway = FakeGateway()
        caller = FakeCaller(gateway)
        live = _live()
        await hold_then_capture(caller, HoldParams(void_p=0.3, capture_full_p=0.5), live, random.Random(i))
        methods = caller.methods()
        assert methods[0] == "Authorize" and not caller.requests[0][2].capture and methods[-1] == "GetPayment"
        assert caller.codes(SINGLE_CHARGE) == [OK], caller.observed
        (payment,) = gateway.payments.values()
        if "Void" in methods:
            seen["void"] = seen.get("void", 0) + 1
            assert payment.status == S.PAYMENT_STATUS_VOIDED and live.tally.net() == {}
        else:
            asked = next(r for _, m, r in caller.requests if m == "Capture").amount_minor
            seen["full" if asked == 0 else "part"] = seen.get("full" if asked == 0 else "part", 0) + 1
            assert 0 < payment.captured_minor <= payment.amount.amount_minor
            assert asked == 0 or asked >= 0.7 * payment.amount.amount_minor - 1
            assert live.tally.net() == {payment.amount.currency_code: payment.captured_minor}
        keys = [r.idempotency_key for _, m, r in caller.requests if m != "GetPayment"]
        assert len(set(keys)) == len(keys) == 2  # one key per operation
    assert set(seen) == {"void", "full", "part"}, seen


async def test_a_refund_in_part_then_in_full_is_refunded_and_tallied():
    params = RefundParams(full_refund_p=0.0, second_refund_p=1.0)
    gateway = FakeGateway()
    caller = FakeCaller(gateway)
    live = _live()
    await refund(caller, params, live, random.Random(8))
    assert caller.methods() == ["Authorize", "Refund", "Refund", "GetPayment"]
    (payment,) = gateway.payments.values()
    assert payment.status == S.PAYMENT_STATUS_REFUNDED and payment.refunded_minor == payment.captured_minor
    assert caller.codes(SINGLE_CHARGE) == [OK] and live.tally.net() == {}
    part = FakeCaller(FakeGateway())
    live = _live()
    await refund(part, RefundParams(full_refund_p=0.0, second_refund_p=0.0), live, random.Random(9))
    (payment,) = part.gateway.payments.values()
    assert payment.status == S.PAYMENT_STATUS_CAPTURED and 0 < payment.refunded_minor < payment.captured_minor
    assert live.tally.net() == {payment.amount.currency_code: payment.captured_minor - payment.refunded_minor}
    assert part.codes(SINGLE_CHARGE) == [OK]
    rng = random.Random(1)
    for _ in range(200):
        amounts = refund_plan(rng, RefundParams(), 5_000)
        assert amounts in ([0],) or (1 <= amounts[0] <= 3_000 and amounts[1:] in ([], [0]))
    assert refund_plan(rng, RefundParams(full_refund_p=0.0), 1) == [0]


async def test_a_card_testing_burst_is_judged_once_the_rule_has_its_evidence():
    gateway = FakeGateway(block_after=5)
    caller = FakeCaller(gateway)
    live = _live()
    params = CardTestingParams(cards=12, evident_after_cards=5)
    await card_testing(caller, params, live, random.Random(11))
    authorizes = [r for _, m, r in caller.requests if m == "Authorize"]
    assert caller.methods().count("TokenizeCard") == 12 and len(authorizes) == 12
    assert len({r.customer_id for r in authorizes}) == 1 and len({r.card_token for r in authorizes}) == 12
    assert all(50 <= r.amount.amount_minor <= 300 and r.capture for r in authorizes)
    assert caller.codes(CARD_TESTING_BLOCKED) == [OK] * 7  # tries 6 to 12
    assert caller.codes(CHECKOUT_TIME) == [] and caller.codes(SINGLE_CHARGE) == []
    allowed = FakeCaller(FakeGateway())
    await card_testing(allowed, CardTestingParams(cards=8, evident_after_cards=5, concurrency=2), live,
                       random.Random(12))
    assert allowed.codes(CARD_TESTING_BLOCKED) == [ALLOWED] * 2  # judged from the 7th: 5 + 2 in flight - 1


async def test_amounts_are_lognormal_around_the_median_and_clipped():
    rng = random.Random(4)
    params = CheckoutParams(amount_median_minor=4_000, amount_sigma=0.9, amount_min_minor=100, amount_max_minor=50_000)
    amounts = sorted(draw_amount(rng, params) for _ in range(4_000))
    assert amounts[0] >= 100 and amounts[-1] <= 50_000 and 3_600 < amounts[2_000] < 4_400
    with pytest.raises(ValidationError):
        CheckoutParams(amount_min_minor=5_000, amount_median_minor=4_000)


# the settlement at the end ----------------------------------------------------------------------------------------------

def _report(*, discrepancies: tuple[settlement_pb2.Discrepancy, ...] = (), pending: int = 0,
            gross: dict[str, int] | None = None) -> settlement_pb2.ReconcileResponse:
    return settlement_pb2.ReconcileResponse(
        report_id="rec-20260301T000000Z", pending=pending, discrepancies=list(discrepancies),
        acquirers=[settlement_pb2.AcquirerSettlement(
            acquirer="payments-psp-a", batch_id="payments-psp-a-000002", lines=3, matched=3,
            gross=[money_pb2.Money(currency_code=c, amount_minor=v) for c, v in (gross or {}).items()])])


async def test_the_settlement_reconciles_and_matches_what_the_clients_were_answered():
    streams = FakeStreams([_report(), rpc_error(grpc.StatusCode.ABORTED, "another runs"), _report(gross={"USD": 600})])
    live = await connect(streams, _live().state, SeedParams(merchants=2, customers_per_merchant=30), random.Random(1))
    live.sleep = no_wait
    assert live.baseline_ok and streams.calls[0][:2] == ("payments-gateway", "Reconcile")
    live.tally.capture("USD", 1_000)
    live.tally.refund("USD", 400)
    await disconnect(live)
    assert [(n, c) for n, _, c in streams.observed] == [(SETTLEMENT, OK)] and len(streams.calls) == 3
    assert streams.calls[-1][2] == 30.0


async def test_a_discrepancy_or_a_mismatch_with_the_clients_is_data_loss():
    unknown = settlement_pb2.Discrepancy(kind="unknown_reference", acquirer="payments-psp-b",
                                         reference="pay_x.1", file_amount_minor=500)
    streams = FakeStreams([_report(discrepancies=(unknown,))])
    live = _live(streams)
    assert await live.settle() == DATA_LOSS
    streams = FakeStreams([_report(), _report(gross={"USD": 2_000})])
    live = _live(streams)
    await live.baseline()
    live.tally.capture("USD", 1_000)
    assert await live.settle() == DATA_LOSS  # the files moved twice what the clients were told
    streams = FakeStreams([_report(gross={"USD": 2_000})])
    live = _live(streams)  # no baseline: the files may hold earlier runs' money, only the discrepancies are judged
    live.tally.capture("USD", 1_000)
    assert await live.settle() == OK


async def test_a_failed_reconciliation_records_its_code_and_only_process_0_reconciles():
    down = rpc_error(grpc.StatusCode.UNAVAILABLE, "psp-b down")
    streams = FakeStreams([down, down, down])
    live = _live(streams)
    assert await live.settle() == "UNAVAILABLE" and len(streams.calls) == 3
    assert streams.observed[0][2] == "UNAVAILABLE"
    other = FakeStreams([], share=(1, 2))
    live = _live(other)
    await live.baseline()
    assert await live.settle() is None and other.calls == [] and other.observed == []
    first = FakeStreams([_report(), _report(gross={"USD": 5})], share=(0, 2))
    live = _live(first)
    await live.baseline()
    assert await live.settle() == OK  # two processes: the cross-check against one process's tally is skipped


# the workload, the profile, the SLOs, the contracts ---------------------------------------------------------------------

async def test_the_workload_declares_its_services_journeys_and_measures():
    assert WORKLOAD.name == "payments" and WORKLOAD.services == ("payments-vault", "payments-gateway")
    assert list(WORKLOAD.journeys) == ["checkout", "hold_then_capture", "refund", "card_testing"]
    assert set(MEASURES) == {"checkout_time", "checkout_outcome", "single_charge", "card_testing_blocked", "settlement"}
    assert not set(MEASURES) & set(WORKLOAD.journeys)  # a measure is reported like a journey: names must not clash
    assert {"casemesh.payments.v1.PaymentGatewayService/Authorize", "casemesh.payments.v1.CardVaultService/TokenizeCard",
            "casemesh.payments.v1.SettlementService/Reconcile"} <= set(WORKLOAD.rpcs)
    assert WORKLOAD.full_method("payments-gateway", "Reconcile") == "casemesh.payments.v1.SettlementService/Reconcile"
    assert WORKLOAD.full_method("payments-gateway", "Authorize") == "casemesh.payments.v1.PaymentGatewayService/Authorize"
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never connected: no call is made
    stub = GatewayStub(channel)
    assert callable(stub.Reconcile) and callable(stub.Authorize)
    await channel.close()


def _document() -> dict:
    return yaml.safe_load((PROFILES_DIR / "payments.yaml").read_text())


def test_the_profile_s_blocks_are_valid():
    document = _document()
    ProfileDocument.model_validate(document)
    assert document["workload"] == "payments" and document["services"] == list(PAYMENTS_SERVICES)
    seed_params = SeedParams.model_validate(document["seed"])
    assert seed_params.merchants == 4 and seed_params.customers_per_merchant == 250
    models = {"checkout": CheckoutParams, "hold_then_capture": HoldParams, "refund": RefundParams,
              "card_testing": CardTestingParams}
    journeys = {j["name"]: models[j["name"]].model_validate(j.get("params", {})) for j in document["journeys"]}
    weights = {j["name"]: j["weight"] for j in document["journeys"]}
    authorizes = sum(weights[n] * (journeys[n].cards if n == "card_testing" else 1) for n in weights) / sum(weights.values())
    assert 45 <= document["arrival"]["rate_per_s"] * authorizes <= 55  # about 50 payments a second
    settings_ = document["settings"]
    assert settings_["payments-psp-a"]["latency_median_ms"] == 40 and settings_["payments-psp-b"]["latency_median_ms"] == 60
    assert settings_["payments-psp-a"]["fee_bps"] < settings_["payments-psp-b"]["fee_bps"]  # a is the cheaper
    # The run's drain (10 request timeouts + 5 s) outlasts the longest journey: three calls of at most retry_within_s
    # of retries plus one timeout each, and the stay.
    drain_s = document["request_timeout_ms"] / 1000 * 10 + 5
    hold = journeys["hold_then_capture"]
    assert 3 * (hold.retry_within_s + document["request_timeout_ms"] / 1000) + hold.hold_max_s < drain_s
    assert "seeds/001_58dfc580020147d2.txt line 49" in document["metadata"]["source"]
    assert "10K TPS" in document["metadata"]["scaling"] and "200 times fewer" in document["metadata"]["scaling"]


def test_the_bot_is_judged_after_the_fraud_rule_s_evidence_and_that_rule_blocks_on_its_own():
    document = _document()
    bot = CardTestingParams.model_validate(next(j for j in document["journeys"] if j["name"] == "card_testing")["params"])
    fraud = document["settings"]["payments-fraud"]
    assert bot.evident_after_cards == fraud["card_testing_min_cards"] == CardTestingParams().evident_after_cards
    assert "card_testing_weight" not in fraud and "block_threshold" not in fraud  # the defaults: 80 blocks alone
    assert SeedParams.model_validate(document["seed"]).currencies and fraud["card_testing_min_cards"] > 2  # wallets: 1-2


@pytest.mark.parametrize(("service", "module", "model"), [
    ("payments-psp-a", "casemesh.services.payments.acquirer.settings", "AcquirerSettings"),
    ("payments-psp-b", "casemesh.services.payments.acquirer.settings", "AcquirerSettings"),
    ("payments-gateway", "casemesh.services.payments.gateway.settings", "GatewaySettings"),
    ("payments-fraud", "casemesh.services.payments.fraud.settings", "FraudSettings"),
])
def test_the_profile_s_settings_fit_the_services_settings_models(service: str, module: str, model: str):
    settings_module = pytest.importorskip(module, reason=f"{module} is not there yet")
    if not hasattr(settings_module, model):
        pytest.skip(f"{module}.{model} is not there yet")
    getattr(settings_module, model).model_validate(_document()["settings"][service])


def test_the_slo_file_loads_against_the_workload():
    slos = {slo.name: slo for slo in load_slos(PROFILES_DIR / "payments.slo.yaml", rpcs=WORKLOAD.rpcs,
                                                 journeys=[*WORKLOAD.journeys, *WORKLOAD.measures])}
    assert set(slos) == {"payment-authorize-latency", "payment-checkout-availability", "payment-no-double-charge",
                         "payment-settlement-reconciles", "payment-card-testing-blocked",
                         "payment-authorize-latency-server", "payment-checkout-availability-server"}
    latency = slos["payment-authorize-latency"]
    assert latency.target == 0.99 and latency.good.latency_le_ms == 250 and "ABORTED" not in latency.total.codes
    assert len(latency.total.codes) == 16 and latency.good.rpc.endswith("PaymentGatewayService/Authorize")
    assert slos["payment-checkout-availability"].target == 0.999
    assert slos["payment-no-double-charge"].target == 0.9999 and slos["payment-card-testing-blocked"].target == 0.9
    assert slos["payment-authorize-latency-server"].twin_of == "payment-authorize-latency"
    assert slos["payment-checkout-availability-server"].twin_of == "payment-checkout-availability"
    text = (PROFILES_DIR / "payments.slo.yaml").read_text()
    assert 'casemesh_payments_gateway_authorize_seconds_bucket{le="0.25"}' in text
    assert 'grpc_service="casemesh.payments.v1.PaymentGatewayService",grpc_method="Authorize"' in text
    assert "seeds/001_58dfc580020147d2.txt line 49" in text and "seeds/000_69ff90d97cf45f9b.txt line 522" in text
    assert all(name.startswith("payment-") for name in slos)


class _AnySettings(BaseModel):
    model_config = ConfigDict(extra="allow")


def test_the_profile_loads_with_its_slos_once_registered(monkeypatch: pytest.MonkeyPatch):
    """The whole loader (workload, journeys, seed, SLOs), with the workload and services registered in place: the
    services' settings keys are checked by the real loader test below once the services exist."""
    monkeypatch.setitem(workloads_module._MODULES, "payments", "payments")
    import casemesh.harness.profile as profile_module

    known = {name: SimpleNamespace(settings_model=_AnySettings) for name in PAYMENTS_SERVICES}
    monkeypatch.setattr(profile_module, "SERVICES", known)
    profile = load_profile("payments", known_services=PAYMENTS_SERVICES)
    assert profile.workload is WORKLOAD and profile.arrival.rate_per_s == 45 and profile.request_timeout_ms == 3000
    assert [j.name for j in profile.journeys] == ["checkout", "hold_then_capture", "refund", "card_testing"]
    assert {"payment-authorize-latency", "payment-no-double-charge", "payment-settlement-reconciles"} <= \
        {slo.name for slo in profile.slos}


@pytest.mark.skipif(not all(name in SERVICES for name in PAYMENTS_SERVICES) or "payments" not in workloads_module.WORKLOAD_NAMES,
                    reason="the payments workload or services are not registered yet (harness/workloads/__init__.py, "
                           "services/catalog.py)")
def test_the_shipped_profile_loads_with_its_slos():
    profile = load_profile("payments")
    assert profile.seed.merchants == 4 and profile.settings["payments-psp-a"]["latency_median_ms"] == 40
    assert {"payment-authorize-latency", "payment-checkout-availability", "payment-no-double-charge"} <= \
        {slo.name for slo in profile.slos}


def test_the_workload_imports_only_the_contracts():
    for source in WORKLOAD_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("casemesh.services"):
                    assert name == "casemesh.services.payments.contract", f"{source.name} imports {name}"
            if isinstance(node, ast.ImportFrom) and node.level == 2:
                assert node.module in {"base", "idempotent_retry"}, f"{source.name} imports ..{node.module}"
    code = ("import sys; from casemesh.harness.workloads.payments import WORKLOAD; "
            "print(sorted(m for m in sys.modules if m.startswith('casemesh.services.')))")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(sorted([
        "casemesh.services.payments", "casemesh.services.payments.contract", "casemesh.services.runtime",
        "casemesh.services.runtime.identifiers", "casemesh.services.runtime.errors"]))


# the harness's driver over real gRPC, against the fake gateway ------------------------------------------------------------

def _servicers(fake: FakeGateway, reconciles: list[settlement_pb2.ReconcileResponse]) -> list[Any]:
    from casemesh.payments.v1 import gateway_pb2_grpc, settlement_pb2_grpc, vault_pb2_grpc

    async def handle(method: str, request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await fake.handle(method, request)
        except grpc.aio.AioRpcError as error:
            await context.abort(error.code(), error.details() or "")

    class Vault(vault_pb2_grpc.CardVaultServiceServicer):
        async def TokenizeCard(self, request, context):
            return await handle("TokenizeCard", request, context)

    class Gateway(gateway_pb2_grpc.PaymentGatewayServiceServicer):
        async def Authorize(self, request, context):
            return await handle("Authorize", request, context)

        async def Capture(self, request, context):
            return await handle("Capture", request, context)

        async def Void(self, request, context):
            return await handle("Void", request, context)

        async def Refund(self, request, context):
            return await handle("Refund", request, context)

        async def GetPayment(self, request, context):
            return await handle("GetPayment", request, context)

    class Settlement(settlement_pb2_grpc.SettlementServiceServicer):
        async def Reconcile(self, request, context):
            return reconciles.pop(0) if reconciles else _report(gross=fake.net())

    return [(vault_pb2_grpc.add_CardVaultServiceServicer_to_server, Vault()),
            (gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server, Gateway()),
            (settlement_pb2_grpc.add_SettlementServiceServicer_to_server, Settlement())]


async def test_the_driver_runs_every_journey_over_grpc_and_reconciles_at_the_end(monkeypatch: pytest.MonkeyPatch):
    import dataclasses

    import casemesh.harness.profile as profile_module
    from casemesh.harness.driver import Driver
    from casemesh.harness.profile import with_overrides

    monkeypatch.setitem(workloads_module._MODULES, "payments", "payments")
    monkeypatch.setattr(profile_module, "SERVICES", {n: SimpleNamespace(settings_model=_AnySettings) for n in PAYMENTS_SERVICES})
    profile = with_overrides(load_profile("payments", known_services=PAYMENTS_SERVICES), duration_s=1.5, warmup_s=0.2,
                             rate_scale=0.5)
    profile = dataclasses.replace(profile, seed=SeedParams(merchants=2, customers_per_merchant=10))
    fake = FakeGateway(block_after=5, in_flight_s=0.0)
    server = grpc.aio.server()
    for add, servicer in _servicers(fake, []):
        add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(profile, {"payments-vault": channel, "payments-gateway": channel}, rng_seed=3)
        await driver.seed()
        assert len(driver.state.customers) == 20
        stats = await driver.run()
    finally:
        await channel.close()
        await server.stop(None)
    authorize = stats.rpc("casemesh.payments.v1.PaymentGatewayService/Authorize")
    assert authorize.count() > 10 and authorize.count(["OK"]) == authorize.count()
    assert stats.journey("checkout").count() > 0 and stats.journey("checkout").count(["OK"]) == stats.journey("checkout").count()
    assert stats.journey(CHECKOUT_TIME).count(["OK"]) == stats.journey(CHECKOUT_TIME).count() > 0
    assert stats.journey(SINGLE_CHARGE).count(["OK"]) == stats.journey(SINGLE_CHARGE).count() > 0
    assert stats.journey(SETTLEMENT).count(["OK"]) == 1 == stats.journey(SETTLEMENT).count()
