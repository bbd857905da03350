"""The simulated acquirers (services/payments/acquirer): the issuer's decisions, idempotent repeats of every RPC, the
Void tombstone that refuses a late Authorize (also when the two race on one reference), capture and refund bounds
with their status codes, validation naming the field, settlement batches and files (fees, atomic writes, read back),
durability across a reopened ledger with its invariants in the schema, a hypothesis state machine over random
sequences of operations checking the ledger against a model and the settlement files against the ledger, and the real
gRPC service through the runtime (both acquirers, the gateway's identity, status codes, the settlement stream).

The issuer's latency is 0 (no wait) except where a test injects its own ``sleep``: no test depends on how fast the
machine is.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import acquirer_pb2, acquirer_pb2_grpc
from casemesh.services.payments.acquirer import settlement, validation
from casemesh.services.payments.acquirer.issuer import Issuer
from casemesh.services.payments.acquirer.service import (
    ACQUIRERS,
    DEFINITION_A,
    DEFINITION_B,
    GATEWAY_CALLERS,
    METHODS,
    Acquirer,
    AcquirerServicer,
    definition,
    new_psp_reference,
)
from casemesh.services.payments.acquirer.settings import AcquirerSettings
from casemesh.services.payments.acquirer.store import (
    APPROVED,
    CAPTURED,
    DECLINED,
    VOIDED,
    AcquirerStore,
    StoreUnavailable,
)
from casemesh.services.payments.contract import TEST_CARDS
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics

from ..caller_identity import TEST_SECRET
from ..integration.conftest import loopback_topology, start_mesh

WAIT_S = 10.0
PSP_A = "payments-psp-a"
CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # card_declined
#: Settings of the tests: no issuer wait, no random decline.
QUIET = {"latency_median_ms": 0, "decline_rate": 0}


def make(folder: Path, name: str = PSP_A, issuer: Issuer | None = None, **overrides) -> Acquirer:
    settings = AcquirerSettings(**{**QUIET, **overrides})
    return Acquirer(name, settings, AcquirerStore(name, folder), issuer)


@pytest.fixture
async def acquirer(tmp_path):
    made = make(tmp_path)
    yield made
    await made.close()


def auth(reference: str = "pay_1.1", amount: int = 1_000, card: str = CARD, merchant: str = "m1",
         currency: str = "EUR", exp_year: int = 2099) -> validation.Authorize:
    return validation.Authorize(reference, merchant, card, 12, exp_year, currency, amount)


def refund(reference: str, refund_reference: str, amount: int) -> validation.Refund:
    return validation.Refund(reference, refund_reference, amount)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ----------------------------------------------------------------------------- settings, definitions, the issuer


def test_settings_defaults_and_refusals():
    settings = AcquirerSettings()
    assert (settings.latency_median_ms, settings.latency_sigma, settings.decline_rate, settings.fee_bps,
            settings.fee_fixed_minor, settings.max_references_locked) == (40, 0.5, 0.03, 180, 20, 10_000)
    with pytest.raises(ValidationError):
        AcquirerSettings(unknown=1)
    with pytest.raises(ValidationError):
        AcquirerSettings(decline_rate=1.5)


def test_definitions():
    assert ACQUIRERS == ("payments-psp-a", "payments-psp-b")
    assert (DEFINITION_A.name, DEFINITION_B.name) == ACQUIRERS
    assert GATEWAY_CALLERS == ("payments-gateway",)
    assert set(METHODS) == {"Authorize", "Capture", "Refund", "Void", "GetAuthorization", "CloseBatch",
                            "GetSettlementFile"}
    for made in (DEFINITION_A, DEFINITION_B, definition("payments-psp-c")):
        assert made.grpc_services == ("casemesh.payments.v1.AcquirerService",)
        assert made.dependencies == ()
        assert made.settings_model is AcquirerSettings
        assert made.access.public == frozenset()
        assert made.access.internal == {method: GATEWAY_CALLERS for method in METHODS}
    reference = new_psp_reference("payments-psp-b")
    assert reference.startswith("psp-b_") and len(reference) == 26 and reference[6:].isalnum()
    assert reference[6:] == reference[6:].lower()


def test_the_issuer_declines_test_cards_expired_cards_and_at_its_rate():
    issuer = Issuer(AcquirerSettings(decline_rate=0), random.Random(1))
    for card, code in TEST_CARDS.items():
        assert issuer.decide(card, 12, 2099) == (decision := issuer.decide(card, 12, 2099))
        assert not decision.approved and decision.decline_code == code
    now = datetime(2030, 6, 15, tzinfo=UTC)
    assert issuer.decide(CARD, 5, 2030, now).decline_code == "expired_card"
    assert issuer.decide(CARD, 6, 2030, now).approved  # the end of the month: still valid
    assert all(issuer.decide(CARD, 12, 2099).approved for _ in range(200))
    always = Issuer(AcquirerSettings(decline_rate=1), random.Random(2))
    codes = {always.decide(CARD, 12, 2099).decline_code for _ in range(200)}
    assert codes == {"do_not_honor", "insufficient_funds"}
    some = Issuer(AcquirerSettings(decline_rate=0.3), random.Random(3))
    declined = sum(not some.decide(CARD, 12, 2099).approved for _ in range(4_000))
    assert 1_000 < declined < 1_400  # 30% of 4,000, with a wide margin (a seeded draw, not a timing)


async def test_the_issuer_latency_is_lognormal_and_zero_means_no_wait():
    issuer = Issuer(AcquirerSettings(latency_median_ms=40, latency_sigma=0.5), random.Random(4))
    draws = sorted(issuer.latency_s() for _ in range(4_001))
    assert 0.036 < draws[2_000] < 0.044  # the median
    assert draws[3_960] / draws[2_000] > 2.5  # the 99th percentile: e^(2.33 × 0.5) ≈ 3.2 times the median
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    assert await Issuer(AcquirerSettings(latency_median_ms=0), sleep=sleep).round_trip() == 0
    assert waits == []
    drawn = await Issuer(AcquirerSettings(latency_median_ms=5, latency_sigma=0), sleep=sleep).round_trip()
    assert waits == [drawn] and abs(drawn - 0.005) < 1e-9


# ----------------------------------------------------------------------------- validation


def _field(call) -> str:
    with pytest.raises(InvalidArgument) as error:
        call()
    return error.value.field


def _authorize_request(**changes) -> acquirer_pb2.AcquirerServiceAuthorizeRequest:
    fields = {"reference": "pay_1.1", "merchant_id": "m1", "card_number": CARD, "exp_month": 12, "exp_year": 2099,
              "amount": money_pb2.Money(currency_code="EUR", amount_minor=1_000)}
    fields.update(changes)
    return acquirer_pb2.AcquirerServiceAuthorizeRequest(**{k: v for k, v in fields.items() if v is not None})


@pytest.mark.parametrize(("changes", "field"), [
    ({"reference": ""}, "reference"),
    ({"reference": "a" * 65}, "reference"),
    ({"reference": "pay 1"}, "reference"),
    ({"merchant_id": ""}, "merchant_id"),
    ({"merchant_id": "m.1"}, "merchant_id"),
    ({"card_number": ""}, "card_number"),
    ({"card_number": "4242"}, "card_number"),
    ({"card_number": "4242-4242-4242-4242"}, "card_number"),
    ({"card_number": "4" * 20}, "card_number"),
    ({"exp_month": 0}, "exp_month"),
    ({"exp_month": 13}, "exp_month"),
    ({"exp_year": 99}, "exp_year"),
    ({"amount": None}, "amount"),
    ({"amount": money_pb2.Money(currency_code="eur", amount_minor=1)}, "amount.currency_code"),
    ({"amount": money_pb2.Money(currency_code="EUR", amount_minor=0)}, "amount.amount_minor"),
    ({"amount": money_pb2.Money(currency_code="EUR", amount_minor=100_000_001)}, "amount.amount_minor"),
])
def test_authorize_validation_names_the_field(changes, field):
    assert _field(lambda: validation.authorize(_authorize_request(**changes))) == field


def test_validation_of_the_other_requests_names_the_field():
    good = validation.authorize(_authorize_request())
    assert good == validation.Authorize("pay_1.1", "m1", CARD, 12, 2099, "EUR", 1_000)
    capture = acquirer_pb2.AcquirerServiceCaptureRequest
    assert validation.capture(capture(reference="r.1", amount_minor=0)) == ("r.1", 0)
    assert _field(lambda: validation.capture(capture(amount_minor=5))) == "reference"
    assert _field(lambda: validation.capture(capture(reference="r", amount_minor=-1))) == "amount_minor"
    refund_request = acquirer_pb2.AcquirerServiceRefundRequest
    assert validation.refund(refund_request(reference="r", refund_reference="re_1", amount_minor=1)) == (
        "r", "re_1", 1)
    assert _field(lambda: validation.refund(refund_request(refund_reference="x", amount_minor=1))) == "reference"
    assert _field(lambda: validation.refund(refund_request(reference="r", amount_minor=1))) == "refund_reference"
    assert _field(lambda: validation.refund(refund_request(reference="r", refund_reference="x"))) == "amount_minor"
    assert _field(lambda: validation.reference("reference", "")) == "reference"
    assert validation.batch_id("payments-psp-a-000001") == "payments-psp-a-000001"
    for bad in ("", "payments-psp-a", "payments-psp-a-01", "../etc/passwd-000001", "x" * 60 + "-000001"):
        assert _field(lambda bad=bad: validation.batch_id(bad)) == "batch_id"


# ----------------------------------------------------------------------------- idempotency, voids, bounds


async def test_every_rpc_repeated_returns_the_first_answer(acquirer):
    repeats = {rpc: counted("casemesh_payments_acquirer_repeats_total", acquirer=PSP_A, rpc=rpc)
               for rpc in ("Authorize", "Capture", "Refund", "Void")}
    first = await acquirer.authorize(auth())
    assert first.state == APPROVED and first.psp_reference.startswith("psp-a_")
    assert first.amount == money_pb2.Money(currency_code="EUR", amount_minor=1_000)
    assert await acquirer.authorize(auth()) == first
    captured = await acquirer.capture("pay_1.1", 0)
    assert (captured.state, captured.captured_minor, captured.refunded_minor) == (CAPTURED, 1_000, 0)
    assert await acquirer.capture("pay_1.1", 0) == captured
    assert await acquirer.capture("pay_1.1", 1_000) == captured  # 0 meant all of it: the same capture
    first_refund = await acquirer.refund(refund("pay_1.1", "re_1", 300))
    assert (first_refund.state, first_refund.refunded_minor) == (CAPTURED, 300)
    second_refund = await acquirer.refund(refund("pay_1.1", "re_2", 200))
    assert second_refund.refunded_minor == 500
    assert await acquirer.refund(refund("pay_1.1", "re_1", 300)) == first_refund  # as it was answered
    assert await acquirer.capture("pay_1.1", 0) == captured  # the first answer, before the refunds
    assert await acquirer.authorize(auth()) == first  # APPROVED, as decided
    now = await acquirer.get("pay_1.1")
    assert (now.state, now.captured_minor, now.refunded_minor) == (CAPTURED, 1_000, 500)

    await acquirer.authorize(auth("pay_2.1"))
    voided = await acquirer.void("pay_2.1")
    assert voided.state == VOIDED and voided.amount.amount_minor == 1_000
    assert await acquirer.void("pay_2.1") == voided
    tombstone = await acquirer.void("pay_3.1")
    assert await acquirer.void("pay_3.1") == tombstone

    declined = await acquirer.authorize(auth("pay_4.1", card=DECLINED_CARD))
    assert (declined.state, declined.decline_code) == (DECLINED, "card_declined")
    assert await acquirer.authorize(auth("pay_4.1", card=DECLINED_CARD)) == declined
    assert await acquirer.void("pay_4.1") == declined  # nothing held: nothing to release, and no error
    assert await acquirer.get("pay_4.1") == declined
    for rpc, extra in (("Authorize", 3), ("Capture", 3), ("Refund", 1), ("Void", 2)):
        assert counted("casemesh_payments_acquirer_repeats_total", acquirer=PSP_A, rpc=rpc) == repeats[rpc] + extra


async def test_a_repeat_with_other_parameters_is_refused(acquirer):
    await acquirer.authorize(auth(amount=1_000))
    for other in (auth(amount=999), auth(merchant="m2"), auth(currency="USD")):
        with pytest.raises(FailedPrecondition, match="another payment"):
            await acquirer.authorize(other)
    await acquirer.capture("pay_1.1", 600)
    with pytest.raises(FailedPrecondition, match="another amount"):
        await acquirer.capture("pay_1.1", 0)
    with pytest.raises(FailedPrecondition, match="another amount"):
        await acquirer.capture("pay_1.1", 500)
    await acquirer.refund(refund("pay_1.1", "re_1", 100))
    with pytest.raises(FailedPrecondition, match="another refund"):
        await acquirer.refund(refund("pay_1.1", "re_1", 101))
    await acquirer.authorize(auth("pay_2.1"))
    await acquirer.capture("pay_2.1", 0)
    with pytest.raises(FailedPrecondition, match="another refund"):
        await acquirer.refund(refund("pay_2.1", "re_1", 100))  # the refund id is another reference's
    stored = await acquirer.get("pay_1.1")
    assert (stored.captured_minor, stored.refunded_minor) == (600, 100)
    assert (await acquirer.get("pay_2.1")).refunded_minor == 0


async def test_a_void_before_the_authorization_refuses_it(acquirer):
    refused = counted("casemesh_payments_acquirer_authorizations_total", acquirer=PSP_A, result="refused")
    tombstones = counted("casemesh_payments_acquirer_voids_total", acquirer=PSP_A, kind="tombstone")
    tombstone = await acquirer.void("pay_9.1")
    assert tombstone.state == VOIDED and not tombstone.HasField("amount") and tombstone.psp_reference
    with pytest.raises(FailedPrecondition, match="voided before"):
        await acquirer.authorize(auth("pay_9.1"))
    assert await acquirer.get("pay_9.1") == tombstone
    with pytest.raises(FailedPrecondition, match="voided"):
        await acquirer.capture("pay_9.1", 0)
    with pytest.raises(FailedPrecondition, match="not captured"):
        await acquirer.refund(refund("pay_9.1", "re_9", 1))
    assert counted("casemesh_payments_acquirer_authorizations_total", acquirer=PSP_A, result="refused") == refused + 1
    assert counted("casemesh_payments_acquirer_voids_total", acquirer=PSP_A, kind="tombstone") == tombstones + 1


async def test_a_void_during_the_issuers_round_trip_wins(tmp_path):
    sleeping, wake = asyncio.Event(), asyncio.Event()

    async def sleep(_seconds: float) -> None:
        sleeping.set()
        await wake.wait()

    acquirer = make(tmp_path, issuer=Issuer(AcquirerSettings(latency_median_ms=50, decline_rate=0), sleep=sleep))
    try:
        late = asyncio.create_task(acquirer.authorize(auth("pay_5.1")))
        await sleeping.wait()  # the authorization is at the issuer
        voided = await acquirer.void("pay_5.1")  # the gateway gave up on it
        assert voided.state == VOIDED and not voided.HasField("amount")
        wake.set()
        with pytest.raises(FailedPrecondition, match="voided before"):
            await late
        assert (await acquirer.get("pay_5.1")).state == VOIDED
    finally:
        await acquirer.close()


async def test_authorize_racing_void_never_ends_approved(tmp_path):
    """Many references, each with an Authorize and a Void sent concurrently in a random order and interleaved at
    random: every Void succeeds, and no reference is left APPROVED (held) after it."""
    rng = random.Random(7)

    async def sleep(_seconds: float) -> None:
        for _ in range(rng.randrange(4)):
            await asyncio.sleep(0)

    async def after(steps: int, call):
        for _ in range(steps):
            await asyncio.sleep(0)
        return await call

    acquirer = make(tmp_path, issuer=Issuer(AcquirerSettings(latency_median_ms=1, decline_rate=0.2),
                                            random.Random(8), sleep=sleep))
    try:
        references = [f"pay_{i}.1" for i in range(60)]

        async def race(reference: str) -> tuple[object, object]:
            authorize = asyncio.ensure_future(after(rng.randrange(4), acquirer.authorize(auth(reference))))
            void = asyncio.ensure_future(after(rng.randrange(12), acquirer.void(reference)))
            first, second = (authorize, void) if rng.random() < 0.5 else (void, authorize)
            await asyncio.gather(first, second, return_exceptions=True)
            return authorize.exception() or authorize.result(), void.exception() or void.result()

        outcomes = await asyncio.gather(*(race(reference) for reference in references))
        seen = set()
        for reference, (authorized, voided) in zip(references, outcomes, strict=True):
            assert not isinstance(voided, Exception), voided
            final = await acquirer.get(reference)
            assert final.state != APPROVED, (reference, authorized, voided, final)
            if isinstance(authorized, FailedPrecondition):  # the Void came first: a tombstone refused it
                assert final.state == VOIDED and not final.HasField("amount")
                seen.add("refused")
            elif authorized.state == APPROVED:  # the Authorize came first: the Void released it
                assert final.state == VOIDED and final.amount.amount_minor == 1_000
                seen.add("released")
            else:
                assert authorized.state == DECLINED and final.state == DECLINED
        assert seen  # which order wins depends on the ledger's thread: the invariant holds either way
    finally:
        await acquirer.close()


async def test_capture_and_refund_bounds_and_their_codes(acquirer):
    with pytest.raises(NotFound):
        await acquirer.capture("pay_0.1", 0)
    with pytest.raises(NotFound):
        await acquirer.refund(refund("pay_0.1", "re_0", 1))
    with pytest.raises(NotFound):
        await acquirer.get("pay_0.1")
    await acquirer.authorize(auth("pay_1.1", amount=1_000))
    with pytest.raises(FailedPrecondition, match="not captured"):
        await acquirer.refund(refund("pay_1.1", "re_1", 1))
    with pytest.raises(InvalidArgument) as above:
        await acquirer.capture("pay_1.1", 1_001)
    assert above.value.field == "amount_minor"
    assert (await acquirer.capture("pay_1.1", 700)).captured_minor == 700  # partial
    with pytest.raises(FailedPrecondition, match="exceed"):
        await acquirer.refund(refund("pay_1.1", "re_1", 701))  # bounded by the capture, not the authorization
    await acquirer.refund(refund("pay_1.1", "re_1", 400))
    with pytest.raises(FailedPrecondition, match="exceed"):
        await acquirer.refund(refund("pay_1.1", "re_2", 301))
    assert (await acquirer.refund(refund("pay_1.1", "re_2", 300))).refunded_minor == 700  # all of it
    with pytest.raises(FailedPrecondition, match="exceed"):
        await acquirer.refund(refund("pay_1.1", "re_3", 1))
    with pytest.raises(FailedPrecondition, match="captured"):
        await acquirer.void("pay_1.1")
    await acquirer.authorize(auth("pay_2.1", card=DECLINED_CARD))
    with pytest.raises(FailedPrecondition, match="declined"):
        await acquirer.capture("pay_2.1", 0)
    await acquirer.authorize(auth("pay_3.1"))
    await acquirer.void("pay_3.1")
    with pytest.raises(FailedPrecondition, match="voided"):
        await acquirer.capture("pay_3.1", 0)
    expired = await acquirer.authorize(auth("pay_4.1", exp_year=2001))
    assert (expired.state, expired.decline_code) == (DECLINED, "expired_card")
    final = await acquirer.get("pay_1.1")
    assert (final.state, final.captured_minor, final.refunded_minor) == (CAPTURED, 700, 700)


async def test_concurrent_operations_are_group_committed_and_fail_alone(acquirer):
    """Many operations at once (group commits): each one that breaks a rule fails alone, the others commit."""
    await asyncio.gather(*(acquirer.authorize(auth(f"pay_{i}.1")) for i in range(40)))
    captures = [acquirer.capture(f"pay_{i}.1", 2_000 if i % 4 == 0 else 0) for i in range(40)]
    outcomes = await asyncio.gather(*captures, return_exceptions=True)
    assert all(isinstance(o, InvalidArgument) == (i % 4 == 0) for i, o in enumerate(outcomes))
    refunds = [acquirer.refund(refund(f"pay_{i % 40}.1", f"re_{i}", 600)) for i in range(80)]
    outcomes = await asyncio.gather(*refunds, return_exceptions=True)
    for i in range(1, 40):
        if i % 4:  # captured 1,000: one refund of 600 fits, the second not
            assert sum(not isinstance(o, Exception) for o in (outcomes[i], outcomes[i + 40])) == 1
            assert (await acquirer.get(f"pay_{i}.1")).refunded_minor == 600
    response = await acquirer.close_batch()
    assert response.lines == 30 + 30


# ----------------------------------------------------------------------------- settlement


async def test_close_batch_and_the_settlement_file_round_trip_with_fees(acquirer, tmp_path):
    closed = counted("casemesh_payments_acquirer_batches_closed_total", acquirer=PSP_A)
    await acquirer.authorize(auth("pay_1.1", amount=10_000))
    await acquirer.authorize(auth("pay_2.1", amount=555, currency="USD"))
    await acquirer.authorize(auth("pay_3.1", amount=2_000))
    await acquirer.capture("pay_1.1", 0)
    await acquirer.capture("pay_2.1", 0)
    await acquirer.refund(refund("pay_1.1", "re_1", 2_500))
    await acquirer.authorize(auth("pay_4.1", amount=1_000))  # approved, never captured: no line
    response = await acquirer.close_batch()
    assert response.batch_id == "payments-psp-a-000001" and response.lines == 3
    # Fees: round_half_up(amount × 180 / 10,000) + 20 per capture; none on a refund.
    assert settlement.capture_fee(10_000, 180, 20) == 200 and settlement.capture_fee(555, 180, 20) == 30
    assert list(response.gross) == [money_pb2.Money(currency_code="EUR", amount_minor=7_500),
                                    money_pb2.Money(currency_code="USD", amount_minor=555)]
    assert list(response.fees) == [money_pb2.Money(currency_code="EUR", amount_minor=200),
                                   money_pb2.Money(currency_code="USD", amount_minor=30)]
    path = tmp_path / "settlement" / "payments-psp-a-000001.csv"
    assert path.exists() and [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    text = path.read_text()
    assert text.splitlines()[0] == ("reference,psp_reference,kind,refund_reference,merchant_id,currency,"
                                    "amount_minor,fee_minor,booked_at_unix_ms")
    lines = await acquirer.settlement_file(response.batch_id)
    assert [(line.reference, line.kind, line.refund_reference, line.currency, line.amount_minor, line.fee_minor)
            for line in lines] == [("pay_1.1", "capture", "", "EUR", 10_000, 200),
                                   ("pay_2.1", "capture", "", "USD", 555, 30),
                                   ("pay_1.1", "refund", "re_1", "EUR", 2_500, 0)]
    psp = (await acquirer.get("pay_1.1")).psp_reference
    assert lines[0].psp_reference == lines[2].psp_reference == psp and lines[0].merchant_id == "m1"
    assert settlement.summarize(lines).gross == {"EUR": 7_500, "USD": 555}
    assert settlement.parse(text) == lines
    proto = lines[2].to_proto()
    assert proto.kind == acquirer_pb2.SETTLEMENT_KIND_REFUND and proto.fee.amount_minor == 0
    assert proto.amount == money_pb2.Money(currency_code="EUR", amount_minor=2_500)

    with pytest.raises(FailedPrecondition, match="open"):
        await acquirer.settlement_file("payments-psp-a-000002")
    with pytest.raises(NotFound):
        await acquirer.settlement_file("payments-psp-a-000003")
    with pytest.raises(NotFound):
        await acquirer.settlement_file("payments-psp-b-000001")
    await acquirer.capture("pay_3.1", 0)  # after the cut-off: the next batch
    await acquirer.refund(refund("pay_1.1", "re_2", 500))
    second = await acquirer.close_batch()
    assert (second.batch_id, second.lines) == ("payments-psp-a-000002", 2)
    assert list(second.gross) == [money_pb2.Money(currency_code="EUR", amount_minor=1_500)]
    empty = await acquirer.close_batch()  # nothing in it: closed all the same
    assert (empty.batch_id, empty.lines, list(empty.gross), list(empty.fees)) == ("payments-psp-a-000003", 0, [], [])
    assert await acquirer.settlement_file("payments-psp-a-000003") == []
    assert counted("casemesh_payments_acquirer_batches_closed_total", acquirer=PSP_A) == closed + 3


async def test_a_settlement_file_is_written_atomically(acquirer, tmp_path, monkeypatch):
    await acquirer.authorize(auth())
    await acquirer.capture("pay_1.1", 0)
    real_replace = os.replace

    def failing_replace(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(StoreUnavailable):
        await acquirer.close_batch()
    folder = tmp_path / "settlement"
    assert list(folder.iterdir()) == []  # neither the file nor its temporary one
    assert (await acquirer.store.open_batch()).batch_id == "payments-psp-a-000001"  # still open, nothing lost
    monkeypatch.setattr(os, "replace", real_replace)
    response = await acquirer.close_batch()
    assert (response.batch_id, response.lines) == ("payments-psp-a-000001", 1)
    # A file rewritten in place (the same batch, after a crash before its commit): readers see one or the other.
    path = folder / "rewritten.csv"
    line = settlement.SettlementLine("r", "psp-a_x", "capture", "", "m", "EUR", 5, 1, 1)
    settlement.write_file(path, [line])
    settlement.write_file(path, [line, line])
    assert settlement.read_file(path) == [line, line]
    with pytest.raises(ValueError, match="header"):
        settlement.parse("a,b\n")
    with pytest.raises(ValueError, match="row 2"):
        settlement.parse(settlement.render([line]).replace(",capture,", ",chargeback,"))


async def test_a_lost_or_damaged_settlement_file_is_written_again_from_the_ledger(acquirer, tmp_path):
    await acquirer.authorize(auth())
    await acquirer.capture("pay_1.1", 0)
    batch_id = (await acquirer.close_batch()).batch_id
    expected = await acquirer.settlement_file(batch_id)
    path = tmp_path / "settlement" / f"{batch_id}.csv"
    path.unlink()
    assert await acquirer.settlement_file(batch_id) == expected and path.exists()
    path.write_text(settlement.render([]))  # truncated
    assert await acquirer.settlement_file(batch_id) == expected
    assert settlement.read_file(path) == expected


# ----------------------------------------------------------------------------- durability and the schema


async def test_a_reopened_ledger_keeps_everything(tmp_path):
    first = make(tmp_path)
    approved = await first.authorize(auth("pay_1.1"))
    await first.capture("pay_1.1", 0)
    await first.refund(refund("pay_1.1", "re_1", 100))
    declined = await first.authorize(auth("pay_2.1", card=DECLINED_CARD))
    tombstone = await first.void("pay_3.1")
    await first.authorize(auth("pay_4.1"))
    released = await first.void("pay_4.1")
    closed = await first.close_batch()
    await first.authorize(auth("pay_5.1"))
    await first.capture("pay_5.1", 300)  # into the open batch 2, before the restart
    before = {r: await first.get(r) for r in ("pay_1.1", "pay_2.1", "pay_3.1", "pay_4.1", "pay_5.1")}
    await first.close()
    with pytest.raises(StoreUnavailable):
        await first.get("pay_1.1")

    again = make(tmp_path)
    try:
        assert {r: await again.get(r) for r in before} == before
        assert await again.authorize(auth("pay_1.1")) == approved
        assert await again.authorize(auth("pay_2.1", card=DECLINED_CARD)) == declined
        with pytest.raises(FailedPrecondition, match="voided before"):
            await again.authorize(auth("pay_3.1"))  # the tombstone survived
        assert await again.void("pay_3.1") == tombstone and await again.void("pay_4.1") == released
        assert await again.refund(refund("pay_1.1", "re_1", 100)) == (await again.get("pay_1.1"))
        assert (await again.store.open_batch()).batch_id == "payments-psp-a-000002"
        await again.refund(refund("pay_5.1", "re_5", 50))
        second = await again.close_batch()
        assert (second.batch_id, second.lines) == ("payments-psp-a-000002", 2)
        lines = await again.settlement_file(second.batch_id)
        assert [(line.reference, line.kind) for line in lines] == [("pay_5.1", "capture"), ("pay_5.1", "refund")]
        assert len(await again.settlement_file(closed.batch_id)) == 2
    finally:
        await again.close()


async def test_the_schema_refuses_what_breaks_the_ledger(acquirer, tmp_path):
    await acquirer.authorize(auth("pay_1.1", amount=1_000))
    await acquirer.capture("pay_1.1", 600)
    await acquirer.authorize(auth("pay_2.1"))
    await acquirer.void("pay_2.1")
    await acquirer.void("pay_3.1")
    await acquirer.close_batch()
    db = sqlite3.connect(tmp_path / "ledger.sqlite", isolation_level=None)
    refused = [
        f"UPDATE authorizations SET state = {APPROVED} WHERE reference = 'pay_2.1'",  # voided → approved
        f"UPDATE authorizations SET state = {APPROVED}, currency = 'EUR' WHERE reference = 'pay_3.1'",
        "UPDATE authorizations SET captured_minor = 1001 WHERE reference = 'pay_1.1'",  # above the authorization
        "UPDATE authorizations SET captured_minor = 500 WHERE reference = 'pay_1.1'",  # a capture changed
        "UPDATE authorizations SET refunded_minor = 100 WHERE reference = 'pay_1.1'",  # not the sum of its refunds
        "UPDATE authorizations SET amount_minor = 2000 WHERE reference = 'pay_1.1'",
        "DELETE FROM authorizations WHERE reference = 'pay_1.1'",
        # A refund above the capture, and one into the closed batch.
        "INSERT INTO refunds VALUES ('re_x', 'pay_1.1', 700, 700, 'payments-psp-a-000002', 99, 1)",
        "INSERT INTO refunds VALUES ('re_y', 'pay_1.1', 100, 100, 'payments-psp-a-000001', 98, 1)",
        "UPDATE batches SET state = 'open' WHERE batch_id = 'payments-psp-a-000001'",
        "INSERT INTO batches VALUES ('payments-psp-a-000009', 9, 'open', 1, NULL, NULL, NULL)",  # a second open one
        (f"INSERT INTO authorizations VALUES ('pay_9.1', 'psp-a_{'a' * 20}', {CAPTURED}, 'm', 'EUR', 5, '', 5, 0, 0,"
         " 'payments-psp-a-000002', 97, 1, 1, 1)"),  # born captured
    ]
    try:
        for statement in refused:
            with pytest.raises(sqlite3.IntegrityError):
                db.execute(statement)
    finally:
        db.close()
    assert (await acquirer.get("pay_1.1")).captured_minor == 600


# ----------------------------------------------------------------------------- a model of random sequences


REFERENCES = tuple(f"pay_{i}.1" for i in range(6))
REFUND_REFERENCES = tuple(f"re_{i}" for i in range(8))
PICK = st.integers(min_value=0, max_value=1_000)


@dataclass
class Model:
    """What the ledger must hold for one reference (amounts in minor units); ``tombstone``: voided unseen."""

    state: int
    amount: int = 0
    merchant: str = ""
    captured: int = 0
    refunded: int = 0
    first_state: int = 0

    @property
    def tombstone(self) -> bool:
        return self.amount == 0


class LedgerMachine(RuleBasedStateMachine):
    """Any sequence of authorizations (some declined, some repeats with other parameters), captures (full, partial,
    too much), refunds (repeats, reused refund ids, too much), voids (of approved, unknown, captured references),
    batch closes and restarts of the ledger from its file: every answer and every stored record are the model's; and
    the ledger balances: the lines of every batch (the files of the closed ones, the ledger's lines of the open one)
    sum per reference to what was captured and refunded, and each closed batch's gross and fees are its file's."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="payments-acquirer-"))
        self.acquirer = self._open()
        self.model: dict[str, Model] = {}
        self.refunds: dict[str, tuple[str, int, int]] = {}  # refund id → (reference, amount, refunded after)
        self.closed: list[str] = []

    def _open(self) -> Acquirer:
        return make(self.folder)

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def expect(self, coroutine, error: type[Exception] | None):
        if error is None:
            return self.run(coroutine)
        with pytest.raises(error):
            self.run(coroutine)
        return None

    @rule(reference=st.sampled_from(REFERENCES), amount=st.sampled_from([1_000, 1_000, 500]),
          declined=st.sampled_from([False, False, False, True]), merchant=st.sampled_from(["m1", "m1", "m2"]))
    def authorize(self, reference: str, amount: int, declined: bool, merchant: str) -> None:
        known = self.model.get(reference)
        call = self.acquirer.authorize(auth(reference, amount, DECLINED_CARD if declined else CARD, merchant))
        if known is None:
            answer = self.run(call)
            state = DECLINED if declined else APPROVED
            assert answer.state == state
            self.model[reference] = Model(state, amount, merchant, first_state=state)
        elif known.tombstone or (known.amount, known.merchant) != (amount, merchant):
            self.expect(call, FailedPrecondition)
        else:
            answer = self.run(call)
            assert (answer.state, answer.captured_minor, answer.refunded_minor) == (known.first_state, 0, 0)

    def _held(self, pick: int, *states: int) -> str:
        """A reference of the model in one of ``states`` (the rule's precondition says there is one)."""
        fitting = sorted(r for r, m in self.model.items() if m.state in states)
        return fitting[pick % len(fitting)]

    def _has(*states: int):
        return lambda self: any(m.state in states for m in self.model.values())

    @precondition(_has(APPROVED, CAPTURED))
    @rule(pick=PICK, amount=st.sampled_from([0, 0, 300, 500, 1_000, 1_200]))
    def capture_held(self, pick: int, amount: int) -> None:
        self._capture(self._held(pick, APPROVED, CAPTURED), amount)

    @rule(reference=st.sampled_from(REFERENCES), amount=st.sampled_from([0, 500, 1_200]))
    def capture_any(self, reference: str, amount: int) -> None:
        self._capture(reference, amount)

    def _capture(self, reference: str, amount: int) -> None:
        known = self.model.get(reference)
        call = self.acquirer.capture(reference, amount)
        if known is None:
            self.expect(call, NotFound)
        elif known.state in (VOIDED, DECLINED):
            self.expect(call, FailedPrecondition)
        elif amount > known.amount:
            self.expect(call, InvalidArgument)
        elif known.state == CAPTURED and known.captured != (amount or known.amount):
            self.expect(call, FailedPrecondition)
        else:
            answer = self.run(call)
            known.state, known.captured = CAPTURED, amount or known.amount
            assert (answer.state, answer.captured_minor, answer.refunded_minor) == (CAPTURED, known.captured, 0)

    @precondition(_has(CAPTURED))
    @rule(pick=PICK, refund_reference=st.sampled_from(REFUND_REFERENCES), amount=st.sampled_from([100, 250, 600]))
    def refund_captured(self, pick: int, refund_reference: str, amount: int) -> None:
        self._refund(self._held(pick, CAPTURED), refund_reference, amount)

    @rule(reference=st.sampled_from(REFERENCES), refund_reference=st.sampled_from(REFUND_REFERENCES),
          amount=st.sampled_from([100, 600]))
    def refund_any(self, reference: str, refund_reference: str, amount: int) -> None:
        self._refund(reference, refund_reference, amount)

    def _refund(self, reference: str, refund_reference: str, amount: int) -> None:
        known = self.model.get(reference)
        earlier = self.refunds.get(refund_reference)
        call = self.acquirer.refund(refund(reference, refund_reference, amount))
        if earlier is not None:
            if earlier[:2] != (reference, amount):
                self.expect(call, FailedPrecondition)
            else:
                assert self.run(call).refunded_minor == earlier[2]
        elif known is None:
            self.expect(call, NotFound)
        elif known.state != CAPTURED or known.refunded + amount > known.captured:
            self.expect(call, FailedPrecondition)
        else:
            answer = self.run(call)
            known.refunded += amount
            self.refunds[refund_reference] = (reference, amount, known.refunded)
            assert (answer.state, answer.refunded_minor) == (CAPTURED, known.refunded)

    @rule(reference=st.sampled_from(REFERENCES))
    def void(self, reference: str) -> None:
        known = self.model.get(reference)
        call = self.acquirer.void(reference)
        if known is not None and known.state == CAPTURED:
            self.expect(call, FailedPrecondition)
            return
        answer = self.run(call)
        if known is None:
            self.model[reference] = Model(VOIDED)
        elif known.state == APPROVED:
            known.state = VOIDED
        assert answer.state == self.model[reference].state

    @rule(now=st.sampled_from([False, False, True]))
    def close_batch(self, now: bool) -> None:
        if not now:  # a third of the time: batches gather a few lines
            return
        response = self.run(self.acquirer.close_batch())
        lines = self.run(self.acquirer.settlement_file(response.batch_id))
        totals = settlement.summarize(lines)
        assert response.lines == len(lines)
        assert list(response.gross) == totals.gross_proto() and list(response.fees) == totals.fees_proto()
        fee = self.acquirer.fee
        assert all(line.fee_minor == (fee(line.amount_minor) if line.kind == "capture" else 0) for line in lines)
        self.closed.append(response.batch_id)

    @rule(now=st.sampled_from([False, False, True]))
    def restart(self, now: bool) -> None:
        if not now:
            return
        self.run(self.acquirer.close())
        self.acquirer = self._open()

    @invariant()
    def the_ledger_is_the_model_and_the_batches_balance(self) -> None:
        for reference, known in self.model.items():
            stored = self.run(self.acquirer.get(reference))
            assert (stored.state, stored.amount.amount_minor, stored.captured_minor, stored.refunded_minor) == (
                known.state, known.amount, known.captured, known.refunded)
            assert stored.HasField("amount") != known.tombstone
        captured: dict[str, int] = {}
        refunded: dict[str, int] = {}
        open_batch = self.run(self.acquirer.store.open_batch()).batch_id
        batches = [self.run(self.acquirer.settlement_file(b)) for b in self.closed]
        batches.append(self.run(self.acquirer.store.lines(open_batch)))
        for lines in batches:
            for line in lines:
                into = captured if line.kind == "capture" else refunded
                into[line.reference] = into.get(line.reference, 0) + line.amount_minor
        assert captured == {r: m.captured for r, m in self.model.items() if m.captured}
        assert refunded == {r: m.refunded for r, m in self.model.items() if m.refunded}
        gross = sum(sum(settlement.summarize(lines).gross.values()) for lines in batches)
        assert gross == sum(m.captured - m.refunded for m in self.model.values())

    def teardown(self) -> None:
        self.run(self.acquirer.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)


TestLedgerModel = LedgerMachine.TestCase
TestLedgerModel.settings = hypothesis_settings(max_examples=40, stateful_step_count=40, deadline=None)


# ----------------------------------------------------------------------------- over gRPC


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def _stream_code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        async for _ in call:
            pass
    return error.value.code(), error.value.details()


def _authorize(reference: str, amount: int = 1_000, card: str = CARD, **changes):
    return _authorize_request(reference=reference, card_number=card,
                              amount=money_pb2.Money(currency_code="EUR", amount_minor=amount), **changes)


async def test_both_acquirers_through_the_runtime_as_the_gateway(tmp_path):
    """DEFINITION_A and DEFINITION_B served by the runtime in one process, with their own settings and folders:
    calls with the gateway's identity; an anonymous caller is refused."""
    settings = {PSP_A: {**QUIET, "fee_bps": 100, "fee_fixed_minor": 0},
                "payments-psp-b": {**QUIET, "fee_bps": 250, "fee_fixed_minor": 30}}
    topology = loopback_topology(list(ACQUIRERS), data_dir=tmp_path, settings=settings)
    running, stop, task = await start_mesh([DEFINITION_A, DEFINITION_B], topology)
    gateway = RuntimeContext(topology, secret=TEST_SECRET).for_service("payments-gateway")
    try:
        a = acquirer_pb2_grpc.AcquirerServiceStub(gateway.channel(PSP_A))
        b = acquirer_pb2_grpc.AcquirerServiceStub(gateway.channel("payments-psp-b"))
        approved = (await a.Authorize(_authorize("pay_1.1"), timeout=WAIT_S)).authorization
        assert approved.state == APPROVED and approved.psp_reference.startswith("psp-a_")
        assert (await a.Authorize(_authorize("pay_1.1"), timeout=WAIT_S)).authorization == approved
        on_b = (await b.Authorize(_authorize("pay_1.1", amount=2_000), timeout=WAIT_S)).authorization
        assert on_b.psp_reference.startswith("psp-b_")  # each acquirer its own ledger

        code, details = await _code(a.Authorize(_authorize("pay_2.1", exp_month=13), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("exp_month")
        code, details = await _code(a.Authorize(_authorize_request(amount=money_pb2.Money(
            currency_code="EUR", amount_minor=0)), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("amount.amount_minor")
        declined = (await a.Authorize(_authorize("pay_3.1", card=DECLINED_CARD), timeout=WAIT_S)).authorization
        assert (declined.state, declined.decline_code) == (DECLINED, "card_declined")

        void = acquirer_pb2.AcquirerServiceVoidRequest
        tombstone = (await a.Void(void(reference="pay_4.1"), timeout=WAIT_S)).authorization
        assert tombstone.state == VOIDED and not tombstone.HasField("amount")
        code, _ = await _code(a.Authorize(_authorize("pay_4.1"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        code, details = await _code(a.Void(void(reference=""), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("reference")

        capture = acquirer_pb2.AcquirerServiceCaptureRequest
        code, _ = await _code(a.Capture(capture(reference="pay_0.1"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _code(a.Capture(capture(reference="pay_1.1", amount_minor=5_000), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("amount_minor")
        code, _ = await _code(a.Capture(capture(reference="pay_3.1"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        assert (await a.Capture(capture(reference="pay_1.1"), timeout=WAIT_S)).authorization.captured_minor == 1_000
        code, _ = await _code(a.Void(void(reference="pay_1.1"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        await b.Capture(capture(reference="pay_1.1", amount_minor=2_000), timeout=WAIT_S)

        refund_request = acquirer_pb2.AcquirerServiceRefundRequest
        code, details = await _code(a.Refund(refund_request(reference="pay_1.1", refund_reference="re 1",
                                                            amount_minor=1), timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("refund_reference")
        code, _ = await _code(a.Refund(refund_request(reference="pay_1.1", refund_reference="re_1",
                                                      amount_minor=1_001), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        refunded = await a.Refund(refund_request(reference="pay_1.1", refund_reference="re_1", amount_minor=400),
                                  timeout=WAIT_S)
        assert refunded.authorization.refunded_minor == 400
        got = (await a.GetAuthorization(acquirer_pb2.GetAuthorizationRequest(reference="pay_1.1"),
                                        timeout=WAIT_S)).authorization
        assert (got.state, got.captured_minor, got.refunded_minor) == (CAPTURED, 1_000, 400)
        code, _ = await _code(a.GetAuthorization(acquirer_pb2.GetAuthorizationRequest(reference="pay_0.1"),
                                                 timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND

        closed = await a.CloseBatch(acquirer_pb2.CloseBatchRequest(), timeout=WAIT_S)
        assert (closed.batch_id, closed.lines) == ("payments-psp-a-000001", 2)
        assert list(closed.gross) == [money_pb2.Money(currency_code="EUR", amount_minor=600)]
        assert list(closed.fees) == [money_pb2.Money(currency_code="EUR", amount_minor=10)]  # 1% of 1,000
        lines = [line async for line in a.GetSettlementFile(
            acquirer_pb2.GetSettlementFileRequest(batch_id=closed.batch_id), timeout=WAIT_S)]
        assert [(line.kind, line.amount.amount_minor, line.fee.amount_minor, line.refund_reference)
                for line in lines] == [(acquirer_pb2.SETTLEMENT_KIND_CAPTURE, 1_000, 10, ""),
                                       (acquirer_pb2.SETTLEMENT_KIND_REFUND, 400, 0, "re_1")]
        assert (tmp_path / PSP_A / "settlement" / "payments-psp-a-000001.csv").exists()
        code, _ = await _stream_code(a.GetSettlementFile(
            acquirer_pb2.GetSettlementFileRequest(batch_id="payments-psp-a-000002"), timeout=WAIT_S))
        assert code == grpc.StatusCode.FAILED_PRECONDITION
        code, _ = await _stream_code(a.GetSettlementFile(
            acquirer_pb2.GetSettlementFileRequest(batch_id="payments-psp-a-000042"), timeout=WAIT_S))
        assert code == grpc.StatusCode.NOT_FOUND
        code, details = await _stream_code(a.GetSettlementFile(acquirer_pb2.GetSettlementFileRequest(),
                                                               timeout=WAIT_S))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("batch_id")
        closed_b = await b.CloseBatch(acquirer_pb2.CloseBatchRequest(), timeout=WAIT_S)
        assert closed_b.batch_id == "payments-psp-b-000001"
        assert list(closed_b.fees) == [money_pb2.Money(currency_code="EUR", amount_minor=80)]  # 2.5% + 30

        anonymous = acquirer_pb2_grpc.AcquirerServiceStub(running.anonymous_channel(PSP_A))
        code, _ = await _code(anonymous.GetAuthorization(acquirer_pb2.GetAuthorizationRequest(reference="pay_1.1"),
                                                         timeout=WAIT_S))
        assert code == grpc.StatusCode.PERMISSION_DENIED
        assert counted("casemesh_payments_acquirer_captures_total", acquirer="payments-psp-b") >= 1
    finally:
        await gateway.close()
        await running.close()
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_an_unusable_ledger_or_too_many_references_answer_unavailable(tmp_path):
    acquirer = make(tmp_path, max_references_locked=1)
    server = grpc.aio.server(interceptors=[ServerInterceptor(metrics=RpcMetrics("server",
                                                                                registry=CollectorRegistry()))])
    acquirer_pb2_grpc.add_AcquirerServiceServicer_to_server(AcquirerServicer(acquirer), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    stub = acquirer_pb2_grpc.AcquirerServiceStub(channel)
    try:
        await stub.Authorize(_authorize("pay_1.1"), timeout=WAIT_S)
        async with acquirer.locks.hold("pay_other.1"):  # every lock is taken
            code, details = await _code(stub.Void(acquirer_pb2.AcquirerServiceVoidRequest(reference="pay_2.1"),
                                                  timeout=WAIT_S))
            assert code == grpc.StatusCode.UNAVAILABLE and "nothing was processed" in details
        assert (await stub.Void(acquirer_pb2.AcquirerServiceVoidRequest(reference="pay_2.1"),
                                timeout=WAIT_S)).authorization.state == VOIDED
        closed = await stub.CloseBatch(acquirer_pb2.CloseBatchRequest(), timeout=WAIT_S)
        await acquirer.close()  # the disk is gone
        for call in (stub.Authorize(_authorize("pay_3.1"), timeout=WAIT_S),
                     stub.Capture(acquirer_pb2.AcquirerServiceCaptureRequest(reference="pay_1.1"), timeout=WAIT_S),
                     stub.CloseBatch(acquirer_pb2.CloseBatchRequest(), timeout=WAIT_S)):
            code, _ = await _code(call)
            assert code == grpc.StatusCode.UNAVAILABLE
        code, _ = await _stream_code(stub.GetSettlementFile(
            acquirer_pb2.GetSettlementFileRequest(batch_id=closed.batch_id), timeout=WAIT_S))
        assert code == grpc.StatusCode.UNAVAILABLE
    finally:
        await channel.close()
        await server.stop(None)
        with contextlib.suppress(Exception):
            await acquirer.close()
