"""food-orders' own metrics (``casemesh_food_orders_*``).

- ``casemesh_food_orders_orders_total{state}``: orders moved into each state (PLACED when stored), counted once the
  change is on disk;
- ``casemesh_food_orders_open_orders`` (gauge): orders not over (PLACED, ASSIGNED, PICKED_UP);
- ``casemesh_food_orders_delivery_seconds`` (histogram): placed_at → delivered_at of each delivered order;
- ``casemesh_food_orders_on_time_total{outcome}``: delivered orders, ``on_time`` (delivered at or before the
  promise: services/food/contract.py ``on_time``) or ``late``: the server-side twin of the on-time SLO
  (harness/profiles/food.slo.yaml);
- ``casemesh_food_orders_lateness_seconds`` (histogram): how late each delivered order was, delivered_at −
  promised_at, 0 when on time (the promise is the ETA model's prediction plus its margin; buckets stay at 0 or above,
  so the exposition keeps its ``_sum`` and the OpenMetrics text stays parseable);
- ``casemesh_food_orders_promise_seconds`` (histogram): promised_at − placed_at of each order placed;
- ``casemesh_food_orders_eta_coefficient{feature}`` (gauge): the ETA regression's coefficients, set at start
  (``intercept`` in s, ``kitchen_wait_s`` and ``approach_s`` and ``courier_late_s`` in s/s, ``trip_m`` in s/m,
  ``margin_s`` in s);
- ``casemesh_food_orders_assign_total{outcome}``: AssignCourier calls: ``assigned`` (PLACED → ASSIGNED), ``retry``
  (already this courier's, in this batch), ``aborted`` (ABORTED: an order no longer PLACED), ``refused`` (any other
  error: the courier holds another batch, the batch full or picked up, an unknown order, a bad request, not
  written);
- ``casemesh_food_orders_assign_wait_seconds`` (histogram): placed_at → assigned_at of each order assigned;
- ``casemesh_food_orders_surge_multiplier`` (histogram): the surge multiplier of each order placed;
- ``casemesh_food_orders_surge_regions{multiplier}`` (gauge): regions at each multiplier after the last
  recomputation (regions with demand or supply);
- ``casemesh_food_orders_surge_recomputations_total`` and ``casemesh_food_orders_surge_errors_total`` (the supply
  could not be fetched from rides-location: the last one was kept);
- ``casemesh_food_orders_write_seconds`` (histogram): one group commit to the SQLite file, fsync included;
- ``casemesh_food_orders_watchers`` (gauge): WatchOrder streams open;
- ``casemesh_food_orders_dispatch_failures_total``: DispatchOrder calls that failed (the order was stored and
  answered; dispatch's recovery sweep finds it);
- ``casemesh_food_orders_tracking_errors_total``: TrackDriver streams that failed or ended while an order's watchers
  wanted the courier's positions (retried with backoff).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from .machine import STATES, state_name

ORDERS = Counter("casemesh_food_orders_orders", "Orders moved into each state (PLACED: stored), once on disk.",
                 ["state"])
OPEN_ORDERS = Gauge("casemesh_food_orders_open_orders", "Orders not over: PLACED, ASSIGNED, PICKED_UP.")
#: Seconds: real-world deliveries take 20 to 60 minutes; a profile's city running 30 times faster, a minute or two.
DELIVERY_BUCKETS = (5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1_200.0, 1_800.0,
                    2_700.0, 3_600.0, 7_200.0)
DELIVERY_SECONDS = Histogram("casemesh_food_orders_delivery_seconds", "Time from placing an order to its delivery, "
                             "in seconds.", buckets=DELIVERY_BUCKETS)
DELIVERY_OUTCOMES = ("on_time", "late")
ON_TIME = Counter("casemesh_food_orders_on_time", "Delivered orders, on time (at or before the promise) or late.",
                  ["outcome"])
#: Seconds, negative when early.
LATENESS_BUCKETS = (0.0, 1.0, 2.5, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_800.0)
LATENESS_SECONDS = Histogram("casemesh_food_orders_lateness_seconds", "How late each delivered order was: delivery "
                             "time minus the promised time, 0 when on time, in seconds.", buckets=LATENESS_BUCKETS)
PROMISE_SECONDS = Histogram("casemesh_food_orders_promise_seconds", "Promised delivery time minus placing time of "
                            "each order placed, in seconds.", buckets=DELIVERY_BUCKETS)
ETA_COEFFICIENT = Gauge("casemesh_food_orders_eta_coefficient", "The ETA regression's coefficients (fitted at start "
                        "on synthetic history) and its promise margin.", ["feature"])
ASSIGN_OUTCOMES = ("assigned", "retry", "aborted", "refused")
ASSIGN = Counter("casemesh_food_orders_assign", "AssignCourier calls by outcome (assigned, retry, aborted: an order "
                 "no longer PLACED, refused).", ["outcome"])
ASSIGN_WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1_800.0)
ASSIGN_WAIT_SECONDS = Histogram("casemesh_food_orders_assign_wait_seconds", "Time from placing an order to its "
                                "courier's assignment, in seconds.", buckets=ASSIGN_WAIT_BUCKETS)
SURGE_MULTIPLIER = Histogram("casemesh_food_orders_surge_multiplier", "Surge multiplier of each order placed.",
                             buckets=(1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 5.0))
SURGE_REGIONS = Gauge("casemesh_food_orders_surge_regions", "Surge regions at each multiplier after the last "
                      "recomputation.", ["multiplier"])
RECOMPUTATIONS = Counter("casemesh_food_orders_surge_recomputations", "Surge recomputations.")
SURGE_ERRORS = Counter("casemesh_food_orders_surge_errors", "Surge recomputations without fresh supply "
                       "(rides-location unreachable: the last supply was kept).")
#: Seconds: a group commit with fsync takes about a millisecond on an SSD, tens on a loaded disk.
WRITE_BUCKETS = (0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WRITE_SECONDS = Histogram("casemesh_food_orders_write_seconds", "One group commit of order changes to the SQLite "
                          "file, fsync included, in seconds.", buckets=WRITE_BUCKETS)
WATCHERS = Gauge("casemesh_food_orders_watchers", "WatchOrder streams open.")
DISPATCH_FAILURES = Counter("casemesh_food_orders_dispatch_failures", "DispatchOrder calls to food-dispatch that "
                            "failed (the order is dispatched after dispatch's recovery sweep).")
TRACKING_ERRORS = Counter("casemesh_food_orders_tracking_errors", "TrackDriver streams that failed or ended while an "
                          "order's watchers wanted the courier's positions (retried with backoff).")

_STATE = {state: ORDERS.labels(state_name(state)) for state in STATES}
_ASSIGN = {outcome: ASSIGN.labels(outcome) for outcome in ASSIGN_OUTCOMES}
_DELIVERY = {outcome: ON_TIME.labels(outcome) for outcome in DELIVERY_OUTCOMES}


def moved(state: int) -> None:
    """Count one order moved into ``state``."""
    _STATE[state].inc()


def assign(outcome: str) -> None:
    """Count one AssignCourier under ``outcome`` (one of :data:`ASSIGN_OUTCOMES`)."""
    _ASSIGN[outcome].inc()


def delivered(delivery_s: float, eta_error_s: float, on_time: bool) -> None:
    """One order delivered ``delivery_s`` seconds after it was placed, ``eta_error_s`` after its promise."""
    DELIVERY_SECONDS.observe(delivery_s)
    LATENESS_SECONDS.observe(max(0.0, eta_error_s))
    _DELIVERY["on_time" if on_time else "late"].inc()


def multiplier_label(multiplier: float) -> str:
    """The ``multiplier`` label of a multiplier: ``"1.0"``, ``"1.2"``, ``"2.5"``."""
    return f"{multiplier:.1f}" if round(multiplier, 1) == multiplier else f"{multiplier:g}"
