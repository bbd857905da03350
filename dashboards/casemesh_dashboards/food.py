"""Food delivery: deliveries against the promise of the order service's ETA model, regional dispatch against its 5 s
decision bound (batching two orders on one courier, the A/B switch), the order state machine and the atomic courier
assignment, the kitchens' queues, surge pricing, and the couriers' positions through the reused ride-sharing location
service.

Case study: seed 001 #13, shared/seeds/001_58dfc580020147d2.txt line 38 ("| 13 | Food Delivery | Regional dispatch, ML
ETA, adaptive telemetry, surge pricing | 10M orders/day, DoorDash/UberEats |"); contracts in protos/casemesh/food/v1/,
SLOs in harness/profiles/food.slo.yaml (the server-side twins drawn here: dispatch-time-server, on-time-server,
order-availability-server, courier-tracking-delay-location; their targets are read from that file when the dashboard is
built).

Service metrics, as the food-delivery services expose them: ``casemesh_food_restaurants_restaurants``,
``casemesh_food_restaurants_created_total``, ``casemesh_food_restaurants_orders_prepared_total``,
``casemesh_food_restaurants_orders_repeated_total``, ``casemesh_food_restaurants_kitchen_wait_seconds`` (a new order's
wait for a free kitchen slot; 0, the ``le="0.0"`` bucket, when one was free), ``casemesh_food_restaurants_prep_seconds``,
``casemesh_food_restaurants_kitchen_slots_busy``, ``casemesh_food_restaurants_orders_preparing``,
``casemesh_food_restaurants_commit_seconds``, ``casemesh_food_restaurants_load_seconds`` (food-restaurants,
services/food/restaurants/metrics.py); ``casemesh_food_orders_orders_total{state}``,
``casemesh_food_orders_open_orders``, ``casemesh_food_orders_delivery_seconds``,
``casemesh_food_orders_on_time_total{outcome}`` (``on_time``, ``late``: the twin of on-time),
``casemesh_food_orders_lateness_seconds`` (delivered minus promised, 0 when on time),
``casemesh_food_orders_promise_seconds``, ``casemesh_food_orders_eta_coefficient{feature}``,
``casemesh_food_orders_assign_total{outcome}`` (``assigned``, ``retry``, ``aborted``, ``refused``),
``casemesh_food_orders_assign_wait_seconds``, ``casemesh_food_orders_surge_multiplier``,
``casemesh_food_orders_surge_regions{multiplier}``, ``casemesh_food_orders_surge_recomputations_total``,
``casemesh_food_orders_surge_errors_total``, ``casemesh_food_orders_write_seconds``, ``casemesh_food_orders_watchers``,
``casemesh_food_orders_dispatch_failures_total``, ``casemesh_food_orders_tracking_errors_total`` (food-orders,
services/food/orders/metrics.py); ``casemesh_food_dispatch_decisions_total{outcome}`` (``assigned_new``, ``batched``,
``aborted``, ``refused``, ``released``, ``unavailable``), ``casemesh_food_dispatch_decision_seconds`` (due to assigned:
the twin of dispatch-time), ``casemesh_food_dispatch_batch_evaluations_total{result}`` (``batch``, ``no_saving``,
``too_late``), ``casemesh_food_dispatch_courier_seconds_saved_total``, ``casemesh_food_dispatch_queued_orders``,
``casemesh_food_dispatch_regions``, ``casemesh_food_dispatch_tick_seconds``, ``casemesh_food_dispatch_couriers_holding``,
``casemesh_food_dispatch_feeds``, ``casemesh_food_dispatch_feed_drops_total``, ``casemesh_food_dispatch_search_seconds``,
``casemesh_food_dispatch_search_errors_total``, ``casemesh_food_dispatch_sweep_recovered_total``,
``casemesh_food_dispatch_sweep_errors_total`` (food-dispatch, services/food/dispatch/metrics.py); of the reused
rides-location (services/rides/location/metrics.py), whose drivers are the couriers:
``casemesh_rides_location_update_delay_seconds`` (the twin of tracking-delay), ``casemesh_rides_location_drivers{status}``,
``casemesh_rides_location_updates_total``, ``casemesh_rides_location_streams``, ``casemesh_rides_location_trackers``;
and the runtime's ``grpc_server_handled_total`` and ``grpc_server_handling_seconds`` of the food services. Only the
gRPC histograms carry exemplars.

``FoodDispatchService/ReceiveAssignments`` (a courier's assignment feed, open for its shift) and
``OrderService/WatchOrder`` (a customer following an order to the door) are streams: their handling time is that
length and their status how they ended. They are left out of the gRPC duration and error panels.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, table_panel, timeseries_panel, within,
)

UID = "casemesh-food"
ORDERS = "casemesh.food.v1.OrderService"
HANDLING = "grpc_server_handling_seconds"
#: The food profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"food{SLO_FILE_SUFFIX}"
#: dispatch-time-server (food.slo.yaml): due orders assigned within 5 s, a bucket of
#: casemesh_food_dispatch_decision_seconds.
DECISION = "casemesh_food_dispatch_decision_seconds"
DECISION_S = 5.0
#: on-time-server: delivered orders counted on_time over all of them (casemesh_food_orders_on_time_total).
ON_TIME = "casemesh_food_orders_on_time_total"
#: courier-tracking-delay-location: courier positions received within 1 s of their sent_at, a bucket of
#: casemesh_rides_location_update_delay_seconds.
POSITION_DELAY = "casemesh_rides_location_update_delay_seconds"
POSITION_DELAY_S = 1.0
JOB = 'job=~"$job"'
FOOD_SERVICES = r'grpc_service=~"casemesh\\.food\\.v1\\..+"'
#: The food services' jobs and the location service's (the couriers' positions: rides-location, reused).
FOOD_JOBS = (r'{__name__="grpc_server_handled_total", '
             r'grpc_service=~"casemesh\\.food\\.v1\\..+|casemesh\\.rides\\.v1\\.LocationService"}')
#: A courier's assignment feed lasts its shift, a customer's WatchOrder the order; their status is how they ended.
NOT_STREAMS = 'grpc_method!~"ReceiveAssignments|WatchOrder"'


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    on_time_target = target["on-time-server"]
    decision_target = target["dispatch-time-server"]
    placed_target = target["order-availability-server"]
    position_target = target["courier-tracking-delay-location"]
    jobs = selector(JOB)
    delivered = selector(JOB, 'outcome="on_time"')
    places = selector(JOB, f'grpc_service="{ORDERS}"', 'grpc_method="PlaceOrder"')
    places_ok = selector(JOB, f'grpc_service="{ORDERS}"', 'grpc_method="PlaceOrder"', 'grpc_code="OK"')
    decisions = "casemesh_food_dispatch_decisions_total"
    batched = selector(JOB, 'outcome="batched"')
    assignments = selector(JOB, 'outcome=~"assigned_new|batched"')
    board = (
        new_dashboard(UID, "casemesh / food delivery",
                      "The food-delivery case study (DoorDash / Uber Eats): deliveries against the promise of the "
                      "order service's ETA model, regional dispatch against its 5 s decision bound and the batching "
                      "A/B, the order state machine and the atomic courier assignment (no order dispatched twice), "
                      "the kitchens, surge pricing, and the couriers' positions through the ride-sharing location "
                      "service.",
                      ["food"])
        .with_variable(query_variable("job", "Job", f"label_values({FOOD_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Delivery: {on_time_target:.0%} of orders delivered by the time promised"))
        .with_panel(timeseries_panel(
            "Delivered on time",
            f"Delivered orders the order service counted on time (delivered at or before the promise it made at "
            f"PlaceOrder) over all delivered orders (casemesh_food_orders_on_time_total by outcome): the SLO "
            f"on-time-server of food.slo.yaml (the server-side twin of on-time); the dashed line is its target "
            f"{on_time_target:g}.", "percentunit",
            [query(f"{rate(ON_TIME, delivered)} / {rate(ON_TIME, jobs)}", "on time")],
            width=6, threshold_line=(on_time_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "On time over the range",
            f"Share of deliveries on time over the selected time range, against {on_time_target:g} "
            "(on-time-server).", "percentunit",
            [query(f"sum(increase({ON_TIME}{delivered}[$__range])) / sum(increase({ON_TIME}{jobs}[$__range]))",
                   instant=True)],
            width=4, height=8, base="red", steps=((on_time_target, "green"),), decimals=3))
        .with_panel(latency_panel(
            "Delivery time",
            "From placing an order to its delivery, once per delivered order (casemesh_food_orders_delivery_seconds): "
            "the kitchen, the wait for a courier, the pickup and the trip. Real seconds: a profile running the city "
            "faster than real time (time_scale) compresses its minutes into them.",
            "casemesh_food_orders_delivery_seconds", jobs, (), "", width=7))
        .with_panel(timeseries_panel(
            "Lateness",
            "How late each delivered order was: delivered minus promised time, 0 when on time "
            "(casemesh_food_orders_lateness_seconds), 90th and 99th percentile. The promise is the ETA regression's "
            "prediction plus a margin (its residuals' promise_quantile on the synthetic history): while the city runs "
            "as the model says, nine orders in ten are on time and the 90th percentile stays near 0; a shortage of "
            "couriers the model does not foresee lifts it.", "s",
            refs([(quantile(0.9, "casemesh_food_orders_lateness_seconds", jobs), "p90"),
                  (quantile(0.99, "casemesh_food_orders_lateness_seconds", jobs), "p99")]), width=7))
        .with_panel(timeseries_panel(
            "Promised delivery time",
            "Promised minus placing time of each order placed (casemesh_food_orders_promise_seconds), median, 99th "
            "percentile and mean: the ETA model's prediction from the kitchen's ready time, the trip and the "
            "region's courier supply, plus its margin.", "s",
            refs([(quantile(0.5, "casemesh_food_orders_promise_seconds", jobs), "p50"),
                  (quantile(0.99, "casemesh_food_orders_promise_seconds", jobs), "p99"),
                  (mean("casemesh_food_orders_promise_seconds", jobs), "mean")]), width=8))
        .with_panel(table_panel(
            "ETA model",
            "The ETA regression fitted at the order service's start on synthetic delivery history "
            "(casemesh_food_orders_eta_coefficient; services/food/orders/eta.py): the intercept and margin_s in s, "
            "trip_m in s/m, kitchen_wait_s, approach_s and courier_late_s in s/s.",
            [query(f"max by (feature) (casemesh_food_orders_eta_coefficient{jobs})", "coefficient", "A", instant=True,
                   table_format=True)],
            width=8, height=8, rename={"Value #A": "coefficient"}))
        .with_panel(timeseries_panel(
            "PlaceOrder answered OK",
            f"OrderService/PlaceOrder calls answered OK over all of them: the SLO order-availability-server (the "
            f"harness sends only valid orders to seeded restaurants, so any other answer is a failure); the dashed "
            f"line is its target {placed_target:g}.", "percentunit",
            [query(f"{rate('grpc_server_handled_total', places_ok)} / {rate('grpc_server_handled_total', places)}",
                   "answered OK")], width=8, threshold_line=(placed_target, "red"), max_value=1))
    )
    board = (
        board.with_row(Row(f"Dispatch: {decision_target:.0%} of due orders assigned within {DECISION_S:g} s, "
                           f"two to a courier when that saves courier time"))
        .with_panel(latency_panel(
            f"Decision time vs {DECISION_S:g} s",
            "From an order becoming due in its region's queue (its food ready within dispatch_lead_s) to its "
            "courier's AssignCourier succeeding, once per assigned order (casemesh_food_dispatch_decision_seconds): "
            "the ticks it waited, the courier search, batching and the compare-and-set. The dashed line is the SLO "
            "dispatch-time-server of food.slo.yaml (the server-side twin of dispatch-time).", DECISION, jobs, (), "",
            width=6, threshold_s=DECISION_S))
        .with_panel(timeseries_panel(
            f"Decided within {DECISION_S:g} s",
            f"Share of assigned orders assigned within {DECISION_S:g} s of being due (le=\"{le(DECISION_S)}\" bucket "
            f"over the count of casemesh_food_dispatch_decision_seconds: dispatch-time-server); the dashed line is "
            f"its target {decision_target:g}.", "percentunit",
            [query(within(DECISION, jobs, DECISION_S), f"within {DECISION_S:g} s")],
            width=6, threshold_line=(decision_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Decisions by outcome",
            "Dispatch steps of due orders per second by how they ended (casemesh_food_dispatch_decisions_total): "
            "assigned_new (a courier of its own), batched (joined a courier's batch), aborted (AssignCourier "
            "ABORTED or NOT_FOUND: cancelled, or another courier has it: never given to a second courier), refused "
            "(FAILED_PRECONDITION: the courier holds another batch, or its batch was picked up; the next courier is "
            "tried), released (no courier within max_dispatch_s: CANCEL_REASON_NO_COURIER), unavailable (the order "
            "service did not answer: the same call next tick).", "ops",
            [query(rate(decisions, jobs, ("outcome",)), "{{outcome}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Batched share of assignments",
            "Orders that joined a courier's batch over all orders assigned (batched / (assigned_new + batched)): what "
            "the A/B switch food-dispatch.batching moves (0 with it off).", "percentunit",
            [query(f"{rate(decisions, batched)} / {rate(decisions, assignments)}", "batched")],
            width=6, max_value=1))
        .with_panel(timeseries_panel(
            "Courier time saved by batching",
            "Courier seconds the batches made were predicted to save per second, separate trips minus the combined "
            "route (casemesh_food_dispatch_courier_seconds_saved_total), and per batch (over the batched decisions; "
            "a batch made when no courier was free for the second order saves a whole courier and is not counted).",
            "s",
            refs([(rate("casemesh_food_dispatch_courier_seconds_saved_total", jobs), "saved per second"),
                  (f"{rate('casemesh_food_dispatch_courier_seconds_saved_total', jobs)} / {rate(decisions, batched)}",
                   "saved per batch")]), width=6))
        .with_panel(timeseries_panel(
            "Batch evaluations",
            "Batching decisions per second over a courier holding one order from a restaurant within batch_radius_m "
            "(casemesh_food_dispatch_batch_evaluations_total): batch (worth it: the best is tried), no_saving (two "
            "couriers cost less), too_late (an order would be delayed beyond max_batch_delay_s, or past a promise its "
            "own trip keeps).", "ops",
            [query(rate("casemesh_food_dispatch_batch_evaluations_total", jobs, ("result",)), "{{result}}")],
            width=6, stacked=True))
        .with_panel(latency_panel(
            "Placed to assigned",
            "From placing an order to its courier's assignment (casemesh_food_orders_assign_wait_seconds): mostly "
            "the kitchen's preparation, by design (just-in-time dispatch waits until the food is nearly ready), "
            "then the decision time.", "casemesh_food_orders_assign_wait_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(latency_panel(
            "Courier search",
            "One LocationService/FindNearbyDrivers call as dispatch sees it (casemesh_food_dispatch_search_seconds): "
            "the AVAILABLE couriers around a due order's restaurant.", "casemesh_food_dispatch_search_seconds", jobs,
            (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(latency_panel(
            "Dispatcher tick",
            "One pass of one region's dispatcher over its due orders (casemesh_food_dispatch_tick_seconds): regions "
            "run on their own, a slow pass delays only its region's next orders.",
            "casemesh_food_dispatch_tick_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Queued orders and regions",
            "Orders in the regions' queues (casemesh_food_dispatch_queued_orders: due or not, an assignment in "
            "flight included), and regions with a dispatcher task (casemesh_food_dispatch_regions: H3 cells at "
            "region_resolution).", "short",
            refs([(f"sum(casemesh_food_dispatch_queued_orders{jobs})", "queued orders"),
                  (f"sum(casemesh_food_dispatch_regions{jobs})", "regions")]), width=6))
        .with_panel(timeseries_panel(
            "Courier feeds and couriers holding",
            "ReceiveAssignments feeds open (casemesh_food_dispatch_feeds: a courier without one gets no order), and "
            "couriers dispatch knows to hold an assignment (casemesh_food_dispatch_couriers_holding: until the "
            "location service shows them AVAILABLE again).", "short",
            refs([(f"sum(casemesh_food_dispatch_feeds{jobs})", "feeds"),
                  (f"sum(casemesh_food_dispatch_couriers_holding{jobs})", "couriers holding")]), width=6))
        .with_panel(timeseries_panel(
            "Sweep recovered and failures",
            "PLACED orders a ListOpenOrders sweep queued per second (casemesh_food_dispatch_sweep_recovered_total: "
            "dispatch restarted, or a DispatchOrder never arrived), sweeps that could not list them, courier "
            "searches that failed (the order waits a tick), and assignments that could not be put on the courier's "
            "feed (it gets its batch when it reconnects).", "ops",
            refs([(rate("casemesh_food_dispatch_sweep_recovered_total", jobs), "recovered"),
                  (rate("casemesh_food_dispatch_sweep_errors_total", jobs), "sweep errors"),
                  (rate("casemesh_food_dispatch_search_errors_total", jobs), "search errors"),
                  (rate("casemesh_food_dispatch_feed_drops_total", jobs), "feed drops")]), width=6))
    )
    board = (
        board.with_row(Row("Orders: the state machine and the atomic assignment (no order dispatched twice)"))
        .with_panel(timeseries_panel(
            "Transitions by state",
            "Orders entering each state per second, once on disk (casemesh_food_orders_orders_total): PLACED, "
            "ASSIGNED, PICKED_UP, DELIVERED, CANCELLED (by the customer, or released for want of a courier).", "ops",
            [query(rate("casemesh_food_orders_orders_total", jobs, ("state",)), "{{state}}")], width=6))
        .with_panel(timeseries_panel(
            "AssignCourier by outcome",
            "AssignCourier calls per second (casemesh_food_orders_assign_total): assigned (PLACED to ASSIGNED, all "
            "the orders of the call or none), retry (already this courier's in this batch), aborted (ABORTED: the "
            "order is no longer PLACED, a race lost: the order was not dispatched twice), refused (the courier holds "
            "another batch, the batch is full or picked up, a bad request, not written).", "ops",
            [query(rate("casemesh_food_orders_assign_total", jobs, ("outcome",)), "{{outcome}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Open orders and watchers",
            "Orders not over (casemesh_food_orders_open_orders: PLACED, ASSIGNED, PICKED_UP), and WatchOrder "
            "streams open (casemesh_food_orders_watchers: customers following their order).", "short",
            refs([(f"sum(casemesh_food_orders_open_orders{jobs})", "open orders"),
                  (f"sum(casemesh_food_orders_watchers{jobs})", "watchers")]), width=4))
        .with_panel(latency_panel(
            "Durable write",
            "One group commit of order changes to the SQLite file, fsync included "
            "(casemesh_food_orders_write_seconds): every order, assignment and transition is on disk before it is "
            "answered.", "casemesh_food_orders_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=4))
        .with_panel(timeseries_panel(
            "Tracking and dispatch failures",
            "TrackDriver streams that failed or ended while a customer watched its courier "
            "(casemesh_food_orders_tracking_errors_total: followed again with backoff), and DispatchOrder calls that "
            "failed after an order was stored (casemesh_food_orders_dispatch_failures_total: dispatch's sweep "
            "finds the order).", "ops",
            refs([(rate("casemesh_food_orders_tracking_errors_total", jobs), "tracking errors"),
                  (rate("casemesh_food_orders_dispatch_failures_total", jobs), "dispatch failures")]), width=4))
    )
    board = (
        board.with_row(Row("Kitchens: preparation and the queue for a slot"))
        .with_panel(timeseries_panel(
            "Orders prepared",
            "Orders queued in a kitchen per second by PrepareOrder (casemesh_food_restaurants_orders_prepared_total), "
            "and PrepareOrder retries answered from the memory of recent orders (..._orders_repeated_total: the same "
            "ready time, nothing queued twice).", "ops",
            refs([(rate("casemesh_food_restaurants_orders_prepared_total", jobs), "prepared"),
                  (rate("casemesh_food_restaurants_orders_repeated_total", jobs), "repeated")]), width=6))
        .with_panel(latency_panel(
            "Kitchen wait",
            "How long a new order waits for a free slot of its kitchen (casemesh_food_restaurants_kitchen_wait_seconds: "
            "the queue ahead of it, kitchen_slots orders at once; 0 when a slot was free).",
            "casemesh_food_restaurants_kitchen_wait_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Orders that waited for a slot",
            f"Share of new orders that found every slot of their kitchen busy (one minus the le=\"{le(0.0)}\" bucket "
            f"over the count of casemesh_food_restaurants_kitchen_wait_seconds).", "percentunit",
            [query(f"1 - ({within('casemesh_food_restaurants_kitchen_wait_seconds', jobs, 0.0)})", "waited")],
            width=4, max_value=1))
        .with_panel(latency_panel(
            "Preparation time",
            "An order's preparation once it has a slot (casemesh_food_restaurants_prep_seconds): prep_base_s + "
            "prep_per_item_s x items, times the order's jitter.", "casemesh_food_restaurants_prep_seconds", jobs, (),
            "", quantiles=(0.5, 0.99), width=4))
        .with_panel(timeseries_panel(
            "Busy slots and orders preparing",
            "Kitchen slots preparing an order now and orders in the kitchens not yet ready (preparing or waiting for a "
            "slot), over every kitchen (casemesh_food_restaurants_kitchen_slots_busy, ..._orders_preparing; "
            "refreshed every sweep_interval_s).", "short",
            refs([(f"sum(casemesh_food_restaurants_kitchen_slots_busy{jobs})", "busy slots"),
                  (f"sum(casemesh_food_restaurants_orders_preparing{jobs})", "orders preparing")]), width=4))
        .with_panel(timeseries_panel(
            "Restaurants",
            "Restaurants stored (casemesh_food_restaurants_restaurants) and restaurants created per second by "
            "CreateRestaurants (new ones only, counted once on disk).", "short",
            refs([(f"sum(casemesh_food_restaurants_restaurants{jobs})", "restaurants"),
                  (rate("casemesh_food_restaurants_created_total", jobs), "created/s")]), width=10))
        .with_panel(latency_panel(
            "Restaurants group commit",
            "One group commit of restaurants to the SQLite file, fsync included "
            "(casemesh_food_restaurants_commit_seconds).", "casemesh_food_restaurants_commit_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=10))
        .with_panel(stat_panel(
            "Load time at start",
            "How long the last start of food-restaurants took to read every restaurant from its SQLite file "
            "(casemesh_food_restaurants_load_seconds).", "s",
            [query(f"max(casemesh_food_restaurants_load_seconds{jobs})")], width=4, height=8))
    )
    board = (
        board.with_row(Row("Surge: open orders over available couriers per region"))
        .with_panel(timeseries_panel(
            "Regions by surge multiplier",
            "Surge regions (H3 cells at surge_resolution with open orders or AVAILABLE couriers) at each step of the "
            "ladder after the last recomputation (casemesh_food_orders_surge_regions; every surge_interval_s: open "
            "PLACED and ASSIGNED orders over AVAILABLE couriers under 0.5 → 1.0x, under 1 → 1.2x, under 2 → 1.5x, "
            "under 3 → 2.0x, else 2.5x).", "short",
            [query(f"sum by (multiplier) (casemesh_food_orders_surge_regions{jobs})", "{{multiplier}}x")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Order surge multiplier",
            "Surge multiplier of the orders placed (their delivery fee is the base fee times it), mean and 99th "
            "percentile (casemesh_food_orders_surge_multiplier).", "short",
            refs([(mean("casemesh_food_orders_surge_multiplier", jobs), "mean"),
                  (quantile(0.99, "casemesh_food_orders_surge_multiplier", jobs), "p99")]), width=8))
        .with_panel(timeseries_panel(
            "Recomputations and errors",
            "Surge recomputations per second (casemesh_food_orders_surge_recomputations_total) and those without "
            "fresh supply (casemesh_food_orders_surge_errors_total: rides-location's CountAvailableDrivers "
            "unreachable, the last supply kept).", "ops",
            refs([(rate("casemesh_food_orders_surge_recomputations_total", jobs), "recomputations"),
                  (rate("casemesh_food_orders_surge_errors_total", jobs), "errors")]), width=8))
    )
    board = (
        board.with_row(Row(f"Couriers: positions through rides-location, {position_target:.0%} within "
                           f"{POSITION_DELAY_S:g} s"))
        .with_panel(latency_panel(
            f"Position delay vs {POSITION_DELAY_S:g} s",
            "From a courier's app taking a position (sent_at_unix_ms) to the location service receiving it "
            "(casemesh_rides_location_update_delay_seconds). The dashed line is the SLO tracking-delay-location of "
            "food.slo.yaml (the first hop of courier-tracking-delay: the TrackDriver and WatchOrder hops are not in it).",
            POSITION_DELAY, jobs, (), "", width=6, threshold_s=POSITION_DELAY_S))
        .with_panel(timeseries_panel(
            f"Positions within {POSITION_DELAY_S:g} s",
            f"Share of courier positions received within {POSITION_DELAY_S:g} s of their sent_at "
            f"(le=\"{le(POSITION_DELAY_S)}\" bucket over the count of casemesh_rides_location_update_delay_seconds: "
            f"courier-tracking-delay-location); the dashed line is its target {position_target:g}.", "percentunit",
            [query(within(POSITION_DELAY, jobs, POSITION_DELAY_S), f"within {POSITION_DELAY_S:g} s")],
            width=6, threshold_line=(position_target, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Couriers online by status",
            "Couriers (drivers of the location service) in its index by the status they last reported "
            "(casemesh_rides_location_drivers): available (no order: found by dispatch, counted as surge supply), "
            "busy (holding an order).", "short",
            [query(f"sum by (status) (casemesh_rides_location_drivers{jobs})", "{{status}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Positions, streams and trackers",
            "Courier positions received per second (casemesh_rides_location_updates_total; adaptive telemetry: more "
            "often while holding an order), ReportLocations streams open (one per online courier) and TrackDriver "
            "streams open (the order service following the couriers of watched orders).", "short",
            refs([(rate("casemesh_rides_location_updates_total", jobs), "positions/s"),
                  (f"sum(casemesh_rides_location_streams{jobs})", "courier streams"),
                  (f"sum(casemesh_rides_location_trackers{jobs})", "trackers")]), width=6))
    )
    calls = selector(JOB, FOOD_SERVICES)
    board = (
        board.with_row(Row("gRPC per food service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each food method. ReceiveAssignments and WatchOrder count "
            "streams when they end; PrepareOrder, DispatchOrder, AssignCourier, ListOpenOrders and ReleaseOrder are "
            "the services' calls to each other.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}")], width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists); "
            "the streams are left out. AssignCourier's Aborted is a race lost (the order was not dispatched twice), "
            "its FailedPrecondition a courier holding another batch; UpdateOrder's FailedPrecondition a courier's "
            "event out of turn.", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, FOOD_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, the streams left out. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, FOOD_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
