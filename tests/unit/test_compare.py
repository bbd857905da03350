"""``casemesh compare``: the interval maths on synthetic histograms with known differences, and the command on result documents.

The documents are built as ``casemesh run`` builds them (``build_result``
over a filled ``RunStats`` of the shipped url-shortener profile), from
seeded log-normal latencies, so every figure is deterministic.
"""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from casemesh.harness.cli import app
from casemesh.harness.compare.gate import parse_percentile, parse_rule
from casemesh.harness.compare.stats import Distribution, compare_quantile, design_effect, generator, min_calls
from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile
from casemesh.harness.result import _series_points, build_result
from casemesh.harness.slo import evaluate
from casemesh.harness.stats import LatencySeries, RunStats, new_histogram

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"


def latencies_us(seed: int, count: int, factor: float = 1.0) -> list[float]:
    """Log-normal latencies around 2 ms (p99 ≈ 6.4 ms), times ``factor``."""
    rng = random.Random(seed)
    return [2000 * math.exp(rng.gauss(0, 0.5)) * factor for _ in range(count)]


def distribution(values: list[float]) -> Distribution:
    histogram = new_histogram()
    for value in values:
        histogram.record_value(int(value))
    return Distribution.from_histogram(histogram)


# -- the maths --------------------------------------------------------------------------------------


def test_quantiles_are_hdrhistograms_own():
    histogram = new_histogram()
    for value in latencies_us(7, 5000):
        histogram.record_value(int(value))
    found = Distribution.from_histogram(histogram)
    assert found.count == 5000
    for p in (1, 50, 90, 99, 99.9, 99.99):
        assert found.quantile_us(p) == histogram.get_value_at_percentile(p), p


def test_a_20_percent_slowdown_at_p99_is_significant():
    a, b = distribution(latencies_us(1, 20_000)), distribution(latencies_us(2, 20_000, factor=1.2))
    q = compare_quantile(a, b, 99, rng=generator(1))
    assert q.judged and q.diff_interval_us[0] > 0, q
    assert 0.1 < q.ratio < 0.3 and q.ratio_interval[0] > 0.05
    assert q.a_interval_us[0] <= q.a_us <= q.a_interval_us[1]


def test_two_samples_of_one_distribution_are_not_different_at_p99():
    a, b = distribution(latencies_us(1, 20_000)), distribution(latencies_us(2, 20_000))
    q = compare_quantile(a, b, 99, rng=generator(1))
    assert q.judged and q.diff_interval_us[0] < 0 < q.diff_interval_us[1], q


def test_same_distribution_pairs_are_rarely_flagged():
    """Coverage: over 30 seeded pairs from one distribution, the 95 % interval of the p99 difference holds 0 in nearly all."""
    flagged = 0
    for seed in range(30):
        a, b = distribution(latencies_us(100 + seed, 2000)), distribution(latencies_us(200 + seed, 2000))
        low, high = compare_quantile(a, b, 99, resamples=400, rng=generator(seed)).diff_interval_us
        flagged += not low <= 0 <= high
    assert flagged <= 5  # 1.5 expected at 95 %; generous for a small count


def test_too_few_calls_for_a_tail_percentile_is_not_judged():
    assert math.ceil(min_calls(99, 0.95)) == 368 and math.ceil(min_calls(99.9, 0.95)) == 3688
    a, b = distribution(latencies_us(1, 300)), distribution(latencies_us(2, 300, factor=3))
    q = compare_quantile(a, b, 99, rng=generator(1))
    assert not q.judged and q.diff_interval_us is None and "too few calls for p99" in q.why_not
    assert compare_quantile(a, b, 50, rng=generator(1)).judged  # the median of 300 calls is fine


def series_of(seconds: int, rate: int, seed: int, slow_seconds: set[int] = frozenset()) -> tuple[dict, Distribution]:
    """A run's per-second series points and its distribution; seconds in ``slow_seconds`` are 3x slower throughout."""
    rng = random.Random(seed)
    series, histogram = LatencySeries(), new_histogram()
    for second in range(seconds):
        factor = 3 if second in slow_seconds else 1
        for i in range(rate):
            value = 2000 * math.exp(rng.gauss(0, 0.5)) * factor
            series.record("OK", value, second + i / rate)
            histogram.record_value(int(value))
    series.flush()
    return _series_points(series, seconds), Distribution.from_histogram(histogram)


def test_bunched_slow_seconds_raise_the_design_effect_and_widen_the_interval():
    warmup = [False] * 60
    calm_points, calm = series_of(60, 100, seed=1)
    bunched_points, bunched = series_of(60, 100, seed=1, slow_seconds={5, 6, 17, 30, 31, 44, 52})
    calm_effect = design_effect(calm_points, warmup, 90, calm)
    bunched_effect = design_effect(bunched_points, warmup, 90, bunched)
    assert 1 <= calm_effect.value < 2.5, calm_effect
    assert bunched_effect.value > 4, bunched_effect
    other_points, other = series_of(60, 100, seed=2)
    narrow = compare_quantile(other, bunched, 90, rng=generator(1))
    wide = compare_quantile(other, bunched, 90, b_effect=bunched_effect.value, rng=generator(1))
    assert wide.b_n_eff < narrow.b_n_eff
    assert wide.diff_interval_us[1] - wide.diff_interval_us[0] > 1.5 * (narrow.diff_interval_us[1] - narrow.diff_interval_us[0])
    assert design_effect(None, [], 99, calm).note
    short = design_effect(calm_points, [True] * 52, 99, calm)  # 8 measured seconds: too few blocks to tell
    assert short.value == 1.0 and "fewer than 10" in short.note


def test_fail_on_and_percentile_grammar():
    assert parse_percentile("p99", "x") == 99 and parse_percentile("p999", "x") == 99.9 and parse_percentile("99.9", "x") == 99.9
    rule = parse_rule("resolve:p99:+10%")
    assert (rule.name, rule.percentile, rule.threshold, rule.unit) == ("resolve", 99, 0.1, "%")
    rule = parse_rule("UrlShortenerService/Resolve:p50:+2ms")
    assert rule.name == "UrlShortenerService/Resolve" and rule.threshold == 2 and rule.unit == "ms"
    assert rule.matches("rpcs", RESOLVE) and not rule.matches("rpcs", SHORTEN) and not rule.matches("journeys", "resolve")
    assert parse_rule("p99:10%").name is None and parse_rule("Resolve:p99:+1%").matches("rpcs", RESOLVE)
    for bad in ("p99", "p99:+10", "p100:+1%", "resolve:q99:+5%", ":p99:+5%"):
        with pytest.raises(ConfigError) as raised:
            parse_rule(bad)
        assert raised.value.field == "--fail-on", bad


# -- the command ------------------------------------------------------------------------------------


def run_stats(seed: int, factor: float, *, seconds: int = 31, rate: int = 200) -> RunStats:
    """1 s warm-up + 30 s: Resolve (and its journey) at ``rate``/s, log-normal times ``factor``; a few Shortens."""
    rng = random.Random(seed)
    stats = RunStats()
    timeline = stats.timeline
    timeline.begin(1.0, float(seconds), float(seconds))
    for second in range(seconds):
        for i in range(rate):
            at = second + i / rate
            value = 2000 * math.exp(rng.gauss(0, 0.5)) * factor
            stats.series.rpc(RESOLVE).record("OK", value, at)
            stats.series.journey("resolve").record("OK", value + 40, at)
            if second >= 1:
                stats.rpc(RESOLVE).record("OK", value)
                stats.journey("resolve").record("OK", value + 40)
        stats.series.rpc(SHORTEN).record("OK", 3000 + second, second + 0.5)
        if second >= 1:
            stats.rpc(SHORTEN).record("OK", 3000 + second)
        timeline.add_sent(second, rate)
        timeline.intended[second] = rate
        timeline.tick(rate * (second + 1))
    timeline.finish(float(seconds), rate * seconds)
    timeline.drained(rate * seconds)
    for i in range(1, 200):
        stats.send_lag.record_value(100 + i)
    return stats


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """result.json of a baseline, another run of the same build, and one 20 % slower; each in its own run directory."""
    profile = load_profile("url-shortener")
    root = tmp_path_factory.mktemp("runs")
    paths = {}
    for name, seed, factor in (("base", 1, 1.0), ("same", 2, 1.0), ("slow", 3, 1.2)):
        stats = run_stats(seed, factor)
        document = build_result(profile=profile, stats=stats, verdicts=evaluate(profile.slos, stats),
                                target={"mode": "embedded", "services": {"urlshortener": "127.0.0.1:1"}},
                                started_at=datetime(2026, 12, 2, tzinfo=timezone.utc), valid=True, invalid_reasons=[])
        (root / name).mkdir()
        paths[name] = root / name / "result.json"
        paths[name].write_text(json.dumps(document))
    return paths


def compare(*args: str):
    return CliRunner().invoke(app, ["compare", *map(str, args)])


def rows_of(document: dict, name: str) -> dict[str, dict]:
    [found] = [c for c in document["comparisons"] if c["name"] == name]
    return {row["label"]: row for row in found["rows"]}


def test_a_20_percent_slower_run_fails_the_gate(runs, tmp_path):
    done = compare(runs["base"], runs["slow"], "--fail-on", "p99:+10%", "--out", tmp_path / "cmp")
    assert done.exit_code == 1, done.output
    assert "REGRESSION" in done.output and "slower" in done.output
    document = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert document["exit_code"] == 1 and document["gate"]["failed"]
    assert {(r["name"], r["percentile"]) for r in document["gate"]["regressions"]} == {(RESOLVE, 99.0), ("resolve", 99.0)}
    resolve = rows_of(document, RESOLVE)
    for label in ("p50", "p90", "p99"):
        row = resolve[label]
        assert row["significant"] and row["change"] == "slower", row
        assert 0.1 < row["diff_pct"] < 0.3 and row["ci_ms"][0] > 0 and row["ci_pct"][0] > 0
        assert row["a_ms"] < row["b_ms"] and math.isclose(row["diff_ms"], row["b_ms"] - row["a_ms"], abs_tol=1e-9)
    assert resolve["p99"]["a_ms"] == json.loads(runs["base"].read_text())["rpcs"][RESOLVE]["p99_ms"]
    # Shorten: 30 calls, no tail judged
    assert rows_of(document, SHORTEN)["p99"]["change"] == "too few calls"
    page = (tmp_path / "cmp" / "compare.html").read_text()
    assert "<script" not in page.lower() and page.count("<svg") == 3  # self-contained: no script, nothing fetched
    assert not re.search(r"""(?:\bsrc|\bhref)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "<!--" not in page and set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'<>]*", page)) <= {"http://www.w3.org/2000/svg"}
    # one percentile plot per RPC and journey: A and B's curves in the legend, HdrHistogram's axis
    assert re.findall(r"<svg\b[^>]*>.*?<title>([^<]*)</title>", page, re.S)[0].startswith("UrlShortenerService/Resolve")
    assert re.search(r">A \([\d,]+ calls\)<", page) and re.search(r">B \([\d,]+ calls\)<", page) and ">99%<" in page
    assert "UrlShortenerService/Resolve" in page and "REGRESSION" not in page and "FAILED" in page


def test_thresholds_direction_and_no_gate(runs):
    assert compare(runs["base"], runs["slow"], "--fail-on", "p99:+50%").exit_code == 0  # slower, but by less than 50 %
    assert compare(runs["base"], runs["slow"], "--fail-on", "resolve:p50:+0.1ms").exit_code == 1
    assert compare(runs["slow"], runs["base"], "--fail-on", "p99:+10%").exit_code == 0  # B is faster
    assert compare(runs["base"], runs["slow"]).exit_code == 0  # no gate


def test_two_runs_of_the_same_build_are_not_flagged(runs, tmp_path):
    # run directories work as well as files
    done = compare(runs["base"].parent, runs["same"].parent, "--fail-on", "p99:+10%", "--fail-on", "p50:+5%",
                   "--json", tmp_path / "same.json")
    assert done.exit_code == 0, done.output
    document = json.loads((tmp_path / "same.json").read_text())
    for comparison in document["comparisons"]:
        for row in comparison["rows"]:
            assert not row["significant"], (comparison["name"], row)
    assert document["warnings"] == []


def test_slo_changes_and_doubtful_environments_are_reported(runs, tmp_path):
    changed = json.loads(runs["slow"].read_text())
    changed["slos"][0]["passed"] = False
    changed["environment"]["machine"] = {"cpu_model": "Some [bold]Other[/bold] CPU", "cpus": 2}
    changed["environment"]["noisy"] = True
    changed["environment"]["cpu"] = {"warnings": ["the hypervisor stole 9% of the CPU"]}
    changed["throughput"]["offered_rps"] = 400.0
    path = tmp_path / "changed.json"
    path.write_text(json.dumps(changed))
    done = compare(runs["base"], path, "--json", tmp_path / "c.json")
    assert done.exit_code == 0, done.output
    document = json.loads((tmp_path / "c.json").read_text())
    [slo] = [s for s in document["slos"] if s["changed"]]
    assert slo["name"] == changed["slos"][0]["name"] and slo["b"] in ("FAIL", "INCONCLUSIVE")
    warnings = " | ".join(document["warnings"])
    assert "different machines" in warnings and "noisy" in warnings and "different offered rates" in warnings
    assert "Some [bold]Other[/bold] CPU" in done.output  # user text printed as written, not as markup


def test_bad_input_exits_2_naming_the_file(runs, tmp_path):
    not_json = tmp_path / "notes.txt"
    not_json.write_text("hello")
    newer = json.loads(runs["base"].read_text())
    newer["schema_version"] = 2
    (tmp_path / "newer.json").write_text(json.dumps(newer))
    damaged = json.loads(runs["base"].read_text())
    damaged["rpcs"][RESOLVE]["histogram"] = damaged["rpcs"][RESOLVE]["histogram"][:40]
    (tmp_path / "damaged.json").write_text(json.dumps(damaged))
    edited = json.loads(runs["base"].read_text())
    edited["journeys"]["resolve"]["count"] += 1
    (tmp_path / "edited.json").write_text(json.dumps(edited))
    bad_series = json.loads(runs["base"].read_text())
    bad_series["series"]["rpcs"][RESOLVE]["p99_ms"][3] = "slow"
    (tmp_path / "bad-series.json").write_text(json.dumps(bad_series))
    (tmp_path / "empty-run").mkdir()
    cases = {
        not_json: "not JSON",
        tmp_path / "newer.json": "schema_version: 2",
        tmp_path / "damaged.json": f'rpcs["{RESOLVE}"].histogram',
        tmp_path / "edited.json": 'journeys["resolve"].histogram: the histogram holds',
        tmp_path / "bad-series.json": f'series.rpcs["{RESOLVE}"].p99_ms',
        tmp_path / "empty-run": "result.json",
    }
    for path, expected in cases.items():
        done = compare(runs["base"], path)
        assert done.exit_code == 2, (path, done.output)
        assert str(path.name) in done.output and expected in done.output, done.output
    for rule, expected in (("nosuch:p99:+10%", "no RPC or journey named 'nosuch'"), ("p99:+10", "--fail-on")):
        done = compare(runs["base"], runs["same"], "--fail-on", rule)
        assert done.exit_code == 2 and expected in done.output, done.output
