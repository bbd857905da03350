"""``casemesh export k6``: profiles as k6 scripts, checked by k6 itself and run against the URL-shortener mesh."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.export.k6 import MEASURED, _time_unit, k6_script, scenarios, translate_slos
from casemesh.harness.profile import load_profile, with_overrides

from .support import PROTOS, ROOT, run

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
SHIPPED_SLOS = ROOT / "harness" / "profiles" / "url-shortener.slo.yaml"


def _export(*args: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "casemesh.harness.cli", "export", "k6", *args], timeout=60)


def _slo(name: str, good: dict, total: dict, target: float) -> str:
    def side(spec: dict) -> str:
        return f"          metricSource:\n            type: casemesh\n            spec: {json.dumps(spec)}\n"

    return (f"apiVersion: openslo/v1\nkind: SLO\nmetadata:\n  name: {name}\nspec:\n  service: url-shortener\n"
            f"  budgetingMethod: Occurrences\n  indicator:\n    metadata:\n      name: {name}-sli\n    spec:\n"
            f"      ratioMetric:\n        counter: true\n        good:\n{side(good)}        total:\n{side(total)}"
            f"  objectives:\n    - target: {target}\n")


@pytest.fixture
def every_journey(tmp_path: Path) -> Path:
    """A URL-shortener profile with all five journeys, a constant rate and SLOs of every kind the export meets."""
    slos = "---\n".join([
        _slo("journey-latency", {"journey": "shorten_then_resolve", "latency_le_ms": 50}, {"journey": "shorten_then_resolve"}, 0.95),
        _slo("resolve-answers", {"rpc": RESOLVE, "codes": ["OK", "NOT_FOUND"]}, {"rpc": RESOLVE}, 0.995),
        _slo("ok-resolve-latency", {"rpc": RESOLVE, "latency_le_ms": 5}, {"rpc": RESOLVE, "codes": ["OK"]}, 0.9),
        _slo("journey-answers", {"journey": "shorten", "codes": ["OK"]}, {"journey": "shorten"}, 0.99),
        _slo("all-latency", {"latency_le_ms": 100}, {}, 0.999),
    ])
    (tmp_path / "extra.slo.yaml").write_text(slos)
    profile = tmp_path / "every-journey.yaml"
    profile.write_text(
        "apiVersion: casemesh.dev/v1\nkind: Profile\nmetadata: {name: every-journey}\nworkload: url-shortener\n"
        "services: [urlshortener, idgen, analytics]\nseed: {urls: 100, concurrency: 4}\n"
        "arrival: {process: constant, rate_per_s: 0.5}\nduration_s: 20\nrequest_timeout_ms: 250\njourneys:\n"
        "  - {name: resolve, weight: 5, params: {zipf_exponent: 1.2}}\n  - {name: resolve_miss, weight: 1}\n"
        "  - {name: shorten, weight: 1, params: {ttl_seconds: 60, url_bytes: 100}}\n  - {name: get_stats, weight: 1}\n"
        "  - {name: shorten_then_resolve, weight: 1}\n"
        f"slos: [extra.slo.yaml, {SHIPPED_SLOS}]\n"
    )
    return profile


def test_slos_become_thresholds_on_the_measured_scenario(every_journey):
    translation = translate_slos(load_profile(every_journey).slos)
    thresholds = {key: expressions for key, (expressions, _) in translation.thresholds.items()}
    assert thresholds == {
        f"casemesh_journey_duration{{journey:shorten_then_resolve,scenario:{MEASURED}}}": ["p(95)<=50"],
        f"casemesh_slo_resolve_answers{{scenario:{MEASURED}}}": ["rate>=0.995"],
        f"grpc_req_duration{{scenario:{MEASURED}}}": ["p(99.9)<=100"],
        # The shipped SLOs: two latency ratios on one RPC each, and availability over every call.
        f"grpc_req_duration{{rpc:{RESOLVE},scenario:{MEASURED}}}": ["p(99)<=10"],
        f"grpc_req_duration{{rpc:{SHORTEN},scenario:{MEASURED}}}": ["p(99)<=25"],
        f"casemesh_slo_availability{{scenario:{MEASURED}}}": ["rate>=0.999"],
    }
    assert translation.rates == [
        {"metric": "casemesh_slo_resolve_answers", "rpc": RESOLVE, "totalCodes": None, "goodCodes": ["OK", "NOT_FOUND"]},
        {"metric": "casemesh_slo_availability", "rpc": None, "totalCodes": None, "goodCodes": ["OK", "NOT_FOUND", "INVALID_ARGUMENT", "ALREADY_EXISTS"]},
    ]
    # What k6 cannot express is said, SLO by SLO: status-filtered latency, journey statuses, and PromQL sources.
    untranslated = "\n".join(translation.untranslated)
    assert "ok-resolve-latency" in untranslated and "journey-answers" in untranslated
    assert all(name in untranslated for name in ("resolve-latency-server", "shorten-latency-server", "availability-server"))


def test_rates_become_whole_numbers_per_time_unit():
    assert _time_unit([800]) == 1
    assert _time_unit([0.5]) == 10
    assert _time_unit([80.25, 3]) == 100
    assert _time_unit([1 / 3]) == 1000  # rounded to 0.001/s


def test_poisson_becomes_constant_arrival_rate_at_the_mean_rate_with_a_warmup_scenario():
    profile = with_overrides(load_profile("url-shortener"), duration_s=30, warmup_s=5, rate_scale=0.5)
    assert profile.arrival.process == "poisson"
    shaped = scenarios(profile)
    assert list(shaped) == ["warmup", MEASURED]
    for name, duration in (("warmup", "5s"), (MEASURED, "30s")):
        assert shaped[name]["executor"] == "constant-arrival-rate"
        assert (shaped[name]["rate"], shaped[name]["timeUnit"], shaped[name]["duration"]) == (400, "1s", duration)
    assert shaped[MEASURED]["startTime"] == "5s" and "startTime" not in shaped["warmup"]
    # All VUs started up front: one per journey in flight when every call at 400/s takes the whole 1 s timeout.
    assert (shaped[MEASURED]["preAllocatedVUs"], shaped[MEASURED]["maxVUs"]) == (400, 400)
    header = k6_script(profile, targets={"urlshortener": "127.0.0.1:50051"}, protos_dir=PROTOS).split("import grpc")[0]
    assert "k6 has no Poisson executor" in header


def _shaped(tmp_path: Path, arrival: str, warmup_s: float, duration_s: float):
    path = tmp_path / "shaped.yaml"
    path.write_text(f"apiVersion: casemesh.dev/v1\nkind: Profile\nmetadata: {{name: shaped}}\nworkload: url-shortener\n"
                    f"arrival: {arrival}\nwarmup_s: {warmup_s}\nduration_s: {duration_s}\njourneys: [{{name: resolve, weight: 1}}]\n")
    return load_profile(path)


def test_steps_and_spikes_become_ramping_arrival_rate_stages_split_at_the_warmup(tmp_path):
    steps = _shaped(tmp_path, "{process: steps, steps: [{rate_per_s: 10, duration_s: 2}, {rate_per_s: 40.5, duration_s: 1}]}", 1, 4)
    shaped = scenarios(steps)
    assert shaped["warmup"]["executor"] == shaped[MEASURED]["executor"] == "ramping-arrival-rate"
    assert shaped["warmup"]["timeUnit"] == "10s"  # 40.5/s is 405 per 10 s
    assert (shaped["warmup"]["startRate"], shaped["warmup"]["stages"]) == (100, [{"target": 100, "duration": "1s"}])
    # t = 1..2 s at 10/s, a jump to 40.5/s for 1 s, then the last rate holds to the end of the run (t = 5 s).
    assert (shaped[MEASURED]["startRate"], shaped[MEASURED]["stages"]) == (100, [
        {"target": 100, "duration": "1s"}, {"target": 405, "duration": "0s"}, {"target": 405, "duration": "1s"},
        {"target": 405, "duration": "2s"},
    ])
    ramp = _shaped(tmp_path, "{process: ramp, start_rate_per_s: 0, end_rate_per_s: 100}", 0, 10)
    assert list(scenarios(ramp)) == [MEASURED]
    assert (scenarios(ramp)[MEASURED]["startRate"], scenarios(ramp)[MEASURED]["stages"]) == (0, [{"target": 100, "duration": "10s"}])


def test_diurnal_is_followed_by_straight_pieces(tmp_path):
    diurnal = _shaped(tmp_path, "{process: diurnal, mean_rate_per_s: 50, amplitude_per_s: 50, period_s: 48}", 0, 48)
    measured = scenarios(diurnal)[MEASURED]
    stages = measured["stages"]
    # One piece per 30 minutes of the compressed day (period / 48), rates to 0.001/s (per 1000 s).
    assert len(stages) == 48 and all(s["duration"] == "1s" for s in stages)
    assert measured["timeUnit"] == "1000s" and measured["startRate"] == 50_000
    assert max(s["target"] for s in stages) == 100_000 and min(s["target"] for s in stages) == 0


def test_processes_k6_cannot_run_are_refused_clearly(every_journey):
    profile = load_profile(every_journey)
    trace = dataclasses.replace(profile, arrival=_TraceArrival())
    with pytest.raises(ConfigError) as error:
        scenarios(trace)
    assert error.value.field == "arrival.process"
    assert "'trace' cannot be exported to k6" in error.value.message and "constant, poisson, ramp" in error.value.message


@dataclasses.dataclass
class _TraceArrival:
    """Stands in for a ``trace`` arrival (which needs a CSV file); the export refuses it by its process alone."""

    process: str = "trace"


def test_workload_without_a_template_is_refused(every_journey):
    profile = load_profile(every_journey)
    other = dataclasses.replace(profile, workload=dataclasses.replace(profile.workload, name="no-such-workload"))
    with pytest.raises(ConfigError, match="no k6 journey template"):
        k6_script(other, targets={"urlshortener": "127.0.0.1:1"}, protos_dir=PROTOS)


def test_cli_errors_exit_2_before_writing_anything(tmp_path):
    out = tmp_path / "script.js"
    unknown = _export("no-such-profile", "--out", str(out))
    assert unknown.returncode == 2 and "unknown profile 'no-such-profile'" in unknown.stderr
    no_protos = _export("url-shortener", "--out", str(out), "--protos", str(tmp_path))
    assert no_protos.returncode == 2 and "--protos" in no_protos.stderr
    bad_target = _export("url-shortener", "--out", str(out), "--target", "nowhere=127.0.0.1:1")
    assert bad_target.returncode == 2 and "--target" in bad_target.stderr
    assert not out.exists()


@pytest.mark.parametrize("profile_kind", ["every-journey", "echo"])
def test_k6_accepts_the_exported_script(profile_kind, every_journey, k6, tmp_path):
    """``k6 inspect`` runs the script's init code: imports, the protos, every journey's template, options."""
    if profile_kind == "echo":
        profile = tmp_path / "echo.yaml"
        profile.write_text("apiVersion: casemesh.dev/v1\nkind: Profile\nmetadata: {name: echo}\nworkload: echo\n"
                           "arrival: {process: constant, rate_per_s: 100}\nduration_s: 5\n"
                           "journeys: [{name: echo, weight: 1, params: {payload_bytes: 16}}]\n")
    else:
        profile = every_journey
    script = tmp_path / "script.js"
    exported = _export(str(profile), "--out", str(script), "--target", "127.0.0.1:50999")
    assert exported.returncode == 0, exported.stderr
    inspected = run([k6, "inspect", str(script)], timeout=60)
    assert inspected.returncode == 0, inspected.stdout + inspected.stderr
    options = json.loads(inspected.stdout)
    assert options["scenarios"][MEASURED]["executor"] == "constant-arrival-rate"
    assert "dropped_iterations" in options["thresholds"]
    assert "127.0.0.1:50999" in script.read_text()


def _latency_thresholds_only_crossed(metrics: dict) -> bool:
    """Whether every crossed threshold is a latency percentile (grpc_req_duration p(N)<=X)."""
    crossed = [(name, expression) for name, metric in metrics.items() for expression, failed in metric.get("thresholds", {}).items() if failed]
    return bool(crossed) and all(name.startswith("grpc_req_duration") and expression.startswith("p(") for name, expression in crossed)


def test_exported_url_shortener_profile_runs_under_k6(k6, url_shortener, tmp_path):
    """The shipped profile, shortened and slowed down, as a k6 script: seeds, drives, and carries the profile's SLOs as thresholds.

    The latency thresholds are the profile's SLOs (Resolve p99 within 10 ms), a verdict on this machine, not on the
    export: on a shared or slow 2-core machine (fresh-clone CI saw a 22 ms p99 of zero-work calls) a p99 can miss.
    When latency alone was missed, the run is repeated once; if it misses again, k6's exit 99 is accepted as long as
    only latency percentiles were crossed. Every other threshold (availability, no dropped iteration) must hold.
    """
    script, summary = tmp_path / "url-shortener.js", tmp_path / "summary.json"
    exported = _export("url-shortener", "--out", str(script), "--duration", "5", "--warmup", "1", "--rate-scale", "0.1",
                       "--target", url_shortener)
    assert exported.returncode == 0, exported.stderr
    command = [k6, "run", "--quiet", "--no-color", "--no-usage-report", "--summary-export", str(summary),
               "--summary-trend-stats", "avg,p(99),max", str(script)]
    ran = run(command, timeout=120)
    if ran.returncode == 99 and _latency_thresholds_only_crossed(json.loads(summary.read_text())["metrics"]):
        ran = run(command, timeout=120)
    report = json.loads(summary.read_text())
    metrics = report["metrics"]
    latency_missed = ran.returncode == 99 and _latency_thresholds_only_crossed(metrics)
    assert ran.returncode == 0 or latency_missed, ran.stdout + ran.stderr

    # 80/s (800/s × 0.1) for 1 s of warm-up and 5 s measured, evenly spaced.
    assert 470 <= metrics["iterations"]["count"] <= 482
    assert metrics["dropped_iterations"]["count"] == 0
    # setup() seeded the profile's 2,000 codes, in Zipf rank order.
    assert len(report["setup_data"]["codes"]) == 2000
    # The thresholds are the profile's SLOs; without a latency miss on this machine every one held (False: not crossed).
    assert set(metrics[f"grpc_req_duration{{rpc:{RESOLVE},scenario:{MEASURED}}}"]["thresholds"]) == {"p(99)<=10"}
    assert set(metrics[f"grpc_req_duration{{rpc:{SHORTEN},scenario:{MEASURED}}}"]["thresholds"]) == {"p(99)<=25"}
    if not latency_missed:
        assert metrics[f"grpc_req_duration{{rpc:{RESOLVE},scenario:{MEASURED}}}"]["thresholds"] == {"p(99)<=10": False}
        assert metrics[f"grpc_req_duration{{rpc:{SHORTEN},scenario:{MEASURED}}}"]["thresholds"] == {"p(99)<=25": False}
    availability = metrics[f"casemesh_slo_availability{{scenario:{MEASURED}}}"]
    assert availability["thresholds"] == {"rate>=0.999": False} and availability["value"] == 1
    # The journeys ran with their expected answers: redirects OK, misses NOT_FOUND.
    checks = report["root_group"]["checks"]
    assert checks["Resolve status OK"]["passes"] > 350 and checks["Resolve status OK"]["fails"] == 0
    assert checks["Resolve status OK or NOT_FOUND"]["fails"] == 0
    assert metrics["checks"]["fails"] == 0
