"""Settings of ``hotel-booking`` (topology ``settings.hotel-booking``); unknown keys are refused.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). Times are seconds unless the name
says milliseconds (``_ms``).

The hold (step 2 of the saga, :mod:`.saga`):

- ``hold_ttl_ms`` 0: how long the inventory holds a booking's rooms before they are confirmed; 0 asks for the
  inventory's own default (its ``hold_ttl_s``), else 1,000 to 3,600,000 ms (the contract's range). The saga confirms
  within seconds of the hold; the TTL only matters when it stalls (a dependency down, this service killed), and then
  it bounds how long rooms stay held by a booking that may never finish.
- ``max_conflict_retries`` 8: how many times a HoldRooms answered ABORTED (the inventory's optimistic lock mode lost
  a version race) is sent again before the booking fails CONTENTION. Each retry waits a full-jitter exponential
  backoff ("Exponential Backoff And Jitter", AWS Architecture Blog, 2015): a uniform draw from 0 to
  ``min(conflict_backoff_cap_ms, conflict_backoff_base_ms * 2 ** (retry - 1))`` for retry 1, 2, ...;
  ``conflict_backoff_base_ms`` 5 and ``conflict_backoff_cap_ms`` 200: a HoldRooms is one fsync on the inventory's
  side (milliseconds), so the first retries come back within a few of them and the eighth waits up to 200 ms: nine
  attempts spread over about half a second, against a burst of bookings of the same popular nights. This budget is
  where the lock-mode A/B shows: pessimistic holds never conflict, optimistic ones retry
  (``casemesh_hotel_booking_conflict_retries``) and, past the budget, fail CONTENTION.

Calls (every one with this explicit deadline; the runtime channel's default is 500 ms):

- ``inventory_timeout_s`` 2.0: GetAvailability, HoldRooms, ConfirmHold, ReleaseHold. A hold in the pessimistic lock
  mode waits for the holds of the same nights ahead of it (one fsync each), so a burst on one night queues; two
  seconds is far above that and still short beside a guest's patience.
- ``gateway_timeout_s`` 4.0: Authorize, Capture, Void. The gateway asks a vault, the fraud rules and up to two
  acquirers (its ``acquirer_timeout_s`` 1.0 each, with failover), so one Authorize may take over two seconds when an
  acquirer is sick.

Recovery (:mod:`.recovery`): a booking left PENDING (this service died mid-saga, or a dependency could not be reached
and the guest never retried), or a cancellation or check-in left half done, is finished ``recovery_grace_s`` 5 after
its last write (so it does not race the guest's own retry), looked for every ``recovery_interval_s`` 5, waiting up to
``recovery_max_backoff_s`` 60 (doubling from the interval) while a dependency keeps failing. Five seconds is short
beside the inventory's hold TTL, so a booking interrupted after its hold usually still confirms.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_TTL_MS, MIN_TTL_MS


class BookingSettings(BaseModel):
    """hotel-booking's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hold_ttl_ms: int = Field(default=0, ge=0, le=MAX_TTL_MS, description=(
        f"HoldRooms' ttl_ms: 0 for the inventory's default, else {MIN_TTL_MS:,} to {MAX_TTL_MS:,} ms."))
    max_conflict_retries: int = Field(default=8, ge=0, le=1_000, description=(
        "HoldRooms retries after an ABORTED version conflict before the booking fails CONTENTION."))
    conflict_backoff_base_ms: float = Field(default=5.0, gt=0, le=60_000, description=(
        "Full-jitter backoff: the first retry waits up to this, in ms; each next one up to twice as long."))
    conflict_backoff_cap_ms: float = Field(default=200.0, gt=0, le=60_000, description=(
        "Full-jitter backoff: the longest wait before a retry, in ms."))

    inventory_timeout_s: float = Field(default=2.0, gt=0, le=60, description=(
        "Deadline of each call to hotel-inventory, in s."))
    gateway_timeout_s: float = Field(default=4.0, gt=0, le=60, description=(
        "Deadline of each call to payments-gateway, in s."))

    recovery_grace_s: float = Field(default=5.0, ge=0, le=86_400, description=(
        "Age (since its last write) of an unfinished booking, cancellation or check-in held by no call after which "
        "the background recovery finishes it, in s."))
    recovery_interval_s: float = Field(default=5.0, gt=0, le=86_400, description=(
        "Seconds between two looks for unfinished bookings."))
    recovery_max_backoff_s: float = Field(default=60.0, gt=0, le=86_400, description=(
        "Longest wait between two looks while a dependency keeps failing, in s."))

    @model_validator(mode="after")
    def _check(self) -> BookingSettings:
        if self.hold_ttl_ms and self.hold_ttl_ms < MIN_TTL_MS:
            raise ValueError(f"hold_ttl_ms must be 0 (the inventory's default) or {MIN_TTL_MS:,} to {MAX_TTL_MS:,}")
        if self.conflict_backoff_cap_ms < self.conflict_backoff_base_ms:
            raise ValueError("conflict_backoff_cap_ms must be at least conflict_backoff_base_ms")
        if self.recovery_max_backoff_s < self.recovery_interval_s:
            raise ValueError("recovery_max_backoff_s must be at least recovery_interval_s")
        return self
