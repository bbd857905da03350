"""The distributed harness's pieces without processes: what a worker receives, how stats travel, what the coordinator refuses."""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path

import pytest

from casemesh.harness.cli import _coordinator_options
from casemesh.harness.distributed import assignment
from casemesh.harness.distributed.wire import message_of, request_of
from casemesh.harness.errors import ConfigError, HarnessError
from casemesh.harness.profile import load_profile, with_overrides
from casemesh.harness.stats import RunStats
from casemesh.harness.workloads.url_shortener import State

ECHO = """apiVersion: casemesh.dev/v1
kind: Profile
metadata: {name: echo-split}
workload: echo
arrival: {process: poisson, rate_per_s: 40}
warmup_s: 0.5
duration_s: 2
journeys:
  - {name: echo, weight: 1}
"""


def _sent(profile):
    """What a worker loads from the coordinator's assignment of ``profile``."""
    return assignment.load_worker_profile(assignment.worker_profile_text(profile), assignment.profile_files(profile))


def test_a_worker_rebuilds_the_run_as_the_coordinator_runs_it(tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text(ECHO)
    run = with_overrides(load_profile(tmp_path / "echo.yaml"), rate_scale=2.5, duration_s=3)
    worker = _sent(run)
    assert (worker.arrival.rate_per_s, worker.duration_s, worker.warmup_s) == (100, 3, 0.5)
    assert assignment.plan_digest(worker, 7) == assignment.plan_digest(run, 7)
    assert assignment.plan_digest(run, 7) != assignment.plan_digest(run, 8)  # the digest does tell schedules apart


def test_a_trace_profile_travels_with_its_csv_and_without_its_slos() -> None:
    run = load_profile("url-shortener-trace")
    files = assignment.profile_files(run)
    assert list(files) == [Path(run.arrival.file).name]  # "../traces/x.csv" travels as "x.csv"
    worker = _sent(run)
    assert worker.slos == () and worker.faults == ()
    assert assignment.plan_digest(worker, 1) == assignment.plan_digest(run, 1)


def test_the_seeded_state_round_trips_and_nothing_else_is_unpickled() -> None:
    state = State(codes=["abc", "def"], cdfs={1.0: [0.5, 1.0]})
    assert assignment.load_state(assignment.dump_state(state)) == state
    with pytest.raises(HarnessError, match="not allowed"):
        assignment.load_state(pickle.dumps(os.system))


def _stats(seed: int) -> RunStats:
    stats = RunStats()
    rng = random.Random(seed)
    for _ in range(500):
        stats.rpc("pkg.Svc/Call").record("OK" if rng.random() < 0.9 else "UNAVAILABLE", rng.expovariate(1 / 3000))
        stats.send_lag.record_value(int(rng.expovariate(1 / 200)))
    return stats


def test_statistics_cross_the_wire_exactly_so_the_merge_is_that_of_the_local_pool() -> None:
    one, two = _stats(1), _stats(2)
    received = []
    for stats in (one, two):
        message = message_of(request_of(("done", {"phase": "done", "sent": 500, "completed": 500, "failed": 50, "in_flight": 0,
                                                  "measured_sent": 500}, stats.to_wire(), {"start_skew_s": 0.002, "cpu_s": 1.5})), pid=42)
        assert message[1]["sent"] == 500 and message[3] == {"start_skew_s": 0.002, "cpu_s": 1.5}
        received.append(RunStats.from_wire(message[2]))
    local, remote = RunStats(), RunStats()
    for stats in (one, two):
        local.merge(stats)
    for stats in received:
        remote.merge(stats)
    assert remote.to_wire() == local.to_wire()  # every histogram count of every code, bucket for bucket
    merged = remote.rpc("pkg.Svc/Call")
    assert merged.count() == 1000
    assert merged.merged().get_value_at_percentile(99) == local.rpc("pkg.Svc/Call").merged().get_value_at_percentile(99)


def test_the_coordinator_options_are_refused_with_the_option_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "echo.yaml").write_text(ECHO)
    profile = load_profile(tmp_path / "echo.yaml")
    monkeypatch.delenv("CASEMESH_COORDINATOR_TOKEN", raising=False)
    assert _coordinator_options(None, None, 300, None, profile) is None
    assert _coordinator_options("127.0.0.1:7070", 2, 300, None, profile)["token"] is None
    cases = [(("0.0.0.0:7070", 2, None, profile), "--coordinator-listen", "CASEMESH_COORDINATOR_TOKEN"),
             ((None, 2, None, profile), "--expect-workers", "--coordinator-listen"),
             (("127.0.0.1:7070", None, None, profile), "--coordinator-listen", "--expect-workers"),
             (("127.0.0.1:7070", 2, 3, profile), "--workers", "leave out"),
             (("127.0.0.1:7070", 2, None, load_profile("url-shortener")), "--rate-scale", "auto"),
             (("nowhere", 2, None, profile), "--coordinator-listen", "host:port")]
    for (listen, expect, workers, prof), field, words in cases:
        with pytest.raises(ConfigError) as error:
            _coordinator_options(listen, expect, 300, workers, prof)
        assert error.value.field == field and words in str(error.value)
    monkeypatch.setenv("CASEMESH_COORDINATOR_TOKEN", "a-long-random-join-token")
    assert _coordinator_options("0.0.0.0:7070", 2, 300, None, profile)["token"] == "a-long-random-join-token"
