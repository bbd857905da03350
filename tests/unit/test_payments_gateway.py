"""payments-gateway (services/payments/gateway): idempotency keys (replay, conflict, concurrency, crashes between the
charge and the answer), PSP routing with failover, reversals and circuit breakers, fraud blocking and failing open,
the capture / void / refund rules, the schema's invariants, status codes over gRPC, and a hypothesis property over
random retry / duplicate / failure / crash schedules: one payment per key, at most one unreversed approval per payment.

Fakes stand in for payments-vault, payments-fraud and the acquirers at the level of their gRPC stubs (the gateway's
real clients are used); no other service runs. The fake acquirer keeps the acquirer's contract: idempotent per
reference, a Void of an unknown reference leaves a tombstone that refuses a late Authorize.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import (
    acquirer_pb2,
    acquirer_pb2_grpc,
    fraud_pb2,
    fraud_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    payments_pb2,
    settlement_pb2,
    settlement_pb2_grpc,
    vault_pb2,
    vault_pb2_grpc,
)
from casemesh.services.payments import contract
from casemesh.services.payments.gateway import metrics, service, validation
from casemesh.services.payments.gateway.clients import (
    AcquirerClient,
    FraudClient,
    VaultClient,
)
from casemesh.services.payments.gateway.idempotency import (
    NEW,
    REPLAY,
    RESUME,
    IdempotencyKeys,
    request_hash,
)
from casemesh.services.payments.gateway.payments import PaymentGateway, gateway_id
from casemesh.services.payments.gateway.routing import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    AcquirerBreaker,
    Router,
)
from casemesh.services.payments.gateway.settings import GatewaySettings
from casemesh.services.payments.gateway.settlement import Settlement
from casemesh.services.payments.gateway.store import (
    APPROVED,
    IN_FLIGHT,
    REVERSED,
    REVERSING,
    SENT,
    AttemptRecord,
    GatewayStore,
    StoreUnavailable,
    insert_attempt,
    insert_key,
    key_done,
    set_attempt_state,
    update_payment,
)
from casemesh.services.runtime.component import RuntimeContext
from casemesh.services.runtime.deadlines import INBOUND_DEADLINE
from casemesh.services.runtime.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from casemesh.services.runtime.interceptors.server import ServerInterceptor
from casemesh.services.runtime.metrics import RpcMetrics
from casemesh.services.runtime.topology import Endpoint, Topology

WAIT_S = 10.0
PSP_A, PSP_B = "payments-psp-a", "payments-psp-b"
MERCHANT = "m1"
GOOD_CARD = "4242424242424242"
#: Fast backoff, no grace: the background work of a test happens when the test asks for it.
FAST = {"reversal_initial_backoff_s": 0.001, "reversal_max_backoff_s": 0.002, "resume_grace_s": 0}


def rpc_error(code: grpc.StatusCode, details: str = "") -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=details)


def token(n: int) -> str:
    return f"tok_{n:024d}"


# ----------------------------------------------------------------------------- fakes of the other services' stubs


class FakeVaultStub:
    """CardVaultService.DetokenizeCard: the cards of :meth:`add`; another merchant's or an unknown token NOT_FOUND;
    ``down`` → UNAVAILABLE."""

    def __init__(self) -> None:
        self.cards: dict[str, tuple[str, str]] = {}
        self.down = False
        self.calls = 0

    def add(self, n: int, number: str = GOOD_CARD, merchant: str = MERCHANT) -> str:
        self.cards[token(n)] = (merchant, number)
        return token(n)

    async def DetokenizeCard(self, request, timeout):
        assert timeout is not None
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "vault down")
        found = self.cards.get(request.card_token)
        if found is None or found[0] != request.merchant_id:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, f"card_token: no token {request.card_token}")
        number = found[1]
        return vault_pb2.DetokenizeCardResponse(card_number=number, card=payments_pb2.Card(
            brand=payments_pb2.CARD_BRAND_VISA, last4=number[-4:], exp_month=12, exp_year=2040,
            fingerprint=(number * 4)[:64].replace("4", "a")))


class FakeFraudStub:
    """FraudService.ScorePayment: ``decision`` (ALLOW by default) with ``score``; ``down`` → UNAVAILABLE."""

    def __init__(self) -> None:
        self.decision = fraud_pb2.FRAUD_DECISION_ALLOW
        self.score = 10
        self.down = False
        self.calls: list[str] = []

    async def ScorePayment(self, request, timeout):
        assert timeout is not None
        self.calls.append(request.payment_id)
        if self.down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "fraud down")
        return fraud_pb2.ScorePaymentResponse(score=self.score, decision=self.decision)


class FakeAcquirerStub:
    """AcquirerService as the acquirer's contract says (per-reference idempotency, void tombstones, batches), with
    failures scripted per call of Authorize: ``ok``; ``down`` (UNAVAILABLE, nothing processed); ``lose`` (processed,
    then the answer lost: DEADLINE_EXCEEDED); ``hang`` (processed, then no answer until :attr:`release` is set).
    ``mode`` is used when ``script`` is empty. ``void_failures`` Voids fail UNAVAILABLE first; ``capture_down`` /
    ``refund_down`` fail those calls UNAVAILABLE (before processing)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.mode = "ok"
        self.script: list[str] = []
        self.auths: dict[str, acquirer_pb2.Authorization] = {}
        self.authorize_calls: list[str] = []
        self.void_calls: list[str] = []
        self.void_failures = 0
        self.capture_down = False
        self.refund_down = False
        self.release = asyncio.Event()
        self.refunds: dict[str, int] = {}
        self.open_lines: list[acquirer_pb2.GetSettlementFileResponse] = []
        self.batches: dict[str, list[acquirer_pb2.GetSettlementFileResponse]] = {}
        self.close_down = False
        self.sequence = 0

    def approved(self, prefix: str = "") -> list[str]:
        """References approved (or captured) and not voided, starting with ``prefix``."""
        return sorted(r for r, a in self.auths.items() if r.startswith(prefix) and a.state in (
            acquirer_pb2.AUTHORIZATION_STATE_APPROVED, acquirer_pb2.AUTHORIZATION_STATE_CAPTURED))

    async def Authorize(self, request, timeout):
        assert timeout is not None
        mode = self.script.pop(0) if self.script else self.mode
        self.authorize_calls.append(request.reference)
        await asyncio.sleep(0)
        if mode == "down":
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{self.name} down")
        auth = self.auths.get(request.reference)
        if auth is not None and auth.state == acquirer_pb2.AUTHORIZATION_STATE_VOIDED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, f"reference: {request.reference} was voided")
        if auth is None:
            declined = contract.TEST_CARDS.get(request.card_number)
            auth = self.auths[request.reference] = acquirer_pb2.Authorization(
                reference=request.reference, psp_reference=f"{self.name}_x", amount=request.amount,
                state=(acquirer_pb2.AUTHORIZATION_STATE_DECLINED if declined
                       else acquirer_pb2.AUTHORIZATION_STATE_APPROVED), decline_code=declined or "")
        if mode == "lose":
            raise rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        if mode == "hang":
            await self.release.wait()
        return acquirer_pb2.AcquirerServiceAuthorizeResponse(authorization=auth)

    async def Void(self, request, timeout):
        assert timeout is not None
        self.void_calls.append(request.reference)
        await asyncio.sleep(0)
        if self.void_failures > 0:
            self.void_failures -= 1
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{self.name} down")
        auth = self.auths.get(request.reference)
        if auth is None:
            auth = self.auths[request.reference] = acquirer_pb2.Authorization(
                reference=request.reference, state=acquirer_pb2.AUTHORIZATION_STATE_VOIDED)
        elif auth.state == acquirer_pb2.AUTHORIZATION_STATE_CAPTURED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "captured")
        else:
            auth.state = acquirer_pb2.AUTHORIZATION_STATE_VOIDED
        return acquirer_pb2.AcquirerServiceVoidResponse(authorization=auth)

    def _line(self, auth, kind, amount, refund_reference=""):
        fee = amount * 30 // 10_000 + 25 if kind == acquirer_pb2.SETTLEMENT_KIND_CAPTURE else 0
        self.open_lines.append(acquirer_pb2.GetSettlementFileResponse(
            reference=auth.reference, psp_reference=auth.psp_reference, kind=kind, refund_reference=refund_reference,
            merchant_id=MERCHANT, amount=money_pb2.Money(currency_code=auth.amount.currency_code, amount_minor=amount),
            fee=money_pb2.Money(currency_code=auth.amount.currency_code, amount_minor=fee), booked_at_unix_ms=1))

    async def Capture(self, request, timeout):
        assert timeout is not None
        await asyncio.sleep(0)
        if self.capture_down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{self.name} down")
        auth = self.auths.get(request.reference)
        if auth is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "reference: unknown")
        amount = request.amount_minor or auth.amount.amount_minor
        if auth.state == acquirer_pb2.AUTHORIZATION_STATE_CAPTURED and auth.captured_minor == amount:
            return acquirer_pb2.AcquirerServiceCaptureResponse(authorization=auth)
        if auth.state != acquirer_pb2.AUTHORIZATION_STATE_APPROVED:
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not approved")
        auth.state, auth.captured_minor = acquirer_pb2.AUTHORIZATION_STATE_CAPTURED, amount
        self._line(auth, acquirer_pb2.SETTLEMENT_KIND_CAPTURE, amount)
        return acquirer_pb2.AcquirerServiceCaptureResponse(authorization=auth)

    async def Refund(self, request, timeout):
        assert timeout is not None
        await asyncio.sleep(0)
        if self.refund_down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{self.name} down")
        auth = self.auths.get(request.reference)
        if auth is None:
            raise rpc_error(grpc.StatusCode.NOT_FOUND, "reference: unknown")
        if request.refund_reference in self.refunds:
            return acquirer_pb2.AcquirerServiceRefundResponse(authorization=auth)
        if (auth.state != acquirer_pb2.AUTHORIZATION_STATE_CAPTURED
                or auth.refunded_minor + request.amount_minor > auth.captured_minor):
            raise rpc_error(grpc.StatusCode.FAILED_PRECONDITION, "not captured, or over the capture")
        auth.refunded_minor += request.amount_minor
        self.refunds[request.refund_reference] = request.amount_minor
        self._line(auth, acquirer_pb2.SETTLEMENT_KIND_REFUND, request.amount_minor, request.refund_reference)
        return acquirer_pb2.AcquirerServiceRefundResponse(authorization=auth)

    async def CloseBatch(self, request, timeout):
        assert timeout is not None
        if self.close_down:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"{self.name} down")
        self.sequence += 1
        batch_id = f"{self.name}-{self.sequence:06d}"
        self.batches[batch_id], self.open_lines = self.open_lines, []
        return acquirer_pb2.CloseBatchResponse(batch_id=batch_id, lines=len(self.batches[batch_id]))

    def GetSettlementFile(self, request, timeout):
        assert timeout is not None

        async def lines():
            if request.batch_id not in self.batches:
                raise rpc_error(grpc.StatusCode.NOT_FOUND, "batch_id: unknown")
            for line in list(self.batches[request.batch_id]):
                yield line

        return lines()


class Env:
    """The fakes, the gateway over a store in ``folder``, and its settlement; :meth:`restart` reopens everything over
    the same folder (a crash of the gateway process, the fakes living on)."""

    def __init__(self, folder: Path, **settings) -> None:
        self.folder = folder
        self.settings = GatewaySettings(**{**FAST, **settings})
        self.vault = FakeVaultStub()
        self.fraud = FakeFraudStub()
        self.psps = {PSP_A: FakeAcquirerStub(PSP_A), PSP_B: FakeAcquirerStub(PSP_B)}
        self.clock_offset_s = 0.0
        self.gateway = self._open()

    @property
    def a(self) -> FakeAcquirerStub:
        return self.psps[PSP_A]

    @property
    def b(self) -> FakeAcquirerStub:
        return self.psps[PSP_B]

    def clock(self) -> float:
        return time.time() + self.clock_offset_s

    def _open(self) -> PaymentGateway:
        s = self.settings
        acquirers = {name: AcquirerClient(name, stub, s.acquirer_timeout_s, s.settlement_timeout_s)
                     for name, stub in self.psps.items()}
        store = GatewayStore(self.folder / "gateway.sqlite")
        gateway = PaymentGateway(s, store, VaultClient(self.vault, s.vault_timeout_s),
                                 FraudClient(self.fraud, s.fraud_timeout_s), acquirers, id_key=b"k" * 32,
                                 clock=self.clock)
        self.settlement = Settlement(store, acquirers, s.acquirers, self.folder / "settlement", clock=self.clock)
        return gateway

    async def restart(self) -> PaymentGateway:
        await self.gateway.close()
        self.gateway = self._open()
        await self.gateway.start()
        return self.gateway

    async def close(self) -> None:
        await self.gateway.close()


@pytest.fixture
async def env(tmp_path):
    environment = Env(tmp_path)
    await environment.gateway.start()
    try:
        yield environment
    finally:
        await environment.close()


def authorize_request(key: str = "k1", tok: str | None = None, amount: int = 1_000, capture: bool = False,
                      merchant: str = MERCHANT, **changes) -> gateway_pb2.AuthorizeRequest:
    request = gateway_pb2.AuthorizeRequest(
        idempotency_key=key, merchant_id=merchant, card_token=tok or token(1),
        amount=money_pb2.Money(currency_code="USD", amount_minor=amount), capture=capture, description="order 1",
        customer_id="c1")
    for name, value in changes.items():
        setattr(request, name, value)
    return request


def capture_request(payment_id: str, key: str = "cap1", amount: int = 0, merchant: str = MERCHANT):
    return gateway_pb2.CaptureRequest(idempotency_key=key, merchant_id=merchant, payment_id=payment_id,
                                      amount_minor=amount)


def void_request(payment_id: str, key: str = "void1", merchant: str = MERCHANT):
    return gateway_pb2.VoidRequest(idempotency_key=key, merchant_id=merchant, payment_id=payment_id)


def refund_request(payment_id: str, key: str = "ref1", amount: int = 0, merchant: str = MERCHANT):
    return gateway_pb2.RefundRequest(idempotency_key=key, merchant_id=merchant, payment_id=payment_id,
                                     amount_minor=amount)


def states(payment: payments_pb2.Payment) -> list[tuple[str, int]]:
    return [(a.acquirer, a.state) for a in payment.attempts]


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


# ----------------------------------------------------------------------------- settings, definition, validation


def test_settings_defaults_and_refusals():
    s = GatewaySettings()
    assert s.acquirers == (PSP_A, PSP_B) and s.failover and s.acquirer_timeout_s == 1.0 and s.fraud_fail_open
    with pytest.raises(ValidationError):
        GatewaySettings(acquirers=(PSP_A, PSP_A))
    with pytest.raises(ValidationError):
        GatewaySettings(acquirers=())
    with pytest.raises(ValidationError):
        GatewaySettings(unknown=1)
    with pytest.raises(ValidationError):
        GatewaySettings(reversal_initial_backoff_s=5, reversal_max_backoff_s=1)


def test_definition():
    d = service.DEFINITION
    assert d.name == "payments-gateway"
    assert d.grpc_services == ("casemesh.payments.v1.PaymentGatewayService", "casemesh.payments.v1.SettlementService")
    assert d.dependencies == ("payments-vault", "payments-fraud", PSP_A, PSP_B)
    assert set(d.optional_dependencies) == {"payments-fraud", PSP_A, PSP_B}
    assert d.access.public == {"Authorize", "Capture", "Void", "Refund", "GetPayment", "Reconcile"}
    assert not d.access.internal
    assert d.settings_model is GatewaySettings


async def test_the_component_builds_starts_and_stops(tmp_path):
    names = ["payments-gateway", "payments-vault", "payments-fraud", PSP_A, PSP_B]
    topology = Topology(services={n: Endpoint(address=f"127.0.0.1:{1 + i}") for i, n in enumerate(names)},
                        data_dir=str(tmp_path), settings={"payments-gateway": {"failover": False}})
    component = await service.DEFINITION.build(RuntimeContext(topology).for_service(service.NAME))
    assert component.gateway.router.failover is False
    await component.start()
    assert (tmp_path / "payments-gateway" / "gateway.sqlite").is_file()
    assert sample("casemesh_payments_gateway_breaker_open", {"acquirer": PSP_B}) == 0
    await component.stop()


@pytest.mark.parametrize(("changes", "field"), [
    ({"idempotency_key": ""}, "idempotency_key"),
    ({"idempotency_key": "a\nb"}, "idempotency_key"),
    ({"idempotency_key": "x" * 256}, "idempotency_key"),
    ({"merchant_id": ""}, "merchant_id"),
    ({"merchant_id": "bad id"}, "merchant_id"),
    ({"card_token": "tok_short"}, "card_token"),
    ({"card_token": ""}, "card_token"),
    ({"amount": None}, "amount"),
    ({"amount": money_pb2.Money(currency_code="usd", amount_minor=5)}, "amount.currency_code"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=0)}, "amount.amount_minor"),
    ({"amount": money_pb2.Money(currency_code="USD", amount_minor=100_000_001)}, "amount.amount_minor"),
    ({"description": "d" * 201}, "description"),
    ({"customer_id": "bad id"}, "customer_id"),
])
def test_authorize_validation_names_the_field(changes, field):
    request = authorize_request()
    for name, value in changes.items():
        if value is None:
            request.ClearField(name)
        elif isinstance(value, money_pb2.Money):
            getattr(request, name).CopyFrom(value)
        else:
            setattr(request, name, value)
    with pytest.raises(InvalidArgument) as error:
        validation.authorize(request)
    assert error.value.field == field


def test_other_validation_names_the_field():
    pay = "pay_" + "a" * 24
    assert validation.capture(capture_request(pay, amount=5)).amount_minor == 5
    for call, field in [
        (lambda: validation.capture(capture_request("pay_x")), "payment_id"),
        (lambda: validation.capture(capture_request(pay, amount=-1)), "amount_minor"),
        (lambda: validation.refund(refund_request(pay, amount=-1)), "amount_minor"),
        (lambda: validation.refund(refund_request(pay, key="")), "idempotency_key"),
        (lambda: validation.void(void_request(pay, merchant="")), "merchant_id"),
        (lambda: validation.get_payment(gateway_pb2.GetPaymentRequest(merchant_id=MERCHANT)), "payment_id"),
    ]:
        with pytest.raises(InvalidArgument) as error:
            call()
        assert error.value.field == field


def test_ids_and_request_hash():
    first = gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "key-1")
    assert first == gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "key-1")
    assert contract.is_gateway_id(first, "pay_")
    assert first != gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "key-2")
    assert first != gateway_id(b"j" * 32, "pay_", MERCHANT, "authorize", "key-1")
    assert first != gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "key-1", generation=1)
    assert contract.is_gateway_id(gateway_id(b"k" * 32, "re_", MERCHANT, "refund", "r"), "re_")
    assert request_hash(authorize_request(key="a")) == request_hash(authorize_request(key="b"))
    assert request_hash(authorize_request(amount=5)) != request_hash(authorize_request(amount=6))


# ----------------------------------------------------------------------------- idempotency


async def test_the_key_protocol(tmp_path):
    store = GatewayStore(tmp_path / "keys.sqlite")
    keys = IdempotencyKeys(store)
    scope = (MERCHANT, "void", "key-1")
    try:
        async with keys.begin(scope, "h1") as claim:
            assert claim.outcome is NEW and claim.record is None and keys.held(scope)
            await store.write([insert_key(keys.record(claim, b"request", "pay_" + "a" * 24))])
            with pytest.raises(Aborted):  # the same key, in flight in this process
                async with keys.begin(scope, "h1"):
                    pass
        assert not keys.held(scope)
        with pytest.raises(FailedPrecondition, match="idempotency_key: used for a different request"):
            async with keys.begin(scope, "h2"):
                pass
        async with keys.begin(scope, "h1") as claim:  # IN_FLIGHT, held by nobody: the call died
            assert claim.outcome is RESUME and claim.record.request == b"request"
            await store.write([key_done(scope, b"answer", 1)])
        async with keys.begin(scope, "h1") as claim:
            assert claim.outcome is REPLAY and claim.record.response == b"answer"
        assert keys.in_flight == 0
    finally:
        await store.close()


async def test_replay_returns_the_same_payment_and_the_acquirer_is_asked_once(env):
    env.vault.add(1)
    first = (await env.gateway.authorize(authorize_request())).payment
    assert first.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED and first.acquirer == PSP_A
    assert first.payment_id == gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "k1")
    assert states(first) == [(PSP_A, APPROVED)] and first.fraud_score == 10 and first.card.last4 == "4242"
    replays = sample("casemesh_payments_gateway_idempotent_replays_total", {"operation": "authorize"})
    again = (await env.gateway.authorize(authorize_request())).payment
    assert again == first
    assert env.a.authorize_calls == [f"{first.payment_id}.1"] and not env.b.authorize_calls
    assert env.vault.calls == 1 and env.fraud.calls == [first.payment_id]
    assert sample("casemesh_payments_gateway_idempotent_replays_total", {"operation": "authorize"}) == replays + 1
    # another key is another payment; the same key at another merchant too
    env.vault.add(2, merchant="m2")
    other = (await env.gateway.authorize(authorize_request(key="k2"))).payment
    elsewhere = (await env.gateway.authorize(authorize_request(merchant="m2", tok=token(2)))).payment
    assert len({first.payment_id, other.payment_id, elsewhere.payment_id}) == 3
    assert (await env.gateway.get(MERCHANT, first.payment_id)) == first


async def test_a_different_request_with_the_same_key_fails_precondition(env):
    env.vault.add(1)
    first = (await env.gateway.authorize(authorize_request())).payment
    with pytest.raises(FailedPrecondition, match="idempotency_key: used for a different request"):
        await env.gateway.authorize(authorize_request(amount=2_000))
    with pytest.raises(FailedPrecondition):
        await env.gateway.authorize(authorize_request(capture=True))
    assert len(env.a.authorize_calls) == 1
    assert (await env.gateway.get(MERCHANT, first.payment_id)).amount.amount_minor == 1_000


async def test_concurrent_calls_with_one_key_one_proceeds_the_others_aborted_or_answered(env):
    env.vault.add(1)
    env.a.mode = "hang"
    tasks = [asyncio.create_task(env.gateway.authorize(authorize_request())) for _ in range(10)]
    while not env.a.authorize_calls:
        await asyncio.sleep(0)
    await asyncio.sleep(0)
    env.a.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    answers = [r.payment for r in results if isinstance(r, gateway_pb2.AuthorizeResponse)]
    assert answers and all(a == answers[0] for a in answers)
    assert all(isinstance(r, Aborted) for r in results if not isinstance(r, gateway_pb2.AuthorizeResponse))
    assert sum(isinstance(r, Aborted) for r in results) >= 1
    assert env.a.authorize_calls == [f"{answers[0].payment_id}.1"]
    assert env.gateway.keys.in_flight == 0
    # once answered, every retry gets the answer
    assert (await env.gateway.authorize(authorize_request())).payment == answers[0]


async def test_a_refused_card_token_releases_the_key(env):
    with pytest.raises(NotFound, match="card_token"):
        await env.gateway.authorize(authorize_request())
    env.vault.add(2)
    payment = (await env.gateway.authorize(authorize_request(tok=token(2)))).payment  # the same key, fixed request
    assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
    env.vault.add(3, merchant="other")
    with pytest.raises(NotFound):
        await env.gateway.authorize(authorize_request(key="k3", tok=token(3)))


async def test_an_expired_key_is_a_new_request_with_a_new_payment(env):
    env.vault.add(1)
    first = (await env.gateway.authorize(authorize_request())).payment
    env.clock_offset_s = contract.IDEMPOTENCY_KEY_TTL_S + 10
    second = (await env.gateway.authorize(authorize_request(amount=2_000))).payment
    assert second.payment_id != first.payment_id and second.amount.amount_minor == 2_000
    assert await env.gateway.prune() == 0  # the fresh key stays
    env.clock_offset_s += contract.IDEMPOTENCY_KEY_TTL_S + 10
    assert await env.gateway.prune() == 1
    assert await env.gateway.store.key(MERCHANT, "authorize", "k1") is None


# ----------------------------------------------------------------------------- routing, failover, reversal


async def test_an_acquirer_timeout_reverses_the_attempt_and_fails_over(env):
    env.vault.add(1)
    env.a.script = ["lose"]  # approved at A, the answer lost
    failovers = sample("casemesh_payments_gateway_failovers_total", {"from_acquirer": PSP_A})
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED and payment.acquirer == PSP_B
    assert states(payment) == [(PSP_A, REVERSING), (PSP_B, APPROVED)]
    assert sample("casemesh_payments_gateway_failovers_total", {"from_acquirer": PSP_A}) == failovers + 1
    await env.gateway.reverser.drain()
    assert env.a.void_calls == [f"{payment.payment_id}.1"]
    assert env.a.approved() == [] and env.b.approved() == [f"{payment.payment_id}.2"]
    stored = await env.gateway.get(MERCHANT, payment.payment_id)
    assert states(stored) == [(PSP_A, REVERSED), (PSP_B, APPROVED)]
    assert sample("casemesh_payments_gateway_reversals_pending") == 0


async def test_a_refused_attempt_fails_over_without_reversal(env):
    env.vault.add(1)
    payment_id = gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "k1")
    env.a.auths[f"{payment_id}.1"] = acquirer_pb2.Authorization(state=acquirer_pb2.AUTHORIZATION_STATE_VOIDED)
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert states(payment) == [(PSP_A, payments_pb2.ATTEMPT_STATE_FAILED), (PSP_B, APPROVED)]
    assert not env.a.void_calls


async def test_failover_off_answers_unavailable_and_a_retry_with_the_same_key_works(tmp_path):
    env = Env(tmp_path, failover=False)
    await env.gateway.start()
    try:
        env.vault.add(1)
        env.a.mode = "down"
        with pytest.raises(service.Unavailable, match="nothing is held"):
            await env.gateway.authorize(authorize_request())
        assert not env.b.authorize_calls
        record = await env.gateway.store.key(MERCHANT, "authorize", "k1")
        assert record.state == IN_FLIGHT
        payment = await env.gateway.store.payment(record.payment_id)
        assert payment.status == payments_pb2.PAYMENT_STATUS_PENDING
        env.a.mode = "ok"
        answer = (await env.gateway.authorize(authorize_request())).payment
        assert answer.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED and answer.acquirer == PSP_A
        assert states(answer)[-1] == (PSP_A, APPROVED) and not env.b.authorize_calls
        await env.gateway.reverser.drain()
        assert env.a.approved(answer.payment_id) == [f"{answer.payment_id}.{len(answer.attempts)}"]
        # the breaker opens meanwhile, yet with failover off the first acquirer is still tried
        env.a.mode = "down"
        env.vault.add(2)
        for n in range(8):
            with pytest.raises(service.Unavailable):
                await env.gateway.authorize(authorize_request(key=f"x{n}", tok=token(2)))
        assert not env.b.authorize_calls
    finally:
        await env.close()


async def test_the_breaker_opens_and_routing_skips_the_acquirer(tmp_path):
    env = Env(tmp_path, breaker_consecutive_failures=2, breaker_cooldown_s=3_600)
    await env.gateway.start()
    try:
        env.vault.add(1)
        env.a.mode = "down"
        for n in range(2):
            assert (await env.gateway.authorize(authorize_request(key=f"k{n}"))).payment.acquirer == PSP_B
        assert env.gateway.router.breakers[PSP_A].state == OPEN
        assert sample("casemesh_payments_gateway_breaker_open", {"acquirer": PSP_A}) == 1
        calls = len(env.a.authorize_calls)
        payment = (await env.gateway.authorize(authorize_request(key="k9"))).payment
        assert states(payment) == [(PSP_B, APPROVED)] and len(env.a.authorize_calls) == calls
        env.b.mode = "down"  # both down: nothing to route to
        with pytest.raises(service.Unavailable):
            await env.gateway.authorize(authorize_request(key="k10"))
    finally:
        await env.close()


def test_the_breaker_state_machine():
    now = [0.0]

    def clock() -> float:
        return now[0]

    ratio = AcquirerBreaker("psp-test", consecutive_failures=100, failure_ratio=0.5, window_s=10, min_calls=4,
                            cooldown_s=5, half_open_probes=1, clock=clock)
    for ok in (False, True, False):
        ratio.record(ok)
    assert ratio.state == CLOSED  # fewer than min_calls outcomes
    ratio.record(True)  # 2 of 4 failed
    assert ratio.state == OPEN and not ratio.admit()
    now[0] = 5.0
    assert ratio.state == HALF_OPEN and ratio.admit() and not ratio.admit()
    ratio.record(False)
    assert ratio.state == OPEN
    now[0] = 10.0
    assert ratio.admit()
    ratio.record(True)
    assert ratio.state == CLOSED and ratio.admit()
    for _ in range(3):
        ratio.record(False)
    now[0] = 30.0  # those failures left the window
    ratio.record(True)
    assert ratio.state == CLOSED

    consecutive = AcquirerBreaker("psp-test", consecutive_failures=3, failure_ratio=1.0, min_calls=1_000,
                                  cooldown_s=5, clock=clock)
    for ok in (False, False, True, False, False):
        consecutive.record(ok)
    assert consecutive.state == CLOSED
    consecutive.record(False)  # three in a row
    assert consecutive.state == OPEN
    now[0] = 35.0
    assert consecutive.admit() and not consecutive.admit()
    now[0] = 40.0  # the probe never reported: another one may go
    assert consecutive.admit()


def test_the_router_order_and_failover_switch():
    breakers = {}

    def make(name):
        breakers[name] = AcquirerBreaker(name, consecutive_failures=1, cooldown_s=60)
        return breakers[name]

    router = Router(("a", "b", "c"), True, make)
    assert list(router.route()) == ["a", "b", "c"]
    router.record("b", False)
    assert list(router.route()) == ["a", "c"]
    assert list(Router(("a", "b"), False, make).route()) == ["a"]


async def test_a_call_the_channel_breaker_failed_fast_is_not_reversed(env):
    env.vault.add(1)
    authorize = env.a.Authorize

    async def fail_fast(request, timeout):
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"circuit open to {PSP_A}: 5 calls in a row failed")

    env.a.Authorize = fail_fast
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert states(payment) == [(PSP_A, payments_pb2.ATTEMPT_STATE_FAILED), (PSP_B, APPROVED)]
    assert not env.a.void_calls and env.gateway.reverser.pending == 0
    env.a.Authorize = authorize


async def test_no_attempt_starts_without_time_left_of_the_callers_deadline(env):
    env.vault.add(1)

    async def with_deadline():
        INBOUND_DEADLINE.set(time.monotonic() + 0.001)
        return await env.gateway.authorize(authorize_request())

    with pytest.raises(service.Unavailable):
        await asyncio.create_task(with_deadline())
    assert not env.a.authorize_calls and not env.b.authorize_calls
    assert (await env.gateway.authorize(authorize_request())).payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED


async def test_reversal_retries_with_backoff_until_confirmed(env):
    env.vault.add(1)
    env.a.script = ["lose"]
    env.a.void_failures = 3
    payment = (await env.gateway.authorize(authorize_request())).payment
    await env.gateway.reverser.drain()
    assert env.a.void_calls == [f"{payment.payment_id}.1"] * 4
    assert states(await env.gateway.get(MERCHANT, payment.payment_id))[0] == (PSP_A, REVERSED)


async def test_reversals_resume_at_start(env):
    env.vault.add(1)
    env.a.script = ["lose"]
    env.a.void_failures = 10 ** 6  # never confirmed in this life
    payment = (await env.gateway.authorize(authorize_request())).payment
    while len(env.a.void_calls) < 2:
        await asyncio.sleep(0.001)
    env.a.void_failures = 0
    await env.restart()
    await env.gateway.reverser.drain()
    assert states(await env.gateway.get(MERCHANT, payment.payment_id))[0] == (PSP_A, REVERSED)
    assert env.a.approved() == []


# ----------------------------------------------------------------------------- crashes


async def _crash_after_the_charge(env: Env) -> str:
    """Authorize until the acquirer approved and the gateway waits for the answer, then kill the call (the process
    dies); returns the payment id."""
    env.vault.add(1)
    env.a.mode = "hang"
    task = asyncio.create_task(env.gateway.authorize(authorize_request()))
    while not env.a.auths:  # approved there; the answer waits for release
        await asyncio.sleep(0.001)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    env.a.mode = "ok"
    payment_id = gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "k1")
    assert env.a.approved() == [f"{payment_id}.1"]  # charged, never answered
    return payment_id


async def test_a_crash_between_the_charge_and_the_answer_the_retry_finishes_it(env):
    payment_id = await _crash_after_the_charge(env)
    gateway = await env.restart()
    record = await gateway.store.key(MERCHANT, "authorize", "k1")
    assert record.state == IN_FLIGHT and record.payment_id == payment_id
    stored = await gateway.store.payment(payment_id)
    assert stored.status == payments_pb2.PAYMENT_STATUS_PENDING and [a.state for a in stored.attempts] == [SENT]
    payment = (await gateway.authorize(authorize_request())).payment
    assert payment.payment_id == payment_id and payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
    assert states(payment) == [(PSP_A, APPROVED)]
    assert env.a.authorize_calls == [f"{payment_id}.1"] * 2  # asked again with the same reference
    assert env.a.approved() == [f"{payment_id}.1"] and not env.b.authorize_calls and not env.a.void_calls
    assert (await gateway.authorize(authorize_request())).payment == payment


async def test_a_resumed_attempt_failed_fast_by_the_channel_breaker_is_reversed_not_failed(env):
    """The retry after a crash finds the attempt SENT (the dead process's call was approved), and the mesh channel's
    breaker to that acquirer is open: this call never left, but the first one did. Reversed, then failover."""
    payment_id = await _crash_after_the_charge(env)
    gateway = await env.restart()
    authorize = env.a.Authorize

    async def fail_fast(request, timeout):
        raise rpc_error(grpc.StatusCode.UNAVAILABLE, f"circuit open to {PSP_A}: 5 calls in a row failed")

    env.a.Authorize = fail_fast
    payment = (await gateway.authorize(authorize_request())).payment
    env.a.Authorize = authorize
    await gateway.reverser.drain()
    # .1 reversed; .2, new, failed fast too (it never left: nothing to reverse); .3 approved by the next acquirer.
    assert states(await gateway.get(MERCHANT, payment_id)) == [
        (PSP_A, REVERSED), (PSP_A, payments_pb2.ATTEMPT_STATE_FAILED), (PSP_B, APPROVED)]
    assert payment.acquirer == PSP_B and env.a.approved() == [] and env.a.void_calls == [f"{payment_id}.1"]


async def test_an_abandoned_charge_is_reversed_after_the_grace_and_the_retry_routes_again(env):
    payment_id = await _crash_after_the_charge(env)
    gateway = await env.restart()
    assert await gateway.sweep() == 1
    await gateway.reverser.drain()
    assert env.a.approved() == []
    stored = await gateway.store.payment(payment_id)
    assert stored.status == payments_pb2.PAYMENT_STATUS_PENDING and [a.state for a in stored.attempts] == [REVERSED]
    payment = (await gateway.authorize(authorize_request())).payment
    assert states(payment) == [(PSP_A, REVERSED), (PSP_A, APPROVED)]
    assert env.a.approved() == [f"{payment_id}.2"]
    assert await gateway.sweep() == 0


async def test_a_crash_during_a_sale_capture_is_finished_in_the_background(env):
    env.vault.add(1)
    env.a.capture_down = True
    with pytest.raises(service.Unavailable):
        await env.gateway.authorize(authorize_request(capture=True))
    payment_id = gateway_id(b"k" * 32, "pay_", MERCHANT, "authorize", "k1")
    assert (await env.gateway.get(MERCHANT, payment_id)).status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
    env.a.capture_down = False
    gateway = await env.restart()
    assert await gateway.sweep() == 1
    replay = (await gateway.authorize(authorize_request(capture=True))).payment
    assert replay.status == payments_pb2.PAYMENT_STATUS_CAPTURED and replay.captured_minor == 1_000
    assert [e.confirmed for e in await gateway.store.ledger_entries(payment_id)] == [True]


# ----------------------------------------------------------------------------- fraud


async def test_a_fraud_block_declines_without_asking_an_acquirer(env):
    env.vault.add(1)
    env.fraud.decision, env.fraud.score = fraud_pb2.FRAUD_DECISION_BLOCK, 90
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_DECLINED
    assert payment.decline_reason == payments_pb2.DECLINE_REASON_FRAUD and payment.decline_code == "fraud_blocked"
    assert payment.fraud_score == 90 and not payment.attempts
    assert not env.a.authorize_calls and not env.b.authorize_calls
    assert (await env.gateway.authorize(authorize_request())).payment == payment  # a decline is a stored answer


async def test_an_issuer_decline_is_an_answer(env):
    env.vault.add(1, number="4000000000009995")
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_DECLINED
    assert (payment.decline_reason, payment.decline_code) == (payments_pb2.DECLINE_REASON_ISSUER,
                                                              "insufficient_funds")
    assert states(payment) == [(PSP_A, payments_pb2.ATTEMPT_STATE_DECLINED)] and not env.b.authorize_calls


async def test_a_fraud_service_that_cannot_answer_fails_open(env):
    env.vault.add(1)
    env.fraud.down = True
    before = sample("casemesh_payments_gateway_fraud_fail_open_total")
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED and payment.fraud_score == 0
    assert sample("casemesh_payments_gateway_fraud_fail_open_total") == before + 1


async def test_a_resumed_payment_is_not_declined_by_a_later_score(env):
    env.vault.add(1)
    env.fraud.down = True  # failing open: score 0
    env.a.mode = env.b.mode = "down"
    with pytest.raises(service.Unavailable):
        await env.gateway.authorize(authorize_request())
    env.fraud.down = False
    env.fraud.decision = fraud_pb2.FRAUD_DECISION_BLOCK  # the fraud service would block it now
    env.a.mode = env.b.mode = "ok"
    payment = (await env.gateway.authorize(authorize_request())).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED and payment.fraud_score == 0
    assert len(env.fraud.calls) == 1


async def test_fail_closed_answers_unavailable(tmp_path):
    env = Env(tmp_path, fraud_fail_open=False)
    try:
        env.vault.add(1)
        env.fraud.down = True
        with pytest.raises(service.Unavailable):
            await env.gateway.authorize(authorize_request())
        assert not env.a.authorize_calls
        env.fraud.down = False
        assert (await env.gateway.authorize(authorize_request())).payment.status == (
            payments_pb2.PAYMENT_STATUS_AUTHORIZED)
    finally:
        await env.close()


async def test_a_vault_that_cannot_answer_is_unavailable(env):
    env.vault.add(1)
    env.vault.down = True
    with pytest.raises(service.Unavailable):
        await env.gateway.authorize(authorize_request())
    env.vault.down = False
    assert (await env.gateway.authorize(authorize_request())).payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED


# ----------------------------------------------------------------------------- capture, void, refund


async def test_capture_void_and_refund_rules(env):
    env.vault.add(1)
    gw = env.gateway
    pay = (await gw.authorize(authorize_request())).payment.payment_id
    with pytest.raises(InvalidArgument) as error:
        await gw.capture(capture_request(pay, amount=1_001))
    assert error.value.field == "amount_minor"
    with pytest.raises(NotFound):
        await gw.capture(capture_request(pay, merchant="m2"))
    with pytest.raises(FailedPrecondition, match="not CAPTURED"):
        await gw.refund(refund_request(pay))
    captured = (await gw.capture(capture_request(pay, amount=800))).payment
    assert captured.status == payments_pb2.PAYMENT_STATUS_CAPTURED and captured.captured_minor == 800
    assert (await gw.capture(capture_request(pay, amount=800))).payment == captured  # replay
    with pytest.raises(FailedPrecondition, match="not AUTHORIZED"):
        await gw.capture(capture_request(pay, key="cap2", amount=800))
    with pytest.raises(FailedPrecondition, match="refund it instead"):
        await gw.void(void_request(pay))
    with pytest.raises(InvalidArgument) as error:
        await gw.refund(refund_request(pay, amount=801))
    assert error.value.field == "amount_minor"
    first = await gw.refund(refund_request(pay, amount=300))
    assert first.refund_id.startswith("re_") and contract.is_gateway_id(first.refund_id, "re_")
    assert first.amount.amount_minor == 300 and first.payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED
    assert (await gw.refund(refund_request(pay, amount=300))) == first  # replay: the same refund
    rest = await gw.refund(refund_request(pay, key="ref2"))
    assert rest.amount.amount_minor == 500 and rest.refund_id != first.refund_id
    assert rest.payment.status == payments_pb2.PAYMENT_STATUS_REFUNDED and rest.payment.refunded_minor == 800
    with pytest.raises(FailedPrecondition):
        await gw.refund(refund_request(pay, key="ref3", amount=1))
    entries = await gw.store.ledger_entries(pay)
    assert [(e.kind, e.amount_minor, e.confirmed) for e in entries] == [
        ("capture", 800, True), ("refund", 300, True), ("refund", 500, True)]
    assert env.a.auths[f"{pay}.1"].refunded_minor == 800

    pay2 = (await gw.authorize(authorize_request(key="k2"))).payment.payment_id
    with pytest.raises(NotFound):
        await gw.void(void_request("pay_" + "z" * 24, key="void-x"))
    voided = (await gw.void(void_request(pay2))).payment
    assert voided.status == payments_pb2.PAYMENT_STATUS_VOIDED and voided.acquirer == ""
    assert (await gw.void(void_request(pay2, key="void2"))).payment == voided  # voiding a voided payment
    with pytest.raises(FailedPrecondition):
        await gw.capture(capture_request(pay2, key="cap9"))
    assert env.a.auths[f"{pay2}.1"].state == acquirer_pb2.AUTHORIZATION_STATE_VOIDED

    sale = (await gw.authorize(authorize_request(key="k3", capture=True))).payment
    assert sale.status == payments_pb2.PAYMENT_STATUS_CAPTURED and sale.captured_minor == 1_000
    with pytest.raises(FailedPrecondition):
        await gw.capture(capture_request(sale.payment_id, key="cap3"))
    declined_card = env.vault.add(5, number="4000000000000002")
    declined = (await gw.authorize(authorize_request(key="k4", tok=declined_card))).payment
    with pytest.raises(FailedPrecondition):
        await gw.void(void_request(declined.payment_id, key="void4"))


async def test_an_unreachable_acquirer_leaves_the_capture_retryable(env):
    env.vault.add(1)
    pay = (await env.gateway.authorize(authorize_request())).payment.payment_id
    env.a.capture_down = True
    with pytest.raises(service.Unavailable):
        await env.gateway.capture(capture_request(pay))
    with pytest.raises(Aborted, match="in progress"):  # another key meanwhile
        await env.gateway.capture(capture_request(pay, key="cap-other"))
    env.a.capture_down = False
    captured = (await env.gateway.capture(capture_request(pay))).payment
    assert captured.captured_minor == 1_000
    assert [(e.kind, e.confirmed) for e in await env.gateway.store.ledger_entries(pay)] == [("capture", True)]
    env.a.refund_down = True
    with pytest.raises(service.Unavailable):
        await env.gateway.refund(refund_request(pay, amount=100))
    env.a.refund_down = False
    assert await env.gateway.sweep() == 1  # the background finishes the refund
    assert (await env.gateway.get(MERCHANT, pay)).refunded_minor == 100
    assert (await env.gateway.refund(refund_request(pay, amount=100))).amount.amount_minor == 100  # its answer


async def test_the_schema_refuses_a_second_approval_and_over_captures(env):
    env.vault.add(1)
    payment = (await env.gateway.authorize(authorize_request())).payment
    record = await env.gateway.store.payment(payment.payment_id)
    second = AttemptRecord(f"{payment.payment_id}.2", payment.payment_id, 2, PSP_B, APPROVED, 1, 1)
    with pytest.raises(StoreUnavailable, match="UNIQUE"):
        await env.gateway.store.write([insert_attempt(second)])
    with pytest.raises(StoreUnavailable, match="CHECK"):
        await env.gateway.store.write([update_payment(replace(
            record, status=payments_pb2.PAYMENT_STATUS_CAPTURED, captured_minor=2_000))])
    with pytest.raises(StoreUnavailable, match="CHECK"):
        await env.gateway.store.write([update_payment(replace(
            record, status=payments_pb2.PAYMENT_STATUS_CAPTURED, captured_minor=500, refunded_minor=600))])
    await env.gateway.store.write([set_attempt_state(f"{payment.payment_id}.1", APPROVED, 2)])
    with pytest.raises(StoreUnavailable, match="attempts_moves"):
        await env.gateway.store.write([set_attempt_state(f"{payment.payment_id}.1", SENT, 3)])
    assert (await env.gateway.get(MERCHANT, payment.payment_id)).status == payments_pb2.PAYMENT_STATUS_AUTHORIZED


# ----------------------------------------------------------------------------- over gRPC


@pytest.fixture
async def stubs(tmp_path):
    environment = Env(tmp_path)
    await environment.gateway.start()
    interceptor = ServerInterceptor(metrics=RpcMetrics("server", registry=CollectorRegistry()))
    server = grpc.aio.server(interceptors=[interceptor])
    gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server(
        service.PaymentGatewayServicer(environment.gateway), server)
    settlement_pb2_grpc.add_SettlementServiceServicer_to_server(
        service.SettlementServicer(environment.settlement), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield (environment, gateway_pb2_grpc.PaymentGatewayServiceStub(channel),
               settlement_pb2_grpc.SettlementServiceStub(channel))
    finally:
        await channel.close()
        await server.stop(None)
        await environment.close()


async def _code(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), error.value.details()


async def test_grpc_status_codes(stubs):
    env, stub, settlement = stubs
    env.vault.add(1)
    count = sample("casemesh_payments_gateway_authorize_seconds_count")
    code, details = await _code(stub.Authorize(authorize_request(amount=0), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("amount.amount_minor")
    assert sample("casemesh_payments_gateway_authorize_seconds_count") == count
    code, details = await _code(stub.Authorize(authorize_request(tok=token(7)), timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND and details.startswith("card_token")
    payment = (await stub.Authorize(authorize_request(), timeout=WAIT_S)).payment
    assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
    assert sample("casemesh_payments_gateway_authorize_seconds_count") == count + 2
    code, details = await _code(stub.Authorize(authorize_request(amount=5), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and details.startswith("idempotency_key")
    got = await stub.GetPayment(gateway_pb2.GetPaymentRequest(merchant_id=MERCHANT, payment_id=payment.payment_id),
                                timeout=WAIT_S)
    assert got.payment == payment
    code, _ = await _code(stub.GetPayment(gateway_pb2.GetPaymentRequest(merchant_id="m2",
                                                                        payment_id=payment.payment_id),
                                          timeout=WAIT_S))
    assert code == grpc.StatusCode.NOT_FOUND
    code, details = await _code(stub.Capture(capture_request(payment.payment_id, amount=-1), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("amount_minor")
    code, details = await _code(stub.Capture(capture_request(payment.payment_id, amount=5_000), timeout=WAIT_S))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("amount_minor")
    env.a.capture_down = True
    code, _ = await _code(stub.Capture(capture_request(payment.payment_id), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE
    env.a.capture_down = False
    assert (await stub.Capture(capture_request(payment.payment_id), timeout=WAIT_S)).payment.captured_minor == 1_000
    code, _ = await _code(stub.Void(void_request(payment.payment_id), timeout=WAIT_S))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    refund = await stub.Refund(refund_request(payment.payment_id, amount=10), timeout=WAIT_S)
    assert refund.amount.amount_minor == 10
    env.a.mode = env.b.mode = "down"
    code, details = await _code(stub.Authorize(authorize_request(key="k2"), timeout=WAIT_S))
    assert code == grpc.StatusCode.UNAVAILABLE and "retry with the same idempotency key" in details
    env.a.mode = env.b.mode = "ok"
    await env.gateway.reverser.drain()
    report = await settlement.Reconcile(settlement_pb2.ReconcileRequest(), timeout=WAIT_S)
    assert not report.discrepancies and [s.matched for s in report.acquirers] == [2, 0]
    assert Path(report.report_path).is_file()


def served(base, fake, streaming: tuple[str, ...] = ()):
    """A real gRPC servicer (subclass of ``base``) answering with the stub-level ``fake``."""

    def unary(name):
        async def method(self, request, context):
            try:
                return await getattr(fake, name)(request, timeout=context.time_remaining())
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details())

        return method

    def stream(name):
        async def method(self, request, context):
            try:
                async for item in getattr(fake, name)(request, timeout=context.time_remaining()):
                    yield item
            except grpc.aio.AioRpcError as error:
                await context.abort(error.code(), error.details())

        return method

    names = [n for n in vars(base) if not n.startswith("_")]
    return type("Served", (base,), {n: stream(n) if n in streaming else unary(n) for n in names})()


async def test_over_real_grpc_channels(tmp_path):
    env = Env(tmp_path)
    server = grpc.aio.server()
    vault_pb2_grpc.add_CardVaultServiceServicer_to_server(served(vault_pb2_grpc.CardVaultServiceServicer, env.vault),
                                                          server)
    fraud_pb2_grpc.add_FraudServiceServicer_to_server(served(fraud_pb2_grpc.FraudServiceServicer, env.fraud), server)
    port = server.add_insecure_port("127.0.0.1:0")
    psp_servers, channels = [], []
    for name in (PSP_A, PSP_B):
        psp = grpc.aio.server()
        acquirer_pb2_grpc.add_AcquirerServiceServicer_to_server(served(
            acquirer_pb2_grpc.AcquirerServiceServicer, env.psps[name], ("GetSettlementFile",)), psp)
        psp_servers.append((name, psp, psp.add_insecure_port("127.0.0.1:0")))
    await server.start()
    for _, psp, _ in psp_servers:
        await psp.start()
    await env.gateway.close()
    try:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        acquirers = {}
        for name, _, psp_port in psp_servers:
            channels.append(grpc.aio.insecure_channel(f"127.0.0.1:{psp_port}"))
            acquirers[name] = AcquirerClient(name, acquirer_pb2_grpc.AcquirerServiceStub(channels[-1]), 1.0, 5.0)
        s = env.settings
        store = GatewayStore(tmp_path / "real.sqlite")
        env.gateway = PaymentGateway(s, store, VaultClient(vault_pb2_grpc.CardVaultServiceStub(channel), 1.0),
                                     FraudClient(fraud_pb2_grpc.FraudServiceStub(channel), 1.0), acquirers,
                                     id_key=b"k" * 32)
        settlement = Settlement(store, acquirers, s.acquirers, tmp_path / "settlement")
        await env.gateway.start()
        env.vault.add(1)
        with pytest.raises(NotFound):
            await env.gateway.authorize(authorize_request(tok=token(9)))
        env.a.script = ["lose"]
        payment = (await env.gateway.authorize(authorize_request(capture=True))).payment
        assert payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED and payment.acquirer == PSP_B
        await env.gateway.reverser.drain()
        assert states(await env.gateway.get(MERCHANT, payment.payment_id)) == [(PSP_A, REVERSED), (PSP_B, APPROVED)]
        report = await settlement.reconcile()
        assert not report.discrepancies and [(s.acquirer, s.matched) for s in report.acquirers] == [
            (PSP_A, 0), (PSP_B, 1)]
    finally:
        await env.close()
        for channel in channels:
            await channel.close()
        await server.stop(None)
        for _, psp, _ in psp_servers:
            await psp.stop(None)


# ----------------------------------------------------------------------------- the property: no double charge


STEP = st.tuples(
    st.integers(0, 1),  # which key
    st.sampled_from(["call", "duplicate", "crash", "crash", "crash_early", "restart", "sweep", "sweep"]),
    st.sampled_from(["ok", "down", "lose", "hang", "hang"]),  # psp-a's next authorization
    st.sampled_from(["ok", "ok", "down", "lose"]),  # psp-b's next authorization
    st.booleans(),  # failover
)
KEYS = 2


async def _schedule(folder: Path, steps) -> None:
    env = Env(folder, breaker_consecutive_failures=3, breaker_cooldown_s=0.001)
    for n in range(KEYS):
        env.vault.add(n)
    requests = {n: authorize_request(key=f"key-{n}", tok=token(n), amount=100 + n) for n in range(KEYS)}
    answers: dict[int, set[str]] = {n: set() for n in range(KEYS)}
    await env.gateway.start()

    async def call(n: int) -> None:
        try:
            answers[n].add((await env.gateway.authorize(requests[n])).payment.payment_id)
        except (Aborted, service.Unavailable):
            pass

    try:
        for n, action, mode_a, mode_b, failover in steps:
            env.a.script, env.b.script = [mode_a], [mode_b]
            env.a.release = asyncio.Event()
            env.settings = env.settings.model_copy(update={"failover": failover})  # for the next restart
            env.gateway.router.failover = failover
            if action == "call":
                await asyncio.wait_for(_released(env, call(n)), WAIT_S)
            elif action == "duplicate":
                await asyncio.wait_for(_released(env, asyncio.gather(call(n), call(n))), WAIT_S)
            elif action in ("crash", "crash_early"):
                # the process dies: early (before or while it writes), or once an acquirer has the call
                sent = len(env.a.authorize_calls) + len(env.b.authorize_calls)
                task = asyncio.create_task(call(n))
                for _ in range(1 if action == "crash_early" else 5_000):
                    await asyncio.sleep(0.001)
                    if task.done() or len(env.a.authorize_calls) + len(env.b.authorize_calls) > sent:
                        break
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await env.restart()
            elif action == "restart":
                await env.restart()
            else:
                await env.gateway.sweep()
        # then every key retried until answered, the acquirers healthy
        env.a.script, env.b.script = [], []
        env.a.mode = env.b.mode = "ok"
        env.a.release.set()
        for n in range(KEYS):
            for _ in range(20):
                if answers[n]:
                    break
                await call(n)
            assert len(answers[n]) == 1, f"key {n} got payments {answers[n]}"
        await env.gateway.reverser.drain()
        for n, (payment_id,) in answers.items():
            held = env.a.approved(payment_id + ".") + env.b.approved(payment_id + ".")
            assert len(held) == 1, f"payment {payment_id} has unreversed approvals {held}"
            payment = await env.gateway.get(MERCHANT, payment_id)
            assert payment.status == payments_pb2.PAYMENT_STATUS_AUTHORIZED
            approved = [a for a in payment.attempts if a.state == APPROVED]
            assert [(a.acquirer, a.reference) for a in approved] == [
                (PSP_A if held[0] in env.a.auths else PSP_B, held[0])]
            assert all(a.state in (REVERSED, APPROVED, payments_pb2.ATTEMPT_STATE_FAILED) for a in payment.attempts)
    finally:
        env.a.release.set()
        await env.close()


async def _released(env: Env, work) -> None:
    """Run ``work`` and let a hanging acquirer answer once the call is waiting on it."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.sleep(0.001)
        env.a.release.set()
    await task


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=10))
def test_no_double_charge_under_any_schedule_of_retries_duplicates_failures_and_crashes(steps):
    folder = Path(tempfile.mkdtemp(prefix="payments-gateway-"))
    try:
        asyncio.run(_schedule(folder, steps))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_metric_names():
    assert metrics.PAYMENTS._name == "casemesh_payments_gateway_payments"
    assert 0.05 in metrics.AUTHORIZE_BUCKETS and 2.5 in metrics.AUTHORIZE_BUCKETS
