"""SLOs: verdicts from known latencies and codes; malformed OpenSLO documents name file, line and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemesh.harness.errors import ConfigError
from casemesh.harness.slo import Selector, Slo, evaluate, load_slos
from casemesh.harness.stats import RunStats

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"
RATIO = ("spec", "indicator", "spec", "ratioMetric")


def slo_document(name: str = "resolve-latency", good: dict[str, Any] | None = None, total: dict[str, Any] | None = None, target: float = 0.99) -> dict[str, Any]:
    """An OpenSLO SLO document: by default 99% of Resolve calls within 10 ms."""
    return {
        "apiVersion": "openslo/v1",
        "kind": "SLO",
        "metadata": {"name": name, "displayName": f"{name} objective", "annotations": {"casemesh.dev/reason": "because"}},
        "spec": {
            "description": "test SLO",
            "service": "url-shortener",
            "budgetingMethod": "Occurrences",
            "timeWindow": [{"duration": "1h", "isRolling": True}],
            "indicator": {
                "metadata": {"name": f"{name}-sli"},
                "spec": {
                    "ratioMetric": {
                        "counter": True,
                        "good": {"metricSource": {"type": "casemesh", "spec": good if good is not None else {"rpc": RESOLVE, "latency_le_ms": 10}}},
                        "total": {"metricSource": {"type": "casemesh", "spec": total if total is not None else {"rpc": RESOLVE}}},
                    }
                },
            },
            "objectives": [{"displayName": "target", "target": target}],
        },
    }


def write_documents(tmp_path: Path, *documents: dict[str, Any]) -> tuple[Path, str]:
    path = tmp_path / "test.slo.yaml"
    text = yaml.safe_dump_all(documents, sort_keys=False)
    path.write_text(text)
    return path, text


def load_one(tmp_path: Path, document: dict[str, Any], **checks: Any) -> Slo:
    path, _ = write_documents(tmp_path, document)
    (slo,) = load_slos(path, **checks)
    return slo


def line_of(text: str, needle: str) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(lines) == 1, f"{needle!r} found on lines {lines}"
    return lines[0]


def set_in(document: dict[str, Any], loc: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the value at ``loc`` replaced (or added)."""
    out = copy.deepcopy(document)
    node = out
    for key in loc[:-1]:
        node = node[key]
    node[loc[-1]] = value
    return out


def record(stats: RunStats, method: str, count: int, latency_ms: float, code: str = "OK") -> None:
    calls = stats.rpc(method)
    for _ in range(count):
        calls.record(code, latency_ms * 1000)


# -- evaluation ------------------------------------------------------------------------------------


def test_latency_slo_passes_at_exactly_its_target_and_fails_one_call_later(tmp_path: Path):
    slo = load_one(tmp_path, slo_document())
    stats = RunStats()
    record(stats, RESOLVE, 990, 1)
    record(stats, RESOLVE, 10, 50)
    record(stats, SHORTEN, 100, 50)  # another RPC: not counted
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.good, verdict.total, verdict.measured) == (True, 990, 1000, 0.99)
    assert verdict.budget_burnt == pytest.approx(1.0)
    assert verdict.note == "p99 = 1.00 ms"
    record(stats, RESOLVE, 1, 50)
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.good, verdict.total) == (False, 990, 1001)
    assert verdict.measured == 990 / 1001
    assert verdict.budget_burnt > 1


def test_verdict_dict_and_objective_text(tmp_path: Path):
    slo = load_one(tmp_path, slo_document())
    assert slo.objective_text == f"99% of {RESOLVE} within 10 ms"
    assert (slo.name, slo.display_name, slo.reason, slo.description, slo.service) == ("resolve-latency", "resolve-latency objective", "because", "test SLO", "url-shortener")
    stats = RunStats()
    record(stats, RESOLVE, 95, 2)
    record(stats, RESOLVE, 5, 20)
    assert evaluate([slo], stats)[0].to_dict() == {
        "name": "resolve-latency",
        "display_name": "resolve-latency objective",
        "passed": False,
        "objective": f"99% of {RESOLVE} within 10 ms",
        "target": 0.99,
        "measured": 0.95,
        "good": 95,
        "total": 100,
        "error_budget": 0.01,
        "budget_burnt": pytest.approx(5.0),
        "note": "p99 = 20.02 ms",  # the highest value HDR treats as equal to 20 ms (3 significant figures)
        "source": "casemesh",
        "twin_of": None,
        "evaluated": True,
        "floor_ms": None,  # set against the run's control stream (harness/floor.py)
        "machine_note": None,
        "inconclusive": False,
        "recovery": None,  # only recovery SLOs (harness/recovery.py) fill it
    }


def test_budget_burnt_is_the_share_of_the_error_budget_used():
    slo = Slo("half", "half", None, None, "svc", 0.9, Selector(rpc=RESOLVE, codes=("OK",)), Selector(rpc=RESOLVE))
    stats = RunStats()
    record(stats, RESOLVE, 950, 1)
    record(stats, RESOLVE, 50, 1, "UNAVAILABLE")
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.measured, verdict.error_budget) == (True, 0.95, 0.1)
    assert verdict.budget_burnt == pytest.approx(0.5)
    assert verdict.note is None


def test_availability_over_all_rpcs_with_codes(tmp_path: Path):
    document = slo_document("availability", good={"codes": ["OK", "NOT_FOUND"]}, total={}, target=0.999)
    slo = load_one(tmp_path, document)
    assert slo.objective_text == "99.9% of all RPCs with status in OK, NOT_FOUND"
    stats = RunStats()
    record(stats, RESOLVE, 1900, 1)
    record(stats, RESOLVE, 99, 1, "NOT_FOUND")
    record(stats, SHORTEN, 1, 1, "UNAVAILABLE")
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.good, verdict.total, verdict.measured) == (True, 1999, 2000, 0.9995)
    assert verdict.budget_burnt == pytest.approx(0.5)
    record(stats, SHORTEN, 2, 1, "INTERNAL")
    assert evaluate([slo], stats)[0].passed is False


def test_total_codes_carry_over_to_good(tmp_path: Path):
    document = slo_document(good={"rpc": RESOLVE, "latency_le_ms": 10}, total={"rpc": RESOLVE, "codes": ["OK"]})
    slo = load_one(tmp_path, document)
    assert slo.good.codes == ("OK",)
    assert slo.objective_text == f"99% of {RESOLVE} (status in OK) within 10 ms"
    stats = RunStats()
    record(stats, RESOLVE, 100, 1)
    record(stats, RESOLVE, 50, 1, "NOT_FOUND")  # outside total: neither good nor bad
    (verdict,) = evaluate([slo], stats)
    assert (verdict.good, verdict.total, verdict.passed) == (100, 100, True)


def test_journey_selector(tmp_path: Path):
    document = slo_document(good={"journey": "resolve", "latency_le_ms": 5}, total={"journey": "resolve"}, target=0.5)
    slo = load_one(tmp_path, document, journeys=["resolve", "shorten"])
    assert slo.objective_text == "50% of journey resolve within 5 ms"
    stats = RunStats()
    for latency_ms in (1, 2, 3, 30):
        stats.journey("resolve").record("OK", latency_ms * 1000)
    stats.journey("shorten").record("OK", 100_000)
    record(stats, RESOLVE, 10, 100)  # RPC stats do not count for a journey SLO
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.good, verdict.total) == (True, 3, 4)
    assert verdict.note == "p50 = 2.00 ms"


def test_no_calls_fails_without_a_measurement(tmp_path: Path):
    slo = load_one(tmp_path, slo_document())
    stats = RunStats()
    record(stats, SHORTEN, 10, 1)
    (verdict,) = evaluate([slo], stats)
    assert (verdict.passed, verdict.measured, verdict.good, verdict.total, verdict.budget_burnt) == (False, None, 0, 0, None)
    assert verdict.note == "no calls recorded"


def test_code_names_in_camel_case_are_normalized(tmp_path: Path):
    document = slo_document(good={"codes": ["Ok", "NotFound", "DEADLINE_EXCEEDED", "Canceled", "OK"]}, total={})
    assert load_one(tmp_path, document).good.codes == ("OK", "NOT_FOUND", "DEADLINE_EXCEEDED", "CANCELLED", "OK")


def test_shipped_slo_file_loads():
    slos = load_slos(Path(__file__).parents[2] / "harness" / "profiles" / "url-shortener.slo.yaml")
    assert [s.objective_text for s in slos] == [
        f"99% of {RESOLVE} within 10 ms",
        f"99% of {SHORTEN} within 25 ms",
        "99.9% of all RPCs with status in OK, NOT_FOUND, INVALID_ARGUMENT, ALREADY_EXISTS",
        "99% good by PromQL over the measured window (twin of resolve-latency)",
        "99% good by PromQL over the measured window (twin of shorten-latency)",
        "99.9% good by PromQL over the measured window (twin of availability)",
    ]
    assert slos[0].reason.startswith("Resolve is the redirect")


# -- malformed documents ---------------------------------------------------------------------------


GOOD_SPEC = (*RATIO, "good", "metricSource", "spec")


@pytest.mark.parametrize(
    ("loc", "value", "needle", "field", "message"),
    [
        (("kind",), "SLI", "kind:", "kind", "only 'SLO' is supported, not 'SLI'; define indicators inline under spec.indicator"),
        (("apiVersion",), "openslo/v1alpha", "apiVersion:", "apiVersion", "only 'openslo/v1' is supported, not 'openslo/v1alpha'"),
        (
            ("spec", "indicator", "spec", "thresholdMetric"),
            {"metricSource": {"type": "casemesh"}},
            "thresholdMetric:",
            "spec.indicator.spec.thresholdMetric",
            "threshold indicators are not supported: use spec.indicator.spec.ratioMetric with good and total",
        ),
        (("spec", "indicatorRef"), "some-sli", "indicatorRef:", "spec.indicatorRef", "indicatorRef is not supported: define the indicator inline under spec.indicator"),
        (("spec", "objectives", 0, "target"), 1.5, "target:", "spec.objectives[0].target",
         "must be less than 1: targets are fractions of good calls, 0.99 for 99%, not 1.5"),
        (("spec", "objectives", 0, "target"), 99, "target:", "spec.objectives[0].target",
         "must be less than 1: targets are fractions of good calls, 0.99 for 99%, not 99 (did you mean 0.99?)"),
        (("spec", "objectives", 0, "target"), 0, "target:", "spec.objectives[0].target", "Input should be greater than 0"),
        (("spec", "objectives"), [{"target": 0.9}, {"target": 0.99}], "objectives:", "spec.objectives", "exactly one objective per SLO is supported, found 2"),
        (
            ("spec", "budgetingMethod"),
            "Timeslices",
            "budgetingMethod:",
            "spec.budgetingMethod",
            "only 'Occurrences' is supported, not 'Timeslices': the SLO counts good calls over all calls of the run",
        ),
        (
            (*RATIO, "good", "metricSource", "type"),
            "prometheus",
            "type: prometheus",
            "spec.indicator.spec.ratioMetric.good.metricSource.type",
            "only 'casemesh' (the harness's own latency histograms) or 'Prometheus' (PromQL) is supported, not 'prometheus'",
        ),
        (
            GOOD_SPEC,
            {"rpc": SHORTEN, "latency_le_ms": 10},
            "Service/Shorten",
            "spec.indicator.spec.ratioMetric.good.metricSource.spec.rpc",
            f"good selects {SHORTEN} but total selects {RESOLVE}: good must count a subset of total's calls",
        ),
        (
            GOOD_SPEC,
            {"rpc": RESOLVE, "codes": ["OK", "NOPE"]},
            "NOPE",
            "spec.indicator.spec.ratioMetric.good.metricSource.spec.codes[1]",
            "unknown gRPC status code 'NOPE'; known: OK, CANCELLED, UNKNOWN",
        ),
        (GOOD_SPEC, {"rpc": "Resolve"}, "rpc: Resolve", "spec.indicator.spec.ratioMetric.good.metricSource.spec.rpc", "expected a full method name package.Service/Method"),
        (GOOD_SPEC, {"rpc": RESOLVE, "latency_ms": 10}, "latency_ms", "spec.indicator.spec.ratioMetric.good.metricSource.spec.latency_ms",
         "unknown field 'latency_ms' (did you mean 'latency_le_ms'?)"),
        (
            (*RATIO, "total", "metricSource", "spec"),
            {"rpc": RESOLVE, "latency_le_ms": 100},
            "latency_le_ms: 100",
            "spec.indicator.spec.ratioMetric.total.metricSource.spec.latency_le_ms",
            "total counts calls of any latency: put latency_le_ms on good",
        ),
        (("metadata", "name"), "Resolve Latency", "name: Resolve Latency", "metadata.name", "must be lowercase letters"),
    ],
)
def test_malformed_documents(tmp_path: Path, loc, value, needle, field, message):
    path, text = write_documents(tmp_path, set_in(slo_document(), loc, value))
    with pytest.raises(ConfigError) as caught:
        load_slos(path, "shown.slo.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("shown.slo.yaml", line_of(text, needle), field)
    assert error.message.startswith(message)


def test_rpc_and_journey_are_exclusive(tmp_path: Path):
    both = {"rpc": RESOLVE, "journey": "resolve"}
    path, text = write_documents(tmp_path, slo_document(good=both, total=both))
    error = pytest.raises(ConfigError, load_slos, path).value
    assert error.field == "spec.indicator.spec.ratioMetric.good.metricSource.spec.journey"
    assert error.message == "rpc and journey are exclusive: give one, or neither for every RPC of the run"
    assert [(e.field, e.message) for e in error.more] == [
        ("spec.indicator.spec.ratioMetric.total.metricSource.spec.journey", "rpc and journey are exclusive: give one, or neither for every RPC of the run")]


def test_good_codes_must_be_among_total_codes(tmp_path: Path):
    document = slo_document(good={"codes": ["OK", "NOT_FOUND"]}, total={"codes": ["OK"]})
    path, text = write_documents(tmp_path, document)
    error = pytest.raises(ConfigError, load_slos, path).value
    assert (error.line, error.field) == (line_of(text, "- NOT_FOUND") - 2, "spec.indicator.spec.ratioMetric.good.metricSource.spec.codes")
    assert error.message.startswith("NOT_FOUND not among total's codes (OK)")


def test_unknown_rpc_when_rpcs_are_given(tmp_path: Path):
    path, text = write_documents(tmp_path, slo_document())
    assert load_slos(path, rpcs=[RESOLVE])
    error = pytest.raises(ConfigError, load_slos, path, rpcs=[SHORTEN]).value
    assert error.field == "spec.indicator.spec.ratioMetric.good.metricSource.spec.rpc"
    assert error.message == f"unknown RPC '{RESOLVE}'; the workload's RPCs: {SHORTEN}"
    assert [e.field for e in error.more] == ["spec.indicator.spec.ratioMetric.total.metricSource.spec.rpc"]


def test_errors_in_later_documents_carry_the_document_index(tmp_path: Path):
    documents = [slo_document("first"), slo_document("second"), slo_document("third", target=2)]
    path, text = write_documents(tmp_path, *documents)
    error = pytest.raises(ConfigError, load_slos, path).value
    assert error.field == "[2].spec.objectives[0].target"
    assert error.line == [i for i, line in enumerate(text.splitlines(), 1) if "target: 2" in line][0]


def test_duplicate_names_across_documents(tmp_path: Path):
    path, text = write_documents(tmp_path, slo_document("same"), slo_document("same"))
    error = pytest.raises(ConfigError, load_slos, path).value
    assert (error.field, error.message) == ("[1].metadata.name", "duplicate SLO name 'same' (also document [0])")
    assert error.line == [i for i, line in enumerate(text.splitlines(), 1) if line.strip() == "name: same"][1]


def test_file_without_documents(tmp_path: Path):
    path = tmp_path / "empty.slo.yaml"
    path.write_text("---\n")
    assert pytest.raises(ConfigError, load_slos, path).value.message == "no SLO documents in the file"


def test_every_problem_of_every_document_is_listed(tmp_path: Path):
    documents = [slo_document("first", target=99), slo_document("second"),
                 set_in(slo_document("third"), ("spec", "budgetingMethod"), "Timeslices"), slo_document("second")]
    documents[1]["spec"]["serivce"] = documents[1]["spec"].pop("service")
    path, text = write_documents(tmp_path, *documents)
    error = pytest.raises(ConfigError, load_slos, path).value
    assert [(e.field, e.message.split(":")[0]) for e in error.problems] == [
        ("[0].spec.objectives[0].target", "must be less than 1"),
        ("[1].spec.serivce", "unknown field 'serivce' (did you mean 'service'?)"),
        ("[1].spec.service", "Field required"),
        ("[2].spec.budgetingMethod", "only 'Occurrences' is supported, not 'Timeslices'"),
    ]
    assert str(error).splitlines()[0] == f"{path}:{error.line}: [0].spec.objectives[0].target: {error.message}"
    assert len(str(error).splitlines()) == 4 and all(line.startswith(f"{path}:") for line in str(error).splitlines())


def test_terminal_tables_print_names_and_notes_as_written():
    from rich.console import Console

    from casemesh.harness.report import calls_table, slo_table

    verdict = {"name": "odd", "display_name": "[/]odd [bold]name", "passed": False, "target": 0.99, "measured": 0.5,
               "budget_burnt": 50.0, "note": "query failed: bad [red]", "source": "prometheus", "twin_of": None, "evaluated": True}
    row = {"count": 1, "errors": {}, "throughput_rps": 1.0, "p50_ms": 1.0, "p90_ms": 1.0, "p99_ms": 1.0, "p999_ms": 1.0, "max_ms": 1.0}
    console = Console(record=True, width=200)
    console.print(slo_table([verdict]))
    console.print(calls_table("RPCs", {"[red]pkg.S/M": row}))
    text = console.export_text()
    assert "[/]odd [bold]name" in text and "query failed: bad [red]" in text and "[red]pkg.S/M" in text


def test_every_shipped_slo_has_a_name_of_its_own():
    # The harness's metrics (casemesh_slo_*{slo=NAME}) and its Grafana dashboard key each SLO by its name alone: two
    # shipped profiles naming different objectives alike would merge them (and break the OpenMetrics exposition).
    names: dict[str, str] = {}
    for path in sorted((Path(__file__).parents[2] / "harness" / "profiles").glob("*.slo.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            name = document["metadata"]["name"]
            assert name not in names, f"{path.name} and {names[name]} both name an SLO {name!r}"
            names[name] = path.name
