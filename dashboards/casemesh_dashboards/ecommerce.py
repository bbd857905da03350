"""E-commerce: product search against the seed's 200 ms, checkout against its 500 ms and the shop's four nines, the
checkout saga (reserve, pay, commit, capture; compensated in reverse) with its PENDING orders and their recovery, the
inventory's reservations with a TTL (the seed's mechanism: held, extended, committed, released, expired, and who
expired them; the A/B knob ``ecommerce-inventory.reservation_ttl_s``), and the carts whose every line is a reservation.

Case study: seed 000 "E-commerce Platform (like Amazon)", shared/seeds/000_69ff90d97cf45f9b.txt lines 496-585 (line
510 "Availability: 99.99%", line 512 "Consistency: Inventory counts must be accurate (no overselling)", line 513
"Latency: Sub-200ms for search, 500ms for checkout", line 521 "Order Service: Saga pattern", line 529 "Inventory
reservation: Optimistic locking with TTL", line 541 ``reserve_stock(product_id, quantity, user_id, ttl=600)``) and seed
001 #05 (shared/seeds/001_58dfc580020147d2.txt line 21); contracts in protos/casemesh/ecommerce/v1/, SLOs in
harness/profiles/ecommerce.slo.yaml (the server-side twins drawn here: ecommerce-search-latency-server,
ecommerce-checkout-latency-server and ecommerce-availability-server; their targets are read from that file when the
dashboard is built).

Service metrics, as the e-commerce services expose them: ``casemesh_ecommerce_catalog_searches_total{outcome}``
(``hits``, ``no_hits``), ``casemesh_ecommerce_catalog_search_hits``, ``casemesh_ecommerce_catalog_search_seconds``
(the FTS5 query), ``casemesh_ecommerce_catalog_products``, ``casemesh_ecommerce_catalog_created_total``,
``casemesh_ecommerce_catalog_commit_seconds`` (ecommerce-catalog, services/ecommerce/catalog/metrics.py);
``casemesh_ecommerce_inventory_reservations_total{outcome}`` (``held``, ``extended``, ``out_of_stock``,
``committed``, ``released``, ``expired``), ``casemesh_ecommerce_inventory_reservation_expiries_total{trigger}``
(``request``, ``sweep``, ``start``), ``casemesh_ecommerce_inventory_units_held``,
``casemesh_ecommerce_inventory_reservations_held``, ``casemesh_ecommerce_inventory_units_restocked_total``,
``casemesh_ecommerce_inventory_commit_seconds``, ``casemesh_ecommerce_inventory_writes_per_commit``
(ecommerce-inventory, services/ecommerce/inventory/metrics.py); ``casemesh_ecommerce_cart_set_item_total{outcome}``
(``set``, ``removed``, ``out_of_stock``, ``not_found``, ``cart_full``, ``currency_mismatch``, ``unavailable``,
``refused``), ``casemesh_ecommerce_cart_carts``, ``casemesh_ecommerce_cart_lines``,
``casemesh_ecommerce_cart_release_failures_total{kind}`` (``replaced``, ``abandoned``) (ecommerce-cart,
services/ecommerce/cart/metrics.py); ``casemesh_ecommerce_orders_checkouts_total{outcome,reason}`` (``confirmed`` with
``none``; ``failed`` with ``out_of_stock``, ``reservation_expired``, ``payment_declined``),
``casemesh_ecommerce_orders_saga_step_seconds{step}`` (``reserve``, ``pay``, ``commit``, ``capture``, ``compensate``),
``casemesh_ecommerce_orders_compensations_total{kind}`` (``release``, ``void``, ``restock``),
``casemesh_ecommerce_orders_restocked_units_total``, ``casemesh_ecommerce_orders_idempotent_replays_total``,
``casemesh_ecommerce_orders_recovered_total{outcome}`` (``confirmed``, ``failed``, ``unavailable``, ``error``),
``casemesh_ecommerce_orders_pending``, ``casemesh_ecommerce_orders_dependency_call_seconds{method}``,
``casemesh_ecommerce_orders_dependency_calls_total{method,code}``, ``casemesh_ecommerce_orders_write_seconds``
(ecommerce-orders, services/ecommerce/orders/metrics.py); and the runtime's ``grpc_server_handled_total`` and
``grpc_server_handling_seconds`` of the e-commerce services (the twins of SearchProducts, Checkout and the shop's
availability). Only the gRPC histograms carry exemplars.

``InventoryService/Audit`` checks every product and reservation in one consistent state (its time grows with the
reservations kept, once a run): it is left out of the gRPC duration and error panels. The payment gateway behind the
checkout has its own dashboard (payments.json).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    slo_targets, stat_panel, timeseries_panel, within,
)

UID = "casemesh-ecommerce"
CATALOG = "casemesh.ecommerce.v1.CatalogService"
CHECKOUT = "casemesh.ecommerce.v1.CheckoutService"
HANDLING = "grpc_server_handling_seconds"
HANDLED = "grpc_server_handled_total"
#: The e-commerce profile's SLOs: the targets drawn here are read from it (:func:`targets`).
SLO_FILE = PROFILES_DIR / f"ecommerce{SLO_FILE_SUFFIX}"
#: ecommerce-search-latency-server (ecommerce.slo.yaml): SearchProducts handled within 200 ms (the seed's "Sub-200ms
#: for search"), a bucket of grpc_server_handling_seconds.
SEARCH_S = 0.2
#: ecommerce-checkout-latency-server: Checkout handled within 500 ms (the seed's "500ms for checkout").
CHECKOUT_S = 0.5
#: Every e-commerce service, spelled as ecommerce-availability-server spells it (so the twin is drawn exactly).
ECOMMERCE_SERVICES = 'grpc_service=~"casemesh[.]ecommerce[.]v1[.].+"'
#: ecommerce-availability-server's good answers: the shop's answers (out_of_stock is FailedPrecondition, a double
#: click's second send Aborted).
GOOD_CODES = 'grpc_code=~"OK|NotFound|InvalidArgument|AlreadyExists|FailedPrecondition|Aborted"'
JOB = 'job=~"$job"'
#: The e-commerce services' jobs.
ECOMMERCE_JOBS = r'{__name__="grpc_server_handled_total", grpc_service=~"casemesh\\.ecommerce\\.v1\\..+"}'
#: Audit reads every reservation (drawn in the request rate only).
NOT_AUDIT = 'grpc_method!="Audit"'
CHECKOUTS = "casemesh_ecommerce_orders_checkouts_total"
RESERVATIONS = "casemesh_ecommerce_inventory_reservations_total"


def build() -> Dashboard:
    target = slo_targets(SLO_FILE)
    search_target = target["ecommerce-search-latency-server"]
    checkout_target = target["ecommerce-checkout-latency-server"]
    answered_target = target["ecommerce-availability-server"]
    jobs = selector(JOB)
    searches = selector(JOB, f'grpc_service="{CATALOG}"', 'grpc_method="SearchProducts"')
    checkouts = selector(JOB, f'grpc_service="{CHECKOUT}"', 'grpc_method="Checkout"')
    every_call = selector(JOB, ECOMMERCE_SERVICES)
    good_calls = selector(JOB, ECOMMERCE_SERVICES, GOOD_CODES)
    search_ms, checkout_ms = f"{SEARCH_S * 1000:g} ms", f"{CHECKOUT_S * 1000:g} ms"
    board = (
        new_dashboard(UID, "casemesh / e-commerce",
                      "The e-commerce case study (Amazon): search against the seed's 200 ms, checkout against its "
                      "500 ms, 99.99% of calls answered, the checkout saga with its compensations and recovery, the "
                      "inventory's reservations with a TTL (no overselling; abandoned carts' units come back when "
                      "the TTL runs out), and the carts that hold them.",
                      ["ecommerce"])
        .with_variable(query_variable("job", "Job", f"label_values({ECOMMERCE_JOBS}, job)"))
    )
    board = (
        board.with_row(Row(f"Search: {search_target:.0%} within {search_ms} (seed 000: \"Sub-200ms for search\")"))
        .with_panel(latency_panel(
            f"SearchProducts time vs {search_ms}",
            "CatalogService/SearchProducts handling time in ecommerce-catalog (grpc_server_handling_seconds): the "
            "SQLite FTS5 query ranked by BM25 and the page, every page (the next pages too). The dashed line is the "
            "seed's 200 ms (seed 000 line 513, \"Sub-200ms for search\"): the SLO ecommerce-search-latency-server of "
            "ecommerce.slo.yaml, the server-side twin of ecommerce-search-latency. Dots are exemplars.",
            HANDLING, searches, (), "", width=6, threshold_s=SEARCH_S))
        .with_panel(timeseries_panel(
            f"Searches within {search_ms}",
            f"Share of SearchProducts calls handled within {search_ms} (le=\"{le(SEARCH_S)}\" bucket over the count "
            f"of grpc_server_handling_seconds: ecommerce-search-latency-server); the dashed line is its target "
            f"{search_target:g}.", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S), f"within {search_ms}")],
            width=5, threshold_line=(search_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Within {search_ms} over the range",
            f"Share of SearchProducts calls handled within {search_ms} over the selected time range, against "
            f"{search_target:g} (ecommerce-search-latency-server).", "percentunit",
            [query(within(HANDLING, searches, SEARCH_S, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((search_target, "green"),), decimals=3))
        .with_panel(latency_panel(
            f"FTS5 query time vs {search_ms}",
            "The catalogue's FTS5 query of one SearchProducts page alone (casemesh_ecommerce_catalog_search_seconds: "
            "MATCH, BM25 ranking and the filters), the part of the seed's 200 ms (the dashed line) the index "
            "takes; the rest of the handling time is the event loop the catalogue shares with the carts.",
            "casemesh_ecommerce_catalog_search_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=5,
            threshold_s=SEARCH_S))
        .with_panel(timeseries_panel(
            "Searches by outcome, hits per page",
            "SearchProducts pages answered per second by outcome (casemesh_ecommerce_catalog_searches_total: hits, "
            "or no_hits), and the mean number of products on a page (casemesh_ecommerce_catalog_search_hits, 0 to "
            "50).", "short",
            refs([(rate("casemesh_ecommerce_catalog_searches_total", jobs, ("outcome",)), "{{outcome}} /s"),
                  (mean("casemesh_ecommerce_catalog_search_hits", jobs), "hits per page")]), width=5))
    )
    board = (
        board.with_row(Row(f"Checkout: {checkout_target:.0%} within {checkout_ms} (seed 000: \"500ms for "
                           f"checkout\"), {answered_target:.2%} of calls answered"))
        .with_panel(latency_panel(
            f"Checkout time vs {checkout_ms}",
            "CheckoutService/Checkout handling time in ecommerce-orders (grpc_server_handling_seconds): the whole "
            "saga (the PENDING row's fsync, every line held again, the payment authorised, every line committed, "
            "the payment captured, the decision's fsync), per call: a retry is a call of its own, a double click's "
            "ABORTED second send is immediate. The dashed line is the seed's 500 ms (seed 000 line 513, \"500ms for "
            "checkout\"): the SLO ecommerce-checkout-latency-server of ecommerce.slo.yaml, the server-side twin of "
            "ecommerce-checkout-latency. Dots are exemplars.",
            HANDLING, checkouts, (), "", width=6, threshold_s=CHECKOUT_S))
        .with_panel(timeseries_panel(
            f"Checkouts within {checkout_ms}",
            f"Share of Checkout calls handled within {checkout_ms} (le=\"{le(CHECKOUT_S)}\" bucket over the count of "
            f"grpc_server_handling_seconds: ecommerce-checkout-latency-server); the dashed line is its target "
            f"{checkout_target:g}.", "percentunit",
            [query(within(HANDLING, checkouts, CHECKOUT_S), f"within {checkout_ms}")],
            width=5, threshold_line=(checkout_target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"Within {checkout_ms} over the range",
            f"Share of Checkout calls handled within {checkout_ms} over the selected time range, against "
            f"{checkout_target:g} (ecommerce-checkout-latency-server).", "percentunit",
            [query(within(HANDLING, checkouts, CHECKOUT_S, window="$__range"), instant=True)],
            width=3, height=8, base="red", steps=((checkout_target, "green"),), decimals=3))
        .with_panel(timeseries_panel(
            "Calls answered by the shop",
            f"Calls of every e-commerce service answered with one of the shop's answers (OK, NotFound, "
            f"InvalidArgument, AlreadyExists, FailedPrecondition: out_of_stock and the like, Aborted: a double "
            f"click's second send) over all of them, the calls between the services included "
            f"(grpc_server_handled_total): the SLO ecommerce-availability-server of ecommerce.slo.yaml (seed 000 "
            f"line 510, \"Availability: 99.99%\"); the dashed line is its target {answered_target:g}.",
            "percentunit", [query(f"{rate(HANDLED, good_calls)} / {rate(HANDLED, every_call)}", "answered")],
            width=6, threshold_line=(answered_target, "red"), max_value=1))
        .with_panel(stat_panel(
            "Answered over the range",
            f"Share of e-commerce calls answered with one of the shop's answers over the selected time range, "
            f"against {answered_target:g} (ecommerce-availability-server).", "percentunit",
            [query(f"sum(increase({HANDLED}{good_calls}[$__range])) / sum(increase({HANDLED}{every_call}[$__range]))",
                   instant=True)],
            width=4, height=8, base="red", steps=((answered_target, "green"),), decimals=4))
    )
    failed = selector(JOB, 'outcome="failed"')
    board = (
        board.with_row(Row("The checkout saga: reserve, pay, commit, capture; compensated in reverse "
                           "(seed 000: \"Order Service: Saga pattern\")"))
        .with_panel(timeseries_panel(
            "Checkouts by outcome and failure reason",
            "Orders decided per second, once each (casemesh_ecommerce_orders_checkouts_total; by a call or by the "
            "recovery, replays not counted again): confirmed, or failed for out_of_stock (a line could not be held "
            "again: its reservation released or its units gone), reservation_expired (a hold ran out before the "
            "commit and its units were taken: the TTL's price for a slow payment), payment_declined (the issuer, "
            "the fraud rules, an unknown card token, a refused capture). A failed checkout is an answer.", "ops",
            [query(rate(CHECKOUTS, jobs, ("outcome", "reason")), "{{outcome}} {{reason}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Failed share",
            "Decided orders failed, over all decided (casemesh_ecommerce_orders_checkouts_total).", "percentunit",
            [query(f"{rate(CHECKOUTS, failed)} / {rate(CHECKOUTS, jobs)}", "failed")], width=4, max_value=1))
        .with_panel(latency_panel(
            "Saga step time",
            "Each run of a saga step, whatever its outcome (casemesh_ecommerce_orders_saga_step_seconds), by step: "
            "reserve (every line held again for the checkout), pay (Authorize at the payment gateway: the "
            "simulated issuer's round trip), commit (every line committed, held again first when its hold is about "
            "to end), capture, compensate (Void, Release, Restock). Their sum is most of the checkout's 500 ms.",
            "casemesh_ecommerce_orders_saga_step_seconds", jobs, ("step",), "{{step}}", quantiles=(0.5, 0.99),
            width=8))
        .with_panel(timeseries_panel(
            "Compensations by kind",
            "Compensating calls of failed orders that undid a step, per second "
            "(casemesh_ecommerce_orders_compensations_total): release (a held reservation given back), void (an "
            "authorisation released), restock (a line the failed order had already committed, given back to the "
            "stock: the commit is one call per line), and the units so restocked "
            "(casemesh_ecommerce_orders_restocked_units_total).", "ops",
            refs([(rate("casemesh_ecommerce_orders_compensations_total", jobs, ("kind",)), "{{kind}}"),
                  (rate("casemesh_ecommerce_orders_restocked_units_total", jobs), "restocked units")]), width=6))
    )
    board = (
        board.with_row(Row("Orders: PENDING before the first step, one order per key, the recovery"))
        .with_panel(timeseries_panel(
            "Orders pending",
            "Orders written PENDING and not yet decided (casemesh_ecommerce_orders_pending): in their saga, or left "
            "by a step whose service did not answer (the call answered UNAVAILABLE) until the buyer's retry with "
            "the same key or the recovery finishes or compensates them.", "short",
            [query(f"sum(casemesh_ecommerce_orders_pending{jobs})", "pending")], width=4, min_value=0))
        .with_panel(timeseries_panel(
            "Recovered orders by outcome",
            "PENDING orders the background recovery took up per second, recovery_grace_s after their last write "
            "and held by no call (casemesh_ecommerce_orders_recovered_total): confirmed, failed (compensated), "
            "unavailable (a dependency still unreachable: left for the next look), error (logged, left PENDING).",
            "ops", [query(rate("casemesh_ecommerce_orders_recovered_total", jobs, ("outcome",)), "{{outcome}}")],
            width=5, stacked=True))
        .with_panel(timeseries_panel(
            "Replays and key conflicts",
            "Checkout calls answered from the decided order of their idempotency key "
            "(casemesh_ecommerce_orders_idempotent_replays_total: a retry gets the same order), and Checkout calls "
            "refused per second: Aborted (a call with the same key, or an order holding the same cart lines, in "
            "flight: a double click, retried by the client), FailedPrecondition (empty_cart, or the key used for a "
            "different request).", "ops",
            refs([(rate("casemesh_ecommerce_orders_idempotent_replays_total", jobs), "replayed"),
                  (rate(HANDLED, selector(JOB, f'grpc_service="{CHECKOUT}"', 'grpc_method="Checkout"',
                                          'grpc_code=~"Aborted|FailedPrecondition"'), ("grpc_code",)),
                   "{{grpc_code}}")]), width=5))
        .with_panel(latency_panel(
            "Dependency calls",
            "Each attempt of ecommerce-orders' calls to ecommerce-cart (GetCart, ClearLines), ecommerce-inventory "
            "(Reserve, Commit, Release, Restock) and payments-gateway (Authorize, Capture, Void), from sending to "
            "the answer or failure (casemesh_ecommerce_orders_dependency_call_seconds), by method.",
            "casemesh_ecommerce_orders_dependency_call_seconds", jobs, ("method",), "{{method}}",
            quantiles=(0.99,), width=5))
        .with_panel(timeseries_panel(
            "Dependency calls by code",
            "ecommerce-orders' calls per second by method and status code "
            "(casemesh_ecommerce_orders_dependency_calls_total): FAILED_PRECONDITION is a refusal the saga "
            "compensates (out_of_stock, reservation_expired), UNAVAILABLE or DEADLINE_EXCEEDED a dependency that did "
            "not answer (retried; the order stays PENDING).", "reqps",
            [query(rate("casemesh_ecommerce_orders_dependency_calls_total", jobs, ("method", "code")),
                   "{{method}} {{code}}")], width=5, stacked=True))
    )
    expiries = "casemesh_ecommerce_inventory_reservation_expiries_total"
    expired = selector(JOB, 'outcome="expired"')
    out_of_stock = selector(JOB, 'outcome="out_of_stock"')
    reserves = selector(JOB, 'outcome=~"held|extended|out_of_stock"')
    board = (
        board.with_row(Row("Inventory: reservations with a TTL, never oversold (seed 000: \"Optimistic locking with "
                           "TTL\", reserve_stock ttl=600)"))
        .with_panel(timeseries_panel(
            "Reservations by outcome",
            "What happened to reservations per second (casemesh_ecommerce_inventory_reservations_total): held (a "
            "cart line's Reserve, or a checkout holding an expired one anew), extended (a Reserve of a HELD one: "
            "the checkout's hold, a line set again), out_of_stock (refused: fewer units available; the check and "
            "the take are one step, so two buyers never get the last unit), committed (sold by a checkout), "
            "released (a line changed or removed, a failed order compensated), expired (its TTL ran out).", "ops",
            [query(rate(RESERVATIONS, jobs, ("outcome",)), "{{outcome}}")], width=7, stacked=True))
        .with_panel(timeseries_panel(
            "Reservation expiries by trigger",
            "HELD reservations whose TTL ran out, per second "
            "(casemesh_ecommerce_inventory_reservation_expiries_total), by who noticed: request (a request expired "
            "the due ones before reading availability), sweep (the background sweeper, every sweep_interval_ms), "
            "start (expired while the service was down). The seed's mechanism against cart abandonment lock-up "
            "(seed 000 line 542); the A/B knob ecommerce-inventory.reservation_ttl_s (600 s, the seed's) moves it.",
            "ops", [query(rate(expiries, jobs, ("trigger",)), "{{trigger}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Units held",
            "Units held by HELD reservations, every product (casemesh_ecommerce_inventory_units_held), and the HELD "
            "reservations (casemesh_ecommerce_inventory_reservations_held): what carts and checkouts keep from "
            "other buyers until they buy, let go, or the TTL gives it back.", "short",
            refs([(f"sum(casemesh_ecommerce_inventory_units_held{jobs})", "units held"),
                  (f"sum(casemesh_ecommerce_inventory_reservations_held{jobs})", "reservations held")]),
            width=5, min_value=0))
        .with_panel(timeseries_panel(
            "Expired and out-of-stock per Reserve",
            "Reservations that expired, and Reserves refused out_of_stock, per Reserve answered (held, extended, "
            "out_of_stock) (casemesh_ecommerce_inventory_reservations_total; an expiry comes a TTL after its "
            "Reserve, so while the load changes the first can pass 1): a long TTL strands abandoned carts' units "
            "while buyers are turned away out_of_stock; a short one expires slow buyers' holds.",
            "percentunit",
            refs([(f"{rate(RESERVATIONS, expired)} / {rate(RESERVATIONS, reserves)}", "expired"),
                  (f"{rate(RESERVATIONS, out_of_stock)} / {rate(RESERVATIONS, reserves)}", "out_of_stock")]),
            width=6, min_value=0))
        .with_panel(latency_panel(
            "Inventory group commit time",
            "One group commit to the inventory's SQLite file, fsync included "
            "(casemesh_ecommerce_inventory_commit_seconds): every reservation change and restock is durable before "
            "it is answered.", "casemesh_ecommerce_inventory_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99),
            width=8))
        .with_panel(timeseries_panel(
            "Writes per commit",
            "Writes (reservation changes, restocks) per group commit "
            "(casemesh_ecommerce_inventory_writes_per_commit): how many share one fsync.", "short",
            refs([(quantile(0.5, "casemesh_ecommerce_inventory_writes_per_commit", jobs), "p50"),
                  (quantile(0.99, "casemesh_ecommerce_inventory_writes_per_commit", jobs), "p99"),
                  (mean("casemesh_ecommerce_inventory_writes_per_commit", jobs), "mean")]), width=8))
        .with_panel(timeseries_panel(
            "Units restocked",
            "Units put into stock per second by Restock (casemesh_ecommerce_inventory_units_restocked_total, not "
            "its retries): the merchant's restocks and the saga's restock compensations.", "short",
            [query(rate("casemesh_ecommerce_inventory_units_restocked_total", jobs), "units /s")], width=8))
    )
    set_items = "casemesh_ecommerce_cart_set_item_total"
    board = (
        board.with_row(Row("Carts and catalogue: every cart line a reservation (seed 000: \"Cart Service: ... "
                           "real-time inventory reservation\")"))
        .with_panel(timeseries_panel(
            "SetItem by outcome",
            "SetItem calls past validation per second (casemesh_ecommerce_cart_set_item_total): set (the units "
            "reserved and the line set), removed (quantity 0), out_of_stock (the inventory refused the units: the "
            "cart unchanged), not_found (no such product), cart_full, currency_mismatch, unavailable (the catalogue "
            "or the inventory did not answer), refused.", "ops",
            [query(rate(set_items, jobs, ("outcome",)), "{{outcome}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Carts and lines",
            "Carts with at least one line (casemesh_ecommerce_cart_carts) and their lines "
            "(casemesh_ecommerce_cart_lines), in memory like the seed's Redis sessions (0 after a restart; the "
            "reservations then run out with their TTL).", "short",
            refs([(f"sum(casemesh_ecommerce_cart_carts{jobs})", "carts"),
                  (f"sum(casemesh_ecommerce_cart_lines{jobs})", "lines")]), width=5, min_value=0))
        .with_panel(timeseries_panel(
            "Release failures by kind",
            "Releases the cart sent that got no answer, per second (casemesh_ecommerce_cart_release_failures_total): "
            "replaced (a line's previous reservation, after its new one was held), abandoned (a new reservation "
            "whose Reserve got no answer). Their units stay held until the reservation's TTL gives them back.",
            "ops", [query(rate("casemesh_ecommerce_cart_release_failures_total", jobs, ("kind",)), "{{kind}}")],
            width=5))
        .with_panel(timeseries_panel(
            "Catalogue",
            "Products in the catalogue (casemesh_ecommerce_catalog_products) and products created per second "
            "(casemesh_ecommerce_catalog_created_total, once on disk; identical retries not counted).", "short",
            refs([(f"sum(casemesh_ecommerce_catalog_products{jobs})", "products"),
                  (rate("casemesh_ecommerce_catalog_created_total", jobs), "created /s")]), width=4))
        .with_panel(timeseries_panel(
            "Catalogue and orders commits",
            "99th percentile of one group commit, fsync included, of the catalogue's SQLite file (rows and their "
            "FTS5 index: casemesh_ecommerce_catalog_commit_seconds) and of the orders' (every saga step's record: "
            "casemesh_ecommerce_orders_write_seconds).", "s",
            refs([(quantile(0.99, "casemesh_ecommerce_catalog_commit_seconds", jobs), "p99 catalogue"),
                  (quantile(0.99, "casemesh_ecommerce_orders_write_seconds", jobs), "p99 orders")]), width=4))
    )
    calls = selector(JOB, ECOMMERCE_SERVICES)
    board = (
        board.with_row(Row("gRPC per e-commerce service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each e-commerce method. Reserve, Commit, Release of "
            "InventoryService and ClearLines and GetCart of CartService are mostly the cart's and the orders' "
            "calls.", "reqps",
            [query(rate(HANDLED, calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, "
            "AlreadyExists); Audit left out. FailedPrecondition is mostly out_of_stock (SetItem, Reserve) and "
            "Checkout's empty_cart or key reused, Aborted a double click; Unavailable a dependency down.", "reqps",
            [query(rate(HANDLED, selector(JOB, ECOMMERCE_SERVICES, NOT_AUDIT, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, Audit left out. Dots are exemplars.",
            "s",
            [query(quantile(0.99, HANDLING, selector(JOB, ECOMMERCE_SERVICES, NOT_AUDIT),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
