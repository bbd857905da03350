"""The HTML page of ``casemesh compare`` (``compare.html``): one self-contained file, like ``report.html``.

The two runs, the caveats, the table of percentile differences with their
intervals, SLO verdict changes, and per RPC and journey the percentile
curves of A and B overlaid (decoded from the runs' histograms, on
HdrHistogram's log ``1/(1-p)`` axis) with each compared percentile's
interval drawn as a bar. Page, tables and plot helpers are report.html's
(harness/report_html.py): no script, nothing fetched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..report_html import _Chart, _e, _page, _percentile_points, _table, percentile_chart
from ..stats import decode
from .document import RunDocument
from .terminal import run_line

A_COLOUR, B_COLOUR = "#4c72b0", "#dd8452"
_CHANGE_CLASS = {"slower": "fail", "faster": "pass", "no change": "na", "too few calls": "na"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def _interval(pair: list[float] | None, fmt: Any) -> str:
    return "-" if pair is None else f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def render_compare_page(document: Mapping[str, Any], a: RunDocument, b: RunDocument) -> str:
    """The page of a comparison document (harness/compare/comparison.py) of runs ``a`` and ``b``; returns HTML."""
    sections = [_header(document), _differences(document), _slos(document), _curves(document, a, b)]
    return _page(f"casemesh compare: {document['a'].get('profile')} vs {document['b'].get('profile')}", sections)


def _header(document: Mapping[str, Any]) -> str:
    gate = document["gate"]
    if not gate["rules"]:
        verdict, kind = "no --fail-on gate", "pass"
    elif gate["failed"]:
        verdict, kind = f"FAILED: {len(gate['regressions'])} regression(s) beyond {', '.join(gate['rules'])}", "fail"
    else:
        verdict, kind = f"PASSED: no significant regression beyond {', '.join(gate['rules'])}", "pass"
    regressions = "".join(f"<li>{_e(r['name'])} p{r['percentile']:g}: {r['diff_ms']:+,.2f} ms ({_pct(r['diff_pct'])}) ({_e(r['rule'])})</li>"
                          for r in gate["regressions"])
    caveats = "".join(f'<li class="warn">{_e(w)}</li>' for w in document["warnings"]) + "".join(f"<li>{_e(n)}</li>" for n in document["notes"])
    method = document["method"]
    return (f'<header><h1>A vs B</h1><p class="verdict {kind}">{_e(verdict)}</p>'
            + (f"<ul>{regressions}</ul>" if regressions else "")
            + f'<table class="facts"><tr><th>A (baseline)</th><td>{_e(run_line("A", document["a"])[3:])}</td></tr>'
            f'<tr><th>B</th><td>{_e(run_line("B", document["b"])[3:])}</td></tr>'
            f'<tr><th>method</th><td>{_e(method["name"])}; {method["confidence"]:.0%} intervals, {method["resamples"]:,} resamples, '
            f'seed {method["seed"]}; significant when the interval excludes 0 and |Δ| ≥ {method["min_effect"]:.0%}</td></tr></table>'
            + (f"<h3>Caveats</h3><ul>{caveats}</ul>" if caveats else "") + "</header>")


def _differences(document: Mapping[str, Any]) -> str:
    confidence = document["method"]["confidence"]
    rows = []
    for comparison in document["comparisons"]:
        for index, row in enumerate(comparison["rows"]):
            change = f'<span class="badge {_CHANGE_CLASS.get(row["change"], "na")}">{_e(row["change"])}</span>'
            title = f' title="{_e(row["note"])}"' if row["note"] else ""
            rows.append([_e(comparison["label"]) if index == 0 else "",
                         _e(f"{comparison['a_count']:,} / {comparison['b_count']:,}") if index == 0 else "",
                         _e(row["label"]), _ms(row["a_ms"]), _ms(row["b_ms"]), _e(f"{row['diff_ms']:+,.2f}"), _e(_pct(row["diff_pct"])),
                         _e(_interval(row["ci_ms"], lambda v: f"{v:+,.2f}")), _e(_interval(row["ci_pct"], _pct)),
                         f"<span{title}>{change}</span>",
                         _e(f"{row['a_design_effect']:g} / {row['b_design_effect']:g}")])
    headers = ["RPC / journey", "calls A / B", "pct", "A ms", "B ms", "Δ ms", "Δ %", f"{confidence:.0%} interval Δ ms", "Δ % interval",
               "change", "design effect A / B"]
    only = [f"only in {side}: {', '.join(names)}" for side, key in (("A", "only_in_a"), ("B", "only_in_b"))
            if (names := [n for group in document[key].values() for n in group])]
    return ("<section><h2>Percentiles</h2>" + (_table(headers, rows, numeric=range(1, 10), raw=True) if rows else
                                                 '<p class="muted">No RPC or journey has calls in both runs.</p>')
            + "".join(f'<p class="muted">{_e(line)}</p>' for line in only)
            + '<p class="muted">Δ = B − A. The interval is a bootstrap of each run\'s exact HDR histogram, with the calls counted as '
            "fewer (their number divided by the design effect) when the per-second series shows that slow calls come in bunches. "
            "A percentile is not judged when either run has too few calls for a bounded interval (e.g. 368 for a p99 at 95 %). "
            "One run per side cannot show how much two runs of the same build differ: read small significant changes with care "
            "(harness/compare/stats.py).</p></section>")


def _slos(document: Mapping[str, Any]) -> str:
    slos = document["slos"]
    if not slos:
        return ""
    badge = {"PASS": "pass", "FAIL": "fail", "INCONCLUSIVE": "na", "NOT EVALUATED": "na"}
    rows = [[_e(s["display_name"]) + f"<br><small>{_e(s['name'])}</small>",
             *(f'<span class="badge {badge.get(s[side] or "", "na")}">{_e(s[side] or "absent")}</span>' for side in ("a", "b")),
             "<strong>changed</strong>" if s["changed"] else ""] for s in slos]
    return "<section><h2>SLO verdicts</h2>" + _table(["SLO", "A", "B", ""], rows, numeric=(), raw=True) + "</section>"


def _curves(document: Mapping[str, Any], a: RunDocument, b: RunDocument) -> str:
    parts = ['<section><h2>Latency by percentile, A and B</h2><p class="muted">Each run\'s distribution from its HDR histogram '
             "(measured window, every call), on HdrHistogram's axis that stretches the tail. Bars: each run's interval at the "
             "compared percentiles.</p>"]
    for comparison in document["comparisons"]:
        kind, name = comparison["kind"], comparison["name"]
        curves = {}
        for side, run in (("A", a), ("B", b)):
            encoded = run.data[kind][name]["histogram"]
            curves[side] = decode(encoded)
        parts.append(_overlay_chart(comparison, curves).svg())
    return "".join(parts) + "</section>"


def _overlay_chart(comparison: Mapping[str, Any], curves: Mapping[str, Any]) -> _Chart:
    changed = [f"{r['label']} {r['change']} ({_pct(r['diff_pct'])})" for r in comparison["rows"] if r["significant"]]
    chart = percentile_chart(f"{comparison['label']}" + (f": {', '.join(changed)}" if changed else ""), height=300)
    x_max = 10.0
    for side, colour in (("A", A_COLOUR), ("B", B_COLOUR)):
        histogram = curves[side]
        xs, ys = _percentile_points(histogram)
        chart.steps_post(f"{side} ({histogram.get_total_count():,} calls)", xs, ys, colour)
        x_max = max(x_max, xs[-1])
    for row in comparison["rows"]:
        x = 1 / (1 - row["percentile"] / 100)
        for side, colour, shift in (("a", A_COLOUR, 0.94), ("b", B_COLOUR, 1.06)):
            pair = row[f"{side}_ci_ms"]
            if pair:
                chart.line(None, [x * shift] * 2, pair, colour, width=4, dots=0)  # the interval, as a bar
    chart.xlim = (1, x_max * 1.5)
    return chart
