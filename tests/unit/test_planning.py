"""Planning a run for its machine (harness/planning.py) and the calibration cache (harness/calibration/cache.py)."""

from __future__ import annotations

import json

import pytest

from casemesh.harness.calibration.cache import cache_path, describe_age, load_calibration, save_calibration
from casemesh.harness.calibration.machine import CpuWatch, fingerprint, fingerprint_key
from casemesh.harness.planning import HEADROOM, ONE_PROCESS_ALWAYS_PER_S, auto_workers, pilot_lag_bound_ms


def calibration(ceiling: float | None, lowest_lag_ms: float = 0.5) -> dict:
    return {"fingerprint": fingerprint(), "measured_at": "2026-12-01T10:00:00Z", "ceiling_per_s": ceiling,
            "steps": [{"rate_per_s": 50, "send_lag_p99_ms": lowest_lag_ms, "latency_ms": {"p99_ms": 1.0}}],
            "floor": {"rate_per_s": 50, "p50_ms": 0.4, "p99_ms": 1.0}}


def test_one_process_below_the_rate_any_machine_holds_even_without_a_calibration():
    assert auto_workers(ONE_PROCESS_ALWAYS_PER_S, None, 2)[0] == 1
    assert auto_workers(1000, None, 2) == (1, "no calibrated ceiling (casemesh calibrate): one load process")


def test_workers_follow_the_calibrated_ceiling_with_headroom_capped_at_one_per_cpu():
    # The slow VM of issue 9: one process held about 875/s; 1,000/s needs two processes there.
    count, why = auto_workers(1000, calibration(875), cpus=2)
    assert count == 2 and f"{HEADROOM:.0%} of the calibrated one-process ceiling of 875/s" in why
    # The faster VM: 3,500/s in one process; 1,000/s is well within it.
    assert auto_workers(1000, calibration(3500), cpus=2)[0] == 1
    count, why = auto_workers(10_000, calibration(875), cpus=2)
    assert count == 2 and "capped at 2 (one per CPU)" in why


def test_pilot_lag_bound_is_half_the_invalid_bound_or_twice_the_machines_own_jitter():
    assert pilot_lag_bound_ms(None) == 5.0
    assert pilot_lag_bound_ms(calibration(1000, lowest_lag_ms=1.0)) == 5.0
    assert pilot_lag_bound_ms(calibration(1000, lowest_lag_ms=4.0)) == 8.0


def test_the_cache_keeps_one_calibration_per_machine_and_reports_its_age(tmp_path, monkeypatch):
    monkeypatch.setenv("CASEMESH_CACHE_DIR", str(tmp_path))
    assert load_calibration() is None
    assert save_calibration(calibration(900)) == cache_path() == tmp_path / "calibration.json"
    found = load_calibration()
    assert found["ceiling_per_s"] == 900 and found["age_s"] > 0
    # Another machine's entry is kept beside this one's, not used for it.
    data = json.loads(cache_path().read_text())
    other = {**calibration(5000), "fingerprint": {**fingerprint(), "cpu_model": "another CPU"}}
    data[fingerprint_key(other["fingerprint"])] = other
    cache_path().write_text(json.dumps(data))
    assert load_calibration()["ceiling_per_s"] == 900
    # A cache that cannot be read is no calibration (and no crash).
    cache_path().write_text("{not json")
    assert load_calibration() is None


@pytest.mark.parametrize(("age_s", "text"), [(30, "30 s"), (600, "10 min"), (7200 * 3, "6 h"), (86_400 * 3, "3 days")])
def test_describe_age(age_s, text):
    assert describe_age(age_s) == text


def test_cpu_watch_counts_this_process_as_its_own_load():
    watch = CpuWatch()
    watch.start()
    deadline = __import__("time").monotonic() + 0.4
    while __import__("time").monotonic() < deadline:  # burn CPU in this process
        pass
    use = watch.stop()
    assert use is not None and use.cpus >= 1 and use.window_s >= 0.4
    # This process ran flat out on one CPU: its share is visible (about 100 / cpus %, less when the machine is shared).
    assert use.own_pct > 10 / use.cpus
    assert 0 <= use.other_pct <= 100 and use.busy_pct >= use.own_pct
    assert set(use.to_dict()) >= {"busy_pct", "steal_pct", "own_pct", "other_pct", "noisy", "warnings"}


def test_a_local_target_is_found_by_the_port_it_listens_on():
    import os
    import socket

    from casemesh.harness.calibration.machine import listening_pids

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert listening_pids([f"127.0.0.1:{port}"]) == [os.getpid()]
    assert listening_pids(["127.0.0.1:not-a-port"]) == []
