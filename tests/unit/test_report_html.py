"""The HTML reports: a run's page from a result document, the capacity page, and ``casemesh report``.

The result is built the way ``casemesh run`` builds it (``build_result`` over
a filled ``RunStats`` of the shipped url-shortener profile, its SLOs
evaluated), so the page is tested on the real document shape without
sending load.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.profile import load_profile
from casemesh.harness.report_html import (_XY, _Chart, _percentile_points, latency_thresholds, render_capacity_report, render_run_report,
                                          thresholds_from_profile)
from casemesh.harness.result import build_result
from casemesh.harness.slo import evaluate
from casemesh.harness.stats import RunStats

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
STREAM = "casemesh.video.v1.PlaybackService/StreamSegments"  # a made-up server stream, for the first-message section
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def filled_stats() -> RunStats:
    """A 1 s warm-up + 4 s run: Resolve slowing down in second 3 (some NOT_FOUND), Shorten steady, a traced journey."""
    stats = RunStats()
    timeline = stats.timeline
    timeline.begin(1.0, 5.0, 5.0)
    for second in range(5):
        slow = second == 3
        for i in range(200):
            at = second + i / 200
            latency_us = 2000 + 30 * i + (40_000 if slow and i % 10 == 0 else 0)
            code = "NOT_FOUND" if i % 50 == 0 else "OK"
            stats.series.rpc(RESOLVE).record(code, latency_us, at)
            stats.series.journey("resolve").record(code, latency_us + 50, at)
            if second >= 1:  # the measured window
                stats.rpc(RESOLVE).record(code, latency_us)
                stats.journey("resolve").record(code, latency_us + 50)
        for i in range(5):
            stats.series.rpc(SHORTEN).record("OK", 3000 + i, second + 0.1 * i)
            if second >= 1:
                stats.rpc(SHORTEN).record("OK", 3000 + i)
                stats.journey("shorten").record("OK", 3100 + i)
        if second >= 1:
            stats.first_message_of(STREAM).record("OK", 15_000 + 100 * second)
            stats.rpc(STREAM).record("OK", 90_000)
        timeline.add_sent(second, 205)
        timeline.intended[second] = 205
        timeline.tick(205 * (second + 1))
    timeline.finish(5.0, 1025)
    timeline.drained(1025)
    for i in range(1, 1000):
        stats.send_lag.record_value(100 + i)
    stats.sampled_trace("resolve", 44_000.0, TRACE_ID, "OK")
    return stats


@pytest.fixture(scope="module")
def profile():
    return load_profile("url-shortener")


@pytest.fixture(scope="module")
def result(profile):
    stats = filled_stats()
    verdicts = evaluate(profile.slos, stats)
    return json.loads(json.dumps(build_result(
        profile=profile, stats=stats, verdicts=verdicts, target={"mode": "embedded", "services": {"urlshortener": "127.0.0.1:1"}},
        started_at=datetime(2026, 11, 22, tzinfo=timezone.utc), valid=True, invalid_reasons=[])))


@pytest.fixture(scope="module")
def page(result, profile):
    return render_run_report(result, slos=profile.slos)


def assert_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script" not in page.lower() and "javascript" not in page.lower()  # pygal's config script and its tooltips' JS: gone
    assert not re.search(r"<link\b", page, re.I) and "<?xml-stylesheet" not in page
    # Nothing fetched: no src/href/url() to another host (SVG xmlns namespaces are names, not fetches).
    assert not re.search(r"""(?:\bsrc|\bhref)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, re.I) and "@import" not in page
    # The only URLs are the SVG namespace's name (pygal's comments with its site's URLs are dropped too).
    assert set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>]*", page)) <= {"http://www.w3.org/2000/svg"}
    assert "<!--" not in page


def section(page: str, heading: str) -> str:
    """The ``<section>`` of the page under ``<h2>heading</h2>``."""
    start = page.index(f"<section><h2>{heading}</h2>")
    return page[start:page.index("</section>", start)]


def titles(html_part: str) -> list[str]:
    """The titles of the plots (the SVGs' <title>) in a piece of the page."""
    return re.findall(r"<svg\b[^>]*>.*?<title>([^<]*)</title>", html_part, re.S)


def test_run_page_is_self_contained_and_holds_every_section(page: str, result: dict):
    assert_self_contained(page)
    for heading in ("SLOs", "Latency over time", "Latency by percentile", "Throughput: intended vs achieved",
                    "Errors by status code", "Server streams: time to first message", "Slowest sampled journeys", "Send lag"):
        assert f">{heading}<" in page, heading
    for slo in result["slos"]:
        assert slo["name"] in page and slo["display_name"] in page
    # One plot per RPC and journey over time; by percentile one for the RPCs, one for the journeys; arrivals and their
    # shortfall; errors over time; time to first message.
    assert titles(section(page, "Latency over time")) == ["UrlShortenerService/Resolve  (1,000 calls, warm-up included)",
                                                           "UrlShortenerService/Shorten  (25 calls, warm-up included)",
                                                           "resolve  (1,000 calls, warm-up included)"]
    assert titles(section(page, "Latency by percentile")) == ["RPCs", "Journeys"]
    assert titles(section(page, "Throughput: intended vs achieved")) == ["arrivals per second", "intended − sent per second"]
    assert titles(section(page, "Errors by status code")) == ["non-OK RPCs per second, by status code (warm-up included)"]
    assert titles(section(page, "Server streams: time to first message")) == ["time to first message"]
    assert page.count("<svg") == 9
    assert TRACE_ID in page
    assert "UrlShortenerService/Resolve" in page and "NOT_FOUND" in page
    # The plots' text is SVG text: legends, warm-up shading and the SLO threshold lines can be found.
    assert ">p99<" in page and ">warm-up<" in page
    assert ">SLO resolve-latency: 99% ≤ 10 ms<" in page and ">SLO shorten-latency: 99% ≤ 25 ms<" in page
    over_time = section(page, "Latency over time")
    assert over_time.count(">SLO resolve-latency: 99% ≤ 10 ms<") == 1  # on the Resolve RPC's plot only
    # Axes: a log ms axis labelled 1-2-5, seconds along the run, HdrHistogram's percentiles.
    assert ">ms<" in over_time and ">seconds from the start of the run<" in over_time and ">10<" in over_time
    assert all(f">{label}<" in section(page, "Latency by percentile") for label in ("0%", "50%", "90%", "99%", "99.9%"))
    assert ">NOT_FOUND<" in section(page, "Errors by status code")  # the legend of errors over time
    # Points of short lines carry their value as a <title>, which browsers show on hover without a script.
    assert re.search(r"<title>p99: [\d,.]+ ms at 3.5 s</title>", over_time)


def test_run_page_breaks_the_tail_down_by_hop(result: dict, profile):
    breakdown = {"resolve": {"sampled": 40, "tail_from_percentile": 99.0, "threshold_ms": 9.1, "note": "",
                              "tail": {"n": 2, "mean_ms": 12.0, "min_ms": 11.0, "parts_ms": {"urlshortener self": 9.0, "send lag": 3.0},
                                       "shares": {"urlshortener self": 0.75, "send lag": 0.25}},
                              "median": {"n": 8, "mean_ms": 2.0, "min_ms": 1.9, "parts_ms": {"urlshortener self": 1.0, "send lag": 1.0},
                                         "shares": {"urlshortener self": 0.5, "send lag": 0.5}}}}
    page = render_run_report({**result, "tail_breakdown": breakdown}, slos=profile.slos)
    assert ">Tail breakdown by hop<" in page
    assert "<td>urlshortener self</td><td class=num>9.00</td><td class=num>75%</td><td class=num>1.00</td><td class=num>50%</td>" in page
    assert "No sampled journey to break down" in render_run_report(result, slos=profile.slos)


def test_run_page_shows_the_verdict_and_slo_numbers(page: str, result: dict):
    resolve_slo = next(s for s in result["slos"] if s["name"] == "resolve-latency")
    assert resolve_slo["passed"] is False  # 10 % of second 3's calls took > 40 ms: 2.5 % of the window
    assert "FAILED: resolve-latency" in page and 'class="badge fail"' in page and 'class="badge pass"' in page
    assert f"{resolve_slo['measured']:.2%}" in page and f"{resolve_slo['budget_burnt']:.0%}" in page
    assert "not evaluated (no Prometheus)" in page  # the twins' note


def test_result_has_the_series_the_page_plots(result: dict):
    series = result["series"]
    assert series["seconds"] == 5 and series["warmup"] == [True, False, False, False, False]
    resolve = series["rpcs"][RESOLVE]
    assert resolve["count"] == [200] * 5 and resolve["errors"] == {"NOT_FOUND": [4] * 5}
    assert resolve["p99_ms"][3] > 40 > resolve["p99_ms"][2]
    assert set(series["journeys"]) == {"resolve"}


def test_thresholds_come_from_the_profile_or_are_reported_missing(result: dict, profile):
    assert {(t.name, t.rpc, t.latency_ms) for t in latency_thresholds(profile.slos)} == {
        ("resolve-latency", RESOLVE, 10.0), ("shorten-latency", SHORTEN, 25.0)}
    assert thresholds_from_profile(result["profile"]["path"])[0] == latency_thresholds(profile.slos)
    found, why = thresholds_from_profile("/nonexistent/profile.yaml")
    assert found == [] and "could not be read" in why
    # A document whose profile is gone: plots without threshold lines, saying why.
    gone = {**result, "profile": {**result["profile"], "path": "/nonexistent/profile.yaml"}}
    page = render_run_report(gone)
    assert_self_contained(page)
    assert "SLO thresholds not drawn: profile /nonexistent/profile.yaml could not be read" in page
    assert "SLO resolve-latency: 99% ≤ 10 ms" not in page
    # An older document, without series or timeline: the rest of the page.
    old = {k: v for k, v in result.items() if k not in ("series", "timeline")}
    page = render_run_report(old, slos=[])
    assert "This result has no per-second series." in page and ">Latency by percentile<" in page


def capacity_document(path: str) -> dict:
    steps = []
    for rate, p99, passed in ((200, 4.0, True), (400, 6.5, True), (800, 31.0, False), (600, 9.1, True)):
        steps.append({
            "rate_per_s": float(rate), "passed": passed, "valid": True,
            "reason": None if passed else "resolve-latency: 97.00% < 99%",
            "slos": [{"name": "resolve-latency", "passed": passed, "measured": 0.999 if passed else 0.97, "target": 0.99}],
            "rpcs": {RESOLVE: {"p50_ms": 1.9, "p99_ms": p99, "count": rate * 10, "errors": {"NOT_FOUND": rate // 100}}},
            "journeys": {"resolve": {"p50_ms": 2.0, "p99_ms": p99 + 0.1, "count": rate * 10, "errors": {}}},
            "send_lag_p99_ms": 1.2, "achieved_rps": rate * 0.99,
        })
    return {"schema_version": 1, "profile": {"name": "url-shortener", "path": path}, "steps": steps,
            "capacity_rate_per_s": 600.0, "stopped_reason": "800/s failed resolve-latency; 600/s passed"}


def test_capacity_page_has_the_knee_and_the_steps(profile):
    document = capacity_document(str(profile.path))
    page = render_capacity_report(document)
    assert_self_contained(page)
    assert "capacity: 600.0 requests/s" in page and "800/s failed resolve-latency; 600/s passed" in page
    # The knee per RPC and journey, then throughput and send lag side by side.
    assert titles(page) == ["UrlShortenerService/Resolve", "journey resolve", "throughput", "driver send lag"]
    assert ">SLO resolve-latency: 99% ≤ 10 ms<" in page and ">capacity 600/s<" in page and ">step failed (its p99)<" in page
    assert ">offered rate (requests/s)<" in page and ">invalid above 10 ms<" in page
    assert "resolve-latency (≥ 99%)" in page and "resolve-latency: 97.00% &lt; 99%" in page
    rows = re.findall(r"<tr><td>(\d)</td><td class=num>([\d,.]+)</td>", page)
    assert rows == [("1", "200.0"), ("2", "400.0"), ("3", "800.0"), ("4", "600.0")]  # in the order they ran
    nothing = render_capacity_report({**document, "capacity_rate_per_s": None, "steps": [], "profile": {"name": "x", "path": None}})
    assert "no capacity found" in nothing and "No step was run." in nothing


def cli(*args: str) -> Any:
    """``casemesh ARGS`` in this process (the command's own code path, without a new interpreter's start-up)."""
    return CliRunner().invoke(app, list(args))


def test_report_command_renders_results_and_capacity_documents(tmp_path: Path, result: dict, profile):
    (tmp_path / "result.json").write_text(json.dumps(result))
    done = cli("report", str(tmp_path / "result.json"))
    assert done.exit_code == 0, done.output
    assert f"report: {tmp_path / 'report.html'}" in done.stdout
    assert "Latency over time" in (tmp_path / "report.html").read_text()
    (tmp_path / "capacity.json").write_text(json.dumps(capacity_document(str(profile.path))))
    done = cli("report", str(tmp_path / "capacity.json"), "--out", str(tmp_path / "knee.html"))
    assert done.exit_code == 0, done.output
    assert "Latency vs offered rate" in (tmp_path / "knee.html").read_text()
    (tmp_path / "other.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text('{"rpcs": ')
    for bad, why in (("other.json", "neither a run's result.json"), ("broken.json", "not JSON"), ("missing.json", "cannot read it")):
        done = cli("report", str(tmp_path / bad))
        assert done.exit_code == 2 and why in done.stderr, done.output


def test_percentile_points_are_hdrh_percentile_iterators(result: dict):
    """The curves' points, computed in one pass over the counts, are those of hdrh's percentile iterator (5 ticks per half distance)."""
    from hdrh.histogram import HdrHistogram

    def iterated(histogram: HdrHistogram) -> tuple[list[float], list[float]]:
        xs, ys = [], []
        for item in histogram.get_percentile_iterator(5):
            if item.percentile_level_iterated_to < 100:
                xs.append(1 / (1 - item.percentile_level_iterated_to / 100))
                ys.append(item.value_iterated_to / 1000)
        xs.append(max(float(histogram.get_total_count()), xs[-1] if xs else 1.0))
        ys.append(histogram.get_max_value() / 1000)
        return xs, ys

    histograms = [HdrHistogram.decode(row["histogram"]) for kind in ("rpcs", "journeys") for row in result[kind].values()]
    for values in ([5000] * 50, [0, 0, 7], [3_000_000_000], [100, 2000, 40_000, 900_000] * 30 + [77]):
        histogram = HdrHistogram(1, 3_600_000_000, 3)
        for value in values:
            histogram.record_value(value)
        histograms += [histogram, HdrHistogram.decode(histogram.encode())]
    for histogram in histograms:
        assert _percentile_points(histogram) == iterated(histogram)


def test_plots_draw_the_same_as_pygal_xy(monkeypatch):
    """_XY only looks attributes up faster than pygal.XY: the same chart draws the same SVG with either."""
    import pygal

    chart = _Chart("a chart")
    chart.band("warm-up", 0, 1, "#999", 0.2)
    chart.line("p50", [0.5, 1.5, 2.5, 3.5], [1.0, None, 3.0, 2.5], "#00f")
    chart.steps("stairs", [0, 1, 2, 3, 4], [1, 2, 0, 5], "#0f0", fill=0.5)
    chart.hline("SLO", 2.0, "#f00")
    drawn = chart.svg()
    monkeypatch.setattr("casemesh.harness.report_html._XY", pygal.XY)
    assert chart.svg() == drawn.replace('class="graph _xy-graph', 'class="graph xy-graph')  # pygal names the class after the chart's
    assert issubclass(_XY, pygal.XY) and "<script" not in drawn and "<title>p50: 3.000 ms at 2.5 s</title>" in drawn


def test_the_pages_do_not_import_matplotlib(tmp_path: Path, result: dict, profile):
    """matplotlib stays a dependency for benchmarks/retry_storm.py's plot only: report, capacity and compare pages never load it."""
    (tmp_path / "result.json").write_text(json.dumps(result))
    (tmp_path / "capacity.json").write_text(json.dumps(capacity_document(str(profile.path))))
    code = ("import sys; from pathlib import Path; import casemesh.harness.cli, casemesh.harness.compare.page; "
            "from casemesh.harness.report_html import render_report_file; "
            f"print([render_report_file(Path({str(tmp_path)!r}) / name)[1] for name in ('result.json', 'capacity.json')], "
            "'matplotlib' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['run', 'capacity'] False"
