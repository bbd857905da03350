"""Shared pieces of the casemesh dashboards: datasources, PromQL helpers and panel builders.

Every dashboard is built with the Grafana foundation SDK (``grafana_foundation_sdk``,
pinned to the 11.x line for the current classic JSON schema); nothing here writes
dashboard JSON by hand. The helpers only fix casemesh's conventions: datasources
referenced by fixed uid (the uids of ``dashboards/provisioning/grafana/datasources``),
rate windows of ``$__rate_interval``, exemplars on every latency query of a histogram
that has them, explicit query ref ids and panel ids, seconds as the latency unit.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from grafana_foundation_sdk.builders import common as common_builder
from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus, stat, table, text, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as model
from grafana_foundation_sdk.models import text as text_model

from casemesh.harness.slo import load_slos
from prometheus_client.utils import floatToGoString

#: Datasource uids, as provisioned in dashboards/provisioning/grafana/datasources/casemesh.yaml.
PROMETHEUS_UID = "prometheus"
JAEGER_UID = "jaeger"
PROMETHEUS = model.DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)

RATE = "$__rate_interval"
#: Every casemesh dashboard carries this tag; the dashboards link to each other through it.
TAG = "casemesh"
#: Status codes that are correct answers to a bad or unlucky request, not failures of the service:
#: the availability SLO of harness/profiles/url-shortener.slo.yaml counts exactly these as good.
ANSWERED_CODES = ("OK", "NotFound", "InvalidArgument", "AlreadyExists")
ERROR_CODES_MATCHER = f'grpc_code!~"{"|".join(ANSWERED_CODES)}"'
QUANTILES = (0.5, 0.95, 0.99)


def le(seconds: float) -> str:
    """The ``le`` label value of a histogram bucket bound as prometheus_client exposes it (0.01 → ``0.01``, 2 → ``2.0``)."""
    return floatToGoString(seconds)


def selector(*matchers: str) -> str:
    """``{a="1", b=~"2"}`` from matcher strings, skipping empty ones."""
    return "{" + ", ".join(m for m in matchers if m) + "}"


def rate(metric: str, matchers: str, by: Sequence[str] = (), window: str = RATE) -> str:
    """``sum by (BY) (rate(METRIC{...}[WINDOW]))`` (``sum(...)`` without ``by``)."""
    grouping = f" by ({', '.join(by)})" if by else ""
    return f"sum{grouping} (rate({metric}{matchers}[{window}]))"


def quantile(q: float, histogram: str, matchers: str, by: Sequence[str] = (), window: str = RATE) -> str:
    """``histogram_quantile(Q, sum by (le, BY) (rate(HISTOGRAM_bucket{...}[WINDOW])))``."""
    return f"histogram_quantile({q:g}, {rate(f'{histogram}_bucket', matchers, ('le', *by), window)})"


def mean(histogram: str, matchers: str, by: Sequence[str] = ()) -> str:
    """Mean observation of ``histogram`` over the rate window: ``_sum`` rate over ``_count`` rate (per ``by``)."""
    return f"{rate(f'{histogram}_sum', matchers, by)} / {rate(f'{histogram}_count', matchers, by)}"


def slo_targets(path: Path) -> dict[str, float]:
    """SLO name → target (a ratio, 0 to 1) of every SLO of the OpenSLO file ``path`` (a dashboard draws a profile's
    targets from its file, so that the two cannot drift apart)."""
    return {slo.name: slo.target for slo in load_slos(path)}


def within(histogram: str, matchers: str, threshold_s: float, by: Sequence[str] = (), window: str = RATE) -> str:
    """Share of ``histogram``'s observations at most ``threshold_s``: the ``le`` bucket over the count.

    ``threshold_s`` must be a bucket bound of the histogram (the services' buckets:
    services/runtime/metrics.py LATENCY_BUCKETS_S).
    """
    grouping = f" by ({', '.join(by)})" if by else ""
    bucket_matchers = matchers[:-1] + (", " if matchers != "{}" else "") + f'le="{le(threshold_s)}"' + "}"
    good = f"sum{grouping} (increase({histogram}_bucket{bucket_matchers}[{window}]))"
    total = f"sum{grouping} (increase({histogram}_count{matchers}[{window}]))"
    return f"{good} / {total}"


def query(expr: str, legend: str = "__auto", ref: str = "A", *, exemplar: bool = False, instant: bool = False,
          table_format: bool = False) -> prometheus.Dataquery:
    """A Prometheus query on the provisioned datasource."""
    built = prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref).datasource(PROMETHEUS)
    if exemplar:
        built = built.exemplar(True)
    if instant:
        built = built.instant()
    else:
        built = built.range()
    if table_format:
        built = built.format(prometheus.prometheus.PromQueryFormat.TABLE)
    return built


def refs(expressions: Iterable[tuple[str, str]], *, exemplar: bool = False) -> list[prometheus.Dataquery]:
    """Queries A, B, C, ... from ``(expr, legend)`` pairs."""
    return [query(expr, legend, chr(ord("A") + i), exemplar=exemplar) for i, (expr, legend) in enumerate(expressions)]


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds: ``base`` colour below the first step, then each ``(value, colour)``."""
    return dashboard_builder.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(value=None, color=base), *(model.Threshold(value=v, color=c) for v, c in steps)]
    )


def timeseries_panel(title: str, description: str, unit: str, targets: Sequence[prometheus.Dataquery], *,
                     width: int = 12, height: int = 8, threshold_line: tuple[float, str] | None = None,
                     min_value: float | None = None, max_value: float | None = None, stacked: bool = False,
                     log_scale: bool = False) -> timeseries.Panel:
    """A time series panel; ``threshold_line`` draws ``(value, colour)`` as a dashed line (an SLO threshold or target)."""
    panel = (
        timeseries.Panel().title(title).description(description).datasource(PROMETHEUS).unit(unit)
        .targets(list(targets)).span(width).height(height)
        .line_width(1).fill_opacity(10 if not stacked else 40).show_points(common.VisibilityMode.NEVER)
        .legend(common_builder.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                .placement(common.LegendPlacement.BOTTOM).show_legend(True))
        .tooltip(common_builder.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI).sort(common.SortOrder.DESCENDING))
    )
    if threshold_line is not None:
        value, colour = threshold_line
        panel = panel.thresholds(thresholds("transparent", (value, colour))).thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    if stacked:
        panel = panel.stacking(common_builder.StackingConfig().mode(common.StackingMode.NORMAL))
    if log_scale:
        panel = panel.scale_distribution(common_builder.ScaleDistributionConfig().type(common.ScaleDistribution.LOG).log(10))
    return panel


#: The histograms whose observations carry a ``trace_id`` exemplar (services/runtime/metrics.py: the gRPC
#: interceptors'). The casemesh-specific histograms (origin fetches, transcodes, index lag) and the harness's
#: (converted from HDR histograms at scrape time) carry none.
EXEMPLAR_HISTOGRAMS = frozenset({"grpc_server_handling_seconds", "grpc_client_handling_seconds"})


def latency_panel(title: str, description: str, histogram: str, matchers: str, by: Sequence[str], legend: str, *,
                  quantiles: Sequence[float] = QUANTILES, width: int = 12, height: int = 8,
                  threshold_s: float | None = None) -> timeseries.Panel:
    """Percentiles of a latency histogram (seconds), with its exemplars when it has them (:data:`EXEMPLAR_HISTOGRAMS`).

    ``legend`` is the Grafana legend after the percentile, e.g. ``{{grpc_method}}``;
    ``threshold_s`` draws a red dashed line (the SLO threshold).
    """
    # Exemplars are drawn at their own latency, not on a percentile's line: asking for them once per histogram suffices.
    exemplars = histogram in EXEMPLAR_HISTOGRAMS
    targets = [
        query(quantile(q, histogram, matchers, by), f"p{q * 100:g} {legend}".strip(), chr(ord("A") + i),
              exemplar=exemplars and i == len(quantiles) - 1)
        for i, q in enumerate(quantiles)
    ]
    return timeseries_panel(title, description, "s", targets, width=width, height=height,
                            threshold_line=(threshold_s, "red") if threshold_s is not None else None)


def stat_panel(title: str, description: str, unit: str, targets: Sequence[prometheus.Dataquery], *,
               width: int = 6, height: int = 4, steps: Sequence[tuple[float, str]] = (), base: str = "green",
               decimals: int | None = None, calc: str = "lastNotNull") -> stat.Panel:
    """A single value (the last one of the range unless ``calc`` says otherwise), coloured by ``steps``."""
    panel = (
        stat.Panel().title(title).description(description).datasource(PROMETHEUS).unit(unit)
        .targets(list(targets)).span(width).height(height)
        .graph_mode(common.BigValueGraphMode.AREA).color_mode(common.BigValueColorMode.VALUE)
        .reduce_options(common_builder.ReduceDataOptions().calcs([calc]).values(False))
        .thresholds(thresholds(base, *steps))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def table_panel(title: str, description: str, targets: Sequence[prometheus.Dataquery], *, width: int = 24,
                height: int = 6, hide_fields: Sequence[str] = ("Time",), rename: dict[str, str] | None = None) -> table.Panel:
    """A table of instant queries joined on their labels (Grafana's merge transformation).

    ``rename`` renames columns, e.g. ``{"Value #A": "target"}`` (a query's value column is ``Value #REFID``).
    """
    return (
        table.Panel().title(title).description(description).datasource(PROMETHEUS)
        .targets(list(targets)).span(width).height(height)
        .with_transformation(model.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(model.DataTransformerConfig(
            id_val="organize", options={"excludeByName": {name: True for name in hide_fields},
                                        "renameByName": dict(rename or {})}))
    )


def text_panel(title: str, markdown: str, *, width: int = 24, height: int = 3) -> text.Panel:
    """A markdown note."""
    return text.Panel().title(title).mode(text_model.TextMode.MARKDOWN).content(markdown).span(width).height(height)


def query_variable(name: str, label: str, definition: str, *, multi: bool = True) -> dashboard_builder.QueryVariable:
    """A Prometheus ``label_values(...)`` variable; "All" selects everything (``.*``)."""
    return (
        dashboard_builder.QueryVariable(name).label(label).datasource(PROMETHEUS).query(definition)
        .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi).include_all(True).all_value(".*")
        .current(model.VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def new_dashboard(uid: str, title: str, description: str, tags: Sequence[str]) -> dashboard_builder.Dashboard:
    """A dashboard with casemesh's defaults: last 30 minutes, 10 s refresh, shared crosshair, links to the other casemesh dashboards."""
    return (
        dashboard_builder.Dashboard(title).uid(uid).description(description).tags([TAG, *tags])
        .time("now-30m", "now").refresh("10s").timezone("browser").readonly()
        .tooltip(model.DashboardCursorSync.CROSSHAIR)
        .link(dashboard_builder.DashboardLink("casemesh dashboards").type(model.DashboardLinkType.DASHBOARDS)
              .tags([TAG]).as_dropdown(True).include_vars(False).keep_time(True))
    )


def render(board: dashboard_builder.Dashboard) -> str:
    """The dashboard as Grafana JSON: panels numbered 1..n in layout order, keys sorted, newline-terminated."""
    built = board.build()
    number = 0
    for panel in built.panels or []:
        number += 1
        panel.id_val = number
        for inner in getattr(panel, "panels", None) or []:  # panels of a collapsed row
            number += 1
            inner.id_val = number
    return json.dumps(built, cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
