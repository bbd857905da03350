"""Settings of ``food-restaurants`` (topology ``settings.food-restaurants``); unknown keys are refused.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38): "| 13 | Food Delivery | Regional dispatch, ML ETA,
adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |". Defaults:

- ``max_restaurants`` 100,000: restaurants stored at most (DoorDash lists a few hundred thousand restaurants for a
  whole country; one city on one machine is a small share). A CreateRestaurants that would go beyond answers
  RESOURCE_EXHAUSTED and stores nothing. Memory: well under 1 KB per restaurant (its record), plus its kitchen's
  queue while orders are in it.
- ``recent_orders`` 100,000: PrepareOrder answers remembered for idempotency (an LRU of (restaurant id, order id) →
  ready time, ``cachetools.LRUCache``). A retry of an order still remembered gets the same ready time and does not
  queue the order twice; an order evicted (over 100,000 newer orders since, about 15 minutes at the seed's 10M
  orders/day, 116 a second, hours at the profile's scaled-down rates) would be queued again. The order service
  retries within seconds and stores the ready time it got, so the bound is far above what it needs.
- ``prep_jitter`` 0.2: each order's real preparation time is its nominal one (``prep_base_s + prep_per_item_s ×
  items``) times ``1 + prep_jitter × u``, ``u`` in [-1, 1] drawn deterministically from the order id (a kitchen is
  not a clock: the same dish takes longer on a busy night). 0 makes every ready time exact. The ready time returned
  includes the jitter; what a client knows beforehand (the restaurant's fields, GetRestaurant's
  ``next_ready_at_unix_ms``) is the nominal time, so the order service's ETA model must cope with ±20 % around it.
- ``commit_batch`` 2,000: most restaurants written by one group commit (one SQLite transaction, one fsync);
  concurrent CreateRestaurants calls queued while a commit runs share the next one; one request's restaurants are
  never split (a request is all or nothing).
- ``sweep_interval_s`` 1: how often the kitchens' finished orders and idle kitchens are dropped from memory and the
  kitchen gauges (``casemesh_food_restaurants_kitchen_slots_busy``, ``..._orders_preparing``) refreshed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RestaurantsSettings(BaseModel):
    """food-restaurants' knobs; every field optional (defaults above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_restaurants: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Most restaurants stored; a CreateRestaurants that would store more answers RESOURCE_EXHAUSTED (nothing "
        "stored)."))
    recent_orders: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "PrepareOrder answers remembered (LRU) so that a retried order id gets the same ready time."))
    prep_jitter: float = Field(default=0.2, ge=0.0, le=0.9, description=(
        "Share by which an order's real preparation time deviates from the nominal one, ± (deterministic per "
        "order id); 0: exact."))
    commit_batch: int = Field(default=2_000, ge=1, le=100_000, description=(
        "Most restaurants in one group commit (one transaction, one fsync) of queued writes; a single request of "
        "more still commits alone, whole."))
    sweep_interval_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Seconds between two sweeps dropping finished orders and idle kitchens and refreshing the kitchen gauges."))
