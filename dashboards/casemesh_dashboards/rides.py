"""Ride sharing: rides matched against the seed's 5 s match SLO, dispatch's offer phases (offers accepted, declined,
expired, withdrawn; late accepts lost to the atomic assignment), the trip state machine, the drivers' location stream
and geospatial index, and surge pricing.

Case study: shared/seeds/003_…, "Uber Ride Matching" ("Match rider with driver < 5 seconds", "Location updates every
3-5 seconds", the surge ladder), seed 000 "Ride-Sharing (like Uber)" and seed 001 #02; contracts in
protos/casemesh/rides/v1/, SLOs in harness/profiles/rides.slo.yaml.

Service metrics, as the ride-sharing services expose them: ``casemesh_rides_trips_match_seconds`` (requested → matched:
the server-side twin of the match-time SLO), ``casemesh_rides_trips_rides_total{state}``,
``casemesh_rides_trips_active_rides``, ``casemesh_rides_trips_assign_total{outcome}``,
``casemesh_rides_trips_write_seconds``, ``casemesh_rides_trips_watchers`` (rides-trips, services/rides/trips/metrics.py);
``casemesh_rides_dispatch_offers_total{outcome}``, ``casemesh_rides_dispatch_phases``,
``casemesh_rides_dispatch_matches_total{outcome}``, ``casemesh_rides_dispatch_rides_matching``,
``casemesh_rides_dispatch_feeds``, ``casemesh_rides_dispatch_search_seconds``,
``casemesh_rides_dispatch_sweep_recovered_total`` (rides-dispatch, services/rides/dispatch/metrics.py);
``casemesh_rides_location_updates_total``, ``casemesh_rides_location_drivers{status}``,
``casemesh_rides_location_search_cells``, ``casemesh_rides_location_search_seconds``,
``casemesh_rides_location_update_delay_seconds``, ``casemesh_rides_location_expired_total``,
``casemesh_rides_location_streams``, ``casemesh_rides_location_trackers`` (rides-location,
services/rides/location/metrics.py); ``casemesh_rides_pricing_quotes_total``,
``casemesh_rides_pricing_surge_multiplier``, ``casemesh_rides_pricing_surge_cells{multiplier}``,
``casemesh_rides_pricing_surge_recomputations_total``, ``casemesh_rides_pricing_surge_errors_total``,
``casemesh_rides_pricing_quotes_live`` (rides-pricing, services/rides/pricing/metrics.py). Only the gRPC histograms carry
exemplars.

``LocationService/ReportLocations``, ``LocationService/TrackDriver``, ``DispatchService/ReceiveOffers`` and
``TripService/WatchRide`` are streams that last as long as a driver is online, a rider watches or a ride lasts: their
handling time is that length and their status how they ended. They are left out of the gRPC duration and error panels.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel, within,
)

UID = "casemesh-rides"
TRIPS = "casemesh.rides.v1.TripService"
MATCH = "casemesh_rides_trips_match_seconds"
#: match-time-server (rides.slo.yaml): 95% of rides matched within 5 s of being requested (seed 003), a bucket of
#: casemesh_rides_trips_match_seconds.
MATCH_S = 5.0
MATCH_TARGET = 0.95
#: ride-availability-server: 99.99% of RequestRide calls answered OK (seed 003 "Availability: 99.99%").
REQUEST_TARGET = 0.9999
JOB = 'job=~"$job"'
RIDES_SERVICES = r'grpc_service=~"casemesh\\.rides\\.v1\\..+"'
RIDES_JOBS = r'{__name__="grpc_server_handled_total", ' + RIDES_SERVICES + "}"
#: The streams' handling time is a driver's time online, a watcher's or a ride's length; their status how they ended.
NOT_STREAMS = 'grpc_method!~"ReportLocations|TrackDriver|ReceiveOffers|WatchRide"'


def build() -> Dashboard:
    jobs = selector(JOB)
    requests = selector(JOB, f'grpc_service="{TRIPS}"', 'grpc_method="RequestRide"')
    requests_ok = selector(JOB, f'grpc_service="{TRIPS}"', 'grpc_method="RequestRide"', 'grpc_code="OK"')
    board = (
        new_dashboard(UID, "casemesh / ride sharing",
                      "The ride-sharing case study (Uber): rides matched against the seed's SLO (95% within 5 s of the "
                      "request), dispatch's offer phases and the atomic accept, the trip state machine, the drivers' "
                      "location stream and H3 index, and surge pricing.",
                      ["rides"])
        .with_variable(query_variable("job", "Job", f"label_values({RIDES_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Matching: 95% of rides matched within 5 s of the request"))
        .with_panel(latency_panel(
            "Match time vs 5 s",
            "From the trip service storing a ride (REQUESTED) to a driver winning it (MATCHED), once per matched ride "
            "(casemesh_rides_trips_match_seconds). The dashed line is the seed's bound (seed 003: \"Match rider with "
            "driver < 5 seconds\"), the SLO match-time-server of rides.slo.yaml (the server-side twin of match-time: "
            "the rider's quote and request calls are not in it).", MATCH, jobs, (), "", width=8, threshold_s=MATCH_S))
        .with_panel(timeseries_panel(
            "Matched within 5 s",
            f"Share of rides matched within 5 s of being requested (le=\"{le(MATCH_S)}\" bucket over the count of "
            f"casemesh_rides_trips_match_seconds, SLO match-time-server); the dashed line is the target "
            f"{MATCH_TARGET:g}.", "percentunit",
            [query(within(MATCH, jobs, MATCH_S), "within 5 s")], width=8, threshold_line=(MATCH_TARGET, "red"),
            max_value=1))
        .with_panel(timeseries_panel(
            "RequestRide answered OK",
            f"TripService/RequestRide calls answered OK over all of them: the SLO ride-availability-server (seed "
            f"003: \"Availability: 99.99%\"); the dashed line is the target {REQUEST_TARGET:g}.", "percentunit",
            [query(f"{rate('grpc_server_handled_total', requests_ok)} / {rate('grpc_server_handled_total', requests)}",
                   "answered OK")], width=4, threshold_line=(REQUEST_TARGET, "red"), max_value=1))
        .with_panel(stat_panel(
            "Matched within 5 s over the range",
            f"Share of rides matched within 5 s over the selected time range, against {MATCH_TARGET:g} "
            "(match-time-server).", "percentunit",
            [query(within(MATCH, jobs, MATCH_S, window="$__range"), instant=True)],
            width=4, height=8, base="red", steps=((MATCH_TARGET, "green"),), decimals=3))
    )
    board = (
        board.with_row(Row("Dispatch: offers in phases of the nearest drivers, one accept wins"))
        .with_panel(timeseries_panel(
            "Offers by outcome",
            "Ride offers per second by how they ended: accepted (the driver won the ride), declined, expired (no answer "
            "within offer_timeout_s, 5 s by default), withdrawn (another driver of the batch won, or the rider "
            "cancelled), lost (a late accept that reached the trip service after the winner's: AssignDriver answered "
            "ABORTED; most late accepts find their offer withdrawn first and count there), refused (the trip service "
            "refused the accept: the driver holds another ride, or the ride was cancelled). With offer_batch_size "
            "drivers offered at once (3 by default, seed 003 \"top 3\"), most offers of a batch are withdrawn: the "
            "price of a faster match (the A/B in docs/benchmarks.md).", "ops",
            [query(rate("casemesh_rides_dispatch_offers_total", jobs, ("outcome",)), "{{outcome}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Matches by outcome",
            "Rides dispatch finished per second: matched, no_driver (no driver accepted within max_phases phases or "
            "max_match_s: released as CANCELLED, reason NO_DRIVER), cancelled (by the rider while being matched).",
            "ops", [query(rate("casemesh_rides_dispatch_matches_total", jobs, ("outcome",)), "{{outcome}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Phases per matched ride",
            "Offer phases a ride took to be matched, mean and 99th percentile (casemesh_rides_dispatch_phases): 1 when "
            "a driver of the first batch accepted.", "short",
            refs([(mean("casemesh_rides_dispatch_phases", jobs), "mean"),
                  (quantile(0.99, "casemesh_rides_dispatch_phases", jobs), "p99")]), width=8))
        .with_panel(timeseries_panel(
            "Rides being matched and driver feeds",
            "Rides dispatch is matching now, and the drivers' ReceiveOffers feeds open (a driver without one is not "
            "offered rides).", "short",
            refs([(f"sum(casemesh_rides_dispatch_rides_matching{jobs})", "rides being matched"),
                  (f"sum(casemesh_rides_dispatch_feeds{jobs})", "driver feeds")]), width=8))
        .with_panel(latency_panel(
            "Nearby-driver search from dispatch",
            "One LocationService/FindNearbyDrivers call as dispatch sees it (casemesh_rides_dispatch_search_seconds): "
            "the start of every offer phase.", "casemesh_rides_dispatch_search_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Rides recovered by the sweep",
            "REQUESTED rides dispatch found in the trip service without a matching task of its own, per second (after "
            "a dispatch restart, or a StartMatching that never arrived): every one is offered again.", "ops",
            [query(rate("casemesh_rides_dispatch_sweep_recovered_total", jobs), "recovered")], width=8))
    )
    board = (
        board.with_row(Row("Trips: the state machine and the atomic accept"))
        .with_panel(timeseries_panel(
            "Transitions by state",
            "Rides entering each state per second: requested, matched, en_route, in_progress, completed, cancelled "
            "(services/rides/trips/machine.py).", "ops",
            [query(rate("casemesh_rides_trips_rides_total", jobs, ("state",)), "{{state}}")], width=6))
        .with_panel(timeseries_panel(
            "AssignDriver by outcome",
            "AssignDriver calls per second by outcome: won (this driver matched), retry (the ride's own driver again), "
            "lost (ABORTED: another driver won first: the late accept), refused (the ride was cancelled, or the driver "
            "holds another ride). Exactly one won per matched ride, however many accept at once.", "ops",
            [query(rate("casemesh_rides_trips_assign_total", jobs, ("outcome",)), "{{outcome}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Active rides and watchers",
            "Rides not yet completed or cancelled, and WatchRide streams open (riders following their ride).", "short",
            refs([(f"sum(casemesh_rides_trips_active_rides{jobs})", "active rides"),
                  (f"sum(casemesh_rides_trips_watchers{jobs})", "watchers")]), width=6))
        .with_panel(latency_panel(
            "Durable write", "One ride write to the trips database, fsync included (casemesh_rides_trips_write_seconds): "
            "every request, assignment and transition is on disk before it is answered.",
            "casemesh_rides_trips_write_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
    )
    board = (
        board.with_row(Row("Location: drivers' streams and the H3 index"))
        .with_panel(timeseries_panel(
            "Location updates", "Driver positions received per second on ReportLocations streams (seed 003: every 3 "
            "to 5 s per online driver), and drivers dropped per second for not reporting within expiry_s (30 s).",
            "ops", refs([(rate("casemesh_rides_location_updates_total", jobs), "updates"),
                         (rate("casemesh_rides_location_expired_total", jobs), "expired")]), width=6))
        .with_panel(timeseries_panel(
            "Drivers online by status", "Drivers in the index by the status they last reported: available (offered "
            "rides, counted as supply), busy.", "short",
            [query(f"sum by (status) (casemesh_rides_location_drivers{jobs})", "{{status}}")], width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Cells searched per search",
            "H3 cells a FindNearbyDrivers ring walk looked in, mean and 99th percentile "
            "(casemesh_rides_location_search_cells): it stops once the next ring cannot hold a nearer driver, so it "
            "grows with index_resolution (the A/B: finer cells, more of them to walk).", "short",
            refs([(mean("casemesh_rides_location_search_cells", jobs), "mean"),
                  (quantile(0.99, "casemesh_rides_location_search_cells", jobs), "p99")]), width=6))
        .with_panel(latency_panel(
            "Index search time", "One radius search in the sharded H3 index, read locks included "
            "(casemesh_rides_location_search_seconds).", "casemesh_rides_location_search_seconds", jobs, (), "",
            quantiles=(0.5, 0.99), width=6))
        .with_panel(latency_panel(
            "Update delay", "From a driver's app taking a position (sent_at_unix_ms) to the location service receiving "
            "it (casemesh_rides_location_update_delay_seconds; the two clocks are the same machine's here).",
            "casemesh_rides_location_update_delay_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Streams and trackers", "ReportLocations streams open (one per online driver) and TrackDriver streams open "
            "(riders following their driver, through the trip service's WatchRide).", "short",
            refs([(f"sum(casemesh_rides_location_streams{jobs})", "driver streams"),
                  (f"sum(casemesh_rides_location_trackers{jobs})", "trackers")]), width=8))
    )
    board = (
        board.with_row(Row("Pricing: surge from demand over supply per cell"))
        .with_panel(timeseries_panel(
            "Cells by surge multiplier",
            "Surge cells at each step of the ladder after the last recomputation (every surge_interval_s, 30 s by "
            "default; seed 003: demand/supply under 0.5 → 1.0x, under 1 → 1.2x, under 2 → 1.5x, under 3 → 2.0x, "
            "else 2.5x).", "short",
            [query(f"sum by (multiplier) (casemesh_rides_pricing_surge_cells{jobs})", "{{multiplier}}x")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Quoted multiplier", "Surge multiplier of the quotes given, mean and 99th percentile "
            "(casemesh_rides_pricing_surge_multiplier).", "short",
            refs([(mean("casemesh_rides_pricing_surge_multiplier", jobs), "mean"),
                  (quantile(0.99, "casemesh_rides_pricing_surge_multiplier", jobs), "p99")]), width=8))
        .with_panel(timeseries_panel(
            "Quotes and recomputations", "Quotes given per second, quotes held (live, until their TTL), and surge "
            "recomputations and their failures (the location service unreachable: the last supply is kept) per "
            "second.", "short",
            refs([(rate("casemesh_rides_pricing_quotes_total", jobs), "quotes/s"),
                  (f"sum(casemesh_rides_pricing_quotes_live{jobs})", "quotes held"),
                  (rate("casemesh_rides_pricing_surge_recomputations_total", jobs), "recomputations/s"),
                  (rate("casemesh_rides_pricing_surge_errors_total", jobs), "errors/s")]), width=8))
    )
    calls = selector(JOB, RIDES_SERVICES)
    board = (
        board.with_row(Row("gRPC per ride-sharing service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each ride-sharing method. ReportLocations, TrackDriver, "
            "ReceiveOffers and WatchRide count streams when they end.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}")],
            width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists); "
            "the streams are left out. AcceptOffer's Aborted is a late accept, expected when several drivers are "
            "offered a ride at once.", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, RIDES_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, the streams left out. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, "grpc_server_handling_seconds", selector(JOB, RIDES_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)], width=8))
    )
    return board
