"""Settings of ``hotel-inventory`` (topology ``settings.hotel-inventory``); unknown keys are refused.

Seed 001 #20 (shared/seeds/001_58dfc580020147d2.txt line 23: "| 20 | Hotel Reservation | Pessimistic locking,
overbooking prevention, payment auth/capture | 1M bookings/day, Booking.com |"). The A/B switch is ``lock_mode``, how
concurrent holds of the same room-nights are isolated (:mod:`.locking`; ``casemesh run PROFILE --set
hotel-inventory.lock_mode=optimistic``):

- ``lock_mode`` ``"pessimistic"`` (default, the seed's "Pessimistic locking"): a hold locks its room-nights in date
  order, checks them, waits for its write to be durable, applies it and only then unlocks; holds of the same nights
  queue behind each other, one fsync each;
- ``"optimistic"`` (seed 003, shared/seeds/003_1dfe16d8ccfde9ed.txt lines 1243-1265, "Optimistic locking" ...
  "Attempt update with version check"): a hold reads the nights' versions without locks, checks, and its write
  commits only if no version moved meanwhile (``UPDATE ... WHERE version = ?`` in the group commit); a hold that lost
  the race is answered ABORTED (nothing held) and its caller retries. Holds of the same nights share group commits.

Others:

- ``overbooking_allowance_pct`` 0 (0 to 50): rooms sold beyond the room count, in percent of it, rounded down:
  ``sellable = rooms + floor(rooms * pct / 100)``. 0 is "overbooking prevention": never more rooms sold than exist;
- ``hold_ttl_s`` 600 (1 to 3,600): how long a hold asked with ``ttl_ms`` 0 holds its rooms, in seconds (the seed's
  ``ttl=600`` of a reservation, shared/seeds/000_69ff90d97cf45f9b.txt "E-commerce Platform");
- ``sweep_interval_ms`` 1,000 (50 to 60,000): how often the sweeper (:mod:`.expiry`) expires the holds whose time is
  up, in milliseconds (a hold is also expired when a hold, confirmation or release touches it after its time);
- ``max_commit_writes`` 256 (1 to 100,000): most writes (holds, confirmations, releases, expiries, room types) in one
  group commit (one transaction, one fsync);
- ``recent_final_holds`` 100,000 (0 to 10,000,000): RELEASED and EXPIRED holds kept in memory by ID (least recently
  used dropped); older ones are read from the file. HELD and CONFIRMED holds are always in memory.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class LockMode(StrEnum):
    """How concurrent holds of the same room-nights are isolated (see the module docstring)."""

    PESSIMISTIC = "pessimistic"
    OPTIMISTIC = "optimistic"


class InventorySettings(BaseModel):
    """hotel-inventory's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    lock_mode: LockMode = Field(default=LockMode.PESSIMISTIC, description=(
        "Isolation of concurrent holds: 'pessimistic' (per room-night locks, the seed's) or 'optimistic' (version "
        "check at the write; a lost race answers ABORTED)."))
    overbooking_allowance_pct: int = Field(default=0, ge=0, le=50, description=(
        "Rooms sold beyond the room count, in percent of it (rounded down); 0 sells no more rooms than exist."))
    hold_ttl_s: int = Field(default=600, ge=1, le=3_600, description=(
        "Seconds a hold asked with ttl_ms 0 holds its rooms."))
    sweep_interval_ms: int = Field(default=1_000, ge=50, le=60_000, description=(
        "Milliseconds between two sweeps that expire the holds whose time is up."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes in one group commit (one transaction, one fsync)."))
    recent_final_holds: int = Field(default=100_000, ge=0, le=10_000_000, description=(
        "RELEASED and EXPIRED holds kept in memory by ID; older ones are read from the file."))

    def sellable(self, rooms: int) -> int:
        """The rooms a room type of ``rooms`` rooms sells per night: ``rooms + floor(rooms * pct / 100)``."""
        return rooms + rooms * self.overbooking_allowance_pct // 100
