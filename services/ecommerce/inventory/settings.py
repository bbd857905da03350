"""Settings of ``ecommerce-inventory`` (topology ``settings.ecommerce-inventory``); unknown keys are refused.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 529: "Inventory reservation:
Optimistic locking with TTL"; line 541: ``reserve_stock(product_id, quantity, user_id, ttl=600)``). The A/B knob is
``reservation_ttl_s`` (``casemesh run PROFILE --set ecommerce-inventory.reservation_ttl_s=30``): how long an abandoned
cart keeps units away from other buyers during a flash sale.

- ``reservation_ttl_s`` 600 (the seed's ``ttl=600``, :data:`~services.ecommerce.contract.DEFAULT_RESERVATION_TTL_S`),
  1 to 3,600 seconds: the hold of a Reserve whose ``ttl_ms`` is 0;
- ``sweep_interval_ms`` 500, 10 to 60,000 milliseconds: how often the background sweeper expires the HELD
  reservations whose TTL ran out (requests expire the due ones themselves before they read availability, so this
  only bounds how stale the held-units gauge and the expiry counter can be);
- ``max_commit_writes`` 256, 1 to 100,000: most writes (reservation changes, restocks) in one group commit (one
  SQLite transaction, one fsync).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from .. import contract


class InventorySettings(BaseModel):
    """ecommerce-inventory's knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reservation_ttl_s: int = Field(
        default=contract.DEFAULT_RESERVATION_TTL_S, ge=contract.MIN_TTL_MS // 1_000,
        le=contract.MAX_TTL_MS // 1_000, description="Seconds a reservation holds its units when Reserve's ttl_ms is 0 "
                                                     "(the seed's reserve_stock ttl=600).")
    sweep_interval_ms: int = Field(default=500, ge=10, le=60_000, description=(
        "Milliseconds between two runs of the sweeper that expires HELD reservations whose TTL ran out."))
    max_commit_writes: int = Field(default=256, ge=1, le=100_000, description=(
        "Most writes (reservation changes, restocks) in one group commit."))
