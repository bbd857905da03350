"""Faults from the profile (``faults:``) and the command line (``--fault``): what they mean, and errors that name the bad part."""

from __future__ import annotations

from pathlib import Path

import pytest

from casemesh.harness.errors import ConfigError
from casemesh.harness.faults.grammar import FaultSyntaxError, parse_delay, parse_fault
from casemesh.harness.faults.plan import fault_from_cli, plan_faults
from casemesh.harness.profile import PROFILES_DIR, load_profile, with_overrides

SERVICES = ("urlshortener", "idgen", "analytics")
LEASE_IDS = "casemesh.idgen.v1.IdGeneratorService/LeaseIds"


def test_the_issue_s_examples_parse_to_what_they_say():
    abort = fault_from_cli("idgen/LeaseIds:abort=UNAVAILABLE@20%,at=10s,for=5s", SERVICES)
    assert (abort.kind, abort.service, abort.method, abort.code, abort.percent) == ("abort", "idgen", "LeaseIds", "UNAVAILABLE", 20)
    assert (abort.at_s, abort.for_s, abort.grpc_methods, abort.name) == (10, 5, (LEASE_IDS,), "abort:idgen/LeaseIds")
    kill = fault_from_cli("idgen:kill,at=10s,restart_after=5s", SERVICES)
    assert (kill.kind, kill.signal, kill.at_s, kill.for_s, kill.method) == ("kill", "SIGKILL", 10, 5, None)
    pause = fault_from_cli("idgen:pause,at=10s,for=3s", SERVICES)
    assert (pause.kind, pause.at_s, pause.for_s) == ("pause", 10, 3)
    delay = fault_from_cli("urlshortener/Resolve:delay=50ms,at=500ms,for=1.5m,name=slow-resolve", SERVICES)
    assert (delay.name, delay.percent, delay.at_s, delay.for_s) == ("slow-resolve", 100, 0.5, 90)
    assert delay.delay.to_dict() == {"distribution": "fixed", "ms": 50}
    whole = fault_from_cli("analytics:kill=sigterm", SERVICES)
    assert (whole.signal, whole.at_s, whole.for_s) == ("SIGTERM", 0, None)  # down until the run ends


@pytest.mark.parametrize(("text", "expected"), [
    ("uniform(10ms,100ms)", {"distribution": "uniform", "min_ms": 10, "max_ms": 100}),
    ("exponential(0.05s)", {"distribution": "exponential", "mean_ms": 50}),
    ("lognormal(50ms, 0.5)", {"distribution": "lognormal", "median_ms": 50, "sigma": 0.5}),
])
def test_delay_distributions(text, expected):
    assert parse_delay(text).to_dict() == expected
    fault = fault_from_cli(f"urlshortener/Resolve:delay={text}@10%,for=1s", SERVICES)  # its comma stays in the delay
    assert fault.delay.to_dict() == expected and fault.percent == 10 and fault.for_s == 1


@pytest.mark.parametrize(("spec", "names"), [
    ("idgen", "TARGET:ACTION"),
    ("idgen:explode", "action: 'explode'"),
    ("idgen:abort", "abort needs a value"),
    ("idgen/LeaseIds:abort=NOPE", "abort: 'NOPE' is not a gRPC status code"),
    ("idgen/LeaseIds:abort=OK", "abort: 'OK' is not a gRPC status code"),
    ("idgen/LeaseIds:abort=UNAVAILABLE@150%", "@PERCENT%: Input should be less than or equal to 100"),
    ("idgen/LeaseIds:abort=UNAVAILABLE@20", "written @PERCENT%"),
    ("idgen/LeaseIds:abort=UNAVAILABLE,at=10", "at: '10' is not a duration"),
    ("idgen/LeaseIds:abort=UNAVAILABLE,when=10s", "option 'when=10s'"),
    ("idgen/LeaseIds:abort=UNAVAILABLE,at=1s,at=2s", "option at given twice"),
    ("idgen/LeaseIds:delay=gaussian(5ms)", "unknown distribution 'gaussian'"),
    ("idgen/LeaseIds:delay=uniform(50ms,10ms)", "max_ms: must be at least min_ms"),
    ("idgen/LeaseIds:delay=uniform(50ms", "unbalanced '('"),
    ("idgen/LeaseId:abort=UNAVAILABLE", "target: idgen has no method 'LeaseId'; its methods: LeaseIds"),
    ("video-edge:pause", "target: 'video-edge' is not a service this run starts"),
    ("idgen/LeaseIds:kill", "target: a kill fault acts on a whole process"),
    ("idgen:kill=SIGHUP", "kill: Input should be 'SIGKILL' or 'SIGTERM'"),
    ("idgen:kill,for=3s", "for: does not apply to a kill fault"),
    ("idgen:pause,restart_after=3s", "restart_after: does not apply to a pause fault"),
    ("idgen:pause=3s", "pause takes no value"),
])
def test_bad_fault_specs_are_config_errors_naming_the_part(spec, names):
    with pytest.raises(ConfigError) as caught:
        fault_from_cli(spec, SERVICES)
    assert caught.value.field == "--fault"
    assert repr(spec) in str(caught.value) and names in str(caught.value)


def test_syntax_errors_are_value_errors_of_their_own():
    with pytest.raises(FaultSyntaxError, match="for: '5' is not a duration"):
        parse_fault("idgen:pause,for=5")


def write_profile(tmp_path: Path, faults: str, duration_s: int = 60) -> tuple[Path, str]:
    text = (PROFILES_DIR / "url-shortener.yaml").read_text().replace("duration_s: 60", f"duration_s: {duration_s}") + faults
    (tmp_path / "url-shortener.slo.yaml").write_text((PROFILES_DIR / "url-shortener.slo.yaml").read_text())
    path = tmp_path / "profile.yaml"
    path.write_text(text)
    return path, text


def line_of(text: str, needle: str) -> int:
    [line] = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    return line


PROFILE_FAULTS = """faults:
  - {kind: abort, target: idgen/LeaseIds, code: unavailable, percent: 20, at_s: 10, for_s: 5}
  - kind: delay
    name: slow-resolves
    target: urlshortener
    delay: exponential(50ms)
    at_s: 20
  - {kind: kill, target: idgen, signal: SIGTERM, at_s: 30, restart_after_s: 5}
  - {kind: pause, target: analytics, at_s: 40, for_s: 3}
"""


def test_profile_faults_load_resolved(tmp_path):
    path, _ = write_profile(tmp_path, PROFILE_FAULTS)
    abort, delay, kill, pause = load_profile(path).faults
    assert (abort.code, abort.percent, abort.at_s, abort.end_s(60), abort.grpc_methods) == ("UNAVAILABLE", 20, 10, 15, (LEASE_IDS,))
    assert abort.field == "faults[0]" and abort.file == str(path) and abort.line == line_of(path.read_text(), "kind: abort")
    assert (delay.name, delay.method, delay.grpc_methods) == ("slow-resolves", None, ("casemesh.urlshortener.v1.UrlShortenerService/*",))
    assert delay.end_s(60) == 60  # no for_s: to the end of the measured window
    assert (kill.signal, kill.for_s, pause.for_s) == ("SIGTERM", 5, 3)


@pytest.mark.parametrize(("faults", "field", "needle", "message"), [
    ("  - {kind: abort, target: idgen/LeaseIds, code: NOPE}\n", "faults[0].code", "code: NOPE", "is not a gRPC status code"),
    ("  - {kind: explode, target: idgen}\n", "faults[0].kind", "kind: explode", "unknown fault kind 'explode'; known: abort, delay, kill, pause"),
    ("  - {target: idgen}\n", "faults[0].kind", "target: idgen", "Field required (one of: abort, delay, kill, pause)"),
    ("  - {kind: pause, target: idgen, for: 3}\n", "faults[0].for", "for: 3", "unknown field 'for' (did you mean 'for_s'?)"),
    ("  - {kind: delay, target: idgen, delay: 50}\n", "faults[0].delay", "delay: 50", "a unit is needed"),
    ("  - {kind: abort, target: idgen/LeaseIds, code: ABORTED, percent: 0}\n", "faults[0].percent", "percent: 0", "greater than 0"),
    ("  - {kind: pause, target: idgen, at_s: -1}\n", "faults[0].at_s", "at_s: -1", "greater than or equal to 0"),
    ("  - {kind: pause, target: nope}\n", "faults[0].target", "target: nope", "'nope' is not a service this run starts"),
    ("  - {kind: abort, target: idgen/Nope, code: ABORTED}\n", "faults[0].target", "target: idgen/Nope", "idgen has no method 'Nope'"),
    ("  - {kind: pause, target: idgen, at_s: 70}\n", "faults[0].at_s", "at_s: 70", "not inside the measured window of 60 s"),
    ("  - {kind: pause, target: idgen, at_s: 50, for_s: 20}\n", "faults[0].for_s", "for_s: 20", "ends at 70 s (at_s + for_s)"),
    ("  - {kind: kill, target: idgen, at_s: 10, restart_after_s: 10}\n  - {kind: pause, target: idgen, at_s: 15}\n",
     "faults[1].at_s", "kind: pause", "overlaps kill:idgen (10-20 s): one process fault on idgen at a time"),
    ("  - {kind: pause, target: idgen, at_s: 1, for_s: 1}\n  - {kind: pause, target: idgen, at_s: 5, for_s: 1}\n",
     "faults[1].name", "at_s: 5", "another fault is also named 'pause:idgen'"),
])
def test_bad_profile_faults_name_file_line_and_field(tmp_path, faults, field, needle, message):
    path, text = write_profile(tmp_path, "faults:\n" + faults)
    with pytest.raises(ConfigError) as caught:
        load_profile(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), line_of(text, needle), field), str(error)
    assert message in error.message


def test_a_shorter_duration_on_the_command_line_is_checked_against_the_faults(tmp_path):
    path, text = write_profile(tmp_path, PROFILE_FAULTS)
    profile = with_overrides(load_profile(path), duration_s=12)
    with pytest.raises(ConfigError) as caught:
        plan_faults(profile, [])
    assert caught.value.field == "faults[0].for_s" and caught.value.line == line_of(text, "kind: abort")
    assert "after the measured window's end (12 s)" in caught.value.message
    assert [p.field for p in caught.value.problems] == ["faults[0].for_s", "faults[1].at_s", "faults[2].at_s", "faults[3].at_s"]


def test_command_line_faults_add_to_the_profile_s_and_need_the_embedded_mesh(tmp_path):
    path, _ = write_profile(tmp_path, PROFILE_FAULTS)
    profile = load_profile(path)
    faults = plan_faults(profile, ["idgen/LeaseIds:delay=5ms,at=1s,for=1s"])
    assert [f.name for f in faults] == ["abort:idgen/LeaseIds", "slow-resolves", "kill:idgen", "pause:analytics", "delay:idgen/LeaseIds"]
    with pytest.raises(ConfigError, match="not with --target"):
        plan_faults(profile, [], external=True)
    with pytest.raises(ConfigError, match="another fault is also named 'abort:idgen/LeaseIds'"):
        plan_faults(profile, ["idgen/LeaseIds:abort=ABORTED,at=30s,for=1s"])
