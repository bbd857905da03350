"""Settings of ``payments-gateway`` (topology ``settings.payments-gateway``); unknown keys are refused.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "Payment Gateway | PSP routing, fraud detection, PCI DSS
(HSM tokenization), settlement | 10K TPS, Stripe/Adyen") and seed 000 line 522 ("Payment Service: Idempotent APIs,
retry with exponential backoff"). Times are seconds.

Routing (the A/B switch is ``failover``: ``casemesh run PROFILE --set payments-gateway.failover=false``):

- ``acquirers`` ["payments-psp-a", "payments-psp-b"]: the acquirers' topology names in routing order, cheapest first
  (the cost order of their fees); every authorization tries them in this order;
- ``failover`` true: an acquirer that fails (its outcome unknown, or refused) sends the payment on to the next one
  whose circuit breaker admits it. False: only the first acquirer of the list is ever tried, breaker or not (the A/B's
  baseline: a failing acquirer fails the payment UNAVAILABLE);
- ``acquirer_timeout_s`` 1.0: deadline of each call to an acquirer (Authorize, Capture, Void, Refund); an Authorize that
  reaches it has an unknown outcome: its attempt is reversed (Void) in the background;
- ``vault_timeout_s`` 0.5 (DetokenizeCard) and ``fraud_timeout_s`` 0.25 (ScorePayment: the fraud rules answer from
  memory in well under a millisecond; a slow answer is a sick service);
- ``fraud_fail_open`` true: when the fraud service cannot answer, the payment goes on with score 0 (counted in
  ``casemesh_payments_gateway_fraud_fail_open_total``); false: the payment fails UNAVAILABLE (nothing held).

The circuit breaker of each acquirer (:class:`.routing.AcquirerBreaker`; failover on only):

- ``breaker_consecutive_failures`` 5 authorizations in a row with an unknown outcome or failed fast by the mesh
  channel's own breaker, or a failure ratio of at least
  ``breaker_failure_ratio`` 0.5 over the last ``breaker_window_s`` 10 s once that window holds at least
  ``breaker_min_calls`` 20 authorizations, open it;
- ``breaker_cooldown_s`` 5: how long it stays open (routing skips the acquirer); then ``breaker_half_open_probes`` 1
  authorization at a time is let through as a probe: an answer closes it, a failure opens it again.

Reversals (:mod:`.reversal`: Void of every attempt whose outcome is unknown, until the acquirer confirms):

- ``reversal_initial_backoff_s`` 0.2, doubled after each failed Void up to ``reversal_max_backoff_s`` 10, with jitter
  (each wait drawn between half and all of it); ``reversal_timeout_s`` 1.0 per Void call.

Resumption and housekeeping:

- ``resume_grace_s`` 30: an idempotency key still IN_FLIGHT that long after it was first used, and held by no call of
  this process (its call died with the process, or its caller gave up), is resolved in the background: an
  Authorize's attempts left SENT are reversed (nothing held; the merchant's retry routes again), a capture after an
  approval and Capture / Refund / Void calls that may have reached the acquirer are finished;
- ``resume_interval_s`` 10: how often to look for such keys;
- ``prune_interval_s`` 3,600: how often keys older than ``contract.IDEMPOTENCY_KEY_TTL_S`` (24 h) are deleted.

Settlement: ``settlement_timeout_s`` 10: deadline of CloseBatch and of the whole GetSettlementFile stream of one batch.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: The acquirers' topology names, cheapest first (their fees' order): the default routing order.
DEFAULT_ACQUIRERS = ("payments-psp-a", "payments-psp-b")


class GatewaySettings(BaseModel):
    """payments-gateway's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    acquirers: tuple[str, ...] = Field(default=DEFAULT_ACQUIRERS, min_length=1, max_length=16, description=(
        "Acquirers' topology names in routing order (cheapest first)."))
    failover: bool = Field(default=True, description=(
        "True: a failed acquirer sends the payment on to the next; false: only the first acquirer is tried (A/B)."))
    acquirer_timeout_s: float = Field(default=1.0, gt=0, le=60, description="Deadline of each acquirer call, in s.")
    vault_timeout_s: float = Field(default=0.5, gt=0, le=60, description="Deadline of DetokenizeCard, in s.")
    fraud_timeout_s: float = Field(default=0.25, gt=0, le=60, description="Deadline of ScorePayment, in s.")
    fraud_fail_open: bool = Field(default=True, description=(
        "True: a fraud service that cannot answer lets the payment through with score 0 (counted)."))

    breaker_consecutive_failures: int = Field(default=5, ge=1, le=10_000, description=(
        "Authorizations in a row with an unknown outcome (or failed fast by the channel's breaker) that open an "
        "acquirer's breaker."))
    breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1, description=(
        "Failure ratio over breaker_window_s that opens the breaker (with breaker_min_calls calls at least)."))
    breaker_window_s: float = Field(default=10.0, gt=0, le=3_600, description="Window of the failure ratio, in s.")
    breaker_min_calls: int = Field(default=20, ge=1, le=1_000_000, description=(
        "Fewest authorizations in the window before the ratio may open the breaker."))
    breaker_cooldown_s: float = Field(default=5.0, gt=0, le=3_600, description=(
        "How long an open breaker stays open before it lets a probe through, in s."))
    breaker_half_open_probes: int = Field(default=1, ge=1, le=1_000, description=(
        "Authorizations let through at a time while half-open."))

    reversal_initial_backoff_s: float = Field(default=0.2, gt=0, le=600, description=(
        "First wait before a failed Void of an attempt is sent again, in s (doubled after each failure)."))
    reversal_max_backoff_s: float = Field(default=10.0, gt=0, le=3_600, description=(
        "Longest wait between two Voids of one attempt, in s."))
    reversal_timeout_s: float = Field(default=1.0, gt=0, le=60, description="Deadline of each reversal Void, in s.")

    resume_grace_s: float = Field(default=30.0, ge=0, le=86_400, description=(
        "Age of an IN_FLIGHT key held by no call after which it is resolved in the background, in s."))
    resume_interval_s: float = Field(default=10.0, gt=0, le=86_400, description=(
        "Seconds between two looks for such keys."))
    prune_interval_s: float = Field(default=3_600.0, gt=0, le=86_400, description=(
        "Seconds between two prunings of idempotency keys older than 24 h."))

    settlement_timeout_s: float = Field(default=10.0, gt=0, le=600, description=(
        "Deadline of CloseBatch and of one GetSettlementFile stream, in s."))

    @model_validator(mode="after")
    def _check(self) -> GatewaySettings:
        if len(set(self.acquirers)) != len(self.acquirers):
            raise ValueError("acquirers: each acquirer at most once")
        if any(not name for name in self.acquirers):
            raise ValueError("acquirers: a name is empty")
        if self.reversal_max_backoff_s < self.reversal_initial_backoff_s:
            raise ValueError("reversal_max_backoff_s must be at least reversal_initial_backoff_s")
        return self
