"""The event-loop lag and GC pause probe (services/runtime/loop_probe.py) and its per-second series in result.json (harness/loop_series.py).

What a user relies on: a loop blocked for 50 ms shows as a lag of about 50 ms,
a full collection as a generation-2 pause, both on the Prometheus families and
in the per-second series; the series land on the run's time axis, and the
report draws them. Bounds are generous (a loaded 2-core machine only makes
lags larger, never smaller).
"""

from __future__ import annotations

import asyncio
import gc
import json
import time

import pytest
import uvloop
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from casemesh.harness.loop_series import event_loop_summary, process_summary
from casemesh.harness.report_html import render_run_report
from casemesh.services.runtime import loop_probe
from casemesh.services.runtime.loop_probe import (
    GC_FAMILY, INTERVAL_ENV, LAG_FAMILY, SERIES_FIELDS, LoopProbe, lag_bucket, lag_percentiles, loop_metrics, read_series,
    shared_probe,
)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} of a registry's exposition."""
    found = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def run_probed(body, *, series=None) -> tuple[LoopProbe, CollectorRegistry]:
    """Run coroutine function ``body`` on uvloop (as every casemesh process does) with a probe ticking around it."""
    registry = CollectorRegistry()
    probe = LoopProbe(metrics=loop_metrics(registry), series=series, process="test")

    async def main() -> None:
        probe.start()
        try:
            await asyncio.sleep(0.05)
            await body()
            await asyncio.sleep(0.05)
        finally:
            probe.stop()

    uvloop.run(main())
    return probe, registry


def test_a_blocked_loop_shows_as_lag_of_at_least_the_block():
    async def blocked() -> None:
        time.sleep(0.05)  # a synchronous call inside a coroutine: the whole loop stops

    probe, registry = run_probed(blocked)
    assert probe.max_lag_s >= 0.04
    values = samples(registry)
    ticks = values[(f"{LAG_FAMILY}_count", ())]
    assert ticks == probe.ticks >= 5
    # The late tick is in the buckets above 25 ms; the others are not all there.
    assert values[(f"{LAG_FAMILY}_bucket", (("le", "0.025"),))] < ticks
    assert values[(f"{LAG_FAMILY}_sum", ())] >= 0.04


def test_a_full_collection_shows_as_a_generation_2_pause():
    garbage = []

    async def collect() -> None:
        for _ in range(20_000):  # something for the collector to walk
            cycle: list = []
            cycle.append(cycle)
            garbage.append(cycle)
        garbage.clear()
        gc.collect()
        await asyncio.sleep(0.02)  # a tick moves the pause into the histogram

    probe, registry = run_probed(collect)
    assert any(generation == 2 and pause > 0 for generation, pause in probe.gc_pauses)
    values = samples(registry)
    assert values[(f"{GC_FAMILY}_count", (("generation", "2"),))] >= 1
    assert values[(f"{GC_FAMILY}_sum", (("generation", "2"),))] > 0
    # Every generation's series exists from the start, so dashboards have a series to show.
    assert {labels for (name, labels) in values if name == f"{GC_FAMILY}_count"} == {
        (("generation", "0"),), (("generation", "1"),), (("generation", "2"),)}


def test_the_probe_stops_cleanly_and_unhooks_the_collector():
    probe, _ = run_probed(lambda: asyncio.sleep(0.01))
    assert probe._on_gc not in gc.callbacks
    ticks = probe.ticks
    gc.collect()
    assert probe.ticks == ticks


def test_per_second_series_lines_hold_lag_and_gc(tmp_path):
    path = tmp_path / "logs" / "test.loop.jsonl"

    async def body() -> None:
        await asyncio.sleep(1.1)  # one full second: one line, then a partial one at stop
        time.sleep(0.05)
        gc.collect()
        await asyncio.sleep(0.02)

    run_probed(body, series=path)
    lines = read_series(path)
    assert len(lines) >= 2
    for line in lines:
        assert tuple(line) == SERIES_FIELDS and line["process"] == "test"
        assert line["ticks"] == sum(line["lag_hist"].values())
        assert len(line["gc_count"]) == len(line["gc_ms"]) == 3
        assert 10 * 2**20 < line["rss_bytes"] < 8 * 2**30  # this process's resident memory, in bytes
    assert lines[0]["window_s"] >= 1.0 and lines[0]["ticks"] >= 20
    assert all(b["t"] > a["t"] for a, b in zip(lines, lines[1:]))
    last = lines[-1]
    assert last["lag_max_ms"] >= 40 and last["gc_count"][2] >= 1 and last["gc_ms"][2] > 0
    assert max(line["lag_p99_ms"] for line in lines) <= max(line["lag_max_ms"] for line in lines)
    # A torn last line (a killed process) is skipped.
    with path.open("a") as file:
        file.write('{"process": "te')
    assert len(read_series(path)) == len(lines)


def test_lag_histogram_percentiles_are_within_their_bucket():
    lags_s = [0.0002] * 98 + [0.010, 0.050]
    hist: dict[int, int] = {}
    for lag in lags_s:
        hist[lag_bucket(lag)] = hist.get(lag_bucket(lag), 0) + 1
    p50, p99, p100 = lag_percentiles(hist, (50.0, 99.0, 100.0))
    assert p50 == pytest.approx(0.2, rel=0.03) and p99 == pytest.approx(10, rel=0.03) and p100 == pytest.approx(50, rel=0.03)
    assert lag_percentiles({}, (99.0,)) == [None]


def test_one_shared_probe_per_loop_and_the_environment_turns_it_off(monkeypatch):
    async def main() -> None:
        first, second = shared_probe("a"), shared_probe("b")
        assert first is second and first.process == "a"
        first.release()
        assert first._loop is not None  # still used by the second server
        second.release()
        assert first._loop is None and first._on_gc not in gc.callbacks
        monkeypatch.setenv(INTERVAL_ENV, "0")
        assert shared_probe("off") is None
        monkeypatch.setenv(INTERVAL_ENV, "fast")
        with pytest.raises(ValueError, match=INTERVAL_ENV):
            shared_probe("bad")

    monkeypatch.delenv(INTERVAL_ENV, raising=False)
    uvloop.run(main())
    assert not loop_probe._shared


def test_a_probe_needs_a_positive_interval():
    with pytest.raises(ValueError, match="interval_s"):
        LoopProbe(interval_s=0, metrics=loop_metrics(CollectorRegistry()))


# -- onto the run's time axis (harness/loop_series.py) --------------------------------------------


def line(t: float, *, lag_ms: float = 0.3, gc_ms: float = 0.0, gen: int = 0, window_s: float = 1.0,
         rss_mib: float | None = 80.0) -> dict:
    bucket = lag_bucket(lag_ms / 1000)
    gc_count = [0, 0, 0]
    gc_split = [0.0, 0.0, 0.0]
    if gc_ms:
        gc_count[gen], gc_split[gen] = 1, gc_ms
    return {"process": "svc", "pid": 7, "t": t, "unix": 1e9 + t, "window_s": window_s, "ticks": 200, "lag_max_ms": lag_ms,
            "lag_p99_ms": lag_ms, "lag_hist": {bucket: 200}, "gc_count": gc_count, "gc_ms": gc_split, "gc_max_ms": gc_ms,
            "rss_bytes": None if rss_mib is None else int(rss_mib * 2**20)}


def test_lines_land_on_the_seconds_of_the_run_and_the_measured_window_is_summarised():
    start = 1000.0
    lines = [line(start - 0.2, lag_ms=99),                       # start-up: before the driver started
             line(start + 1.6, rss_mib=81), line(start + 2.7, lag_ms=5, gc_ms=2, gen=2, rss_mib=None),  # [0.6, 1.6]: second 1
             line(start + 3.6, lag_ms=0.5, gc_ms=1, rss_mib=96), line(start + 4.4, lag_ms=7, rss_mib=90),  # both in second 3
             line(start + 9.0, lag_ms=500)]                       # after the series' last second
    summary = process_summary(lines, started_at=start, seconds=5, warmup_s=1, measured_end_s=5)
    assert summary["pids"] == [7]
    assert summary["lag_max_ms"] == [None, 0.3, 5, 7, None]
    assert summary["gc_ms"] == [None, 0.0, 2.0, 1.0, None] and summary["gc_count"] == [None, 0, 1, 1, None]
    assert summary["rss_mb"] == [None, 81.0, None, 96.0, None]  # the higher of a merged second; none where not told
    measured = summary["measured"]
    assert measured["rss_start_mb"] == 81.0 and measured["rss_max_mb"] == 96.0
    assert measured["lag_max_ms"] == 7 and measured["ticks"] == 800
    assert measured["lag_p50_ms"] == pytest.approx(0.5, rel=0.03) and measured["lag_p99_ms"] == pytest.approx(7, rel=0.03)
    assert measured["gc_count"] == 2 and measured["gc_ms"] == 3.0 and measured["gc_max_ms"] == 2.0
    assert measured["gc_by_generation"] == {"0": {"count": 1, "ms": 1.0}, "1": {"count": 0, "ms": 0.0}, "2": {"count": 1, "ms": 2.0}}
    assert measured["gc_per_s"] == 0.5 and measured["gc_ms_per_s"] == 0.75
    assert process_summary([line(start - 5)], started_at=start, seconds=5, warmup_s=1, measured_end_s=5) is None


def test_event_loop_summary_reads_every_process_file_harness_first(tmp_path):
    start = 1000.0
    for name in ("urlshortener", "harness", "stale"):
        lines = [line(start + 1.5)] if name != "stale" else [line(start - 100)]
        (tmp_path / f"{name}.loop.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    summary = event_loop_summary(tmp_path, started_at=start, seconds=3, warmup_s=0, measured_end_s=3)
    assert list(summary["processes"]) == ["harness", "urlshortener"]
    assert summary["seconds"] == 3 and summary["interval_s"] == 1
    assert event_loop_summary(tmp_path / "none", started_at=start, seconds=3, warmup_s=0, measured_end_s=3) is None
    old = event_loop_summary(tmp_path, started_at=start, seconds=3, warmup_s=0, measured_end_s=3, not_before_unix=2e9)
    assert old is None


def test_the_report_plots_the_series_and_says_when_there_are_none(tmp_path):
    start = 1000.0
    (tmp_path / "svc.loop.jsonl").write_text("".join(json.dumps(line(start + s + 0.9, lag_ms=1 + s)) + "\n" for s in range(4)))
    event_loop = event_loop_summary(tmp_path, started_at=start, seconds=4, warmup_s=1, measured_end_s=4)
    result = {"profile": {"name": "p"}, "slos": [], "rpcs": {}, "journeys": {}, "event_loop": event_loop}
    page = render_run_report(result, slos=[])
    assert "Event-loop lag and GC pauses" in page and "event-loop lag p99 per second" in page and "<td>svc</td>" in page
    empty = render_run_report({**result, "event_loop": None}, slos=[])
    assert "This result has no event-loop series" in empty


def test_the_harness_probe_names_a_bad_setting_as_a_config_error(monkeypatch, tmp_path):
    from casemesh.harness.errors import ConfigError
    from casemesh.harness.loop_series import start_harness_probe

    monkeypatch.setenv(INTERVAL_ENV, "-3")
    with pytest.raises(ConfigError) as raised:
        start_harness_probe(loop_metrics(CollectorRegistry()), tmp_path)
    assert raised.value.field == INTERVAL_ENV and "-3" in str(raised.value)
    monkeypatch.setenv(INTERVAL_ENV, "0")
    assert start_harness_probe(loop_metrics(CollectorRegistry()), tmp_path) is None
