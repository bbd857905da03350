"""The harness's /metrics: HDR histograms as Prometheus buckets, the exact family set, arrival counters, serving."""

from __future__ import annotations

import random
import threading
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.openmetrics.exposition import generate_latest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from casemesh.harness.metrics import HarnessCollector, HarnessMetrics, WindowProgress, cumulative_buckets
from casemesh.harness.slo import load_slos
from casemesh.harness.stats import RunStats, Timeline, count_within, new_histogram
from casemesh.services.runtime.metrics import LATENCY_BUCKETS_S

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHIPPED_SLOS = Path(__file__).parents[2] / "harness" / "profiles" / "url-shortener.slo.yaml"
BOUNDS_US = [round(b * 1_000_000) for b in LATENCY_BUCKETS_S]

FAMILIES = {
    "casemesh_harness_rpc_latency_seconds": "histogram",
    "casemesh_harness_journey_latency_seconds": "histogram",
    "casemesh_harness_send_lag_seconds": "histogram",
    "casemesh_harness_arrivals_intended": "counter",
    "casemesh_harness_arrivals_sent": "counter",
    "casemesh_slo_target": "gauge",
    "casemesh_slo_threshold_seconds": "gauge",
}


def scrape(collector_or_metrics) -> dict[str, object]:
    """The OpenMetrics exposition of a collector, parsed: {family name: family}."""
    metrics = collector_or_metrics if isinstance(collector_or_metrics, HarnessMetrics) else None
    registry = metrics.registry if metrics else _registry(collector_or_metrics)
    text = generate_latest(registry).decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def _registry(collector: HarnessCollector):
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry


def samples(family, suffix: str = "", **labels: str) -> list:
    return [s for s in family.samples if s.name == family.name + suffix and all(s.labels.get(k) == v for k, v in labels.items())]


def value(family, suffix: str = "", **labels: str) -> float:
    [sample] = samples(family, suffix, **labels)
    return sample.value


def buckets(family, **labels: str) -> list[tuple[str, float]]:
    return [(s.labels["le"], s.value) for s in samples(family, "_bucket", **labels)]


# -- HDR histogram → cumulative buckets ------------------------------------------------------------


def test_bucket_counts_equal_the_hdr_counts_at_each_bound():
    rng = random.Random(7)
    histogram = new_histogram()
    exact_sum_us = 0
    # Values around every bound (exactly on it, just below and above), and a spread from 1 µs to 30 s.
    values = [b + d for b in BOUNDS_US for d in (-1, 0, 1, b // 500)] + [int(rng.lognormvariate(8, 2.5)) + 1 for _ in range(20_000)]
    for v in values:
        v = min(v, 30_000_000)
        histogram.record_value(v)
        exact_sum_us += v
    counts, sum_s = cumulative_buckets(histogram)
    assert counts[:-1] == [count_within(histogram, b) for b in BOUNDS_US]
    assert counts[-1] == histogram.get_total_count() == len(values)
    assert counts == sorted(counts)
    assert sum_s == pytest.approx(exact_sum_us / 1e6, rel=1e-3)  # HDR bucket midpoints, 3 significant figures


def test_an_observation_on_a_bound_is_in_that_bucket_and_one_above_is_not():
    histogram = new_histogram()
    histogram.record_value(10_000)  # exactly 10 ms
    histogram.record_value(10_020)  # 10.02 ms: another HDR bucket, above le="0.01"
    counts, _ = cumulative_buckets(histogram)
    assert counts[LATENCY_BUCKETS_S.index(0.01)] == 1
    assert counts[LATENCY_BUCKETS_S.index(0.025)] == 2


def test_empty_and_huge_values():
    assert cumulative_buckets(new_histogram()) == ([0] * (len(LATENCY_BUCKETS_S) + 1), 0.0)
    histogram = new_histogram()
    histogram.record_value(3_600_000_000)  # 1 h: beyond the last bound, only in +Inf
    counts, sum_s = cumulative_buckets(histogram)
    assert counts == [0] * len(LATENCY_BUCKETS_S) + [1]
    assert sum_s == pytest.approx(3600, rel=1e-3)


# -- the families ----------------------------------------------------------------------------------


def recorded_stats() -> RunStats:
    stats = RunStats()
    for latency_ms, code in ((1, "OK"), (1, "OK"), (7, "OK"), (30, "OK"), (2, "NOT_FOUND"), (1000, "DEADLINE_EXCEEDED")):
        stats.rpc(RESOLVE).record(code, latency_ms * 1000)
    stats.journey("resolve").record("OK", 1500)
    stats.journey("resolve").record("NOT_FOUND", 2500)
    stats.journey("shorten").record("UNKNOWN", 400)
    for lag_us in (100, 300, 20_000):
        stats.send_lag.record_value(lag_us)
    return stats


def test_exactly_the_documented_families_with_their_labels():
    slos = load_slos(SHIPPED_SLOS)
    collector = HarnessCollector(slos)
    progress = WindowProgress()
    progress.phase = "measuring"
    progress.sent = 3
    stats = recorded_stats()
    collector.attach(stats, progress)
    families = scrape(collector)
    assert {name: f.type for name, f in families.items()} == FAMILIES
    assert families["casemesh_harness_rpc_latency_seconds"].unit == "seconds"

    rpc = families["casemesh_harness_rpc_latency_seconds"]
    service, method = RESOLVE.split("/")
    labels = {"grpc_service": service, "grpc_method": method}
    # grpc_code as go-grpc-prometheus spells it, one series per code.
    assert {s.labels["grpc_code"] for s in samples(rpc, "_count")} == {"OK", "NotFound", "DeadlineExceeded"}
    ok = buckets(rpc, **labels, grpc_code="OK")
    assert [le for le, _ in ok] == [*(f"{b}" if b < 1 else f"{b:.1f}" for b in LATENCY_BUCKETS_S), "+Inf"]
    assert dict(ok)["0.001"] == 2 and dict(ok)["0.01"] == 3 and dict(ok)["0.025"] == 3 and dict(ok)["0.05"] == 4 and dict(ok)["+Inf"] == 4
    assert value(rpc, "_count", **labels, grpc_code="OK") == 4
    assert value(rpc, "_sum", **labels, grpc_code="OK") == pytest.approx(0.039, rel=1e-3)
    assert dict(buckets(rpc, grpc_code="DeadlineExceeded"))["1.0"] == 1

    journey = families["casemesh_harness_journey_latency_seconds"]
    assert {(s.labels["journey"], s.labels["grpc_code"]) for s in samples(journey, "_count")} == {
        ("resolve", "OK"), ("resolve", "NotFound"), ("shorten", "Unknown")}
    lag = families["casemesh_harness_send_lag_seconds"]
    assert value(lag, "_count") == 3 and dict(buckets(lag))["0.0005"] == 2

    assert value(families["casemesh_harness_arrivals_sent"], "_total") == 3  # send lag records: first RPCs sent
    assert value(families["casemesh_harness_arrivals_intended"], "_total") == 3

    target = families["casemesh_slo_target"]
    assert {s.labels["slo"]: s.value for s in target.samples} == {slo.name: slo.target for slo in slos}
    threshold = families["casemesh_slo_threshold_seconds"]
    # Only the SLOs with a latency threshold of their own (casemesh latency_le_ms), in seconds.
    assert {s.labels["slo"]: s.value for s in threshold.samples} == {"resolve-latency": 0.01, "shorten-latency": 0.025}


def test_before_the_run_only_slo_gauges_have_samples():
    families = scrape(HarnessCollector(load_slos(SHIPPED_SLOS)))
    assert set(families) == set(FAMILIES)
    for name in ("casemesh_harness_rpc_latency_seconds", "casemesh_harness_journey_latency_seconds", "casemesh_harness_send_lag_seconds"):
        assert families[name].samples == []
    assert value(families["casemesh_harness_arrivals_intended"], "_total") == 0
    assert value(families["casemesh_harness_arrivals_sent"], "_total") == 0
    assert len(families["casemesh_slo_target"].samples) == 6


def test_counts_only_grow_while_another_thread_records():
    stats = RunStats()
    collector = HarnessCollector()
    collector.attach(stats)
    calls = stats.rpc(RESOLVE)
    done = threading.Event()

    def record() -> None:
        rng = random.Random(3)
        for i in range(60_000):
            calls.record("OK" if i % 10 else "UNAVAILABLE", rng.expovariate(1 / 4000))
        done.set()

    thread = threading.Thread(target=record)
    thread.start()
    previous: dict[tuple, float] = {}
    scrapes = 0
    while not done.is_set() or scrapes < 2:
        rpc = scrape(collector)["casemesh_harness_rpc_latency_seconds"]
        for code in {s.labels["grpc_code"] for s in rpc.samples}:
            series = [v for _, v in buckets(rpc, grpc_code=code)]
            assert series == sorted(series), "cumulative buckets must not decrease with le"
            assert value(rpc, "_count", grpc_code=code) == series[-1]
            for le, v in buckets(rpc, grpc_code=code):
                assert v >= previous.get((code, le), 0), "a bucket count went down between scrapes"
                previous[(code, le)] = v
        scrapes += 1
    thread.join()
    final = scrape(collector)["casemesh_harness_rpc_latency_seconds"]
    assert value(final, "_count", grpc_code="OK") + value(final, "_count", grpc_code="Unavailable") == 60_000


# -- arrival counters ------------------------------------------------------------------------------


def test_arrivals_count_the_measured_window_only_even_when_a_batch_spans_the_warmup_boundary():
    timeline = Timeline()
    timeline.begin(1.0, 3.0, 3.0)
    progress = WindowProgress()
    progress.timeline = timeline
    progress.phase = "warm-up"
    progress.sent = 5  # five warm-up batches dispatched
    timeline.intended[0] += 5
    # One batch: two more warm-up arrivals, then the first measured one. The driver adds a batch to
    # `sent` after the batch, but counts each arrival in the timeline as it dispatches it.
    timeline.intended[0] += 2
    progress.phase = "measuring"
    timeline.intended[1] += 1
    progress.sent += 3
    assert (progress.warmup_sent, progress.measured_sent) == (7, 1)
    timeline.intended[1] += 4
    progress.sent += 4
    assert progress.measured_sent == 5

    stats = RunStats()
    for _ in range(4):  # four of the five have sent their first RPC
        stats.send_lag.record_value(50)
    collector = HarnessCollector()
    collector.attach(stats, progress)
    families = scrape(collector)
    assert value(families["casemesh_harness_arrivals_intended"], "_total") == 5
    assert value(families["casemesh_harness_arrivals_sent"], "_total") == 4


def test_without_warmup_every_arrival_is_measured():
    progress = WindowProgress()
    progress.phase = "measuring"
    progress.sent = 9
    assert progress.measured_sent == 9


# -- serving ---------------------------------------------------------------------------------------


def test_serves_openmetrics_on_loopback_and_stops():
    metrics = HarnessMetrics(load_slos(SHIPPED_SLOS))
    metrics.collector.attach(recorded_stats())
    address = metrics.start()
    try:
        assert address.startswith("127.0.0.1:") and metrics.url == f"http://{address}/metrics"
        request = urllib.request.Request(metrics.url, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
        with urllib.request.urlopen(request, timeout=5) as reply:
            assert reply.headers["Content-Type"].startswith("application/openmetrics-text")
            text = reply.read().decode()
        # The collector's families, and the harness process's event-loop lag and GC pauses (services/runtime/loop_probe.py).
        assert {f.name for f in text_string_to_metric_families(text)} == {*FAMILIES, "casemesh_event_loop_lag_seconds",
                                                                          "casemesh_gc_pause_seconds"}
    finally:
        metrics.stop()
    with pytest.raises(OSError):
        urllib.request.urlopen(metrics.url, timeout=2)
