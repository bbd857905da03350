"""The payments journeys: merchants' checkouts and back offices, and a card-testing bot (open-loop arrivals).

Seed 001 #25 "Payment Gateway" (shared/seeds/001_58dfc580020147d2.txt line 49: "PSP routing, fraud detection, PCI DSS
(HSM tokenization), settlement | 10K TPS, Stripe/Adyen"); seed 000 "E-commerce Architecture" line 522 ("Payment
Service: Idempotent APIs, retry with exponential backoff"); seed 001 #20 "Hotel Reservation" line 23 ("payment
auth/capture"). Every money-moving call carries a fresh idempotency key (``<kind>-<uuid4 hex>``, unique across load
processes) and is retried with the same key (:mod:`casemesh.harness.workloads.idempotent_retry`).

- ``checkout`` (a sale, most of the traffic): a customer of a merchant pays with one of its cards:
  PaymentGatewayService.Authorize with ``capture`` and a fresh key. ``double_submit_p`` of checkouts are double
  clicks: the same Authorize sent twice at once, each retried on its own (ABORTED while the other is in flight); both
  must come back with one payment id. Then GetPayment, the invariant check (:mod:`.invariants`).
- ``hold_then_capture`` (a hotel: authorise at booking, capture at check-out): Authorize without ``capture``, a hold
  of ``hold_min_s`` to ``hold_max_s`` (the stay, compressed), then Void for ``void_p`` of them (a cancelled booking)
  or Capture, of the whole hold for ``capture_full_p`` of the others, else of a uniform ``capture_min_fraction`` to
  1 of it (the final bill), each with its own key; then the check.
- ``refund``: a sale, then after ``refund_after_min_s`` to ``refund_after_max_s`` the merchant's back office
  refunds it: in full (``amount_minor`` 0) for ``full_refund_p`` of them, otherwise a partial refund of a uniform
  ``partial_min_fraction`` to ``partial_max_fraction`` of the capture, followed for ``second_refund_p`` of those by a
  second refund of what is left (returned goods, then the rest); then the check.
- ``card_testing``: a fraud bot on one merchant's payment page: one ``customer_id`` for the burst, ``cards`` fresh
  stolen numbers (:func:`.cards.card_number`), each tokenized (TokenizeCard) and tried with a small sale
  (``amount_min_minor`` to ``amount_max_minor``), ``concurrency`` at a time. The fraud rules' ``card_testing`` rule
  needs evidence (a customer seen with several distinct cards): payments from the ``evident_after_cards +
  concurrency``-th card on (the first ``evident_after_cards`` have been scored before it is sent) are judged, one
  ``card_testing_blocked`` sample each: ``OK`` when DECLINED by the fraud rules (DECLINE_REASON_FRAUD), ``ALLOWED``
  when approved (a stolen card confirmed), ``ISSUER_DECLINED`` when only the issuer refused it, or the status code of
  a call that failed. Its latency is the Authorize's (with retries).

Amounts are integer minor units of the merchant's currency, lognormal around ``amount_median_minor`` (``amount_sigma``)
and clipped to ``amount_min_minor`` .. ``amount_max_minor``.

Measures, besides the RPCs the driver records (PaymentGatewayService/Authorize among them: the headline SLO):

- ``checkout_time``: a customer's pay button (the first Authorize of ``checkout``, ``hold_then_capture`` and
  ``refund``), from the journey's intended start to the final answer, retries included; code ``OK`` for an answer
  (approved or declined), else the last attempt's code;
- ``checkout_outcome``: one sample per answered customer Authorize, code ``APPROVED`` or the decline code in capitals
  (``DO_NOT_HONOR``, ``INSUFFICIENT_FUNDS``, ``CARD_DECLINED``, ``EXPIRED_CARD``, ``FRAUD_BLOCKED``): the decline
  share by reason; latency 0;
- ``single_charge`` (:mod:`.invariants`), ``card_testing_blocked`` (above), ``settlement`` (:mod:`.live`).

A journey ends OK when every answer came and every check ran; with the last code when a call failed for good (after
the check of what could be checked).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from pydantic import Field, model_validator

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import gateway_pb2, payments_pb2, vault_pb2
from casemesh.services.payments.contract import MAX_AMOUNT_MINOR

from ..base import Caller
from ..idempotent_retry import Outcome, RetryParams, send
from .cards import card, card_number
from .invariants import Expected, check_payment, record, same_payment, status_name
from .live import Payments
from .seeding import GATEWAY, VAULT, Customer

log = logging.getLogger("casemesh.workloads.payments")

CHECKOUT_TIME = "checkout_time"
CHECKOUT_OUTCOME = "checkout_outcome"
CARD_TESTING_BLOCKED = "card_testing_blocked"
OK = "OK"
APPROVED = "APPROVED"
ALLOWED = "ALLOWED"
ISSUER_DECLINED = "ISSUER_DECLINED"

S = payments_pb2
#: Statuses of an approved Authorize's answer.
APPROVED_STATUSES = frozenset({S.PAYMENT_STATUS_AUTHORIZED, S.PAYMENT_STATUS_CAPTURED})


class PaymentParams(RetryParams):
    """A customer payment's amount and retries (a base of the merchant journeys' parameters)."""

    amount_median_minor: int = Field(default=4_000, ge=1, le=MAX_AMOUNT_MINOR,
                                     description="median amount, minor units (4,000: 40.00, an online basket)")
    amount_sigma: float = Field(default=0.9, ge=0, le=5, description="the amount's lognormal sigma (log scale)")
    amount_min_minor: int = Field(default=100, ge=1, le=MAX_AMOUNT_MINOR, description="smallest amount, minor units")
    amount_max_minor: int = Field(default=500_000, ge=1, le=MAX_AMOUNT_MINOR, description="largest amount, minor units")

    @model_validator(mode="after")
    def _amounts(self) -> PaymentParams:
        if not self.amount_min_minor <= self.amount_median_minor <= self.amount_max_minor:
            raise ValueError(f"amount_min_minor ({self.amount_min_minor}) <= amount_median_minor "
                             f"({self.amount_median_minor}) <= amount_max_minor ({self.amount_max_minor}) must hold")
        return self


class CheckoutParams(PaymentParams):
    """A sale."""

    double_submit_p: float = Field(default=0.03, ge=0, le=1,
                                   description="share of checkouts sent twice at once (a double click)")


class HoldParams(PaymentParams):
    """A hotel's authorise-then-capture."""

    amount_median_minor: int = Field(default=25_000, ge=1, le=MAX_AMOUNT_MINOR,
                                     description="median hold, minor units (250.00: a night or two)")
    amount_sigma: float = Field(default=0.6, ge=0, le=5, description="the hold's lognormal sigma")
    hold_min_s: float = Field(default=0.5, ge=0, le=600, description="shortest stay between hold and capture, s")
    hold_max_s: float = Field(default=3.0, ge=0, le=600, description="longest stay, s (uniform)")
    void_p: float = Field(default=0.2, ge=0, le=1, description="share of holds voided (a cancelled booking)")
    capture_full_p: float = Field(default=0.5, ge=0, le=1,
                                  description="share of captured holds captured in full (amount_minor 0)")
    capture_min_fraction: float = Field(default=0.7, gt=0, le=1,
                                        description="a partial capture is a uniform fraction of the hold from this to 1")

    @model_validator(mode="after")
    def _hold(self) -> HoldParams:
        if self.hold_min_s > self.hold_max_s:
            raise ValueError(f"hold_min_s ({self.hold_min_s:g}) must be at most hold_max_s ({self.hold_max_s:g})")
        return self


class RefundParams(PaymentParams):
    """A sale, then its refund."""

    refund_after_min_s: float = Field(default=0.2, ge=0, le=600, description="shortest time from sale to refund, s")
    refund_after_max_s: float = Field(default=2.0, ge=0, le=600, description="longest time from sale to refund, s")
    full_refund_p: float = Field(default=0.4, ge=0, le=1, description="share refunded in full at once")
    partial_min_fraction: float = Field(default=0.1, gt=0, le=1, description="a partial refund's smallest share")
    partial_max_fraction: float = Field(default=0.6, gt=0, le=1, description="a partial refund's largest share")
    second_refund_p: float = Field(default=0.3, ge=0, le=1,
                                   description="share of partial refunds followed by a refund of what is left")

    @model_validator(mode="after")
    def _refund(self) -> RefundParams:
        if self.refund_after_min_s > self.refund_after_max_s:
            raise ValueError(f"refund_after_min_s ({self.refund_after_min_s:g}) must be at most refund_after_max_s "
                             f"({self.refund_after_max_s:g})")
        if self.partial_min_fraction > self.partial_max_fraction:
            raise ValueError(f"partial_min_fraction ({self.partial_min_fraction:g}) must be at most "
                             f"partial_max_fraction ({self.partial_max_fraction:g})")
        return self


class CardTestingParams(RetryParams):
    """A card-testing bot's burst."""

    max_attempts: int = Field(default=2, ge=1, le=10, description="sends of one Authorize at most (a bot moves on)")
    cards: int = Field(default=20, ge=1, le=1_000, description="stolen cards tried in one burst")
    amount_min_minor: int = Field(default=50, ge=1, le=MAX_AMOUNT_MINOR, description="smallest try, minor units")
    amount_max_minor: int = Field(default=300, ge=1, le=MAX_AMOUNT_MINOR, description="largest try, minor units")
    evident_after_cards: int = Field(default=3, ge=0, le=1_000,
                                     description="distinct cards of one customer the fraud rules' card_testing rule "
                                                 "needs (payments-fraud's card_testing_min_cards, 3): the tries after "
                                                 "that many are judged")
    concurrency: int = Field(default=1, ge=1, le=64, description="tries in flight at once")

    @model_validator(mode="after")
    def _tries(self) -> CardTestingParams:
        if self.amount_min_minor > self.amount_max_minor:
            raise ValueError(f"amount_min_minor ({self.amount_min_minor}) must be at most amount_max_minor "
                             f"({self.amount_max_minor})")
        return self

    @property
    def judged_from(self) -> int:
        """The 0-based index of the burst's first judged card."""
        return self.evident_after_cards + self.concurrency - 1


def new_key(kind: str) -> str:
    """A fresh idempotency key: ``<kind>-<uuid4 hex>`` (unique across load processes and runs)."""
    return f"{kind}-{uuid.uuid4().hex}"


def draw_amount(rng: random.Random, params: PaymentParams) -> int:
    """An amount in minor units: lognormal around the median, clipped (module docstring)."""
    value = round(rng.lognormvariate(math.log(params.amount_median_minor), params.amount_sigma))
    return min(max(value, params.amount_min_minor), params.amount_max_minor)


def money(currency: str, amount_minor: int) -> money_pb2.Money:
    return money_pb2.Money(currency_code=currency, amount_minor=amount_minor)


def outcome_code(payment: payments_pb2.Payment) -> str:
    """``APPROVED``, or the decline code in capitals (``DECLINED`` without one)."""
    if payment.status in APPROVED_STATUSES:
        return APPROVED
    return (payment.decline_code or "declined").upper()


def error_of(outcome: Outcome) -> grpc.aio.AioRpcError:
    assert outcome.error is not None
    return outcome.error


@dataclass
class Paid:
    """One key's Authorize after its retries (and, for a double click, both sends): the request, every answer's
    payment id, the first answered payment, and the outcome to raise when none was answered."""

    key: str
    request: gateway_pb2.AuthorizeRequest
    outcomes: list[Outcome]
    ids: list[str] = field(default_factory=list)
    payment: payments_pb2.Payment | None = None

    @property
    def failed(self) -> Outcome:
        """The last unanswered outcome."""
        return [o for o in self.outcomes if not o.answered][-1]


async def authorize(call: Caller, live: Payments, customer: Customer, token: str, amount_minor: int, capture: bool,
                    params: RetryParams, rng: random.Random, *, kind: str, double_submit: bool = False,
                    measure: bool = True) -> Paid:
    """Authorize ``amount_minor`` on ``token`` with a fresh key, retried; a double submit sends it twice at once.
    Records ``checkout_time`` and ``checkout_outcome`` when ``measure``; adds a sale's capture to the tally."""
    key = new_key(kind)
    request = gateway_pb2.AuthorizeRequest(
        idempotency_key=key, merchant_id=customer.merchant_id, card_token=token,
        amount=money(customer.currency, amount_minor), capture=capture, description=f"{kind} of {customer.customer_id}",
        customer_id=customer.customer_id)
    live.tally.begin()
    outcomes: list[Outcome] = []
    try:
        sends = 2 if double_submit else 1
        outcomes = list(await asyncio.gather(*(send(call, GATEWAY, "Authorize", request, params, rng, sleep=live.sleep)
                                               for _ in range(sends))))
    finally:
        live.tally.end(bool(outcomes) and (any(o.answered for o in outcomes) or all(o.known for o in outcomes)))
    paid = Paid(key, request, outcomes)
    answers = [o.response.payment for o in outcomes if o.answered]
    paid.ids = [p.payment_id for p in answers]
    paid.payment = answers[0] if answers else None
    if measure:
        call.observe(CHECKOUT_TIME, live.clock() - call.intended_at, OK if answers else paid.failed.code)
        if paid.payment is not None:
            call.observe(CHECKOUT_OUTCOME, 0.0, outcome_code(paid.payment))
    if paid.payment is not None and paid.payment.status == S.PAYMENT_STATUS_CAPTURED:
        live.tally.capture(customer.currency, paid.payment.captured_minor)
    return paid


def after_authorize(customer: Customer, amount_minor: int, capture: bool, payment: payments_pb2.Payment
                    ) -> tuple[Expected, list[str]]:
    """What a key's payment must look like after its Authorize answer, and the answer's own problems."""
    problems: list[str] = []
    if payment.status in APPROVED_STATUSES:
        status = S.PAYMENT_STATUS_CAPTURED if capture else S.PAYMENT_STATUS_AUTHORIZED
        if payment.status != status:
            problems.append(f"Authorize (capture={capture}) answered {status_name(payment.status)}")
        captured = amount_minor if capture else 0
    else:
        status, captured = S.PAYMENT_STATUS_DECLINED, 0
        if payment.status != S.PAYMENT_STATUS_DECLINED:
            problems.append(f"Authorize answered {status_name(payment.status)}")
    expected = Expected(merchant_id=customer.merchant_id, amount_minor=amount_minor, currency=customer.currency,
                        status=status, captured_minor=captured)
    return expected, problems


async def verify(call: Caller, live: Payments, params: RetryParams, rng: random.Random, key: str, payment_id: str,
                 expected: Expected, problems: list[str]) -> Outcome:
    """GetPayment (retried) and one ``single_charge`` sample for ``key``; when GetPayment fails for good, a sample
    only if ``problems`` already show a breach. Returns GetPayment's outcome."""
    outcome = await send(call, GATEWAY, "GetPayment", gateway_pb2.GetPaymentRequest(
        merchant_id=expected.merchant_id, payment_id=payment_id), params, rng, sleep=live.sleep)
    if outcome.answered:
        record(call, key, payment_id, problems + check_payment(expected, outcome.response.payment, payment_id))
    elif problems:
        record(call, key, payment_id, problems)
    else:
        log.info("payments: %s: GetPayment %s failed (%s): not checked", key, payment_id, outcome.code)
    return outcome


def _raise_unless_answered(*outcomes: Outcome) -> None:
    for outcome in outcomes:
        if not outcome.answered:
            raise error_of(outcome)


async def checkout(call: Caller, params: CheckoutParams, live: Payments, rng: random.Random) -> None:
    """A sale (module docstring)."""
    customer = live.customer(rng)
    token = rng.choice(customer.tokens)
    amount = draw_amount(rng, params)
    paid = await authorize(call, live, customer, token, amount, True, params, rng, kind="checkout",
                           double_submit=rng.random() < params.double_submit_p)
    if paid.payment is None:
        raise error_of(paid.failed)
    expected, problems = after_authorize(customer, amount, True, paid.payment)
    check = await verify(call, live, params, rng, paid.key, paid.payment.payment_id, expected,
                         same_payment(paid.ids) + problems)
    _raise_unless_answered(check)
    if len(paid.ids) < len(paid.outcomes):  # one of a double click's sends never got its answer
        raise error_of(paid.failed)


async def hold_then_capture(call: Caller, params: HoldParams, live: Payments, rng: random.Random) -> None:
    """Authorise, hold, then capture or void (module docstring)."""
    customer = live.customer(rng)
    token = rng.choice(customer.tokens)
    amount = draw_amount(rng, params)
    paid = await authorize(call, live, customer, token, amount, False, params, rng, kind="hold")
    if paid.payment is None:
        raise error_of(paid.failed)
    payment = paid.payment
    expected, problems = after_authorize(customer, amount, False, payment)
    if payment.status != S.PAYMENT_STATUS_AUTHORIZED:  # declined (or, wrongly, captured: the check says so)
        _raise_unless_answered(await verify(call, live, params, rng, paid.key, payment.payment_id, expected, problems))
        return
    await live.sleep(rng.uniform(params.hold_min_s, params.hold_max_s))
    ids = list(paid.ids)
    if rng.random() < params.void_p:
        key = new_key("void")
        outcome = await _money_call(live, call, "Void", gateway_pb2.VoidRequest(
            idempotency_key=key, merchant_id=customer.merchant_id, payment_id=payment.payment_id), params, rng)
        expected = Expected(customer.merchant_id, amount, customer.currency, S.PAYMENT_STATUS_VOIDED)
    else:
        key = new_key("capture")
        full = rng.random() < params.capture_full_p
        asked = 0 if full else max(1, round(amount * rng.uniform(params.capture_min_fraction, 1.0)))
        outcome = await _money_call(live, call, "Capture", gateway_pb2.CaptureRequest(
            idempotency_key=key, merchant_id=customer.merchant_id, payment_id=payment.payment_id, amount_minor=asked),
            params, rng)
        captured = amount if full else asked
        expected = Expected(customer.merchant_id, amount, customer.currency, S.PAYMENT_STATUS_CAPTURED, captured)
        if outcome.answered:
            live.tally.capture(customer.currency, outcome.response.payment.captured_minor)
    if not outcome.answered:
        raise error_of(outcome)
    ids.append(outcome.response.payment.payment_id)
    _raise_unless_answered(await verify(call, live, params, rng, paid.key, payment.payment_id, expected,
                                        same_payment(ids) + problems))


async def _money_call(live: Payments, call: Caller, method: str, request: Any, params: RetryParams,
                      rng: random.Random) -> Outcome:
    """A money-moving gateway call with its retries, counted in the tally's open calls while it runs."""
    live.tally.begin()
    outcome: Outcome | None = None
    try:
        outcome = await send(call, GATEWAY, method, request, params, rng, sleep=live.sleep)
        return outcome
    finally:
        live.tally.end(outcome is not None and outcome.known)


def refund_plan(rng: random.Random, params: RefundParams, captured_minor: int) -> list[int]:
    """The ``amount_minor`` of each Refund call (0: all that is left), in order (module docstring)."""
    if rng.random() < params.full_refund_p or captured_minor < 2:
        return [0]
    first = min(max(1, round(captured_minor * rng.uniform(params.partial_min_fraction, params.partial_max_fraction))),
                captured_minor - 1)
    return [first, 0] if rng.random() < params.second_refund_p else [first]


async def refund(call: Caller, params: RefundParams, live: Payments, rng: random.Random) -> None:
    """A sale, then its refund in full or in part (module docstring)."""
    customer = live.customer(rng)
    token = rng.choice(customer.tokens)
    amount = draw_amount(rng, params)
    paid = await authorize(call, live, customer, token, amount, True, params, rng, kind="sale")
    if paid.payment is None:
        raise error_of(paid.failed)
    payment = paid.payment
    expected, problems = after_authorize(customer, amount, True, payment)
    if payment.status != S.PAYMENT_STATUS_CAPTURED:
        _raise_unless_answered(await verify(call, live, params, rng, paid.key, payment.payment_id, expected, problems))
        return
    await live.sleep(rng.uniform(params.refund_after_min_s, params.refund_after_max_s))
    ids = list(paid.ids)
    refund_ids: list[str] = []
    refunded = 0
    for asked in refund_plan(rng, params, amount):
        outcome = await _money_call(live, call, "Refund", gateway_pb2.RefundRequest(
            idempotency_key=new_key("refund"), merchant_id=customer.merchant_id, payment_id=payment.payment_id,
            amount_minor=asked), params, rng)
        if not outcome.answered:
            raise error_of(outcome)  # what was refunded is unknown: nothing to check against
        answer = outcome.response
        got = answer.amount.amount_minor
        want = asked or amount - refunded
        if got != want or answer.amount.currency_code != customer.currency:
            problems.append(f"Refund of {asked or 'the rest'} answered {got} {answer.amount.currency_code}, "
                            f"expected {want} {customer.currency}")
        refunded += got
        live.tally.refund(customer.currency, got)
        ids.append(answer.payment.payment_id)
        refund_ids.append(answer.refund_id)
    if len(set(refund_ids)) != len(refund_ids):
        problems.append(f"two refund keys answered one refund id: {', '.join(refund_ids)}")
    status = S.PAYMENT_STATUS_REFUNDED if refunded >= amount else S.PAYMENT_STATUS_CAPTURED
    expected = Expected(customer.merchant_id, amount, customer.currency, status, amount, refunded)
    _raise_unless_answered(await verify(call, live, params, rng, paid.key, payment.payment_id, expected,
                                        same_payment(ids) + problems))


def bot_code(payment: payments_pb2.Payment) -> str:
    """A bot payment's ``card_testing_blocked`` code: OK (blocked by the fraud rules), ALLOWED or ISSUER_DECLINED."""
    if payment.status == S.PAYMENT_STATUS_DECLINED and payment.decline_reason == S.DECLINE_REASON_FRAUD:
        return OK
    if payment.status == S.PAYMENT_STATUS_DECLINED:
        return ISSUER_DECLINED
    return ALLOWED


async def card_testing(call: Caller, params: CardTestingParams, live: Payments, rng: random.Random) -> None:
    """A card-testing burst (module docstring)."""
    merchant = live.state.merchants[rng.randrange(len(live.state.merchants))]
    bot = f"{merchant.merchant_id}-bot{uuid.uuid4().hex[:12]}"
    cards = [card(rng, card_number(rng)) for _ in range(params.cards)]
    amounts = [rng.randint(params.amount_min_minor, params.amount_max_minor) for _ in cards]
    limit = asyncio.Semaphore(params.concurrency)
    errors: list[grpc.aio.AioRpcError] = []

    async def one(index: int) -> None:
        stolen = cards[index]
        async with limit:
            try:
                token = (await call(VAULT, "TokenizeCard", vault_pb2.TokenizeCardRequest(
                    merchant_id=merchant.merchant_id, card_number=stolen.number, exp_month=stolen.exp_month,
                    exp_year=stolen.exp_year, cvc=stolen.cvc))).card_token
            except grpc.aio.AioRpcError as error:
                errors.append(error)
                return
            customer = Customer(bot, merchant.merchant_id, merchant.currency, (token,))
            paid = await authorize(call, live, customer, token, amounts[index], True, params, rng, kind="bot",
                                   measure=False)
        outcome = paid.outcomes[0]
        if paid.payment is None:
            errors.append(error_of(outcome))
            code = outcome.code
        else:
            code = bot_code(paid.payment)
        if index >= params.judged_from:
            call.observe(CARD_TESTING_BLOCKED, outcome.elapsed_s, code)

    await asyncio.gather(*(one(i) for i in range(params.cards)))
    if errors:
        raise errors[-1]
