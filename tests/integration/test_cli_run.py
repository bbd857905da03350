"""``casemesh run`` end to end as a user runs it: a real subprocess, the embedded mesh, result.json and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from .profiles import RESOLVE, latency_slo, verdict_exit, write_profile

CLI = [sys.executable, "-m", "casemesh.harness.cli"]
SHORTEN = "casemesh.urlshortener.v1.UrlShortenerService/Shorten"


def casemesh(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_run_writes_result_and_exits_0_when_slos_pass(tmp_path):
    # Enough Shortens that the ID block (256, refilled below 64) is leased again while every journey is traced.
    journeys = "  - {name: resolve, weight: 50}\n  - {name: shorten, weight: 50}\n"
    profile = write_profile(tmp_path, journeys=journeys, slos={"ok.slo.yaml": latency_slo("resolve-generous", RESOLVE, within_ms=1500)})
    out = tmp_path / "out"
    done = casemesh("run", str(profile), "--duration", "3", "--out", str(out), "--no-progress", "--trace-ratio", "1")
    result = json.loads((out / "result.json").read_text())
    assert verdict_exit(done, result) == 0, done.stdout + done.stderr
    assert result["schema_version"] == 1 and result["passed"] is result["valid"]
    assert result["profile"]["name"] == "test-profile" and result["target"]["mode"] == "embedded"
    resolve = result["rpcs"][RESOLVE]
    for key in ("count", "errors", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms", "throughput_rps"):
        assert key in resolve
    assert resolve["count"] > 100 and resolve["p50_ms"] <= resolve["p99_ms"] <= resolve["max_ms"]
    assert set(result["journeys"]) == {"resolve", "shorten"}
    assert result["send_lag"]["count"] > 0
    [slo] = result["slos"]
    assert slo["name"] == "resolve-generous" and slo["passed"] is True and slo["measured"] >= 0.99
    assert "PASS" in done.stdout
    # The services wrote their logs and stopped; every process (the harness too) its event-loop series.
    processes = {"urlshortener", "idgen", "analytics"}
    assert {p.name for p in (out / "logs").iterdir()} == {f"{name}.log" for name in processes} | {
        f"{name}.loop.jsonl" for name in processes | {"harness"}}
    # ...which reach result.json per second on the latency series' time axis, and the report.
    event_loop, seconds = result["event_loop"], result["series"]["seconds"]
    assert list(event_loop["processes"]) == ["harness", "analytics", "idgen", "urlshortener"]
    assert event_loop["seconds"] == seconds and event_loop["probe_interval_ms"] == 5
    for name, process in event_loop["processes"].items():
        for key in ("lag_p99_ms", "lag_max_ms", "gc_count", "gc_ms"):
            assert len(process[key]) == seconds, (name, key)
        assert sum(v is not None for v in process["lag_max_ms"]) >= seconds // 2, (name, process["lag_max_ms"])
        measured = process["measured"]
        assert measured["ticks"] > 0 and 0 <= measured["lag_p50_ms"] <= measured["lag_p99_ms"] <= measured["lag_max_ms"] * 1.03
        assert measured["gc_count"] == sum(g["count"] for g in measured["gc_by_generation"].values())
    report = (out / "report.html").read_text()
    assert "Event-loop lag and GC pauses" in report and "<td>urlshortener</td>" in report

    # Traces: the Shorten -> IdGenerator hop is one trace across two services.
    traces = defaultdict(set)
    for file in (out / "traces").glob("*.otlp.jsonl"):
        for line in file.read_text().splitlines():
            for resource_spans in json.loads(line)["resourceSpans"]:
                service = next(a["value"]["stringValue"] for a in resource_spans["resource"]["attributes"] if a["key"] == "service.name")
                for scope in resource_spans["scopeSpans"]:
                    for span in scope["spans"]:
                        assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16
                        traces[span["traceId"]].add((service, span["name"]))
    hops = [t for t, spans in traces.items()
            if ("casemesh-harness", "shorten") in spans and ("urlshortener", SHORTEN) in spans
            and ("idgen", "casemesh.idgen.v1.IdGeneratorService/LeaseIds") in spans]
    assert hops, "no trace holds the shorten journey, its Shorten span and the LeaseIds span of the ID service"
    journeys = [t for t, spans in traces.items() if ("casemesh-harness", "resolve") in spans and ("urlshortener", RESOLVE) in spans]
    assert journeys, "harness journey spans are not parents of the services' spans"


def test_an_impossible_slo_exits_1(tmp_path):
    # 0.001 ms is within 3x of any machine's floor, so the miss is inconclusive: --strict counts it as failed
    # (tests/integration/test_control_and_plan.py covers the inconclusive exit 0).
    profile = write_profile(tmp_path, duration_s=2, slos={"strict.slo.yaml": latency_slo("resolve-impossible", RESOLVE, within_ms=0.001)})
    done = casemesh("run", str(profile), "--out", str(tmp_path / "out"), "--no-progress", "--strict")
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert verdict_exit(done, result) == 1, done.stdout + done.stderr
    assert result["passed"] is False and result["slos"][0]["passed"] is False
    assert "FAIL" in done.stdout or not result["valid"]  # an invalid run says RUN INVALID instead


def test_a_broken_profile_exits_2_naming_file_line_and_field_before_any_load(tmp_path):
    profile = write_profile(tmp_path, rate=-5)
    out = tmp_path / "out"
    done = casemesh("run", str(profile), "--out", str(out), "--no-progress")
    assert done.returncode == 2
    line = next(i for i, text in enumerate(profile.read_text().splitlines(), 1) if "rate_per_s" in text)
    assert f"{profile}:{line}: arrival.rate_per_s:" in done.stderr
    assert not out.exists()  # nothing started, nothing sent


def test_a_broken_slo_document_exits_2(tmp_path):
    bad = latency_slo("resolve", RESOLVE, within_ms=10).replace("target: 0.99", "target: 1.5")
    profile = write_profile(tmp_path, slos={"bad.slo.yaml": bad})
    done = casemesh("validate", str(profile))
    assert done.returncode == 2
    assert "bad.slo.yaml:" in done.stderr and "spec.objectives[0].target" in done.stderr


def test_bad_command_line_values_exit_2(tmp_path):
    done = casemesh("run", "url-shortener", "--duration", "-1", "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "--duration" in done.stderr
    done = casemesh("run", "no-such-profile")
    assert done.returncode == 2 and "url-shortener" in done.stderr
