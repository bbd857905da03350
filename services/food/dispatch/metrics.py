"""food-dispatch's own metrics (``casemesh_food_dispatch_*``).

- ``casemesh_food_dispatch_decisions_total{outcome}``: how a due order's dispatch step ended: ``assigned_new`` (a
  courier of its own, a new batch), ``batched`` (joined a courier's batch), ``aborted`` (AssignCourier ABORTED or
  NOT_FOUND: the order was cancelled or is someone else's; dropped, never given to another courier), ``refused``
  (AssignCourier FAILED_PRECONDITION: the courier holds another batch, or its batch was picked up; the next courier
  is tried), ``released`` (no courier within ``max_dispatch_s``: ReleaseOrder, CANCEL_REASON_NO_COURIER),
  ``unavailable`` (an order-service call failed otherwise: retried next tick). The batched share of assignments is
  ``batched / (assigned_new + batched)``: what the ``batching`` switch moves;
- ``casemesh_food_dispatch_decision_seconds`` (histogram): from the moment an order became due
  (``max(placed_at, ready_at - dispatch_lead_s)``) to its successful AssignCourier: the server-side twin of the case
  study's "dispatch decision within a bound" SLO;
- ``casemesh_food_dispatch_batch_evaluations_total{result}``: batching decisions (:mod:`.batching`) over a candidate
  courier whose restaurant is within ``batch_radius_m``: ``batch`` (worth it; the best of them is tried),
  ``no_saving`` (two couriers cost less), ``too_late`` (an order would be delayed beyond ``max_batch_delay_s``, or past a promise its own trip keeps);
- ``casemesh_food_dispatch_courier_seconds_saved_total``: courier seconds the batches made were predicted to save
  (separate trips minus the combined route);
- ``casemesh_food_dispatch_queued_orders`` (gauge): orders queued in all regions (due or not, in flight included);
- ``casemesh_food_dispatch_regions`` (gauge): regions with a dispatcher task;
- ``casemesh_food_dispatch_tick_seconds`` (histogram): one pass of one region's dispatcher over its due orders;
- ``casemesh_food_dispatch_couriers_holding`` (gauge): couriers dispatch knows to hold an assignment;
- ``casemesh_food_dispatch_feeds`` (gauge): ReceiveAssignments streams open;
- ``casemesh_food_dispatch_feed_drops_total``: assignments made that could not be put on the courier's feed (it
  closed, or its queue was full: the courier gets its batch when it reconnects);
- ``casemesh_food_dispatch_search_seconds`` (histogram): one LocationService.FindNearbyDrivers call;
- ``casemesh_food_dispatch_search_errors_total``: FindNearbyDrivers calls that failed (the order waits a tick);
- ``casemesh_food_dispatch_sweep_recovered_total``: PLACED orders a ListOpenOrders sweep queued (dispatch had not
  been told, or had restarted);
- ``casemesh_food_dispatch_sweep_errors_total``: sweeps that could not list the open orders (retried next sweep).

Times are real seconds (a time-scaled profile compresses a city's minutes into them).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DECISION_OUTCOMES = ("assigned_new", "batched", "aborted", "refused", "released", "unavailable")
DECISIONS = Counter("casemesh_food_dispatch_decisions", "Dispatch steps of due orders by outcome (assigned_new, "
                    "batched, aborted, refused, released, unavailable).", ["outcome"])
DECISION_SECONDS = Histogram("casemesh_food_dispatch_decision_seconds", "From an order becoming due to its successful "
                             "AssignCourier, in seconds.",
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0))
BATCH_RESULTS = ("batch", "no_saving", "too_late")
BATCH_EVALUATIONS = Counter("casemesh_food_dispatch_batch_evaluations", "Batching decisions over a candidate courier "
                            "with a restaurant nearby (batch, no_saving, too_late).", ["result"])
SECONDS_SAVED = Counter("casemesh_food_dispatch_courier_seconds_saved", "Courier seconds the batches made were "
                        "predicted to save.")
QUEUED = Gauge("casemesh_food_dispatch_queued_orders", "Orders queued in all regions.")
REGIONS = Gauge("casemesh_food_dispatch_regions", "Regions with a dispatcher task.")
TICK_SECONDS = Histogram("casemesh_food_dispatch_tick_seconds", "One pass of one region's dispatcher, in seconds.",
                         buckets=(0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0))
HOLDING = Gauge("casemesh_food_dispatch_couriers_holding", "Couriers dispatch knows to hold an assignment.")
FEEDS = Gauge("casemesh_food_dispatch_feeds", "ReceiveAssignments streams open.")
FEED_DROPS = Counter("casemesh_food_dispatch_feed_drops", "Assignments that could not be put on the courier's feed.")
SEARCH_SECONDS = Histogram("casemesh_food_dispatch_search_seconds", "One LocationService.FindNearbyDrivers call, in "
                           "seconds.", buckets=(0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.0))
SEARCH_ERRORS = Counter("casemesh_food_dispatch_search_errors", "FindNearbyDrivers calls that failed.")
SWEEP_RECOVERED = Counter("casemesh_food_dispatch_sweep_recovered", "PLACED orders a ListOpenOrders sweep queued.")
SWEEP_ERRORS = Counter("casemesh_food_dispatch_sweep_errors", "Sweeps that could not list the open orders.")

_DECISION = {outcome: DECISIONS.labels(outcome) for outcome in DECISION_OUTCOMES}
_BATCH = {result: BATCH_EVALUATIONS.labels(result) for result in BATCH_RESULTS}


def decision(outcome: str) -> None:
    """Count one dispatch step ended under ``outcome`` (one of :data:`DECISION_OUTCOMES`)."""
    _DECISION[outcome].inc()


def batch_evaluation(result: str) -> None:
    """Count one batching decision ending in ``result`` (one of :data:`BATCH_RESULTS`)."""
    _BATCH[result].inc()
