"""The payment gateway without gRPC: Authorize, Capture, Void, Refund, GetPayment, and the background resumption.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud detection,
PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |") and seed 000 line 522 ("Payment Service:
Idempotent APIs, retry with exponential backoff"). The invariant this module exists for: **no double charge for one
idempotency key** — one payment per key, at most one approved, unreversed authorization per payment across all
acquirers, captured <= authorised, refunds <= captured — also when the gateway dies between the charge and its
answer.

Authorize (every write below is fsynced before the next step):

1. the key (:mod:`.idempotency`) and the payment, PENDING, are written together; the payment id is ``pay_`` and 24
   characters of lowercase base32 of HMAC-SHA256(merchant_id, "authorize", idempotency_key) under a key derived from
   the mesh secret (:func:`gateway_id`), so a retry reaches the same payment naturally;
2. CardVaultService.DetokenizeCard (NOT_FOUND: the key and the payment are released), then FraudService.ScorePayment
   (BLOCK: DECLINED ``fraud_blocked``, no acquirer asked; the fraud service down: score 0 with ``fraud_fail_open``,
   else UNAVAILABLE);
3. attempts left SENT by a call that died are asked again with the same reference (the acquirer answers a repeated
   reference with its first answer), then routing (:mod:`.routing`): acquirers in cost order, skipping open breakers;
   for each: the attempt ``<payment_id>.<n>`` is written SENT, then Authorize (``acquirer_timeout_s``):
   APPROVED → AUTHORIZED; DECLINED → DECLINED (the issuer's code); refused (FAILED_PRECONDITION: e.g. a late
   authorization of a reference already voided) → FAILED, next acquirer; no answer (UNAVAILABLE, DEADLINE_EXCEEDED)
   → REVERSING, a background Void (:mod:`.reversal`), and with ``failover`` the next acquirer, without it UNAVAILABLE;
   no acquirer left (or less than :data:`MIN_ATTEMPT_BUDGET_S` of the caller's deadline) → UNAVAILABLE (nothing
   held: retry with the same key, which resumes the payment);
4. with ``capture``, the capture is recorded in the ledger, sent to the approving acquirer and confirmed (an acquirer
   that cannot be reached leaves the key IN_FLIGHT: the retry, or the background resumption, finishes the capture).

The approval and the final answer are one write (the payment, its attempt and the key DONE), so the answer a retry
gets is the one the first call gave. Capture, Void and Refund go to the acquirer holding the authorization, keyed the
same way (Refund ids ``re_…`` likewise from (merchant_id, "refund", key)); every capture and refund is a ledger
entry, written before the acquirer is asked and confirmed with its answer, that settlement reconciles
(:mod:`.settlement`). One call at a time per payment (an asyncio lock per payment id), inside the key's claim.

Background (:meth:`PaymentGateway.sweep`, every ``resume_interval_s``): keys IN_FLIGHT for ``resume_grace_s`` that
no call of this process holds are resolved: an Authorize's SENT attempts are reversed (the payment stays PENDING and
its key retryable: the merchant was told nothing, or UNAVAILABLE, "nothing held"), a capture after an approval is
finished, Capture / Void / Refund calls are finished (they may have reached the acquirer). Keys older than 24 h are
pruned.

Errors are the runtime's domain errors (services/runtime/errors.py) and :class:`.clients.Unavailable` (UNAVAILABLE),
as protos/casemesh/payments/v1/gateway.proto lists them per RPC.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace

from casemesh.payments.v1 import (
    acquirer_pb2,
    fraud_pb2,
    gateway_pb2,
    payments_pb2,
    vault_pb2,
)

from ...runtime.deadlines import remaining_s
from ...runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound
from ...runtime.keyed_locks import KeyedLocks
from ..contract import PAYMENT_ID_PREFIX, REFUND_ID_PREFIX
from . import metrics, validation
from .clients import (
    Acquirer,
    Fraud,
    NotSent,
    OutcomeUnknown,
    Refused,
    Unavailable,
    Vault,
    money,
)
from .idempotency import (
    NEW,
    REPLAY,
    RESUME,
    Claim,
    IdempotencyKeys,
    Scope,
    request_bytes,
    request_hash,
)
from .reversal import Reverser
from .routing import Router
from .settings import GatewaySettings
from .store import (
    APPROVED,
    ATTEMPT_DECLINED,
    AUTHORIZED,
    CAPTURE,
    CAPTURED,
    DECLINED,
    FAILED,
    PENDING,
    REFUND,
    REFUNDED,
    REVERSING,
    SENT,
    VOIDED,
    AttemptRecord,
    GatewayStore,
    KeyRecord,
    LedgerEntry,
    PaymentRecord,
    Statement,
    confirm_ledger_entry,
    delete_key,
    delete_ledger_intent,
    delete_payment,
    insert_attempt,
    insert_key,
    insert_ledger_entry,
    insert_payment,
    key_done,
    set_attempt_state,
    update_payment,
)

log = logging.getLogger("casemesh.payments.gateway")

#: Least time left of the caller's deadline to start an authorization attempt, in s: with less, the attempt would
#: end DEADLINE_EXCEEDED and leave one more reversal behind; the call answers UNAVAILABLE instead.
MIN_ATTEMPT_BUDGET_S = 0.02
#: The mesh-secret purpose of the key that derives payment and refund ids.
ID_KEY_PURPOSE = "payments-gateway-ids"
FRAUD_BLOCKED = "fraud_blocked"


def gateway_id(key: bytes, prefix: str, merchant_id: str, operation: str, idempotency_key: str,
               generation: int = 0) -> str:
    """``prefix`` and 24 characters of lowercase base32 (a-z, 2-7) of HMAC-SHA256(key, merchant_id, operation,
    idempotency_key): 120 bits. The same key always gets the same id; ``generation`` > 0 (a key reused after its
    24 hours, whose first payment still exists) gets another."""
    message = f"{merchant_id}\x00{operation}\x00{idempotency_key}" + (f"\x00{generation}" if generation else "")
    digest = hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()
    return prefix + base64.b32encode(digest).decode("ascii").lower()[:24]


def status_name(status: int) -> str:
    """``AUTHORIZED`` for PAYMENT_STATUS_AUTHORIZED."""
    return payments_pb2.PaymentStatus.Name(status).removeprefix("PAYMENT_STATUS_")


def _answer(response) -> bytes:
    return response.SerializeToString(deterministic=True)


class PaymentGateway:
    """The gateway's domain (see the module docstring): ``store`` its records, ``vault`` / ``fraud`` / ``acquirers``
    (topology name → client) the services it calls, ``id_key`` the key of :func:`gateway_id`. ``clock()`` is seconds
    since the Unix epoch; ``router`` and ``reverser`` are built from ``settings`` unless given (tests)."""

    def __init__(self, settings: GatewaySettings, store: GatewayStore, vault: Vault, fraud: Fraud,
                 acquirers: Mapping[str, Acquirer], *, id_key: bytes, clock: Callable[[], float] = time.time,
                 router: Router | None = None, reverser: Reverser | None = None) -> None:
        missing = [name for name in settings.acquirers if name not in acquirers]
        if missing:
            raise ValueError(f"no client for acquirers {', '.join(missing)}")
        self.settings = settings
        self.store = store
        self.acquirers = acquirers
        self.keys = IdempotencyKeys(store, clock)
        self.router = router or Router.from_settings(settings)
        self.reverser = reverser or Reverser(store, acquirers, settings)
        self._vault = vault
        self._fraud = fraud
        self._id_key = id_key
        self._clock = clock
        self._locks = KeyedLocks()

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    async def _write(self, *statements: Statement) -> None:
        await self.store.write(statements)

    # -- ids --------------------------------------------------------------------------------------------------------

    async def _free_id(self, prefix: str, scope: Scope, taken: Callable[[str], Awaitable[bool]]) -> str:
        merchant_id, operation, key = scope
        for generation in itertools.count():
            candidate = gateway_id(self._id_key, prefix, merchant_id, operation, key, generation)
            if not await taken(candidate):
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ------------------------------------------------------------------------------------------------------

    async def _owned(self, merchant_id: str, payment_id: str) -> PaymentRecord:
        payment = await self.store.payment(payment_id)
        if payment is None or payment.merchant_id != merchant_id:
            raise NotFound(f"payment_id: no payment {payment_id}")
        return payment

    async def get(self, merchant_id: str, payment_id: str) -> payments_pb2.Payment:
        """GetPayment: the payment as stored. :class:`NotFound` (also for another merchant's)."""
        return (await self._owned(merchant_id, payment_id)).to_proto()

    # -- Authorize --------------------------------------------------------------------------------------------------

    async def authorize(self, request: gateway_pb2.AuthorizeRequest) -> gateway_pb2.AuthorizeResponse:
        """Authorize (see the module docstring). INVALID_ARGUMENT (validation), NOT_FOUND (card token),
        FAILED_PRECONDITION / ABORTED (the key), :class:`Unavailable` (no acquirer, a dependency or the store)."""
        v = validation.authorize(request)
        scope = (v.merchant_id, "authorize", v.idempotency_key)
        try:
            async with self.keys.begin(scope, request_hash(request)) as claim:
                if claim.outcome is REPLAY:
                    metrics.REPLAYS.labels("authorize").inc()
                    return gateway_pb2.AuthorizeResponse.FromString(claim.record.response)
                if claim.outcome is NEW:
                    payment_id = await self._free_id(PAYMENT_ID_PREFIX, scope, self.store.payment_exists)
                    now = self._now_ms()
                    await self._write(insert_key(self.keys.record(claim, request_bytes(request), payment_id)),
                                      insert_payment(
                        PaymentRecord(payment_id, v.merchant_id, v.currency_code, v.amount_minor, 0, 0, PENDING, 0,
                                      "", 0, "", 0, 0, "", "", 0, v.description, v.customer_id, v.card_token,
                                      v.capture, now, now)))
                else:
                    payment_id = claim.record.payment_id
                async with self._locks.hold(payment_id):
                    return await self._authorize(scope, payment_id)
        except Unavailable:
            metrics.payment("authorize", "unavailable")
            raise

    async def _payment(self, payment_id: str) -> PaymentRecord:
        payment = await self.store.payment(payment_id)
        if payment is None:
            raise Unavailable(f"payment {payment_id} of an idempotency key is missing from the store")
        return payment

    async def _authorize(self, scope: Scope, payment_id: str) -> gateway_pb2.AuthorizeResponse:
        payment = await self._payment(payment_id)
        if payment.status != PENDING:
            return await self._finish_authorized(scope, payment)
        card = await self._detokenize(scope, payment)
        if payment.attempts:  # scored before the first attempt: a later score must not decline it past an approval
            score, blocked = payment.fraud_score, False
        else:
            score, blocked = await self._score(payment, card)
        payment = replace(payment, card_brand=card.card.brand, card_last4=card.card.last4,
                          card_exp_month=card.card.exp_month, card_exp_year=card.card.exp_year,
                          card_fingerprint=card.card.fingerprint, fraud_score=score)
        if blocked:
            now = self._now_ms()
            declined = replace(payment, status=DECLINED, decline_reason=payments_pb2.DECLINE_REASON_FRAUD,
                               decline_code=FRAUD_BLOCKED, updated_at_unix_ms=now)
            response = gateway_pb2.AuthorizeResponse(payment=declined.to_proto())
            await self._write(update_payment(declined), key_done(scope, _answer(response), now))
            metrics.payment("authorize", "declined_fraud")
            return response
        failed_at: str | None = None
        for attempt in payment.attempts:
            if attempt.state == SENT:  # a call that died sent it: ask again, same reference
                response, payment = await self._attempt(scope, payment, attempt, card, new=False)
                if response is not None:
                    return response
                failed_at = attempt.acquirer
        for acquirer in self.router.route():
            left_s = remaining_s()
            if left_s is not None and left_s < MIN_ATTEMPT_BUDGET_S:
                break  # it would end DEADLINE_EXCEEDED and leave one more reversal behind
            if failed_at is not None:
                metrics.FAILOVERS.labels(failed_at).inc()
            n = len(payment.attempts) + 1
            now = self._now_ms()
            attempt = AttemptRecord(f"{payment_id}.{n}", payment_id, n, acquirer, SENT, now, now)
            response, payment = await self._attempt(scope, payment, attempt, card, new=True)
            if response is not None:
                return response
            failed_at = acquirer
        tried = ", ".join(f"{a.acquirer} {payments_pb2.AttemptState.Name(a.state)}" for a in payment.attempts)
        raise Unavailable(f"no acquirer could take payment {payment_id} ({tried or 'every breaker open'}); nothing "
                          "is held: retry with the same idempotency key")

    async def _detokenize(self, scope: Scope, payment: PaymentRecord) -> vault_pb2.DetokenizeCardResponse:
        try:
            return await self._vault.detokenize(payment.merchant_id, payment.card_token)
        except (NotFound, InvalidArgument):
            if not payment.attempts:  # refused before anything was asked: release the key and the payment
                await self._write(delete_key(scope), delete_payment(payment.payment_id))
            raise

    async def _score(self, payment: PaymentRecord, card: vault_pb2.DetokenizeCardResponse) -> tuple[int, bool]:
        """(score 0-100, blocked). The fraud service unable to answer: (0, False) with ``fraud_fail_open``, else
        :class:`Unavailable`."""
        try:
            scored = await self._fraud.score(fraud_pb2.ScorePaymentRequest(
                payment_id=payment.payment_id, merchant_id=payment.merchant_id,
                card_fingerprint=card.card.fingerprint, customer_id=payment.customer_id,
                amount=money(payment.currency_code, payment.amount_minor)))
        except Exception as error:
            if not self.settings.fraud_fail_open:
                raise Unavailable(f"the fraud service cannot score payment {payment.payment_id} ({error}); nothing "
                                  "is held: retry with the same idempotency key") from None
            metrics.FRAUD_FAIL_OPEN.inc()
            log.debug("fraud scoring of %s failed (%s): failing open", payment.payment_id, error)
            return 0, False
        return max(0, min(100, scored.score)), scored.decision == fraud_pb2.FRAUD_DECISION_BLOCK

    async def _set_attempt(self, payment: PaymentRecord, attempt: AttemptRecord, state: int) -> PaymentRecord:
        now = self._now_ms()
        await self._write(set_attempt_state(attempt.reference, state, now))
        return replace(payment, attempts=tuple(replace(a, state=state, updated_at_unix_ms=now)
                                               if a.reference == attempt.reference else a for a in payment.attempts))

    async def _attempt(self, scope: Scope, payment: PaymentRecord, attempt: AttemptRecord,
                       card: vault_pb2.DetokenizeCardResponse, *, new: bool,
                       ) -> tuple[gateway_pb2.AuthorizeResponse | None, PaymentRecord]:
        """One authorization attempt: (the final answer, or ``None`` to go on routing; the payment as now stored)."""
        acquirer = attempt.acquirer
        if new:
            payment = replace(payment, attempts=(*payment.attempts, attempt), updated_at_unix_ms=self._now_ms())
            await self._write(update_payment(payment), insert_attempt(attempt))  # SENT before the call
        client = self.acquirers.get(acquirer)
        if client is None:
            log.error("attempt %s is at %s, which is no longer a configured acquirer: reversing it",
                      attempt.reference, acquirer)
            return None, await self._set_attempt(payment, attempt, REVERSING)
        try:
            authorization = await client.authorize(acquirer_pb2.AcquirerServiceAuthorizeRequest(
                reference=attempt.reference, merchant_id=payment.merchant_id, card_number=card.card_number,
                exp_month=card.card.exp_month, exp_year=card.card.exp_year,
                amount=money(payment.currency_code, payment.amount_minor)))
        except Refused as error:
            self.router.record(acquirer, True)
            metrics.attempt(acquirer, "refused")
            log.info("%s refused attempt %s: %s", acquirer, attempt.reference, error)
            return None, await self._set_attempt(payment, attempt, FAILED)
        except NotSent:
            self.router.record(acquirer, False)
            metrics.attempt(acquirer, "not_sent")
            if new:  # this attempt never left the process: nothing held anywhere
                return None, await self._set_attempt(payment, attempt, FAILED)
            # A resumed attempt: the call that first sent it (a process since dead) may have been approved there.
            payment = await self._set_attempt(payment, attempt, REVERSING)
            self.reverser.reverse(acquirer, attempt.reference)
            return None, payment
        except Exception as error:
            self.router.record(acquirer, False)
            metrics.attempt(acquirer, "unknown")
            if not isinstance(error, OutcomeUnknown):
                log.warning("attempt %s at %s failed unexpectedly: %r", attempt.reference, acquirer, error)
            payment = await self._set_attempt(payment, attempt, REVERSING)
            self.reverser.reverse(acquirer, attempt.reference)
            return None, payment
        self.router.record(acquirer, True)
        if authorization.state == acquirer_pb2.AUTHORIZATION_STATE_APPROVED:
            metrics.attempt(acquirer, "approved")
            return await self._approved(scope, payment, attempt)
        if authorization.state == acquirer_pb2.AUTHORIZATION_STATE_DECLINED:
            metrics.attempt(acquirer, "declined")
            now = self._now_ms()
            declined = replace(payment, status=DECLINED, decline_reason=payments_pb2.DECLINE_REASON_ISSUER,
                               decline_code=authorization.decline_code or "declined", updated_at_unix_ms=now,
                               attempts=tuple(replace(a, state=ATTEMPT_DECLINED, updated_at_unix_ms=now)
                                              if a.reference == attempt.reference else a for a in payment.attempts))
            response = gateway_pb2.AuthorizeResponse(payment=declined.to_proto())
            await self._write(set_attempt_state(attempt.reference, ATTEMPT_DECLINED, now), update_payment(declined),
                              key_done(scope, _answer(response), now))
            metrics.payment("authorize", "declined_issuer")
            return response, declined
        metrics.attempt(acquirer, "refused")
        log.warning("%s answered attempt %s with %s: treated as not processed", acquirer, attempt.reference,
                    acquirer_pb2.AuthorizationState.Name(authorization.state))
        return None, await self._set_attempt(payment, attempt, FAILED)

    async def _approved(self, scope: Scope, payment: PaymentRecord, attempt: AttemptRecord,
                        ) -> tuple[gateway_pb2.AuthorizeResponse, PaymentRecord]:
        now = self._now_ms()
        authorized = replace(payment, status=AUTHORIZED, acquirer=attempt.acquirer, updated_at_unix_ms=now,
                             attempts=tuple(replace(a, state=APPROVED, updated_at_unix_ms=now)
                                            if a.reference == attempt.reference else a for a in payment.attempts))
        if not payment.capture:
            response = gateway_pb2.AuthorizeResponse(payment=authorized.to_proto())
            await self._write(set_attempt_state(attempt.reference, APPROVED, now), update_payment(authorized),
                              key_done(scope, _answer(response), now))
            metrics.payment("authorize", "approved")
            return response, authorized
        await self._write(set_attempt_state(attempt.reference, APPROVED, now), update_payment(authorized),
                          insert_ledger_entry(self._entry(CAPTURE, authorized, authorized.amount_minor)))
        return await self._authorize_capture(scope, authorized), authorized

    async def _finish_authorized(self, scope: Scope, payment: PaymentRecord) -> gateway_pb2.AuthorizeResponse:
        """An Authorize key resumed whose payment is past PENDING: finish its capture, or record its answer."""
        if payment.status == AUTHORIZED and payment.capture:
            await self._write(insert_ledger_entry(self._entry(CAPTURE, payment, payment.amount_minor)))
            return await self._authorize_capture(scope, payment)
        response = gateway_pb2.AuthorizeResponse(payment=payment.to_proto())
        await self._write(key_done(scope, _answer(response), self._now_ms()))
        return response

    async def _authorize_capture(self, scope: Scope, payment: PaymentRecord) -> gateway_pb2.AuthorizeResponse:
        reference = payment.approved.reference
        try:
            captured = await self._capture_at(payment, payment.amount_minor)
        except Refused as error:
            # The authorization stands; the merchant may Capture or Void it. Answered AUTHORIZED.
            log.error("%s refused the capture of %s after approving it: %s", payment.acquirer, reference, error)
            response = gateway_pb2.AuthorizeResponse(payment=payment.to_proto())
            await self._write(delete_ledger_intent(CAPTURE, reference, ""),
                              key_done(scope, _answer(response), self._now_ms()))
            metrics.payment("authorize", "approved")
            return response
        response = gateway_pb2.AuthorizeResponse(payment=captured.to_proto())
        await self._write(update_payment(captured), confirm_ledger_entry(CAPTURE, reference, ""),
                          key_done(scope, _answer(response), captured.updated_at_unix_ms))
        metrics.payment("authorize", "approved")
        return response

    # -- money movements ----------------------------------------------------------------------------------------------

    def _entry(self, kind: str, payment: PaymentRecord, amount_minor: int, refund_reference: str = "") -> LedgerEntry:
        return LedgerEntry(kind, payment.acquirer, payment.approved.reference, refund_reference, payment.payment_id,
                           payment.merchant_id, payment.currency_code, amount_minor, False, self._now_ms(), "")

    def _client(self, payment: PaymentRecord) -> Acquirer:
        client = self.acquirers.get(payment.acquirer)
        if client is None:
            raise Unavailable(f"payment {payment.payment_id} is held at {payment.acquirer}, which is not a "
                              "configured acquirer")
        return client

    @staticmethod
    def _unreachable(payment: PaymentRecord, what: str, error: Exception) -> Unavailable:
        return Unavailable(f"{payment.acquirer} could not {what} payment {payment.payment_id} ({error}); retry with "
                           "the same idempotency key")

    async def _capture_at(self, payment: PaymentRecord, amount_minor: int) -> PaymentRecord:
        """Capture at the acquirer; the payment CAPTURED (not written). :class:`Refused` passed on; no answer:
        :class:`Unavailable`."""
        try:
            await self._client(payment).capture(payment.approved.reference, amount_minor)
        except (NotSent, OutcomeUnknown) as error:
            raise self._unreachable(payment, "capture", error) from None
        return replace(payment, status=CAPTURED, captured_minor=amount_minor, updated_at_unix_ms=self._now_ms())

    async def _claimed(self, operation: str, request, response_type, merchant_id: str, payment_id: str,
                       work: Callable[[Claim], Awaitable]):
        """Run ``work(claim)`` for a Capture / Void / Refund call under its key's claim and the payment's lock; a
        replay answers the stored response (a ``response_type``)."""
        scope = (merchant_id, operation, request.idempotency_key)
        try:
            async with self.keys.begin(scope, request_hash(request)) as claim:
                if claim.outcome is REPLAY:
                    metrics.REPLAYS.labels(operation).inc()
                    return response_type.FromString(claim.record.response)
                if claim.outcome is NEW:
                    refund_id = (await self._free_id(REFUND_ID_PREFIX, scope, self.store.refund_exists)
                                 if operation == "refund" else "")
                    record = self.keys.record(claim, request_bytes(request), payment_id, refund_id)
                    await self._write(insert_key(record))
                    claim = replace(claim, record=record)
                async with self._locks.hold(payment_id):
                    response = await work(claim)
        except Unavailable:
            metrics.payment(operation, "unavailable")
            raise
        metrics.payment(operation, "ok")
        return response

    async def _refused_before(self, scope: Scope, error: Exception, *statements: Statement) -> None:
        """Release the key (and ``statements``) of a call refused before or by the acquirer, then raise ``error``."""
        await self._write(delete_key(scope), *statements)
        raise error

    async def capture(self, request: gateway_pb2.CaptureRequest) -> gateway_pb2.CaptureResponse:
        """Capture ``amount_minor`` (0: all) of an AUTHORIZED payment. INVALID_ARGUMENT ``amount_minor`` over the
        authorised amount; NOT_FOUND; FAILED_PRECONDITION (not AUTHORIZED, the key, the acquirer refused); ABORTED
        (the key in flight, or another capture of the payment in progress); :class:`Unavailable`."""
        v = validation.capture(request)
        return await self._claimed("capture", request, gateway_pb2.CaptureResponse, v.merchant_id, v.payment_id,
                                   lambda claim: self._capture(claim, v))

    async def _capture(self, claim: Claim, v: validation.Capture) -> gateway_pb2.CaptureResponse:
        scope = claim.scope
        try:
            payment = await self._owned(v.merchant_id, v.payment_id)
            if payment.status != AUTHORIZED:
                raise FailedPrecondition(f"payment_id: payment {v.payment_id} is {status_name(payment.status)}, not "
                                         "AUTHORIZED")
            reference = payment.approved.reference
            entry = await self.store.ledger_entry(CAPTURE, reference)
            if entry is not None and claim.outcome is NEW:
                raise Aborted(f"payment_id: a capture of payment {v.payment_id} is in progress; retry")
            if entry is None:
                amount = v.amount_minor or payment.amount_minor
                if amount > payment.amount_minor:
                    raise InvalidArgument("amount_minor", f"{amount} is over the authorised amount "
                                                          f"({payment.amount_minor})")
                entry = self._entry(CAPTURE, payment, amount)
                await self._write(insert_ledger_entry(entry))
        except (NotFound, FailedPrecondition, InvalidArgument, Aborted) as error:
            await self._refused_before(scope, error)
        try:
            captured = await self._capture_at(payment, entry.amount_minor)
        except Refused as error:
            await self._refused_before(scope, FailedPrecondition(
                f"payment_id: {payment.acquirer} refused the capture ({error.details})"),
                delete_ledger_intent(CAPTURE, reference, ""))
        response = gateway_pb2.CaptureResponse(payment=captured.to_proto())
        await self._write(update_payment(captured), confirm_ledger_entry(CAPTURE, reference, ""),
                          key_done(scope, _answer(response), captured.updated_at_unix_ms))
        return response

    async def void(self, request: gateway_pb2.VoidRequest) -> gateway_pb2.VoidResponse:
        """Void an AUTHORIZED payment (a VOIDED one is returned). NOT_FOUND; FAILED_PRECONDITION (captured, not
        authorised, the key, the acquirer refused); ABORTED; :class:`Unavailable`."""
        v = validation.void(request)
        return await self._claimed("void", request, gateway_pb2.VoidResponse, v.merchant_id, v.payment_id,
                                   lambda claim: self._void(claim, v))

    async def _void(self, claim: Claim, v: validation.Void) -> gateway_pb2.VoidResponse:
        scope = claim.scope
        try:
            payment = await self._owned(v.merchant_id, v.payment_id)
            if payment.status in (CAPTURED, REFUNDED):
                raise FailedPrecondition(f"payment_id: payment {v.payment_id} was captured; refund it instead")
            if payment.status not in (AUTHORIZED, VOIDED):
                raise FailedPrecondition(f"payment_id: payment {v.payment_id} is {status_name(payment.status)}, not "
                                         "AUTHORIZED")
        except (NotFound, FailedPrecondition) as error:
            await self._refused_before(scope, error)
        if payment.status == VOIDED:
            response = gateway_pb2.VoidResponse(payment=payment.to_proto())
            await self._write(key_done(scope, _answer(response), self._now_ms()))
            return response
        reference = payment.approved.reference
        try:
            await self._client(payment).void(reference)
        except Refused as error:
            await self._refused_before(scope, FailedPrecondition(
                f"payment_id: {payment.acquirer} refused the void ({error.details})"))
        except (NotSent, OutcomeUnknown) as error:
            raise self._unreachable(payment, "void", error) from None
        voided = replace(payment, status=VOIDED, acquirer="", updated_at_unix_ms=self._now_ms())
        response = gateway_pb2.VoidResponse(payment=voided.to_proto())
        await self._write(update_payment(voided), delete_ledger_intent(CAPTURE, reference, ""),
                          key_done(scope, _answer(response), voided.updated_at_unix_ms))
        return response

    async def refund(self, request: gateway_pb2.RefundRequest) -> gateway_pb2.RefundResponse:
        """Refund ``amount_minor`` (0: all that is left) of a CAPTURED payment. INVALID_ARGUMENT ``amount_minor``
        over what is left; NOT_FOUND; FAILED_PRECONDITION (not CAPTURED, the key, the acquirer refused); ABORTED
        (the key in flight, or other refunds in progress take all that is left); :class:`Unavailable`."""
        v = validation.refund(request)
        return await self._claimed("refund", request, gateway_pb2.RefundResponse, v.merchant_id, v.payment_id,
                                   lambda claim: self._refund(claim, v))

    async def _refund(self, claim: Claim, v: validation.Refund) -> gateway_pb2.RefundResponse:
        scope = claim.scope
        refund_id = claim.record.refund_id
        try:
            payment = await self._owned(v.merchant_id, v.payment_id)
            if payment.status != CAPTURED:
                raise FailedPrecondition(f"payment_id: payment {v.payment_id} is {status_name(payment.status)}, not "
                                         "CAPTURED")
            reference = payment.approved.reference
            entry = await self.store.ledger_entry(REFUND, reference, refund_id)
            if entry is None:
                others = sum(e.amount_minor for e in await self.store.ledger_entries(payment.payment_id)
                             if e.kind == REFUND)
                left = payment.captured_minor - others
                if left <= 0:
                    raise Aborted(f"payment_id: refunds of payment {v.payment_id} in progress take all that is left; "
                                  "retry")
                amount = v.amount_minor or left
                if amount > left:
                    raise InvalidArgument("amount_minor", f"{amount} is over what is left to refund ({left})")
                entry = self._entry(REFUND, payment, amount, refund_id)
                await self._write(insert_ledger_entry(entry))
        except (NotFound, FailedPrecondition, InvalidArgument, Aborted) as error:
            await self._refused_before(scope, error)
        try:
            await self._client(payment).refund(reference, refund_id, entry.amount_minor)
        except Refused as error:
            await self._refused_before(scope, FailedPrecondition(
                f"payment_id: {payment.acquirer} refused the refund ({error.details})"),
                delete_ledger_intent(REFUND, reference, refund_id))
        except (NotSent, OutcomeUnknown) as error:
            raise self._unreachable(payment, "refund", error) from None
        refunded_minor = payment.refunded_minor + entry.amount_minor
        refunded = replace(payment, refunded_minor=refunded_minor, updated_at_unix_ms=self._now_ms(),
                           status=REFUNDED if refunded_minor == payment.captured_minor else CAPTURED)
        response = gateway_pb2.RefundResponse(refund_id=refund_id, amount=money(payment.currency_code,
                                                                                entry.amount_minor),
                                              payment=refunded.to_proto())
        await self._write(update_payment(refunded), confirm_ledger_entry(REFUND, reference, refund_id),
                          key_done(scope, _answer(response), refunded.updated_at_unix_ms))
        return response

    # -- the background ---------------------------------------------------------------------------------------------

    async def start(self) -> int:
        """Set the gauges and resume every reversal left REVERSING in the store; how many."""
        metrics.started(tuple(self.router.acquirers))
        return await self.reverser.resume()

    async def sweep(self) -> int:
        """Resolve the keys IN_FLIGHT for ``resume_grace_s`` that no call of this process holds (see the module
        docstring); how many were looked at. A failure of one is logged and counted; the others go on."""
        before_ms = self._now_ms() - int(self.settings.resume_grace_s * 1000)
        records = await self.store.stale_keys(before_ms)
        for record in records:
            if self.keys.held(record.scope):
                continue
            try:
                async with self.keys.begin(record.scope, record.request_hash) as claim:
                    if claim.outcome is not RESUME:
                        continue
                    async with self._locks.hold(record.payment_id):
                        outcome = await self._resume(claim)
            except Unavailable as error:
                outcome = "unavailable"
                log.info("resuming %s key of payment %s: %s", record.operation, record.payment_id, error)
            except (NotFound, FailedPrecondition, InvalidArgument, Aborted) as error:
                outcome = "failed"
                log.info("resuming %s key of payment %s: refused (%s)", record.operation, record.payment_id, error)
            except Exception:
                outcome = "failed"
                log.exception("resuming %s key of payment %s failed", record.operation, record.payment_id)
            if outcome is not None:
                metrics.RESUMED.labels(record.operation, outcome).inc()
        return len(records)

    async def _resume(self, claim: Claim) -> str | None:
        record: KeyRecord = claim.record
        if record.operation == "authorize":
            payment = await self._payment(record.payment_id)
            if payment.status != PENDING:
                await self._finish_authorized(claim.scope, payment)
                return "finished"
            sent = [a for a in payment.attempts if a.state == SENT]
            if not sent:
                return None
            now = self._now_ms()
            await self._write(*(set_attempt_state(a.reference, REVERSING, now) for a in sent))
            for attempt in sent:
                self.reverser.reverse(attempt.acquirer, attempt.reference)
            return "reversed"
        if record.operation == "capture":
            await self._capture(claim, validation.capture(gateway_pb2.CaptureRequest.FromString(record.request)))
        elif record.operation == "void":
            await self._void(claim, validation.void(gateway_pb2.VoidRequest.FromString(record.request)))
        else:
            await self._refund(claim, validation.refund(gateway_pb2.RefundRequest.FromString(record.request)))
        return "finished"

    async def prune(self) -> int:
        """Delete idempotency keys older than their 24 hours; how many."""
        return await self.store.prune_keys(self._now_ms() - int(self.keys.ttl_s * 1000))

    async def run_housekeeping(self) -> None:
        """:meth:`sweep` every ``resume_interval_s`` and :meth:`prune` every ``prune_interval_s``, for ever (a failure
        is logged; the loop goes on)."""
        last_prune = float("-inf")
        while True:
            try:
                await self.sweep()
                if time.monotonic() - last_prune >= self.settings.prune_interval_s:
                    last_prune = time.monotonic()
                    pruned = await self.prune()
                    if pruned:
                        log.info("pruned %d idempotency keys older than 24 h", pruned)
            except Exception:
                log.exception("payments-gateway housekeeping failed")
            await asyncio.sleep(self.settings.resume_interval_s)

    async def close(self) -> None:
        """Stop the reversals (they resume at the next start) and close the store (queued writes finish first)."""
        await self.reverser.close()
        await self.store.close()
