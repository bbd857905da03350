"""Settings of ``food-dispatch`` (topology ``settings.food-dispatch``); unknown keys are refused.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery | Regional dispatch, ML ETA, adaptive
telemetry, surge pricing | 10M orders/day, DoorDash/UberEats". The case study's A/B switch is ``batching``
(``casemesh run PROFILE --set food-dispatch.batching=false``): with it on, a due order may join a courier who holds one
order not yet picked up from a restaurant nearby, when that costs less courier time than sending a second courier and
delays neither order by more than ``max_batch_delay_s``; off, every order gets a courier of its own.

Times are real seconds, as everywhere in the food services: a profile that compresses a city's minutes into seconds
(``time_scale``) sets ``courier_speed_mps`` to the couriers' effective metres per real second, and ``dispatch_lead_s``
/ ``max_batch_delay_s`` to the real-second equivalents of their city values. Defaults:

- ``region_resolution`` 6 (H3 cells of about 36 km², edge about 3.7 km): San Francisco is a handful of regions, each
  with a dispatcher task of its own;
- ``tick_s`` 0.5: how often a region's dispatcher looks at its due orders;
- ``dispatch_lead_s`` 5: an order is due when its food is ready within this many seconds. Just-in-time dispatch: a
  courier sent when the food is ready leaves the customer waiting for the approach; one sent at order time waits at
  the kitchen (courier time is the fleet's scarcest resource). DoorDash dispatches ahead of readiness by about the
  expected approach time; 5 s is the approach of a courier about 1 km of road away in the food profile, whose city
  runs 30 times faster than real time (a profile sets it to its typical approach);
- ``batching`` true; ``batch_radius_m`` 500 (two restaurants within a short walk of each other);
  ``max_batch_delay_s`` 120 (no order's delivery is delayed more than two minutes by sharing the courier: the
  delivery promise's slack; a time-scaled profile scales it down with the rest);
- ``search_radius_m`` 3,000 doubling up to ``max_radius_m`` 12,000 (FindNearbyDrivers around the restaurant, 10
  couriers at most per search);
- ``courier_speed_mps`` 8.33 (30 km/h, a courier in city traffic) and ``detour_factor`` 1.3 (road over great-circle
  distance): the travel-time model of batching decisions and of the nearest courier; ``stop_s`` 60 (a minute at
  each counter and door, as the order service's ETA model's ``pickup_wait_s`` of 2 x 60 s): each stop of a route;
- ``max_dispatch_s`` 60: an order without a courier 60 s after it became due is released (ReleaseOrder:
  CANCEL_REASON_NO_COURIER);
- ``sweep_interval_s`` 5: ListOpenOrders recovery;
- ``free_grace_s`` 2: a courier holding an assignment is free again once the location service shows it AVAILABLE in
  a position received at least this long after the assignment (the app reports BUSY as soon as it gets an
  assignment; the grace covers a position already on its way);
- ``max_queued`` 100,000 orders, ``max_feeds`` 10,000 ReceiveAssignments streams.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ...rides.contract import MAX_NEARBY_LIMIT, MAX_RADIUS_M

#: Admission slots of ReceiveAssignments streams (a courier's shift lasts hours): not the unary slots.
FEED_STREAM_SLOTS = 10_000


class FoodDispatchSettings(BaseModel):
    """food-dispatch's knobs; every field optional (defaults above). Distances in metres, times in real seconds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    region_resolution: int = Field(default=6, ge=0, le=15, description=(
        "H3 resolution of the dispatch regions (6: about 36 km²); each region has its own dispatcher task."))
    tick_s: float = Field(default=0.5, gt=0, le=60, description=(
        "Seconds between two passes of a region's dispatcher over its due orders."))
    dispatch_lead_s: float = Field(default=5.0, ge=0, le=3_600, description=(
        "An order is due when ready_at - now <= this many seconds: the expected courier approach time "
        "(just-in-time dispatch: the courier arrives as the food is ready)."))
    batching: bool = Field(default=True, description=(
        "The A/B switch: let a due order join a courier holding one order not yet picked up, when that saves "
        "courier time and delays neither order beyond max_batch_delay_s."))
    batch_radius_m: float = Field(default=500.0, gt=0, le=5_000, description=(
        "Most distance between the two restaurants of a batch, in metres."))
    max_batch_delay_s: float = Field(default=120.0, ge=0, le=3_600, description=(
        "Most seconds a batch may delay either order's delivery compared with its separate trip."))
    search_radius_m: float = Field(default=3_000.0, ge=1, le=MAX_RADIUS_M, description=(
        "First FindNearbyDrivers radius around the restaurant, in metres; doubled up to max_radius_m when no "
        "eligible courier is found."))
    max_radius_m: float = Field(default=12_000.0, ge=1, le=MAX_RADIUS_M, description=(
        "Largest FindNearbyDrivers radius, in metres."))
    search_limit: int = Field(default=10, ge=1, le=MAX_NEARBY_LIMIT, description=(
        "Couriers asked of one FindNearbyDrivers (once more with 100 when all of them are ineligible)."))
    courier_speed_mps: float = Field(default=30 / 3.6, gt=0, le=10_000, description=(
        "Couriers' effective speed in metres per real second (a time-scaled profile multiplies it)."))
    detour_factor: float = Field(default=1.3, ge=1, le=5, description=(
        "Road distance over great-circle distance."))
    stop_s: float = Field(default=60.0, ge=0, le=3_600, description=(
        "Seconds a courier spends at each stop (the pickup at the counter, the handoff at the door) in batching's "
        "travel model; a batch has two stops more than a single trip."))
    max_dispatch_s: float = Field(default=60.0, gt=0, le=86_400, description=(
        "Seconds after an order became due after which, without a courier, it is released (NO_COURIER); an "
        "order gets at least one attempt first."))
    sweep_interval_s: float = Field(default=5.0, gt=0, le=3_600, description=(
        "Seconds between ListOpenOrders sweeps that queue PLACED orders dispatch does not hold."))
    free_grace_s: float = Field(default=2.0, ge=0, le=600, description=(
        "A courier with an assignment is free again when FindNearbyDrivers shows it AVAILABLE in a position "
        "received at least this many seconds after the assignment."))
    holding_ttl_s: float = Field(default=3_600.0, gt=0, le=86_400, description=(
        "Seconds after which an assignment dispatch remembers for a courier is forgotten (a courier gone offline "
        "mid-delivery)."))
    orders_timeout_ms: float = Field(default=2_000.0, gt=0, le=60_000, description=(
        "Deadline of each OrderService call (AssignCourier, ReleaseOrder, ListOpenOrders), in ms."))
    location_timeout_ms: float = Field(default=1_000.0, gt=0, le=60_000, description=(
        "Deadline of LocationService.FindNearbyDrivers, in ms."))
    max_queued: int = Field(default=100_000, ge=1, le=10_000_000, description=(
        "Most orders queued in all regions; DispatchOrder beyond it is RESOURCE_EXHAUSTED."))
    max_feeds: int = Field(default=10_000, ge=1, le=FEED_STREAM_SLOTS, description=(
        "Most ReceiveAssignments streams open at once; one more is RESOURCE_EXHAUSTED."))
    feed_queue_size: int = Field(default=16, ge=1, le=1_000, description=(
        "Assignments waiting on one courier's feed; a courier whose app does not read them gets no new order."))

    @model_validator(mode="after")
    def _radii(self) -> FoodDispatchSettings:
        if self.max_radius_m < self.search_radius_m:
            raise ValueError("max_radius_m must be at least search_radius_m")
        return self
