"""Prometheus-sourced SLOs: parsing with file/line/field errors, evaluation against a fake Prometheus HTTP API, twins, reports."""

from __future__ import annotations

import copy
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from casemesh.harness.errors import ConfigError
from casemesh.harness.prometheus import PrometheusApi, PrometheusError, QueryWindow, find_binary, loopback_url
from casemesh.harness.report import slo_table, summary_view
from casemesh.harness.result import build_result
from casemesh.harness.slo import NOT_EVALUATED_NOTE, PromQuery, check_queries, evaluate, load_slos
from casemesh.harness.stats import RunStats

RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
GOOD = 'sum(increase(grpc_server_handling_seconds_bucket{grpc_method="Resolve",le="0.01"}[$window]))'
TOTAL = 'sum(increase(grpc_server_handling_seconds_count{grpc_method="Resolve"}[$window]))'
RATIO = ("spec", "indicator", "spec", "ratioMetric")
SHIPPED_SLOS = Path(__file__).parents[2] / "harness" / "profiles" / "url-shortener.slo.yaml"


def casemesh_slo(name: str = "resolve-latency") -> dict[str, Any]:
    return {
        "apiVersion": "openslo/v1", "kind": "SLO", "metadata": {"name": name},
        "spec": {
            "service": "url-shortener", "budgetingMethod": "Occurrences",
            "indicator": {"metadata": {"name": f"{name}-sli"}, "spec": {"ratioMetric": {
                "counter": True,
                "good": {"metricSource": {"type": "casemesh", "spec": {"rpc": RESOLVE, "latency_le_ms": 10}}},
                "total": {"metricSource": {"type": "casemesh", "spec": {"rpc": RESOLVE}}},
            }}},
            "objectives": [{"target": 0.99}],
        },
    }


def prometheus_slo(name: str = "resolve-latency-server", twin_of: str | None = "resolve-latency", good: str = GOOD, total: str = TOTAL,
                   target: float = 0.99) -> dict[str, Any]:
    document = casemesh_slo(name)
    document["metadata"]["displayName"] = f"{name} display"
    if twin_of is not None:
        document["metadata"]["annotations"] = {"casemesh.dev/twin-of": twin_of}
    ratio = document["spec"]["indicator"]["spec"]["ratioMetric"]
    ratio["good"] = {"metricSource": {"type": "Prometheus", "spec": {"query": good}}}
    ratio["total"] = {"metricSource": {"type": "Prometheus", "spec": {"query": total}}}
    document["spec"]["objectives"] = [{"target": target}]
    return document


def write(tmp_path: Path, *documents: dict[str, Any]) -> tuple[Path, str]:
    path = tmp_path / "twins.slo.yaml"
    text = yaml.safe_dump_all(documents, sort_keys=False, width=1000)
    path.write_text(text)
    return path, text


def line_of(text: str, needle: str, nth: int = 0) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if needle in line][nth]


def set_in(document: dict[str, Any], loc: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(document)
    node = out
    for key in loc[:-1]:
        node = node[key]
    node[loc[-1]] = value
    return out


# -- a fake Prometheus HTTP API --------------------------------------------------------------------


class FakePrometheus:
    """Answers ``/api/v1/query`` with ``reply(query)`` (a JSON-able dict, or ``(status, dict)``) and records the requests."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        self.reply: Callable[[str], Any] = lambda query: vector(1.0)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                fake.requests.append(form)
                self._answer(fake.reply(form["query"]))

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/-/ready":
                    self._answer((200, "Prometheus Server is Ready."))
                else:
                    self._answer((404, "not found"))

            def _answer(self, reply: Any) -> None:
                status, body = reply if isinstance(reply, tuple) else (200, reply)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def vector(*values: float, labels: list[dict[str, str]] | None = None) -> dict[str, Any]:
    result = [{"metric": (labels or [{}] * len(values))[i], "value": [1795320000.0, repr(v) if v == v else "NaN"]} for i, v in enumerate(values)]
    return {"status": "success", "data": {"resultType": "vector", "result": result}}


def error(error_type: str, message: str, status: int = 400) -> tuple[int, dict[str, Any]]:
    return status, {"status": "error", "errorType": error_type, "error": message}


@pytest.fixture
def prometheus() -> Iterator[FakePrometheus]:
    fake = FakePrometheus()
    yield fake
    fake.close()


def window(fake: FakePrometheus, start: float = 1795320000.0, seconds: float = 61.2345) -> QueryWindow:
    return QueryWindow(PrometheusApi(fake.url), start=start, end=start + seconds)


# -- parsing ---------------------------------------------------------------------------------------


def test_a_prometheus_twin_loads_beside_its_casemesh_slo(tmp_path: Path):
    path, text = write(tmp_path, casemesh_slo(), prometheus_slo())
    original, twin = load_slos(path, "shown.slo.yaml")
    assert (original.source, original.twin_of) == ("casemesh", None)
    assert (twin.source, twin.twin_of, twin.display_name) == ("prometheus", "resolve-latency", "resolve-latency-server display")
    assert twin.good == PromQuery(GOOD) and twin.total == PromQuery(TOTAL)
    assert twin.objective_text == "99% good by PromQL over the measured window (twin of resolve-latency)"
    # The query remembers where it was written, for errors found later by Prometheus itself.
    assert twin.good.where == f"shown.slo.yaml:{line_of(text, 'query:', 0)}: [1].spec.indicator.spec.ratioMetric.good.metricSource.spec.query"
    assert twin.total.expression("6234ms") == 'sum(increase(grpc_server_handling_seconds_count{grpc_method="Resolve"}[6234ms]))'


def test_the_shipped_twins_name_their_originals_and_use_existing_bucket_bounds():
    slos = {slo.name: slo for slo in load_slos(SHIPPED_SLOS)}
    twins = {name: slo for name, slo in slos.items() if slo.source == "prometheus"}
    assert {name: slo.twin_of for name, slo in twins.items()} == {
        "resolve-latency-server": "resolve-latency", "shorten-latency-server": "shorten-latency", "availability-server": "availability"}
    from casemesh.services.runtime.metrics import LATENCY_BUCKETS_S

    for name, twin in twins.items():
        original = slos[twin.twin_of]
        assert twin.target == original.target
        if original.good.latency_le_ms is not None:  # the twin's le bucket is the original's threshold, and exists
            threshold_s = original.good.latency_le_ms / 1000
            assert threshold_s in LATENCY_BUCKETS_S
            assert f'le="{threshold_s:g}"' in twin.good.query


@pytest.mark.parametrize(
    ("loc", "value", "needle", "field", "message"),
    [
        ((*RATIO, "good", "metricSource", "spec", "query"), "sum(increase(x[5m]))", "x[5m]",
         "good.metricSource.spec.query", "must contain the placeholder $window where the range goes"),
        ((*RATIO, "total", "metricSource", "spec", "query"), "  ", "query: '  '",
         "total.metricSource.spec.query", "must be a PromQL expression"),
        ((*RATIO, "good", "metricSource", "spec"), {"queries": GOOD}, "queries:",
         "good.metricSource.spec.queries", "unknown field 'queries' (did you mean 'query'?)"),
        ((*RATIO, "total", "metricSource", "spec"), {}, "spec: {}",
         "total.metricSource.spec.query", "Field required"),
        ((*RATIO, "good", "metricSource"), {"type": "casemesh", "spec": {"rpc": RESOLVE}}, "type: casemesh",
         "good.metricSource.type", "good uses 'casemesh' but total uses 'Prometheus': both sides must use the same metric source type"),
        ((*RATIO, "good", "metricSource", "type"), "Datadog", "type: Datadog",
         "good.metricSource.type", "only 'casemesh' (the harness's own latency histograms) or 'Prometheus' (PromQL) is supported, not 'Datadog'"),
        ((*RATIO, "good", "metricSource"), {"metricSourceRef": "prom", "type": "Prometheus", "spec": {"query": GOOD}}, "metricSourceRef:",
         "good.metricSource.metricSourceRef", "metricSourceRef is not supported: give type and spec inline"),
    ],
)
def test_malformed_prometheus_sources_name_file_line_and_field(tmp_path: Path, loc, value, needle, field, message):
    path, text = write(tmp_path, set_in(prometheus_slo(twin_of=None), loc, value))
    with pytest.raises(ConfigError) as caught:
        load_slos(path, "shown.slo.yaml")
    assert (caught.value.file, caught.value.line, caught.value.field) == ("shown.slo.yaml", line_of(text, needle), f"spec.indicator.spec.ratioMetric.{field}")
    assert caught.value.message.startswith(message)


@pytest.mark.parametrize(
    ("twin_of", "message"),
    [
        ("nope", "no SLO named 'nope' in this file; its SLOs: resolve-latency, resolve-latency-server, second-twin"),
        ("second-twin", "'second-twin' is itself a twin of 'resolve-latency': name 'resolve-latency'"),
        ("resolve-latency-server", "an SLO cannot be its own twin: name the SLO this one mirrors"),
    ],
)
def test_twin_of_must_name_another_slo_of_the_file(tmp_path: Path, twin_of: str, message: str):
    documents = (casemesh_slo(), prometheus_slo(twin_of=twin_of), prometheus_slo("second-twin"))
    path, text = write(tmp_path, *documents)
    error = pytest.raises(ConfigError, load_slos, path).value
    assert (error.field, error.message) == ("[1].metadata.annotations.casemesh.dev/twin-of", message)
    assert error.line == line_of(text, "casemesh.dev/twin-of", 0)


# -- evaluation ------------------------------------------------------------------------------------


def test_verdict_from_the_two_queries_over_the_measured_window(tmp_path: Path, prometheus: FakePrometheus):
    _, twin = load_slos(write(tmp_path, casemesh_slo(), prometheus_slo())[0])
    prometheus.reply = lambda query: vector(990.0 if 'le="0.01"' in query else 1000.0)
    (verdict,) = evaluate([twin], RunStats(), window(prometheus))
    assert (verdict.passed, verdict.measured, verdict.good, verdict.total) == (True, 0.99, 990.0, 1000.0)
    assert verdict.budget_burnt == pytest.approx(1.0)
    assert (verdict.source, verdict.twin_of, verdict.evaluated, verdict.note) == ("prometheus", "resolve-latency", True, None)
    # $window became the window in whole ms (rounded up), each query evaluated at the window's end.
    assert [r["query"] for r in prometheus.requests] == [TOTAL.replace("$window", "61235ms"), GOOD.replace("$window", "61235ms")]
    assert {r["time"] for r in prometheus.requests} == {"1795320061.234"}

    prometheus.reply = lambda query: vector(989.5 if 'le="0.01"' in query else 1000.0)
    (verdict,) = evaluate([twin], RunStats(), window(prometheus))
    assert verdict.passed is False and verdict.budget_burnt == pytest.approx(1.05)


def test_a_scalar_result_is_a_number(tmp_path: Path, prometheus: FakePrometheus):
    twin = load_slos(write(tmp_path, prometheus_slo(twin_of=None, good="scalar(sum(increase(x_good[$window])))",
                                                    total="sum(increase(x_total[$window]))"))[0])[0]
    prometheus.reply = lambda query: ({"status": "success", "data": {"resultType": "scalar", "result": [1.0, "3"]}}
                                      if query.startswith("scalar") else vector(4.0))
    (verdict,) = evaluate([twin], RunStats(), window(prometheus))
    assert (verdict.good, verdict.total, verdict.measured) == (3.0, 4.0, 0.75)


@pytest.mark.parametrize(
    ("reply", "note"),
    [
        (lambda q: vector(), "no data: the total query returned no series"),
        (lambda q: vector(float("nan")), "no data: the total query returned no series"),
        (lambda q: vector(0.0), "no calls in the window: the total query returned 0"),
        (lambda q: error("bad_data", "1:14: parse error: unexpected character"), "query failed: bad_data: 1:14: parse error: unexpected character"),
        (lambda q: error("execution", "many-to-many matching not allowed", 422), "query failed: execution: many-to-many matching not allowed"),
        (lambda q: (503, "Service Unavailable"), "query failed: HTTP 503 from "),
        (lambda q: vector(1.0, 2.0, labels=[{"job": "a"}, {"job": "b"}]),
         'query failed: the query returned 2 series ({job="a"}, {job="b"}), expected one number: aggregate them, e.g. sum(...)'),
        (lambda q: {"status": "success", "data": {"resultType": "matrix", "result": []}}, "query failed: the query returned a matrix"),
    ],
)
def test_queries_that_give_no_number_fail_the_slo_and_say_why(tmp_path: Path, prometheus: FakePrometheus, reply, note):
    twin = load_slos(write(tmp_path, prometheus_slo(twin_of=None))[0])[0]
    prometheus.reply = reply
    (verdict,) = evaluate([twin], RunStats(), window(prometheus))
    assert verdict.passed is False and verdict.evaluated is True and verdict.measured is None and verdict.budget_burnt is None
    assert verdict.note.startswith(note)


def test_a_good_query_without_series_counts_as_zero(tmp_path: Path, prometheus: FakePrometheus):
    twin = load_slos(write(tmp_path, prometheus_slo(twin_of=None))[0])[0]
    prometheus.reply = lambda query: vector() if 'le="0.01"' in query else vector(50.0)
    (verdict,) = evaluate([twin], RunStats(), window(prometheus))
    assert (verdict.passed, verdict.good, verdict.measured) == (False, 0.0, 0.0)
    assert verdict.note == "the good query returned no series: counted as 0"


def test_an_unreachable_prometheus_fails_the_slo(tmp_path: Path, prometheus: FakePrometheus):
    twin = load_slos(write(tmp_path, prometheus_slo(twin_of=None))[0])[0]
    url = prometheus.url
    prometheus.close()
    (verdict,) = evaluate([twin], RunStats(), QueryWindow(PrometheusApi(url, timeout_s=2), 0.0, 10.0))
    assert verdict.passed is False and verdict.note.startswith(f"query failed: cannot reach Prometheus at {url}")


def test_without_prometheus_the_slo_is_not_evaluated_and_does_not_fail_the_run(tmp_path: Path):
    original, twin = load_slos(write(tmp_path, casemesh_slo(), prometheus_slo())[0])
    stats = RunStats()
    for _ in range(100):
        stats.rpc(RESOLVE).record("OK", 2000)
    verdicts = evaluate([original, twin], stats)
    assert [v.passed for v in verdicts] == [True, None]
    skipped = verdicts[1].to_dict()
    assert (skipped["evaluated"], skipped["measured"], skipped["note"], skipped["source"]) == (False, None, NOT_EVALUATED_NOTE, "prometheus")
    assert evaluate([twin], stats, not_evaluated_note="evaluated after the run")[0].note == "evaluated after the run"

    result = build_result(profile=_Profile(), stats=stats, verdicts=verdicts, target={"mode": "embedded", "services": {}},
                          started_at=datetime.now(timezone.utc), valid=True, invalid_reasons=[])
    assert result["passed"] is True and result["prometheus"] is None
    assert [s["source"] for s in result["slos"]] == ["casemesh", "prometheus"]
    text = render(summary_view(result))
    assert "PASSED: all 1 evaluated SLOs met (1 not evaluated: no Prometheus)" in text
    assert "n/a" not in text  # a twin that was not evaluated says nothing about the run: hidden unless asked
    assert "n/a" in render(summary_view(result, show_unevaluated=True))


class _Profile:
    """The parts of a Profile that build_result reads."""

    name, path, warmup_s, duration_s, request_timeout_ms, journeys = "p", "p.yaml", 0.0, 1.0, 1000.0, ()

    class workload:  # noqa: N801
        name = "url-shortener"

    class arrival:  # noqa: N801
        process, rate_per_s = "constant", 10.0

        @staticmethod
        def model_dump(mode: str = "json") -> dict[str, Any]:
            return {"rate_per_s": 10.0}

        @staticmethod
        def offered_rate_per_s(*args: float) -> float:
            return 10.0


def render(renderable: Any) -> str:
    console = Console(width=200, record=True)
    with console.capture() as capture:
        console.print(renderable)
    return capture.get()


def test_the_table_puts_each_twin_under_its_original_with_its_source():
    def verdict(name: str, source: str, twin_of: str | None = None, passed: bool | None = True) -> dict[str, Any]:
        return {"name": name, "display_name": name, "passed": passed, "target": 0.99, "measured": None if passed is None else 0.995,
                "budget_burnt": None if passed is None else 0.5, "note": None, "source": source, "twin_of": twin_of}

    rows = [verdict("a", "casemesh"), verdict("b", "casemesh"), verdict("a-server", "prometheus", "a"), verdict("b-server", "prometheus", "b", None)]
    lines = [line for line in render(slo_table(rows)).splitlines() if line.startswith("│")]
    assert [line.split("│")[1].strip() for line in lines] == ["a", "↳ a-server", "b", "↳ b-server"]
    assert [line.split("│")[2].strip() for line in lines] == ["casemesh", "prometheus", "casemesh", "prometheus"]
    assert [line.split("│")[-2].strip() for line in lines] == ["PASS", "PASS", "PASS", "n/a"]


# -- before any load: ask Prometheus to parse every query ------------------------------------------


def test_check_queries_names_the_file_line_and_field_of_a_query_prometheus_rejects(tmp_path: Path, prometheus: FakePrometheus):
    path, text = write(tmp_path, casemesh_slo(), prometheus_slo(total="sum(rate(x[$window])"))
    slos = load_slos(path, "shown.slo.yaml")
    prometheus.reply = lambda query: error("bad_data", "1:21: parse error: unclosed left parenthesis") if "rate(x" in query else vector()
    with pytest.raises(ConfigError) as caught:
        check_queries(slos, PrometheusApi(prometheus.url))
    assert str(caught.value) == (f"shown.slo.yaml:{line_of(text, 'rate(x[')}: [1].spec.indicator.spec.ratioMetric.total.metricSource.spec.query: "
                                 "Prometheus rejects the query: bad_data: 1:21: parse error: unclosed left parenthesis")
    assert prometheus.requests[0]["query"] == GOOD.replace("$window", "1s")

    prometheus.reply = lambda query: error("timeout", "query timed out", 503)
    with pytest.raises(PrometheusError, match="timeout: query timed out"):
        check_queries(slos, PrometheusApi(prometheus.url))


# -- command-line helpers --------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["http://127.0.0.1:9090", "http://localhost:9090/", "http://[::1]:9090", "https://127.0.0.2:9443/prom"])
def test_loopback_urls_are_accepted(url: str):
    assert loopback_url(url) == url.rstrip("/")


@pytest.mark.parametrize("url", ["http://10.0.0.5:9090", "http://prometheus:9090", "127.0.0.1:9090", "ftp://127.0.0.1", "http://127.0.0.1:99999"])
def test_other_urls_are_config_errors(url: str):
    error = pytest.raises(ConfigError, loopback_url, url).value
    assert error.field == "--prometheus-url" and url in error.message


def test_a_missing_binary_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("PATH", str(tmp_path))
    error = pytest.raises(ConfigError, find_binary).value
    assert error.field == "--prometheus"
    assert "apt-get install -y prometheus" in error.message and "--prometheus-url" in error.message


def test_ready_reports_the_ready_endpoint(prometheus: FakePrometheus):
    assert PrometheusApi(prometheus.url).ready() is True
    url = prometheus.url
    prometheus.close()
    assert PrometheusApi(url).ready() is False
