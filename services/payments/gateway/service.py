"""``casemesh.payments.v1.PaymentGatewayService`` and ``SettlementService`` (topology name ``payments-gateway``).

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud detection,
PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |") and seed 000 line 522 ("Payment Service:
Idempotent APIs, retry with exponential backoff"). Thin servicers over the domain: :class:`.payments.PaymentGateway`
(idempotency keys :mod:`.idempotency`, PSP routing with failover :mod:`.routing`, reversals :mod:`.reversal`, the
durable records :mod:`.store`) and :class:`.settlement.Settlement` (reconciliation). Calls out, each with an explicit
deadline (:mod:`.clients`): ``payments-vault`` (DetokenizeCard), ``payments-fraud`` (ScorePayment; optional: the
gateway fails open), the acquirers of settings ``acquirers`` (default ``payments-psp-a``, ``payments-psp-b``;
optional: routing skips one that fails).

RPCs and status codes (protos/casemesh/payments/v1/gateway.proto, settlement.proto), all public:

- Authorize: INVALID_ARGUMENT naming ``idempotency_key``, ``merchant_id``, ``card_token``, ``amount``,
  ``amount.currency_code``, ``amount.amount_minor``, ``description`` or ``customer_id``; NOT_FOUND for an unknown
  card token (or another merchant's); FAILED_PRECONDITION when the key was used for a different request; ABORTED
  while a call with the same key is in flight; UNAVAILABLE when no acquirer could take it (nothing held: retry with
  the same key), or the vault, the fraud service (``fraud_fail_open`` off) or the store failed. A decline is an
  answer (DECLINED, with its reason).
- Capture: INVALID_ARGUMENT naming ``idempotency_key``, ``merchant_id``, ``payment_id`` or ``amount_minor``
  (negative, or over the authorised amount); NOT_FOUND; FAILED_PRECONDITION when the payment is not AUTHORIZED, the
  key was used for a different request, or the acquirer refused; ABORTED while a call with the same key (or another
  capture of the payment) is in flight; UNAVAILABLE when the acquirer cannot be reached (retry with the same key).
- Void: as Capture without ``amount_minor``; FAILED_PRECONDITION when the payment was captured; a voided payment is
  returned.
- Refund: as Capture, ``amount_minor`` over what is left; FAILED_PRECONDITION when the payment is not CAPTURED.
- GetPayment: INVALID_ARGUMENT naming ``merchant_id`` or ``payment_id``; NOT_FOUND (or another merchant's).
- Reconcile: ABORTED while another reconciliation runs; UNAVAILABLE when an acquirer cannot be reached.

A crash inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on.
Settings: :class:`.settings.GatewaySettings` (A/B switch ``failover``); metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time

import grpc

from casemesh.payments.v1 import (
    acquirer_pb2_grpc,
    fraud_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    settlement_pb2,
    settlement_pb2_grpc,
    vault_pb2_grpc,
)

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import metrics, validation
from .clients import AcquirerClient, FraudClient, Unavailable, VaultClient
from .payments import ID_KEY_PURPOSE, PaymentGateway
from .settings import GatewaySettings
from .settlement import Settlement
from .store import GatewayStore

log = logging.getLogger("casemesh.payments.gateway.service")

NAME = "payments-gateway"
VAULT = "payments-vault"
FRAUD = "payments-fraud"
PSP_A = "payments-psp-a"
PSP_B = "payments-psp-b"
GATEWAY_FULL_NAME = gateway_pb2.DESCRIPTOR.services_by_name["PaymentGatewayService"].full_name
SETTLEMENT_FULL_NAME = settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"].full_name
#: The gateway's SQLite file and its reports' folder, under DATA_DIR/payments-gateway/.
DB_FILE = "gateway.sqlite"
SETTLEMENT_DIR = "settlement"
#: Methods anyone may call (the merchant's servers; the merchant's finance team or the harness for Reconcile).
PUBLIC_METHODS = frozenset({"Authorize", "Capture", "Void", "Refund", "GetPayment", "Reconcile"})


def _unavailable_on(method):
    """A unary handler that answers UNAVAILABLE for :class:`.clients.Unavailable` (a dependency, the store, no
    acquirer)."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except Unavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class PaymentGatewayServicer(gateway_pb2_grpc.PaymentGatewayServiceServicer):
    """Calls :class:`.payments.PaymentGateway` (which validates each request: :mod:`.validation`)."""

    def __init__(self, gateway: PaymentGateway) -> None:
        self._gateway = gateway

    @_unavailable_on
    async def Authorize(self, request: gateway_pb2.AuthorizeRequest,
                        context: grpc.aio.ServicerContext) -> gateway_pb2.AuthorizeResponse:
        validation.authorize(request)  # a refused request is not timed
        started = time.perf_counter()
        try:
            return await self._gateway.authorize(request)
        finally:
            metrics.AUTHORIZE_SECONDS.observe(time.perf_counter() - started)

    @_unavailable_on
    async def Capture(self, request: gateway_pb2.CaptureRequest,
                      context: grpc.aio.ServicerContext) -> gateway_pb2.CaptureResponse:
        return await self._gateway.capture(request)

    @_unavailable_on
    async def Void(self, request: gateway_pb2.VoidRequest,
                   context: grpc.aio.ServicerContext) -> gateway_pb2.VoidResponse:
        return await self._gateway.void(request)

    @_unavailable_on
    async def Refund(self, request: gateway_pb2.RefundRequest,
                     context: grpc.aio.ServicerContext) -> gateway_pb2.RefundResponse:
        return await self._gateway.refund(request)

    @_unavailable_on
    async def GetPayment(self, request: gateway_pb2.GetPaymentRequest,
                         context: grpc.aio.ServicerContext) -> gateway_pb2.GetPaymentResponse:
        return gateway_pb2.GetPaymentResponse(payment=await self._gateway.get(*validation.get_payment(request)))


class SettlementServicer(settlement_pb2_grpc.SettlementServiceServicer):
    """Calls :class:`.settlement.Settlement`."""

    def __init__(self, settlement: Settlement) -> None:
        self._settlement = settlement

    @_unavailable_on
    async def Reconcile(self, request: settlement_pb2.ReconcileRequest,
                        context: grpc.aio.ServicerContext) -> settlement_pb2.ReconcileResponse:
        return await self._settlement.reconcile()


class GatewayComponent:
    """Both servicers over the store (``DATA_DIR/payments-gateway/gateway.sqlite``), the stubs to the vault, the fraud
    service and the acquirers, and the housekeeping task (resumption of abandoned keys, pruning)."""

    def __init__(self, context: RuntimeContext) -> None:
        settings = context.settings(NAME, GatewaySettings)
        data_dir = context.data_dir(NAME)
        store = GatewayStore(data_dir / DB_FILE)
        vault = VaultClient(vault_pb2_grpc.CardVaultServiceStub(context.channel(VAULT)), settings.vault_timeout_s)
        fraud = FraudClient(fraud_pb2_grpc.FraudServiceStub(context.channel(FRAUD)), settings.fraud_timeout_s)
        acquirers = {name: AcquirerClient(name, acquirer_pb2_grpc.AcquirerServiceStub(context.channel(name)),
                                          settings.acquirer_timeout_s, settings.settlement_timeout_s)
                     for name in settings.acquirers}
        self.gateway = PaymentGateway(settings, store, vault, fraud, acquirers,
                                      id_key=context.secret.keyring(ID_KEY_PURPOSE).current_key)
        self.settlement = Settlement(store, acquirers, settings.acquirers, data_dir / SETTLEMENT_DIR)
        self._housekeeping: asyncio.Task[None] | None = None

    def register(self, server: grpc.aio.Server) -> None:
        gateway_pb2_grpc.add_PaymentGatewayServiceServicer_to_server(PaymentGatewayServicer(self.gateway), server)
        settlement_pb2_grpc.add_SettlementServiceServicer_to_server(SettlementServicer(self.settlement), server)

    async def start(self) -> None:
        resumed = await self.gateway.start()
        if resumed:
            log.info("%s: %d reversals resumed", NAME, resumed)
        self._housekeeping = asyncio.create_task(self.gateway.run_housekeeping(), name=f"{NAME}-housekeeping",
                                                 context=contextvars.Context())

    async def stop(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._housekeeping
        await self.gateway.close()


async def build(context: RuntimeContext) -> GatewayComponent:
    return GatewayComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(GATEWAY_FULL_NAME, SETTLEMENT_FULL_NAME), dependencies=(VAULT, FRAUD, PSP_A, PSP_B),
    build=build, settings_model=GatewaySettings,
    # The fraud service fails open; routing skips an acquirer that fails (and failover sends payments to the other).
    optional_dependencies=(FRAUD, PSP_A, PSP_B),
    access=Access(public=PUBLIC_METHODS),
)
