"""Per-second latency series (``RunStats.series``): buckets, percentiles, merge, plain form, the driver's hooks, result.json.

Latencies here are made up or counted, never timed against the wall clock,
so the checks hold on a loaded machine; the driver test only counts calls.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from pathlib import Path

import grpc
import pytest

from casemesh.harness.driver import Driver
from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.result import series_summary
from casemesh.harness.stats import (
    HIGHEST_US,
    SERIES_BUCKETS_PER_OCTAVE,
    SERIES_TOP_BUCKET,
    LatencySeries,
    RunSeries,
    Timeline,
    series_bucket,
    series_bucket_us,
    series_percentiles,
)
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

#: Half a bucket's width: how far a value read back from a bucket may be from the recorded one.
RESOLUTION = 2 ** (0.5 / SERIES_BUCKETS_PER_OCTAVE) - 1


def test_buckets_read_back_within_the_documented_resolution():
    assert RESOLUTION == pytest.approx(0.0109, abs=1e-4)
    rng = random.Random(7)
    for value in [1.0, 1.5, 2, 999, 1000, 1001, 65_536, 3_599_999_999] + [math.exp(rng.uniform(0, 21)) for _ in range(5000)]:
        read = series_bucket_us(series_bucket(value))
        assert abs(read - value) / value <= RESOLUTION + 1e-12, value
    assert series_bucket(0) == series_bucket(0.3) == series_bucket(1) == 0
    assert series_bucket(HIGHEST_US) == series_bucket(10 * HIGHEST_US) == SERIES_TOP_BUCKET
    assert [series_bucket(v) for v in (1000, 1000 * 2 ** (1 / SERIES_BUCKETS_PER_OCTAVE) * 1.0001)] == [318, 319]


def test_percentiles_match_exact_ones_to_the_resolution():
    rng = random.Random(3)
    values = sorted(rng.lognormvariate(7.6, 0.8) for _ in range(2000))
    buckets: dict[int, int] = {}
    for v in values:
        buckets[series_bucket(v)] = buckets.get(series_bucket(v), 0) + 1
    got = series_percentiles(buckets, [0.0, 50.0, 90.0, 99.0, 100.0])
    # Rank as HdrHistogram counts it: round(p / 100 * n), at least 1.
    exact = [values[max(int(p * len(values) / 100 + 0.5), 1) - 1] for p in (0.0, 50.0, 90.0, 99.0, 100.0)]
    for g, e in zip(got, exact):
        assert abs(g - e) / e <= RESOLUTION + 1e-12
    assert series_percentiles({}, [50.0, 99.0]) == [None, None]
    assert series_percentiles({series_bucket(2000): 1}, [50.0, 99.0]) == [series_bucket_us(series_bucket(2000))] * 2


def test_calls_are_counted_in_the_second_they_ended_with_errors_by_code():
    series = LatencySeries()
    series.record("OK", 1000, 0.2)
    series.record("OK", 3000, 0.9)
    series.record("NOT_FOUND", 500, 1.0)
    series.record("OK", 800, 3.5)       # nothing ended in second 2
    series.record("UNAVAILABLE", 5, 3.7)
    series.record("OK", 100, -0.5)       # earlier than the second in progress (3): counted in it
    assert series.seconds == 4
    assert [sum(series.histogram(s).values()) for s in range(5)] == [2, 1, 0, 3, 0]
    assert series.histogram(0) == {series_bucket(1000): 1, series_bucket(3000): 1}
    assert series.errors() == {"NOT_FOUND": [0, 1], "UNAVAILABLE": [0, 0, 0, 1]}
    series.flush()
    series.flush()  # idempotent
    series.record("OK", 800, 3.9)  # the same second again after a flush: added to it
    assert sum(series.histogram(3).values()) == 4
    assert series.histogram(3)[series_bucket(800)] == 2


def _random_series(seed: int, seconds: int = 6) -> tuple[LatencySeries, list[tuple[str, float, float]]]:
    rng = random.Random(seed)
    calls = sorted(((rng.choice(["OK", "OK", "OK", "NOT_FOUND", "DEADLINE_EXCEEDED"]), rng.lognormvariate(7, 1), rng.uniform(0, seconds))
                    for _ in range(500)), key=lambda c: c[2])
    series = LatencySeries()
    for code, latency, at in calls:
        series.record(code, latency, at)
    return series, calls


def test_merge_equals_recording_everything_in_one():
    a, calls_a = _random_series(1)
    b, calls_b = _random_series(2, seconds=9)
    together = LatencySeries()
    for code, latency, at in sorted(calls_a + calls_b, key=lambda c: c[2]):
        together.record(code, latency, at)
    a.merge(b)
    assert a.to_dict() == together.to_dict()
    assert sum(sum(a.histogram(s).values()) for s in range(a.seconds)) == 1000


def test_plain_form_round_trips_through_json_and_merges_run_series():
    run = RunSeries()
    run.rpc("pkg.S/A").record("OK", 1500, 0.5)
    run.rpc("pkg.S/A").record("INTERNAL", 90_000, 2.2)
    run.journey("j").record("OK", 2000, 0.6)
    plain = run.to_dict()
    text = json.dumps(plain)  # plain ints, lists and dicts only
    assert plain["buckets_per_octave"] == SERIES_BUCKETS_PER_OCTAVE
    assert plain["rpcs"]["pkg.S/A"] == {"seconds": [[series_bucket(1500), 1], [], [series_bucket(90_000), 1]],
                                        "errors": {"INTERNAL": [0, 0, 1]}}
    back = RunSeries.from_dict(json.loads(text))
    assert back.to_dict() == plain
    other = RunSeries()
    other.rpc("pkg.S/A").record("OK", 1500, 0.1)
    other.rpc("pkg.S/B").record("OK", 10, 4.0)
    back.merge(other)
    assert back.rpcs["pkg.S/A"].histogram(0) == {series_bucket(1500): 2}
    assert set(back.rpcs) == {"pkg.S/A", "pkg.S/B"} and back.seconds == 5
    back.rpc("pkg.S/A").record("OK", 1, 7.0)  # a series read back keeps recording
    assert back.rpcs["pkg.S/A"].seconds == 8
    with pytest.raises(ValueError, match="buckets per octave"):
        RunSeries.from_dict({**plain, "buckets_per_octave": 16})


def test_series_summary_pads_to_the_run_and_marks_warmup():
    run = RunSeries()
    run.rpc("pkg.S/A").record("OK", 2000, 0.5)
    run.rpc("pkg.S/A").record("NOT_FOUND", 4000, 0.7)
    run.rpc("pkg.S/A").record("OK", 8000, 5.2)  # ended in the drain, after the timeline's 4 s
    timeline = Timeline()
    timeline.begin(1.0, 4.0, 4.0)
    timeline.finish(4.0, 0)
    summary = series_summary(run, timeline)
    assert summary["seconds"] == 6 and summary["interval_s"] == 1
    assert summary["warmup"] == [True, False, False, False, False, False]
    assert summary["resolution"] == {"buckets_per_octave": SERIES_BUCKETS_PER_OCTAVE, "relative_error": 0.0109}
    points = summary["rpcs"]["pkg.S/A"]
    assert points["count"] == [2, 0, 0, 0, 0, 1]
    assert points["p50_ms"][0] == pytest.approx(2.0, rel=RESOLUTION) and points["p99_ms"][0] == pytest.approx(4.0, rel=RESOLUTION)
    assert points["max_ms"][5] == pytest.approx(8.0, rel=RESOLUTION)
    assert points["p50_ms"][1:5] == [None] * 4
    assert points["errors"] == {"NOT_FOUND": [1, 0, 0, 0, 0, 0]}
    assert summary["journeys"] == {}
    json.dumps(summary)


def test_recording_costs_a_dict_update_per_call_and_little_memory():
    # O(1) per call: packing happens once per second, so a second's storage is its occupied buckets.
    series = LatencySeries()
    rng = random.Random(5)
    for second in range(30):
        for i in range(800):
            series.record("OK", rng.lognormvariate(7.6, 0.5), second + i / 800)
    series.flush()
    occupied = [len(series.histogram(s)) for s in range(30)]
    assert max(occupied) < 200  # 800 calls per second fit in well under 200 buckets (16 bytes each)


# --- the driver records every call, warm-up included ----------------------------------------------


class FlakyShortener(pb_grpc.UrlShortenerServiceServicer):
    """Answers Shorten at once; every 4th call fails with INVALID_ARGUMENT."""

    def __init__(self) -> None:
        self.calls = 0

    async def Shorten(self, request, context):
        self.calls += 1
        if self.calls % 4 == 0:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "long_url: every fourth")
        return pb.ShortenResponse(code=f"c{self.calls}")


def _profile(directory: Path) -> Path:
    path = directory / "profile.yaml"
    path.write_text("""apiVersion: casemesh.dev/v1
kind: Profile
metadata: {name: series-test}
workload: url-shortener
services: []
seed: {urls: 1}
arrival: {process: constant, rate_per_s: 40}
warmup_s: 0.5
duration_s: 1.0
request_timeout_ms: 5000
journeys:
  - {name: shorten, weight: 1}
""")
    return path


async def test_driver_records_every_call_in_the_series_warmup_included(tmp_path: Path):
    servicer = FlakyShortener()
    server = grpc.aio.server()
    pb_grpc.add_UrlShortenerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(load_profile(_profile(tmp_path)), {"urlshortener": channel})
        await driver.seed()
        seeded = servicer.calls
        stats = await asyncio.wait_for(driver.run(), 60)
    finally:
        await channel.close()
        await server.stop(0)
    shorten = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
    sent = servicer.calls - seeded  # the seed's calls are not recorded anywhere
    assert sent == sum(stats.timeline.intended) == 60
    rpc, journey = stats.series.rpcs[shorten], stats.series.journeys["shorten"]
    in_series = sum(sum(rpc.histogram(s).values()) for s in range(rpc.seconds))
    assert in_series == sent == sum(sum(journey.histogram(s).values()) for s in range(journey.seconds))
    # The measured histograms skip the warm-up's 20 journeys; the series does not.
    assert stats.rpcs[shorten].count() == stats.journeys["shorten"].count() == sent - 20
    failed = sum(rpc.errors()["INVALID_ARGUMENT"])
    assert failed == sum(journey.errors()["INVALID_ARGUMENT"]) == servicer.calls // 4 - seeded // 4
