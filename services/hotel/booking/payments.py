"""hotel-booking's calls to ``casemesh.payments.v1.PaymentGatewayService`` (``payments-gateway``), as the saga sees
them.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "Hotel Reservation | ... payment auth/capture"): the
stay's total is authorised when the booking is made (``capture=false``: the amount is held on the card) and captured
at check-in; a failed or cancelled booking voids it. The hotels are one merchant at the gateway,
:data:`services.hotel.contract.MERCHANT_ID`; the guest's id is the payment's ``customer_id`` (the gateway's fraud
rules count per customer). Every call carries the booking's idempotency key for the operation
(:func:`.ids.payment_key`: ``<booking_id>:authorize``, ``:capture``, ``:void``), so a retry, after a lost answer or
a crash of either side, reaches the same payment and never holds or charges twice.

:class:`GatewayClient` wraps ``gateway_pb2_grpc.PaymentGatewayServiceStub`` with the deadline ``gateway_timeout_s``
per call (:func:`.calls.call`). A decline is an answer (the payment comes back DECLINED). NOT_FOUND (an unknown card
token, or payment), INVALID_ARGUMENT and FAILED_PRECONDITION (a capture or void the gateway or the acquirer refuses)
→ :class:`PaymentRefused`; ABORTED (a call with the same key is still in flight there) and no answer →
:class:`.calls.DependencyUnavailable`: retry later with the same key.
"""

from __future__ import annotations

from typing import Protocol

import grpc
from casemesh.common.v1 import money_pb2
from casemesh.payments.v1 import gateway_pb2, gateway_pb2_grpc, payments_pb2

from ..contract import MERCHANT_ID
from .calls import Refused, call


class PaymentRefused(Exception):
    """The gateway answered NOT_FOUND, INVALID_ARGUMENT or FAILED_PRECONDITION: it did nothing (``details`` why)."""

    def __init__(self, refusal: Refused) -> None:
        self.code = refusal.code
        self.details = refusal.details
        super().__init__(str(refusal))


class Gateway(Protocol):
    """The PaymentGatewayService calls the saga makes, as merchant ``MERCHANT_ID`` (errors as the module docstring
    says)."""

    async def authorize(self, key: str, card_token: str, amount: money_pb2.Money, customer_id: str,
                        description: str) -> payments_pb2.Payment: ...

    async def capture(self, key: str, payment_id: str) -> payments_pb2.Payment: ...

    async def void(self, key: str, payment_id: str) -> payments_pb2.Payment: ...


class GatewayClient:
    """:class:`Gateway` over ``gateway_pb2_grpc.PaymentGatewayServiceStub``, ``timeout_s`` per call."""

    def __init__(self, stub: gateway_pb2_grpc.PaymentGatewayServiceStub, timeout_s: float) -> None:
        self._stub = stub
        self._timeout_s = timeout_s

    async def _call(self, method: str, request):
        try:
            return await call(method, getattr(self._stub, method), request, self._timeout_s)
        except Refused as refusal:
            if refusal.code == grpc.StatusCode.ABORTED:
                raise refusal.domain_error() from None
            raise PaymentRefused(refusal) from None

    async def authorize(self, key: str, card_token: str, amount: money_pb2.Money, customer_id: str,
                        description: str) -> payments_pb2.Payment:
        """Authorize ``amount`` on the card, without capture: AUTHORIZED or DECLINED."""
        return (await self._call("Authorize", gateway_pb2.AuthorizeRequest(
            idempotency_key=key, merchant_id=MERCHANT_ID, card_token=card_token, amount=amount, capture=False,
            description=description, customer_id=customer_id))).payment

    async def capture(self, key: str, payment_id: str) -> payments_pb2.Payment:
        """Capture all of an AUTHORIZED payment: CAPTURED."""
        return (await self._call("Capture", gateway_pb2.CaptureRequest(
            idempotency_key=key, merchant_id=MERCHANT_ID, payment_id=payment_id, amount_minor=0))).payment

    async def void(self, key: str, payment_id: str) -> payments_pb2.Payment:
        """Void an AUTHORIZED payment (a VOIDED one is returned): VOIDED."""
        return (await self._call("Void", gateway_pb2.VoidRequest(
            idempotency_key=key, merchant_id=MERCHANT_ID, payment_id=payment_id))).payment
