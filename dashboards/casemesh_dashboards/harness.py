"""Harness / SLOs: the load generator's own health, latency from the intended send time, and every shipped SLO.

Reads what ``casemesh run`` exposes on its own /metrics during a run:
``casemesh_harness_rpc_latency_seconds{grpc_service,grpc_method,grpc_code}`` and
``casemesh_harness_journey_latency_seconds{journey,grpc_code}`` (histograms, latency from each
request's intended send time, free of coordinated omission), ``casemesh_harness_send_lag_seconds``
(histogram), ``casemesh_harness_arrivals_intended_total`` and ``casemesh_harness_arrivals_sent_total``
(counters), and per SLO ``casemesh_slo_target{slo}`` (the objective, e.g. 0.99) and
``casemesh_slo_threshold_seconds{slo}`` (its latency threshold, where it has one).

The SLO rows are generated from the shipped OpenSLO files (harness/profiles/*.slo.yaml, loaded
with the harness's own parser), one row per SLO. A ``casemesh``-sourced SLO's good/total selection
becomes PromQL over the harness histograms (a latency threshold selects the ``le`` bucket equal to
it: the harness exports the services' buckets, LATENCY_BUCKETS_S, and a threshold that is not one
of them gets a note instead of panels); a ``Prometheus``-sourced SLO's own queries are used with
``$window`` replaced by Grafana's range. Both are compared with the target the harness publishes
(the file's when it publishes none). Budget burnt is ``(1 - SLI) / (1 - target)``, as the
harness's verdict computes it (docs/slos.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import grpc
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from casemesh.harness.cli import MAX_SEND_LAG_P99_MS
from casemesh.harness.profile import PROFILES_DIR, SLO_FILE_SUFFIX
from casemesh.harness.slo import PromQuery, Selector, Slo, load_slos
from casemesh.services.runtime.metrics import LATENCY_BUCKETS_S, code_label
from casemesh.services.runtime.tracing import split_method

from .common import (
    RATE, latency_panel, le, new_dashboard, quantile, query, query_variable, rate, refs, selector, stat_panel,
    table_panel, text_panel, timeseries_panel,
)

UID = "casemesh-harness-slos"
JOB = 'job=~"$job"'
RPC = "casemesh_harness_rpc_latency_seconds"
JOURNEY = "casemesh_harness_journey_latency_seconds"
SEND_LAG = "casemesh_harness_send_lag_seconds"
INTENDED = "casemesh_harness_arrivals_intended_total"
SENT = "casemesh_harness_arrivals_sent_total"
TARGET = "casemesh_slo_target"
THRESHOLD = "casemesh_slo_threshold_seconds"


def slo_files() -> list[Path]:
    """The shipped OpenSLO files (``harness/profiles/*.slo.yaml``), sorted by name."""
    return sorted(PROFILES_DIR.glob(f"*{SLO_FILE_SUFFIX}"))


def series(side: Selector) -> str:
    """The harness histogram series one side of an SLO counts: ``..._bucket{le=...}`` with a latency bound, else ``..._count``."""
    matchers = [JOB]
    if side.journey is not None:
        histogram = JOURNEY
        matchers.append(f'journey="{side.journey}"')
    else:
        histogram = RPC
        if side.rpc is not None:
            service, method = split_method(side.rpc)
            matchers += [f'grpc_service="{service}"', f'grpc_method="{method}"']
    if side.codes is not None:
        matchers.append(f'grpc_code=~"{"|".join(code_label(grpc.StatusCode[name]) for name in side.codes)}"')
    if side.latency_le_ms is not None:
        bucket = 'le="' + le(side.latency_le_ms / 1000) + '"'
        return f"{histogram}_bucket{selector(*matchers, bucket)}"
    return f"{histogram}_count{selector(*matchers)}"


def unbucketed_threshold(slo: Slo) -> float | None:
    """The latency threshold (s) of a ``casemesh``-sourced SLO when it is not a bucket bound of the harness histograms, else None.

    The harness exports its histograms with the services' buckets (LATENCY_BUCKETS_S):
    a threshold between two bounds cannot be counted from Prometheus.
    """
    if isinstance(slo.good, Selector) and slo.good.latency_le_ms is not None:
        threshold_s = slo.good.latency_le_ms / 1000
        if not any(math.isclose(threshold_s, bound) for bound in LATENCY_BUCKETS_S):
            return threshold_s
    return None


def sli(slo: Slo, window: str) -> str:
    """Good over total events of ``slo`` in ``window``: harness histograms for a ``casemesh`` source, the SLO's PromQL otherwise."""
    if isinstance(slo.good, PromQuery) and isinstance(slo.total, PromQuery):
        return f"({slo.good.expression(window)}) / ({slo.total.expression(window)})"
    return f"sum(increase({series(slo.good)}[{window}])) / sum(increase({series(slo.total)}[{window}]))"


def target(slo: Slo, window: str | None = None) -> str:
    """The objective the harness publishes for ``slo`` (over ``window``, so a finished run still shows it).

    Falls back to the target in the SLO file when the harness publishes none
    (no run, or a Prometheus that does not scrape the harness).
    """
    gauge = f'{TARGET}{{slo="{slo.name}"}}'
    published = f"max(max_over_time({gauge}[{window}]))" if window else f"max({gauge})"
    return f"({published} or vector({slo.target:g}))"


def slo_row(file: str, slo: Slo) -> Row:
    """A collapsed row for ``slo`` (of the SLO file ``file``): SLI and budget over the range, SLI and burn rate over time."""
    what = f"{slo.objective_text} (SLO {slo.name} of {file})"
    row = Row(f"SLO: {slo.display_name} ({file})").collapsed(True)
    missing_bucket = unbucketed_threshold(slo)
    if missing_bucket is not None:
        return row.with_panel(text_panel(
            "Not computable from Prometheus",
            f"**{slo.display_name}** ({what}): its threshold, {missing_bucket:g} s, is not a bucket bound of the "
            f"harness histograms ({', '.join(f'{b:g}' for b in LATENCY_BUCKETS_S)} s), so Prometheus cannot count the "
            "calls within it. The harness's own verdict (`result.json`, the terminal table) judges it exactly.", height=4))
    sli_range, sli_window = sli(slo, "$__range"), sli(slo, RATE)
    source = ("the harness histograms (latency from the intended send time)" if slo.source == "casemesh"
              else "the SLO's own PromQL over the services' metrics")
    return (
        row
        .with_panel(stat_panel(
            "SLI over the range",
            f"Good over all events in the selected time range, from {source}: {what}. Green when it meets the target "
            f"{slo.target:g}. Select exactly the measured window of a run to read the harness's verdict.",
            "percentunit", [query(sli_range, "SLI", instant=True)],
            width=4, height=8, base="red", steps=((slo.target, "green"),), decimals=4))
        .with_panel(stat_panel(
            "Error budget burnt (range)",
            "(1 - SLI) / (1 - target) over the selected range, the target being casemesh_slo_target as the harness "
            "publishes it (the SLO file's when it publishes none): 0 no bad events, 100% the budget exactly used up, "
            "above 100% the SLO failed.",
            "percentunit", [query(f"(1 - ({sli_range})) / (1 - {target(slo, '$__range')})", "burnt", instant=True)],
            width=4, height=8, steps=((0.75, "orange"), (1.0, "red")), decimals=1))
        .with_panel(timeseries_panel(
            "SLI vs target",
            f"Good over all events per {RATE} window ({what}) and the target.",
            "percentunit", refs([(sli_window, "SLI"), (target(slo), "target")]), width=8))
        .with_panel(timeseries_panel(
            "Error budget burn rate",
            "(1 - SLI) / (1 - target) per window: at 1 the budget is being spent exactly as fast as the objective "
            "allows; above the dashed line, faster.",
            "short", [query(f"(1 - ({sli_window})) / (1 - {target(slo)})", "burn rate")],
            width=8, threshold_line=(1.0, "red"), min_value=0))
    )


def build() -> Dashboard:
    rpcs = selector(JOB, 'grpc_method=~"$method"')
    journeys = selector(JOB, 'journey=~"$journey"')
    lag_limit_s = MAX_SEND_LAG_P99_MS / 1000
    board = (
        new_dashboard(UID, "casemesh / harness and SLOs",
                      "What the casemesh harness measures during a run: arrivals intended vs sent and its send lag (is the "
                      "load generator keeping up?), RPC and journey latency from the intended send time, and every "
                      "shipped SLO's indicator against its target with its error budget.",
                      ["harness", "slo"])
        .with_variable(query_variable("job", "Job", f"label_values({SENT}, job)"))
        .with_variable(query_variable("method", "RPC method", f'label_values({RPC}_count{{job=~"$job"}}, grpc_method)'))
        .with_variable(query_variable("journey", "Journey", f'label_values({JOURNEY}_count{{job=~"$job"}}, journey)'))
    )

    board = (
        board.with_row(Row("Load generator"))
        .with_panel(timeseries_panel(
            "Arrivals: intended vs sent",
            "Arrivals per second the schedule intended (open loop: fixed by the arrival process) and requests actually "
            "sent. Sent below intended means the generator fell behind, not that the system is slow.",
            "reqps", refs([(f"sum(rate({INTENDED}{selector(JOB)}[{RATE}]))", "intended"),
                           (f"sum(rate({SENT}{selector(JOB)}[{RATE}]))", "sent")]), width=8))
        .with_panel(latency_panel(
            "Send lag",
            f"Actual minus intended send time. The run is marked invalid when its p99 exceeds {MAX_SEND_LAG_P99_MS:g} ms "
            "(dashed line): the latencies would then measure the load generator, not the system.",
            SEND_LAG, selector(JOB), (), "", quantiles=(0.5, 0.99), width=8, threshold_s=lag_limit_s))
        .with_panel(stat_panel(
            "Send lag p99 (range)", f"Over the selected range; red above {MAX_SEND_LAG_P99_MS:g} ms (run invalid).", "s",
            [query(quantile(0.99, SEND_LAG, selector(JOB), window="$__range"), instant=True)],
            width=4, height=8, steps=((lag_limit_s, "red"),)))
        .with_panel(stat_panel(
            "Not yet sent", "Intended arrivals minus sent requests so far: the generator's backlog.", "short",
            [query(f"sum({INTENDED}{selector(JOB)}) - sum({SENT}{selector(JOB)})")],
            width=4, height=8, steps=((1, "orange"), (100, "red"))))
    )

    board = board.with_row(Row("RPCs, latency from the intended send time"))
    for q in (0.5, 0.99):
        board = board.with_panel(latency_panel(
            f"RPC p{q * 100:g}", f"{q * 100:g}th percentile per RPC, measured from each request's intended send time "
            "(coordinated-omission free). No exemplars: the harness builds these buckets from its HDR histograms at "
            "scrape time; a journey's trace is linked from the services' latency graphs.",
            RPC, rpcs, ("grpc_service", "grpc_method"), "{{grpc_method}}", quantiles=(q,), width=8))
    board = board.with_panel(timeseries_panel(
        "RPC results by code", "Calls per second completed by the harness, per method and grpc_code.", "reqps",
        [query(rate(f"{RPC}_count", rpcs, ("grpc_method", "grpc_code")), "{{grpc_method}} {{grpc_code}}")],
        width=8, stacked=True))

    board = board.with_row(Row("Journeys"))
    for q in (0.5, 0.99):
        board = board.with_panel(latency_panel(
            f"Journey p{q * 100:g}", f"{q * 100:g}th percentile of each journey's end-to-end latency (its RPCs in sequence, from the "
            "intended send time).",
            JOURNEY, journeys, ("journey",), "{{journey}}", quantiles=(q,), width=8))
    board = board.with_panel(timeseries_panel(
        "Journeys by code", "Journeys per second completed, per journey and final grpc_code.", "reqps",
        [query(rate(f"{JOURNEY}_count", journeys, ("journey", "grpc_code")), "{{journey}} {{grpc_code}}")],
        width=8, stacked=True))

    board = (
        board.with_row(Row("SLOs of the running profile (each shipped SLO has a collapsed row below)"))
        .with_panel(table_panel(
            "Targets and thresholds",
            "The SLOs the harness is judging now, as it publishes them: objective (casemesh_slo_target) and latency "
            "threshold where the SLO has one (casemesh_slo_threshold_seconds).",
            [query(f"max by (slo) ({TARGET}{selector(JOB)})", "target", "A", instant=True, table_format=True),
             query(f"max by (slo) ({THRESHOLD}{selector(JOB)})", "threshold", "B", instant=True, table_format=True)],
            rename={"slo": "SLO", "Value #A": "target", "Value #B": "threshold (s)"}))
    )
    for path in slo_files():
        for slo in load_slos(path):
            board = board.with_row(slo_row(path.name, slo))
    return board
