"""The payment gateway through real gRPC: many merchants' clients retrying with their idempotency keys while the
gateway and an acquirer are SIGKILLed and restarted, and afterwards no key was charged twice and settlement reconciles.

CASE-STUDY.md point 5 for the payment gateway (seed 001 #25, shared/seeds/001_58dfc580020147d2.txt line 49; seed 000
line 522, "Payment Service: Idempotent APIs, retry with exponential backoff"; the issue: "no double charge for one
idempotency key, including across a crash between charge and response"). Clients send every sale with its own key,
some twice at once (a double click), and retry the same request on UNAVAILABLE, ABORTED and DEADLINE_EXCEEDED as a
merchant's server would. Afterwards, read through the public API and the acquirers' own records: every answer for a
key names one payment; a payment has at most one authorization held or captured across both acquirers (every other
attempt declined, failed or reversed there); what the acquirer captured is what the gateway says; and the settlement
files of both acquirers reconcile with the gateway's ledger, with nothing missing.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict

import grpc
import pytest

from casemesh.common.v1 import money_pb2
from casemesh.harness.mesh import Mesh
from casemesh.payments.v1 import (
    acquirer_pb2, acquirer_pb2_grpc, gateway_pb2, gateway_pb2_grpc, payments_pb2, settlement_pb2, settlement_pb2_grpc,
    vault_pb2, vault_pb2_grpc,
)

from casemesh.services.runtime.identity import service_identity

from ..caller_identity import identified_channel
from .waiting import eventually

SERVICES = ["payments-vault", "payments-fraud", "payments-psp-a", "payments-psp-b", "payments-gateway"]
ACQUIRERS = ("payments-psp-a", "payments-psp-b")
#: Fast issuers, a few declines; the gateway gives up on an acquirer quickly so that failover happens in the test.
SETTINGS = {
    "payments-psp-a": {"latency_median_ms": 5, "decline_rate": 0.05},
    "payments-psp-b": {"latency_median_ms": 8, "decline_rate": 0.05},
}
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                  ("grpc.max_reconnect_backoff_ms", 500))
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
MERCHANT = "shop-1"
CARDS = ["4242424242424242", "5555555555554444", "378282246310005", "4000056655665556", "2223003122003222"]
HELD = {acquirer_pb2.AUTHORIZATION_STATE_APPROVED, acquirer_pb2.AUTHORIZATION_STATE_CAPTURED}


async def _authorize(stub: gateway_pb2_grpc.PaymentGatewayServiceStub, request: gateway_pb2.AuthorizeRequest,
                     rng: random.Random) -> payments_pb2.Payment:
    """Send ``request`` until it has a final answer, retrying the same request (the same key) with jittered backoff."""
    for attempt in range(200):
        try:
            return (await stub.Authorize(request, timeout=5)).payment
        except grpc.aio.AioRpcError as error:
            if error.code() not in RETRYABLE:
                raise
            await asyncio.sleep(rng.uniform(0, min(1.0, 0.05 * 2 ** min(attempt, 5))))
    raise AssertionError(f"no final answer for {request.idempotency_key}")


@pytest.mark.slow  # a process-kill suite: run by .ci/run's crash-safety step, not by default (make test)
@pytest.mark.asyncio
async def test_retried_payments_are_charged_once_across_gateway_and_acquirer_kills(tmp_path):
    async with Mesh(SERVICES, tmp_path, restart=None, settings=SETTINGS) as mesh:
        def public(name: str) -> grpc.aio.Channel:
            return grpc.aio.insecure_channel(mesh.topology.endpoint(name).address, options=FAST_RECONNECT)

        vault_channel, gateway_channel = public("payments-vault"), public("payments-gateway")
        acquirer_channels = {name: identified_channel(mesh.topology.endpoint(name).address, mesh.secret,
                                                      identity=service_identity("payments-gateway"),
                                                      options=FAST_RECONNECT)
                             for name in ACQUIRERS}
        vault = vault_pb2_grpc.CardVaultServiceStub(vault_channel)
        gateway = gateway_pb2_grpc.PaymentGatewayServiceStub(gateway_channel)
        answers: dict[str, set[str]] = defaultdict(set)  # idempotency key → payment ids answered
        amounts: dict[str, int] = {}
        try:
            tokens = [(await vault.TokenizeCard(vault_pb2.TokenizeCardRequest(
                merchant_id=MERCHANT, card_number=number, exp_month=12, exp_year=2035, cvc="123"),
                timeout=10)).card_token for number in CARDS]

            async def client(n: int) -> None:
                rng = random.Random(n)
                for i in range(12):
                    key = f"order-{n}-{i}"
                    amount = rng.randint(100, 20_000)
                    amounts[key] = amount
                    request = gateway_pb2.AuthorizeRequest(
                        idempotency_key=key, merchant_id=MERCHANT, card_token=tokens[n % len(tokens)],
                        amount=money_pb2.Money(currency_code="USD", amount_minor=amount), capture=True,
                        customer_id=f"cust-{n}")
                    sends = 2 if rng.random() < 0.2 else 1  # a double click: the same request twice at once
                    payments = await asyncio.gather(*(_authorize(gateway, request, rng) for _ in range(sends)))
                    answers[key].update(p.payment_id for p in payments)
                    await asyncio.sleep(rng.uniform(0, 0.05))

            clients = [asyncio.create_task(client(n)) for n in range(24)]
            await eventually(lambda: len(answers) >= 60, "60 payments answered before the first kill", 60)
            assert mesh.kill("payments-gateway", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.3)
            await mesh.start_services(["payments-gateway"])
            await eventually(lambda: len(answers) >= 140, "140 payments answered before the acquirer's kill", 60)
            assert mesh.kill("payments-psp-a", signal.SIGKILL) == -signal.SIGKILL
            await asyncio.sleep(0.5)
            await mesh.start_services(["payments-psp-a"])
            await asyncio.wait_for(asyncio.gather(*clients), 120)
            assert len(answers) == 24 * 12

            # One payment per key, whatever the retries and double clicks.
            assert all(len(ids) == 1 for ids in answers.values()), {k: v for k, v in answers.items() if len(v) > 1}
            acquirers = {name: acquirer_pb2_grpc.AcquirerServiceStub(channel)
                         for name, channel in acquirer_channels.items()}

            async def settled() -> list[payments_pb2.Payment]:
                return [(await gateway.GetPayment(gateway_pb2.GetPaymentRequest(
                    merchant_id=MERCHANT, payment_id=next(iter(answers[key]))), timeout=10)).payment
                    for key in answers]

            # Attempts whose outcome was unknown are reversed in the background: wait until none is left.
            payments = await settled()
            for _ in range(300):
                if not any(a.state == payments_pb2.ATTEMPT_STATE_REVERSING for p in payments for a in p.attempts):
                    break
                await asyncio.sleep(0.1)
                payments = await settled()
            statuses = defaultdict(int)
            for payment in payments:
                statuses[payment.status] += 1
                assert payment.status in (payments_pb2.PAYMENT_STATUS_CAPTURED, payments_pb2.PAYMENT_STATUS_DECLINED), payment
                held = []
                for attempt in payment.attempts:
                    assert attempt.state != payments_pb2.ATTEMPT_STATE_REVERSING, payment
                    try:
                        record = (await acquirers[attempt.acquirer].GetAuthorization(
                            acquirer_pb2.GetAuthorizationRequest(reference=attempt.reference), timeout=10)).authorization
                    except grpc.aio.AioRpcError as error:
                        assert error.code() == grpc.StatusCode.NOT_FOUND, (payment.payment_id, error)
                        continue
                    if record.state in HELD:
                        held.append((attempt.acquirer, record))
                where = (payment.payment_id, payments_pb2.PaymentStatus.Name(payment.status), payment.decline_code,
                         [(a.acquirer, a.reference, payments_pb2.AttemptState.Name(a.state)) for a in payment.attempts],
                         [(name, acquirer_pb2.AuthorizationState.Name(r.state)) for name, r in held])
                if payment.status == payments_pb2.PAYMENT_STATUS_CAPTURED:
                    assert len(held) == 1, where  # charged exactly once, at one acquirer
                    acquirer, record = held[0]
                    assert acquirer == payment.acquirer and record.state == acquirer_pb2.AUTHORIZATION_STATE_CAPTURED
                    assert record.captured_minor == payment.captured_minor == payment.amount.amount_minor
                else:
                    assert not held, where  # a decline holds nothing anywhere
            assert statuses[payments_pb2.PAYMENT_STATUS_CAPTURED] > 200, statuses

            # Both acquirers' settlement files reconcile with the gateway's ledger; nothing captured is left out.
            settlement = settlement_pb2_grpc.SettlementServiceStub(gateway_channel)
            report = await settlement.Reconcile(settlement_pb2.ReconcileRequest(), timeout=30)
            assert not report.discrepancies, report.discrepancies
            assert report.pending == 0, report
            captured = sum(p.captured_minor for p in payments)
            assert sum(m.amount_minor for a in report.acquirers for m in a.gross) == captured
        finally:
            for task in locals().get("clients", []):
                task.cancel()
            for channel in (vault_channel, gateway_channel, *acquirer_channels.values()):
                await channel.close()
