"""Profiles: the shipped one loads with the right figures; broken ones fail naming file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.profile import PROFILES_DIR, PoissonArrival, load_profile, shipped_profiles, with_overrides
from casemesh.harness.workloads.url_shortener import WORKLOAD, ResolveParams, SeedParams, ShortenParams
from casemesh.services.catalog import SERVICES

SHIPPED = PROFILES_DIR / "url-shortener.yaml"
SHIPPED_SLOS = PROFILES_DIR / "url-shortener.slo.yaml"


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing ``needle``."""
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} found on lines {lines}"
    return lines[0]


@pytest.fixture
def write(tmp_path: Path):
    """Write the shipped profile (and its SLO file) to ``tmp_path`` with ``old -> new`` replacements; returns path and text."""

    def _write(*replacements: tuple[str, str], slo_replacements: tuple[tuple[str, str], ...] = ()) -> tuple[Path, str]:
        text = SHIPPED.read_text()
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new, 1)
        slo_text = SHIPPED_SLOS.read_text()
        for old, new in slo_replacements:
            assert old in slo_text, old
            slo_text = slo_text.replace(old, new, 1)
        (tmp_path / SHIPPED_SLOS.name).write_text(slo_text)
        path = tmp_path / "profile.yaml"
        path.write_text(text)
        return path, text

    return _write


def config_error(path: Path | str) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    return caught.value


def test_shipped_profile_loads_with_its_figures():
    profile = load_profile("url-shortener")
    assert profile.path == SHIPPED
    assert profile.name == "url-shortener"
    assert profile.workload is WORKLOAD
    assert profile.services == ("urlshortener", "idgen", "analytics")
    assert profile.seed == SeedParams(urls=2000)
    assert profile.arrival == PoissonArrival(process="poisson", rate_per_s=800)
    assert (profile.warmup_s, profile.duration_s, profile.request_timeout_ms) == (5, 60, 1000)
    weights = {j.name: j.weight for j in profile.journeys}
    assert (weights["resolve"] + weights["resolve_miss"]) / weights["shorten"] == 100
    assert weights["get_stats"] == 1
    assert all(j.journey is WORKLOAD.journeys[j.name] for j in profile.journeys)
    by_name = {j.name: j for j in profile.journeys}
    assert by_name["resolve"].params == ResolveParams(zipf_exponent=1.0)
    assert by_name["shorten"].params == ShortenParams()
    assert [s.name for s in profile.slos] == ["resolve-latency", "shorten-latency", "availability",
                                              "resolve-latency-server", "shorten-latency-server", "availability-server"]
    assert profile.slos[0].good.latency_le_ms == 10


def test_shipped_names_and_path_forms(write):
    names = shipped_profiles()
    assert names == sorted(names) and {"url-shortener", "url-shortener-trace"} <= set(names)
    path, _ = write()
    assert load_profile(path).name == load_profile(str(path)).name == "url-shortener"


def test_unknown_profile_name_lists_shipped_ones():
    error = config_error("url-shortner")
    assert error.file is None
    assert "unknown profile 'url-shortner'" in error.message and "url-shortener" in error.message.split("shipped:")[1]


def test_missing_profile_file(tmp_path: Path):
    error = config_error(tmp_path / "nope.yaml")
    assert (error.file, error.message) == (str(tmp_path / "nope.yaml"), "file not found")


def test_negative_rate(write):
    path, text = write(("rate_per_s: 800", "rate_per_s: -5"))
    error = config_error(path)
    assert (error.file, error.line, error.field) == (str(path), line_of(text, "rate_per_s"), "arrival.rate_per_s")
    assert error.message == "Input should be greater than 0"
    assert str(error) == f"{path}:{error.line}: arrival.rate_per_s: Input should be greater than 0"


def test_rate_above_limit(write):
    path, _ = write(("rate_per_s: 800", "rate_per_s: 200000"))
    assert config_error(path).message == "Input should be less than or equal to 100000"


def test_typo_at_top_level_is_reported_before_the_missing_key(write):
    path, text = write(("duration_s: 60", "duraton_s: 60"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "duraton_s"), "duraton_s")
    assert error.message == "unknown field 'duraton_s' (did you mean 'duration_s'?)"
    assert [(e.field, e.message) for e in error.more] == [("duration_s", "Field required")]


def test_typo_inside_arrival(write):
    path, text = write(("  rate_per_s: 800", "  rate_per_s: 800\n  burst: 3"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "burst"), "arrival.burst")
    assert error.message == "unknown field 'burst'; known fields: rate_per_s, process"


def test_missing_key_points_at_its_parent(write):
    path, text = write(("  rate_per_s: 800\n", ""))
    error = config_error(path)
    assert (error.line, error.field, error.message) == (line_of(text, "arrival:"), "arrival.rate_per_s", "Field required")


def test_unknown_arrival_process(write):
    path, text = write(("process: poisson", "process: burst"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "process:"), "arrival.process")
    assert error.message == "unknown arrival process 'burst'; known: constant, poisson, ramp, steps, spike, diurnal, rate_curve, trace"


def test_unknown_journey_name(write):
    path, text = write(("- name: resolve_miss", "- name: resolve_mis"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "name: resolve_mis"), "journeys[1].name")
    assert "unknown journey 'resolve_mis'" in error.message and "resolve_miss" in error.message


def test_duplicate_journey(write):
    path, text = write(("- name: get_stats", "- name: shorten"))
    error = config_error(path)
    assert (error.field, error.message) == ("journeys[3].name", "duplicate journey 'shorten' (also journeys[2])")


def test_bad_journey_params(write):
    path, text = write(("params: {zipf_exponent: 1.0}\n  - name: resolve_miss", "params: {zipf_exponent: 0}\n  - name: resolve_miss"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "zipf_exponent: 0}"), "journeys[0].params.zipf_exponent")
    assert error.message == "Input should be greater than 0"


def test_unknown_journey_param(write):
    path, text = write(("  - name: shorten\n    weight: 1", "  - name: shorten\n    weight: 1\n    params:\n      ttl: 5"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "ttl: 5"), "journeys[2].params.ttl")
    assert error.message.startswith("unknown field 'ttl'")


def test_zero_weight(write):
    path, text = write(("weight: 98", "weight: 0"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "weight: 0"), "journeys[0].weight")


def test_bad_seed(write):
    path, text = write(("urls: 2000", "urls: 0"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "urls: 0"), "seed.urls")


def test_unknown_workload(write):
    path, text = write(("workload: url-shortener", "workload: url-shortner"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "workload: "), "workload")
    assert error.message.startswith("unknown workload 'url-shortner'; known: ")
    assert "url-shortener" in error.message


def test_services_must_be_known_and_cover_the_workload(write):
    path, text = write(("services: [urlshortener, idgen, analytics]", "services: [idgen, analytics, cache]"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "services:"), "services[2]")
    assert error.message.startswith(f"unknown service 'cache'; known: {', '.join(sorted(SERVICES))}")  # every service, sorted
    assert all(name in error.message for name in SERVICES)
    assert [(e.field, e.message) for e in error.more] == [("services", "must include urlshortener: workload url-shortener calls it")]
    path, _ = write(("services: [urlshortener, idgen, analytics]", "services: [idgen]"))
    assert config_error(path).message == "must include urlshortener: workload url-shortener calls it"


def test_known_services_can_be_replaced(write):
    path, _ = write()
    error = pytest.raises(ConfigError, load_profile, path, known_services={"urlshortener"}).value
    assert error.field == "services[1]"


def test_missing_slo_file(write):
    path, text = write(("  - url-shortener.slo.yaml", "  - missing.slo.yaml"))
    error = config_error(path)
    assert (error.file, error.line, error.field) == (str(path), line_of(text, "missing.slo.yaml"), "slos[0]")
    assert error.message == f"SLO file not found: {path.parent / 'missing.slo.yaml'}"


def test_slo_with_unknown_rpc(write):
    path, _ = write(slo_replacements=(("UrlShortenerService/Shorten\n", "UrlShortenerService/Lengthen\n"),))
    slo_path = path.parent / SHIPPED_SLOS.name
    error = config_error(path)
    assert (error.file, error.line) == (str(slo_path), line_of(slo_path.read_text(), "Lengthen"))
    assert error.field == "[1].spec.indicator.spec.ratioMetric.good.metricSource.spec.rpc"
    assert error.message.startswith("unknown RPC 'casemesh.urlshortener.v1.UrlShortenerService/Lengthen'")


def test_slo_journey_must_be_a_journey_of_the_profile(write):
    # shorten_then_resolve is a journey of the workload but not of this profile
    journey_source = "type: casemesh\n            spec:\n              journey: shorten_then_resolve\n"
    path, _ = write(slo_replacements=(("type: casemesh\n            spec: {}\n", journey_source),))
    error = config_error(path)
    assert error.field == "[2].spec.indicator.spec.ratioMetric.total.metricSource.spec.journey"
    assert error.message.startswith("journey 'shorten_then_resolve' is not in the profile")


def test_yaml_syntax_error(write):
    path, text = write(("  rate_per_s: 800", "  rate_per_s: [800"))
    error = config_error(path)
    assert error.file == str(path)
    assert error.line == line_of(text, "rate_per_s: [800") + 1  # where the parser notices the unclosed bracket: the next line
    assert error.message.startswith("invalid YAML: ")


def test_duplicate_key(write):
    path, text = write(("warmup_s: 5 ", "warmup_s: 5\nwarmup_s: 6 "))
    error = config_error(path)
    assert (error.line, error.field, error.message) == (line_of(text, "warmup_s: 6"), "warmup_s", "duplicate key")


def test_wrong_api_version_and_empty_file(write, tmp_path: Path):
    path, text = write(("apiVersion: casemesh.dev/v1", "apiVersion: casemesh.dev/v2"))
    error = config_error(path)
    assert (error.line, error.field) == (line_of(text, "apiVersion"), "apiVersion")
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing\n")
    assert config_error(empty).message == "the profile is empty"


def test_with_overrides():
    profile = load_profile("url-shortener")
    changed = with_overrides(profile, duration_s=10, warmup_s=0, rate_scale=0.5)
    assert (changed.duration_s, changed.warmup_s, changed.arrival.rate_per_s) == (10, 0, 400)
    assert changed.arrival.process == "poisson"
    assert profile.duration_s == 60 and profile.arrival.rate_per_s == 800
    assert with_overrides(profile) == profile


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"duration_s": 0}, "--duration", "Input should be greater than 0"),
        ({"duration_s": 100_000}, "--duration", "Input should be less than or equal to 86400"),
        ({"warmup_s": -1}, "--warmup", "Input should be greater than or equal to 0"),
        ({"rate_scale": 0}, "--rate-scale", "Input should be greater than 0"),
        ({"rate_scale": 1000}, "--rate-scale", "arrival.rate_per_s scaled by 1000: Input should be less than or equal to 100000"),
    ],
)
def test_invalid_overrides(overrides, field, message):
    with pytest.raises(ConfigError) as caught:
        with_overrides(load_profile("url-shortener"), **overrides)
    assert (caught.value.file, caught.value.line, caught.value.field, caught.value.message) == (None, None, field, message)


def test_profile_in_another_directory_finds_its_slos(tmp_path: Path):
    shutil.copy(SHIPPED, tmp_path / "mine.yaml")
    shutil.copy(SHIPPED_SLOS, tmp_path / SHIPPED_SLOS.name)
    assert len(load_profile(tmp_path / "mine.yaml").slos) == 6


# --- arrival processes beyond constant and poisson (docs/profiles.md, "Arrival processes") ----------------------

SHIPPED_ARRIVAL = "  process: poisson      # independent arrivals, like many users clicking\n  rate_per_s: 800\n"


def arrival(block: str) -> tuple[str, str]:
    """Replacement of the shipped profile's arrival section (warm-up 5 s + duration 60 s) by ``block``."""
    return SHIPPED_ARRIVAL, block.rstrip("\n") + "\n"


@pytest.mark.parametrize(
    ("block", "needle", "field", "message"),
    [
        ("  process: ramp\n  start_rate_per_s: 0\n  end_rate_per_s: 0", "end_rate_per_s", "arrival.end_rate_per_s",
         "start_rate_per_s and end_rate_per_s are both 0: the ramp would send nothing"),
        ("  process: ramp\n  start_rate_per_s: -1\n  end_rate_per_s: 10", "start_rate_per_s", "arrival.start_rate_per_s",
         "Input should be greater than or equal to 0"),
        ("  process: ramp\n  start_rate_per_s: 1\n  end_rate_per_s: 10\n  spacing: random", "spacing", "arrival.spacing",
         "Input should be 'poisson' or 'uniform'"),
        ("  process: steps\n  steps:\n    - {rate_per_s: 100, duration_s: 5}\n    - {rate_per_s: 200}", "rate_per_s: 200",
         "arrival.steps[1].duration_s", "Field required"),
        ("  process: steps\n  steps:\n    - {rate_per_s: 100, duration: 5}", "duration: 5", "arrival.steps[0].duration",
         "unknown field 'duration' (did you mean 'duration_s'?)"),
        ("  process: steps\n  steps:\n    - {rate_per_s: 0, duration_s: 5}", "steps:", "arrival.steps",
         "every step has rate_per_s 0: the steps would send nothing"),
        ("  process: steps\n  steps: []", "steps:", "arrival.steps", "List should have at least 1 item after validation, not 0"),
        ("  process: spike\n  baseline_rate_per_s: 100\n  at_s: 65\n  duration_s: 5\n  rate_per_s: 900", "at_s", "arrival.at_s",
         "the spike would start after the run ends at 65 s (warmup_s + duration_s)"),
        ("  process: spike\n  baseline_rate_per_s: 100\n  at_s: 10\n  duration_s: 5\n  rate_per_s: 0", "  rate_per_s", "arrival.rate_per_s",
         "Input should be greater than 0"),
        ("  process: diurnal\n  mean_rate_per_s: 100\n  amplitude_per_s: 150\n  period_s: 60", "amplitude_per_s", "arrival.amplitude_per_s",
         "must be at most mean_rate_per_s (100): the rate cannot go below 0"),
        ("  process: diurnal\n  mean_rate_per_s: 100\n  amplitude_per_s: 50\n  period_s: 60\n  phase: 1", "phase", "arrival.phase",
         "Input should be less than 1"),
        ("  process: rate_curve\n  file: curve.csv\n  interpolation: cubic", "interpolation", "arrival.interpolation",
         "Input should be 'linear' or 'step'"),
        ("  process: rate_curve\n  file: curve.csv", "file: curve", "arrival.file", "file not found: {dir}/curve.csv"),
        ("  process: trace\n  file: t.csv", "arrival:", "arrival.format", "Field required"),
        ("  process: trace\n  file: t.csv\n  format: seconds\n  speed: -2", "speed", "arrival.speed", "Input should be greater than 0"),
    ],
)
def test_arrival_errors_name_file_line_and_field(write, block: str, needle: str, field: str, message: str):
    path, text = write(arrival(block))
    error = config_error(path)
    assert (error.file, error.line, error.field, error.message) == (str(path), line_of(text, needle), field, message.format(dir=path.parent))


CURVE = "time_s,rate_per_s\n0,100\n10,400\n"
TRACE = "t,size\n" + "".join(f"{t},{t * 10}\n" for t in range(100))  # 1 arrival/s for 100 s, sizes 0..990


@pytest.mark.parametrize(
    ("block", "scaled"),
    [
        ("  process: constant\n  rate_per_s: 300", {"rate_per_s": 600}),
        ("  process: ramp\n  start_rate_per_s: 100\n  end_rate_per_s: 500", {"start_rate_per_s": 200, "end_rate_per_s": 1000}),
        ("  process: steps\n  steps:\n    - {rate_per_s: 100, duration_s: 5}\n    - {rate_per_s: 0, duration_s: 2}",
         {"steps": [{"rate_per_s": 200, "duration_s": 5}, {"rate_per_s": 0, "duration_s": 2}]}),
        ("  process: spike\n  baseline_rate_per_s: 100\n  at_s: 10\n  duration_s: 5\n  rate_per_s: 900",
         {"baseline_rate_per_s": 200, "rate_per_s": 1800, "at_s": 10, "duration_s": 5}),
        ("  process: diurnal\n  mean_rate_per_s: 300\n  amplitude_per_s: 100\n  period_s: 60\n  phase: 0.25",
         {"mean_rate_per_s": 600, "amplitude_per_s": 200, "period_s": 60, "phase": 0.25}),
        ("  process: rate_curve\n  file: curve.csv\n  scale: 1.5", {"scale": 3}),
        ("  process: trace\n  file: t.csv\n  column: t\n  format: seconds\n  speed: 10", {"speed": 20}),
    ],
)
def test_rate_scale_of_every_process(write, block: str, scaled: dict):
    path, _ = write(arrival(block))
    (path.parent / "curve.csv").write_text(CURVE)
    (path.parent / "t.csv").write_text(TRACE)
    profile = load_profile(path)
    doubled = with_overrides(profile, rate_scale=2).arrival
    assert type(doubled) is type(profile.arrival)
    assert {k: v for k, v in doubled.model_dump().items() if k in scaled} == scaled
    # The mean offered rate over the measured window doubles too; a trace's file data carries over.
    run_s = profile.warmup_s + profile.duration_s
    if profile.arrival.process != "trace":
        mean = profile.arrival.offered_rate_per_s(run_s, profile.warmup_s, run_s)
        assert doubled.offered_rate_per_s(run_s, profile.warmup_s, run_s) == pytest.approx(2 * mean)
    else:
        assert doubled.trace is profile.arrival.trace
        assert doubled.offered_rate_per_s(run_s, 0, 5) == 2 * profile.arrival.offered_rate_per_s(run_s, 0, 5) == 20


@pytest.mark.parametrize(
    ("block", "factor", "message"),
    [
        ("  process: diurnal\n  mean_rate_per_s: 500\n  amplitude_per_s: 300\n  period_s: 60", 150,
         "arrival.amplitude_per_s scaled by 150: the peak rate mean_rate_per_s + amplitude_per_s = 120000 must be at most 100000"),
        ("  process: steps\n  steps:\n    - {rate_per_s: 10, duration_s: 5}\n    - {rate_per_s: 2000, duration_s: 5}", 100,
         "arrival.steps[1].rate_per_s scaled by 100: Input should be less than or equal to 100000"),
        ("  process: rate_curve\n  file: curve.csv", 300,
         "arrival.scale scaled by 300: the curve's peak rate 400/s ({dir}/curve.csv:3) times scale 300 must be at most 100000/s"),
    ],
)
def test_rate_scale_beyond_the_limit(write, block: str, factor: float, message: str):
    path, _ = write(arrival(block))
    (path.parent / "curve.csv").write_text(CURVE)
    with pytest.raises(ConfigError) as caught:
        with_overrides(load_profile(path), rate_scale=factor)
    assert (caught.value.file, caught.value.field, caught.value.message) == (None, "--rate-scale", message.format(dir=path.parent))


def test_shipped_trace_profile_loads():
    profile = load_profile("url-shortener-trace")
    assert profile.arrival.process == "trace" and profile.arrival.file == "../traces/azure-llm-inference-2023-conv.csv"
    assert (profile.warmup_s, profile.duration_s) == (5, 30)
    assert {j.name: j.weight for j in profile.journeys} == {j.name: j.weight for j in load_profile("url-shortener").journeys}



# -- what `casemesh validate` prints ---------------------------------------------------------------


def validate_command(path: Path):
    from typer.testing import CliRunner

    from casemesh.harness.cli import app

    return CliRunner().invoke(app, ["validate", str(path)])


def test_validate_lists_every_problem_with_file_line_and_field(write):
    path, text = write(("duration_s: 60", "duraton_s: 60"), ("name: url-shortener", "name: URL_Shortener"))
    done = validate_command(path)
    assert done.exit_code == 2
    assert done.stderr.splitlines() == [  # the missing key last: it is what the misspelt one causes
        f"config error: {path}:{line_of(text, 'name: URL_')}: metadata.name: String should match pattern '^[a-z0-9-]+$'",
        f"config error: {path}:{line_of(text, 'duraton_s')}: duraton_s: unknown field 'duraton_s' (did you mean 'duration_s'?)",
        f"config error: {path}:{line_of(text, 'apiVersion')}: duration_s: Field required",  # the mapping that lacks it
    ]


def test_markup_in_a_csv_cell_and_a_path_is_printed_as_written(write, tmp_path: Path):
    path, _ = write(arrival("  process: trace\n  file: t.csv\n  format: seconds"))
    (path.parent / "t.csv").write_text("t\n0\n[/]oops[bold]\n")
    done = validate_command(path)
    assert done.exit_code == 2 and isinstance(done.exception, SystemExit)
    assert done.stderr.strip() == f"config error: {path.parent / 't.csv'}:3: t: expected a finite number, found '[/]oops[bold]'"
    folder = tmp_path / "a[" / "]b[red]"
    folder.mkdir(parents=True)
    (folder / "p.yaml").write_text("kind: [")
    done = validate_command(folder / "p.yaml")
    assert done.exit_code == 2 and f"config error: {folder / 'p.yaml'}:1: invalid YAML" in done.stderr
