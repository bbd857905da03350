"""Proximity service: radius search over places and moving entities against the SLOs' 100 ms, the ring walk's cost
(the index-resolution A/B), location updates through the geofence service into the tracker's index, and fence events
against the 2 s notify SLO.

Case study: seed 001 #29, shared/seeds/001_58dfc580020147d2.txt line 51 ("Proximity Service | Geohash/H3, Redis Geo,
radius search, geofencing, real-time location updates | 100M places, 10M updates/sec, Yelp/Uber"); contracts in
protos/casemesh/proximity/v1/, SLOs in harness/profiles/proximity.slo.yaml (the server-side twins drawn here:
search-latency-server, nearby-latency-server, update-ack-server, fence-notify-server, search-availability-server).

Service metrics, as the proximity services expose them: ``casemesh_proximity_places_indexed{category}``,
``casemesh_proximity_places_created_total``, ``casemesh_proximity_places_deleted_total``,
``casemesh_proximity_places_search_cells{category}`` (index cells read by one SearchPlaces page; ``any`` for a search
of every category), ``casemesh_proximity_places_search_hits{category}``, ``casemesh_proximity_places_search_seconds``,
``casemesh_proximity_places_commit_seconds``, ``casemesh_proximity_places_load_seconds`` (proximity-places,
services/proximity/places/metrics.py); ``casemesh_proximity_tracker_positions_total{result}`` (``applied``,
``stale``), ``casemesh_proximity_tracker_batch_positions``, ``casemesh_proximity_tracker_index_update_seconds``
(a batch's index apply time per position, one observation per batch),
``casemesh_proximity_tracker_cell_changes_total``, ``casemesh_proximity_tracker_shard_changes_total``,
``casemesh_proximity_tracker_entities``, ``casemesh_proximity_tracker_expired_total``,
``casemesh_proximity_tracker_geofence_seconds`` (one batch's forward to GeofenceService.EvaluatePositions, retries
included: the twin of update-ack), ``casemesh_proximity_tracker_geofence_retries_total``,
``casemesh_proximity_tracker_geofence_failures_total``, ``casemesh_proximity_tracker_search_seconds``,
``casemesh_proximity_tracker_search_cells``, ``casemesh_proximity_tracker_streams`` (proximity-tracker,
services/proximity/tracker/metrics.py); ``casemesh_proximity_geofence_events_total{transition}`` (``ENTER``,
``EXIT``), ``casemesh_proximity_geofence_event_delay_seconds`` (a position's sent_at to its event's commit: the twin
of fence-notify), ``casemesh_proximity_geofence_positions_total{result}``,
``casemesh_proximity_geofence_candidates``, ``casemesh_proximity_geofence_commit_seconds``,
``casemesh_proximity_geofence_commit_batches``, ``casemesh_proximity_geofence_commit_failures_total``,
``casemesh_proximity_geofence_fences``, ``casemesh_proximity_geofence_index_cells``,
``casemesh_proximity_geofence_entities``, ``casemesh_proximity_geofence_last_sequence``,
``casemesh_proximity_geofence_trimmed_events_total``, ``casemesh_proximity_geofence_watchers``,
``casemesh_proximity_geofence_watchers_ended_total{reason}`` (``overflow``, ``trimmed``, ``shutdown``)
(proximity-geofence, services/proximity/geofence/metrics.py); and the runtime's ``grpc_server_handling_seconds`` and
``grpc_server_handled_total`` of SearchPlaces and FindNearbyEntities. Only the gRPC histograms carry exemplars.

``TrackerService/StreamPositions`` (a device gateway's connection) and ``GeofenceService/WatchFenceEvents`` (a
watcher's feed) are streams that last as long as the gateway or the watcher: their handling time is that length and
their status how they ended. They are left out of the gRPC duration and error panels.
"""

from __future__ import annotations


from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, latency_panel, le, mean, new_dashboard, quantile, query, query_variable, rate, refs, selector,
    stat_panel, timeseries_panel, within,
)

UID = "casemesh-proximity"
PLACES = "casemesh.proximity.v1.PlacesService"
TRACKER = "casemesh.proximity.v1.TrackerService"
HANDLING = "grpc_server_handling_seconds"
#: search-latency-server and nearby-latency-server (proximity.slo.yaml): 99% of SearchPlaces and of
#: FindNearbyEntities handled within 100 ms (an interactive answer), a bucket of grpc_server_handling_seconds.
SEARCH_S = 0.1
SEARCH_TARGET = 0.99
#: search-availability-server: 99.9% of SearchPlaces answered OK.
AVAILABILITY_TARGET = 0.999
#: update-ack-server: 99% of batches through GeofenceService.EvaluatePositions within 500 ms, a bucket of
#: casemesh_proximity_tracker_geofence_seconds.
FORWARD = "casemesh_proximity_tracker_geofence_seconds"
FORWARD_S = 0.5
FORWARD_TARGET = 0.99
#: fence-notify-server: 95% of fence events written within 2 s of their position's sent_at, a bucket of
#: casemesh_proximity_geofence_event_delay_seconds.
EVENT_DELAY = "casemesh_proximity_geofence_event_delay_seconds"
EVENT_DELAY_S = 2.0
EVENT_DELAY_TARGET = 0.95
JOB = 'job=~"$job"'
PROXIMITY_SERVICES = r'grpc_service=~"casemesh\\.proximity\\.v1\\..+"'
PROXIMITY_JOBS = r'{__name__="grpc_server_handled_total", ' + PROXIMITY_SERVICES + "}"
#: A gateway's position stream and a watcher's event feed last as long as their client; their status is how they ended.
NOT_STREAMS = 'grpc_method!~"StreamPositions|WatchFenceEvents"'


def build() -> Dashboard:
    jobs = selector(JOB)
    searches = selector(JOB, f'grpc_service="{PLACES}"', 'grpc_method="SearchPlaces"')
    searches_ok = selector(JOB, f'grpc_service="{PLACES}"', 'grpc_method="SearchPlaces"', 'grpc_code="OK"')
    nearby = selector(JOB, f'grpc_service="{TRACKER}"', 'grpc_method="FindNearbyEntities"')
    applied = selector(JOB, 'result="applied"')
    board = (
        new_dashboard(UID, "casemesh / proximity service",
                      "The proximity case study (Yelp / Uber): radius search over places and moving entities against "
                      "100 ms, the H3 ring walk's cost (the index-resolution A/B), location updates checked against "
                      "the geofences durably before the tracker's index takes them, and fence events against 2 s.",
                      ["proximity"])
        .with_variable(query_variable("job", "Job", f"label_values({PROXIMITY_JOBS}, job)"))
    )
    board = (
        board.with_row(Row("Search: 99% of pages and nearby lookups handled within 100 ms"))
        .with_panel(latency_panel(
            "SearchPlaces vs 100 ms",
            "PlacesService/SearchPlaces handling time, one page (grpc_server_handling_seconds): the ring walk, the "
            "page token and the encoding. The dashed line is the SLO search-latency-server of proximity.slo.yaml "
            "(the server-side twin of search-latency: 100 ms, an answer that feels instantaneous). Dots are "
            "exemplars.", HANDLING, searches, (), "", width=6, threshold_s=SEARCH_S))
        .with_panel(latency_panel(
            "FindNearbyEntities vs 100 ms",
            "TrackerService/FindNearbyEntities handling time (grpc_server_handling_seconds) over the index of moving "
            "entities the updates change meanwhile. The dashed line is the SLO nearby-latency-server (the twin of "
            "nearby-latency). Dots are exemplars.", HANDLING, nearby, (), "", width=6, threshold_s=SEARCH_S))
        .with_panel(timeseries_panel(
            "Handled within 100 ms",
            f"Share of SearchPlaces pages and of FindNearbyEntities calls handled within 100 ms (le=\"{le(SEARCH_S)}\" "
            f"bucket over the count of grpc_server_handling_seconds: the SLOs search-latency-server and "
            f"nearby-latency-server); the dashed line is their target {SEARCH_TARGET:g}.", "percentunit",
            refs([(within(HANDLING, searches, SEARCH_S), "SearchPlaces"),
                  (within(HANDLING, nearby, SEARCH_S), "FindNearbyEntities")]),
            width=6, threshold_line=(SEARCH_TARGET, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "SearchPlaces answered OK",
            f"SearchPlaces calls answered OK over all of them: the SLO search-availability-server (the harness sends "
            f"only valid searches, so any other answer is a failure); the dashed line is its target "
            f"{AVAILABILITY_TARGET:g}.", "percentunit",
            [query(f"{rate('grpc_server_handled_total', searches_ok)} / {rate('grpc_server_handled_total', searches)}",
                   "answered OK")], width=6, threshold_line=(AVAILABILITY_TARGET, "red"), max_value=1))
    )
    board = (
        board.with_row(Row("Ring walk: cells read per search, the index-resolution A/B's cost"))
        .with_panel(timeseries_panel(
            "Cells read per SearchPlaces page",
            "H3 cells one SearchPlaces page read, mean by the category searched (any: the index over every category; "
            "else that category's own index) and 99th percentile (casemesh_proximity_places_search_cells: 1, 7, 19, "
            "37 for 0 to 3 full rings). The walk stops at the first ring that cannot hold a nearer place: finer "
            "cells (proximity-places.index_resolution) mean more cells per page, coarser ones more places measured "
            "per cell.", "short",
            [query(mean("casemesh_proximity_places_search_cells", jobs, ("category",)), "mean {{category}}", "A"),
             query(quantile(0.99, "casemesh_proximity_places_search_cells", jobs), "p99", "B")], width=8))
        .with_panel(timeseries_panel(
            "Places per page",
            "Places one SearchPlaces page returned (casemesh_proximity_places_search_hits, 0 to the page size, 100 at "
            "most), mean and 99th percentile: a page short of its size is the last one.", "short",
            refs([(mean("casemesh_proximity_places_search_hits", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_places_search_hits", jobs), "p99")]), width=8))
        .with_panel(latency_panel(
            "Places index search time",
            "The ring walk of one SearchPlaces page alone, read locks included "
            "(casemesh_proximity_places_search_seconds): the server-side cost the index_resolution A/B moves.",
            "casemesh_proximity_places_search_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Cells read per nearby lookup",
            "H3 cells one FindNearbyEntities read, mean and 99th percentile (casemesh_proximity_tracker_search_cells): "
            "grows about as (radius / cell edge)² with proximity-tracker.index_resolution.", "short",
            refs([(mean("casemesh_proximity_tracker_search_cells", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_tracker_search_cells", jobs), "p99")]), width=8))
        .with_panel(latency_panel(
            "Entities index search time",
            "The ring walk of one FindNearbyEntities alone, read locks included "
            "(casemesh_proximity_tracker_search_seconds).",
            "casemesh_proximity_tracker_search_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=8))
        .with_panel(timeseries_panel(
            "Searches per second",
            "SearchPlaces pages per second by the category searched (any: every category), and FindNearbyEntities "
            "lookups per second (the _count of the cells histograms).", "ops",
            [query(rate("casemesh_proximity_places_search_cells_count", jobs, ("category",)), "pages {{category}}",
                   "A"),
             query(rate("casemesh_proximity_tracker_search_cells_count", jobs), "nearby lookups", "B")],
            width=8, stacked=True))
    )
    board = (
        board.with_row(Row("Places: the durable store and its indexes"))
        .with_panel(timeseries_panel(
            "Places indexed by category",
            "Places in the indexes by category (casemesh_proximity_places_indexed): their sum is every place stored; "
            "each is in the index over every category and in its category's own.", "short",
            [query(f"sum by (category) (casemesh_proximity_places_indexed{jobs})", "{{category}}")],
            width=8, stacked=True))
        .with_panel(timeseries_panel(
            "Places created and deleted",
            "Places stored by CreatePlaces per second (new ones only: an identical retry is not counted) and places "
            "removed by DeletePlace per second, each counted once on disk.", "ops",
            refs([(rate("casemesh_proximity_places_created_total", jobs), "created"),
                  (rate("casemesh_proximity_places_deleted_total", jobs), "deleted")]), width=6))
        .with_panel(latency_panel(
            "Places group commit",
            "One group commit of place changes to the SQLite file, fsync included "
            "(casemesh_proximity_places_commit_seconds): a place is searchable only once it is on disk.",
            "casemesh_proximity_places_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(stat_panel(
            "Load time at start",
            "How long the last start of proximity-places took to read every place from its SQLite file and index it "
            "(casemesh_proximity_places_load_seconds): the price of in-memory indexes, paid at every restart.", "s",
            [query("max(casemesh_proximity_places_load_seconds" + jobs + ")")], width=4, height=8))
    )
    board = (
        board.with_row(Row("Location updates: batches through the geofence service (99% within 500 ms), then the index"))
        .with_panel(latency_panel(
            "Geofence forward vs 500 ms",
            "Time to forward one StreamPositions batch to GeofenceService.EvaluatePositions, its evaluation and "
            "durable write (fsync) and the tracker's retries included, failed forwards too "
            "(casemesh_proximity_tracker_geofence_seconds). The dashed line is the SLO update-ack-server (the "
            "server-side twin of update-ack: a batch acknowledged within a quarter of the 2 s report interval).",
            FORWARD, jobs, (), "", width=6, threshold_s=FORWARD_S))
        .with_panel(timeseries_panel(
            "Forwarded within 500 ms",
            f"Share of batches through the geofence service within 500 ms (le=\"{le(FORWARD_S)}\" bucket over the "
            f"count of casemesh_proximity_tracker_geofence_seconds: update-ack-server); the dashed line is the target "
            f"{FORWARD_TARGET:g}.", "percentunit", [query(within(FORWARD, jobs, FORWARD_S), "within 500 ms")],
            width=6, threshold_line=(FORWARD_TARGET, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Positions applied and stale",
            "Positions of acknowledged batches per second (casemesh_proximity_tracker_positions_total): applied "
            "(newer than the entity's last, put in the index) or stale (skipped: a gateway's resend after a broken "
            "stream); and entities dropped per second for not reporting within expiry_s "
            "(casemesh_proximity_tracker_expired_total).", "ops",
            [query(rate("casemesh_proximity_tracker_positions_total", jobs, ("result",)), "{{result}}", "A"),
             query(rate("casemesh_proximity_tracker_expired_total", jobs), "expired", "B")], width=6))
        .with_panel(timeseries_panel(
            "Forward retries and failures",
            "EvaluatePositions attempts after a batch's first, per second (after UNAVAILABLE, within "
            "geofence_retry_budget_ms: casemesh_proximity_tracker_geofence_retries_total), and batches whose forward "
            "failed (casemesh_proximity_tracker_geofence_failures_total: their stream ended UNAVAILABLE, the gateway "
            "resends them).", "ops",
            refs([(rate("casemesh_proximity_tracker_geofence_retries_total", jobs), "retries"),
                  (rate("casemesh_proximity_tracker_geofence_failures_total", jobs), "failed batches")]), width=6))
        .with_panel(timeseries_panel(
            "Positions per batch",
            "Positions in one valid StreamPositions batch, mean and 99th percentile "
            "(casemesh_proximity_tracker_batch_positions): the proximity profile's gateways send 250.", "short",
            refs([(mean("casemesh_proximity_tracker_batch_positions", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_tracker_batch_positions", jobs), "p99")]), width=6))
        .with_panel(timeseries_panel(
            "Index update cost per position",
            "The tracker's index apply time per position (stale checks, upserts, lock waits), the A/B's update cost "
            "(casemesh_proximity_tracker_index_update_seconds, one observation per batch: its apply time over its "
            "positions). The mean is per position averaged over batches; the 99th percentile is of the batches' "
            "means.", "s",
            refs([(mean("casemesh_proximity_tracker_index_update_seconds", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_tracker_index_update_seconds", jobs), "p99 of batches")]),
            width=6))
        .with_panel(timeseries_panel(
            "Cell and shard changes per applied position",
            "Share of applied positions that moved their entity into another H3 cell "
            "(casemesh_proximity_tracker_cell_changes_total: an unlink and a link, where a move inside the cell "
            "replaces the entry; finer cells, more of them) and into another shard "
            "(casemesh_proximity_tracker_shard_changes_total: two shard locks taken).", "percentunit",
            refs([(f"{rate('casemesh_proximity_tracker_cell_changes_total', jobs)} / "
                   f"{rate('casemesh_proximity_tracker_positions_total', applied)}", "cell changes"),
                  (f"{rate('casemesh_proximity_tracker_shard_changes_total', jobs)} / "
                   f"{rate('casemesh_proximity_tracker_positions_total', applied)}", "shard changes")]), width=6))
        .with_panel(timeseries_panel(
            "Entities and gateway streams",
            "Entities in the tracker's index (casemesh_proximity_tracker_entities: reported within expiry_s) and "
            "StreamPositions streams open (casemesh_proximity_tracker_streams: one per device gateway).", "short",
            refs([(f"sum(casemesh_proximity_tracker_entities{jobs})", "entities"),
                  (f"sum(casemesh_proximity_tracker_streams{jobs})", "gateway streams")]), width=6))
    )
    board = (
        board.with_row(Row("Geofencing: 95% of fence events written within 2 s of their position's send"))
        .with_panel(latency_panel(
            "Event delay vs 2 s",
            "From a position's sent_at (the device's clock) to the durable write of the fence event it caused "
            "(casemesh_proximity_geofence_event_delay_seconds): the gateway's stream, the tracker's forward and the "
            "group commit; the watch stream's last hop is not in it. The dashed line is the SLO fence-notify-server "
            "(the twin of fence-notify).", EVENT_DELAY, jobs, (), "", width=6, threshold_s=EVENT_DELAY_S))
        .with_panel(timeseries_panel(
            "Events written within 2 s",
            f"Share of fence events written within 2 s of their position's send (le=\"{le(EVENT_DELAY_S)}\" bucket "
            f"over the count of casemesh_proximity_geofence_event_delay_seconds: fence-notify-server); the dashed "
            f"line is the target {EVENT_DELAY_TARGET:g}.", "percentunit",
            [query(within(EVENT_DELAY, jobs, EVENT_DELAY_S), "within 2 s")],
            width=6, threshold_line=(EVENT_DELAY_TARGET, "red"), max_value=1))
        .with_panel(timeseries_panel(
            "Events by transition",
            "Fence events written per second (casemesh_proximity_geofence_events_total), ENTER or EXIT, each once: "
            "a position is evaluated once (stale ones skipped by the entity's sequence) and its events committed "
            "with the entity's state.", "ops",
            [query(rate("casemesh_proximity_geofence_events_total", jobs, ("transition",)), "{{transition}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Positions evaluated",
            "Positions EvaluatePositions evaluated per second (casemesh_proximity_geofence_positions_total): applied "
            "(newer than the entity's last evaluated) or stale (a resend of a batch already committed).", "ops",
            [query(rate("casemesh_proximity_geofence_positions_total", jobs, ("result",)), "{{result}}")],
            width=6, stacked=True))
        .with_panel(timeseries_panel(
            "Fences measured per position",
            "Fences whose distance was measured for one applied position, mean and 99th percentile "
            "(casemesh_proximity_geofence_candidates): the fences of the position's cell, the fence index's cost "
            "(a scan would measure every fence).", "short",
            refs([(mean("casemesh_proximity_geofence_candidates", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_geofence_candidates", jobs), "p99")]), width=6))
        .with_panel(latency_panel(
            "Geofence group commit",
            "One group commit of entity states, events and fence changes to the SQLite file, fsync included "
            "(casemesh_proximity_geofence_commit_seconds): a batch is answered only once it is on disk.",
            "casemesh_proximity_geofence_commit_seconds", jobs, (), "", quantiles=(0.5, 0.99), width=6))
        .with_panel(timeseries_panel(
            "Calls per group commit",
            "EvaluatePositions batches and fence changes written by one group commit, mean and 99th percentile "
            "(casemesh_proximity_geofence_commit_batches): the gateways' batches share an fsync.", "short",
            refs([(mean("casemesh_proximity_geofence_commit_batches", jobs), "mean"),
                  (quantile(0.99, "casemesh_proximity_geofence_commit_batches", jobs), "p99")]), width=6))
        .with_panel(timeseries_panel(
            "Commit failures and events trimmed",
            "Group commits that failed per second (casemesh_proximity_geofence_commit_failures_total: nothing of them "
            "applied, their calls answered UNAVAILABLE and retried by the tracker), and events deleted by retention "
            "per second (casemesh_proximity_geofence_trimmed_events_total, beyond event_retention).", "ops",
            refs([(rate("casemesh_proximity_geofence_commit_failures_total", jobs), "commit failures"),
                  (rate("casemesh_proximity_geofence_trimmed_events_total", jobs), "events trimmed")]), width=6))
        .with_panel(timeseries_panel(
            "Fences, fence-index entries and entities",
            "Fences held (casemesh_proximity_geofence_fences) and (cell, fence) entries of the fence index "
            "(casemesh_proximity_geofence_index_cells: every cell that can hold a point inside the fence), and "
            "entities with a state (casemesh_proximity_geofence_entities: every entity ever evaluated).", "short",
            refs([(f"sum(casemesh_proximity_geofence_fences{jobs})", "fences"),
                  (f"sum(casemesh_proximity_geofence_index_cells{jobs})", "index entries"),
                  (f"sum(casemesh_proximity_geofence_entities{jobs})", "entities")]), width=6))
        .with_panel(timeseries_panel(
            "Newest event sequence",
            "The sequence of the newest fence event written (casemesh_proximity_geofence_last_sequence): one global "
            "sequence, a watcher resumes after the last it saw.", "short",
            [query(f"max(casemesh_proximity_geofence_last_sequence{jobs})", "last sequence")], width=6))
        .with_panel(timeseries_panel(
            "Watchers open",
            "WatchFenceEvents streams open (casemesh_proximity_geofence_watchers).", "short",
            [query(f"sum(casemesh_proximity_geofence_watchers{jobs})", "watchers")], width=6))
        .with_panel(timeseries_panel(
            "Watchers ended by the service",
            "Watchers the service ended per second, by reason (casemesh_proximity_geofence_watchers_ended_total): "
            "overflow (RESOURCE_EXHAUSTED: fell watcher_queue events behind; it resumes from the log), trimmed "
            "(OUT_OF_RANGE: resumed before the oldest event kept), shutdown (UNAVAILABLE).", "ops",
            [query(rate("casemesh_proximity_geofence_watchers_ended_total", jobs, ("reason",)), "{{reason}}")],
            width=6, stacked=True))
    )
    calls = selector(JOB, PROXIMITY_SERVICES)
    board = (
        board.with_row(Row("gRPC per proximity service"))
        .with_panel(timeseries_panel(
            "Request rate", "Calls handled per second by each proximity method. StreamPositions and WatchFenceEvents "
            "count streams when they end; EvaluatePositions is the tracker's forward of each batch.", "reqps",
            [query(rate("grpc_server_handled_total", calls, ("grpc_service", "grpc_method")),
                   "{{grpc_service}}/{{grpc_method}}")], width=8))
        .with_panel(timeseries_panel(
            "Errors by code", "Failed calls per second (codes other than OK, NotFound, InvalidArgument, AlreadyExists); "
            "the streams are left out. EvaluatePositions' Unavailable is a failed group commit (the tracker retries "
            "it).", "reqps",
            [query(rate("grpc_server_handled_total", selector(JOB, PROXIMITY_SERVICES, NOT_STREAMS, ERROR_CODES_MATCHER),
                        ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")], width=8, stacked=True))
        .with_panel(timeseries_panel(
            "p99 duration", "99th percentile server handling time per method, the streams left out. Dots are "
            "exemplars.", "s",
            [query(quantile(0.99, HANDLING, selector(JOB, PROXIMITY_SERVICES, NOT_STREAMS),
                            ("grpc_service", "grpc_method")), "{{grpc_service}}/{{grpc_method}}", exemplar=True)],
            width=8))
    )
    return board
