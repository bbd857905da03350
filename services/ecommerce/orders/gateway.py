"""ecommerce-orders' calls to the payment gateway (``casemesh.payments.v1.PaymentGatewayService``,
``payments-gateway``), as the shop's merchant ``contract.MERCHANT_ID``.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Order Service:
Saga pattern"; line 522 "Payment Service: Idempotent APIs, retry with exponential backoff") and seed 003 "Amazon
E-commerce" processOrder (pay, then compensate with a refund). The checkout authorises first (``capture=false``) and
captures once the stock is committed, so a failure in between is undone by a Void, never a refund. Every call carries
an idempotency key derived from the order (:func:`.ids.payment_key`), so the gateway answers a repeated call with its
first answer and never charges twice. Deadlines, retries and errors: :mod:`.calls`.
"""

from __future__ import annotations

from typing import Protocol

from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import gateway_pb2, gateway_pb2_grpc, payments_pb2

from ..contract import MERCHANT_ID
from .calls import CallPolicy


class Gateway(Protocol):
    """The PaymentGatewayService calls the saga makes (:class:`.calls.Refused`, :class:`.calls.DependencyUnavailable`).
    Amounts in minor units of ``currency_code``."""

    async def authorize(self, idempotency_key: str, card_token: str, currency_code: str, amount_minor: int,
                        customer_id: str, description: str) -> payments_pb2.Payment: ...

    async def capture(self, idempotency_key: str, payment_id: str) -> payments_pb2.Payment: ...

    async def void(self, idempotency_key: str, payment_id: str) -> payments_pb2.Payment: ...


class GatewayClient:
    """:class:`Gateway` over ``gateway_pb2_grpc.PaymentGatewayServiceStub``, as merchant ``MERCHANT_ID``."""

    def __init__(self, stub: gateway_pb2_grpc.PaymentGatewayServiceStub, policy: CallPolicy) -> None:
        self._stub = stub
        self._policy = policy

    async def authorize(self, idempotency_key: str, card_token: str, currency_code: str, amount_minor: int,
                        customer_id: str, description: str) -> payments_pb2.Payment:
        return (await self._policy.call("Authorize", self._stub.Authorize, gateway_pb2.AuthorizeRequest(
            idempotency_key=idempotency_key, merchant_id=MERCHANT_ID, card_token=card_token,
            amount=money_pb2.Money(currency_code=currency_code, amount_minor=amount_minor), capture=False,
            description=description, customer_id=customer_id))).payment

    async def capture(self, idempotency_key: str, payment_id: str) -> payments_pb2.Payment:
        return (await self._policy.call("Capture", self._stub.Capture, gateway_pb2.CaptureRequest(
            idempotency_key=idempotency_key, merchant_id=MERCHANT_ID, payment_id=payment_id))).payment

    async def void(self, idempotency_key: str, payment_id: str) -> payments_pb2.Payment:
        return (await self._policy.call("Void", self._stub.Void, gateway_pb2.VoidRequest(
            idempotency_key=idempotency_key, merchant_id=MERCHANT_ID, payment_id=payment_id))).payment
