"""Settings of ``ecommerce-cart`` (topology ``settings.ecommerce-cart``); unknown keys are refused.

Seed 000 "E-commerce Platform (like Amazon)" (shared/seeds/000_69ff90d97cf45f9b.txt line 520: "Cart Service: Redis
for session, real-time inventory reservation"). Times are seconds. How long a line's reservation holds is the
inventory's setting (``ecommerce-inventory.reservation_ttl_s``, the seed's 600 s): the cart reserves with
``ttl_ms`` 0, the inventory's default.

- ``catalog_timeout_s`` 1.0: the deadline of each GetProduct to ``ecommerce-catalog`` (a primary-key read in
  SQLite, microseconds; one that takes a second is a sick catalogue, and SetItem answers UNAVAILABLE);
- ``inventory_timeout_s`` 1.0: the deadline of each Reserve and Release to ``ecommerce-inventory`` (an fsync of its
  log, milliseconds; tens on a loaded disk).

Both are cut further to what is left of the caller's own deadline (the runtime's deadline propagation).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CartSettings(BaseModel):
    """ecommerce-cart's knobs; every field optional (defaults and why in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    catalog_timeout_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Deadline of each GetProduct call to ecommerce-catalog, in s."))
    inventory_timeout_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Deadline of each Reserve and Release call to ecommerce-inventory, in s."))
