"""RunStats' wire format and merge: what worker processes ship to the coordinator (harness/workers.py).

The property that matters: stats recorded by several recorders, each shipped
through the wire format (as JSON text, to prove it is plain data) and merged,
are exactly the stats of one recorder that saw every call: the same counts in
every histogram bucket, hence the same value at every percentile, the same
timeline and per-second series, the same slowest traces.
"""

from __future__ import annotations

import json
import random

import pytest

from casemesh.harness.result import series_summary, timeline_summary
from casemesh.harness.stats import WIRE_VERSION, CallStats, RunStats, decode, encode, new_histogram

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
WATCH = "casemesh.video.v1.PlaybackService/Watch"
#: Every percentile in 0.1 steps, and the far tail.
PERCENTILES = [i / 10 for i in range(1001)] + [99.95, 99.99, 99.999]


def shipped(stats: RunStats, *, series: bool = True) -> RunStats:
    """``stats`` after a trip through the wire format as JSON text."""
    return RunStats.from_wire(json.loads(json.dumps(stats.to_wire(series=series))))


def record_run(recorders: list[RunStats], seed: int = 7, calls: int = 30_000) -> None:
    """Record one run's calls, dealing each to one of ``recorders`` at random (the union sees them all)."""
    rng = random.Random(seed)
    for recorder in recorders:
        timeline = recorder.timeline
        timeline.begin(1.0, 6.0, 6.0)
    for i in range(calls):
        target = [recorders[0], rng.choice(recorders[1:])]
        latency_us = rng.lognormvariate(7.5, 1.4)  # ≈ 1.8 ms median, a tail into seconds
        code = "OK" if rng.random() < 0.97 else rng.choice(["NOT_FOUND", "DEADLINE_EXCEEDED"])
        method = RESOLVE if rng.random() < 0.9 else SHORTEN
        second = 6.0 * i / calls  # calls end in time order, as a recorder sees them
        for stats in target:
            stats.rpc(method).record(code, latency_us)
            stats.journey("resolve" if method == RESOLVE else "shorten").record(code, latency_us * 1.01)
            stats.send_lag.record_value(max(int(latency_us / 100), 1))
            stats.timeline.intended[int(second)] += 1
            stats.timeline.add_sent(int(second), 1)
            stats.series.rpc(method).record(code, latency_us, second)
            stats.series.journey("resolve").record(code, latency_us, second)
            if i % 50 == 0:
                stats.first_message_of(WATCH).record("OK", latency_us / 3)
            if i % 97 == 0:
                stats.sampled_trace("resolve", latency_us, f"{i:032x}", code)
    for recorder in recorders:
        for _ in range(6):
            recorder.timeline.tick(sum(recorder.timeline.sent))
        recorder.timeline.finish(6.0, sum(recorder.timeline.sent))
        recorder.timeline.drained(sum(recorder.timeline.sent))


def assert_same_histogram(a, b) -> None:
    assert a.get_total_count() == b.get_total_count()
    assert list(a.counts) == list(b.counts)  # bucket by bucket
    assert a.get_percentile_to_value_dict(PERCENTILES) == b.get_percentile_to_value_dict(PERCENTILES)
    for p in (50, 90, 99, 99.9, 100):
        assert a.get_value_at_percentile(p) == b.get_value_at_percentile(p)
    # (the mean is computed from the counts compared above)
    assert (a.get_min_value(), a.get_max_value()) == (b.get_min_value(), b.get_max_value())


def assert_same_calls(a: dict[str, CallStats], b: dict[str, CallStats]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].by_code.keys() == b[name].by_code.keys()
        for code in a[name].by_code:
            assert_same_histogram(a[name].by_code[code], b[name].by_code[code])
        assert_same_histogram(a[name].merged(), b[name].merged())
        assert a[name].errors() == b[name].errors()
        for threshold_us in (500, 2_000, 10_000, 1_000_000):
            assert a[name].count_within(threshold_us) == b[name].count_within(threshold_us)


@pytest.mark.parametrize("parts", [2, 3])
def test_merged_workers_are_exactly_the_union(parts: int):
    union, *workers = [RunStats() for _ in range(parts + 1)]
    record_run([union, *workers])
    assert all(w.send_lag.get_total_count() for w in workers)  # every part recorded something

    merged = RunStats()
    for worker in workers:
        merged.merge(shipped(worker))

    assert_same_calls(merged.rpcs, union.rpcs)
    assert_same_calls(merged.journeys, union.journeys)
    assert_same_calls(merged.first_message, union.first_message)
    assert_same_histogram(merged.send_lag, union.send_lag)
    assert merged.slowest_traces == union.slowest_traces
    assert timeline_summary(merged.timeline) == timeline_summary(union.timeline)
    assert series_summary(merged.series, merged.timeline) == series_summary(union.series, union.timeline)


def test_the_round_trip_keeps_everything():
    stats = RunStats()
    record_run([stats, RunStats()], calls=3_000)
    back = shipped(stats)
    assert back.to_wire() == stats.to_wire()
    assert_same_calls(back.rpcs, stats.rpcs)
    assert back.timeline.to_wire() == stats.timeline.to_wire()
    assert back.series.to_dict() == stats.series.to_dict()


def test_the_wire_format_covers_every_field_of_runstats():
    # A field added to RunStats without a place in the wire format would be lost by --workers N: fail here first.
    wire_keys = {"rpcs": "rpcs", "journeys": "journeys", "first_message": "first_message", "send_lag": "send_lag",
                 "_slowest": "slowest_traces", "timeline": "timeline", "series": "series"}
    assert set(vars(RunStats())) == set(wire_keys), "RunStats has a field the wire format does not carry (harness/stats.py to_wire)"
    # CallStats.harness_side travels beside the histograms, under "harness_side".
    assert set(RunStats().to_wire()) == {"wire_version", "harness_side", *wire_keys.values()}
    timeline_fields = {"intended", "sent", "completed", "warmup_s", "planned_end_s", "end_s", "completed_after_end",
                       "abandoned_at_s", "abandoned_behind_s", "_completed_seen"}
    assert set(RunStats().timeline.__slots__) == timeline_fields
    assert set(RunStats().timeline.to_wire()) == {f.lstrip("_") for f in timeline_fields}


def test_snapshots_leave_the_series_out_and_empty_stats_travel():
    stats = RunStats()
    record_run([stats, RunStats()], calls=500)
    snapshot = stats.to_wire(series=False)
    assert snapshot["series"] is None
    assert shipped(stats, series=False).series.to_dict() == RunStats().series.to_dict()
    empty = shipped(RunStats())
    assert empty.send_lag.get_total_count() == 0 and not empty.rpcs and empty.timeline.intended == []


def test_timelines_of_different_lengths_merge_second_by_second():
    a, b = RunStats(), RunStats()
    a.timeline.begin(1.0, 3.0, 3.0)
    b.timeline.begin(1.0, 3.0, 3.0)
    a.timeline.intended[:] = [5, 5, 5, 0]
    a.timeline.add_sent(0, 5), a.timeline.add_sent(1, 5), a.timeline.add_sent(2, 5)
    b.timeline.intended[:] = [4, 4, 4, 0]
    b.timeline.add_sent(0, 4), b.timeline.add_sent(1, 4), b.timeline.add_sent(2, 3), b.timeline.add_sent(4, 1)  # one sent late
    a.timeline.finish(3.0, 15), b.timeline.finish(4.2, 12)
    a.timeline.drained(15), b.timeline.drained(12)
    merged = RunStats()
    merged.merge(shipped(a))
    merged.merge(shipped(b))
    assert merged.timeline.intended == [9, 9, 9, 0, 0]
    assert merged.timeline.sent == [9, 9, 8, 0, 1]
    assert (merged.timeline.warmup_s, merged.timeline.planned_end_s, merged.timeline.end_s) == (1.0, 3.0, 3.0)
    assert timeline_summary(merged.timeline)["sent_total"] == 27


def test_a_foreign_wire_version_or_damaged_histogram_is_refused():
    wire = RunStats().to_wire()
    with pytest.raises(ValueError, match="wire format"):
        RunStats.from_wire({**wire, "wire_version": WIRE_VERSION + 1})
    histogram = new_histogram()
    histogram.record_value(1234)
    assert decode(encode(histogram)).get_total_count() == 1
    with pytest.raises(Exception):  # noqa: B017 - hdrh raises several types for a damaged blob
        decode("HISTFAAAAnotahistogram")
