"""``casemesh run --prometheus`` with the real Prometheus: SLO twins evaluated, every shipped query answered, harness families scraped.

Needs the ``prometheus`` binary (Debian: ``apt-get install -y prometheus``). Where
it is absent these tests skip, unless ``CASEMESH_REQUIRE_PROMETHEUS=1`` (CI sets
it) turns the absence into a failure.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from casemesh.harness.mesh import free_port
from casemesh.harness.profile import load_profile
from casemesh.harness.prometheus import PrometheusApi
from casemesh.harness.slo import PromQuery

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
RESOLVE = "casemesh.urlshortener.v1.UrlShortenerService/Resolve"
PROMETHEUS = shutil.which("prometheus")
HARNESS_SAMPLES = {
    *(f"casemesh_harness_{name}_seconds_{suffix}" for name in ("rpc_latency", "journey_latency", "send_lag") for suffix in ("bucket", "count", "sum")),
    "casemesh_harness_arrivals_intended_total", "casemesh_harness_arrivals_sent_total",
    "casemesh_slo_target", "casemesh_slo_threshold_seconds",
    # The harness process's own event-loop lag and GC pauses (services/runtime/loop_probe.py).
    *(f"casemesh_{name}_seconds_{suffix}" for name in ("event_loop_lag", "gc_pause") for suffix in ("bucket", "count", "sum")),
    # Services of the embedded mesh restarted after a crash (harness/mesh.py), 0 per service in a run without one.
    "casemesh_mesh_restarts_total",
}

needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None and os.environ.get("CASEMESH_REQUIRE_PROMETHEUS") != "1",
    reason="the prometheus binary is not installed (apt-get install -y prometheus); set CASEMESH_REQUIRE_PROMETHEUS=1 to fail instead",
)


def casemesh(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One short ``casemesh run url-shortener --prometheus``, then its kept data served again by the reopen command."""
    assert PROMETHEUS is not None, "CASEMESH_REQUIRE_PROMETHEUS=1 but the prometheus binary is not on PATH"
    out = tmp_path_factory.mktemp("prometheus-run") / "out"
    done = casemesh("run", "url-shortener", "--prometheus", "--duration", "5", "--warmup", "1", "--out", str(out), "--no-progress")
    # 0 or 1 are verdicts on this machine's speed; 4 (the shared machine made the generator fall behind)
    # still evaluates and writes everything this test checks. 2 or 3 are failures of the harness.
    assert done.returncode in (0, 1, 4), done.stdout + done.stderr
    result = json.loads((out / "result.json").read_text())
    # The reopen command the summary prints, on a free port instead of 9090.
    reopen = next(line.removeprefix("reopen it: ") for line in done.stdout.splitlines() if line.startswith("reopen it: "))
    assert reopen == result["prometheus"]["reopen"]
    address = f"127.0.0.1:{free_port()}"
    command = [PROMETHEUS, *(a if not a.startswith("--web.listen-address=") else f"--web.listen-address={address}" for a in shlex.split(reopen)[1:])]
    log = (out / "reopen.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    api = PrometheusApi(f"http://{address}")
    try:
        deadline = time.monotonic() + 30
        while not api.ready():
            assert process.poll() is None and time.monotonic() < deadline, (out / "reopen.log").read_text()
            time.sleep(0.2)
        yield {"out": out, "stdout": done.stdout, "result": result, "api": api}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
@needs_prometheus
def test_result_has_client_and_server_side_values_of_each_slo(run: dict[str, Any]):
    result, out = run["result"], run["out"]
    by_name = {s["name"]: s for s in result["slos"]}
    twins = [s for s in result["slos"] if s["source"] == "prometheus"]
    assert {s["source"] for s in result["slos"]} == {"casemesh", "prometheus"} and len(twins) == 3
    for twin in twins:
        original = by_name[twin["twin_of"]]
        assert original["source"] == "casemesh" and original["measured"] is not None
        assert twin["evaluated"] is True and twin["note"] is None, twin
        assert twin["total"] > 0 and 0 <= twin["measured"] <= 1 and isinstance(twin["passed"], bool)
    # The server answered about as many Resolve calls in the window as the harness measured (increase() extrapolates).
    server_resolves = by_name["resolve-latency-server"]["total"]
    assert server_resolves == pytest.approx(result["rpcs"][RESOLVE]["count"], rel=0.25)
    # The window is the measured one, up to the final scrape after the load.
    window = result["prometheus"]["window"]
    assert result["profile"]["duration_s"] <= window["seconds"] <= result["profile"]["duration_s"] + 5
    assert window["duration"].endswith("ms") and int(window["duration"][:-2]) == pytest.approx(window["seconds"] * 1000, abs=2)
    # Everything the run started was scraped, and the data and config are kept.
    topology = yaml.safe_load((out / "topology.yaml").read_text())
    config = yaml.safe_load((out / "prometheus" / "prometheus.yml").read_text())
    scraped = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    assert scraped.pop("casemesh-harness")[0].startswith("127.0.0.1:")
    assert scraped == {name: [endpoint["metrics_address"]] for name, endpoint in topology["services"].items()}
    assert config["global"]["scrape_interval"] == "1000ms"
    assert any((out / "prometheus" / "data").iterdir())
    assert f"Prometheus data: {out / 'prometheus' / 'data'}" in run["stdout"]
    for line in run["stdout"].splitlines():  # the table shows each twin right under its original
        if "(server-side)" in line and "prometheus" in line:
            assert "↳" in line


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
@needs_prometheus
def test_every_promql_query_of_the_profiles_slo_files_returns_data(run: dict[str, Any]):
    api, window = run["api"], run["result"]["prometheus"]["window"]
    queries = [(slo.name, side.query) for slo in load_profile("url-shortener").slos for side in (slo.good, slo.total) if isinstance(side, PromQuery)]
    assert len(queries) == 6
    for name, query in queries:
        value = api.value(query.replace("$window", window["duration"]), at=window["end_unix"])
        assert value is not None and value > 0, f"{name}: {query} returned {value}"


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
@needs_prometheus
def test_the_harness_families_were_scraped_and_match_the_result(run: dict[str, Any]):
    api, result = run["api"], run["result"]
    at = result["prometheus"]["window"]["end_unix"]
    _, series = api.query('count by (__name__) ({job="casemesh-harness"})', at=at)
    assert {s["metric"]["__name__"] for s in series if not s["metric"]["__name__"].startswith(("up", "scrape_"))} == HARNESS_SAMPLES

    def number(query: str) -> float:
        value = api.value(query, at=at)
        assert value is not None, query
        return value

    # Scraped after the load: the harness's final counts, the same as result.json's.
    sent = number('casemesh_harness_arrivals_sent_total{job="casemesh-harness"}')
    assert sent == result["send_lag"]["count"]
    assert number('casemesh_harness_arrivals_intended_total{job="casemesh-harness"}') == sent
    resolve = 'grpc_service="casemesh.urlshortener.v1.UrlShortenerService",grpc_method="Resolve"'
    assert number(f"sum(casemesh_harness_rpc_latency_seconds_count{{{resolve}}})") == result["rpcs"][RESOLVE]["count"]
    # Bucket le="0.01" counts exactly what the 10 ms SLO counts as good.
    good = next(s["good"] for s in result["slos"] if s["name"] == "resolve-latency")
    assert number(f'sum(casemesh_harness_rpc_latency_seconds_bucket{{{resolve},le="0.01"}})') == good
    assert number('casemesh_slo_target{slo="availability"}') == 0.999
    assert number('casemesh_slo_threshold_seconds{slo="resolve-latency"}') == 0.01


def test_prometheus_missing_is_a_config_error_before_anything_starts(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    out = tmp_path / "out"
    done = casemesh("run", "url-shortener", "--prometheus", "--out", str(out), env={"PATH": str(bin_dir)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "prometheus binary is not on PATH" in done.stderr and "apt-get install -y prometheus" in done.stderr
    assert not out.exists()


def test_prometheus_url_must_be_loopback_and_exclusive(tmp_path: Path):
    done = casemesh("run", "url-shortener", "--prometheus-url", "http://192.0.2.1:9090", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "--prometheus-url" in done.stderr and "loopback" in done.stderr
    done = casemesh("run", "url-shortener", "--prometheus", "--prometheus-url", "http://127.0.0.1:9090", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "not both" in done.stderr
    assert not (tmp_path / "out").exists()


BROKEN_SLO = """apiVersion: openslo/v1
kind: SLO
metadata:
  name: broken-server
spec:
  service: url-shortener
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: broken-sli}
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: sum(increase(grpc_server_handled_total{grpc_code="OK"}[$window]))
        total:
          metricSource:
            type: Prometheus
            spec:
              query: sum(increase(grpc_server_handled_total[$window])
  objectives:
    - target: 0.99
"""


@pytest.mark.slow  # a whole run or a real Prometheus: run by .ci/run's slow step, not by default (make test)
@needs_prometheus
def test_a_query_prometheus_cannot_parse_stops_the_run_before_any_load(tmp_path: Path):
    from .profiles import write_profile

    profile = write_profile(tmp_path, slos={"broken.slo.yaml": BROKEN_SLO})
    out = tmp_path / "out"
    done = casemesh("run", str(profile), "--prometheus", "--out", str(out), "--no-progress")
    assert done.returncode == 2, done.stdout + done.stderr
    line = BROKEN_SLO.splitlines().index("              query: sum(increase(grpc_server_handled_total[$window])") + 1
    assert f"broken.slo.yaml:{line}: spec.indicator.spec.ratioMetric.total.metricSource.spec.query: Prometheus rejects the query: bad_data:" in done.stderr
    assert "seeding" not in done.stdout and not (out / "result.json").exists()
    lock = out / "prometheus" / "data" / "lock"
    assert not (lock.exists() and _locked(lock)), "the run's Prometheus still runs"


def _locked(path: Path) -> bool:
    """Whether a process still holds Prometheus's lock on its data directory."""
    import fcntl

    with path.open("rb") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(file, fcntl.LOCK_UN)
        return False


VIDEO_TWINS = {"playback-start-server": "playback-start", "playback-availability-server": "playback-availability",
               "get-video-latency-server": "get-video-latency", "master-playlist-latency-server": "master-playlist-latency"}
STREAM_SEGMENTS = "casemesh.video.v1.EdgeService/StreamSegments"


@pytest.mark.slow
@needs_prometheus
def test_video_playback_server_side_twins_are_evaluated(tmp_path: Path):
    """``casemesh run video-playback --prometheus``: each server-side twin of video.slo.yaml beside its SLO (about 45 s)."""
    out = tmp_path / "out"
    done = casemesh("run", "video-playback", "--prometheus", "--duration", "10", "--warmup", "3", "--out", str(out),
                    "--no-progress", timeout=300)
    assert done.returncode in (0, 1, 4), done.stdout + done.stderr  # verdicts (or a slow shared machine), not harness errors
    result = json.loads((out / "result.json").read_text())
    by_name = {s["name"]: s for s in result["slos"]}
    assert {s["name"]: s["twin_of"] for s in result["slos"] if s["source"] == "prometheus"} == VIDEO_TWINS
    for twin, original in VIDEO_TWINS.items():
        assert by_name[original]["source"] == "casemesh" and by_name[original]["measured"] is not None
        assert by_name[twin]["evaluated"] is True and by_name[twin]["note"] is None, by_name[twin]
        assert by_name[twin]["total"] > 0 and 0 <= by_name[twin]["measured"] <= 1
    # The edge handled about as many StreamSegments calls in the window as the harness measured (increase() extrapolates,
    # and the server's window also holds streams of warm-up journeys still running when it starts).
    assert by_name["playback-start-server"]["total"] == pytest.approx(result["rpcs"][STREAM_SEGMENTS]["count"], rel=0.3)
    # The playback-path calls include the playback service's own GetVideo on a metadata-cache miss: at least four per start.
    assert by_name["playback-availability-server"]["total"] >= 0.7 * 4 * by_name["playback-availability"]["total"]
    for line in done.stdout.splitlines():  # the table shows each twin right under its original
        if line.startswith("│ ↳"):
            assert "prometheus" in line
