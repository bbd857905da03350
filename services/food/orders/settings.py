"""Settings of ``food-orders`` (topology ``settings.food-orders``); unknown keys are refused.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38, "Food Delivery": regional dispatch, ML ETA, surge
pricing; 10M orders/day). Times are real seconds: a profile that runs the city faster than real time (its couriers
move at speed × time_scale) sets the speed and the durations of the ETA model to the same effective values.

The fee:

- ``base_fee_minor`` 299 in ``currency_code`` USD: the delivery fee before surge ($2.99); the fee is
  round(base × surge multiplier of the restaurant's region), half up.

Surge (the A/B switch ``surge_enabled``: ``casemesh run PROFILE --set food-orders.surge_enabled=false`` keeps every
multiplier 1.0):

- ``surge_resolution`` 7 (H3 regions of about 5.2 km²), ``surge_interval_s`` 30 (seed 003's "Update every 30
  seconds"), ``surge_ladder`` and ``surge_max_multiplier``: open orders (PLACED + ASSIGNED) over AVAILABLE couriers
  per region, under 0.5 → 1.0x, under 1 → 1.2x, under 2 → 1.5x, under 3 → 2.0x, else 2.5x (rides' ladder,
  seed 003 lines 917-921).

The ETA model (:mod:`.eta`: a regression fitted at start on synthetic history drawn from this speed model):

- ``courier_speed_mps`` 8.33 (30 km/h, a city's average; a profile sets the workload's speed × time_scale) and
  ``detour_factor`` 1.3 (road over great-circle distance);
- ``assign_delay_s`` 10: from the moment a courier is wanted to the courier setting off (dispatch's tick and
  decision); ``pickup_wait_s`` 120: mean time lost at the restaurant and the door (exponential);
  ``eta_noise_s`` 60: standard deviation of everything else (Gaussian);
- ``eta_approach_m`` 1,000: the courier's expected approach when the region's supply is unknown (before the first
  surge recomputation, or rides-location unreachable); ``eta_approach_max_m`` 3,000: with no AVAILABLE courier in
  the region;
- ``eta_history_size`` 5,000 synthetic deliveries (``eta_seed`` 13), kitchen waits up to
  ``eta_history_max_kitchen_s`` 1,800, trips up to ``eta_history_max_trip_m`` 6,000 m great-circle, region supply
  up to ``eta_history_max_supply`` 20 couriers;
- ``promise_quantile`` 0.9: the promise is the prediction plus the residuals' 90th percentile on the history, so
  about 90% of orders are on time while the system keeps up and the city runs as the model says (the on-time SLO,
  harness/profiles/food.slo.yaml, asks 85%: a shortage of couriers, which the model does not foresee, breaks it);
  ``promise_margin_s`` (unset) replaces that margin with a fixed one.

Dispatch and the rest:

- ``max_batch_orders`` 2: most orders one courier holds at once (one batch);
- ``restaurants_timeout_ms`` 2,000 (PrepareOrder, PlaceOrder waits for it), ``dispatch_timeout_ms`` 1,000
  (DispatchOrder, best effort after the order is stored), ``location_timeout_ms`` 2,000 (CountAvailableDrivers at
  each surge recomputation);
- ``max_watchers`` 10,000 WatchOrder streams; ``terminal_cache_size`` 10,000 finished orders kept in memory;
  ``track_retry_initial_ms`` / ``track_retry_max_ms`` 500 / 10,000: backoff of the courier tracking for watchers.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_ASSIGN_ORDERS

#: Admission slots of OrderService's WatchOrder streams (an order lasts minutes): not the slots of unary work.
WATCH_STREAM_SLOTS = 10_000
#: rides' surge ladder (seed 003 lines 917-921): [demand/supply below, multiplier].
DEFAULT_LADDER = ((0.5, 1.0), (1.0, 1.2), (2.0, 1.5), (3.0, 2.0))


class OrdersSettings(BaseModel):
    """food-orders' knobs; every field optional (defaults in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency_code: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description=(
        "ISO 4217 code of the delivery fee (amounts in its minor unit)."))
    base_fee_minor: int = Field(default=299, ge=0, le=1_000_000, description=(
        "Delivery fee before surge, in minor units."))

    surge_enabled: bool = Field(default=True, description=(
        "False: every multiplier is 1.0 (demand and supply still counted): the A/B switch."))
    surge_resolution: int = Field(default=7, ge=4, le=12, description=(
        "H3 resolution of the surge regions (7: about 5.2 km²)."))
    surge_interval_s: float = Field(default=30.0, ge=0.1, le=3_600, description=(
        "Seconds between two surge recomputations."))
    surge_ladder: tuple[tuple[float, float], ...] = Field(default=DEFAULT_LADDER, max_length=32, description=(
        "[ratio_below, multiplier] steps, ratios increasing: a region whose open orders / max(available couriers, 1) "
        "is below a step's ratio gets that step's multiplier; at or above every step, surge_max_multiplier."))
    surge_max_multiplier: float = Field(default=2.5, ge=1, le=10, description="The multiplier above the last step.")

    courier_speed_mps: float = Field(default=30 / 3.6, gt=0, le=10_000, description=(
        "Couriers' effective speed, metres of road per real second (30 km/h = 8.33; a profile running the city "
        "time_scale times faster sets speed × time_scale)."))
    detour_factor: float = Field(default=1.3, ge=1, le=5, description="Road distance over great-circle distance.")
    assign_delay_s: float = Field(default=10.0, ge=0, le=3_600, description=(
        "Seconds from the moment a courier is wanted to the courier setting off (dispatch's tick and decision)."))
    pickup_wait_s: float = Field(default=120.0, ge=0, le=3_600, description=(
        "Mean seconds lost at the restaurant and the door (exponential in the synthetic history)."))
    eta_noise_s: float = Field(default=60.0, ge=0, le=3_600, description=(
        "Standard deviation of the rest of a delivery's time, seconds (Gaussian in the synthetic history)."))
    eta_approach_m: float = Field(default=1_000.0, ge=0, le=50_000, description=(
        "Expected great-circle metres from the courier to the restaurant when the region's supply is unknown."))
    eta_approach_max_m: float = Field(default=3_000.0, gt=0, le=50_000, description=(
        "Expected approach, metres, when the region has no AVAILABLE courier (and the cap of the supply model)."))
    eta_history_size: int = Field(default=5_000, ge=100, le=1_000_000, description=(
        "Synthetic deliveries the ETA regression is fitted on at start."))
    eta_seed: int = Field(default=13, ge=0, description="Seed of the synthetic history (deterministic).")
    eta_history_max_kitchen_s: float = Field(default=1_800.0, gt=0, le=86_400, description=(
        "Longest kitchen wait (ready_at - placed_at) in the synthetic history, seconds."))
    eta_history_max_trip_m: float = Field(default=6_000.0, gt=0, le=100_000, description=(
        "Longest restaurant-to-door great-circle distance in the synthetic history, metres."))
    eta_history_max_supply: int = Field(default=20, ge=0, le=10_000, description=(
        "Most AVAILABLE couriers in a region in the synthetic history."))
    promise_quantile: float = Field(default=0.9, ge=0.5, le=0.999, description=(
        "The promise is the prediction plus this quantile of the fit's residuals: the share of orders on time while "
        "the system keeps up."))
    promise_margin_s: float | None = Field(default=None, ge=0, le=86_400, description=(
        "A fixed margin over the prediction, seconds, instead of the residuals' quantile (unset: the quantile)."))

    max_batch_orders: int = Field(default=2, ge=1, le=MAX_ASSIGN_ORDERS, description=(
        "Most orders one courier holds at once (one batch); AssignCourier beyond it is FAILED_PRECONDITION."))
    restaurants_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of RestaurantService.PrepareOrder in PlaceOrder, in ms."))
    dispatch_timeout_ms: float = Field(default=1_000.0, gt=0, le=60_000, description=(
        "Deadline of FoodDispatchService.DispatchOrder after an order is stored, in ms (best effort: a failure is "
        "logged and counted; dispatch's recovery sweep picks the order up)."))
    location_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of LocationService.CountAvailableDrivers at each surge recomputation, in ms."))
    max_watchers: int = Field(default=10_000, ge=1, le=WATCH_STREAM_SLOTS, description=(
        "Most WatchOrder streams open at once; one more ends RESOURCE_EXHAUSTED."))
    terminal_cache_size: int = Field(default=10_000, ge=0, le=10_000_000, description=(
        "Delivered and cancelled orders kept in memory (least recently used out); the others are read from disk."))
    track_retry_initial_ms: float = Field(default=500.0, gt=0, le=60_000, description=(
        "First wait before following a courier again after LocationService.TrackDriver failed or ended, in ms; "
        "doubled after each failure up to track_retry_max_ms."))
    track_retry_max_ms: float = Field(default=10_000.0, gt=0, le=600_000, description=(
        "Longest wait between attempts to follow a courier, in ms."))

    @model_validator(mode="after")
    def _check(self) -> OrdersSettings:
        previous_ratio, previous_multiplier = 0.0, 1.0
        for ratio, multiplier in self.surge_ladder:
            if not ratio > previous_ratio:
                raise ValueError(f"surge_ladder: the ratios must be positive and increasing ({ratio} after "
                                 f"{previous_ratio})")
            if not previous_multiplier <= multiplier <= self.surge_max_multiplier:
                raise ValueError(f"surge_ladder: the multipliers must be at least 1, not decrease and not exceed "
                                 f"surge_max_multiplier ({multiplier} after {previous_multiplier}, max "
                                 f"{self.surge_max_multiplier})")
            previous_ratio, previous_multiplier = ratio, multiplier
        if self.track_retry_max_ms < self.track_retry_initial_ms:
            raise ValueError("track_retry_max_ms must be at least track_retry_initial_ms")
        if self.eta_approach_max_m < self.eta_approach_m:
            raise ValueError("eta_approach_max_m must be at least eta_approach_m")
        return self
