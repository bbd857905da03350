"""``casemesh.payments.v1.AcquirerService``: a simulated acquirer / payment service provider, served under two
topology names, ``payments-psp-a`` and ``payments-psp-b`` (:func:`definition`, :data:`DEFINITION_A`,
:data:`DEFINITION_B`), each with its own settings block (latency, decline rate, fees) and data folder.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud detection,
PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |") and seed 000 line 522 ("Payment Service:
Idempotent APIs, retry with exponential backoff"). The gateway routes each authorization to one of the acquirers and
fails over to the other; it retries every call with the same ``reference``, and when it no longer knows whether an
authorization went through (a deadline, a lost answer) it sends Void until the acquirer confirms. So, here:

- every call is keyed by ``reference`` (``refund_reference`` for a refund) and idempotent on it: the ledger
  (:class:`.store.AcquirerStore`, SQLite, fsynced before answering) has one row per reference, and a repeat gets the
  first answer back (:class:`Acquirer`);
- the issuer (:class:`.issuer.Issuer`) waits a lognormal round trip, then approves or declines;
- Void of a reference never seen records it VOIDED (a tombstone), and an Authorize that arrives after that is
  refused (FAILED_PRECONDITION): a reversal the gateway sent for an authorization whose answer it never got can never
  be overtaken by that authorization (a lock per reference, services/runtime/keyed_locks.py: the decision and the
  write of an Authorize and a Void of one reference are serialised, and the Authorize's issuer wait comes before its
  lock);
- captures and refunds are booked into the open settlement batch with their fees; CloseBatch writes the batch's
  settlement file (:mod:`.settlement`) and opens the next; GetSettlementFile streams a closed batch's lines.

RPCs (every one internal: callers :data:`GATEWAY_CALLERS`) and status codes (protos/casemesh/payments/v1/
acquirer.proto):

- Authorize: INVALID_ARGUMENT naming ``reference``, ``merchant_id``, ``card_number``, ``exp_month``, ``exp_year``,
  ``amount``, ``amount.currency_code`` or ``amount.amount_minor``. A known reference answers at once, without the
  issuer: a tombstone FAILED_PRECONDITION (voided before it arrived: refused, nothing held); the same merchant and
  amount the first answer (APPROVED or DECLINED as it was decided, whatever happened since: GetAuthorization tells
  where it stands now); another merchant or amount FAILED_PRECONDITION. A new reference waits the issuer's round
  trip, then is decided and stored APPROVED or DECLINED (a decline is an answer, not an error) unless a Void came
  first (FAILED_PRECONDITION).
- Capture: INVALID_ARGUMENT naming ``reference`` or ``amount_minor`` (negative, or more than the authorised amount);
  NOT_FOUND for an unknown reference; FAILED_PRECONDITION when declined, voided, or captured with another amount;
  an APPROVED authorization is captured (0: in full) into the open batch, fee :func:`.settlement.capture_fee`; a
  repeat (the same amount, 0 meaning all) answers CAPTURED with the amount captured and nothing refunded yet.
- Refund: INVALID_ARGUMENT naming ``reference``, ``refund_reference`` or ``amount_minor``; NOT_FOUND;
  FAILED_PRECONDITION when not captured, when the refunds would exceed the capture, or when ``refund_reference`` was
  used for another refund (another reference or amount); a repeat answers as the first time (the refunds counted
  then).
- Void: INVALID_ARGUMENT naming ``reference``; FAILED_PRECONDITION when captured. APPROVED → VOIDED (released);
  never seen → a VOIDED tombstone (``amount`` unset); VOIDED again → the first answer; DECLINED → answered as it
  is (nothing held, nothing to release: the gateway's reversal is done).
- GetAuthorization: INVALID_ARGUMENT naming ``reference``; NOT_FOUND when never seen; the record as it stands now.
- CloseBatch: the batch closed (``<acquirer>-000001``), its line count, gross (captures less refunds) and fees per
  currency; a batch with nothing in it is closed all the same.
- GetSettlementFile: INVALID_ARGUMENT naming ``batch_id``; NOT_FOUND for an unknown batch (or another acquirer's);
  FAILED_PRECONDITION for the open one; the file's lines in order.

Every RPC answers UNAVAILABLE when the ledger cannot be read or written (nothing changed), and Authorize and Void when
more than ``max_references_locked`` references are being decided (nothing processed). Outages of an acquirer as a
whole are the runtime's fault injection (``--fault 'payments-psp-a:abort=UNAVAILABLE@50%'``): nothing is processed.
Settings: :class:`.settings.AcquirerSettings`; metrics: :mod:`.metrics`.
"""

from __future__ import annotations

import functools
import logging
import secrets
import string
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import grpc

from casemesh.payments.v1 import acquirer_pb2, acquirer_pb2_grpc

from ...runtime.authorization import Access
from ...runtime.component import RuntimeContext, ServiceDefinition
from ...runtime.errors import FailedPrecondition, NotFound
from ...runtime.keyed_locks import KeyedLocks
from . import settlement
from . import validation as check
from .issuer import Issuer, TooManyReferences
from .metrics import AcquirerMetrics
from .settings import AcquirerSettings
from .settlement import SettlementLine
from .store import (
    APPROVED,
    CAPTURED,
    DECLINED,
    PSP_REFERENCE_CHARS,
    AcquirerStore,
    AuthorizationRecord,
    StoreUnavailable,
    short_name,
)

log = logging.getLogger("casemesh.payments.acquirer")

PSP_A = "payments-psp-a"
PSP_B = "payments-psp-b"
#: The topology names this module serves.
ACQUIRERS: tuple[str, ...] = (PSP_A, PSP_B)
GATEWAY = "payments-gateway"
#: Who may call every AcquirerService RPC.
GATEWAY_CALLERS: tuple[str, ...] = (GATEWAY,)
FULL_NAME = acquirer_pb2.DESCRIPTOR.services_by_name["AcquirerService"].full_name
METHODS: tuple[str, ...] = tuple(acquirer_pb2.DESCRIPTOR.services_by_name["AcquirerService"].methods_by_name)
_PSP_ALPHABET = string.ascii_lowercase + string.digits


def new_psp_reference(acquirer: str) -> str:
    """``<short name>_`` and 20 random characters of [a-z0-9] (``psp-a_3kq…``): the acquirer's own id of a
    reference."""
    return f"{short_name(acquirer)}_" + "".join(secrets.choice(_PSP_ALPHABET) for _ in range(PSP_REFERENCE_CHARS))


class Acquirer:
    """One acquirer without gRPC: its ledger in ``store``, its issuer (``Issuer(settings)`` unless given), its
    metrics labelled ``name``. ``clock()`` is the time in seconds since the Unix epoch (card expiry).

    Methods take validated requests (:mod:`.validation`) and return the ``Authorization`` to answer; errors are the
    runtime's domain errors (``services/runtime/errors.py``), :class:`.store.StoreUnavailable` and
    :class:`.issuer.TooManyReferences` (UNAVAILABLE), as the module docstring lists per RPC.
    """

    def __init__(self, name: str, settings: AcquirerSettings, store: AcquirerStore, issuer: Issuer | None = None,
                 *, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.settings = settings
        self.store = store
        self.issuer = issuer if issuer is not None else Issuer(settings)
        self.locks = KeyedLocks(settings.max_references_locked, too_many=TooManyReferences)
        self.metrics = AcquirerMetrics(name)
        self._clock = clock

    def fee(self, amount_minor: int) -> int:
        """This acquirer's fee on a capture of ``amount_minor`` (minor units)."""
        return settlement.capture_fee(amount_minor, self.settings.fee_bps, self.settings.fee_fixed_minor)

    async def authorize(self, request: check.Authorize) -> acquirer_pb2.Authorization:
        """Authorize: the first answer for a known reference, else the issuer's decision once its round trip is
        waited out, stored before it is answered."""
        stored = await self.store.get(request.reference)
        if stored is not None:
            return self._authorized_before(stored, request)
        latency_s = await self.issuer.round_trip()
        async with self.locks.hold(request.reference):
            now = datetime.fromtimestamp(self._clock(), UTC)
            decision = self.issuer.decide(request.card_number, request.exp_month, request.exp_year, now)
            record = AuthorizationRecord(
                request.reference, new_psp_reference(self.name), APPROVED if decision.approved else DECLINED,
                request.merchant_id, request.currency, request.amount_minor, decision.decline_code, 0, 0, 0, None,
                None, 0, 0, 0)
            stored, created = await self.store.authorize(record)
        if not created:
            return self._authorized_before(stored, request)
        self.metrics.issuer_latency.observe(latency_s)
        self.metrics.authorization("approved" if decision.approved else "declined")
        return _first_authorize_answer(stored)

    def _authorized_before(self, stored: AuthorizationRecord, request: check.Authorize) -> acquirer_pb2.Authorization:
        if stored.tombstone:
            self.metrics.authorization("refused")
            raise FailedPrecondition(f"reference {request.reference} was voided before its authorization arrived: "
                                     "refused, nothing held")
        if (stored.merchant_id, stored.currency, stored.amount_minor) != (
                request.merchant_id, request.currency, request.amount_minor):
            raise FailedPrecondition(
                f"reference: {request.reference} was authorised for another payment ({stored.merchant_id}, "
                f"{stored.amount_minor} {stored.currency})")
        self.metrics.repeat("Authorize")
        return _first_authorize_answer(stored)

    async def capture(self, reference: str, amount_minor: int) -> acquirer_pb2.Authorization:
        """Capture ``amount_minor`` (0: all) of an approved authorization into the open batch."""
        stored, captured = await self.store.capture(reference, amount_minor, self.fee)
        if captured:
            self.metrics.captures.inc()
        else:
            self.metrics.repeat("Capture")
        return stored.to_proto(refunded_minor=0)

    async def refund(self, request: check.Refund) -> acquirer_pb2.Authorization:
        """Refund ``amount_minor`` of a captured authorization into the open batch, as ``refund_reference``."""
        stored, refund, booked = await self.store.refund(request.reference, request.refund_reference,
                                                         request.amount_minor)
        if booked:
            self.metrics.refunds.inc()
        else:
            self.metrics.repeat("Refund")
        return stored.to_proto(state=CAPTURED, refunded_minor=refund.refunded_after_minor)

    async def void(self, reference: str) -> acquirer_pb2.Authorization:
        """Void: release an approved authorization, or record a reference never seen as voided (a tombstone)."""
        async with self.locks.hold(reference):
            stored, outcome = await self.store.void(reference, new_psp_reference(self.name))
        if outcome in ("release", "tombstone"):
            self.metrics.void(outcome)
        elif outcome == "repeat":
            self.metrics.repeat("Void")
        return stored.to_proto()  # VOIDED (nothing of it can change since), or DECLINED: nothing held

    async def get(self, reference: str) -> acquirer_pb2.Authorization:
        """The authorization as it stands; NotFound when the acquirer never saw ``reference``."""
        stored = await self.store.get(reference)
        if stored is None:
            raise NotFound(f"reference: {self.name} never saw {reference}")
        return stored.to_proto()

    async def close_batch(self) -> acquirer_pb2.CloseBatchResponse:
        """Close the open batch (its settlement file written) and open the next; its totals."""
        batch, lines = await self.store.close_batch()
        self.metrics.batches_closed.inc()
        totals = settlement.summarize(lines)
        log.info("%s: batch %s closed: %d lines", self.name, batch.batch_id, totals.lines)
        return acquirer_pb2.CloseBatchResponse(batch_id=batch.batch_id, lines=totals.lines,
                                               gross=totals.gross_proto(), fees=totals.fees_proto())

    async def settlement_file(self, batch_id: str) -> list[SettlementLine]:
        """The lines of closed batch ``batch_id``, in the file's order."""
        return await self.store.settlement_file(batch_id)

    async def close(self) -> None:
        """Close the ledger (queued operations finish first)."""
        await self.store.close()


def _first_authorize_answer(stored: AuthorizationRecord) -> acquirer_pb2.Authorization:
    """Authorize's answer as it was first given: APPROVED or DECLINED, nothing captured or refunded."""
    return stored.to_proto(state=DECLINED if stored.decline_code else APPROVED, captured_minor=0, refunded_minor=0)


# -- gRPC -------------------------------------------------------------------------------------------------------------

def _unavailable_on(method):
    """A unary handler that answers UNAVAILABLE when the ledger cannot be read or written, or too many references
    are being decided (nothing processed)."""

    @functools.wraps(method)
    async def handler(self, request, context: grpc.aio.ServicerContext):
        try:
            return await method(self, request, context)
        except (StoreUnavailable, TooManyReferences) as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))

    return handler


class AcquirerServicer(acquirer_pb2_grpc.AcquirerServiceServicer):
    """Validates each request (:mod:`.validation`) and calls :class:`Acquirer`."""

    def __init__(self, acquirer: Acquirer) -> None:
        self._acquirer = acquirer

    @_unavailable_on
    async def Authorize(self, request: acquirer_pb2.AcquirerServiceAuthorizeRequest,
                        context: grpc.aio.ServicerContext) -> acquirer_pb2.AcquirerServiceAuthorizeResponse:
        authorization = await self._acquirer.authorize(check.authorize(request))
        return acquirer_pb2.AcquirerServiceAuthorizeResponse(authorization=authorization)

    @_unavailable_on
    async def Capture(self, request: acquirer_pb2.AcquirerServiceCaptureRequest,
                      context: grpc.aio.ServicerContext) -> acquirer_pb2.AcquirerServiceCaptureResponse:
        authorization = await self._acquirer.capture(*check.capture(request))
        return acquirer_pb2.AcquirerServiceCaptureResponse(authorization=authorization)

    @_unavailable_on
    async def Refund(self, request: acquirer_pb2.AcquirerServiceRefundRequest,
                     context: grpc.aio.ServicerContext) -> acquirer_pb2.AcquirerServiceRefundResponse:
        authorization = await self._acquirer.refund(check.refund(request))
        return acquirer_pb2.AcquirerServiceRefundResponse(authorization=authorization)

    @_unavailable_on
    async def Void(self, request: acquirer_pb2.AcquirerServiceVoidRequest,
                   context: grpc.aio.ServicerContext) -> acquirer_pb2.AcquirerServiceVoidResponse:
        authorization = await self._acquirer.void(check.reference("reference", request.reference))
        return acquirer_pb2.AcquirerServiceVoidResponse(authorization=authorization)

    @_unavailable_on
    async def GetAuthorization(self, request: acquirer_pb2.GetAuthorizationRequest,
                               context: grpc.aio.ServicerContext) -> acquirer_pb2.GetAuthorizationResponse:
        authorization = await self._acquirer.get(check.reference("reference", request.reference))
        return acquirer_pb2.GetAuthorizationResponse(authorization=authorization)

    @_unavailable_on
    async def CloseBatch(self, request: acquirer_pb2.CloseBatchRequest,
                         context: grpc.aio.ServicerContext) -> acquirer_pb2.CloseBatchResponse:
        return await self._acquirer.close_batch()

    async def GetSettlementFile(self, request: acquirer_pb2.GetSettlementFileRequest,
                                context: grpc.aio.ServicerContext,
                                ) -> AsyncIterator[acquirer_pb2.GetSettlementFileResponse]:
        batch_id = check.batch_id(request.batch_id)
        try:
            lines = await self._acquirer.settlement_file(batch_id)
        except StoreUnavailable as error:
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(error))
        for line in lines:
            yield line.to_proto()


class AcquirerComponent:
    """The servicer over :class:`Acquirer` and its ledger (``DATA_DIR/<name>/ledger.sqlite``, settlement files in
    ``DATA_DIR/<name>/settlement/``), for topology name ``name``."""

    def __init__(self, name: str, context: RuntimeContext) -> None:
        settings = context.settings(name, AcquirerSettings)
        self.name = name
        metrics = AcquirerMetrics(name)
        store = AcquirerStore(name, context.data_dir(name), on_commit=metrics.write_seconds.observe)
        self.acquirer = Acquirer(name, settings, store)
        self.servicer = AcquirerServicer(self.acquirer)

    def register(self, server: grpc.aio.Server) -> None:
        acquirer_pb2_grpc.add_AcquirerServiceServicer_to_server(self.servicer, server)

    async def start(self) -> None:
        counts = await self.acquirer.store.counts()
        batch = await self.acquirer.store.open_batch()
        settings = self.acquirer.settings
        log.info("%s: ledger open (%s), open batch %s; issuer latency median %g ms (sigma %g), decline rate %g, "
                 "fees %d bps + %d minor", self.name, ", ".join(f"{k} {v}" for k, v in counts.items()),
                 batch.batch_id, settings.latency_median_ms, settings.latency_sigma, settings.decline_rate,
                 settings.fee_bps, settings.fee_fixed_minor)

    async def stop(self) -> None:
        await self.acquirer.close()


def definition(name: str) -> ServiceDefinition:
    """The :class:`ServiceDefinition` of the acquirer served under topology name ``name`` (one of
    :data:`ACQUIRERS`): its settings are ``settings.<name>``, its data ``DATA_DIR/<name>/``, its psp references
    ``<short name>_…`` and its batch ids ``<name>-000001``."""

    async def build(context: RuntimeContext) -> AcquirerComponent:
        return AcquirerComponent(name, context)

    return ServiceDefinition(
        name=name, grpc_services=(FULL_NAME,), dependencies=(), build=build, settings_model=AcquirerSettings,
        access=Access(internal={method: GATEWAY_CALLERS for method in METHODS}),
    )


DEFINITION_A = definition(PSP_A)
DEFINITION_B = definition(PSP_B)
