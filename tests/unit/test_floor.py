"""The machine's judgement of SLO verdicts (harness/floor.py): the control stream's floor and its stalls."""

from __future__ import annotations

import pytest

from casemesh.harness.floor import FLOOR_FACTOR, find_stalls, qualify, stall_threshold_ms
from casemesh.harness.slo import Selector, Slo, evaluate
from casemesh.harness.stats import RunStats

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
WARMUP_S, END_S = 2.0, 12.0


def latency_slo(threshold_ms: float = 10.0, target: float = 0.99) -> Slo:
    return Slo("resolve-latency", "Resolve p99 within 10 ms", None, None, "url-shortener", target,
               Selector(rpc=RESOLVE, latency_le_ms=threshold_ms), Selector(rpc=RESOLVE))


def availability_slo() -> Slo:
    return Slo("availability", "availability", None, None, "url-shortener", 0.999,
               Selector(rpc=RESOLVE, codes=("OK", "NOT_FOUND")), Selector(rpc=RESOLVE))


def control(latency_ms_by_second: dict[int, float], default_ms: float = 1.0, per_second: int = 50) -> RunStats:
    """A control stream's stats: ``per_second`` echo calls each second of the run, of ``default_ms`` unless given."""
    stats = RunStats()
    for second in range(int(END_S) + 1):
        latency_us = latency_ms_by_second.get(second, default_ms) * 1000
        for i in range(per_second):
            at = second + (i + 0.5) / per_second
            if at >= WARMUP_S:
                stats.journey("echo").record("OK", latency_us)
            stats.series.journey("echo").record("OK", latency_us, at)
    return stats


def load(slow_seconds: dict[int, float], fast_ms: float = 2.0, per_second: int = 100, code: str = "OK") -> RunStats:
    """The load's stats: ``per_second`` Resolves each second, slow ones (ms) in the seconds given."""
    stats = RunStats()
    for second in range(int(WARMUP_S), int(END_S)):
        latency_us = slow_seconds.get(second, fast_ms) * 1000
        for i in range(per_second):
            at = second + (i + 0.5) / per_second
            stats.rpc(RESOLVE).record(code if second in slow_seconds else "OK", latency_us)
            stats.series.rpc(RESOLVE).record(code if second in slow_seconds else "OK", latency_us, at)
    return stats


def judged(slo: Slo, stats: RunStats, control_stats: RunStats):
    verdicts, stalls = qualify(evaluate([slo], stats), [slo], stats, control_stats, WARMUP_S, END_S)
    return verdicts[0], stalls


def test_a_quiet_machine_leaves_a_miss_a_miss():
    slo = latency_slo()
    verdict, stalls = judged(slo, load({5: 50.0}), control({}))
    assert stalls == [] and verdict.passed is False and verdict.inconclusive is False
    assert verdict.floor_ms is not None and verdict.floor_ms < 1.1 and verdict.machine_note is None


def test_a_threshold_within_3x_of_the_floor_cannot_be_judged():
    slo = latency_slo(threshold_ms=10.0)
    # The machine's own p99 is 4 ms: 3 x 4 >= 10, so a 10 ms p99 cannot be judged here.
    verdict, _ = judged(slo, load({5: 50.0}), control({}, default_ms=4.0))
    assert verdict.passed is False and verdict.inconclusive is True
    assert verdict.floor_ms == pytest.approx(4.0, rel=0.002)  # HDR: 3 significant figures
    assert "own p99 during the run was 4.0 ms: a 10 ms p99 cannot be judged here" in verdict.machine_note
    # The same floor 3.4 ms: 3 x 3.4 > 10 still; at 3.3 ms the threshold is judgeable (3 x 3.3 < 10).
    verdict, _ = judged(slo, load({5: 50.0}), control({}, default_ms=10.0 / FLOOR_FACTOR - 0.05))
    assert verdict.inconclusive is False


def test_a_met_slo_stays_met_whatever_the_floor():
    verdict, _ = judged(latency_slo(threshold_ms=10.0), load({}), control({}, default_ms=5.0))
    assert verdict.passed is True and verdict.inconclusive is False
    assert verdict.machine_note.startswith("met although this machine's own p99")


def test_misses_inside_a_stall_make_the_verdict_inconclusive_and_name_the_seconds():
    slo = latency_slo()
    # Seconds 6 and 7: the control's p99 is 90 ms (a stall), and every Resolve of second 6 took 80 ms.
    verdict, stalls = judged(slo, load({6: 80.0}), control({6: 90.0, 7: 90.0}))
    assert [(s.first, s.last) for s in stalls] == [(6, 7)]
    assert verdict.passed is False and verdict.inconclusive is True
    assert "the machine stalled in seconds 6-7 (the control's p99 was 90 ms); without those seconds this SLO is met" in verdict.machine_note


def test_misses_outside_the_stalls_are_the_systems():
    slo = latency_slo()
    verdict, stalls = judged(slo, load({4: 80.0, 9: 80.0}), control({6: 90.0}))
    assert [(s.first, s.last) for s in stalls] == [(6, 6)]
    assert verdict.passed is False and verdict.inconclusive is False
    assert "but this SLO is missed without those seconds too" in verdict.machine_note
    # The floor shown is the whole window's (the stall in it); the judgement used the floor outside the stall.
    assert verdict.floor_ms > 80


def test_a_high_floor_outside_the_stalls_still_makes_a_miss_inconclusive():
    verdict, stalls = judged(latency_slo(), load({4: 80.0}), control({6: 200.0}, default_ms=5.0))
    assert len(stalls) == 1 and verdict.inconclusive is True
    assert "own p99 outside its stalls during the run was 5.0 ms" in verdict.machine_note


def test_an_availability_miss_inside_a_stall_is_inconclusive_too():
    slo = availability_slo()
    verdict, _ = judged(slo, load({6: 1000.0}, code="DEADLINE_EXCEEDED"), control({6: 900.0}))
    assert verdict.passed is False and verdict.floor_ms is None and verdict.inconclusive is True


def test_stall_threshold_is_ten_times_the_median_and_at_least_10_ms():
    assert stall_threshold_ms(control({}, default_ms=0.5)) == 10.0
    assert stall_threshold_ms(control({}, default_ms=3.0)) == pytest.approx(30.0, rel=0.002)
    # The warm-up's seconds are not part of the measured window.
    assert find_stalls(control({0: 500.0}), int(WARMUP_S), int(END_S) + 1) == []


def test_prometheus_verdicts_and_runs_without_a_control_are_left_alone():
    slo = latency_slo()
    stats = load({5: 50.0})
    verdicts = evaluate([slo], stats)
    assert qualify(verdicts, [slo], stats, RunStats(), WARMUP_S, END_S)[0] == verdicts
