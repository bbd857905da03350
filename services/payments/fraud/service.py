"""``casemesh.payments.v1.FraudService`` (topology name ``payments-fraud``): scores a payment before it reaches an
acquirer.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud
detection, PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |"). The mechanism is the seed's fraud
detection as weighted rules over sliding windows of each card's (by its vault fingerprint) and each customer's recent
payments (:mod:`.rules`: card velocity, card testing, amount spike, large first payment; the weights, windows and
thresholds in :mod:`.settings`). The gateway declines a BLOCK (``fraud_blocked``) without asking an acquirer, and
goes on without a score when this service cannot be reached (it fails open).

RPCs and status codes (protos/casemesh/payments/v1/fraud.proto):

- ScorePayment (internal: :data:`GATEWAY_CALLERS`): INVALID_ARGUMENT naming ``payment_id`` (``pay_`` and 24
  characters of [a-z0-9]), ``merchant_id``, ``card_fingerprint`` (64 lower-case hex characters), ``customer_id``
  (empty or an id), ``amount`` (missing), ``amount.currency_code`` or ``amount.amount_minor`` (1 to 100,000,000).
  The score (0 to 100), the decision and the rules that fired; the same ``payment_id`` again gets the first answer
  and counts nothing twice (:class:`.rules.FraudRules`).

In memory only: a restart forgets the windows and scores leniently until they refill (the proto says so). A crash
inside one request ends that request (UNKNOWN, logged by the runtime's interceptor); the server goes on. Settings:
:class:`.settings.FraudSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import logging

import grpc

from casemesh.payments.v1 import fraud_pb2, fraud_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from . import validation as check
from .rules import FraudRules
from .settings import FraudSettings

log = logging.getLogger("casemesh.payments.fraud")

NAME = "payments-fraud"
GATEWAY = "payments-gateway"
FULL_NAME = fraud_pb2.DESCRIPTOR.services_by_name["FraudService"].full_name
#: Who may call ScorePayment.
GATEWAY_CALLERS: tuple[str, ...] = (GATEWAY,)


class FraudServicer(fraud_pb2_grpc.FraudServiceServicer):
    """Validates each request (:mod:`.validation`) and asks :class:`.rules.FraudRules`."""

    def __init__(self, rules: FraudRules) -> None:
        self._rules = rules

    async def ScorePayment(self, request: fraud_pb2.ScorePaymentRequest,
                           context: grpc.aio.ServicerContext) -> fraud_pb2.ScorePaymentResponse:
        return self._rules.score(check.score_payment(request)).to_proto()


class FraudComponent:
    """The servicer over :class:`.rules.FraudRules` with the topology's ``settings.payments-fraud``."""

    def __init__(self, context: RuntimeContext) -> None:
        self.settings = context.settings(NAME, FraudSettings)
        self.rules = FraudRules(self.settings)
        self.servicer = FraudServicer(self.rules)

    def register(self, server: grpc.aio.Server) -> None:
        fraud_pb2_grpc.add_FraudServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        s = self.settings
        log.info("%s: window %gs, review at %d, block at %d (windows in memory: a restart starts them empty)", NAME,
                 s.window_s, s.review_threshold, s.block_threshold)

    async def stop(self) -> None:
        pass


async def build(context: RuntimeContext) -> FraudComponent:
    return FraudComponent(context)


DEFINITION = ServiceDefinition(
    name=NAME, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=FraudSettings,
    access=Access(internal={"ScorePayment": GATEWAY_CALLERS}),
)
