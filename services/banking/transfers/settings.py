"""Settings of ``banking-transfers`` (topology ``settings.banking-transfers``); unknown keys are refused.

Seed 001 #14 (shared/seeds/001_58dfc580020147d2.txt line 39: "| 14 | Online Banking | Double-entry ledger, ACID
transactions, fraud detection, reconciliation | 100M accounts, Chase/Wells Fargo |"). Times are seconds, amounts
minor units (cents of a two-decimal currency).

Fraud rules (:mod:`.fraud`; the A/B switch is ``fraud_rules``: ``casemesh run PROFILE --set
banking-transfers.fraud_rules=false``):

- ``fraud_rules`` true: every new transfer passes the three rules below before anything is posted; false: none is
  checked (every transfer goes to the ledger, only insufficient funds declines);
- ``daily_limit_minor`` 1,000,000 ($10,000, a common daily online-transfer limit of US retail banks): the source
  account's outgoing transfers of the last 24 h plus this one may not pass it;
- ``velocity_max_transfers`` 10 within ``velocity_window_s`` 60: an eleventh transfer from one account within a
  minute is declined (no person types that fast; a script draining an account does);
- ``new_payee_threshold_minor`` 500,000 ($5,000): a first transfer to a payee this account never paid at or above it
  is declined (the account-takeover pattern: a new payee and a large amount at once).

Ledger calls: ``ledger_timeout_s`` 1.0, the deadline of every call to ``banking-ledger`` (OpenAccount, PostEntry,
GetAccount): a PostEntry is an fsync on the ledger's side, milliseconds; one that takes a second is a sick ledger.

Recovery (:mod:`.recovery`): a transfer or deposit left PENDING (this service died between its PENDING write and its
decision, or the ledger could not be reached and the customer never retried) for ``recovery_grace_s`` 30 is finished
in the background: looked for every ``recovery_interval_s`` 10, waiting up to ``recovery_max_backoff_s`` 60 (doubling
from the interval) while the ledger keeps failing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_AMOUNT_MINOR


class TransferSettings(BaseModel):
    """banking-transfers' knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fraud_rules: bool = Field(default=True, description="Check the fraud rules before posting a transfer.")
    daily_limit_minor: int = Field(default=1_000_000, ge=1, le=MAX_AMOUNT_MINOR, description=(
        "Most an account may send in 24 h, in minor units."))
    velocity_max_transfers: int = Field(default=10, ge=1, le=100_000, description=(
        "Most transfers from one account within velocity_window_s."))
    velocity_window_s: float = Field(default=60.0, gt=0, le=86_400, description="The velocity window, in s.")
    new_payee_threshold_minor: int = Field(default=500_000, ge=1, le=MAX_AMOUNT_MINOR, description=(
        "Least amount, in minor units, of a first transfer to a payee that is declined."))

    ledger_timeout_s: float = Field(default=1.0, gt=0, le=60, description="Deadline of each ledger call, in s.")

    recovery_grace_s: float = Field(default=30.0, ge=0, le=86_400, description=(
        "Age of a PENDING transfer or deposit held by no call after which it is finished in the background, in s."))
    recovery_interval_s: float = Field(default=10.0, gt=0, le=86_400, description=(
        "Seconds between two looks for such transfers."))
    recovery_max_backoff_s: float = Field(default=60.0, gt=0, le=86_400, description=(
        "Longest wait between two looks while the ledger keeps failing, in s."))

    @model_validator(mode="after")
    def _check(self) -> TransferSettings:
        if self.recovery_max_backoff_s < self.recovery_interval_s:
            raise ValueError("recovery_max_backoff_s must be at least recovery_interval_s")
        return self
