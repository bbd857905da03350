"""Settings of ``rides-pricing`` (topology ``settings.rides-pricing``); unknown keys are refused.

The A/B switch of the case study is ``surge_enabled``
(``casemesh run PROFILE --set rides-pricing.surge_enabled=false``): off, every multiplier is 1.0 (demand is still
counted and reported): fares and the surge map stop following demand over supply (the shipped workload's riders
take any quote, so here it moves prices, not demand). Defaults, from seed 003
(shared/seeds/003_1dfe16d8ccfde9ed.txt), "Uber Ride Matching", Surge Pricing (line 883):

- ``base_fare_minor`` 500 and ``per_km_minor`` 150 in ``currency_code`` USD: "$5 + $1.50/km" (line 890);
- ``surge_resolution`` 8 (about 0.74 km²): the seed's geohash precision 6, "~1km precision" (line 906);
- ``surge_ladder`` and ``surge_max_multiplier``: demand/supply under 0.5 → 1.0x, under 1 → 1.2x, under 2 → 1.5x,
  under 3 → 2.0x, else 2.5x, "Max surge 2.5x" (lines 917-921);
- ``surge_interval_s`` 30: "Update every 30 seconds" (line 961); down to 1 s for benchmarks;
- ``detour_factor`` 1.3 and ``city_speed_kmh`` 30: the trip-time model (roads are longer than the great circle;
  a city's average speed);
- ``quote_ttl_s`` 120 and ``max_quotes`` 200,000: a quote holds two minutes; at 10M rides a day (seed 001 #02) a
  city of this size asks a few hundred quotes a second at peak, well under the bound.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

DEFAULT_LADDER = ((0.5, 1.0), (1.0, 1.2), (2.0, 1.5), (3.0, 2.0))


class PricingSettings(BaseModel):
    """rides-pricing's knobs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    currency_code: str = Field(default="USD", pattern=r"^[A-Z]{3}$", description=(
        "ISO 4217 code of the fares (amounts are in its minor unit)."))
    base_fare_minor: int = Field(default=500, ge=0, le=1_000_000, description="Base fare, in minor units.")
    per_km_minor: int = Field(default=150, ge=0, le=1_000_000, description=(
        "Fare per kilometre of great-circle pickup-to-dropoff distance, in minor units."))
    detour_factor: float = Field(default=1.3, ge=1, le=5, description=(
        "Road distance over great-circle distance, for the trip-time estimate."))
    city_speed_kmh: float = Field(default=30.0, gt=0, le=200, description="Average driving speed, in km/h.")
    surge_resolution: int = Field(default=8, ge=4, le=12, description=(
        "H3 resolution of the surge cells (8: about 0.74 km²)."))
    surge_interval_s: float = Field(default=30.0, ge=1, le=3_600, description=(
        "Seconds between two surge recomputations (the demand window)."))
    surge_enabled: bool = Field(default=True, description=(
        "False: every multiplier is 1.0 (demand still counted and reported): the A/B switch."))
    surge_ladder: tuple[tuple[float, float], ...] = Field(default=DEFAULT_LADDER, min_length=0, max_length=32,
                                                          description=(
        "[ratio_below, multiplier] steps, ratios increasing: a cell whose demand/max(supply, 1) is below the first "
        "ratio_below it reaches gets that step's multiplier; at or above every step, surge_max_multiplier."))
    surge_max_multiplier: float = Field(default=2.5, ge=1, le=10, description="The multiplier above the last step.")
    quote_ttl_s: float = Field(default=120.0, gt=0, le=3_600, description=(
        "Seconds a quote holds; an expired quote is forgotten this long after it expired."))
    max_quotes: int = Field(default=200_000, ge=1, le=10_000_000, description=(
        "Most quotes held; GetQuote is RESOURCE_EXHAUSTED when that many are unexpired."))
    location_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of LocationService.CountAvailableDrivers at each recomputation, in ms."))

    @model_validator(mode="after")
    def _ladder(self) -> PricingSettings:
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
        return self
