"""Tail breakdown by hop (harness/tail_breakdown.py), on trace files written the way the processes write them.

The spans are made up with known times, so each part of the breakdown has an
exact expected value: nothing here is timed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from casemesh.harness.stats import CallStats
from casemesh.harness.tail_breakdown import (
    BETWEEN_CALLS,
    SEND_LAG,
    breakdown,
    journey_parts,
    link,
    read_traces,
    summary_lines,
)

MS = 1_000_000
T0 = 1_800_000_000 * 10**9  # ns since the epoch


def _span(trace, span, parent, name, kind, start_ms, end_ms, attributes=()):
    return {"traceId": trace, "spanId": span, "parentSpanId": parent, "name": name, "kind": f"SPAN_KIND_{kind}",
            "startTimeUnixNano": str(T0 + int(start_ms * MS)), "endTimeUnixNano": str(T0 + int(end_ms * MS)),
            "attributes": [{"key": k, "value": {"doubleValue": v}} for k, v in attributes]}


def _write(path: Path, service: str, spans: list[dict]) -> None:
    document = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                                   "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}
    with path.open("a") as out:
        out.write(json.dumps(document) + "\n")


def _slow_resolve(directory: Path, trace: str = "a" * 32, shift_ms: float = 0.0) -> None:
    """A resolve journey of 11 ms: 1 ms send lag, then urlshortener fans out to idgen and analytics in parallel.

    harness: journey 0-10 ms, its Resolve call 1-9; urlshortener: handler 2-8, calls idgen 3-7 and analytics 5-7;
    idgen: handler 3.5-6.5; analytics wrote no spans.
    """
    s = shift_ms
    _write(directory / "casemesh-harness-1.otlp.jsonl", "casemesh-harness", [
        _span(trace, "j" * 16, "", "resolve", "CLIENT", s + 0, s + 10, [("casemesh.send_lag_ms", 1.0)]),
        _span(trace, "c" * 16, "j" * 16, "pkg.UrlShortenerService/Resolve", "CLIENT", s + 1, s + 9),
    ])
    _write(directory / "urlshortener-2.otlp.jsonl", "urlshortener", [
        _span(trace, "s" * 16, "c" * 16, "pkg.UrlShortenerService/Resolve", "SERVER", s + 2, s + 8),
        _span(trace, "i" * 16, "s" * 16, "pkg.IdGen/LeaseIds", "CLIENT", s + 3, s + 7),
        _span(trace, "a" * 16, "s" * 16, "pkg.Analytics/RecordClicks", "CLIENT", s + 5, s + 7),
        # A background call after the handler ended (an ID-block refill): it is not part of the journey's time.
        _span(trace, "b" * 16, "s" * 16, "pkg.IdGen/LeaseIds", "CLIENT", s + 8.5, s + 9.5),
    ])
    _write(directory / "idgen-3.otlp.jsonl", "idgen", [
        _span(trace, "t" * 16, "i" * 16, "pkg.IdGen/LeaseIds", "SERVER", s + 3.5, s + 6.5),
    ])


def test_every_instant_of_a_journey_goes_to_exactly_one_hop(tmp_path):
    _slow_resolve(tmp_path)
    traces = read_traces(tmp_path)
    (root,) = [r for r in link(traces["a" * 32]) if r.name == "resolve"]
    latency_ns, parts = journey_parts(root)
    ms = {name: round(ns / MS, 6) for name, ns in parts.items() if ns}
    assert ms == {
        SEND_LAG: 1.0,
        BETWEEN_CALLS: 2.0,                                       # 0-1 and 9-10
        "harness→urlshortener transport": 2.0,                     # 8 ms of call, 6 of handler
        "urlshortener self": 2.0,                                  # 2-3 and 7-8
        # idgen's call has 3-5 alone and half of 5-7: 3 of its 4 ms, so 3/4 of its 1 ms transport and 3 ms self
        "urlshortener→idgen transport": 0.75,
        "idgen self": 2.25,
        "urlshortener→pkg.Analytics/RecordClicks (no server span)": 1.0,  # half of 5-7
    }
    assert sum(parts.values()) == pytest.approx(latency_ns) == 11 * MS


def test_the_tail_is_cut_at_the_runs_p99_and_compared_with_the_median(tmp_path):
    _slow_resolve(tmp_path, trace="a" * 32)
    # A median journey: 2 ms, all of it in urlshortener (no fan-out).
    _write(tmp_path / "casemesh-harness-1.otlp.jsonl", "casemesh-harness", [
        _span("m" * 32, "k" * 16, "", "resolve", "CLIENT", 100, 102),
        _span("m" * 32, "l" * 16, "k" * 16, "pkg.UrlShortenerService/Resolve", "CLIENT", 100, 102)])
    _write(tmp_path / "urlshortener-2.otlp.jsonl", "urlshortener", [
        _span("m" * 32, "n" * 16, "l" * 16, "pkg.UrlShortenerService/Resolve", "SERVER", 100.5, 101.5)])
    journeys = {"resolve": CallStats()}
    for _ in range(200):
        journeys["resolve"].record("OK", 2_000)
    journeys["resolve"].record("OK", 11_000)
    journeys["resolve"].record("OK", 11_000)
    journeys["resolve"].record("OK", 11_000)

    result = breakdown(read_traces(tmp_path), journeys)["resolve"]
    assert result["sampled"] == 2 and result["note"] == ""
    assert result["tail"]["n"] == 1 and result["tail"]["mean_ms"] == pytest.approx(11.0)
    assert next(iter(result["tail"]["parts_ms"])) == "idgen self"  # largest first
    assert result["median"]["n"] == 1 and result["median"]["shares"]["urlshortener self"] == pytest.approx(0.5)
    assert sum(result["tail"]["shares"].values()) == pytest.approx(1.0, abs=1e-3)
    lines = summary_lines({"resolve": result})
    assert lines[0].startswith("  resolve p99+ (1 sampled, mean 11.00 ms): 20% idgen self")


def test_without_a_sampled_journey_in_the_tail_the_slowest_stand_in_and_it_says_so(tmp_path):
    _slow_resolve(tmp_path)
    journeys = {"resolve": CallStats()}
    for _ in range(100):
        journeys["resolve"].record("OK", 50_000)  # the run's p99 is 50 ms; the one sampled journey took 11
    result = breakdown(read_traces(tmp_path), journeys)["resolve"]
    assert result["tail"] is None and "no tail to break down" in result["note"]  # the one sampled is the fastest of all
    for _ in range(1000):
        journeys["resolve"].record("OK", 1_000)  # now 11 ms is the p90.9: the slowest sampled stand in, and it says so
    result = breakdown(read_traces(tmp_path), journeys)["resolve"]
    assert result["tail"]["n"] == 1 and result["tail_from_percentile"] == 90.9
    assert "raise --trace-ratio" in result["note"] and "from the p90.9 up" in result["note"]


def test_old_runs_and_damaged_lines_are_left_out(tmp_path, caplog):
    _slow_resolve(tmp_path, trace="o" * 32, shift_ms=-60_000)  # a minute before this run
    _slow_resolve(tmp_path, trace="a" * 32)
    with (tmp_path / "idgen-3.otlp.jsonl").open("a") as out:
        out.write('{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "x"\n')  # killed mid-write
    traces = read_traces(tmp_path, not_before_ns=T0 - 1000 * MS)
    assert set(traces) == {"a" * 32}
    assert "not an OTLP JSON trace line" in caplog.text
    assert read_traces(tmp_path / "missing") == {}


def test_a_journey_without_rpcs_of_its_own_is_not_blamed_on_the_harness(tmp_path):
    """A send on a long-lived stream (chat's send_message) is a journey span with no client call under it."""
    _write(tmp_path / "casemesh-harness-1.otlp.jsonl", "casemesh-harness", [
        _span("f" * 32, "g" * 16, "", "send_message", "CLIENT", 0, 30, [("casemesh.send_lag_ms", 1.0)])])
    _slow_resolve(tmp_path)
    journeys = {"send_message": CallStats(), "resolve": CallStats()}
    journeys["send_message"].record("OK", 31_000)
    journeys["resolve"].record("OK", 11_000)
    result = breakdown(read_traces(tmp_path), journeys)
    send = result["send_message"]
    assert send["sampled"] == 1 and send["tail"] is None and send["median"] is None and send["threshold_ms"] is None
    assert "no RPC of its own" in send["note"]
    assert BETWEEN_CALLS not in json.dumps(send)
    assert result["resolve"]["tail"]["n"] == 1  # journeys with calls are broken down as before
    lines = summary_lines(result)
    assert "    (no RPC of its own" in "\n".join(lines) and not any(line.startswith("  send_message ") for line in lines)

