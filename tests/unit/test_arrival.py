"""Arrival processes: counts and spacing of the intended send times, trace replay, sizes, and the driver's timeline.

Statistical checks use fixed seeds and tolerances of 5 standard errors, so a
correct generator fails them with probability < 1e-6 for any seed, while a
wrong rate, a wrong shape or a wrong spacing (bursty or too regular) fails by
far more than that:

- Poisson counts in a window have variance equal to their mean m: ±5·√m.
- Exp(1) gaps (what a Poisson process's gaps become after time rescaling,
  Brown et al. 2002, "The time-rescaling theorem and its application to
  neural spike train data analysis", Neural Computation 14(2)): the sample
  mean of n has standard error 1/√n; the sample variance √(8/n) (the fourth
  central moment of Exp(1) is 9, so Var(S²) ≈ (9 − 1)/n).

Nothing here asserts wall-clock timing: the driver test checks counts, which
do not depend on how loaded the machine is.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import statistics
from pathlib import Path

import grpc
import pytest

from casemesh.harness.arrivals import arrival_size, set_arrival_size, shaped
from casemesh.harness.arrivals.steady import constant, poisson
from casemesh.harness.driver import Driver
from casemesh.harness.errors import ConfigError
from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.report import schedule_line
from casemesh.harness.result import timeline_summary
from casemesh.harness.stats import Timeline
from casemesh.harness.workloads.url_shortener import MIN_URL_BYTES, ShortenParams
from casemesh.urlshortener.v1 import urlshortener_pb2 as pb
from casemesh.urlshortener.v1 import urlshortener_pb2_grpc as pb_grpc

TOLERANCE_SE = 5


def until(offsets, end_s: float) -> list[float]:
    """The offsets before ``end_s``."""
    return list(itertools.takewhile(lambda t: t < end_s, offsets))


def count(times: list[float], start_s: float, end_s: float) -> int:
    return sum(start_s <= t < end_s for t in times)


def assert_uniform_counts(observed: list[int], expected: list[float]) -> None:
    """Deterministic spacing: each window holds Λ(b) − Λ(a) arrivals, rounded up or down."""
    assert all(abs(o - e) <= 1 for o, e in zip(observed, expected, strict=True)), (observed, expected)


def assert_poisson_count(observed: int, expected: float) -> None:
    assert abs(observed - expected) <= TOLERANCE_SE * math.sqrt(expected), (observed, expected)


def assert_exp1_gaps(gaps: list[float]) -> None:
    """``gaps`` look like independent Exp(1) draws: mean 1 and variance 1 within 5 standard errors."""
    n = len(gaps)
    assert abs(statistics.fmean(gaps) - 1) <= TOLERANCE_SE / math.sqrt(n), statistics.fmean(gaps)
    assert abs(statistics.variance(gaps) - 1) <= TOLERANCE_SE * math.sqrt(8 / n), statistics.variance(gaps)


def rescaled_gaps(shape, times: list[float]) -> list[float]:
    """Λ(t_k) − Λ(t_{k−1}): Exp(1) for a Poisson process of rate λ (time-rescaling theorem)."""
    masses = [0.0, *(shape.cumulative(t) for t in times)]
    return [b - a for a, b in itertools.pairwise(masses)]


# --- steady processes ----------------------------------------------------------------------------


def test_constant_is_evenly_spaced_from_zero():
    offsets = until(constant(250), 2.0)
    assert len(offsets) == 500
    assert offsets[0] == 0 and all(abs((b - a) - 0.004) < 1e-12 for a, b in itertools.pairwise(offsets))


def test_poisson_gaps_have_the_exponential_mean_and_variance():
    rate, n = 200.0, 20_000
    offsets = list(itertools.islice(poisson(rate, random.Random(7)), n + 1))
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert_exp1_gaps([g * rate for g in gaps])  # gaps × rate are Exp(1): mean 1/rate s, variance 1/rate² s²
    assert all(g > 0 for g in gaps)


# --- rate-shaped processes -----------------------------------------------------------------------


def test_ramp_rate_in_the_first_and_last_second():
    run_s = 60.0
    shape = shaped.ramp(100, 1000, run_s)  # Λ(1) = 107.5, Λ(60) − Λ(59) = 992.5
    uniform = until(shaped.rate_shaped(shape, "uniform", random.Random(1)), run_s)
    assert abs(count(uniform, 0, 1) - 107.5) <= 1 and abs(count(uniform, 59, 60) - 992.5) <= 1
    assert abs(len(uniform) - 33_000) <= 1  # (100 + 1000) / 2 × 60
    # Deterministic spacing: gaps are 1/rate where the rate is (nearly) steady.
    assert uniform[1] - uniform[0] == pytest.approx(1 / 100, rel=0.01)
    assert uniform[-1] - uniform[-2] == pytest.approx(1 / 1000, rel=0.01)
    random_ = until(shaped.rate_shaped(shape, "poisson", random.Random(2)), run_s)
    assert_poisson_count(count(random_, 0, 1), 107.5)
    assert_poisson_count(count(random_, 59, 60), 992.5)
    assert_poisson_count(len(random_), 33_000)
    assert_exp1_gaps(rescaled_gaps(shape, random_))


def test_falling_ramp_to_zero_stops():
    shape = shaped.ramp(1000, 0, 10)
    offsets = list(shaped.rate_shaped(shape, "uniform", random.Random(1)))  # ends by itself: the rate stays 0
    assert len(offsets) == 5000 and offsets[-1] <= 10
    assert abs(count(offsets, 0, 1) - 950) <= 1 and abs(count(offsets, 9, 10) - 50) <= 1  # Λ(1) = 950, Λ(10) − Λ(9) = 50


def test_steps_totals_and_pause():
    shape = shaped.steps([(200, 2), (0, 1), (500, 2)])  # then 500/s held
    uniform = until(shaped.rate_shaped(shape, "uniform", random.Random(1)), 8)
    assert_uniform_counts([count(uniform, a, b) for a, b in ((0, 2), (2, 3), (3, 5), (5, 8))], [400, 0, 1000, 1500])
    random_ = until(shaped.rate_shaped(shape, "poisson", random.Random(3)), 8)
    assert count(random_, 2, 3) == 0
    for (a, b), expected in zip(((0, 2), (3, 5), (5, 8)), (400, 1000, 1500)):
        assert_poisson_count(count(random_, a, b), expected)
    assert_exp1_gaps(rescaled_gaps(shape, random_))


def test_spike_counts():
    shape = shaped.spike(100, at_s=3, duration_s=1, rate_per_s=2000)
    uniform = until(shaped.rate_shaped(shape, "uniform", random.Random(1)), 6)
    assert_uniform_counts([count(uniform, 0, 3), count(uniform, 3, 4), count(uniform, 4, 6)], [300, 2000, 200])
    random_ = until(shaped.rate_shaped(shape, "poisson", random.Random(4)), 6)
    for (a, b), expected in zip(((0, 3), (3, 4), (4, 6)), (300, 2000, 200)):
        assert_poisson_count(count(random_, a, b), expected)
    at_start = until(shaped.rate_shaped(shaped.spike(100, 0, 1, 1000), "uniform", random.Random(1)), 2)
    assert_uniform_counts([count(at_start, 0, 1), count(at_start, 1, 2)], [1000, 100])


def test_diurnal_mean_and_cycle():
    shape = shaped.SinusoidRate(300, 200, period_s=10, phase=0.75)  # starts at the trough (100/s), peaks at 5 s (500/s)
    uniform = until(shaped.rate_shaped(shape, "uniform", random.Random(1)), 30)
    assert abs(len(uniform) - 9000) <= 1  # mean 300/s over three whole periods
    for a, b in ((0, 1), (4.5, 5.5), (9, 10), (12.5, 13.75)):
        assert abs(count(uniform, a, b) - (shape.cumulative(b) - shape.cumulative(a))) <= 1
    assert count(uniform, 4.5, 5.5) > 4 * count(uniform, 9.5, 10.5)  # around the peak (500/s) vs the trough (100/s)
    assert all(abs(shape.cumulative(t) - k) < 1e-6 for k, t in enumerate(uniform[:2000], 1))
    random_ = until(shaped.rate_shaped(shape, "poisson", random.Random(5)), 30)
    assert_poisson_count(len(random_), 9000)
    assert_poisson_count(count(random_, 4, 6), shape.cumulative(6) - shape.cumulative(4))
    assert_exp1_gaps(rescaled_gaps(shape, random_))


def test_diurnal_with_full_amplitude_touches_zero_without_stalling():
    shape = shaped.SinusoidRate(50, 50, period_s=4, phase=0.75)  # rate 0 at t = 0, 4, 8
    offsets = until(shaped.rate_shaped(shape, "uniform", random.Random(1)), 8)
    assert abs(len(offsets) - 400) <= 1
    assert all(b >= a for a, b in itertools.pairwise(offsets))


# --- profiles with files: rate curves and traces -------------------------------------------------

PROFILE = """apiVersion: casemesh.dev/v1
kind: Profile
metadata:
  name: test-arrivals
workload: url-shortener
services: []
seed:
  urls: 1
arrival:
{arrival}
warmup_s: {warmup_s}
duration_s: {duration_s}
request_timeout_ms: 2000
journeys:
  - name: shorten
    weight: 1
    params: {{url_bytes_per_size_unit: 1}}
"""


def write_profile(directory: Path, arrival: str, *, warmup_s: float = 0, duration_s: float = 30) -> Path:
    path = directory / "profile.yaml"
    path.write_text(PROFILE.format(arrival=arrival, warmup_s=warmup_s, duration_s=duration_s))
    return path


def line_of(path: Path, needle: str) -> int:
    [line] = [i for i, text in enumerate(path.read_text().splitlines(), 1) if needle in text]
    return line


def config_error(path: Path) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    return caught.value


@pytest.mark.parametrize(("interpolation", "totals"), [("linear", [2000, 1500, 0]), ("step", [1000, 3000, 0])])
def test_rate_curve_interpolation(tmp_path: Path, interpolation: str, totals: list[int]):
    (tmp_path / "curves").mkdir()
    (tmp_path / "curves" / "day.csv").write_text("time_s,rate_per_s,note\n0,100,quiet\n10,300,busy\n\n20,0,closed\n")
    path = write_profile(tmp_path, f"  process: rate_curve\n  file: curves/day.csv\n  interpolation: {interpolation}\n  spacing: uniform")
    arrival = load_profile(path).arrival
    offsets = list(arrival.schedule(random.Random(1), 30).offsets)  # the rate is 0 after 20 s: the schedule ends
    assert_uniform_counts([count(offsets, 0, 10), count(offsets, 10, 20), count(offsets, 20, 30)], totals)
    if interpolation == "linear":  # 100/s at 0 rising by 20/s per s: Λ(5) = 100·5 + 20·5²/2 = 750
        assert count(offsets, 0, 5) == pytest.approx(750, abs=1)
    assert arrival.offered_rate_per_s(30, 0, 20) == pytest.approx(sum(totals) / 20)
    random_ = list(arrival.scaled(2).schedule(random.Random(6), 30).offsets)
    assert_poisson_count(count(random_, 0, 10), 2 * totals[0])
    assert_poisson_count(count(random_, 10, 20), 2 * totals[1])


@pytest.mark.parametrize(
    ("csv_text", "line", "field", "message"),
    [
        ("time_s,rate_per_s\n0,10\n5,abc\n", 3, "rate_per_s", "expected a finite number, found 'abc'"),
        ("time_s,rate_per_s\n0,10\n5,20\n5,30\n", 4, "time_s", "times must increase: 5 is not after 5 on the line before"),
        ("time_s,rate_per_s\n1,10\n", 2, "time_s", "the first point must be at time_s 0 (the start of the run), found 1"),
        ("time_s,rate_per_s\n0,-1\n", 2, "rate_per_s", "must be at least 0, found -1"),
        ("time_s,rate_per_s\n0,0\n3,0\n", 1, "rate_per_s", "every rate is 0: at least one point needs a rate above 0"),
        ("time,rate\n0,10\n", 1, None, "the header must name columns time_s and rate_per_s; missing time_s, rate_per_s (found: time, rate)"),
        ("", 1, None, "the CSV is empty: expected a header line naming the columns"),
    ],
)
def test_rate_curve_errors_name_the_csv_and_line(tmp_path: Path, csv_text: str, line: int, field: str | None, message: str):
    (tmp_path / "curve.csv").write_text(csv_text)
    error = config_error(write_profile(tmp_path, "  process: rate_curve\n  file: curve.csv"))
    assert (error.file, error.line, error.field, error.message) == (str(tmp_path / "curve.csv"), line, field, message)


def test_rate_curve_peak_times_scale_is_limited(tmp_path: Path):
    (tmp_path / "curve.csv").write_text("time_s,rate_per_s\n0,10\n5,60000\n")
    path = write_profile(tmp_path, "  process: rate_curve\n  file: curve.csv\n  scale: 2")
    error = config_error(path)
    assert (error.file, error.line, error.field) == (str(path), line_of(path, "scale:"), "arrival.scale")
    assert error.message == f"the curve's peak rate 60000/s ({tmp_path / 'curve.csv'}:3) times scale 2 must be at most 100000/s"


TRACE = """TIMESTAMP,ContextTokens,Other
2023-11-16 18:15:46.6805900,374,a
2023-11-16 18:15:47.0000001,10,b
2023-11-16 18:15:46.9000000,900,c
2023-11-16 18:15:48.5,2500,d
2023-11-16 18:15:50.2500000,20,e
2023-11-16 18:15:52.6805900,7,f
"""
# Sorted by time: 46.68059 (374), 46.9 (900), 47.0000001 (10), 48.5 (2500), 50.25 (20), 52.68059 (7).


def trace_profile(tmp_path: Path, extra: str = "", *, csv_text: str = TRACE, **profile) -> Path:
    (tmp_path / "traces").mkdir(exist_ok=True)
    (tmp_path / "traces" / "t.csv").write_text(csv_text)
    (tmp_path / "profiles").mkdir(exist_ok=True)
    arrival = "  process: trace\n  file: ../traces/t.csv\n  format: datetime\n" + extra
    return write_profile(tmp_path / "profiles", arrival.rstrip("\n"), **profile)


def test_trace_offsets_are_the_recorded_gaps_divided_by_speed(tmp_path: Path):
    arrival = load_profile(trace_profile(tmp_path, "  speed: 2\n  size_column: ContextTokens")).arrival
    schedule = arrival.schedule(random.Random(1), 30)
    offsets = list(schedule.offsets)
    recorded = [0, 0.219410, 0.3194101, 1.81941, 3.56941, 6.0]  # seconds after 18:15:46.6805900 (µs resolution)
    assert offsets == pytest.approx([r / 2 for r in recorded], abs=1e-6)
    assert list(schedule.sizes) == [374, 900, 10, 2500, 20, 7]  # sorted by time, sizes carried along
    assert schedule.length_s == pytest.approx(3.0)
    assert arrival.offered_rate_per_s(30, 0, 1) == 4  # 4 arrivals in the run's first second at speed 2


def test_trace_window_and_rate_scale(tmp_path: Path):
    from casemesh.harness.profile import with_overrides

    profile = load_profile(trace_profile(tmp_path, "  column: TIMESTAMP\n  start_s: 0.25\n  end_s: 5\n  size_column: ContextTokens"))
    schedule = profile.arrival.schedule(random.Random(1), 30)
    # Window [46.93059, 51.68059): 47.0000001, 48.5, 50.25; offsets from the first of them.
    assert list(schedule.offsets) == pytest.approx([0, 1.4999999, 3.2499999], abs=1e-6)
    assert list(schedule.sizes) == [10, 2500, 20]
    assert schedule.length_s == pytest.approx(5 - 0.3194101, abs=1e-6)  # to the window's end, not the last arrival
    faster = with_overrides(profile, rate_scale=4)
    assert faster.arrival.speed == 4
    assert list(faster.arrival.schedule(random.Random(1), 30).offsets) == pytest.approx([0, 1.4999999 / 4, 3.2499999 / 4], abs=1e-6)


@pytest.mark.parametrize(("fmt", "scale"), [("seconds", 1), ("milliseconds", 1e3), ("microseconds", 1e6)])
def test_trace_numeric_formats(tmp_path: Path, fmt: str, scale: float):
    csv_text = "id,t\n" + "".join(f"{i},{t * scale:g}\n" for i, t in enumerate([100, 101.5, 103, 110]))
    path = trace_profile(tmp_path, f"  column: t\n  start_s: 1\n", csv_text=csv_text)
    path.write_text(path.read_text().replace("format: datetime", f"format: {fmt}"))
    offsets = list(load_profile(path).arrival.schedule(random.Random(1), 30).offsets)
    assert offsets == pytest.approx([0, 1.5, 8.5])


@pytest.mark.parametrize(
    ("csv_text", "extra", "line", "field", "message"),
    [
        (TRACE.replace("18:15:48.5", "18:15:4x.5"), "", 5, "TIMESTAMP",
         "invalid datetime '2023-11-16 18:15:4x.5': expected ISO 8601 like 2023-11-16 18:15:46.6805900"),
        (TRACE.replace(",2500,", ",-3,"), "  size_column: ContextTokens\n", 5, "ContextTokens", "must be at least 0, found -3"),
        (TRACE.replace(",2500,d", ""), "  size_column: ContextTokens\n", 5, "ContextTokens", "expected at least 2 fields, found 1"),
        ("TIMESTAMP\n", "", 1, None, "the trace has no arrivals: no records after the header"),
    ],
)
def test_trace_content_errors_name_the_csv_and_line(tmp_path: Path, csv_text: str, extra: str, line: int, field, message):
    error = config_error(trace_profile(tmp_path, extra, csv_text=csv_text))
    assert (error.file, error.line, error.field, error.message) == (str(tmp_path / "profiles" / ".." / "traces" / "t.csv"), line, field, message)


@pytest.mark.parametrize(
    ("extra", "needle", "field", "message"),
    [
        ("  column: TIME\n", "column:", "arrival.column", "no column 'TIME' in the header (line 1) of {csv}; its columns: TIMESTAMP, ContextTokens, Other"),
        ("  size_column: Tokens\n", "size_column:", "arrival.size_column", "no column 'Tokens' in the header (line 1) of {csv}; its columns: TIMESTAMP, ContextTokens, Other"),
        ("  start_s: 10\n", "start_s:", "arrival.start_s", "no arrival of {csv} falls in the window [10 s, end of file) after its first timestamp; the file spans 6 s"),
        ("  start_s: 0.3\n  end_s: 0.31\n", "end_s:", "arrival.end_s", "no arrival of {csv} falls in the window [0.3 s, 0.31 s) after its first timestamp; the file spans 6 s"),
        ("  start_s: 2\n  end_s: 2\n", "end_s:", "arrival.end_s", "must be greater than start_s (2)"),
        ("  speed: 0\n", "speed:", "arrival.speed", "Input should be greater than 0"),
    ],
)
def test_trace_profile_errors_name_the_profile_line_and_field(tmp_path: Path, extra: str, needle: str, field: str, message: str):
    path = trace_profile(tmp_path, extra)
    error = config_error(path)
    csv = str(tmp_path / "profiles" / ".." / "traces" / "t.csv")
    assert (error.file, error.line, error.field, error.message) == (str(path), line_of(path, needle), field, message.format(csv=csv))


def test_missing_trace_file_and_bad_format(tmp_path: Path):
    path = trace_profile(tmp_path)
    path.write_text(path.read_text().replace("../traces/t.csv", "../traces/gone.csv"))
    error = config_error(path)
    assert (error.file, error.line, error.field) == (str(path), line_of(path, "file:"), "arrival.file")
    assert error.message == f"file not found: {tmp_path / 'profiles' / '..' / 'traces' / 'gone.csv'}"
    path.write_text(path.read_text().replace("format: datetime", "format: nanoseconds"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(path, "format:"), "arrival.format")
    assert error.message.startswith("Input should be 'datetime', 'seconds', 'milliseconds' or 'microseconds'")


def test_trace_not_utf8(tmp_path: Path):
    path = trace_profile(tmp_path)
    (tmp_path / "traces" / "t.csv").write_bytes(b"TIMESTAMP\n2023-11-16 18:15:46\n\xff\xfe\n")
    error = config_error(path)
    assert (error.line, error.message) == (3, "not UTF-8 text: invalid start byte at byte 30")


def test_shipped_trace_profile_fits_the_machine():
    profile = load_profile("url-shortener-trace")
    arrival = profile.arrival
    assert (arrival.process, arrival.speed, arrival.size_column) == ("trace", 100, "ContextTokens")
    run_s = profile.warmup_s + profile.duration_s
    assert len(arrival.trace) == 19_364 and arrival.trace.span_s / arrival.speed == pytest.approx(run_s)  # fills the run
    assert arrival.offered_rate_per_s(run_s, 0, run_s) <= 800  # the plain url-shortener profile's rate
    peak, second = arrival.trace.peak_per_s(arrival.speed)
    assert (peak, second) == (798, 16)  # the figure metadata.scaling quotes; within 2 x 800/s
    assert "798 arrivals in second 16" in profile.metadata.scaling
    shorten = next(j for j in profile.journeys if j.name == "shorten")
    assert shorten.params.url_bytes_per_size_unit == 0.1
    assert [s.name for s in profile.slos] == [s.name for s in load_profile("url-shortener").slos]


# --- per-arrival sizes ---------------------------------------------------------------------------


async def test_each_journey_task_sees_its_own_arrival_size():
    async def journey() -> float | None:
        await asyncio.sleep(0)
        return arrival_size()

    tasks = []
    for size in (5.0, 7.0, None, 11.0):
        set_arrival_size(size)
        tasks.append(asyncio.create_task(journey()))
    assert await asyncio.gather(*tasks) == [5.0, 7.0, None, 11.0]


def test_shorten_url_length_follows_the_size_clamped():
    params = ShortenParams(url_bytes_per_size_unit=0.5)
    set_arrival_size(None)
    assert params.long_url_bytes() == 80  # no size: url_bytes
    for size, expected in ((300, 150), (1, MIN_URL_BYTES), (10_000, 2048)):
        set_arrival_size(size)
        assert params.long_url_bytes() == expected
    set_arrival_size(300)
    assert ShortenParams().long_url_bytes() == 80  # no mapping: sizes are ignored
    set_arrival_size(None)


# --- timeline bookkeeping and its report ------------------------------------------------------------


def test_timeline_counts_and_shortfall():
    timeline = Timeline()
    timeline.begin(warmup_s=1, planned_end_s=3, end_s=3)
    timeline.intended[:3] = [10, 12, 9]
    timeline.add_sent(0, 10)
    timeline.add_sent(1, 8)
    timeline.tick(9)
    timeline.add_sent(2, 13)
    timeline.tick(20)
    timeline.finish(3.0001, 28)  # stopped right at the end: the last 8 completions go to the last second
    timeline.drained(31)
    assert (timeline.intended, timeline.sent, timeline.completed) == ([10, 12, 9], [10, 8, 13], [9, 11, 8])
    assert timeline.max_shortfall() == (4, 1)
    summary = timeline_summary(timeline)
    assert summary["warmup"] == [True, False, False] and summary["completed_total"] == 31
    assert summary["max_shortfall"] == {"second": 1, "shortfall": 4, "intended": 12, "sent": 8}
    assert str(schedule_line(summary)) == "schedule: 31 arrivals intended, 31 sent; worst second 1: 8 of 12 sent (4 short, 33.3%)"


# --- the driver's timeline in a real run ----------------------------------------------------------


class RecordingShortener(pb_grpc.UrlShortenerServiceServicer):
    """Answers Shorten at once and keeps the length of every long URL it was sent."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    async def Shorten(self, request, context):
        self.lengths.append(len(request.long_url.encode()))
        return pb.ShortenResponse(code=f"c{len(self.lengths)}")


async def drive(profile_path: Path, servicer: RecordingShortener):
    server = grpc.aio.server()
    pb_grpc.add_UrlShortenerServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"127.0.0.1:{free_port()}")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        driver = Driver(load_profile(profile_path), {"urlshortener": channel})
        await driver.seed()
        servicer.lengths.clear()  # the seed's one Shorten
        stats = await asyncio.wait_for(driver.run(), 60)
    finally:
        await channel.close()
        await server.stop(0)
    return stats.timeline


async def test_driver_timeline_and_sizes_in_a_real_run(tmp_path: Path):
    # 40 arrivals at known offsets: 10 in second 0, 20 in second 1, 0 in second 2, 10 in second 3;
    # sizes 100 + i bytes. The run (0.5 s warm-up + 2.5 s) ends before the last 10.
    offsets = [i * 0.1 for i in range(10)] + [1 + i * 0.05 for i in range(20)] + [3 + i * 0.05 for i in range(10)]
    csv_text = "t,size\n" + "".join(f"{1000 + t:.3f},{100 + i}\n" for i, t in enumerate(offsets))
    path = trace_profile(tmp_path, "  column: t\n  size_column: size\n", csv_text=csv_text, warmup_s=0.5, duration_s=2.5)
    path.write_text(path.read_text().replace("format: datetime", "format: seconds"))
    servicer = RecordingShortener()
    timeline = await drive(path, servicer)
    assert timeline.intended == [10, 20, 0]
    assert sum(timeline.sent) == 30 and timeline.sent[0] >= 1  # which second each was sent in depends on the machine
    assert sum(timeline.completed) + timeline.completed_after_end == 30
    assert not timeline.ended_early and timeline.end_s == 3.0 and timeline.warmup_s == 0.5
    assert sorted(servicer.lengths) == [100 + i for i in range(30)]  # every Shorten sized by its own arrival


async def test_driver_stops_when_the_trace_ends_before_the_run(tmp_path: Path):
    csv_text = "t\n" + "".join(f"{t / 10}\n" for t in range(15))  # 15 arrivals over 1.4 s
    path = trace_profile(tmp_path, "  column: t\n", csv_text=csv_text, warmup_s=0, duration_s=30)
    path.write_text(path.read_text().replace("format: datetime", "format: seconds"))
    timeline = await drive(path, RecordingShortener())
    assert timeline.ended_early and timeline.end_s == pytest.approx(1.4)  # not 30 s
    assert timeline.intended == [10, 5] and sum(timeline.sent) == 15
    assert timeline.measured_s == pytest.approx(1.4)
