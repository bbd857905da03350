"""k6 (``k6/net/grpc``, types from casemesh's protos/) drives Resolve open-loop against the URL-shortener mesh.

tests/interop/k6/resolve.js seeds codes in ``setup()``, then sends Resolve at
a constant arrival rate with thresholds on its p99, on the checks and on
dropped iterations. The tests read k6's exit code and its ``--summary-export``
JSON, as a CI job wrapping k6 would.
"""

from __future__ import annotations

import json
from pathlib import Path

from .support import PROTOS, run

SCRIPT = Path(__file__).parent / "k6" / "resolve.js"
#: k6's exit code when a threshold was crossed.
THRESHOLDS_CROSSED = 99


def _k6_run(k6: str, target: str, summary: Path, **env: str):
    return run(
        [k6, "run", "--quiet", "--no-color", "--no-usage-report", "--summary-export", str(summary),
         "--summary-trend-stats", "avg,med,p(99),max", str(SCRIPT)],
        env={"CASEMESH_TARGET": target, "CASEMESH_PROTOS": str(PROTOS), **env},
        timeout=120,
    )


def test_k6_resolve_at_a_constant_arrival_rate_meets_its_thresholds(k6, url_shortener, tmp_path):
    summary = tmp_path / "summary.json"
    result = _k6_run(k6, url_shortener, summary, RATE="50", DURATION="3s", P99_MS="250", CODES="20")
    assert result.returncode == 0, result.stdout + result.stderr
    metrics = json.loads(summary.read_text())["metrics"]

    # 50 arrivals/s for 3 s: the executor starts one at t = 0 and keeps the schedule.
    assert 145 <= metrics["iterations"]["count"] <= 151
    assert metrics["dropped_iterations"]["count"] == 0
    resolve = metrics["grpc_req_duration{rpc:Resolve}"]
    assert resolve["thresholds"] == {"p(99)<250": False}  # False: not crossed
    assert 0 < resolve["p(99)"] < 250
    # Every Resolve answered OK with the seeded URL (two checks per iteration).
    assert metrics["checks"]["fails"] == 0
    assert metrics["checks"]["passes"] == 2 * metrics["iterations"]["count"]
    assert len(json.loads(summary.read_text())["setup_data"]["codes"]) == 20


def test_k6_exits_99_when_a_threshold_is_crossed(k6, url_shortener, tmp_path):
    summary = tmp_path / "summary.json"
    # No gRPC call over loopback completes in a microsecond.
    result = _k6_run(k6, url_shortener, summary, RATE="20", DURATION="1s", P99_MS="0.001", CODES="2")
    assert result.returncode == THRESHOLDS_CROSSED, result.stdout + result.stderr
    metrics = json.loads(summary.read_text())["metrics"]
    assert metrics["grpc_req_duration{rpc:Resolve}"]["thresholds"] == {"p(99)<0.001": True}
    assert metrics["checks"]["thresholds"] == {"rate==1.0": False}
