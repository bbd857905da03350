"""Settings of one simulated acquirer (topology ``settings.payments-psp-a`` / ``settings.payments-psp-b``, one block
per acquirer, validated by the same model); unknown keys are refused.

Seed 001 #25 (shared/seeds/001_58dfc580020147d2.txt line 49: "| 25 | Payment Gateway | PSP routing, fraud detection,
PCI DSS (HSM tokenization), settlement | 10K TPS, Stripe/Adyen |"). The gateway routes between acquirers that differ
in latency, issuer decline rate and fees; a profile gives each of the two its own values, so routing by cost and
failing over to the other one has something to trade.

The issuer (:mod:`.issuer`):

- ``latency_median_ms`` 40, ``latency_sigma`` 0.5: each authorization waits a lognormal issuer round trip whose
  median is ``latency_median_ms`` and whose log-standard deviation is ``latency_sigma`` (0.5: the 99th percentile is
  about 3.2 times the median). A real acquirer's round trip through the card network to the issuer takes hundreds of
  milliseconds; the simulation scales it down (about fivefold) so that the gateway's own work stays visible beside it,
  and the profiles set it per acquirer. 0: no wait at all (tests).
- ``decline_rate`` 0.03: the share of authorizations of ordinary cards the issuer declines (``do_not_honor`` or
  ``insufficient_funds``, evenly): card-not-present decline rates of a few percent are typical. The test cards
  (services/payments/contract.py ``TEST_CARDS``) are always declined with their own code, and an expired card with
  ``expired_card``, whatever this rate.
- ``issuer_seed`` (unset): the seed of the issuer's random draws (latency and declines); unset draws a fresh seed
  at start. Set it to replay a run's draws.

Fees (the settlement file's ``fee_minor``, per capture; refunds carry none):

- ``fee_bps`` 180 (1.8% of a capture, in basis points) and ``fee_fixed_minor`` 20 (0.20 in a two-decimal currency):
  the shape of a European card acquirer's blended rate; the fee is round_half_up(amount × fee_bps / 10,000) +
  fee_fixed_minor, fixed when the capture is booked.

Protection:

- ``max_references_locked`` 10,000: most references with an Authorize or Void deciding at once (each holds a lock
  while it decides and writes); one more answers UNAVAILABLE (nothing processed: the gateway may route elsewhere).
  At the seed's 10K TPS and an issuer round trip under a second, fewer than 10,000 are ever in flight.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AcquirerSettings(BaseModel):
    """One acquirer's knobs; every field optional (defaults and their reasons in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_median_ms: float = Field(default=40.0, ge=0, le=60_000, description=(
        "Median of the issuer's round trip, in ms (lognormal); 0: no wait. Scaled down from real acquirers' "
        "hundreds of ms; profiles set it per acquirer."))
    latency_sigma: float = Field(default=0.5, ge=0, le=3, description=(
        "Standard deviation of the natural log of the issuer's round trip (0: always the median)."))
    decline_rate: float = Field(default=0.03, ge=0, le=1, description=(
        "Probability that the issuer declines an ordinary card (do_not_honor or insufficient_funds)."))
    issuer_seed: int | None = Field(default=None, ge=0, description=(
        "Seed of the issuer's random draws; unset: a fresh seed at every start."))
    fee_bps: int = Field(default=180, ge=0, le=10_000, description=(
        "The acquirer's fee on a capture, in basis points of its amount (180: 1.8%)."))
    fee_fixed_minor: int = Field(default=20, ge=0, le=1_000_000, description=(
        "The acquirer's fixed fee per capture, in minor units of the capture's currency."))
    max_references_locked: int = Field(default=10_000, ge=1, le=10_000_000, description=(
        "Most references with an Authorize or Void deciding at once; beyond it UNAVAILABLE."))
