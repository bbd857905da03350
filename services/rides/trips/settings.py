"""Settings of ``rides-trips`` (topology ``settings.rides-trips``); unknown keys are refused.

- ``pricing_timeout_ms`` 2,000: deadline of RedeemQuote (RequestRide waits for it).
- ``dispatch_timeout_ms`` 1,000: deadline of StartMatching, called best effort after a ride is stored (dispatch's
  sweep of ListOpenRides finds a ride whose StartMatching failed).
- ``max_watchers`` 10,000: WatchRide streams held at once.
- ``terminal_cache_size`` 10,000: completed and cancelled rides kept in memory (LRU); older ones are read from the
  SQLite file.
- ``track_retry_initial_ms`` / ``track_retry_max_ms`` 500 / 10,000: backoff between attempts to follow an assigned
  driver (LocationService.TrackDriver) for the ride's watchers after the tracking stream failed or ended.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Admission slots of TripService's WatchRide streams (a ride lasts minutes): not the slots of unary work.
WATCH_STREAM_SLOTS = 10_000


class TripsSettings(BaseModel):
    """rides-trips' knobs; every field optional (defaults above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pricing_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of PricingService.RedeemQuote in RequestRide, in ms."))
    dispatch_timeout_ms: float = Field(default=1_000.0, gt=0, le=60_000, description=(
        "Deadline of DispatchService.StartMatching after a ride is stored, in ms (best effort: a failure is logged "
        "and counted, the ride is answered OK, and dispatch's sweep picks it up)."))
    max_watchers: int = Field(default=10_000, ge=1, le=WATCH_STREAM_SLOTS, description=(
        "Most WatchRide streams open at once; one more ends RESOURCE_EXHAUSTED."))
    terminal_cache_size: int = Field(default=10_000, ge=0, le=10_000_000, description=(
        "Completed and cancelled rides kept in memory (least recently used out); the others are read from disk."))
    track_retry_initial_ms: float = Field(default=500.0, gt=0, le=60_000, description=(
        "First wait before following an assigned driver again after LocationService.TrackDriver failed or ended, "
        "in ms; doubled after each failure up to track_retry_max_ms."))
    track_retry_max_ms: float = Field(default=10_000.0, gt=0, le=600_000, description=(
        "Longest wait between attempts to follow an assigned driver, in ms."))

    @model_validator(mode="after")
    def _backoff(self) -> TripsSettings:
        if self.track_retry_max_ms < self.track_retry_initial_ms:
            raise ValueError("track_retry_max_ms must be at least track_retry_initial_ms")
        return self
