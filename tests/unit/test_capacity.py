"""casemesh capacity without a network: the step/bisect/stop logic with fake step runners, the verdict of a step from
recorded histograms, the capacity.json shape, and the search against a simulated M/D/1 queue."""

from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from pathlib import Path

import pytest

from casemesh.harness.capacity import (
    COLLAPSE_FACTOR,
    Plan,
    StepOutcome,
    StepSize,
    capacity_document,
    final_line,
    judge_step,
    search,
    slo_subjects,
    step_line,
    steps_table,
)
from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import MAX_RATE_PER_S, load_profile
from casemesh.harness.result import build_result
from casemesh.harness.slo import evaluate
from casemesh.harness.stats import RunStats

ROOT = Path(__file__).resolve().parents[2]
MD1 = ROOT / "benchmarks" / "profiles" / "md1.yaml"
ECHO = "casemesh.bench.v1.EchoService/Echo"
RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"


def plan(**changes) -> Plan:
    values = dict(start_per_s=100.0, step=StepSize(rate_per_s=100.0), resolution_per_s=10.0, max_rate_per_s=10_000.0,
                  max_steps=30, time_limit_s=10_000.0, step_duration_s=10.0, step_warmup_s=2.0)
    values.update(changes)
    return Plan(**values)


def outcome(rate: float, kind: str, **more) -> StepOutcome:
    return StepOutcome(rate_per_s=rate, kind=kind, valid=more.pop("valid", True), reason=more.pop("reason", "" if kind == "pass" else kind), **more)


class Threshold:
    """A system that passes up to ``capacity`` requests/s; above it, fails as ``above(rate)`` says."""

    def __init__(self, capacity: float, above=lambda rate: "fail"):
        self.capacity = capacity
        self.above = above
        self.rates: list[float] = []

    async def __call__(self, rate: float) -> StepOutcome:
        self.rates.append(rate)
        return outcome(rate, "pass" if rate <= self.capacity else self.above(rate))


# -- options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, rate, factor", [("500", 500.0, None), ("12.5", 12.5, None), ("x2", None, 2.0), ("2x", None, 2.0),
                                                ("×1.5", None, 1.5), (" x 3 ", None, 3.0)])
def test_step_parses_a_rate_or_a_factor(text, rate, factor):
    step = StepSize.parse(text)
    assert (step.rate_per_s, step.factor) == (rate, factor)


@pytest.mark.parametrize("text", ["x1", "0.5x", "0", "-100", "fast", "nan", "inf", "x"])
def test_a_bad_step_is_a_config_error_naming_the_option(text):
    with pytest.raises(ConfigError) as caught:
        StepSize.parse(text)
    assert caught.value.field == "--step"


def test_steps_add_or_multiply():
    assert StepSize(rate_per_s=250).after(500) == 750
    assert StepSize(factor=2).after(500) == 1000


@pytest.mark.parametrize("changes, field", [
    ({"start_per_s": 0}, "--start"), ({"resolution_per_s": -1}, "--resolution"), ({"max_rate_per_s": math.nan}, "--max-rate"),
    ({"start_per_s": 500, "max_rate_per_s": 400}, "--start"), ({"max_rate_per_s": MAX_RATE_PER_S * 2}, "--max-rate"),
    ({"max_steps": 0}, "--max-steps"), ({"time_limit_s": 11}, "--time-limit"), ({"step_duration_s": 0}, "--step-duration"),
    ({"step_warmup_s": -1}, "--step-warmup"),
])
def test_plan_check_names_the_bad_option(changes, field):
    with pytest.raises(ConfigError) as caught:
        plan(**changes).check(MAX_RATE_PER_S)
    assert caught.value.field == field


# -- the search -------------------------------------------------------------------------------------


async def test_steps_up_until_a_failure_then_bisects_to_the_resolution():
    system = Threshold(437)
    found = await search(plan(), system)
    assert system.rates == [100, 200, 300, 400, 500, 450, 425, 437.5, 431.25]
    assert found.capacity_per_s == 431.25 and found.lowest_failing_per_s == 437.5
    assert found.stopped_reason.startswith("resolution reached: 431.25/s passed, 437.5/s failed")
    assert [s.passed for s in found.steps] == [True] * 4 + [False, False, True, False, True]


async def test_a_factor_step_doubles():
    system = Threshold(100)
    found = await search(plan(start_per_s=10, step=StepSize(factor=2), resolution_per_s=5), system)
    assert system.rates[:5] == [10, 20, 40, 80, 160]
    assert 95 <= found.capacity_per_s <= 100 and found.lowest_failing_per_s - found.capacity_per_s <= 5


async def test_a_marginal_failure_is_re_run_once_and_the_re_run_decides():
    calls: dict[float, int] = {}

    async def flaky(rate: float) -> StepOutcome:  # fails once at 300/s (a stall), passes on the re-run; real capacity 350
        calls[rate] = calls.get(rate, 0) + 1
        if rate == 300 and calls[rate] == 1:
            return outcome(rate, "marginal", reason="Resolve p99 12 ms > 10 ms")
        return outcome(rate, "pass" if rate <= 350 else "marginal", reason="" if rate <= 350 else "Resolve p99 15 ms > 10 ms")

    found = await search(plan(resolution_per_s=50), flaky)
    rates = [(s.rate_per_s, s.rerun, s.kind) for s in found.steps]
    assert rates[:4] == [(100, False, "pass"), (200, False, "pass"), (300, False, "marginal"), (300, True, "pass")]
    assert found.steps[2].reason.endswith("[near the boundary: re-run once]")
    assert found.steps[3].reason == "re-run of 300/s: passed"
    # 400 fails twice: marginal, then its re-run (turned into a plain fail: a re-run is not re-run)
    assert rates[4:6] == [(400, False, "marginal"), (400, True, "fail")]
    assert found.capacity_per_s == 350 and found.lowest_failing_per_s == 400
    assert calls[400] == 2 and calls[350] == 1


async def test_a_collapse_is_not_re_run_stops_stepping_and_is_reported():
    system = Threshold(250, above=lambda rate: "collapse")
    found = await search(plan(resolution_per_s=50), system)
    assert system.rates == [100, 200, 300, 250]
    assert found.capacity_per_s == 250
    assert "collapse at 300/s" in found.stopped_reason


async def test_no_capacity_when_the_first_step_fails():
    system = Threshold(50)
    found = await search(plan(), system)
    assert system.rates == [100] and found.capacity_per_s is None
    assert found.stopped_reason.startswith("the first step at 100/s failed")
    assert final_line(None).startswith("highest rate meeting every SLO: none")


async def test_a_marginal_first_step_gets_its_re_run():
    system = Threshold(50, above=lambda rate: "marginal")
    found = await search(plan(), system)
    assert system.rates == [100, 100] and found.capacity_per_s is None and found.steps[1].rerun


async def test_max_rate_is_tried_exactly_and_bounds_the_search():
    system = Threshold(10_000)
    found = await search(plan(max_rate_per_s=450), system)
    assert system.rates == [100, 200, 300, 400, 450]
    assert found.capacity_per_s == 450 and found.lowest_failing_per_s is None
    assert found.stopped_reason.startswith("max rate reached")


async def test_max_steps_bounds_the_search_and_says_what_is_known():
    system = Threshold(437)
    found = await search(plan(max_steps=6), system)
    assert len(system.rates) == 6 and found.capacity_per_s == 400
    assert found.stopped_reason.startswith("step limit: 6 steps run (--max-steps 6); capacity between 400/s (passed) and 450/s (failed)")


async def test_time_limit_counts_the_longest_step_and_does_not_start_one_that_would_end_too_late():
    now = [0.0]

    async def slow(rate: float) -> StepOutcome:
        now[0] += 15.0  # each step takes 15 s (12 s of load + draining)
        return outcome(rate, "pass")

    found = await search(plan(time_limit_s=50), slow, clock=lambda: now[0], overhead_s=1.0)
    # before the 1st: 0 + 13 <= 50; before the 2nd: 15 + 15; before the 3rd: 30 + 15; before the 4th: 45 + 15 > 50
    assert len(found.steps) == 3 and found.capacity_per_s == 300
    assert found.stopped_reason.startswith("time limit: 45 s elapsed, a step takes up to 15 s, --time-limit 50 s")


async def test_a_re_run_that_does_not_fit_leaves_the_failure_standing():
    now = [0.0]

    async def runner(rate: float) -> StepOutcome:
        now[0] += 15.0
        return outcome(rate, "pass" if rate < 200 else "marginal", reason="" if rate < 200 else "p99 11 ms > 10 ms")

    found = await search(plan(time_limit_s=40), runner, clock=lambda: now[0], overhead_s=1.0)
    assert [s.rate_per_s for s in found.steps] == [100, 200]
    assert "not re-run: time limit" in found.steps[1].reason
    assert found.capacity_per_s == 100


async def test_contradicting_verdicts_are_warned_about():
    calls: dict[float, int] = {}

    async def disturbed(rate: float) -> StepOutcome:  # near miss at 400, then another load arrives: everything collapses
        calls[rate] = calls.get(rate, 0) + 1
        if rate <= 300 and sum(calls.values()) <= 3:
            return outcome(rate, "pass")
        if rate == 400 and calls[rate] == 1:
            return outcome(rate, "marginal", reason="p99 12 ms > 10 ms")
        return outcome(rate, "collapse", reason="collapse: errors dominate", collapse="errors dominate (90% of journeys failed)")

    found = await search(plan(resolution_per_s=60), disturbed)
    assert [(s.rate_per_s, s.kind) for s in found.steps] == [(100, "pass"), (200, "pass"), (300, "pass"), (400, "marginal"),
                                                             (400, "collapse"), (350, "collapse")]
    assert "collapse at 400/s: errors dominate (90% of journeys failed)" in found.stopped_reason
    assert found.stopped_reason.count("warning:") == 1
    assert ("warning: step 5 collapsed at 400/s although step 4 nearly met every SLO at 400/s: the machine or the system "
            "changed during the search") in found.stopped_reason


async def test_the_harness_as_the_limit_is_reported():
    async def runner(rate: float) -> StepOutcome:
        if rate <= 200:
            return outcome(rate, "pass")
        return outcome(rate, "collapse", valid=False, harness_limited=True, reason="collapse: the load generator fell behind",
                       collapse="the load generator fell behind (send lag p99 31 ms > 10 ms): the harness, not the service, is the limit")

    found = await search(plan(resolution_per_s=100), runner)
    assert found.capacity_per_s == 200
    assert found.stopped_reason.endswith("; collapse at 300/s: the load generator fell behind (send lag p99 31 ms > 10 ms): "
                                         "the harness, not the service, is the limit")


async def test_on_step_sees_every_step_in_order():
    seen = []
    await search(plan(), Threshold(250), on_step=lambda o, steps: seen.append((o.rate_per_s, len(steps))))
    assert seen[:4] == [(100, 1), (200, 2), (300, 3), (250, 4)]


# -- judging one step -------------------------------------------------------------------------------


def recorded(profile, *, rpc: str, journey: str, latencies_ms, codes=None, lag_ms: float = 0.5, journeys_codes=None) -> RunStats:
    """RunStats of calls of ``rpc`` (and journeys of ``journey``) with these latencies and codes."""
    stats = RunStats()
    codes = codes or ["OK"] * len(latencies_ms)
    for latency, code in zip(latencies_ms, codes):
        stats.rpc(rpc).record(code, latency * 1000)
        stats.journey(journey).record(code if journeys_codes is None else journeys_codes, latency * 1000)
        stats.send_lag.record_value(max(int(lag_ms * 1000), 1))
    stats.timeline.begin(profile.warmup_s, profile.warmup_s + profile.duration_s, profile.warmup_s + profile.duration_s)
    stats.timeline.finish(profile.warmup_s + profile.duration_s, len(latencies_ms))
    return stats


def judged(profile, stats, rate=100.0, bound_ms=10.0, full_result=True):
    verdicts = evaluate(profile.slos, stats)
    lag = stats.send_lag.get_value_at_percentile(99) / 1000
    invalid = [f"send lag p99 {lag:.1f} ms > {bound_ms:g} ms"] if lag > bound_ms else []
    # The full result document (percentiles, means, histograms) costs ~0.1 s a step; the verdict needs none of it.
    result = build_result(profile=profile, stats=stats, verdicts=verdicts, target={}, started_at=datetime.now(timezone.utc),
                          valid=not invalid, invalid_reasons=invalid) if full_result else {}
    return judge_step(rate_per_s=rate, profile=profile, stats=stats, verdicts=verdicts, invalid_reasons=invalid,
                      send_lag_bound_ms=bound_ms, result=result)


@pytest.fixture(scope="module")
def md1():
    return load_profile(MD1)  # one SLO: 50% of Echo within 35 ms; no SLO judges status codes


@pytest.fixture(scope="module")
def shortener():
    return load_profile("url-shortener")  # Resolve p99 10 ms, Shorten p99 25 ms, availability 99.9%, Prometheus twins


def test_a_step_that_meets_its_slo_passes_with_the_documented_fields(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 60 + [60.0] * 40))
    assert step.kind == "pass" and step.passed and step.valid and step.reason == ""
    assert step.slos == [{"name": "echo-median-35ms", "passed": True, "measured": 0.6, "target": 0.5}]
    assert set(step.rpcs[ECHO]) == {"p50_ms", "p99_ms", "count", "errors"} and step.rpcs[ECHO]["count"] == 100
    assert step.rpcs[ECHO]["p50_ms"] == pytest.approx(21.0, rel=0.002) and step.journeys["echo"]["p99_ms"] == pytest.approx(60.0, rel=0.002)
    assert step.send_lag_p99_ms == pytest.approx(0.5, rel=0.01)
    assert set(step.to_dict()) == {"rate_per_s", "passed", "kind", "rerun", "valid", "reason", "slos", "rpcs", "journeys", "send_lag_p99_ms", "achieved_rps"}


def test_a_latency_miss_within_twice_the_threshold_is_marginal(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 40 + [60.0] * 60))
    assert step.kind == "marginal" and not step.passed and step.valid
    assert step.reason.startswith("Echo p50 60.") and "> 35 ms (echo-median-35ms 40.00% < 50%)" in step.reason


def test_the_quantile_in_a_reason_is_the_one_the_ratio_slo_counts(shortener):
    # 170 Shortens, 2 of them over 25 ms: 168/170 = 98.8% < 99% fails, so the p99 shown must be above 25 ms
    # (HdrHistogram's own p99 of 170 values is the 168th, 4 ms, which would read "p99 4 ms > 25 ms").
    stats = shortener_stats(shortener, ["OK"] * 2000)
    stats.rpcs[SHORTEN] = stats.journeys["shorten"] = type(stats.rpcs[RESOLVE])()
    for latency_ms in [2.0] * 168 + [29.5, 32.6]:
        stats.rpc(SHORTEN).record("OK", latency_ms * 1000)
    step = judged(shortener, stats)
    assert step.kind == "marginal", step.reason
    assert "Shorten p99 29.5" in step.reason and "> 25 ms (shorten-latency 98.82% < 99%)" in step.reason


def test_a_latency_miss_beyond_twice_the_threshold_is_a_plain_failure(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 40 + [100.0] * 60))
    assert step.kind == "fail"


def test_latency_far_beyond_every_threshold_is_a_collapse(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[35 * COLLAPSE_FACTOR + 1] * 100))
    assert step.kind == "collapse" and step.reason.startswith("collapse: latency far beyond every SLO threshold: Echo p50 351")
    assert step.collapse == "latency far beyond every SLO threshold"


def test_errors_without_an_slo_that_judges_them_fail_the_step(md1):
    latencies = [21.0] * 1000
    codes = ["OK"] * 999 + ["UNAVAILABLE"]
    stats = recorded(md1, rpc=ECHO, journey="echo", latencies_ms=latencies, codes=codes)
    stats.journeys["echo"] = stats.rpcs[ECHO]  # the journey ends as its one RPC did
    step = judged(md1, stats)
    assert step.kind == "marginal"  # 0.1% of journeys: a one-off, re-run it
    assert "1 of 1,000 journeys failed (UNAVAILABLE 1) and no SLO judges status codes" in step.reason
    assert step.rpcs[ECHO]["errors"] == {"UNAVAILABLE": 1}


def test_errors_dominating_are_a_collapse(md1):
    codes = ["DEADLINE_EXCEEDED"] * 60 + ["OK"] * 40
    stats = recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 100, codes=codes)
    stats.journeys["echo"] = stats.rpcs[ECHO]
    step = judged(md1, stats)
    assert step.kind == "collapse" and step.reason.startswith("collapse: errors dominate (60% of journeys failed): DEADLINE_EXCEEDED 60")


def shortener_stats(shortener, resolve_codes) -> RunStats:
    stats = recorded(shortener, rpc=RESOLVE, journey="resolve", latencies_ms=[2.0] * len(resolve_codes), codes=resolve_codes)
    stats.journeys["resolve"] = stats.rpcs[RESOLVE]
    for _ in range(20):
        stats.rpc(SHORTEN).record("OK", 5000)
        stats.journey("shorten").record("OK", 5000)
    return stats


def test_an_availability_slo_decides_how_many_errors_are_allowed(shortener):
    # 1 UNAVAILABLE in 2,000 Resolves: within the 99.9% availability SLO, so the step passes.
    step = judged(shortener, shortener_stats(shortener, ["OK"] * 1999 + ["UNAVAILABLE"]))
    assert step.kind == "pass", step.reason
    # Prometheus twins are not evaluated without Prometheus: left out of the step's SLOs.
    assert [s["name"] for s in step.slos] == ["resolve-latency", "shorten-latency", "availability"]
    # 5 in 2,000 (0.25%, 2.5x the 0.1% budget) fails the availability SLO, beyond the marginal 2x.
    step = judged(shortener, shortener_stats(shortener, ["OK"] * 1995 + ["UNAVAILABLE"] * 5))
    assert step.kind == "fail" and "availability 99.75% < 99.9%" in step.reason


def test_an_slo_without_calls_fails_the_step_as_run_does(shortener):
    stats = recorded(shortener, rpc=RESOLVE, journey="resolve", latencies_ms=[2.0] * 100)
    step = judged(shortener, stats)
    assert step.kind == "fail" and step.reason.startswith("shorten-latency: no calls recorded")


def test_behind_schedule_with_every_slo_met_blames_the_harness(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 100, lag_ms=15.0))
    assert step.kind == "marginal" and not step.valid and step.harness_limited
    assert "while every SLO was met: the harness, not the service, is the limit at this rate" in step.reason
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 100, lag_ms=50.0))
    assert step.kind == "collapse" and step.harness_limited
    assert step.reason.startswith("collapse: the load generator fell behind (send lag p99 50.0 ms > 10 ms): the harness, not the service, is the limit")


def test_behind_schedule_with_slos_failing_blames_the_shared_machine(md1):
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[60.0] * 100, lag_ms=15.0))
    assert not step.harness_limited and not step.valid
    assert "the harness and the services share the machine" in step.reason


# -- output -----------------------------------------------------------------------------------------


async def test_capacity_document_has_exactly_the_documented_shape(md1):
    found = await search(plan(), Threshold(250))
    document = capacity_document(md1, found.steps, found.capacity_per_s, found.stopped_reason)
    assert set(document) == {"schema_version", "profile", "steps", "capacity_rate_per_s", "stopped_reason", "repeats"}
    assert document["schema_version"] == 1 and document["profile"] == {"name": "bench-md1", "path": str(MD1)}
    assert document["capacity_rate_per_s"] == found.capacity_per_s
    for step in document["steps"]:
        assert set(step) == {"rate_per_s", "passed", "kind", "rerun", "valid", "reason", "slos", "rpcs", "journeys", "send_lag_p99_ms", "achieved_rps"}


def test_table_and_lines_show_the_slod_subjects(md1, shortener):
    assert slo_subjects(md1.slos) == [("rpc", ECHO)]
    assert slo_subjects(shortener.slos) == [("rpc", RESOLVE), ("rpc", SHORTEN)]
    step = judged(md1, recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 40 + [60.0] * 60))
    line = step_line(3, step, slo_subjects(md1.slos))
    assert line.startswith("step 3: 100/s | achieved") and "Echo p50/p99 60." in line and "FAIL (near)" in line
    table = steps_table([step], slo_subjects(md1.slos))
    assert [c.header for c in table.columns][:4] == ["#", "offered", "achieved", "Echo p50 / p99 ms"]


# -- queueing theory, simulated ---------------------------------------------------------------------


def md1_wait_cdf(t_s: float, rate_per_s: float, service_s: float) -> float:
    """P(W <= t) of an M/D/1 queue for 0 <= t < S: (1 - rho) e^(lambda t) (the first term of Erlang's formula)."""
    assert 0 <= t_s < service_s
    return (1 - rate_per_s * service_s) * math.exp(rate_per_s * t_s)


def md1_capacity(threshold_ms: float, target: float, service_s: float) -> float:
    """The rate (requests/s) at which P(W + S <= threshold) = target, by bisection on rho in (0, 1)."""
    low, high = 0.0, 1.0
    for _ in range(60):
        rho = (low + high) / 2
        if md1_wait_cdf(threshold_ms / 1000 - service_s, rho / service_s, service_s) >= target:
            low = rho
        else:
            high = rho
    return low / service_s


async def test_the_search_finds_the_md1_capacity_of_a_simulated_queue(md1):
    """The real search, SLO evaluation and step verdicts against a simulated single-server queue (Lindley's recursion)."""
    service_s = 0.020
    [slo] = md1.slos
    theory = md1_capacity(slo.good.latency_le_ms, slo.target, service_s)
    assert theory == pytest.approx(35.27, abs=0.01)
    results = []
    for seed in range(1, 9):
        async def simulated(rate: float, seed=seed) -> StepOutcome:
            rng = random.Random(seed)  # the same arrival path at every rate, as the driver's seeded schedule
            stats = RunStats()
            t = free = 0.0
            end = 1.0 + 20.0  # 1 s warm-up + 20 s measured
            while (t := t + rng.expovariate(rate)) < end:
                start = max(t, free)
                free = start + service_s
                if t >= 1.0:
                    stats.rpc(ECHO).record("OK", (free - t) * 1e6)
                    stats.journey("echo").record("OK", (free - t) * 1e6)
                    stats.send_lag.record_value(500)
            stats.timeline.begin(1.0, end, end)
            stats.timeline.finish(end, 0)
            return judged(md1, stats, rate, full_result=False)

        found = await search(plan(start_per_s=20, step=StepSize(rate_per_s=10), resolution_per_s=1, max_rate_per_s=60), simulated)
        results.append(found.capacity_per_s)
    # 20 s steps: each search lands within 15% of theory; their median within 5%.
    assert all(abs(c / theory - 1) <= 0.15 for c in results), (theory, results)
    assert abs(sorted(results)[len(results) // 2] / theory - 1) <= 0.05, (theory, results)


def test_a_miss_that_the_machine_explains_is_a_stalled_step_re_run_once(md1):
    """A step whose failed SLOs are all inconclusive (the control stalled) is re-run, and its repeat's spread is reported."""
    from dataclasses import replace

    stats = recorded(md1, rpc=ECHO, journey="echo", latencies_ms=[21.0] * 40 + [60.0] * 60)
    verdicts = [replace(v, inconclusive=True, machine_note="the machine stalled in seconds 3-4") for v in evaluate(md1.slos, stats)]
    step = judge_step(rate_per_s=100, profile=md1, stats=stats, verdicts=verdicts, invalid_reasons=[], send_lag_bound_ms=10.0,
                      result=build_result(profile=md1, stats=stats, verdicts=verdicts, target={},
                                          started_at=datetime.now(timezone.utc), valid=True, invalid_reasons=[]),
                      stalls=["seconds 3-4 (the control's p99 was 90 ms)"])
    assert step.kind == "stalled" and "the machine, not the system: the machine stalled in seconds 3-4" in step.reason
