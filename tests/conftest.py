"""Settings every test run shares."""

from __future__ import annotations

import os

import pytest

from casemesh.harness.calibration.cache import save_calibration
from casemesh.harness.calibration.machine import fingerprint


@pytest.fixture(autouse=True, scope="session")
def _calibration_cache(tmp_path_factory: pytest.TempPathFactory):
    """A calibration cache of the tests' own, holding a fixed calibration of this machine.

    A `casemesh run` that plans ``--workers auto`` above 300/s or ``rate_scale: auto`` reads the
    calibration; measuring one takes about 30 s, which tests must not spend again and again, nor
    leave in the user's cache (``~/.cache/casemesh``). The measurement itself is tested in
    tests/integration/test_control_and_plan.py. Subprocesses inherit the variable.
    """
    directory = tmp_path_factory.mktemp("casemesh-cache")
    previous = os.environ.get("CASEMESH_CACHE_DIR")
    os.environ["CASEMESH_CACHE_DIR"] = str(directory)
    save_calibration({"fingerprint": fingerprint(), "measured_at": "2026-12-01T10:00:00Z", "ceiling_per_s": 2000,
                      "ceiling_bound": "off schedule at 4000/s", "noisy": False, "cpu": None,
                      "steps": [{"rate_per_s": 50, "send_lag_p99_ms": 0.5, "on_schedule": True, "errors": {},
                                 "latency_ms": {"count": 125, "p50_ms": 0.5, "p90_ms": 0.8, "p99_ms": 1.0, "p999_ms": 1.2, "max_ms": 1.2}}],
                      "floor": {"rate_per_s": 50, "p50_ms": 0.5, "p99_ms": 1.0}})
    yield directory
    if previous is None:
        os.environ.pop("CASEMESH_CACHE_DIR", None)
    else:
        os.environ["CASEMESH_CACHE_DIR"] = previous
