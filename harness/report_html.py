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
own sans-serif, so no font is embedded or fetched. pygal writes a
``<script>`` (its chart config, for its optional tooltip JavaScript) and
comments with its URLs into every SVG: :func:`_static_svg` removes them, and
``js=[]`` asks for no script file. It opens offline, from a CI artifact, or
attached to an issue.

**Why pygal SVG rather than plotly or matplotlib.** Plotly's interactivity
(hover values, zoom) needs plotly.js in the page: about 3.5 MB per report once
embedded (a CDN link would break offline use), re-downloaded with every run's
artifacts. Matplotlib drew these plots as static SVG until issue 9, but
importing it took about a CPU-second and drawing a short run's six figures
(constrained layout: two passes each) two to four more, most of the fixed
cost of a run. pygal is pure Python and writes SVG elements directly: it
imports in under 0.1 CPU-s and a short run's page (about 15 plots) renders in
about 0.3, an hour's (time plots keep at most :data:`MAX_POINTS` points per
line, about 40,000 points in all) in about 1.5. A 5 s url-shortener run's page
is about 160 kB, an hour's stays under 1 MB; it renders anywhere without JavaScript,
prints, and diffs as text (each chart's id is a hash of what it draws).
What the static page loses, exact values on hover, it gives back as tables
(SLOs, per-RPC/journey percentiles, errors, first message, traces), result.json
holds every number, and on lines of at most :data:`DOTS_UP_TO` points each
point carries its value as an SVG ``<title>``, which browsers show on hover.

What changed from the matplotlib plots: pygal has no subplots, so each RPC,
journey or panel is a plot of its own, with its legend under it; an SLO
threshold is a dashed red line named in that legend rather than annotated at
its end; shaded intervals (warm-up grey, drain lilac, injected faults in
colour) are filled polygons over the plot's whole height, drawn under the
lines and named in the legend (:meth:`_Chart.band`); markers are dots (an SLO
target on the percentile plots ringed in black, a capacity step that failed as
a large red dot) where matplotlib drew crosses; log axes have 1-2-5 labels and
their guide lines but no minor ticks. pygal has no log x axis of its own
besides an all-log XY: both log axes are drawn linear over log10 of the
values, with the labels placed by hand (``0%``, ``50%``, ``90%``, ``99%`` ...
at -log10(1 - p); ``1``, ``2``, ``5``, ``10`` ms ...).

The SLO thresholds drawn on the plots come from the profile's ``casemesh``
latency SLOs (``latency_le_ms``), passed in by ``casemesh run`` or loaded
from the document's ``profile.path`` when it is still readable; without them
the plots are drawn without threshold lines, and the page says so.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import statistics
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygal
from hdrh.histogram import HdrHistogram
from pygal.style import Style

from .errors import ConfigError

#: Line colours: p50, p99, thresholds, intended/sent/completed, warm-up shade.
P50, P99, THRESHOLD, CAPACITY = "#4c72b0", "#dd8452", "#c44e52", "#55a868"
#: The control stream's per-second p99 (the machine's own floor, harness/control.py) on latency plots.
FLOOR = "#8c8c8c"
WARMUP_SHADE, DRAIN_SHADE = "#9e9e9e", "#c9b6e4"
#: Shades of the injected faults' active intervals (result.json ``faults``), one per fault in turn.
FAULT_SHADES = ("#e15759", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948")
#: Colours of lines that are one per process, RPC or status code, in turn (the "tab10" palette).
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
#: Time plots draw at most this many points per line; longer runs are binned (:func:`bin_seconds`):
#: 15 minutes at one point per second, an hour at one per 4 s. Keeps an hour's report near 1 MB.
MAX_POINTS = 900
#: Lines of at most this many points also mark each point (a second between empty ones is a dot, not nothing).
DOTS_UP_TO = 120
#: Percentile ticks of the distribution plots, as 1/(1 - p).
_PERCENTILE_TICKS = ((1, "0%"), (2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"),
                     (1e5, "99.999%"), (1e6, "99.9999%"), (1e7, "99.99999%"))


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


# -- plots -----------------------------------------------------------------------------------------

#: Width of every plot's SVG (its viewBox: the page scales it to the column); text sizes are relative to it.
_WIDTH = 1000
_FONT, _LEGEND_FONT, _TITLE_FONT = 12, 12, 13
#: pygal pads the data box by this share of its span on each side (pygal.view.Box.margin): bands and lines across the
#: whole plot reach its edges only when drawn that far.
_PAD = 0.02
#: A log latency axis draws log10(ms) + this: pygal draws the guide at position 0 as an axis line (and then no axis
#: line at the bottom), right for a linear axis from 0, wrong mid-plot at 1 ms.
_LOG_SHIFT = 10.0


def _log_y(ms: float) -> float:
    return math.log10(ms) + _LOG_SHIFT


@dataclass
class _Series:
    """One pygal series of a :class:`_Chart`, in data coordinates (ms, seconds, 1/(1-p), ...)."""

    label: str | None
    points: list[tuple[float, float | None]]
    colour: str
    width: float = 1.3
    dash: str | None = None
    dots: float = 0.0  # radius of a dot on each point; 0: none
    edge: bool = False  # a dark outline around the dots (SLO markers)
    stroke: bool = True
    fill: float = 0.0  # opacity of the area between the line and 0; 0: not filled
    band: tuple[float, float] | None = None  # an x interval shaded over the plot's whole height (points unused)
    hline: float | None = None  # a horizontal line across the whole plot at this y
    vline: float | None = None  # a vertical line over the whole plot's height at this x


def _number(value: float) -> str:
    """An axis label: ``1,200``, ``25``, ``2.5``, ``0.05``."""
    if abs(value) >= 100 or abs(value - round(value)) <= 1e-9 * abs(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _linear_ticks(low: float, high: float, count: int = 6, *, integer: bool = False) -> list[float]:
    """Ticks at a 1-2-2.5-5 step between ``low`` and ``high``, about ``count`` of them."""
    span = high - low
    if span <= 0:
        return [low]
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    if integer:
        step = max(1.0, float(math.ceil(step)))
    first = math.ceil(low / step - 1e-9)
    return [round(i * step, 12) for i in range(first, math.floor(high / step + 1e-9) + 1)]


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 ticks over up to 2.5 decades, powers of ten beyond (fewer labels than the axis can hold otherwise)."""
    subs = (1.0, 2.0, 5.0) if math.log10(high / low) <= 2.5 else (1.0,)
    return [m * 10.0 ** e for e in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1) for m in subs
            if low <= m * 10.0 ** e <= high]


def _static_svg(root: Any) -> Any:
    """pygal's SVG without what only its JavaScript uses: no ``<script>`` (its config), no tooltip box and no comments.

    A dot's tooltip value becomes its ``<title>``, which browsers show on hover without any script.
    """
    for parent in list(root.iter()):
        for child in list(parent):
            tag = child.tag.rsplit("}", 1)[-1] if isinstance(child.tag, str) else None
            classes = (child.get("class") or "").split() if tag else []
            if tag is None or tag == "script" or (tag == "g" and "tooltip-overlay" in classes):
                parent.remove(child)  # comments (a date, pygal's URLs), the config script, the tooltip box
            elif tag == "desc":
                if "value" in classes:
                    child.tag, child.attrib = "title", {}
                else:
                    parent.remove(child)
            elif tag == "title" and "guides" in (parent.get("class") or ""):
                parent.remove(child)  # an axis label's tooltip: the transformed value (log10 ms), not what it reads
    return root


class _XY(pygal.XY):
    """``pygal.XY`` with its attribute lookup in fewer steps, the same lookup.

    pygal reads every attribute of a chart from its render state when the state has it (``BaseGraph.__getattribute__``:
    a ``getattr``, a ``startswith`` and a dict test per access, several per point drawn). Done with plain dict access
    here, an hour's plots (about 40,000 points) draw in half the time. tests/unit/test_report_html.py checks that
    both draw the same SVG.
    """

    def __getattribute__(self, name: str) -> Any:
        state = object.__getattribute__(self, "__dict__").get("state")
        if state is not None and name != "state" and not name.startswith("__"):
            values = state.__dict__
            if name in values:
                return values[name]
        return object.__getattribute__(self, name)


class _Chart:
    """A pygal XY chart put together series by series, drawn as static SVG by :meth:`svg`.

    ``log_y``: a log latency axis in ms (values are drawn as log10, ticks 1-2-5 labelled in ms);
    ``percentile_x``: HdrHistogram's percentile axis (x values are 1/(1 - p), drawn as log10, ticks 50 %, 90 %, 99 % ...).
    Shaded intervals (:meth:`band`) are filled polygons over the plot's height, drawn under the lines and named in the
    legend; horizontal and vertical lines (:meth:`hline`, :meth:`vline`) are two-point series across the plot.
    """

    def __init__(self, title: str, *, x_title: str = "seconds from the start of the run", y_title: str | None = "ms",
                 log_y: bool = True, percentile_x: bool = False, height: int = 250, width: int = _WIDTH) -> None:
        self.title, self.x_title, self.y_title = title, x_title, y_title
        self.log_y, self.percentile_x, self.height, self.width = log_y, percentile_x, height, width
        self.series: list[_Series] = []
        self.xlim: tuple[float, float] | None = None
        self.ylim: tuple[float | None, float | None] = (None, None)
        self.y_values: list[float] = []  # values the y axis must show besides the lines' (thresholds)
        self.integer_y = False
        self.x_unit = " s"  # after an x value in a point's hover text

    def line(self, label: str | None, xs: Sequence[float], ys: Sequence[float | None], colour: str, *, width: float = 1.3,
             dash: str | None = None, dots: float | None = None) -> None:
        """A line through ``(xs, ys)``, broken where y is ``None`` or NaN; ``dots`` (radius) default: on short lines only."""
        points = [(x, None if y is None or not math.isfinite(y) else y) for x, y in zip(xs, ys)]
        if dots is None:
            dots = 2.2 if len(points) <= DOTS_UP_TO else 0.0
        self.series.append(_Series(label, points, colour, width=width, dash=dash, dots=dots))

    def steps(self, label: str | None, edges: Sequence[float], ys: Sequence[float | None], colour: str, *,
              fill: float = 0.0, width: float = 1.3) -> None:
        """A step line: ``ys[i]`` from ``edges[i]`` to ``edges[i + 1]``; ``fill``: the area down to 0 at that opacity."""
        points: list[tuple[float, float | None]] = []
        for index, y in enumerate(ys):
            value = None if y is None or not math.isfinite(y) else y
            points += [(edges[index], value), (edges[index + 1], value)]
        self.series.append(_Series(label, points, colour, width=width, fill=fill))

    def steps_post(self, label: str | None, xs: Sequence[float], ys: Sequence[float], colour: str, *, width: float = 1.5) -> None:
        """A step line that holds each y until the next x (matplotlib's ``drawstyle="steps-post"``)."""
        points: list[tuple[float, float | None]] = []
        for index, (x, y) in enumerate(zip(xs, ys)):
            if index:
                points.append((x, ys[index - 1]))
            points.append((x, y))
        self.series.append(_Series(label, points, colour, width=width))

    def markers(self, label: str | None, xs: Sequence[float], ys: Sequence[float], colour: str, *, size: float = 4.0,
                edge: bool = False) -> None:
        """Dots without a line (failed steps, SLO targets)."""
        self.series.append(_Series(label, [(x, y) for x, y in zip(xs, ys) if y is not None and math.isfinite(y)], colour,
                                   dots=size, edge=edge, stroke=False))

    def hline(self, label: str | None, y: float, colour: str, *, dash: str | None = "6,4", width: float = 1.2) -> None:
        self.series.append(_Series(label, [], colour, width=width, dash=dash, hline=y))
        self.y_values.append(y)

    def vline(self, label: str | None, x: float, colour: str, *, width: float = 2.0) -> None:
        self.series.append(_Series(label, [], colour, width=width, vline=x))

    def band(self, label: str | None, start: float, end: float, colour: str, opacity: float) -> None:
        self.series.append(_Series(label, [], colour, fill=opacity, band=(start, end)))

    def _x_range(self) -> tuple[float, float]:
        if self.xlim:
            return self.xlim
        xs = [x for s in self.series for x, y in s.points if y is not None] + [s.vline for s in self.series if s.vline is not None]
        if not xs:
            return (0.0, 1.0)
        low, high = min(xs), max(xs)
        pad = (high - low) * 0.05 or max(abs(low) * 0.1, 1.0)
        return (low - pad, high + pad)

    def _y_range(self) -> tuple[float, float]:
        values = [y for s in self.series for _, y in s.points if y is not None] + self.y_values
        if self.log_y:
            finite = [v for v in values if v > 0 and math.isfinite(v)]
            low, high = (min(finite) / 2, max(finite) * 2) if finite else (0.1, 10.0)
        else:
            low = min([0.0, *values])
            high = max([*values, 0.0]) * 1.1 or 1.0
        return (low if self.ylim[0] is None else self.ylim[0], high if self.ylim[1] is None else self.ylim[1])

    def svg(self) -> str:
        """The chart as an inline ``<div class="plot"><svg>`` (no XML prolog, no script, no date)."""
        tx = math.log10 if self.percentile_x else float
        ty = _log_y if self.log_y else float
        x0, x1 = self._x_range()
        y0, y1 = self._y_range()
        left, right, bottom, top = tx(x0), tx(x1), ty(y0), ty(y1)
        x_pad, y_pad = (right - left) * _PAD, (top - bottom) * _PAD
        if self.percentile_x:
            x_ticks = [(tx(v), text) for v, text in _PERCENTILE_TICKS if x0 <= v <= x1]
        else:
            x_ticks = [(v, _number(v)) for v in _linear_ticks(x0, x1, max(3, self.width // 100))]
        y_ticks = _log_ticks(y0, y1) if self.log_y else _linear_ticks(y0, y1, 3 if self.integer_y else 5, integer=self.integer_y)

        def point(x: float, y: float | None) -> tuple[float, float | None]:
            return (tx(x), None if y is None or (self.log_y and y <= 0) else ty(y))

        ordered = [s for s in self.series if s.band] + [s for s in self.series if not s.band]  # shading under the lines
        labels = [s.label for s in ordered if s.label]
        widest = max((len(t) for t in labels), default=1) * 0.56 * _LEGEND_FONT + 30  # pygal does not wrap or measure legends
        columns = max(1, min(len(labels) or 1, int((self.width - 100) // widest)))
        rows = math.ceil(len(labels) / columns)
        # pygal makes room for len(series) // columns legend rows, counting unlabelled series too: make up the difference
        legend_extra = 1.5 * max(12, _LEGEND_FONT) * (rows - len(ordered) // columns) if labels else 0
        uid = hashlib.sha1(repr((self.title, [(s.label, s.colour, s.width, s.dash, s.dots, s.fill, s.edge) for s in ordered]))
                           .encode()).hexdigest()[:12]
        css = self._css(f"#chart-{uid} ", ordered)
        style = Style(background="#fff", plot_background="#fff", font_family="sans-serif", label_font_size=_FONT,
                      major_label_font_size=_FONT, legend_font_size=_LEGEND_FONT, title_font_size=_TITLE_FONT,
                      colors=tuple(s.colour for s in ordered) or ("#000",))
        chart = _XY(
            width=self.width, height=int(self.height + 18 * max(rows - 1, 0)), style=style, css=["inline:" + css], js=[],
            title=self.title, x_title=self.x_title, y_title=self.y_title, show_legend=bool(labels), legend_at_bottom=True,
            legend_at_bottom_columns=columns, legend_box_size=12, truncate_legend=-1, truncate_label=-1, margin=12,
            margin_bottom=int(12 + legend_extra), spacing=8, range=(bottom, top), xrange=(left, right),
            x_labels=[{"value": v, "label": t} for v, t in x_ticks], y_labels=[{"value": ty(v), "label": _number(v)} for v in y_ticks],
            show_x_guides=True, show_y_guides=True, allow_interruptions=True, show_dots=False, print_values=False,
            disable_xml_declaration=True, no_data_text="no data", strict=True)
        chart.uuid = uid  # the id its stylesheet is scoped to: the same chart gets the same id, and the page diffs as text
        chart.add_xml_filter(_static_svg)
        for series in ordered:
            if series.band:
                start, end = tx(series.band[0]), tx(series.band[1])
                points = [(start, bottom - y_pad), (start, top + y_pad), (end, top + y_pad), (end, bottom - y_pad)]
            elif series.hline is not None:
                points = [(left - x_pad, ty(series.hline)), (right + x_pad, ty(series.hline))]
            elif series.vline is not None:
                points = [(tx(series.vline), bottom - y_pad), (tx(series.vline), top + y_pad)]
            else:
                points = [point(x, y) for x, y in series.points]
            # pygal pads every series with None up to the longest (or the number of x labels): a filled series must not
            # break there (allow_interruptions), or its path loses the point that closes the area
            chart.add(series.label, points, stroke=series.stroke, fill=bool(series.fill), allow_interruptions=not series.fill,
                      show_dots=bool(series.dots), dots_size=series.dots or 2.5, formatter=self._tooltip(series.label))
        return f'<div class="plot">{chart.render()}</div>'

    def _tooltip(self, label: str | None) -> Callable[[Any], str]:
        def text(value: Any) -> str:
            x, y = value
            x = 10 ** x if self.percentile_x else x
            shown_x = f"{(1 - 1 / x) * 100:.4g}%" if self.percentile_x else f"{x:,.4g}{self.x_unit}"
            shown_y = f"{10 ** (y - _LOG_SHIFT):,.3f} ms" if self.log_y else f"{y:,.4g}"
            return f"{label + ': ' if label else ''}{shown_y} at {shown_x}"
        return text

    @staticmethod
    def _css(cid: str, ordered: list[_Series]) -> str:
        """The chart's stylesheet, scoped to its id: pygal's own (graph.css, style.css) is mostly for its JavaScript."""
        rules = [f"{cid}{{user-select:text;-webkit-user-select:text}}", f"{cid}.background{{fill:#fff}}",
                 f"{cid}text{{fill:#333;stroke:none}}", f"{cid}.plot_title{{fill:#111}}",
                 f"{cid}.title,{cid}.axis.x text{{text-anchor:middle}}", f"{cid}.axis.y text{{text-anchor:end}}",
                 f"{cid}.axis .line{{stroke:#999;fill:none}}", f"{cid}.axis .guide.line{{stroke:#e6e6e6}}",
                 f"{cid}.nofill{{fill:none}}", f"{cid}.series .line{{stroke-width:1.3;stroke-linejoin:round}}",
                 f"{cid}.dot{{stroke:none}}"]
        for index, series in enumerate(ordered):
            one = f"{cid}.serie-{index} "
            rules.append(f"{cid}.color-{index}{{stroke:{series.colour};fill:{series.colour}}}")
            if series.band:
                rules.append(f"{one}.line{{fill-opacity:{series.fill};stroke:none}}")
                rules.append(f"{cid}#activate-serie-{index} rect{{fill-opacity:{min(1.0, series.fill * 2):.2f}}}")
                continue
            line = [f"stroke-width:{series.width:g}"] + ([f"stroke-dasharray:{series.dash}"] if series.dash else [])
            if series.fill:
                line.append(f"fill-opacity:{series.fill}")
            rules.append(f"{one}.line{{{';'.join(line)}}}")
            if series.edge:
                rules.append(f"{one}.dot{{stroke:#222;stroke-width:1}}")
        return "".join(rules)


def _shade_run(chart: _Chart, timeline: Mapping[str, Any] | None, seconds: int) -> None:
    """Grey over the warm-up; lilac over the seconds after sending stopped (the drain), when any calls ended there."""
    if not timeline:
        return
    if timeline.get("warmup_s"):
        chart.band("warm-up", 0, timeline["warmup_s"], WARMUP_SHADE, 0.18)
    end_s = timeline.get("end_s")
    if end_s is not None and seconds > end_s:
        chart.band("drain (sending stopped)", end_s, seconds, DRAIN_SHADE, 0.3)


def _shade_faults(chart: _Chart, faults: Sequence[Mapping[str, Any]] | None, warmup_s: float) -> None:
    """One coloured band per injected fault over its actual active interval (else the planned one), on the run's time axis."""
    for index, fault in enumerate(faults or []):
        window = fault.get("actual") or fault["planned"]
        chart.band(f"fault {fault['name']} ({fault.get('describe', fault['kind'])})", warmup_s + window["start_s"],
                   warmup_s + window["end_s"], FAULT_SHADES[index % len(FAULT_SHADES)], 0.16)


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
            parts.append(f"<h3>{heading}</h3>" + "".join(
                chart.svg() for chart in _latency_over_time_charts(group, kind, series, result.get("timeline"), thresholds,
                                                                   (result.get("environment") or {}).get("control"),
                                                                   faults=result.get("faults"))))
    return "".join(parts) + "</section>"


def _latency_over_time_charts(group: Mapping[str, Mapping[str, Any]], kind: str, series: Mapping[str, Any],
                              timeline: Mapping[str, Any] | None, thresholds: list[Threshold],
                              control: Mapping[str, Any] | None = None, *,
                              faults: Sequence[Mapping[str, Any]] | None = None) -> list[_Chart]:
    """One chart per RPC or journey: p50 and p99 per second, the machine's floor, shading and SLO thresholds."""
    seconds = series.get("seconds", 0)
    width = bin_seconds(seconds)
    floor_p99 = [s.get("p99_ms") for s in (control or {}).get("per_second", [])]
    charts = []
    for name, points in group.items():
        total = sum(points.get("count", []))
        chart = _Chart(f"{_short(name) if kind == 'rpcs' else name}  ({total:,} calls, warm-up included)", height=270)
        _shade_run(chart, timeline, seconds)
        _shade_faults(chart, faults, (timeline or {}).get("warmup_s") or 0.0)
        if floor_p99:
            floor = binned(floor_p99, width, max)
            chart.line("machine floor p99 (control)" if width == 1 else f"machine floor p99 (highest of {width} s)",
                       _centres(len(floor), width), floor, FLOOR, width=1.0, dash="2,3", dots=0)
        p50 = binned(points.get("p50_ms", []), width, statistics.median)
        p99 = binned(points.get("p99_ms", []), width, max)
        chart.line("p50" if width == 1 else f"p50 (median of {width} s)", _centres(len(p50), width), p50, P50)
        chart.line("p99" if width == 1 else f"p99 (highest of {width} s)", _centres(len(p99), width), p99, P99)
        if not any(v is not None for key in ("p50_ms", "p99_ms") for v in points.get(key, [])):
            chart.title += ": no calls"
        for threshold in thresholds:
            if threshold.applies(kind, name):
                _threshold_line(chart, threshold)
        chart.xlim = (0, max(seconds, 1))
        charts.append(chart)
    return charts


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
    charts = []
    for key, heading in (("lag_p99_ms", "lag p99"), ("lag_max_ms", "lag max")):
        chart = _Chart(f"event-loop {heading} per second" + ("" if width == 1 else f" (highest of each {width} s)"), height=260)
        _shade_run(chart, result.get("timeline"), seconds)
        for index, (name, points) in enumerate(processes.items()):
            line = binned(points.get(key, []), width, max)
            chart.line(name, _centres(len(line), width), line, PALETTE[index % len(PALETTE)], dots=2.0 if len(line) <= DOTS_UP_TO else 0)
        chart.xlim = (0, max(seconds, 1))
        charts.append(chart)
    chart = _Chart("GC pause time per second, all generations" + ("" if width == 1 else f" (highest of each {width} s)"),
                   y_title="ms paused", log_y=False, height=230)
    _shade_run(chart, result.get("timeline"), seconds)
    for index, (name, points) in enumerate(processes.items()):
        line = binned(points.get("gc_ms", []), width, max)
        chart.line(name, _centres(len(line), width), line, PALETTE[index % len(PALETTE)], dots=0)
    chart.xlim, chart.ylim = (0, max(seconds, 1)), (0, None)
    charts.append(chart)
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
    return title + note + "".join(chart.svg() for chart in charts) + table + "</section>"


def _threshold_line(chart: _Chart, threshold: Threshold) -> None:
    """A dashed line at an SLO's latency threshold, named in the legend."""
    chart.hline(f"SLO {threshold.name}: {threshold.target * 100:g}% ≤ {threshold.latency_ms:g} ms", threshold.latency_ms, THRESHOLD)


def _decoded(encoded: str | None) -> HdrHistogram | None:
    if not encoded:
        return None
    histogram = HdrHistogram.decode(encoded)
    return histogram if histogram.get_total_count() else None


def _percentile_points(histogram: HdrHistogram, ticks_per_half_distance: int = 5) -> tuple[list[float], list[float]]:
    """``(x, latency ms)`` along the distribution, x = 1 / (1 - p); the max is drawn at ``1 - 1/count`` (x = count).

    The points of hdrh's ``get_percentile_iterator(ticks_per_half_distance)`` (its percentile levels below 100 %, each
    with the highest value equivalent to the first recorded value at or above it), computed in one pass over the
    non-empty counts: the iterator steps through every sub-bucket in Python, a few hundred ms per histogram.
    """
    total = histogram.get_total_count()
    stored = min(histogram.counts_len, histogram.encoder.payload.counts_len)  # a decoded histogram may have fewer counts
    xs: list[float] = []
    ys: list[float] = []
    level, seen = 0.0, 0
    for index, count in enumerate(histogram.counts[:stored]):
        if not count:
            continue
        seen += count
        reached = 100.0 * seen / total
        if reached < level:
            continue
        value_ms = histogram.get_highest_equivalent_value(histogram.get_value_from_index(index)) / 1000
        while reached >= level and level < 100.0:
            xs.append(1 / (1 - level / 100))
            ys.append(value_ms)
            if seen >= total:
                break  # the last recorded value: the iterator's next level is 100 %, which is the max point below
            gap = 100.0 - level
            level += 100.0 / (ticks_per_half_distance * math.pow(2, math.log(100 / gap) / math.log(2) + 1))
        if seen >= total:
            break
    xs.append(max(float(total), xs[-1] if xs else 1.0))
    ys.append(histogram.get_max_value() / 1000)
    return xs, ys


def percentile_chart(title: str, *, height: int = 330) -> _Chart:
    """A chart on HdrHistogram's percentile axis (log of 1 / (1 − p): 0 %, 50 %, 90 %, 99 % ...) and a log ms axis.

    x values are 1 / (1 − p) (:func:`_percentile_points`); set ``xlim`` to ``(1, x_max * 1.5)``.
    """
    return _Chart(title, x_title="percentile (log scale of 1 / (1 − p))", percentile_x=True, height=height)


def _distribution_chart(curves: Mapping[str, HdrHistogram], markers: list[tuple[str, Threshold]], title: str) -> _Chart:
    chart = percentile_chart(title)
    x_max, colours = 10.0, {}
    for index, (name, histogram) in enumerate(curves.items()):
        xs, ys = _percentile_points(histogram)
        colours[name] = PALETTE[index % len(PALETTE)]
        chart.steps_post(f"{name} ({histogram.get_total_count():,} calls)", xs, ys, colours[name])
        x_max = max(x_max, xs[-1])
    for name, threshold in markers:
        x = 1 / (1 - threshold.target) if threshold.target < 1 else x_max
        chart.markers(f"SLO {threshold.name}: {threshold.target * 100:g}% ≤ {threshold.latency_ms:g} ms", [x], [threshold.latency_ms],
                      colours.get(name, THRESHOLD), size=6, edge=True)
        x_max = max(x_max, x)
    chart.xlim = (1, x_max * 1.5)
    return chart


def _distribution_section(result: Mapping[str, Any], thresholds: list[Threshold]) -> str:
    parts = ['<section><h2>Latency by percentile</h2><p class="muted">Measured window, every call (OK or not), from the exact '
             "HDR histograms (3 significant figures) in result.json, plotted as HdrHistogram does: the x axis stretches the tail, "
             "so 90 %, 99 %, 99.9 % are equally far apart. A dot ringed in black marks an SLO (its target, its threshold): "
             "its curve must pass below it.</p>"]
    drawn = False
    for kind, heading in (("rpcs", "RPCs"), ("journeys", "Journeys")):
        calls = result.get(kind) or {}
        curves = {(_short(n) if kind == "rpcs" else n): h for n, row in calls.items() if (h := _decoded(row.get("histogram")))}
        if curves:
            markers = [((_short(n) if kind == "rpcs" else n), t) for n in calls for t in thresholds if t.applies(kind, n)]
            parts.append(_distribution_chart(curves, markers, heading).svg())
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
    top = _Chart("arrivals per second" + ("" if width == 1 else f" (mean of each {width} s)"), y_title="journeys per s",
                 log_y=False, height=300)
    _shade_run(top, timeline, seconds)
    for key, colour, label in (("intended", "#8c8c8c", "intended (arrival process)"), ("sent", P50, "sent (driver)"),
                               ("completed", CAPACITY, "completed (system under test)")):
        values = binned(timeline[key], width, _mean)
        top.line(label, _centres(len(values), width), values, colour, width=2.6 if key == "intended" else 1.3, dots=0)
    top.xlim, top.ylim = (0, seconds), (0, None)
    shortfall = binned([i - s for i, s in zip(timeline["intended"], timeline["sent"])], width, max)
    bottom = _Chart("intended − sent per second" + ("" if width == 1 else f" (worst of each {width} s)"), y_title="journeys",
                    log_y=False, height=210)
    _shade_run(bottom, timeline, seconds)
    bottom.steps("intended − sent", _edges(len(shortfall), width), shortfall, P99, fill=0.85)
    finite = [v for v in shortfall if math.isfinite(v)] or [0.0]
    bottom.xlim, bottom.ylim, bottom.integer_y = (0, seconds), (min(min(finite), 0) * 1.2, max(max(finite), 1) * 1.2), True
    worst = timeline.get("max_shortfall", {})
    text = (f"{timeline.get('intended_total', 0):,} arrivals intended, {timeline.get('sent_total', 0):,} sent, "
            f"{timeline.get('completed_total', 0):,} completed ({timeline.get('completed_after_end', 0):,} after sending stopped); ")
    text += (f"worst second {worst['second']}: {worst['sent']:,} of {worst['intended']:,} sent" if worst.get("shortfall")
             else "every second sent all it intended")
    if timeline.get("ended_early"):
        text += f"; the arrival schedule ended at {timeline['end_s']:,.1f} s, before the planned {timeline['planned_end_s']:g} s"
    return ('<section><h2>Throughput: intended vs achieved</h2><p class="muted">' + _e(text) +
            ". An open-loop driver that keeps up sends what was intended, second by second; completed lagging sent is the "
            "system falling behind.</p>" + top.svg() + bottom.svg() + "</section>")


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
        chart = _Chart("non-OK RPCs per second, by status code (warm-up included)",
                       y_title="RPCs per s" if width == 1 else f"RPCs per s (mean of {width} s)", log_y=False, height=250)
        _shade_run(chart, result.get("timeline"), seconds)
        stacked: list[tuple[str, list[float]]] = []
        base: list[float] | None = None
        for code, counts in sorted(per_code.items()):
            values = binned(counts, width, _mean)
            top = values if base is None else [b + v for b, v in zip(base, values)]
            stacked.append((code, top))
            base = top
        for index, (code, top) in reversed(list(enumerate(stacked))):  # the highest first: each code paints over those above it
            chart.steps(code, _edges(len(top), width), top, PALETTE[index % len(PALETTE)], fill=1.0)
        chart.xlim, chart.ylim = (0, max(seconds, 1)), (0, None)
        parts.append(chart.svg())
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
        parts.append(_distribution_chart(curves, [], "time to first message").svg())
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
    (steps sorted by rate, failed steps marked), the SLO latency thresholds
    (``slos``, else loaded from ``profile.path``) and the capacity rate.
    """
    if slos is not None:
        thresholds, missing = latency_thresholds(slos), None
    else:
        thresholds, missing = thresholds_from_profile(capacity.get("profile", {}).get("path"))
    steps = list(capacity.get("steps", []))
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
             "the rate it offered (steps sorted by rate). Dashed: SLO latency thresholds. Large red dots: the p99 of steps that "
             "failed an SLO or were invalid. Green: the capacity found."]
    if missing:
        parts.append(f" SLO thresholds not drawn: {_e(missing)}.")
    parts.append("</p>")
    for kind, name in names:
        points = [s.get(kind, {}).get(name, {}) for s in ordered]
        p50, p99 = _nan(p.get("p50_ms") for p in points), _nan(p.get("p99_ms") for p in points)
        chart = _Chart(_short(name) if kind == "rpcs" else f"journey {name}", x_title="offered rate (requests/s)", height=270)
        chart.x_unit = "/s"
        chart.line("p50", rates, p50, P50, dots=3.0)
        chart.line("p99", rates, p99, P99, dots=3.0)
        failed = [(r, v) for r, v, s in zip(rates, p99, ordered) if not (s.get("passed") and s.get("valid", True)) and not math.isnan(v)]
        if failed:
            chart.markers("step failed (its p99)", [r for r, _ in failed], [v for _, v in failed], THRESHOLD, size=6, edge=True)
        for threshold in thresholds:
            if threshold.applies(kind, name):
                _threshold_line(chart, threshold)
        if capacity_rate is not None:
            chart.vline(f"capacity {capacity_rate:,.0f}/s", capacity_rate, CAPACITY)
        parts.append(chart.svg())
    parts.append('<div class="pair">' + _throughput_knee(ordered, capacity_rate).svg() + _send_lag_knee(ordered, capacity_rate).svg()
                 + "</div>")
    return "".join(parts) + "</section>"


def _throughput_knee(ordered: list[Mapping[str, Any]], capacity_rate: float | None) -> _Chart:
    rates = [s["rate_per_s"] for s in ordered]
    chart = _Chart("throughput", x_title="offered rate (requests/s)", y_title="achieved (requests/s)", log_y=False, height=330,
                   width=560)
    chart.x_unit = "/s"
    chart.line("achieved = offered", rates, rates, "#8c8c8c", dash="2,3", dots=0)
    chart.line("achieved", rates, _nan(s.get("achieved_rps") for s in ordered), P50, dots=3.0)
    if capacity_rate is not None:
        chart.vline("capacity", capacity_rate, CAPACITY)
    chart.ylim = (0, None)
    return chart


def _send_lag_knee(ordered: list[Mapping[str, Any]], capacity_rate: float | None) -> _Chart:
    from .cli import MAX_SEND_LAG_P99_MS

    rates = [s["rate_per_s"] for s in ordered]
    chart = _Chart("driver send lag", x_title="offered rate (requests/s)", height=330, width=560)
    chart.x_unit = "/s"
    chart.line("send lag p99", rates, _nan(s.get("send_lag_p99_ms") for s in ordered), P99, dots=3.0)
    chart.hline(f"invalid above {MAX_SEND_LAG_P99_MS:g} ms", MAX_SEND_LAG_P99_MS, THRESHOLD)
    if capacity_rate is not None:
        chart.vline("capacity", capacity_rate, CAPACITY)
    return chart


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
.plot svg{width:100%;height:auto;display:block}.pair{display:grid;grid-template-columns:1fr 1fr;gap:8px}code{font-size:12.5px}details{margin:8px 0}summary{cursor:pointer;color:#444}
footer{margin-top:40px;color:#888;font-size:12px}
"""


def _page(title: str, sections: Sequence[str]) -> str:
    footer = f"<footer>casemesh report; plots by pygal {pygal.__version__}; no scripts, no external resources.</footer>"
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
