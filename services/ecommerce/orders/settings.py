"""Settings of ``ecommerce-orders`` (topology ``settings.ecommerce-orders``); unknown keys are refused.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585: "Latency: ...
500ms for checkout", "Order Service: Saga pattern for distributed transactions", "Inventory reservation: Optimistic
locking with TTL", ``reserve_stock(product_id, quantity, user_id, ttl=600)``). Times are milliseconds where the name
says ``_ms``, else seconds.

The saga (:mod:`.saga`):

- ``checkout_hold_ms`` 0: the TTL with which the checkout holds every line's reservation again (InventoryService.Reserve
  ``ttl_ms``) before it pays; 0 takes the inventory's own default (its ``reservation_ttl_s``, the seed's 600 s), else
  1,000 to 3,600,000. The A/B knob beside the inventory's TTL: a short hold returns abandoned checkouts' units to the
  flash sale sooner, and fails more checkouts whose payment is slow (``RESERVATION_EXPIRED``);
- ``rehold_margin_s`` 5: before committing, the reservations are held again when the earliest of their holds ends
  within this margin (an order resumed after a crash or an outage); otherwise the commit goes ahead at once.

Calls (:mod:`.calls`: every call has its explicit deadline; UNAVAILABLE is retried ``call_attempts`` times in all,
``retry_backoff_s`` apart, doubling, with jitter; any other failure is not retried in the call):

- ``cart_timeout_s`` 0.5 (GetCart, ClearLines: in memory on the cart's side);
- ``inventory_timeout_s`` 1.0 (Reserve, Commit, Release, Restock: each an fsync on the inventory's side);
- ``gateway_timeout_s`` 3.0 (Authorize, Capture, Void: an Authorize may try two acquirers of 1 s each, after the vault
  and the fraud rules);
- ``call_attempts`` 3, ``retry_backoff_s`` 0.05.

Recovery (:mod:`.recovery`): at start every PENDING order is resumed at once; then every ``recovery_interval_s`` 2,
orders PENDING for ``recovery_grace_s`` 5 that no call holds are resumed (finished, or compensated), backing off up to
``recovery_max_backoff_s`` 30 (doubling from the interval) while a dependency keeps failing.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..contract import MAX_TTL_MS, MIN_TTL_MS


class OrderSettings(BaseModel):
    """ecommerce-orders' knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    checkout_hold_ms: int = Field(default=0, ge=0, le=MAX_TTL_MS, description=(
        "TTL of the checkout's hold of each reservation, in ms; 0: the inventory's default."))
    rehold_margin_s: float = Field(default=5.0, ge=0, le=3_600, description=(
        "Hold the reservations again before committing when their hold ends within this, in s."))

    cart_timeout_s: float = Field(default=0.5, gt=0, le=60, description="Deadline of each cart call, in s.")
    inventory_timeout_s: float = Field(default=1.0, gt=0, le=60, description="Deadline of each inventory call, in s.")
    gateway_timeout_s: float = Field(default=3.0, gt=0, le=60, description=(
        "Deadline of each payment gateway call, in s."))
    call_attempts: int = Field(default=3, ge=1, le=10, description="Attempts of a call answered UNAVAILABLE.")
    retry_backoff_s: float = Field(default=0.05, ge=0, le=10, description=(
        "Wait before the second attempt, doubled after each, in s."))

    recovery_grace_s: float = Field(default=5.0, ge=0, le=86_400, description=(
        "Age of a PENDING order held by no call after which the background resumes it, in s."))
    recovery_interval_s: float = Field(default=2.0, gt=0, le=86_400, description=(
        "Seconds between two looks for such orders."))
    recovery_max_backoff_s: float = Field(default=30.0, gt=0, le=86_400, description=(
        "Longest wait between two looks while a dependency keeps failing, in s."))

    @field_validator("checkout_hold_ms")
    @classmethod
    def _hold(cls, value: int) -> int:
        if value != 0 and value < MIN_TTL_MS:
            raise ValueError(f"must be 0 (the inventory's default) or {MIN_TTL_MS:,} to {MAX_TTL_MS:,} ms")
        return value

    @model_validator(mode="after")
    def _check(self) -> OrderSettings:
        if self.recovery_max_backoff_s < self.recovery_interval_s:
            raise ValueError("recovery_max_backoff_s must be at least recovery_interval_s")
        return self
