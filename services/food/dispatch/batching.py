"""The batching decision: should a due order join a courier who already holds one order? Pure functions.

Seed 001 #13 (shared/seeds/001_58dfc580020147d2.txt line 38), "Food Delivery | Regional dispatch ...
DoorDash/UberEats": DoorDash's dispatch batches two orders on one courier when the restaurants are close and neither
customer waits much longer for it. The model:

- Travel time between two points is the great-circle distance (``h3.great_circle_distance``) times ``detour_factor``
  (road over straight line) over ``speed_mps`` (:class:`TravelModel`), and every stop (a pickup at a counter, a
  handoff at a door) costs ``stop_s`` more: a batch has two stops more than one trip, so a model without them finds
  batches cheaper and sooner than they are. A courier reaching a restaurant before the food is ready waits for it
  (``ready_at``).
- **Separate trips** (:func:`solo`): the held order A's courier goes on as planned (``approach_s`` to A's
  restaurant, wait until ready, drive to A's dropoff); the new order B gets the nearest free courier (its approach to
  B's restaurant, wait, drive to B's dropoff). Their courier time is the sum of both couriers' time from now to their
  delivery.
- **Combined route** (:func:`combined`): A's courier → restaurant A → restaurant B (no leg when it is the same) →
  the dropoff nearer to restaurant B → the other dropoff. Its courier time is from now to the last delivery.
- **Decision** (:func:`decide`): batch when the restaurants are within ``batch_radius_m``, the combined route costs
  less courier time than the separate trips, neither order is delivered more than ``max_delay_s`` later than on
  its separate trip, and neither is pushed past the delivery time promised to its customer (``promised_at_s``) when
  its separate trip would have kept that promise: a batch may spend an order's slack, not break its promise. With no
  free courier for B at all, B's separate trip does not exist: the combined route saves a whole courier, and only A's
  delay and promise limit it.

Times are seconds on one clock (the dispatcher's: Unix seconds), distances metres, points ``(lat_deg, lng_deg)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import h3

Point = tuple[float, float]

#: Decision results (:attr:`Decision.result`).
BATCH = "batch"
FAR = "far"
NO_SAVING = "no_saving"
TOO_LATE = "too_late"


@dataclass(frozen=True)
class TravelModel:
    """``speed_mps`` (> 0, metres per second), ``detour_factor`` (>= 1) and ``stop_s`` (>= 0, seconds each pickup or
    delivery takes once there); ``ValueError`` otherwise."""

    speed_mps: float
    detour_factor: float
    stop_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.speed_mps > 0 and self.detour_factor >= 1 and self.stop_s >= 0):
            raise ValueError(f"need speed_mps > 0, detour_factor >= 1 and stop_s >= 0 "
                             f"(got {self.speed_mps}, {self.detour_factor}, {self.stop_s})")

    @staticmethod
    def distance_m(a: Point, b: Point) -> float:
        """Great-circle distance between two points, in metres."""
        return h3.great_circle_distance(a, b, unit="m")

    def travel_s(self, a: Point, b: Point) -> float:
        """Seconds to travel from ``a`` to ``b``."""
        return self.distance_m(a, b) * self.detour_factor / self.speed_mps


@dataclass(frozen=True)
class Job:
    """An order as batching sees it: where the food is, where it goes, when it is ready and when its delivery was
    promised (seconds; ``inf``: no promise)."""

    pickup: Point
    dropoff: Point
    ready_at_s: float
    promised_at_s: float = math.inf


@dataclass(frozen=True)
class Trip:
    """A planned trip: when each of its jobs is delivered (in the order the jobs were given), and the courier seconds
    it costs from now to its last delivery."""

    delivered_at_s: tuple[float, ...]
    courier_s: float


@dataclass(frozen=True)
class Decision:
    """The batching decision over one candidate courier.

    ``result`` is :data:`BATCH`, :data:`FAR`, :data:`NO_SAVING` or :data:`TOO_LATE` (a delay beyond
    ``max_delay_s``, or a promise the separate trip would keep broken); ``saved_s`` the courier seconds
    the combined route saves over the separate trips (``inf`` when B has no free courier; ``nan`` when ``far``);
    ``held_delay_s`` / ``new_delay_s`` how much later each order is delivered on the combined route than on its
    separate trip (``-inf`` for B without a free courier).
    """

    result: str
    saved_s: float = math.nan
    held_delay_s: float = math.nan
    new_delay_s: float = math.nan

    @property
    def batch(self) -> bool:
        """True when the order should join the courier's batch."""
        return self.result == BATCH


def solo(model: TravelModel, now_s: float, approach_s: float, job: Job) -> Trip:
    """One courier, ``approach_s`` seconds from the restaurant, delivering ``job`` alone."""
    picked_up_s = max(now_s + approach_s, job.ready_at_s) + model.stop_s
    delivered_s = picked_up_s + model.travel_s(job.pickup, job.dropoff) + model.stop_s
    return Trip((delivered_s,), delivered_s - now_s)


def combined(model: TravelModel, now_s: float, approach_s: float, held: Job, new: Job) -> Trip:
    """The courier of ``held`` (``approach_s`` seconds from its restaurant) picking up ``held``, then ``new``, then
    delivering the dropoff nearer to ``new``'s restaurant first. ``delivered_at_s`` is (held's, new's)."""
    stop_s = model.stop_s
    picked_held_s = max(now_s + approach_s, held.ready_at_s) + stop_s
    picked_new_s = max(picked_held_s + model.travel_s(held.pickup, new.pickup), new.ready_at_s) + stop_s
    to_held_s = model.travel_s(new.pickup, held.dropoff)
    to_new_s = model.travel_s(new.pickup, new.dropoff)
    if to_held_s <= to_new_s:
        held_s = picked_new_s + to_held_s + stop_s
        new_s = held_s + model.travel_s(held.dropoff, new.dropoff) + stop_s
    else:
        new_s = picked_new_s + to_new_s + stop_s
        held_s = new_s + model.travel_s(new.dropoff, held.dropoff) + stop_s
    return Trip((held_s, new_s), max(held_s, new_s) - now_s)


def decide(model: TravelModel, now_s: float, held: Job, held_approach_s: float, new: Job,
           free_approach_s: float | None, *, batch_radius_m: float, max_delay_s: float) -> Decision:
    """Batch ``new`` onto the courier of ``held`` or not.

    ``held_approach_s``: seconds until that courier reaches ``held``'s restaurant (0 when there); ``free_approach_s``:
    seconds until the nearest free courier reaches ``new``'s restaurant (``None``: there is none).
    """
    if model.distance_m(held.pickup, new.pickup) > batch_radius_m:
        return Decision(FAR)
    together = combined(model, now_s, held_approach_s, held, new)
    held_alone = solo(model, now_s, held_approach_s, held)
    held_delay_s = together.delivered_at_s[0] - held_alone.delivered_at_s[0]
    breaks_promise = _breaks_promise(held, held_alone.delivered_at_s[0], together.delivered_at_s[0])
    if free_approach_s is None:
        saved_s, new_delay_s = math.inf, -math.inf
    else:
        new_alone = solo(model, now_s, free_approach_s, new)
        saved_s = held_alone.courier_s + new_alone.courier_s - together.courier_s
        new_delay_s = together.delivered_at_s[1] - new_alone.delivered_at_s[0]
        breaks_promise = breaks_promise or _breaks_promise(new, new_alone.delivered_at_s[0], together.delivered_at_s[1])
    if saved_s <= 0:
        return Decision(NO_SAVING, saved_s, held_delay_s, new_delay_s)
    if held_delay_s > max_delay_s or new_delay_s > max_delay_s or breaks_promise:
        return Decision(TOO_LATE, saved_s, held_delay_s, new_delay_s)
    return Decision(BATCH, saved_s, held_delay_s, new_delay_s)


def _breaks_promise(job: Job, alone_s: float, together_s: float) -> bool:
    """True when the combined route delivers ``job`` after its promise and its separate trip would not have."""
    return alone_s <= job.promised_at_s < together_s
