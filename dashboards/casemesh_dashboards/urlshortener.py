"""URL shortener: its two latency SLOs seen from the server, its cache, its click pipeline and its ID leases.

Case study: shared/seeds/000_…, "URL Shortener"; services/urlshortener/service.py. The SLO
thresholds and targets are read from the shipped OpenSLO file
(harness/profiles/url-shortener.slo.yaml), so the lines drawn here are the ones the harness
judges. The harness measures those SLOs from each request's intended send time (the
"harness / SLOs" dashboard); this one shows the server's share of that latency.

Service metrics (besides the gRPC ones): ``casemesh_urlshortener_cache_lookups_total{result}``,
``casemesh_urlshortener_clicks_total{outcome}``, ``casemesh_urlshortener_id_leases_total``.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.profile import PROFILES_DIR
from casemesh.harness.slo import Selector, Slo, load_slos

from .common import (
    ERROR_CODES_MATCHER, RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector, stat_panel,
    timeseries_panel, within,
)

UID = "casemesh-url-shortener"
SLO_FILE = PROFILES_DIR / "url-shortener.slo.yaml"
SERVICE = "casemesh.urlshortener.v1.UrlShortenerService"
IDGEN = "casemesh.idgen.v1.IdGeneratorService"
ANALYTICS = "casemesh.analytics.v1.AnalyticsService"
JOB = 'job=~"$job"'


def latency_slo(slos: list[Slo], method: str) -> Slo:
    """The shipped latency SLO of ``UrlShortenerService/method`` (its threshold and target drive the panels)."""
    for slo in slos:
        if (isinstance(slo.total, Selector) and isinstance(slo.good, Selector)
                and slo.total.rpc == f"{SERVICE}/{method}" and slo.good.latency_le_ms is not None):
            return slo
    raise LookupError(f"{SLO_FILE.name} has no latency SLO for {SERVICE}/{method}")


def slo_panels(board: Dashboard, slo: Slo, method: str) -> Dashboard:
    threshold_s = slo.good.latency_le_ms / 1000
    calls = selector(JOB, f'grpc_service="{SERVICE}"', f'grpc_method="{method}"')
    return (
        board
        .with_panel(latency_panel(
            f"{method} duration vs SLO ({slo.good.latency_le_ms:g} ms)",
            f"Server handling time of {method}; the dashed line is the SLO threshold of '{slo.display_name}' "
            f"({slo.objective_text}). The SLO itself is judged by the harness from the intended send time, which adds "
            "the network and client queueing. Dots are exemplars: click one to open the trace in Jaeger.",
            "grpc_server_handling_seconds", calls, (), "", width=8, threshold_s=threshold_s))
        .with_panel(timeseries_panel(
            f"{method} within {slo.good.latency_le_ms:g} ms",
            f"Share of {method} calls the server handled within {slo.good.latency_le_ms:g} ms (the histogram's "
            f"le=\"{le(threshold_s)}\" bucket over its count); the dashed line is the target {slo.target:.4g}.",
            "percentunit",
            [query(within("grpc_server_handling_seconds", calls, threshold_s), "server side")],
            width=8, threshold_line=(slo.target, "red"), max_value=1))
        .with_panel(stat_panel(
            f"{method} within {slo.good.latency_le_ms:g} ms (range)",
            f"The same share over the whole time range selected, against the target {slo.target:.4g}.",
            "percentunit",
            [query(within("grpc_server_handling_seconds", calls, threshold_s, window="$__range"), instant=True)],
            width=8, height=8, base="red", steps=((slo.target, "green"),), decimals=3))
    )


def build() -> Dashboard:
    slos = load_slos(SLO_FILE)
    resolve, shorten = latency_slo(slos, "Resolve"), latency_slo(slos, "Shorten")
    api = selector(JOB, f'grpc_service="{SERVICE}"')
    api_errors = selector(JOB, f'grpc_service="{SERVICE}"', ERROR_CODES_MATCHER)
    lookups = "casemesh_urlshortener_cache_lookups_total"
    board = (
        new_dashboard(UID, "casemesh / url shortener",
                      "The URL-shortener case study: Resolve and Shorten against their SLOs (server side), the Resolve cache, "
                      "click events sent to analytics in batches, and ID blocks leased from the ID service.",
                      ["url-shortener"])
        .with_variable(query_variable("job", "Job", f'label_values(grpc_server_handled_total{{grpc_service="{SERVICE}"}}, job)'))
    )
    board = slo_panels(board.with_row(Row(f"Resolve: {resolve.display_name}")), resolve, "Resolve")
    board = slo_panels(board.with_row(Row(f"Shorten: {shorten.display_name}")), shorten, "Shorten")

    board = (
        board.with_row(Row("API traffic"))
        .with_panel(timeseries_panel("Calls by method and code", "UrlShortenerService calls handled per second, per method and grpc_code.",
                                     "reqps", [query(rate("grpc_server_handled_total", api, ("grpc_method", "grpc_code")),
                                                     "{{grpc_method}} {{grpc_code}}")]))
        .with_panel(timeseries_panel("Errors by method and code",
                                     "Calls per second that failed (codes other than OK, NotFound, InvalidArgument, AlreadyExists: "
                                     "a missing or expired code is a correct NotFound).",
                                     "reqps", [query(rate("grpc_server_handled_total", api_errors, ("grpc_method", "grpc_code")),
                                                     "{{grpc_method}} {{grpc_code}}")], stacked=True))
    )

    board = (
        board.with_row(Row("Resolve cache (LRU in front of the sharded store)"))
        .with_panel(stat_panel("Hit ratio (range)", "Resolve cache hits over all lookups in the selected time range.", "percentunit",
                               [query(f'sum(increase({lookups}{{{JOB}, result="hit"}}[$__range])) / sum(increase({lookups}{{{JOB}}}[$__range]))',
                                      instant=True)],
                               width=6, height=8, base="red", steps=((0.8, "orange"), (0.95, "green")), decimals=3))
        .with_panel(timeseries_panel("Hit ratio", "Resolve cache hits over all lookups.", "percentunit",
                                     [query(f'sum(rate({lookups}{{{JOB}, result="hit"}}[{RATE}])) / sum(rate({lookups}{{{JOB}}}[{RATE}]))',
                                            "hit ratio")], width=9, min_value=0, max_value=1))
        .with_panel(timeseries_panel("Lookups by result", "Cache lookups per second: hit, or miss (read from the store).", "ops",
                                     [query(rate(lookups, selector(JOB), ("result",)), "{{result}}")], width=9, stacked=True))
    )

    clicks = "casemesh_urlshortener_clicks_total"
    record = selector(f'grpc_service="{ANALYTICS}"', 'grpc_method="RecordClicks"')
    board = (
        board.with_row(Row("Click events to analytics (asynchronous batches)"))
        .with_panel(timeseries_panel("Click events by outcome",
                                     "Click events per second sent to analytics, or dropped because the bounded buffer was full.",
                                     "ops", [query(rate(clicks, selector(JOB), ("outcome",)), "{{outcome}}")], width=8))
        .with_panel(stat_panel("Dropped clicks (range)", "Click events dropped in the selected time range (buffer full).", "short",
                               [query(f'sum(increase({clicks}{{{JOB}, outcome="dropped"}}[$__range])) or vector(0)', instant=True)],
                               width=4, height=8, steps=((1, "red"),)))
        .with_panel(timeseries_panel("RecordClicks batches",
                                     "Batches sent per second by the URL shortener (caller side) and handled by analytics, by code.",
                                     "reqps",
                                     refs([(rate("grpc_client_handled_total", record, ("grpc_code",)), "sent {{grpc_code}}"),
                                           (rate("grpc_server_handled_total", record, ("grpc_code",)), "handled {{grpc_code}}")]),
                                     width=6))
        .with_panel(latency_panel("RecordClicks duration (caller)",
                                  "How long a batch takes as the URL shortener sees it. Dots are exemplars.",
                                  "grpc_client_handling_seconds", record, (), "", quantiles=(0.5, 0.99), width=6))
    )

    lease = selector(f'grpc_service="{IDGEN}"', 'grpc_method="LeaseIds"')
    leases = "casemesh_urlshortener_id_leases_total"
    board = (
        board.with_row(Row("ID blocks leased from the ID service"))
        .with_panel(timeseries_panel("ID leases", "ID blocks leased per second (256 IDs each, refilled below 64 left).", "ops",
                                     [query(rate(leases, selector(JOB)), "leases")], width=8))
        .with_panel(stat_panel("Leases (range)", "ID blocks leased in the selected time range.", "short",
                               [query(f"sum(increase({leases}{{{JOB}}}[$__range]))", instant=True)], width=4, height=8))
        .with_panel(latency_panel("LeaseIds duration: caller vs ID service",
                                  "LeaseIds latency as the URL shortener sees it (client) and as the ID service handles it. "
                                  "Dots are exemplars; a Shorten that waited for a lease shows this hop in its trace.",
                                  "grpc_client_handling_seconds", lease, (), "client", quantiles=(0.5, 0.99), width=12)
                    .with_target(query(quantile(0.99, "grpc_server_handling_seconds", lease), "p99 server", "C", exemplar=True)))
    )
    return board
