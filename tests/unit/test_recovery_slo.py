"""Recovery SLOs: "after the spike ends, p99 is back under X ms within T s", judged on the per-second series."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import load_profile
from casemesh.harness.recovery import Recovery, resolve
from casemesh.harness.slo import evaluate, load_slos, recovery_verdict
from casemesh.harness.stats import RunStats
from tests.unit.test_slo import slo_document, write_documents

STATS = "casemesh.urlshortener.v1.UrlShortenerService/GetStats"
RECOVERY = {"after": 5, "within_s": 3, "window_s": 2}  # the event ends 5 s into the measured window


def recovery_document(recovery=None, good=None, total=None, target=0.99):
    document = slo_document("stats-recovery", good=good or {"rpc": STATS, "latency_le_ms": 100, "codes": ["OK"]},
                            total=total or {"rpc": STATS}, target=target)
    document["spec"]["recovery"] = dict(RECOVERY if recovery is None else recovery)
    return document


def run(per_second, warmup_s=2, end_s=20) -> RunStats:
    """A run whose second ``s`` (from the run's start) saw the calls ``per_second(s)``: a list of (code, latency ms)."""
    stats = RunStats()
    stats.timeline.begin(warmup_s, end_s, end_s)
    series = stats.series.rpc(STATS)
    for second in range(int(end_s) + 1):
        for code, latency_ms in per_second(second):
            series.record(code, latency_ms * 1000, second + 0.5)
    return stats


def verdict_of(tmp_path: Path, stats: RunStats, **document):
    path, _ = write_documents(tmp_path, recovery_document(**document))
    (slo,) = load_slos(path, rpcs=[STATS])
    return evaluate([slo], stats)[0]


def test_recovering_within_the_allowance_passes_and_reports_when(tmp_path: Path):
    # The event ends at 2 + 5 = 7 s; slow until second 8, fast from second 9 on: recovered 2 s after, within 3 s.
    stats = run(lambda s: [("OK", 900 if 5 <= s <= 8 else 10)] * 50)
    verdict = verdict_of(tmp_path, stats)
    assert verdict.passed is True
    assert verdict.recovery["recovered_at_s"] == 9 and verdict.recovery["recovery_s"] == 2 and verdict.recovery["event_end_s"] == 7
    assert verdict.note.startswith("recovered 2 s after 5 s into the measured window ended (within 3 s)")
    assert verdict.measured == 1.0 and verdict.total == 50 * (20 - 10)  # seconds 10..19: after the allowance
    assert "again within 3 s after 5 s into the measured window ends" in verdict.objective


def test_recovering_too_late_fails(tmp_path: Path):
    stats = run(lambda s: [("OK", 900 if 5 <= s <= 12 else 10)] * 50)
    verdict = verdict_of(tmp_path, stats)
    assert verdict.passed is False and verdict.recovery["recovery_s"] == 6
    assert "beyond 3 s" in verdict.note


def test_a_relapse_counts_recovery_from_after_it(tmp_path: Path):
    # Fast again at second 8, then the storm comes back at 15-16: recovered only from 17 on, 10 s after the event.
    stats = run(lambda s: [("OK", 900 if 5 <= s <= 7 or 15 <= s <= 16 else 10)] * 50)
    verdict = verdict_of(tmp_path, stats)
    assert verdict.passed is False and verdict.recovery["recovered_at_s"] == 17
    # Storming again until the end: never recovered.
    stats = run(lambda s: [("OK", 900 if 5 <= s <= 7 or s >= 15 else 10)] * 50)
    verdict = verdict_of(tmp_path, stats)
    assert verdict.passed is False and verdict.recovery["recovered_at_s"] is None
    assert verdict.note.startswith("not recovered: 0.0% good (< 99%) in the 2 s window at 18 s")
    assert "(100 of 100 calls failed or slower than 100 ms; p99 8" in verdict.note


def test_seconds_left_out_are_not_judged(tmp_path: Path):
    # Recovered at 8, but a machine stall made second 15 slow: with 15 and 16 left out (harness/floor.py), it recovered.
    stats = run(lambda s: [("OK", 900 if 5 <= s <= 7 or s == 15 else 10)] * 50)
    path, _ = write_documents(tmp_path, recovery_document())
    (slo,) = load_slos(path, rpcs=[STATS])
    assert recovery_verdict(slo, stats).passed is False
    again = recovery_verdict(slo, stats, left_out={15, 16})
    assert again.passed is True and again.recovery["recovered_at_s"] == 8 and again.total == 50 * (20 - 10 - 2)
    assert [w["holds"] for w in again.recovery["windows"] if w["start_s"] in (14, 15, 16, 17)] == [None, None, None, True]


def test_fast_errors_are_bad_when_good_names_codes(tmp_path: Path):
    # Calls that fail fast (a shedding server) are not a recovery when good counts OK only.
    stats = run(lambda s: [("UNAVAILABLE" if s >= 5 else "OK", 5)] * 50)
    assert verdict_of(tmp_path, stats).passed is False
    anything_fast = verdict_of(tmp_path, stats, good={"rpc": STATS, "latency_le_ms": 100})
    assert anything_fast.passed is True


def test_a_run_too_short_after_the_event_cannot_pass(tmp_path: Path):
    stats = run(lambda s: [("OK", 10)] * 50, end_s=10)  # ends 3 s after the event; a verdict needs 3 + 2
    verdict = verdict_of(tmp_path, stats)
    assert verdict.passed is False and "a verdict needs 5 s" in verdict.note


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"good": {"rpc": STATS}}, "spec.recovery", "give good.metricSource.spec.latency_le_ms"),
    ({"total": {"rpc": STATS, "codes": ["OK"]}}, "total.metricSource.spec.codes", "put codes on good"),
    ({"recovery": {"after": "later", "within_s": 3}}, "spec.recovery.after", "fault:"),
    ({"recovery": {"after": 5, "within_s": -1}}, "spec.recovery.within_s", "greater than or equal to 0"),
    ({"recovery": {"after": 5, "within_s": 3, "windows": 2}}, "spec.recovery.windows", ""),
])
def test_malformed_recovery_slos_name_the_field(tmp_path: Path, change, field, message):
    path, _ = write_documents(tmp_path, recovery_document(**change))
    with pytest.raises(ConfigError) as caught:
        load_slos(path, rpcs=[STATS])
    text = str(caught.value)
    assert field in text and message in text


def test_after_spike_resolves_to_the_end_of_the_profiles_spike():
    spike = SimpleNamespace(process="spike", at_s=12, duration_s=3)
    recovery, problem = resolve(Recovery("spike", 5, 5), spike, warmup_s=2, duration_s=33)
    assert problem is None and recovery.event_end(2) == 15
    _, problem = resolve(Recovery("spike", 5, 5), SimpleNamespace(process="poisson"), warmup_s=2, duration_s=33)
    assert "needs the profile's arrival process to be spike (it is poisson)" in problem
    _, problem = resolve(Recovery("spike", 5, 5), spike, warmup_s=2, duration_s=20)
    assert "a verdict needs 10 s after it" in problem


def test_after_a_fault_resolves_to_the_end_of_that_fault():
    faults = [SimpleNamespace(name="abort:idgen/LeaseIds", at_s=10, for_s=5), SimpleNamespace(name="kill:idgen", at_s=20, for_s=None)]
    recovery, problem = resolve(Recovery("fault:abort:idgen/LeaseIds", 5, 3), SimpleNamespace(process="poisson"),
                                warmup_s=2, duration_s=30, faults=faults)
    assert problem is None and recovery.event_end(2) == 17 and recovery.describe_event() == "fault abort:idgen/LeaseIds"
    _, problem = resolve(Recovery("fault:nope", 5, 3), None, warmup_s=2, duration_s=30, faults=faults)
    assert "no fault named 'nope' in the profile's faults (its faults: abort:idgen/LeaseIds, kill:idgen)" in problem
    _, problem = resolve(Recovery("fault:kill:idgen", 5, 3), None, warmup_s=2, duration_s=30, faults=faults)
    assert "lasts until the measured window ends" in problem


def test_shipped_retry_storm_profiles_load_with_their_recovery_slo():
    for name in ("url-shortener-retry-storm", "url-shortener-retry-storm-guarded"):
        profile = load_profile(name)
        (slo,) = profile.slos
        assert slo.recovery is not None and slo.recovery.event_end(profile.warmup_s) == 15
    storm, guarded = load_profile("url-shortener-retry-storm"), load_profile("url-shortener-retry-storm-guarded")
    assert storm.harness_retry.retry_budget is None and guarded.harness_retry.retry_budget is not None
    assert storm.topology.calls.for_target("analytics").retry_budget is None
    assert guarded.topology.calls.for_target("analytics").retry_budget is not None
    assert (storm.harness_retry.max_attempts, storm.arrival) == (guarded.harness_retry.max_attempts, guarded.arrival)
