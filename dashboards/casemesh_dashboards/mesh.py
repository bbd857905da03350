"""Mesh overview: every gRPC method of every casemesh service, server side and client side.

Reads only the go-grpc-prometheus metrics the runtime exposes (services/runtime/metrics.py,
DESIGN.md §6): ``grpc_server_started_total``, ``grpc_server_handled_total{grpc_code}``,
``grpc_server_handling_seconds`` (histogram), ``grpc_server_msg_received_total``,
``grpc_server_msg_sent_total`` and the ``grpc_client_*`` mirrors, labelled ``grpc_service``,
``grpc_method``, ``grpc_type``. In flight is started minus handled (go-grpc-prometheus has
no gauge for it). Client-side series are the calls *to* the selected services, made by
other services of the mesh: the latency a caller sees beside the server's handling time.
The runtime row reads every process's loop probe (services/runtime/loop_probe.py):
``casemesh_event_loop_lag_seconds`` (histogram) and ``casemesh_gc_pause_seconds{generation}``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from .common import (
    ERROR_CODES_MATCHER, QUANTILES, latency_panel, new_dashboard, quantile, query, query_variable, rate, refs,
    selector, stat_panel, timeseries_panel,
)

UID = "casemesh-mesh-overview"
FILTER = ('job=~"$job"', 'grpc_service=~"$service"', 'grpc_method=~"$method"')
METHOD = ("grpc_service", "grpc_method")
METHOD_LEGEND = "{{grpc_service}}/{{grpc_method}}"


def error_ratio(errors: str, all_calls: str, by: tuple[str, ...] = ()) -> str:
    """Failed calls over all calls; 0 (not "no data") for methods without failures."""
    total = rate("grpc_server_handled_total", all_calls, by)
    return f"({rate('grpc_server_handled_total', errors, by)} or {total} * 0) / {total}"


def build() -> Dashboard:
    all_calls = selector(*FILTER)
    non_ok = selector(*FILTER, 'grpc_code!="OK"')
    # Client-side series come from the callers' processes (other jobs): select them by callee only.
    to_callee = selector(*FILTER[1:])
    callee_non_ok = selector(*FILTER[1:], 'grpc_code!="OK"')
    errors = selector(*FILTER, ERROR_CODES_MATCHER)
    in_flight = "sum by ({by}) (grpc_server_started_total{sel}) - sum by ({by}) (grpc_server_handled_total{sel})"
    board = (
        new_dashboard(UID, "casemesh / mesh overview",
                      "Rate, errors and duration of every gRPC method of the casemesh services, server side and client side "
                      "(go-grpc-prometheus metrics). Click an exemplar dot on a latency panel to open its trace in Jaeger.",
                      ["grpc", "mesh"])
        .with_variable(query_variable("job", "Job", "label_values(grpc_server_handled_total, job)"))
        .with_variable(query_variable("service", "Service", 'label_values(grpc_server_handled_total{job=~"$job"}, grpc_service)'))
        .with_variable(query_variable("method", "Method",
                                      'label_values(grpc_server_handled_total{job=~"$job", grpc_service=~"$service"}, grpc_method)'))
    )

    board = (
        board.with_row(Row("Overview"))
        .with_panel(stat_panel("Requests/s", "Calls handled per second by the selected methods (server side).", "reqps",
                               [query(rate("grpc_server_handled_total", all_calls))]))
        .with_panel(stat_panel("Error ratio",
                               "Share of calls that ended with a code other than OK, NotFound, InvalidArgument or AlreadyExists "
                               "(those are correct answers to the request, as the availability SLO counts them).",
                               "percentunit",
                               [query(error_ratio(errors, all_calls))],
                               steps=((0.001, "orange"), (0.01, "red")), decimals=3))
        .with_panel(stat_panel("p99 duration", "99th percentile of server handling time over all selected methods.", "s",
                               [query(quantile(0.99, "grpc_server_handling_seconds", all_calls))],
                               steps=((0.01, "orange"), (0.1, "red"))))
        .with_panel(stat_panel("In flight", "Calls started and not yet handled (started minus handled), server side.", "short",
                               [query(f"sum(grpc_server_started_total{all_calls}) - sum(grpc_server_handled_total{all_calls})")]))
    )

    board = (
        board.with_row(Row("Requests and errors (server side)"))
        .with_panel(timeseries_panel("Request rate", "Calls handled per second, per method.", "reqps",
                                     [query(rate("grpc_server_handled_total", all_calls, METHOD), METHOD_LEGEND)]))
        .with_panel(timeseries_panel("Non-OK responses by code",
                                     "Calls per second that ended with a status other than OK, per method and grpc_code "
                                     "(Go's spelling: NotFound, DeadlineExceeded, Unavailable, ...).",
                                     "reqps",
                                     [query(rate("grpc_server_handled_total", non_ok, (*METHOD, "grpc_code")),
                                            "{{grpc_method}} {{grpc_code}}")],
                                     stacked=True))
        .with_panel(timeseries_panel("Error ratio",
                                     "Share of calls per method that ended with a code other than OK, NotFound, InvalidArgument "
                                     "or AlreadyExists.",
                                     "percentunit",
                                     [query(error_ratio(errors, all_calls, METHOD), METHOD_LEGEND)],
                                     min_value=0))
        .with_panel(timeseries_panel("In flight", "Calls started and not yet handled, per method (started minus handled).", "short",
                                     [query(in_flight.format(by=", ".join(METHOD), sel=all_calls), METHOD_LEGEND)],
                                     min_value=0))
    )

    board = board.with_row(Row("Duration (server side)"))
    for q in QUANTILES:
        board = board.with_panel(latency_panel(
            f"p{q * 100:g} duration",
            f"{q * 100:g}th percentile of server handling time per method (histogram_quantile over "
            "grpc_server_handling_seconds_bucket). Dots are exemplars: click one to open its trace in Jaeger.",
            "grpc_server_handling_seconds", all_calls, METHOD, METHOD_LEGEND, quantiles=(q,), width=8))

    process = selector('job=~"$job"')
    board = (
        board.with_row(Row("Process runtime: event loop and GC"))
        .with_panel(timeseries_panel(
            "Event-loop lag p99",
            "99th percentile of how late each process's event-loop probe timer ran (due every 5 ms), per job and "
            "instance: time the loop was blocked by a callback (a flush, a sweep, a synchronous call) or the process "
            "was descheduled, which every call it served in that moment waited too. Below about 1 ms is uvloop's "
            "timer granularity. Dashed: the 2 ms target at half capacity (issue 10).",
            "s",
            [query(quantile(0.99, "casemesh_event_loop_lag_seconds", process, ("job", "instance")), "{{job}} {{instance}}")],
            threshold_line=(0.002, "orange"), min_value=0))
        .with_panel(timeseries_panel(
            "GC pause time",
            "Share of wall time each process spent paused in the garbage collector (every Python thread stops), "
            "per job and generation: rate of casemesh_gc_pause_seconds_sum. Generation 2 collections are the long ones.",
            "percentunit",
            [query(rate("casemesh_gc_pause_seconds_sum", process, ("job", "generation")), "{{job}} gen {{generation}}")],
            min_value=0))
    )

    board = (
        board.with_row(Row("Callers (client side) beside the server"))
        .with_panel(timeseries_panel(
            "p99: caller vs server",
            "99th percentile latency of calls to the selected methods as the calling service sees them "
            "(grpc_client_handling_seconds, unary calls) beside the server's handling time. The gap is the network, "
            "queueing and (de)serialisation between them. Dots are exemplars.",
            "s",
            refs([(quantile(0.99, "grpc_client_handling_seconds", to_callee, METHOD), "client " + METHOD_LEGEND),
                  (quantile(0.99, "grpc_server_handling_seconds", all_calls, METHOD), "server " + METHOD_LEGEND)],
                 exemplar=True)))
        .with_panel(timeseries_panel(
            "p50: caller vs server", "Median latency of the same calls, caller and server.", "s",
            refs([(quantile(0.5, "grpc_client_handling_seconds", to_callee, METHOD), "client " + METHOD_LEGEND),
                  (quantile(0.5, "grpc_server_handling_seconds", all_calls, METHOD), "server " + METHOD_LEGEND)],
                 exemplar=True)))
        .with_panel(timeseries_panel(
            "Request rate: caller vs server",
            "Calls started per second by callers in the mesh (grpc_client_started_total) beside calls handled by the "
            "server (which also counts calls from outside the mesh, such as the harness).",
            "reqps",
            refs([(rate("grpc_client_started_total", to_callee, METHOD), "client " + METHOD_LEGEND),
                  (rate("grpc_server_handled_total", all_calls, METHOD), "server " + METHOD_LEGEND)])))
        .with_panel(timeseries_panel(
            "Caller-side non-OK by code",
            "Calls per second that the calling service saw fail, per method and grpc_code (after its retries on Unavailable).",
            "reqps",
            [query(rate("grpc_client_handled_total", callee_non_ok, (*METHOD, "grpc_code")), "{{grpc_method}} {{grpc_code}}")],
            stacked=True))
    )

    board = (
        board.with_row(Row("Stream messages"))
        .with_panel(timeseries_panel(
            "Messages: server",
            "Messages per second the server received and sent, per method (one each for a unary call; many for streams).",
            "short",
            refs([(rate("grpc_server_msg_received_total", all_calls, METHOD), "received " + METHOD_LEGEND),
                  (rate("grpc_server_msg_sent_total", all_calls, METHOD), "sent " + METHOD_LEGEND)])))
        .with_panel(timeseries_panel(
            "Messages: callers",
            "Messages per second callers in the mesh sent and received, per method.",
            "short",
            refs([(rate("grpc_client_msg_sent_total", to_callee, METHOD), "sent " + METHOD_LEGEND),
                  (rate("grpc_client_msg_received_total", to_callee, METHOD), "received " + METHOD_LEGEND)])))
    )
    return board
