"""Settings of ``rides-dispatch`` (topology ``settings.rides-dispatch``); unknown keys are refused.

The case study's A/B knob is ``offer_batch_size``: how many drivers a ride is offered to at once (seed 003,
shared/seeds/003_1dfe16d8ccfde9ed.txt, "Uber Ride Matching", Ride Matching Algorithm: "Send request to best drivers
(top 3)"); ``casemesh run rides --set rides-dispatch.offer_batch_size=1`` offers one driver at a time, and the match
time grows with every driver who lets an offer lapse. ``offer_timeout_s`` is 5 s: the issue's "5 s timeout, then the
next 3" (the seed's code waits 30 s). ``search_radius_m`` 5,000 is the seed's "5 // 5km radius", doubled by
``expandSearchRadius`` up to ``max_radius_m``. ``city_speed_kmh`` and ``detour_factor`` are the speed model of the
offers' pickup ETA (seed 000, shared/seeds/000_69ff90d97cf45f9b.txt, "Ride-Sharing (like Uber)", "ETA Calculation").
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..contract import MAX_RADIUS_M

#: Admission slots of DispatchService's ReceiveOffers streams (a driver's shift lasts hours): not the unary slots.
FEED_STREAM_SLOTS = 10_000


class DispatchSettings(BaseModel):
    """rides-dispatch's knobs; every field optional (defaults above)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offer_batch_size: int = Field(default=3, ge=1, le=10, description=(
        "Drivers offered a ride at once in each phase, the nearest first (seed 003: the top 3). The A/B knob."))
    offer_timeout_s: float = Field(default=5.0, gt=0, le=300, description=(
        "How long a phase's offers stand, in seconds; then the next phase offers the ride to the next drivers."))
    max_phases: int = Field(default=4, ge=1, le=100, description=(
        "Most offer phases per ride; after the last, the ride is released (CANCEL_REASON_NO_DRIVER)."))
    search_radius_m: float = Field(default=5_000.0, gt=0, le=MAX_RADIUS_M, description=(
        "First search radius around the pickup, in metres (seed 003: 5 km)."))
    max_radius_m: float = Field(default=20_000.0, gt=0, le=MAX_RADIUS_M, description=(
        "Largest search radius, in metres: the radius doubles when a search finds nobody new, up to this."))
    max_match_s: float = Field(default=60.0, gt=0, le=3_600, description=(
        "Seconds after the request after which a ride nobody accepted is released (no new phase starts)."))
    no_driver_retry_s: float = Field(default=1.0, gt=0, le=60, description=(
        "Wait before searching again when nobody new is found within max_radius_m (or the location service "
        "failed), in seconds."))
    search_overfetch: int = Field(default=3, ge=1, le=10, description=(
        "FindNearbyDrivers asks for offer_batch_size times this many drivers, since drivers with an offer of "
        "another ride or no open ReceiveOffers are filtered out afterwards (then once more with 100 if too few "
        "are left)."))
    sweep_interval_s: float = Field(default=5.0, gt=0, le=3_600, description=(
        "Seconds between sweeps of TripService.ListOpenRides that start matching REQUESTED rides dispatch does "
        "not know (after a restart, or a StartMatching that never arrived)."))
    max_rides_matching: int = Field(default=10_000, ge=1, le=1_000_000, description=(
        "Most rides being matched at once; StartMatching beyond it is RESOURCE_EXHAUSTED."))
    max_feeds: int = Field(default=10_000, ge=1, le=FEED_STREAM_SLOTS, description=(
        "Most ReceiveOffers streams open at once; one more ends RESOURCE_EXHAUSTED."))
    feed_queue_size: int = Field(default=16, ge=1, le=1_000, description=(
        "Events (offers, withdrawals) waiting on one driver's feed; a driver whose app does not read them gets no "
        "new offer."))
    offer_retention_s: float = Field(default=600.0, ge=0, le=86_400, description=(
        "Seconds an answered, lapsed or withdrawn offer is remembered, so that a retried accept returns the ride and "
        "a late one gets ABORTED rather than NOT_FOUND."))
    city_speed_kmh: float = Field(default=30.0, gt=0, le=200, description=(
        "Average city driving speed of the pickup ETA, in km/h."))
    detour_factor: float = Field(default=1.3, ge=1, le=5, description=(
        "Road distance over great-circle distance, for the pickup ETA."))
    location_timeout_ms: float = Field(default=1_000.0, gt=0, le=60_000, description=(
        "Deadline of LocationService.FindNearbyDrivers, in ms."))
    trips_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of each TripService call (AssignDriver, GetRide, ReleaseRide, ListOpenRides), in ms."))

    @model_validator(mode="after")
    def _radii(self) -> DispatchSettings:
        if self.max_radius_m < self.search_radius_m:
            raise ValueError("max_radius_m must be at least search_radius_m")
        return self
