"""The HTML reports: ``OUT/report.html`` of a run, and the report of a capacity search. One file each, offline.

:func:`render_run_report` turns a result document (``result.json``,
docs/results.md) into a page: the verdict and validity, the SLO table,
latency over time per RPC and per journey (p50/p99 per second from the
``series`` section, warm-up shaded, SLO thresholds drawn), each process's
event-loop lag and GC pauses per second on the same time axis (``event_loop``), the percentile
distribution of every RPC and journey (decoded from the ``histogram`` fields,
on HdrHistogram's log ``1/(1-p)`` axis), arrivals intended vs sent vs
completed per second (``timeline``), send lag, errors by status code over
time and in total, server streams' time to first message, and the slowest
sampled journeys' trace ids. :func:`render_capacity_report` does the same for
``casemesh capacity``'s document: the knee (offered rate vs p50/p99, SLO
thresholds, the capacity found) and the steps table. ``casemesh report FILE``
renders either one later from its JSON (:func:`render_report_file`).

**Self-contained.** The page has no script at all and loads nothing: CSS is
inline, the plots are inline SVG, text in them is SVG text in the browser's
own sans-serif (``svg.fonttype: none``), so no font is embedded or fetched.
It opens offline, from a CI artifact, or attached to an issue.

**Why matplotlib SVG rather than plotly.** Plotly's interactivity (hover
values, zoom) needs plotly.js in the page: about 3.5 MB per report once
embedded (a CDN link would break offline use), re-downloaded with every run's
artifacts. Matplotlib draws the same plots as static SVG: a 5 s
url-shortener run's report is about 210 kB, an hour's run stays under 1 MB
(time plots keep at most :data:`MAX_POINTS` points per line), and the page
renders anywhere without JavaScript, prints, and diffs as text. What it loses, exact values on hover, the page
gives back as tables (SLOs, per-RPC/journey percentiles, errors, first
message, traces) and result.json holds every number. Rendering takes one to
a few seconds after the run (matplotlib's ``Figure`` API, no pyplot, no GUI
backend, no global state besides an ``rc_context`` while drawing).

The SLO thresholds drawn on the plots come from the profile's ``casemesh``
latency SLOs (``latency_le_ms``), passed in by ``casemesh run`` or loaded
from the document's ``profile.path`` when it is still readable; without them
the plots are drawn without threshold lines, and the page says so.
"""

from __future__ import annotations

import html
import io
import json
import math
import statistics
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
from hdrh.histogram import HdrHistogram
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .errors import ConfigError

#: Line colours: p50, p99, thresholds, intended/sent/completed, warm-up shade.
P50, P99, THRESHOLD, CAPACITY = "#4c72b0", "#dd8452", "#c44e52", "#55a868"
#: The control stream's per-second p99 (the machine's own floor, harness/control.py) on latency plots.
FLOOR = "#8c8c8c"
WARMUP_SHADE, DRAIN_SHADE = "#9e9e9e", "#c9b6e4"
#: Shades of the injected faults' active intervals (result.json ``faults``), one per fault in turn.
FAULT_SHADES = ("#e15759", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948")
#: Time plots draw at most this many points per line; longer runs are binned (:func:`bin_seconds`):
#: 15 minutes at one point per second, an hour at one per 4 s. Keeps an hour's report near 1 MB.
MAX_POINTS = 900
#: Percentile ticks of the distribution plots, as 1/(1 - p).
_PERCENTILE_TICKS = ((1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"),
                     (1e5, "99.999%"), (1e6, "99.9999%"), (1e7, "99.99999%"))
_RC = {
    "svg.fonttype": "none", "font.family": "sans-serif", "font.size": 8.5, "axes.titlesize": 9.5,
    "axes.titlelocation": "left", "axes.grid": True, "grid.color": "#e3e3e3", "grid.linewidth": 0.6,
    "axes.spines.top": False, "axes.spines.right": False, "legend.fontsize": 7.5, "legend.frameon": False,
    "lines.linewidth": 1.3, "path.simplify": True, "axes.axisbelow": True,
}


# -- what the plots mark ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Threshold:
    """A latency SLO drawn on plots: ``latency_ms`` for ``target`` of the calls of ``rpc``, ``journey`` or (both ``None``) every RPC."""

    name: str
    label: str
    latency_ms: float
    target: float
    rpc: str | None = None
    journey: str | None = None

    def applies(self, kind: str, name: str) -> bool:
        """Whether this SLO judges RPC (``kind="rpcs"``) or journey (``"journeys"``) ``name``."""
        if kind == "rpcs":
            return self.rpc == name or (self.rpc is None and self.journey is None)
        return self.journey == name


def latency_thresholds(slos: Iterable[Any]) -> list[Threshold]:
    """The latency thresholds of ``casemesh`` SLOs (:class:`~casemesh.harness.slo.Slo`) that have one (``latency_le_ms``)."""
    from .slo import Selector

    found = []
    for slo in slos:
        if isinstance(slo.total, Selector) and isinstance(slo.good, Selector) and slo.good.latency_le_ms is not None:
            found.append(Threshold(slo.name, slo.display_name or slo.name, slo.good.latency_le_ms, slo.target,
                                   rpc=slo.total.rpc, journey=slo.total.journey))
    return found


def thresholds_from_profile(path: str | None) -> tuple[list[Threshold], str | None]:
    """``(thresholds, None)`` from the profile YAML at ``path``, or ``([], why not)`` when it cannot be loaded."""
    if not path or not str(path).endswith((".yaml", ".yml")):
        return [], "the document names no profile YAML"
    from .profile import load_profile

    try:
        return latency_thresholds(load_profile(path).slos), None
    except (ConfigError, OSError, ValueError) as error:
        return [], f"profile {path} could not be read ({error})"


# -- page pieces -----------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}%}"


def _short(method: str) -> str:
    """``pkg.v1.Service/Method`` → ``Service/Method``."""
    return method.rsplit(".", 1)[-1]


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Container[int] | None = None, raw: bool = False) -> str:
    """An HTML table; cells are escaped unless ``raw`` (then they are HTML already).

    Columns whose index is in ``numeric`` align right (default: all but the first).
    """
    right = numeric if numeric is not None else range(1, len(headers))
    head = "".join(f'<th{" class=num" if i in right else ""}>{_e(h)}</th>' for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = "".join(f'<td{" class=num" if i in right else ""}>{c if raw else _e(c)}</td>' for i, c in enumerate(row))
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _badge(passed: bool | None, valid: bool = True) -> str:
    if not valid:
        return '<span class="badge invalid">INVALID</span>'
    if passed is None:
        return '<span class="badge na">n/a</span>'
    return '<span class="badge pass">PASS</span>' if passed else '<span class="badge fail">FAIL</span>'


def _svg(figure: Figure) -> str:
    """``figure`` as an inline ``<svg>`` element (no XML prolog, no date)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # constrained layout already fits it: no "tight" second draw
    text = buffer.getvalue()
    return f'<div class="plot">{text[text.index("<svg"):]}</div>'


def _ms_axis(axis: Any, values: Iterable[float]) -> None:
    """A log latency axis in ms with 1-2-5 ticks and plain labels, padded so at least one tick shows."""
    finite = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    axis.set_yscale("log")
    low, high = (min(finite) / 2, max(finite) * 2) if finite else (0.1, 10.0)
    axis.set_ylim(low, high)
    # 1-2-5 ticks over up to 2.5 decades, powers of ten beyond (fewer labels than the axis can hold otherwise)
    axis.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if math.log10(high / low) <= 2.5 else (1.0,)))
    axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:.3g}"))
    axis.yaxis.set_minor_formatter(NullFormatter())
    axis.set_ylabel("ms")


def _nan(values: Iterable[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def bin_seconds(seconds: int) -> int:
    """Seconds per point of the time plots: 1, or more so that a line has at most :data:`MAX_POINTS` points."""
    return max(1, math.ceil(seconds / MAX_POINTS))


def binned(values: Sequence[float | None], width: int, reduce: Callable[[list[float]], float]) -> list[float]:
    """``values`` (one per second) in bins of ``width`` seconds, each ``reduce``d over its non-``None`` values (NaN when none)."""
    if width == 1:
        return _nan(values)
    out = []
    for start in range(0, len(values), width):
        present = [v for v in values[start:start + width] if v is not None]
        out.append(reduce(present) if present else math.nan)
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _centres(points: int, width: int) -> list[float]:
    return [i * width + width / 2 for i in range(points)]


def _edges(points: int, width: int) -> list[float]:
    return [i * width for i in range(points + 1)]


def _shade_run(axis: Any, timeline: Mapping[str, Any] | None, seconds: int) -> None:
    """Grey over the warm-up; lilac over the seconds after sending stopped (the drain), when any calls ended there."""
    if not timeline:
        return
    if timeline.get("warmup_s"):
        axis.axvspan(0, timeline["warmup_s"], color=WARMUP_SHADE, alpha=0.18, lw=0, zorder=0, label="warm-up")
    end_s = timeline.get("end_s")
    if end_s is not None and seconds > end_s:
        axis.axvspan(end_s, seconds, color=DRAIN_SHADE, alpha=0.25, lw=0, zorder=0, label="drain (sending stopped)")


def _shade_faults(axis: Any, faults: Sequence[Mapping[str, Any]] | None, warmup_s: float) -> None:
    """One coloured band per injected fault over its actual active interval (else the planned one), on the run's time axis."""
    for index, fault in enumerate(faults or []):
        window = fault.get("actual") or fault["planned"]
        axis.axvspan(warmup_s + window["start_s"], warmup_s + window["end_s"], color=FAULT_SHADES[index % len(FAULT_SHADES)],
                     alpha=0.16, lw=0, zorder=0, label=f"fault {fault['name']} ({fault.get('describe', fault['kind'])})")


# -- the run report --------------------------------------------------------------------------------


def render_run_report(result: Mapping[str, Any], *, slos: Sequence[Any] | None = None) -> str:
    """The HTML page of a run's result document (``result.json``); returns the page as a string.

    ``slos`` are the profile's :class:`~casemesh.harness.slo.Slo` objects, for
    the threshold lines; when ``None`` they are loaded from
    ``result["profile"]["path"]`` if that profile is still readable.
    Documents without ``series`` or ``timeline`` (older ones) render without
    those plots.
    """
    if slos is not None:
        thresholds, missing = latency_thresholds(slos), None
    else:
        thresholds, missing = thresholds_from_profile(result.get("profile", {}).get("path"))
    with matplotlib.rc_context(_RC):
        sections = [
            _run_header(result),
            _slo_section(result.get("slos", [])),
            _calls_section(result),
            _latency_over_time_section(result, thresholds, missing),
            _event_loop_section(result),
            _distribution_section(result, thresholds),
            _throughput_section(result),
            _errors_section(result),
            _first_message_section(result),
            _traces_section(result),
            _tail_breakdown_section(result),
        ]
    profile = result.get("profile", {})
    return _page(f"casemesh: {profile.get('name', 'run')}", sections)


def write_run_report(result: Mapping[str, Any], path: Path, *, slos: Sequence[Any] | None = None) -> Path:
    """Write :func:`render_run_report` of ``result`` to ``path`` (UTF-8); returns ``path``."""
    path.write_text(render_run_report(result, slos=slos), encoding="utf-8")
    return path


def _verdict_text(result: Mapping[str, Any]) -> tuple[str, str]:
    slos = result.get("slos", [])
    evaluated = [s for s in slos if s.get("evaluated", True)]
    skipped = len(slos) - len(evaluated)
    aside = f" ({skipped} not evaluated: no Prometheus)" if skipped else ""
    if not result.get("valid", True):
        return "invalid", "RUN INVALID: " + "; ".join(result.get("invalid_reasons", []))
    inconclusive = [s["name"] for s in evaluated if not s["passed"] and s.get("inconclusive")]
    if result.get("passed") and inconclusive:
        return "pass", (f"PASSED: {len(evaluated) - len(inconclusive)} SLOs met, {len(inconclusive)} inconclusive on this machine "
                        f"({', '.join(inconclusive)}){aside}")
    if result.get("passed"):
        return "pass", f"PASSED: all {len(evaluated)} {'evaluated ' if skipped else ''}SLOs met{aside}"
    strict = bool(result.get("strict"))
    failed = [s["name"] for s in evaluated if not s["passed"] and (strict or not s.get("inconclusive"))]
    besides = f"; inconclusive on this machine: {', '.join(inconclusive)}" if inconclusive and not strict else ""
    return "fail", f"FAILED: {', '.join(failed)}{besides}{aside}"


def _run_header(result: Mapping[str, Any]) -> str:
    profile = result.get("profile", {})
    arrival = profile.get("arrival", {})
    target = result.get("target", {})
    environment = result.get("environment", {})
    throughput = result.get("throughput", {})
    kind, verdict = _verdict_text(result)
    arrival_text = ", ".join(f"{k} {v}" for k, v in arrival.items() if k != "process")
    facts = [
        ("profile", f"{profile.get('name')} ({profile.get('path')})"),
        ("workload", profile.get("workload")),
        ("arrivals", f"{arrival.get('process')}: {arrival_text}" if arrival_text else arrival.get("process")),
        ("window", f"{profile.get('warmup_s', 0):g} s warm-up + {profile.get('duration_s', 0):g} s measured; "
                   f"request timeout {profile.get('request_timeout_ms', 0):g} ms"),
        ("journeys", ", ".join(f"{name} {weight:g}" for name, weight in profile.get("journeys", {}).items()) or "-"),
        ("target", f"{target.get('mode')}: " + ", ".join(f"{s} {a}" for s, a in target.get("services", {}).items())),
        ("throughput", f"offered {throughput.get('offered_rps') or 0:,.1f}/s, completed {throughput.get('completed_rps') or 0:,.1f}/s "
                       f"over {throughput.get('measured_s') or 0:g} s"),
        ("environment", ", ".join(f"{k} {v}" for k, v in environment.items() if not isinstance(v, (dict, list)) and v is not None)),
        *_machine_facts(result),
        ("started", f"{result.get('started_at')} (casemesh {result.get('casemesh_version')}, result schema {result.get('schema_version')})"),
    ]
    window = (result.get("prometheus") or {}).get("window")
    if window:
        facts.append(("Prometheus", f"{result['prometheus'].get('url')}: window {window.get('start')} .. {window.get('end')}"))
    replay = result.get("replay")
    if replay:
        facts.append(("replay", f"{replay.get('recording')} at speed {replay.get('speed'):g}: "
                                f"{replay.get('divergences', {}).get('count', 0):,} status divergences"))
    validity = ("valid: the driver kept its schedule" if result.get("valid", True)
                else "invalid: " + "; ".join(result.get("invalid_reasons", [])))
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return (f'<header><h1>{_e(profile.get("name", "run"))}</h1><p class="verdict {kind}">{_e(verdict)}</p>'
            f'<p class="validity">{_e(validity)}</p><table class="facts">{rows}</table></header>')


def _machine_facts(result: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Header rows on the machine: the control's floor, stalls, CPU noise, and how the rate and load processes were chosen."""
    from .report import machine_lines

    return [("machine", line.plain) for line in machine_lines(dict(result))]


def _slo_section(verdicts: Sequence[Mapping[str, Any]]) -> str:
    from .report import twins_together

    if not verdicts:
        return '<section><h2>SLOs</h2><p class="muted">The profile has no SLOs.</p></section>'
    names = {v["name"] for v in verdicts}
    rows = []
    for v in twins_together(list(verdicts)):
        twin = v.get("twin_of") in names
        name = (f'<span class="twin">↳ </span>' if twin else "") + f"{_e(v.get('display_name') or v['name'])}<br><small>{_e(v['name'])}</small>"
        note = _e(v.get("note") or "") + (f"<br><small>{_e(v['machine_note'])}</small>" if v.get("machine_note") else "")
        floor = "" if v.get("floor_ms") is None else _e(f"p{v['target'] * 100:g} = {v['floor_ms']:,.2f} ms")
        badge = '<span class="badge na">INCONCLUSIVE</span>' if v.get("inconclusive") and not v.get("passed") else _badge(v.get("passed"))
        rows.append([name, _e(v.get("source", "casemesh")), _e(v.get("objective")), _e(f"{v['target'] * 100:g}%"),
                     _e(_pct(v.get("measured"))), _e("-" if v.get("error_budget") is None else f"{v['error_budget'] * 100:.4g}%"),
                     _e(_pct(v.get("budget_burnt"), 0)), note, floor, badge])
    table = _table(["SLO", "source", "objective", "target", "measured", "error budget", "budget burnt", "note", "machine floor", "verdict"],
                   rows, numeric=range(3, 7), raw=True)
    return ("<section><h2>SLOs</h2>" + table +
            '<p class="muted">measured = good / total calls; error budget = 1 − target; budget burnt = (1 − measured) / (1 − target): '
            "above 100 % the SLO is missed. <code>prometheus</code> SLOs are server-side twins judged by PromQL. "
            "Machine floor: the control stream's latency at the SLO's quantile, what this machine adds to any call; "
            "INCONCLUSIVE: missed where the machine's stalls or floor explain it (docs/cli.md).</p></section>")


def _calls_rows(calls: Mapping[str, Mapping[str, Any]], short: bool) -> list[list[str]]:
    rows = []
    for name, row in calls.items():
        errors = ", ".join(f"{code} {n:,}" for code, n in row.get("errors", {}).items()) or "0"
        rps = row.get("throughput_rps")
        rows.append([_short(name) if short else name, f"{row.get('count', 0):,}", errors, "-" if rps is None else f"{rps:,.1f}",
                     *(_ms(row.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"))])
    return rows


def _calls_section(result: Mapping[str, Any]) -> str:
    headers = ["name", "count", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms"]
    lag = result.get("send_lag") or {}
    lag_row = [[f"{lag.get('count', 0):,}", *(_ms(lag.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"))]]
    return ("<section><h2>Measured window</h2><h3>RPCs</h3>" + _table(headers, _calls_rows(result.get("rpcs", {}), True)) +
            "<h3>Journeys</h3>" + _table(headers, _calls_rows(result.get("journeys", {}), False)) +
            "<h3>Send lag</h3>" + _table(["calls", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"], lag_row, numeric=range(6)) +
            '<p class="muted">How late the driver sent each journey\'s first RPC after its intended time. Latencies are measured from '
            "the intended time, so lag is included in them; a send lag p99 above 10 ms makes the run invalid (the generator fell "
            "behind). Per second, the arrivals plot below shows the same from the schedule's side.</p></section>")


def _latency_over_time_section(result: Mapping[str, Any], thresholds: list[Threshold], missing: str | None) -> str:
    series = result.get("series")
    title = "<section><h2>Latency over time</h2>"
    if not series or not (series.get("rpcs") or series.get("journeys")):
        return title + '<p class="muted">This result has no per-second series.</p></section>'
    resolution = series.get("resolution", {})
    note = (f'<p class="muted">p50 and p99 of the calls that ended in each second (warm-up included, shaded), from log buckets '
            f'({resolution.get("buckets_per_octave", "?")} per doubling: within ±{resolution.get("relative_error", 0):.1%}). '
            "Dashed: the latency threshold of an SLO on that RPC or journey. Dotted grey: the machine's own p99 in that second "
            "(the control stream: zero-work calls beside the load), where the run had one. Coloured bands: injected faults "
            "while they were active (result.json's faults).")
    width = bin_seconds(series.get("seconds", 0))
    if width > 1:
        note += (f" The run is long: one point per {width} s, the median of those seconds' p50s and the highest of their p99s "
                 "(result.json's series has every second).")
    if missing:
        note += f" SLO thresholds not drawn: {_e(missing)}."
    parts = [title, note + "</p>"]
    for kind, heading in (("rpcs", "RPCs"), ("journeys", "Journeys")):
        group = series.get(kind) or {}
        if group:
            parts.append(f"<h3>{heading}</h3>" + _svg(_latency_over_time_figure(group, kind, series, result.get("timeline"), thresholds,
                                                                              (result.get("environment") or {}).get("control"),
                                                                              faults=result.get("faults"))))
    return "".join(parts) + "</section>"


def _latency_over_time_figure(group: Mapping[str, Mapping[str, Any]], kind: str, series: Mapping[str, Any],
                              timeline: Mapping[str, Any] | None, thresholds: list[Threshold],
                              control: Mapping[str, Any] | None = None, *,
                              faults: Sequence[Mapping[str, Any]] | None = None) -> Figure:
    seconds = series.get("seconds", 0)
    width = bin_seconds(seconds)
    floor_p99 = [s.get("p99_ms") for s in (control or {}).get("per_second", [])]
    figure = Figure(figsize=(10, 1.8 * len(group) + 0.6), layout="constrained")
    axes = figure.subplots(len(group), 1, sharex=True, squeeze=False)[:, 0]
    for axis, (name, points) in zip(axes, group.items()):
        p50 = binned(points.get("p50_ms", []), width, statistics.median)
        p99 = binned(points.get("p99_ms", []), width, max)
        if floor_p99:
            floor = binned(floor_p99, width, max)
            axis.plot(_centres(len(floor), width), floor, color=FLOOR, linestyle=":", linewidth=1.0,
                      label="machine floor p99 (control)" if width == 1 else f"machine floor p99 (highest of {width} s)")
        dots = {"marker": "o", "ms": 2.5} if len(p50) <= 120 else {}  # a second between empty ones is a dot, not nothing
        axis.plot(_centres(len(p50), width), p50, color=P50, label="p50" if width == 1 else f"p50 (median of {width} s)", **dots)
        axis.plot(_centres(len(p99), width), p99, color=P99, label="p99" if width == 1 else f"p99 (highest of {width} s)", **dots)
        values = [v for key in ("p50_ms", "p99_ms") for v in points.get(key, []) if v is not None]
        values += [v for v in floor_p99 if v is not None]
        if not values:
            axis.text(0.5, 0.5, "no calls", transform=axis.transAxes, ha="center", va="center", color="#777")
        for threshold in thresholds:
            if threshold.applies(kind, name):
                _threshold_line(axis, threshold)
                values.append(threshold.latency_ms)
        _shade_run(axis, timeline, seconds)
        _shade_faults(axis, faults, (timeline or {}).get("warmup_s") or 0.0)
        _ms_axis(axis, values)
        total = sum(points.get("count", []))
        axis.set_title(f"{_short(name) if kind == 'rpcs' else name}  ({total:,} calls, warm-up included)")
        axis.set_xlim(0, max(seconds, 1))
    axes[-1].set_xlabel("seconds from the start of the run")
    figure.legend(handles=axes[0].get_legend_handles_labels()[0], loc="outside upper right", ncol=4)
    return figure


def _event_loop_section(result: Mapping[str, Any]) -> str:
    """Event-loop lag p99 and max, and GC pause time, per process per second (``event_loop``), on the latency plots' time axis."""
    event_loop = result.get("event_loop")
    title = "<section><h2>Event-loop lag and GC pauses</h2>"
    if not event_loop or not event_loop.get("processes"):
        return title + ('<p class="muted">This result has no event-loop series (a run with <code>--target</code> and '
                        "<code>CASEMESH_LOOP_PROBE_MS=0</code>, or an older result).</p></section>")
    processes = event_loop["processes"]
    seconds = max(event_loop.get("seconds", 0), (result.get("series") or {}).get("seconds", 0))
    width = bin_seconds(seconds)
    figure = Figure(figsize=(10, 6.4), layout="constrained")
    axes = figure.subplots(3, 1, sharex=True, height_ratios=(2, 2, 1.4))
    colours = matplotlib.colormaps["tab10"].colors
    for (key, heading), axis in zip((("lag_p99_ms", "lag p99"), ("lag_max_ms", "lag max")), axes[:2]):
        values: list[float] = []
        for index, (name, points) in enumerate(processes.items()):
            line = binned(points.get(key, []), width, max)
            values += [v for v in line if not math.isnan(v)]
            axis.plot(_centres(len(line), width), line, color=colours[index % len(colours)], label=name,
                      **({"marker": "o", "ms": 2} if len(line) <= 120 else {}))
        _shade_run(axis, result.get("timeline"), seconds)
        _ms_axis(axis, values)
        axis.set_title(f"event-loop {heading} per second" + ("" if width == 1 else f" (highest of each {width} s)"))
    gc_axis = axes[2]
    for index, (name, points) in enumerate(processes.items()):
        line = binned(points.get("gc_ms", []), width, max)
        gc_axis.plot(_centres(len(line), width), line, color=colours[index % len(colours)], label=name)
    _shade_run(gc_axis, result.get("timeline"), seconds)
    gc_axis.set_ylim(bottom=0)
    gc_axis.set_ylabel("ms paused")
    gc_axis.set_title("GC pause time per second, all generations" + ("" if width == 1 else f" (highest of each {width} s)"))
    gc_axis.set_xlabel("seconds from the start of the run")
    gc_axis.set_xlim(0, max(seconds, 1))
    figure.legend(handles=axes[0].get_legend_handles_labels()[0], loc="outside upper right", ncol=min(len(processes) + 2, 6))
    rows = []
    for name, points in processes.items():
        measured = points.get("measured", {})
        generations = measured.get("gc_by_generation", {})
        rows.append([name, _ms(measured.get("lag_p50_ms")), _ms(measured.get("lag_p99_ms")), _ms(measured.get("lag_max_ms")),
                     f"{measured.get('gc_count', 0):,}", _ms(measured.get("gc_ms")), _ms(measured.get("gc_max_ms")),
                     _ms(measured.get("gc_ms_per_s")), " / ".join(f"{generations.get(g, {}).get('count', 0):,}" for g in "012")])
    table = _table(["process", "lag p50 ms", "lag p99 ms", "lag max ms", "GC pauses", "GC ms", "longest GC ms", "GC ms per s",
                    "by generation 0 / 1 / 2"], rows)
    interval = event_loop.get("probe_interval_ms")
    note = (f'<p class="muted">Each process\'s probe: a timer due every {interval:g} ms and how late it ran (a blocked event '
            "loop: a flush, a sweep, a synchronous call), and every garbage collection's pause (all threads stop). The "
            "table covers the measured window; the plots every second of the run, aligned with the latency plots within "
            "half a second. Lags below about 1 ms are uvloop's timer granularity.</p>") if interval else ""
    return title + note + _svg(figure) + table + "</section>"


def _threshold_line(axis: Any, threshold: Threshold) -> None:
    """A dashed line at an SLO's latency threshold, named at its right end."""
    axis.axhline(threshold.latency_ms, color=THRESHOLD, ls="--", lw=1)
    axis.annotate(f"SLO {threshold.name}: {threshold.target * 100:g}% ≤ {threshold.latency_ms:g} ms", xy=(1, threshold.latency_ms),
                  xycoords=("axes fraction", "data"), ha="right", va="bottom", fontsize=7, color=THRESHOLD)


def _decoded(encoded: str | None) -> HdrHistogram | None:
    if not encoded:
        return None
    histogram = HdrHistogram.decode(encoded)
    return histogram if histogram.get_total_count() else None


def _percentile_points(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
    """``(x, latency ms)`` along the distribution, x = 1 / (1 - p); the max is drawn at ``1 - 1/count`` (x = count)."""
    xs, ys = [], []
    for item in histogram.get_percentile_iterator(5):
        p = item.percentile_level_iterated_to / 100
        if p < 1:
            xs.append(1 / (1 - p))
            ys.append(item.value_iterated_to / 1000)
    xs.append(max(float(histogram.get_total_count()), xs[-1] if xs else 1.0))
    ys.append(histogram.get_max_value() / 1000)
    return xs, ys


def percentile_axes(axis: Any, x_max: float, values: list[float]) -> None:
    """HdrHistogram's percentile axis (log of 1 / (1 − p), ticks 0 %, 50 %, 90 %, 99 % ... up to ``x_max``) and a ms axis for ``values``."""
    axis.set_xscale("log")
    ticks = [t for t in _PERCENTILE_TICKS if t[0] <= x_max * 10]
    axis.xaxis.set_major_locator(FixedLocator([t[0] for t in ticks]))
    axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: dict(ticks).get(v, "")))
    axis.xaxis.set_minor_formatter(NullFormatter())
    axis.set_xlim(1, x_max * 1.5)
    _ms_axis(axis, values)
    axis.set_xlabel("percentile (log scale of 1 / (1 − p))")


def _distribution_figure(curves: Mapping[str, HdrHistogram], markers: list[tuple[str, Threshold]], title: str) -> Figure:
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    axis = figure.subplots()
    values, x_max, colours = [], 10.0, {}
    for name, histogram in curves.items():
        xs, ys = _percentile_points(histogram)
        [line] = axis.plot(xs, ys, label=f"{name} ({histogram.get_total_count():,} calls)", drawstyle="steps-post")
        colours[name] = line.get_color()
        values += ys
        x_max = max(x_max, xs[-1])
    for name, threshold in markers:
        x = 1 / (1 - threshold.target) if threshold.target < 1 else x_max
        axis.plot([x], [threshold.latency_ms], marker="X", ms=9, ls="none", color=colours.get(name, THRESHOLD), mec="#222", mew=0.8,
                  label=f"SLO {threshold.name}: {threshold.target * 100:g}% ≤ {threshold.latency_ms:g} ms")
        values.append(threshold.latency_ms)
        x_max = max(x_max, x)
    percentile_axes(axis, x_max, values)
    axis.set_title(title)
    figure.legend(handles=axis.get_legend_handles_labels()[0], loc="outside lower center", ncol=2)
    return figure


def _distribution_section(result: Mapping[str, Any], thresholds: list[Threshold]) -> str:
    parts = ['<section><h2>Latency by percentile</h2><p class="muted">Measured window, every call (OK or not), from the exact '
             "HDR histograms (3 significant figures) in result.json, plotted as HdrHistogram does: the x axis stretches the tail, "
             "so 90 %, 99 %, 99.9 % are equally far apart. A cross marks an SLO: its curve must pass below it.</p>"]
    drawn = False
    for kind, heading in (("rpcs", "RPCs"), ("journeys", "Journeys")):
        calls = result.get(kind) or {}
        curves = {(_short(n) if kind == "rpcs" else n): h for n, row in calls.items() if (h := _decoded(row.get("histogram")))}
        if curves:
            markers = [((_short(n) if kind == "rpcs" else n), t) for n in calls for t in thresholds if t.applies(kind, n)]
            parts.append(_svg(_distribution_figure(curves, markers, heading)))
            drawn = True
    if not drawn:
        parts.append('<p class="muted">No calls were recorded in the measured window.</p>')
    return "".join(parts) + "</section>"


def _throughput_section(result: Mapping[str, Any]) -> str:
    timeline = result.get("timeline")
    if not timeline or not timeline.get("intended"):
        return ""
    seconds = max(len(timeline["intended"]), (result.get("series") or {}).get("seconds", 0))
    width = bin_seconds(seconds)
    figure = Figure(figsize=(10, 4.2), layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    for key, colour, label in (("intended", "#8c8c8c", "intended (arrival process)"), ("sent", P50, "sent (driver)"),
                               ("completed", CAPACITY, "completed (system under test)")):
        values = binned(timeline[key], width, _mean)
        top.plot(_centres(len(values), width), values, color=colour, lw=2.2 if key == "intended" else None, label=label)
    _shade_run(top, timeline, seconds)
    top.set_ylabel("journeys per s")
    top.set_ylim(bottom=0)
    figure.legend(handles=top.get_legend_handles_labels()[0], loc="outside upper right", ncol=5)
    top.set_title("arrivals per second" + ("" if width == 1 else f" (mean of each {width} s)"))
    shortfall = binned([i - s for i, s in zip(timeline["intended"], timeline["sent"])], width, max)
    bottom.stairs(shortfall, _edges(len(shortfall), width), fill=True, color=P99)
    _shade_run(bottom, timeline, seconds)
    bottom.set_ylim(min(min(shortfall), 0) * 1.2, max(max(shortfall), 1) * 1.2)
    bottom.yaxis.set_major_locator(MaxNLocator(nbins=3, integer=True))
    bottom.set_ylabel("intended − sent" if width == 1 else f"intended − sent\n(worst of {width} s)")
    bottom.set_xlabel("seconds from the start of the run")
    bottom.set_xlim(0, seconds)
    worst = timeline.get("max_shortfall", {})
    text = (f"{timeline.get('intended_total', 0):,} arrivals intended, {timeline.get('sent_total', 0):,} sent, "
            f"{timeline.get('completed_total', 0):,} completed ({timeline.get('completed_after_end', 0):,} after sending stopped); ")
    text += (f"worst second {worst['second']}: {worst['sent']:,} of {worst['intended']:,} sent" if worst.get("shortfall")
             else "every second sent all it intended")
    if timeline.get("ended_early"):
        text += f"; the arrival schedule ended at {timeline['end_s']:,.1f} s, before the planned {timeline['planned_end_s']:g} s"
    return ('<section><h2>Throughput: intended vs achieved</h2><p class="muted">' + _e(text) +
            ". An open-loop driver that keeps up sends what was intended, second by second; completed lagging sent is the "
            "system falling behind.</p>" + _svg(figure) + "</section>")


def _errors_section(result: Mapping[str, Any]) -> str:
    codes = sorted({c for kind in ("rpcs", "journeys") for row in (result.get(kind) or {}).values() for c in row.get("errors", {})})
    parts = ["<section><h2>Errors by status code</h2>"]
    if not codes:
        parts.append('<p class="muted">No call ended with a non-OK status in the measured window.</p>')
    else:
        rows = []
        for kind in ("rpcs", "journeys"):
            for name, row in (result.get(kind) or {}).items():
                if row.get("errors"):
                    label = (_short(name) if kind == "rpcs" else f"journey {name}")
                    rows.append([label, f"{row.get('count', 0):,}", *(f"{row['errors'].get(c, 0):,}" for c in codes)])
        parts.append(_table(["name", "calls", *codes], rows))
    series = result.get("series") or {}
    per_code: dict[str, list[int]] = {}
    for points in (series.get("rpcs") or {}).values():
        for code, counts in points.get("errors", {}).items():
            mine = per_code.setdefault(code, [0] * series.get("seconds", 0))
            for i, n in enumerate(counts[: len(mine)]):
                mine[i] += n
    if any(any(v) for v in per_code.values()):
        seconds = series.get("seconds", 0)
        width = bin_seconds(seconds)
        figure = Figure(figsize=(10, 2.6), layout="constrained")
        axis = figure.subplots()
        base: list[float] | None = None
        for code, counts in sorted(per_code.items()):
            values = binned(counts, width, _mean)
            top = values if base is None else [b + v for b, v in zip(base, values)]
            axis.stairs(top, _edges(len(top), width), baseline=0 if base is None else base, fill=True, label=code)
            base = top
        _shade_run(axis, result.get("timeline"), seconds)
        axis.set_xlim(0, max(seconds, 1))
        axis.set_ylabel("RPCs per s" if width == 1 else f"RPCs per s\n(mean of {width} s)")
        axis.set_xlabel("seconds from the start of the run")
        axis.set_title("non-OK RPCs per second, by status code (warm-up included)")
        figure.legend(handles=axis.get_legend_handles_labels()[0], loc="outside upper right", ncol=6)
        parts.append(_svg(figure))
    elif series:
        parts.append('<p class="muted">No RPC ended with a non-OK status in any second of the run.</p>')
    return "".join(parts) + "</section>"


def _first_message_section(result: Mapping[str, Any]) -> str:
    streams = {n: row["first_message"] for n, row in (result.get("rpcs") or {}).items() if row.get("first_message")}
    if not streams:
        return ""
    headers = ["stream", "count", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms"]
    rows = [[_short(n), f"{r.get('count', 0):,}", *(_ms(r.get(k)) for k in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "mean_ms"))]
            for n, r in streams.items()]
    parts = ['<section><h2>Server streams: time to first message</h2><p class="muted">From the call\'s start to its first '
             "response message; the whole call is in the RPC tables above.</p>", _table(headers, rows)]
    curves = {_short(n): h for n, r in streams.items() if (h := _decoded(r.get("histogram")))}
    if curves:
        parts.append(_svg(_distribution_figure(curves, [], "time to first message")))
    return "".join(parts) + "</section>"


def _traces_section(result: Mapping[str, Any]) -> str:
    rows = [[name, f"<code>{_e(t['trace_id'])}</code>", _e(_ms(t.get("latency_ms"))), _e(t.get("code"))]
            for name, row in (result.get("journeys") or {}).items() for t in row.get("slowest_traces", [])]
    if not rows:
        return ('<section><h2>Slowest sampled journeys</h2><p class="muted">No journey was traced '
                "(<code>--trace-ratio</code> 0, or too few journeys).</p></section>")
    rows = [[_e(r[0]), *r[1:]] for r in rows]
    return ('<section><h2>Slowest sampled journeys</h2><p class="muted">The slowest traced journeys of each name: look the trace '
            "id up in Jaeger, or in the OTLP JSON files of <code>OUT/traces/</code>.</p>" +
            _table(["journey", "trace id", "latency ms", "status"], rows, numeric=(2,), raw=True) + "</section>")


def _tail_breakdown_section(result: Mapping[str, Any]) -> str:
    """result.json's ``tail_breakdown``: per journey, the tail's and the median's mean time per hop (harness/tail_breakdown.py)."""
    breakdown = result.get("tail_breakdown") or {}
    title = "<section><h2>Tail breakdown by hop</h2>"
    if not breakdown:
        return title + '<p class="muted">No sampled journey to break down (<code>--trace-ratio</code> 0, or no traces).</p></section>'
    parts = [title, '<p class="muted">Where the sampled journeys at or above the run\'s p99 spent their time, beside those around '
             "the median, from the spans every process wrote: send lag (client-side queueing), each hop's transport (a call's "
             "time at its caller outside the callee's handler) and each service's own handler time outside its downstream calls. "
             "Time with parallel calls in progress is split evenly among them, so the parts add up to the latency.</p>"]
    for name, entry in breakdown.items():
        tail, median = entry.get("tail") or {}, entry.get("median") or {}
        hops = list(dict.fromkeys([*tail.get("parts_ms", {}), *median.get("parts_ms", {})]))
        rows = [[_e(hop), _e(_ms(tail.get("parts_ms", {}).get(hop))), _e(_pct(tail.get("shares", {}).get(hop), 0)),
                 _e(_ms(median.get("parts_ms", {}).get(hop))), _e(_pct(median.get("shares", {}).get(hop), 0))] for hop in hops]
        heading = (f"{name}: p{entry.get('tail_from_percentile', 99):g}+ {tail.get('n', 0)} sampled, mean {_ms(tail.get('mean_ms'))} ms; "
                   f"median {median.get('n', 0)} sampled, mean {_ms(median.get('mean_ms'))} ms")
        parts.append(f"<h3>{_e(heading)}</h3>" + (f'<p class="muted">{_e(entry["note"])}</p>' if entry.get("note") else "") +
                     _table(["hop", "tail ms", "tail share", "median ms", "median share"], rows, numeric=(1, 2, 3, 4), raw=True))
    return "".join(parts) + "</section>"


# -- the capacity report ---------------------------------------------------------------------------


def render_capacity_report(capacity: Mapping[str, Any], *, slos: Sequence[Any] | None = None) -> str:
    """The HTML page of a capacity search (``OUT/capacity.json`` of ``casemesh capacity``).

    ``capacity`` is ``{"schema_version": 1, "profile": {"name", "path"},
    "steps": [{"rate_per_s", "passed", "valid", "reason", "slos": [{"name",
    "passed", "measured", "target"}], "rpcs": {NAME: {"p50_ms", "p99_ms",
    "count", "errors": {CODE: n}}}, "journeys": {NAME: {...}},
    "send_lag_p99_ms", "achieved_rps"}], "capacity_rate_per_s": float | None,
    "stopped_reason": str}``: rates in requests per second, latencies in ms.
    The knee plot draws p50/p99 against the offered rate per RPC and journey
    (steps sorted by rate, failed steps crossed), the SLO latency thresholds
    (``slos``, else loaded from ``profile.path``) and the capacity rate.
    """
    if slos is not None:
        thresholds, missing = latency_thresholds(slos), None
    else:
        thresholds, missing = thresholds_from_profile(capacity.get("profile", {}).get("path"))
    steps = list(capacity.get("steps", []))
    with matplotlib.rc_context(_RC):
        sections = [_capacity_header(capacity), _knee_section(steps, capacity.get("capacity_rate_per_s"), thresholds, missing),
                    _steps_section(steps)]
    return _page(f"casemesh capacity: {capacity.get('profile', {}).get('name', '')}", sections)


def _capacity_header(capacity: Mapping[str, Any]) -> str:
    profile = capacity.get("profile", {})
    rate = capacity.get("capacity_rate_per_s")
    kind, verdict = ("pass", f"capacity: {rate:,.1f} requests/s") if rate is not None else ("fail", "no capacity found: no step passed")
    facts = [("profile", f"{profile.get('name')} ({profile.get('path')})"), ("steps", f"{len(capacity.get('steps', []))}"),
             ("stopped", capacity.get("stopped_reason")), ("schema", capacity.get("schema_version"))]
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts)
    return (f'<header><h1>capacity of {_e(profile.get("name", ""))}</h1><p class="verdict {kind}">{_e(verdict)}</p>'
            f'<p class="validity">The highest offered rate at which every SLO passed and the driver kept its schedule.</p>'
            f'<table class="facts">{rows}</table></header>')


def _knee_section(steps: list[Mapping[str, Any]], capacity_rate: float | None, thresholds: list[Threshold], missing: str | None) -> str:
    if not steps:
        return '<section><h2>Latency vs offered rate</h2><p class="muted">No step was run.</p></section>'
    ordered = sorted(steps, key=lambda s: s["rate_per_s"])
    rates = [s["rate_per_s"] for s in ordered]
    names = [("rpcs", n) for n in sorted({n for s in steps for n in s.get("rpcs", {})})]
    names += [("journeys", n) for n in sorted({n for s in steps for n in s.get("journeys", {})})]
    parts = ['<section><h2>Latency vs offered rate</h2><p class="muted">p50 and p99 of each step\'s measured window against '
             "the rate it offered (steps sorted by rate). Dashed: SLO latency thresholds. Crosses: steps that failed an SLO or "
             "were invalid. Green: the capacity found."]
    if missing:
        parts.append(f" SLO thresholds not drawn: {_e(missing)}.")
    parts.append("</p>")
    if names:
        figure = Figure(figsize=(10, 2.1 * len(names) + 0.6), layout="constrained")
        axes = figure.subplots(len(names), 1, sharex=True, squeeze=False)[:, 0]
        for axis, (kind, name) in zip(axes, names):
            points = [s.get(kind, {}).get(name, {}) for s in ordered]
            p50, p99 = _nan(p.get("p50_ms") for p in points), _nan(p.get("p99_ms") for p in points)
            axis.plot(rates, p50, color=P50, marker="o", ms=3, label="p50")
            axis.plot(rates, p99, color=P99, marker="o", ms=3, label="p99")
            failed = [(r, v) for r, v, s in zip(rates, p99, ordered) if not (s.get("passed") and s.get("valid", True)) and not math.isnan(v)]
            axis.plot([r for r, _ in failed], [v for _, v in failed], ls="none", marker="x", ms=7, color=THRESHOLD, label="step failed")
            values = [v for v in p50 + p99 if not math.isnan(v)]
            for threshold in thresholds:
                if threshold.applies(kind, name):
                    _threshold_line(axis, threshold)
                    values.append(threshold.latency_ms)
            if capacity_rate is not None:
                axis.axvline(capacity_rate, color=CAPACITY, lw=1.5, label=f"capacity {capacity_rate:,.0f}/s")
            _ms_axis(axis, values)
            axis.set_title(_short(name) if kind == "rpcs" else f"journey {name}")
        axes[-1].set_xlabel("offered rate (requests/s)")
        figure.legend(handles=axes[0].get_legend_handles_labels()[0], loc="outside upper right", ncol=4)
        parts.append(_svg(figure))
    figure = Figure(figsize=(10, 2.8), layout="constrained")
    left, right = figure.subplots(1, 2)
    _throughput_knee(left, ordered, capacity_rate)
    _send_lag_knee(right, ordered, capacity_rate)
    parts.append(_svg(figure))
    return "".join(parts) + "</section>"


def _throughput_knee(axis: Any, ordered: list[Mapping[str, Any]], capacity_rate: float | None) -> None:
    rates = [s["rate_per_s"] for s in ordered]
    axis.plot(rates, rates, color="#8c8c8c", ls=":", label="achieved = offered")
    axis.plot(rates, _nan(s.get("achieved_rps") for s in ordered), color=P50, marker="o", ms=3, label="achieved")
    if capacity_rate is not None:
        axis.axvline(capacity_rate, color=CAPACITY, lw=1.5, label="capacity")
    axis.set_title("throughput")
    axis.set_xlabel("offered rate (requests/s)")
    axis.set_ylabel("achieved (requests/s)")
    axis.legend(loc="upper left")


def _send_lag_knee(axis: Any, ordered: list[Mapping[str, Any]], capacity_rate: float | None) -> None:
    from .cli import MAX_SEND_LAG_P99_MS

    rates = [s["rate_per_s"] for s in ordered]
    lags = _nan(s.get("send_lag_p99_ms") for s in ordered)
    axis.plot(rates, lags, color=P99, marker="o", ms=3, label="send lag p99")
    axis.axhline(MAX_SEND_LAG_P99_MS, color=THRESHOLD, ls="--", lw=1, label=f"invalid above {MAX_SEND_LAG_P99_MS:g} ms")
    if capacity_rate is not None:
        axis.axvline(capacity_rate, color=CAPACITY, lw=1.5, label="capacity")
    _ms_axis(axis, [v for v in lags if not math.isnan(v)] + [MAX_SEND_LAG_P99_MS])
    axis.set_title("driver send lag")
    axis.set_xlabel("offered rate (requests/s)")
    axis.legend(loc="upper left")


def _steps_section(steps: list[Mapping[str, Any]]) -> str:
    if not steps:
        return ""
    slo_names = list(dict.fromkeys(v["name"] for s in steps for v in s.get("slos", [])))
    rows = []
    for index, step in enumerate(steps, 1):
        verdicts = {v["name"]: v for v in step.get("slos", [])}
        cells = []
        for name in slo_names:
            v = verdicts.get(name)
            cells.append("-" if v is None else f"{_badge(v.get('passed'))} {_e(_pct(v.get('measured')))}")
        errors = sum(n for row in step.get("rpcs", {}).values() for n in row.get("errors", {}).values())
        achieved = step.get("achieved_rps")
        lag = step.get("send_lag_p99_ms")
        rows.append([str(index), _e(f"{step['rate_per_s']:,.1f}"), _e("-" if achieved is None else f"{achieved:,.1f}"),
                     _e(_ms(lag)), _e(f"{errors:,}"), _badge(step.get("passed"), step.get("valid", True)), *cells,
                     _e(step.get("reason") or "")])
    targets = {v["name"]: v.get("target") for s in steps for v in s.get("slos", [])}
    headers = ["step", "offered /s", "achieved /s", "send lag p99 ms", "RPC errors", "verdict",
               *(f"{n} (≥ {targets[n] * 100:g}%)" if targets.get(n) is not None else n for n in slo_names), "reason"]
    detail = []
    for kind in ("rpcs", "journeys"):
        for name in sorted({n for s in steps for n in s.get(kind, {})}):
            lines = [[f"{s['rate_per_s']:,.1f}", f"{s.get(kind, {}).get(name, {}).get('count', 0):,}",
                      _ms(s.get(kind, {}).get(name, {}).get("p50_ms")), _ms(s.get(kind, {}).get(name, {}).get("p99_ms")),
                      ", ".join(f"{c} {n:,}" for c, n in s.get(kind, {}).get(name, {}).get("errors", {}).items()) or "0"]
                     for s in steps]
            label = _short(name) if kind == "rpcs" else f"journey {name}"
            detail.append(f"<h3>{_e(label)}</h3>" + _table(["offered /s", "count", "p50 ms", "p99 ms", "errors"], lines, numeric=range(4)))
    return ("<section><h2>Steps</h2><p class=\"muted\">In the order they ran.</p>" +
            _table(headers, rows, numeric=range(1, 5), raw=True) +
            f"<details><summary>per RPC and journey</summary>{''.join(detail)}</details></section>")


# -- page and files --------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;margin:0 auto;max-width:1200px;padding:16px 24px 48px}
h1{font-size:24px;margin:8px 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:6px 0 10px;font-size:13px}th,td{padding:3px 9px;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
thead th{background:#f6f6f6;border-bottom:1px solid #ccc}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
table.facts th{font-weight:600;color:#555;background:none;white-space:nowrap}
.verdict{font-size:17px;font-weight:700;margin:6px 0}.verdict.pass{color:#1b7a34}.verdict.fail{color:#b3261e}.verdict.invalid{color:#9a6700}
.validity{color:#555;margin:2px 0 8px}.muted{color:#666;font-size:13px;max-width:900px}small{color:#777}.twin{color:#999}
.badge{display:inline-block;padding:0 6px;border-radius:3px;font-size:12px;font-weight:700;color:#fff}
.badge.pass{background:#1b7a34}.badge.fail{background:#b3261e}.badge.invalid{background:#9a6700}.badge.na{background:#999}
.plot svg{max-width:100%;height:auto}code{font-size:12.5px}details{margin:8px 0}summary{cursor:pointer;color:#444}
footer{margin-top:40px;color:#888;font-size:12px}
"""


def _page(title: str, sections: Sequence[str]) -> str:
    footer = f"<footer>casemesh report; plots by matplotlib {matplotlib.__version__}; no scripts, no external resources.</footer>"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n" + "\n".join(s for s in sections if s) +
            f"\n{footer}</body></html>\n")


def render_report_file(path: Path) -> tuple[str, str]:
    """``(html, kind)`` of a JSON document: a run's ``result.json`` (kind ``"run"``) or a capacity search's (``"capacity"``).

    ``ConfigError`` when the file cannot be read or is neither.
    """
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read it: {error.strerror or error}", file=str(path)) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"not JSON: {error}", file=str(path)) from None
    if not isinstance(document, dict):
        raise ConfigError("not a casemesh result document", file=str(path))
    if "steps" in document and "capacity_rate_per_s" in document:
        return render_capacity_report(document), "capacity"
    if "rpcs" in document and "slos" in document:
        return render_run_report(document), "run"
    raise ConfigError("neither a run's result.json (rpcs, slos) nor a capacity document (steps, capacity_rate_per_s)", file=str(path))
