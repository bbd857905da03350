"""The payment gateway workload (Stripe / Adyen; seed 001 #25 "Payment Gateway", shared/seeds/001_58dfc580020147d2.txt
line 49: "PSP routing, fraud detection, PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen"; seed 000
line 522: "Payment Service: Idempotent APIs, retry with exponential backoff").

Seeding (:mod:`.seeding`) tokenizes the customers' cards of a few merchants through CardVaultService.TokenizeCard: a
pool of valid Luhn numbers generated per run from the run's seed, and a small share of the contract's test cards that
every issuer declines (:mod:`.cards`). Open-loop arrivals are merchants' journeys (:mod:`.journeys`): ``checkout``
(sales, some double-clicked), ``hold_then_capture`` (a hotel's hold, then capture or void), ``refund`` (a sale, then
its refund in full or in part) and ``card_testing`` (a fraud bot trying many stolen cards under one customer), every
money-moving call with an idempotency key and retried with the same key (exponential backoff, full jitter:
:mod:`casemesh.harness.workloads.idempotent_retry`). After its final answers each merchant journey reads the payment
back and checks that one key made one payment, charged at most once (:mod:`.invariants`); at the end of the run
SettlementService.Reconcile must find every acquirer's settlement file matching the gateway's records (:mod:`.live`).

Measures: ``checkout_time`` (the pay button: first send to final answer), ``checkout_outcome`` (approved, or the
decline code), ``card_testing_blocked``, and the invariants ``single_charge`` and ``settlement``; the driver records
every RPC, PaymentGatewayService/Authorize among them (the headline SLO). The workload speaks only the contracts
(protos/casemesh/payments/v1, casemesh.common.v1) and casemesh.services.payments.contract.

The payments-gateway process serves PaymentGatewayService and SettlementService on one address: its topology name
maps to :class:`~.live.GatewayStub` (both services' methods on one channel), and :class:`PaymentsWorkload` names
``Reconcile`` as SettlementService's method.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

from casemesh.payments.v1 import gateway_pb2, settlement_pb2, vault_pb2, vault_pb2_grpc

from ...streams import Streams
from ..base import Journey, Workload, entrypoints
from .invariants import SINGLE_CHARGE
from .journeys import (
    CARD_TESTING_BLOCKED,
    CHECKOUT_OUTCOME,
    CHECKOUT_TIME,
    CardTestingParams,
    CheckoutParams,
    HoldParams,
    RefundParams,
    card_testing,
    checkout,
    hold_then_capture,
    refund,
)
from .live import SETTLEMENT, GatewayStub, Payments
from .seeding import GATEWAY, VAULT, SeedParams, State, seed

log = logging.getLogger("casemesh.workloads.payments")

_SERVICES = {
    VAULT: (vault_pb2, "CardVaultService", vault_pb2_grpc.CardVaultServiceStub),
    GATEWAY: (gateway_pb2, "PaymentGatewayService", GatewayStub),
}
_ENTRYPOINTS = entrypoints(_SERVICES)
#: SettlementService's full name, served by payments-gateway beside PaymentGatewayService.
SETTLEMENT_SERVICE = settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"].full_name
_SETTLEMENT_METHODS = frozenset(m.name for m in settlement_pb2.DESCRIPTOR.services_by_name["SettlementService"].methods)

MEASURES = (CHECKOUT_TIME, CHECKOUT_OUTCOME, SINGLE_CHARGE, CARD_TESTING_BLOCKED, SETTLEMENT)


@dataclass(frozen=True)
class PaymentsWorkload(Workload):
    """The workload, with SettlementService's methods named under their own service on payments-gateway."""

    def full_method(self, service: str, method: str) -> str:
        if service == GATEWAY and method in _SETTLEMENT_METHODS:
            return f"{SETTLEMENT_SERVICE}/{method}"
        return super().full_method(service, method)


async def connect(streams: Streams, state: State, params: SeedParams, rng: random.Random) -> Payments:
    """This process's :class:`~.live.Payments`, after the baseline reconciliation (``baseline_reconcile``: load
    process 0 only, unrecorded); ``rng`` is not used."""
    live = Payments(streams, state, params)
    await live.baseline()
    return live


async def disconnect(live: Payments) -> None:
    """The end-of-run settlement check (``settlement``), after this process's last journey."""
    try:
        await live.settle()
    except Exception:  # a bug here must not lose the run's other results
        log.exception("payments: the settlement check failed")
        live.streams.observe(SETTLEMENT, 0.0, "UNKNOWN", sent_at=live.clock())


WORKLOAD = PaymentsWorkload(
    name="payments",
    description="Payment gateway (shared/seeds/001 #25 'Payment Gateway', Stripe/Adyen): merchants' checkouts with "
                "idempotent retries and double clicks, hotel holds captured or voided, refunds, a card-testing bot "
                "against the fraud rules, and the acquirers' settlement reconciled at the end",
    services=_ENTRYPOINTS.services,
    stubs=_ENTRYPOINTS.stubs,
    service_names=_ENTRYPOINTS.service_names,
    rpcs=(*_ENTRYPOINTS.rpcs, *(f"{SETTLEMENT_SERVICE}/{m}" for m in sorted(_SETTLEMENT_METHODS))),
    journeys={
        j.name: j
        for j in (
            Journey("checkout", "A customer pays a merchant (Authorize with capture, a fresh idempotency key, retried "
                    "with the same key; a few double clicks), then the payment is checked (GetPayment)",
                    CheckoutParams, checkout),
            Journey("hold_then_capture", "A hotel holds an amount (Authorize), then captures the final bill or voids "
                    "the hold, and checks the payment", HoldParams, hold_then_capture),
            Journey("refund", "A sale, then the merchant's back office refunds it in full or in part, and checks the "
                    "payment", RefundParams, refund),
            Journey("card_testing", "A fraud bot tries many stolen cards under one customer with small payments "
                    "(card_testing_blocked)", CardTestingParams, card_testing),
        )
    },
    seed_model=SeedParams,
    seed=seed,
    measures=MEASURES,
    connect=connect,
    disconnect=disconnect,
)
